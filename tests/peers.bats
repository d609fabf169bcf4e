#!/usr/bin/env bats
# Hostile peers and escaping processes (issue 11): key guessers are slowed
# to about a guess a second, slow and greedy clients are bounded, a silent
# pool cannot hold a master, a pool must prove the key, and no descendant
# of a daemon outlives its master.
load helpers

setup() {
	common_setup
	KEY=k12
	PORT=$(free_port)
	mkdir -p d
}
teardown() { common_teardown; }


# ---- 7. guessing keys ----

@test "key guessing (-U: the guesser speaks version 2): 64 connections for 6 s get about one judgement a second; the real master still gets in" {
	start_pool -U -l "$KEY" "$PORT"
	grep -q "warning: the key is 3 bytes" pool.err
	# From 127.0.0.2: the penalty falls on the guesser's address, the real master's is another.
	run "$TOOLS/guesser" 127.0.0.1 "$PORT" 64 6 127.0.0.2
	[ "$status" -eq 0 ]
	read -r _ tried _ judged _ busy _ other <<<"$output"
	echo "tried $tried judged $judged busy $busy other $other" >&3
	[ "$tried" -ge 100 ]
	# 3 free, then one a second at most (a little slack for the edges of the window).
	[ "$judged" -le 12 ]
	# Every judgement was logged, but the log itself is bounded by the limiter.
	[ "$(wc -l <pool.err)" -le 60 ]
	daemon d real1 'echo in'
	run --separate-stderr "$SP_BIN/master" -U "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	IFS= read -r l <real1
	[ "$l" = in ]
}

# ---- 8. slow and greedy clients ----

@test "a client that dribbles one byte at a time is dropped at the handshake's deadline, not held" {
	start_pool -U -l -t 2 "$KEY" "$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 6 greet
	[[ "$greet" == "SOCKETPOOL 2 "* ]]
	t0=$(date +%s)
	# One byte every 0.3 s: each used to buy another -t seconds.
	(for c in A U T H ' ' 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0; do printf %s "$c"; sleep 0.3; done >&6) 2>/dev/null &
	track $!
	IFS= read -r -t 10 -u 6 err
	[ "$err" = "ERR handshake timeout" ]
	[ $(($(date +%s) - t0)) -le 4 ]
	exec 6>&-
}

@test "at most -c connections may be proving the key, a quarter of them from one address" {
	start_pool -l -c 8 "$KEY" "$PORT"
	for fd in 6 7; do
		eval "exec $fd<>/dev/tcp/127.0.0.1/$PORT"
		IFS= read -r -t 5 -u "$fd" greet
		[ "$greet" = "SOCKETPOOL 3 noise" ]
	done
	# A third from 127.0.0.1 is one too many for one address (8 / 4 = 2).
	exec 8<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 8 busy
	[ "$busy" = "ERR busy: too many connections proving the key" ]
	# Another address still gets in.
	run socat -T 2 - "TCP:127.0.0.1:$PORT,bind=127.0.0.2" </dev/null
	[ "$output" = "SOCKETPOOL 3 noise" ]
	exec 6>&- 7>&- 8>&-
	grep -q "127.0.0.1: refused: 2 connections are proving the key" pool.err
}

@test "grants are capped per session (-n) and in all (-N); beyond, FAIL with the reason" {
	start_pool -U -l -n 2 -N 3 "$KEY" "$PORT"
	ctl_open "$PORT"
	ctl_auth "$KEY"
	for n in 1 2 3; do printf 'PORT g%s 0123456789abcdef0123456789abcdef -\n' "$n" >&5; done
	ctl_read r1
	ctl_read r2
	ctl_read r3
	[[ "$r1" == "GRANT g1 "* ]]
	[[ "$r2" == "GRANT g2 "* ]]
	[ "$r3" = "FAIL g3 too many grants for one session (2)" ]
	exec 9<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 9 greet
	mac=$("$TOOLS/sha256test" hmac "$KEY" "socketpool 2 master ${greet##* } $NM")
	printf 'AUTH %s %s\n' "$mac" "$NM" >&9
	IFS= read -r -t 5 -u 9 ok
	printf 'PORT h1 0123456789abcdef0123456789abcdef -\nPORT h2 0123456789abcdef0123456789abcdef -\n' >&9
	IFS= read -r -t 5 -u 9 s1
	IFS= read -r -t 5 -u 9 s2
	[[ "$s1" == "GRANT h1 "* ]]
	[ "$s2" = "FAIL h2 the pool holds all the grants it may (3)" ]
	exec 5>&- 9>&-
}

