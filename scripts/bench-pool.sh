#!/bin/sh
# bench-pool.sh [DAEMONS [LINES]]: one master pushing DAEMONS daemons (default
# 500), each `seq 1 LINES` (default 10000), to one pool on loopback; and the
# same job done the way pool replaces, side by side: one `bind-input -1` per
# daemon, each daemon run by `socket -p` with its output on the connection, as
# master runs it. Prints the time until every sender is connected, the lines
# delivered, lines/s, and the receiving side's peak RSS, with the ratios and
# the goals of issue 5 (500 daemons all connected within 1 s, every line
# delivered, pool RSS <= 32 MiB). The pool/master row is encrypted (protocol
# version 3, the default); a third row, pool/master -U, is the same in plain
# text, with the goal of issue 15: encrypted, all connected within 2 s.
# Results are printed, never asserted. Called by `make bench`.
#
# Method: interleaved rounds, medians, as in bench-bind.sh, whose header says
# why: the machine is shared and its speed drifts by tens of percent within a
# minute, so two rows timed one after another compare different machines.
# Every round runs both rows once, in an order rotated by one row per round;
# each figure is the median of its rounds, with the lowest and the highest
# round beside it; ratios are taken between medians.
#
# Each daemon waits for a start line, so "connected" is measured apart from
# sending. Then one reader per buffer, all at once, as a shell reads each
# daemon's buffer: cksum, so every buffer is checked byte for byte against
# what `seq 1 LINES` writes. (Reading the buffers one after another, as this
# script once did, timed bind-input -1's drain polling instead: a binding
# whose reader comes late polls its pipe ever more slowly, up to every 250 ms,
# so each buffer's end of file came 60-140 ms after it was drained, and the
# peer took 70 s a round at the defaults.) A run is
# INVALID, and left out of the medians, when not every sender connected, a
# buffer is not byte for byte what its daemon wrote, anything spilled to an
# .unread file, a sender failed, or the delivery did not end within
# BENCH_DEADLINE seconds (then the receivers are killed, which spills what
# they hold): a run that lost lines cannot look fast. Each such run is listed
# at the end.
#
#   BENCH_RUNS      rounds; both rows run once per round (default 5)
#   BENCH_DEADLINE  seconds for connecting, and again for delivering (default 60)
set -u
cd "$(dirname "$0")/.." || exit 1
B=${SP_BIN:-$PWD/bin}
N=${1:-500}
L=${2:-10000}
RUNS=${BENCH_RUNS:-5}
DEADLINE=${BENCH_DEADLINE:-60}
FREEPORT=tests/bin/freeport
# Row names, in the cyclic order of a round; each row's figures, one per valid
# round, collect in t_ROW_MEASURE, its INVALID runs in inv_ROW.
ROWS='pool plain peer'

