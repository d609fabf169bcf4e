#define _GNU_SOURCE /* close_range */
#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel.h"
#include "deadline.h"
#include "err.h"
#include "io.h"
#include "mem.h"
#include "net.h"
#include "proc.h"
#include "pump.h"
#include "spawn.h"
#include "stream.h"
#include "ucspi.h"
#include "wire.h"

struct service *service_open(const struct service_config *cfg)
{
	struct service *s = calloc(1, sizeof *s);

	if (!s || strlen(cfg->token) >= sizeof s->token || strlen(cfg->addr) >= sizeof s->addr ||
	    !(s->program = strdup(cfg->program)) || !(s->name = strdup(cfg->name))) {
		if (s) {
			free(s->program);
			free(s);
		}
		listener_close(cfg->listener);
		errno = errno ? errno : EINVAL;
		return NULL;
	}
	s->l = *cfg->listener;
	cfg->listener->n = 0; /* ours now */
	s->fd = -1;
	s->report_fd = -1;
	linelog_init(&s->err, -1);
	s->said = cfg->said;
	s->said_arg = cfg->said_arg;
	memcpy(s->token, cfg->token, strlen(cfg->token) + 1);
	memcpy(s->addr, cfg->addr, strlen(cfg->addr) + 1);
	net_plain_ip(s->addr);
	s->run_ms = cfg->run_ms;
	s->grace_ms = cfg->grace_ms;
	s->token_by = io_now_ms() + SERVICE_TOKEN_MS;
	if (cfg->psk) {
		s->chan = 1;
		memcpy(s->psk, cfg->psk, NOISE_PSK);
	}
	return s;
}

int service_port(const struct service *s)
{
	return listener_port(&s->l);
}

size_t service_pollfds(struct service *s, struct pollfd *pfd, long long now)
{
	if (s->state == SERVICE_RUNNING && s->err.fd >= 0) {
		pfd[0] = (struct pollfd){.fd = s->err.fd, .events = POLLIN};
		return 1;
	}
	if (s->state != SERVICE_WAITING)
		return 0;
	if (s->fd >= 0) {
		pfd[0] = (struct pollfd){.fd = s->fd,
					 .events = POLLIN | stream_conn_events(s->ch)};
		return 1;
	}
	return listener_pollfds(&s->l, pfd, now);
}

int service_timeout(const struct service *s, long long now)
{
	long long at = -1;

	if (s->state == SERVICE_WAITING) {
		at = deadline_earlier(s->token_by, deadline_in(listener_timeout(&s->l, now), now));
	} else if (s->state == SERVICE_RUNNING) {
		at = s->term_sent ? s->run_by + s->grace_ms : s->run_by;
	}
	return deadline_timeout(at, now);
}

/* The caller being checked goes (its channel with it); another may come. */
static void drop_caller(struct service *s)
{
	channel_free(s->ch);
	s->ch = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->flen = 0;
}

static void end(struct service *s, const char *why)
{
	channel_free(s->ch);
	s->ch = NULL;
	listener_close(&s->l);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = SERVICE_ENDED;
	s->status = -1;
	s->why = why;
}

/*
 * Nothing of the pool's but what the relay carries: its other connections
 * and listeners (close-on-exec, but the relay does not exec) would stay
 * open in here.
 */
static void close_others(int a, int b, int c)
{
	int keep[3] = {a, b, c}, lo = 3;

	for (int i = 0; i < 3; i++) /* sort the three */
		for (int k = i + 1; k < 3; k++)
			if (keep[k] < keep[i]) {
				int t = keep[i];
				keep[i] = keep[k];
				keep[k] = t;
			}
	for (int i = 0; i < 3; i++) {
		if (keep[i] > lo)
			close_range((unsigned)lo, (unsigned)keep[i] - 1, 0);
		lo = keep[i] + 1 > lo ? keep[i] + 1 : lo;
	}
	close_range((unsigned)lo, ~0u, 0);
}

/*
 * In the leader: the program could not be started. Its errno goes to the
 * pool on the report pipe (the pool tells the log), and the leader exits
 * as a shell does then.
 */
