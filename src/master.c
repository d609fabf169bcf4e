/*
 * master: push a directory of daemons to a remote pool. Proves it knows
 * KEY without sending it, has the pool prove it too, asks for one guarded
 * port per daemon, and starts each daemon with its output going to that
 * port: straight, or (-r) through the master, which keeps what the pool
 * has not taken and, when the pool goes away and comes back, resumes every
 * stream exactly where the pool's side stopped.
 */
#define _GNU_SOURCE /* memrchr */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/channel.h"
#include "lib/connector.h"
#include "lib/daemon.h"
#include "lib/deadline.h"
#include "lib/err.h"
#include "lib/io.h"
#include "lib/keeper.h"
#include "lib/linger.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/proc.h"
#include "lib/proto.h"
#include "lib/pump.h"
#include "lib/queue.h"
#include "lib/sig.h"
#include "lib/spawn.h"
#include "lib/wire.h"

#define WINDOW 32		/* PORT requests in flight: enough to hide the round trips */
#define EXIT_BUSY 75		/* another master runs these daemons (sysexits EX_TEMPFAIL) */
#define JOB_QUEUE (256u << 10)	/* -r: what a daemon's stream may hold here before it blocks */
#define LINE_PIECE 65536	/* the pool splits longer lines into pieces of this size */
#define DATA_LINGER_MS 2000	/* a finished stream: how long the pool may take to close */

static const char usage_text[] =
	"usage: master [-borU] [-g SECONDS] [-L FILE] [-N PREFIX] [-t SECONDS] [-T SECONDS]\n"
	"              [-w SECONDS] KEY HOST PORT DDIR\n"
	"       master -x [-boU] [options] KEY HOST PORT DDIR\n"
	"       master -c [-U] [-t SECONDS] [-T SECONDS] [-w SECONDS] KEY HOST PORT SERVICE\n"
	"       master -version | -help\n"
	"\n"
	"  KEY        the pool's key, or @FILE to read it from FILE\n"
	"  HOST PORT  where the pool listens (PORT 1024-49151)\n"
	"  DDIR       directory of the daemons: its executable files\n"
	"  -b         background once every daemon has its answer; print the PID\n"
	"  -c         call one SERVICE of the pool, with our stdin as its input and its\n"
	"             output on our stdout\n"
	"  -g SECONDS at teardown, SIGKILL daemons still alive after SECONDS (default 5)\n"
	"  -L FILE    diagnostics to FILE once ready, not to stderr or syslog\n"
	"  -N PREFIX  ask for PREFIX.NAME instead of NAME (many hosts, one pool)\n"
	"  -o         when another master runs DDIR, wait for it instead of refusing\n"
	"  -r         resume: when the pool goes away, keep the daemons running, reconnect\n"
	"             and go on where the pool's side stopped\n"
	"  -t SECONDS give the pool SECONDS for each answer (default 30)\n"
	"  -T SECONDS end the daemons after SECONDS (default: no limit)\n"
	"  -U         unencrypted: speak protocol version 2, in plain text, to a pool\n"
	"             given -U too\n"
	"  -w SECONDS wait up to SECONDS for the pool to come up (default: no wait)\n"
	"  -x         DDIR's executables are client portions of the pool's services of\n"
	"             the same names: each talks to its service over its connection\n";

static const char synopsis[] =
	"master [-bcorUx] [-g SECONDS] [-L FILE] [-N PREFIX] [-t SECONDS] [-T SECONDS] [-w SECONDS] "
	"KEY HOST PORT DDIR|SERVICE";

struct opts {
	int background, overlap_wait, resume;
	int plain; /* -U: version 2, in plain text */
	int call, clients; /* -c, -x given (they exclude each other) */
	int services;	   /* from them: 1 -x, client portions of services; 2 -c, one call */
	long grace_ms, reply_ms, run_ms, wait_ms;
	const char *logfile, *host, *port, *ddir, *prefix;
	char *key;
	size_t keylen;
};

/* J_STARTING: forked, its exec's outcome not read yet (execfd). */
enum job_state { J_WAITING, J_ASKED, J_STARTING, J_RUNNING, J_DONE };

/* A daemon of DDIR, its run, and (-r) the stream we relay for it. */
struct job {
	char file[PROTO_NAME_MAX + 1]; /* in DDIR */
	char name[PROTO_NAME_MAX + 1]; /* what the pool knows it by: -N's PREFIX.file */
	char stream[PROTO_STREAM_HEX + 1];
	enum job_state state;
	pid_t pid;     /* 0 once reaped */
	int execfd;    /* J_STARTING: spawn_start's pipe */
	int unstarted; /* its exec failed: the 127 it exits with is not news */
	/* -r */
	int out;   /* our end of the daemon's output pipe; -1 once it ended */
	int sock;  /* the data connection, or -1 */
	struct channel *ch; /* version 3: sock's channel, or NULL */
	size_t tok;	    /* version 3: plaintext bytes before the stream on ch (the token line) */
	/*
	 * Version 3: the pool counts what its buffer took of this connection's
	 * stream (CHANNEL_ACKS); its TCP acknowledges bytes it may yet refuse
	 * (a token it no longer holds), so only its word lets us forget them.
	 */
	int acks;
	unsigned long long acked_n; /* its last count */
	unsigned char ack[8];	    /* a count being read */
	size_t ack_have;
	int hs;		    /* version 3: ch's handshake goes on; the token line waits in token */
	char token[PROTO_TOKEN_HEX + 2];
	int full;  /* sock took less than offered: wait for POLLOUT */
	int shut;  /* the stream is complete and our FIN is sent */
	int ended; /* the stream is delivered: nothing more to do for it */
	struct queue q;		  /* from base on: what the pool has not surely taken */
	unsigned long long base;  /* the stream's offset of q's first byte */
	unsigned long long cbase; /* where the current connection started */
	unsigned long long csent; /* bytes written on the current connection */
	unsigned long long line;  /* the offset where the line at base begins */
	long long retry_at;	  /* refused while resuming: ask again then */
	int inflight;		  /* a PORT for it waits for its answer */
	int remote;		  /* -x, -c: the service's status (EXIT), -1 it did not run, -2 unknown */
};

/* C_HS: version 3's handshake; C_AUTH: version 2's AUTH waits for OK. */
enum cstate { C_DOWN, C_CONNECTING, C_HELLO, C_HS, C_AUTH, C_RUN, C_ENDED };

struct master {
	const struct opts *o;
	struct daemon dm;
	struct job *d;
	size_t nd, running;
	size_t ask[WINDOW], asked, answered; /* jobs whose PORT is in flight, in order */
	pid_t *ends; /* room for every daemon's pid, made with the list: teardown allocates nothing */
	int ctl, sigfd, ddirfd, cwdfd;
	int errfd; /* -L: the daemons' stderr, open from the start; else -1 */
	enum cstate state;
	struct connector conn;
	int ready;   /* readiness reported (-b): every daemon had its first answer */
	int started; /* daemons started */
	int failed;  /* something to exit 1 for */
	int ending;  /* tearing down: the daemons' deaths are ours, not failures */
	int sent_end;
	int bye; /* the pool said every grant of ours has ended */
	long long reply_by; /* an answer is due by then, or 0 */
	long long run_by;   /* -T */
	long long wait_by;  /* -w: the pool may come up until then */
	char nonce_p[PROTO_NONCE_HEX + 1], nonce_m[PROTO_NONCE_HEX + 1];
	char peer_ip[NET_IPLEN], local_ip[NET_IPLEN];
	struct proto_in in;
	struct linger_set linger;
	struct channel *ch;	      /* version 3: the control channel, from the greeting on */
	unsigned char psk[NOISE_PSK]; /* version 3: the channels' key, from KEY */
};

/* ---- options ---- */

