#!/usr/bin/env bats
# Issue 22: nothing acts on a peer until it has proved the key. NNpsk0's first
# message can be replayed by whoever recorded one; a responder (socket's
# server, bind-input, the pool's control and data ports) counts the peer as
# authenticated only once the initiator's first record has come. The capture
# is the test's own (tests/tools/mitm.py -1), the replays tests/tools/replay.py.
# Also: errors acted on when they arrive, pool -N with -l, services under a
# subreaper, the greeting matched exactly.
load helpers

bats_require_minimum_version 1.5.0

PY=/usr/bin/python3

setup() {
	common_setup
	MITM=$BATS_TEST_DIRNAME/tools/mitm.py
	REPLAY=$BATS_TEST_DIRNAME/tools/replay.py
	head -c 32 /dev/urandom >key
	chmod 600 key
	P1=$(free_port)
	P2=$(free_port)
	while [ "$P2" = "$P1" ]; do P2=$(free_port); done
}
teardown() { common_teardown; }

count_of() { grep -c -- "$2" "$1" 2>/dev/null || true; } # FILE TEXT

# capture TO-PORT: the man in the middle from $P2 to TO-PORT, writing the
# client's first handshake message to msg1; sets $RELAY.
capture() {
	"$PY" "$MITM" "$P2" "$1" pass -1 msg1 2>relay.err &
	RELAY=$!
	track "$RELAY"
	wait_listening "$P2"
}

# replays ARGS...: replay.py ARGS in the background, its report in replay.out;
# sets $REPLAYER, and waits until every connection has sent (or was refused).
replays() {
	"$PY" "$REPLAY" "$@" 2>replay.out &
	REPLAYER=$!
	track "$REPLAYER"
	wait_for 10 logged replay.out "^sent "
}

@test "socket -k -s: replayed first messages run no program and end at the handshake deadline; the real client is served" {
	"$SP_BIN/socket" -k @key -s -l -f -p "sh -c 'echo x >>\"$PWD/runs\"; tr a-z A-Z'" "$P1" 2>srv.err &
	track $!
	wait_listening "$P1"
	capture "$P1"
	run -0 --separate-stderr "$SP_BIN/socket" -k @key 127.0.0.1 "$P2" <<<"recorded"
	[ "$output" = RECORDED ]
	wait_gone "$RELAY" 10
	[ -s msg1 ]
	[ "$(wc -l <runs)" -eq 1 ]
	replays -n 3 "$P1" msg1
	run -0 --separate-stderr "$SP_BIN/socket" -k @key 127.0.0.1 "$P1" <<<"real"
	[ "$output" = REAL ]
	# Held past the 10 s deadline, the replays were ended there, and ran nothing.
	wait_gone "$REPLAYER" 20
	[ "$(count_of replay.out '^closed [0-9] after')" -eq 3 ]
	run ! grep -E '^closed [0-9] after [0-8]\.' replay.out
	[ "$(wc -l <runs)" -eq 2 ]
	[ "$(count_of srv.err 'handshake failed: no answer in time')" -eq 3 ]
}

@test "bind-input -1 -k: a replayed first message takes no binding; the real sender's stream arrives whole" {
	BI=$("$SP_BIN/bind-input" -k @key -L first.log first "$P1")
	track "$BI"
	capture "$P1"
	PID=$("$SP_BIN/bind-output" -k @key -L out.log out 127.0.0.1 "$P2")
	track "$PID"
	echo recorded >out
	kill "$PID"
	wait_gone "$PID" 10
	wait_gone "$RELAY" 10
	[ -s msg1 ]
	kill "$BI"
	wait_gone "$BI" 10
	BI=$("$SP_BIN/bind-input" -1 -k @key -L in.log in "$P1")
	track "$BI"
	cat in >got &
	track $!
	replays "$P1" msg1
	seq 1 5000 >data
	PID=$("$SP_BIN/bind-output" -k @key -L out2.log out2 127.0.0.1 "$P1")
	track "$PID"
	cat data >out2
	kill "$PID"
	wait_gone "$PID" 10
	wait_gone "$BI" 10
	cmp data got
	# One sender connected, the real one; the replay was refused at the deadline.
	[ "$(count_of in.log 'sender .* connected')" -eq 1 ]
	logged in.log "sender .* closed after $(wc -c <data) bytes"
	wait_gone "$REPLAYER" 15
	logged replay.out '^closed 1 after'
}

