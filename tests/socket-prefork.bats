#!/usr/bin/env bats
# socket -W: the preforked worker pool (issue 3).
load helpers

setup() {
	common_setup
	P=$(free_port)
}
teardown() { common_teardown; }

# The status lines themselves, not the log limiter's summaries that quote one
# (on stderr "socket: status: ...", in a -L file after the time and PID).
STATUS_RE='^([-0-9T:]+Z socket\[[0-9]+\]|socket): status: '
status_lines() { grep -cE "$STATUS_RE" "$1" || true; }
more_status() { [ "$(status_lines "$1")" -gt "$2" ]; }

# pool_status PID LOG: ask for a status line; print "READY BUSY SERVED ERRORS".
pool_status() {
	local before
	before=$(status_lines "$2")
	kill -USR1 "$1" || return 1
	wait_for 2 more_status "$2" "$before" || return 1
	grep -E "$STATUS_RE" "$2" | tail -n 1 | sed 's/.*: status: //' | awk '{ print $2, $4, $6, $8 }'
}
# status_is PID LOG "READY BUSY": the pool has that many ready and busy workers.
status_is() { [[ "$(pool_status "$1" "$2")" == "$3"* ]]; }
# status_within SECS PID LOG "READY BUSY...": status_is within SECS, bounded by the clock:
# a status line that repeats the last one is held back by the log limiter for up to a
# second, so one try can take that long, and wait_for bounds tries, not time. Tries
# are spaced so that they stay below the limiter's 10 lines a second of one source.
status_within() {
	local end=$((SECONDS + $1))
	shift
	until status_is "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.15
	done
}

reply() { printf '%s\n' "$1" | nc -N 127.0.0.1 "$P"; }

# A long connection: nc keeps it open after its stdin ends, until killed.
long_client() { # OUTFILE
	nc 127.0.0.1 "$P" </dev/null >"$1" &
	track $!
	LAST=$!
}

@test "-W N: N workers, each leading its own process group, right after start" {
	start_socket -W 3 -s -p 'head -n1' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 3
	for w in $(children_of "$M"); do
		[ "$(ps -o pgid= -p "$w" | tr -d ' ')" = "$w" ]
	done
	run --separate-stderr reply hello
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
}

@test "-W N: a replacement follows each connection" {
	start_socket -W 2 -s -p 'head -n1' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 2
	before=$(children_of "$M" | sort)
	for n in 1 2 3 4 5; do
		run --separate-stderr reply "line $n"
		[ "$status" -eq 0 ]
		[ "$output" = "line $n" ]
	done
	wait_for 5 child_count_is "$M" 2
	status_within 5 "$M" err "2 0 5 0"
	after=$(children_of "$M" | sort)
	# Five connections used up five workers: at most one of the first two is left.
	[ "$(comm -12 <(echo "$before") <(echo "$after") | wc -l)" -le 1 ]
}

@test "-W N: no fork while as many workers are ready as connections run; fewer, and it refills" {
	start_socket -W 3 -s -p cat "$P"
	wait_listening "$P"
	status_within 5 "$M" err "3 0"
	long_client c1
	pids=$LAST
	status_within 5 "$M" err "2 1"
	[ "$(child_count "$M")" -eq 3 ]
	# One ready for two live: the pool refills at once.
	long_client c2
	pids="$pids $LAST"
	status_within 5 "$M" err "3 2"
	[ "$(child_count "$M")" -eq 5 ]
	# And idle again, it holds N ready.
	kill $pids
	status_within 5 "$M" err "3 0"
	wait_for 5 child_count_is "$M" 3
}

@test "-W N: the replacement is forked while the first connection still runs" {
	start_socket -W 1 -s -p cat "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 1
	long_client c1
	status_within 5 "$M" err "1 1"
	# A second connection is served while the first is still open.
	run --separate-stderr reply second
	[ "$output" = second ]
	alive "$LAST"
}

