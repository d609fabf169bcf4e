#!/usr/bin/env bats
# Remote services (issue 14): pool -x runs a program for each CALL, master -x
# runs the client portions, master -c calls one service from a script; the
# seed's upload -> process -> download trio in examples/rsi.
load helpers

setup() {
	common_setup
	KEY=0123456789abcdef0123
	PORT=$(free_port)
	RSI=$BATS_TEST_DIRNAME/../examples/rsi
	mkdir -p sdir cdir
}
teardown() {
	common_teardown
}

start_service_pool() { # ARGS... (the pool's options); sets POOL
	"$SP_BIN/pool" -l -x "$PWD/sdir" -L "$PWD/pool.log" "$@" "$KEY" "$PORT" </dev/null 2>>pool.err &
	POOL=$!
	track "$POOL"
	wait_listening "$PORT"
}
call() { # SERVICE [master options]: master -c, stdin and stdout ours
	local name=$1
	shift
	"$SP_BIN/master" -c "$@" "$KEY" 127.0.0.1 "$PORT" "$name"
}
# The ports the pool granted services (from its log): none may listen after.
granted_ports() { sed -n 's/.*service called by .* (port \([0-9]*\))$/\1/p' pool.log; }
no_granted_port_listens() {
	local p
	for p in $(granted_ports); do not_listening "$p" || return 1; done
	# No buffer either: a service call makes no FIFO.
	[ -z "$(find . -type p)" ]
}
# What the pool has running besides itself: nothing once the calls are over.
pool_idle() { no_children "$POOL"; }
services_ended() { # N: the pool has logged N service ends
	[ "$(grep -c ': service exited\|: service did not run' pool.log 2>/dev/null)" -ge "$1" ]
}

# An archive as the seed's: a certificate, a source and the site, the text
# with CR LF line ends and trailing blanks. Stored (zip -0), so its members'
# bytes can be looked for in what crossed the wire.
make_archive() {
	mkdir -p a/certs a/src a/site
	printf -- '-----BEGIN KEY-----\nCERT-MARKER-5e1f\n-----END KEY-----\n' >a/certs/key.pem
	printf 'int main(void) { return 0; } /* SOURCE-MARKER-77a2 */  \r\n' >a/src/main.c
	printf '<p>hello</p>  \r\n<p>world</p>\t\r\n' >a/site/index.html
	printf '<p>about</p>\r\n' >a/site/about.html
	printf 'body { margin: 0 }   \r\n' >a/site/main.css
	(cd a && zip -q -0 -r ../in.zip .)
}
# The vendor service with a tee in front: upload.zip holds what reached the pool's side.
spy_vendor() {
	daemon sdir vendor "tee '$PWD/upload.zip' | '$RSI/server/vendor'"
}
extract() { # ZIP DIR
	rm -rf "$2" && mkdir "$2" && (cd "$2" && unzip -qq "$OLDPWD/$1")
}
# out.zip holds the original with only the processed files changed.
result_is_right() {
	extract in.zip orig
	extract "$1" new
	run diff -rq orig new
	[ "$status" -eq 1 ]
	[ "$(printf '%s\n' "$output" | sort)" = "$(printf '%s\n' \
		'Files orig/site/about.html and new/site/about.html differ' \
		'Files orig/site/index.html and new/site/index.html differ' \
		'Files orig/site/main.css and new/site/main.css differ')" ]
	cmp orig/certs/key.pem new/certs/key.pem
	cmp orig/src/main.c new/src/main.c
	[ "$(cat new/site/index.html)" = "$(printf '<p>hello</p>\n<p>world</p>')" ]
	run grep -c $'\r' new/site/about.html new/site/main.css
	[ "$output" = "$(printf 'new/site/about.html:0\nnew/site/main.css:0')" ]
}
# Only the chosen members reached the pool's side, and none of the rest's bytes.
upload_is_chosen_only() {
	[ "$(unzip -Z1 upload.zip | grep -v '/$' | sort)" = "$(printf 'site/about.html\nsite/index.html\nsite/main.css')" ]
	run grep -c -e CERT-MARKER -e SOURCE-MARKER upload.zip
	[ "$output" = 0 ]
	run grep -c -e 'BEGIN KEY' -e 'int main' upload.zip
	[ "$output" = 0 ]
}

# ---- the trio ----

@test "trio through master -c: only the chosen files leave, the result differs only in the processed ones" {
	make_archive
	spy_vendor
	start_service_pool
	"$RSI/pack" in.zip "$RSI/implodable" | call vendor >processed.zip 2>master.err
	[ ! -s master.err ]
	"$RSI/merge" in.zip processed.zip >out.zip
	result_is_right out.zip
	upload_is_chosen_only
	wait_for 5 services_ended 1
	grep -q 'vendor: service exited 0' pool.log
	wait_for 5 pool_idle
	no_granted_port_listens
}

