#!/bin/sh
# bench-socket-W.sh: socket -W (issue 3) side by side with its peers.
# Workload: -p 'head -n1'; a client connects, sends one line, reads the reply to the
# end of the stream, closes (tests/bin/loadgen). Servers: socket -W 4, socket -W 4 -P,
# socket -f, socat fork, tcpserver (ucspi-tcp); plus socket -W 64 for the
# thundering-herd question. Per server: connections/s at 8 concurrent clients; p50
# latency at 1 client, twice: with a 5 ms pause after each connection (the server is
# idle when a connection comes: what prestarting can win) and back to back (a closed
# loop: on a machine with few cores this measures how much CPU a connection costs,
# since every connection still starts one program somewhere); a burst from 64 clients
# (p99 and max: max within 3x p99 means no connection waited for a SYN retransmit).
# And the ceiling: what one start of the program costs here in CPU time, and so how
# many connections per second the CPUs allow any server that starts it once per
# connection, with no overhead of its own at all. Ratios between medians at the end.
#
# Method: interleaved rounds, medians, as in bench-bind.sh, whose header says why:
# the machine is shared and its speed drifts by tens of percent within a minute, so
# servers measured one after another compare different machines. Every round runs
# every row once (a server: start it, warm it up, the four loads, stop it; or the
# ceiling), in one cyclic order rotated by one row per round, so no row always
# follows the same neighbour. Each figure is the median of its rounds, with the
# lowest and the highest round beside it so the noise shows; ratios are taken
# between medians, a peer's in the same rounds as ours.
#
# Every run is checked as well as timed. loadgen counts a connection good only when
# its reply was the line it sent, whole, then the end of the stream, and it counts
# the bytes sent and received; a connection stuck for 10 s is given up (-t). A run
# in which any connection failed, timed out or got a short or wrong reply is
# INVALID: it is left out of the medians (a server that drops connections quickly
# must not look fast), the row says in how many rounds that happened, and each such
# run is listed at the end. The ceiling's runs are checked likewise: every start
# must have copied its line.
#
# Then, outside the rounds (counted, not timed): how often idle workers wake at
# -W 64, and the master's RSS and descriptors before and after BENCH_LONG
# connections. Reports only: never fails, never run by `make check`.
#
#   BENCH_RUNS   rounds; every row runs once per round (default 5)
#   BENCH_N      connections a run at 8 clients (default 1000); a quarter of that
#                back to back and an eighth idle at 1 client
#   BENCH_BURST  connections of the 64-client burst (default 1000)
#   BENCH_LONG   connections for the master's RSS and descriptors (default 10000;
#                100000 for a leak of a few bytes a connection)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${SP_BIN:-$PWD/bin}
RUNS=${BENCH_RUNS:-5}
N=${BENCH_N:-1000}
BURST=${BENCH_BURST:-1000}
LONG=${BENCH_LONG:-10000}
CMD='head -n1'
WARM=200    # connections before the timed loads of a run
STARTS=500  # program starts a round, for the ceiling
LG_T=10     # loadgen -t: a connection stuck this long is an error, not a hang
LOADGEN=tests/bin/loadgen
FREEPORT=tests/bin/freeport
sh scripts/deps.sh bench >/dev/null 2>&1 || echo "bench-socket-W: some peers could not be installed" >&2
[ -n "${SP_BIN:-}" ] || make -s all tools || exit 0
for t in ss ps "$BIN/socket" "$LOADGEN" "$FREEPORT"; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench-socket-W: $t missing (make all tools)" >&2; exit 0; }
done
n1=$((N / 4)) ni=$((N / 8))
[ "$n1" -gt 0 ] || n1=1
[ "$ni" -gt 0 ] || ni=1
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)

# Row names, in the cyclic order of a round. A row's figures, one per valid round,
# collect in t_ROW_MEASURE; its INVALID runs count in inv_ROW_MEASURE, their bad
# connections in bad_ROW_MEASURE.
SERVERS='w4 w4p f'
command -v socat >/dev/null 2>&1 && SERVERS="$SERVERS socat"
command -v tcpserver >/dev/null 2>&1 && SERVERS="$SERVERS tcp"
SERVERS="$SERVERS w64"
ROWS="$SERVERS ceil"
label() {
	case $1 in
	w4) echo "socket -W 4" ;;
	w4p) echo "socket -W 4 -P" ;;
	f) echo "socket -f" ;;
	socat) echo "socat fork" ;;
	tcp) echo "tcpserver" ;;
	w64) echo "socket -W 64" ;;
	ceil) echo "ceiling" ;;
	esac
}

