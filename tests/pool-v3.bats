#!/usr/bin/env bats
# pool and master over protocol version 3 (issue 15): what crosses the
# network is sealed, control and data; a record changed on the way ends
# the stream as broken, never as complete. The master reaches the pool
# through relays on 127.0.0.1 (the pool listens on 127.0.0.2): the control
# connection through socat -v into ctl.cap, the data connection through
# tests/tools/mitm.py (which knows the channel's framing, not its keys)
# into data.cap. The same run with -U shows that the captures' greps do see
# what crosses in plain text.
load helpers

bats_require_minimum_version 1.5.0

setup() {
	common_setup
	KEY=sekrit-k12-VALUE
	PORT=$(free_port)
	MITM=$BATS_TEST_DIRNAME/tools/mitm.py
	mkdir -p d
	command -v python3 >/dev/null || skip "python3 not installed"
}
teardown() { common_teardown; }


# relays MODE [pool options]: the pool on 127.0.0.2 with its one buffer
# port GP, the relays in front of it (MODE: mitm.py's, or plain for socat on
# the data connection too); sets POOL, CTL (where the master connects)
relays() {
	local mode=$1 mid
	shift
	GP=$(free_port)
	CTL=$(free_port)
	mid=$(free_port)
	"$SP_BIN/pool" "$@" -A 127.0.0.2 -r "$GP-$GP" "$KEY" "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_for 5 sh -c "ss -Hltn 'sport = :$PORT' | grep -q 127.0.0.2:"
	socat -v "TCP-LISTEN:$CTL,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.2:$PORT" 2>ctl.cap &
	track $!
	if [ "$mode" = plain ]; then
		# Not framed: socat, which passes bytes on as they come.
		socat -v "TCP-LISTEN:$GP,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.2:$GP" 2>data.cap &
		track $!
	else
		socat "TCP-LISTEN:$mid,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.2:$GP" &
		track $!
		# shellcheck disable=SC2086 # MODE is one or two words
		python3 "$MITM" "$GP" "$mid" $mode -w data.cap 2>mitm.err &
		track $!
		wait_listening "$mid"
	fi
	wait_listening "$CTL"
	wait_listening "$GP"
}

# run_master [master options]: through the relays, stderr in master.err; sets RC
run_master() {
	RC=0
	"$SP_BIN/master" "$@" "$KEY" 127.0.0.1 "$CTL" d 2>master.err || RC=$?
}

@test "a captured session, control and data, holds neither the key, nor a token, nor any daemon's line; with -U it holds them all" {
	# The daemon ends once told: a plain master leaves once its daemon has, and its
	# data connection through the relays must be up by then (in version 3 the
	# master itself waits until the pool has taken the stream).
	daemon d x1 "echo daemon-secret-line-42; while [ ! -e '$PWD/go' ]; do sleep 0.05; done"
	touch go
	relays pass
	run_master
	[ "$RC" -eq 0 ]
	[ ! -s master.err ]
	[ "$(cat x1)" = daemon-secret-line-42 ]
	wait_gone "$POOL"
	grep -q 'SOCKETPOOL 3 noise' ctl.cap
	[ -s data.cap ]
	for f in ctl.cap data.cap; do
		run ! grep -aq 'sekrit' "$f"
		run ! grep -aq 'daemon-secret' "$f"
		run ! grep -aEq '[0-9a-f]{32}' "$f" # no token, no stream name
		run ! grep -aEq 'GRANT|PORT' "$f"
	done
	# The same in plain text: every one of those greps finds its mark.
	rm -f x1 ctl.cap data.cap go
	PORT=$(free_port)
	relays plain -U
	"$SP_BIN/master" -U "$KEY" 127.0.0.1 "$CTL" d 2>master.err &
	m=$!
	track "$m"
	wait_for 10 grep -aq daemon-secret-line-42 data.cap
	touch go
	wait "$m"
	[ "$(cat x1)" = daemon-secret-line-42 ]
	wait_gone "$POOL"
	grep -aq 'daemon-secret-line-42' data.cap
	token=$(sed -n 's/.*GRANT x1 [0-9]* \([0-9a-f]\{32\}\) -.*/\1/p' ctl.cap)
	[ -n "$token" ]
	grep -aq "$token" data.cap
	grep -aEq 'PORT x1 [0-9a-f]{32}' ctl.cap
	run ! grep -aq 'sekrit' ctl.cap
}

@test "a flipped byte in a data record: what came before is delivered, the connection ends, the master reports it and exits 1" {
	# Records: 1 the key confirmation, 2 the token line, 3 the first line, 4 the
	# second (written after a pause).
	daemon d x1 'echo before-the-flip; sleep 0.5; echo after-the-flip; sleep 0.5; echo end'
	relays "flip 4"
	run_master
	[ "$RC" -eq 1 ]
	grep -q '^master: x1: data connection lost: the pool closed it; [0-9]* bytes\? not delivered$' master.err
	[ "$(cat x1)" = before-the-flip ]
	wait_for 5 grep -q 'x1: sender 127.0.0.1 [0-9]*: a record was altered or is from another key; the rest is refused; connection ended after [0-9]* bytes' pool.err
	grep -q 'x1: sender 127.0.0.1 [0-9]* closed after 16 bytes (broken: its stream may resume)' pool.err
	run ! grep -q 'after-the-flip' x1.unread
}

