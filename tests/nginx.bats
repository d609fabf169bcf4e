#!/usr/bin/env bats
# socket -W behind nginx (issue 13, item 4): nginx's scgi_pass to `socket -W 4`
# running tests/tools/scgi, checked with curl. nginx is Debian's, started by the
# test as a process of its own on loopback, every file it uses (configuration, pid,
# lock, logs, temporary paths) in the test's directory.
load helpers

setup() {
	common_setup
	S=$SP_BIN/socket
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || { echo "nginx is not installed (scripts/deps.sh test)" >&2; return 1; }
	command -v curl >/dev/null || { echo "curl is not installed (scripts/deps.sh test)" >&2; return 1; }
	NP=$(free_port)
	SP=$(free_port)
	while [ "$SP" = "$NP" ]; do SP=$(free_port); done
	D=$BATS_TEST_TMPDIR/nginx
	mkdir -p "$D" docs
	head -c 0 /dev/urandom >docs/0
	head -c 1024 /dev/urandom >docs/1k
	head -c 1048576 /dev/urandom >docs/1m
}
teardown() { common_teardown; }

# The SCGI application behind socket -W; its pid in M, its log in ./err.
start_app() {
	"$S" -W 4 -v -B 127.0.0.1 -s "$SP" -p "$TOOLS/scgi -l $PWD/served $PWD/docs" "$@" 2>err &
	M=$!
	track "$M"
	wait_listening "$SP"
}

start_nginx() {
	cat >"$D/nginx.conf" <<-EOF
	daemon off;
	master_process off;
	worker_processes 1;
	pid $D/nginx.pid;
	lock_file $D/nginx.lock;
	error_log $D/error.log info;
	events { worker_connections 256; }
	http {
		access_log $D/access.log;
		client_body_temp_path $D/client_body;
		proxy_temp_path $D/proxy;
		fastcgi_temp_path $D/fastcgi;
		uwsgi_temp_path $D/uwsgi;
		scgi_temp_path $D/scgi;
		client_max_body_size 4m;
		server {
			listen 127.0.0.1:$NP;
			location / {
				scgi_pass 127.0.0.1:$SP;
				scgi_param REQUEST_METHOD \$request_method;
				scgi_param DOCUMENT_URI \$document_uri;
				scgi_param QUERY_STRING \$query_string;
				scgi_param CONTENT_TYPE \$content_type;
			}
		}
	}
	EOF
	"$NGINX" -p "$D" -e "$D/error.log" -c "$D/nginx.conf" 2>"$D/stderr" &
	N=$!
	track "$N"
	wait_listening "$NP" || { cat "$D/stderr" "$D/error.log" >&2; return 1; }
}

url() { echo "http://127.0.0.1:$NP$1"; }

@test "nginx scgi_pass to socket -W 4: GET, HEAD and POST of 0 B, 1 KiB and 1 MiB, byte-exact" {
	start_app
	start_nginx
	for f in 0 1k 1m; do
		size=$(stat -c %s "docs/$f")
		# GET: the file, whole.
		run --separate-stderr curl -sS -o "get.$f" -w '%{http_code} %{size_download}' "$(url "/files/$f")"
		[ "$status" -eq 0 ]
		[ "$output" = "200 $size" ]
		cmp "docs/$f" "get.$f"
		# HEAD: the same headers, no body.
		run --separate-stderr curl -sS -I "$(url "/files/$f")"
		[ "$status" -eq 0 ]
		[[ "${lines[0]}" == "HTTP/1.1 200 OK"* ]]
		grep -qix "content-length: $size"$'\r' <<<"$output"
		# POST: the body back, byte for byte.
		run --separate-stderr curl -sS -H 'Expect:' -H 'Content-Type: application/octet-stream' \
			--data-binary "@docs/$f" -o "post.$f" -w '%{http_code} %{size_download}' "$(url /echo)"
		[ "$status" -eq 0 ]
		[ "$output" = "200 $size" ]
		cmp "docs/$f" "post.$f"
	done
	run --separate-stderr curl -sS -o /dev/null -w '%{http_code}' "$(url /files/none)"
	[ "$output" = 404 ]
	# Nine requests with a body or a file, three HEADs, one 404: all through SCGI.
	[ "$(wc -l <served)" -eq 10 ]
	[ "$(grep -c '^GET ' served)" -eq 4 ]
	[ "$(grep -c '^HEAD ' served)" -eq 3 ]
	[ "$(grep -c '^POST ' served)" -eq 3 ]
	run ! grep -E 'upstream prematurely closed|\[error\]|\[crit\]|\[alert\]' "$D/error.log"
}

@test "nginx to socket -W 4 under load across 10 reloads (SIGUSR2): not one non-2xx response" {
	start_app
	start_nginx
	# Four clients, 250 requests each: GETs of 1 KiB and POSTs of 1 KiB, alternating.
	# One curl a client, its requests one after another on one connection to nginx
	# (--next: each its own method), every one a new SCGI connection to socket.
	for i in $(seq 1 125); do
		args+=(-s -w '%{http_code}\n' -o /dev/null "$(url /files/1k)" --next)
		args+=(-s -w '%{http_code}\n' -o /dev/null -H 'Expect:' --data-binary @docs/1k "$(url /echo)")
		[ "$i" -eq 125 ] || args+=(--next)
	done
	for c in 1 2 3 4; do
		curl "${args[@]}" >"codes.$c" 2>"curl.$c" &
		track $!
		pids="${pids-} $!"
	done
	# A reload every 60 requests, each once the one before has taken effect.
	for i in 1 2 3 4 5 6 7 8 9 10; do
		wait_for 30 lines_in served $((i * 60))
		kill -USR2 "$M"
		wait_for 5 grep -q "reload: generation $i," err
		wc -l <served >>at-reload
	done
	for p in $pids; do
		wait_for 120 gone "$p"
		wait "$p"
	done
	cat codes.* >codes
	[ "$(wc -l <codes)" -eq 1000 ]
	[ "$(grep -c '^2' codes)" -eq 1000 ]
	[ "$(grep -c 'reload: generation' err)" -eq 10 ]
	[ "$(wc -l <served)" -eq 1000 ]
	# The last reload took effect while requests were still coming.
	[ "$(tail -n 1 at-reload)" -lt 1000 ]
	run ! grep -E 'upstream prematurely closed|connect\(\) failed|\[error\]|\[crit\]|\[alert\]' "$D/error.log"
}
