#!/bin/sh
# bench-socket-W.sh: socket -W (issue 3) side by side with its peers, in one run.
# Workload: -p 'head -n1'; a client connects, sends one line, reads the reply, closes
# (tests/bin/loadgen). Rows: socket -W 4, socket -W 4 -P, socket -f, socat fork,
# tcpserver; plus socket -W 64 for the thundering-herd question.
# Columns: connections/s at 8 concurrent clients; p50 latency at 1 client, twice: with a
# 5 ms pause after each connection (the server is idle when a connection comes: what
# prestarting can win) and back to back (a closed loop: on a machine with few cores this
# measures how much CPU a connection costs, since every connection still starts one
# program somewhere); a burst of 5000 connections from 64 clients (p99 and max: max
# within 3x p99 means no connection waited for a SYN retransmit). Then what one start of
# the program costs on this machine, and the ceiling that puts on any server that starts
# it once per connection; then the master's RSS and descriptors before and after
# 100,000 connections. Ratios at the end. Reports only: never fails, never run by
# `make check`. Sizes: BENCH_N (default 4000), BENCH_LONG (default 100000).
set -u
cd "$(dirname "$0")/.."
N=${BENCH_N:-4000}
LONG=${BENCH_LONG:-100000}
CMD='head -n1'
sh scripts/deps.sh bench >/dev/null 2>&1 || echo "bench: some peers could not be installed" >&2
make -s all tools || exit 0
LOADGEN=tests/bin/loadgen
tmp=$(mktemp -d)
SRV=""
cleanup() {
	[ -n "$SRV" ] && kill "$SRV" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
wait_listening() {
	i=0
	while ! listening "$1"; do
		i=$((i + 1))
		[ "$i" -lt 250 ] || return 1
		sleep 0.02
	done
}
# The value of KEY in loadgen's key=value line.
val() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# start NAME: a server for row NAME on $PORT, pid in SRV
start() {
	case $1 in
	"socket -W 4") bin/socket -W 4 -B 127.0.0.1 -s -p "$CMD" "$PORT" 2>"$tmp/err" & ;;
	"socket -W 4 -P") bin/socket -W 4 -P -B 127.0.0.1 -s -p "$CMD" "$PORT" 2>"$tmp/err" & ;;
	"socket -W 64") bin/socket -W 64 -B 127.0.0.1 -s -p "$CMD" "$PORT" 2>"$tmp/err" & ;;
	"socket -f") bin/socket -f -l -B 127.0.0.1 -s -p "$CMD" "$PORT" 2>"$tmp/err" & ;;
	"socat fork")
		command -v socat >/dev/null || return 1
		socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
			"EXEC:$CMD" 2>"$tmp/err" &
		;;
	tcpserver)
		command -v tcpserver >/dev/null || return 1
		tcpserver -q -H -R -l 0 -c 1000 -b 4096 127.0.0.1 "$PORT" $CMD 2>"$tmp/err" &
		;;
	esac
	SRV=$!
	wait_listening "$PORT"
}
stop() {
	kill "$SRV" 2>/dev/null
	wait "$SRV" 2>/dev/null
	SRV=""
}

rows="socket -W 4|socket -W 4 -P|socket -f|socat fork|tcpserver|socket -W 64"
printf '%-16s %9s %9s %9s %9s %9s %8s %7s\n' row "conn/s@8" "p50us@1" "p50us@1" \
	"p99us@64" "maxus@64" "max/p99" errors
