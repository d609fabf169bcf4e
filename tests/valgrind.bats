#!/usr/bin/env bats
# Daemons in their steady state under valgrind: no leak, no memory error.
# Only the plain build: ASan and valgrind do not mix.
load helpers

setup() {
	common_setup
	[[ "$SP_BIN" != */san/* ]] || skip "sanitizer build: valgrind runs on the plain build only"
}
teardown() { common_teardown; }

# vg_start LOG ARGS...: run a program under memcheck in the background; sets VPID.
vg_start() {
	local log=$1
	shift
	valgrind --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--child-silent-after-fork=yes --log-file="$log" "$@" &
	VPID=$!
	track "$VPID"
}

# vg_prog NAME: the program to run under memcheck. Memcheck sees malloc only
# in a dynamically linked program, so for one linked statically (see STATIC in
# the Makefile) its dynamic twin, linked from the same objects by `make tools`.
vg_prog() {
	local p=$SP_BIN/$1
	is_dynamic "$p" || p=$TOOLS/dyn/$1
	is_dynamic "$p" || { echo "no dynamically linked $1 for valgrind (make tools)" >&2; return 1; }
	echo "$p"
}
is_dynamic() { [ -x "$1" ] && readelf -l "$1" 2>/dev/null | grep -q "program interpreter"; }

# vg_stop LOG: SIGTERM, then the log must show no leak and no error, and a
# heap memcheck did see (a static program's would pass as "no leak" unseen).
vg_stop() {
	local st=0
	kill -TERM "$VPID"
	wait "$VPID" || st=$?
	[ "$st" -eq 143 ] || { cat "$1"; return 1; }
	grep -q "ERROR SUMMARY: 0 errors" "$1" || { cat "$1"; return 1; }
	grep -qE "total heap usage: [1-9]" "$1" || { cat "$1"; return 1; }
	grep -qE "All heap blocks were freed|definitely lost: 0 bytes" "$1"
}

@test "socket -s -l -f under valgrind: 50 connections, no leak, no error" {
	port=$(free_port)
	vg_start vg.log "$SP_BIN/socket" -s -l -f -c -v -p cat "$port"
	wait_listening "$port" 30
	for i in $(seq 1 50); do
		echo "$i" | "$SP_BIN/socket" 127.0.0.1 "$port" >>got
	done
	[ "$(wc -l <got)" -eq 50 ]
	vg_stop vg.log
}

@test "bind-input under valgrind: senders, a reader, SIGTERM with unread bytes; no leak" {
	port=$(free_port)
	prog=$(vg_prog bind-input)
	vg_start vg.log "$prog" -F -L log in1 "$port"
	wait_listening "$port" 30
	for i in 1 2 3; do seq 1 200 | "$SP_BIN/socket" 127.0.0.1 "$port"; done
	head -n 100 in1 >got
	[ "$(wc -l <got)" -eq 100 ]
	echo tail | "$SP_BIN/socket" 127.0.0.1 "$port"
	vg_stop vg.log
	[ -s in1.unread ]
	[ ! -e in1 ]
}

@test "bind-output under valgrind: writers feed a receiver; no leak" {
	port=$(free_port)
	socat -u TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr OPEN:recv,creat &
	track $!
	wait_listening "$port"
	prog=$(vg_prog bind-output)
	vg_start vg.log "$prog" -F -L log out1 127.0.0.1 "$port"
	wait_exists out1 30
	for i in 1 2 3; do seq 1 100 >out1; done
	wait_for 10 lines_in recv 300
	vg_stop vg.log
	[ ! -e out1 ]
}

@test "pool and master under valgrind: the k12 example; no leak in either" {
	port=$(free_port)
	mkdir d
	printf '#!/bin/sh\nseq 1 50\n' >d/dem1
	cp d/dem1 d/dem2
	chmod +x d/dem1 d/dem2
	vg_start vgp.log "$SP_BIN/pool" -L plog k12 "$port"
	ppid=$VPID
	wait_listening "$port" 30
	valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--child-silent-after-fork=yes --log-file=vgm.log "$SP_BIN/master" k12 127.0.0.1 "$port" d
	wait_exists dem1 10
	wait_exists dem2 10
	cat dem1 >got1
	cat dem2 >got2
	[ "$(wc -l <got1)" -eq 50 ]
	[ "$(wc -l <got2)" -eq 50 ]
	grep -q "ERROR SUMMARY: 0 errors" vgm.log
	# Without -l the pool ends by itself once its bindings have drained.
	st=0
	wait "$ppid" || st=$?
	[ "$st" -eq 0 ] || { cat vgp.log plog; false; }
	grep -q "ERROR SUMMARY: 0 errors" vgp.log
}

@test "pool -l -x under valgrind: 20 service calls, one ended by its run cap, one refused; no leak, no error" {
	port=$(free_port)
	mkdir s
	printf '#!/bin/sh\ntr a-z A-Z\n' >s/up
	chmod +x s/up
	vg_start vgp.log "$(vg_prog pool)" -l -x "$PWD/s" -R 2 -L plog k12 "$port"
	wait_listening "$port" 30
	for i in $(seq 1 20); do
		[ "$(echo "call $i" | "$SP_BIN/master" -c -t 20 k12 127.0.0.1 "$port" up)" = "CALL $i" ]
	done
	run "$SP_BIN/master" -c -t 20 k12 127.0.0.1 "$port" nosuch </dev/null
	[ "$status" -eq 1 ]
	printf '#!/bin/sh\nexec sleep 60\n' >s/slow
	chmod +x s/slow
	run "$SP_BIN/master" -c -t 20 k12 127.0.0.1 "$port" slow </dev/null
	[ "$status" -eq 1 ]
	[[ "$output" == *"remote exited 143 (its run time is up)"* ]]
	vg_stop vgp.log
}
