#!/usr/bin/env bats
# socket: client, server, options, errors, teardown.
load helpers

setup() {
	common_setup
	S=$SP_BIN/socket
}
teardown() { common_teardown; }

# start_server ARGS...: run `socket -b -v ARGS` and set PID and PORT (from -v).
start_server() {
	run --separate-stderr "$S" -b -v "$@"
	[ "$status" -eq 0 ] || { echo "start failed: $stderr" >&2; return 1; }
	PID=$output
	track "$PID"
	PORT=$(sed -n 's/.*listening on .* \([0-9][0-9]*\)$/\1/p' <<<"$stderr")
	[[ "$PID" =~ ^[0-9]+$ ]]
}

@test "client relays stdin and stdout through an echo server (IPv4)" {
	start_server -s -l -f -p cat 0
	run --separate-stderr "$S" 127.0.0.1 "$PORT" <<<"hello"
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
	[ -z "$stderr" ]
}

@test "IPv6 literal as server address and client host" {
	start_server -B ::1 -s -l -f -p cat 0
	[[ "$stderr" == *"listening on ::1 $PORT"* ]]
	run "$S" ::1 "$PORT" <<<"six"
	[ "$status" -eq 0 ]
	[ "$output" = six ]
}

@test "a server without -B is dual-stack: reached on 127.0.0.1 and ::1" {
	start_server -s -l -f -p cat 0
	run "$S" 127.0.0.1 "$PORT" <<<"four"
	[ "$output" = four ]
	run "$S" ::1 "$PORT" <<<"six"
	[ "$output" = six ]
}

@test "UNIX socket server and client; the socket file goes away on SIGTERM" {
	start_server -s -l -f -p cat ./echo.sock
	[ -S echo.sock ]
	run "$S" ./echo.sock <<<"local"
	[ "$status" -eq 0 ]
	[ "$output" = local ]
	kill -TERM "$PID"
	wait_gone "$PID"
	[ ! -e echo.sock ]
}

@test "-s 0 picks a free port and -v reports it" {
	start_server -s -l -p cat 0
	[[ "$PORT" =~ ^[0-9]+$ ]]
	[ "$PORT" -gt 0 ]
	wait_listening "$PORT"
}

@test "client half-close: the reply sent after our EOF arrives (socket-1.1 lost it)" {
	port=$(free_port)
	socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr EXEC:'wc -c' &
	track $!
	wait_listening "$port"
	run --separate-stderr "$S" 127.0.0.1 "$port" < <(printf 'twelve bytes')
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = 12 ]
}

@test "server half-close: the program's reply after the client's EOF arrives" {
	start_server -s -l -f -p 'wc -l' 0
	run socat -t 5 - TCP:127.0.0.1:"$PORT" < <(printf 'a\nb\nc\n')
	[ "$status" -eq 0 ]
	[ "$(echo $output)" = 3 ]
}

@test "server: the connection ends when the program exits, everything it wrote arrives" {
	start_server -s -l -f -p 'seq 1 20000' 0
	# socat keeps its side open until the peer closes: it returns only on our close.
	run timeout 10 socat -u TCP:127.0.0.1:"$PORT" -
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 20000 ]
	[ "${lines[19999]}" = 20000 ]
}

@test "a program that does not read its input still gets its reply through (no reset)" {
	start_server -s -l -f -p 'echo early' 0
	head -c 3000000 /dev/zero >big
	run --separate-stderr "$S" 127.0.0.1 "$PORT" <big
	[ "$output" = early ]
}

@test "100 MB pass byte-exact through an echo server" {
	start_server -s -l -f -p cat 0
	head -c 100000000 /dev/urandom >data
	"$S" 127.0.0.1 "$PORT" <data >back
	cmp data back
}

