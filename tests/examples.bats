#!/usr/bin/env bats
# Every example in README.md and in the man pages' EXAMPLES, run or checked
# as it is written (issue 12). scripts/examples.sh takes every code block out
# of the documents mechanically (un-escaping mdoc as man prints it), so what
# runs is what a reader sees, and the two cannot drift.
#
# Which blocks: every code block of README.md (fenced or indented), and every
# .Bd -literal block of a man page's EXAMPLES section. How each is taken:
#   1. a marker on the line before it (see scripts/examples.sh) gives its
#      KIND and WORDs:   README.md  <!-- example: KIND [WORD...] -->
#                        man pages  .\" example: KIND [WORD...]
#   2. else its entry in LISTED below (document and first line): a KIND and
#      WORDs, or "skip" with the reason it cannot run as written;
#   3. else its look: "$ " lines are a shell session, "< "/"> " lines a
#      socketpool(7) session, "#!/bin/sh" or "#!/bin/bash" names its shell;
#      anything else runs under sh. So a new example, unmarked and unlisted,
#      is run as it stands: it passes once it runs as written, or the test
#      fails until it does, or until it is listed here with its reason.
# A LISTED entry that matches no block fails the test (it would hide nothing
# but rot).
#
# KIND and WORDs, and what this file does with the block:
#   sh, bash    Run under that shell (sh: dash, Debian's /bin/sh) to its end,
#               within EX_TIMEOUT seconds (default 30), in a private directory,
#               stdin /dev/null. It must exit 0; when it has "# prints: TEXT"
#               comments, print exactly those lines, in order; write nothing on
#               stderr but the notes below; and within 10 s leave no process
#               running (none with its working directory in the private one)
#               and no FIFO behind.
#     daemon    It starts daemons and leaves them running, as its reader
#               would: something must be running at its end; SIGTERM then
#               ends each of them, leaving nothing (no process, no FIFO).
#     service   A supervisor's run script: started under the shell, it must come
#               up (every port it names listens) and stay; SIGTERM must end it
#               with status 143, leaving nothing behind. Its stdout may be
#               empty or the program's PID.
#     part      Run only by the scenario test that names its id (PARTS below).
#     fragment np nm key
#               A piece of a script using those variables: the master's proof
#               of socketpool(7). Run with them set, it must print the HMAC our
#               own implementation computes (tests/bin/sha256test); the session
#               transcript of the same page is replayed with it.
#     id=NAME   Names the block for a scenario test.
#     What the reader is assumed to have, made before the block runs:
#     dir=PATH  a directory;  file=PATH  a file of 32 random bytes (a key
#               will do); sink=PORT  a receiver on that port, which takes
#               whatever is sent to it (the "remote host"); pool=PORT  a
#               pool -l on that port, with the key of the first file= (else
#               k12), offering the services of services=DIR if given;
#               daemons=DIR  a daemons directory with one daemon, dem1,
#               printing a line a second; zip=PATH  a zip archive of text
#               files, some of which examples/rsi/implodable lets leave;
#               exe=NAME  the reader's own program, a stand-in that sends its
#               input back (a bare NAME is put on PATH).
#   crontab     Lines of a crontab. Each is a NAME=value assignment or a
#               schedule (five valid fields, or @daily and the like) and a
#               command that has no unescaped % and parses under sh -n, whose
#               calls of our programs use only options of their synopsis
#               (from --help) with the right number of operands, and which
#               finds them: a PATH= line holding /usr/local/bin (cron's own PATH
#               is /usr/bin:/bin). The README's crontabs are also run, as cron
#               runs them, in the scenario tests below.
#   transcript  "> line" and "< line": a control connection of socketpool(7),
#               replayed against a real pool (what the page sends is sent, the
#               proof made with the page's fragment); every answer must have the
#               shape shown: the same words, where the page elides hex digits
#               ("9f2c...(64 hex digits)...e1") as many, numbers as numbers.
#               "$ command" lines and the output after them: a shell session,
#               run under sh like an sh block that prints that output; the
#               output of "$ cat FILE" is FILE's text, made before the run.
#   make        Lines "make TARGET...": each target exists (make -n); the demo
#               is run by the tests at the end.
#   skip        Not run: the rest of the entry says why.
#
# Substitutions, made in a block's text (comments and "# prints:" included)
# before it runs, only where an example needs a real peer or a system path:
#   - the host names poolhost, collector, receiver, remotehost,
#     receiver.example and host -> 127.0.0.1 (only loopback is used)
#   - the numbers 7000-7999 and 9000-9999 (whole words) are ports: each
#     becomes a free port chosen at run time, the same one wherever the
#     number recurs in the block (or scenario); examples use no such number
#     for anything else
#   - absolute paths under /etc/, /var/, /run/ and /tmp/ move into the
#     private directory's root/, which has etc, var/log, var/spool, run and
#     tmp, as a real root has; deeper directories the example makes, or its
#     dir= word
#   - /usr/local/bin (a crontab's PATH) -> the built programs' directory,
#     then the scenario's stubs
#   - a line that is only "..." (the reader's own work) -> ":"
# and the environment is HOME (the private directory), PATH (the built
# programs first, then /usr/bin:/bin, then the private directory's stubs)
# and TMPDIR (root/tmp) only. The private directory has a copy of the
# repository's examples/, as the checkout a reader runs the examples in has.
#
# The notes allowed on stderr: pool's warning about a short key (the k12
# of the seed's examples), and a foreground pool's one line once it listens.
# A daemon that finds no syslog daemon says so to its log, not to its caller.
load helpers

