#!/bin/sh
# Install what the tests and benchmarks need, from Debian's packages, when missing.
# Usage: deps.sh [test|bench]
set -eu
want="bats:bats socat:socat nc:netcat-openbsd ip:iproute2 ss:iproute2 man:man-db valgrind:valgrind cc:gcc make:make"
[ "${1:-test}" = bench ] && want="$want tcpserver:ucspi-tcp hyperfine:hyperfine"
missing=""
for pair in $want; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# The sanitizer runtime comes with gcc, but say so early if it is not there.
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing >/dev/null
