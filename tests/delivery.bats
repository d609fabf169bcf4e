#!/usr/bin/env bats
# No byte lost at the edges (issue 10): receivers that half-close, break,
# reset or restart; teardown during a write storm; senders' last lines.
# Every test counts bytes exactly: what writers were told they wrote ==
# what receivers got + ID.unread, in order, nothing twice.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
	NS=""
}
teardown() {
	common_teardown
	[ -z "$NS" ] || ip netns del "$NS" 2>/dev/null || true
}

# A network namespace of the test's own, with its loopback up: faults that
# take the network down stay in it. nsx CMD...: run CMD in it.
netns_up() {
	NS="spd$$x$BATS_TEST_NUMBER"
	ip netns add "$NS"
	ip netns exec "$NS" ip link set lo up
}
nsx() { ip netns exec "$NS" "$@"; }
ns_listening() { [ -n "$(nsx ss -Hltn "sport = :$1")" ]; }

# ---- 1. a receiver's half-close is not the end ----

@test "receivers that half-close at once get every byte: socket -s, socat, nc -N" {
	head -c 8000000 /dev/urandom >big
	for kind in socket socat nc; do
		port=$(free_port)
		case $kind in
		socket) "$SP_BIN/socket" -s "$port" </dev/null >"recv.$kind" & ;;
		socat) socat -t 60 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" - </dev/null >"recv.$kind" & ;;
		nc) nc -N -l 127.0.0.1 "$port" </dev/null >"recv.$kind" & ;;
		esac
		r=$!
		track "$r"
		wait_listening "$port"
		pid=$("$SP_BIN/bind-output" -L "log.$kind" bulk 127.0.0.1 "$port")
		track "$pid"
		cat big >bulk
		[ -p bulk ]
		kill -TERM "$pid"
		wait_gone "$pid" 10
		wait_gone "$r" 10
		cmp big "recv.$kind"
		[ ! -e bulk ]
		[ ! -e bulk.unread ]
		grep -q "127.0.0.1 $port closed the connection on its side; sending goes on" "log.$kind"
	done
}

@test "-r with a receiver that half-closes: no reconnect loop, every byte arrives" {
	"$SP_BIN/socket" -s "$PORT" </dev/null >recv &
	r=$!
	track "$r"
	wait_listening "$PORT"
	pid=$("$SP_BIN/bind-output" -r -L log bulk 127.0.0.1 "$PORT")
	track "$pid"
	seq 1 200000 >sent
	cat sent >bulk
	wait_for 10 size_is recv "$(stat -c %s sent)"
	alive "$pid"
	kill -TERM "$pid"
	wait_gone "$pid" 10
	cmp sent recv
	[ "$(grep -c 'reconnected\|lost' log)" -eq 0 ]
}

# ---- 2. bytes the receiver never acknowledged are kept ----

@test "a receiver killed mid-stream (no -r): what it got + ID.unread is exactly what was written" {
	netns_up
	head -c 1000000 /dev/urandom >sent
	ip netns exec "$NS" "$TOOLS/flakyrecv" -k drained "$PORT" got 2>recv.err & # $! is flakyrecv
	r=$!
	track "$r"
	wait_for 5 ns_listening "$PORT"
	pid=$(nsx "$SP_BIN/bind-output" -L log out1 127.0.0.1 "$PORT")
	track "$pid"
	# All of it fits in the pipe (1 MiB) and the queue: the writer does not block.
	timeout 30 cat sent >out1
	wait_for 30 exists drained
	kill -KILL "$r"
	nsx ip link set lo up
	wait_for 30 gone "$pid"
	[ ! -e out1 ]
	[ -s out1.unread ]
	cat got out1.unread | cmp - sent
	grep -q "connection to 127.0.0.1 $PORT lost: .* bytes sent on it, .* acknowledged, [1-9][0-9]* not: saved" log
}

@test "a receiver killed mid-stream (-r): the unacknowledged tail is sent first to the next one, nothing twice" {
	netns_up
	head -c 1500000 /dev/urandom >sent
	ip netns exec "$NS" "$TOOLS/flakyrecv" -k drained "$PORT" got1 2>recv.err &
	r=$!
	track "$r"
	wait_for 5 ns_listening "$PORT"
	pid=$(nsx "$SP_BIN/bind-output" -r -L log out1 127.0.0.1 "$PORT")
	track "$pid"
	# The writer blocks while the receiver stalls: what waits is the pipe's, the queue's
	# and 64 KiB in the kernel (TCP_NOTSENT_LOWAT), less than it writes.
	cat sent >out1 &
	w=$!
	track "$w"
	wait_for 30 exists drained
	kill -KILL "$r"
	nsx ip link set lo up
	wait_for 30 logged log "lost: .* not: they go first once reconnected"
	ip netns exec "$NS" socat -u "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" CREATE:got2 &
	track $!
	wait_for 30 sizes_sum_is "$(stat -c %s sent)" got1 got2
	wait "$w" # the writer's every write() was taken
	kill -TERM "$pid"
	wait_gone "$pid" 10
	cat got1 got2 | cmp - sent
	[ ! -e out1.unread ]
	grep -q "reconnected to 127.0.0.1 $PORT; [1-9][0-9]* bytes to send first" log
}

@test "20 receivers that accept and reset before a good one (-r): all of it arrives once, each break counted" {
	netns_up
	head -c 2000000 /dev/urandom >sent
	ip netns exec "$NS" "$TOOLS/flakyrecv" -n 20 -h 1100 "$PORT" got 2>recv.err &
	r=$!
	track "$r"
	wait_for 5 ns_listening "$PORT"
	pid=$(nsx "$SP_BIN/bind-output" -r -L log out1 127.0.0.1 "$PORT")
	track "$pid"
	cat sent >out1
	wait_for 120 size_is got "$(stat -c %s sent)"
	kill -TERM "$pid"
	wait_gone "$pid" 10
	wait_gone "$r" 10
	cmp sent got
	[ ! -e out1.unread ]
	[ "$(grep -c ' lost: .* bytes sent on it, .* acknowledged, .* not: they go first once reconnected' log)" -eq 20 ]
	[ "$(grep -c 'reset$' recv.err)" -eq 20 ]
}