# ---- 9. a pool that says nothing ----

@test "a pool that accepts and stays silent: the master gives up after -t, also with -b" {
	daemon d x1 'echo x'
	socat "TCP-LISTEN:$PORT,reuseaddr,fork" SYSTEM:'sleep 30' &
	track $!
	wait_listening "$PORT"
	t0=$(date +%s)
	# Told in the unit -t takes, a fraction as given.
	run --separate-stderr "$SP_BIN/master" -t 1.5 "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT did not answer within 1.5 s" ]
	run --separate-stderr timeout 20 "$SP_BIN/master" -b -t 1 -L m.log "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ $(($(date +%s) - t0)) -le 8 ]
	[ -z "$(pgrep -f "master -b -t 1 -L m.log")" ]
}

# ---- 10. the pool proves itself ----

@test "a pool that cannot prove the key learns no request: the master -U stops after its proof" {
	daemon d secret-name 'echo x'
	# A fake pool: greets, takes the proof, answers OK with a made-up one.
	socat "TCP-LISTEN:$PORT,reuseaddr" SYSTEM:"echo SOCKETPOOL 2 $NM; read a; echo \"\$a\" >got; echo OK 0000000000000000000000000000000000000000000000000000000000000000; cat >>got" &
	track $!
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/master" -U "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT does not prove the key; not trusting it" ]
	wait_for 5 file_has got
	[[ "$(head -1 got)" == "AUTH "* ]]
	run ! grep -q "PORT\|secret-name" got
}

@test "version 3: a pool that does not hold the key fails the master's handshake; no request, no name goes out" {
	daemon d secret-name 'echo x'
	# A fake pool: greets, takes the master's first message, answers 48 bytes of noise
	# (after their length, 0x00 0x30: a NUL and a '0').
	socat "TCP-LISTEN:$PORT,reuseaddr" SYSTEM:"echo SOCKETPOOL 3 noise; head -c 50 >got; head -c 1 /dev/zero; printf 0; head -c 48 /dev/urandom; cat >>got" &
	track $!
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT: handshake failed: the peer does not hold the key (or is not a socketpool channel)" ]
	wait_for 5 file_has got
	run ! grep -q "PORT\|secret-name" got
}

# ---- 13. no descendant outlives the master ----

# A daemon that leaves descendants behind: a pipeline, and a double fork out of its group.
escapers() {
	daemon d pipe1 'echo started; sleep 3001 | cat'
	daemon d dbl1 'echo started; (setsid sleep 3002 &) ; exec sleep 3003'
}
none_left() { [ -z "$(pgrep -f 'sleep 300[123]')" ]; }

@test "SIGKILL to the master (the PID it reports): no descendant of any daemon is left" {
	escapers
	start_pool -l "$KEY" "$PORT"
	pid=$("$SP_BIN/master" -b -L m.log "$KEY" 127.0.0.1 "$PORT" d)
	track "$pid"
	IFS= read -r l <pipe1
	IFS= read -r l <dbl1
	wait_for 5 sh -c "[ \$(pgrep -f 'sleep 300[123]' | wc -l) -eq 3 ]"
	kill -KILL "$pid"
	wait_for 10 none_left
}

@test "SIGKILL to the master's worker: the keeper ends what is left; SIGTERM ends the double-forked too" {
	escapers
	start_pool -l "$KEY" "$PORT"
	"$SP_BIN/master" -L m.log "$KEY" 127.0.0.1 "$PORT" d &
	keeper=$!
	track "$keeper"
	wait_for 5 test -p pipe1 -a -p dbl1
	IFS= read -r l <pipe1
	IFS= read -r l <dbl1
	wait_for 5 sh -c "[ \$(pgrep -f 'sleep 300[123]' | wc -l) -eq 3 ]"
	worker=$(children_of "$keeper" | head -1)
	[ -n "$worker" ]
	kill -KILL "$worker"
	wait_for 10 none_left
	wait_gone "$keeper" 10
	# And a plain SIGTERM: the setsid grandchild came back to the master, which ends it.
	"$SP_BIN/master" -L m2.log "$KEY" 127.0.0.1 "$PORT" d &
	m=$!
	track "$m"
	IFS= read -r l <pipe1
	IFS= read -r l <dbl1
	wait_for 5 sh -c "[ \$(pgrep -f 'sleep 300[123]' | wc -l) -eq 3 ]"
	kill -TERM "$m"
	rc=0
	wait "$m" || rc=$?
	[ "$rc" -eq 143 ]
	none_left
}
