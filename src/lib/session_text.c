/*
 * session_text: the log line of a session's event, one wording for every
 * caller (the library formats, the program logs).
 */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "err.h"
#include "grant.h"

/* A grant or a call, answered. */
static void granted_text(const struct session_event *ev, char *buf, size_t n)
{
	const struct grant_request *rq = ev->request;

	if (rq->cmd == PROTO_CALL)
		snprintf(buf, n, "%s: service called by %s (port %d)", rq->name, ev->peer, rq->port);
	else
		snprintf(buf, n, "%s: granted to %s (port %d, stream %.8s, from byte %s)", rq->name,
			 ev->peer, rq->port, rq->stream, ev->what);
}

const char *session_event_text(const struct session_event *ev, char *buf, size_t n)
{
	switch (ev->type) {
	case SESSION_EV_BUSY:
		snprintf(buf, n, "%s: refused: %llu connections are proving the key", ev->ip,
			 ev->count);
		break;
	case SESSION_EV_NO_ROOM: snprintf(buf, n, "connection dropped: %s", strerror(ev->err)); break;
	case SESSION_EV_ACCEPT_FAILED:
		snprintf(buf, n, "accept: %s (%llu in the last second; pausing)", strerror(ev->err),
			 ev->count);
		break;
	case SESSION_EV_BEGIN: snprintf(buf, n, "%s: master session begins", ev->peer); break;
	case SESSION_EV_DROPPED: snprintf(buf, n, "%s: %s; dropped", ev->peer, ev->what); break;
	case SESSION_EV_FAILED:
		snprintf(buf, n, "%s: %s: %s", ev->peer, ev->what, strerror(ev->err));
		break;
	case SESSION_EV_CLOSED: snprintf(buf, n, "%s: %s", ev->peer, ev->what); break;
	case SESSION_EV_BROKEN:
		snprintf(buf, n, "%s: control connection: %s", ev->peer, channel_strerror(ev->err, 0));
		break;
	case SESSION_EV_GRANTED: granted_text(ev, buf, n); break;
	case SESSION_EV_END: return NULL;
	case SESSION_EV_GONE:
		/* A newcomer that never proved the key had no session to speak of. */
		if (ev->state == SESSION_PROVING)
			return NULL;
		snprintf(buf, n, "%s: session ends: %llu grant%s, %llu not finished yet", ev->peer,
			 ev->count, err_plural(ev->count), ev->unfinished);
		break;
	}
	return buf;
}
