#!/bin/sh
# `make check`: install test needs, build, run the bats suite on the normal
# build and again on an ASan/UBSan build, and end with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh test || { echo "check: cannot install test dependencies" >&2; exit 1; }

MAKE=${MAKE:-make}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM
status=0

$MAKE -s all tools || exit 1
# Tests that cannot fail, and the static analyzer: both fail the check.
$MAKE -s lint-tests || exit 1
$MAKE -s analyze || exit 1
# Each fuzz target for a few seconds: a crash fails the check.
$MAKE -s fuzz-check || exit 1
# Both compilers must build warning-free; clang only compiles here.
if command -v clang >/dev/null 2>&1; then
	$MAKE -s CC=clang BUILD=build/clang BIN=build/clang/bin all || exit 1
fi

run_suite() { # name bin-dir files...
	name=$1 bin=$2
	shift 2
	echo "== $name build: bats $*"
	SP_BIN=$bin bats --tap "$@" >"$out/$name.tap" 2>&1
	rc=$?
	cat "$out/$name.tap"
	[ $rc -eq 0 ] || status=1
}

# The sanitized build first: its -O1 warnings differ from -O2's, and a
# build error should not wait for the whole plain suite.
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
# Dynamic links only (LDSTATIC=): ASan cannot link statically.
$MAKE -s BUILD=build/san BIN=build/san/bin OPT="-O1 -g $san" LDFLAGS="$san -Wl,-z,relro,-z,now" LDSTATIC= all || exit 1

run_suite plain "$PWD/bin" tests/

ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=86 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	run_suite sanitized "$PWD/build/san/bin" $(ls tests/*.bats | grep -v valgrind)

passed=$(cat "$out"/*.tap | grep -c '^ok ')
failed=$(cat "$out"/*.tap | grep -c '^not ok ')
[ "$failed" -eq 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
