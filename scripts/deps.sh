#!/bin/sh
# Install what the tests and benchmarks need, from Debian's packages, when missing.
# Usage: deps.sh [test|bench|fuzz]
set -eu
want="bats:bats socat:socat nc:netcat-openbsd ip:iproute2 ss:iproute2 man:man-db mandoc:mandoc valgrind:valgrind cc:gcc make:make readelf:binutils zip:zip unzip:unzip"
[ "${1:-test}" = bench ] && want="$want tcpserver:ucspi-tcp hyperfine:hyperfine"
[ "${1:-test}" = fuzz ] && want=""
missing=""
for pair in $want; do
	cmd=${pair%%:*} pkg=${pair#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# tests/crypto.bats: OpenSSL through Debian's python3-cryptography, by /usr/bin/python3
# (a pyenv python3 may come first on PATH), and node for the noise-c peer in tests/node.
if [ "${1:-test}" = test ]; then
	# tests/nginx.bats: nginx (in /usr/sbin, which a user's PATH may lack) and curl.
	{ command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 || missing="$missing nginx"
	command -v curl >/dev/null 2>&1 || missing="$missing curl"
	# tests/signals.bats: logrotate (in /usr/sbin too) on a live pool's -L file.
	{ command -v logrotate || [ -x /usr/sbin/logrotate ]; } >/dev/null 2>&1 || missing="$missing logrotate"
	/usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || missing="$missing python3 python3-cryptography"
	# tests/status.bats: node_exporter's text format read by the Prometheus client's parser
	/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing="$missing python3-prometheus-client"
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi
# The npm packages of tests/node, from its lock file, when they are not there yet.
node_modules() {
	[ "${1:-test}" = test ] || return 0
	node=$(dirname "$0")/../tests/node
	[ -f "$node/node_modules/@richardhopton/noise-c.wasm/package.json" ] && return 0
	echo "deps: installing tests/node's npm packages" >&2
	npm ci --prefix "$node" --no-audit --no-fund --loglevel=error >/dev/null
}
# The sanitizer runtime comes with gcc, but say so early if it is not there.
# libFuzzer's runtime is a package of its own (Debian: libclang-rt-14-dev).
# make check runs every fuzz target for a few seconds too.
if [ "${1:-test}" = fuzz ] || [ "${1:-test}" = test ]; then
	command -v clang >/dev/null 2>&1 || missing="$missing clang"
	if ! command -v clang >/dev/null 2>&1 ||
		[ -z "$(find "$(clang -print-resource-dir)" -name 'libclang_rt.fuzzer*.a' 2>/dev/null)" ]; then
		missing="$missing libclang-rt-14-dev"
	fi
fi
if [ -z "$missing" ]; then
	node_modules "${1:-test}"
	exit 0
fi
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing >/dev/null
node_modules "${1:-test}"