. scripts/bench-lib.sh
: >"$tmp/notes"

note() { printf '  %s\n' "$*" >>"$tmp/notes"; }
add() { # VAR VALUE: append a figure (digits only) to the list VAR
	eval "$1=\"\${$1:-} \$2\""
}
bump() { # VAR [N]: VAR += N (default 1)
	eval "$1=\$((\${$1:-0} + ${2:-1}))"
}

# start_server ROW: the server of ROW on a fresh port; sets port and srv
start_server() {
	srv=""
	: >"$tmp/err"
	port=$($FREEPORT) || return 1
	case $1 in
	w4) "$BIN/socket" -W 4 -B 127.0.0.1 -s -p "$CMD" "$port" 2>"$tmp/err" & ;;
	w4p) "$BIN/socket" -W 4 -P -B 127.0.0.1 -s -p "$CMD" "$port" 2>"$tmp/err" & ;;
	w64) "$BIN/socket" -W 64 -B 127.0.0.1 -s -p "$CMD" "$port" 2>"$tmp/err" & ;;
	f) "$BIN/socket" -f -l -B 127.0.0.1 -s -p "$CMD" "$port" 2>"$tmp/err" & ;;
	socat)
		socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
			"EXEC:$CMD" 2>"$tmp/err" &
		;;
	tcp)
		# shellcheck disable=SC2086 # CMD is the program and its argument
		tcpserver -q -H -R -l 0 -c 1000 -b 4096 127.0.0.1 "$port" $CMD 2>"$tmp/err" &
		;;
	esac
	srv=$!
	pids="$pids $srv"
	wait_port "$port"
}
# stop_server: the server and its workers (or connection handlers) all ended
stop_server() {
	[ -n "$srv" ] || return 0
	kids=$(ps -o pid= --ppid "$srv" 2>/dev/null)
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	pids=${pids% "$srv"}
	for k in $kids; do wait_gone "$k"; done
}

# load NCONNS LOADGEN-ARGS...: one loadgen run against $port. Sets its figures
# (rate p50_us p99_us max_us ...) and good=1 when every one of the NCONNS
# connections got its own line back whole, then the end of the stream, and the
# reply bytes add up to the bytes sent; else good=0 and why says what went wrong.
load() {
	want=$1
	shift
	"$LOADGEN" -t "$LG_T" "$@" 127.0.0.1 "$port" >"$tmp/lg" 2>"$tmp/lg.err" &
	lg=$!
	pids="$pids $lg"
	wait "$lg"
	lg_rc=$?
	pids=${pids% "$lg"} # reaped: its PID may be reused
	conns=0 ok=0 errors=0 rate=0 p50_us=0 p99_us=0 max_us=0
	sent=0 got=0 failed=0 short=0 wrong=0 timeouts=0
	line=""
	read -r line <"$tmp/lg"
	for kv in $line; do
		case $kv in
		conns=* | ok=* | errors=* | rate=* | p50_us=* | p99_us=* | max_us=* | \
			sent=* | got=* | failed=* | short=* | wrong=* | timeouts=*)
			case ${kv#*=} in
			'' | *[!0-9]*) ;;
			*) eval "${kv%%=*}=\${kv#*=}" ;;
			esac
			;;
		esac
	done
	if [ "$lg_rc" -eq 0 ] && [ "$conns" -eq "$want" ] && [ "$ok" -eq "$want" ] &&
		[ "$errors" -eq 0 ] && [ "$sent" -gt 0 ] && [ "$got" -eq "$sent" ]; then
		good=1 why=""
		return 0
	fi
	good=0 bad=$((want - ok))
	why="$ok of $want connections good (failed $failed, short $short, wrong $wrong,"
	why="$why timed out $timeouts), $got of $sent reply bytes, loadgen status $lg_rc"
	if [ -s "$tmp/lg.err" ]; then
		read -r e <"$tmp/lg.err"
		why="$why: $e"
	fi
	if [ -s "$tmp/err" ]; then
		read -r e <"$tmp/err"
		why="$why; server: $e"
	fi
}

