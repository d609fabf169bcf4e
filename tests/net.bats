#!/usr/bin/env bats
# Across a slow path (issue 20): the programs' promises over a real TCP path
# with latency and loss, two network namespaces joined by tests/bin/delaylink
# (tests/netns.bash): the receiving side (pool, bind-input) in namespace B,
# the sending side (master, bind-output) in A.
#
#  1. master, 100 one-line daemons, encrypted pool: zero lines lost, exit 0,
#     at 0, 20, 100 and 300 ms round trips, and at 100 ms with 1% loss.
#  2. -r across a slow path: the pool restarted mid-run at a 100 ms round
#     trip, every stream resumes exactly.
#  3. exact at teardown: a writer that keeps writing into bind-output's FIFO
#     through its SIGTERM: what its write()s accepted == what the receiver
#     got + ID.unread, in order, no byte twice; plain, and encrypted (-k).
#
# Times are never bounded from above: a slow machine or a slow path may take
# as long as it takes. The bounds on waits (and the `timeout` around master)
# only keep a hung program from hanging the suite.
load helpers
load netns

setup() {
	common_setup
	KEY=k12
}
teardown() {
	netns_down
	common_teardown
}

# pool_in_b ARGS... (KEY and PORT last): pool in namespace B, in the
# foreground of a background job (its PID is pool's: ip netns exec execs
# it), stderr to ./pool.err; sets POOL, tracked, and waits until it listens.
pool_in_b() {
	ip netns exec "$NETNS_B" "$SP_BIN/pool" "$@" 2>>pool.err 3>&- &
	POOL=$!
	track "$POOL"
	wait_listening_in b "${@: -1}" 10
}

# wait_status PID: its exit status in RC, once it has ended (bounded).
wait_status() {
	wait_gone "$1" 60 || { echo "process $1 has not ended after 60 s"; return 1; }
	RC=0
	wait "$1" || RC=$?
}

# ---- 1. a hundred one-line daemons, encrypted pool, zero lines lost ----

# hundred ONEWAY_MS [NETNS_UP OPTION...]: master in A pushes 100 one-line
# daemons to a spooling pool (-a) in B across the link: master exits 0 and
# says nothing, the pool exits 0 and refused no connection, and every
# daemon's line is in its spool file exactly once.
hundred() {
	local i bad=""
	netns_up "$@"
	mkdir d spool
	for i in $(seq 1 100); do
		daemon d "dem$i" 'echo "hello from $DAEMON_NAME"'
	done
	port=$(free_port_in b)
	pool_in_b -a -d spool -L pool.log "$KEY" "$port"
	run --separate-stderr ip netns exec "$NETNS_A" timeout 600 \
		"$SP_BIN/master" "$KEY" "$NETNS_ADDR_B" "$port" d
	echo "master: status $status, stderr: $stderr"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ -z "$output" ]
	wait_status "$POOL"
	echo "pool: status $RC; its log:"
	cat pool.log pool.err
	[ "$RC" -eq 0 ]
	run grep -c -e "no token in time" -e "refused" pool.log
	[ "$output" = 0 ]
	for i in $(seq 1 100); do
		printf 'hello from dem%s\n' "$i" | cmp -s - "spool/dem$i" || bad="$bad dem$i"
	done
	echo "daemons whose line is missing, doubled or wrong:${bad:- none}"
	[ -z "$bad" ]
	# nothing else was spooled: no .unread, no stray buffer
	[ "$(ls spool | wc -l)" -eq 100 ]
}

@test "master, 100 one-line daemons, encrypted pool, 0 ms round trip: zero lines lost, exit 0" {
	hundred 0
}

@test "master, 100 one-line daemons, encrypted pool, 20 ms round trip: zero lines lost, exit 0" {
	hundred 10
}

@test "master, 100 one-line daemons, encrypted pool, 100 ms round trip: zero lines lost, exit 0" {
	hundred 50
}

@test "master, 100 one-line daemons, encrypted pool, 300 ms round trip: zero lines lost, exit 0" {
	hundred 150
}

@test "master, 100 one-line daemons, encrypted pool, 100 ms round trip with 1% loss: zero lines lost, exit 0" {
	hundred 50 --loss 1
}

# ---- 2. -r across a slow path: a pool restarted mid-run ----

# streamer NAME LINES (helpers.bash) writes numbered lines for a while, in
# bursts of 100 with 50 ms pauses (6000 lines: three seconds at least).
# expect NAME LINES: what streamer NAME LINES writes
expect() { seq -f "$1 line %g of the stream" 1 "$2"; }
# some_stream_cut: the pool that ended left a stream to resume
some_stream_cut() { compgen -G "${1:-.}/*.unread.streams" >/dev/null; }

