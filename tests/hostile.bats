#!/usr/bin/env bats
# Hostile files and inherited descriptors (issue 11): nothing planted in a
# directory takes our bytes, holds us, or is taken over; the umask and the
# caller's descriptors decide nothing.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
}
teardown() { common_teardown; }

send() { printf %s "$2" | nc -N 127.0.0.1 "$1"; }
# spill_left ID: the fresh file a refused ID.unread made bind-input use
spill_left() { ls "$1".unread-* 2>/dev/null | head -1; }

# ---- ID.unread ----

@test "a FIFO planted at ID.unread: the spill neither blocks nor writes into it; a fresh file gets the bytes" {
	mkfifo in1.unread
	start_detached bind-input -L log in1 "$PORT"
	send "$PORT" $'hi\n'
	wait_for 5 logged log "closed after 3 bytes"
	kill -TERM "$PID"
	wait_gone "$PID" 5
	[ ! -e in1 ]
	[ -p in1.unread ]
	f=$(spill_left in1)
	[ -n "$f" ]
	[ "$(cat "$f")" = hi ]
	[ "$(stat -c %a "$f")" = 600 ]
	grep -q "in1: in1.unread is a FIFO, not touched; 3 unread bytes saved to $f instead" log
}

@test "another user's ID.unread (mode 0666) in a sticky directory is left alone" {
	mkdir -m 1777 shared
	cd shared
	: >in1.unread
	chown 65534:65534 in1.unread
	chmod 666 in1.unread
	start_detached bind-input -L ../log in1 "$PORT"
	send "$PORT" $'secret\n'
	wait_for 5 logged ../log "closed after 7 bytes"
	kill -TERM "$PID"
	wait_gone "$PID" 5
	[ ! -s in1.unread ]
	[ "$(stat -c %u in1.unread)" = 65534 ]
	f=$(spill_left in1)
	[ "$(cat "$f")" = secret ]
	[ "$(stat -c %u:%a "$f")" = "$(id -u):600" ]
	grep -q "in1.unread is not ours, not touched" ../log
}

@test "our own ID.unread open to others is not appended to either; a private one is" {
	printf 'old\n' >in1.unread
	chmod 644 in1.unread
	start_detached bind-input -L log in1 "$PORT"
	send "$PORT" $'new\n'
	wait_for 5 logged log "closed after 4 bytes"
	kill -TERM "$PID"
	wait_gone "$PID" 5
	[ "$(cat in1.unread)" = old ]
	grep -q "in1.unread is open to others, not touched" log
	rm -f in1.unread-*
	chmod 600 in1.unread
	start_detached bind-input -L log2 in1 "$PORT"
	send "$PORT" $'new\n'
	wait_for 5 logged log2 "closed after 4 bytes"
	kill -TERM "$PID"
	wait_gone "$PID" 5
	[ "$(cat in1.unread)" = $'old\nnew' ]
	[ -z "$(spill_left in1)" ]
}

@test "the .unread suffix is reserved: an ID or daemon name ending in it is refused" {
	for id in a.unread dir/x.unread; do
		run --separate-stderr "$SP_BIN/bind-input" "$id" "$PORT"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "bind-input: bad id: "*"nor holding .unread"* ]]
		run --separate-stderr "$SP_BIN/bind-output" "$id" 127.0.0.1 "$PORT"
		[ "$status" -eq 2 ]
	done
	mkdir d
	printf '#!/bin/sh\necho x\n' >d/a.unread
	chmod +x d/a.unread
	run --separate-stderr "$SP_BIN/master" k12 127.0.0.1 "$PORT" d
	[[ "$stderr" == *"d/a.unread: not run: not a valid daemon name"* ]]
	[ -z "$(find . -type p)" ]
}

# ---- -L FILE ----