@test "-p: the program's stdin, stdout and stderr are the socket itself" {
	start_server -s -l -f -p 'sh -c "readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2"' 0
	run "$S" -r 127.0.0.1 "$PORT" </dev/null
	[ "${#lines[@]}" -eq 3 ]
	for l in "${lines[@]}"; do [[ "$l" == socket:* ]]; done
	[ "${lines[0]}" = "${lines[1]}" ] && [ "${lines[1]}" = "${lines[2]}" ]
}

@test "-p without shell metacharacters is exec'd directly with its arguments" {
	printf '#!/bin/sh\nprintf "%%s|" "$0" "$@"; ps -o comm= -p $PPID\n' >prog
	chmod +x prog
	start_server -s -l -f -p "$PWD/prog one  two" 0
	run "$S" -r 127.0.0.1 "$PORT" </dev/null
	[ "$output" = "$PWD/prog|one|two|socket" ]
}

@test "-p with metacharacters runs through /bin/sh -c" {
	start_server -s -l -f -p 'echo a; echo b | tr b c' 0
	run "$S" -r 127.0.0.1 "$PORT" </dev/null
	[ "$output" = $'a\nc' ]
}

@test "the program gets PROTO and TCPLOCAL*/TCPREMOTE* (UCSPI)" {
	start_server -B 127.0.0.1 -s -l -f -p 'sh -c "echo $PROTO $TCPLOCALIP $TCPLOCALPORT $TCPREMOTEIP $TCPREMOTEPORT"' 0
	run "$S" -r 127.0.0.1 "$PORT" </dev/null
	read -r proto lip lport rip rport <<<"$output"
	[ "$proto" = TCP ]
	[ "$lip" = 127.0.0.1 ]
	[ "$lport" = "$PORT" ]
	[ "$rip" = 127.0.0.1 ]
	[[ "$rport" =~ ^[0-9]+$ ]] && [ "$rport" != "$PORT" ]
}

@test "a UNIX connection's program gets PROTO=UNIX and no TCP variables" {
	start_server -s -l -f -p 'sh -c "echo $PROTO ${TCPREMOTEIP-none}"' ./u.sock
	TCPREMOTEIP=leak run "$S" -r ./u.sock </dev/null
	[ "$output" = "UNIX none" ]
}

@test "-B on the client binds the local address the server sees" {
	start_server -B 127.0.0.1 -s -l -f -p 'sh -c "echo $TCPREMOTEIP"' 0
	run "$S" -r -B 127.0.0.2 127.0.0.1 "$PORT" </dev/null
	[ "$output" = 127.0.0.2 ]
}

@test "-c: LF to CRLF towards the socket, adding CR only where missing" {
	start_server -s -p 'sh -c "cat >wire"' 0
	printf 'a\nb\r\nc\r' | "$S" -c 127.0.0.1 "$PORT"
	wait_gone "$PID"
	[ "$(od -An -c wire | tr -s ' ')" = " a \r \n b \r \n c \r" ]
}

@test "-c: CRLF to LF from the socket, removing CR only before LF" {
	start_server -s -p "printf 'x\\r\\ny\\rz\\r\\n\\r'" 0
	"$S" -c -r 127.0.0.1 "$PORT" </dev/null >got
	[ "$(od -An -c got | tr -s ' ')" = " x \n y \r z \n \r" ]
}

@test "-c on the server converts both ways through a relay" {
	start_server -s -c -p 'sh -c "readlink /proc/self/fd/0 >kind; cat >wire; printf \"ok\\n\""' 0
	printf 'l1\r\nl2\r\n' | "$S" 127.0.0.1 "$PORT" >got
	[ "$(cat wire)" = $'l1\nl2' ]
	[ "$(od -An -c got | tr -s ' ')" = " o k \r \n" ]
	[[ "$(cat kind)" == pipe:* ]]
}

