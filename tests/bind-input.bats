#!/usr/bin/env bats
# bind-input: a TCP port poured into a FIFO the shell reads.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
}
teardown() { common_teardown; }

# The bytes the daemon's socket from PORT's sender holds unread: flow control at work.
recvq_full() { # PORT
	ss -Htn state established "sport = :$1" | awk '$1 > 0 { found = 1 } END { exit !found }'
}
conns_on() { # PORT N: N connections to PORT, accepted or in the backlog
	[ "$(ss -Htn "sport = :$1" | wc -l)" -eq "$2" ]
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

@test "\$(bind-input ...) returns at once with the PID; FIFO 0600; SIGTERM removes it" {
	run --separate-stderr bind_input in1 "$PORT"
	[ "$status" -eq 0 ]
	stderr_quiet bind-input
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" =~ ^[0-9]+$ ]]
	pid=$output
	track "$pid"
	alive "$pid"
	is_fifo in1
	[ "$(stat -c %a in1)" = 600 ]
	listening "$PORT"
	kill -TERM "$pid"
	wait_gone "$pid"
	[ ! -e in1 ]
	[ ! -e in1.unread ] # nothing was sent: nothing saved
	not_listening "$PORT"
}

@test "the seed's example: read every second, ignore empty reads, stop at END" {
	start_detached bind-input in1 "$PORT"
	send_text "$PORT" $'one\n\ntwo\nEND\nafter\n'
	got=()
	for _ in 1 2 3 4 5 6 7 8; do
		msg=
		read -r -t 1 msg <in1 || true
		[ -z "$msg" ] && continue
		[ "$msg" = END ] && break
		got+=("$msg")
	done
	[ "${got[*]}" = "one two" ]
	kill "$PID"
	wait_gone "$PID"
	[ "$(cat in1.unread)" = after ]
	[ ! -e in1 ]
}

@test "read -r takes exactly one line and leaves the rest; readers come and go" {
	start_detached bind-input in1 "$PORT"
	send_text "$PORT" $'l1\nl2\nl3\n'
	read -r a <in1
	read -r b <in1
	[ "$a" = l1 ]
	[ "$b" = l2 ]
	send_text "$PORT" $'l4\n'
	run --separate-stderr timeout 1 cat in1
	# timeout's 124: cat never saw EOF while the binding lives.
	[ "$status" -eq 124 ]
	[ "$output" = $'l3\nl4' ]
}

@test "three senders x 3000 distinct lines at once give 9000 whole lines" {
	start_detached bind-input -L log in1 "$PORT"
	cat in1 >out &
	track $!
	for s in a b c; do
		(seq -f "$s-%05g-the-quick-brown-fox-jumps-over-the-lazy-dog" 1 3000 \
			>"/dev/tcp/127.0.0.1/$PORT") &
		track $!
	done
	wait_for 20 lines_in out 9000
	[ "$(wc -l <out)" -eq 9000 ]
	[ "$(sort -u out | wc -l)" -eq 9000 ]
	[ "$(grep -cvE '^[abc]-[0-9]{5}-the-quick-brown-fox-jumps-over-the-lazy-dog$' out)" -eq 0 ]
	# each sender's lines in its own order
	for s in a b c; do
		grep "^$s-" out >"$s.got"
		seq -f "$s-%05g-the-quick-brown-fox-jumps-over-the-lazy-dog" 1 3000 | cmp - "$s.got"
	done
	wait_for 5 logged log "closed after"
}

@test "senders joining a spliced bulk stream mid-line still give whole lines" {
	pad=the-quick-brown-fox-jumps-over-the-lazy-dog-the-quick-brown-fox-jumps-over
	seq -f "A-%07g-$pad" 1 400000 >a.sent
	start_detached bind-input -L log in1 "$PORT"
	rss0=$(rss_kb "$PID")
	(cat a.sent >"/dev/tcp/127.0.0.1/$PORT") &
	track $!
	wait_for 10 recvq_full "$PORT" # bulk waiting: the lone sender is spliced
	# 40 MB sent, nobody reads: the daemon holds about -m (1 MiB), not the stream
	[ $(($(rss_kb "$PID") - rss0)) -lt 8192 ]
	cat in1 >out &
	track $!
	for s in B C; do
		(seq -f "$s-%07g-$pad" 1 3000 >"/dev/tcp/127.0.0.1/$PORT") &
		track $!
	done
	wait_for 30 lines_in out 406000
	[ "$(wc -l <out)" -eq 406000 ]
	[ "$(grep -cvE "^[ABC]-[0-9]{7}-$pad\$" out)" -eq 0 ]
	grep '^A-' out | cmp - a.sent
	[ "$(grep -c '^B-' out)" -eq 3000 ]
	[ "$(grep -c '^C-' out)" -eq 3000 ]
}

@test "a slow reader holds a 60 MB binary sender back and every byte arrives (-R)" {
	head -c 60000000 /dev/urandom >big
	start_detached bind-input -R -m 64K in1 "$PORT"
	(cat big >"/dev/tcp/127.0.0.1/$PORT") &
	sender=$!
	track "$sender"
	# Nobody reads: the daemon stops reading, TCP holds the sender.
	wait_for 10 recvq_full "$PORT"
	alive "$sender"
	[ "$(rss_kb "$PID")" -lt 45000 ] # far below the 60 MB sent, even under ASan
	# A first reader takes exactly 640 KiB and goes.
	dd if=in1 of=part1 bs=65536 count=10 iflag=fullblock status=none
	[ "$(stat -c %s part1)" -eq 655360 ]
	wait_for 10 recvq_full "$PORT"
	alive "$sender"
	cat in1 >part2 &
	track $!
	wait_for 30 gone "$sender"
	wait_for 30 sizes_sum_is 60000000 part1 part2
	cat part1 part2 | cmp - big
}

@test "a sender's final unterminated bytes arrive when it closes, ended by a newline; long lines whole" {
	start_detached bind-input in1 "$PORT"
	send_text "$PORT" abc
	dd if=in1 of=first bs=4 count=1 status=none
	[ "$(od -An -c first | tr -s ' ')" = " a b c \n" ]
	head -c 200000 /dev/zero | tr '\0' x >long
	echo >>long
	send_text "$PORT" "$(cat long)"
	dd if=in1 of=got bs=200000 count=1 iflag=fullblock status=none
	cmp got <(head -c 200000 long)
}

@test "SIGTERM with unread data leaves ID.unread with exactly the missing bytes" {
	seq -f 'line %07g of the unread test' 1 20000 >sent
	start_detached bind-input -L log in1 "$PORT"
	# A second, silent sender: with two, nobody is spliced, so the daemon
	# reads all 640 KB (under -m) and every byte is surely accepted.
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	(cat sent >"/dev/tcp/127.0.0.1/$PORT") &
	sender=$!
	track "$sender"
	wait_for 10 logged log "closed after $(stat -c %s sent) bytes"
	dd if=in1 of=read bs=4096 count=5 iflag=fullblock status=none
	kill -TERM "$PID"
	wait_gone "$PID"
	[ ! -e in1 ]
	[ "$(stat -c %a in1.unread)" = 600 ]
	cat read in1.unread | cmp - sent
	n=$(($(stat -c %s sent) - 20480))
	grep -q "$n unread bytes saved to in1.unread" log
	exec 7>&-
}

@test "SIGTERM while a bulk sender is spliced and held back: what was taken is saved, in order" {
	seq -f 'line %07g of the spliced unread test' 1 600000 >sent
	start_detached bind-input -L log in1 "$PORT"
	(cat sent >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null &
	track $!
	wait_for 10 recvq_full "$PORT" # pipe full, the socket holding more
	dd if=in1 of=read bs=4096 count=5 iflag=fullblock status=none
	wait_for 10 recvq_full "$PORT"
	kill -TERM "$PID"
	wait_gone "$PID"
	[ ! -e in1 ]
	# the pipe, then the socket's bytes: no hole, no reordering
	total=$(($(stat -c %s read) + $(stat -c %s in1.unread)))
	[ "$total" -gt 20480 ]
	head -c "$total" sent | cmp - <(cat read in1.unread)
	grep -q "$((total - 20480)) unread bytes saved to in1.unread" log
}

@test "SIGINT, SIGHUP and SIGTERM tear down with 128+signal; unread saved (-F)" {
	for sig in INT HUP TERM; do
		"$SP_BIN/bind-input" -F -L log in1 "$PORT" >pid &
		fg=$!
		track "$fg"
		wait_for 5 file_has pid
		[ "$(cat pid)" = "$fg" ]
		send_text "$PORT" "$sig-data"
		wait_for 5 logged log "closed after"
		kill "-$sig" "$fg"
		rc=0
		wait "$fg" || rc=$?
		[ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
		[ "$(cat in1.unread)" = "$sig-data" ]
		[ ! -e in1 ]
		not_listening "$PORT"
		rm -f in1.unread log pid
	done
}

@test "SIGKILL leaves a stale FIFO that the next binding with that ID reclaims" {
	start_detached bind-input in1 "$PORT"
	kill -KILL "$PID"
	wait_gone "$PID"
	is_fifo in1
	port2=$(free_port)
	start_detached bind-input in1 "$port2"
	is_fifo in1
	[ "$(stat -c %a in1)" = 600 ]
	send_text "$port2" $'fresh\n'
	read -r l <in1
	[ "$l" = fresh ]
}

@test "an ID in use by a live binding is refused, nothing touched" {
	start_detached bind-input in1 "$PORT"
	first=$PID
	port2=$(free_port)
	run --separate-stderr bind_input in1 "$port2"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "bind-input: in1: in use by PID $first" ]
	not_listening "$port2"
	alive "$first"
	send_text "$PORT" $'still mine\n'
	read -r l <in1
	[ "$l" = "still mine" ]
}

@test "bad IDs are usage errors (exit 2) and create nothing" {
	long=$(printf 'a%.0s' $(seq 1 65))
	for id in '' '..' '.' '.hidden' 'a b' $'a\tb' $'new\nline' "$long" 'x*y' 'dir/' 'sub/..'; do
		run --separate-stderr bind_input -- "$id" "$PORT"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == "bind-input: bad id: "* ]]
		[[ "$stderr" == *"usage: bind-input"* ]]
	done
	run --separate-stderr bind_input -- -x "$PORT"
	[ "$status" -eq 2 ]
	[ -z "$(ls -A)" ]
	not_listening "$PORT"
	# the longest name is fine
	start_detached bind-input "${long:1}" "$PORT"
	is_fifo "${long:1}"
}