@test "trio: the spy can see a certificate when the patterns let it go (the probe works)" {
	make_archive
	spy_vendor
	start_service_pool
	printf 'certs/*\nsite/*\n' >allow-all
	"$RSI/pack" in.zip allow-all | call vendor >processed.zip
	run grep -c CERT-MARKER upload.zip
	[ "$output" -ge 1 ]
	run upload_is_chosen_only
	[ "$status" -ne 0 ]
}

@test "trio through master -x and examples/rsi/client: the client portion uploads, half-closes, merges" {
	make_archive
	spy_vendor
	start_service_pool
	RSI_ZIP=$PWD/in.zip RSI_OUT=$PWD/out.zip run --separate-stderr \
		"$SP_BIN/master" -x "$KEY" 127.0.0.1 "$PORT" "$RSI/client"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	result_is_right out.zip
	upload_is_chosen_only
	[ ! -e out.zip.tmp ]
	wait_for 5 pool_idle
	no_granted_port_listens
}

@test "master -x: a client portion's failure is its own line, the exit status 1" {
	start_service_pool
	daemon sdir up 'tr a-z A-Z'
	daemon cdir up 'echo hi; exec >&-; cat >"$OUT"; exit 4'
	OUT=$PWD/got run --separate-stderr "$SP_BIN/master" -x "$KEY" 127.0.0.1 "$PORT" cdir
	[ "$status" -eq 1 ]
	[ "$(cat got)" = HI ]
	[ "$stderr" = "master: up: exited with status 4" ]
}

# ---- failures ----

@test "a name that is not a service: FAIL no such service, exit 1, nothing started" {
	start_service_pool
	daemon sdir real 'cat'
	mkdir sdir/adir
	printf '#!/bin/sh\necho no\n' >sdir/notexec
	for name in nosuch adir notexec; do
		run --separate-stderr call "$name" </dev/null
		[ "$status" -eq 1 ]
		[ -z "$output" ]
		[ "$stderr" = "master: $name: the pool refused the call: no such service" ]
	done
	pool_idle
	run granted_ports
	[ -z "$output" ]
}

@test "a service that exits non-zero: 'remote exited 3', exit 1, its output still delivered" {
	start_service_pool
	daemon sdir fail3 'cat; echo partial; exit 3'
	run --separate-stderr call fail3 <<<"in"
	[ "$status" -eq 1 ]
	[ "$output" = "$(printf 'in\npartial')" ]
	[ "$stderr" = "master: fail3: remote exited 3" ]
	wait_for 5 pool_idle
	no_granted_port_listens
}

# line_no PATTERN: the number of the first line of pool.log matching PATTERN (grep -E)
line_no() { grep -nE -- "$1" pool.log | head -n 1 | cut -d: -f1; }

@test "a service's stderr is in the pool's log: each line whole, named, cut at 512 bytes, no control characters" {
	start_service_pool
	# A line in two writes, an escape and a CR, a long line, a last line without its newline.
	daemon sdir talk 'echo "to stderr" >&2; printf "part1 " >&2; sleep 0.2; printf "part2\n" >&2;' \
		'printf "esc\033[31m\r\n" >&2; head -c 2000 /dev/zero | tr "\0" x >&2; echo >&2;' \
		'cat; printf "unended" >&2'
	run --separate-stderr call talk <<<"hello"
	[ "$status" -eq 0 ]
	[ "$output" = hello ]
	wait_for 5 services_ended 1
	H=$(log_head pool)
	grep -qE "${H}svc talk: to stderr$" pool.log
	grep -qE "${H}svc talk: part1 part2$" pool.log
	grep -qE "${H}svc talk: esc\?\[31m$" pool.log
	grep -qE "${H}svc talk: x{512} \[cut: 1488 more bytes\]$" pool.log
	# The last words come before the word of its end.
	[ "$(line_no 'svc talk: unended$')" -lt "$(line_no 'talk: service exited 0$')" ]
	# Nothing raw: every line is the pool's.
	run ! grep -vE "$H" pool.log
}