@test "-r: nothing is sent, the peer sees EOF at once, the reply arrives" {
	start_server -s -p 'sh -c "cat >wire; echo done"' 0
	run --separate-stderr "$S" -r 127.0.0.1 "$PORT" <<<"secret"
	[ "$status" -eq 0 ]
	[ "$output" = done ]
	[ ! -s wire ]
}

@test "-w: what the peer sends is not passed on, ours is" {
	start_server -s -p 'sh -c "echo junk; cat >wire"' 0
	run --separate-stderr "$S" -w 127.0.0.1 "$PORT" <<<"data"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	wait_gone "$PID"
	[ "$(cat wire)" = data ]
}

@test "-q closes at once on stdin EOF; without it the late reply is read" {
	start_server -s -l -p 'sh -c "cat >/dev/null; echo late"' 0
	run --separate-stderr "$S" -q 127.0.0.1 "$PORT" <<<"x"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run --separate-stderr "$S" 127.0.0.1 "$PORT" <<<"x"
	[ "$output" = late ]
}

@test "without -l the server serves one connection, then exits 0 and stops listening" {
	port=$(free_port)
	"$S" -s -p 'echo once' "$port" &
	spid=$!
	track "$spid"
	wait_listening "$port"
	run "$S" -r 127.0.0.1 "$port" </dev/null
	[ "$output" = once ]
	wait "$spid"
	not_listening "$port"
}

@test "-l without -f serves connections one after another" {
	start_server -s -l -p 'echo hi' 0
	for i in 1 2 3; do
		run "$S" -r 127.0.0.1 "$PORT" </dev/null
		[ "$output" = hi ]
	done
	alive "$PID"
}

# Two clients whose stdin we control, so each connection stays open until we say.
two_clients() {
	mkfifo a.in b.in
	"$S" -v 127.0.0.1 "$PORT" <a.in >a.out 2>a.err &
	track $!
	exec 7>a.in
	wait_for 5 grep -q start log
	"$S" -v 127.0.0.1 "$PORT" <b.in >b.out 2>b.err &
	track $!
	exec 8>b.in
	wait_for 5 grep -q "connected to" b.err
}

@test "-f serves connections at once, in parallel" {
	start_server -s -l -f -p 'sh -c "echo start >>log; read x; echo end >>log"' 0
	two_clients
	wait_for 5 lines_in log 2
	echo b >&8; exec 8>&-
	wait_for 5 lines_in log 3
	echo a >&7; exec 7>&-
	wait_for 5 lines_in log 4
	[ "$(cat log | tr '\n' ' ')" = "start start end end " ]
}

@test "-C 1 with -f holds the second connection in the backlog until the first ends" {
	start_server -s -l -f -C 1 -p 'sh -c "echo start >>log; read x; echo end >>log"' 0
	two_clients
	echo b >&8; exec 8>&-
	echo a >&7; exec 7>&-
	wait_for 5 lines_in log 4
	[ "$(cat log | tr '\n' ' ')" = "start end start end " ]
}

@test "-v reports listening, connection and close on stderr" {
	start_server -s -l -f -L events.log -p 'echo hi' 0
	[[ "$stderr" == "socket: listening on :: $PORT" ]]
	"$S" -r 127.0.0.1 "$PORT" </dev/null >/dev/null
	wait_for 5 grep -q "closed" events.log
	grep -qE "$(log_head socket)connection from 127.0.0.1 [0-9]+$" events.log
	grep -qE "$(log_head socket)connection from 127.0.0.1 [0-9]+ closed, status 0$" events.log
}

@test "-b returns at once inside \$(...) and keeps none of the caller's descriptors" {
	pid=$(timeout 5 "$S" -b -s -l -p cat 0)
	track "$pid"
	[[ "$pid" =~ ^[0-9]+$ ]]
	alive "$pid"
	for fd in 0 1 2; do [ "$(readlink /proc/$pid/fd/$fd)" = /dev/null ]; done
	# 0-2, the listener, the self-pipe, syslog's socket: nothing of the caller's.
	exec 5>caller-fd
	pid2=$("$S" -b -s -l -p cat 0)
	track "$pid2"
	exec 5>&-
	run ls -l /proc/$pid2/fd
	[[ "$output" != *caller-fd* ]]
	[ "$(fd_count "$pid2")" -le 7 ]
}

