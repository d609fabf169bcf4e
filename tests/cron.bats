#!/usr/bin/env bats
# pool and master the way cron jobs use them (issue 12): one stream per
# name across runs, either start order, no overlap, quiet success, resume
# after a pool restart or broken connections. Runs as cron runs them:
# env -i, no terminal, stdin /dev/null.
load helpers

setup() {
	common_setup
	KEY=k12
	PORT=$(free_port)
	NS=""
	mkdir -p d
}
teardown() {
	common_teardown
	[ -z "$NS" ] || ip netns del "$NS" 2>/dev/null || true
}

# cron CMD...: as cron runs a job (no environment, no terminal, stdin /dev/null).
cron() { env -i PATH=/usr/bin:/bin HOME="$HOME" "$@" </dev/null; }
# As cron does, but not through cron(): a function in the background would
# make $! a subshell's PID, which a signal would not get past.
start_pool_as_cron() { # ARGS... (KEY and PORT last); sets POOL
	env -i PATH=/usr/bin:/bin "$SP_BIN/pool" "$@" </dev/null 2>>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "${@: -1}"
}

# ---- 1. one stream per name across runs ----

@test "collector (pool -l): three master runs make one continuous stream; the reader never sees end of file" {
	start_pool_as_cron -l "$KEY" "$PORT"
	for run in 1 2 3; do
		daemon d cpu "seq -f 'run $run line %g' 1 300"
		run --separate-stderr cron "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
		[ "$status" -eq 0 ]
		[ -z "$output" ] # quiet success: cron mails nothing
		[ -z "$stderr" ]
		# One reader, opened once, for all three runs.
		[ "$run" -gt 1 ] || { exec 6<cpu; }
	done
	for i in $(seq 1 900); do IFS= read -r -t 5 -u 6 line; printf '%s\n' "$line"; done >got
	exec 6<&-
	for run in 1 2 3; do seq -f "run $run line %g" 1 300; done | cmp - got
	[ -p cpu ]
}

@test "-N PREFIX: many hosts with the same daemon names, one pool; concurrent senders interleave whole lines" {
	start_pool_as_cron -l "$KEY" "$PORT"
	mkdir h1 h2
	daemon h1 cpu 'seq -f "web1 %g of a line long enough to be cut by TCP now and then" 1 3000'
	daemon h2 cpu 'seq -f "web2 %g of a line long enough to be cut by TCP now and then" 1 3000'
	daemon h1 log 'seq -f "shared from web1 %g" 1 3000'
	daemon h2 log 'seq -f "shared from web2 %g" 1 3000'
	reader web1.cpu got1
	r1=$READER
	env -i PATH=/usr/bin:/bin "$SP_BIN/master" -N web1 "$KEY" 127.0.0.1 "$PORT" h1 </dev/null &
	m1=$!
	env -i PATH=/usr/bin:/bin "$SP_BIN/master" -N web2 "$KEY" 127.0.0.1 "$PORT" h2 </dev/null &
	m2=$!
	track $m1 $m2
	wait_for 10 test -p web1.log -a -p web2.log -a -p web2.cpu
	exec 6<web1.log 7<web2.log 8<web2.cpu
	head -n 3000 <&6 >log1
	head -n 3000 <&7 >log2
	head -n 3000 <&8 >got2
	wait $m1 $m2
	wait_for 10 line_count_is got1 3000
	seq -f "web1 %g of a line long enough to be cut by TCP now and then" 1 3000 | cmp - got1
	seq -f "web2 %g of a line long enough to be cut by TCP now and then" 1 3000 | cmp - got2
	seq -f "shared from web1 %g" 1 3000 | cmp - log1
	touch stop
}

# ---- 2. the pair of cron jobs, either order ----