printf '%-16s %9s %9s %9s\n' "" "" "idle" "b-to-b"
IFS='|'
for row in $rows; do
	unset IFS
	PORT=$(tests/bin/freeport)
	if ! start "$row"; then
		printf '%-16s %s\n' "$row" "not installed or did not start"
		IFS='|'
		continue
	fi
	$LOADGEN -c 8 -n 300 127.0.0.1 "$PORT" >/dev/null 2>&1 # warm up
	r8=$($LOADGEN -c 8 -n "$N" 127.0.0.1 "$PORT" 2>/dev/null)
	r1=$($LOADGEN -c 1 -n $((N / 4)) 127.0.0.1 "$PORT" 2>/dev/null)
	ri=$($LOADGEN -c 1 -n $((N / 8)) -g 5 127.0.0.1 "$PORT" 2>/dev/null)
	r64=$($LOADGEN -c 64 -n 5000 127.0.0.1 "$PORT" 2>/dev/null)
	stop
	rate=$(val rate "$r8")
	p50=$(val p50_us "$r1")
	p50i=$(val p50_us "$ri")
	p99=$(val p99_us "$r64")
	max=$(val max_us "$r64")
	errs=$(($(val errors "$r8") + $(val errors "$r1") + $(val errors "$ri") + $(val errors "$r64")))
	ratio=$(awk -v a="$max" -v b="$p99" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
	printf '%-16s %9s %9s %9s %9s %9s %8s %7s\n' "$row" "$rate" "$p50i" "$p50" "$p99" \
		"$max" "$ratio" "$errs"
	key=$(echo "$row" | tr -c 'a-zA-Z0-9\n' '_')
	eval "rate_$key=\$rate p50_$key=\$p50 p50i_$key=\$p50i"
	IFS='|'
done
unset IFS

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a" }'; }
echo
echo "ratios (goals in brackets):"
echo "  conn/s  socket -W 4 / socat fork     $(ratio "${rate_socket__W_4:-0}" "${rate_socat_fork:-0}")  [>= 2]"
echo "  conn/s  socket -W 4 / tcpserver      $(ratio "${rate_socket__W_4:-0}" "${rate_tcpserver:-0}")  [>= 1.1]"
echo "  conn/s  socket -W 4 -P / tcpserver   $(ratio "${rate_socket__W_4__P:-0}" "${rate_tcpserver:-0}")"
echo "  conn/s  socket -W 4 / socket -f      $(ratio "${rate_socket__W_4:-0}" "${rate_socket__f:-0}")"
echo "  p50@1   socket -W 4 -P / tcpserver   $(ratio "${p50i_socket__W_4__P:-0}" "${p50i_tcpserver:-0}")  [<= 0.25]  idle server"
echo "  p50@1   socket -W 4 -P / tcpserver   $(ratio "${p50_socket__W_4__P:-0}" "${p50_tcpserver:-0}")          back to back"
echo "  p50@1   socket -W 4 / tcpserver      $(ratio "${p50i_socket__W_4:-0}" "${p50i_tcpserver:-0}")          idle server"
echo "  herd:   p50@1  -W 64 / -W 4          $(ratio "${p50_socket__W_64:-0}" "${p50_socket__W_4:-0}")  [~1: no herd]"
echo "  herd:   conn/s -W 64 / -W 4          $(ratio "${rate_socket__W_64:-0}" "${rate_socket__W_4:-0}")  [~1: no herd]"

# The ceiling: what one start of the program costs here (CPU time of its processes,
# started by a bare shell loop), and so how many connections per second the CPUs allow
# any server that starts it once per connection, with no overhead of its own at all.
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
starts=500
cpu_s=$(sh -c "i=0; while [ \$i -lt $starts ]; do $CMD </dev/null; i=\$((i + 1)); done; times" |
	awk 'END { split($1, u, /[ms]/); split($2, k, /[ms]/); print u[1] * 60 + u[2] + k[1] * 60 + k[2] }')
echo
awk -v s="$cpu_s" -v n="$starts" -v c="$ncpu" -v soc="${rate_socat_fork:-0}" \
	-v tcp="${rate_tcpserver:-0}" -v w="${rate_socket__W_4:-0}" 'BEGIN {
	if (s <= 0) { print "ceiling: could not time the program"; exit }
	cost = s / n * 1e6; ceil = c * 1e6 / cost
	printf "ceiling: one start of \"%s\" costs %.0f us of CPU; %d CPUs allow at most %.0f conn/s\n",
		"'"$CMD"'", cost, c, ceil
	if (soc > 0) printf "  = %.2fx socat fork, ", ceil / soc
	if (tcp > 0) printf "%.2fx tcpserver", ceil / tcp
	if (w > 0) printf "; socket -W 4 reached %.0f%% of it", 100 * w / ceil
	print ""
}'

# Thundering herd, counted rather than timed: at -W 64, do the workers that stay idle
# wake up when another one gets a connection? A herd shows as about one voluntary
# context switch per idle worker per connection.
PORT=$(tests/bin/freeport)
if start "socket -W 64"; then
	sleep 1 # all 64 in accept; a report, not a test
	ws=$(ps --ppid "$SRV" -o pid=)
	csw() { awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/"$1"/status 2>/dev/null; }
	for w in $ws; do eval "csw0_$w=\$(csw $w)"; done
	$LOADGEN -c 1 -n 32 127.0.0.1 "$PORT" >/dev/null 2>&1
	idle=0 wakes=0
	for w in $ws; do
		c=$(csw "$w")
		[ -n "$c" ] || continue # it served a connection and is gone
		eval "c0=\$csw0_$w"
		idle=$((idle + 1))
		wakes=$((wakes + c - c0))
	done
	stop
	echo
	echo "herd: 32 connections at -W 64: $idle workers stayed idle and woke $wakes times" \
		"in all (a herd would be about $((idle * 32)))"
fi

# The master after many connections: same RSS and descriptors as before.
echo
for row in "socket -W 4" "socket -W 4 -P"; do
	PORT=$(tests/bin/freeport)
	start "$row" || continue
	$LOADGEN -c 8 -n 1000 127.0.0.1 "$PORT" >/dev/null 2>&1
	sleep 0.5 # let the last lingering closes finish; a report, not a test
	rss0=$(ps -o rss= -p "$SRV" | tr -d ' ')
	fd0=$(ls /proc/"$SRV"/fd | wc -l)
	r=$($LOADGEN -c 8 -n "$LONG" 127.0.0.1 "$PORT" 2>/dev/null)
	sleep 0.5
	rss1=$(ps -o rss= -p "$SRV" | tr -d ' ')
	fd1=$(ls /proc/"$SRV"/fd | wc -l)
	stop
	echo "$row master after $LONG connections (errors $(val errors "$r")):" \
		"RSS ${rss0} -> ${rss1} kB, fds ${fd0} -> ${fd1}"
done
exit 0
