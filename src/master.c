/*
 * master: push a directory of daemons to a remote pool. Proves it knows
 * KEY without sending it, asks the pool for one guarded port per daemon,
 * and starts each daemon with its stdout connected to that port.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/connector.h"
#include "lib/daemon.h"
#include "lib/err.h"
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/net.h"
#include "lib/opt.h"
#include "lib/proc.h"
#include "lib/proto.h"
#include "lib/sha256.h"
#include "lib/sig.h"

#define WINDOW 32 /* PORT requests in flight: enough to hide the round trips */

static const char usage_text[] =
	"usage: master [-b] [-g SECONDS] [-L FILE] KEY HOST PORT DDIR\n"
	"       master -version | -help\n"
	"\n"
	"  KEY        the pool's key, or @FILE to read it from FILE\n"
	"  HOST PORT  where the pool listens (PORT 1024-49151)\n"
	"  DDIR       directory of the daemons: its executable files\n"
	"  -b         background once the pool accepted the key; print the PID\n"
	"  -g SECONDS at teardown, SIGKILL daemons still alive after SECONDS (default 5)\n"
	"  -L FILE    diagnostics to FILE instead of syslog once backgrounded\n";

static const char synopsis[] = "master [-b] [-g SECONDS] [-L FILE] KEY HOST PORT DDIR";

struct opts {
	int background;
	long grace_ms;
	const char *logfile, *host, *port, *ddir;
	char *key;
	size_t keylen;
};

/* A daemon of DDIR and its run. J_STARTING: forked, its exec's outcome not read yet (execfd). */
enum job_state { J_WAITING, J_ASKED, J_STARTING, J_RUNNING, J_DONE };

struct job {
	char name[PROTO_NAME_MAX + 1];
	enum job_state state;
	pid_t pid;
	int execfd;   /* J_STARTING: proc_spawn_start's pipe */
	int unstarted; /* its exec failed: the 127 it exits with is not news */
};

enum mstate { M_HELLO, M_AUTH, M_RUN, M_ENDED };

struct master {
	const struct opts *o;
	struct daemon dm;
	struct job *d;
	size_t nd, asked, answered, running;
	pid_t *ends; /* room for every daemon's pid, made with the list: teardown allocates nothing */
	int ctl, sigfd, ddirfd, cwdfd;
	enum mstate state;
	int bye;     /* the pool said all our bindings ended */
	int failed;  /* something to exit 1 for */
	int ending;  /* tearing down: the daemons' deaths are ours, not failures */
	char peer_ip[NET_IPLEN], local_ip[NET_IPLEN];
	struct proto_in in;
};

/* ---- options ---- */

static void parse(int argc, char **argv, struct opts *o)
{
	static const char optstring[] = ":bg:hL:V";
	int c;

	o->grace_ms = 5000;
	while ((c = opt_next(argc, argv, optstring, usage_text)) != -1) {
		switch (c) {
		case 'b': o->background = 1; break;
		case 'g': o->grace_ms = opt_ms_or_die(optarg, 1, 3600000L, "-g", synopsis); break;
		case 'L': o->logfile = optarg; break;
		default: opt_bad(argv, optstring, synopsis);
		}
	}
	argv += optind;
	argc -= optind;
	if (argc != 4)
		err_usage(synopsis, argc < 4 ? "missing operand" : "too many operands");
	if (!*argv[1])
		err_usage(synopsis, "empty host");
	opt_port_or_die(argv[2], synopsis);
	if (!*argv[3])
		err_usage(synopsis, "empty daemon directory");
	if (o->logfile && !*o->logfile)
		err_usage(synopsis, "-L: empty file name");
	o->host = argv[1];
	o->port = argv[2];
	o->ddir = argv[3];
	opt_key_or_die(argv[0], &o->key, &o->keylen, synopsis);
}