@test "bad ports are usage errors (exit 2) and create nothing" {
	for p in 1023 49152 0 65536 abc '' -5 12x; do
		run --separate-stderr bind_input -- in1 "$p"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == "bind-input: port: '$p' is not a number from 1024 to 49151"* ]]
	done
	[ ! -e in1 ]
}

@test "missing and extra operands, bad -c and -m are usage errors" {
	run --separate-stderr bind_input in1
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-input: missing port"* ]]
	run --separate-stderr bind_input
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-input: missing id and port"* ]]
	run --separate-stderr bind_input in1 "$PORT" extra
	[ "$status" -eq 2 ]
	[[ "$stderr" == "bind-input: too many operands"* ]]
	for c in 0 -1 x 5000; do
		run --separate-stderr bind_input -c "$c" in1 "$PORT"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-input: -c: "* ]]
	done
	for m in 0 100 1023 x 2G 1.5M; do
		run --separate-stderr bind_input -m "$m" in1 "$PORT"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-input: -m: '$m' is not a size from 1024 to 1G"* ]]
	done
	run --separate-stderr bind_input -L '' in1 "$PORT"
	[ "$status" -eq 2 ]
	[ ! -e in1 ]
}

@test "a path that exists and is not a FIFO is refused and never touched" {
	echo precious >in1
	run --separate-stderr bind_input in1 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: in1: exists and is not a FIFO; not touching it" ]
	[ "$(cat in1)" = precious ]
	not_listening "$PORT"
	mkdir d1
	run --separate-stderr bind_input d1 "$PORT"
	[ "$status" -eq 1 ]
	[ -d d1 ]
}