@test "-W MIN:MAX ramps up under long connections, caps at MAX, retires back to MIN" {
	start_socket -W 1:4 -I 1 -s -p cat "$P"
	wait_listening "$P"
	status_within 5 "$M" err "1 0"
	long_client c1
	# The accept left no worker ready: two new ones instead of one.
	status_within 5 "$M" err "2 1"
	pids="$LAST"
	for n in 2 3 4; do
		long_client "c$n"
		pids="$pids $LAST"
	done
	status_within 5 "$M" err "0 4"
	[ "$(child_count "$M")" -eq 4 ]
	# A fifth waits in the backlog: no worker may be forked beyond MAX.
	mkfifo f5
	nc -N 127.0.0.1 "$P" <f5 >c5 &
	track $!
	exec 7>f5
	echo waiting >&7
	run ! wait_for 1 file_has c5
	[ "$(child_count "$M")" -eq 4 ]
	kill $pids
	wait_for 5 file_has c5
	[ "$(cat c5)" = waiting ]
	exec 7>&-
	# All idle now: the extra ready workers retire after -I 1, down to MIN.
	status_within 10 "$M" err "1 0" || { tail -n 3 err >&3; false; }
	wait_for 5 child_count_is "$M" 1
	alive "$M"
}

@test "-W: the program gets PROTO, TCPLOCAL*, TCPREMOTE* (UCSPI), nothing stale or of systemd's" {
	TCPREMOTEIP=stale PROTO=old LISTEN_FDNAMES=x KEEP=kept start_socket -W 2 -B 127.0.0.1 -s \
		-p 'sh -c "echo $PROTO $TCPLOCALIP $TCPLOCALPORT $TCPREMOTEIP $TCPREMOTEPORT ${LISTEN_FDNAMES-none} $KEEP"' "$P"
	wait_listening "$P"
	for n in 1 2 3; do
		run --separate-stderr sh -c "nc -N 127.0.0.1 $P </dev/null"
		read -r proto lip lport rip rport fdnames keep <<<"$output"
		[ "$proto" = TCP ]
		[ "$lip" = 127.0.0.1 ]
		[ "$lport" = "$P" ]
		[ "$rip" = 127.0.0.1 ]
		[[ "$rport" =~ ^[0-9]+$ ]]
		[ "$rport" != "$P" ]
		[ "$fdnames" = none ]
		[ "$keep" = kept ]
	done
	kill "$M"
	wait_gone "$M"
	# A wildcard listener: the local address is each connection's.
	start_socket -W 1 -s -p 'sh -c "echo $TCPLOCALIP $TCPREMOTEIP"' "$P"
	wait_listening "$P"
	run --separate-stderr sh -c "nc -N 127.0.0.1 $P </dev/null"
	[ "$output" = "127.0.0.1 127.0.0.1" ]
	run --separate-stderr sh -c "nc -N ::1 $P </dev/null"
	[ "$output" = "::1 ::1" ]
}

@test "-P: prestarted program serves, without TCPREMOTE*, with half-close and large data" {
	start_socket -W 2 -P -s -p 'sh -c "echo proto=\$PROTO remote=\${TCPREMOTEIP-unset}; exec cat"' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 2
	# The program runs before any connection: each worker already has a child.
	for w in $(children_of "$M"); do
		wait_for 5 any_children "$w"
	done
	run --separate-stderr reply hello
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "proto=TCP remote=unset" ]
	[ "${lines[1]}" = hello ]
	# 8 MB through cat: the client half-closes, cat ends, everything comes back.
	head -c 8000000 /dev/urandom >big
	nc -N 127.0.0.1 "$P" <big >back
	tail -n +2 back >body
	cmp big <(head -c 8000000 body)
	[ "$(stat -c %s back)" -eq $((8000000 + 23)) ]
}

@test "-P: a program that writes and exits before the connection still delivers" {
	start_socket -W 1 -P -s -p 'echo early' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 1
	# The server side ends first (half-close towards the client) while it still sends.
	run --separate-stderr reply ignored
	[ "$status" -eq 0 ]
	[ "$output" = early ]
	wait_for 5 child_count_is "$M" 1
	[ "$(zombies_of "$(children_of "$M")")" -eq 0 ]
}

@test "-W with -c converts line ends; with a UNIX socket it serves and removes the path" {
	start_socket -W 2 -c -s -p 'head -n1' "$PWD/w.sock"
	wait_for 5 unix_listening "$PWD/w.sock"
	run --separate-stderr sh -c 'printf "dos\r\n" | nc -N -U w.sock | od -c | head -n1'
	[[ "$output" == *"d   o   s  \r  \n"* ]]
	kill -TERM "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 143 ]
	[ ! -e w.sock ]
}

