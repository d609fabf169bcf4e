#!/bin/sh
# bench-net.sh: the programs across a slow path (issue 20), on the test
# network (scripts/netns-lib.sh: namespaces A and B joined by
# tests/bin/delaylink) at 0, 20 and 100 ms round trips. Not a test: it
# prints, never fails on a slow result. Needs root. Called by `make bench`.
#
# (a) master's start: N one-line daemons (100 and 1000) pushed by master in A
#     to an encrypted spooling pool (pool -a) in B; the time from master's
#     start to the pool's end (a one-shot spooling pool ends once every
#     sender has closed: every line delivered). What the path adds is that
#     time less the same at 0 ms, in round trips. Goal (issue 20): at a
#     100 ms round trip at most 10 round trips (1 s) more than at 0 ms, for
#     100 and for 1000 daemons alike (flat in N). Starting 1000 processes
#     costs what it costs on this machine; it is the same at every delay.
# (b) bulk: BENCH_NET_BYTES of text from tmpfs, A to B: cat into
#     bind-output's FIFO -> bind-input -1 -R's FIFO -> sha256sum, against
#     socat -> socat and nc -> nc (each into sha256sum) on the same link;
#     every run's sha256 is checked against the data's (so its byte count
#     too). Each row's time runs from the start of its sender (bind-output
#     and socat both connect inside it) to the end of the reader. Goal
#     (issue 20): >= 0.9x socat at a 100 ms round trip; and >= 1.0x nc on
#     loopback, which bench-bind.sh measures (the 0 ms row here crosses the
#     forwarder, not loopback, and shows the same ratio for reference).
#
# TCP buffers (netns_up --tcp-buf, BENCH_TCPBUF, default 64 MiB): a TCP
# stream moves at most one window a round trip, and a socket's window is
# bounded by tcp_wmem's and tcp_rmem's maximum, which namespaces take from
# the host (tcp_wmem's is 4 MiB here: 40 MiB/s at 100 ms, whatever the path
# carries). The link itself carries some hundreds of MiB/s
# (bench-netlink.sh), a bandwidth-delay product of tens of MiB at 100 ms, so
# the maximum is raised to 64 MiB in both namespaces, which covers that
# product: socat's window then grows to what the path allows, and a row that
# stays below it shows what the program's own window (bind-output's
# retention: the autotuned send buffer, at most 32 MiB) costs, not the
# host's defaults. Programs that set their buffers themselves are not changed by
# it; the kernel's autotuning of the others is only allowed to go that far.
#
# Method as in bench-bind.sh and bench-pool.sh: interleaved rounds, medians,
# the lowest and highest round beside them. Each round takes the delays in
# an order rotated by one a round, brings the link up for each, and runs
# every row once on it, the rows' order rotated too. A run is INVALID, left
# out of the medians and listed at the end, when master or the pool did not
# exit 0, master said anything, the pool refused a connection ("no token in
# time"), a daemon's line is missing or doubled, a bulk run's sha256 is not
# the data's, anything was saved to an .unread file, or a run passed
# BENCH_DEADLINE seconds (then it is killed).
#
#   BENCH_RUNS         rounds (default 3)
#   BENCH_NET_DELAYS   one-way delays in ms (default "0 10 50")
#   BENCH_NET_DAEMONS  daemon counts for (a) (default "100 1000")
#   BENCH_NET_BYTES    bytes a bulk run (default 64 MiB; at least 24 MB is
#                      meaningful at 100 ms: TCP's slow start is a few
#                      round trips of it)
#   BENCH_TCPBUF       TCP buffer maximum in both namespaces (default 64 MiB)
#   BENCH_DEADLINE     seconds a run may take (default 120)
set -u
cd "$(dirname "$0")/.." || exit 1
B=${SP_BIN:-$PWD/bin}
RUNS=${BENCH_RUNS:-3}
DELAYS=${BENCH_NET_DELAYS:-0 10 50}
DAEMONS=${BENCH_NET_DAEMONS:-100 1000}
BYTES=${BENCH_NET_BYTES:-67108864}
TCPBUF=${BENCH_TCPBUF:-67108864}
DEADLINE=${BENCH_DEADLINE:-120}
FREEPORT=$PWD/tests/bin/freeport
KEY=k12
# socat's 8 KiB default would time socat's system calls, not the link
BLOCK=262144
LINE='the quick brown fox jumps over the lazy dog, a line of seventy bytes.'

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
# shellcheck source=scripts/netns-lib.sh
. scripts/netns-lib.sh
need bench-net socat nc ss ip sha256sum cksum "$B/pool" "$B/master" "$B/bind-input" \
	"$B/bind-output" "$FREEPORT" tests/bin/delaylink