static _Noreturn void not_started(int report)
{
	int err = errno;

	if (write(report, &err, sizeof err) < 0) {
		/* the pool then says only that the service exited 127 */
	}
	_exit(EXIT_EXEC);
}

/* The program's exit status, once it has ended. */
static int wait_status(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return proc_status_code(st);
}

/*
 * The leader when the pool dies, even by SIGKILL: PR_SET_PDEATHSIG sends
 * it a signal that nothing else sends (the pool's SIGTERM to the group at
 * the run cap is the program's, and the leader ignores it). It ends the
 * program (SIGTERM, SIGKILL once the grace has run out, by alarm(2)); the
 * leader then ends the rest as at any end (proc_end_children), also what
 * left the group. The program's pid, once started, and whether the pool
 * is gone, shared with the handlers: a leader's only mutable globals.
 */
static volatile sig_atomic_t lead_prog, lead_orphaned;
static unsigned lead_grace_s;

static void on_pool_death(int sig)
{
	int saved = errno;

	(void)sig;
	lead_orphaned = 1;
	if (lead_prog > 0) {
		kill((pid_t)lead_prog, SIGTERM);
		alarm(lead_grace_s);
	}
	errno = saved;
}

static void on_grace_over(int sig)
{
	int saved = errno;

	(void)sig;
	if (lead_prog > 0)
		kill((pid_t)lead_prog, SIGKILL);
	errno = saved;
}

/* In the leader, first thing: its end is due when the pool's is, however the pool ends. */
static void lead_watch(pid_t pool, long grace_ms)
{
	struct sigaction sa = {.sa_handler = on_pool_death};
	int sig = SIGRTMIN;

	lead_grace_s = grace_ms > 0 ? (unsigned)((grace_ms + 999) / 1000) : 1;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	sa.sa_handler = on_grace_over;
	sigaction(SIGALRM, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, sig);
	/* The pool died before the request: it is due at once. */
	if (getppid() != pool)
		raise(sig);
}

/* The program has started: a pool death that came first ends it now. */
static void lead_program(pid_t prog)
{
	lead_prog = (sig_atomic_t)prog;
	if (lead_orphaned)
		on_pool_death(SIGRTMIN);
}

/*
 * In the leader: the program on the caller's connection itself (version
 * 2), waited for. TERM to the group is for the program; the leader ends
 * once the program has, and what it left behind with it.
 */
static _Noreturn void lead_plain(struct service *s, const struct spawn_env *env, int report)
{
	pid_t prog = spawn_start(&(struct spawn){.command = s->program,
						 .fd = {s->fd, s->fd, STDERR_FILENO},
						 .env = env,
						 .flags = SPAWN_PDEATHSIG},
				 NULL);
	int status;

	if (prog < 0)
		not_started(report);
	lead_program(prog);
	close_others(STDERR_FILENO, STDERR_FILENO, STDERR_FILENO);
	signal(SIGTERM, SIG_IGN);
	status = wait_status(prog);
	proc_end_children(s->grace_ms, NULL, NULL);
	_exit(status);
}

/* A relay child's fault, in the pool's log. */
static void say_fault(const struct pump_fault *f, void *arg)
{
	char why[512];

	(void)arg;
	err_warn("%s", pump_fault_text(f, why, sizeof why));
}

/*
 * In the leader, version 3: the program on pipes, relayed through the
 * channel (the program's output ending ends the connection, as its close
 * would); the relay waits for it and ends the rest (relay.end_rest_ms).
 */
