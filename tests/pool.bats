#!/usr/bin/env bats
# pool and master: sessions, key proof, guarded grants, teardown on both sides.
load helpers

bats_require_minimum_version 1.5.0

setup() {
	common_setup
	KEY=k12
	PORT=$(free_port)
	mkdir -p d buf
}
teardown() {
	common_teardown
	if [ -n "${NSP:-}" ]; then netns_cleanup; fi
}

# A daemon script in DIR: daemon DIR NAME BODY...

start_master() { # ARGS...; sets MASTER
	"$SP_BIN/master" "$@" >master.out 2>master.err &
	MASTER=$!
	track "$MASTER"
}

# wait_status PID: wait for a job of this shell (not in a subshell: only the
# shell that started it can wait while it runs); its exit status goes to RC.
wait_status() {
	RC=0
	wait "$1" || RC=$?
}

# Read and drop what a buffer still holds, if it still exists (a binding that
# ended meanwhile removes it, which is fine too).
drain() {
	local b
	for b in "$@"; do
		[ ! -p "$b" ] || cat "$b" >/dev/null 2>&1 || true
	done
}

# Play a master by hand on fd 5: greeting, proof, OK.
# eof_on FD: the descriptor reaches end of file within 5 s: read returns 1
# there (a timeout returns more than 128, a line 0).
eof_on() {
	local rc=0
	IFS= read -r -t 5 -u "$1" _ || rc=$?
	[ "$rc" -eq 1 ]
}
eof_on_5() { eof_on 5; }

no_fifo_left() { [ -z "$(find "${1:-.}" -type p)" ]; }
count_lines() { wc -l <"$1" | tr -d ' '; }

# read_lines FIFO N OUT: the first N lines of a buffer, in the background (a lasting
# buffer of pool -l gives no end of file); sets READER.
read_lines() {
	head -n "$2" <"$1" >"$3" &
	READER=$!
	track "$READER"
}
fifos_are() { [ "$(find . -type p | sort | tr '\n' ' ')" = "$1" ]; } # "./a ./b "

read_buffer() { # FIFO OUT: read a buffer to its EOF in the background; sets READER
	(while IFS= read -r line; do printf '%s\n' "$line"; done <"$1" >"$2") &
	READER=$!
	track "$READER"
}

# ---- SHA-256 and HMAC ----

@test "sha256: FIPS 180-4 and RFC 4231 vectors" {
	run --separate-stderr "$TOOLS/sha256test"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^ok ' <<<"$output")" -eq 12 ]
	! grep -q '^not ok' <<<"$output" || false
}

@test "sha256: the key proof agrees with openssl's HMAC-SHA-256" {
	command -v openssl >/dev/null || skip "openssl not installed"
	nonce=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
	want=$(printf %s "$nonce" | openssl dgst -sha256 -hmac "$KEY" | sed 's/.*= //')
	[ "$("$TOOLS/sha256test" hmac "$KEY" "$nonce")" = "$want" ]
}

# ---- the seed's example ----

@test "the seed's k12 example: two daemons, their lines in the pool's buffers, both sides exit 0" {
	daemon d dem1 'for i in 1 2 3 4 5; do echo "dem1 line $i"; done'
	daemon d dem2 'seq 1 2000'
	cd buf
	start_pool "$KEY" "$PORT"
	cd ..
	start_master "$KEY" 127.0.0.1 "$PORT" ./d
	wait_for 5 test -p buf/dem1 -a -p buf/dem2
	read_buffer buf/dem1 dem1.got
	r1=$READER
	read_buffer buf/dem2 dem2.got
	r2=$READER
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	[ ! -s master.err ]
	[ ! -s master.out ]
	wait "$r1" "$r2"
	printf 'dem1 line %s\n' 1 2 3 4 5 | cmp - dem1.got
	seq 1 2000 | cmp - dem2.got
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
	no_fifo_left buf
	[ ! -e buf/dem1.unread ]
}

@test "the seed's loop: while read -r line; done < dem1 sees the sample daemons live" {
	cd buf
	start_pool "$KEY" "$PORT"
	cd ..
	start_master "$KEY" 127.0.0.1 "$PORT" "$BATS_TEST_DIRNAME/../examples/daemons"
	wait_for 5 test -p buf/dem1 -a -p buf/dem2
	n=0
	while IFS= read -r line; do
		[[ "$line" == "dem1: tick "* ]]
		n=$((n + 1))
		[ "$n" -lt 2 ] || break
	done <buf/dem1
	IFS= read -r line <buf/dem2
	[[ "$line" == "dem2: load "* ]]
	kill -TERM "$MASTER"
	wait_status "$MASTER"
	[ "$RC" -eq 143 ]
	drain buf/dem1 buf/dem2 # the bindings end once drained, then the pool
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
	no_fifo_left buf
}

# ---- the key ----