@test "bind-input -k -c 8: replays hold no more than a quarter of -c from their address, and a sender with the key gets in" {
	BI=$("$SP_BIN/bind-input" -k @key -c 8 -L first.log first "$P1")
	track "$BI"
	capture "$P1"
	echo recorded | "$SP_BIN/socket" -k @key 127.0.0.1 "$P2"
	wait_gone "$RELAY" 10
	kill "$BI"
	wait_gone "$BI" 10
	BI=$("$SP_BIN/bind-input" -R -k @key -c 8 -L in.log in "$P1")
	track "$BI"
	cat in >got &
	track $!
	replays -n 4 -s 127.0.0.2 "$P1" msg1
	wait_for 5 eval '[ "$(count_of in.log "refused 127.0.0.2 [0-9]*: too many handshakes at once")" -eq 2 ]'
	echo "with the key" | "$SP_BIN/socket" -k @key 127.0.0.1 "$P1"
	wait_for 5 logged in.log "sender 127.0.0.1 [0-9]* closed after 13 bytes"
	run ! grep -q 'sender 127.0.0.2 [0-9]* connected' in.log
	wait_gone "$REPLAYER" 15
	[ "$(count_of in.log 'refused 127.0.0.2 [0-9]*: handshake failed: no answer in time')" -eq 2 ]
	kill "$BI"
	wait_gone "$BI" 10
	[ "$(cat got)" = "with the key" ]
}

# The pool's control port: a captured master's first message.
pool_capture() { # POOL-OPTIONS...: a pool on $P1 (log pool.err); one master session through the relay
	mkdir -p d
	daemon d x1 'echo recorded'
	"$SP_BIN/pool" -l "$@" @key "$P1" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$P1"
	capture "$P1"
	run -0 "$SP_BIN/master" @key 127.0.0.1 "$P2" d
	wait_gone "$RELAY" 10
	[ -s msg1 ]
}

@test "pool: a replayed master's first message begins no session, counts against -c, ends at -t; the real master is served" {
	pool_capture -c 4 -t 3
	[ "$(count_of pool.err 'master session begins')" -eq 1 ]
	# -c 4: one from an address may prove the key at a time; the second replay is busy.
	replays -g -n 2 -s 127.0.0.2 "$P1" msg1
	logged replay.out "^refused 2: ERR busy"
	wait_for 5 logged pool.err "127.0.0.2: refused: 1 connections are proving the key"
	run -0 "$SP_BIN/master" @key 127.0.0.1 "$P1" d
	[ "$(count_of pool.err 'master session begins')" -eq 2 ]
	wait_gone "$REPLAYER" 10
	logged replay.out '^closed 1 after'
	wait_for 5 logged pool.err '127.0.0.2 [0-9]*: no proof of the key in time; dropped'
	run ! grep -q '127.0.0.2 [0-9]*: master session begins' pool.err
}

@test "pool: a replay between wrong keys does not reset the guessing penalty" {
	pool_capture
	head -c 32 /dev/urandom >wrong
	chmod 600 wrong
	for round in 1 2 3 4; do
		run -1 "$SP_BIN/master" @wrong 127.0.0.1 "$P1" d
		# The pool reads the replay (when the penalty allows) and answers it; the replayer gives up.
		run -0 "$PY" "$REPLAY" -g -a "$P1" msg1
		[[ "$output" == *"answered 1"* ]]
		wait_for 5 eval '[ "$(count_of pool.err "closed the connection during the handshake")" -eq '"$round"' ]'
	done
	# Each wrong key counted on from the one before: a replay proved nothing, so reset nothing.
	for round in 1 2 3 4; do
		grep -q "wrong key ($round in a row from 127.0.0.1); dropped" pool.err
	done
	[ "$(count_of pool.err 'master session begins')" -eq 1 ]
}

@test "a good record and an altered one in one segment, then silence: bind-input -k ends the connection at once, logged" {
	BI=$("$SP_BIN/bind-input" -R -k @key -L in.log in "$P1")
	track "$BI"
	cat in >got &
	track $!
	# Records: 1 the key confirmation, 2 "one", 3 "two" (altered).
	"$PY" "$MITM" "$P2" "$P1" flip-hold 3 2>relay.err &
	track $!
	wait_listening "$P2"
	PID=$("$SP_BIN/bind-output" -k @key -L out.log out 127.0.0.1 "$P2")
	track "$PID"
	echo one >out
	wait_for 10 logged relay.err "^held 2" # sent: the second line goes in a record of its own
	echo two >out
	wait_for 10 logged in.log "a record was altered or is from another key; the rest is refused"
	wait_for 5 eval '[ "$(cat got)" = one ]'
}

@test "a good record and an altered one in one segment, then silence: socket -k -s ends the connection and stops its program" {
	"$SP_BIN/socket" -k @key -s -l -p 'cat >got.srv && touch whole' "$P1" 2>srv.err &
	SRV=$!
	track "$SRV"
	wait_listening "$P1"
	"$PY" "$MITM" "$P2" "$P1" flip-hold 3 2>relay.err &
	track $!
	wait_listening "$P2"
	mkfifo feed
	"$SP_BIN/socket" -k @key 127.0.0.1 "$P2" <feed 2>client.err &
	track $!
	exec 7>feed
	echo one >&7
	wait_for 10 logged relay.err "^held 2" # sent: the second line goes in a record of its own
	echo two >&7
	wait_for 10 logged srv.err "socket: connection: a record was altered or is from another key"
	wait_for 10 no_children "$SRV"
	[ "$(cat got.srv)" = one ]
	[ ! -e whole ]
	exec 7>&-
}