/* ---- the daemons ---- */

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct job *)a)->name, ((const struct job *)b)->name);
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

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!name_ok(e->d_name))
			why = "not a valid daemon name";
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
		memset(&m->d[m->nd], 0, sizeof m->d[0]);
		memcpy(m->d[m->nd].name, e->d_name, strlen(e->d_name) + 1); /* valid: <= 64 */
		m->nd++;
	}
	closedir(dir);
	if (m->nd)
		qsort(m->d, m->nd, sizeof m->d[0], by_name);
	if (!(m->ends = calloc(m->nd + 1, sizeof *m->ends)))
		err_die(EXIT_RUNTIME, "daemon list:");
}

/* Read whether d's exec happened; a failure is reported here, once. */
static void exec_outcome(struct master *m, struct job *d)
{
	int err = proc_spawn_result(d->execfd);

	d->execfd = -1;
	d->state = J_RUNNING;
	if (err) {
		errno = err;
		err_warn("%s: cannot start:", d->name);
		d->unstarted = 1;
		m->failed = 1;
	}
}

static void reaped(pid_t pid, int status, void *arg)
{
	struct master *m = arg;

	for (size_t i = 0; i < m->nd; i++) {
		struct job *d = &m->d[i];
		int code = proc_status_code(status);

		if (d->pid != pid || (d->state != J_RUNNING && d->state != J_STARTING))
			continue;
		if (d->state == J_STARTING) /* dead, so its pipe has said all it will */
			exec_outcome(m, d);
		d->state = J_DONE;
		m->running--;
		if (code == 0 || m->ending || d->unstarted)
			return;
		m->failed = 1;
		if (code > 128)
			err_warn("%s: killed by signal %d", d->name, code - 128);
		else
			err_warn("%s: exited with status %d", d->name, code);
		return;
	}
}

static _Noreturn void finish(struct master *m, int code)
{
	pid_t *pids = m->ends;
	size_t n = 0;

	m->ending = 1;
	for (size_t i = 0; i < m->nd; i++) {
		if (m->d[i].state == J_STARTING) {
			close(m->d[i].execfd);
			m->d[i].state = J_RUNNING;
		}
		if (m->d[i].state == J_RUNNING)
			pids[n++] = m->d[i].pid;
	}
	if (n)
		proc_end_groups(pids, n, m->o->grace_ms, m->sigfd, reaped, m);
	free(m->ends);
	if (m->ctl >= 0)
		close(m->ctl);
	mem_wipe(m->o->key, m->o->keylen);
	free(m->o->key);
	free(m->d);
	exit(code);
}

/* Connect to the granted port, hand over the token, start the daemon on it. */
static void start(struct master *m, struct job *d, const struct proto_msg *msg)
{
	char portbuf[NET_PORTLEN], line[PROTO_TOKEN_HEX + 2];
	char env_host[300], env_port[32], env_name[80];
	char *set[] = {env_host, env_port, env_name, NULL};
	struct proc_env env = {set, NULL};
	char cmd[PROTO_NAME_MAX + 3];
	int fd, gai = 0;
	pid_t pid;

	snprintf(portbuf, sizeof portbuf, "%d", msg->port);
	/* The pool's guard accepts our control connection's address only: use the same pair. */
	fd = connector_connect(m->peer_ip, portbuf, m->local_ip, -1, &gai);
	if (fd < 0) {
		err_warn("%s: connect to %s port %s: %s", d->name, m->o->host, portbuf,
		      net_strerror(gai));
		m->failed = 1;
		d->state = J_DONE;
		return;
	}
	snprintf(line, sizeof line, "%s\n", msg->arg[2]);
	if (io_write_all(fd, line, strlen(line)) < 0) {
		err_warn("%s: sending the token:", d->name);
		close(fd);
		m->failed = 1;
		d->state = J_DONE;
		return;
	}
	snprintf(env_host, sizeof env_host, "POOL_HOST=%s", m->o->host);
	snprintf(env_port, sizeof env_port, "POOL_PORT=%s", m->o->port);
	snprintf(env_name, sizeof env_name, "DAEMON_NAME=%s", d->name);
	snprintf(cmd, sizeof cmd, "./%s", d->name);
	/* cwd DDIR for the child only; we are single-threaded, so switch and come back. */
	if (fchdir(m->ddirfd) < 0) {
		err_warn("%s: cd %s:", d->name, m->o->ddir);
		close(fd);
		m->failed = 1;
		d->state = J_DONE;
		return;
	}
	/* Not waiting for the exec here lets many daemons start at once. */
	pid = proc_spawn_start(cmd, -1, fd,
			       err_file_fd() >= 0 ? err_file_fd() : STDERR_FILENO, &env,
			       PROC_NEWPGRP | PROC_PDEATHSIG, &d->execfd);
	if (fchdir(m->cwdfd) < 0)
		err_warn("cd back:");
	close(fd);
	if (pid < 0) {
		err_warn("%s: cannot start:", d->name);
		m->failed = 1;
		d->state = J_DONE;
		return;
	}
	d->pid = pid;
	d->state = J_STARTING;
	m->running++;
}