@test "the pair of cron jobs: the master started first waits for the pool (-w); the pool spools (-a) and ends when its senders are done" {
	daemon d nightly 'seq 1 5000'
	mkdir spool
	env -i PATH=/usr/bin:/bin "$SP_BIN/master" -w 20 "$KEY" 127.0.0.1 "$PORT" d </dev/null >m.out 2>m.err &
	m=$!
	track "$m"
	wait_for 5 exists m.out # started, and waiting
	alive "$m"
	env -i PATH=/usr/bin:/bin "$SP_BIN/pool" -a -d spool "$KEY" "$PORT" </dev/null 2>pool.err &
	p=$!
	track "$p"
	rc=0
	wait "$m" || rc=$?
	[ "$rc" -eq 0 ]
	[ ! -s m.err ]
	# Nobody read: spooled, so the pool's run ended anyway, with every line kept.
	rc=0
	wait "$p" || rc=$?
	[ "$rc" -eq 0 ]
	[ -f spool/nightly ]
	seq 1 5000 | cmp - spool/nightly
	# The other order: pool first, master later.
	rm spool/nightly
	port=$(free_port)
	start_pool_as_cron -a -d spool "$KEY" "$port"
	run --separate-stderr cron "$SP_BIN/master" "$KEY" 127.0.0.1 "$port" d
	[ "$status" -eq 0 ]
	wait_gone "$POOL" 10
	seq 1 5000 | cmp - spool/nightly
}

@test "without -w, a master that finds no pool says so at once; with it, gives up after the bound" {
	daemon d x1 'echo x'
	run --separate-stderr cron "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: connect to 127.0.0.1 $PORT: Connection refused" ]
	run --separate-stderr cron "$SP_BIN/master" -w 0.5 "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT did not listen within 0.5 s (-w): Connection refused" ]
}

# ---- 3. overlap ----

@test "a master refuses to run a DDIR another master runs (exit 75, its PID named); -o waits for it" {
	daemon d slow 'echo one; sleep 2; echo two'
	start_pool_as_cron -l "$KEY" "$PORT"
	# Not through cron(): a function in the background would make $! a subshell's PID.
	env -i PATH=/usr/bin:/bin "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d </dev/null 2>first.err &
	first=$!
	track "$first"
	wait_for 5 test -p slow
	IFS= read -r l <slow
	run --separate-stderr cron "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 75 ]
	[ "$stderr" = "master: d: another master (PID $first) runs these daemons; not starting" ]
	run --separate-stderr cron "$SP_BIN/master" -o "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	gone "$first" # it ran only after the first one had ended
	[ -z "$stderr" ]
}

# ---- 4. quiet success, loud failure ----

@test "-b exits non-zero when the pool refused every grant; -T ends a run that does not" {
	daemon d r1 'echo r1'
	gp=$(free_port)
	# The range has one port, and a listener of ours already holds it.
	socat "TCP-LISTEN:$gp,reuseaddr" - </dev/null &
	track $!
	wait_listening "$gp"
	start_pool_as_cron -l -r "$gp-$gp" "$KEY" "$PORT"
	run --separate-stderr cron "$SP_BIN/master" -b -L m.log "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	# Not backgrounded yet: the caller's stderr hears why.
	[ "${stderr_lines[0]}" = "master: r1: the pool refused a port: no free port in $gp-$gp" ]
	[ "${stderr_lines[1]}" = "master: no daemon could be started" ]
	# -T: a daemon that loops forever is ended, and the run fails with one line.
	port=$(free_port)
	daemon d r1 'while :; do echo loop; sleep 0.2; done'
	start_pool_as_cron -l "$KEY" "$port"
	t0=$(date +%s)
	run --separate-stderr cron "$SP_BIN/master" -T 1 "$KEY" 127.0.0.1 "$port" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: deadline: 1 s are up; ending 1 daemon" ]
	[ $(($(date +%s) - t0)) -le 5 ]
}

# ---- 5. no diagnostic lost; the pool's log ----

@test "no syslog and no -L: nothing said to the caller of -b (cron mails nothing); the pool logs each session, its grants and bytes" {
	[ ! -S /dev/log ] || skip "a syslog daemon listens here: the case is not due"
	daemon d fail3 'echo partial; exit 3'
	start_pool_as_cron -l "$KEY" "$PORT"
	run --separate-stderr cron "$SP_BIN/master" -b "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	track "$output"
	IFS= read -r l <fail3
	[ "$l" = partial ]
	wait_for 5 grep -q "fail3: sender 127.0.0.1 [0-9]* closed after 8 bytes" pool.err
	grep -q "127.0.0.1 [0-9]*: master session begins" pool.err
	grep -q "fail3: granted to 127.0.0.1 [0-9]* (port [0-9]*, stream [0-9a-f]*, from byte -)" pool.err
}

