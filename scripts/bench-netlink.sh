#!/bin/sh
# bench-netlink.sh: what the test network itself carries (scripts/netns-lib.sh,
# tests/bin/delaylink): one socat stream from namespace A to B at several
# one-way delays (256 KiB reads and writes), so that a bench which compares
# programs over the link knows the link's ceiling. Not a test: it never
# fails on a slow result. Needs root. Delays are whole milliseconds.
#
# Method as bench-bind.sh's: interleaved rounds, medians, slowest and fastest
# beside them. At a long delay one stream is bounded by its TCP window
# (tcp_wmem's maximum / the round trip), not by the forwarder: the last
# column, with BENCH_TCPBUF bytes allowed per socket, shows the forwarder's.
#
#   BENCH_BYTES   bytes per run (default 256 MiB)
#   BENCH_DELAYS  one-way delays in ms (default "0 10 50": 0, 20, 100 ms RTT)
#   BENCH_RUNS    rounds (default 3)
#   BENCH_TCPBUF  TCP buffer maximum for the second set of rows (default 64 MiB)
set -u
cd "$(dirname "$0")/.." || exit 1
BYTES=${BENCH_BYTES:-268435456}
DELAYS=${BENCH_DELAYS:-0 10 50}
RUNS=${BENCH_RUNS:-3}
TCPBUF=${BENCH_TCPBUF:-67108864}
FREEPORT=tests/bin/freeport
# socat's 8 KiB default would time socat's system calls, not the link
BLOCK=262144

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
# shellcheck source=scripts/netns-lib.sh
. scripts/netns-lib.sh
need bench-netlink socat ss ip tests/bin/delaylink "$FREEPORT"
[ "$(id -u)" -eq 0 ] || { echo "bench-netlink: needs root (network namespaces)" >&2; exit 1; }
head -c "$BYTES" /dev/zero >"$mem/data"

# run_stream: BYTES from A to B over the link that is up; sets ns
run_stream() {
	port=$(in_b "$FREEPORT") || return 1
	in_b socat -b "$BLOCK" -u "TCP-LISTEN:$port,bind=$NETNS_ADDR_B,reuseaddr" STDOUT >/dev/null &
	recv=$!
	pids="$pids $recv"
	netns_wait_port b "$port" || return 1
	start=$(now_ns)
	in_a socat -b "$BLOCK" -u "OPEN:$mem/data" "TCP:$NETNS_ADDR_B:$port" || return 1
	wait "$recv"
	end=$(now_ns)
	ns=$((end - start))
}

# Rows: DELAY-host (the namespaces' TCP buffers as the host's) and DELAY-big.
rows=""
for d in $DELAYS; do rows="$rows $d-host $d-big"; done
r=0
while [ "$r" -lt "$RUNS" ]; do
	# shellcheck disable=SC2086 # one row a word
	for row in $(rotate "$r" $rows); do
		netns_up "${row%-*}" || exit 1
		[ "${row#*-}" = host ] || netns_tcp_buf "$TCPBUF" || exit 1
		if run_stream; then
			eval "t_$(echo "$row" | tr - _)=\"\${t_$(echo "$row" | tr - _):-} $ns\""
		fi
		netns_down
	done
	r=$((r + 1))
done

wmem=$(sysctl -n net.ipv4.tcp_wmem | awk '{ print $3 }')
printf '%-10s %-8s %26s %26s\n' "one-way" "RTT" "tcp_wmem max $wmem" "tcp buffers $TCPBUF"
for d in $DELAYS; do
	stats "t_${d}_host"
	host="$(mbps "$BYTES" "$med") MiB/s ($(mbps "$BYTES" "$hi")-$(mbps "$BYTES" "$lo"))"
	stats "t_${d}_big"
	big="$(mbps "$BYTES" "$med") MiB/s ($(mbps "$BYTES" "$hi")-$(mbps "$BYTES" "$lo"))"
	printf '%-10s %-8s %26s %26s\n' "$d ms" "$((2 * d)) ms" "$host" "$big"
done