static void parse(int argc, char **argv, struct opts *o)
{
	struct opt_parse p = {.usage = usage_text, .synopsis = synopsis};
	static const char optstring[] = ":bcg:hL:N:ort:T:UVw:x";
	int c;

	o->grace_ms = 5000;
	o->reply_ms = 30000;
	while ((c = opt_next(argc, argv, optstring, &p)) != -1) {
		switch (c) {
		case 'b': o->background = 1; break;
		case 'c': o->call = 1; break;
		case 'g': o->grace_ms = opt_duration(optarg, 1, 3600000L, "-g", &p); break;
		case 'L': o->logfile = optarg; break;
		case 'N': o->prefix = optarg; break;
		case 'o': o->overlap_wait = 1; break;
		case 'r': o->resume = 1; break;
		case 't': o->reply_ms = opt_duration(optarg, 1, 86400000L, "-t", &p); break;
		case 'U': o->plain = 1; break;
		case 'T': o->run_ms = opt_duration(optarg, 1, 31L * 86400000L, "-T", &p); break;
		case 'w': o->wait_ms = opt_duration(optarg, 1, 86400000L, "-w", &p); break;
		case 'x': o->clients = 1; break;
		default: err_cmdline(&p);
		}
	}
	argv += optind;
	argc -= optind;
	o->services = o->call ? 2 : o->clients;
	if (argc != 4)
		err_usage(synopsis, argc < 4 ? "missing operand" : "too many operands");
	if (!*argv[1])
		err_usage(synopsis, "empty host");
	if (opt_port(argv[2], &p) < 0)
		err_cmdline(&p);
	if (!*argv[3])
		err_usage(synopsis, o->services == 2 ? "empty service name" : "empty daemon directory");
	if (o->services == 2 && !name_ok(argv[3]))
		err_usage(synopsis, "%s: not a service name", argv[3]);
	if (o->call && o->clients)
		err_usage(synopsis, "-c does not go with -x: one service, or a directory of client portions");
	if (o->services && o->resume)
		err_usage(synopsis, "-r does not go with %s: a service call is not resumed",
			  o->services == 2 ? "-c" : "-x");
	if (o->services == 2 && o->background)
		err_usage(synopsis, "-b does not go with -c: the call is our stdin and stdout");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	if (o->prefix && (!name_ok(o->prefix) || strlen(o->prefix) >= NAME_MAX_LEN - 1))
		err_usage(synopsis, "-N: '%s' is not a name prefix (%s, up to %d characters)",
			  o->prefix, "A-Za-z0-9._-, not starting with '.' or '-'", NAME_MAX_LEN - 2);
	o->host = argv[1];
	o->port = argv[2];
	o->ddir = argv[3];
	if (opt_key(argv[0], &o->key, &o->keylen, &p) < 0)
		err_cmdline(&p);
}

/* ---- one master per DDIR ---- */

/* Who holds the flock(2) on DDIR, from /proc/locks; 0 when it cannot be told. */
static pid_t lock_holder(int fd)
{
	struct stat st;
	char line[256];
	FILE *f;
	pid_t who = 0;

	if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!who && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		unsigned long long ino;
		long pid;

		if (strstr(line, "FLOCK") &&
		    sscanf(line, "%*s FLOCK %*s %*s %ld %x:%x:%llu", &pid, &maj, &min, &ino) == 4 &&
		    maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino)
			who = (pid_t)pid;
	}
	fclose(f);
	return who;
}

/*
 * Two masters on one DDIR would run every daemon twice (a cron run that
 * overlaps the last): the first holds a lock on the directory, for as long
 * as it runs; the second refuses, or with -o waits.
 */
static void lock_ddir(const struct opts *o, int fd)
{
	pid_t who;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return;
	if (errno != EWOULDBLOCK)
		err_die(EXIT_RUNTIME, "%s: locking:", o->ddir);
	if (o->overlap_wait) {
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR)
				err_die(EXIT_RUNTIME, "%s: locking:", o->ddir);
		return;
	}
	who = lock_holder(fd);
	if (who > 0)
		err_die(EXIT_BUSY, "%s: another master (PID %ld) runs these daemons; not starting",
			o->ddir, (long)who);
	err_die(EXIT_BUSY, "%s: another master runs these daemons; not starting", o->ddir);
}

/* ---- the daemons ---- */

static int by_file(const void *a, const void *b)
{
	return strcmp(((const struct job *)a)->file, ((const struct job *)b)->file);
}

/* The executable regular files of DDIR with valid names, sorted; warn about the rest. */
static void list_daemons(struct master *m)
{
	DIR *dir = fdopendir(dup(m->ddirfd));
	struct dirent *e;
	size_t cap = 0;

	if (!dir)
		err_die(EXIT_RUNTIME, "%s:", m->o->ddir);
	while ((e = readdir(dir)) != NULL) {
		struct stat st;
		const char *why = NULL;
		struct job *j;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!name_ok(e->d_name))
			why = "not a valid daemon name";
		else if (m->o->prefix && strlen(m->o->prefix) + 1 + strlen(e->d_name) > NAME_MAX_LEN)
			why = "too long a name with the -N prefix";
		else if (fstatat(m->ddirfd, e->d_name, &st, 0) < 0)
			why = strerror(errno);
		else if (!S_ISREG(st.st_mode))
			why = "not a regular file";
		else if (!(st.st_mode & 0111) || faccessat(m->ddirfd, e->d_name, X_OK, 0) < 0)
			why = "not executable";
		if (why) {
			err_warn("%s/%s: skipped: %s", m->o->ddir, e->d_name, why);
			continue;
		}
		if (mem_reserve(&m->d, &cap, m->nd + 1, sizeof *m->d, 16) < 0)
			err_die(EXIT_RUNTIME, "daemon list:");
		j = memset(&m->d[m->nd++], 0, sizeof m->d[0]);
		memcpy(j->file, e->d_name, strlen(e->d_name) + 1); /* valid: <= 64 */
		/* Lengths were checked above: prefix, dot and name fit. */
		if (m->o->prefix) {
			size_t pl = strlen(m->o->prefix);

			memcpy(j->name, m->o->prefix, pl);
			j->name[pl] = '.';
			memcpy(j->name + pl + 1, j->file, strlen(j->file) + 1);
		} else {
			memcpy(j->name, j->file, sizeof j->name);
		}
		j->out = j->sock = j->execfd = -1;
		j->remote = -2;
	}
	closedir(dir);
	if (m->nd)
		qsort(m->d, m->nd, sizeof m->d[0], by_file);
	if (!(m->ends = calloc(m->nd + 1, sizeof *m->ends)))
		err_die(EXIT_RUNTIME, "daemon list:");
	for (size_t i = 0; i < m->nd; i++)
		if (proto_random_hex(m->d[i].stream, PROTO_STREAM_HEX / 2) < 0)
			err_die(EXIT_RUNTIME, "random stream names:");
}

/* -c: one job, the service named on the command line; no directory, no program of ours. */
static void call_one(struct master *m)
{
	struct job *j;

	if (!(m->d = calloc(1, sizeof *m->d)) || !(m->ends = calloc(2, sizeof *m->ends)))
		err_die(EXIT_RUNTIME, "memory:");
	j = &m->d[0];
	m->nd = 1;
	snprintf(j->file, sizeof j->file, "%s", m->o->ddir);
	int n = snprintf(j->name, sizeof j->name, "%s%s%s", m->o->prefix ? m->o->prefix : "",
			 m->o->prefix ? "." : "", j->file);

	if (n < 0 || (size_t)n > NAME_MAX_LEN || (size_t)n >= sizeof j->name)
		err_usage(synopsis, "-N: the prefix makes '%s' too long a name", j->file);
	j->out = j->sock = j->execfd = -1;
	j->remote = -2;
	if (proto_random_hex(j->stream, PROTO_STREAM_HEX / 2) < 0)
		err_die(EXIT_RUNTIME, "random stream names:");
}

/*
 * "No such file" from an exec of a file that is there means its #! line
 * names what is not: say which (a CR from CR LF line ends included).
 */