@test "-L through a symbolic link, or onto a FIFO, is refused at once; nothing is left listening" {
	printf 'precious\n' >precious
	ln -s precious ev.log
	run --separate-stderr "$SP_BIN/bind-input" -L ev.log ev "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: ev.log: a symbolic link; not following it" ]
	[ "$(cat precious)" = precious ]
	mkfifo log
	run --separate-stderr timeout 5 "$SP_BIN/bind-input" -L log ev "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "bind-input: log: not a regular file or a terminal" ]
	not_listening "$PORT"
	[ ! -e ev ]
	# A character device is fine; a new file is made 0600.
	start_detached bind-input -L /dev/null ev "$PORT"
	kill "$PID"
	wait_gone "$PID"
	start_detached bind-input -L new.log ev "$PORT"
	[ "$(stat -c %a new.log)" = 600 ]
	kill "$PID"
	wait_gone "$PID"
}

# ---- FIFOs that are not ours ----

@test "a FIFO the user made is neither taken over nor removed; a stale one of ours is reclaimed" {
	mkfifo mine
	chmod 644 mine
	run --separate-stderr "$SP_BIN/bind-input" mine "$PORT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "bind-input: mine: exists and is not ours"*"not touching it" ]]
	[ -p mine ]
	[ "$(stat -c %a mine)" = 644 ]
	not_listening "$PORT"
	# Another user's FIFO of mode 0600: not ours either.
	mkfifo theirs
	chmod 600 theirs
	chown 65534 theirs
	run --separate-stderr "$SP_BIN/bind-output" theirs 127.0.0.1 "$PORT"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"theirs: exists and is not ours"* ]]
	[ "$(stat -c %u theirs)" = 65534 ]
	# What a SIGKILLed binding of ours leaves is taken over.
	start_detached bind-input st "$PORT"
	kill -KILL "$PID"
	wait_gone "$PID"
	[ -p st ]
	start_detached bind-input st "$PORT"
	send "$PORT" $'again\n'
	IFS= read -r l <st
	[ "$l" = again ]
}

@test "the umask decides nothing: FIFOs and spools are 0600, also for an unprivileged user" {
	pid=$(umask 277 && "$SP_BIN/bind-input" in7 "$PORT")
	track "$pid"
	[ "$(stat -c %a in7)" = 600 ]
	kill "$pid"
	wait_gone "$pid"
	chmod 777 .
	port=$(free_port)
	# A copy in this directory: nobody may not search the checkout's (a clone in mktemp -d).
	mkdir nb && cp "$SP_BIN/bind-input" nb/ && chmod 755 nb nb/bind-input
	run --separate-stderr setpriv --reuid=65534 --regid=65534 --clear-groups \
		sh -c "umask 277 && exec ./nb/bind-input in8 $port"
	[ "$status" -eq 0 ]
	pid=$output
	track "$pid"
	[ "$(stat -c %u:%a in8)" = 65534:600 ]
	send "$port" $'as nobody\n'
	IFS= read -r l <in8
	[ "$l" = "as nobody" ]
	kill "$pid"
	wait_gone "$pid"
	port=$(free_port)
	pid=$(umask 277 && "$SP_BIN/bind-input" -a sp "$port")
	track "$pid"
	[ "$(stat -c %a sp)" = 600 ]
	kill "$pid"
	wait_gone "$pid"
}

# ---- inherited descriptors ----

@test "300 inherited descriptors: the daemons keep none of them" {
	# In a subshell of its own, so that bats's own descriptors stay as they are.
	(
		for fd in $(seq 20 320); do eval "exec $fd</dev/null"; done
		exec "$SP_BIN/bind-input" in1 "$PORT"
	) >pid
	PID=$(cat pid)
	track "$PID"
	port=$(free_port)
	(
		for fd in $(seq 20 320); do eval "exec $fd</dev/null"; done
		exec "$SP_BIN/pool" -b k12 "$port"
	) >ppid
	P=$(cat ppid)
	track "$P"
	# 0-2, the self-pipe, listener(s), the FIFO and syslog's socket: nothing of the 301.
	[ "$(fd_count "$PID")" -le 9 ]
	[ "$(fd_count "$P")" -le 8 ]
	for fd in /proc/"$PID"/fd/* /proc/"$P"/fd/*; do
		[ "${fd##*/}" -lt 3 ] || [ "$(readlink "$fd")" != /dev/null ]
	done
	kill "$PID" "$P"
	wait_gone "$PID"
	wait_gone "$P"
}