@test "pool -l -N: lasting buffers count against -N across sessions; a new name past it is refused, descriptors bounded" {
	mkdir d1 d2 d3
	for i in $(seq 1 6); do
		daemon d1 "a$i" "echo a$i"
		daemon d2 "b$i" "echo b$i"
		daemon d3 "c$i" "echo c$i"
	done
	"$SP_BIN/pool" -l -N 10 @key "$P1" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$P1"
	base=$(fd_count "$POOL")
	run -0 "$SP_BIN/master" @key 127.0.0.1 "$P1" d1
	# Four names of the second session fit under the cap; two do not.
	run -1 --separate-stderr "$SP_BIN/master" @key 127.0.0.1 "$P1" d2
	[ "$(grep -c 'the pool refused a port: the pool holds all the buffers it may (10)' <<<"$stderr")" -eq 2 ]
	# A third session: no new name at all, and an old name still gets its buffer.
	run -1 --separate-stderr "$SP_BIN/master" @key 127.0.0.1 "$P1" d3
	[ "$(grep -c 'the pool holds all the buffers it may (10)' <<<"$stderr")" -eq 6 ]
	run -0 "$SP_BIN/master" @key 127.0.0.1 "$P1" d1
	[ "$(find . -maxdepth 1 -type p | wc -l)" -eq 10 ]
	# Each buffer holds its FIFO and its listening sockets: bounded by -N, whatever is asked.
	[ "$(fd_count "$POOL")" -le $((base + 10 * 3)) ]
	for i in 1 2 3 4 5 6; do
		read -r line <"a$i"
		[ "$line" = "a$i" ]
	done
}

# A service whose program leaves two descendants in sessions of their own
# (setsid, double-forked), each marked by its own sleep length.
escaping_service() { # NAME MARK
	daemon sdir "$1" "setsid sh -c 'sleep $2.1 & sleep $2.2' </dev/null >/dev/null 2>&1 &
setsid sleep $2.3 </dev/null >/dev/null 2>&1 &
echo started; exec sleep 300"
}
escapees() { pgrep -f "^sleep $1\\.[123]\$" | wc -l; } # MARK

@test "pool -x: a service's setsid'd descendants end with its -R cap, and with the pool" {
	mkdir sdir
	m1=$((RANDOM + 1000)) m2=$((RANDOM + 40000))
	escaping_service slow "$m1"
	escaping_service slow2 "$m2"
	"$SP_BIN/pool" -l -x sdir -R 2 @key "$P1" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$P1"
	run -1 --separate-stderr "$SP_BIN/master" -c @key 127.0.0.1 "$P1" slow </dev/null
	[ "$output" = started ]
	[[ "$stderr" == *"slow: remote exited 143 (its run time is up)"* ]]
	wait_for 5 eval '[ "$(escapees "$m1")" -eq 0 ]'
	# The pool's end (SIGTERM) ends a running service's escaped descendants too.
	"$SP_BIN/master" -c @key 127.0.0.1 "$P1" slow2 </dev/null >out2 2>/dev/null &
	track $!
	wait_for 10 eval '[ "$(escapees "$m2")" -eq 3 ]'
	kill -TERM "$POOL"
	wait_gone "$POOL" 10
	wait_for 5 eval '[ "$(escapees "$m2")" -eq 0 ]'
}

# fake_pool GREETING: a listener on $P1 that greets with GREETING (printf format) and holds.
fake_pool() {
	# shellcheck disable=SC2059 # the greeting is the format
	printf "$1" >greeting
	socat "TCP-LISTEN:$P1,bind=127.0.0.1,reuseaddr,fork" SYSTEM:"cat greeting; sleep 10" &
	track $!
	wait_listening "$P1"
}

@test "master matches the greeting exactly: a leading zero or a CR is not the pool's greeting" {
	mkdir d
	daemon d x1 'echo never'
	for g in 'SOCKETPOOL 03 noise\n' 'SOCKETPOOL 3 noise\r\n' 'SOCKETPOOL 3 noise \n'; do
		fake_pool "$g"
		run -1 --separate-stderr "$SP_BIN/master" -t 5 @key 127.0.0.1 "$P1" d
		[ "$stderr" = "master: the pool at 127.0.0.1 $P1 sent a malformed greeting (not a socketpool pool?)" ]
		common_teardown
		: >"$PIDFILE"
		wait_for 5 not_listening "$P1"
	done
}
