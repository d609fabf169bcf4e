#!/usr/bin/env bats
# The encrypted channel's cryptography (src/lib/chacha20.c poly1305.c aead.c
# and their vector paths, x25519.c hkdf.c noise.c record.c): published
# vectors, agreement with OpenSSL (Debian's python3-cryptography) on random
# inputs, a handshake and streams with an independent Noise implementation
# (noise-c, in tests/node), and what a man in the middle of the transport can
# and cannot do.
load helpers

bats_require_minimum_version 1.5.0

PY=/usr/bin/python3 # Debian's, which has python3-cryptography; a pyenv one may come first on PATH

setup() {
	common_setup
	CT=${CRYPTOTEST:-$TOOLS/cryptotest} # CRYPTOTEST: e.g. a sanitizer build of it
	NODEPEER=$BATS_TEST_DIRNAME/node/peer.js
	PSK=$("$CT" psk "k12")
	IPSK=$PSK RPSK=$PSK
	# Several records each way (a record holds 65518 bytes), and sizes that are not round.
	head -c 200003 /dev/urandom >init.in
	head -c 131101 /dev/urandom >resp.in
}
teardown() { common_teardown; }

# peer IMPL ROLE PSK [ARGS...]: one side, c (cryptotest) or node (noise-c), on fds 3 and 4.
peer() {
	local impl=$1 role=$2 psk=$3
	shift 3
	if [ "$impl" = c ]; then
		timeout 30 "$CT" "noise-$role" "$psk" "$@"
	else
		timeout 30 node "$NODEPEER" "$role" "$psk" "$@"
	fi
}

# converse INIT RESP [DIR MODE [N]]: the initiator (c or node) with $IPSK and the
# responder with $RPSK over two FIFOs, each sending its *.in and writing what
# it receives to its *.out, its errors to *.err and its exit status to *.rc.
# With DIR (i2r or r2i), `cryptotest tamper MODE N` sits in that direction.
# Extra peer arguments: $IARGS and $RARGS.
converse() {
	local init=$1 resp=$2 dir=${3:-} iw=i2r rw=r2i
	shift 2
	[ -z "$dir" ] || shift
	mkfifo i2r r2i raw
	case $dir in
	i2r) iw=raw ;;
	r2i) rw=raw ;;
	esac
	# Opening order matters for FIFOs: each open waits for the other end.
	if [ -n "$dir" ]; then
		timeout 30 "$CT" tamper "$@" <raw >"$dir" 2>tamper.err &
		track $!
	fi
	# shellcheck disable=SC2086
	{
		r=0 # not `cmd; echo $?`: the tests' errexit would end the group at a failing cmd
		peer "$resp" resp "$RPSK" ${RARGS:-} 3<i2r 4>"$rw" <resp.in >resp.out 2>resp.err || r=$?
		echo "$r" >resp.rc
	} &
	track $!
	# shellcheck disable=SC2086
	{
		r=0
		peer "$init" init "$IPSK" ${IARGS:-} 4>"$iw" 3<r2i <init.in >init.out 2>init.err || r=$?
		echo "$r" >init.rc
	} &
	track $!
	wait_for 40 both_rc
	show # seen only when the test fails
}
both_rc() { [ -s init.rc ] && [ -s resp.rc ]; }
rc() { cat "$1.rc"; }
show() {
	local f
	for f in init.rc resp.rc init.err resp.err tamper.err; do
		[ ! -e "$f" ] || { echo "== $f" && cat "$f"; }
	done
}

# A conversation that went through: both exit 0 and each got all the other sent.
delivered() {
	[ "$(rc init)" -eq 0 ] && [ "$(rc resp)" -eq 0 ] &&
		cmp init.in resp.out && cmp resp.in init.out
}

@test "cryptotest: every RFC 8439, RFC 7748, RFC 5869 and Noise vector and failure case passes" {
	run --separate-stderr "$CT"
	[ "$status" -eq 0 ]
	[[ "$output" != *"not ok"* ]]
	[ "${lines[-1]}" = "1..${#lines[@]}" ] || [ "${lines[-1]}" = "1..$((${#lines[@]} - 1))" ]
	[ "$(grep -c '^ok ' <<<"$output")" -ge 150 ]
	grep -q '^ok .* RFC 7748 5.2 after 1,000 iterations' <<<"$output"
	grep -q '^ok .* Noise NNpsk0 transport message 6' <<<"$output"
}

@test "cryptotest rejects bad operands with a usage error" {
	run --separate-stderr "$CT" x25519 00 11
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"not 32 bytes of hex"* ]]
	run --separate-stderr "$CT" frobnicate
	[ "$status" -eq 2 ]
	[[ "$stderr" == "usage: cryptotest"* ]]
}

@test "X25519 agrees with OpenSSL: 40 random key pairs, both sides, and random points" {
	run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/crypto/xcheck.py" "$CT" x25519 40
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "x25519: 40 trials, 0 disagreements" ]
}

@test "ChaCha20-Poly1305 agrees with OpenSSL: 40 messages we seal and it opens, it seals and we open" {
	run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/crypto/xcheck.py" "$CT" aead 40
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "aead: 40 trials, 0 disagreements" ]
}

@test "HKDF-SHA256 and the PSK derivation agree with OpenSSL: 40 random inputs each" {
	run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/crypto/xcheck.py" "$CT" hkdf 40
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "hkdf: 40 trials, 0 disagreements" ]
	run --separate-stderr "$PY" "$BATS_TEST_DIRNAME/crypto/xcheck.py" "$CT" psk 40
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$output" = "psk: 40 trials, 0 disagreements" ]
}

