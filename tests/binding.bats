#!/usr/bin/env bats
# The binding engine as pool embeds it (tests/tools/bindguard.c): guards
# (token, peer address) and many bindings in one process.
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

# guard ARGS...: start bindguard, wait for its ports; sets $G and PORTS.
guard() {
	"$TOOLS/bindguard" "$@" >ports 2>events &
	G=$!
	track "$G"
	wait_for 5 file_has ports
	mapfile -t PORTS <ports
}
logged_times() { [ "$(grep -c -- "$1" events)" -ge "$2" ]; } # PATTERN N

@test "guard: foreign address and wrong token turned away, token line never in the buffer" {
	guard -1 -t s3cret -a 127.0.0.2 buf
	p=${PORTS[0]}
	[ -p buf ]
	printf 's3cret\nFROM-WRONG-ADDRESS\n' | nc -N 127.0.0.1 "$p"
	wait_for 5 logged events "^buf reject 127.0.0.1 [0-9]*: address not allowed$"
	printf 'nope\nBAD\n' | nc -N -s 127.0.0.2 127.0.0.1 "$p"
	wait_for 5 logged events "^buf reject 127.0.0.2 [0-9]*: wrong token$"
	listening "$p" # once mode waits for the real sender
	cat buf >out &
	reader=$!
	track "$reader"
	printf 's3cret\nhello\nworld\n' | nc -N -s 127.0.0.2 127.0.0.1 "$p"
	wait "$reader"
	[ "$(cat out)" = $'hello\nworld' ]
	rc=0
	wait "$G" || rc=$?
	[ "$rc" -eq 0 ]
	grep -q "^buf accept 127.0.0.2 " events
	grep -q "^buf done" events
	[ ! -e buf ]
}

@test "guard: a silent sender is dropped in time; a token serves once" {
	guard -t tok -w 300 buf
	p=${PORTS[0]}
	exec 7<>"/dev/tcp/127.0.0.1/$p"
	wait_for 5 logged events "reject 127.0.0.1 [0-9]*: no token in time"
	exec 7>&-
	printf 'tok\nfirst\n' >"/dev/tcp/127.0.0.1/$p"
	read -r l <buf
	[ "$l" = first ]
	# turned away at once: the write may see the reset
	(printf 'tok\nsecond\n' >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || true
	wait_for 5 logged events "reject 127.0.0.1 [0-9]*: token already used"
	(printf 'tok' >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || true
	wait_for 5 logged_times reject 2
	run timeout 0.5 cat buf
	[ "$status" -eq 124 ]
	[ -z "$output" ]
}

@test "many bindings in one process and one loop; SIGTERM saves each one's unread bytes" {
	guard b1 b2 b3
	[ "${#PORTS[@]}" -eq 3 ]
	for i in 0 1 2; do
		seq -f "b$((i + 1))-%g" 1 500 >"sent$((i + 1))"
		cat "sent$((i + 1))" >"/dev/tcp/127.0.0.1/${PORTS[$i]}"
	done
	wait_for 5 logged_times ' close ' 3
	dd if=b2 of=got2 bs="$(stat -c %s sent2)" count=1 iflag=fullblock status=none
	cmp sent2 got2
	kill -TERM "$G"
	rc=0
	wait "$G" || rc=$?
	[ "$rc" -eq 143 ]
	cmp sent1 b1.unread
	cmp sent3 b3.unread
	[ ! -e b2.unread ]
	[ -z "$(find . -type p)" ]
	grep -q "^saved b2 0$" events
}

@test "one process cannot bind one buffer twice (the lock holds within a process)" {
	run --separate-stderr "$TOOLS/bindguard" b1 b1
	[ "$status" -eq 1 ]
	[ "$stderr" = "bindguard: b1: Device or resource busy" ]
	[ ! -e b1 ]
}
