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
wait_file() { wait_for "${2:-5}" file_has "$1"; }
exists() { [ -e "$1" ]; }
wait_exists() { wait_for "${2:-5}" exists "$1"; }

# lines_in FILE N: FILE has at least N lines
lines_in() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# Default range 20000-32000: valid for every PORT operand (1024-49151) and below
# the kernel's ephemeral range, so no outgoing connection takes it meanwhile.
free_port() { "$TOOLS/freeport" "$@"; }

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
zombies_of() { ps --ppid "$1" -o stat= 2>/dev/null | grep -c '^Z' || true; }
children_of() { ps --ppid "$1" -o pid= 2>/dev/null | tr -d ' '; }
# Processes in process group PGID.
group_members() { ps -e -o pgid=,pid= | awk -v g="$1" '$1 == g { print $2 }'; }
no_group() { [ -z "$(group_members "$1")" ]; }
no_children() { [ -z "$(children_of "$1")" ]; }
fds_are() { [ "$(fd_count "$1")" -eq "$2" ]; } # PID N

# stderr_quiet PROG: $stderr is empty, but for the one line a daemon says
# before backgrounding when no syslog daemon listens on /dev/log (as in most
# containers) and no -L was given: without it, later messages would be lost
# without a word.
stderr_quiet() {
	[ -z "$stderr" ] && return 0
	[ ! -S /dev/log ] &&
		[ "$stderr" = "$1: no syslog daemon listens on /dev/log: messages from now on are lost (use -L FILE)" ]
}

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

# daemon DIR NAME BODY...: an executable shell script DIR/NAME (a daemon, a
# service or a client portion, for master and pool).
daemon() {
	local dir=$1 name=$2
	shift 2
	printf '#!/bin/sh\n%s\n' "$*" >"$dir/$name"
	chmod +x "$dir/$name"
}