static _Noreturn void lead_relay(struct service *s, const struct spawn_env *env, int report,
				 const int to_prog[2], const int from_prog[2])
{
	/* TERM to the group is for the program: the relay ends when its output does. */
	struct relay r = {.program = s->program, .psk = s->psk, .ch = s->ch, .term_ign = 1,
			  .end_rest_ms = s->grace_ms, .on_fault = say_fault};
	struct pump *p = calloc(1, sizeof *p);
	int code;
	pid_t prog = spawn_start(&(struct spawn){.command = s->program,
						 .fd = {to_prog[0], from_prog[1], STDERR_FILENO},
						 .env = env,
						 .flags = SPAWN_PDEATHSIG},
				 NULL);

	if (prog < 0)
		not_started(report);
	lead_program(prog);
	close(to_prog[0]);
	close(from_prog[1]);
	close_others(s->fd, to_prog[1], from_prog[0]);
	io_set_nonblock(to_prog[1], 1);
	io_set_nonblock(from_prog[0], 1);
	if (p)
		p->ch = s->ch;
	code = pump_relay(&r, p, s->fd, from_prog[0], to_prog[1], prog);
	free(p); /* a leak checker sees the leader's heap at its exit too */
	_exit(code);
}

/*
 * The service's leader: a child of ours that leads the service's process
 * group and is the subreaper of everything the program starts. It runs
 * the program, waits for it, then ends whatever it left behind, also
 * descendants that left the group (setsid, double forks: they come back
 * to the leader, not to init), and exits as the program did: every
 * descendant ends with the service, at its run cap too. Returns its pid,
 * or -1 with errno.
 */
static pid_t leader_start(struct service *s, const struct spawn_env *env)
{
	int to_prog[2] = {-1, -1}, from_prog[2] = {-1, -1}, report[2] = {-1, -1};
	int err[2] = {-1, -1}, saved;
	pid_t pid = -1, pool;

	if (io_pipe(report) < 0 || io_pipe(err) < 0 ||
	    (s->ch && (io_pipe(to_prog) < 0 || io_pipe(from_prog) < 0)))
		goto out;
	/* Our own code in the child: spawn_fork resets sig.c's signals there, and makes the group. */
	pool = getpid();
	if ((pid = spawn_fork(SPAWN_NEWPGRP)) == 0) {
		lead_watch(pool, s->grace_ms);
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		/* The program's standard error comes to us, to be told in the log with its name. */
		if (dup2(err[1], STDERR_FILENO) < 0)
			_exit(EXIT_RUNTIME);
		if (!s->ch)
			lead_plain(s, env, report[1]);
		lead_relay(s, env, report[1], to_prog, from_prog);
	}
	if (pid > 0) {
		io_set_nonblock(report[0], 1);
		s->report_fd = report[0]; /* read once the leader is reaped */
		report[0] = -1;
		linelog_init(&s->err, err[0]);
		err[0] = -1;
	}
out:
	saved = errno;
	for (int i = 0; i < 2; i++) {
		if (err[i] >= 0)
			close(err[i]);
		if (to_prog[i] >= 0)
			close(to_prog[i]);
		if (from_prog[i] >= 0)
			close(from_prog[i]);
		if (report[i] >= 0)
			close(report[i]);
	}
	errno = saved;
	return pid;
}

/* The program, on the caller's connection, in a clean environment. */
static void run(struct service *s)
{
	struct ucspi u;
	char name[128], *set[UCSPI_VARS + 3];
	struct spawn_env env = {set, NULL, 1};
	size_t n = 0;

	listener_close(&s->l);
	/* The program gets the connection as any program gets its stdin: blocking. */
	io_set_nonblock(s->fd, 0);
	ucspi_listener(&u, s->fd);
	ucspi_conn(&u, s->fd);
	for (char *const *v = u.env.set; *v; v++)
		set[n++] = *v;
	snprintf(name, sizeof name, "SERVICE_NAME=%s", s->name);
	set[n++] = name;
	set[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
	set[n] = NULL;
	s->pid = leader_start(s, &env);
	/* The leader holds the connection (and its channel); ours go. */
	channel_free(s->ch);
	s->ch = NULL;
	if (s->pid > 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->pid < 0) {
		end(s, strerror(errno));
		return;
	}
	s->state = SERVICE_RUNNING;
	s->run_by = io_now_ms() + s->run_ms;
}

/*
 * The token line, a byte at a time: what follows it is the program's
 * input, and must stay in the socket for it.
 */
static void read_token(struct service *s)
{
	for (;;) {
		char c;
		ssize_t r = stream_conn_recv(s->fd, s->ch, &c, 1);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0 || s->flen == sizeof s->first - 1)
			goto wrong;
		if (c == '\n')
			break;
		s->first[s->flen++] = c;
	}
	if (s->flen && s->first[s->flen - 1] == '\r')
		s->flen--;
	if (s->flen == strlen(s->token) && mem_equal_ct(s->first, s->token, s->flen)) {
		mem_wipe(s->token, sizeof s->token);
		run(s);
		return;
	}
wrong:
	/* Not the caller: the grant goes on waiting for it. */
	drop_caller(s);
}

