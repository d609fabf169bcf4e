/*
 * jobs_int: the jobs engine's private header, shared by its parts and by
 * nothing else (the public interface is jobs.h):
 *
 *	jobs.c		the list, the requests and grants, the data
 *			connections and their streams, the loop's side,
 *			the teardown's drain
 *	jobs_start.c	starting a daemon or a service call, its exec's
 *			outcome, its death
 *	jobs_text.c	the words for the events (job_event_text; needs
 *			nothing of this header)
 *
 * The functions below are the few each part needs of the other;
 * everything else stays static in its file.
 */
#ifndef SP_JOBS_INT_H
#define SP_JOBS_INT_H

#include "jobs.h"

struct channel;

/* Tell cfg->on_event (if any) of ev. */
void jobs_emit(struct jobs *js, struct job_event ev);

/* An event with words: why formatted printf-like. */
void jobs_emit_why(struct jobs *js, enum job_ev type, const struct job *j, int resend,
		   unsigned long long n, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* The job has failed for good: no stream, nothing more to do. */
void job_failed(struct job *j);

/*
 * Start j's daemon: its stdout is the connection fd (taken), or (relayed,
 * fd -1) a pipe to us. A failure is told (JOB_EV_CANNOT_START) and fails j.
 */
void job_start_daemon(struct jobs *js, struct job *j, int fd);

/* -x, -c: start the relay child that talks to the service over fd and ch (both taken). */
void job_start_call(struct jobs *js, struct job *j, int fd, struct channel *ch);

/* Read whether j's exec happened (its execfd is ready, or j is dead); a failure is told once. */
void job_exec_outcome(struct jobs *js, struct job *j);

#endif
