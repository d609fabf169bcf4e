# Shared helpers for the bats suite. Every wait is a bounded poll on a condition.
bats_require_minimum_version 1.5.0

common_setup() {
	SP_BIN=${SP_BIN:-$BATS_TEST_DIRNAME/../bin}
	TOOLS=$BATS_TEST_DIRNAME/bin
	export SP_BIN TOOLS
	PIDFILE=$BATS_TEST_TMPDIR/tracked.pids
	: >"$PIDFILE"
	# Tests work in a directory of their own, so "nothing was left" is an empty ls.
	mkdir -p "$BATS_TEST_TMPDIR/w"
	cd "$BATS_TEST_TMPDIR/w" || return 1
}

# Kill what the test started, by PID and process group, also when it failed.
common_teardown() {
	local pid
	[ -f "$PIDFILE" ] || return 0
	while read -r pid; do
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null || true
	done <"$PIDFILE"
	while read -r pid; do
		[ -n "$pid" ] || continue
		wait_gone "$pid" 6 || { kill -KILL "$pid" 2>/dev/null; kill -KILL -- "-$pid" 2>/dev/null; }
	done <"$PIDFILE"
	return 0
}

track() { # PID...
	local p
	for p in "$@"; do echo "$p" >>"$PIDFILE"; done
}

# wait_for SECONDS CMD...: run CMD every 20 ms until it succeeds; 1 on timeout.
wait_for() {
	local limit=$1 i=0
	shift
	local tries=$((limit * 50))
	while ! "$@"; do
		i=$((i + 1))
		[ "$i" -lt "$tries" ] || return 1
		sleep 0.02
	done
}

