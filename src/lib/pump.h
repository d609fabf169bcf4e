/* pump: relay bytes both ways between descriptors, with half-close. */
#ifndef SP_PUMP_H
#define SP_PUMP_H

#include <stddef.h>
#include <sys/types.h>

#define PUMP_CHUNK 32768

enum pump_conv { PUMP_RAW, PUMP_LF_TO_CRLF, PUMP_CRLF_TO_LF };

struct channel;

/*
 * One direction: bytes read from in are written to out. out == -1
 * discards them (they are still read, so the peer is never reset). At EOF
 * on in, once everything is written, out is shut down for writing when
 * it is a socket and closed otherwise. A flow with in == -1 is off.
 */
struct pump_flow {
	int in, out;
	enum pump_conv conv;
	/* state, zeroed by pump_flow_init */
	int in_sock, out_sock, done, eof, held_cr, last_cr;
	int out_nowait; /* a write to out never blocks: it may follow a read at once */
	/*
	 * -k: in is read through chin, or out written through chout (the
	 * connection's channel, set after pump_flow_init; not owned). At EOF
	 * a chout gets its END record before the shutdown.
	 */
	struct channel *chin, *chout;
	int ending; /* the END is sealed, not all sent yet */
	size_t off, len;
	unsigned long long bytes;
	char buf[2 * PUMP_CHUNK + 2];
};

struct pump {
	struct pump_flow flow[2];
	int sigfd;	     /* self-pipe; a terminating signal ends the pump */
	unsigned stop_mask;  /* bit i: when flow i is done the pump ends */
	int error;	     /* first errno met on a socket, or 0 */
	struct channel *ch;  /* the relay's channel (-k), freed by the relay, or NULL */
	/*
	 * -k: the peer's stream failed (altered, or cut before its END): the
	 * pump stopped at once, and the flow's out was not closed, so that
	 * nothing downstream takes the failure for a normal end.
	 */
	int broken;
};

void pump_flow_init(struct pump_flow *f, int in, int out, enum pump_conv conv);

/*
 * Relay until every flow is done, or a flow in stop_mask is, or the
 * stream broke (p->broken). Returns 0,
 * the terminating signal number when one arrived, or -1 with errno when
 * poll itself fails.
 */
int pump_run(struct pump *p);

/*
 * Convert n bytes of src into dst (room for 2n+1) per conv, keeping the
 * CR state of the flow across calls; returns the bytes written. At
 * end of input call with n == 0 to flush a held CR.
 */
size_t pump_convert(struct pump_flow *f, const char *src, size_t n, char *dst);

/* ---- the relay: a connection and a program (or our stdin/stdout) ---- */

struct spawn_env;
struct cmd;

/*
 * What ended or broke a relay other than its program, told to the relay's
 * caller (relay.on_fault) when it happens; pump_fault_text says it.
 */
enum pump_fault_kind {
	PUMP_FAULT_MEMORY,    /* no memory for the relay: it ends (status 1) */
	PUMP_FAULT_HANDSHAKE, /* -k: the channel's handshake failed: the relay ends (1) */
	PUMP_FAULT_EXEC,      /* the program could not be started: the relay ends (1) */
	PUMP_FAULT_STREAM,    /* -k: the peer's stream was altered or cut; the relay goes on */
};

struct pump_fault {
	enum pump_fault_kind kind;
	int err;	     /* errno, or the channel's error (channel_strerror) */
	int initiator;	     /* HANDSHAKE: we connected */
	const char *peer;    /* HANDSHAKE on a server: the peer, "ADDRESS PORT"; else NULL */
	const char *program; /* EXEC: the relay's program */
};

/* The line that says f, into buf (len bytes), as the tools log it; returns buf. */
const char *pump_fault_text(const struct pump_fault *f, char *buf, size_t len);

/* How a relay treats its connection (socket's -p, -c, -q, -r, -w). */
struct relay {
	const char *program; /* NULL: relay our own stdin and stdout */
	const struct cmd *cmd; /* program prepared (cmd_init), or NULL: prepare each time */
	int crlf;	     /* -c: LF to CRLF towards the connection, CRLF to LF from it */
	int quit;	     /* -q: the input's end ends the relay at once */
	int ronly, wonly;    /* -r: nothing is sent; -w: nothing received is passed on */
	int halfclose;	     /* the program's output ending is only a half-close: the
				relay goes on until the peer's end too; its stderr is ours */
	const unsigned char *psk; /* -k: the connection is an encrypted channel under it */
	int initiator;	     /* -k: we connected (the handshake's first message is ours) */
	struct channel *ch;  /* -k: conn's channel, its handshake done already (master -x), or NULL */
	int term_ign;	     /* SIGTERM is the program's to act on (pool -x: its group gets it) */
	long end_rest_ms;    /* a subreaper's relay (pool -x): once the program has ended, end
				every other child (proc_end_children, this grace) before exit */
	/* Told of each fault in the relay's process (may be NULL: then nothing is said). */
	void (*on_fault)(const struct pump_fault *f, void *arg);
	void *fault_arg;
};

/*
 * 1 when the program can hold the connection itself, with no relay in
 * between: there is one, and neither -c nor -k has bytes to change.
 */
int pump_direct(const struct relay *r);

/*
 * -k: the channel's handshake on conn (blocking, CHANNEL_HS_MS at most),
 * as r says. Returns the channel, or NULL with errno (channel_strerror
 * with handshake = 1 says it).
 */
struct channel *pump_channel(const struct relay *r, int conn);

/*
 * Start the program a relay talks to: *in gets the pipe carrying its
 * output, *out the one to its input (-1 where -r or -w leaves a direction
 * out: the program keeps our own descriptor there).
 * Returns its pid, or -1 with errno set (nothing left open).
 */
pid_t pump_spawn(const struct relay *r, const struct spawn_env *env, int *in, int *out);

/*
 * In a connection's child: relay between conn and in/out (the program's
 * pipes, or our own stdin/stdout) until the program's output ends, close
 * the connection gracefully (linger.c), wait for the program (prog 0:
 * none). Returns the status the child is to _exit with: the program's (0
 * without one), 128+signal when a signal ended the relay, or 1 after a
 * fault that ended it (p NULL: no memory; a failed handshake).
 */
int pump_relay(const struct relay *r, struct pump *p, int conn, int in, int out, pid_t prog);

/*
 * In a connection's child, which leads its process group: start the
 * program (if any) and relay. Returns the status to _exit with, as
 * pump_relay; 1 when the program could not be started (a fault).
 */
int pump_child(const struct relay *r, int conn, const struct spawn_env *env);

#endif