REPO=$BATS_TEST_DIRNAME/..
EXTRACT="sh $REPO/scripts/examples.sh"
DOCS="README.md man/socket.1 man/bind-input.1 man/bind-output.1 man/pool.1 man/master.1 man/socketpool.7"
# Blocks of kind "part", each run by a scenario test below.
PARTS="collector-reader pool-seed-pool pool-seed-master pool-seed-reader master-seed master-seed-reader"
# Unmarked blocks: DOCUMENT, tab, the block's first line as man prints it, tab,
# KIND [WORD...] (or "skip"), and for a skip, tab, the reason.
LISTED=$(
	cat <<'EOF'
man/socket.1	socket -p cat -l -f -B localhost -s 7000	sh service
man/socket.1	socket -s -l -f -p 'process' 7001          # on the server	skip	two hosts, and "process" and "files" stand for the reader's own program and files; the README's tour runs the same pair on one host (socket -b, gzip -c)
man/socket.1	socket -c -r mailhost smtp	skip	needs a mail server on a real host, port 25
man/socket.1	socket -s -l -f -p ./handler /run/myapp.sock	sh service exe=./handler
man/socket.1	$ socket -B 127.0.0.1 -s 4000 -b -f -q -l -W 4 \	skip	scgi-wrapper and /srv/app.cgi stand for the reader's own programs; tests/socket-prefork.bats serves SCGI the same way
man/socket.1	$ pid=$(socket -b -B localhost -s 4000 -W 4 -p app)	skip	app stands for the reader's program, and install into /usr/local/bin needs root
man/socket.1	$ pid=$(socket -b -s -W 2:32 -P -I 60 -p handler /run/app.sock)	transcript daemon exe=handler
man/bind-input.1	bind-input -1 -R -k @key in 9000 >/dev/null && tar x < in	skip	two hosts: the receiver's line waits for the sender's; tests/channel.bats runs the same pair (tar c dir | socket -k into bind-input -k)
man/bind-input.1	bind-input -a -L /var/log/spool.log /var/spool/app/incoming 7300	sh daemon dir=/var/spool/app
man/bind-input.1	exec bind-input -F -L /var/log/in1.log /run/app/in1 9999	sh service dir=/run/app
man/bind-output.1	pid=$(bind-output out1 receiver.example 9999) || exit 1	sh sink=9999
man/bind-output.1	pid=$(bind-output -r -L /tmp/out.log logs collector 7100) || exit 1	sh daemon sink=7100 file=/var/log/app.log
man/bind-output.1	pid=$(bind-output bulk host 7200) && cat big.tar > bulk && kill "$pid"	sh sink=7200 file=big.tar
man/pool.1	pid=$(pool -b -l -r 40000-40099 -d /var/spool/pool \	sh dir=/var/spool/pool file=/etc/pool.key
man/master.1	pid=$(master -b -L master.log @$HOME/.pool.key poolhost 9000 ./daemons)	sh file=.pool.key pool=9000 daemons=daemons
man/socketpool.7	printf 'socketpool 2 master %s %s' "$np" "$nm" |	sh fragment np nm key
man/socketpool.7	< SOCKETPOOL 3 noise	skip	version 3's handshake messages are binary (shown in brackets); tests/pool.bats and tests/pool-v3.bats speak it, and the same lines are replayed in version 2 (-U)
man/pool.1	pool k12 9000	sh part id=pool-seed-pool
man/pool.1	master k12 poolhost 9000 ./daemons	sh part id=pool-seed-master
man/pool.1	while read -r line; do echo "dem1 says $line"; done < dem1	sh part id=pool-seed-reader
man/master.1	$ cat daemons/dem1	transcript part id=master-seed
README.md	head -c 32 /dev/urandom > key && chmod 600 key              # both machines, once	sh daemon zip=in.zip
man/pool.1	pool -l -x examples/rsi/server -R 300 -S 4 @key 9000	sh service file=key
man/pool.1	examples/rsi/pack in.zip examples/rsi/implodable |	sh file=key pool=9000 services=examples/rsi/server zip=in.zip
man/master.1	examples/rsi/pack in.zip examples/rsi/implodable |	sh file=key pool=9000 services=examples/rsi/server zip=in.zip
man/master.1	RSI_ZIP=$PWD/in.zip RSI_OUT=$PWD/out.zip \	sh file=key pool=9000 services=examples/rsi/server zip=in.zip
man/master.1	while read -r line; do echo "got $line"; done < dem1	sh part id=master-seed-reader
EOF
)
EX_TIMEOUT=${EX_TIMEOUT:-30}
OURS="socket bind-input bind-output pool master"

setup() {
	common_setup
	EX_N=0
	PORTMAP=$BATS_TEST_TMPDIR/portmap
	: >"$PORTMAP"
	EX_SH=$(command -v dash || echo sh)
}
teardown() {
	common_teardown
	local p
	# Whatever an example left running, by PID (the checks already failed),
	# and a demo's pool and master (they work in the repository).
	for p in $(procs_in "$BATS_TEST_TMPDIR") $(pgrep -f -- "$BATS_TEST_TMPDIR/"); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

# ---- the private directory, substitutions, and what is left behind ----

new_dir() { # sets X: a fresh private directory with a root of system directories
	EX_N=$((EX_N + 1))
	X=$BATS_TEST_TMPDIR/ex$EX_N
	mkdir -p "$X/root/etc" "$X/root/var/log" "$X/root/var/spool" "$X/root/run" "$X/root/tmp" "$X/stubs"
	# A reader runs the examples in the checkout: examples/ is there (a copy,
	# so that what runs in it works in the private directory).
	cp -R "$REPO/examples" "$X/examples"
}

# port_for N: the free port that stands for N in this test (chosen once).
port_for() {
	local old new
	while read -r old new; do
		[ "$old" != "$1" ] || { echo "$new"; return; }
	done <"$PORTMAP"
	while :; do
		new=$(free_port)
		grep -q " $new\$" "$PORTMAP" || break
	done
	echo "$1 $new" >>"$PORTMAP"
	echo "$new"
}

# subst FILE: the block's text with the substitutions made, on stdout.
subst() {
	local n script=""
	B='(^|[^A-Za-z0-9_./-])'
	E='([^A-Za-z0-9_.-]|$)'
	for n in $(grep -oE "$B(7[0-9]{3}|9[0-9]{3})$E" "$1" | grep -oE '[79][0-9]{3}' | sort -u); do
		script="$script;s/$B$n$E/\\1$(port_for "$n")\\2/g"
	done
	# Twice: a match takes the character after it, which may start the next one.
	sed -E "$script$script
		s/$B(poolhost|collector|receiver\\.example|receiver|remotehost|host)$E/\\1127.0.0.1\\3/g
		s/$B(poolhost|collector|receiver\\.example|receiver|remotehost|host)$E/\\1127.0.0.1\\3/g
		s#(^|[^A-Za-z0-9_.~/-])/(etc/|var/|run/|tmp/)#\\1$X/root/\\2#g
		s#/usr/local/bin#$SP_BIN:$X/stubs#g
		s/^([[:space:]]*)\\.\\.\\.$/\\1:/" "$1"
}

# procs_in DIR [EXCEPT...]: live processes working in DIR, but for the PIDs
# given. Our programs keep the directory they were started in (master's
# daemons work in their DDIR, here also in the private directory), so this
# finds all an example started, and nothing of another test's, even one
# running the same programs at the same time.
procs_in() {
	local dir=$1 p
	shift
	(cd / && find /proc -mindepth 2 -maxdepth 2 -name cwd \
		\( -lname "$dir" -o -lname "$dir/*" \) 2>/dev/null) |
		cut -d/ -f3 | sort -u | while read -r p; do
			case " $* self thread-self $$ $BASHPID " in *" $p "*) continue ;; esac
			alive "$p" && echo "$p"
		done
}
nothing_runs() { [ -z "$(procs_in "$X" $EX_BEFORE)" ]; }

# left_behind: 0 when nothing runs (within 10 s) and no FIFO is left; else
# says what, and ends it.
left_behind() {
	local p fifos rc=0
	if ! wait_for 10 nothing_runs; then
		echo "  left running:"
		for p in $(procs_in "$X" $EX_BEFORE); do
			echo "    $(ps -o pid=,args= -p "$p")"
			kill -TERM "$p" 2>/dev/null
		done
		rc=1
	fi
	fifos=$(find "$X" -type p)
	if [ -n "$fifos" ]; then
		echo "  FIFOs left: $fifos"
		rc=1
	fi
	return $rc
}

# stderr_ok FILE: nothing but the allowed notes.
stderr_ok() {
	! grep -vE '^pool: (warning: the key is [0-9]+ bytes: |listening on ([^ ]+ )?port [0-9]+$)' "$1" >/dev/null
}

shell_of() { # KIND: the program that runs it
	case $1 in
	sh) echo "$EX_SH" ;;
	bash) echo bash ;;
	*) return 1 ;;
	esac
}

# in_env CMD...: CMD in the private directory with the examples' environment.
in_env() {
	(cd "$X" && exec env -i HOME="$X" PATH="$SP_BIN:/usr/bin:/bin:$X/stubs" TMPDIR="$X/root/tmp" "$@")
}

show() { # FILE TITLE: a file's text, indented, for a failure report
	echo "  $2:"
	sed 's/^/    | /' "$1"
}

# ---- the checks, one function per kind; each returns 1 and says why ----