@test "-b resolves a relative UNIX path where it was started" {
	mkdir sub
	cd sub
	start_server -s -l -p cat ./rel.sock
	[ -S "$BATS_TEST_TMPDIR/w/sub/rel.sock" ]
	[ ! -e /rel.sock ]
	run "$S" ./rel.sock <<<"rel"
	[ "$output" = rel ]
}

@test "options may follow operands, as the SCGI/FCGI launch scripts write them" {
	port=$(free_port)
	printf '#!/bin/sh\necho "$1 served"\n' >wrapper
	chmod +x wrapper
	run --separate-stderr "$S" -B 127.0.0.1 -s "$port" -b -f -q -l -p "$PWD/wrapper prog"
	[ "$status" -eq 0 ]
	track "$output"
	run "$S" 127.0.0.1 "$port" </dev/null
	[ "$output" = "prog served" ]
}

@test "-- ends the options" {
	start_server -s -l -p 'echo dashdash' 0
	run "$S" -r -- 127.0.0.1 "$PORT" </dev/null
	[ "$output" = dashdash ]
}

@test "a service name is accepted as port, by server and client" {
	# A service from /etc/services whose port is free here.
	svc="" num=""
	while read -r name portproto _; do
		p=${portproto%/tcp}
		[ "$p" != "$portproto" ] && [ "$p" -gt 1024 ] && [ "$p" -lt 49151 ] || continue
		listening "$p" && continue
		svc=$name num=$p
		break
	done < <(grep -v '^#' /etc/services)
	[ -n "$svc" ]
	start_server -B 127.0.0.1 -s -l -p 'echo by-name' "$svc"
	[ "$PORT" = "$num" ]
	run "$S" -r 127.0.0.1 "$svc" </dev/null
	[ "$output" = by-name ]
}

@test "systemd socket activation: LISTEN_PID and LISTEN_FDS=1 serve fd 3" {
	"$TOOLS/activate" portfile "$S" -s -l -f -p 'sh -c "echo activated ${LISTEN_FDS-unset}"' &
	track $!
	wait_file portfile
	port=$(cat portfile)
	run "$S" -r 127.0.0.1 "$port" </dev/null
	[ "$output" = "activated unset" ]
}

# fd3_case KIND WHY ARGS...: socket under activate with that kind of fd 3 refuses at once.
fd3_case() {
	local kind=$1 why=$2
	shift 2
	# Under timeout: a server that spun on accept(2) would be killed there (124), not exit 1.
	run --separate-stderr timeout 10 "$TOOLS/activate" -k "$kind" portfile "$S" "$@"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "${#stderr_lines[@]}" -eq 1 ]
	[ "$stderr" = "socket: LISTEN_FDS=1 but fd 3 is $why: no listening socket to serve" ]
}

@test "LISTEN_FDS=1 with fd 3 /dev/null, unlistened TCP, closed or UDP: exit 1, one line, nothing left" {
	printf '#!/bin/sh\nexec cat\n' >prog
	chmod +x prog
	for mode in "-s -l -f" "-W 2 -s" "-W 2 -P -s" "-b -s -l"; do
		# shellcheck disable=SC2086 # the mode's words are options
		fd3_case null "not a socket" $mode -p "$PWD/prog"
		fd3_case tcp "a socket that is not listening" $mode -p "$PWD/prog"
		fd3_case closed "not open" $mode -p "$PWD/prog"
		fd3_case udp "not a stream socket (UDP?)" $mode -p "$PWD/prog"
	done
	# No daemon, worker or program stayed behind, and no file but ours appeared.
	[ -z "$(pgrep -f "$PWD/prog" || true)" ]
	rm -f portfile prog
	[ -z "$(ls -A)" ]
}