[ "$(id -u)" -eq 0 ] || { echo "bench-net: needs root (network namespaces)" >&2; exit 1; }

ms() { echo $((($1 + 500000) / 1000000)); } # NS: whole milliseconds
add() { eval "$1=\"\${$1:-} \$2\""; }      # VAR VALUE: append a figure (digits only)
# note WHAT: what made this run INVALID, listed at the end
note() {
	bad=$((bad + 1))
	printf '  round %d, %d ms RTT, %s: %s\n' $((r + 1)) $((2 * d)) "$row" "$*" >>"$tmp/notes"
}
# watchdog PID...: kill the PIDs (and note it in $tmp/expired) after
# DEADLINE s, unless killed first; sets wd
watchdog() {
	rm -f "$tmp/expired"
	# shellcheck disable=SC2016 # expanded by that shell
	sh -c 'nap() { sleep "$1" & s=$!; wait "$s"; }
		trap "kill \$s 2>/dev/null; exit 0" TERM
		nap "$1" || exit 0
		: >"$2"
		shift 2
		kill "$@" 2>/dev/null' sh "$DEADLINE" "$tmp/expired" "$@" &
	wd=$!
	pids="$pids $wd"
}
unwatch() {
	kill "$wd" 2>/dev/null
	wait "$wd"
	[ ! -e "$tmp/expired" ] || note "not done within $DEADLINE s: killed"
}

# ---- (a) master's start ----

# run_master N: sets ns, from master's start to the pool's end
run_master() {
	n=$1
	rm -rf "$tmp/spool" "$tmp/pool.log" "$tmp/pool.err" "$tmp/master.err"
	mkdir "$tmp/spool" || return 1
	port=$(in_b "$FREEPORT") || return 1
	ip netns exec "$NETNS_B" "$B/pool" -a -d "$tmp/spool" -L "$tmp/pool.log" "$KEY" "$port" \
		2>"$tmp/pool.err" &
	pool=$!
	pids="$pids $pool"
	netns_wait_port b "$port" || { note "the pool did not listen: $(cat "$tmp/pool.err")"; return 1; }
	start=$(now_ns)
	ip netns exec "$NETNS_A" "$B/master" "$KEY" "$NETNS_ADDR_B" "$port" "$tmp/d$n" 2>"$tmp/master.err" &
	m=$!
	pids="$pids $m"
	watchdog "$pool" "$m"
	wait "$pool"
	prc=$?
	end=$(now_ns)
	wait "$m"
	mrc=$?
	unwatch
	ns=$((end - start))
	[ "$prc" -eq 0 ] || note "the pool exited $prc"
	[ "$mrc" -eq 0 ] || note "master exited $mrc"
	[ ! -s "$tmp/master.err" ] || note "master said: $(head -n 1 "$tmp/master.err")"
	refused=$(grep -c -e "no token in time" -e refused "$tmp/pool.log")
	[ "$refused" -eq 0 ] || note "the pool refused connections: $(grep -m 1 -e "no token in time" -e refused "$tmp/pool.log")"
	files=$(find "$tmp/spool" -type f | wc -l)
	[ "$files" -eq "$n" ] || note "$files files spooled for $n daemons"
	got=$(find "$tmp/spool" -type f -exec cat {} + | sort | cksum)
	[ "$got" = "$(cat "$tmp/want$n")" ] || note "the spooled lines are not one per daemon"
}

# ---- (b) bulk ----

