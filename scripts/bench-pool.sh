#!/bin/sh
# bench-pool.sh [DAEMONS [LINES]]: one master pushing DAEMONS daemons (default
# 500), each `seq 1 LINES` (default 10000), to one pool on loopback. Prints the
# time until every daemon is connected, lines delivered against lines sent,
# lines/s, and the pool's peak RSS, against the goals of issue 5 (all
# connected within 1 s, every line delivered, RSS <= 32 MiB). Not a test:
# results are printed, never asserted. Called by `make bench`.
set -eu
cd "$(dirname "$0")/.."
B=$PWD/bin
N=${1:-500}
L=${2:-10000}
tmp=$(mktemp -d)
pool="" master=""
cleanup() {
	[ -z "$master" ] || kill "$master" 2>/dev/null || true
	[ -z "$pool" ] || kill "$pool" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ms() { date +%s%3N; }
established() { # connections the pool accepted on the grant range
	ss -Htn state established "( sport >= :$lo and sport <= :$hi )" 2>/dev/null | wc -l
}

mkdir "$tmp/d" "$tmp/buf"
mkfifo "$tmp/go"
# Each daemon waits for the start line, so "connected" is measured apart from sending.
i=1
while [ "$i" -le "$N" ]; do
	printf '#!/bin/sh\nread -r _ <../go\nexec seq 1 %s\n' "$L" >"$tmp/d/dem$i"
	chmod +x "$tmp/d/dem$i"
	i=$((i + 1))
done

lo=$((30000 + $(od -An -N2 -tu2 /dev/urandom) % 8000)) hi=$((lo + N + 99))
for try in 1 2 3 4 5 6 7 8; do
	port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 9000))
	pool=$("$B/pool" -b -l -r "$lo-$hi" -d "$tmp/buf" -L "$tmp/pool.log" k12 "$port" \
		2>/dev/null) && break
	pool=""
done
[ -n "$pool" ] || { echo "bench-pool: no free port for the pool" >&2; exit 1; }

t0=$(now_ms)
"$B/master" k12 127.0.0.1 "$port" "$tmp/d" 2>"$tmp/master.err" &
master=$!
while [ "$(established)" -lt "$N" ]; do
	if ! kill -0 "$master" 2>/dev/null || [ $(($(now_ms) - t0)) -gt 60000 ]; then
		echo "bench-pool: only $(established) of $N connected" >&2
		cat "$tmp/master.err" >&2
		exit 1
	fi
	sleep 0.01
done
t1=$(now_ms)
connect_ms=$((t1 - t0))

# Readers first, then the start line: every daemon sends LINES lines at once.
( for f in "$tmp"/buf/dem*; do cat "$f"; done ) | wc -l >"$tmp/count" &
reader=$!
# One start line per daemon, through a FIFO we hold open, so a daemon that
# reaches its read late still finds its line.
exec 3<>"$tmp/go"
yes go | head -n "$N" >&3
wait "$reader"
t2=$(now_ms)
exec 3>&-
wait "$master" || echo "bench-pool: master exited $?" >&2
master=""
got=$(tr -d ' ' <"$tmp/count")
sent=$((N * L))
send_ms=$((t2 - t1))
[ "$send_ms" -gt 0 ] || send_ms=1
rss_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$pool/status")

ok() { if [ "$1" -eq 1 ]; then echo "goal met"; else echo "GOAL MISSED"; fi; }
echo "pool/master: $N daemons x $L lines on loopback"
printf '  all connected after   %6d ms    (goal <= 1000 ms: %s)\n' "$connect_ms" \
	"$(ok $((connect_ms <= 1000)))"
printf '  lines delivered       %d of %d  (goal: all: %s)\n' "$got" "$sent" \
	"$(ok $((got == sent)))"
printf '  throughput            %6d lines/s (%d ms from start line to last line read)\n' \
	$((got * 1000 / send_ms)) "$send_ms"
printf '  pool peak RSS         %6d KiB   (goal <= 32768 KiB: %s)\n' "$rss_kb" \
	"$(ok $((rss_kb <= 32768)))"