static const char *start_error(const struct master *m, const struct job *j, int err, char *buf,
			       size_t len)
{
	char line[256];
	ssize_t r;
	int fd;

	if (err != ENOENT || (fd = openat(m->ddirfd, j->file, O_RDONLY | O_CLOEXEC)) < 0)
		return strerror(err);
	r = io_read(fd, line, sizeof line - 1);
	close(fd);
	if (r < 3 || line[0] != '#' || line[1] != '!')
		return strerror(err);
	line[r] = '\0';
	line[strcspn(line, "\n")] = '\0';
	{
		char *interp = line + 2 + strspn(line + 2, " \t");
		size_t n = strcspn(interp, " \t");
		int cr = n && interp[n - 1] == '\r';

		interp[n - cr] = '\0';
		snprintf(buf, len, "bad interpreter %s%s", interp,
			 cr ? "^M (the script has CR LF line ends)" : ": No such file or directory");
	}
	return buf;
}

/* Read whether j's exec happened; a failure is reported here, once. */
static void exec_outcome(struct master *m, struct job *j)
{
	int err = spawn_result(j->execfd);
	char why[400];

	j->execfd = -1;
	j->state = J_RUNNING;
	if (err) {
		err_warn("%s: cannot start: %s", j->file, start_error(m, j, err, why, sizeof why));
		j->unstarted = 1;
		m->failed = 1;
	}
}

/*
 * Every daemon's output comes through us: with -r, to keep what the pool
 * has not taken; in version 3, to seal it (the channel is ours, not the
 * daemon's).
 */
static int relayed(const struct master *m)
{
	return !m->o->services && (m->o->resume || !m->o->plain);
}

/* A relayed stream needs nothing more: delivered, or nothing to deliver. */
static int stream_over(const struct master *m, const struct job *j)
{
	return !relayed(m) || j->ended || j->unstarted;
}

static void reaped(pid_t pid, int status, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->nd; i++) {
		struct job *j = &m->d[i];
		int code = proc_status_code(status);

		if (j->pid != pid)
			continue;
		if (j->state == J_STARTING) /* dead, so its pipe has said all it will */
			exec_outcome(m, j);
		j->pid = 0;
		m->running--;
		if (stream_over(m, j))
			j->state = J_DONE;
		if (code == 0 || m->ending || j->unstarted)
			return;
		m->failed = 1;
		if (code > 128)
			err_warn("%s: killed by signal %d", j->file, code - 128);
		else
			err_warn("%s: exited with status %d", j->file, code);
		return;
	}
}

static void drain_streams(struct master *m);

static _Noreturn void finish(struct master *m, int code)
{
	pid_t *pids = m->ends;
	size_t n = 0;

	m->ending = 1;
	for (size_t i = 0; i < m->nd; i++) {
		struct job *j = &m->d[i];

		if (j->state == J_STARTING) {
			close(j->execfd);
			j->state = J_RUNNING;
		}
		if (j->pid > 0)
			pids[n++] = j->pid;
	}
	if (n)
		proc_end_groups(pids, n, m->o->grace_ms, m->sigfd, reaped, m);
	/* Whatever a daemon left behind came back to us (we are its subreaper): it ends too. */
	proc_end_children(m->o->grace_ms, reaped, m);
	if (!m->o->resume)
		drain_streams(m);
	for (size_t i = 0; i < m->nd; i++) {
		struct job *j = &m->d[i];

		channel_free(j->ch);
		if (j->sock >= 0)
			close(j->sock);
		if (j->out >= 0)
			close(j->out);
		queue_free(&j->q);
	}
	free(m->ends);
	linger_free(&m->linger);
	connector_free(&m->conn);
	/* Our END record: the pool tells a finished session from a cut one. */
	if (m->ch && (m->state == C_RUN || m->state == C_ENDED))
		channel_shutdown(m->ch);
	channel_free(m->ch);
	if (m->ctl >= 0)
		close(m->ctl);
	mem_wipe(m->psk, sizeof m->psk);
	mem_wipe(m->o->key, m->o->keylen);
	free(m->o->key);
	free(m->d);
	exit(code);
}

static void ready(struct master *m)
{
	if (m->ready)
		return;
	m->ready = 1;
	/* -b: the caller learns nothing went well only if something did. */
	if (m->o->background && m->started == 0) {
		err_warn("no daemon could be started");
		finish(m, EXIT_RUNTIME);
	}
	if (daemon_ready(&m->dm, m->o->logfile) < 0) {
		err_warn("%s: %s", m->o->logfile, err_file_why(errno));
		finish(m, EXIT_RUNTIME);
	}
}

/* ---- data connections ---- */

/*
 * Version 3: the data connection's channel, as its initiator. Returns it,
 * or NULL (said why).
 */
static struct channel *data_channel(struct master *m, const struct job *j, int fd, int wait)
{
	long long now = io_now_ms();
	/* A relayed stream (not waited for) asks the pool to count what it takes. */
	struct channel *ch = channel_new(fd, 1, m->psk, WIRE_DATA, wait ? NULL : CHANNEL_ACKS,
					 wait ? 0 : strlen(CHANNEL_ACKS), now);

	if (!ch) {
		err_warn("%s: no channel:", j->name);
		return NULL;
	}
	channel_track_acks(ch); /* what the pool's TCP took is what -r may forget */
	if (!wait)
		channel_handshake(ch, now); /* our message goes; the answer comes to the loop */
	else if (channel_handshake_wait(ch) < 0) {
		err_warn("%s: data connection: %s", j->name, channel_strerror(errno, 1));
		channel_free(ch);
		return NULL;
	}
	return ch;
}

/*
 * Connect to a granted port and hand over the token: in version 3 inside
 * the channel (*ch, else NULL). A relayed stream (j->hs) does not wait for
 * the handshake: the loop finishes it with the others', then sends the
 * token line (hs_done), so that many daemons' handshakes are in flight at
 * once. Returns the socket, or -1 (said why).
 */
static int data_connect(struct master *m, struct job *j, const struct proto_msg *msg,
			struct channel **ch)
{
	char portbuf[NET_PORTLEN], line[PROTO_TOKEN_HEX + 2];
	int fd, gai = 0;

	*ch = NULL;
	snprintf(portbuf, sizeof portbuf, "%d", msg->port);
	/* The pool's guard accepts our control connection's address only: use the same pair. */
	fd = connector_connect(m->peer_ip, portbuf, m->local_ip, m->o->reply_ms, &gai);
	if (fd < 0) {
		err_warn("%s: connect to %s port %s: %s", j->name, m->o->host, portbuf,
			 net_strerror(gai));
		return -1;
	}
	j->hs = !m->o->plain && relayed(m);
	if (!m->o->plain && !(*ch = data_channel(m, j, fd, !j->hs))) {
		j->hs = 0;
		close(fd);
		return -1;
	}
	if (j->hs) {
		snprintf(j->token, sizeof j->token, "%s\n", msg->arg[2]);
		return fd;
	}
	snprintf(line, sizeof line, "%s\n", msg->arg[2]);
	if (wire_write_all(fd, *ch, line, strlen(line)) < 0) {
		err_warn("%s: sending the token:", j->name);
		channel_free(*ch);
		*ch = NULL;
		close(fd);
		return -1;
	}
	return fd;
}

/* A relay child's fault, on stderr or in -L. */
static void say_fault(const struct pump_fault *f, void *arg)
{
	char why[512];

	(void)arg;
	err_warn("%s", pump_fault_text(f, why, sizeof why));
}

/*
 * -x, -c: a relay child talks to the service over fd: -x runs the client
 * portion with pipes (so it can end its upload while it reads the result:
 * our FIN follows its output's end), -c relays our own stdin and stdout.
 * The child ends as the client portion did.
 */
