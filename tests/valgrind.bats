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

# vg_stop LOG: SIGTERM, then the log must show no leak and no error.
vg_stop() {
	local st=0
	kill -TERM "$VPID"
	wait "$VPID" || st=$?
	[ "$st" -eq 143 ] || { cat "$1"; return 1; }
	grep -q "ERROR SUMMARY: 0 errors" "$1" || { cat "$1"; return 1; }
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
