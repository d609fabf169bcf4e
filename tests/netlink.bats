#!/usr/bin/env bats
# The test network itself (tests/netns.bash, tests/tools/delaylink): two
# namespaces joined by a path with a one-way delay, loss and a bandwidth,
# on which later tests and benches rest their promises about networks.
# Times are only ever bounded from below.
load helpers
load netns

setup() { common_setup; }
teardown() {
	netns_down
	common_teardown
}

# connect_us PORT: in B, how long a TCP connect to A's PORT took, in
# microseconds (a refused one counts: SYN out, reset back, one round trip).
connect_us() {
	in_b bash -c 't0=${EPOCHREALTIME/[.,]/}
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
		t1=${EPOCHREALTIME/[.,]/}
		echo $((t1 - t0))' _ "$NETNS_ADDR_A" "$1"
}

# send_file FILE PORT: FILE from A to a listener in B (into got), whole;
# the listener ends after the sender's end of file.
send_file() {
	in_b socat -u "TCP-LISTEN:$2,bind=$NETNS_ADDR_B,reuseaddr" CREATE:got 2>recv.err 3>&- &
	recv=$!
	track "$recv"
	wait_listening_in b "$2"
	run in_a socat -u "OPEN:$1" "TCP:$NETNS_ADDR_B:$2"
	[ "$status" -eq 0 ]
	wait_gone "$recv" 60
	[ ! -s recv.err ]
}

same_sha() { [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]; }

@test "the link is up: each end has its address, the peer's route, and delaylink said ready" {
	netns_up 5
	run in_a ip -4 -o addr show dev "$NETNS_IF"
	[ "$status" -eq 0 ]
	[[ $output == *"inet $NETNS_ADDR_A peer $NETNS_ADDR_B/32"* ]]
	run in_b ip -4 -o addr show dev "$NETNS_IF"
	[[ $output == *"inet $NETNS_ADDR_B peer $NETNS_ADDR_A/32"* ]]
	run in_b ip route get "$NETNS_ADDR_A"
	[[ $output == *"dev $NETNS_IF"* ]]
	# delaylink is in neither namespace: their process lists are the tests' own
	run ip netns pids "$NETNS_A"
	[ -z "$output" ]
	# freeport works inside a namespace
	run free_port_in b
	[ "$status" -eq 0 ]
	[[ $output =~ ^[0-9]+$ ]]
}

@test "a TCP round trip takes at least twice the one-way delay (50 ms: connects take >= 100 ms)" {
	netns_up 50
	port=$(free_port_in a)
	in_a socat "TCP-LISTEN:$port,bind=$NETNS_ADDR_A,reuseaddr,fork" /dev/null 3>&- &
	track $!
	wait_listening_in a "$port"
	for i in 1 2 3 4 5; do
		us=$(connect_us "$port")   # accepted: SYN, SYN-ACK
		echo "# connect $i: $us us" >&3
		[ "$us" -ge 100000 ]
		us=$(connect_us 9)         # refused: SYN, RST
		[ "$us" -ge 100000 ]
	done
}

@test "4 MiB sent across a 50 ms one-way link arrive byte for byte" {
	netns_up 50
	head -c 4194304 /dev/urandom >data
	send_file data "$(free_port_in b)"
	same_sha data got
	[ "$(netns_counter lost)" -eq 0 ]
	[ "$(netns_counter over)" -eq 0 ]
}

@test "with 1% loss, 4 MiB still arrive byte for byte (TCP resends), and delaylink counts what it dropped" {
	# 1500-byte packets: some 3000 of them, so that 1% is sure to hit some
	netns_up 10 --loss 1 --mtu 1500
	head -c 4194304 /dev/urandom >data
	send_file data "$(free_port_in b)"
	same_sha data got
	lost=$(netns_counter lost)
	echo "# lost: $lost packets" >&3
	[ "$lost" -gt 0 ]
	run netns_stats
	[ "$status" -eq 0 ]
	re='^delaylink: a>b in=[0-9]+ out=[0-9]+ bytes=[0-9]+ lost=[0-9]+ full=0 over=0 err=0 held=[0-9]+$'
	[[ ${lines[0]} =~ $re ]]
	[[ ${lines[1]} == "delaylink: b>a in="* ]]
}

@test "--rate: 2 MiB through a 1 MiB/s link take at least 2 s, and arrive whole" {
	netns_up 1 --rate 1048576
	head -c 2097152 /dev/urandom >data
	t0=${EPOCHREALTIME/[.,]/}
	send_file data "$(free_port_in b)"
	t1=${EPOCHREALTIME/[.,]/}
	echo "# 2 MiB in $(((t1 - t0) / 1000)) ms" >&3
	[ $((t1 - t0)) -ge 2000000 ]
	same_sha data got
}