/* Send "WORD ARG" or "WORD" as one line. */
static void send_line(struct master *m, const char *word, const char *arg)
{
	char line[PROTO_LINE_MAX + 1];
	int n = snprintf(line, sizeof line, "%s%s%s\n", word, arg ? " " : "", arg ? arg : "");

	if (io_write_all(m->ctl, line, (size_t)n) < 0) {
		err_warn("sending to the pool:");
		finish(m, EXIT_RUNTIME);
	}
}

/* Keep WINDOW requests in flight; END once every daemon has its answer. */
static void ask(struct master *m)
{
	while (m->asked < m->nd && m->asked - m->answered < WINDOW) {
		m->d[m->asked].state = J_ASKED;
		send_line(m, "PORT", m->d[m->asked++].name);
	}
	if (m->answered == m->nd) {
		send_line(m, "END", NULL);
		m->state = M_ENDED;
		if (m->nd == 0) {
			err_warn("%s: no daemons", m->o->ddir);
			m->failed = 1;
		}
	}
}

static void ready(struct master *m)
{
	if (daemon_ready(&m->dm, m->o->logfile) < 0) {
		err_warn("%s: %s", m->o->logfile, err_file_why(errno));
		finish(m, EXIT_RUNTIME);
	}
}

static void handle(struct master *m, char *line)
{
	struct proto_msg msg;
	char mac[PROTO_MAC_HEX + 1];

	if (proto_parse(line, &msg) < 0) {
		err_warn("pool sent a line this master cannot read");
		finish(m, EXIT_RUNTIME);
	}
	if (msg.cmd == PROTO_ERR) {
		if (m->state == M_AUTH)
			err_warn("the pool at %s %s rejected the key", m->o->host, m->o->port);
		else
			err_warn("the pool ended the session: %s%s", msg.text,
			      m->running ? "; ending the daemons" : "");
		finish(m, EXIT_RUNTIME);
	}
	switch (m->state) {
	case M_HELLO:
		if (msg.cmd != PROTO_HELLO)
			break;
		if (msg.version != PROTO_VERSION) {
			err_warn("the pool speaks protocol version %ld, this master version %d",
			      msg.version, PROTO_VERSION);
			finish(m, EXIT_RUNTIME);
		}
		proto_mac(m->o->key, m->o->keylen, msg.arg[1], mac);
		send_line(m, "AUTH", mac);
		mem_wipe(mac, sizeof mac);
		m->state = M_AUTH;
		return;
	case M_AUTH:
		if (msg.cmd != PROTO_OK)
			break;
		m->state = M_RUN;
		ready(m);
		ask(m);
		return;
	case M_RUN:
		if (msg.cmd != PROTO_GRANT && msg.cmd != PROTO_FAIL)
			break;
		if (m->answered >= m->asked || strcmp(msg.arg[0], m->d[m->answered].name) != 0)
			break;
		if (msg.cmd == PROTO_GRANT) {
			start(m, &m->d[m->answered], &msg);
		} else {
			err_warn("%s: the pool refused a port: %s", msg.arg[0], msg.text);
			m->d[m->answered].state = J_DONE;
			m->failed = 1;
		}
		m->answered++;
		ask(m);
		return;
	case M_ENDED:
		if (msg.cmd != PROTO_BYE)
			break;
		m->bye = 1;
		return;
	}
	err_warn("pool sent an unexpected %s", line);
	finish(m, EXIT_RUNTIME);
}

