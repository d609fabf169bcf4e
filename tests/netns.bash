# tests/netns.bash: two network namespaces joined by a path with latency,
# loss and a bandwidth (tests/tools/delaylink: this kernel has no netem),
# for every promise a test makes about a network. Load it after helpers,
# and put netns_down in teardown, so that a failing test leaves nothing:
#
#	load helpers
#	load netns
#	setup() { common_setup; }
#	teardown() { netns_down; common_teardown; }
#
#	netns_up 50 --loss 1              # 100 ms round trip, 1% of packets lost
#	port=$(free_port_in b)
#	in_b socat -u "TCP-LISTEN:$port,bind=$NETNS_ADDR_B" CREATE:got 3>&- &
#	wait_listening_in b "$port"
#	in_a socat -u OPEN:data "TCP:$NETNS_ADDR_B:$port"
#
# netns_up ONEWAY_MS [--jitter MS] [--loss PCT] [--rate BYTES_PER_S]
#          [--queue BYTES] [--line BYTES] [--mtu N] [--reorder] [--seed N]
#          [--tcp-buf BYTES]
#	Two namespaces of this test ($NETNS_A, $NETNS_B, loopback up in each),
#	joined by delaylink ($NETNS_PID, its stderr in $NETNS_LOG) with
#	addresses $NETNS_ADDR_A and $NETNS_ADDR_B on device $NETNS_IF;
#	returns once a TCP SYN from B to A has been answered across the link.
#	The options are delaylink's -j -l -r -q -Q -m -R -s; --tcp-buf raises
#	the most TCP may buffer per socket in both namespaces (tcp_rmem and
#	tcp_wmem's maximum; a namespace starts with the host's). Skips the test
#	only where tun devices or namespaces cannot be had at all.
# in_a CMD... / in_b CMD...
#	Run a program (not a shell function) in namespace A or B.
# free_port_in a|b [LO HI], listening_in a|b PORT, wait_listening_in a|b PORT [S]
#	helpers.bash's free_port, listening and wait_listening, in a namespace.
# netns_stats
#	The forwarder's counters now: its two lines (a>b, b>a), asked by SIGUSR1.
# netns_counter NAME [a>b|b>a]
#	One counter of those lines (in out bytes lost full over err held),
#	summed over both directions unless one is named.
# netns_down
#	Ends every process in either namespace (TERM, then KILL), the
#	forwarder, and deletes the namespaces. Safe to call twice, or when
#	netns_up never ran or failed halfway.

NETNS_A="" NETNS_B="" NETNS_PID=""
NETNS_ADDR_A=10.77.0.1
NETNS_ADDR_B=10.77.0.2
NETNS_IF=dl0

in_a() { ip netns exec "$NETNS_A" "$@"; }
in_b() { ip netns exec "$NETNS_B" "$@"; }

_netns_in() { # a|b CMD...
	local side=$1
	shift
	case $side in
	a | A) in_a "$@" ;;
	b | B) in_b "$@" ;;
	*) echo "netns: '$side' is neither a nor b" >&2; return 2 ;;
	esac
}
free_port_in() { _netns_in "$1" "$TOOLS/freeport" "${@:2}"; }
listening_in() { [ -n "$(_netns_in "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]; }
wait_listening_in() { wait_for "${3:-5}" listening_in "$1" "$2"; }

_netns_pids() {
	local ns
	for ns in "$NETNS_A" "$NETNS_B"; do
		if [ -n "$ns" ]; then
			ip netns pids "$ns" 2>/dev/null
		fi
	done
	return 0
}
_netns_empty() { [ -z "$(_netns_pids)" ]; }

# Namespaces of an earlier run that died without its teardown (its bats
# process is gone): their names embed that process's PID.
_netns_reap() {
	local ns pid
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		[[ $ns =~ ^spnl([0-9]+)t[0-9]+[ab]$ ]] || continue
		pid=${BASH_REMATCH[1]}
		[ "$pid" != "$$" ] || continue
		kill -0 "$pid" 2>/dev/null && continue
		# shellcheck disable=SC2046 # one PID a word
		kill -KILL $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	return 0
}

_netns_ready() { # delaylink said ready, or ended
	grep -qx ready "$BATS_TEST_TMPDIR/delaylink.out" 2>/dev/null || ! alive "$NETNS_PID"
}

# One probe: a SYN from B to a closed port of A comes back refused, so the
# path carries both ways (no ping here). Bounded by `timeout`.
_netns_crosses() {
	local out
	out=$(in_b timeout "$1" bash -c "exec 3<>/dev/tcp/$NETNS_ADDR_A/9" 2>&1)
	[[ $out == *"Connection refused"* ]]
}