/* Version 3: the caller's handshake went on; once done, its token. */
static void handshake(struct service *s, long long now)
{
	int r = channel_handshake(s->ch, now);

	if (r == 1)
		read_token(s);
	else if (r < 0)
		drop_caller(s); /* without the key: not the caller */
}

static void accept_caller(struct service *s, long long now)
{
	char ip[NET_IPLEN], port[NET_PORTLEN];
	unsigned long failures;
	int fd = listener_accept(&s->l, now, &failures);

	if (fd < 0)
		return;
	if (net_name(fd, 1, ip, port) < 0 || strcmp(ip, s->addr) != 0) {
		close(fd);
		return;
	}
	io_set_nonblock(fd, 1);
	s->fd = fd;
	if (!s->chan) {
		read_token(s);
		return;
	}
	if (!(s->ch = channel_new(fd, 0, s->psk, WIRE_DATA, NULL, 0, now)))
		drop_caller(s);
	else
		handshake(s, now);
}

void service_handle(struct service *s, const struct pollfd *pfd, size_t n, long long now)
{
	/* Running, the slice is the program's standard error alone. */
	if (s->state == SERVICE_RUNNING && n == 1 && pfd[0].fd == s->err.fd && pfd[0].revents)
		linelog_read(&s->err, now, s->said, s->said_arg);
	for (size_t k = 0; k < n && s->state == SERVICE_WAITING; k++) {
		if (!pfd[k].revents)
			continue;
		if (pfd[k].fd == s->fd && s->ch && channel_timeout(s->ch, now) >= 0)
			handshake(s, now);
		else if (pfd[k].fd == s->fd)
			read_token(s);
		else if (s->fd < 0)
			accept_caller(s, now);
	}
	if (s->state == SERVICE_WAITING && now >= s->token_by)
		end(s, "its caller did not come in time");
	if (s->state == SERVICE_RUNNING && now >= s->run_by) {
		if (!s->term_sent) {
			kill(-s->pid, SIGTERM);
			s->term_sent = 1;
			s->why = "its run time is up";
		} else if (now >= s->run_by + s->grace_ms) {
			kill(-s->pid, SIGKILL);
		}
	}
}

int service_reaped(struct service *s, pid_t pid, int status)
{
	if (s->state != SERVICE_RUNNING || pid != s->pid)
		return 0;
	s->state = SERVICE_ENDED;
	s->status = proc_status_code(status);
	/* Whatever the program left in its group goes with it. */
	kill(-s->pid, SIGKILL);
	/* Its leader has gone: what it had to tell of the program's start is there, or nothing. */
	if (s->status == EXIT_EXEC && read(s->report_fd, &s->exec_err, sizeof s->exec_err) !=
					(ssize_t)sizeof s->exec_err)
		s->exec_err = 0;
	close(s->report_fd);
	s->report_fd = -1;
	/* Its last words before its end is told. */
	linelog_drain(&s->err, io_now_ms(), s->said, s->said_arg);
	return 1;
}

void service_stop(struct service *s)
{
	if (s->state == SERVICE_RUNNING)
		kill(-s->pid, SIGTERM);
	else if (s->state == SERVICE_WAITING)
		end(s, "cancelled");
}

void service_free(struct service *s)
{
	if (!s)
		return;
	listener_close(&s->l);
	channel_free(s->ch);
	if (s->fd >= 0)
		close(s->fd);
	if (s->report_fd >= 0)
		close(s->report_fd);
	linelog_close(&s->err);
	mem_wipe(s->token, sizeof s->token);
	mem_wipe(s->psk, sizeof s->psk);
	free(s->program);
	free(s->name);
	free(s);
}