@test "delaylink's command line: usage errors exit 2, a namespace that is not there exits 1" {
	run "$TOOLS/delaylink" -d 5 onlyone
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "delaylink: missing operand (ns_a ns_b)" ]
	run "$TOOLS/delaylink" -l 101 a b
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "delaylink: -l: '101' is not a number from 0 to 100" ]
	run "$TOOLS/delaylink" -q 64K a b
	[ "$status" -eq 2 ]
	run "$TOOLS/delaylink" -a 10.0.0.1 -b 10.0.0.1 a b
	[ "$status" -eq 2 ]
	run "$TOOLS/delaylink" "spnl-none-$$-a" "spnl-none-$$-b"
	[ "$status" -eq 1 ]
	[ "$output" = "delaylink: namespace spnl-none-$$-a: /run/netns/spnl-none-$$-a: No such file or directory" ]
}

# gone_all A B PID: no namespace named A or B, nothing mounted for them,
# no process in them (by inode) and the forwarder PID ended
nothing_left() {
	local a=$1 b=$2 pid=$3 ino_a=$4 ino_b=$5
	run ip netns list
	[[ $output != *"$a"* ]]
	[[ $output != *"$b"* ]]
	[ ! -e "/run/netns/$a" ]
	[ ! -e "/run/netns/$b" ]
	run grep -c -e "/run/netns/$a" -e "/run/netns/$b" /proc/self/mountinfo
	[ "$output" = 0 ]
	gone "$pid"
	# no process anywhere is still in either namespace
	run sh -c "readlink /proc/[0-9]*/ns/net 2>/dev/null | grep -c -e 'net:\[$ino_a\]' -e 'net:\[$ino_b\]'"
	[ "$output" = 0 ]
	# the devices lived in the namespaces, never here
	run ip link show dev "$NETNS_IF"
	[ "$status" -ne 0 ]
}

@test "netns_down leaves no namespace, tun device or process, even one that ignores SIGTERM" {
	netns_up 5
	a=$NETNS_A b=$NETNS_B pid=$NETNS_PID
	ino_a=$(stat -L -c %i "/run/netns/$a")
	ino_b=$(stat -L -c %i "/run/netns/$b")
	# the devices are not persistent: they end with delaylink's descriptors
	flags=$(in_a cat "/sys/class/net/$NETNS_IF/tun_flags")
	[ $((flags & 0x800)) -eq 0 ]
	port=$(free_port_in b)
	in_b socat "TCP-LISTEN:$port,bind=$NETNS_ADDR_B,reuseaddr,fork" /dev/null 3>&- &
	in_a sh -c 'trap "" TERM; while :; do sleep 1; done' >/dev/null 2>&1 3>&- &
	in_b sleep 1000 3>&- &
	wait_listening_in b "$port"
	[ "$(ip netns pids "$a" | wc -l)" -ge 1 ]
	netns_down
	nothing_left "$a" "$b" "$pid" "$ino_a" "$ino_b"
	# its counters went to its log as it ended
	grep -q '^delaylink: a>b in=' "$BATS_TEST_TMPDIR/delaylink.err"
}

@test "a test that fails with the link up leaves nothing behind (its teardown runs netns_down)" {
	dir=$BATS_TEST_DIRNAME
	at=@ # bats would rewrite a line that starts with @test, even in a here-document
	cat >inner.bats <<-EOF
		load "$dir/helpers"
		load "$dir/netns"
		setup() { common_setup; TOOLS="$dir/bin"; }
		teardown() { netns_down; common_teardown; }
		${at}test "fails" {
			netns_up 20
			echo "\$NETNS_A \$NETNS_B \$NETNS_PID \$(stat -L -c %i /run/netns/\$NETNS_A) \$(stat -L -c %i /run/netns/\$NETNS_B)" >"$PWD/names"
			in_b sleep 1000 3>&- &
			false
		}
	EOF
	run bats inner.bats
	[ "$status" -eq 1 ]
	[[ $output == *"not ok 1 fails"* ]]
	read -r a b pid ino_a ino_b <names
	[ -n "$ino_b" ]
	nothing_left "$a" "$b" "$pid" "$ino_a" "$ino_b"
}

@test "a forwarder whose parent dies ends by itself, and its devices with it" {
	ip netns add "spnl$$t${BATS_TEST_NUMBER}a"
	NETNS_A=spnl$$t${BATS_TEST_NUMBER}a
	ip netns add "spnl$$t${BATS_TEST_NUMBER}b"
	NETNS_B=spnl$$t${BATS_TEST_NUMBER}b
	# a parent shell that starts it, says its PID, and is killed
	sh -c '"$1" "$2" "$3" >/dev/null 2>&1 3>&- & echo $!; exec sleep 1000' _ \
		"$TOOLS/delaylink" "$NETNS_A" "$NETNS_B" >pid 3>&- &
	parent=$!
	track "$parent"
	wait_file pid
	pid=$(cat pid)
	wait_for 5 in_a ip link show dev "$NETNS_IF"
	kill -KILL "$parent"
	wait_gone "$pid" 5
	run in_a ip link show dev "$NETNS_IF"
	[ "$status" -ne 0 ]
}