# measure ROW M NCONNS ARGS...: a load of a server run; figures of a good run go
# to t_ROW_M (and, for the burst, t_ROW_max and t_ROW_mp99, max/p99 in hundredths)
measure() {
	row=$1 m=$2
	shift 2
	load "$@"
	if [ "$good" -eq 0 ]; then
		bump "inv_${row}_$m"
		bump "bad_${row}_$m" "$bad"
		note "round $((r + 1)), $(label "$row"), $m: $why"
		return
	fi
	case $m in
	rate) add "t_${row}_rate" "$rate" ;;
	p50i | p50) add "t_${row}_$m" "$p50_us" ;;
	burst)
		add "t_${row}_burst" "$p99_us"
		add "t_${row}_max" "$max_us"
		[ "$p99_us" -gt 0 ] && add "t_${row}_mp99" $((max_us * 100 / p99_us))
		;;
	esac
}

run_server() { # ROW: one run of a server row
	if ! start_server "$1"; then
		for m in rate p50i p50 burst; do bump "inv_$1_$m"; done
		e=""
		[ -s "$tmp/err" ] && read -r e <"$tmp/err"
		note "round $((r + 1)), $(label "$1"): did not start${e:+: $e}"
		stop_server
		return
	fi
	load "$WARM" -c 8 -n "$WARM"
	[ "$good" -eq 1 ] || note "round $((r + 1)), $(label "$1"), warm-up: $why"
	measure "$1" rate "$N" -c 8 -n "$N"
	measure "$1" p50 "$n1" -c 1 -n "$n1"
	measure "$1" p50i "$ni" -c 1 -n "$ni" -g 5
	measure "$1" burst "$BURST" -c 64 -n "$BURST"
	stop_server
}

# run_ceil: STARTS starts of the program by a bare shell loop, each copying one
# line from a file to a file; their CPU time (user and system, of the children
# only) over STARTS is the cost of one start; ncpu CPUs allow ncpu s / cost of
# them a second.
run_ceil() {
	echo "a line" >"$tmp/line"
	: >"$tmp/copies"
	# shellcheck disable=SC2016 # expanded by that shell
	sh -c 'i=0; while [ "$i" -lt "$1" ]; do '"$CMD"' <"$2" >>"$3"; i=$((i + 1)); done; times' \
		sh "$STARTS" "$tmp/line" "$tmp/copies" >"$tmp/times" &
	c=$!
	pids="$pids $c"
	wait "$c"
	pids=${pids% "$c"}
	copies=$(wc -l <"$tmp/copies")
	cost=$(awk -v n="$STARTS" 'END { split($1, u, /[ms]/); split($2, k, /[ms]/)
		printf "%.0f", (u[1] * 60 + u[2] + k[1] * 60 + k[2]) * 1e6 / n }' "$tmp/times")
	if [ "$copies" -ne "$STARTS" ] || [ "${cost:-0}" -le 0 ]; then
		bump inv_ceil_rate
		note "round $((r + 1)), ceiling: $copies of $STARTS starts copied their line, $cost us a start"
		return
	fi
	add t_ceil_cost "$cost"
	add t_ceil_rate $((ncpu * 1000000 / cost))
}

run_row() { # ROW: one run of it
	case $1 in
	ceil) run_ceil ;;
	*) run_server "$1" ;;
	esac
	pids="" # all reaped
}