netns_up() {
	local oneway=${1:?netns_up ONEWAY_MS [options]} err rc i probe jitter=0 tcpbuf="" ns
	local -a args=(-d "$oneway" -a "$NETNS_ADDR_A" -b "$NETNS_ADDR_B" -i "$NETNS_IF")
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--jitter) args+=(-j "$2"); jitter=$2; shift 2 ;;
		--loss) args+=(-l "$2"); shift 2 ;;
		--rate) args+=(-r "$2"); shift 2 ;;
		--queue) args+=(-q "$2"); shift 2 ;;
		--line) args+=(-Q "$2"); shift 2 ;;
		--mtu) args+=(-m "$2"); shift 2 ;;
		--seed) args+=(-s "$2"); shift 2 ;;
		--reorder) args+=(-R); shift ;;
		--tcp-buf) tcpbuf=$2; shift 2 ;;
		*) echo "netns_up: unknown option $1" >&2; return 2 ;;
		esac
	done
	[ -c /dev/net/tun ] || skip "no /dev/net/tun on this machine"
	command -v ip >/dev/null || skip "no ip(8) on this machine"
	[ -z "$NETNS_A" ] || netns_down
	_netns_reap
	# This process and test: parallel and leftover runs never meet.
	NETNS_A=spnl$$t${BATS_TEST_NUMBER}a
	NETNS_B=spnl$$t${BATS_TEST_NUMBER}b
	NETNS_LOG=$BATS_TEST_TMPDIR/delaylink.err
	err=$BATS_TEST_TMPDIR/netns.err
	for ns in "$NETNS_A" "$NETNS_B"; do
		# the same name can only be ours from a dead run whose PID came back
		ip netns del "$ns" 2>/dev/null || true
		if ! ip netns add "$ns" 2>"$err"; then
			if grep -Eq 'not permitted|denied|not supported|not implemented' "$err"; then
				skip "network namespaces unavailable: $(cat "$err")"
			fi
			echo "netns_up: ip netns add $ns: $(cat "$err")" >&2
			return 1
		fi
		ip netns exec "$ns" ip link set lo up || return 1
		if [ -n "$tcpbuf" ]; then
			ip netns exec "$ns" sysctl -q -w "net.ipv4.tcp_rmem=4096 131072 $tcpbuf" \
				"net.ipv4.tcp_wmem=4096 16384 $tcpbuf" || return 1
		fi
	done
	# No fd 3: bats waits for whoever holds it.
	"$TOOLS/delaylink" "${args[@]}" "$NETNS_A" "$NETNS_B" \
		>"$BATS_TEST_TMPDIR/delaylink.out" 2>"$NETNS_LOG" 3>&- &
	NETNS_PID=$!
	track "$NETNS_PID"
	wait_for 10 _netns_ready || true
	if ! grep -qx ready "$BATS_TEST_TMPDIR/delaylink.out"; then
		rc=0
		alive "$NETNS_PID" || wait "$NETNS_PID" || rc=$?
		[ "$rc" -ne 3 ] || skip "tun devices unavailable: $(cat "$NETNS_LOG")"
		echo "netns_up: delaylink not ready (status $rc): $(cat "$NETNS_LOG")" >&2
		return 1
	fi
	# A probe's round trip is 2 x (delay + jitter); a lost SYN or reset
	# just fails that probe (the kernel would resend the SYN after 1 s).
	probe=$(awk -v d="$oneway" -v j="$jitter" 'BEGIN { printf "%.2f", 1 + 4 * (d + j) / 1000 }')
	for ((i = 0; i < 10; i++)); do
		_netns_crosses "$probe" && return 0
	done
	echo "netns_up: no TCP SYN crossed $NETNS_B -> $NETNS_A in 10 tries" >&2
	return 1
}

netns_stats() {
	local n
	n=$(grep -c '^delaylink: b>a ' "$NETNS_LOG")
	kill -USR1 "$NETNS_PID" || return 1
	# b>a is the second of the two lines
	wait_for 5 _netns_lines_over "$n" || return 1
	grep '^delaylink: [ab]>[ab] ' "$NETNS_LOG" | tail -n 2
}
_netns_lines_over() { [ "$(grep -c '^delaylink: b>a ' "$NETNS_LOG")" -gt "$1" ]; }

netns_counter() { # NAME [a>b|b>a]
	netns_stats | awk -v k="$1" -v d="${2:-}" '
		d == "" || $2 == d { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) s += kv[2] } }
		END { print s + 0 }'
}

netns_down() {
	local ns pids
	[ -n "${NETNS_A:-}${NETNS_B:-}" ] || return 0
	# What a test left running in either namespace: a server, a sender.
	pids=$(_netns_pids)
	# shellcheck disable=SC2086 # one PID a word
	[ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
	if ! wait_for 5 _netns_empty; then
		# shellcheck disable=SC2046
		kill -KILL $(_netns_pids) 2>/dev/null || true
		wait_for 5 _netns_empty || echo "netns_down: still in the namespaces: $(_netns_pids)" >&2
	fi
	# The forwarder's tun descriptors hold the devices, and through them
	# the namespaces: it goes before the names do.
	if [ -n "${NETNS_PID:-}" ]; then
		kill -TERM "$NETNS_PID" 2>/dev/null || true
		wait_gone "$NETNS_PID" 5 || kill -KILL "$NETNS_PID" 2>/dev/null || true
		wait_gone "$NETNS_PID" 5 || echo "netns_down: delaylink $NETNS_PID does not end" >&2
		wait "$NETNS_PID" 2>/dev/null || true
	fi
	for ns in "$NETNS_A" "$NETNS_B"; do
		[ -z "$ns" ] || ip netns del "$ns" 2>/dev/null || true
	done
	NETNS_A="" NETNS_B="" NETNS_PID=""
	return 0
}
