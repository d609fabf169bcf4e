#!/usr/bin/env bats
# Every catchable signal has one meaning in all five programs (issue 21):
# INT, HUP, TERM the teardown (exit 128+n); QUIT a graceful stop where there
# is something to finish (socket -s, pool), else the teardown; USR1 a status line
# in the log and the -L file opened again (logrotate); USR2 a reload where
# there is one (socket -W), else ignored and said once; PIPE ignored. Each is
# sent to each program holding data: nothing it took is lost, nothing of it
# is left once it ended, and -L lines carry an RFC 3339 time and the PID.
load helpers

setup() {
	common_setup
	KEY=k12
	PORT=$(free_port)
	mkdir -p d
}
teardown() { common_teardown; }

TEARDOWN_SIGS="INT HUP TERM QUIT"
KEEP_SIGS="USR1 USR2 PIPE"
STAMP='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z'


# ended PID WANT: PID (our child) ended within 10 s with exit status WANT.
ended() {
	local rc=0
	wait_gone "$1" 10
	wait "$1" || rc=$?
	[ "$rc" -eq "$2" ]
}

# torn_down SIG PID: SIG to PID (our child), which ends within 10 s with
# exit status 128 + SIG's number.
torn_down() {
	kill -"$1" "$2"
	ended "$2" $((128 + $(kill -l "$1")))
}

# log_lines_ok LOG PROG: every line of LOG is "TIME PROG[PID]: message".
log_lines_ok() {
	[ -s "$1" ]
	! grep -vE "^$STAMP $2\[[0-9]+\]: " "$1" || false
}

# status_reopens PID LOG PATTERN: after LOG is moved away, SIGUSR1 makes a
# new LOG at the same path, with a status line matching PATTERN (grep -E).
status_reopens() {
	mv "$2" "$2.1"
	kill -USR1 "$1"
	wait_for 5 grep -qE "^$STAMP [a-z-]+\[[0-9]+\]: $3" "$2"
	[ ! -s "$2.1" ] || ! grep -q 'status:' "$2.1" || false
}

# usr_signals_keep PID PATTERN: USR1 reopens the log with a status line
# matching PATTERN (status_reopens); USR2, twice, is said once; PIPE
# changes nothing; USR1 again reports again; PID lives on.
usr_signals_keep() {
	status_reopens "$1" log "$2"
	kill -USR2 "$1"
	kill -USR2 "$1"
	kill -PIPE "$1"
	kill -USR1 "$1"
	wait_for 5 lines_in log 3
	alive "$1"
	[ "$(grep -c 'nothing to reload; ignored' log)" -eq 1 ]
}

# ---- bind-input ----

# A foreground binding with one sender's line unread; sets B.
start_bind_input() {
	"$SP_BIN/bind-input" -F -L "$PWD/log" in1 "$PORT" >/dev/null &
	B=$!
	track "$B"
	wait_listening "$PORT"
	send_text "$PORT" $'kept\n'
	wait_for 5 logged log 'closed after 5 bytes'
}

@test "bind-input: INT HUP TERM QUIT tear down with 128+n; the unread line is in ID.unread; no FIFO, no process" {
	for sig in $TEARDOWN_SIGS; do
		start_bind_input
		torn_down "$sig" "$B"
		[ ! -e in1 ]
		[ "$(cat in1.unread)" = kept ]
		grep -qE "^$STAMP bind-input\[$B\]: in1: signal $(kill -l "$sig"): tearing down$" log
		log_lines_ok log bind-input
		rm -f in1.unread log
	done
}

@test "bind-input: USR1 reports and reopens the log; USR2 is said once; PIPE changes nothing; the line is still there" {
	start_bind_input
	usr_signals_keep "$B" 'in1: status: senders=0 bytes=0 closed=1 closed_bytes=5 unread=5 buffer='
	run timeout 5 head -n 1 in1
	[ "$output" = kept ]
	kill -TERM "$B"
	ended "$B" 143
	[ ! -e in1 ]
	[ ! -e in1.unread ]
	log_lines_ok log bind-input
}