@test "an ID with '/' is the path; its directory must exist; BIND_DIR holds names" {
	mkdir sub bd
	start_detached bind-input sub/in1 "$PORT"
	is_fifo sub/in1
	kill "$PID"
	wait_gone "$PID"
	[ ! -e sub/in1 ]
	run --separate-stderr bind_input nodir/in1 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: nodir/in1: No such file or directory" ]
	[ ! -e nodir ]
	not_listening "$PORT"
	BIND_DIR=bd start_detached bind-input in2 "$PORT"
	is_fifo bd/in2
	[ ! -e in2 ]
}

@test "a port already taken is a runtime error that leaves nothing" {
	start_detached bind-input in1 "$PORT"
	run --separate-stderr bind_input in2 "$PORT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "bind-input: listen on port $PORT: Address already in use" ]]
	[ ! -e in2 ]
}

@test "-A ADDR listens there only: 127.0.0.1 served, 127.0.0.2 refused; a bad ADDR leaves nothing" {
	start_detached bind-input -A 127.0.0.1 -L log in1 "$PORT"
	[ "$(ss -Hltn "sport = :$PORT" | awk '{ print $4 }')" = "127.0.0.1:$PORT" ]
	send_text "$PORT" $'one\n'
	read -r -t 5 l <in1
	[ "$l" = one ]
	# The loopback covers 127/8: 127.0.0.2 is this machine's, yet nobody listens there.
	run ! bash -c "exec 3<>/dev/tcp/127.0.0.2/$PORT"
	grep -qE "$(log_head bind-input)in1: listening on 127.0.0.1 port $PORT, buffer in1$" log
	kill "$PID"
	wait_gone "$PID"
	rm log
	# A name that is no address: a usage error before anything is made.
	usage_fails bind-input "-A: no-such-host.invalid: no such host or address" \
		-A no-such-host.invalid "gone-$$" "$PORT"
	usage_fails bind-input "-A: empty address" -A '' "gone-$$" "$PORT"
	# An address this machine does not have (TEST-NET-1): a runtime failure.
	run --separate-stderr bind_input -A 192.0.2.1 "gone-$$" "$PORT"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "bind-input: listen on 192.0.2.1 $PORT: Cannot assign requested address" ]
	[ -z "$(pgrep -f "gone-$$" || true)" ]
	not_listening "$PORT"
	[ -z "$(ls -A)" ]
}

