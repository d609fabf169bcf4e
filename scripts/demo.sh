#!/bin/sh
# A short live demo of what exists so far: an echo server and a remote-processing pipeline.
set -eu
cd "$(dirname "$0")/.."
B=$PWD/bin
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

echo "== socket: an echo server in the background (socket -b -v -s -l -f -p cat 0)"
pid=$("$B/socket" -b -v -s -l -f -p cat 0 2>"$tmp/err")
port=$(sed -n 's/.*listening on .* \([0-9]*\)$/\1/p' "$tmp/err")
echo "   daemon PID $pid, port $port"
for w in hello socket pool; do
	printf '   sent %-7s got ' "$w"
	echo "$w" | "$B/socket" 127.0.0.1 "$port"
done
echo "== remote processing: tr a-z A-Z on the server side, reply after half-close"
kill "$pid"
pid=$("$B/socket" -b -v -s -l -f -p 'tr a-z A-Z' 0 2>"$tmp/err")
port=$(sed -n 's/.*listening on .* \([0-9]*\)$/\1/p' "$tmp/err")
printf 'the quick brown fox\n' | "$B/socket" localhost "$port" | sed 's/^/   /'
kill "$pid"
pid=""
echo "== torn down"