# start_resuming POOL_OPTION...: a pool in B (the options given, -L
# pool.log, the key and a fresh port: $port), and master -r in A (PID $m,
# stderr to ./master.err) pushing the daemons of d to it.
start_resuming() {
	netns_up 50
	port=$(free_port_in b)
	pool_in_b "$@" -L pool.log "$KEY" "$port"
	ip netns exec "$NETNS_A" timeout 600 "$SP_BIN/master" -r "$KEY" "$NETNS_ADDR_B" "$port" d \
		2>master.err 3>&- &
	m=$!
	track "$m"
}

@test "-r across a slow path (100 ms): pool -l restarted mid-run, three streams resume exactly: every line once, in order" {
	mkdir d
	for s in s1 s2 s3; do
		streamer "$s" 6000
		reader "$s" "got.$s"
	done
	start_resuming -l
	wait_for 60 lines_in got.s1 1000
	kill -TERM "$POOL"
	wait_status "$POOL"
	echo "the first pool: status $RC; its log:"
	cat pool.log pool.err
	[ "$RC" -eq 143 ]
	some_stream_cut
	pool_in_b -l -L pool.log "$KEY" "$port"
	wait_status "$m"
	echo "master: status $RC; stderr:"
	cat master.err
	[ "$RC" -eq 0 ]
	grep -q "lost the pool" master.err
	# A stream the first pool had taken whole (master's END not read yet)
	# is not resumed: what its reader had not read was saved to NAME.unread,
	# and the restarted pool -l serves it at once from NAME's buffer
	# (pool(1), SIGNALS): every reader gets its whole stream.
	for s in s1 s2 s3; do
		wait_for 60 lines_in "got.$s" 6000 || {
			wc -l got.*
			ls -la
			cat pool.log
			false
		}
	done
	# Everything is in: what the pool still held (nothing, or a line
	# doubled at the end) goes to NAME.unread when it ends.
	kill -TERM "$POOL"
	wait_status "$POOL"
	touch stop
	for s in s1 s2 s3; do
		echo "$s: $(wc -l <"got.$s") lines read, $(stat -c %s "$s.unread" 2>/dev/null || echo 0) bytes left unread"
		cat "got.$s" "$s.unread" 2>/dev/null | cmp - <(expect "$s" 6000)
	done
}

@test "-r across a slow path (100 ms): spooling pool (-a) restarted mid-run, three streams resume exactly in their files" {
	mkdir d spool
	for s in s1 s2 s3; do
		streamer "$s" 6000
	done
	start_resuming -a -d spool
	wait_for 60 lines_in spool/s1 1000
	kill -TERM "$POOL"
	wait_status "$POOL"
	[ "$RC" -eq 143 ]
	some_stream_cut spool
	pool_in_b -a -d spool -L pool.log "$KEY" "$port"
	wait_status "$m"
	echo "master: status $RC; stderr:"
	cat master.err
	[ "$RC" -eq 0 ]
	grep -q "lost the pool" master.err
	# a one-shot pool ends once its master's streams are all in
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
	for s in s1 s2 s3; do
		echo "$s: $(wc -l <"spool/$s") lines spooled"
		cmp "spool/$s" <(expect "$s" 6000)
	done
	[ "$(ls spool)" = "$(printf 's1\ns2\ns3')" ]
}

# ---- 3. exact at teardown: a writer that keeps writing through SIGTERM ----

at_least() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; } # FILE BYTES
# connection_over_in_b PORT: no connection to B's PORT is established, or
# has had its end of file and waits to be closed: bind-input has read all
# that will ever come on it.
connection_over_in_b() {
	[ -z "$(in_b ss -Htn state established state close-wait "( sport = :$1 )")" ]
}

