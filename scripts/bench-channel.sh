#!/bin/sh
# bench-channel.sh: the encrypted channel's cost. The same stream,
# cat > bind-output FIFO -> bind-input -> reader, in plain text and with
# -k @key on both sides, on loopback; prints throughput and the ratio
# (goal: encrypted >= 0.5x plain, issue 15). Not a test: it never fails on a
# slow result. Called by `make bench`.
#
# Method as bench-bind.sh: interleaved rounds (plain, encrypted, then
# encrypted, plain, ...), each row's median, the slowest and fastest round
# beside it. Every run checks that the reader got exactly the bytes written;
# a run that did not is an error, not a figure.
#
#   BENCH_BYTES   bytes per run (default 256 MiB)
#   BENCH_RUNS    rounds (default 5)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${SP_BIN:-$PWD/bin}
BYTES=${BENCH_BYTES:-268435456}
RUNS=${BENCH_RUNS:-5}
FREEPORT=tests/bin/freeport
LINE='the quick brown fox jumps over the lazy dog, a line of seventy bytes.'

. scripts/bench-lib.sh
need bench-channel ss timeout "$BIN/bind-input" "$BIN/bind-output" "$FREEPORT"

# run_stream [-k FILE]: BYTES through bind-output -> bind-input, until the
# reader has the last byte; sets ns, or returns 1 (also when bytes are missing).
run_stream() {
	port=$($FREEPORT) || return 1
	rm -f "$tmp/count"
	bi=$("$BIN/bind-input" -L /dev/null "$@" "$tmp/in" "$port") || return 1
	pids="$pids $bi"
	# Bounded: a lost byte must end the run, not hang it.
	timeout 300 head -c "$BYTES" "$tmp/in" | wc -c >"$tmp/count" &
	reader=$!
	pids="$pids $reader"
	bo=$("$BIN/bind-output" -L /dev/null "$@" "$tmp/out" 127.0.0.1 "$port") || return 1
	pids="$pids $bo"
	start=$(now_ns)
	cat "$mem/data" >"$tmp/out"
	kill "$bo" # teardown sends what is left, then ends the stream
	wait "$reader"
	end=$(now_ns)
	kill "$bi"
	wait_gone "$bo" 500 || return 1
	wait_gone "$bi" 500 || return 1
	pids=""
	[ "$(cat "$tmp/count")" -eq "$BYTES" ] || {
		echo "bench-channel: $(cat "$tmp/count") of $BYTES bytes arrived" >&2
		return 1
	}
	ns=$((end - start))
}

run_row() { # ROW
	case $1 in
	plain) run_stream ;;
	enc) run_stream -k "@$tmp/key" ;;
	esac || return 1
	eval "t_$1=\"\${t_$1:-} $ns\""
}

row() { # LABEL ROW [REST]
	stats "t_$2"
	l=$(printf '%-44s %8s MiB/s  %-11s %s' "$1" "$(mbps "$BYTES" "$med")" \
		"$(mbps "$BYTES" "$hi")-$(mbps "$BYTES" "$lo")" "${3:-}")
	printf '%s\n' "${l%"${l##*[! ]}"}"
}

(umask 077 && head -c 32 /dev/urandom >"$tmp/key")
yes "$LINE" | head -c "$BYTES" >"$mem/data"
cat "$mem/data" >/dev/null
echo "bind-output -> bind-input, plain and -k (encrypted), $((BYTES / 1048576)) MiB of 70-byte lines over loopback"
echo "median of $RUNS interleaved rounds; range: slowest-fastest round; every run's byte count checked"
r=0
while [ "$r" -lt "$RUNS" ]; do
	if [ $((r % 2)) -eq 0 ]; then order="plain enc"; else order="enc plain"; fi
	for name in $order; do
		run_row "$name" || { echo "bench-channel: row $name failed" >&2; exit 1; }
	done
	r=$((r + 1))
done
stats t_plain; plain=$med
stats t_enc; enc=$med
row "plain" plain
row "-k @key (NNpsk0, ChaChaPoly records)" enc \
	"$(echo "$enc $plain" | awk '{ printf "%.2f", $2 / $1 }')x plain  (goal >= 0.5)"