# in_pipe_write PID: PID sleeps in a write to a full pipe
in_pipe_write() { grep -q pipe_write "/proc/$1/wchan" 2>/dev/null; }
# master_unsent: the most any of master's connections holds not sent yet in the kernel (ss's notsent:)
master_unsent() { ss -Htnpi state established | grep -A1 '"master"' | max_notsent; }

@test "a buffer nobody reads: master's kernel keeps about 64 KiB of the relayed stream unsent, not megabytes; then the daemon blocks" {
	# 40 MB of numbered records: more than master's 32 MiB, the kernel and the pool hold
	daemon d big 'echo $$ >../big.pid; exec seq -w 1 5000000'
	start_pool -d buf "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_file big.pid
	track "$(cat big.pid)"
	# The daemon blocks once master holds all it keeps: the kernel took what it would.
	wait_for 60 in_pipe_write "$(cat big.pid)"
	n=$(master_unsent)
	echo "unsent in master's kernel: $n bytes"
	ss -Htnpi state established | grep -A1 '"master"'
	[ "$n" -ge 32768 ]
	[ "$n" -le 262144 ]
}

@test "a wrong key is refused, logged with the peer, and the pool goes on to serve the real master" {
	daemon d x1 'echo payload'
	start_pool "$KEY" "$PORT"
	run --separate-stderr "$SP_BIN/master" wrong 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "master: the pool at 127.0.0.1 $PORT rejected the key (it closed the handshake)" ]]
	grep -q "^pool: 127.0.0.1 [0-9]*: wrong key (1 in a row from 127.0.0.1); dropped$" pool.err
	alive "$POOL"
	no_fifo_left
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p x1
	[ "$(cat x1)" = payload ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
}