# flag ROW M: what the INVALID runs of ROW's measure M were, if any
flag() {
	k=0 b=0
	eval "k=\${inv_$1_$2:-0} b=\${bad_$1_$2:-0}"
	[ "$k" -gt 0 ] || return 0
	if [ "$k" -ge "$RUNS" ]; then
		printf 'INVALID in all %d rounds' "$RUNS"
	else
		printf 'INVALID in %d of %d rounds' "$k" "$RUNS"
	fi
	[ "$b" -eq 0 ] || printf ' (%d bad connections)' "$b"
	[ "$k" -ge "$RUNS" ] || printf ', left out'
}
trim() { printf '%s\n' "${1%"${1##*[! ]}"}"; } # without trailing blanks
# line LABEL ROW M [REST]: label, median, lowest-highest round, REST, flag
line() {
	if stats "t_$2_$3"; then
		l=$(printf '  %-40s %8s  %-13s %s %s' "$1" "$med" "$lo-$hi" "${4:-}" "$(flag "$2" "$3")")
	else
		l=$(printf '  %-40s %8s  %-13s %s' "$1" - - "$(flag "$2" "$3")")
	fi
	trim "$l"
}

echo "socket -W vs its peers: -p '$CMD', one line per connection (tests/bin/loadgen), loopback"
echo "median of $RUNS interleaved rounds; range: lowest-highest round; every reply checked"
command -v socat >/dev/null 2>&1 || echo "socat fork: not installed, no row"
command -v tcpserver >/dev/null 2>&1 || echo "tcpserver: not installed, no row"
r=0
while [ "$r" -lt "$RUNS" ]; do
	# shellcheck disable=SC2086 # ROWS is a list of plain words
	for name in $(rotate "$r" $ROWS); do run_row "$name"; done
	r=$((r + 1))
done

# The medians, for the ratios: M_ROW_M, 0 when a row has no valid run.
for row in $ROWS; do
	for m in rate p50 p50i burst max mp99 cost; do
		stats "t_${row}_$m"
		eval "M_${row}_$m=\$med"
	done
done

printf '\n%-42s %8s  %s\n' "connections/s, 8 clients, $N a run" median range
for row in $SERVERS; do line "$(label "$row")" "$row" rate; done
line "ceiling: one program start a connection" ceil rate \
	"(${M_ceil_cost:-0} us of CPU a start, $ncpu CPUs)"
printf '\n%-42s %8s  %s\n' "p50 us, 1 client, idle server (5 ms pause)" median range
for row in $SERVERS; do line "$(label "$row")" "$row" p50i; done
printf '\n%-42s %8s  %s\n' "p50 us, 1 client, back to back" median range
for row in $SERVERS; do line "$(label "$row")" "$row" p50; done
printf '\n%-42s %8s  %-15s %8s  %-15s %s\n' "burst, 64 clients, $BURST connections" \
	"p99 us" range "max us" range "max/p99"
for row in $SERVERS; do
	if stats "t_${row}_burst"; then
		p99=$med p99r="$lo-$hi"
		stats "t_${row}_max"
		mx=$med mxr="$lo-$hi"
		stats "t_${row}_mp99"
		mp=$(awk -v m="$med" 'BEGIN { printf "%.2f", m / 100 }')
		l=$(printf '  %-40s %8s  %-15s %8s  %-15s %7s  %s' "$(label "$row")" "$p99" "$p99r" \
			"$mx" "$mxr" "$mp" "$(flag "$row" burst)")
	else
		l=$(printf '  %-40s %8s  %-15s %8s  %-15s %7s  %s' "$(label "$row")" - - - - - \
			"$(flag "$row" burst)")
	fi
	trim "$l"
done
echo "  (max/p99 below 3: no connection waited for a SYN retransmit)"

# ratio A B: median A / median B (A, B: ROW_M), with a mark when either had INVALID runs
ratio() {
	a=0 b=0 ia=0 ib=0
	eval "a=\${M_$1:-0} b=\${M_$2:-0} ia=\${inv_$1:-0} ib=\${inv_$2:-0}"
	awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else printf "n/a " }'
	[ $((ia + ib)) -eq 0 ] || printf '*'
}
echo
echo "ratios of the medians (goals in brackets; * = INVALID runs left out of one side):"
echo "  conn/s  socket -W 4 / socat fork     $(ratio w4_rate socat_rate)  [>= 2]"
echo "  conn/s  socket -W 4 / tcpserver      $(ratio w4_rate tcp_rate)  [>= 1.0]"
echo "  conn/s  socket -W 4 / ceiling        $(ratio w4_rate ceil_rate)  [>= 0.85]"
echo "  conn/s  socket -W 4 -P / socket -W 4 $(ratio w4p_rate w4_rate)  [>= 0.9]"
echo "  conn/s  socket -W 4 -P / tcpserver   $(ratio w4p_rate tcp_rate)"
echo "  conn/s  socket -W 4 / socket -f      $(ratio w4_rate f_rate)"
echo "  p50@1   socket -W 4 -P / tcpserver   $(ratio w4p_p50i tcp_p50i)  [<= 0.3]  idle server"
echo "  p50@1   socket -W 4 -P / tcpserver   $(ratio w4p_p50 tcp_p50)          back to back"
echo "  p50@1   socket -W 4 / tcpserver      $(ratio w4_p50i tcp_p50i)          idle server"
echo "  herd:   p50@1  -W 64 / -W 4          $(ratio w64_p50 w4_p50)  [~1: no herd]"
echo "  herd:   conn/s -W 64 / -W 4          $(ratio w64_rate w4_rate)  [~1: no herd]"

echo
awk -v cost="${M_ceil_cost:-0}" -v ceil="${M_ceil_rate:-0}" -v c="$ncpu" -v soc="${M_socat_rate:-0}" \
	-v tcp="${M_tcp_rate:-0}" -v w="${M_w4_rate:-0}" -v cmd="$CMD" 'BEGIN {
	if (cost <= 0 || ceil <= 0) { print "ceiling: could not time the program"; exit }
	printf "ceiling: one start of \"%s\" costs %.0f us of CPU (median); %d CPUs allow at most %.0f conn/s\n",
		cmd, cost, c, ceil
	if (soc > 0) printf "  = %.2fx socat fork, ", ceil / soc
	if (tcp > 0) printf "%.2fx tcpserver", ceil / tcp
	if (w > 0) printf "; socket -W 4 reached %.0f%% of it", 100 * w / ceil
	print ""
}'