# ---- 3. -r starts without a receiver ----

@test "-r without a receiver at start: ready with the FIFO, queues, connects once one listens" {
	run --separate-stderr "$SP_BIN/bind-output" -r -L log out1 127.0.0.1 "$PORT"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9]+$ ]]
	pid=$output
	track "$pid"
	[ -p out1 ]
	grep -q "connect to 127.0.0.1 $PORT: Connection refused; buffer out1 ready, retrying" log
	seq 1 1000 >sent
	cat sent >out1
	nc -d -l 127.0.0.1 "$PORT" >got 3>&- &
	track $!
	wait_for 30 size_is got "$(stat -c %s sent)"
	cmp sent got
	kill "$pid"
	wait_gone "$pid"
	# A name that does not resolve stays an error, -r or not.
	run --separate-stderr "$SP_BIN/bind-output" -r out2 no-such-host.invalid "$PORT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "bind-output: connect to no-such-host.invalid $PORT: "* ]]
	[ ! -e out2 ]
}

# ---- 4. teardown keeps what writers were told was written ----

# start_storm FIFO: three writers, a, b and c, pour lines into FIFO, each
# counting in count.TAG the lines its write() took; sets WRITERS, their PIDs,
# once all three have begun.
start_storm() {
	local tag
	WRITERS=""
	for tag in a b c; do
		"$TOOLS/storm" "$1" "$tag" "started.$tag" >"count.$tag" &
		WRITERS="$WRITERS $!"
		track "$!"
	done
	for tag in a b c; do wait_for 5 exists "started.$tag"; done
}

# check_storm GOT... : each writer's lines, counted in count.TAG, appear in
# the concatenation of the files exactly once each and in order.
check_storm() {
	local tag n sum=0
	for tag in a b c; do
		n=$(cat "count.$tag")
		sum=$((sum + n))
		# A writer that never got a line into a full pipe has nothing to find: fine.
		cat "$@" | { grep "^$tag-" || true; } | cmp - <(seq -f "$tag-%08g" 1 "$n")
	done
	[ "$sum" -gt 0 ]
}

@test "SIGTERM during a write storm, 20 trials: every line a writer's write() took is sent or in ID.unread" {
	for trial in $(seq 1 20); do
		port=$(free_port)
		nc -d -l 127.0.0.1 "$port" >got 3>&- &
		recv=$!
		track "$recv"
		wait_listening "$port"
		pid=$("$SP_BIN/bind-output" -L log out1 127.0.0.1 "$port")
		track "$pid"
		start_storm out1
		wait_for 5 file_has got
		kill -TERM "$pid"
		kill -TERM $WRITERS
		for w in $WRITERS; do wait "$w"; done
		wait_gone "$pid" 10
		wait_gone "$recv" 10
		[ ! -e out1 ]
		if [ -e out1.unread ]; then check_storm got out1.unread; else check_storm got; fi
		rm -f got out1.unread count.* started.* log
	done
}

@test "bind-input: SIGTERM while local writers pour into its FIFO, 5 trials: nothing they wrote is lost" {
	for trial in $(seq 1 5); do
		port=$(free_port)
		pid=$("$SP_BIN/bind-input" in1 "$port")
		track "$pid"
		start_storm in1
		kill -TERM "$pid"
		kill -TERM $WRITERS
		for w in $WRITERS; do wait "$w"; done
		wait_gone "$pid" 10
		[ ! -e in1 ]
		check_storm in1.unread
		rm -f in1.unread count.* started.*
	done
}

# ---- 5. senders' unterminated last lines are not glued together ----

@test "unterminated last lines of several senders each end with a newline; -R and -1 pass bytes unchanged" {
	pid=$("$SP_BIN/bind-input" in1 "$PORT")
	track "$pid"
	printf nonl | nc -N 127.0.0.1 "$PORT"
	printf 'after\n' | nc -N 127.0.0.1 "$PORT"
	IFS= read -r l1 <in1
	IFS= read -r l2 <in1
	[ "$l1" = nonl ]
	[ "$l2" = after ]
	# The README's loop: a sender's bare END stops it.
	printf 'one\n' | nc -N 127.0.0.1 "$PORT"
	printf END | nc -N 127.0.0.1 "$PORT"
	n=0
	while IFS= read -r msg <in1; do
		n=$((n + 1))
		[ "$msg" = END ] && break
		[ "$n" -lt 5 ] || break
	done
	[ "$msg" = END ]
	kill "$pid"
	wait_gone "$pid"
	# -R: bytes unchanged.
	port=$(free_port)
	pid=$("$SP_BIN/bind-input" -R in2 "$port")
	track "$pid"
	printf nonl | nc -N 127.0.0.1 "$port"
	printf 'after\n' | nc -N 127.0.0.1 "$port"
	IFS= read -r l <in2
	[ "$l" = nonlafter ]
	kill "$pid"
	wait_gone "$pid"
	# -1: one sender over its whole life, its bytes exactly.
	port=$(free_port)
	pid=$("$SP_BIN/bind-input" -1 in3 "$port")
	track "$pid"
	printf 'a\nno newline' | nc -N 127.0.0.1 "$port"
	cat in3 >got3
	[ "$(cat got3)" = $'a\nno newline' ]
	[ "$(tail -c 1 got3)" = e ]
}
