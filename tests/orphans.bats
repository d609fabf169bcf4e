#!/usr/bin/env bats
# Nothing outlives its parent (issue 21): every child a program starts ends
# when that program is killed with SIGKILL, which it cannot catch; and the
# port it listened on can be listened on again at once.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
	KEY=0123456789abcdef0123
}
teardown() {
	# What a failed test left: each PID it recorded, and its group.
	local p
	for p in $(cat pids 2>/dev/null); do track "$p"; done
	common_teardown
}

# Record PIDs in ./pids, for the checks and for teardown.
note() { printf '%s\n' "$@" >>pids; }
# All the PIDs in ./pids are gone (reaped, or zombies whose parent died).
all_gone() {
	local p
	for p in $(cat pids); do gone "$p" || return 1; done
}
# kill_all_gone PID: SIGKILL it, then, bounded, nothing of ./pids is left.
kill_all_gone() {
	kill -KILL "$1"
	wait_for 10 all_gone
}
# A program that records its PID in ./progs, then waits for its input's end.
recorder() {
	printf '%s' "echo \$\$ >>'$PWD/progs'; exec cat"
}
# One that first starts a descendant that leaves its group and session
# (setsid), also recorded, then sleeps, deaf to its input's end (a caller
# that goes away does not end it): a service's leader, master's keeper end
# them all the same.
recorder_deep() {
	printf '%s' "echo \$\$ >>'$PWD/progs'; setsid sh -c 'echo \$\$ >>\"$PWD/progs\"; exec sleep 300' </dev/null >/dev/null 2>&1 & exec sleep 300"
}
# hold N: N connections to PORT kept open on fds 6.. (closed by the test's end).
hold() {
	local i
	for ((i = 0; i < $1; i++)); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PORT"
	done
}
# tree PID: PID and its descendants
tree() {
	local c
	echo "$1"
	for c in $(children_of "$1"); do tree "$c"; done
}
# A caller (master -c), stopped with all it started: it holds the service's
# connection open and does nothing about the pool going away. Sets CALLER.
call_frozen() { # MASTER-OPTIONS...
	local feed
	# Its input never ends; the sleep feeding it is tracked (a pipeline's
	# first command left behind would hold bats' output open for 300 s).
	exec {feed}< <(exec sleep 300)
	track $!
	"$SP_BIN/master" -c "$@" "$KEY" 127.0.0.1 "$PORT" forever <&"$feed" >/dev/null 2>master.err &
	exec {feed}<&-
	CALLER=$(tree $!)
	track $CALLER
	wait_for 5 lines_in progs 2
	CALLER=$(tree "${CALLER%%[^0-9]*}")
	kill -STOP $CALLER
}
unfreeze() { kill -KILL $CALLER; }
# The same server starts again on the same port.
restarts() {
	local pid
	pid=$("$SP_BIN/socket" -b -s -l -f -p cat "$PORT")
	track "$pid"
	wait_listening "$PORT"
}
# all_noted_killed PID N: once two programs are recorded, they and PID's
# children are noted (N PIDs in ./pids in all); kill -9 of PID ends them
# all, and the port can be listened on again.
all_noted_killed() {
	wait_for 5 lines_in progs 2
	cat progs >>pids
	note $(children_of "$1")
	[ "$(wc -l <pids)" -eq "$2" ]
	kill_all_gone "$1"
	restarts
}

@test "socket -W: kill -9 ends every preforked worker; the port is free again" {
	local pid
	pid=$("$SP_BIN/socket" -b -s -W 3 -p cat "$PORT")
	note "$pid"
	wait_for 5 child_count_is "$pid" 3
	note $(children_of "$pid")
	[ "$(wc -l <pids)" -eq 4 ]
	# One worker serving a connection (it became cat, which answers), the others ready.
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	echo hi >&6
	read -r -t 5 line <&6
	[ "$line" = hi ]
	note $(children_of "$pid")
	kill_all_gone "$pid"
	exec 6>&-
	restarts
}

@test "socket -f: kill -9 ends each connection's program" {
	local pid
	pid=$("$SP_BIN/socket" -b -s -l -f -p "$(recorder)" "$PORT")
	note "$pid"
	hold 2
	wait_for 5 lines_in progs 2
	cat progs >>pids
	kill_all_gone "$pid"
	restarts
}

@test "socket -f -c: kill -9 ends each relay and its program" {
	local pid
	pid=$("$SP_BIN/socket" -b -s -l -f -c -p "$(recorder)" "$PORT")
	note "$pid"
	hold 2
	all_noted_killed "$pid" 5
}

@test "socket -W -P: kill -9 ends the workers and the programs they prestarted" {
	local pid
	pid=$("$SP_BIN/socket" -b -s -W 2 -P -p "$(recorder)" "$PORT")
	note "$pid"
	all_noted_killed "$pid" 5
}

@test "socket, a client with -p: kill -9 ends its program" {
	local pid
	pid=$("$SP_BIN/socket" -b -s -l -p cat "$PORT")
	track "$pid"
	"$SP_BIN/socket" -p "$(recorder)" 127.0.0.1 "$PORT" </dev/null >/dev/null 2>&1 &
	pid=$!
	note "$pid"
	wait_for 5 lines_in progs 1
	cat progs >>pids
	kill_all_gone "$pid"
}

@test "pool -x: kill -9 ends the service's leader, its program and what left its group" {
	mkdir sdir
	daemon sdir forever "$(recorder_deep)"
	"$SP_BIN/pool" -l -x "$PWD/sdir" -L "$PWD/pool.log" "$KEY" "$PORT" </dev/null 2>pool.err &
	POOL=$!
	note "$POOL"
	wait_listening "$PORT"
	call_frozen
	cat progs >>pids
	note $(children_of "$POOL")
	[ "$(wc -l <pids)" -eq 4 ]
	kill_all_gone "$POOL"
	unfreeze
	"$SP_BIN/pool" -b -l -x "$PWD/sdir" "$KEY" "$PORT" >pid2 2>/dev/null
	track "$(cat pid2)"
	wait_listening "$PORT"
}

@test "pool -x -U: the same for a service on the plain connection (protocol 2)" {
	mkdir sdir
	daemon sdir forever "$(recorder_deep)"
	"$SP_BIN/pool" -l -U -x "$PWD/sdir" -L "$PWD/pool.log" "$KEY" "$PORT" </dev/null 2>pool.err &
	POOL=$!
	note "$POOL"
	wait_listening "$PORT"
	call_frozen -U
	cat progs >>pids
	note $(children_of "$POOL")
	[ "$(wc -l <pids)" -eq 4 ]
	kill_all_gone "$POOL"
	unfreeze
}

@test "master: kill -9 ends its daemons and what they left" {
	mkdir ddir
	daemon ddir d1 "$(recorder_deep)"
	"$SP_BIN/pool" -l "$KEY" "$PORT" </dev/null >/dev/null 2>pool.err &
	track $!
	wait_listening "$PORT"
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" ddir </dev/null >/dev/null 2>master.err &
	local pid=$!
	note "$pid"
	wait_for 5 lines_in progs 2
	cat progs >>pids
	kill_all_gone "$pid"
}

@test "bind-input, bind-output: kill -9 leaves the port free again" {
	local pid
	pid=$(bind_input in "$PORT")
	note "$pid"
	track "$(bind_output out 127.0.0.1 "$PORT")"
	echo x >out
	kill_all_gone "$pid"
	pid=$(bind_input in2 "$PORT")
	track "$pid"
	wait_listening "$PORT"
}
