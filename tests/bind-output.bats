#!/usr/bin/env bats
# bind-output: whatever is written into a FIFO goes out on one TCP connection.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
}
teardown() { common_teardown; }

# receiver FILE [ADDR]: nc listening on $PORT, writing what arrives to FILE; sets $RECV.
receiver() {
	nc -d -l "${2:-127.0.0.1}" "$PORT" >"$1" 3>&- &
	RECV=$!
	track "$RECV"
	wait_listening "$PORT"
}

conns_to() { # PORT N: N established connections to PORT
	[ "$(ss -Htn state established "sport = :$1" | wc -l)" -eq "$2" ]
}
# Our side of the connection to PORT has unsent bytes and the receiver unread ones: stuck.
stuck() {
	ss -Htn state established "dport = :$1" | awk '$2 > 0 { f = 1 } END { exit !f }' &&
		ss -Htn state established "sport = :$1" | awk '$1 > 0 { f = 1 } END { exit !f }'
}

@test "\$(bind-output ...) returns connected with the PID; FIFO 0600; two writers, one connection" {
	receiver got
	run --separate-stderr bind_output out1 127.0.0.1 "$PORT"
	[ "$status" -eq 0 ]
	stderr_quiet bind-output
	[[ "$output" =~ ^[0-9]+$ ]]
	pid=$output
	track "$pid"
	[ -p out1 ]
	[ "$(stat -c %a out1)" = 600 ]
	conns_to "$PORT" 1
	echo a >out1
	echo b >out1
	wait_for 5 size_is got 4
	[ "$(cat got)" = $'a\nb' ]
	conns_to "$PORT" 1
	for fd in 0 1 2; do
		[ "$(readlink "/proc/$pid/fd/$fd")" = /dev/null ]
	done
	kill "$pid"
	wait_gone "$pid"
	[ ! -e out1 ]
	[ ! -e out1.unread ]
}

@test "20 MB of binary data pass unchanged" {
	head -c 20000000 /dev/urandom >big
	receiver got
	start_detached bind-output out1 127.0.0.1 "$PORT"
	cat big >out1
	wait_for 20 size_is got 20000000
	cmp big got
}

@test "a host name and an IPv6 literal work" {
	receiver got
	start_detached bind-output out1 localhost "$PORT"
	echo byname >out1
	wait_for 5 size_is got 7
	kill "$PID"
	wait_gone "$PID"
	if ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
		skip "no IPv6 loopback here"
	fi
	receiver got6 ::1
	start_detached bind-output out2 ::1 "$PORT"
	echo v6 >out2
	wait_for 5 size_is got6 3
	[ "$(cat got6)" = v6 ]
}

@test "connection refused at start: exit 1 with the reason, nothing created" {
	run --separate-stderr bind_output out1 127.0.0.1 "$PORT"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "bind-output: connect to 127.0.0.1 $PORT: Connection refused" ]
	[ ! -e out1 ]
}

@test "unknown host at start: exit 1 with the reason, nothing created" {
	run --separate-stderr bind_output out1 no-such-host.invalid "$PORT"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "bind-output: connect to no-such-host.invalid $PORT: "* ]]
	[ ! -e out1 ]
}

@test "peer closes (no -r): its FIN is not the end; the send that fails is, and what it never acknowledged is saved (-F)" {
	receiver got
	"$SP_BIN/bind-output" -F -L log out1 127.0.0.1 "$PORT" >pid &
	fg=$!
	track "$fg"
	wait_for 5 file_has pid
	[ "$(cat pid)" = "$fg" ]
	echo hello >out1
	wait_for 5 size_is got 6
	kill "$RECV"
	wait_for 5 logged log "127.0.0.1 $PORT closed the connection on its side; sending goes on"
	alive "$fg"
	[ -p out1 ]
	echo after >out1
	wait_for 10 gone "$fg"
	rc=0
	wait "$fg" || rc=$?
	[ "$rc" -eq 1 ]
	[ ! -e out1 ]
	[ "$(cat out1.unread)" = after ]
	[ "$(cat got)" = hello ]
	grep -q "connection to 127.0.0.1 $PORT lost: .*; 12 bytes sent on it, 6 acknowledged, 6 not" log
}