@test "the key never appears in the captured control traffic, nor any line but the greeting" {
	KEY=sekrit-k12-VALUE
	daemon d x1 'echo data-line'
	relay=$(free_port)
	start_pool "$KEY" "$PORT"
	socat -v "TCP-LISTEN:$relay,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$PORT" 2>capture &
	track $!
	wait_listening "$relay"
	start_master "$KEY" 127.0.0.1 "$relay" d
	wait_for 5 test -p x1
	[ "$(cat x1)" = data-line ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	grep -q 'SOCKETPOOL 3 noise' capture
	run ! grep -q 'SOCKETPOOL 2 ' capture
	run ! grep -Eq 'AUTH|PORT|GRANT|BYE' capture # (short words could be ciphertext by chance)
	run ! grep -q 'sekrit' capture
}

@test "-U on both sides: version 2 in plain text, the proofs seen, the key never" {
	KEY=sekrit-k12-VALUE
	daemon d x1 'echo data-line'
	relay=$(free_port)
	start_pool -U "$KEY" "$PORT"
	# A relay in the middle, logging both directions of the control connection.
	socat -v "TCP-LISTEN:$relay,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$PORT" 2>capture &
	track $!
	wait_listening "$relay"
	start_master -U "$KEY" 127.0.0.1 "$relay" d
	wait_for 5 test -p x1
	[ "$(cat x1)" = data-line ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	grep -q 'SOCKETPOOL 2 ' capture
	grep -q 'AUTH [0-9a-f]\{64\} [0-9a-f]\{64\}' capture
	grep -q 'OK [0-9a-f]\{64\}' capture
	grep -q 'GRANT x1 ' capture
	run ! grep -q "$KEY" capture
	run ! grep -q 'sekrit' capture
}

@test "@FILE keys work and never show in ps" {
	printf '%s\n' 'file-key-SHOULD-NOT-SHOW' >key
	chmod 600 key
	daemon d x1 'echo started; exec sleep 30'
	start_pool -l @key "$PORT"
	start_master @key 127.0.0.1 "$PORT" d
	wait_for 5 test -p x1
	IFS= read -r line <x1
	[ "$line" = started ]
	ps -eo args >ps.out
	grep -q "pool -l @key $PORT" ps.out
	grep -q "master @key 127.0.0.1 $PORT d" ps.out
	run ! grep -q SHOULD-NOT-SHOW ps.out
	# The file's trailing newline is not part of the key: the same key given inline matches.
	mkdir d2
	daemon d2 y1 'echo from-y1'
	run --separate-stderr "$SP_BIN/master" file-key-SHOULD-NOT-SHOW 127.0.0.1 "$PORT" d2 &
	wait_for 5 test -p y1
	IFS= read -r line <y1 # a lasting buffer (-l): no end of file to wait for
	[ "$line" = from-y1 ]
}

# ---- grants and their guard ----

@test "a foreign connection to a granted port never reaches the buffer; the real sender's data arrives intact" {
	start_pool -U "$KEY" "$PORT"
	ctl_open "$PORT"
	ctl_auth "$KEY"
	printf 'PORT g1 %s -\n' "$STREAM" >&5
	ctl_read grant
	[[ "$grant" =~ ^GRANT\ g1\ ([0-9]+)\ ([0-9a-f]{32})\ -$ ]]
	gport=${BASH_REMATCH[1]} token=${BASH_REMATCH[2]}
	[ -p g1 ]
	# Same address, no token: closed.
	run socat -t 5 - "TCP:127.0.0.1:$gport" <<<"foreign bytes"
	# Right token, other address (127.0.0.2 is loopback too): closed.
	run socat -t 5 - "TCP:127.0.0.1:$gport,bind=127.0.0.2" <<<"$token
foreign with stolen token"
	wait_for 5 grep -q "g1: refused 127.0.0.2" pool.err
	grep -q "g1: refused 127.0.0.1" pool.err
	alive "$POOL"
	# The real sender: token first, then 3000 lines.
	read_buffer g1 g1.got
	{ echo "$token"; seq 1 3000; } | socat -u - "TCP:127.0.0.1:$gport"
	wait "$READER"
	seq 1 3000 | cmp - g1.got
	run ! grep -q foreign g1.got
	# A second request for a name already bound is refused, the session goes on.
	printf 'PORT g2 %s -\nPORT g2 %s -\n' "$STREAM" "$STREAM" >&5
	ctl_read r1
	ctl_read r2
	[[ "$r1" == "GRANT g2 "* ]]
	[ "$r2" = "FAIL g2 already bound" ]
	# The master leaves before connecting to g2: its grant is cancelled, the FIFO removed.
	[ -p g2 ]
	exec 5>&-
	wait_for 5 test ! -e g2
	grep -q "g2: its master left before connecting; cancelled" pool.err
	alive "$POOL"
}

@test "two masters at once with -l; the pool keeps serving until signalled" {
	mkdir a b
	daemon a a1 'seq 1 500'
	daemon a a2 'seq 501 1000'
	daemon b b1 'seq 1001 1500'
	start_pool -l "$KEY" "$PORT"
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" a 2>a.err &
	ma=$!
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" b 2>b.err &
	mb=$!
	track $ma $mb
	wait_for 5 test -p a1 -a -p a2 -a -p b1
	head -n 500 a1 >a1.got
	head -n 500 a2 >a2.got
	head -n 500 b1 >b1.got
	wait_status $ma
	[ "$RC" -eq 0 ]
	wait_status $mb
	[ "$RC" -eq 0 ]
	seq 1 500 | cmp - a1.got
	seq 501 1000 | cmp - a2.got
	seq 1001 1500 | cmp - b1.got
	# The buffers are the pool's (-l): they last after their masters are gone.
	fifos_are "./a1 ./a2 ./b1 "
	alive "$POOL"
	listening "$PORT"
	kill -TERM "$POOL"
	wait_status "$POOL"
	[ "$RC" -eq 143 ]
	not_listening "$PORT"
	no_fifo_left
}

@test "an exhausted port range: the request fails, the master names the daemon and serves the rest" {
	gp=$(free_port)
	daemon d r1 'echo from-r1'
	daemon d r2 'echo from-r2'
	start_pool -r "$gp-$gp" "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p r1
	[ "$(cat r1)" = from-r1 ]
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	grep -qx "master: r2: the pool refused a port: no free port in $gp-$gp" master.err
	[ "$(wc -l <master.err)" -eq 1 ]
	[ ! -e r2 ]
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
}

# ---- control connections that misbehave ----

@test "idle, oversized, unknown and bad-name control connections are dropped while a real master is served" {
	daemon d x1 'echo x1-data; sleep 1; echo x1-more'
	start_pool -U -l -t 2 "$KEY" "$PORT"
	# Idle: greeted, then dropped after -t.
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 6 greet
	[[ "$greet" == "SOCKETPOOL 2 "* ]]
	# Oversized: more than 1 KiB without a newline.
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	head -c 1500 /dev/zero | tr '\0' A >&7
	# Unknown command.
	exec 8<>"/dev/tcp/127.0.0.1/$PORT"
	echo HELLO >&8
	# Meanwhile a real master is served.
	start_master -U "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p x1
	IFS= read -r line <x1
	[ "$line" = x1-data ]
	# The idle one gets its error line, then EOF.
	IFS= read -r -t 5 -u 6 err
	[ "$err" = "ERR handshake timeout" ]
	eof_on 6
	IFS= read -r -t 5 -u 7 greet
	IFS= read -r -t 5 -u 7 err
	[ "$err" = "ERR line too long" ]
	eof_on 7
	IFS= read -r -t 5 -u 8 greet
	IFS= read -r -t 5 -u 8 err
	[ "$err" = "ERR unknown command" ]
	eof_on 8
	# A daemon name that is not a valid buffer ID, after a good key.
	ctl_open "$PORT"
	ctl_auth "$KEY"
	printf 'PORT ../etc %s -\n' "$STREAM" >&5
	ctl_read err
	[ "$err" = "ERR bad daemon name" ]
	eof_on_5
	[ ! -e ../etc ]
	# A request before the proof is out of turn.
	ctl_open "$PORT"
	ctl_read greet
	printf 'PORT early %s -\n' "$STREAM" >&5
	ctl_read err
	[ "$err" = "ERR command out of turn" ]
	eof_on_5
	[ ! -e early ]
	grep -q 'no proof of the key within 2 s; dropped' pool.err
	grep -q 'line too long; dropped' pool.err
	grep -q 'unknown command; dropped' pool.err
	grep -q 'bad daemon name; dropped' pool.err
	IFS= read -r line <x1
	[ "$line" = x1-more ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	alive "$POOL"
}

# ---- bad arguments ----

@test "pool: every bad argument is a usage error (exit 2) and leaves nothing" {
	bad() { usage_fails pool "$@"; }
	: >empty
	bad "missing operand"
	bad "missing operand" "$KEY"
	bad "too many operands" "$KEY" "$PORT" extra
	bad "empty key" "" "$PORT"
	bad "empty key in empty" @empty "$PORT"
	bad "port: '80' is not a number from 1024 to 49151" "$KEY" 80
	bad "port: '49152' is not a number from 1024 to 49151" "$KEY" 49152
	bad "port: 'http' is not a number from 1024 to 49151" "$KEY" http
	bad "-r: '5000' is not a range LO-HI" -r 5000 "$KEY" "$PORT"
	bad "-r: '5000-x' is not a range LO-HI of ports 1024-65535" -r 5000-x "$KEY" "$PORT"
	bad "-r: '80-90' is not a range LO-HI of ports 1024-65535" -r 80-90 "$KEY" "$PORT"
	bad "-r: '6000-5000': LO is above HI" -r 6000-5000 "$KEY" "$PORT"
	bad "-t: '0' is not a duration from 0.001 to 86400 seconds" -t 0 "$KEY" "$PORT"
	bad "-t: 'soon' is not a duration from 0.001 to 86400 seconds" -t soon "$KEY" "$PORT"
	bad "-A: empty address" -A "" "$KEY" "$PORT"
	bad "-A: no-such-host.invalid: no such host or address" -A no-such-host.invalid "$KEY" "$PORT"
	bad "-d: empty directory" -d "" "$KEY" "$PORT"
	bad "-L: empty file name" -L "" "$KEY" "$PORT"
	bad "-t needs an argument" -t
	bad "unknown option -Z" -Z "$KEY" "$PORT"
	not_listening "$PORT"
	[ -z "$(pgrep -f "pool .*$PORT")" ]
	# Runtime failures: exit 1.
	run --separate-stderr "$SP_BIN/pool" -d nodir "$KEY" "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "pool: nodir: No such file or directory" ]
	touch notdir
	run --separate-stderr "$SP_BIN/pool" -d notdir "$KEY" "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "pool: notdir: not a directory" ]
	run --separate-stderr "$SP_BIN/pool" @nokey "$KEY"
	[ "$status" -eq 2 ]
	run --separate-stderr "$SP_BIN/pool" @nokey "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "pool: key file nokey: No such file or directory" ]
	# A FIFO planted where the key file should be: refused at once, never read.
	mkfifo fifokey
	run --separate-stderr timeout 10 "$SP_BIN/pool" @fifokey "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "pool: key file fifokey: not a regular file" ]
	rm fifokey
	socat "TCP-LISTEN:$PORT,reuseaddr" - </dev/null &
	track $!
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/pool" -A 127.0.0.1 "$KEY" "$PORT"
	[ "$status" -eq 1 ]
	[ "${stderr_lines[-1]}" = "pool: listen on 127.0.0.1 $PORT: Address already in use" ]
	[ -z "$(find . -type p -o -type s -o -name '*.unread')" ]
}

@test "master: every bad argument is a usage error (exit 2); a missing DDIR fails before connecting" {
	bad() { usage_fails master "$@"; }
	: >empty
	bad "missing operand" "$KEY" 127.0.0.1 "$PORT"
	bad "too many operands" "$KEY" 127.0.0.1 "$PORT" d extra
	bad "empty key" "" 127.0.0.1 "$PORT" d
	bad "empty key in empty" @empty 127.0.0.1 "$PORT" d
	bad "empty host" "$KEY" "" "$PORT" d
	bad "port: '1023' is not a number from 1024 to 49151" "$KEY" 127.0.0.1 1023 d
	bad "port: '60000' is not a number from 1024 to 49151" "$KEY" 127.0.0.1 60000 d
	bad "empty daemon directory" "$KEY" 127.0.0.1 "$PORT" ""
	bad "-g: 'x' is not a duration from 0.001 to 3600 seconds" -g x "$KEY" 127.0.0.1 "$PORT" d
	bad "-L: empty file name" -L "" "$KEY" 127.0.0.1 "$PORT" d
	bad "-g needs an argument" -g
	bad "unknown option -Z" -Z "$KEY" 127.0.0.1 "$PORT" d
	# DDIR is checked before connecting: nothing listens on PORT, yet the error is about DDIR.
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" nodir
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: nodir: No such file or directory" ]
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: connect to 127.0.0.1 $PORT: Connection refused" ]
	run --separate-stderr "$SP_BIN/master" @nokey 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: key file nokey: No such file or directory" ]
}

# ---- master's daemons ----

@test "master: daemons are DDIR's executable files with valid names, sorted; dotfiles, directories and non-executables are passed over in silence (quiet cron)" {
	daemon d b2 'echo b2'
	daemon d a1 'echo a1'
	daemon d .hidden 'echo hidden'
	printf 'echo noexec\n' >d/noexec
	printf 'read me\n' >d/README
	mkdir d/subdir
	start_pool -l "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p a1 -a -p b2
	IFS= read -r line <a1
	[ "$line" = a1 ]
	IFS= read -r line <b2
	[ "$line" = b2 ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	# nothing for cron to mail
	[ ! -s master.err ]
	[ ! -s master.out ]
	[ ! -e noexec ]
	[ ! -e .hidden ]
	[ ! -e subdir ]
	[ ! -e README ]
}

@test "master: an executable that cannot run as a daemon (its name; too long with -N) is a failure: one line, exit 1, the others still run" {
	daemon d a1 'echo a1'
	daemon d 'bad name' 'echo bad'
	start_pool -l "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p a1
	IFS= read -r line <a1
	[ "$line" = a1 ]
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	[ "$(cat master.err)" = "master: d/bad name: not run: not a valid daemon name" ]
	# -N: a prefix that makes a 60-character name too long (64 at most)
	rm d/'bad name'
	long=$(printf 'x%.0s' $(seq 1 60))
	daemon d "$long" 'echo long'
	start_master -N host.example.org "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p host.example.org.a1
	IFS= read -r line <host.example.org.a1
	[ "$line" = a1 ]
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	[ "$(cat master.err)" = "master: d/$long: not run: too long a name with the -N prefix" ]
}

@test "master: each daemon runs in DDIR with stdin /dev/null, stdout a pipe to the master (-U: its connection), its own process group and the POOL_* variables" {
	daemon d env1 'echo "cwd=$PWD"; echo "host=$POOL_HOST port=$POOL_PORT name=$DAEMON_NAME"
if read -r x; then echo "stdin=data"; else echo "stdin=eof"; fi
echo "pgid=$(ps -o pgid= -p $$ | tr -d " ") pid=$$"
echo "sockets=$(for f in /proc/$$/fd/*; do readlink "$f"; done | grep -c "^socket:")"
echo "stdout=$(readlink /proc/$$/fd/1 | cut -d: -f1)"
echo "to-stderr" >&2'
	for u in -U ""; do
		env_run "$u"
	done
}

# env_run [-U]: one run of the test above; plain text, or encrypted (the master relays)
env_run() {
	rm -f env.got
	start_pool ${1:+"$1"} "$KEY" "$PORT"
	echo "should not be read" | "$SP_BIN/master" ${1:+"$1"} "$KEY" localhost "$PORT" d >master.out 2>master.err &
	MASTER=$!
	track $MASTER
	wait_for 5 test -p env1
	cat env1 >env.got
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	grep -qx "cwd=$PWD/d" env.got
	grep -qx "host=localhost port=$PORT name=env1" env.got
	grep -qx "stdin=eof" env.got
	if [ -n "$1" ]; then
		grep -qx "sockets=1" env.got # its stdout only: no control connection leaked
		grep -qx "stdout=socket" env.got
	else
		grep -qx "sockets=0" env.got # no connection of the master's at all
		grep -qx "stdout=pipe" env.got
	fi
	pg=$(sed -n 's/^pgid=\([0-9]*\) pid=.*/\1/p' env.got)
	pid=$(sed -n 's/^pgid=[0-9]* pid=\([0-9]*\)$/\1/p' env.got)
	[ -n "$pg" ]
	[ "$pg" = "$pid" ]
	[ "$(cat master.err)" = to-stderr ]
	[ ! -s master.out ]
	wait_status "$POOL"
}

@test "master: exit 1 with one line per failed daemon; an empty DDIR is an error that still ends the session" {
	daemon d ok1 'echo fine'
	daemon d bad3 'echo failing; exit 3'
	daemon d sig9 'kill -KILL $$'
	printf '#!/nonexistent/interpreter\n' >d/badexec
	chmod +x d/badexec
	start_pool "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p ok1
	drain ok1 bad3 sig9 badexec
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	sort master.err >got
	printf '%s\n' "master: bad3: exited with status 3" \
		"master: badexec: cannot start: bad interpreter /nonexistent/interpreter: No such file or directory" \
		"master: sig9: killed by signal 9" | cmp - got
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
	# Empty: the pool still sees END (without -l it then exits 0).
	mkdir empty
	start_pool "$KEY" "$PORT"
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" empty
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: empty: no daemons" ]
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
}

# ---- teardown ----

daemons_running() { # the daemons' PIDs, written by themselves to pids/
	cat pids/* 2>/dev/null
}
all_gone() {
	local p
	for p in $(daemons_running); do alive "$p" && return 1; done
	return 0
}
mk_forever() { # NAME...: daemons that record their PID and print a line a second
	mkdir -p pids
	local n
	for n in "$@"; do
		daemon d "$n" "echo \$\$ > ../pids/$n; while :; do echo $n; sleep 1; done"
	done
}

@test "SIGTERM to the master mid-stream ends its daemons (TERM, then KILL after -g) and exits 143" {
	mk_forever t1
	daemon d t2 "echo \$\$ > ../pids/t2; trap '' TERM; while :; do echo t2; sleep 1; done"
	start_pool -l "$KEY" "$PORT"
	start_master -g 0.5 "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -s pids/t1 -a -s pids/t2
	IFS= read -r l <t1
	IFS= read -r l <t2
	kill -TERM "$MASTER"
	wait_status "$MASTER"
	[ "$RC" -eq 143 ]
	all_gone
	for p in $(daemons_running); do wait_for 5 no_group "$p"; done
	grep -q "signal 15: ending 2 daemons$" master.err
	run ! grep -q "killed by signal" master.err
	# The buffers are the pool's (-l): they last, and so does the pool.
	fifos_are "./t1 ./t2 "
	alive "$POOL"
}

@test "SIGTERM to the pool mid-stream: the pool saves unread bytes and exits 143; the master notices and ends its daemons" {
	mk_forever s1
	daemon d s2 'seq 1 1000; echo $$ > ../pids/s2; exec sleep 60'
	start_pool "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -s pids/s1 -a -s pids/s2
	IFS= read -r l <s1
	[ "$l" = s1 ]
	# END was sent: without -l the pool takes no new master.
	wait_for 5 not_listening "$PORT"
	# Nobody reads s2: its 1000 lines wait in the pool.
	kill -TERM "$POOL"
	wait_status "$POOL"
	[ "$RC" -eq 143 ]
	seq 1 1000 | cmp - s2.unread
	no_fifo_left
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	grep -qx "master: the pool ended the session: pool shutting down; ending the daemons" master.err
	wait_for 5 all_gone
	not_listening "$PORT"
}

@test "pool -l restarted: what the previous pool left unread is served at once from its name's buffer, before any master comes; a planted link is left alone" {
	daemon d s2 'seq 1 1000'
	start_pool -l "$KEY" "$PORT"
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d 2>master.err
	# master is done: the pool confirmed all 1000 lines. Nobody read them.
	kill -TERM "$POOL"
	wait_status "$POOL"
	[ "$RC" -eq 143 ]
	seq 1 1000 | cmp - s2.unread
	ln -s /etc/passwd evil.unread
	start_pool -l -L pool.log "$KEY" "$PORT"
	wait_for 5 test -p s2
	head -n 1000 <s2 >got
	seq 1 1000 | cmp - got
	[ ! -e s2.unread ]
	grep -q "s2: 3893 bytes a previous pool left unread go first" pool.log
	[ ! -e evil ]
	grep -q "evil: evil.unread is not a private file of ours; left alone" pool.log
	[ -L evil.unread ]
	fifos_are "./s2 "
}

@test "SIGKILL to the master leaves no daemon behind" {
	mk_forever k1 k2
	start_pool -l "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -s pids/k1 -a -s pids/k2
	kill -KILL "$MASTER"
	wait_for 5 all_gone
	for p in $(daemons_running); do wait_for 5 no_group "$p"; done
	# Their buffers are the pool's (-l): they last, and so does the pool.
	fifos_are "./k1 ./k2 "
	alive "$POOL"
}

@test "a master whose pool dies with SIGKILL notices, ends its daemons and exits 1" {
	mk_forever p1
	start_pool -l "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -s pids/p1
	kill -KILL "$POOL"
	wait_status "$MASTER"
	[ "$RC" -eq 1 ]
	# A FIN or, with bytes the pool never read, a reset: the reason may follow.
	grep -Eqx "master: the pool closed the connection(: [^;]+)?; ending the daemons" master.err ||
		{ cat master.err; false; }
	wait_for 5 all_gone
}

# ---- backgrounding, logs, addresses ----

@test "-b on both sides prints the PID once ready; -L logs there; -A and -d place listener and buffers" {
	daemon d bg1 'echo from-bg1'
	mkdir bufdir
	run --separate-stderr "$SP_BIN/pool" -b -A 127.0.0.1 -d bufdir -L pool.log "$KEY" "$PORT"
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9]+$ ]]
	pool=$output
	track "$pool"
	ss -Hltn "sport = :$PORT" | grep -q '127.0.0.1:'
	run --separate-stderr "$SP_BIN/master" -b -L master.log wrong 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"rejected the key"* ]]
	run --separate-stderr "$SP_BIN/master" -b -L master.log "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^[0-9]+$ ]]
	track "$output"
	wait_for 5 test -p bufdir/bg1
	[ "$(cat bufdir/bg1)" = from-bg1 ]
	wait_gone "$pool"
	grep -q 'wrong key (1 in a row from [0-9.]*); dropped' pool.log
	no_fifo_left
}

@test "a pool says in one line once it listens: on stderr in the foreground, in -L's file, and with -b not to the caller" {
	(umask 077 && head -c 32 /dev/urandom >key) # no warning about a weak key: the one line alone
	"$SP_BIN/pool" @key "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_for 5 logged pool.err listening
	listening "$PORT"
	[ "$(cat pool.err)" = "pool: listening on port $PORT" ]
	kill "$POOL"
	wait_gone "$POOL"
	"$SP_BIN/pool" -A 127.0.0.1 -L pool.log "$KEY" "$PORT" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_for 5 logged pool.log listening
	grep -qE "$(log_head pool)listening on 127.0.0.1 port $PORT$" pool.log
	[ "$(grep -v 'warning: the key is' pool.err)" = "" ]
	kill "$POOL"
	wait_gone "$POOL"
	rm pool.log
	run --separate-stderr "$SP_BIN/pool" -b -L pool.log "$KEY" "$PORT"
	[ "$status" -eq 0 ]
	track "$output"
	[[ "$output" =~ ^[0-9]+$ ]]
	[[ "$stderr" != *listening* ]]
	wait_for 5 logged pool.log "listening on port $PORT$"
}

@test "master -L: the daemons' stderr is the file from their start, not the caller's; a bad -L fails first" {
	daemon d e1 'echo to-stderr-at-start >&2; echo out'
	start_pool "$KEY" "$PORT"
	# The caller's stderr is a pipe: with -b, nothing may keep it open after the PID.
	run --separate-stderr "$SP_BIN/master" -b -L master.log "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	track "$output"
	[[ "$stderr" != *to-stderr-at-start* ]]
	wait_for 5 test -p e1
	[ "$(cat e1)" = out ]
	wait_for 5 grep -q to-stderr-at-start master.log
	mkfifo fifo.log
	run --separate-stderr timeout 10 "$SP_BIN/master" -L fifo.log "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: fifo.log: not a regular file or a terminal" ]
}

@test "IPv6: a master on ::1 is granted and guarded on ::1" {
	[ -n "$(ip -6 addr show dev lo 2>/dev/null | grep -F '::1')" ] || skip "no IPv6 loopback here"
	daemon d six 'echo over-v6'
	start_pool "$KEY" "$PORT"
	start_master "$KEY" ::1 "$PORT" d
	wait_for 5 test -p six
	[ "$(cat six)" = over-v6 ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	[ ! -s master.err ]
	wait_status "$POOL"
	[ "$RC" -eq 0 ]
}

@test "a version word the master does not speak is reported, older or newer" {
	daemon d x1 'echo x'
	for v in 1 4; do
		for u in "" -U; do
			port=$(free_port)
			socat "TCP-LISTEN:$port,reuseaddr" SYSTEM:"echo SOCKETPOOL $v 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff; sleep 5" &
			track $!
			wait_listening "$port"
			want=3
			[ -z "$u" ] || want=2
			run --separate-stderr "$SP_BIN/master" ${u:+"$u"} "$KEY" 127.0.0.1 "$port" d
			[ "$status" -eq 1 ]
			[ "$stderr" = "master: the pool speaks protocol version $v, this master version $want" ]
		done
	done
	# An old master's one-word AUTH is answered in words it understands.
	start_pool -U -l "$KEY" "$PORT"
	ctl_open "$PORT"
	ctl_read greet
	printf 'AUTH %s\n' "$NM" >&5
	ctl_read err
	[ "$err" = "ERR protocol version 2 needed: the master is older" ]
}

@test "plain text only where both sides say -U: each side alone fails clearly, nothing is granted" {
	daemon d x1 'echo x'
	# An encrypting master and a plain pool.
	start_pool -U -l "$KEY" "$PORT"
	run --separate-stderr "$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $PORT speaks protocol version 2, in plain text (pool -U): this master encrypts; give -U to both sides to allow plain text" ]
	run ! grep -q granted pool.err
	[ ! -e x1 ]
	# Both with -U: served, as version 2.
	start_master -U "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p x1
	IFS= read -r line <x1 # a lasting buffer (-l): no end of file to wait for
	[ "$line" = x ]
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
	[ ! -s master.err ]
	kill "$POOL"
	wait_status "$POOL"
	# A plain master and an encrypting pool: the pool sees no handshake, counts no wrong key.
	port=$(free_port)
	start_pool -l "$KEY" "$port"
	run --separate-stderr "$SP_BIN/master" -U "$KEY" 127.0.0.1 "$port" d
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: the pool at 127.0.0.1 $port speaks protocol version 3, encrypted: this master was given -U (plain text); give -U to both sides or to neither" ]
	[ ! -e x1 ]
	run ! grep -Eq 'granted|wrong key' pool.err
}

@test "version 3: a silent, a garbage and a wrong-key peer get no plain line after the greeting; the penalty counts the failed handshakes" {
	daemon d x1 'echo served'
	start_pool -l -t 2 "$KEY" "$PORT"
	exec 6<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 6 greet
	[ "$greet" = "SOCKETPOOL 3 noise" ]
	exec 7<>"/dev/tcp/127.0.0.1/$PORT"
	IFS= read -r -t 5 -u 7 greet
	printf 'AUTH %s %s\n' "$NM" "$NM" >&7
	for k in 1 2; do
		run --separate-stderr "$SP_BIN/master" "wrong$k" 127.0.0.1 "$PORT" d
		[ "$status" -eq 1 ]
		[[ "$stderr" == *"rejected the key"* ]]
	done
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p x1
	IFS= read -r line <x1 # a lasting buffer (-l): no end of file to wait for
	[ "$line" = served ]
	# Nothing more on either: an end of file, no ERR line.
	run timeout 5 cat <&7
	[ -z "$output" ]
	run timeout 5 cat <&6
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	grep -q 'not a version 3 handshake (1 in a row from 127.0.0.1); dropped' pool.err
	grep -q 'wrong key (2 in a row from 127.0.0.1); dropped' pool.err
	grep -q 'wrong key (3 in a row from 127.0.0.1); dropped' pool.err
	grep -q 'no proof of the key within 2 s; dropped' pool.err
	wait_status "$MASTER"
	[ "$RC" -eq 0 ]
}

# ---- two hosts ----

netns_cleanup() {
	ip netns del "$NSP" 2>/dev/null || true
	ip netns del "$NSM" 2>/dev/null || true
}

@test "two hosts: pool and master in network namespaces on different addresses" {
	NSP=spP$$ NSM=spM$$
	if ! ip netns add "$NSP" 2>ns.err; then
		skip "network namespaces unavailable here: $(cat ns.err)"
	fi
	ip netns add "$NSM"
	ip link add "vP$$" netns "$NSP" type veth peer name "vM$$" netns "$NSM"
	ip -n "$NSP" addr add 10.77.0.1/24 dev "vP$$"
	ip -n "$NSM" addr add 10.77.0.2/24 dev "vM$$"
	ip -n "$NSP" link set "vP$$" up
	ip -n "$NSM" link set "vM$$" up
	ip -n "$NSP" link set lo up
	ip -n "$NSM" link set lo up
	daemon d far1 'echo "from $(hostname) as $DAEMON_NAME"; seq 1 100'
	ip netns exec "$NSP" "$SP_BIN/pool" -A 10.77.0.1 "$KEY" "$PORT" 2>pool.err &
	pool=$!
	track $pool
	wait_for 5 sh -c "ip netns exec $NSP ss -Hltn 'sport = :$PORT' | grep -q 10.77.0.1"
	ip netns exec "$NSM" "$SP_BIN/master" "$KEY" 10.77.0.1 "$PORT" d 2>master.err &
	master=$!
	track $master
	wait_for 5 test -p far1
	cat far1 >far1.got
	wait_status $master
	[ "$RC" -eq 0 ]
	wait_status $pool
	[ "$RC" -eq 0 ]
	[ "$(sed -n 2,101p far1.got)" = "$(seq 1 100)" ]
	[ ! -s master.err ]
	netns_cleanup
	! ip netns list | grep -q "$NSP" || false
}

@test "SIGTERM to a master (no -r) while a daemon's last output is still in its pipe: every byte arrives, the stream ends whole" {
	# The daemon writes its output and at once signals the master that relays
	# it (its parent): what sits in the pipe and the master's queue then must
	# still go out, with the stream's END, before the master exits.
	daemon d w1 'seq 1 50000; kill -TERM $PPID; exec sleep 300'
	start_pool "$KEY" "$PORT"
	start_master "$KEY" 127.0.0.1 "$PORT" d
	wait_for 5 test -p w1
	read_buffer w1 got
	wait_gone "$MASTER" 15
	wait_gone "$READER" 15
	seq 1 50000 | cmp - got
	wait_gone "$POOL" 10
	[ ! -e w1.unread.streams ] && [ ! -e w1.unread ]
}