@test "-1: one sender; the reader gets EOF, then the FIFO and daemon are gone" {
	"$SP_BIN/bind-input" -1 -F in1 "$PORT" >pid &
	fg=$!
	track "$fg"
	wait_for 5 file_has pid
	cat in1 >out &
	reader=$!
	track "$reader"
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'only\nsender\n' >&7
	wait_for 5 not_listening "$PORT" # one connection: no longer listening
	exec 7>&-
	wait "$reader"
	[ "$(cat out)" = $'only\nsender' ]
	rc=0
	wait "$fg" || rc=$?
	[ "$rc" -eq 0 ]
	[ ! -e in1 ]
	[ ! -e in1.unread ]
}

@test "-1: data sent before any reader waits for one, then EOF" {
	start_detached bind-input -1 -L log in1 "$PORT"
	send_text "$PORT" $'early\n'
	wait_for 5 logged log "closed after 6 bytes"
	alive "$PID"
	is_fifo in1
	run --separate-stderr cat in1
	[ "$status" -eq 0 ]
	[ "$output" = early ]
	wait_gone "$PID"
	[ ! -e in1 ]
}

@test "-a spools to a regular file that is kept, appending" {
	echo old >spool
	start_detached bind-input -a spool "$PORT"
	[ -f spool ]
	send_text "$PORT" $'new1\n'
	send_text "$PORT" 'new2'
	wait_for 5 grep -q new2 spool
	kill "$PID"
	wait_gone "$PID"
	[ "$(cat spool)" = $'old\nnew1\nnew2' ]
	[ ! -e spool.unread ]
	mkfifo afifo
	run --separate-stderr bind_input -a afifo "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: afifo: exists and is not a regular file; not touching it" ]
}

