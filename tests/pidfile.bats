#!/usr/bin/env bats
# -i FILE in all five programs (issue 21): the PID written once ready, the
# file locked for as long as the program runs (a second one refuses),
# never a link followed, removed at exit.
load helpers

setup() {
	common_setup
	KEY=0123456789abcdef0123
	PORT=$(free_port)
	P2=$(free_port)
	mkdir d
	daemon d x1 'exec sleep 300'
}
teardown() { common_teardown; }

PROGS="bind-input bind-output socket pool master"

# A pool for the masters (on P2), in the foreground of a background job;
# its buffers and files in pd.
pool_for_master() {
	mkdir pd
	"$SP_BIN/pool" -l -d pd "$KEY" "$P2" 2>pd/pool.err &
	track $!
	wait_listening "$P2"
}

# start PROG N ARGS...: PROG's Nth instance (its own id, buffer or port),
# backgrounded by itself, with ARGS before its operands: run's results.
start() {
	local p=$1 n=$2 port
	shift 2
	port=$((n == 1 ? PORT : PORT + 1))
	case $p in
	bind-input) run --separate-stderr "$SP_BIN/bind-input" "$@" "in$n" "$port" ;;
	bind-output) run --separate-stderr "$SP_BIN/bind-output" -r "$@" "out$n" 127.0.0.1 "$port" ;;
	socket) run --separate-stderr "$SP_BIN/socket" -b "$@" -s -l -p cat "$port" ;;
	pool) run --separate-stderr "$SP_BIN/pool" -b "$@" "$KEY" "$port" ;;
	master) run --separate-stderr "$SP_BIN/master" -b -L "m$n.log" "$@" "$KEY" 127.0.0.1 "$P2" d ;;
	esac
	if [[ "$output" =~ ^[0-9]+$ ]]; then track "$output"; fi
}

@test "-i FILE in --help and in each man page's SYNOPSIS and options" {
	for p in $PROGS; do
		run -0 "$SP_BIN/$p" --help
		[[ "$output" == *"[-i FILE]"* ]]
		[[ "$output" == *"  -i FILE "*"write the PID to FILE once"* ]]
		run -0 env MANWIDTH=200 man -l "$BATS_TEST_DIRNAME/../man/$p.1"
		[[ "$(sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' <<<"$output")" == *"[-i file]"* ]]
		grep -q '^ *-i file$' <<<"$output"
	done
	usage_fails bind-input "-i: empty file name" -i '' in1 "$PORT"
	usage_fails bind-output "-i: empty file name" -i '' out1 127.0.0.1 "$PORT"
	usage_fails socket "-i: empty file name" -i '' -s "$PORT"
	usage_fails pool "-i: empty file name" -i '' "$KEY" "$PORT"
	usage_fails master "-i: empty file name" -i '' "$KEY" 127.0.0.1 "$PORT" d
}

@test "every program: the PID in FILE once ready, a second one refused and nothing left, FILE gone after SIGTERM" {
	pool_for_master
	for p in $PROGS; do
		start "$p" 1 -i run.pid
		[ "$status" -eq 0 ] || { echo "$p: $status $stderr" >&3; false; }
		pid=$output
		# Written before the PID was printed, alone on its line.
		[ "$(cat run.pid)" = "$pid" ]
		[ "$(stat -c %a run.pid)" = 644 ]
		start "$p" 2 -i run.pid
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "$p: run.pid: already running as PID $pid" ]
		[ "$(cat run.pid)" = "$pid" ]
		[ ! -e in2 ]
		[ ! -e out2 ]
		not_listening $((PORT + 1))
		alive "$pid"
		kill -TERM "$pid"
		wait_gone "$pid"
		[ ! -e run.pid ]
	done
	rm -f m1.log
	[ "$(ls -A | tr '\n' ' ')" = "d pd " ] || { ls -A >&3; false; }
}

@test "every program: a symbolic link or a FIFO at FILE is refused, never followed or touched" {
	pool_for_master
	for p in $PROGS; do
		ln -s victim run.pid
		start "$p" 1 -i run.pid
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "$p: run.pid: a symbolic link; not following it" ]
		[ ! -e victim ]
		[ -L run.pid ]
		rm run.pid
		mkfifo run.pid
		start "$p" 1 -i run.pid
		[ "$status" -eq 1 ]
		[ "$stderr" = "$p: run.pid: not a regular file; not touching it" ]
		[ -p run.pid ]
		rm run.pid
		not_listening "$PORT"
	done
	[ "$(ls -A | tr '\n' ' ')" = "d pd " ] || { ls -A >&3; false; }
}

@test "a start that fails after taking FILE removes it; one left by SIGKILL is taken over" {
	# The port is taken: the daemon fails once FILE is locked, and FILE goes with it.
	socat "TCP-LISTEN:$PORT,reuseaddr" - </dev/null &
	track $!
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/bind-input" -i run.pid in1 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: listen on port $PORT: Address already in use" ]
	[ ! -e run.pid ]
	port=$(free_port)
	run --separate-stderr "$SP_BIN/bind-input" -i run.pid in1 "$port"
	[ "$status" -eq 0 ]
	old=$output
	track "$old"
	kill -KILL "$old"
	wait_gone "$old"
	[ "$(cat run.pid)" = "$old" ]
	rm in1 # the stale FIFO: not this test's business
	"$SP_BIN/bind-input" -F -i run.pid in1 "$port" >/dev/null 2>err &
	new=$!
	track "$new"
	wait_for 5 sh -c "[ \"\$(cat run.pid)\" = $new ]"
	alive "$new"
	kill -TERM "$new"
	wait_gone "$new"
	[ ! -e run.pid ]
	rm err
	[ "$(ls -A)" = d ]
}