# ---- bind-output ----

# A receiving binding (in1, background) and a foreground bind-output out1
# to it, a line written to out1 and delivered (nobody reads in1); sets B, IN.
start_bind_output() {
	start_detached bind-input -L "$PWD/inlog" in1 "$PORT"
	IN=$PID
	"$SP_BIN/bind-output" -F -L "$PWD/log" out1 127.0.0.1 "$PORT" >/dev/null &
	B=$!
	track "$B"
	wait_for 5 is_fifo out1
	echo sent >out1
	wait_for 5 logged inlog 'sender .* connected'
}

@test "bind-output: INT HUP TERM QUIT tear down with 128+n; the line written before is delivered; no FIFO, no process" {
	for sig in $TEARDOWN_SIGS; do
		start_bind_output
		torn_down "$sig" "$B"
		[ ! -e out1 ]
		[ ! -e out1.unread ]
		run timeout 5 head -n 1 in1
		[ "$output" = sent ]
		log_lines_ok log bind-output
		kill -TERM "$IN"
		wait_gone "$IN"
		rm -f log inlog in1.unread
	done
}

@test "bind-output: USR1 reports and reopens the log; USR2 is said once; PIPE changes nothing; it still sends" {
	start_bind_output
	usr_signals_keep "$B" 'out1: status: connected=yes taken=[05] unsent=[05] '
	echo more >out1
	run timeout 5 head -n 2 in1
	[ "$output" = $'sent\nmore' ]
	kill -TERM "$B"
	ended "$B" 143
	[ ! -e out1 ]
	log_lines_ok log bind-output
}

# ---- pool ----

# A foreground pool -l, and one master run whose daemon's line waits unread
# in the buffer dem1; sets POOL.
start_pool_with_line() {
	"$SP_BIN/pool" -l -L "$PWD/log" "$KEY" "$PORT" 2>/dev/null &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	daemon d dem1 'echo pooled'
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 logged log 'dem1: sender .* closed after 7 bytes'
}

@test "pool: INT HUP TERM QUIT tear down with 128+n; the unread line is in dem1.unread; no FIFO, no process" {
	for sig in $TEARDOWN_SIGS; do
		start_pool_with_line
		torn_down "$sig" "$POOL"
		[ ! -e dem1 ]
		[ "$(cat dem1.unread)" = pooled ]
		grep -qE "^$STAMP pool\[$POOL\]: signal $(kill -l "$sig"): ended$" log
		log_lines_ok log pool
		not_listening "$PORT"
		rm -f dem1.unread log
	done
}

@test "pool: USR1 reports and reopens the log; USR2 is said once; PIPE changes nothing; the line is still there" {
	start_pool_with_line
	usr_signals_keep "$POOL" 'status: sessions=0 proving=0 grants=0 buffers=1 services=0 accepting=yes'
	run timeout 5 head -n 1 dem1
	[ "$output" = pooled ]
	kill -TERM "$POOL"
	ended "$POOL" 143
	[ ! -e dem1 ]
	log_lines_ok log pool
}

# A pool -l (PID POOL, log ./log, options given) and master (PID M) whose
# daemon dem1 said "first" and says "second" and ends once ./go exists.
start_quitting_pool() {
	"$SP_BIN/pool" -l -L "$PWD/log" "$@" "$KEY" "$PORT" 2>/dev/null &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	daemon d dem1 "echo first; while [ ! -e '$PWD/go' ]; do sleep 0.05; done; echo second"
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d 2>master.err &
	M=$!
	track "$M"
	wait_for 5 logged log 'dem1: granted to'
	run timeout 5 head -n 1 dem1
	[ "$output" = first ]
}