static void start_call(struct master *m, struct job *j, int fd, struct channel *ch)
{
	char env_host[300], env_port[32], env_name[80], cmd[PROTO_NAME_MAX + 3];
	char *set[] = {env_host, env_port, env_name, NULL};
	struct spawn_env env = {set, NULL, 0};
	struct relay r = {.on_fault = say_fault};
	pid_t pid = fork();

	/* Version 3: the relay speaks the channel the token went in; the psk only says so. */
	r.ch = ch;
	r.psk = ch ? m->psk : NULL;
	r.initiator = 1;
	if (pid < 0) {
		err_warn("%s: cannot start: fork:", j->file);
		channel_free(ch);
		close(fd);
		m->failed = 1;
		j->state = J_DONE;
		j->ended = 1;
		j->remote = -1;
		return;
	}
	if (pid == 0) {
		setpgid(0, 0);
		/* Nothing of the master's but this connection: not the pool's, not the others'. */
		if (m->ctl >= 0)
			close(m->ctl);
		channel_free(m->ch); /* its keys: the pool's session is not this child's */
		m->ch = NULL;
		linger_free(&m->linger);
		/* The client portion's diagnostics go where ours do (-L). */
		if (m->errfd >= 0 && dup2(m->errfd, STDERR_FILENO) < 0)
			_exit(EXIT_RUNTIME);
		snprintf(env_host, sizeof env_host, "POOL_HOST=%s", m->o->host);
		snprintf(env_port, sizeof env_port, "POOL_PORT=%s", m->o->port);
		snprintf(env_name, sizeof env_name, "SERVICE_NAME=%s", j->name);
		if (m->o->services == 1) {
			snprintf(cmd, sizeof cmd, "./%s", j->file);
			r.program = cmd;
			r.halfclose = 1;
			if (fchdir(m->ddirfd) < 0)
				_exit(EXIT_RUNTIME);
		}
		_exit(pump_child(&r, fd, &env));
	}
	setpgid(pid, pid);
	channel_free(ch); /* our copy: the relay's is the one in use */
	close(fd);
	j->pid = pid;
	j->state = J_RUNNING;
	m->running++;
	m->started++;
}

/* Start the daemon: its stdout is the connection (fd), or (relayed) a pipe to us. */
static void start(struct master *m, struct job *j, int fd, struct channel *ch)
{
	char env_host[300], env_port[32], env_name[80];
	char *set[] = {env_host, env_port, env_name, NULL};
	struct spawn_env env = {set, NULL, 0};
	char cmd[PROTO_NAME_MAX + 3];
	int pipefd[2] = {-1, -1}, out = fd;
	pid_t pid;

	if (relayed(m)) {
		if (io_pipe(pipefd) < 0) {
			err_warn("%s: cannot start: pipe:", j->file);
			goto fail;
		}
		out = pipefd[1];
	}
	snprintf(env_host, sizeof env_host, "POOL_HOST=%s", m->o->host);
	snprintf(env_port, sizeof env_port, "POOL_PORT=%s", m->o->port);
	snprintf(env_name, sizeof env_name, "DAEMON_NAME=%s", j->name);
	snprintf(cmd, sizeof cmd, "./%s", j->file);
	/* cwd DDIR for the child only; we are single-threaded, so switch and come back. */
	if (fchdir(m->ddirfd) < 0) {
		err_warn("%s: cd %s:", j->file, m->o->ddir);
		goto fail;
	}
	/* Not waiting for the exec here lets many daemons start at once. */
	pid = spawn_start(&(struct spawn){.command = cmd,
					  .fd = {-1, out, m->errfd >= 0 ? m->errfd : STDERR_FILENO},
					  .env = &env,
					  .flags = SPAWN_NEWPGRP | SPAWN_PDEATHSIG},
			  &j->execfd);
	if (fchdir(m->cwdfd) < 0)
		err_warn("cd back:");
	if (pid < 0) {
		err_warn("%s: cannot start:", j->file);
		goto fail;
	}
	if (relayed(m)) {
		close(pipefd[1]);
		j->out = pipefd[0];
		io_set_nonblock(j->out, 1);
		j->sock = fd;
		j->ch = ch;
		j->tok = ch ? PROTO_TOKEN_HEX + 1 : 0;
		j->cbase = j->base;
		j->csent = 0;
		j->acks = 0;
		j->acked_n = 0;
		j->ack_have = 0;
	} else {
		close(fd);
	}
	j->pid = pid;
	j->state = J_STARTING;
	m->running++;
	m->started++;
	return;
fail:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	channel_free(ch);
	j->hs = 0;
	mem_wipe(j->token, sizeof j->token);
	close(fd);
	m->failed = 1;
	j->state = J_DONE;
	j->ended = 1;
}

/*
 * Where the stream may be dropped up to, once the pool's TCP has
 * acknowledged up to pos: the end of the last line there (the pool takes
 * whole lines, and pieces of LINE_PIECE bytes of longer ones), or all of
 * it once our end of stream was acknowledged.
 */
static unsigned long long line_end(const struct job *j, unsigned long long pos)
{
	size_t n, k = (size_t)(pos - j->base);
	const char *p = queue_unsent(&j->q, &n) - j->q.sent, *nl;
	unsigned long long piece;

	nl = k ? memrchr(p, '\n', k) : NULL;
	if (nl)
		return j->base + (unsigned long long)(nl + 1 - p);
	piece = j->line + (pos - j->line) / LINE_PIECE * LINE_PIECE;
	return piece > j->base ? piece : j->base;
}

/* What the pool's TCP acknowledged, and so what we may forget. */
static void relay_acked(struct job *j)
{
	unsigned long long pos, to;
	long long acked;

	if (j->sock < 0 || j->hs)
		return;
	if (j->ch && j->acks) {
		acked = (long long)j->acked_n;
	} else if (j->ch) {
		/* The token line came first on this connection: it is no part of the stream. */
		if ((acked = channel_tcp_acked(j->ch)) < 0)
			return;
		acked = acked > (long long)j->tok ? acked - (long long)j->tok : 0;
	} else if ((acked = queue_tcp_acked(j->sock, j->csent)) < 0) {
		return;
	}
	pos = j->cbase + (unsigned long long)acked;
	to = j->shut && (unsigned long long)acked == j->csent ? j->base + j->q.sent
							      : line_end(j, pos);
	if (to > j->base) {
		size_t n;
		const char *p = queue_unsent(&j->q, &n) - j->q.sent;

		if (memrchr(p, '\n', (size_t)(to - j->base)))
			j->line = to;
		queue_ack(&j->q, (size_t)(to - j->base));
		j->base = to;
	}
}

/*
 * The data connection broke: with -r, what the pool did not surely take
 * is sent again, after a new grant; without, the stream has failed, and
 * its daemon's next write fails too.
 */
static void relay_lost(struct master *m, struct job *j, int err)
{
	const char *why;

	relay_acked(j);
	err = err ? err : EPIPE;
	why = j->hs	     ? channel_strerror(err, 1)
	      : err == EPIPE ? "the pool closed it"
	      : j->ch	     ? channel_strerror(err, 0)
			     : strerror(err);
	j->hs = 0;
	mem_wipe(j->token, sizeof j->token);
	channel_free(j->ch);
	j->ch = NULL;
	close(j->sock);
	j->sock = -1;
	j->full = 0;
	j->shut = 0;
	if (m->o->resume) {
		err_warn("%s: data connection lost: %s; %zu byte(s) to send again", j->name, why,
			 j->q.len);
		queue_rewind(&j->q); /* the loop asks for a new port: wants_port */
		return;
	}
	err_warn("%s: data connection lost: %s; %zu byte(s) not delivered", j->name, why,
		 j->q.len);
	m->failed = 1;
	j->ended = 1;
	queue_free(&j->q);
	memset(&j->q, 0, sizeof j->q);
	if (j->out >= 0)
		close(j->out);
	j->out = -1;
	if (j->pid == 0 && j->state != J_STARTING)
		j->state = J_DONE;
}

/* Counts of what the pool took (8 bytes big-endian each), as far as they came. */
static void take_counts(struct job *j, const unsigned char *p, size_t n)
{
	while (n) {
		size_t k = sizeof j->ack - j->ack_have;
		unsigned long long v = 0;

		if (k > n)
			k = n;
		memcpy(j->ack + j->ack_have, p, k);
		j->ack_have += k;
		p += k;
		n -= k;
		if (j->ack_have < sizeof j->ack)
			return;
		for (size_t i = 0; i < sizeof j->ack; i++)
			v = v << 8 | j->ack[i];
		j->ack_have = 0;
		/* More than was sent on this connection is not the pool's to say. */
		if (v > j->csent)
			v = j->csent;
		if (v > j->acked_n)
			j->acked_n = v;
	}
}

