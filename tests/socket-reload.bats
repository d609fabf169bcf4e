#!/usr/bin/env bats
# socket: graceful stop (SIGQUIT, bounded by -G) and the zero-downtime reload of a
# -W pool (SIGUSR2), after nginx's signals (issue 13, item 2). SIGTERM, SIGINT and
# SIGHUP stay the prompt teardown (tests/socket.bats).
load helpers

setup() {
	common_setup
	S=$SP_BIN/socket
	P=$(free_port)
}
teardown() { common_teardown; }

# A client whose reply goes to FILE; its pid in C. CF: its options (-c).
client() { # FILE
	# shellcheck disable=SC2086 # CF's words are options
	"$S" ${CF-} -r 127.0.0.1 "$P" </dev/null >"$1" 2>"$1.err" &
	C=$!
	track "$C"
}

refused() { ! "$S" -r 127.0.0.1 "$P" </dev/null >/dev/null 2>&1; }
no_groups() { # PGID...
	local g
	for g in "$@"; do no_group "$g" || return 1; done
}

@test "SIGQUIT: the running connection finishes, new ones are refused, exit 131, nothing left" {
	printf '#!/bin/sh\necho start\nsleep 2\necho done\n' >slow
	chmod +x slow
	for mode in "-f -l" "-l" "-W 2" "-W 1:3" "-W 2 -c"; do
		P=$(free_port)
		CF=""
		[[ "$mode" != *-c* ]] || CF=-c
		# shellcheck disable=SC2086 # the mode's words are options
		start_socket $mode -s -p "$PWD/slow" "$P"
		wait_listening "$P"
		client out
		wait_for 5 file_has out
		groups=$(children_of "$M")
		kill -QUIT "$M"
		# Stops accepting at once, while the program still sleeps.
		wait_for 5 not_listening "$P"
		refused
		alive "$C"
		wait_for 10 gone "$C" # bounded: a regression fails, never hangs
		wait "$C"
		[ "$(cat out)" = $'start\ndone' ]
		[ ! -s out.err ]
		rc=0
		wait_for 10 gone "$M"
		wait "$M" || rc=$?
		[ "$rc" -eq 131 ]
		# shellcheck disable=SC2086 # a list of pids
		wait_for 5 no_groups $groups
		[ ! -s err ]
	done
}

@test "SIGQUIT with -W -P: prestarted programs of ready workers end too, exit 131" {
	start_socket -W 2 -P -s -p 'sh -c "read x; echo got \$x; sleep 1; echo done"' "$P"
	wait_listening "$P"
	wait_for 5 child_count_is "$M" 2
	mkfifo in
	"$S" 127.0.0.1 "$P" <in >out &
	C=$!
	track "$C"
	exec 7>in
	echo one >&7
	wait_for 5 file_has out
	groups=$(children_of "$M")
	kill -QUIT "$M"
	wait_for 5 not_listening "$P"
	exec 7>&-
	wait_for 10 gone "$C" # bounded: a regression fails, never hangs
	wait "$C"
	[ "$(cat out)" = $'got one\ndone' ]
	rc=0
	wait_for 10 gone "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 131 ]
	# shellcheck disable=SC2086 # a list of pids
	wait_for 5 no_groups $groups
}

@test "SIGQUIT on a UNIX socket server removes the path at once and waits for the connection" {
	start_socket -W 1 -s -p 'sh -c "echo start; sleep 1; echo done"' "$PWD/g.sock"
	wait_for 5 unix_listening "$PWD/g.sock"
	"$S" -r ./g.sock </dev/null >out &
	C=$!
	track "$C"
	wait_for 5 file_has out
	kill -QUIT "$M"
	wait_for 5 test ! -e g.sock
	wait_for 10 gone "$C" # bounded: a regression fails, never hangs
	wait "$C"
	[ "$(cat out)" = $'start\ndone' ]
	rc=0
	wait_for 10 gone "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 131 ]
}

@test "-G bounds a graceful stop: what outlasts it ends the prompt way, within -g" {
	for mode in "-f -l" "-W 1"; do
		P=$(free_port)
		# shellcheck disable=SC2086 # the mode's words are options
		start_socket $mode -G 0.5 -g 0.5 -s -p 'sh -c "echo start; trap \"\" TERM; sleep 30; echo done"' "$P"
		wait_listening "$P"
		client out
		wait_for 5 file_has out
		groups=$(children_of "$M")
		kill -QUIT "$M"
		# Half a second of grace, half a second from TERM to KILL: far below the 30 s.
		wait_for 5 gone "$M"
		rc=0
		wait_for 10 gone "$M"
		wait "$M" || rc=$?
		[ "$rc" -eq 131 ]
		wait_for 5 gone "$C"
		[ "$(cat out)" = start ]
		# shellcheck disable=SC2086 # a list of pids
		wait_for 5 no_groups $groups
	done
}