# A program that is there at start (-W checks) and gone by the time workers exec it.
vanishing() {
	printf '#!/bin/sh\nexec cat\n' >prog
	chmod +x prog
}

@test "exec failure: reported once per distinct error, connections closed, serving goes on" {
	vanishing
	start_socket -W 2 -s -p "$PWD/prog" "$P"
	wait_listening "$P"
	rm prog
	for n in 1 2 3 4; do
		run --separate-stderr reply "x$n"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
	done
	status_within 5 "$M" err "2 0 0 4"
	[ "$(grep -c "exec $PWD/prog: No such file or directory" err)" -eq 1 ]
	alive "$M"
	wait_for 5 child_count_is "$M" 2
}

@test "exec failure with -P: reported once, the connection closed, the master goes on" {
	vanishing
	start_socket -W 2 -P -s -p "$PWD/prog" "$P"
	wait_listening "$P"
	# The two prestarted programs run already; their replacements find nothing.
	wait_for 5 child_count_is "$M" 2
	wait_for 5 every_worker_runs "$M" cat
	rm prog
	run --separate-stderr reply x
	[ "$output" = x ]
	run --separate-stderr reply y
	[ "$output" = y ]
	wait_for 5 grep -q "exec $PWD/prog: No such file" err
	run --separate-stderr reply z
	[ -z "$output" ]
	[ "$(grep -c "exec $PWD/prog" err)" -eq 1 ]
	alive "$M"
}

@test "workers dying without serving make the master back off instead of fork-bombing" {
	start_socket -W 4 -s -p cat "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 4
	for round in 1 2 3 4 5; do
		kill -KILL $(children_of "$M") 2>/dev/null || true
	done
	wait_for 5 grep -q 'without serving; pausing forks' err
	alive "$M"
	# After the pause the pool is whole again.
	wait_for 10 child_count_is "$M" 4
	run --separate-stderr reply after
	[ "$output" = after ]
}

@test "bad -W values and combinations are usage errors, exit 2, nothing left" {
	for bad in 0 5:2 abc 3: :3 1:0 4097 -1; do
		run --separate-stderr "$SP_BIN/socket" -W "$bad" -s -p cat "$P"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "socket: -W"* ]]
		[ -z "$output" ]
	done
	run --separate-stderr "$SP_BIN/socket" -W 2 -s "$P"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-W needs -p"* ]]
	run --separate-stderr "$SP_BIN/socket" -W 2 -p cat 127.0.0.1 "$P"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-W needs -s"* ]]
	run --separate-stderr "$SP_BIN/socket" -P -s -p cat "$P"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-P needs -W"* ]]
	run --separate-stderr "$SP_BIN/socket" -W 2 -I 1 -s -p cat "$P"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-I needs -W MIN:MAX"* ]]
	run --separate-stderr "$SP_BIN/socket" -W 1:4 -I soon -s -p cat "$P"
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "socket: -I: 'soon' is not a duration from 0.001 to 86400 seconds" ]
	run --separate-stderr "$SP_BIN/socket" -g -1 -W 2 -s -p cat "$P"
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "socket: -g: '-1' is not a duration from 0.001 to 3600 seconds" ]
	run --separate-stderr "$SP_BIN/socket" -W 4 -C 2 -s -p cat "$P"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"-C 2 is below the -W minimum 4"* ]]
	run --separate-stderr "$SP_BIN/socket" -W 3:1 -s -p cat "$PWD/bad.sock"
	[ "$status" -eq 2 ]
	[ "$stderr" != "${stderr#socket: -W: MIN 3 is above MAX 1}" ]
	not_listening "$P"
	[ -z "$(ls -A)" ]
	[ -z "$(pgrep -f "socket -W .* $P\$" || true)" ]
}

