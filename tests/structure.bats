#!/usr/bin/env bats
# The shared pieces every tool is built on (issue 9): the log limiter, the
# accept step that never spins, how files and programs are built.
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

@test "log limiter: 1000 identical lines are written once, then counted" {
	run --separate-stderr "$TOOLS/errflood" same 1000
	[ "$status" -eq 0 ]
	[ "${#stderr_lines[@]}" -eq 3 ]
	[ "${stderr_lines[0]}" = "errflood: accept: Too many open files" ]
	[ "${stderr_lines[1]}" = "errflood: last message repeated 999 times" ]
	[ "${stderr_lines[2]}" = "errflood: the end" ]
}

@test "log limiter: one call site writes at most 10 lines a second, the rest are counted" {
	run --separate-stderr "$TOOLS/errflood" distinct 500
	[ "$status" -eq 0 ]
	written=$(grep -c '^errflood: sender ' <<<"$stderr")
	[ "$written" -le 20 ]
	# Every line is accounted for: written, or counted in a summary.
	counted=$(awk '/ more like this within a second, the last: / { n += $2 } END { print n + 0 }' <<<"$stderr")
	[ $((written + counted)) -eq 500 ]
}

@test "log limiter: one call logging two kinds of event (err_warn_as) limits each kind on its own" {
	run --separate-stderr "$TOOLS/errflood" kinds 200
	[ "$status" -eq 0 ]
	refused=$(grep -c '^errflood: sender .*: refused$' <<<"$stderr")
	closed=$(grep -c '^errflood: sender .*: closed$' <<<"$stderr")
	echo "written: $refused refused, $closed closed"
	# Each kind has its own 10 a second: one shared limit would write 10 in all.
	[ "$refused" -ge 10 ]
	[ "$closed" -ge 10 ]
	counted=$(awk '/ more like this within a second, the last: / { n += $2 } END { print n + 0 }' <<<"$stderr")
	[ $((refused + closed + counted)) -eq 200 ]
}

@test "log limiter: a repeat after its second is written again, with the count before it" {
	run --separate-stderr "$TOOLS/errflood" spaced 6 300
	[ "$status" -eq 0 ]
	[ "$(grep -c 'Too many open files$' <<<"$stderr")" -eq 2 ]
	grep -qx 'errflood: last message repeated 3 times' <<<"$stderr"
	grep -qx 'errflood: last message repeated 1 time' <<<"$stderr"
}

@test "pool out of descriptors: the accept loop pauses instead of spinning, one log line a second" {
	port=$(free_port)
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		ulimit -n 12 && exec "$SP_BIN/pool" -l k12 "$port" 2>pool.err
	) &
	pid=$!
	track "$pid"
	wait_listening "$port"
	# More connections than the pool has descriptors for.
	for fd in $(seq 20 45); do eval "exec $fd<>/dev/tcp/127.0.0.1/$port" || true; done
	wait_for 5 grep -q "accept: Too many open files" pool.err
	t0=$(cpu_ticks "$pid")
	run timeout 1 tail --pid="$pid" -f /dev/null # a second of wall time
	[ "$status" -eq 124 ]
	[ $(($(cpu_ticks "$pid") - t0)) -lt 20 ]
	[ "$(grep -c 'accept: Too many open files' pool.err)" -le 3 ]
	for fd in $(seq 20 45); do eval "exec $fd>&-"; done
	kill "$pid"
	wait_gone "$pid"
	[ -z "$(find . -type p)" ]
}

@test "a spool file is created with mode 0600 whatever the umask allows" {
	port=$(free_port)
	pid=$(umask 000 && "$SP_BIN/bind-input" -a sp "$port")
	track "$pid"
	[ -f sp ]
	[ "$(stat -c %a sp)" = 600 ]
	kill "$pid"
	wait_gone "$pid"
}

@test "the programs are built hardened: PIE, full RELRO, stack protector" {
	for p in socket bind-input bind-output pool master; do
		[ -x "$SP_BIN/$p" ]
		readelf -h "$SP_BIN/$p" | grep -q 'DYN (Position-Independent Executable'
		readelf -d "$SP_BIN/$p" | grep -q 'BIND_NOW' || readelf -d "$SP_BIN/$p" | grep -q 'FLAGS_1.*NOW'
		readelf -lW "$SP_BIN/$p" | grep -q GNU_RELRO
	done
	# The stack protector and fortified calls are there in the dynamic ones.
	nm -D "$SP_BIN/socket" | grep -q __stack_chk_fail
	nm -D "$SP_BIN/socket" | grep -q '__[a-z]*_chk'
}
