# shellcheck shell=sh
# netns-lib.sh: the tests' network path (tests/netns.bash) for the bench
# scripts: two network namespaces joined by tests/bin/delaylink, with a
# one-way delay, loss, a bandwidth. Sourced after bench-lib.sh, whose exit
# trap runs netns_down: a bench that ends in any way leaves no namespace.
#
#   netns_up ONEWAY_MS [--tcp-buf BYTES] [DELAYLINK_OPTION...]
#	e.g. netns_up 50 -l 1 -r 10M: namespaces $NETNS_A and $NETNS_B,
#	addresses $NETNS_ADDR_A and $NETNS_ADDR_B, the forwarder $NETNS_PID;
#	returns once a TCP SYN from B to A has been answered across the link,
#	1 if it could not be had. --tcp-buf (first, if given) is
#	netns_tcp_buf BYTES, done before the link carries anything.
#   in_a CMD... / in_b CMD...          a program in namespace A or B
#   netns_wait_port a|b PORT           until something listens there (bounded)
#   netns_tcp_buf BYTES                TCP may buffer up to BYTES a socket,
#	in both namespaces (they start with the host's tcp_rmem and tcp_wmem)
#   netns_down                         end everything in them, and them
NETNS_ADDR_A=10.77.0.1
NETNS_ADDR_B=10.77.0.2
NETNS_A="" NETNS_B="" NETNS_PID=""
at_exit="$at_exit netns_down"

in_a() { ip netns exec "$NETNS_A" "$@"; }
in_b() { ip netns exec "$NETNS_B" "$@"; }
netns_pids() { for _ns in $NETNS_A $NETNS_B; do ip netns pids "$_ns" 2>/dev/null; done; }

netns_wait_port() { # a|b PORT
	_ns=$NETNS_B
	[ "$1" = a ] && _ns=$NETNS_A
	_i=0
	while [ -z "$(ip netns exec "$_ns" ss -Hltn "sport = :$2" 2>/dev/null)" ]; do
		_i=$((_i + 1))
		[ "$_i" -lt 250 ] || return 1
		sleep 0.02
	done
}

netns_tcp_buf() {
	for _ns in $NETNS_A $NETNS_B; do
		ip netns exec "$_ns" sysctl -q -w "net.ipv4.tcp_rmem=4096 131072 $1" \
			"net.ipv4.tcp_wmem=4096 16384 $1" || return 1
	done
}

netns_up() { # ONEWAY_MS [--tcp-buf BYTES] [DELAYLINK_OPTION...]
	_d=$1 _tb=""
	shift
	if [ "${1:-}" = --tcp-buf ]; then
		_tb=$2
		shift 2
	fi
	# Namespaces of a bench run killed before its trap (its shell is gone).
	for _ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^spnlb[0-9]+[ab]$/ { print $1 }'); do
		_p=${_ns#spnlb}
		kill -0 "${_p%?}" 2>/dev/null && continue
		# shellcheck disable=SC2046 # one PID a word
		kill -KILL $(ip netns pids "$_ns") 2>/dev/null
		ip netns del "$_ns"
	done
	NETNS_A=spnlb$$a NETNS_B=spnlb$$b
	for _ns in $NETNS_A $NETNS_B; do
		ip netns del "$_ns" 2>/dev/null # a dead run's, whose PID came back
		ip netns add "$_ns" || return 1
		ip netns exec "$_ns" ip link set lo up || return 1
	done
	[ -z "$_tb" ] || netns_tcp_buf "$_tb" || return 1
	# Started from this shell, which it outlives by no more than a signal.
	# shellcheck disable=SC2154 # tmp: bench-lib.sh's
	tests/bin/delaylink -d "$_d" -a "$NETNS_ADDR_A" -b "$NETNS_ADDR_B" "$@" \
		"$NETNS_A" "$NETNS_B" >"$tmp/delaylink.out" 2>"$tmp/delaylink.err" &
	NETNS_PID=$!
	_i=0
	until grep -qsx ready "$tmp/delaylink.out"; do
		_i=$((_i + 1))
		if [ "$_i" -ge 250 ] || ! kill -0 "$NETNS_PID" 2>/dev/null; then
			echo "netns_up: delaylink: $(cat "$tmp/delaylink.err")" >&2
			return 1
		fi
		sleep 0.02
	done
	# A SYN to a closed port of A comes back refused: the path carries
	# both ways. A probe waits 2 s plus four one-way delays; ten at most.
	_t=$(awk -v d="$_d" 'BEGIN { printf "%.0f", 2 + 4 * d / 1000 }')
	_i=0
	until in_b socat -u /dev/null "TCP:$NETNS_ADDR_A:9,connect-timeout=$_t" 2>&1 |
		grep -q 'Connection refused'; do
		_i=$((_i + 1))
		[ "$_i" -lt 10 ] || { echo "netns_up: no SYN crossed the link" >&2; return 1; }
	done
}

netns_down() {
	[ -n "$NETNS_A$NETNS_B" ] || return 0
	# shellcheck disable=SC2046 # one PID a word
	kill $(netns_pids) 2>/dev/null
	_i=0
	while [ -n "$(netns_pids)" ] && [ "$_i" -lt 100 ]; do
		_i=$((_i + 1))
		sleep 0.05
	done
	# shellcheck disable=SC2046
	kill -KILL $(netns_pids) 2>/dev/null
	# The forwarder's tun descriptors hold the namespaces: it goes first.
	if [ -n "$NETNS_PID" ]; then
		kill "$NETNS_PID" 2>/dev/null
		wait_gone "$NETNS_PID" || kill -KILL "$NETNS_PID" 2>/dev/null
	fi
	for _ns in $NETNS_A $NETNS_B; do ip netns del "$_ns" 2>/dev/null; done
	NETNS_A="" NETNS_B="" NETNS_PID=""
}
