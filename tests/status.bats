#!/usr/bin/env bats
# The status view (issue 21): a file each binding and pool keeps current,
# one line a buffer or stream, key=value; and with -M FILE the same figures
# in node_exporter's textfile format, read here by the Prometheus client's
# own parser (python3-prometheus-client) as an independent peer.
load helpers

setup() {
	common_setup
	PORT=$(free_port)
	KEY=k12
}
teardown() { common_teardown; }

# field FILE KIND KEY: KEY's value on FILE's first KIND= line
field() {
	awk -v kind="$2" -v key="$3" '
		$1 ~ "^" kind "=" { for (i = 1; i <= NF; i++) if (index($i, key "=") == 1) {
			print substr($i, length(key) + 2); exit } }' "$1" 2>/dev/null
}
field_is() { [ "$(field "$1" "$2" "$3")" = "$4" ]; } # FILE KIND KEY VALUE

# prom_value FILE METRIC: the value of METRIC's first sample, as the
# Prometheus client's parser reads the file (it fails on a malformed one).
prom_value() {
	/usr/bin/python3 - "$1" "$2" <<-'PY'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	text = open(sys.argv[1]).read()
	for fam in text_string_to_metric_families(text):
	    for s in fam.samples:
	        if s.name == sys.argv[2]:
	            print(int(s.value))
	            sys.exit(0)
	sys.exit(1)
	PY
}
prom_is() { [ "$(prom_value "$1" "$2" 2>/dev/null)" = "$3" ]; } # FILE METRIC VALUE

@test "bind-input keeps .ID.status current: a sender's stream while it is connected, what waits unread; -M in node_exporter's format; both removed at teardown" {
	start_detached bind-input -M in.prom -L in.log in "$PORT"
	wait_for 5 field_is .in.status buffer senders 0
	field_is .in.status buffer port "$PORT"
	# a sender that stays connected after 100 lines nobody reads yet
	exec 6>"/dev/tcp/127.0.0.1/$PORT"
	seq 1 100 >&6
	wait_for 10 field_is .in.status stream bytes 292
	field_is .in.status buffer senders 1
	field_is .in.status buffer unread 292
	[[ "$(field .in.status stream peer)" =~ ^127\.0\.0\.1:[0-9]+$ ]]
	[[ "$(field .in.status stream since)" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]
	wait_for 10 prom_is in.prom socketpool_stream_bytes 292
	prom_is in.prom socketpool_buffer_senders 1
	# read by nobody else: the file is not planted into, whatever waits there
	[ "$(stat -c %a .in.status)" = 644 ]
	exec 6>&-
	wait_for 10 field_is .in.status buffer senders 0
	run ! grep -q '^stream=' .in.status
	head -c 292 in >got
	[ "$(seq 1 100)" = "$(cat got)" ]
	wait_for 10 field_is .in.status buffer unread 0
	kill -TERM "$PID"
	wait_gone "$PID" 10
	[ ! -e .in.status ]
	[ ! -e in.prom ]
	[ -z "$(ls -A | grep -v -e '^in.log$' -e '^got$')" ]
}

@test "a status file planted as a symbolic link is replaced, never written through" {
	printf 'precious\n' >victim
	ln -s victim .in.status
	start_detached bind-input -L in.log in "$PORT"
	wait_for 5 field_is .in.status buffer senders 0
	[ ! -L .in.status ]
	[ "$(cat victim)" = precious ]
}

@test "bind-output keeps .ID.status: where it sends, connected, bytes sent and confirmed" {
	start_detached bind-input -L in.log in "$PORT"
	IN=$PID
	cat in >got &
	track $!
	start_detached bind-output -M out.prom -L out.log out 127.0.0.1 "$PORT"
	wait_for 5 field_is .out.status output connected yes
	field_is .out.status output to "127.0.0.1:$PORT"
	seq 1 1000 >out
	wait_for 10 field_is .out.status output sent 3893
	wait_for 10 field_is .out.status output confirmed 3893
	wait_for 10 prom_is out.prom socketpool_output_sent 3893
	kill -TERM "$PID"
	wait_gone "$PID" 10
	[ ! -e .out.status ]
	[ ! -e out.prom ]
	kill -TERM "$IN"
	wait_gone "$IN" 10
}

@test "pool keeps DIR/.pool-PORT.status: its sessions, each buffer and each master's stream into it" {
	mkdir d spool
	daemon d talker 'echo hello; sleep 30'
	start_pool -l -d spool -M pool.prom -L pool.log "$KEY" "$PORT"
	wait_for 5 field_is spool/.pool-"$PORT".status pool buffers 0
	"$SP_BIN/master" "$KEY" 127.0.0.1 "$PORT" d 2>master.err &
	MASTER=$!
	track "$MASTER"
	wait_for 10 field_is spool/.pool-"$PORT".status stream bytes 6
	field_is spool/.pool-"$PORT".status buffer senders 1
	field_is spool/.pool-"$PORT".status pool buffers 1
	[ "$(field spool/.pool-"$PORT".status stream stream)" = talker ]
	wait_for 10 prom_is pool.prom socketpool_pool_buffers 1
	kill -TERM "$MASTER"
	wait_gone "$MASTER" 15
	kill -TERM "$POOL"
	wait_gone "$POOL" 15
	[ ! -e spool/.pool-"$PORT".status ]
	[ ! -e pool.prom ]
}