# map_path PATH: where a path of the documents lives in the private directory.
map_path() {
	case $1 in
	/etc/* | /var/* | /run/* | /tmp/*) echo "$X/root$1" ;;
	/*) echo "$1" ;;
	*) echo "$X/$1" ;;
	esac
}

# prepare WORDS: make what the block's words say its reader has (dir=, file=,
# daemons=, sink=, pool=); the peers' PIDs go to EX_PEERS, not to the block.
prepare() {
	local w path port pid key=k12 p services=""
	EX_PEERS=""
	for w in "$@"; do
		case $w in
		dir=*) mkdir -p "$(map_path "${w#dir=}")" ;;
		file=*)
			path=$(map_path "${w#file=}")
			mkdir -p "${path%/*}"
			head -c 32 /dev/urandom >"$path"
			chmod 600 "$path"
			[ "$key" != k12 ] || key=@$path
			;;
		zip=*)
			# A site's archive: text files with CRLF line ends and trailing
			# blanks, in members examples/rsi/implodable lets leave and not.
			path=$(map_path "${w#zip=}")
			mkdir -p "$X/.zip/site" "$X/.zip/certs"
			printf '<p>hello</p>  \r\n' >"$X/.zip/site/index.html"
			printf 'notes \r\nmore\r\n' >"$X/.zip/notes.txt"
			printf 'secret\n' >"$X/.zip/certs/site.pem"
			(cd "$X/.zip" && zip -q -r "$path" site notes.txt certs) || return 1
			rm -rf "$X/.zip"
			;;
		services=*) services=$(map_path "${w#services=}") ;;
		exe=*)
			# The reader's own program: a stand-in that answers its input.
			# A bare name is found on PATH (the private directory's stubs).
			path=${w#exe=}
			case $path in */*) path=$(map_path "$path") ;; *) path=$X/stubs/$path ;; esac
			mkdir -p "${path%/*}"
			printf '#!/bin/sh\nexec cat\n' >"$path"
			chmod +x "$path"
			;;
		daemons=*)
			path=$(map_path "${w#daemons=}")
			mkdir -p "$path"
			printf '#!/bin/sh\nwhile :; do echo "$DAEMON_NAME up"; sleep 1; done\n' >"$path/dem1"
			chmod +x "$path/dem1"
			;;
		esac
	done
	for w in "$@"; do
		case $w in
		sink=*)
			port=$(port_for "${w#sink=}")
			pid=$(cd / && "$SP_BIN/socket" -b -s -l -f -p "cat >>'$X/.sink.$port'" "$port") || return 1
			;;
		pool=*)
			port=$(port_for "${w#pool=}")
			mkdir -p "$X.pool"
			pid=$(cd / && "$SP_BIN/pool" -b -l -d "$X.pool" -L "$X.pool.log" ${services:+-x "$services"} \
				"$key" "$port" 2>/dev/null) || return 1
			;;
		*) continue ;;
		esac
		track "$pid"
		EX_PEERS="$EX_PEERS $pid"
	done
	for p in $EX_PEERS; do EX_BEFORE="$EX_BEFORE $p"; done
}
release() { # end the peers prepare started
	local p
	for p in $EX_PEERS; do kill -TERM "$p" 2>/dev/null; done
	for p in $EX_PEERS; do wait_gone "$p" 10 || kill -KILL "$p" 2>/dev/null; done
	EX_PEERS=""
}

# run_script SHELL FILE [WORD...]: run a block to its end and check what it
# did (with the word "daemon": what it left running, then ends it).
run_script() {
	local shell=$1 src=$2 rc=0 bad=0 p left
	shift 2
	new_dir
	subst "$src" >"$X/.example"
	sed -n -E 's/^(.*[[:space:]])?#[^#]*prints: (.*)$/\2/p' "$X/.example" >"$X/.expected"
	EX_BEFORE=$(procs_in "$X")
	prepare "$@" || { echo "  could not make what the example assumes: $*"; release; return 1; }
	in_env timeout -k 5 "$EX_TIMEOUT" "$shell" .example </dev/null >"$X/.out" 2>"$X/.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		[ "$rc" -eq 124 ] && echo "  timed out after $EX_TIMEOUT s" || echo "  exit status $rc"
		bad=1
	fi
	# No "# prints:" comment: what it prints is not checked (errors go to stderr).
	if [ -s "$X/.expected" ] && ! cmp -s "$X/.expected" "$X/.out"; then
		echo "  stdout is not what the example says it prints:"
		diff "$X/.expected" "$X/.out" | head -20 | sed 's/^/    /'
		bad=1
	fi
	if ! stderr_ok "$X/.err"; then
		echo "  stderr:"
		head -c 2000 "$X/.err" | head -20 | sed 's/^/    | /'
		bad=1
	fi
	if [[ " $* " == *" daemon "* ]]; then
		left=$(procs_in "$X" $EX_BEFORE)
		[ -n "$left" ] || { echo "  a daemon example that left nothing running"; bad=1; }
		for p in $left; do kill -TERM "$p" 2>/dev/null; done
	fi
	left_behind || bad=1
	release
	rm -f "$X/.example" "$X/.expected" "$X/.out" "$X/.err"
	return $bad
}

ports_listen() { # FILE: every port, and every *.sock, the (substituted) block names listens
	local old new sock
	while read -r old new; do
		grep -qw "$new" "$1" || continue
		listening "$new" || return 1
	done <"$PORTMAP"
	for sock in $(grep -oE "$X/[^[:space:]\"')]*\.sock" "$1"); do
		unix_listening "$sock" || return 1
	done
}

# run_service SHELL FILE [WORD...]: a run script that stays until SIGTERM.
run_service() {
	local shell=$1 src=$2 rc=0 bad=0 pid out
	shift 2
	new_dir
	subst "$src" >"$X/.example"
	EX_BEFORE=$(procs_in "$X")
	prepare "$@" || { echo "  could not make what the example assumes: $*"; release; return 1; }
	# A process group of its own, as a supervisor gives it (and a terminal a
	# foreground job): SIGTERM goes to the group, so a script that runs the
	# server without exec is stopped whole.
	(cd "$X" && exec setsid env -i HOME="$X" PATH="$SP_BIN:/usr/bin:/bin:$X/stubs" TMPDIR="$X/root/tmp" \
		"$shell" .example) </dev/null >"$X/.out" 2>"$X/.err" &
	pid=$!
	track "$pid"
	if ! wait_for 10 ports_listen "$X/.example" || ! alive "$pid"; then
		echo "  did not come up and stay"
		bad=1
	fi
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	wait_gone "$pid" 10 || { echo "  SIGTERM did not end it in 10 s"; kill -KILL "$pid"; bad=1; }
	wait "$pid" || rc=$?
	[ "$rc" -eq 143 ] || { echo "  SIGTERM: exit status $rc, not 143"; bad=1; }
	out=$(cat "$X/.out")
	[ -z "$out" ] || [ "$out" = "$pid" ] || { show "$X/.out" stdout; bad=1; }
	# What it says of the SIGTERM that stopped it is no fault.
	grep -vE '^(socket|bind-input|bind-output|pool|master): signal 15: ' "$X/.err" >"$X/.err2" || true
	stderr_ok "$X/.err2" || { show "$X/.err" stderr; bad=1; }
	left_behind || bad=1
	release
	rm -f "$X/.example" "$X/.out" "$X/.err" "$X/.err2"
	return $bad
}