alive() { kill -0 "$1" 2>/dev/null && ! is_zombie "$1"; }
is_zombie() { [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }
gone() { ! alive "$1"; }
wait_gone() { wait_for "${2:-5}" gone "$1"; }

listening() { # PORT: something listens on that TCP port
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}
wait_listening() { wait_for "${2:-5}" listening "$1"; }
not_listening() { ! listening "$1"; }

unix_listening() { # PATH
	ss -Hlx 2>/dev/null | grep -qF " $1 "
}

file_has() { [ -s "$1" ]; }
is_fifo() { [ -p "$1" ]; }
wait_file() { wait_for "${2:-5}" file_has "$1"; }
exists() { [ -e "$1" ]; }
wait_exists() { wait_for "${2:-5}" exists "$1"; }

# lines_in FILE N: FILE has at least N lines; line_count_is FILE N: exactly N
lines_in() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
line_count_is() { [ -f "$1" ] && [ "$(wc -l <"$1")" -eq "$2" ]; }
# size_is FILE N: FILE has N bytes
size_is() { [ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ]; }
# sizes_sum_is N FILE...: the sizes of FILEs (one not there counts 0) add up to N
sizes_sum_is() {
	local n=$1 sum=0 f
	shift
	for f in "$@"; do sum=$((sum + $(stat -c %s "$f" 2>/dev/null || echo 0))); done
	[ "$sum" -eq "$n" ]
}
# logged LOG PATTERN: a line of LOG matches PATTERN (grep); no LOG yet is no match
logged() { grep -q -- "$2" "$1" 2>/dev/null; }
# log_head PROG: what begins a line of PROG in a -L file ("2026-12-06T13:45:02Z
# PROG[PID]: "), as an extended regular expression (grep -E, [[ =~ ]])
log_head() { printf '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z %s\\[[0-9]+\\]: ' "$1"; }

# Default range 20000-32000: valid for every PORT operand (1024-49151) and below
# the kernel's ephemeral range, so no outgoing connection takes it meanwhile.
free_port() { "$TOOLS/freeport" "$@"; }

# max_notsent: the most any connection in `ss -i` output (stdin) holds not
# sent yet in its kernel (ss's notsent:, absent when 0)
max_notsent() { grep -o 'notsent:[0-9]*' | cut -d: -f2 | sort -n | tail -n 1 | grep . || echo 0; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
zombies_of() { ps --ppid "$1" -o stat= 2>/dev/null | grep -c '^Z' || true; }
children_of() { ps --ppid "$1" -o pid= 2>/dev/null | tr -d ' '; }
# Processes in process group PGID.
group_members() { ps -e -o pgid=,pid= | awk -v g="$1" '$1 == g { print $2 }'; }
no_group() { [ -z "$(group_members "$1")" ]; }
no_children() { [ -z "$(children_of "$1")" ]; }
any_children() { [ -n "$(children_of "$1")" ]; }
child_count() { children_of "$1" | wc -l; }
child_count_is() { [ "$(child_count "$1")" -eq "$2" ]; } # PID N
# cpu_ticks PID: the CPU time PID has used, user and system, in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
fds_are() { [ "$(fd_count "$1")" -eq "$2" ]; } # PID N

# stderr_quiet PROG: $stderr is empty. A daemon that finds no syslog daemon
# on /dev/log says so to its log (syslog: nowhere), never to its caller.
stderr_quiet() { [ -z "$stderr" ]; }

# A raw control session with the pool (protocol version 2) on fd 5, for
# tests that speak the protocol themselves.
ctl_open() { exec 5<>"/dev/tcp/127.0.0.1/$1"; }
ctl_read() { IFS= read -r -t 5 -u 5 "$1"; }
# ctl_auth KEY: the proof of protocol version 2, and the pool's proof checked.
NM=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
STREAM=0123456789abcdef0123456789abcdef
ctl_auth() { # KEY
	local greet mac ok want
	ctl_read greet
	[[ "$greet" =~ ^SOCKETPOOL\ 2\ [0-9a-f]{64}$ ]]
	mac=$("$TOOLS/sha256test" hmac "$1" "socketpool 2 master ${greet##* } $NM")
	printf 'AUTH %s %s\n' "$mac" "$NM" >&5
	ctl_read ok
	want=$("$TOOLS/sha256test" hmac "$1" "socketpool 2 pool ${greet##* } $NM")
	[ "$ok" = "OK $want" ]
}

# The programs under test.
bind_input() { "$SP_BIN/bind-input" "$@"; }
bind_output() { "$SP_BIN/bind-output" "$@"; }

# first_form PROG: the first form of PROG's --help usage, its wrapped lines
# joined by single blanks: the synopsis a usage error repeats.
first_form() {
	"$SP_BIN/$1" --help | awk -v p="$1" '
		NR == 1 { sub(/^usage: /, ""); form = $0; next }
		$1 == p || $0 == "" { exit }
		{ $1 = $1; form = form " " $0 }
		END { print form }'
}

# usage_fails PROG MESSAGE ARGS...: PROG ARGS is a usage error: exit 2,
# nothing on stdout, "PROG: MESSAGE" first on stderr, the usage line next.
usage_fails() {
	local prog=$1 want=$2
	shift 2
	run --separate-stderr "$SP_BIN/$prog" "$@"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "$prog: $want" ]
	[[ "${stderr_lines[1]}" == "usage: $prog "* ]]
}

# start_detached PROG ARGS...: run PROG (bind-input, bind-output), which goes
# to the background by itself and prints its PID; sets PID, tracked.
start_detached() {
	local prog=$1
	shift
	PID=$("$SP_BIN/$prog" "$@")
	local rc=$?
	[ "$rc" -eq 0 ] || return "$rc"
	[[ "$PID" =~ ^[0-9]+$ ]] || return 1
	track "$PID"
}

# start_socket ARGS...: socket in the background, stdout to /dev/null and
# stderr to ./err; sets M, tracked.
start_socket() {
	"$SP_BIN/socket" "$@" 2>err >/dev/null &
	M=$!
	track "$M"
}

# start_pool ARGS... (KEY and PORT last): pool in the foreground of a
# background job, so that its exit status can be waited for, stderr to
# ./pool.err; sets POOL, tracked, and waits until it listens.
start_pool() {
	"$SP_BIN/pool" "$@" 2>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "${@: -1}"
}

# every_worker_runs PID NAME: every child of PID (the workers of socket -W)
# has a child named NAME (with -P: the program it prestarted)
every_worker_runs() {
	local w
	for w in $(children_of "$1"); do
		ps -o comm= --ppid "$w" | grep -qxF -- "$2" || return 1
	done
}

# need_node: the node modules of tests/node are installed (scripts/deps.sh).
need_node() {
	[ -f "$BATS_TEST_DIRNAME/node/node_modules/@richardhopton/noise-c.wasm/package.json" ] || {
		echo "tests/node/node_modules is missing: run scripts/deps.sh" >&2
		return 1
	}
}

# daemon DIR NAME BODY...: an executable shell script DIR/NAME (a daemon, a
# service or a client portion, for master and pool).
daemon() {
	local dir=$1 name=$2
	shift 2
	printf '#!/bin/sh\n%s\n' "$*" >"$dir/$name"
	chmod +x "$dir/$name"
}

# streamer NAME LINES: a daemon d/NAME that writes LINES numbered lines,
# pausing every 100 (cron.bats, net.bats; expect them as "NAME line N of the stream").
streamer() {
	daemon d "$1" "i=0; while [ \$i -lt $2 ]; do i=\$((i + 1)); echo \"$1 line \$i of the stream\"; [ \$((i % 100)) -ne 0 ] || sleep 0.05; done"
}

# send_text PORT TEXT: one connection to PORT, TEXT as is, then close.
send_text() { printf '%s' "$2" >"/dev/tcp/127.0.0.1/$1"; }

# reader BUFFER OUT: read a buffer continuously, across restarts of the pool
# (a FIFO that goes away is opened again once it is back), until "stop" exists;
# sets READER, tracked (cron.bats, net.bats).
reader() {
	(
		while [ ! -e stop ]; do
			if [ -p "$1" ]; then
				# A line a teardown cut (a slow reader mid-line when the pool
				# ended) goes on, unended: its rest comes after the restart.
				while :; do
					if IFS= read -r line; then
						printf '%s\n' "$line"
						continue
					fi
					printf '%s' "$line"
					break
				done <"$1"
			else
				sleep 0.02
			fi
		done >>"$2"
	) &
	READER=$!
	track "$READER"
}