# Thundering herd, counted rather than timed: at -W 64, do the workers that stay idle
# wake up when another one gets a connection? A herd shows as about one voluntary
# context switch per idle worker per connection.
if start_server w64; then
	sleep 1 # all 64 in accept; a report, not a test
	ws=$(ps -o pid= --ppid "$srv")
	csw() { awk '/^voluntary_ctxt_switches/ { print $2 }' /proc/"$1"/status 2>/dev/null; }
	for w in $ws; do eval "csw0_$w=\$(csw $w)"; done
	load 32 -c 1 -n 32
	idle=0 wakes=0
	for w in $ws; do
		c=$(csw "$w")
		[ -n "$c" ] || continue # it served a connection and is gone
		c0=0
		eval "c0=\${csw0_$w:-0}"
		idle=$((idle + 1))
		wakes=$((wakes + c - c0))
	done
	stop_server
	echo
	echo "herd: 32 connections at -W 64: $idle workers stayed idle and woke $wakes times" \
		"in all (a herd would be about $((idle * 32)))"
	[ "$good" -eq 1 ] || echo "  INVALID: $why"
fi
pids=""

# The master after many connections: same RSS and descriptors as before.
echo
for row in w4 w4p; do
	start_server "$row" || { echo "$(label "$row"): did not start"; stop_server; continue; }
	load 1000 -c 8 -n 1000
	w=$why
	sleep 0.5 # let the last lingering closes finish; a report, not a test
	rss0=$(ps -o rss= -p "$srv" | tr -d ' ')
	fd0=$(find /proc/"$srv"/fd -mindepth 1 | wc -l)
	load "$LONG" -c 8 -n "$LONG"
	[ -z "$w" ] || { good=0 why="warm-up: $w${why:+; $why}"; }
	sleep 0.5
	rss1=$(ps -o rss= -p "$srv" | tr -d ' ')
	fd1=$(find /proc/"$srv"/fd -mindepth 1 | wc -l)
	stop_server
	pids=""
	if [ "$good" -eq 1 ]; then res="every reply whole"; else res="INVALID: $why"; fi
	echo "$(label "$row") master after $LONG connections ($res):" \
		"RSS ${rss0} -> ${rss1} kB, fds ${fd0} -> ${fd1}"
done

if [ -s "$tmp/notes" ]; then
	echo
	echo "INVALID runs (left out of the medians):"
	cat "$tmp/notes"
fi
exit 0
