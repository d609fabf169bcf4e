#!/bin/sh
# bench-bind.sh: bind-input and bind-output side by side with nc, on
# loopback, printing throughput and ratios (higher is better for us).
# Not a test: it never fails on a slow result. Called by `make bench`.
#
#   BENCH_BYTES   bytes per run (default 1 GiB)
#   BENCH_SENDERS concurrent senders for the many-senders row (default 16)
#   BENCH_RUNS    runs of each row; the best counts (default 3): the machine
#                 is shared, and the best run is the least disturbed one
set -u
cd "$(dirname "$0")/.."
BIN=${SP_BIN:-$PWD/bin}
BYTES=${BENCH_BYTES:-1073741824}
SENDERS=${BENCH_SENDERS:-16}
RUNS=${BENCH_RUNS:-3}
FREEPORT=tests/bin/freeport
LINE='the quick brown fox jumps over the lazy dog, a line of seventy bytes.'

for t in nc "$BIN/bind-input" "$BIN/bind-output" "$FREEPORT"; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench-bind: $t missing (make all tools)" >&2; exit 1; }
done
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

now_ns() { date +%s%N; }
# The data, made once: whole lines, read from the page cache by every run.
make_data() { # FILE BYTES
	yes "$LINE" | head -c "$2" >"$1"
}
wait_port() { # PORT: until something listens there (bounded)
	i=0
	while [ -z "$(ss -Hltn "sport = :$1")" ]; do
		i=$((i + 1))
		[ "$i" -lt 250 ] || return 1
		sleep 0.02
	done
}
best() { # CMD...: the smallest of RUNS timings
	b=""
	r=0
	while [ "$r" -lt "$RUNS" ]; do
		t=$("$@") || return 1
		{ [ -z "$b" ] || [ "$t" -lt "$b" ]; } && b=$t
		r=$((r + 1))
	done
	echo "$b"
}
mbps() { echo "$1 $2" | awk '{ printf "%.0f", $1 / 1048576 / ($2 / 1e9) }'; }
ratio() { echo "$1 $2" | awk '{ printf "%.2f", $2 / $1 }'; } # our_ns peer_ns: peer time / ours

# ---- bind-input: senders -> buffer -> cat >/dev/null ----

# run_input NSENDERS ARGS...: nanoseconds for BYTES through bind-input ARGS,
# until the reader has taken the last byte
run_input() {
	n=$1
	shift
	port=$($FREEPORT)
	rm -f "$tmp/buf"
	pid=$("$BIN/bind-input" "$@" "$tmp/buf" "$port") || return 1
	pids="$pids $pid"
	each=$((BYTES / n))
	head -c $((each * n)) "$tmp/buf" >/dev/null &
	reader=$!
	start=$(now_ns)
	i=0
	while [ "$i" -lt "$n" ]; do
		nc -N 127.0.0.1 "$port" <"$tmp/data.$n" &
		i=$((i + 1))
	done
	wait "$reader"
	end=$(now_ns)
	kill "$pid"
	wait
	echo $((end - start))
}

run_nc_input() {
	port=$($FREEPORT)
	rm -f "$tmp/fifo"
	mkfifo "$tmp/fifo"
	nc -l 127.0.0.1 "$port" >"$tmp/fifo" </dev/null &
	ncpid=$!
	pids="$pids $ncpid"
	head -c "$BYTES" "$tmp/fifo" >/dev/null &
	reader=$!
	wait_port "$port"
	start=$(now_ns)
	nc -N 127.0.0.1 "$port" <"$tmp/data.1"
	wait "$reader"
	end=$(now_ns)
	echo $((end - start))
}

# ---- bind-output: cat -> FIFO -> receiver ----

