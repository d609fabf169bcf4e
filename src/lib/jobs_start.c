/*
 * jobs_start: a job's process. A daemon is forked and exec'd without
 * waiting for the exec (many start at once; its outcome comes through a
 * pipe the loop polls); a service call is a relay child of ours. Its
 * death is news only when it was not ours to cause.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "err.h"
#include "io.h"
#include "jobs_int.h"
#include "proc.h"
#include "pump.h"
#include "spawn.h"

/*
 * "No such file" from an exec of a file that is there means its #! line
 * names what is not: say which (a CR from CR LF line ends included).
 */
static const char *start_error(const struct jobs *js, const struct job *j, int err, char *buf,
			       size_t len)
{
	char line[256], *interp;
	ssize_t r;
	size_t n;
	int fd, cr;

	if (err != ENOENT || (fd = openat(js->cfg->dirfd, j->file, O_RDONLY | O_CLOEXEC)) < 0)
		return strerror(err);
	r = io_read(fd, line, sizeof line - 1);
	close(fd);
	if (r < 3 || line[0] != '#' || line[1] != '!')
		return strerror(err);
	line[r] = '\0';
	line[strcspn(line, "\n")] = '\0';
	interp = line + 2 + strspn(line + 2, " \t");
	n = strcspn(interp, " \t");
	cr = n && interp[n - 1] == '\r';
	interp[n - (size_t)cr] = '\0';
	snprintf(buf, len, "bad interpreter %s%s", interp,
		 cr ? "^M (the script has CR LF line ends)" : ": No such file or directory");
	return buf;
}

void job_exec_outcome(struct jobs *js, struct job *j)
{
	int err = spawn_result(j->execfd);
	char why[400];

	j->execfd = -1;
	j->state = JOB_RUNNING;
	if (err) {
		j->unstarted = 1;
		jobs_emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: %s",
			 start_error(js, j, err, why, sizeof why));
	}
}

/* The environment a daemon or client portion gets: where the pool is, and its name. */
struct job_env {
	char host[300], port[32], name[80];
	char *set[4];
	struct spawn_env env;
};

static void job_env(const struct jobs *js, const struct job *j, struct job_env *e)
{
	snprintf(e->host, sizeof e->host, "POOL_HOST=%s", js->cfg->host);
	snprintf(e->port, sizeof e->port, "POOL_PORT=%s", js->cfg->port);
	snprintf(e->name, sizeof e->name, "%s=%s",
		 js->cfg->kind == JOBS_DAEMONS ? "DAEMON_NAME" : "SERVICE_NAME", j->name);
	e->set[0] = e->host;
	e->set[1] = e->port;
	e->set[2] = e->name;
	e->set[3] = NULL;
	e->env = (struct spawn_env){e->set, NULL, 0};
}

void job_start_daemon(struct jobs *js, struct job *j, int fd)
{
	const struct jobs_config *cfg = js->cfg;
	int pipefd[2] = {-1, -1}, out = fd;
	char cmd[NAME_MAX_LEN + 3];
	struct job_env e;
	pid_t pid;

	if (fd < 0) {
		if (io_pipe(pipefd) < 0) {
			jobs_emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: pipe: %s",
				 strerror(errno));
			goto fail;
		}
		out = pipefd[1];
	}
	job_env(js, j, &e);
	snprintf(cmd, sizeof cmd, "./%s", j->file);
	/* cwd DDIR for the child only; we are single-threaded, so switch and come back. */
	if (fchdir(cfg->dirfd) < 0) {
		jobs_emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cd %s: %s", cfg->ddir,
			      strerror(errno));
		goto fail;
	}
	/* Not waiting for the exec here lets many daemons start at once. */
	pid = spawn_start(&(struct spawn){.command = cmd,
					  .fd = {-1, out, cfg->errfd >= 0 ? cfg->errfd : STDERR_FILENO},
					  .env = &e.env,
					  .flags = SPAWN_NEWPGRP | SPAWN_PDEATHSIG},
			  &j->execfd);
	if (fchdir(cfg->cwdfd) < 0) {
		/* Nothing of ours is relative to it; the next start tries again. */
	}
	if (pid < 0) {
		jobs_emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: %s",
			      strerror(errno));
		goto fail;
	}
	if (fd < 0) {
		close(pipefd[1]);
		j->out = pipefd[0];
		io_set_nonblock(j->out, 1);
	} else {
		close(fd);
	}
	j->pid = pid;
	j->state = JOB_STARTING;
	js->running++;
	js->started++;
	return;
