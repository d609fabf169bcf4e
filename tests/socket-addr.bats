#!/usr/bin/env bats
# socket and a name with several addresses (issue 13, item 1): a server listens on
# every address the name resolves to, in every mode; a client tries each in turn.
# The name is "localhost" as a hosts file of the test's own makes it (127.0.0.1 and
# ::1), bound over /etc/hosts in a mount namespace of each command's own: the
# machine's /etc/hosts is never read or touched.
load helpers

setup() {
	common_setup
	S=$SP_BIN/socket
	P=$(free_port)
	HOSTS=$BATS_TEST_TMPDIR/hosts
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$HOSTS"
	unshare -m sh -c 'mount --bind "$0" /etc/hosts' "$HOSTS" 2>/dev/null ||
		skip "needs unshare -m and mount (root)"
}
teardown() { common_teardown; }

# in_ns CMD...: CMD where localhost is both 127.0.0.1 and ::1.
in_ns() {
	unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$HOSTS" "$@"
}

# listens_on ADDR PORT: ss shows a listener on exactly that address
listens_on() { ss -Hltn "sport = :$2" | awk '{ print $4 }' | grep -qxF "$1:$2"; }

# serve ARGS...: socket -B localhost in the background, its pid in M
serve() {
	run --separate-stderr in_ns "$S" -b -B localhost "$@"
	[ "$status" -eq 0 ] || { echo "start: $stderr" >&2; return 1; }
	M=$output
	track "$M"
}


@test "-B localhost listens on 127.0.0.1 and ::1 and serves both, in every mode" {
	for mode in "-f -l" "-l" "-W 2" "-W 2 -P" "-W 1:3"; do
		P=$(free_port)
		# shellcheck disable=SC2086 # the mode's words are options
		serve -s "$P" $mode -p 'head -n1'
		listens_on 127.0.0.1 "$P"
		listens_on '[::1]' "$P"
		[ "$(ss -Hltn "sport = :$P" | wc -l)" -eq 2 ]
		for round in 1 2; do
			run --separate-stderr "$S" 127.0.0.1 "$P" <<<"four $round"
			[ "$output" = "four $round" ]
			run --separate-stderr "$S" ::1 "$P" <<<"six $round"
			[ "$output" = "six $round" ]
			run --separate-stderr in_ns "$S" localhost "$P" <<<"name $round"
			[ "$output" = "name $round" ]
		done
		kill -TERM "$M"
		wait_gone "$M"
		not_listening "$P"
	done
}

@test "-B localhost: each connection's program gets its own TCPLOCALIP" {
	for mode in "-f -l" "-W 2"; do
		P=$(free_port)
		# shellcheck disable=SC2086 # the mode's words are options
		serve -s "$P" $mode -p 'sh -c "echo $TCPLOCALIP $TCPREMOTEIP"'
		run --separate-stderr "$S" -r 127.0.0.1 "$P" </dev/null
		[ "$output" = "127.0.0.1 127.0.0.1" ] || { echo "mode $mode: [$output] [$stderr] $status" >&3; false; }
		run --separate-stderr "$S" -r ::1 "$P" </dev/null
		[ "$output" = "::1 ::1" ]
		kill -TERM "$M"
		wait_gone "$M"
	done
	# -P starts its programs before any connection: no one local address to give.
	serve -s "$P" -W 1 -P -p 'sh -c "echo ${TCPLOCALIP-unset} $TCPLOCALPORT"'
	run --separate-stderr "$S" -r ::1 "$P" </dev/null
	[ "$output" = "unset $P" ]
}

@test "a client tries every address of a name in turn" {
	for addr in 127.0.0.1 ::1; do
		P=$(free_port)
		run --separate-stderr "$S" -b -B "$addr" -s "$P" -l -p 'echo only'
		[ "$status" -eq 0 ]
		M=$output
		track "$M"
		# localhost is both; only one of them answers, whichever the resolver puts first.
		run --separate-stderr in_ns "$S" -r localhost "$P" </dev/null
		[ "$status" -eq 0 ]
		[ "$output" = only ]
		[ -z "$stderr" ]
		kill -TERM "$M"
		wait_gone "$M"
	done
	# Neither answers: one line, naming what was asked for.
	run --separate-stderr in_ns "$S" -r localhost "$P" </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: connect to localhost $P: Connection refused" ]
}

# In epoll_wait, with its voluntary context switches so far: "PID COUNT" per worker.
idle_workers() {
	local w
	for w in $(children_of "$M"); do
		[ "$(cat "/proc/$w/wchan" 2>/dev/null)" = do_epoll_wait ] || return 1
		echo "$w $(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$w/status")"
	done
}
all_idle() { idle_workers >/dev/null; }

@test "-W 16 on two addresses: a connection wakes one worker, not the herd" {
	serve -s "$P" -W 16 -p 'head -n1'
	wait_for 5 child_count_is "$M" 16
	wait_for 5 all_idle
	idle_workers >before
	# 8 connections, one at a time, on both sockets: the longest waiting 8 serve them.
	run --separate-stderr "$TOOLS/loadgen" -c 1 -n 4 127.0.0.1 "$P"
	[[ "$output" == "conns=4 ok=4 errors=0 "* ]]
	run --separate-stderr "$TOOLS/loadgen" -c 1 -n 4 ::1 "$P"
	[[ "$output" == "conns=4 ok=4 errors=0 "* ]]
	# The workers of before that served nothing: how often did they wake?
	idle=0 wakes=0
	while read -r w c0; do
		c=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$w/status" 2>/dev/null) || continue
		[ -n "$c" ] || continue
		[ "$(cat "/proc/$w/wchan" 2>/dev/null)" = do_epoll_wait ] || continue
		idle=$((idle + 1))
		wakes=$((wakes + c - c0))
	done <before
	echo "idle $idle wakes $wakes" >&3
	# A herd wakes every idle worker for every connection: about idle * 8.
	[ "$idle" -ge 1 ]
	[ "$wakes" -lt "$idle" ]
}