@test "-a -1: the spool ends when its one sender closed" {
	start_detached bind-input -a -1 spool "$PORT"
	send_text "$PORT" $'once\n'
	wait_gone "$PID"
	[ "$(cat spool)" = once ]
}

@test "-c 1: a second sender waits in the backlog until the first closes" {
	start_detached bind-input -c 1 in1 "$PORT"
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	echo a1 >&7
	read -r l <in1
	[ "$l" = a1 ]
	(echo b1 >"/dev/tcp/127.0.0.1/$PORT") &
	track $!
	wait_for 5 conns_on "$PORT" 2
	run read -r -t 0.5 l <in1 # the second sender is not served yet
	[ "$status" -ne 0 ]
	echo a2 >&7
	exec 7>&-
	read -r l <in1
	[ "$l" = a2 ]
	read -r l <in1
	[ "$l" = b1 ]
}

@test "-L FILE gets the diagnostics; an unwritable -L fails and leaves nothing" {
	start_detached bind-input -L log in1 "$PORT"
	wait_for 5 grep -qE "$(log_head bind-input)in1: listening on port $PORT" log
	port2=$(free_port)
	run --separate-stderr bind_input -L /nonexistent/dir/log in2 "$port2"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: /nonexistent/dir/log: No such file or directory" ]
	[ ! -e in2 ]
	not_listening "$port2"
}

@test "-F stays in the foreground and prints its PID" {
	"$SP_BIN/bind-input" -F in1 "$PORT" >pid 2>err &
	fg=$!
	track "$fg"
	wait_for 5 file_has pid
	[ "$(cat pid)" = "$fg" ]
	listening "$PORT"
	is_fifo in1
	kill -TERM "$fg"
	rc=0
	wait "$fg" || rc=$?
	[ "$rc" -eq 143 ]
	[ ! -e in1 ]
}

@test "the daemon keeps no descriptor of the caller: \$(...) does not hang" {
	# If the daemon held the command substitution's pipe, this would block.
	run --separate-stderr timeout 5 sh -c "\"$SP_BIN/bind-input\" in1 $PORT"
	[ "$status" -eq 0 ]
	track "$output"
	for fd in 0 1 2; do
		[ "$(readlink "/proc/$output/fd/$fd")" = /dev/null ]
	done
}

@test "an option missing its argument, or unknown, is a usage error" {
	run --separate-stderr "$SP_BIN/bind-input" -c
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "bind-input: -c needs an argument" ]
	[ "${stderr_lines[1]}" = "usage: $(first_form bind-input) (try 'bind-input --help')" ]
	run --separate-stderr "$SP_BIN/bind-input" -Q x y z
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "bind-input: unknown option -Q" ]
	[ -z "$(ls -A)" ]
}

@test "out of descriptors: accept errors are logged, and the daemon does not spin" {
	# 0-2, the self-pipe, the listener, the FIFO and the log take 8: no room to accept
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		ulimit -n 8 && exec "$SP_BIN/bind-input" -F -L log in1 "$PORT" >pid 2>err
	) &
	track $!
	wait_for 5 file_has pid
	pid=$(cat pid)
	track "$pid"
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	wait_for 5 logged log "in1: sender (accept): Too many open files"
	t0=$(cpu_ticks "$pid")
	run timeout 0.5 tail --pid="$pid" -f /dev/null # half a second of wall time
	[ "$status" -eq 124 ]
	[ $(($(cpu_ticks "$pid") - t0)) -lt 10 ]
	exec 7>&-
	kill "$pid"
	wait_gone "$pid"
	[ ! -e in1 ]
}
