#!/bin/sh
# Install what the tests and benchmarks need, from Debian's packages, when missing.
# Usage: deps.sh [test|bench|fuzz]
set -eu
want="bats:bats socat:socat nc:netcat-openbsd ip:iproute2 ss:iproute2 man:man-db valgrind:valgrind cc:gcc make:make readelf:binutils"
[ "${1:-test}" = bench ] && want="$want tcpserver:ucspi-tcp hyperfine:hyperfine"
[ "${1:-test}" = fuzz ] && want="clang:clang"
missing=""
for pair in $want; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# The sanitizer runtime comes with gcc, but say so early if it is not there.
# libFuzzer's runtime is a package of its own (Debian: libclang-rt-14-dev).
if [ "${1:-test}" = fuzz ] && { ! command -v clang >/dev/null 2>&1 ||
	[ -z "$(find "$(clang -print-resource-dir)" -name 'libclang_rt.fuzzer*.a' 2>/dev/null)" ]; }; then
	missing="$missing libclang-rt-14-dev"
fi
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing >/dev/null
