/*
 * jobs: the daemons master runs (or, with -x and -c, the service calls it
 * makes), each with its data connection to the port the pool granted it.
 * A relayed daemon's output comes through us (every daemon in version 3,
 * or with -r): a pipe into its stream (stream.h), which keeps what the
 * pool has not confirmed and, after a break, sends it again on a new
 * grant. Data connections are made without blocking, many at once: the
 * connect, the handshake and the token all go on in the one poll loop.
 * Never prints or exits: what happens goes to cfg->on_event.
 */
#ifndef SP_JOBS_H
#define SP_JOBS_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "connector.h"
#include "name.h"
#include "net.h"
#include "proto.h"
#include "stream.h"

struct linger_set;

enum job_state {
	JOB_WAITING,	/* its first PORT (or CALL) is to be asked */
	JOB_ASKED,	/* asked; no grant yet */
	JOB_CONNECTING, /* granted: the data connection is being made */
	JOB_STARTING,	/* forked, its exec's outcome not read yet */
	JOB_RUNNING,
	JOB_DONE
};

enum jobs_kind {
	JOBS_DAEMONS, /* DDIR's daemons */
	JOBS_CLIENTS, /* -x: DDIR's client portions of services */
	JOBS_CALL     /* -c: one service call, our stdin and stdout */
};

/* A service call's outcome as the pool's EXIT says it (0-255 its status). */
enum { JOB_REMOTE_UNKNOWN = -2, JOB_REMOTE_NONE = -1 };

struct job {
	char file[NAME_MAX_LEN + 1]; /* in DDIR (-c: the service's name) */
	char name[NAME_MAX_LEN + 1]; /* what the pool knows it by: -N's PREFIX.file */
	char stream[PROTO_STREAM_HEX + 1];
	enum job_state state;
	pid_t pid;		 /* 0 once reaped */
	int execfd;		 /* JOB_STARTING: the exec outcome's pipe */
	int unstarted;		 /* its exec failed: the 127 it exits with is not news */
	int out;		 /* relayed: our end of its output pipe; -1 once it ended */
	struct stream st;	 /* the data connection, and (relayed) the stream */
	struct connector conn;	 /* the data connection while it is being made */
	int connecting;		 /* conn is under way */
	long long connect_by;	 /* ... until then */
	char token[PROTO_TOKEN_HEX + 2]; /* the grant's token line, until it is the stream's prefix */
	char port[NET_PORTLEN];		 /* the granted port, for messages */
	int resuming;		 /* the grant continues a stream that ran before (-r) */
	int ended;		 /* the stream is delivered, or failed: nothing more to do */
	int start_due;		 /* relayed: its connection is made, the daemon to be started */
	long long retry_at;	 /* refused while resuming: ask again then */
	int inflight;		 /* a request for it waits for its answer */
	int remote;		 /* -x, -c: the pool's EXIT status, or JOB_REMOTE_* */
	size_t poll_at, poll_n;	 /* its slice of the last poll set (jobs_pollfds) */
};

enum job_ev {
	JOB_EV_CANNOT_START,   /* why */
	JOB_EV_ENDED,	       /* code: it ended with a non-zero status (code > 128: a signal) */
	JOB_EV_CONNECT_FAILED, /* why: its data connection could not be made */
	JOB_EV_LOST,	       /* why, n bytes held: the data connection broke (resend: -r) */
	JOB_EV_RESUMED,	       /* n: the stream goes on from this offset on a new connection */
	JOB_EV_LACKS,	       /* n: bytes the pool says it lacks, which we forgot */
	JOB_EV_REFUSED,	       /* why: the pool's FAIL of a port (resend: of a resumption,
				  asked again in a while: a once buffer still being read) */
	JOB_EV_CALL_REFUSED,   /* why: the pool's FAIL of a service call (-x, -c) */
	JOB_EV_REMOTE_FAILED,  /* code, why: the pool's EXIT of a call, not 0 (-1: it never ran) */
	JOB_EV_UNREPORTED,     /* a call's end the pool never told: it went away first */
};
/* How many kinds of job_ev there are (a table by kind): keep it after the last. */
#define JOB_EV_KINDS (JOB_EV_UNREPORTED + 1)

struct job_event {
	enum job_ev type;
	const struct job *job;
	const char *why;
	unsigned long long n;
	int code;
	int resend; /* JOB_EV_LOST, JOB_EV_REFUSED: the stream goes on after a new grant */
};

/* Room for any job_event_text: a diagnostic line's worth (err.c's). */
#define JOB_TEXT_MAX 1024

/*
 * The line that says ev, into buf (len bytes), as master logs it; returns
 * buf. The words are the engine's; what the run makes of the event (a
 * failure or not) is the caller's.
 */
const char *job_event_text(const struct job_event *ev, char *buf, size_t len);

struct pump_fault;

struct jobs_config {
	enum jobs_kind kind;
	int relayed;		  /* a daemon's output comes through us (see above) */
	int resume;		  /* -r */
	const unsigned char *psk; /* version 3: the channel's key; NULL: plain text */
	int dirfd, cwdfd;	  /* DDIR, and where to come back to after a start */
	int errfd;		  /* the daemons' stderr (-L), or -1: ours */
	const char *ddir, *host, *port; /* the environment's POOL_HOST, POOL_PORT; messages */
	long reply_ms;		  /* -t: a data connection's time to be made */
	struct linger_set *linger; /* finished data connections close gracefully there */
	void (*in_child)(void *arg); /* a relay child lets go of what is the master's */
	/* A relay child's fault (-x, -c), told in that child (relay.on_fault); may be NULL. */
	void (*on_fault)(const struct pump_fault *f, void *arg);
	void (*on_event)(const struct job_event *ev, void *arg);
	void *arg;
};