fail:
	for (int i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	if (fd >= 0)
		close(fd);
	stream_lost(&j->st);
	job_failed(j);
}

/*
 * -x, -c: a relay child talks to the service over fd: -x runs the client
 * portion with pipes (so it can end its upload while it reads the result:
 * our FIN follows its output's end), -c relays our own stdin and stdout.
 * The child ends as the client portion did.
 */
void job_start_call(struct jobs *js, struct job *j, int fd, struct channel *ch)
{
	const struct jobs_config *cfg = js->cfg;
	char cmd[NAME_MAX_LEN + 3];
	struct relay r = {.ch = ch, .psk = ch ? cfg->psk : NULL, .initiator = 1,
			  .on_fault = cfg->on_fault, .fault_arg = cfg->arg};
	struct job_env e;
	/* our code in the child: its own group; it ends with us, however we end */
	pid_t pid = spawn_fork(SPAWN_NEWPGRP | SPAWN_PDEATHSIG);

	if (pid < 0) {
		jobs_emit_why(js, JOB_EV_CANNOT_START, j, 0, 0, "cannot start: fork: %s",
			      strerror(errno));
		channel_free(ch);
		close(fd);
		job_failed(j);
		j->remote = JOB_REMOTE_NONE;
		return;
	}
	if (pid == 0) {
		/* Nothing of the master's but this connection: not the pool's, not the others'. */
		if (cfg->in_child)
			cfg->in_child(cfg->arg);
		/* The client portion's diagnostics go where ours do (-L). */
		if (cfg->errfd >= 0 && dup2(cfg->errfd, STDERR_FILENO) < 0)
			_exit(EXIT_RUNTIME);
		job_env(js, j, &e);
		if (cfg->kind == JOBS_CLIENTS) {
			snprintf(cmd, sizeof cmd, "./%s", j->file);
			r.program = cmd;
			r.halfclose = 1;
			if (fchdir(cfg->dirfd) < 0)
				_exit(EXIT_RUNTIME);
		}
		_exit(pump_child(&r, fd, &e.env));
	}
	channel_free(ch); /* our copy: the relay's is the one in use */
	close(fd);
	j->pid = pid;
	j->state = JOB_RUNNING;
	js->running++;
	js->started++;
}

size_t jobs_start_due(struct jobs *js, size_t max)
{
	for (size_t i = 0; i < js->n && max && js->starts_due; i++) {
		struct job *j = &js->v[i];

		if (!j->start_due)
			continue;
		j->start_due = 0;
		js->starts_due--;
		max--;
		/* A connection that broke first said so (lost); with -r a new one starts it. */
		if (j->st.fd >= 0)
			job_start_daemon(js, j, -1);
	}
	return js->starts_due;
}

void jobs_reaped(struct jobs *js, pid_t pid, int status)
{
	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];
		int code = proc_status_code(status);

		if (j->pid != pid)
			continue;
		if (j->state == JOB_STARTING) /* dead, so its pipe has said all it will */
			job_exec_outcome(js, j);
		j->pid = 0;
		js->running--;
		if (job_stream_over(js, j))
			j->state = JOB_DONE;
		if (code != 0 && !js->ending && !j->unstarted)
			jobs_emit(js,
				  (struct job_event){.type = JOB_EV_ENDED, .job = j, .code = code});
		return;
	}
}

/* Every running job's pid into pids (room for js->n); returns how many. */
static size_t jobs_pids(struct jobs *js, pid_t *pids)
{
	size_t n = 0;

	for (size_t i = 0; i < js->n; i++) {
		struct job *j = &js->v[i];

		if (j->start_due) { /* never started: its stream ends empty */
			j->start_due = 0;
			js->starts_due--;
		}
		if (j->state == JOB_STARTING) {
			close(j->execfd);
			j->execfd = -1;
			j->state = JOB_RUNNING;
		}
		if (j->pid > 0)
			pids[n++] = j->pid;
	}
	return n;
}


static void reaped(pid_t pid, int status, void *arg)
{
	jobs_reaped(arg, pid, status);
}

void jobs_end(struct jobs *js, long grace_ms, int sigfd)
{
	size_t n;

	js->ending = 1;
	if ((n = jobs_pids(js, js->pids)) > 0)
		proc_end_groups(js->pids, n, grace_ms, sigfd, reaped, js);
	/* Whatever a daemon left behind came back to us (we are its subreaper): it ends too. */
	proc_end_children(grace_ms, reaped, js);
}