/*
 * The pool's side of a data connection: its counts, and its end. Returns 0,
 * 1 when its END record says it took our stream to our END, or an errno
 * value: it takes no more (EPIPE: it closed, or ended first).
 */
static int relay_peer(struct job *j)
{
	unsigned char buf[512];
	ssize_t r = 0;

	/* Bounded: the pool sends counts, a few bytes now and then; the rest waits for the next poll. */
	for (int rounds = 0; rounds < 16; rounds++) {
		r = j->ch ? channel_read(j->ch, buf, sizeof buf)
			  : recv(j->sock, buf, sizeof buf, MSG_DONTWAIT);
		if (r <= 0)
			break;
		if (j->acks)
			take_counts(j, buf, (size_t)r);
	}
	if (r == 0 && j->ch && j->shut)
		return 1;
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		return r < 0 ? errno : EPIPE;
	return 0;
}

/*
 * Version 3: the data connection's handshake went on. Returns 1 once it is
 * done and the token line is sealed (the stream may follow), 0 while it
 * waits, or -1 with errno.
 */
static int hs_done(struct job *j)
{
	size_t n = strlen(j->token);
	int r = channel_handshake(j->ch, io_now_ms());

	if (r <= 0)
		return r;
	/* A fresh channel takes a line whole; it goes out with the stream's first bytes. */
	if (channel_write(j->ch, j->token, n) != (ssize_t)n)
		return -1;
	j->acks = channel_peer_said(j->ch, CHANNEL_ACKS);
	mem_wipe(j->token, sizeof j->token);
	j->hs = 0;
	return 1;
}

/* Our end of the stream: the END record (version 3), then the FIN. 1 once out, 0 not yet, -1 errno. */
static int relay_end(struct job *j)
{
	if (!j->ch)
		return shutdown(j->sock, SHUT_WR) < 0 && errno != ENOTCONN ? -1 : 1;
	if (channel_shutdown(j->ch) == 0)
		return 1;
	if (errno != EAGAIN)
		return -1;
	j->full = 1;
	return 0;
}

/* Move the daemon's output on: pipe to queue, queue to the pool; end the stream when done. */
static void relay(struct master *m, struct job *j, short out_rev, short sock_rev)
{
	if (out_rev && j->out >= 0) {
		for (int rounds = 0; rounds < 16 && queue_pending(&j->q) < JOB_QUEUE; rounds++) {
			char *t = queue_tail(&j->q, 65536);
			ssize_t r = t ? io_read(j->out, t, 65536) : -1;

			if (r > 0) {
				queue_commit(&j->q, (size_t)r);
				continue;
			}
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(j->out); /* the daemon's output ended: the stream is complete */
				j->out = -1;
			}
			break;
		}
	}
	if (j->sock < 0)
		return;
	if (j->hs) {
		int r = hs_done(j);

		if (r < 0)
			relay_lost(m, j, errno);
		if (r <= 0)
			return;
		sock_rev = 0; /* what woke us was the handshake's */
	}
	if (sock_rev & POLLIN) {
		int err = relay_peer(j);

		if (err == 1) {
			/* All of it is in the pool's hands: nothing to keep. */
			j->base += j->q.len;
			queue_ack(&j->q, j->q.len);
			sock_rev = 0; /* its close after the END is no loss */
		} else if (err) {
			relay_lost(m, j, err); /* the pool is ending: it takes no more */
			return;
		}
	}
	if (sock_rev & (POLLERR | POLLHUP)) {
		int err = 0;
		socklen_t len = sizeof err;

		getsockopt(j->sock, SOL_SOCKET, SO_ERROR, &err, &len);
		relay_lost(m, j, err);
		return;
	}
	if (sock_rev & POLLOUT)
		j->full = 0;
	if (queue_pending(&j->q) || (j->ch && channel_unsent(j->ch))) {
		long long w = wire_write(&j->q, j->sock, j->ch, QUEUE_SOCKET | QUEUE_RETAIN, &j->full);

		if (w < 0) {
			relay_lost(m, j, errno);
			return;
		}
		j->csent += (unsigned long long)w;
	}
	if (j->out < 0 && !queue_pending(&j->q) && !j->shut) {
		int r = relay_end(j);

		if (r < 0) {
			relay_lost(m, j, errno);
			return;
		}
		j->shut = r;
	}
	relay_acked(j);
	if (j->shut && j->q.len == 0) {
		channel_free(j->ch);
		j->ch = NULL;
		linger_add(&m->linger, j->sock, DATA_LINGER_MS);
		j->sock = -1;
		j->ended = 1;
		if (j->pid == 0 && j->state != J_STARTING)
			j->state = J_DONE;
	}
}

/*
 * What a relayed stream's data connection waits for: its handshake, or
 * room for what is to be sent; always POLLIN, since the pool's FIN on a
 * data connection says it takes no more.
 */
static short sock_events(const struct job *j)
{
	if (j->hs)
		return POLLIN | channel_events(j->ch);
	return POLLIN | (queue_pending(&j->q) || j->full || (j->ch && channel_unsent(j->ch))
				 ? POLLOUT
				 : 0);
}

/*
 * Teardown without -r: the daemons have ended, so each relayed stream is
 * whole once its pipe is read to its end. Send it and its END within the
 * -g bound, rather than cut off what a daemon wrote last (with -r a cut
 * stream is the one a later master resumes).
 */
static void drain_streams(struct master *m)
{
	long long by = io_now_ms() + m->o->grace_ms;
	struct pollfd *pfd = calloc(2 * m->nd + 1, sizeof *pfd);
	size_t *at = calloc(m->nd + 1, sizeof *at);

	while (pfd && at && io_now_ms() < by) {
		size_t n = 0, live = 0;

		for (size_t i = 0; i < m->nd; i++) {
			struct job *j = &m->d[i];

			at[i] = n;
			/* Once our END is out the stream is whole: its acknowledgement is not awaited. */
			if (j->sock < 0 || j->shut || j->state == J_STARTING)
				continue;
			live++;
			pfd[n++] = (struct pollfd){
				.fd = j->out, .events = j->out >= 0 && queue_pending(&j->q) < JOB_QUEUE
								? POLLIN
								: 0};
			pfd[n++] = (struct pollfd){.fd = j->sock, .events = sock_events(j)};
		}
		if (!live)
			break;
		if (poll(pfd, n, (int)(by - io_now_ms() > 0 ? by - io_now_ms() : 0)) < 0 &&
		    errno != EINTR)
			break;
		for (size_t i = 0; i < m->nd; i++) {
			struct job *j = &m->d[i];

			if (j->sock >= 0 && !j->shut && j->state != J_STARTING)
				relay(m, j, pfd[at[i]].revents, pfd[at[i] + 1].revents);
		}
	}
	free(pfd);
	free(at);
}

/*
 * A grant for a stream we hold (-r, after a break): line up with what the
 * pool has of it, then send the rest from there.
 */
static void resume(struct master *m, struct job *j, const struct proto_msg *msg)
{
	long long taken = msg->offset;
	struct channel *ch;
	int fd;

	if (taken >= 0 && (unsigned long long)taken < j->base)
		err_warn("%s: the pool has lost %llu byte(s) of this stream", j->name,
			 j->base - (unsigned long long)taken);
	else if (taken >= 0 && (unsigned long long)taken > j->base) {
		size_t drop = (size_t)((unsigned long long)taken - j->base);

		queue_consume(&j->q, drop < j->q.len ? drop : j->q.len);
		j->base = (unsigned long long)taken;
		j->line = j->base; /* the pool's count ends at a line or a piece */
	}
	if ((fd = data_connect(m, j, msg, &ch)) < 0) {
		j->retry_at = io_now_ms() + CONNECTOR_BACKOFF_MIN_MS * 10;
		return;
	}
	io_set_nonblock(fd, 1);
	queue_rewind(&j->q);
	j->sock = fd;
	j->ch = ch;
	j->tok = ch ? PROTO_TOKEN_HEX + 1 : 0;
	j->cbase = j->base;
	j->csent = 0;
	j->acks = 0;
	j->acked_n = 0;
	j->ack_have = 0;
	j->shut = 0;
	err_warn("%s: resumed at byte %llu of its stream", j->name, j->base);
}