struct jobs {
	const struct jobs_config *cfg;
	struct job *v;
	size_t n, cap;
	size_t running, started;
	size_t starts_due; /* jobs whose daemon jobs_start_due is to start */
	pid_t *pids;	   /* room for every job's pid, made with the list: jobs_end allocates nothing */
	size_t pids_cap;
	int ending; /* tearing down: the daemons' deaths are ours, not news */
};

/* No jobs yet. */
void jobs_init(struct jobs *js, const struct jobs_config *cfg);

/*
 * Add a job for file, known to the pool as prefix.file (prefix NULL: as
 * file), with a fresh random stream name. Returns it, or NULL with errno
 * (ENAMETOOLONG: the prefix makes too long a name; ENOMEM; getrandom's).
 */
struct job *jobs_add(struct jobs *js, const char *file, const char *prefix);

/* The request for j, as the pool's protocol has it, into line (PROTO_LINE_MAX): its length. */
int job_request(const struct jobs *js, const struct job *j, char *line, size_t len);

/*
 * A job that must ask (again) for a port now: its first, or (-r) a new
 * one after its data connection broke.
 */
int job_wants_port(const struct jobs *js, const struct job *j, long long now);

/* A relayed stream needs nothing more: delivered, or nothing to deliver. */
int job_stream_over(const struct jobs *js, const struct job *j);

/* A grant for j now would continue a stream that ran before: its daemon started. */
int job_resuming(const struct job *j);

/* A job still between its first request and its start: asked, or its connection being made. */
int job_unsettled(const struct job *j);

struct client;

/*
 * Ask c for every port wanted now (job_wants_port), all at once, each
 * request tagged with its job's index: the pool answers in order, so the
 * whole start costs a round trip, not one per daemon. Returns 1 once
 * every job has its answer and none is awaited, 0 while some is, or -1
 * with errno (client_ask's) when a request could not be sent, *failed
 * being its job.
 */
int jobs_ask(struct jobs *js, struct client *c, long long now, struct job **failed);

/* Every relayed stream needs nothing more (job_stream_over). */
int jobs_streams_over(const struct jobs *js);

/* Every stream is delivered (or needs nothing), every service call's outcome is known. */
int jobs_over(const struct jobs *js);

/* The job the pool knows by name and stream, or NULL. */
struct job *jobs_find(struct jobs *js, const char *name, const char *stream);

/* The control connection is gone: requests in flight are answered by nobody, to be asked again. */
void jobs_unask(struct jobs *js);

/*
 * The pool's EXIT for a service call: its job (if any: the pool may speak
 * of a stream we no longer know) keeps the status; one not 0 is told
 * (JOB_EV_REMOTE_FAILED).
 */
void jobs_remote_exit(struct jobs *js, const struct proto_msg *msg);

/*
 * The pool went away: every service call it was asked for whose end it
 * never told is told (JOB_EV_UNREPORTED) and counted as having none, so
 * that jobs_over need not wait for it.
 */
void jobs_unreported(struct jobs *js);

/*
 * The pool's answer, on c, to the request jobs_ask tagged tag: GRANT (the
 * job's data connection is made to the pool's address on c and the
 * port, from ours: the pool's guard takes that address only) or FAIL
 * (told: JOB_EV_REFUSED, JOB_EV_CALL_REFUSED). A job that fails is told.
 */
void jobs_answer(struct jobs *js, const struct client *c, size_t tag, const struct proto_msg *msg,
		 long long now);

/*
 * Every job's descriptors appended to pfd (room for 3 a job); returns how
 * many. *at (an io_now_ms time, or -1) becomes the earliest of itself and
 * the jobs' own deadlines: now when daemons are due to start.
 */
size_t jobs_pollfds(struct jobs *js, struct pollfd *pfd, long long now, long long *at);

/* Act on poll's answer for what jobs_pollfds appended at pfd (revents set). */
void jobs_handle(struct jobs *js, const struct pollfd *pfd, long long now);

/*
 * Start up to max of the daemons whose connections are made; returns how
 * many are still due. Starting costs a fork and an exec each (milliseconds
 * on a slow machine): a loop that started a thousand at once would leave
 * the pool's side of every other connection waiting past its handshake
 * deadline, so the loop starts a few a round and handles its sockets
 * between them.
 */
size_t jobs_start_due(struct jobs *js, size_t max);

/* A child was reaped with status: the job it was (if any) hears of it. */
void jobs_reaped(struct jobs *js, pid_t pid, int status);

/* At teardown: each relayed stream sent to its end, until every one is or by passes. */
void jobs_drain(struct jobs *js, long long by);

/*
 * Teardown: every job's process group ended (SIGTERM, SIGKILL after
 * grace_ms), then whatever they left behind that came back to us (we are
 * their subreaper); their deaths are not news. Allocates nothing. sigfd:
 * sig_init's.
 */
void jobs_end(struct jobs *js, long grace_ms, int sigfd);

/* Close every connection and pipe, free everything (the processes are the caller's). */
void jobs_free(struct jobs *js);

#endif
