#!/bin/sh
# trials-teardown.sh [N]: issue 20's "exact at teardown" (tests/net.bats)
# N times (default 50) for each mode, plain and encrypted (-k), and the
# counts: in how many trials what a writer's write()s accepted was exactly
# what the receiver got plus the .unread files, in order, no byte twice; in
# how many bytes were doubled, and in how many lost, with how many.
#
# A trial: two network namespaces joined by tests/bin/delaylink at
# TRIALS_DELAY ms one way (default 50: a 100 ms round trip). In B,
# bind-input -R (-k -R) and `records drain` reading its FIFO; in A,
# bind-output (-k) and `records write` writing numbered 16-byte records into
# its FIFO, 4 KiB a write, until a write fails. Once 2 MiB have arrived,
# bind-output gets SIGTERM while the writer goes on; once bind-output has
# ended and its connection is over, the drain stops and bind-input gets
# SIGTERM. Then `records check` compares: accepted == got + in1.unread +
# out1.unread.
#
# Not a test: it prints, and exits 0 whatever the counts (1 when a trial
# could not be run at all). Needs root. Not run by `make bench` (its name is
# not bench-*). A trial takes 6-8 s, most of it bind-output's teardown (it
# reads a writer that never closes for 5 s).
#
#   TRIALS_DELAY  one-way delay in ms (default 50)
#   TRIALS_MODES  which modes (default "plain k")
#   TRIALS_BYTES  bytes to arrive before the SIGTERM (default 2097152)
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-50}
DELAY=${TRIALS_DELAY:-50}
MODES=${TRIALS_MODES:-plain k}
BEFORE=${TRIALS_BYTES:-2097152}
B=${SP_BIN:-$PWD/bin}
REC=$PWD/tests/bin/records
FREEPORT=$PWD/tests/bin/freeport
KEY=k12

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
# shellcheck source=scripts/netns-lib.sh
. scripts/netns-lib.sh
need trials-teardown ss ip "$B/bind-input" "$B/bind-output" "$REC" "$FREEPORT" tests/bin/delaylink
[ "$(id -u)" -eq 0 ] || { echo "trials-teardown: needs root (network namespaces)" >&2; exit 1; }

# poll TRIES CMD...: CMD every 20 ms until it succeeds, at most TRIES times
poll() {
	_n=$1
	shift
	until "$@"; do
		_n=$((_n - 1))
		[ "$_n" -gt 0 ] || return 1
		sleep 0.02
	done
}
# shellcheck disable=SC2317 # run by poll
at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
# shellcheck disable=SC2317
connection_over() { [ -z "$(in_b ss -Htn state established state close-wait "( sport = :$1 )")" ]; }
fail() { echo "trials-teardown: $mode trial $t: $*" >&2; exit 1; }
ms() { echo $((($2 - $1) / 1000000)); } # T0_NS T1_NS

# trial MODE: one trial; sets verdict (the check's last line), doubled, lost, td_ms
trial() {
	rm -f "$tmp/got" "$tmp/in1.unread" "$tmp/out1.unread" "$tmp/accepted" "$tmp/started"
	k=""
	[ "$1" = plain ] || k="-k $KEY"
	port=$(in_b "$FREEPORT") || fail "no free port"
	# shellcheck disable=SC2086 # $k: no word, or two
	inpid=$(in_b "$B/bind-input" -R $k -L "$tmp/in.log" "$tmp/in1" "$port") || fail "bind-input did not start"
	# shellcheck disable=SC2086
	outpid=$(in_a "$B/bind-output" $k -L "$tmp/out.log" "$tmp/out1" "$NETNS_ADDR_B" "$port") ||
		fail "bind-output did not start"
	"$REC" drain "$tmp/in1" "$tmp/got" >/dev/null &
	drain=$!
	pids="$pids $drain"
	"$REC" write -m "$tmp/started" "$tmp/out1" >"$tmp/accepted" &
	writer=$!
	pids="$pids $writer"
	poll 500 test -e "$tmp/started" || fail "the writer did not start"
	poll 3000 at_least "$tmp/got" "$BEFORE" || fail "$BEFORE bytes did not arrive in 60 s"
	t0=$(now_ns)
	kill -TERM "$outpid"
	wait_gone "$writer" 3000 || fail "the writer was not stopped in 60 s"
	wait "$writer"
	wait_gone "$outpid" 3000 || fail "bind-output did not end in 60 s"
	td_ms=$(ms "$t0" "$(now_ns)")
	poll 3000 connection_over "$port" || fail "the connection is not over after 60 s"
	kill -TERM "$drain"
	wait "$drain"
	kill -TERM "$inpid"
	wait_gone "$inpid" 1500 || fail "bind-input did not end in 30 s"
	pids=""
	"$REC" check "$(cat "$tmp/accepted")" "$tmp/got" "$tmp/in1.unread" "$tmp/out1.unread" >"$tmp/check"
	[ $? -le 1 ] || fail "records check: $(cat "$tmp/check")"
	verdict=$(tail -n 1 "$tmp/check")
	verdict=${verdict#records: }
	doubled=0 lost=0
	case $verdict in
	"NOT EXACT: "*)
		# shellcheck disable=SC2086 # its words: D doubled, L lost, ...
		set -- ${verdict#NOT EXACT: }
		doubled=$1 lost=$3
		;;
	esac
}

# minmax VAR VALUE: the least and most of a mode's nonzero figures, "lo-hi"
minmax() {
	eval "_v=\${$1:-}"
	if [ -z "$_v" ]; then
		eval "$1=\"$2-$2\""
		return
	fi
	_lo=${_v%-*} _hi=${_v#*-}
	[ "$2" -ge "$_lo" ] || _lo=$2
	[ "$2" -le "$_hi" ] || _hi=$2
	eval "$1=\"$_lo-$_hi\""
}

echo "trials-teardown: $N trials a mode ($MODES), $((2 * DELAY)) ms round trip, SIGTERM after $BEFORE bytes arrived"
netns_up "$DELAY" || exit 1
for mode in $MODES; do
	# shellcheck disable=SC2034 # the r* are set and read through eval (minmax)
	exact=0 ndoubled=0 nlost=0 rdoubled="" rlost="" rtd=""
	t=1
	while [ "$t" -le "$N" ]; do
		trial "$mode"
		printf '%-5s %3d: %s; teardown %d ms\n' "$mode" "$t" "$verdict" "$td_ms"
		[ "$doubled" -eq 0 ] && [ "$lost" -eq 0 ] && [ "$verdict" = exact ] && exact=$((exact + 1))
		if [ "$doubled" -gt 0 ]; then
			ndoubled=$((ndoubled + 1))
			minmax rdoubled "$doubled"
		fi
		if [ "$lost" -gt 0 ]; then
			nlost=$((nlost + 1))
			minmax rlost "$lost"
		fi
		minmax rtd "$td_ms"
		t=$((t + 1))
	done
	eval "sum_$mode=\"\$exact \$ndoubled \${rdoubled:--} \$nlost \${rlost:--} \$rtd\""
done
echo
printf '%-6s %-8s %-26s %-26s %s\n' mode exact "doubled: trials (bytes)" "lost: trials (bytes)" "teardown (ms)"
for mode in $MODES; do
	eval "set -- \$sum_$mode"
	printf '%-6s %-8s %-26s %-26s %s\n' "$mode" "$1/$N" "$2 ($3)" "$4 ($5)" "$6"
done
exit 0