# ---- key files ----

# key_run PROG KEY: PROG with KEY (its operand, or -k), on a command line
# that fails once parsed (a missing directory, nobody listening): exit 1.
key_run() {
	case $1 in
	bind-input) run --separate-stderr "$SP_BIN/bind-input" -F -k "$2" nodir/in "$PORT" ;;
	bind-output) run --separate-stderr "$SP_BIN/bind-output" -F -k "$2" nodir/out 127.0.0.1 "$PORT" ;;
	socket) run --separate-stderr "$SP_BIN/socket" -k "$2" 127.0.0.1 "$PORT" </dev/null ;;
	pool) run --separate-stderr "$SP_BIN/pool" -d nodir "$2" "$PORT" ;;
	master) run --separate-stderr "$SP_BIN/master" "$2" 127.0.0.1 "$PORT" nodir ;;
	esac
	[ "$status" -eq 1 ]
}

@test "key hints: a key that names a file, a key file others may read or write: warned once, taken all the same" {
	head -c 32 /dev/urandom >kf
	chmod 644 kf
	for p in bind-input bind-output socket pool master; do
		key_run "$p" kf
		[ "${#stderr_lines[@]}" -eq 2 ]
		[ "${stderr_lines[0]}" = "$p: warning: key 'kf' is the name of a file, but is taken as the key itself; give @kf to read the key from the file" ]
		key_run "$p" @kf
		[ "${#stderr_lines[@]}" -eq 2 ]
		[ "${stderr_lines[0]}" = "$p: warning: key file kf is readable by others (mode 0644); chmod 600 it" ]
		chmod 620 kf
		key_run "$p" @kf
		[ "${stderr_lines[0]}" = "$p: warning: key file kf is writable by others (mode 0620); chmod 600 it" ]
		# As it should be: the failure alone.
		chmod 600 kf
		key_run "$p" @kf
		[ "${#stderr_lines[@]}" -eq 1 ]
		[[ "$stderr" != *warning* ]]
		key_run "$p" "not-a-file-$$"
		[[ "$stderr" != *warning* ]]
		chmod 644 kf
	done
	[ "$(ls -A)" = kf ]
}

@test "key files: exactly one line end (LF or CR LF) is stripped; 4096 bytes fit, 4097 do not" {
	head -c 4096 /dev/zero | tr '\0' k >k4096
	printf '\n' >>k4096
	head -c 4097 /dev/zero | tr '\0' k >k4097
	printf 'k12\r\n' >crlf
	printf 'k12\n\n' >twolf
	chmod 600 k4096 k4097 crlf twolf
	port=$(free_port)
	"$SP_BIN/pool" @k4096 "$port" 2>pool.err &
	p=$!
	track "$p"
	wait_listening "$port"
	kill "$p"
	wait_gone "$p"
	run ! grep -q "longer than" pool.err
	run --separate-stderr "$SP_BIN/pool" @k4097 "$PORT"
	[ "$status" -eq 1 ]
	[ "$stderr" = "pool: key file k4097: longer than 4096 bytes" ]
	# CR LF off: the same key as k12 typed on the command line.
	mkdir d
	printf '#!/bin/sh\necho from-crlf\n' >d/c1
	chmod +x d/c1
	"$SP_BIN/pool" @crlf "$PORT" 2>pool2.err &
	p=$!
	track "$p"
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/master" k12 127.0.0.1 "$PORT" d
	[ "$status" -eq 0 ]
	IFS= read -r l <c1
	[ "$l" = from-crlf ]
	wait_gone "$p"
	# Only one line end: "k12\n" is the key of twolf, which k12 does not prove.
	"$SP_BIN/pool" @twolf "$PORT" 2>pool3.err &
	p=$!
	track "$p"
	wait_listening "$PORT"
	run --separate-stderr "$SP_BIN/master" k12 127.0.0.1 "$PORT" d
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"rejected the key"* ]]
}