@test "pool: QUIT is a graceful stop: no new master, the running session's stream goes on to its end, then 131 with what nobody read saved" {
	start_quitting_pool
	kill -QUIT "$POOL"
	wait_for 5 logged log 'SIGQUIT: graceful stop: 1 session and 0 services have 30 s to finish'
	wait_for 5 not_listening "$PORT"
	alive "$POOL"
	is_fifo dem1
	kill -QUIT "$POOL" # a second one changes nothing
	touch go
	ended "$M" 0
	ended "$POOL" 131
	[ "$(cat dem1.unread)" = second ]
	[ ! -e dem1 ]
	grep -qE "^$STAMP pool\[$POOL\]: signal 3: ended$" log
	log_lines_ok log pool
}

@test "pool -G 1: QUIT with a session that does not finish tears down after a second; the master is told" {
	start_quitting_pool -G 1
	kill -QUIT "$POOL"
	wait_for 5 logged log 'have 1 s to finish'
	ended "$POOL" 131
	ended "$M" 1
	grep -q "pool shutting down" master.err
	[ ! -e dem1 ]
	not_listening "$PORT"
	log_lines_ok log pool
}

@test "pool: TERM during a graceful stop tears down at once" {
	start_quitting_pool
	kill -QUIT "$POOL"
	wait_for 5 logged log 'SIGQUIT: graceful stop'
	kill -TERM "$POOL"
	ended "$POOL" 143
	[ ! -e dem1 ]
}

# ---- master ----

# A pool -l (background) and a foreground master whose daemon said a line
# and goes on running; sets M (the PID the caller sees), DPID (the daemon's).
start_master() {
	"$SP_BIN/pool" -l -L "$PWD/plog" "$KEY" "$PORT" 2>/dev/null &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	daemon d dem1 "echo \$\$ >'$PWD/dpid'; echo mastered; exec sleep 600"
	"$SP_BIN/master" -L "$PWD/log" "$KEY" 127.0.0.1 "$PORT" d &
	M=$!
	track "$M"
	wait_file dpid
	DPID=$(cat dpid)
	wait_for 5 logged plog 'dem1: granted to'
}

@test "master: INT HUP TERM QUIT tear down with 128+n; the daemon's line reached the pool; no daemon left" {
	for sig in $TEARDOWN_SIGS; do
		start_master
		torn_down "$sig" "$M"
		wait_gone "$DPID"
		grep -qE "^$STAMP master\[[0-9]+\]: signal $(kill -l "$sig"): ending 1 daemon" log
		log_lines_ok log master
		run timeout 5 head -n 1 dem1
		[ "$output" = mastered ]
		kill -TERM "$POOL"
		ended "$POOL" 143
		rm -f log plog dpid dem1.unread
	done
}

@test "master: USR1 reports and reopens the log; USR2 is said once; PIPE changes nothing; the daemon runs on" {
	start_master
	usr_signals_keep "$M" 'status: daemons=1 started=1 running=1 failed=no'
	alive "$DPID"
	run timeout 5 head -n 1 dem1
	[ "$output" = mastered ]
	kill -TERM "$M"
	ended "$M" 143
	wait_gone "$DPID"
	log_lines_ok log master
}

# ---- socket -s ----

# A foreground socket -s -l -f -p cat that has served one connection; sets M.
start_socket_served() {
	"$SP_BIN/socket" -v -L "$PWD/log" -s -l -f -p cat "$PORT" >/dev/null 2>err &
	M=$!
	track "$M"
	wait_listening "$PORT"
	run timeout 5 "$SP_BIN/socket" 127.0.0.1 "$PORT" <<<echoed
	[ "$output" = echoed ]
	wait_for 5 logged log 'closed, status 0'
}

@test "socket -s: INT HUP TERM tear down with 128+n, QUIT stops gracefully with 131; nothing listens, no child left" {
	for sig in $TEARDOWN_SIGS; do
		start_socket_served
		torn_down "$sig" "$M"
		not_listening "$PORT"
		no_children "$M"
		log_lines_ok log socket
		rm -f log
	done
}