@test "SIGTERM during a graceful stop tears down at once; SIGQUIT again and SIGUSR2 change nothing" {
	start_socket -W 2 -v -s -p 'sh -c "echo start; sleep 30"' "$P"
	wait_listening "$P"
	client out
	wait_for 5 file_has out
	g=$(children_of "$M")
	kill -QUIT "$M"
	wait_for 5 grep -q 'SIGQUIT: graceful stop: 1 connection has 30 s to finish' err
	kill -QUIT "$M"
	kill -USR2 "$M"
	wait_for 5 not_listening "$P"
	alive "$M"
	kill -TERM "$M"
	rc=0
	wait_for 10 gone "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 143 ]
	# shellcheck disable=SC2086 # a list of pids
	wait_for 5 no_groups $g
	[ "$(grep -c 'graceful stop' err)" -eq 1 ]
	[ "$(grep -c 'reload' err)" -eq 0 ]
}

@test "usage: -G needs -s, and a duration" {
	run --separate-stderr "$S" -G 1 127.0.0.1 "$P"
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "socket: -G needs -s" ]
	run --separate-stderr "$S" -G soon -s -p cat "$P"
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "socket: -G: 'soon' is not a duration from 0.001 to 86400 seconds" ]
	not_listening "$P"
	[ -z "$(ls -A)" ]
}

# ---- reload ----

@test "SIGUSR2: a new generation finds the program again in PATH; a busy old worker finishes" {
	mkdir a b
	printf '#!/bin/sh\necho "from b"\nexec cat\n' >b/greet
	chmod +x b/greet
	PATH="$PWD/a:$PWD/b:$PATH" start_socket -W 2 -v -s -p greet "$P"
	wait_listening "$P"
	mkfifo in
	"$S" 127.0.0.1 "$P" <in >old &
	C=$!
	track "$C"
	exec 7>in
	wait_for 5 file_has old
	old_workers=$(children_of "$M")
	printf '#!/bin/sh\necho "from a"\n' >a/greet
	chmod +x a/greet
	kill -USR2 "$M"
	wait_for 5 grep -q 'SIGUSR2: reload: generation 1, 1 ready worker retired, 1 busy finishes$' err
	run --separate-stderr "$S" -r 127.0.0.1 "$P" </dev/null
	[ "$output" = "from a" ]
	# The old generation's ready worker is gone; its busy one still serves.
	for w in $old_workers; do
		[ "$(ps -o comm= -p "$w")" = cat ] || wait_for 5 gone "$w"
	done
	alive "$C"
	echo still >&7
	exec 7>&-
	wait_for 10 gone "$C" # bounded: a regression fails, never hangs
	wait "$C"
	[ "$(cat old)" = $'from b\nstill' ]
	listening "$P"
}

@test "SIGUSR2 with the program gone: the running workers go on, the listener stays" {
	printf '#!/bin/sh\nexec cat\n' >prog
	chmod +x prog
	start_socket -W 2 -P -v -s -p "$PWD/prog" "$P"
	wait_listening "$P"
	wait_for 5 every_worker_runs "$M" cat
	rm prog
	kill -USR2 "$M"
	wait_for 5 grep -q "reload: $PWD/prog: not found; the running workers go on" err
	run --separate-stderr "$S" 127.0.0.1 "$P" <<<"kept"
	[ "$output" = kept ]
	[ "$(grep -c 'reload: generation' err)" -eq 0 ]
}

@test "SIGUSR2 without -W: nothing to reload, serving goes on" {
	start_socket -f -l -v -s -p 'echo hi' "$P"
	wait_listening "$P"
	kill -USR2 "$M"
	wait_for 5 grep -q 'SIGUSR2: without -W every connection starts its program afresh; nothing to reload' err
	run --separate-stderr "$S" -r 127.0.0.1 "$P" </dev/null
	[ "$output" = hi ]
	kill -TERM "$M"
	rc=0
	wait_for 10 gone "$M"
	wait "$M" || rc=$?
	[ "$rc" -eq 143 ]
}

# reload_under_load MODE...: 8 clients, 2000 connections, 10 reloads spread over them
reload_under_load() {
	printf '#!/bin/sh\necho >>"%s/served"\nexec head -n1\n' "$PWD" >prog
	chmod +x prog
	: >served
	start_socket "$@" -v -s -p "$PWD/prog" "$P"
	wait_listening "$P"
	"$TOOLS/loadgen" -t 10 -c 8 -n 2000 127.0.0.1 "$P" >lg 2>lg.err &
	L=$!
	track "$L"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		wait_for 30 lines_in served $((i * 150))
		kill -USR2 "$M"
		wait_for 5 grep -q "reload: generation $i," err
	done
	wait_for 120 gone "$L"
	wait "$L"
	# Every connection counted: none refused, reset, cut short or timed out.
	[[ "$(cat lg)" == "conns=2000 ok=2000 errors=0 "* ]]
	[[ "$(cat lg)" == *" failed=0 short=0 wrong=0 timeouts=0" ]]
	[ "$(grep -c 'reload: generation' err)" -eq 10 ]
	[ "$(wc -l <served)" -ge 2000 ] # -P: every program started, used or not
	listening "$P"
}

@test "-W 4: 10 reloads under 8 concurrent clients, every connection answered" {
	reload_under_load -W 4
}

@test "-W 4 -P: 10 reloads under 8 concurrent clients, every connection answered" {
	reload_under_load -W 4 -P
}