@test "-p with a program not found: exit 1 at start in every mode, as a shell says, nothing left" {
	port=$(free_port)
	# Under timeout: a server that started anyway is killed there (124) instead of hanging.
	for w in "-W 2" "-W 1:4" "-W 2 -P" "-W 2 -c" "-f" "-f -l" "-l" "" "-b -f -l"; do
		# shellcheck disable=SC2086 # the -W words are options
		run --separate-stderr timeout 10 "$S" $w -s -p "nosuchprog-$$ with args" "$port"
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "socket: nosuchprog-$$: not found" ]
	done
	run --separate-stderr timeout 10 "$S" -b -W 2 -s -p ./missing "$port"
	[[ ! "$output" =~ ^[0-9]+$ ]] || track "$output"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "socket: ./missing: not found" ]
	echo 'echo hi' >notexec
	run --separate-stderr timeout 10 "$S" -W 2 -s -p "$PWD/notexec" "$port"
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: $PWD/notexec: Permission denied" ]
	# PATH searched as a shell does: here the program is not in it.
	mkdir bin
	printf '#!/bin/sh\necho found\n' >bin/greet
	chmod +x bin/greet
	run --separate-stderr timeout 10 "$S" -W 1 -s -p greet "$port"
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: greet: not found" ]
	# A client too, before it connects: nobody listens on $port, and no "connect" is said.
	run --separate-stderr timeout 10 "$S" -p "nosuchprog-$$" 127.0.0.1 "$port"
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: nosuchprog-$$: not found" ]
	not_listening "$port"
	[ -z "$(pgrep -f "nosuchprog-$$" || true)" ]
	rm -rf notexec bin
	[ -z "$(ls -A)" ]
}

@test "-W with a shell command is not looked up at start: the shell says it per connection" {
	port=$(free_port)
	"$S" -W 1 -s -p "nosuchprog-$$ 2>&1 | tr a-z A-Z" "$port" 2>err &
	track $!
	wait_listening "$port"
	run --separate-stderr "$S" -r 127.0.0.1 "$port" </dev/null
	[[ "$output" == *"NOSUCHPROG-$$"*"NOT FOUND"* ]]
}

@test "exec failure: reported, the connection closed, serving goes on; exit 1 without -l" {
	# Found at start (an executable file), yet exec fails: its interpreter is not there.
	printf '#!/nonexistent/interpreter\n' >prog
	chmod +x prog
	start_server -s -l -f -L log -p "$PWD/prog" 0
	run "$S" 127.0.0.1 "$PORT" </dev/null
	[ -z "$output" ]
	wait_for 5 grep -q "exec $PWD/prog: No such file or directory" log
	alive "$PID"
	port=$(free_port)
	"$S" -s -p "$PWD/prog" "$port" 2>err &
	spid=$!
	track "$spid"
	wait_listening "$port"
	"$S" 127.0.0.1 "$port" </dev/null || true
	status=0
	wait "$spid" || status=$?
	[ "$status" -eq 1 ]
	grep -q "^socket: exec $PWD/prog: No such file or directory$" err
}

@test "SIGTERM, SIGINT, SIGHUP: children's groups end, port freed, exit 128+signal" {
	for sig in TERM INT HUP; do
		port=$(free_port)
		"$S" -s -l -f -p 'sh -c "sleep 300 & echo up; wait"' "$port" &
		spid=$!
		track "$spid"
		wait_listening "$port"
		mkfifo "hold.$sig"
		"$S" 127.0.0.1 "$port" <"hold.$sig" >"out.$sig" &
		track $!
		exec 9>"hold.$sig"
		wait_file "out.$sig"
		kids=$(children_of "$spid")
		[ -n "$kids" ]
		kill -s "$sig" "$spid"
		status=0
		wait "$spid" || status=$?
		exec 9>&-
		case $sig in TERM) [ "$status" -eq 143 ] ;; INT) [ "$status" -eq 130 ] ;; HUP) [ "$status" -eq 129 ] ;; esac
		for k in $kids; do wait_for 5 no_group "$k"; done
		not_listening "$port"
	done
}

