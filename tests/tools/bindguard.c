/*
 * bindguard: drive the binding engine the way pool does, for the tests:
 * several input bindings in one process and one poll loop, with the
 * guard (token, peer address) that bind-input's command line does not
 * expose.
 *
 * usage: bindguard [-1] [-t token] [-a address] [-w ms] path...
 *
 * Listens on a kernel-chosen port per path (127.0.0.1 and ::1 alike) and
 * prints the ports, one line each, in order. Events go to stderr, one
 * line each. Exits 0 when every binding is done, 128+signal after a
 * teardown that saves unread bytes ("saved PATH N").
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/binding.h"
#include "lib/err.h"
#include "lib/guard.h"
#include "lib/sig.h"

static const char *const evname[] = {"accept", "close", "reject", "error", "done", "saved"};

static void on_event(const struct binding_event *ev, void *arg)
{
	fprintf(stderr, "%s %s %s%s%s\n", (const char *)arg, evname[ev->type], ev->peer,
		ev->why ? ": " : "", ev->why ? ev->why : "");
	fflush(stderr);
}

int main(int argc, char **argv)
{
	struct binding_config cfg = {.port = "0"};
	const char *token = NULL, *addr = NULL;
	struct guard *guards;
	long wait_ms = 0;
	struct binding **b;
	struct pollfd *pfd;
	size_t *at, *cnt, nb, room = 1, live;
	int c, sigfd;

	err_init(argv[0]);
	while ((c = getopt(argc, argv, "1a:t:w:")) != -1) {
		switch (c) {
		case '1': cfg.flags |= BINDING_ONCE; break;
		case 'a': addr = optarg; break;
		case 't': token = optarg; break;
		case 'w': wait_ms = atol(optarg); break;
		default: return 2;
		}
	}
	nb = (size_t)(argc - optind);
	if (nb == 0)
		return 2;
	sigfd = sig_init(0);
	b = calloc(nb, sizeof *b);
	at = calloc(nb, sizeof *at);
	cnt = calloc(nb, sizeof *cnt);
	guards = calloc(nb, sizeof *guards);
	if (!b || !at || !cnt || !guards)
		err_die(1, "memory:");
	cfg.on_event = on_event;
	for (size_t i = 0; i < nb; i++) {
		pid_t holder;
		int gai;

		/* One guard per binding, as pool gives each grant its own token. */
		if (token || addr) {
			guard_init(&guards[i], !!(cfg.flags & BINDING_ONCE), wait_ms);
			if (guard_add(&guards[i], token ? token : "", addr, NULL, 0) < 0)
				err_die(1, "guard:");
			cfg.guard = &guards[i].hook;
		}
		cfg.path = argv[optind + (int)i];
		cfg.arg = argv[optind + (int)i];
		b[i] = binding_open(&cfg, &holder, &gai);
		if (!b[i]) {
			int saved = errno;

			while (i-- > 0)
				binding_close(b[i], 0);
			errno = saved;
			err_die(1, "%s:", cfg.path);
		}
		room += binding_nfds(b[i]);
		printf("%d\n", binding_port(b[i]));
	}
	fflush(stdout);
	pfd = calloc(room, sizeof *pfd);
	if (!pfd)
		err_die(1, "memory:");
	for (live = nb; live > 0;) {
		size_t n = 1;
		int timeout = -1, sig;

		pfd[0] = (struct pollfd){.fd = sigfd, .events = POLLIN};
		for (size_t i = 0; i < nb; i++) {
			int t;

			if (!b[i])
				continue;
			at[i] = n;
			cnt[i] = binding_pollfds(b[i], pfd + n);
			n += cnt[i];
			t = binding_timeout(b[i]);
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			err_die(1, "poll:");
		if (pfd[0].revents && (sig = sig_drain(NULL))) {
			for (size_t i = 0; i < nb; i++)
				if (b[i])
					fprintf(stderr, "saved %s %lld\n", argv[optind + (int)i],
						binding_close(b[i], 1));
			free(pfd);
			free(b);
			free(at);
			free(cnt);
			free(guards);
			return EXIT_SIGNAL(sig);
		}
		for (size_t i = 0; i < nb; i++) {
			if (!b[i])
				continue;
			if (binding_handle(b[i], pfd + at[i], cnt[i]) < 0)
				err_warn("%s:", argv[optind + (int)i]);
			if (binding_done(b[i])) {
				binding_close(b[i], 1);
				b[i] = NULL;
				live--;
			}
		}
	}
	free(pfd);
	free(b);
	free(at);
	free(cnt);
	free(guards);
	return 0;
}
