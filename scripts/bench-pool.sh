#!/bin/sh
# bench-pool.sh [DAEMONS [LINES]]: one master pushing DAEMONS daemons (default
# 500), each `seq 1 LINES` (default 10000), to one pool on loopback; then the
# same job done the way pool replaces, side by side: one `bind-input -1` per
# daemon, each daemon piped into `socket`. Prints the time until every sender
# is connected, lines delivered against lines sent, lines/s, and the
# receiving side's peak RSS, with the ratios and the goals of issue 5 (all
# connected within 1 s, every line delivered, pool RSS <= 32 MiB). Results are
# printed, never asserted. Called by `make bench`.
set -eu
cd "$(dirname "$0")/.."
B=$PWD/bin
N=${1:-500}
L=${2:-10000}
tmp=$(mktemp -d)
pool="" master="" peers="" senders=""
cleanup() {
	for p in $master $pool $peers $senders; do kill "$p" 2>/dev/null || true; done
	# Daemons still waiting for their start line get it, and end.
	if [ -p "$tmp/go" ]; then
		exec 3<>"$tmp/go"
		yes go | head -n "$N" >&3
		exec 3>&-
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now_ms() { date +%s%3N; }
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
established() { # connections accepted on ports lo..hi
	ss -Htn state established "( sport >= :$lo and sport <= :$hi )" 2>/dev/null | wc -l
}
wait_connected() { # until N senders are connected; prints the ms since $t0
	while [ "$(established)" -lt "$N" ]; do
		if [ $(($(now_ms) - t0)) -gt 120000 ]; then
			echo "bench-pool: only $(established) of $N connected" >&2
			exit 1
		fi
		sleep 0.01
	done
	echo $(($(now_ms) - t0))
}
# Give every daemon its start line and read every buffer; prints "lines ms".
deliver() { # BUFDIR
	t1=$(now_ms)
	(for f in "$1"/dem*; do cat "$f"; done) | wc -l >"$tmp/count" &
	r=$!
	# One line per daemon through a FIFO we hold open, so a late daemon still finds its own.
	exec 3<>"$tmp/go"
	yes go | head -n "$N" >&3
	wait "$r"
	echo "$(tr -d ' ' <"$tmp/count") $(($(now_ms) - t1))"
	exec 3>&-
}
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

mkdir "$tmp/d" "$tmp/buf" "$tmp/pbuf"
mkfifo "$tmp/go"
# Each daemon waits for its start line, so "connected" is measured apart from sending.
i=1
while [ "$i" -le "$N" ]; do
	printf '#!/bin/sh\nread -r _ <%s\nexec seq 1 %s\n' "$tmp/go" "$L" >"$tmp/d/dem$i"
	chmod +x "$tmp/d/dem$i"
	i=$((i + 1))
done
sent=$((N * L))

# ---- pool and master ----
# Ports below Linux's ephemeral range, so no outgoing connection is counted as ours.
lo=$((20000 + $(rand) % 5000)) hi=$((lo + N + 99))
for try in 1 2 3 4 5 6 7 8; do
	port=$((20000 + $(rand) % 9000))
	pool=$("$B/pool" -b -l -r "$lo-$hi" -d "$tmp/buf" -L "$tmp/pool.log" k12 "$port" \
		2>/dev/null) && break
	pool=""
done
[ -n "$pool" ] || { echo "bench-pool: no free port for the pool" >&2; exit 1; }
t0=$(now_ms)
"$B/master" k12 127.0.0.1 "$port" "$tmp/d" 2>"$tmp/master.err" &
master=$!
pool_conn=$(wait_connected)
set -- $(deliver "$tmp/buf")
pool_got=$1 pool_ms=$2
wait "$master" || echo "bench-pool: master exited $?" >&2
master=""
pool_rss=$(hwm "$pool")
kill "$pool"
pool=""

# ---- the peer: a bind-input -1 per daemon, each daemon piped into socket ----
lo=$((hi + 1)) next=$lo
t0=$(now_ms)
i=1
while [ "$i" -le "$N" ]; do
	tries=0 # a port some other program holds is skipped, as pool -r does
	until p=$(BIND_DIR="$tmp/pbuf" "$B/bind-input" -1 "dem$i" "$next" 2>/dev/null); do
		next=$((next + 1)) tries=$((tries + 1))
		[ "$tries" -lt 100 ] || { echo "bench-pool: bind-input keeps failing" >&2; exit 1; }
	done
	peers="$peers $p"
	("$tmp/d/dem$i" | "$B/socket" 127.0.0.1 "$next") &
	senders="$senders $!"
	next=$((next + 1)) i=$((i + 1))
done
hi=$((next - 1))
peer_conn=$(wait_connected)
peer_rss=0
for p in $peers; do peer_rss=$((peer_rss + $(hwm "$p"))); done
set -- $(deliver "$tmp/pbuf")
peer_got=$1 peer_ms=$2
wait
senders="" peers=""

goal() { if [ "$1" -eq 1 ]; then echo "goal met"; else echo "GOAL MISSED"; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3g", b ? a / b : 0 }'; }
[ "$pool_ms" -gt 0 ] || pool_ms=1
[ "$peer_ms" -gt 0 ] || peer_ms=1
pool_lps=$((pool_got * 1000 / pool_ms)) peer_lps=$((peer_got * 1000 / peer_ms))
echo "pool/master: $N daemons x $L lines on loopback, against $N x (bind-input -1 + socket)"
printf '  %-22s %14s %14s %8s\n' "" "pool/master" "bind-input" "ratio"
printf '  %-22s %11d ms %11d ms %8s   (pool: goal <= 1000 ms: %s)\n' "all connected after" \
	"$pool_conn" "$peer_conn" "$(ratio "$peer_conn" "$pool_conn")x" \
	"$(goal $((pool_conn <= 1000)))"
printf '  %-22s %14d %14d %8s   (of %d sent: %s)\n' "lines delivered" "$pool_got" "$peer_got" \
	"" "$sent" "$(goal $((pool_got == sent)))"
printf '  %-22s %14d %14d %8s\n' "lines/s" "$pool_lps" "$peer_lps" \
	"$(ratio "$pool_lps" "$peer_lps")x"
printf '  %-22s %10d KiB %10d KiB %8s   (pool: goal <= 32768 KiB: %s)\n' \
	"receiver peak RSS" "$pool_rss" "$peer_rss" "$(ratio "$pool_rss" "$peer_rss")x" \
	"$(goal $((pool_rss <= 32768)))"
echo "  (connect ratio: peer time / pool time; RSS: pool / sum over the bind-inputs)"