@test "-v: the teardown line counts in words: ending 1 connection, ending 2 connections" {
	for n in 1 2; do
		port=$(free_port)
		"$S" -v -s -l -f -g 1 -p 'sleep 30' "$port" 2>"err.$n" &
		spid=$!
		track "$spid"
		wait_listening "$port"
		for _ in $(seq "$n"); do
			"$S" 127.0.0.1 "$port" </dev/null >/dev/null 2>&1 &
			track $!
		done
		wait_for 5 sh -c "[ \"\$(grep -c '^socket: connection from' err.$n)\" -eq $n ]"
		kill -TERM "$spid"
		wait_gone "$spid"
	done
	grep -qx "socket: signal 15: ending 1 connection" err.1
	grep -qx "socket: signal 15: ending 2 connections" err.2
}

@test "teardown: a program ignoring SIGTERM is killed after the grace period" {
	port=$(free_port)
	"$S" -s -l -f -p 'sh -c "trap \"\" TERM; echo up; while :; do sleep 1; done"' "$port" &
	spid=$!
	track "$spid"
	wait_listening "$port"
	mkfifo hold
	"$S" 127.0.0.1 "$port" <hold >out &
	track $!
	exec 9>hold
	wait_file out
	kid=$(children_of "$spid")
	kill -TERM "$spid"
	status=0
	wait "$spid" || status=$?
	exec 9>&-
	[ "$status" -eq 143 ]
	wait_for 5 no_group "$kid"
}

@test "1000 connections leave no zombie and no descriptor growth in the server" {
	start_server -s -l -f -p 'head -n1' 0
	"$S" 127.0.0.1 "$PORT" <<<"warm" >/dev/null
	wait_for 5 no_children "$PID"
	base=$(fd_count "$PID")
	for i in $(seq 1 1000); do
		echo "$i" | "$S" 127.0.0.1 "$PORT" >>replies
	done
	[ "$(wc -l <replies)" -eq 1000 ]
	[ "$(tail -n1 replies)" = 1000 ]
	wait_for 10 fds_are "$PID" "$base"
	[ "$(zombies_of "$PID")" -eq 0 ]
	[ -z "$(children_of "$PID")" ]
}

# ---- runtime failures: exit 1, nothing left behind ----

@test "connection refused: exit 1, one clear line" {
	port=$(free_port)
	run --separate-stderr "$S" 127.0.0.1 "$port" </dev/null
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "socket: connect to 127.0.0.1 $port: Connection refused" ]
}

@test "unknown host: exit 1" {
	run --separate-stderr "$S" no-such-host.invalid 80 </dev/null
	[ "$status" -eq 1 ]
	[[ "$stderr" == "socket: connect to no-such-host.invalid 80: "* ]]
}

@test "address in use: exit 1, also with -b (no daemon left)" {
	start_server -B 127.0.0.1 -s -l -p cat 0
	run --separate-stderr "$S" -b -B 127.0.0.1 -s "$PORT" -p cat
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "socket: listen on 127.0.0.1 $PORT: Address already in use" ]
	[ -z "$(pgrep -f "socket -b -B 127.0.0.1 -s $PORT -p cat\$")" ]
}

@test "UNIX: a live socket is in use, exit 1, untouched" {
	start_server -s -l -p cat ./live.sock
	run --separate-stderr "$S" -s ./live.sock
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: ./live.sock: in use by a live listener" ]
	run "$S" ./live.sock <<<"still"
	[ "$output" = still ]
}