@test "a service flooding its stderr: 10 lines a second in the log, the rest counted; the call goes on" {
	start_service_pool
	# 5 MB: 454545 lines "flood line" and an unfinished "flood".
	daemon sdir flood 'yes "flood line" | head -c 5000000 >&2; echo done'
	run --separate-stderr timeout 20 "$SP_BIN/master" -c "$KEY" 127.0.0.1 "$PORT" flood </dev/null
	[ "$status" -eq 0 ]
	[ "$output" = done ]
	wait_for 5 services_ended 1
	[ "$(wc -l <pool.log)" -le 40 ]
	grep -qE "$(log_head pool)flood: [0-9]+ more lines of the service's stderr not logged \(over 10 a second\)$" pool.log
	# Every line accounted for: written, repeated, or counted.
	total=$(awk '
		/svc flood: flood( line)?$/ { n++ }
		/last message repeated [0-9]+ time/ { n += $(NF - 1) }
		/more like this within a second, the last: svc flood:/ { n += $3 }
		/more lines of the service.s stderr not logged/ { n += $4 }
		END { print n + 0 }' pool.log)
	[ "$total" -eq 454546 ] || { cat pool.log >&3; echo "total $total" >&3; false; }
	wait_for 5 pool_idle
}

@test "a service that never ends: -R ends it, TERM then KILL, its whole group; master says why" {
	start_service_pool -R 1
	# Ignores TERM, and leaves a child behind in its group.
	daemon sdir forever "echo \$\$ >'$PWD/svc.pid'; trap '' TERM; sleep 300 & while :; do sleep 1; done"
	run --separate-stderr call forever </dev/null
	[ "$status" -eq 1 ]
	# The service's relay was killed with it: its stream has no END, and the
	# master's relay says so, besides the pool's word on how it ended (either first).
	printf '%s\n' "$stderr" | sort >got
	printf '%s\n' "master: connection: stream truncated: the connection closed before its authenticated end" \
		"master: forever: remote exited 137 (its run time is up)" | sort | cmp - got
	wait_for 5 no_group "$(cat svc.pid)"
	grep -q 'forever: service exited 137: its run time is up' pool.log
	wait_for 5 pool_idle
	no_granted_port_listens
}

@test "a service that ends on TERM when its time is up: 143" {
	start_service_pool -R 1
	daemon sdir slow "exec sleep 300"
	run --separate-stderr call slow </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: slow: remote exited 143 (its run time is up)" ]
}

@test "the client portion killed mid-upload: the service sees the upload cut, both are reported, nothing left" {
	make_archive
	head -c 300000 /dev/urandom >big
	(cd a && zip -q -0 ../big.zip ../big)
	daemon sdir vendor "'$RSI/server/vendor'"
	daemon cdir vendor "head -c 1000 '$PWD/big.zip'; kill -9 \$\$"
	start_service_pool
	run --separate-stderr "$SP_BIN/master" -x "$KEY" 127.0.0.1 "$PORT" cdir
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"master: vendor: killed by signal 9"* ]]
	wait_for 5 services_ended 1
	grep -q 'vendor: the upload is not a whole zip archive' pool.log
	grep -q 'vendor: service exited 2' pool.log
	wait_for 5 pool_idle
	no_granted_port_listens
}

@test "eight callers at once: each gets its own answer" {
	start_service_pool
	daemon sdir up 'tr a-z A-Z'
	local i pids=""
	for i in 1 2 3 4 5 6 7 8; do
		seq -f "caller $i line %g" 1 2000 | call up >"out.$i" 2>"err.$i" &
		pids="$pids $!"
	done
	# Each master exits 0 only on its own EXIT 0 (the log is rate-limited: not counted here).
	for i in $pids; do wait "$i"; done
	for i in 1 2 3 4 5 6 7 8; do
		[ ! -s "err.$i" ]
		seq -f "CALLER $i LINE %g" 1 2000 | cmp - "out.$i"
	done
	wait_for 5 pool_idle
	no_granted_port_listens
}

@test "-S: a call over the cap is refused while the others run" {
	start_service_pool -S 1
	daemon sdir hold "echo \$\$ >'$PWD/hold.pid'; while [ ! -e '$PWD/go' ]; do sleep 0.05; done; echo held"
	call hold </dev/null >held.out 2>held.err &
	local first=$!
	wait_file hold.pid
	run --separate-stderr call hold </dev/null
	[ "$status" -eq 1 ]
	[ "$stderr" = "master: hold: the pool refused the call: too many services running (1)" ]
	touch go
	wait "$first"
	[ "$(cat held.out)" = held ]
	[ ! -s held.err ]
}