# The synopsis of one of our programs, from its --help: "FLAGS ARGFLAGS OPERANDS"
# (flags without and with an argument, and the number of operands).
synopsis() {
	"$SP_BIN/$1" --help 2>&1 | awk -v p="$1" '
		NR == 1 { sub(/^usage: [^ ]+ /, ""); s = $0; next }
		$1 == p { exit }
		/^[ \t]+\[|^[ \t]+[A-Za-z]/ && !/^[ \t]+-/ { s = s " " $0; next }
		{ exit }
		END {
			n = split(s, w, /[ \t]+/)
			for (i = 1; i <= n; i++) {
				if (w[i] ~ /^\[-[^ \]]+\]$/) { f = f substr(w[i], 3, length(w[i]) - 3); continue }
				if (w[i] ~ /^\[-.$/) { a = a substr(w[i], 3, 1); i++; continue }
				if (w[i] ~ /^[A-Za-z]/) ops++
			}
			printf "%s %s %d\n", f, a, ops
		}'
}

# check_call PROG WORD...: the words after PROG are valid for its synopsis.
check_call() {
	local prog=$1 flags args want w i c ops=0 dashdash=0
	shift
	read -r flags args want <<<"$(synopsis "$prog")"
	while [ $# -gt 0 ]; do
		w=$1
		shift
		if [ $dashdash -eq 0 ] && [ "$w" = -- ]; then dashdash=1; continue; fi
		if [ $dashdash -eq 1 ] || [ "${w#-}" = "$w" ] || [ "$w" = - ]; then ops=$((ops + 1)); continue; fi
		for ((i = 1; i < ${#w}; i++)); do
			c=${w:i:1}
			if [[ "$flags" == *"$c"* ]]; then continue; fi
			if [[ "$args" == *"$c"* ]]; then
				[ $((i + 1)) -lt ${#w} ] && break
				[ $# -gt 0 ] || { echo "  $prog: -$c needs an argument"; return 1; }
				shift
				break
			fi
			echo "  $prog: no option -$c in its synopsis"
			return 1
		done
	done
	[ "$ops" -eq "$want" ] || { echo "  $prog: $ops operands, its synopsis has $want"; return 1; }
}

cron_field() { # VALUE LO HI [NAMES]: one field of a schedule is valid
	local part lo=$2 hi=$3 names=${4:-} a b step
	local IFS=, -
	set -f # "*" is a field, not a pattern
	for part in $1; do
		step=${part#*/}
		[ "$step" = "$part" ] || { [[ "$step" =~ ^[0-9]+$ ]] || return 1; part=${part%%/*}; }
		[ "$part" = '*' ] && continue
		if [ -n "$names" ] && [[ " $names " == *" ${part,,} "* ]]; then continue; fi
		a=${part%-*} b=${part#*-}
		[[ "$a" =~ ^[0-9]+$ && "$b" =~ ^[0-9]+$ ]] || return 1
		[ "$a" -ge "$lo" ] && [ "$b" -le "$hi" ] && [ "$a" -le "$b" ] || return 1
	done
}

# cron_commands FILE: the commands of a crontab's schedule lines, one a line,
# with \% back to %, as cron gives them to sh.
cron_commands() {
	awk '/^[ \t]*(#|$)/ || /^[A-Za-z_][A-Za-z0-9_]*=/ { next }
		/^@/ { sub(/^@[a-z]+[ \t]+/, ""); gsub(/\\%/, "%"); print; next }
		{ for (i = 1; i <= 5; i++) sub(/^[^ \t]+[ \t]+/, ""); gsub(/\\%/, "%"); print }' "$1"
}

check_crontab() { # FILE
	local src=$1 line cmd bad=0 f path="" seg w prog
	while IFS= read -r line; do
		case $line in '' | '#'*) continue ;; esac
		if [[ "$line" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; then
			[[ "$line" != PATH=* ]] || path=${line#PATH=}
			continue
		fi
		if [[ "$line" =~ ^@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)[[:space:]]+(.*)$ ]]; then
			cmd=${BASH_REMATCH[2]}
		else
			read -r -a f <<<"$line"
			if [ "${#f[@]}" -lt 6 ] ||
				! cron_field "${f[0]}" 0 59 || ! cron_field "${f[1]}" 0 23 ||
				! cron_field "${f[2]}" 1 31 ||
				! cron_field "${f[3]}" 1 12 "jan feb mar apr may jun jul aug sep oct nov dec" ||
				! cron_field "${f[4]}" 0 7 "sun mon tue wed thu fri sat"; then
				echo "  not a valid schedule: $line"
				bad=1
				continue
			fi
			cmd=$(sed -E 's/^([^[:space:]]+[[:space:]]+){5}//' <<<"$line")
		fi
		if [[ "$(sed 's/\\%//g' <<<"$cmd")" == *%* ]]; then
			echo "  an unescaped % (cron makes it a newline): $cmd"
			bad=1
		fi
		cmd=${cmd//\\%/%}
		sh -n -c "$cmd" 2>/dev/null || { echo "  does not parse under sh: $cmd"; bad=1; continue; }
		# Each simple command; our programs' words checked against their synopsis.
		while IFS= read -r seg; do
			mapfile -t w < <(xargs -n1 printf '%s\n' <<<"$seg" 2>/dev/null)
			while [ ${#w[@]} -gt 0 ]; do
				case ${w[0]} in
				timeout) w=("${w[@]:2}") ;;
				nice | exec | env | nohup) w=("${w[@]:1}") ;;
				*=*) w=("${w[@]:1}") ;;
				*) break ;;
				esac
			done
			[ ${#w[@]} -gt 0 ] || continue
			prog=${w[0]}
			case " $OURS " in *" $prog "*) ;; *) continue ;; esac
			check_call "$prog" "${w[@]:1}" || bad=1
			if [[ ":$path:" != *:/usr/local/bin:* ]]; then
				echo "  calls $prog by name without a PATH= line holding /usr/local/bin"
				bad=1
			fi
		done < <(sed -E 's/&&|\|\||[;&|]/\n/g' <<<"$cmd")
	done <"$src"
	return $bad
}

check_make() { # FILE
	local line words bad=0 t
	while IFS= read -r line; do
		line=${line%%#*}
		read -r -a words <<<"$line"
		[ ${#words[@]} -gt 0 ] || continue
		[ "${words[0]}" = make ] || { echo "  not a make command: $line"; bad=1; continue; }
		for t in "${words[@]:1}"; do
			[[ "$t" == *=* || "$t" == -* ]] && continue
			make -n -C "$REPO" "$t" >/dev/null 2>&1 || { echo "  make has no target $t"; bad=1; }
		done
	done <"$1"
	return $bad
}

# proof_with FRAGMENT NP NM KEY: what the page's fragment prints.
proof_with() {
	in_env np="$2" nm="$3" key="$4" "$EX_SH" -c "$(cat "$1")" 2>/dev/null
}
hex64() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

check_fragment() { # FILE WORDS
	local np nm want got
	[ "$2" = "np nm key" ] || { echo "  no harness for a fragment of $2"; return 1; }
	command -v openssl >/dev/null || { echo "  (openssl not installed: not run)"; return 0; }
	new_dir
	np=$(hex64) nm=$(hex64)
	want=$("$TOOLS/sha256test" hmac k12 "socketpool 2 master $np $nm")
	got=$(proof_with "$1" "$np" "$nm" k12)
	[ "$got" = "$want" ] || { echo "  the proof is $got, not $want"; return 1; }
}

# shape_ok DOC REAL: an answer of the pool has the shape the page shows.
shape_ok() {
	local -a d r
	local i dw rw n
	read -r -a d <<<"$(sed -E 's/[0-9a-f]*\.\.\.\(([0-9]+) hex digits\)\.\.\.[0-9a-f]*/<hex\1>/g' <<<"$1")"
	read -r -a r <<<"$2"
	[ ${#d[@]} -eq ${#r[@]} ] || return 1
	for ((i = 0; i < ${#d[@]}; i++)); do
		dw=${d[i]} rw=${r[i]}
		if [[ "$dw" =~ ^\<hex([0-9]+)\>$ ]]; then
			n=${BASH_REMATCH[1]}
			[[ "$rw" =~ ^[0-9a-f]{$n}$ ]] || return 1
		elif [[ "$dw" =~ ^[0-9]+$ ]]; then
			[[ "$rw" =~ ^[0-9]+$ ]] || return 1
		elif [[ "$dw" =~ ^[0-9a-f]{16,}$ ]]; then
			[[ "$rw" =~ ^[0-9a-f]{${#dw}}$ ]] || return 1
		else
			[ "$dw" = "$rw" ] || return 1
		fi
	done
}

# replay_session FILE FRAGMENT: a control connection as the page shows it.
# A part of a session (one that does not begin with the pool's greeting)
# comes after the handshake, made first. A service the page calls (CALL
# NAME) is there, a program that sends its input back; its caller sends the
# token's line and a line of input, and half-closes, as master -c does.
replay_session() {
	local src=$1 frag=$2 port line real np="" nm mac bad=0 t name
	local -a grants=() calls=()
	[ -n "$frag" ] || { echo "  no fragment to make the proof with"; return 1; }
	command -v openssl >/dev/null || { echo "  (openssl not installed: not run)"; return 0; }
	new_dir
	EX_BEFORE=$(procs_in "$X")
	if [ "$(head -c 13 "$src")" != "< SOCKETPOOL " ]; then
		printf '%s\n' '< SOCKETPOOL 2 00...(64 hex digits)...00' '> AUTH 00...(64 hex digits)...00 00...(64 hex digits)...00' \
			'< OK 00...(64 hex digits)...00' >"$X/.session"
	fi
	cat "$src" >>"$X/.session"
	mkdir "$X/services"
	for name in $(sed -n 's/^> CALL \([^ ]*\) .*/\1/p' "$src"); do
		printf '#!/bin/sh\nexec cat\n' >"$X/services/$name"
		chmod +x "$X/services/$name"
	done
	port=$(free_port)
	# -U: the sessions replayed are version 2's, the plain text variant (the
	# lines of version 3 are the same, inside the channel, which a shell cannot speak).
	(cd "$X" && exec "$SP_BIN/pool" -U -l -x "$X/services" k12 "$port") </dev/null >/dev/null 2>"$X/pool.err" &
	local pool=$!
	track "$pool"
	wait_listening "$port" || { echo "  no pool"; return 1; }
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	while IFS= read -r line; do
		case $line in
		'< '*)
			real=""
			IFS= read -r -t 5 -u 5 real || true
			shape_ok "${line#< }" "$real" || { echo "  the page shows: ${line#< }"; echo "  the pool said:  $real"; bad=1; break; }
			case $real in SOCKETPOOL*) np=${real##* } ;; GRANT*) grants+=("$real") ;; esac
			;;
		'> AUTH '*)
			nm=$(hex64)
			mac=$(proof_with "$frag" "$np" "$nm" k12)
			printf 'AUTH %s %s\n' "$mac" "$nm" >&5
			;;
		'> END')
			echo END >&5
			# The senders, on the ports granted, each with its token.
			for t in "${grants[@]}"; do
				read -r _ name gport token _ <<<"$t"
				if [[ " ${calls[*]} " == *" $name "* ]]; then
					printf '%s\nline\n' "$token" | timeout 10 "$SP_BIN/socket" 127.0.0.1 "$gport" >"$X/$name.out" ||
						{ echo "  the call of $name failed"; bad=1; }
					[ "$(cat "$X/$name.out")" = line ] || { echo "  $name did not answer its input"; bad=1; }
					continue
				fi
				exec 6<>"/dev/tcp/127.0.0.1/$gport"
				printf '%s\nline\n' "$token" >&6
				exec 6>&-
			done
			;;
		'> CALL '*)
			read -r _ _ name _ <<<"$line"
			calls+=("$name")
			printf '%s\n' "${line#> }" >&5
			;;
		'> '*) printf '%s\n' "${line#> }" >&5 ;;
		*) echo "  not a line of a session: $line"; bad=1; break ;;
		esac
	done <"$X/.session"
	exec 5>&-
	kill -TERM "$pool"
	wait_gone "$pool" 10 || kill -KILL "$pool"
	wait "$pool" || true
	if [ $bad -eq 1 ]; then show "$X/pool.err" "the pool's log"; fi
	left_behind || bad=1
	return $bad
}

# A shell session: "$ command" lines (continued after a trailing \), the rest
# the output; run as a script that prints that output. The output of
# "$ cat FILE" is the text of FILE: the script makes it first.
transcript_script() { # FILE: the session as a script, on stdout
	awk '
		function end_cat(   i) {
			if (f == "") return
			print "cat > " f " <<\047EX_CAT_EOF\047"
			for (i = 1; i <= n; i++) print out[i]
			print "EX_CAT_EOF"
			if (out[1] ~ /^#!/) print "chmod +x " f
			print "cat " f
			for (i = 1; i <= n; i++) print "# prints: " out[i]
			f = ""; n = 0
		}
		cont { print; cont = /\\$/; next }
		/^\$ / {
			end_cat()
			sub(/^\$ /, "")
			if ($0 ~ /^cat [^ |;&<>]+$/) {
				f = substr($0, 5); d = f
				if (sub(/\/[^\/]*$/, "", d)) print "mkdir -p " d
				next
			}
			print; cont = /\\$/; next
		}
		f != "" { out[++n] = $0; next }
		{ print "# prints: " $0 }
		END { end_cat() }' "$1"
}
check_shell_transcript() { # SHELL FILE WORD...
	local shell=$1 src=$2
	shift 2
	transcript_script "$src" >"$BATS_TEST_TMPDIR/tr.sh"
	run_script "$shell" "$BATS_TEST_TMPDIR/tr.sh" "$@"
}

# resolved DOC: its blocks as "FILE LINE KIND WORD...", an unmarked block's
# kind taken from LISTED or from its look (see the top of this file).
resolved() {
	local file line kind words first entry
	while read -r file line kind words; do
		if [ "$kind" = - ]; then
			first=$($EXTRACT extract "$file" "$line" | grep -m1 -v '^[[:space:]]*$')
			entry=$(D=$file F=$first awk -F '\t' '$1 == ENVIRON["D"] && $2 == ENVIRON["F"] { print $3; exit }' <<<"$LISTED")
			if [ -n "$entry" ]; then
				kind=${entry%% *} words=""
				[ "$kind" = "$entry" ] || words=${entry#* }
			else
				kind=$(look_of "$file" "$line") words=""
			fi
		fi
		echo "$file $line $kind${words:+ $words}"
	done < <($EXTRACT list "$1")
}
look_of() { # FILE LINE: the kind an unlisted, unmarked block has by its look
	local b
	b=$($EXTRACT extract "$1" "$2")
	if grep -q '^[<>] ' <<<"$b"; then echo transcript
	elif grep -q '^\$ ' <<<"$b"; then echo transcript
	elif [[ "$(head -n 1 <<<"$b")" =~ ^\#!(/usr/bin/env\ |/usr/bin/|/bin/)bash ]]; then echo bash
	else echo sh
	fi
}
skip_reason() { # FILE LINE: the reason LISTED gives for not running it
	local first
	first=$($EXTRACT extract "$1" "$2" | grep -m1 -v '^[[:space:]]*$')
	D=$1 F=$first awk -F '\t' '$1 == ENVIRON["D"] && $2 == ENVIRON["F"] { print $4; exit }' <<<"$LISTED"
}

# check_block DOC LINE KIND WORDS...: one block, by its kind.
check_block() {
	local doc=$1 line=$2 kind=$3 words src shell
	shift 3
	words=$*
	src=$BATS_TEST_TMPDIR/block
	$EXTRACT extract "$doc" "$line" >"$src" || return 1
	case " $words " in
	*" part "*)
		local id=${words##*id=}
		id=${id%% *}
		[[ " $PARTS " == *" $id "* ]] || { echo "  a part no scenario test runs: $id"; return 1; }
		echo "  run by the scenario test of $id"
		return 0
		;;
	esac
	case $kind in
	sh | bash)
		shell=$(shell_of "$kind")
		case " $words " in
		*" fragment "*) check_fragment "$src" "$(sed -E 's/.*fragment //; s/ id=[^ ]*//' <<<"$words")" ;;
		*" service "*) run_service "$shell" "$src" "$@" ;;
		*) run_script "$shell" "$src" "$@" ;;
		esac
		;;
	crontab) check_crontab "$src" ;;
	make) check_make "$src" ;;
	transcript)
		if grep -q '^[<>] ' "$src"; then
			local fl frag=""
			fl=$(resolved "$doc" | awk '/ fragment np nm key/ { print $2; exit }')
			[ -z "$fl" ] || { frag=$BATS_TEST_TMPDIR/fragment; $EXTRACT extract "$doc" "$fl" >"$frag"; }
			replay_session "$src" "$frag"
		else
			check_shell_transcript "$EX_SH" "$src" "$@"
		fi
		;;
	skip)
		local why
		why=$(skip_reason "$doc" "$line")
		[ -n "$why" ] || { echo "  listed as skip without a reason"; return 1; }
		echo "  not run: $why"
		;;
	*) echo "  unknown kind: $kind"; return 1 ;;
	esac
}

# check_doc DOC: every block of a document; 1 if any fails.
check_doc() {
	local doc=$1 file line kind words failed=0 n=0 skipped=0
	while read -r file line kind words; do
		n=$((n + 1))
		[ "$kind" != skip ] || skipped=$((skipped + 1))
		if check_block "$file" "$line" "$kind" $words >"$BATS_TEST_TMPDIR/report" 2>&1; then
			echo "ok   $file:$line $kind $words"
			grep -E '^  (not run|run by)' "$BATS_TEST_TMPDIR/report" || true
		else
			echo "FAIL $file:$line $kind $words"
			cat "$BATS_TEST_TMPDIR/report"
			failed=$((failed + 1))
		fi
	done < <(resolved "$doc")
	echo "$doc: $n blocks, $skipped not run (listed), $failed failed"
	[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
}

# ---- every block is taken, and is what the reader sees ----

# listed_ok: every LISTED entry names a block that is there, and every skip
# says why; else says which.
listed_ok() {
	local doc first kind why file line bad=0 found
	while IFS=$'\t' read -r doc first kind why; do
		[ -n "$doc" ] || continue
		found=0
		while read -r file line _; do
			[ "$($EXTRACT extract "$file" "$line" | grep -m1 -v '^[[:space:]]*$')" != "$first" ] || found=1
		done < <($EXTRACT list "$doc")
		[ $found -eq 1 ] || { echo "LISTED names no block of $doc: $first"; bad=1; }
		[ "$kind" != skip ] || [ -n "$why" ] || { echo "a skip without a reason: $doc: $first"; bad=1; }
	done <<<"$LISTED"
	return $bad
}

@test "every block of README.md and of the man pages' EXAMPLES is taken: run, checked, or listed with why not" {
	cd "$REPO"
	run --separate-stderr $EXTRACT list $DOCS
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	listed_ok
	for doc in $DOCS; do resolved "$doc"; done >"$BATS_TEST_TMPDIR/all"
	cat "$BATS_TEST_TMPDIR/all"
	# Each has a kind this file handles (an unknown one fails here, not later).
	run ! grep -vE '^[^ ]+ [0-9]+ (sh|bash|crontab|make|transcript|skip)( |$)' "$BATS_TEST_TMPDIR/all"
	# Each part is there, and a scenario test of this file takes it.
	for id in $PARTS; do
		grep -q " id=$id\( \|\$\)" "$BATS_TEST_TMPDIR/all" || { echo "no block id=$id"; false; }
		grep -qE "^[[:space:]]*for id in .*\b$id\b.*block_by_id|block_by_id $id\b" "$BATS_TEST_FILENAME" ||
			{ echo "no scenario test runs id=$id"; false; }
	done
	# README and every page with EXAMPLES: none is left out.
	for doc in $DOCS; do grep -q "^$doc " "$BATS_TEST_TMPDIR/all" || { echo "no block of $doc"; false; }; done
}

# Rendered by man, each line of a block is there, in order (spaces aside).
rendered_has() { # DOC FILE
	LC_ALL=C MANWIDTH=250 man -l "$1" 2>/dev/null | sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//' >"$BATS_TEST_TMPDIR/rendered"
	sed -E 's/[[:space:]]+/ /g; s/^ //; s/ $//' "$2" | grep -v '^$' | awk -v r="$BATS_TEST_TMPDIR/rendered" '
		BEGIN { while ((getline l < r) > 0) page[++n] = l }
		{ while (++i <= n && page[i] != $0) ; if (i > n) { print "not in the rendered page: " $0; exit 1 } }'
}

@test "what the extractor takes from a man page is what man prints" {
	cd "$REPO"
	for doc in man/*.[1-9]; do
		while read -r file line _; do
			$EXTRACT extract "$file" "$line" >"$BATS_TEST_TMPDIR/b"
			rendered_has "$file" "$BATS_TEST_TMPDIR/b" || { echo "$file:$line"; false; }
		done < <($EXTRACT list "$doc")
	done
}

# ---- each document's examples ----

@test "README.md: the examples run or check as written" {
	cd "$REPO"
	check_doc README.md
}

@test "bind-input.1: the examples run as written" {
	cd "$REPO"
	check_doc man/bind-input.1
}

@test "bind-output.1: the examples run as written" {
	cd "$REPO"
	check_doc man/bind-output.1
}

@test "pool.1: the examples run as written" {
	cd "$REPO"
	check_doc man/pool.1
}

@test "master.1: the examples run or check as written" {
	cd "$REPO"
	check_doc man/master.1
}

@test "socketpool.7: the proof fragment, and the session replayed against a pool" {
	cd "$REPO"
	check_doc man/socketpool.7
}

@test "socket.1: the examples run as written, or are listed with why not" {
	cd "$REPO"
	check_doc man/socket.1
}

# ---- the README's cron setups, as cron runs them ----

# block_by_id ID: the block of that id (a marker's or LISTED's), substituted,
# into $X/ID.
block_by_id() {
	local where
	where=$(cd "$REPO" && for d in $DOCS; do resolved "$d"; done |
		awk -v id="id=$1" '{ for (i = 4; i <= NF; i++) if ($i == id) print $1, $2 }')
	[ -n "$where" ] || { echo "no document has a block id=$1"; return 1; }
	# shellcheck disable=SC2086 # FILE LINE
	(cd "$REPO" && $EXTRACT extract $where) >"$BATS_TEST_TMPDIR/$1.raw"
	subst "$BATS_TEST_TMPDIR/$1.raw" >"$X/$1"
}
# start_block ID DIR: run block ID under sh in DIR (made), in the background,
# in a process group of its own, as a reader would at a terminal; its output
# in $X/ID.out and $X/ID.err; its PID (and group) in $ID_PID... as BG.
start_block() {
	mkdir -p "$2"
	(cd "$2" && exec setsid env -i HOME="$X" PATH="$SP_BIN:/usr/bin:/bin" TMPDIR="$X/root/tmp" \
		"$EX_SH" "$X/$1") </dev/null >"$X/$1.out" 2>"$X/$1.err" &
	BG=$!
	track "$BG"
}
# ended PID [SECONDS]: it ends within the bound (default 10); its status in RC.
ended() {
	RC=0
	wait_gone "$1" "${2:-10}" || { echo "PID $1 still runs after ${2:-10} s"; return 1; }
	wait "$1" || RC=$?
}
runs_prog() { # NAME: one of the built programs runs with its cwd in $X
	local p want
	want=$(readlink -f "$SP_BIN/$1") # SP_BIN may be relative or hold ..
	for p in $(procs_in "$X" $EX_BEFORE); do
		[ "$(readlink "/proc/$p/exe" 2>/dev/null)" != "$want" ] || return 0
	done
	return 1
}
# as_cron CRONTAB CMD: run one command as cron would, with the crontab's
# assignments, no terminal, stdin /dev/null; its output goes to $X/CRONTAB.out.
# Bounded: a run still going after EX_TIMEOUT seconds is ended (and fails).
as_cron() {
	local -a vars
	mapfile -t vars < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$X/$1")
	(cd "$X" && exec timeout -k 5 "$EX_TIMEOUT" env -i HOME="$X" SHELL=/bin/sh LOGNAME=root \
		"${vars[@]}" /bin/sh -c "$2") </dev/null >>"$X/$1.out" 2>&1
}
stub() { # NAME BODY: a program of the site's own, first on the crontabs' PATH
	printf '#!/bin/sh\n%s\n' "$2" >"$X/stubs/$1"
	chmod +x "$X/stubs/$1"
}
fixture_daemon() { # DIR NAME BODY
	mkdir -p "$1"
	printf '#!/bin/sh\n%s\n' "$3" >"$1/$2"
	chmod +x "$1/$2"
}

@test "README cron, a collector: the pool under its supervisor, two cron runs of each host's master, a reader across runs" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	for id in setup collector-pool collector-cron collector-reader; do block_by_id "$id"; done
	in_env "$EX_SH" setup
	stub hostname 'echo web1'
	fixture_daemon "$X/root/etc/socketpool/daemons" cpu 'echo "load 0.42"'
	cmd=$(cron_commands "$X/collector-cron")
	(cd "$X" && exec env -i HOME="$X" PATH="$SP_BIN:/usr/bin:/bin" "$EX_SH" collector-pool) </dev/null 2>"$X/pool.err" &
	pool=$!
	track "$pool"
	wait_listening "$(port_for 9000)"
	# The first run makes the buffer web1.cpu; its reader starts then (the
	# supervisor restarts a reader whose FIFO is not there yet).
	as_cron collector-cron "$cmd"
	[ -p "$X/root/var/spool/socketpool/web1.cpu" ]
	(cd "$X" && exec env -i HOME="$X" PATH="/usr/bin:/bin" "$EX_SH" collector-reader) </dev/null 2>"$X/reader.err" &
	reader=$!
	track "$reader"
	as_cron collector-cron "$cmd"
	[ ! -s "$X/collector-cron.out" ] # quiet success: cron mails nothing
	wait_for 10 lines_in "$X/root/var/log/cpu-web1.log" 2
	[ "$(wc -l <"$X/root/var/log/cpu-web1.log")" -eq 2 ]
	[ "$(grep -c ' load 0.42$' "$X/root/var/log/cpu-web1.log")" -eq 2 ]
	# Stopped by its supervisor, the pool ends, and the reader with it.
	kill -TERM "$pool"
	ended "$pool"
	[ "$RC" -eq 143 ]
	ended "$reader"
	[ "$RC" -eq 0 ]
	[ ! -s "$X/reader.err" ]
	left_behind
}

@test "README cron, a pair of jobs at 02:00: the master first waits for the pool (-w); the pool spools (-a), ends, and the reader runs after it" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	for id in setup pair-receiver pair-sender; do block_by_id "$id"; done
	in_env "$EX_SH" setup
	stub nightly-report 'cat "$1"/report > "$HOME/report.seen"'
	fixture_daemon "$X/root/etc/socketpool/nightly" report 'seq 3'
	as_cron pair-sender "$(cron_commands "$X/pair-sender")" &
	sender=$!
	track "$sender"
	# The master is up before the pool (it waits for it, -w).
	wait_for 10 runs_prog master
	as_cron pair-receiver "$(cron_commands "$X/pair-receiver")" &
	receiver=$!
	track "$receiver"
	ended "$sender" 30
	[ "$RC" -eq 0 ]
	ended "$receiver" 30
	[ "$RC" -eq 0 ]
	[ ! -s "$X/pair-sender.out" ]
	[ ! -s "$X/pair-receiver.out" ]
	[ "$(cat "$X/report.seen")" = "$(seq 3)" ]
	left_behind
}

# ---- the seed's example, in pool(1) and master(1), as one session ----

@test "pool.1, the seed's example: the pool in the buffers' directory, the master on the sending side, the reader of dem1; the pool ends by itself" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	for id in pool-seed-pool pool-seed-master pool-seed-reader; do block_by_id "$id"; done
	fixture_daemon "$X/send/daemons" dem1 'printf "one\ntwo\n"'
	start_block pool-seed-pool "$X/recv"
	pool=$BG
	wait_listening "$(port_for 9000)"
	start_block pool-seed-master "$X/send"
	ended "$BG" 20
	[ "$RC" -eq 0 ]
	start_block pool-seed-reader "$X/recv"
	ended "$BG" 20
	[ "$RC" -eq 0 ]
	[ "$(cat "$X/pool-seed-reader.out")" = "$(printf 'dem1 says one\ndem1 says two')" ]
	ended "$pool" 20 # once its master is done and the reader took everything
	[ "$RC" -eq 0 ]
	# A pool in the foreground logs its sessions on stderr; the others are quiet.
	grep -q '^pool: dem1: granted to 127.0.0.1 ' "$X/pool-seed-pool.err"
	[ ! -s "$X/pool-seed-master.err" ]
	[ ! -s "$X/pool-seed-reader.err" ]
	[ ! -s "$X/pool-seed-master.out" ]
	left_behind
}

@test "master.1, the seed's example: its dem1 as the page shows it, the master, the reader on the pool's side; SIGTERM ends the master, then the reader and pool" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	for id in master-seed master-seed-reader; do block_by_id "$id"; done
	transcript_script "$X/master-seed" >"$X/master-seed.sh"
	mv "$X/master-seed.sh" "$X/master-seed"
	port=$(port_for 9000)
	mkdir -p "$X/recv"
	(cd / && exec "$SP_BIN/pool" -d "$X/recv" k12 "$port") </dev/null >/dev/null 2>"$X/pool.err" &
	pool=$!
	track "$pool"
	wait_listening "$port" || { cat "$X/pool.err"; false; }
	start_block master-seed "$X/send"
	master=$BG
	wait_exists "$X/recv/dem1" 10
	start_block master-seed-reader "$X/recv"
	reader=$BG
	wait_for 10 lines_in "$X/master-seed-reader.out" 2
	kill -TERM -- "-$master"
	ended "$master"
	[ "$RC" -eq 143 ] # the shell, as at a terminal
	ended "$reader" # end of file once the master's stream has ended
	[ "$RC" -eq 0 ]
	ended "$pool"
	[ "$RC" -eq 0 ]
	# The page's cat shows dem1 as it was made; its lines carry the daemon's name.
	[ "$(head -n 2 "$X/master-seed.out")" = "$(sed -n 's/^# prints: //p' "$X/master-seed")" ]
	run ! grep -vE '^got dem1 [0-2][0-9]:[0-5][0-9]:[0-6][0-9]$' "$X/master-seed-reader.out"
	[ "$(cat "$X/master-seed.err")" = "master: signal 15: ending 1 daemon" ]
	[ ! -s "$X/master-seed-reader.err" ]
	left_behind
}

# ---- the checks catch broken examples ----

# A document of broken examples, each of which check_doc must fail.
broken() { # NAME KIND TEXT: a README-like document of one block
	printf '<!-- example: %s -->\n\n```\n%s\n```\n' "$2" "$3" >"$BATS_TEST_TMPDIR/$1.md"
}
fails_with() { # NAME MESSAGE
	run check_doc "$BATS_TEST_TMPDIR/$1.md"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$2"* ]] || { echo "$output"; false; }
}

@test "the checks fail a broken example: read -t under sh, a wrong output, a daemon or FIFO left, a bad crontab" {
	EX_TIMEOUT=3
	# bind-input.1's old first example: dash has no read -t, and loops.
	broken readt sh 'pid=$(bind-input in1 9999) || exit 1
while :; do
	msg=
	read -r -t 1 msg < in1
	[ -z "$msg" ] && continue
	[ "$msg" = END ] && break
done
kill "$pid"'
	fails_with readt "timed out after 3 s"
	[[ "$output" == *"Illegal option -t"* ]]
	[[ "$output" == *"left running:"* ]]
	broken prints sh 'echo hello | cat    # prints: hullo'
	fails_with prints "stdout is not what the example says it prints"
	broken daemon sh 'bind-input in1 9999 > /dev/null'
	fails_with daemon "left running:"
	broken fifo sh 'mkfifo f'
	fails_with fifo "FIFOs left:"
	broken status sh 'false'
	fails_with status "exit status 1"
	broken cronopt crontab 'PATH=/usr/local/bin:/usr/bin:/bin
*/5 * * * * master -x k12 collector 9000 /etc/socketpool/daemons'
	fails_with cronopt "master: no option -x in its synopsis"
	broken cronops crontab 'PATH=/usr/local/bin:/usr/bin:/bin
0 2 * * * pool -a k12'
	fails_with cronops "pool: 1 operands, its synopsis has 2"
	broken cronpct crontab 'PATH=/usr/local/bin:/usr/bin:/bin
0 2 * * * master -N "$(date +%F)" k12 receiver 9000 ./daemons'
	fails_with cronpct "an unescaped %"
	broken cronpath crontab '0 2 * * * master k12 receiver 9000 ./daemons'
	fails_with cronpath "without a PATH= line"
	broken cronsched crontab 'PATH=/usr/local/bin:/usr/bin:/bin
0 25 * * * master k12 receiver 9000 ./daemons'
	fails_with cronsched "not a valid schedule"
	printf 'text\n\n    echo unmarked\n' >"$BATS_TEST_TMPDIR/unmarked.md"
	run $EXTRACT unmarked "$BATS_TEST_TMPDIR/unmarked.md"
	[ "$output" = "$BATS_TEST_TMPDIR/unmarked.md:3" ]
}

@test "a new block, marked or listed or not, is run: one that cannot run as written fails until it is fixed or listed; a stale LISTED entry fails" {
	EX_TIMEOUT=3
	# Unmarked and unlisted, in a README and in a man page's EXAMPLES: run under sh.
	printf 'New text.\n\n    echo new | socket localhost 7005\n' >"$BATS_TEST_TMPDIR/new.md"
	run check_doc "$BATS_TEST_TMPDIR/new.md"
	[ "$status" -ne 0 ]
	[[ "$output" == *"FAIL $BATS_TEST_TMPDIR/new.md:3 sh"* ]]
	[[ "$output" == *"socket: "*"Connection refused"* ]] || { echo "$output"; false; }
	printf '.Sh EXAMPLES\nNew:\n.Bd -literal -offset indent\npool k12 9005\n.Ed\n.Sh SEE ALSO\n' >"$BATS_TEST_TMPDIR/new.1"
	run check_doc "$BATS_TEST_TMPDIR/new.1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"FAIL $BATS_TEST_TMPDIR/new.1:3 sh"* ]]
	[[ "$output" == *"timed out after 3 s"* ]]
	# One that uses the checkout's examples/ (as the Remote services ones will) runs.
	printf 'Text.\n\n```\nls examples/daemons | head -n 1    # prints: dem1\n```\n' >"$BATS_TEST_TMPDIR/ex.md"
	run check_doc "$BATS_TEST_TMPDIR/ex.md"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" == *"ok   $BATS_TEST_TMPDIR/ex.md:3 sh"* ]]
	# Listed with a reason, it passes as not run; listed as a kind, it runs so.
	LISTED="$BATS_TEST_TMPDIR/new.1	pool k12 9005	skip	runs until a master comes"
	run check_doc "$BATS_TEST_TMPDIR/new.1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"not run: runs until a master comes"* ]]
	LISTED="$BATS_TEST_TMPDIR/new.1	pool k12 9005	sh service"
	run check_doc "$BATS_TEST_TMPDIR/new.1"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[[ "$output" == *"ok   $BATS_TEST_TMPDIR/new.1:3 sh service"* ]]
	# A skip without a reason, and an entry whose block is gone.
	LISTED="$BATS_TEST_TMPDIR/new.1	pool k12 9005	skip"
	run check_doc "$BATS_TEST_TMPDIR/new.1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"listed as skip without a reason"* ]]
	run listed_ok
	[ "$status" -ne 0 ]
	[[ "$output" == *"a skip without a reason"* ]]
	LISTED="$BATS_TEST_TMPDIR/new.1	pool k12 9006	sh service"
	run listed_ok
	[ "$status" -ne 0 ]
	[[ "$output" == *"LISTED names no block of $BATS_TEST_TMPDIR/new.1: pool k12 9006"* ]]
}

# ---- make demo ----

# demo_left: what a demo left running: its pool and master (named by their
# directory in $X/root/tmp) or its daemons (working in examples/daemons).
# The demo works in the repository, not in $X: left_behind cannot see them.
demo_left() {
	local p
	pgrep -af -- "$X/root/tmp/"
	for p in $(procs_in "$(cd "$REPO/examples/daemons" && pwd -P)"); do
		echo "$p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
}
demo_gone() { [ -z "$(demo_left)" ] && [ -z "$(ls -A "$X/root/tmp")" ]; }

@test "make demo runs to its end, shows both daemons' lines, and leaves nothing" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	[ -z "$(demo_left)" ] || skip "a demo of this tree runs already"
	run --separate-stderr env TMPDIR="$X/root/tmp" SP_BIN="$SP_BIN" sh "$REPO/scripts/demo.sh"
	[ "$status" -eq 0 ]
	[[ "$output" == *"[dem1 buffer] dem1: tick 1 at"* ]]
	[[ "$output" == *"[dem2 buffer] dem2: load"* ]]
	[[ "$output" == *"the pool exited on its own"* ]]
	wait_for 10 demo_gone || { demo_left; ls -A "$X/root/tmp"; false; }
	left_behind
}

@test "make demo | head -3: the demo cleans up when its reader goes away (SIGPIPE): no pool, master, daemon or directory left" {
	new_dir
	EX_BEFORE=$(procs_in "$X")
	[ -z "$(demo_left)" ] || skip "a demo of this tree runs already"
	out=$(env TMPDIR="$X/root/tmp" make -s -C "$REPO" demo 2>"$X/make.err" | head -3)
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 3 ]
	[[ "$out" == "== pool -b -d BUFDIR k12 "* ]]
	# The demo ended (by SIGPIPE at its fourth line) once head had gone: by
	# then its cleanup has run, or is about to end the last of them.
	wait_for 10 demo_gone || { demo_left; ls -A "$X/root/tmp"; false; }
	run grep -v -e 'Error 141' -e '^make: \*\*\*' "$X/make.err"
	[ "$status" -ne 0 ] || { echo "make demo said: $output"; false; }
	left_behind
}