# shellcheck shell=sh
# bench-lib.sh: what every bench-*.sh shares, sourced after its cd to the
# tree: a private directory, the list of processes a run starts, and their
# end on any exit, signals included; bounded waits; time and rate.
#
# Every process a run starts goes into $pids until the run has reaped it.
# The runs execute in the sourcing shell, never in a $(...) subshell, so
# that this list is the one the exit trap sees.
tmp=$(mktemp -d) || exit 1
# The data a run sends lives in memory (tmpfs) where there is one: this
# VM's DAMON reclaims a cold file's page cache within seconds, and a run
# that reads its source from disk times the disk.
mem=$(mktemp -d /dev/shm/sp-bench.XXXXXX 2>/dev/null) || mem=$tmp
pids=""
# Functions the EXIT trap runs first, that libraries add (netns-lib.sh: netns_down).
at_exit=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	for f in $at_exit; do "$f"; done
	for p in $pids; do kill "$p" 2>/dev/null; done
	# A binding killed with data in hand writes it to NAME.unread in the
	# directory: let every process end before the directory goes.
	for p in $pids; do wait_gone "$p"; done
	rm -rf "$tmp" "$mem"
}
trap cleanup EXIT
# A trapped signal would otherwise only interrupt the current `wait` and let
# the rounds go on; exiting runs the EXIT trap.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 141' PIPE # output to a reader that went away

# need NAME TOOL...: each tool is there, or NAME says which is not and exits 1.
need() {
	n=$1
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || { echo "$n: $t missing (make all tools)" >&2; exit 1; }
	done
}
now_ns() { date +%s%N; }
mbps() { echo "$1 $2" | awk '{ printf "%.0f", $1 / 1048576 / ($2 / 1e9) }'; } # BYTES NS
wait_port() { # PORT: until something listens there (bounded)
	i=0
	while [ -z "$(ss -Hltn "sport = :$1")" ]; do
		i=$((i + 1))
		[ "$i" -lt 250 ] || return 1
		sleep 0.02
	done
}
# wait_gone PID [TRIES]: until a process has ended (TRIES x 20 ms, default 250),
# so that its teardown neither takes CPU from the next run nor meets its
# files. A daemon is not our child: ended means no /proc entry, or a zombie.
wait_gone() {
	i=0
	while st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${st%% *}" != Z ]; do
		i=$((i + 1))
		[ "$i" -lt "${2:-250}" ] || return 1
		sleep 0.02
	done
}
# stats VAR: sets med, lo, hi: the median, lowest and highest of the figures
# listed in $VAR (rounds' times or measures); returns 1 when it has none
# shellcheck disable=SC2034 # med, lo and hi are for the sourcing script
stats() {
	eval "set -- \${$1:-}"
	[ "$#" -gt 0 ] || { med=0 lo=0 hi=0; return 1; }
	s=$(printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 }
		END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		      printf "%.0f %s %s\n", m, a[1], a[NR] }')
	med=${s%% *}
	s=${s#* }
	lo=${s% *}
	hi=${s#* }
}
# rotate N WORD...: the words, rotated left by N modulo their count: round N's
# order of the rows, so that every row takes every place in turn
rotate() {
	_rk=$(($1 % ($# - 1)))
	shift
	while [ "$_rk" -gt 0 ]; do
		_rf=$1
		shift
		set -- "$@" "$_rf"
		_rk=$((_rk - 1))
	done
	echo "$@"
}