@test "a service's environment: clean, the UCSPI variables, SERVICE_NAME; its own process group (led by its relay)" {
	SECRET_VAR=leak start_service_pool
	daemon sdir envy "env; ps -o pgid= -p \$\$; echo \$PPID; pwd"
	run --separate-stderr call envy </dev/null
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >env.out
	run ! grep -q SECRET_VAR env.out
	grep -qx 'SERVICE_NAME=envy' env.out
	grep -qx 'PROTO=TCP' env.out
	grep -qx 'TCPREMOTEIP=127.0.0.1' env.out
	grep -qx 'TCPLOCALPORT=[0-9]*' env.out
	grep -qx 'PATH=/usr/local/bin:/usr/bin:/bin' env.out
	# The last three lines: its process group, its parent (equal: the relay that
	# carries its input and output through the channel leads the group), its directory.
	local pgid ppid
	pgid=$(tail -3 env.out | head -1 | tr -d ' ')
	ppid=$(tail -2 env.out | head -1)
	[ "$pgid" = "$ppid" ]
	[ "$pgid" != "$POOL" ]
	[ "$(tail -1 env.out)" = "$PWD" ]
}

@test "the pool's end ends the services it runs, their whole groups" {
	start_service_pool
	daemon sdir hang "echo \$\$ >'$PWD/hang.pid'; sleep 300 & wait"
	call hang </dev/null >/dev/null 2>call.err &
	local caller=$!
	track "$caller"
	wait_file hang.pid
	kill -TERM "$POOL"
	wait_gone "$POOL" 10
	wait_for 5 no_group "$(cat hang.pid)"
	wait_gone "$caller" 10
	run wait "$caller"
	[ "$status" -eq 1 ]
	no_granted_port_listens
}

@test "the granted port takes only a caller with the token (-U: spoken raw): a stranger gets nothing started" {
	start_service_pool -U
	daemon sdir once "echo started >>'$PWD/started'; tr a-z A-Z"
	ctl_open "$PORT"
	ctl_auth "$KEY"
	printf 'CALL once %s\n' "$STREAM" >&5
	ctl_read grant
	[[ "$grant" =~ ^GRANT\ once\ ([0-9]+)\ ([0-9a-f]{32})\ -$ ]]
	local gport=${BASH_REMATCH[1]} token=${BASH_REMATCH[2]}
	# A wrong token from the right address, the right one from another: cut off.
	run socat -t 5 - "TCP:127.0.0.1:$gport" <<<"0123456789abcdef0123456789abcdef"
	[ -z "$output" ]
	run socat -t 5 - "TCP:127.0.0.1:$gport,bind=127.0.0.2" <<<"$token"
	[ -z "$output" ]
	[ ! -e started ]
	# The caller with its token is served, and hears how it ended.
	run socat -t 5 - "TCP:127.0.0.1:$gport" <<<"$token
hello"
	[ "$output" = HELLO ]
	[ "$(cat started)" = started ]
	ctl_read end
	[ "$end" = "EXIT once $STREAM 0" ]
}

# ---- usage ----

@test "master -c and -x: usage errors name the conflict, exit 2" {
	bad() { # MESSAGE ARGS...
		local want=$1
		shift
		run --separate-stderr "$SP_BIN/master" "$@"
		[ "$status" -eq 2 ]
		[ "$(printf '%s\n' "$stderr" | head -1)" = "master: $want" ]
	}
	bad "a/b: not a service name" -c "$KEY" 127.0.0.1 "$PORT" a/b
	bad "-c does not go with -x: one service, or a directory of client portions" \
		-c -x "$KEY" 127.0.0.1 "$PORT" up
	bad "-r does not go with -c: a service call is not resumed" -c -r "$KEY" 127.0.0.1 "$PORT" up
	bad "-b does not go with -c: the call is our stdin and stdout" -c -b "$KEY" 127.0.0.1 "$PORT" up
	bad "-r does not go with -x: a service call is not resumed" -x -r "$KEY" 127.0.0.1 "$PORT" cdir
	not_listening "$PORT"
}

@test "pool -x: the directory must be one; -R and -S are checked and go with -x" {
	bad() { # STATUS MESSAGE ARGS...
		local code=$1 want=$2
		shift 2
		run --separate-stderr timeout 10 "$SP_BIN/pool" "$@" "$KEY" "$PORT"
		[ "$status" -eq "$code" ]
		[ "$(printf '%s\n' "$stderr" | head -1)" = "pool: $want" ]
	}
	bad 1 "-x: $PWD/nosuch: No such file or directory" -x "$PWD/nosuch"
	touch afile
	bad 1 "-x: afile: not a directory" -x afile
	bad 2 "-R: '0' is not a duration from 0.001 to 86400 seconds" -x sdir -R 0
	bad 2 "-S: '0' is out of range (1-10000)" -x sdir -S 0
	bad 2 "-R and -S go with -x: they cap the services" -R 5
	bad 2 "-R and -S go with -x: they cap the services" -S 5
	bad 2 "-x: empty directory" -x ''
	not_listening "$PORT"
}