# teardown_trial [-k KEY]: one trial. bind-input -R (raw: a record the
# teardown cut is not ended with a newline) in B, a drain reading its FIFO
# into got; bind-output in A, and `records write` writing numbered 16-byte
# records into out1, 4 KiB a write, until its write fails. Once 2 MiB have
# arrived, bind-output gets SIGTERM; the writer goes on until bind-output's
# teardown closes the FIFO (EPIPE). Once the connection is over and the
# drain stopped, bind-input gets SIGTERM too. Then what the writer's
# write()s accepted must be got + in1.unread + out1.unread, in order, no
# byte twice. Sets TRIAL to the check's verdict line, and EXACT to 1 when
# the trial was exact, 0 when not (then the check's lines and the logs are
# printed). A step that fails (a binding that does not start, a wait that
# runs out) fails the test at once.
teardown_trial() {
	local port inpid outpid drain writer accepted t0 t1
	rm -f got in1.unread out1.unread accepted drained started in.log out.log
	port=$(free_port_in b)
	inpid=$(ip netns exec "$NETNS_B" "$SP_BIN/bind-input" -R "$@" -L in.log in1 "$port")
	track "$inpid"
	outpid=$(ip netns exec "$NETNS_A" "$SP_BIN/bind-output" "$@" -L out.log out1 "$NETNS_ADDR_B" "$port")
	track "$outpid"
	"$TOOLS/records" drain in1 got >drained 3>&- &
	drain=$!
	track "$drain"
	"$TOOLS/records" write -m started out1 >accepted 3>&- &
	writer=$!
	track "$writer"
	wait_for 10 exists started
	wait_for 60 at_least got 2097152
	t0=${EPOCHREALTIME/[.,]/}
	kill -TERM "$outpid"
	# bind-output reads the FIFO for its 5 seconds, then closes it
	wait_gone "$writer" 60
	wait "$writer"
	accepted=$(cat accepted)
	wait_gone "$outpid" 60
	t1=${EPOCHREALTIME/[.,]/}
	# What it sent before it ended arrives at bind-input, and is read.
	wait_for 60 connection_over_in_b "$port"
	kill -TERM "$drain"
	wait "$drain"
	kill -TERM "$inpid"
	wait_gone "$inpid" 30
	[ ! -e out1 ]
	[ ! -e in1 ]
	run "$TOOLS/records" check "$accepted" got in1.unread out1.unread
	# the teardown's time is told, never asserted
	TRIAL="${lines[${#lines[@]} - 1]#records: } (bind-output's teardown took $(((t1 - t0) / 1000)) ms)"
	[ "$status" -le 1 ]
	EXACT=$((status == 0))
	[ "$EXACT" -eq 0 ] || return 0
	printf '%s\n' "$output"
	echo "bind-output's log:"
	cat out.log
	echo "bind-input's log:"
	cat in.log
}

# teardown_trials N [-k KEY]: N trials over a 100 ms round trip; every one exact.
teardown_trials() {
	local n=$1 t bad=0
	shift
	netns_up 50
	for t in $(seq 1 "$n"); do
		echo "== trial $t"
		teardown_trial "$@"
		[ "$EXACT" -eq 1 ] || bad=$((bad + 1))
		echo "# trial $t: $TRIAL" >&3
	done
	echo "$bad of $n trials not exact"
	[ "$bad" -eq 0 ]
}

@test "exact at teardown (100 ms): a writer writing on through bind-output's SIGTERM, 5 trials: accepted == got + in1.unread + out1.unread, in order, once" {
	teardown_trials 5
}

@test "exact at teardown (100 ms), -k: the same with bind-output -k and bind-input -k -R, 5 trials" {
	teardown_trials 5 -k "$KEY"
}

# master_teardown_trial: a daemon writing numbered records on and on
# (`records write` into its stdout, 4 KiB a write) is relayed by master in
# A to a spooling pool in B; once 2 MiB are spooled, master gets SIGTERM,
# which ends the daemon (its process group gets SIGTERM; the writer prints
# what its write()s accepted). What was accepted must be in the spool file,
# in order, no byte twice: master's relay takes the pipe to its end and the
# pool confirms it all.
master_teardown_trial() {
	local port master
	rm -rf d spool acc
	mkdir d spool
	cat >d/w <<-SH
	#!/bin/sh
	exec 3>&1 >"$PWD/acc"
	exec "$TOOLS/records" write /dev/fd/3
	SH
	chmod +x d/w
	port=$(free_port_in b)
	pool_in_b -a -d spool -L pool.log "$@" "$KEY" "$port"
	ip netns exec "$NETNS_A" "$SP_BIN/master" "$@" -L master.log "$KEY" "$NETNS_ADDR_B" "$port" d 3>&- &
	master=$!
	track "$master"
	wait_for 60 at_least spool/w 2097152
	kill -TERM "$master"
	wait_status "$master"
	[ "$RC" -eq 143 ]
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
	wait_for 10 test -s acc
	run "$TOOLS/records" check "$(cat acc)" spool/w spool/w.unread
	printf '%s\n' "$output"
	cat master.log pool.log
	[ "$status" -eq 0 ]
	[ ! -e spool/w.unread ]
}

# (With -U nothing is relayed: the daemon's stdout is its own connection.)
@test "exact at teardown (100 ms): master's relayed stream, a daemon writing on through master's SIGTERM, 3 trials: accepted == spooled, in order, once" {
	local t
	netns_up 50
	for t in 1 2 3; do
		master_teardown_trial
	done
}