/* The control connection has something: lines, or its end. */
static void from_pool(struct master *m)
{
	char line[PROTO_LINE_MAX];
	ssize_t r = proto_fill(&m->in, m->ctl);
	int got;

	if (r < 0 && errno == EAGAIN)
		return;
	while ((got = proto_next(&m->in, line)) == 1) {
		handle(m, line);
		if (m->ctl < 0)
			return;
	}
	if (got < 0) {
		err_warn("pool sent a malformed line");
		finish(m, EXIT_RUNTIME);
	}
	if (r > 0)
		return;
	if (r < 0)
		err_warn("connection to the pool:");
	if (m->state == M_ENDED && (m->bye || m->running == 0)) {
		close(m->ctl);
		m->ctl = -1;
		return;
	}
	if (r == 0)
		err_warn("the pool closed the connection%s",
		      m->running ? "; ending the daemons" : "");
	finish(m, EXIT_RUNTIME);
}

static void connect_pool(struct master *m)
{
	char port[NET_PORTLEN];
	int gai = 0;

	m->ctl = connector_connect(m->o->host, m->o->port, NULL, -1, &gai);
	if (m->ctl < 0)
		err_die(EXIT_RUNTIME, "connect to %s %s: %s", m->o->host, m->o->port,
		    net_strerror(gai));
	if (net_name(m->ctl, 1, m->peer_ip, port) < 0 || net_name(m->ctl, 0, m->local_ip, port) < 0)
		err_die(EXIT_RUNTIME, "connection to the pool:");
	io_set_nonblock(m->ctl, 1);
}

static void loop(struct master *m)
{
	struct pollfd *pfd = calloc(m->nd + 2, sizeof *pfd);

	if (!pfd)
		err_die(EXIT_RUNTIME, "poll set:");
	for (;;) {
		size_t n = 0;
		int chld = 0, sig, status;
		pid_t pid;

		if (m->state == M_ENDED && m->running == 0) {
			free(pfd);
			finish(m, m->failed ? EXIT_RUNTIME : 0);
		}
		pfd[n++] = (struct pollfd){.fd = m->sigfd, .events = POLLIN};
		pfd[n++] = (struct pollfd){.fd = m->ctl, .events = POLLIN}; /* -1: ignored */
		for (size_t i = 0; i < m->nd; i++)
			if (m->d[i].state == J_STARTING)
				pfd[n++] = (struct pollfd){.fd = m->d[i].execfd, .events = POLLIN};
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			err_die(EXIT_RUNTIME, "poll:");
		if (pfd[0].revents && (sig = sig_drain(&chld, NULL)) != 0) {
			err_warn("signal %d: ending %zu daemon(s)", sig, m->running);
			free(pfd);
			finish(m, EXIT_SIGNAL(sig));
		}
		for (size_t k = 2, i = 0; k < n; k++) {
			while (m->d[i].state != J_STARTING || m->d[i].execfd != pfd[k].fd)
				i++;
			if (pfd[k].revents)
				exec_outcome(m, &m->d[i]);
		}
		while ((pid = proc_reap(&status)) > 0)
			reaped(pid, status, m);
		if (m->ctl >= 0 && pfd[1].revents)
			from_pool(m);
	}
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct master m = {.o = &o, .ctl = -1};

	err_init(argv[0]);
	io_sanitize_std();
	parse(argc, argv, &o);
	/* Checked before connecting: a typo should not cost the pool a session. */
	m.ddirfd = open(o.ddir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.ddirfd < 0)
		err_die(EXIT_RUNTIME, "%s:", o.ddir);
	m.cwdfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m.cwdfd < 0)
		err_die(EXIT_RUNTIME, "current directory:");
	list_daemons(&m);
	if (daemon_start(&m.dm, o.background, 0) < 0)
		err_die(EXIT_RUNTIME, "fork:");
	m.sigfd = sig_init(0);
	if (m.sigfd < 0)
		err_die(EXIT_RUNTIME, "signals:");
	connect_pool(&m);
	loop(&m);
}
