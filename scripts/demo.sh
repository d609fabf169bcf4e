#!/bin/sh
# `make demo`: a pool and a master on loopback. The master pushes the sample
# daemons of examples/daemons/ to the pool; their lines arrive in the pool's
# buffers (FIFOs named after them), which we read for a few seconds with cat.
# Then everything is torn down, on any exit: the end, an error, a signal, or
# a reader that went away (`make demo | head -3`: SIGPIPE at our next line).
set -eu
cd "$(dirname "$0")/.."
B=$PWD/bin
D=$PWD/examples/daemons
tmp=$(mktemp -d)
pool="" master="" readers=""
cleanup() {
	for p in $readers $master $pool; do kill "$p" 2>/dev/null || true; done
	# The daemons tear down on SIGTERM (the pool saves unread bytes): let them finish.
	for p in $master $pool; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
# dash runs the EXIT trap on exit, not on death by a signal: make each an exit.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
# A line for the reader; a reader gone is an end, not an error to print.
say() { printf '%s\n' "$*" 2>/dev/null || exit 141; }

# A free port for the pool: try a few at random (pool fails at once if taken).
for try in 1 2 3 4 5 6 7 8; do
	port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
	pool=$("$B/pool" -b -d "$tmp" -L "$tmp/pool.log" k12 "$port" 2>/dev/null) && break
	pool=""
done
[ -n "$pool" ] || { echo "demo: no free port for the pool" >&2; exit 1; }
say "== pool -b -d BUFDIR k12 $port              -> PID $pool"
master=$("$B/master" -b -L "$tmp/master.log" k12 127.0.0.1 "$port" "$D")
say "== master -b k12 127.0.0.1 $port $D  -> PID $master"
say "   the key never crosses the wire: both prove it in a Noise handshake, then all is encrypted"
i=0
until [ -p "$tmp/dem1" ] && [ -p "$tmp/dem2" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: buffers did not appear" >&2; exit 1; }
	sleep 0.05
done
say "== buffers on the pool side: $(cd "$tmp" && ls -p | grep -v / | grep -v log | tr '\n' ' ')"
say "== reading them for 4 seconds (while read -r line; do ...; done < dem1)"
for b in dem1 dem2; do
	# say: a reader whose stdout went away ends quietly, whatever SIGPIPE's disposition.
	(while read -r line; do say "   [$b buffer] $line"; done <"$tmp/$b") &
	readers="$readers $!"
done
sleep 4
say "== SIGTERM to the master: it ends its daemons; the bindings drain and end"
kill "$master"
for r in $readers; do wait "$r" 2>/dev/null || true; done
readers=""
i=0
while kill -0 "$pool" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "demo: pool still running" >&2; exit 1; }
	sleep 0.05
done
say "== the pool exited on its own; left behind in the buffer directory: $(ls "$tmp" | grep -v log || echo nothing)"
pool="" master=""