for t in ss cksum "$B/pool" "$B/master" "$B/bind-input" "$B/socket" "$FREEPORT"; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench-pool: $t missing (make all tools)" >&2; exit 0; }
done
. scripts/bench-lib.sh
ms() { echo $((($1 + 500000) / 1000000)); } # NS: whole milliseconds
# note WHAT: what made this run INVALID, listed at the end
note() {
	bad=$((bad + 1))
	printf '  round %d, %s: %s\n' $((r + 1)) "$row_label" "$*" >>"$tmp/notes"
}
add() { eval "$1=\"\${$1:-} \$2\""; } # VAR VALUE: append a figure (digits only)
established() { # connections accepted on ports lo..hi
	ss -Htn state established "( sport >= :$lo and sport <= :$hi )" 2>/dev/null | wc -l
}
# wait_connected: until N senders are connected (bounded); sets conn_ns since t0
wait_connected() {
	until [ "$(established)" -ge "$N" ]; do
		if [ $(($(now_ns) - t0)) -gt $((DEADLINE * 1000000000)) ]; then
			note "only $(established) of $N connected after $DEADLINE s"
			return 1
		fi
		sleep 0.01
	done
	conn_ns=$(($(now_ns) - t0))
}
# next_range: a fresh port range lo..hi for the bindings of a run, so that no
# connection of an earlier run can count as one of this run's; below Linux's
# ephemeral range, so no outgoing connection is counted as ours.
base=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 2000))
next_range() {
	[ $((base + N + 100)) -le 32000 ] || base=20000
	lo=$base hi=$((base + N + 99))
	base=$((hi + 1))
}
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# fresh: the per-run directories and the start FIFO, held open here (fd 3) so a
# late daemon still finds its line
fresh() {
	rm -rf "$tmp/buf" "$tmp/got" "$tmp/go" "$tmp/expired" "$tmp/err" "$tmp/master.err"
	mkdir "$tmp/buf" "$tmp/got" && mkfifo "$tmp/go" || return 1
	exec 3<>"$tmp/go"
}
# deliver RECEIVERS SENDERS: one reader per buffer, then every daemon's start
# line; waits for the readers and the SENDERS (master, or the socket clients),
# with a watchdog that kills what is left of RECEIVERS and SENDERS (PID lists)
# after DEADLINE s, and 2 s later any reader still waiting. Sets del_ns, from
# the start lines to the last reader's end.
deliver() {
	nfifo=0 readers=""
	for f in "$tmp/buf"/*; do
		[ -p "$f" ] || continue
		nfifo=$((nfifo + 1))
		# A lasting buffer (pool -l) has no end of file while its pool runs:
		# each reader takes the size a daemon writes, then checks it.
		head -c "${ref#* }" <"$f" | cksum >"$tmp/got/${f##*/}" &
		readers="$readers $!"
	done
	pids="$pids $readers"
	[ "$nfifo" -eq "$N" ] || note "$nfifo buffers of $N"
	# Only a process still running one of our programs is killed: a PID in
	# the lists may have ended, been reaped, and been reused meanwhile.
	# shellcheck disable=SC2016,SC2086 # expanded by that shell; PID lists
	sh -c 'nap() { sleep "$1" & s=$!; wait "$s"; }
		trap "kill \$s 2>/dev/null; exit 0" TERM
		nap "$3" || exit 0
		: >"$1"
		prog="$2/*"
		shift 3
		for p; do
			if [ "$p" = -- ]; then
				nap 2
				prog=*/cksum
				continue
			fi
			case $(readlink "/proc/$p/exe" 2>/dev/null) in
			$prog) kill "$p" 2>/dev/null ;;
			esac
		done' sh "$tmp/expired" "$B" "$DEADLINE" $1 $2 -- $readers &
	wd=$!
	pids="$pids $wd"
	t1=$(now_ns)
	cat "$tmp/golines" >&3
	# shellcheck disable=SC2086 # a list of PIDs
	wait $readers
	del_ns=$(($(now_ns) - t1))
	pids="$1 $2 $wd" # the readers are reaped
	sfail=0 nsend=0
	for p in $2; do
		nsend=$((nsend + 1))
		wait "$p" || sfail=$((sfail + 1))
	done
	pids="$1 $wd"
	kill "$wd" 2>/dev/null
	wait "$wd"
	pids=$1
	exec 3>&-
	[ "$sfail" -eq 0 ] || note "$sfail of $nsend senders failed"
	[ ! -e "$tmp/expired" ] || note "not delivered within $DEADLINE s: receivers killed"
}
# check BUFDIR: every buffer byte for byte what its daemon wrote, nothing
# spilled; sets exact (buffers that were)
check() {
	exact=0 short=""
	i=1
	while [ "$i" -le "$N" ]; do
		c=""
		[ -s "$tmp/got/dem$i" ] && read -r c <"$tmp/got/dem$i"
		if [ "$c" = "$ref" ]; then
			exact=$((exact + 1))
		elif [ -z "$short" ] && [ -z "$c" ]; then
			short="dem$i: nothing read"
		elif [ -z "$short" ]; then
			short="dem$i got ${c#* } of ${ref#* } bytes, checksum ${c%% *}, not ${ref%% *}"
		fi
		i=$((i + 1))
	done
	[ "$exact" -eq "$N" ] || note "$((N - exact)) of $N buffers not what the daemon wrote (first: $short)"
	set -- "$1"/*.unread
	[ ! -e "$1" ] || note ".unread files left: $# (what a binding held when it was killed)"
}

# run_pool [-U]: the pool/master row, encrypted, or in plain text
run_pool() {
	next_range
	tries=0
	while :; do # a control port outside the range, which someone may take meanwhile
		port=$($FREEPORT) || return 1
		if [ "$port" -lt "$lo" ] || [ "$port" -gt "$hi" ]; then
			pool=$("$B/pool" -b -l ${1:+"$1"} -r "$lo-$hi" -d "$tmp/buf" -L "$tmp/pool.log" \
				k12 "$port" 2>"$tmp/err") && break
		fi
		tries=$((tries + 1))
		[ "$tries" -lt 8 ] || { note "pool did not start: $(cat "$tmp/err")"; return 1; }
	done
	pids="$pids $pool"
	t0=$(now_ns)
	"$B/master" ${1:+"$1"} k12 127.0.0.1 "$port" "$tmp/d" 2>"$tmp/master.err" &
	senders=$!
	pids="$pids $senders"
	wait_connected
	deliver "$pool" "$senders"
	rss=$(hwm "$pool")
	kill "$pool"
	wait_gone "$pool"
	[ ! -s "$tmp/master.err" ] || note "$(head -n 1 "$tmp/master.err")"
}

run_peer() {
	next_range
	next=$lo senders="" peers=""
	t0=$(now_ns)
	i=1
	while [ "$i" -le "$N" ]; do
		tries=0 # a port some other program holds is skipped, as pool -r does
		until p=$(BIND_DIR="$tmp/buf" "$B/bind-input" -1 "dem$i" "$next" 2>"$tmp/err"); do
			next=$((next + 1)) tries=$((tries + 1))
			[ "$tries" -lt 100 ] || { note "bind-input keeps failing: $(cat "$tmp/err")"; return 1; }
		done
		peers="$peers $p"
		pids="$pids $p"
		"$B/socket" -p "$tmp/d/dem$i" 127.0.0.1 "$next" &
		senders="$senders $!"
		pids="$pids $!"
		next=$((next + 1)) i=$((i + 1))
	done
	hi=$((next - 1))
	[ "$next" -le "$base" ] || base=$next
	if wait_connected; then
		# Their peaks once all are connected: each exits once its buffer is drained.
		rss=0
		for p in $peers; do rss=$((rss + $(hwm "$p"))); done
	fi
	deliver "$peers" "$senders"
	left=0
	for p in $peers; do
		wait_gone "$p" && continue
		left=$((left + 1))
		kill "$p"
		wait_gone "$p"
	done
	[ "$left" -eq 0 ] || note "$left bind-input -1 still running after the delivery: killed"
}

# run_row ROW: one run of it; its figures appended to t_ROW_*, or, when
# anything was noted, counted as INVALID in inv_ROW, its delivered lines in
# got_ROW
run_row() {
	row_label=$(label "$1")
	bad=0 exact=0 rss=0
	fresh || return 1
	if run_it "$1"; then
		check "$tmp/buf"
	else # it stopped half way: end what it started (none reaped yet)
		for p in $pids; do kill "$p" 2>/dev/null; done
		for p in $pids; do wait_gone "$p"; done
		wait
		exec 3>&-
	fi
	pids="" # all reaped
	eval "got_$1=\"\${got_$1:-} \$((exact * L))\""
	if [ "$bad" -gt 0 ]; then
		eval "inv_$1=\$((\${inv_$1:-0} + 1))"
		return 0
	fi
	add "t_$1_conn" "$(ms "$conn_ns")"
	add "t_$1_lps" $((N * L * 1000000000 / del_ns))
	add "t_$1_rss" "$rss"
}
run_it() { case $1 in pool) run_pool ;; plain) run_pool -U ;; peer) run_peer ;; esac; }
label() {
	case $1 in
	pool) echo "pool/master" ;;
	plain) echo "pool/master -U" ;;
	peer) echo "bind-input -1 + socket -p" ;;
	esac
}

# shellcheck disable=SC2034 # med, lo, hi are read through eval

# The daemons, made once. Each waits for its start line, so "connected" is
# measured apart from sending.
mkdir "$tmp/d" || exit 0
: >"$tmp/notes"
i=1
while [ "$i" -le "$N" ]; do
	printf '#!/bin/sh\nread -r _ <%s || exit 1\nexec seq 1 %s\n' "$tmp/go" "$L" >"$tmp/d/dem$i"
	chmod +x "$tmp/d/dem$i"
	i=$((i + 1))
done
ref=$(seq 1 "$L" | cksum) # what every buffer must hold: checksum and size
i=0
while [ "$i" -lt "$N" ]; do echo go; i=$((i + 1)); done >"$tmp/golines"

echo "pool/master: $N daemons x $L lines on loopback, encrypted and (-U) plain, against $N x (bind-input -1 + socket -p)"
echo "median of $RUNS interleaved rounds; range: lowest-highest round; every buffer checked byte for byte"
r=0
while [ "$r" -lt "$RUNS" ]; do
	# shellcheck disable=SC2086 # ROWS is a list of plain words
	for name in $(rotate "$r" $ROWS); do
		run_row "$name" || { echo "bench-pool: row $name failed" >&2; exit 0; }
	done
	r=$((r + 1))
done

for row in $ROWS; do
	for m in conn lps rss; do
		if stats "t_${row}_$m"; then
			eval "M_${row}_$m=\$med R_${row}_$m=\"\$lo-\$hi\""
		else
			eval "M_${row}_$m=- R_${row}_$m=-"
		fi
	done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3gx", a / b; else printf "n/a" }'; }
goal() { # MEDIAN LIMIT: met when there is a median and it is at most LIMIT
	if [ "$1" != - ] && [ "$1" -le "$2" ]; then echo "goal met"; else echo "GOAL MISSED"; fi
}
# delivered ROW: in how many rounds every line arrived, and the least of a round
delivered() {
	eval "set -- \${got_$1:-}"
	k=0 least=$((N * L))
	for g; do
		[ "$g" -ne $((N * L)) ] || k=$((k + 1))
		[ "$g" -ge "$least" ] || least=$g
	done
	inv=0
	eval "inv=\${inv_$1:-0}"
	printf 'every line in %d of %d rounds' "$k" "$#"
	[ "$least" -eq $((N * L)) ] || printf ' (as few as %d)' "$least"
	[ "$inv" -eq 0 ] || printf ', %d INVALID' "$inv"
}
trim() { printf '%s\n' "${1%"${1##*[! ]}"}"; } # without trailing blanks
echo
printf '  %-19s %14s  %-17s %14s  %-17s %9s\n' "" "pool/master" range "bind-input" range ratio
trim "$(printf '  %-19s %11s ms  %-17s %11s ms  %-17s %9s  (encrypted pool: goal <= 2000 ms: %s)' \
	"all connected after" "${M_pool_conn:--}" "${R_pool_conn:--}" "${M_peer_conn:--}" \
	"${R_peer_conn:--}" "$(ratio "${M_peer_conn:--}" "${M_pool_conn:--}")" \
	"$(goal "${M_pool_conn:--}" 2000)")"
trim "$(printf '  %-19s %14s  %-17s %14s  %-17s %9s' "lines/s" "${M_pool_lps:--}" \
	"${R_pool_lps:--}" "${M_peer_lps:--}" "${R_peer_lps:--}" \
	"$(ratio "${M_pool_lps:--}" "${M_peer_lps:--}")")"
trim "$(printf '  %-19s %10s KiB  %-17s %10s KiB  %-17s %9s  (pool: goal <= 32768 KiB: %s)' \
	"receiver peak RSS" "${M_pool_rss:--}" "${R_pool_rss:--}" "${M_peer_rss:--}" \
	"${R_peer_rss:--}" "$(ratio "${M_pool_rss:--}" "${M_peer_rss:--}")" \
	"$(goal "${M_pool_rss:--}" 32768)")"
trim "$(printf '  %-19s %11s ms  %-17s (pool/master -U, plain text: goal <= 1000 ms: %s; encrypted / plain: %s)' \
	"-U: connected after" "${M_plain_conn:--}" "${R_plain_conn:--}" "$(goal "${M_plain_conn:--}" 1000)" \
	"$(ratio "${M_pool_conn:--}" "${M_plain_conn:--}")")"
trim "$(printf '  %-19s %14s  %-17s (encrypted / plain: %s)' "-U: lines/s" "${M_plain_lps:--}" \
	"${R_plain_lps:--}" "$(ratio "${M_pool_lps:--}" "${M_plain_lps:--}")")"
trim "$(printf '  %-19s %10s KiB  %-17s (encrypted / plain: %s)' "-U: peak RSS" "${M_plain_rss:--}" \
	"${R_plain_rss:--}" "$(ratio "${M_pool_rss:--}" "${M_plain_rss:--}")")"
if [ "${inv_pool:-0}" -eq 0 ]; then lgoal="goal met"; else lgoal="GOAL MISSED"; fi
printf '  %-19s pool/master: %s; bind-input: %s\n' "lines delivered" \
	"$(delivered pool)" "$(delivered peer)"
printf '  %-19s (of %d a round, every buffer byte for byte; pool: every line: %s)\n' "" \
	$((N * L)) "$lgoal"
echo "  (ratios of the medians: connect, peer time / pool time; RSS, pool's peak over its run"
echo "  / the sum of the bind-inputs' peaks once all are connected: each exits once drained)"
if [ -s "$tmp/notes" ]; then
	echo
	echo "INVALID runs (left out of the medians):"
	cat "$tmp/notes"
fi
exit 0