run_output() {
	port=$($FREEPORT)
	nc -l 127.0.0.1 "$port" >/dev/null </dev/null &
	recv=$!
	pids="$pids $recv"
	wait_port "$port"
	rm -f "$tmp/out"
	pid=$("$BIN/bind-output" "$tmp/out" 127.0.0.1 "$port") || return 1
	pids="$pids $pid"
	start=$(now_ns)
	cat "$tmp/data.1" >"$tmp/out"
	kill "$pid" # teardown sends what is left, then ends the stream
	wait "$recv"
	end=$(now_ns)
	echo $((end - start))
}

# run_nc_output [cat]: nc reading the file itself, or behind cat as bind-output is
run_nc_output() {
	port=$($FREEPORT)
	nc -l 127.0.0.1 "$port" >/dev/null </dev/null &
	recv=$!
	pids="$pids $recv"
	wait_port "$port"
	start=$(now_ns)
	if [ "${1:-}" = cat ]; then
		cat "$tmp/data.1" | nc -N 127.0.0.1 "$port"
	else
		nc -N 127.0.0.1 "$port" <"$tmp/data.1"
	fi
	wait "$recv"
	end=$(now_ns)
	echo $((end - start))
}

idle_rss() {
	port=$($FREEPORT)
	rm -f "$tmp/idle"
	pid=$("$BIN/bind-input" "$tmp/idle" "$port") || return 1
	pids="$pids $pid"
	rss_kb=$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup")
	priv_kb=$(awk '/^Private_(Clean|Dirty):/ { n += $2 } END { print n }' "/proc/$pid/smaps_rollup")
	pss_kb=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")
	echo "$rss_kb $priv_kb $pss_kb"
	kill "$pid"
}

mib=$((BYTES / 1048576))
make_data "$tmp/data.1" "$BYTES"
make_data "$tmp/data.$SENDERS" $((BYTES / SENDERS))
cat "$tmp/data.1" "$tmp/data.$SENDERS" >/dev/null # into the page cache
echo "bind-input / bind-output vs nc, $mib MiB of 70-byte lines over loopback"
nc_in=$(best run_nc_input)
one=$(best run_input 1)
one_c1=$(best run_input 1 -c 1)
many=$(best run_input "$SENDERS")
nc_out=$(best run_nc_output)
nc_cat=$(best run_nc_output cat)
out=$(best run_output)
rss=$(idle_rss)

printf '%-44s %8s MiB/s\n' "nc -l > fifo, cat fifo (1 sender)" "$(mbps "$BYTES" "$nc_in")"
printf '%-44s %8s MiB/s  %sx nc  (goal >= 1.0)\n' "bind-input, 1 sender" \
	"$(mbps "$BYTES" "$one")" "$(ratio "$one" "$nc_in")"
printf '%-44s %8s MiB/s  %sx nc  (goal >= 1.0)\n' "bind-input -c 1 (spliced), 1 sender" \
	"$(mbps "$BYTES" "$one_c1")" "$(ratio "$one_c1" "$nc_in")"
printf '%-44s %8s MiB/s  %sx nc  (goal >= 0.7)\n' "bind-input, $SENDERS senders, whole lines" \
	"$(mbps "$BYTES" "$many")" "$(ratio "$many" "$nc_in")"
printf '%-44s %8s MiB/s\n' "nc sender -> nc -l >/dev/null" "$(mbps "$BYTES" "$nc_out")"
printf '%-44s %8s MiB/s\n' "cat | nc sender -> nc -l >/dev/null" "$(mbps "$BYTES" "$nc_cat")"
printf '%-44s %8s MiB/s  %sx nc, %sx cat|nc  (goal >= 1.0)\n' "cat > bind-output FIFO -> nc -l" \
	"$(mbps "$BYTES" "$out")" "$(ratio "$out" "$nc_out")" "$(ratio "$out" "$nc_cat")"
printf '%-44s %8s KiB    (goal <= 1024)\n' "idle bind-input RSS" "${rss%% *}"
rest=${rss#* }
printf '%-44s %8s KiB    (the rest is libc shared with every process)\n' \
	"  of which private to it" "${rest% *}"
printf '%-44s %8s KiB    (its proportional share of the shared pages)\n' \
	"  Pss" "${rss##* }"