@test "cryptotest open refuses an altered message with exit 1 and no plaintext" {
	k=$(printf '%064d' 7) n=000000000000000000000001
	ct=$("$CT" seal "$k" "$n" "" 68656c6c6f)
	run --separate-stderr "$CT" open "$k" "$n" "" "$ct"
	[ "$status" -eq 0 ]
	[ "$output" = 68656c6c6f ]
	run --separate-stderr "$CT" open "$k" "$n" "" "${ct%?}0"
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == *"Bad message"* ]]
}

@test "handshake and streams both ways: our initiator, noise-c's responder" {
	need_node
	IARGS="-H init.hash" RARGS="-H resp.hash" converse c node
	cat init.err resp.err
	delivered
	[ -s init.hash ]
	cmp init.hash resp.hash # the same handshake hash: the same transcript
}

@test "handshake and streams both ways: noise-c's initiator, our responder, with a prologue" {
	need_node
	IARGS="-H init.hash -p 736f636b6574706f6f6c" RARGS="-H resp.hash -p 736f636b6574706f6f6c" \
		converse node c
	cat init.err resp.err
	delivered
	cmp init.hash resp.hash
}

@test "handshake and streams both ways: ours on both sides, through a tamper filter that passes all" {
	converse c c i2r pass
	cat init.err resp.err
	delivered
}

@test "a wrong PSK: noise-c's responder refuses our first message, nothing is delivered" {
	need_node
	RPSK=$("$CT" psk "k13")
	converse c node
	[ "$(rc resp)" -eq 1 ]
	grep -q 'handshake failed: NOISE_ERROR_MAC_FAILURE' resp.err
	[ "$(rc init)" -eq 1 ]
	grep -q 'handshake failed' init.err
	[ ! -s init.out ]
	[ ! -s resp.out ]
}

@test "a wrong PSK: our responder refuses noise-c's first message (Bad message), nothing is delivered" {
	need_node
	IPSK=$("$CT" psk "k13")
	converse node c
	[ "$(rc resp)" -eq 1 ]
	grep -q 'cryptotest: handshake failed: Bad message' resp.err
	[ "$(rc init)" -eq 1 ]
	[ ! -s init.out ]
	[ ! -s resp.out ]
}

@test "a wrong PSK between two of ours: Bad message, nothing delivered" {
	IPSK=$("$CT" psk "k13")
	converse c c
	[ "$(rc resp)" -eq 1 ]
	grep -q 'handshake failed: Bad message' resp.err
	[ "$(rc init)" -eq 1 ]
	[ ! -s init.out ]
	[ ! -s resp.out ]
}

@test "another prologue: the handshake fails although the PSK is right" {
	need_node
	IARGS="-p 7631" RARGS="-p 7632" converse node c
	[ "$(rc resp)" -eq 1 ]
	grep -q 'handshake failed: Bad message' resp.err
	[ ! -s resp.out ]
}

@test "a flipped byte in the first handshake message: refused" {
	converse c c i2r flip 0
	[ "$(rc resp)" -eq 1 ]
	grep -q 'handshake failed: Bad message' resp.err
	[ ! -s resp.out ]
	[ ! -s init.out ]
}

@test "a flipped byte in the second handshake message: noise-c's initiator refuses it" {
	need_node
	converse node c r2i flip 0
	[ "$(rc init)" -eq 1 ]
	grep -q 'handshake failed: NOISE_ERROR_MAC_FAILURE' init.err
	[ ! -s init.out ]
}

@test "a flipped byte in a record from noise-c: we reject it (Bad message), keep only what came before" {
	need_node
	converse node c i2r flip 3
	[ "$(rc resp)" -eq 1 ]
	grep -q 'cryptotest: record rejected: Bad message' resp.err
	# Frame 1 is noise-c's key confirmation (an empty record, channel.h), frame 2
	# the first data record: it arrived whole; nothing of frame 3 or after did.
	n=$(stat -c %s resp.out)
	[ "$n" -gt 0 ]
	[ "$n" -lt "$(stat -c %s init.in)" ]
	cmp -n "$n" init.in resp.out
}

@test "a flipped byte in a record from us: noise-c rejects it" {
	need_node
	converse c node i2r flip 1
	[ "$(rc resp)" -eq 1 ]
	grep -q 'peer.js: record rejected: NOISE_ERROR_MAC_FAILURE' resp.err
	[ ! -s resp.out ]
}

@test "the END record withheld: we report the stream truncated (Broken pipe), not ended" {
	need_node
	converse node c i2r drop-last
	[ "$(rc resp)" -eq 1 ]
	grep -q 'cryptotest: stream truncated: Broken pipe' resp.err
	cmp init.in resp.out # every DATA record came through; only the end is missing
}

@test "the END record withheld from noise-c: it reports the stream truncated" {
	need_node
	converse c node i2r drop-last
	[ "$(rc resp)" -eq 1 ]
	grep -q 'peer.js: stream truncated' resp.err
}

@test "the transport cut in the middle of a record: truncated" {
	converse c c r2i cut 2
	[ "$(rc init)" -eq 1 ]
	grep -q 'stream truncated: Broken pipe' init.err
}

@test "a replayed record: rejected (Bad message)" {
	need_node
	converse node c i2r replay 1
	[ "$(rc resp)" -eq 1 ]
	grep -q 'record rejected: Bad message' resp.err
}

@test "two records swapped: rejected (Bad message)" {
	converse c c i2r swap 1
	[ "$(rc resp)" -eq 1 ]
	grep -q 'record rejected: Bad message' resp.err
	# The first record was the one missing, so nothing was delivered.
	[ ! -s resp.out ]
}

@test "a record dropped: the next one is rejected (Bad message)" {
	converse c c r2i drop 1
	[ "$(rc init)" -eq 1 ]
	grep -q 'record rejected: Bad message' init.err
	[ ! -s init.out ]
}