# run_bind: cat > bind-output's FIFO in A -> bind-input -1 -R in B -> sha256sum
run_bind() {
	rm -f "$tmp/sum" "$tmp/out1.unread" "$tmp/in1.unread"
	port=$(in_b "$FREEPORT") || return 1
	inpid=$(in_b "$B/bind-input" -1 -R -L "$tmp/in.log" "$tmp/in1" "$port") || return 1
	pids="$pids $inpid"
	sha256sum <"$tmp/in1" >"$tmp/sum" &
	reader=$!
	pids="$pids $reader"
	start=$(now_ns)
	outpid=$(in_a "$B/bind-output" -L "$tmp/out.log" "$tmp/out1" "$NETNS_ADDR_B" "$port") || return 1
	pids="$pids $outpid"
	watchdog "$outpid" "$inpid" "$reader"
	cat "$mem/data" >"$tmp/out1"
	kill "$outpid" # its teardown sends what is left, then ends the stream
	wait "$reader"
	end=$(now_ns)
	wait_gone "$outpid"
	wait_gone "$inpid"
	unwatch
	ns=$((end - start))
	for f in "$tmp/out1.unread" "$tmp/in1.unread"; do
		[ ! -e "$f" ] || note "$(stat -c %s "$f") bytes saved to ${f##*/}"
	done
	[ "$(cat "$tmp/sum")" = "$sum" ] || note "sha256 not the data's"
}

# run_peer socat|nc: the same stream from peer to peer
run_peer() {
	rm -f "$tmp/sum"
	port=$(in_b "$FREEPORT") || return 1
	if [ "$1" = socat ]; then
		ip netns exec "$NETNS_B" socat -b "$BLOCK" -u \
			"TCP-LISTEN:$port,bind=$NETNS_ADDR_B,reuseaddr" STDOUT | sha256sum >"$tmp/sum" &
	else
		ip netns exec "$NETNS_B" nc -l "$NETNS_ADDR_B" "$port" </dev/null | sha256sum >"$tmp/sum" &
	fi
	reader=$!
	pids="$pids $reader"
	netns_wait_port b "$port" || { note "the receiver did not listen"; return 1; }
	start=$(now_ns)
	if [ "$1" = socat ]; then
		ip netns exec "$NETNS_A" socat -b "$BLOCK" -u "OPEN:$mem/data" "TCP:$NETNS_ADDR_B:$port" &
	else
		ip netns exec "$NETNS_A" nc -N "$NETNS_ADDR_B" "$port" <"$mem/data" &
	fi
	sender=$!
	pids="$pids $sender"
	watchdog "$sender" "$reader"
	wait "$reader"
	end=$(now_ns)
	wait "$sender" || note "the sender failed"
	unwatch
	ns=$((end - start))
	[ "$(cat "$tmp/sum")" = "$sum" ] || note "sha256 not the data's"
}

# run_row ROW: one run of it on the link that is up; its figure appended
# to t_ROW_DELAY, or, when anything was noted, counted in inv_ROW_DELAY
run_row() {
	bad=0
	case $1 in
	m*) run_master "${1#m}" ;;
	bind) run_bind ;;
	socat | nc) run_peer "$1" ;;
	esac || note "the run did not start"
	# what the run left (none, when all went well: reaped already)
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait_gone "$p"; done
	pids=""
	if [ "$bad" -gt 0 ]; then
		eval "inv_$1_$d=\$((\${inv_$1_$d:-0} + 1))"
		return 0
	fi
	add "t_$1_$d" "$ns"
}

# ---- the data, the daemons, the rounds ----

# shellcheck disable=SC3045 # ulimit -n: dash, bash, busybox and ksh have it
fds=$(ulimit -n)
mrows=""
for n in $DAEMONS; do
	# master holds a pipe and a connection a daemon, the pool a listener, a
	# connection and a file
	if [ "$fds" != unlimited ] && [ "$fds" -lt $((4 * n + 64)) ]; then
		# shellcheck disable=SC3045
		ulimit -n $((4 * n + 64)) 2>/dev/null || {
			echo "bench-net: $n daemons need $((4 * n + 64)) descriptors, ulimit -n is $fds: row skipped" >&2
			continue
		}
	fi
	mkdir "$tmp/d$n" || exit 1
	i=1
	while [ "$i" -le "$n" ]; do
		# shellcheck disable=SC2016 # the daemon's variable
		printf '#!/bin/sh\necho "hello from $DAEMON_NAME"\n' >"$tmp/d$n/dem$i"
		chmod +x "$tmp/d$n/dem$i"
		echo "hello from dem$i"
		i=$((i + 1))
	done | sort | cksum >"$tmp/want$n"
	mrows="$mrows m$n"
done
yes "$LINE" | head -c "$BYTES" >"$mem/data"
sum=$(sha256sum <"$mem/data")
: >"$tmp/notes"
ROWS="$mrows bind socat nc"