@test "connection broken (no -r): unsent bytes saved to ID.unread, in order" {
	seq 1 3000000 >sent
	# A receiver that stops reading: the pipe to sleep fills, then TCP holds us.
	socat -u "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" EXEC:"sleep 60" 3>&- &
	sock=$!
	track "$sock"
	wait_listening "$PORT"
	start_detached bind-output -L log out1 127.0.0.1 "$PORT"
	cat sent >out1 2>/dev/null &
	writer=$!
	track "$writer"
	wait_for 10 any_children "$sock"
	for c in $(children_of "$sock"); do track "$c"; done
	wait_for 10 stuck "$PORT"
	kill -KILL $(children_of "$sock") "$sock"
	wait_gone "$PID" 10
	[ ! -e out1 ]
	[ -s out1.unread ]
	grep -q "unsent bytes saved to out1.unread" log
	# out1.unread is one contiguous piece of what was written
	u=out1.unread
	k=$(sed -n 2p "$u")
	partial=$(head -n 1 "$u" | wc -c)
	off=$(($(head -n $((k - 1)) sent | wc -c) - partial))
	tail -c +$((off + 1)) sent | head -c "$(stat -c %s "$u")" | cmp - "$u"
}

# held_beyond_kernel FILE: the status FILE says bind-output holds bytes it
# could not hand to the kernel yet (held > sent - confirmed)
held_beyond_kernel() {
	awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
	     END { exit !(v["held"] > v["sent"] - v["confirmed"]) }' "$1" 2>/dev/null
}
# kernel_unsent PORT: what our socket to PORT holds not sent yet (ss's notsent:, absent when 0)
kernel_unsent() { ss -Htni state established "dport = :$1" | max_notsent; }

@test "a receiver that stops reading: the kernel keeps about 64 KiB unsent, not megabytes; the rest waits in bind-output's queue" {
	seq -w 1 1000000 >sent # 8 MB of numbered records: more than the kernel, the pipe and the queue hold
	socat -u "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" EXEC:"sleep 60" 3>&- &
	sock=$!
	track "$sock"
	wait_listening "$PORT"
	start_detached bind-output out1 127.0.0.1 "$PORT"
	cat sent >out1 2>/dev/null &
	track "$!"
	wait_for 10 any_children "$sock"
	for c in $(children_of "$sock"); do track "$c"; done
	wait_for 10 stuck "$PORT"
	# Once the kernel refuses more, what it holds unsent is at its bound (TCP_NOTSENT_LOWAT).
	wait_for 20 held_beyond_kernel .out1.status
	n=$(kernel_unsent "$PORT")
	echo "unsent in the kernel: $n bytes; status: $(cat .out1.status)"
	[ "$n" -ge 65536 ]
	[ "$n" -le 262144 ]
}

@test "-r: reconnects to a restarted receiver and delivers what was queued, in order" {
	receiver got1
	start_detached bind-output -r -L log out1 127.0.0.1 "$PORT"
	echo one >out1
	wait_for 5 size_is got1 4
	kill "$RECV"
	wait_for 5 logged log "closed the connection"
	echo two >out1
	echo three >out1
	[ -p out1 ]
	receiver got2
	wait_for 10 logged log "reconnected"
	echo four >out1
	wait_for 10 size_is got2 15
	[ "$(cat got2)" = $'two\nthree\nfour' ]
	[ "$(cat got1)" = one ]
}

@test "-r -m: while disconnected the queue holds BYTES, then writers block" {
	receiver got1
	start_detached bind-output -r -m 4K -L log out1 127.0.0.1 "$PORT"
	kill "$RECV"
	wait_for 5 logged log "closed the connection"
	head -c 3000000 /dev/zero | tr "\\0" q >sent
	cat sent >out1 &
	writer=$!
	track "$writer"
	# 4 KiB queued plus one pipe (up to 1 MiB): a 3 MB writer cannot finish
	run timeout 0.5 tail --pid="$writer" -f /dev/null
	[ "$status" -eq 124 ]
	alive "$writer"
	[ "$(awk '/^VmRSS/ { print $2 }' "/proc/$PID/status")" -lt 45000 ]
	receiver got2
	wait_for 10 gone "$writer"
	wait_for 10 size_is got2 3000000
	cmp sent got2
}

@test "SIGTERM sends what was written, closes cleanly, exit 143 (-F)" {
	receiver got
	"$SP_BIN/bind-output" -F out1 127.0.0.1 "$PORT" >pid &
	fg=$!
	track "$fg"
	wait_for 5 file_has pid
	seq 1 100000 >sent
	cat sent >out1
	kill -TERM "$fg"
	rc=0
	wait "$fg" || rc=$?
	[ "$rc" -eq 143 ]
	[ ! -e out1 ]
	[ ! -e out1.unread ]
	wait_gone "$RECV" # the receiver saw our end of stream
	cmp sent got
}

