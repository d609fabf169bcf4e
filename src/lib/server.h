/*
 * server: socket's serving side. One event loop over the listener, the
 * connections being served (a program holding the connection itself, or
 * a relay child), finished connections draining (linger.c), the
 * self-pipe, the control signals, and, with -W, the channel preforked
 * workers report on (worker.c; their bookkeeping in prefork.c). The -W
 * master never accepts: its workers do.
 *
 *	server_init(&s, &opts, &listener, sigfd);
 *	status = server_run(&s);	(or server_serve(&s, fd) first, for one connection)
 *
 * Connections are served in process groups of their own; teardown ends
 * every group (proc_end_groups) and allocates nothing. The server never
 * prints: what happens is told to server_opts.on_event (struct
 * server_event), in the process it happens in (a relay child's fault in
 * that child), and the caller says it.
 *
 * Signals, after nginx's: SIGINT, SIGHUP, SIGTERM tear down at once (the
 * self-pipe, sig.c). SIGQUIT is a graceful stop: no new connection, the
 * running ones finish within stop_ms, then the teardown. SIGUSR2 reloads
 * a -W pool: the program is looked up again, a new generation of workers
 * is forked, the ready ones of the old retire, the busy ones finish; the
 * listening sockets stay open all along. SIGUSR1 with -W: a status line.
 * All come through the self-pipe (sig.c); which of them are caught is the
 * caller's choice (sig_init), and the loop acts on whichever come.
 */
#ifndef SP_SERVER_H
#define SP_SERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "linger.h"
#include "listener.h"
#include "net.h"
#include "prefork.h"
#include "cmd.h"
#include "proc.h"
#include "ucspi.h"
#include "pump.h"

/* What the server tells its caller. */
enum server_ev {
	SERVER_EV_CONN,		 /* -v only: a connection from name (the peer) */
	SERVER_EV_CONN_END,	 /* -v only: name's connection ended, code its program's status */
	SERVER_EV_FAILED,	 /* the step name failed with err ("fork", "poll"...) */
	SERVER_EV_EXEC,		 /* the program name could not be started: err */
	SERVER_EV_ACCEPT,	 /* accept failed with err, count times in a second: a pause */
	SERVER_EV_RELAY,	 /* in a relay child: fault */
	SERVER_EV_STATUS,	 /* SIGUSR1: conns connections running; with -W, pool's counts
				    (pool NULL without) */
	SERVER_EV_BACKOFF,	 /* workers end too fast (PREFORK_DEATHS a second): a pause of ms */
	SERVER_EV_STOP,		 /* -v only: SIGQUIT, a graceful stop; conns connections have ms */
	SERVER_EV_RELOAD,	 /* -v only: SIGUSR2 with -W: generation; count ready workers
				    retired, conns busy */
	SERVER_EV_RELOAD_NONE,	 /* SIGUSR2 without -W: nothing to reload (told once) */
	SERVER_EV_RELOAD_FAILED, /* SIGUSR2: the program name is gone (err); the workers go on */
	SERVER_EV_TEARDOWN,	 /* -v only: signal code: ending conns connections */
};

struct server_event {
	enum server_ev type;
	const char *name;		/* the peer, the step or the program (see enum server_ev) */
	int err;			/* errno */
	int code;			/* CONN_END: the exit status; TEARDOWN: the signal */
	size_t conns;			/* STOP, TEARDOWN, STATUS: connections; RELOAD: busy workers */
	unsigned long count;		/* ACCEPT: failures; RELOAD: ready workers retired */
	long long ms;			/* BACKOFF, STOP */
	unsigned generation;		/* RELOAD */
	const struct prefork *pool;	/* STATUS */
	const struct pump_fault *fault; /* RELAY */
};

struct server_opts {
	struct relay relay;   /* the program and -c -q -r -w */
	int fork, loop;	      /* -f: a child per connection; -l: keep accepting */
	int verbose;	      /* -v: say what happens on stderr */
	long maxconn;	      /* -C: connections at once; 0: unlimited */
	long grace_ms;	      /* -g: SIGTERM to SIGKILL at teardown */
	const char *path;     /* a UNIX socket path we created, removed at the end; or NULL */
	long wmin, wmax;      /* -W: 0 without; wmax 0 for a fixed N */
	long idle_ms;	      /* -I */
	int prestart;	      /* -P */
	const char *exec_path; /* -W: the program as found in PATH at start, or NULL */
	long stop_ms;	      /* -G: a graceful stop waits this long for connections */
	/* Told of what happens (may be NULL); in the process it happens in. */
	void (*on_event)(const struct server_event *ev, void *arg);
	void *event_arg;
};

/* A connection being served. */
struct server_conn {
	pid_t pid; /* the program, relay child or worker serving it */
	int fd;	   /* our copy, for the graceful close after the program, or -1 */
	char peer[NET_IPLEN + NET_PORTLEN + 2];
};

struct server {
	const struct server_opts *o;
	struct relay relay;	  /* o's, with the program prepared */
	struct cmd cmd;	  /* the program, split once (and looked up again on reload) */
	struct listener l; /* empty once no more connections are taken */
	int sigfd;		  /* the self-pipe */
	int stopping;		  /* a graceful stop is under way */
	int told_no_reload;	  /* SIGUSR2 without -W: said once */
	long long stop_by;	  /* when it turns into the teardown */
	unsigned generation;	  /* -W: reloads so far */
	int status; /* exit status when not looping */
	struct server_conn *conns;
	size_t nconns, cap;
	size_t running;		  /* conns with a live child */
	struct linger_set linger; /* finished connections draining the peer */
	struct ucspi env;	  /* the UCSPI environment: the listener's part */
	pid_t *ends;		  /* room for every pid teardown must end, kept ahead */
	size_t ends_cap;
	/* -W */
	int pooled;
	struct prefork pool;
	int chan[2];
	long long fork_pause_until; /* fork(2) failed: try again later */
};

/*
 * Set s up to serve what l accepts (l's sockets are s's from now; l may be
 * empty for a client's one connection: then there is nothing to stop
 * gracefully or reload, and the caller leaves SIGQUIT and SIGUSR2 at their
 * defaults). sigfd is the self-pipe. Returns 0, or -1 with errno.
 */
int server_init(struct server *s, const struct server_opts *o, struct listener *l, int sigfd);

/* Serve fd (a connected socket) now, as if it had been accepted. */
void server_serve(struct server *s, int fd);

/*
 * Run until there is nothing left to serve (no listener, no connection),
 * or a terminating signal arrives: then tear down, ending every
 * connection's process group. Returns the exit status: s->status, or
 * 128+signal after a teardown or a graceful stop (SIGQUIT).
 */
int server_run(struct server *s);

#endif