echo "bench-net: across delaylink at $(for d in $DELAYS; do printf '%s ' $((2 * d)); done)ms round trips, TCP buffers up to $TCPBUF"
echo "median of $RUNS interleaved rounds; range: lowest-highest round; every run checked"
r=0
while [ "$r" -lt "$RUNS" ]; do
	# shellcheck disable=SC2086 # lists of plain words
	for d in $(rotate "$r" $DELAYS); do
		netns_up "$d" --tcp-buf "$TCPBUF" || { echo "bench-net: the link did not come up" >&2; exit 1; }
		for row in $(rotate "$r" $ROWS); do
			run_row "$row"
		done
		netns_down
	done
	r=$((r + 1))
done

# med ROW DELAY: sets med lo hi (ns) and says whether there is a figure
med() { stats "t_$1_$2"; }
inv() { eval "_i=\${inv_$1_$2:-0}"; [ "$_i" -eq 0 ] || printf ', %d INVALID' "$_i"; }
trim() { printf '%s\n' "${1%"${1##*[! ]}"}"; } # without trailing blanks
# shellcheck disable=SC2086 # a list of plain words
set -- $DELAYS
d0=$1

echo
echo "(a) master's start: one-line daemons, encrypted pool (-a) in B, master in A;"
echo "    master's start to the pool's end; extra: over the same at $((2 * d0)) ms, in round trips"
for row in $mrows; do
	n=${row#m}
	med "$row" "$d0" && base=$med || base=""
	for d in $DELAYS; do
		if med "$row" "$d"; then
			fig="$(ms "$med") ms ($(ms "$lo")-$(ms "$hi"))"
			extra=""
			if [ "$d" -ne "$d0" ] && [ -n "$base" ]; then
				rt=$(awk -v a="$med" -v b="$base" -v d="$d" 'BEGIN { printf "%.1f", (a - b) / (2 * d * 1e6) }')
				extra=$(awk -v a="$med" -v b="$base" -v rt="$rt" \
					'BEGIN { printf "%+.0f ms = %+.1f RTT", (a - b) / 1e6, rt }')
				[ "$d" -ne 50 ] || extra="$extra $(awk -v x="$rt" 'BEGIN { print (x <= 10 ? "(goal <= 10: met)" : "(goal <= 10: MISSED)") }')"
			fi
		else
			fig="-" extra=""
		fi
		trim "$(printf '  %5d daemons %4d ms RTT  %-24s %s%s' "$n" $((2 * d)) "$fig" "$extra" "$(inv "$row" "$d")")"
	done
done

mib=$((BYTES / 1048576))
echo
echo "(b) bulk: $mib MiB of text from tmpfs, A -> B, sha256 checked; MiB/s"
rate() { # ROW DELAY: "median (lowest-highest)" MiB/s
	if med "$1" "$2"; then
		printf '%s (%s-%s)' "$(mbps "$BYTES" "$med")" "$(mbps "$BYTES" "$hi")" "$(mbps "$BYTES" "$lo")"
	else
		printf -- -
	fi
}
ratio() { # OURS PEER DELAY: peer's median time / ours
	if med "$1" "$3"; then _a=$med; else _a=0; fi
	if med "$2" "$3"; then _b=$med; else _b=0; fi
	awk -v a="$_a" -v b="$_b" 'BEGIN { if (a > 0 && b > 0) printf "%.2fx", b / a; else printf "n/a" }'
}
printf '  %-8s %-22s %-22s %-22s %-9s %s\n' RTT "bind-output->input" "socat->socat" "nc->nc" "x socat" "x nc"
for d in $DELAYS; do
	goal=""
	if [ "$d" -eq 50 ]; then
		goal=$(ratio bind socat "$d" | awk '{ x = $1 + 0; print (x >= 0.9 ? "(goal >= 0.9x socat: met)" : "(goal >= 0.9x socat: MISSED)") }')
	fi
	trim "$(printf '  %-8s %-22s %-22s %-22s %-9s %-6s %s%s%s%s' "$((2 * d)) ms" "$(rate bind "$d")" \
		"$(rate socat "$d")" "$(rate nc "$d")" "$(ratio bind socat "$d")" "$(ratio bind nc "$d")" \
		"$goal" "$(inv bind "$d")" "$(inv socat "$d")" "$(inv nc "$d")")"
done
if [ -s "$tmp/notes" ]; then
	echo
	echo "INVALID runs (left out of the medians):"
	cat "$tmp/notes"
fi
exit 0