@test "SIGINT and SIGHUP tear down too, with 128+signal" {
	for sig in INT HUP; do
		receiver got
		"$SP_BIN/bind-output" -F out1 127.0.0.1 "$PORT" >pid &
		fg=$!
		track "$fg"
		wait_for 5 file_has pid
		echo "$sig" >out1
		kill "-$sig" "$fg"
		rc=0
		wait "$fg" || rc=$?
		[ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
		[ ! -e out1 ]
		wait_gone "$RECV"
		[ "$(cat got)" = "$sig" ]
		rm -f pid got
	done
}

@test "SIGTERM while disconnected (-r): the queue is saved exactly to ID.unread" {
	receiver got
	start_detached bind-output -r -L log out1 127.0.0.1 "$PORT"
	kill "$RECV"
	wait_for 5 logged log "closed the connection"
	seq 1 5000 >sent
	cat sent >out1
	kill -TERM "$PID"
	wait_gone "$PID"
	[ ! -e out1 ]
	cmp sent out1.unread
	grep -q "$(stat -c %s sent) unsent bytes saved to out1.unread" log
}

@test "an ID in use is refused before connecting; SIGKILL leaves a FIFO that is reclaimed" {
	receiver got
	start_detached bind-output out1 127.0.0.1 "$PORT"
	first=$PID
	run --separate-stderr bind_output out1 127.0.0.1 "$PORT"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "bind-output: out1: in use by PID $first" ]
	conns_to "$PORT" 1
	kill -KILL "$first"
	wait_gone "$first"
	[ -p out1 ]
	receiver got2
	start_detached bind-output out1 127.0.0.1 "$PORT"
	echo again >out1
	wait_for 5 size_is got2 6
}

@test "bad IDs, ports and operands are usage errors (exit 2) and create nothing" {
	for id in '' '..' '.x' 'a b' 'x/' "$(printf 'b%.0s' $(seq 1 65))"; do
		run --separate-stderr bind_output -- "$id" 127.0.0.1 "$PORT"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-output: bad id: "* ]]
		[[ "$stderr" == *"usage: bind-output"* ]]
	done
	for p in 1023 49152 x ''; do
		run --separate-stderr bind_output -- out1 127.0.0.1 "$p"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-output: port: '$p' is not a number from 1024 to 49151"* ]]
	done
	run --separate-stderr bind_output out1 "" "$PORT"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-output: empty host"* ]]
	run --separate-stderr bind_output out1 127.0.0.1
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-output: missing operand"* ]]
	run --separate-stderr bind_output out1 127.0.0.1 "$PORT" extra
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-output: too many operands"* ]]
	for m in 0 1000 x 3G; do
		run --separate-stderr bind_output -m "$m" out1 127.0.0.1 "$PORT"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-output: -m: '$m' is not a size from 1024 to 1G"* ]]
	done
	run --separate-stderr bind_output -L '' out1 127.0.0.1 "$PORT"
	[ "$status" -eq 2 ]
	[ -z "$(ls -A)" ]
}

@test "a path that is not a FIFO is refused and untouched; '/' IDs and BIND_DIR" {
	receiver got
	echo keep >out1
	run --separate-stderr bind_output out1 127.0.0.1 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-output: out1: exists and is not a FIFO; not touching it" ]
	[ "$(cat out1)" = keep ]
	conns_to "$PORT" 0
	mkdir sub bd
	start_detached bind-output sub/o 127.0.0.1 "$PORT"
	[ -p sub/o ]
	kill "$PID"
	wait_gone "$PID"
	receiver got2
	BIND_DIR=bd start_detached bind-output o2 127.0.0.1 "$PORT"
	[ -p bd/o2 ]
	[ ! -e o2 ]
}

@test "-L FILE gets the diagnostics; an unwritable -L fails and leaves nothing" {
	receiver got
	run --separate-stderr bind_output -L /nonexistent/dir/log out1 127.0.0.1 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-output: /nonexistent/dir/log: No such file or directory" ]
	[ ! -e out1 ]
	receiver got2
	start_detached bind-output -L log out1 127.0.0.1 "$PORT"
	wait_for 5 grep -qE "$(log_head bind-output)out1: connected to 127.0.0.1 $PORT" log
}

@test "an option missing its argument, or unknown, is a usage error" {
	run --separate-stderr "$SP_BIN/bind-output" -m
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "bind-output: -m needs an argument" ]
	[ "${stderr_lines[1]}" = "usage: $(first_form bind-output) (try 'bind-output --help')" ]
	run --separate-stderr "$SP_BIN/bind-output" -Q x y z
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "bind-output: unknown option -Q" ]
	[ -z "$(ls -A)" ]
}