@test "teardown: TERM ends every worker's process group, busy and ready" {
	start_socket -W 2 -s -p 'sh -c "sleep 60 & cat"' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 2
	long_client c1
	# One busy, one ready: no replacement competes with the live connection.
	status_within 5 "$M" err "1 1"
	long_client c2
	status_within 5 "$M" err "2 2"
	groups=$(children_of "$M")
	[ "$(echo "$groups" | wc -l)" -eq 4 ]
	kill -TERM "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 143 ]
	for g in $groups; do
		wait_for 5 no_group "$g"
	done
	not_listening "$P"
}

@test "teardown: -g bounds the wait for a program that ignores TERM" {
	start_socket -W 1 -g 0.5 -s -p 'sh -c "trap \"\" TERM; echo up; while :; do sleep 1; done"' "$P"
	wait_listening "$P"
	long_client c1
	wait_for 5 file_has c1
	g=$(children_of "$M" | head -n 1)
	kill -INT "$M"
	# The grace is half a second: well before the 5 s default, everything is gone.
	wait_for 3 gone "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 130 ]
	wait_for 2 no_group "$g"
}

@test "1000 connections leave no zombie and no descriptor growth in the master" {
	start_socket -W 4 -s -p 'head -n1' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 4
	"$TOOLS/loadgen" -c 1 -n 20 127.0.0.1 "$P" >/dev/null
	status_within 5 "$M" err "4 0"
	fds=$(fd_count "$M")
	run --separate-stderr "$TOOLS/loadgen" -c 4 -n 1000 127.0.0.1 "$P"
	[ "$status" -eq 0 ]
	[[ "$output" == "conns=1000 ok=1000 errors=0 "* ]]
	status_within 5 "$M" err "4 0 1020 0"
	same_fds() { [ "$(fd_count "$M")" -eq "$fds" ]; }
	wait_for 5 same_fds
	[ "$(zombies_of "$M")" -eq 0 ]
}

@test "the SCGI launch line works with -W 4 added, in the background" {
	cat >wrapper <<-'EOF'
	#!/bin/sh
	exec "$@"
	EOF
	chmod +x wrapper
	run --separate-stderr "$SP_BIN/socket" -B 127.0.0.1 -s "$P" -b -f -q -l \
		-p "$PWD/wrapper head -n1" -W 4
	[ "$status" -eq 0 ]
	stderr_quiet socket
	[[ "$output" =~ ^[0-9]+$ ]]
	M=$output
	track "$M"
	listening "$P"
	wait_for 5 child_count_is "$M" 4
	run --separate-stderr reply scgi
	[ "$output" = scgi ]
	kill -TERM "$M"
	wait_gone "$M"
	not_listening "$P"
}

@test "-W serves a socket-activated listener on fd 3" {
	"$TOOLS/activate" portfile "$SP_BIN/socket" -W 2 -s -p 'head -n1' 2>err &
	M=$!
	track "$M"
	wait_file portfile
	P=$(cat portfile)
	wait_for 5 child_count_is "$M" 2
	run --separate-stderr reply activated
	[ "$output" = activated ]
}

@test "SIGUSR1 writes one status line to the -L log of a background pool" {
	run --separate-stderr "$SP_BIN/socket" -b -L "$PWD/log" -W 3 -s -p 'head -n1' "$P"
	[ "$status" -eq 0 ]
	M=$output
	track "$M"
	reply one >/dev/null
	status_within 5 "$M" log "3 0 1 0"
	[ "$(grep -c status: log)" -ge 1 ]
	[[ "$(grep status: log | tail -n 1)" =~ $(log_head socket)status:\ ready\ 3\ busy\ 0\ served\ 1\ errors\ 0\ connections\ 0$ ]]
}

@test "-W finds its program in PATH once, and searches again when that copy is gone" {
	mkdir a b
	printf '#!/bin/sh\necho "from a"\n' >a/greet
	printf '#!/bin/sh\necho "from b"\n' >b/greet
	chmod +x a/greet b/greet
	PATH="$PWD/a:$PWD/b:$PATH" start_socket -W 1 -s -p greet "$P"
	wait_listening "$P"
	run --separate-stderr reply x
	[ "$status" -eq 0 ]
	[ "$output" = "from a" ]
	rm a/greet
	run --separate-stderr reply x
	[ "$status" -eq 0 ]
	[ "$output" = "from b" ]
	[ ! -s err ]
}
