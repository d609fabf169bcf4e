/*
 * jobs_text: the words for the jobs engine's news (struct job_event), as
 * master logs them. The engine says what happened, in its own words, as
 * the relay does its faults (pump_fault_text); the program decides what
 * the run makes of it. Tests and users' scripts match these lines: their
 * words are an interface.
 */
#include "jobs.h"

#include <stdio.h>

#include "err.h"

/* The pool's word on a service call that did not end well (EXIT's status and text). */
static void remote_failed(const struct job_event *ev, char *buf, size_t len)
{
	const char *name = ev->job->name;

	if (ev->code < 0)
		snprintf(buf, len, "%s: remote did not run: %s", name, ev->why);
	else if (*ev->why)
		snprintf(buf, len, "%s: remote exited %d (%s)", name, ev->code, ev->why);
	else
		snprintf(buf, len, "%s: remote exited %d", name, ev->code);
}

/* The pool refused a request: a resumption's refusal is only a delay. */
static void refused(const struct job_event *ev, char *buf, size_t len)
{
	const char *name = ev->job->name;

	if (ev->resend)
		snprintf(buf, len, "%s: the pool refused to resume it: %s; asking again", name,
			 ev->why);
	else
		snprintf(buf, len, "%s: the pool refused %s: %s", name,
			 ev->type == JOB_EV_CALL_REFUSED ? "the call" : "a port", ev->why);
}

const char *job_event_text(const struct job_event *ev, char *buf, size_t len)
{
	const struct job *j = ev->job;

	switch (ev->type) {
	case JOB_EV_CANNOT_START: snprintf(buf, len, "%s: %s", j->file, ev->why); break;
	case JOB_EV_ENDED:
		if (ev->code > 128)
			snprintf(buf, len, "%s: killed by signal %d", j->file, ev->code - 128);
		else
			snprintf(buf, len, "%s: exited with status %d", j->file, ev->code);
		break;
	case JOB_EV_CONNECT_FAILED: snprintf(buf, len, "%s: %s", j->name, ev->why); break;
	case JOB_EV_LOST:
		snprintf(buf, len, "%s: data connection lost: %s; %llu byte%s %s", j->name, ev->why,
			 ev->n, err_plural(ev->n), ev->resend ? "to send again" : "not delivered");
		break;
	case JOB_EV_RESUMED:
		snprintf(buf, len, "%s: resumed at byte %llu of its stream", j->name, ev->n);
		break;
	case JOB_EV_LACKS:
		snprintf(buf, len, "%s: the pool has lost %llu byte%s of this stream", j->name, ev->n,
			 err_plural(ev->n));
		break;
	case JOB_EV_REFUSED:
	case JOB_EV_CALL_REFUSED: refused(ev, buf, len); break;
	case JOB_EV_REMOTE_FAILED: remote_failed(ev, buf, len); break;
	case JOB_EV_UNREPORTED:
		snprintf(buf, len, "%s: the pool went away before saying how the service ended",
			 j->name);
		break;
	}
	return buf;
}