@test "a wrong key, either side's: a clear error, exit 1, nothing granted or delivered, the penalty counts it" {
	daemon d x1 'echo never'
	"$SP_BIN/pool" -l "$KEY" "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/master" other-key 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT rejected the key (it closed the handshake)" ]
	wait_for 5 grep -q 'wrong key (1 in a row from 127.0.0.1); dropped' pool.err
	run ! grep -q granted pool.err
	[ ! -e x1 ]
	kill "$POOL"
	wait_gone "$POOL"
	# The pool's key is the wrong one: the same for the master, and the same line in its log.
	port=$(free_port)
	"$SP_BIN/pool" -l other-key "$port" 2>pool2.err &
	track $!
	wait_listening "$port"
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$port" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $port rejected the key (it closed the handshake)" ]
	wait_for 5 grep -q 'wrong key (1 in a row from 127.0.0.1); dropped' pool2.err
	[ ! -e x1 ]
}

@test "an independent Noise implementation (noise-c: tests/node/peer.js) speaks version 3 as socketpool(7) has it: the greeting, both prologues, the token inside" {
	[ -f "$BATS_TEST_DIRNAME/node/node_modules/@richardhopton/noise-c.wasm/package.json" ] ||
		skip "tests/node/node_modules is missing: run scripts/deps.sh"
	local peer=$BATS_TEST_DIRNAME/node/peer.js cpro dpro greet grant line bye n gport token
	head -c 32 /dev/urandom >key
	chmod 600 key
	"$SP_BIN/pool" -l @key "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 5 greet # bash reads a socket a byte at a time: the greeting only
	[ "$greet" = "SOCKETPOOL 3 noise" ]
	cpro=$(printf 'socketpool 3 control\n%s' "$greet" | od -An -tx1 | tr -d ' \n')
	dpro=$(printf 'socketpool 3 data' | od -An -tx1 | tr -d ' \n')
	# The control channel: peer.js on the connection (fds 3 and 4), lines in and out.
	coproc CTL { exec node "$peer" init @key -p "$cpro" 3<&5 4>&5 2>ctl.err; }
	track "$CTL_PID"
	exec 5>&-
	for n in 1 2; do
		printf 'PORT x%s 0123456789abcdef0123456789abcdef -\n' "$n" >&"${CTL[1]}"
		IFS= read -r -t 10 -u "${CTL[0]}" grant
		[[ "$grant" =~ ^GRANT\ x$n\ ([0-9]+)\ ([0-9a-f]{32})\ -$ ]]
		gport=${BASH_REMATCH[1]} token=${BASH_REMATCH[2]}
		if [ "$n" = 2 ]; then
			# Under the control prologue: refused, the prologue binds the use.
			run -1 timeout 20 node "$peer" init @key -p "$cpro" -c "$gport" </dev/null
			wait_for 5 grep -q 'x2: refused 127.0.0.1 [0-9]*: handshake failed' pool.err
		fi
		# The data connection: the token line first, inside its own channel.
		printf '%s\nhello from noise-c\n' "$token" |
			timeout 20 node "$peer" init @key -p "$dpro" -c "$gport" >data.out 2>data.err
		IFS= read -r line <"x$n" # a lasting buffer (-l): no end of file to wait for
		[ "$line" = "hello from noise-c" ]
	done
	printf 'END\n' >&"${CTL[1]}"
	IFS= read -r -t 10 -u "${CTL[0]}" bye
	[ "$bye" = BYE ]
	grep -q 'x1: sender 127.0.0.1 [0-9]* closed after 19 bytes$' pool.err
}

@test "pool -t over 10 s holds for the version 3 handshake: a master's first message dribbling in over 11 s still gets in" {
	"$SP_BIN/pool" -l -t 14 "$KEY" "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
	CTL=$(free_port)
	# The message's length at once, a byte of it 10.5 s later, the rest at 11 s: the
	# pool's channel waits for it since the length came, past the 10 s of its own.
	python3 "$MITM" "$CTL" "$PORT" stall 10.5 2>mitm.err &
	track $!
	wait_listening "$CTL"
	daemon d s1 'echo stalled'
	RC=0
	"$SP_BIN/master" -t 14 "$KEY" 127.0.0.1 "$CTL" d 2>master.err || RC=$?
	[ "$RC" -eq 0 ] || { cat master.err pool.err; false; }
	IFS= read -r l <s1
	[ "$l" = stalled ]
	grep -q "master session begins" pool.err
}