@test "socket -s: QUIT lets the running connection finish" {
	"$SP_BIN/socket" -v -L "$PWD/log" -s -l -f -p 'head -n 1' "$PORT" >/dev/null 2>err &
	M=$!
	track "$M"
	wait_listening "$PORT"
	mkfifo feed
	timeout 10 "$SP_BIN/socket" 127.0.0.1 "$PORT" <feed >got &
	track $!
	exec 7>feed
	wait_for 5 logged log 'connection from'
	kill -QUIT "$M"
	wait_for 5 logged log 'SIGQUIT: graceful stop: 1 connection has '
	alive "$M"
	echo late >&7
	exec 7>&-
	ended "$M" 131
	wait_for 5 file_has got
	[ "$(cat got)" = late ]
	log_lines_ok log socket
}

@test "socket -s: USR1 reports and reopens the log; USR2 without -W is said once; PIPE changes nothing; it still serves" {
	start_socket_served
	usr_signals_keep "$M" 'status: connections 0$'
	run timeout 5 "$SP_BIN/socket" 127.0.0.1 "$PORT" <<<again
	[ "$output" = again ]
	kill -TERM "$M"
	ended "$M" 143
	log_lines_ok log socket
}

# ---- the log ----

@test "-L lines: RFC 3339 UTC time, the program's name and PID; stderr without -L keeps 'prog: message'" {
	"$SP_BIN/bind-input" -F -L "$PWD/log" in1 "$PORT" >/dev/null &
	B=$!
	track "$B"
	wait_for 5 logged log 'listening on port'
	[[ "$(head -n 1 log)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\ bind-input\[$B\]:\ in1:\ listening\ on\ port\ $PORT, ]]
	t=$(date -u -d "$(head -n 1 log | cut -d' ' -f1)" +%s)
	[ $(($(date -u +%s) - t)) -le 5 ]
	kill -TERM "$B"
	ended "$B" 143
	"$SP_BIN/bind-input" -F in2 "$PORT" >/dev/null 2>err2 &
	B=$!
	track "$B"
	wait_for 5 logged err2 'listening on port'
	[ "$(head -n 1 err2)" = "bind-input: in2: listening on port $PORT, buffer in2" ]
}

# ---- logrotate ----

logrotate_bin() { command -v logrotate || echo /usr/sbin/logrotate; }
sessions_in() { cat "$@" 2>/dev/null | grep -c 'master session begins' || true; } # FILE...
sessions_are() { [ "$(sessions_in "${@:2}")" -eq "$1" ]; }                       # N FILE...

@test "examples/logrotate.conf on a live pool's -L file: SIGUSR1 in postrotate, later lines in the new file, none lost" {
	sed -e "s|/var/log/socketpool.log|$PWD/pool.log|" -e "s|/run/socketpool.pid|$PWD/pool.pid|g" \
		"$BATS_TEST_DIRNAME/../examples/logrotate.conf" >rotate.conf
	chmod 644 rotate.conf
	grep -q "kill -USR1 \"\$(cat $PWD/pool.pid)\"" rotate.conf
	"$SP_BIN/pool" -b -l -L "$PWD/pool.log" "$KEY" "$PORT" >pool.pid 2>/dev/null
	track "$(cat pool.pid)"
	daemon d dem1 'echo line'
	for run in 1 2 3; do "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d; done
	wait_for 5 sessions_are 3 pool.log
	"$(logrotate_bin)" -f -s "$PWD/state" rotate.conf
	[ -s pool.log.1 ]
	wait_for 5 grep -q 'status: ' pool.log
	for run in 4 5 6; do "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d; done
	wait_for 5 sessions_are 3 pool.log
	sessions_are 3 pool.log.1
	run ! grep -q 'status: ' pool.log.1
	log_lines_ok pool.log pool
	log_lines_ok pool.log.1 pool
	alive "$(cat pool.pid)"
	run timeout 5 head -n 6 dem1
	[ "${#lines[@]}" -eq 6 ]
}