@test "UNIX: a regular file at the path is refused and never removed" {
	echo precious >file.sock
	run --separate-stderr "$S" -s ./file.sock
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: ./file.sock: exists and is not a socket; not touching it" ]
	[ "$(cat file.sock)" = precious ]
}

@test "UNIX: a stale socket left by SIGKILL is reclaimed" {
	start_server -s -l -p cat ./stale.sock
	kill -KILL "$PID"
	wait_gone "$PID"
	[ -S stale.sock ]
	start_server -s -l -p cat ./stale.sock
	run "$S" ./stale.sock <<<"again"
	[ "$output" = again ]
}

@test "-L FILE that cannot be opened: exit 1, no daemon, no socket file" {
	run --separate-stderr "$S" -b -s -L /nonexistent/dir/log -p cat ./x.sock
	[ "$status" -eq 1 ]
	[ "$stderr" = "socket: /nonexistent/dir/log: No such file or directory" ]
	[ ! -e x.sock ]
}

# ---- usage errors: exit 2, message, hint, nothing created ----

@test "usage: port above 65535" { usage_fails socket "65536: bad port (0-65535 or a service name)" -s 65536; }
@test "usage: malformed port" { usage_fails socket "12ab: bad port (0-65535 or a service name)" localhost 12ab; }
@test "usage: unknown service name" { usage_fails socket "nosuchservice: unknown service" localhost nosuchservice; }
@test "usage: -l without -s" { usage_fails socket "-l needs -s" -l localhost 80; }
@test "usage: -r with -w" { usage_fails socket "-r and -w exclude each other" -r -w localhost 80; }
@test "usage: -f without -s" { usage_fails socket "-f needs -s" -f localhost 80; }
@test "usage: -C without -f" { usage_fails socket "-C needs -f" -s -C 4 0; }
@test "usage: -C 0 and -C abc" {
	usage_fails socket "-C: '0' is out of range (1-1000000)" -s -f -C 0 0
	usage_fails socket "-C: 'abc' is not a number" -s -f -C abc 0
}
@test "usage: missing operands" {
	usage_fails socket "localhost: missing port; a UNIX socket path needs a '/' (./localhost)" localhost
	usage_fails socket "missing operand"
	usage_fails socket "missing port or path" -s
}

@test "usage: a UNIX path without a '/' is told it needs one, client and server" {
	usage_fails socket "myapp.sock: missing port; a UNIX socket path needs a '/' (./myapp.sock)" myapp.sock
	usage_fails socket "myapp.sock: unknown service; a UNIX socket path needs a '/' (./myapp.sock)" \
		-s -l -p cat myapp.sock
	[ -z "$(ls -A)" ]
}

@test "usage: -b without -p has nothing to relay, server and client" {
	msg="-b needs -p: in the background there is no stdin or stdout to relay"
	port=$(free_port)
	usage_fails socket "$msg" -b -s -l "$port"
	usage_fails socket "$msg" -b -s -l -f -r "$port"
	usage_fails socket "$msg" -b 127.0.0.1 "$port"
	not_listening "$port"
	[ -z "$(ls -A)" ]
}
@test "usage: too many operands" {
	usage_fails socket "too many operands" a b c
	usage_fails socket "too many operands" -s 1 2
}
@test "usage: -B with a UNIX path" { usage_fails socket "-B does not apply to a UNIX socket" -B 127.0.0.1 -s ./x.sock; }
@test "usage: empty -p command" { usage_fails socket "-p: empty command" -s -p '' 0; }
@test "usage: -p without its argument" { usage_fails socket "-p needs an argument" -s 0 -p; }

@test "usage: UNIX path longer than sun_path is refused, nothing created" {
	long="./$(printf 'x%.0s' $(seq 1 120))"
	usage_fails socket "$long: path longer than a UNIX socket allows (107 bytes)" -s "$long"
	[ ! -e "$long" ]
	[ -z "$(ls)" ]
}
