#!/usr/bin/env bats
# The contract every program shares: help, version, usage errors.
load helpers

setup() { common_setup; }
teardown() { common_teardown; }

PROGS="socket bind-input bind-output pool master"

# Every test below goes through all five: one not built fails them, rather
# than leaving them nothing to check.
@test "every program is built: all five are executable files in \$SP_BIN" {
	for p in $PROGS; do
		[ -f "$SP_BIN/$p" ] && [ -x "$SP_BIN/$p" ] || { echo "not built: $SP_BIN/$p"; false; }
	done
}

@test "every program prints usage on -h, -help and --help, exit 0" {
	for p in $PROGS; do
		for h in -h -help --help; do
			run --separate-stderr "$SP_BIN/$p" "$h"
			[ "$status" -eq 0 ]
			[[ "${lines[0]}" == "usage: $p "* ]]
			[ -z "$stderr" ]
		done
	done
}

@test "every program prints NAME VERSION on -V, -version and --version" {
	for p in $PROGS; do
		for v in -V -version --version; do
			run --separate-stderr "$SP_BIN/$p" "$v"
			[ "$status" -eq 0 ]
			[[ "$output" =~ ^$p\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
		done
	done
}

@test "every program rejects an unknown option with exit 2 and a usage hint" {
	for p in $PROGS; do
		run --separate-stderr "$SP_BIN/$p" -Z
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[ "${stderr_lines[0]}" = "$p: unknown option -Z" ]
		[[ "$stderr" == *"usage: $p"* ]]
	done
}

@test "every man page renders without warnings" {
	for m in "$BATS_TEST_DIRNAME"/../man/*.[17]; do
		run --separate-stderr env MANWIDTH=80 man --warnings -l "$m"
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
	done
}