/* ---- the control connection ---- */

/* Send "WORD ARGS" as one line. */
static void send_line(struct master *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctl_lost(struct master *m, const char *why);

static void send_line(struct master *m, const char *fmt, ...)
{
	char line[PROTO_LINE_MAX];
	va_list ap;
	ssize_t n;

	va_start(ap, fmt);
	n = proto_vline(line, fmt, ap);
	va_end(ap);
	if (n < 0 || wire_write_all(m->ctl, m->ch, line, (size_t)n) < 0)
		ctl_lost(m, m->ch ? channel_strerror(errno, 0) : strerror(errno));
}

/* A job that must ask (again) for a port now. */
static int wants_port(const struct master *m, const struct job *j, long long now)
{
	if (j->inflight)
		return 0;
	if (j->state == J_WAITING)
		return 1;
	return m->o->resume && !j->ended && !j->unstarted && j->sock < 0 && j->state != J_ASKED &&
	       j->state != J_STARTING && now >= j->retry_at;
}

/* Keep WINDOW requests in flight; END once every stream has what it needs. */
static void ask(struct master *m)
{
	long long now = io_now_ms();
	int all_answered = 1;

	for (size_t i = 0; i < m->nd && m->state == C_RUN; i++) {
		struct job *j = &m->d[i];

		if (j->state == J_WAITING)
			all_answered = 0;
		if (m->asked - m->answered >= WINDOW || !wants_port(m, j, now))
			continue;
		j->state = j->state == J_WAITING ? J_ASKED : j->state;
		m->ask[m->asked++ % WINDOW] = i;
		if (m->o->services)
			send_line(m, "CALL %s %s", j->name, j->stream);
		else if (j->pid > 0 || j->q.len || j->base)
			send_line(m, "PORT %s %s %llu", j->name, j->stream, j->base);
		else
			send_line(m, "PORT %s %s %s", j->name, j->stream, m->o->resume ? "0" : "-");
		j->inflight = 1;
	}
	if (m->asked > m->answered)
		m->reply_by = now + m->o->reply_ms;
	if (m->state != C_RUN || m->asked > m->answered || !all_answered)
		return;
	if (m->nd == 0) {
		err_warn("%s: no daemons", m->o->ddir);
		m->failed = 1;
	}
	ready(m);
	/* -r: END waits until no stream needs a port any more. */
	for (size_t i = 0; m->o->resume && i < m->nd; i++)
		if (!stream_over(m, &m->d[i]))
			return;
	if (!m->sent_end) {
		send_line(m, "END");
		m->sent_end = 1;
		m->state = C_ENDED;
	}
}

/* An answer for the oldest request in flight. */
static void answer(struct master *m, const struct proto_msg *msg)
{
	struct job *j = &m->d[m->ask[m->answered++ % WINDOW]];
	int resuming = j->pid > 0 || j->state == J_RUNNING || j->state == J_STARTING;
	char text[PROTO_LINE_MAX];
	struct channel *ch;
	int fd;

	j->retry_at = 0;
	j->inflight = 0;
	if (msg->cmd == PROTO_FAIL) {
		snprintf(text, sizeof text, "%s", msg->text);
		if (resuming) {
			/* A once buffer still being read: ask again in a while. */
			err_warn("%s: the pool refused to resume it: %s; asking again", j->name, text);
			j->retry_at = io_now_ms() + 1000;
		} else {
			if (m->o->services)
				err_warn("%s: the pool refused the call: %s", j->name, text);
			else
				err_warn("%s: the pool refused a port: %s", j->name, text);
			j->state = J_DONE;
			j->ended = 1;
			j->remote = -1;
			m->failed = 1;
		}
		return;
	}
	if (resuming) {
		resume(m, j, msg);
		return;
	}
	if (m->o->resume && msg->offset > 0) {
		/* A stream the pool already has part of can only be a resumed one: not ours. */
		j->base = 0;
	}
	fd = data_connect(m, j, msg, &ch);
	if (fd < 0) {
		m->failed = 1;
		j->state = J_DONE;
		j->ended = 1;
		return;
	}
	if (relayed(m))
		io_set_nonblock(fd, 1);
	if (m->o->services)
		start_call(m, j, fd, ch);
	else
		start(m, j, fd, ch);
}

/* EXIT: how the pool's side of a call ended; its failure is ours (one line). */
static void remote_exit(struct master *m, const struct proto_msg *msg)
{
	for (size_t i = 0; i < m->nd; i++) {
		struct job *j = &m->d[i];

		if (strcmp(j->name, msg->arg[0]) != 0 || strcmp(j->stream, msg->arg[1]) != 0)
			continue;
		j->remote = msg->status;
		if (msg->status == 0)
			return;
		m->failed = 1;
		if (msg->status < 0)
			err_warn("%s: remote did not run: %s", j->name, msg->text);
		else if (*msg->text)
			err_warn("%s: remote exited %d (%s)", j->name, msg->status, msg->text);
		else
			err_warn("%s: remote exited %d", j->name, msg->status);
		return;
	}
}

/* The pool's version must be ours: plain text (version 2) only where both sides say -U. */
static void version_check(struct master *m, const struct proto_msg *msg)
{
	const char *h = m->o->host, *pt = m->o->port;

	if (msg->version == PROTO_VERSION_PLAIN && !m->o->plain)
		err_warn("the pool at %s %s speaks protocol version 2, in plain text (pool -U): "
			 "this master encrypts; give -U to both sides to allow plain text", h, pt);
	else if (msg->version == PROTO_VERSION && m->o->plain)
		err_warn("the pool at %s %s speaks protocol version 3, encrypted: this master "
			 "was given -U (plain text); give -U to both sides or to neither", h, pt);
	else if (msg->version != (m->o->plain ? PROTO_VERSION_PLAIN : PROTO_VERSION))
		err_warn("the pool speaks protocol version %ld, this master version %d",
			 msg->version, m->o->plain ? PROTO_VERSION_PLAIN : PROTO_VERSION);
	else if (!m->o->plain && strcmp(msg->arg[1], WIRE_NOISE) != 0)
		err_warn("the pool at %s %s greets with an unknown channel: %s", h, pt, msg->arg[1]);
	else
		return;
	finish(m, EXIT_RUNTIME);
}

/* Version 3: greeted; the handshake begins (our first message), under the greeting's words. */
static void greeted(struct master *m)
{
	char line[PROTO_LINE_MAX];

	/* proto_parse cut the words apart: put the greeting together again. */
	snprintf(line, sizeof line, "SOCKETPOOL %d %s", PROTO_VERSION, WIRE_NOISE);
	m->ch = wire_control(m->ctl, 1, m->psk, line, io_now_ms());
	if (!m->ch) {
		err_warn("no channel:");
		finish(m, EXIT_RUNTIME);
	}
	m->in.len = 0; /* the pool sends nothing more before our first message */
	m->state = C_HS;
	m->reply_by = io_now_ms() + m->o->reply_ms;
	/* A pool slowing guessers may judge us late: -t is how long we wait, as in version 2. */
	channel_set_deadline(m->ch, m->reply_by);
}

/*
 * Version 3: the handshake went on. Returns 1 once it is done (the
 * session begins), 0 while it waits; a failure ends the run, or (-r, a
 * pool we reached before) the connection.
 */
static int hs_step(struct master *m)
{
	int r = channel_handshake(m->ch, io_now_ms()), err = errno;

	if (r == 0)
		return 0;
	if (r < 0) {
		/* A pool that cannot open our first message closes: the only answer it gives. */
		if (err == ECONNRESET)
			err_warn("the pool at %s %s rejected the key (it closed the handshake)",
				 m->o->host, m->o->port);
		else
			err_warn("the pool at %s %s: %s", m->o->host, m->o->port,
				 channel_strerror(err, 1));
		if (err == EBADMSG || err == EPROTO || !m->o->resume || !m->ready)
			finish(m, EXIT_RUNTIME);
		ctl_lost(m, channel_strerror(err, 1));
		return 0;
	}
	m->state = C_RUN;
	m->reply_by = 0;
	m->asked = m->answered = 0;
	ask(m);
	return 1;
}

static void handle(struct master *m, char *line)
{
	struct proto_msg msg;

	/*
	 * The greeting is matched exactly (its words go into the channel's
	 * prologue): no CR, no other spelling. A busy pool says ERR instead.
	 */
	if (m->state == C_HELLO && (m->in.cr || proto_parse(line, &msg) < 0 ||
				    (msg.cmd != PROTO_HELLO && msg.cmd != PROTO_ERR))) {
		err_warn("the pool at %s %s sent a malformed greeting (not a socketpool pool?)",
			 m->o->host, m->o->port);
		finish(m, EXIT_RUNTIME);
	}
	if (m->state != C_HELLO && proto_parse(line, &msg) < 0) {
		err_warn("the pool sent a line this master cannot read");
		finish(m, EXIT_RUNTIME);
	}
	if (msg.cmd == PROTO_ERR) {
		if (m->state == C_AUTH)
			err_warn("the pool at %s %s rejected the key", m->o->host, m->o->port);
		else
			err_warn("the pool ended the session: %s%s", msg.text,
				 m->running && !m->o->resume ? "; ending the daemons" : "");
		if (m->state == C_AUTH || !m->o->resume)
			finish(m, EXIT_RUNTIME);
		ctl_lost(m, msg.text);
		return;
	}
	switch (m->state) {
	case C_HELLO:
		if (msg.cmd != PROTO_HELLO)
			break;
		version_check(m, &msg);
		if (!m->o->plain) {
			greeted(m);
			return;
		}
		snprintf(m->nonce_p, sizeof m->nonce_p, "%s", msg.arg[1]);
		if (proto_random_hex(m->nonce_m, PROTO_NONCE_HEX / 2) < 0) {
			err_warn("no random nonce:");
			finish(m, EXIT_RUNTIME);
		}
		{
			char mac[PROTO_MAC_HEX + 1];
			proto_mac(m->o->key, m->o->keylen, PROTO_MASTER, m->nonce_p, m->nonce_m, mac);
			send_line(m, "AUTH %s %s", mac, m->nonce_m);
			mem_wipe(mac, sizeof mac);
		}
		m->state = C_AUTH;
		m->reply_by = io_now_ms() + m->o->reply_ms;
		return;
	case C_AUTH:
		if (msg.cmd != PROTO_OK)
			break;
		/* Nothing goes to a pool that has not shown it knows the key too. */
		if (!proto_mac_ok(m->o->key, m->o->keylen, PROTO_POOL, m->nonce_p, m->nonce_m,
				  msg.arg[0])) {
			err_warn("the pool at %s %s does not prove the key; not trusting it",
				 m->o->host, m->o->port);
			finish(m, EXIT_RUNTIME);
		}
		m->state = C_RUN;
		m->reply_by = 0;
		m->asked = m->answered = 0;
		ask(m);
		return;
	case C_RUN:
	case C_ENDED:
		if (msg.cmd == PROTO_BYE && m->state == C_ENDED) {
			m->bye = 1;
			return;
		}
		if (msg.cmd == PROTO_EXIT && m->o->services) {
			remote_exit(m, &msg);
			return;
		}
		if ((msg.cmd != PROTO_GRANT && msg.cmd != PROTO_FAIL) || m->answered >= m->asked ||
		    strcmp(msg.arg[0], m->d[m->ask[m->answered % WINDOW]].name) != 0)
			break;
		answer(m, &msg);
		m->reply_by = m->asked > m->answered ? io_now_ms() + m->o->reply_ms : 0;
		ask(m);
		return;
	default:
		break;
	}
	err_warn("the pool sent an unexpected %s", line);
	finish(m, EXIT_RUNTIME);
}

/* Every stream is delivered (or needs nothing), every service said how it ended. */
static int all_over(const struct master *m)
{
	for (size_t i = 0; i < m->nd; i++)
		if (!stream_over(m, &m->d[i]) || m->d[i].state == J_WAITING ||
		    (m->o->services && m->d[i].remote == -2))
			return 0;
	return 1;
}

/*
 * The control connection is gone. Without -r that ends the run (once the
 * daemons' work is done, it is only the pool saying goodbye); with -r the
 * daemons go on and we connect again.
 */
static void ctl_lost(struct master *m, const char *why)
{
	if (m->ctl >= 0)
		close(m->ctl);
	m->ctl = -1;
	channel_free(m->ch);
	m->ch = NULL;
	m->in.len = 0;
	m->reply_by = 0;
	if (m->state == C_ENDED && (m->bye || m->running == 0) && all_over(m))
		return; /* the session was over anyway */
	for (size_t i = 0; m->o->services && i < m->nd; i++)
		if (m->d[i].remote == -2 && m->d[i].state != J_WAITING) {
			err_warn("%s: the pool went away before saying how the service ended",
				 m->d[i].name);
			m->d[i].remote = -1;
			m->failed = 1;
		}
	if (!m->o->resume) {
		err_warn("the pool closed the connection%s%s%s", *why ? ": " : "", why,
			 m->running ? "; ending the daemons" : "");
		finish(m, EXIT_RUNTIME);
	}
	err_warn("lost the pool (%s); the daemons go on, connecting again", *why ? why : "closed");
	/* Requests in flight are answered by nobody now: they are asked again. */
	for (size_t k = m->answered; k < m->asked; k++) {
		struct job *j = &m->d[m->ask[k % WINDOW]];

		j->retry_at = 0;
		j->inflight = 0;
		if (j->state == J_ASKED && j->pid == 0)
			j->state = J_WAITING;
	}
	m->asked = m->answered = 0;
	m->state = C_DOWN;
	m->sent_end = 0;
	connector_lost(&m->conn, io_now_ms());
}

/* The control connection has something: lines, or its end. */
static void from_pool(struct master *m)
{
	char line[PROTO_LINE_MAX];

	if (m->state == C_HS && !hs_step(m))
		return;
	/* Until the socket is empty: a record's plaintext may wait unseen by poll. */
	for (;;) {
		struct channel *ch = m->state == C_HELLO ? NULL : m->ch;
		ssize_t r = wire_fill(&m->in, m->ctl, ch);
		int got;

		if (r < 0 && errno == EAGAIN)
			return;
		while ((got = proto_next(&m->in, line)) == 1) {
			handle(m, line);
			if (m->ctl < 0)
				return;
			if (m->state == C_HS) /* greeted: what follows is the handshake's */
				return;
		}
		if (got < 0) {
			err_warn("the pool sent a malformed line");
			finish(m, EXIT_RUNTIME);
		}
		if (r > 0)
			continue;
		/* A pool that dies closes without its END: that is only its going away. */
		ctl_lost(m, r == 0 || (ch && errno == EPIPE) ? ""
			    : ch			     ? channel_strerror(errno, 0)
							     : strerror(errno));
		return;
	}
}

/* The control connection is made: greet and be greeted. */
static void ctl_up(struct master *m, int fd)
{
	char port[NET_PORTLEN];

	m->ctl = fd;
	io_set_nonblock(fd, 1);
	if (net_name(m->ctl, 1, m->peer_ip, port) < 0 || net_name(m->ctl, 0, m->local_ip, port) < 0) {
		ctl_lost(m, strerror(errno));
		return;
	}
	m->state = C_HELLO;
	m->reply_by = io_now_ms() + m->o->reply_ms;
}

/* Connecting: a round failed. Before the pool was ever reached that may end the run. */
static void connect_failed(struct master *m, int gai)
{
	long long now = io_now_ms();

	/* -w: the pool may be late at first; -r: once it was reached, it may come back. */
	if (gai || (now >= m->wait_by && !(m->o->resume && m->ready))) {
		err_warn("connect to %s %s: %s", m->o->host, m->o->port, net_strerror(gai));
		finish(m, EXIT_RUNTIME);
	}
}

static void connect_step(struct master *m, short revents)
{
	int r = connector_step(&m->conn, revents, io_now_ms());

	if (r == 1)
		ctl_up(m, connector_take(&m->conn));
	else if (r < 0)
		connect_failed(m, 0);
}

/* ---- the loop ---- */

static void loop(struct master *m)
{
	/* The self-pipe, the pool; per daemon its exec pipe, or its output and connection; lingering ends. */
	size_t cap = 3 * m->nd + 4;
	struct pollfd *pfd = calloc(cap, sizeof *pfd);
	size_t *slot = calloc(m->nd + 1, sizeof *slot);

	if (!pfd || !slot)
		err_die(EXIT_RUNTIME, "poll set:");
	for (;;) {
		size_t n = 0, nlin;
		int chld = 0, sig, status, ctl_at = -1;
		long long now = io_now_ms(), at = -1;
		pid_t pid;

		/* Done: every stream delivered, the pool told (END), or (-r) no pool to tell now. */
		if (m->running == 0 && all_over(m) && m->linger.n == 0 &&
		    (m->sent_end || (m->o->resume && m->state == C_DOWN))) {
			free(pfd);
			free(slot);
			finish(m, m->failed ? EXIT_RUNTIME : 0);
		}
		if (m->state == C_DOWN && now >= m->conn.retry_at)
			m->state = C_CONNECTING;
		pfd[n++] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
		if (m->ctl >= 0) {
			ctl_at = (int)n;
			pfd[n++] = (struct pollfd){
				.fd = m->ctl, .events = POLLIN | (m->ch ? channel_events(m->ch) : 0)};
		} else if (m->state == C_CONNECTING && connector_pollfd(&m->conn, &pfd[n])) {
			ctl_at = (int)n++;
		}
		if (m->state == C_DOWN || (m->state == C_CONNECTING && ctl_at < 0))
			at = deadline_earlier(at, now + connector_timeout(&m->conn, now) + 1);
		at = deadline_earlier(at, m->reply_by ? m->reply_by : -1);
		if (m->state == C_HS && m->ch)
			at = deadline_earlier(at, deadline_in(channel_timeout(m->ch, now), now));
		at = deadline_earlier(at, m->run_by ? m->run_by : -1);
		for (size_t i = 0; i < m->nd; i++) {
			struct job *j = &m->d[i];

			slot[i] = (size_t)-1;
			if (j->state == J_STARTING) {
				slot[i] = n;
				pfd[n++] = (struct pollfd){.fd = j->execfd, .events = POLLIN};
				continue;
			}
			if (j->out >= 0 && queue_pending(&j->q) < JOB_QUEUE)
				pfd[n++] = (struct pollfd){.fd = j->out, .events = POLLIN};
			if (j->sock >= 0)
				pfd[n++] = (struct pollfd){.fd = j->sock, .events = sock_events(j)};
			if (j->sock >= 0 && j->hs)
				at = deadline_earlier(at, deadline_in(channel_timeout(j->ch, now), now));
			if (j->sock >= 0 && j->q.sent)
				at = deadline_earlier(at, now + 50); /* acknowledgements free memory */
			if (j->retry_at > 0)
				at = deadline_earlier(at, j->retry_at);
		}
		nlin = linger_pollfds(&m->linger, pfd + n);
		n += nlin;
		at = deadline_earlier(at, deadline_in(linger_timeout(&m->linger, now), now));
		if (poll(pfd, n, deadline_timeout(at, now)) < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "poll:");
		now = io_now_ms();
		if (pfd[0].revents && (sig = sig_drain(&chld)) != 0) {
			err_warn("signal %d: ending %zu daemon(s)", sig, m->running);
			free(pfd);
			free(slot);
			finish(m, EXIT_SIGNAL(sig));
		}
		if (m->run_by && now >= m->run_by) {
			err_warn("deadline: %ld s are up; ending %zu daemon(s)", m->o->run_ms / 1000,
				 m->running);
			free(pfd);
			free(slot);
			finish(m, EXIT_RUNTIME);
		}
		if (m->reply_by && now >= m->reply_by) {
			m->reply_by = 0;
			err_warn("the pool at %s %s did not answer within %ld ms", m->o->host,
				 m->o->port, m->o->reply_ms);
			if (!m->o->resume)
				finish(m, EXIT_RUNTIME);
			ctl_lost(m, "no answer in time");
		}
		/* Job descriptors, in the order they went into the set. */
		for (size_t i = 0, k = 1 + (ctl_at >= 0); i < m->nd; i++) {
			struct job *j = &m->d[i];
			short out_rev = 0, sock_rev = 0;

			if (slot[i] != (size_t)-1) {
				if (pfd[slot[i]].revents)
					exec_outcome(m, j);
				k++;
				continue;
			}
			if (j->out >= 0 && queue_pending(&j->q) < JOB_QUEUE && k < n)
				out_rev = pfd[k++].revents;
			if (j->sock >= 0 && k < n)
				sock_rev = pfd[k++].revents;
			if (relayed(m) && (j->out >= 0 || j->sock >= 0 || j->q.len))
				relay(m, j, out_rev, sock_rev);
		}
		while ((pid = proc_reap(&status)) > 0)
			reaped(pid, status, m);
		linger_handle(&m->linger, pfd + n - nlin, nlin, now);
		if (m->ctl >= 0 && ctl_at >= 0 && pfd[ctl_at].revents)
			from_pool(m);
		else if (m->state == C_CONNECTING)
			connect_step(m, ctl_at >= 0 ? pfd[ctl_at].revents : 0);
		if (m->state == C_RUN || m->state == C_ENDED)
			ask(m);
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct master m = {.o = &o, .ctl = -1};
	int gai = 0, kept;

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	m.cwdfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.cwdfd < 0)
		err_die(EXIT_RUNTIME, "current directory:");
	if (noise_psk_from_key(o.key, o.keylen, m.psk) < 0)
		err_die(EXIT_RUNTIME, "the key:");
	if (o.services == 2) {
		call_one(&m);
	} else {
		/* Checked before connecting: a typo should not cost the pool a session. */
		m.ddirfd = open(o.ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (m.ddirfd < 0)
			err_die(EXIT_RUNTIME, "%s:", o.ddir);
		lock_ddir(&o, m.ddirfd);
		list_daemons(&m);
	}
	/* The daemons write to -L from their start: not to a caller (cron's mail) we leave. */
	m.errfd = -1;
	if (o.logfile && (m.errfd = err_open_file(o.logfile)) < 0)
		err_die(EXIT_RUNTIME, "%s: %s", o.logfile, err_file_why(errno));
	if (connector_init(&m.conn, o.host, o.port, NULL, &gai) < 0)
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", o.host, o.port, net_strerror(gai));
	switch (daemon_start(&m.dm, o.background, 0)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: exit(m.dm.status); /* the caller's process: the daemon is ready, or gone */
	}
	/* The PID the caller sees is the keeper's: whatever ends it, no daemon outlives us. */
	m.dm.pid = getpid();
	switch (keeper_start(o.grace_ms, o.background, m.dm.notify_fd, &kept)) {
	case -1: err_die(EXIT_RUNTIME, "fork:");
	case 1: _exit(kept); /* the keeper, once all is over */
	}
	m.sigfd = sig_init(0);
	if (m.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	m.run_by = o.run_ms ? io_now_ms() + o.run_ms : 0;
	m.wait_by = io_now_ms() + o.wait_ms;
	m.state = C_CONNECTING;
	loop(&m);
}