# ---- 7. start-up checks ----

@test "start-up: pool -d must take FIFOs; a missing interpreter is named; a daemon that prints nothing gets a buffer" {
	mkdir ro
	chmod 555 ro
	# A copy in this directory: nobody may not search the checkout's (a clone in mktemp -d).
	mkdir nb && cp "$SP_BIN/pool" nb/ && chmod 755 nb nb/pool
	run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups ./nb/pool -d ro "$KEY" "$PORT"
	[ "$status" -eq 1 ]
	[ "${stderr_lines[-1]}" = "pool: ro: cannot make buffers there: Permission denied" ]
	not_listening "$PORT"
	printf '#!/usr/bin/nosuch\necho x\n' >d/nosuch
	printf '#!/bin/sh\r\necho x\r\n' >d/crlf
	daemon d quiet 'exit 0'
	chmod +x d/nosuch d/crlf
	start_pool_as_cron "$KEY" "$PORT"
	run --separate-stderr cron "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"master: nosuch: cannot start: bad interpreter /usr/bin/nosuch: No such file or directory"* ]]
	[[ "$stderr" == *"master: crlf: cannot start: bad interpreter /bin/sh^M (the script has CR LF line ends)"* ]]
	# The silent daemon's buffer is there for a reader that comes later, and ends at once.
	[ -p quiet ]
	run timeout 5 cat quiet
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

# ---- 6. resume ----

@test "resume (-r): across a pool SIGTERM and restart, the reader sees every line once and in order" {
	streamer s1 6000
	streamer s2 6000
	reader s1 got1
	reader s2 got2
	start_pool_as_cron -l "$KEY" "$PORT"
	env -i PATH=/usr/bin:/bin "$SP_BIN/master" -r "$KEY" 127.0.0.1 "$PORT" d </dev/null 2>master.err &
	m=$!
	track "$m"
	# Mid-stream: the daemons write for about three seconds.
	wait_for 10 lines_in got1 1000
	kill -TERM "$POOL"
	wait_gone "$POOL"
	start_pool_as_cron -l "$KEY" "$PORT"
	rc=0
	wait "$m" || rc=$?
	[ "$rc" -eq 0 ]
	wait_for 20 line_count_is got1 6000
	wait_for 20 line_count_is got2 6000
	touch stop
	seq -f "s1 line %g of the stream" 1 6000 | cmp - got1
	seq -f "s2 line %g of the stream" 1 6000 | cmp - got2
	grep -q "lost the pool" master.err
}

@test "resume (-r): the control and data connections killed (ss -K) mid-stream, every line once and in order" {
	NS="spc$$x$BATS_TEST_NUMBER"
	ip netns add "$NS"
	ip netns exec "$NS" ip link set lo up
	lo=$(free_port) && hi=$((lo + 20))
	streamer k1 8000
	reader k1 got
	ip netns exec "$NS" "$SP_BIN/pool" -l -r "$lo-$hi" "$KEY" "$PORT" 2>pool.err &
	track $!
	wait_for 5 sh -c "ip netns exec $NS ss -Hltn 'sport = :$PORT' | grep -q ."
	ip netns exec "$NS" "$SP_BIN/master" -r "$KEY" 127.0.0.1 "$PORT" d 2>master.err &
	m=$!
	track "$m"
	wait_for 10 lines_in got 1000
	# The master's ends of its connections: to the control port and to the buffer ports.
	ip netns exec "$NS" ss -K "( dport = :$PORT or ( dport >= :$lo and dport <= :$hi ) )"
	rc=0
	wait "$m" || rc=$?
	[ "$rc" -eq 0 ]
	wait_for 20 line_count_is got 8000
	touch stop
	seq -f "k1 line %g of the stream" 1 8000 | cmp - got
	grep -q "resumed at byte" master.err
}
