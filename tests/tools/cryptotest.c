/*
 * cryptotest: check the channel's cryptography (src/lib/chacha20.c,
 * poly1305.c, aead.c and their vector paths, x25519.c, hkdf.c, noise.c,
 * record.c) against published test vectors:
 * RFC 8439 (ChaCha20, Poly1305, the AEAD: sections 2 and appendix A),
 * RFC 7748 (X25519, 1 and 1000 iterations, Diffie-Hellman), RFC 5869
 * (HKDF-SHA256, cases 1-3) and cacophony's Noise_NNpsk0_25519_ChaChaPoly_
 * SHA256 vector, the AEAD of two parts against the AEAD of them joined,
 * then the failure cases of the handshake and the record layer. Prints one TAP-like line per check and exits 1 if any fails.
 *
 * The subcommands let tests compare with other implementations:
 *   cryptotest million			the RFC 7748 1,000,000 iterations (slow)
 *   cryptotest x25519 SCALAR POINT	X25519(SCALAR, POINT)
 *   cryptotest x25519-base SCALAR	the public key of SCALAR
 *   cryptotest seal KEY NONCE AD PT	ChaCha20-Poly1305 ciphertext and tag
 *   cryptotest open KEY NONCE AD CT	the plaintext, or exit 1 on a bad tag
 *   cryptotest hkdf SALT IKM INFO LEN	HKDF-SHA256 output
 *   cryptotest psk KEYTEXT		noise_psk_from_key of KEYTEXT (not hex)
 *   cryptotest noise-init|noise-resp PSK [-H FILE] [-p PROLOGUE]
 *	a Noise peer: the handshake on fds 3 (in) and 4 (out), each
 *	message after a 2-byte big-endian length, then records both ways:
 *	stdin to the peer, the peer's stream to stdout. -H writes the
 *	handshake hash to FILE. Exits 0 once both streams ended with END.
 *   cryptotest tamper MODE [N]	copy length-prefixed frames from stdin to
 *	stdout, doing one harm: pass, flip N (a byte of frame N), drop N,
 *	replay N, swap N (N with N+1), cut N (stop in the middle of N),
 *	drop-last (withhold the last frame, the END). Frame 0 is the
 *	handshake message of that direction.
 *   cryptotest bench			X25519 and AEAD speed
 * Byte strings are hex; results go to stdout in hex.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/aead.h"
#include "lib/chacha20.h"
#include "lib/hkdf.h"
#include "lib/io.h"
#include "lib/mem.h"
#include "lib/noise.h"
#include "lib/poly1305.h"
#include "lib/record.h"
#include "lib/x25519.h"

#define ARG_MAX_BYTES 70000 /* the longest hex operand, in bytes */

static int failures, count;

static void result(const char *name, int ok)
{
	count++;
	printf("%sok %d %s\n", ok ? "" : "not ", count, name);
	if (!ok)
		failures++;
}

/* Parse hex into out (room cap); returns the byte count, or -1 when s is not even-length hex. */
static long unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);

	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int j = 0; j < 2; j++) {
			char c = s[2 * i + (size_t)j];
			int d = c >= '0' && c <= '9'   ? c - '0'
				: c >= 'a' && c <= 'f' ? c - 'a' + 10
				: c >= 'A' && c <= 'F' ? c - 'A' + 10
						       : -1;
			if (d < 0)
				return -1;
			v = v << 4 | d;
		}
		out[i] = (unsigned char)v;
	}
	return (long)(n / 2);
}

/* unhex of a vector constant, which is known to be good. */
static size_t vhex(const char *s, unsigned char *out, size_t cap)
{
	long n = unhex(s, out, cap);

	if (n < 0) {
		fprintf(stderr, "cryptotest: bad vector constant %.20s...\n", s);
		exit(1);
	}
	return (size_t)n;
}

/* got matches the hex want; prints both when it does not. */
static void check_bytes(const char *name, const unsigned char *got, size_t n, const char *want)
{
	static char hex[2 * ARG_MAX_BYTES + 1];
	int ok;

	mem_hex(got, n, hex);
	ok = strcmp(hex, want) == 0;
	result(name, ok);
	if (!ok)
		printf("#   got  %s\n#   want %s\n", hex, want);
}

static void check_fail(const char *name, long r, int err)
{
	int ok = r == -1 && errno == err;

	result(name, ok);
	if (!ok)
		printf("#   got %ld (%s), want -1 (%s)\n", r, r < 0 ? strerror(errno) : "no error",
		       strerror(err));
}

struct v_block {
	const char *name, *key;
	uint32_t counter;
	const char *nonce, *out;
};
struct v_xor {
	const char *name, *key;
	uint32_t counter;
	const char *nonce, *pt, *ct;
};
struct v_mac {
	const char *name, *key, *msg, *tag;
};
struct v_aead {
	const char *name, *key, *nonce, *ad, *pt, *ct; /* ct: ciphertext and tag */
};
struct v_dh {
	const char *name, *scalar, *point, *out;
};
struct v_hkdf {
	const char *name, *ikm, *salt, *info;
	size_t len;
	const char *prk, *okm;
};

/*
 * RFC 8439, RFC 7748 and RFC 5869, copied from the RFCs' text (checked
 * against OpenSSL through python3-cryptography when they were copied).
 * The plaintexts of RFC 8439 are its texts: "Ladies and Gentlemen of the
 * class of '99...", "Any submission to the IETF...", "'Twas brillig...",
 * "Internet-Drafts are draft documents...".
 */
static const struct v_block blocks[] = {
    {"RFC 8439 2.3.2 block", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1,
     "000000090000004a00000000",
     "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4ed2826446079faa0914c2"
     "d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"},
    {"RFC 8439 A.1 #1 block", "0000000000000000000000000000000000000000000000000000000000000000", 0,
     "000000000000000000000000",
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724"
     "e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"},
    {"RFC 8439 A.1 #2 block", "0000000000000000000000000000000000000000000000000000000000000000", 1,
     "000000000000000000000000",
     "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d571"
     "33b074d839d531ed1f28510afb45ace10a1f4b794d6f"},
    {"RFC 8439 A.1 #3 block", "0000000000000000000000000000000000000000000000000000000000000001", 1,
     "000000000000000000000000",
     "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a8eca00bbb4a73bdad192"
     "b5c42f73f2fd4e273644c8b36125a64addeb006c13a0"},
    {"RFC 8439 A.1 #4 block", "00ff000000000000000000000000000000000000000000000000000000000000", 2,
     "000000000000000000000000",
     "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca13b25aa26cb4a648cb9b"
     "9d1be65b2c0924a66c54d545ec1b7374f4872e99f096"},
    {"RFC 8439 A.1 #5 block", "0000000000000000000000000000000000000000000000000000000000000000", 0,
     "000000000000000000000002",
     "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c78a970e0e955c14f3a88e"
     "741b97c286f75f8fc299e8148362fa198a39531bed6d"},
};
static const struct v_xor encs[] = {
    {"RFC 8439 2.4.2 encryption",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1,
     "000000000000004a00000000",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a20"
     "4966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f722074686520"
     "6675747572652c2073756e73637265656e20776f756c642062652069742e",
     "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f59"
     "3dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d"
     "16ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d"},
    {"RFC 8439 A.2 #1 encryption",
     "0000000000000000000000000000000000000000000000000000000000000000", 0,
     "000000000000000000000000",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000",
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724"
     "e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"},
    {"RFC 8439 A.2 #2 encryption",
     "0000000000000000000000000000000000000000000000000000000000000001", 1,
     "000000000000000000000002",
     "416e79207375626d697373696f6e20746f20746865204945544620696e74656e64656420627920746865"
     "20436f6e7472696275746f7220666f72207075626c69636174696f6e20617320616c6c206f7220706172"
     "74206f6620616e204945544620496e7465726e65742d4472616674206f722052464320616e6420616e79"
     "2073746174656d656e74206d6164652077697468696e2074686520636f6e74657874206f6620616e2049"
     "45544620616374697669747920697320636f6e7369646572656420616e20224945544620436f6e747269"
     "627574696f6e222e20537563682073746174656d656e747320696e636c756465206f72616c2073746174"
     "656d656e747320696e20494554462073657373696f6e732c2061732077656c6c20617320777269747465"
     "6e20616e6420656c656374726f6e696320636f6d6d756e69636174696f6e73206d61646520617420616e"
     "792074696d65206f7220706c6163652c207768696368206172652061646472657373656420746f",
     "a3fbf07df3fa2fde4f376ca23e82737041605d9f4f4f57bd8cff2c1d4b7955ec2a97948bd3722915c8f3"
     "d337f7d370050e9e96d647b7c39f56e031ca5eb6250d4042e02785ececfa4b4bb5e8ead0440e20b6e8db"
     "09d881a7c6132f420e52795042bdfa7773d8a9051447b3291ce1411c680465552aa6c405b7764d5e87be"
     "a85ad00f8449ed8f72d0d662ab052691ca66424bc86d2df80ea41f43abf937d3259dc4b2d0dfb48a6c91"
     "39ddd7f76966e928e635553ba76c5c879d7b35d49eb2e62b0871cdac638939e25e8a1e0ef9d5280fa8ca"
     "328b351c3c765989cbcf3daa8b6ccc3aaf9f3979c92b3720fc88dc95ed84a1be059c6499b9fda236e7e8"
     "18b04b0bc39c1e876b193bfe5569753f88128cc08aaa9b63d1a16f80ef2554d7189c411f5869ca52c5b8"
     "3fa36ff216b9c1d30062bebcfd2dc5bce0911934fda79a86f6e698ced759c3ff9b6477338f3da4f9cd85"
     "14ea9982ccafb341b2384dd902f3d1ab7ac61dd29c6f21ba5b862f3730e37cfdc4fd806c22f221"},
    {"RFC 8439 A.2 #3 encryption",
     "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", 42,
     "000000000000000000000002",
     "2754776173206272696c6c69672c20616e642074686520736c6974687920746f7665730a446964206779"
     "726520616e642067696d626c6520696e2074686520776162653a0a416c6c206d696d7379207765726520"
     "74686520626f726f676f7665732c0a416e6420746865206d6f6d65207261746873206f75746772616265"
     "2e",
     "62e6347f95ed87a45ffae7426f27a1df5fb69110044c0d73118effa95b01e5cf166d3df2d721caf9b21e"
     "5fb14c616871fd84c54f9d65b283196c7fe4f60553ebf39c6402c42234e32a356b3e764312a61a553205"
     "5716ead6962568f87d3f3f7704c6a8d1bcd1bf4d50d6154b6da731b187b58dfd728afa36757a797ac188"
     "d1"},
};
static const struct v_mac macs[] = {
    {"RFC 8439 2.5.2 Poly1305", "85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b",
     "43727970746f6772617068696320466f72756d2052657365617263682047726f7570",
     "a8061dc1305136c6c22b8baf0c0127a9"},
    {"RFC 8439 A.3 #1 Poly1305", "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000",
     "00000000000000000000000000000000"},
    {"RFC 8439 A.3 #2 Poly1305", "0000000000000000000000000000000036e5f6b5c5e06070f0efca96227a863e",
     "416e79207375626d697373696f6e20746f20746865204945544620696e74656e64656420627920746865"
     "20436f6e7472696275746f7220666f72207075626c69636174696f6e20617320616c6c206f7220706172"
     "74206f6620616e204945544620496e7465726e65742d4472616674206f722052464320616e6420616e79"
     "2073746174656d656e74206d6164652077697468696e2074686520636f6e74657874206f6620616e2049"
     "45544620616374697669747920697320636f6e7369646572656420616e20224945544620436f6e747269"
     "627574696f6e222e20537563682073746174656d656e747320696e636c756465206f72616c2073746174"
     "656d656e747320696e20494554462073657373696f6e732c2061732077656c6c20617320777269747465"
     "6e20616e6420656c656374726f6e696320636f6d6d756e69636174696f6e73206d61646520617420616e"
     "792074696d65206f7220706c6163652c207768696368206172652061646472657373656420746f",
     "36e5f6b5c5e06070f0efca96227a863e"},
    {"RFC 8439 A.3 #3 Poly1305", "36e5f6b5c5e06070f0efca96227a863e00000000000000000000000000000000",
     "416e79207375626d697373696f6e20746f20746865204945544620696e74656e64656420627920746865"
     "20436f6e7472696275746f7220666f72207075626c69636174696f6e20617320616c6c206f7220706172"
     "74206f6620616e204945544620496e7465726e65742d4472616674206f722052464320616e6420616e79"
     "2073746174656d656e74206d6164652077697468696e2074686520636f6e74657874206f6620616e2049"
     "45544620616374697669747920697320636f6e7369646572656420616e20224945544620436f6e747269"
     "627574696f6e222e20537563682073746174656d656e747320696e636c756465206f72616c2073746174"
     "656d656e747320696e20494554462073657373696f6e732c2061732077656c6c20617320777269747465"
     "6e20616e6420656c656374726f6e696320636f6d6d756e69636174696f6e73206d61646520617420616e"
     "792074696d65206f7220706c6163652c207768696368206172652061646472657373656420746f",
     "f3477e7cd95417af89a6b8794c310cf0"},
    {"RFC 8439 A.3 #4 Poly1305", "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
     "2754776173206272696c6c69672c20616e642074686520736c6974687920746f7665730a446964206779"
     "726520616e642067696d626c6520696e2074686520776162653a0a416c6c206d696d7379207765726520"
     "74686520626f726f676f7665732c0a416e6420746865206d6f6d65207261746873206f75746772616265"
     "2e",
     "4541669a7eaaee61e708dc7cbcc5eb62"},
    {"RFC 8439 A.3 #5 Poly1305", "0200000000000000000000000000000000000000000000000000000000000000",
     "ffffffffffffffffffffffffffffffff", "03000000000000000000000000000000"},
    {"RFC 8439 A.3 #6 Poly1305", "02000000000000000000000000000000ffffffffffffffffffffffffffffffff",
     "02000000000000000000000000000000", "03000000000000000000000000000000"},
    {"RFC 8439 A.3 #7 Poly1305", "0100000000000000000000000000000000000000000000000000000000000000",
     "fffffffffffffffffffffffffffffffff0ffffffffffffffffffffffffffffff11000000000000000000"
     "000000000000",
     "05000000000000000000000000000000"},
    {"RFC 8439 A.3 #8 Poly1305", "0100000000000000000000000000000000000000000000000000000000000000",
     "fffffffffffffffffffffffffffffffffbfefefefefefefefefefefefefefefe01010101010101010101"
     "010101010101",
     "00000000000000000000000000000000"},
    {"RFC 8439 A.3 #9 Poly1305", "0200000000000000000000000000000000000000000000000000000000000000",
     "fdffffffffffffffffffffffffffffff", "faffffffffffffffffffffffffffffff"},
    {"RFC 8439 A.3 #10 Poly1305",
     "0100000000000000040000000000000000000000000000000000000000000000",
     "e33594d7505e43b900000000000000003394d7505e4379cd010000000000000000000000000000000000"
     "00000000000001000000000000000000000000000000",
     "14000000000000005500000000000000"},
    {"RFC 8439 A.3 #11 Poly1305",
     "0100000000000000040000000000000000000000000000000000000000000000",
     "e33594d7505e43b900000000000000003394d7505e4379cd010000000000000000000000000000000000"
     "000000000000",
     "13000000000000000000000000000000"},
};
static const struct v_block keygens[] = {
    {"RFC 8439 2.6.2 key generation",
     "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", 0,
     "000000000001020304050607",
     "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646"},
    {"RFC 8439 A.4 #1 key generation",
     "0000000000000000000000000000000000000000000000000000000000000000", 0,
     "000000000000000000000000",
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"},
    {"RFC 8439 A.4 #2 key generation",
     "0000000000000000000000000000000000000000000000000000000000000001", 0,
     "000000000000000000000002",
     "ecfa254f845f647473d3cb140da9e87606cb33066c447b87bc2666dde3fbb739"},
    {"RFC 8439 A.4 #3 key generation",
     "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", 0,
     "000000000000000000000002",
     "965e3bc6f9ec7ed9560808f4d229f94b137ff275ca9b3fcbdd59deaad23310ae"},
};
static const struct v_aead aeads[] = {
    {"RFC 8439 2.8.2 AEAD", "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
     "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7",
     "4c616469657320616e642047656e746c656d656e206f662074686520636c617373206f66202739393a20"
     "4966204920636f756c64206f6666657220796f75206f6e6c79206f6e652074697020666f722074686520"
     "6675747572652c2073756e73637265656e20776f756c642062652069742e",
     "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fa"
     "fb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4"
     "fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b61161ae10b594f09e26a7e902ecb"
     "d0600691"},
    {"RFC 8439 A.5 AEAD", "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
     "000000000102030405060708", "f33388860000000000004e91",
     "496e7465726e65742d4472616674732061726520647261667420646f63756d656e74732076616c696420"
     "666f722061206d6178696d756d206f6620736978206d6f6e74687320616e64206d617920626520757064"
     "617465642c207265706c616365642c206f72206f62736f6c65746564206279206f7468657220646f6375"
     "6d656e747320617420616e792074696d652e20497420697320696e617070726f70726961746520746f20"
     "75736520496e7465726e65742d447261667473206173207265666572656e6365206d6174657269616c20"
     "6f7220746f2063697465207468656d206f74686572207468616e206173202fe2809c776f726b20696e20"
     "70726f67726573732e2fe2809d",
     "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09e"
     "e94e382d26b0bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e"
     "008d33bd60f982b1ff37c8559797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c8"
     "67e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523eaf4534d7f83fa115"
     "5b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb"
     "4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d"
     "6c6f2c29a6ad5cb4022b02709beead9d67890cbb22392336fea1851f38"},
};
static const struct v_dh dhs[] = {
    {"RFC 7748 5.2 vector 1", "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
     "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
     "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
    {"RFC 7748 5.2 vector 2", "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
     "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
     "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
    {"RFC 7748 6.1 Alice's public key",
     "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "0900000000000000000000000000000000000000000000000000000000000000",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
    {"RFC 7748 6.1 Bob's public key",
     "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "0900000000000000000000000000000000000000000000000000000000000000",
     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
    {"RFC 7748 6.1 shared secret, Alice's side",
     "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
     "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
    {"RFC 7748 6.1 shared secret, Bob's side",
     "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
     "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
     "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
};
static const struct v_hkdf hkdfs[] = {
    {"RFC 5869 A.1 test case 1", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
     "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
     "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
     "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
    {"RFC 5869 A.2 test case 2",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829"
     "2a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
     "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283848586878889"
     "8a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
     "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9"
     "dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
     82, "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
     "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb"
     "41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
    {"RFC 5869 A.3 test case 3", "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
     "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
     "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
};

static void rfc8439(void)
{
	unsigned char key[32], nonce[12], buf[512], want[512], ad[64], out[512 + 16];
	uint32_t s[16];

	/* §2.1.1: one quarter round on four words. */
	s[0] = 0x11111111, s[1] = 0x01020304, s[2] = 0x9b8d6f43, s[3] = 0x01234567;
	chacha20_qround(s, 0, 1, 2, 3);
	result("RFC 8439 2.1.1 quarter round", s[0] == 0xea2a92f4 && s[1] == 0xcb1cf8ce &&
						   s[2] == 0x4581472e && s[3] == 0x5881c4bb);
	/* §2.2.1: a quarter round on the state, a diagonal one. */
	static const uint32_t st[16] = {0x879531e0, 0xc5ecf37d, 0x516461b1, 0xc9a62f8a,
					0x44c20ef3, 0x3390af7f, 0xd9fc690b, 0x2a5f714c,
					0x53372767, 0xb00a5631, 0x974c541a, 0x359e9963,
					0x5c971061, 0x3d631689, 0x2098d9d6, 0x91dbd320};
	memcpy(s, st, sizeof s);
	chacha20_qround(s, 2, 7, 8, 13);
	result("RFC 8439 2.2.1 quarter round on the state",
	       s[2] == 0xbdb886dc && s[7] == 0xcfacafd2 && s[8] == 0xe46bea80 &&
		   s[13] == 0xccc07c79 && s[0] == st[0] && s[15] == st[15]);

	for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
		vhex(blocks[i].key, key, 32);
		vhex(blocks[i].nonce, nonce, 12);
		chacha20_block(key, blocks[i].counter, nonce, buf);
		check_bytes(blocks[i].name, buf, 64, blocks[i].out);
	}
	for (size_t i = 0; i < sizeof encs / sizeof encs[0]; i++) {
		size_t n = vhex(encs[i].pt, buf, sizeof buf);
		vhex(encs[i].key, key, 32);
		vhex(encs[i].nonce, nonce, 12);
		chacha20_xor(key, encs[i].counter, nonce, buf, n, out);
		check_bytes(encs[i].name, out, n, encs[i].ct);
		/* In place, as the AEAD and the record layer use it. */
		chacha20_xor(key, encs[i].counter, nonce, out, n, out);
		result("  ... and back in place", memcmp(out, buf, n) == 0);
	}
	for (size_t i = 0; i < sizeof macs / sizeof macs[0]; i++) {
		size_t n = vhex(macs[i].msg, buf, sizeof buf);
		vhex(macs[i].key, key, 32);
		poly1305_mac(key, buf, n, out);
		check_bytes(macs[i].name, out, 16, macs[i].tag);
	}
	for (size_t i = 0; i < sizeof keygens / sizeof keygens[0]; i++) {
		vhex(keygens[i].key, key, 32);
		vhex(keygens[i].nonce, nonce, 12);
		chacha20_block(key, 0, nonce, buf);
		check_bytes(keygens[i].name, buf, 32, keygens[i].out);
	}
	for (size_t i = 0; i < sizeof aeads / sizeof aeads[0]; i++) {
		size_t n = vhex(aeads[i].pt, buf, sizeof buf),
		       adlen = vhex(aeads[i].ad, ad, sizeof ad);
		char name[80];
		vhex(aeads[i].key, key, 32);
		vhex(aeads[i].nonce, nonce, 12);
		aead_seal(key, nonce, ad, adlen, buf, n, out);
		snprintf(name, sizeof name, "%s seal", aeads[i].name);
		check_bytes(name, out, n + 16, aeads[i].ct);
		memset(want, 0xa5, sizeof want);
		snprintf(name, sizeof name, "%s open", aeads[i].name);
		result(name, aead_open(key, nonce, ad, adlen, out, n + 16, want) == 0 &&
				 memcmp(want, buf, n) == 0);
		/* Any change anywhere fails, and leaves out as it was. */
		memset(want, 0xa5, sizeof want);
		out[n + 15] ^= 0x80;
		snprintf(name, sizeof name, "%s open, tag altered: EBADMSG", aeads[i].name);
		check_fail(name, aead_open(key, nonce, ad, adlen, out, n + 16, want),
			   EBADMSG);
		out[n + 15] ^= 0x80;
		out[7] ^= 1;
		snprintf(name, sizeof name, "%s open, ciphertext altered: EBADMSG", aeads[i].name);
		check_fail(name, aead_open(key, nonce, ad, adlen, out, n + 16, want),
			   EBADMSG);
		out[7] ^= 1;
		ad[0] ^= 1;
		snprintf(name, sizeof name, "%s open, AD altered: EBADMSG", aeads[i].name);
		check_fail(name, aead_open(key, nonce, ad, adlen, out, n + 16, want),
			   EBADMSG);
		ad[0] ^= 1;
		nonce[11] ^= 1;
		snprintf(name, sizeof name, "%s open, other nonce: EBADMSG", aeads[i].name);
		check_fail(name, aead_open(key, nonce, ad, adlen, out, n + 16, want),
			   EBADMSG);
		size_t j = 0;
		while (j < sizeof want && want[j] == 0xa5)
			j++;
		snprintf(name, sizeof name, "%s: a failed open writes nothing", aeads[i].name);
		result(name, j == sizeof want);
	}
	check_fail("AEAD open of 15 bytes: EBADMSG",
		   aead_open(key, nonce, NULL, 0, buf, 15, out), EBADMSG);
}

/*
 * The AEAD of two parts (a record's type byte and its payload) is the
 * AEAD of them joined, whatever their lengths around the 64-byte block,
 * and opens back into two parts, also in place (pt == out + hn).
 */
static void aead_parts(void)
{
	static const size_t heads[] = {1, 17, 63, 64}, lens[] = {0, 1, 62, 63, 64, 65, 200, 1500};
	static unsigned char key[32] = {7}, nonce[12] = {3}, ad[5] = {1, 2, 3, 4, 5};
	static unsigned char joined[1600], want[1600 + 16], got[1600 + 16], head[64], back[1600];
	int bad = 0;

	for (size_t i = 0; i < sizeof joined; i++)
		joined[i] = (unsigned char)(i * 13 + 1);
	for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++)
		for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
			size_t hn = heads[h], n = lens[l], all = hn + n;

			aead_seal(key, nonce, ad, sizeof ad, joined, all, want);
			aead_seal_parts(key, nonce, ad, sizeof ad, joined, hn, joined + hn, n,
					       got);
			bad += memcmp(got, want, all + 16) != 0;
			memcpy(got + hn, joined + hn, n); /* in place: the payload already at out + hn */
			aead_seal_parts(key, nonce, ad, sizeof ad, joined, hn, got + hn, n, got);
			bad += memcmp(got, want, all + 16) != 0;
			memset(head, 0, sizeof head), memset(back, 0, sizeof back);
			bad += aead_open_parts(key, nonce, ad, sizeof ad, want, all + 16, head,
						      hn, back) != 0;
			bad += memcmp(head, joined, hn) != 0 || memcmp(back, joined + hn, n) != 0;
			memcpy(got, want, all + 16);
			bad += aead_open_parts(key, nonce, ad, sizeof ad, got, all + 16, head,
						      hn, got + hn) != 0;
			bad += memcmp(got + hn, joined + hn, n) != 0;
		}
	result("ChaCha20-Poly1305 of two parts == of the parts joined (32 length pairs, in place too)",
	       bad == 0);
	check_fail("  ... a head longer than the plaintext: EBADMSG",
		   aead_open_parts(key, nonce, NULL, 0, want, 16 + 3, head, 4, back), EBADMSG);
	check_fail("  ... a head over 64 bytes: EINVAL",
		   aead_seal_parts(key, nonce, NULL, 0, joined, 65, joined, 1, got), EINVAL);
}

static void rfc7748(void)
{
	unsigned char k[32], u[32], out[32], t[32];
	static const char *const low[] = {
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "0100000000000000000000000000000000000000000000000000000000000000",
	    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};

	for (size_t i = 0; i < sizeof dhs / sizeof dhs[0]; i++) {
		vhex(dhs[i].scalar, k, 32);
		vhex(dhs[i].point, u, 32);
		x25519(out, k, u);
		check_bytes(dhs[i].name, out, 32, dhs[i].out);
	}
	vhex(dhs[2].scalar, k, 32);
	x25519_base(out, k);
	check_bytes("RFC 7748 6.1 Alice's public key by x25519_base", out, 32, dhs[2].out);
	/* §5.2: k = u = 9, then u = k and k = X25519(k, u) over and over. */
	memset(k, 0, 32), k[0] = 9;
	memcpy(u, k, 32);
	for (int i = 1; i <= 1000; i++) {
		x25519(t, k, u);
		memcpy(u, k, 32);
		memcpy(k, t, 32);
		if (i == 1)
			check_bytes(
			    "RFC 7748 5.2 after 1 iteration", k, 32,
			    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
	}
	check_bytes("RFC 7748 5.2 after 1,000 iterations", k, 32,
		    "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
	/* §6.1: points of small order give all zeros, whatever the scalar. */
	vhex(dhs[0].scalar, k, 32);
	for (size_t i = 0; i < sizeof low / sizeof low[0]; i++) {
		char name[100];
		vhex(low[i], u, 32);
		snprintf(name, sizeof name, "RFC 7748 6.1 point of small order %.8s...: EINVAL",
			 low[i]);
		check_fail(name, x25519(out, k, u), EINVAL);
	}
	/* The top bit of u is ignored (§5): vector 1 with it set. */
	vhex(dhs[0].point, u, 32);
	u[31] |= 0x80;
	x25519(out, k, u);
	check_bytes("RFC 7748 5 the top bit of u is masked", out, 32, dhs[0].out);
}

static void million(void)
{
	unsigned char k[32] = {9}, u[32] = {9}, t[32];

	for (long i = 1; i <= 1000000; i++) {
		x25519(t, k, u);
		memcpy(u, k, 32);
		memcpy(k, t, 32);
	}
	check_bytes("RFC 7748 5.2 after 1,000,000 iterations", k, 32,
		    "7c3911e0ab2586fd864497297e575e6f3bc601c0883c30df5f4dd2d24f665424");
}

static void rfc5869(void)
{
	unsigned char ikm[128], salt[128], info[128], prk[32], okm[128];

	for (size_t i = 0; i < sizeof hkdfs / sizeof hkdfs[0]; i++) {
		size_t il = vhex(hkdfs[i].ikm, ikm, sizeof ikm),
		       sl = vhex(hkdfs[i].salt, salt, sizeof salt),
		       fl = vhex(hkdfs[i].info, info, sizeof info);
		char name[80];
		hkdf_extract(salt, sl, ikm, il, prk);
		snprintf(name, sizeof name, "%s PRK", hkdfs[i].name);
		check_bytes(name, prk, 32, hkdfs[i].prk);
		hkdf_expand(prk, info, fl, okm, hkdfs[i].len);
		snprintf(name, sizeof name, "%s OKM", hkdfs[i].name);
		check_bytes(name, okm, hkdfs[i].len, hkdfs[i].okm);
		memset(okm, 0, sizeof okm);
		hkdf_sha256(salt, sl, ikm, il, info, fl, okm, hkdfs[i].len);
		snprintf(name, sizeof name, "%s hkdf_sha256", hkdfs[i].name);
		check_bytes(name, okm, hkdfs[i].len, hkdfs[i].okm);
	}
	check_fail("HKDF more than 255 blocks: EINVAL",
		   hkdf_expand(prk, NULL, 0, okm, HKDF_MAX + 1), EINVAL);
}

/*
 * Noise_NNpsk0_25519_ChaChaPoly_SHA256 from cacophony's vectors
 * (github.com/haskell-cryptography/cacophony, vectors/cacophony.txt at
 * commit 36c1e5c3a799342b226547ce9fdb3579ab60ccd3): prologue "John
 * Galt", the psk "This is my Austrian perspective!", fixed ephemeral keys,
 * two handshake messages and then four transport messages, alternating.
 */
static const char noise_prologue[] = "4a6f686e2047616c74";
static const char noise_psk[] = "54686973206973206d7920417573747269616e20706572737065637469766521";
static const char noise_init_e[] =
    "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a";
static const char noise_resp_e[] =
    "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b";
static const struct {
	const char *payload, *ciphertext;
} noise_msgs[] = {
    {"4c756477696720766f6e204d69736573",
     "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c794479b962b8aff8485742ac32f905"
     "ba45369e2465fb59e138a93d67a0d1266b6a54"},
    {"4d757272617920526f746862617264",
     "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843d6062704d5a9c422a8e834423f"
     "8c1feada7e8d0d910a1a2cd030fb584221e3"},
    {"462e20412e20486179656b", "e632c3763d7669067383433197a3baddf146e9e70ad4b4e9e59e0f"},
    {"4361726c204d656e676572", "64c6bee32ea91c8474bb4c21d7a700109ad45af77b29764ba5eb1e"},
    {"4a65616e2d426170746973746520536179",
     "e2fa0bed0603b62d3ccac2ecabbf3fe33f3e86514909b323361626266cb2471cc8"},
    {"457567656e2042f6686d20766f6e2042617765726b",
     "0c01dc9cec1fe4ddd692e8dd32188aa351088dc91183639a53b57aa4692b5ebdef8b8ca111"},
};

/* Both sides of the vector's handshake with its keys, up to the split. */
static int noise_pair(struct noise_hs *i, struct noise_hs *r, const char *ipsk, const char *rpsk)
{
	unsigned char pro[16], psk[32], e[32];
	size_t pl = vhex(noise_prologue, pro, sizeof pro);

	vhex(ipsk, psk, 32);
	vhex(noise_init_e, e, 32);
	noise_hs_init_ephemeral(i, 1, psk, pro, pl, e);
	vhex(rpsk, psk, 32);
	vhex(noise_resp_e, e, 32);
	return noise_hs_init_ephemeral(r, 0, psk, pro, pl, e);
}

static void noise_vector(void)
{
	struct noise_hs i, r;
	struct noise_cs is, ir, rs, rr;
	unsigned char p[64], m[128], got[64], hi[32], hr[32];
	ssize_t n;
	size_t pl;

	noise_pair(&i, &r, noise_psk, noise_psk);
	pl = vhex(noise_msgs[0].payload, p, sizeof p);
	n = noise_hs_write(&i, p, pl, m, sizeof m);
	check_bytes("Noise NNpsk0 message 1 (-> psk, e)", m, n < 0 ? 0 : (size_t)n,
		    noise_msgs[0].ciphertext);
	result("  ... the responder reads it and its payload",
	       noise_hs_read(&r, m, (size_t)n, got, sizeof got) == (ssize_t)pl &&
		   memcmp(got, p, pl) == 0 && !noise_hs_done(&r));
	pl = vhex(noise_msgs[1].payload, p, sizeof p);
	n = noise_hs_write(&r, p, pl, m, sizeof m);
	check_bytes("Noise NNpsk0 message 2 (<- e, ee)", m, n < 0 ? 0 : (size_t)n,
		    noise_msgs[1].ciphertext);
	result("  ... the initiator reads it and its payload",
	       noise_hs_read(&i, m, (size_t)n, got, sizeof got) == (ssize_t)pl &&
		   memcmp(got, p, pl) == 0);
	result("Noise both sides done", noise_hs_done(&i) && noise_hs_done(&r));
	result("Noise handshake hash the same on both sides",
	       noise_hs_hash(&i, hi) == 0 && noise_hs_hash(&r, hr) == 0 && memcmp(hi, hr, 32) == 0);
	noise_hs_split(&i, &is, &ir);
	noise_hs_split(&r, &rs, &rr);
	result("Noise handshake hash kept after the split",
	       noise_hs_hash(&i, hr) == 0 && memcmp(hi, hr, 32) == 0);
	for (size_t k = 2; k < sizeof noise_msgs / sizeof noise_msgs[0]; k++) {
		/* Transport messages alternate: initiator first. */
		struct noise_cs *snd = k % 2 ? &rs : &is, *rcv = k % 2 ? &ir : &rr;
		char name[64];
		pl = vhex(noise_msgs[k].payload, p, sizeof p);
		noise_cs_encrypt(snd, NULL, 0, p, pl, m);
		snprintf(name, sizeof name, "Noise NNpsk0 transport message %zu (%s)", k + 1,
			 k % 2 ? "responder" : "initiator");
		check_bytes(name, m, pl + 16, noise_msgs[k].ciphertext);
		result("  ... decrypted by the peer",
		       noise_cs_decrypt(rcv, NULL, 0, m, pl + 16, got) == 0 &&
			   memcmp(got, p, pl) == 0);
	}
	noise_hs_wipe(&i);
	noise_hs_wipe(&r);
}

static void noise_failures(void)
{
	static const char other[] =
	    "54686973206973206d7920417573747269616e20706572737065637469766522";
	struct noise_hs i, r;
	struct noise_cs a, b;
	unsigned char m[128], got[64], e[32];
	ssize_t n;

	noise_pair(&i, &r, noise_psk, other);
	n = noise_hs_write(&i, "hi", 2, m, sizeof m);
	check_fail("Noise wrong PSK: the responder's read fails EBADMSG",
		   noise_hs_read(&r, m, (size_t)n, got, sizeof got), EBADMSG);
	check_fail("  ... and the failed state refuses to go on (EINVAL)",
		   noise_hs_write(&r, NULL, 0, m, sizeof m), EINVAL);

	noise_pair(&i, &r, noise_psk, noise_psk);
	n = noise_hs_write(&i, NULL, 0, m, sizeof m);
	m[40] ^= 1;
	check_fail("Noise altered message 1: EBADMSG", noise_hs_read(&r, m, (size_t)n, got, 0),
		   EBADMSG);

	noise_pair(&i, &r, noise_psk, noise_psk);
	n = noise_hs_write(&i, NULL, 0, m, sizeof m);
	noise_hs_read(&r, m, (size_t)n, got, 0);
	n = noise_hs_write(&r, NULL, 0, m, sizeof m);
	m[3] ^= 1; /* the responder's ephemeral key */
	check_fail("Noise altered message 2: the initiator's read fails EBADMSG",
		   noise_hs_read(&i, m, (size_t)n, got, 0), EBADMSG);

	/* Another prologue: the PSK is right but the transcripts differ. */
	vhex(noise_psk, e, 32);
	noise_hs_init_ephemeral(&i, 1, e, "v1", 2, e);
	noise_hs_init_ephemeral(&r, 0, e, "v2", 2, e);
	n = noise_hs_write(&i, NULL, 0, m, sizeof m);
	check_fail("Noise other prologue: EBADMSG", noise_hs_read(&r, m, (size_t)n, got, 0),
		   EBADMSG);

	noise_pair(&i, &r, noise_psk, noise_psk);
	memset(m, 0, 48); /* an ephemeral key of small order, 0 */
	check_fail("Noise ephemeral key of small order: EBADMSG", noise_hs_read(&r, m, 48, got, 0),
		   EBADMSG);
	noise_pair(&i, &r, noise_psk, noise_psk);
	check_fail("Noise message shorter than 48 bytes: EBADMSG", noise_hs_read(&r, m, 47, got, 0),
		   EBADMSG);

	noise_pair(&i, &r, noise_psk, noise_psk);
	check_fail("Noise initiator reading first: EINVAL", noise_hs_read(&i, m, 48, got, 0),
		   EINVAL);
	check_fail("Noise responder writing first: EINVAL",
		   noise_hs_write(&r, NULL, 0, m, sizeof m), EINVAL);
	check_fail("Noise split before done: EINVAL", noise_hs_split(&i, &a, &b), EINVAL);
	check_fail("Noise write, buffer short: ENOBUFS", noise_hs_write(&i, "abc", 3, m, 50),
		   ENOBUFS);
	n = noise_hs_write(&i, "abc", 3, m, sizeof m);
	result("  ... and the state is still good: the write after it works", n == 51);
	check_fail("Noise read, payload buffer short: ENOBUFS",
		   noise_hs_read(&r, m, (size_t)n, got, 2), ENOBUFS);
	result("  ... and the read after it works", noise_hs_read(&r, m, (size_t)n, got, 3) == 3);
	check_fail("Noise payload over 65487 bytes: EMSGSIZE",
		   noise_hs_write(&r, NULL, NOISE_HS_PAYLOAD_MAX + 1, m, sizeof m), EMSGSIZE);
	noise_hs_wipe(&i);
	noise_hs_wipe(&r);

	memset(&a, 0, sizeof a);
	a.haskey = 1;
	a.n = UINT64_MAX - 1;
	result("Noise nonce 2^64-2 is the last one used",
	       noise_cs_encrypt(&a, NULL, 0, "x", 1, m) == 0);
	check_fail("  ... then EOVERFLOW (2^64-1 is reserved)",
		   noise_cs_encrypt(&a, NULL, 0, "x", 1, m), EOVERFLOW);
	memset(&a, 0, sizeof a);
	a.haskey = 1;
	noise_cs_encrypt(&a, NULL, 0, "x", 1, m);
	memset(&b, 0, sizeof b);
	b.haskey = 1;
	b.n = 1;
	check_fail("Noise message under another nonce (replayed or reordered): EBADMSG",
		   noise_cs_decrypt(&b, NULL, 0, m, 17, got), EBADMSG);
	result("  ... and the nonce stays where it was", b.n == 1);
}

/* A pair of transport states as a handshake leaves them: a writer, a reader of its records. */
static void record_pair(struct record_writer *w, struct record_reader *r)
{
	struct noise_hs i, s;
	struct noise_cs is, ir, rs, rr;
	unsigned char m[64];
	ssize_t n;

	noise_pair(&i, &s, noise_psk, noise_psk);
	n = noise_hs_write(&i, NULL, 0, m, sizeof m);
	noise_hs_read(&s, m, (size_t)n, NULL, 0);
	n = noise_hs_write(&s, NULL, 0, m, sizeof m);
	noise_hs_read(&i, m, (size_t)n, NULL, 0);
	noise_hs_split(&i, &is, &ir);
	noise_hs_split(&s, &rs, &rr);
	record_writer_init(w, &is);
	record_reader_wipe(r); /* the last pair's buffer: static readers, zeroed at first */
	record_reader_init(r, &rr);
	noise_cs_wipe(&is), noise_cs_wipe(&ir), noise_cs_wipe(&rs), noise_cs_wipe(&rr);
}

/*
 * Feed n bytes to the reader in pieces of step, pulling at most pull bytes
 * at a time as it goes (a record that fits is opened straight into the
 * pull's buffer, a longer one in place); returns the last pull.
 */
static ssize_t feed_pulls(struct record_reader *r, const unsigned char *p, size_t n, size_t step,
			  size_t pull, unsigned char *out, size_t *outlen)
{
	static unsigned char tmp[RECORD_PLAIN_MAX];
	ssize_t m = -1;

	if (pull > sizeof tmp)
		pull = sizeof tmp;
	errno = EAGAIN;
	while (n) {
		size_t k = n < step ? n : step, t = record_push(r, p, k);
		p += t, n -= t;
		while ((m = record_pull(r, tmp, pull)) > 0) {
			memcpy(out + *outlen, tmp, (size_t)m);
			*outlen += (size_t)m;
		}
		if (m == 0 || errno != EAGAIN)
			return m;
	}
	return m;
}

static ssize_t feed(struct record_reader *r, const unsigned char *p, size_t n, size_t step,
		    unsigned char *out, size_t *outlen)
{
	return feed_pulls(r, p, n, step, 1000, out, outlen);
}

static void records(void)
{
	static unsigned char data[200000], wire[220000], back[200000];
	static struct record_writer w;
	static struct record_reader r;
	size_t sizes[] = {0, 1, 100, RECORD_PLAIN_MAX, RECORD_PLAIN_MAX + 1, sizeof data};
	size_t wl, bl, taken, at[8], nrec;
	ssize_t k;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 7 + (i >> 8));
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t steps[] = {1, 7, 4096, sizeof wire};
		for (size_t st = 0; st < 4; st++) {
			char name[100];
			size_t off = 0;
			record_pair(&w, &r);
			wl = 0;
			do {
				k = record_seal(&w, data + off, sizes[s] - off, &taken, wire + wl,
						sizeof wire - wl);
				off += taken, wl += (size_t)k;
			} while (off < sizes[s]);
			wl += (size_t)record_seal_end(&w, wire + wl, sizeof wire - wl);
			bl = 0;
			k = feed(&r, wire, wl, steps[st], back, &bl);
			snprintf(name, sizeof name, "record stream of %zu bytes in pieces of %zu",
				 sizes[s], steps[st]);
			result(name, k == 0 && bl == sizes[s] && memcmp(back, data, bl) == 0 &&
					 record_eof(&r) == 0);
			/* Again, pulled into a buffer that takes a whole record. */
			record_pair(&w, &r);
			bl = 0;
			k = feed_pulls(&r, wire, wl, steps[st], RECORD_PLAIN_MAX, back, &bl);
			snprintf(name, sizeof name, "  ... and pulled whole records at a time");
			result(name, k == 0 && bl == sizes[s] && memcmp(back, data, bl) == 0 &&
					 record_eof(&r) == 0);
			if (steps[st] > sizes[s] + 100)
				break;
		}
	}

	/* Three records, then END; each index in at[] is where a record starts. */
	record_pair(&w, &r);
	wl = nrec = 0;
	for (int i = 0; i < 3; i++) {
		at[nrec++] = wl;
		wl +=
		    (size_t)record_seal(&w, data + 10 * i, 10, &taken, wire + wl, sizeof wire - wl);
	}
	at[nrec++] = wl;
	wl += (size_t)record_seal_end(&w, wire + wl, sizeof wire - wl);
	at[nrec] = wl;
	check_fail("record write after END: EPIPE", record_seal(&w, data, 1, &taken, wire, 100),
		   EPIPE);

	bl = 0;
	k = feed(&r, wire, at[3], 5, back, &bl);
	result("record stream without END: all its data arrives", bl == 30);
	check_fail("  ... and at EOF it is truncated: EPIPE", record_eof(&r), EPIPE);

	record_pair(&w, &r); /* same keys, so the same records decrypt again */
	bl = 0;
	k = feed(&r, wire, at[1] + 5, 3, back, &bl);
	check_fail("record stream cut inside a record: truncated, EPIPE", record_eof(&r), EPIPE);

	record_pair(&w, &r);
	wire[at[1] + 9] ^= 4;
	bl = 0;
	k = feed(&r, wire, wl, 100, back, &bl);
	check_fail("record altered: EBADMSG", k, EBADMSG);
	result("  ... after the records before it", bl == 10);
	check_fail("  ... and the reader refuses all after", record_pull(&r, back, 10), EBADMSG);
	result("  ... and takes no more bytes", record_push(&r, wire, 10) == 0);
	check_fail("  ... and EOF then says EBADMSG too", record_eof(&r), EBADMSG);
	wire[at[1] + 9] ^= 4;

	/* The length of the second record: one less fails its tag, much more never completes. */
	record_pair(&w, &r);
	wire[at[1] + 1] ^= 1;
	bl = 0;
	check_fail("record length altered: EBADMSG", feed(&r, wire, wl, 100, back, &bl), EBADMSG);
	wire[at[1] + 1] ^= 1;
	record_pair(&w, &r);
	wire[at[1]] ^= 0x80;
	bl = 0;
	k = feed(&r, wire, wl, 100, back, &bl);
	check_fail("record length made longer than the stream: truncated at EOF, EPIPE",
		   record_eof(&r), EPIPE);
	wire[at[1]] ^= 0x80;

	/* Replay: record 1 twice. Reorder: record 2 before record 1. Drop: record 1 missing. */
	static unsigned char alt[1000];
	size_t al;
	struct {
		const char *name;
		int order[6];
	} cases[] = {
	    {"record replayed: EBADMSG", {0, 1, 1, 2, 3, -1}},
	    {"records reordered: EBADMSG", {0, 2, 1, 3, -1}},
	    {"record dropped: EBADMSG", {0, 2, 3, -1}},
	    {"END replayed before the end: EBADMSG", {0, 3, 1, 2, 3, -1}},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		al = 0;
		for (int j = 0; cases[c].order[j] >= 0; j++) {
			int x = cases[c].order[j];
			memcpy(alt + al, wire + at[x], at[x + 1] - at[x]);
			al += at[x + 1] - at[x];
		}
		record_pair(&w, &r);
		bl = 0;
		check_fail(cases[c].name, feed(&r, alt, al, 1000, back, &bl), EBADMSG);
	}

	/* Records sealed under the other direction's key. */
	{
		struct noise_hs i, s;
		struct noise_cs is, ir, rs, rr;
		unsigned char m[64];
		noise_pair(&i, &s, noise_psk, noise_psk);
		noise_hs_read(&s, m, (size_t)noise_hs_write(&i, NULL, 0, m, sizeof m), NULL, 0);
		noise_hs_read(&i, m, (size_t)noise_hs_write(&s, NULL, 0, m, sizeof m), NULL, 0);
		noise_hs_split(&i, &is, &ir);
		noise_hs_split(&s, &rs, &rr);
		record_reader_wipe(&r);
		record_reader_init(&r, &rs); /* the responder's sending key: wrong for this */
		bl = 0;
		check_fail("record under the other direction's key (reflected): EBADMSG",
			   feed(&r, wire, wl, 1000, back, &bl), EBADMSG);
	}

	record_pair(&w, &r);
	check_fail("record seal, buffer too short for a byte: ENOBUFS",
		   record_seal(&w, data, 5, &taken, wire, RECORD_OVERHEAD), ENOBUFS);
	k = record_seal(&w, data, 5, &taken, wire, RECORD_OVERHEAD + 2);
	result("record seal takes what fits", k == RECORD_OVERHEAD + 2 && taken == 2);
	result("record pull of 0 bytes: EINVAL", record_pull(&r, back, 0) == -1 && errno == EINVAL);
	record_writer_wipe(&w);
	record_reader_wipe(&r);
}

static void psk_from_key(void)
{
	unsigned char a[32], b[32];

	check_fail("PSK from an empty key: EINVAL", noise_psk_from_key("", 0, a), EINVAL);
	noise_psk_from_key("k12", 3, a);
	hkdf_sha256("socketpool psk v1", 17, "k12", 3, NULL, 0, b, 32);
	result("PSK from a key is HKDF with the salt \"socketpool psk v1\"", memcmp(a, b, 32) == 0);
	noise_psk_from_key("k13", 3, b);
	result("  ... and another key gives another PSK", memcmp(a, b, 32) != 0);
}

/* ---- subcommands ---- */

static void usage(void)
{
	fputs("usage: cryptotest [million | x25519 SCALAR POINT | x25519-base SCALAR |\n"
	      "       seal KEY NONCE AD PT | open KEY NONCE AD CT | hkdf SALT IKM INFO LEN |\n"
	      "       psk KEYTEXT | noise-init PSK [-H file] [-p prologue] |\n"
	      "       noise-resp PSK [-H file] [-p prologue] | tamper MODE [N] | bench]\n",
	      stderr);
	exit(2);
}

/* An operand in hex into out (room cap); exact says how long it must be (0: any). */
static size_t arg_hex(const char *s, unsigned char *out, size_t cap, size_t exact)
{
	long r = unhex(s, out, cap);

	if (r < 0 || (exact && (size_t)r != exact)) {
		if (exact)
			fprintf(stderr, "cryptotest: not %zu bytes of hex: %s\n", exact, s);
		else
			fprintf(stderr, "cryptotest: not hex of at most %zu bytes: %.40s\n", cap,
				s);
		exit(2);
	}
	return (size_t)r;
}

static void print_hex(const unsigned char *b, size_t n)
{
	static char h[2 * ARG_MAX_BYTES + 1];

	mem_hex(b, n, h);
	puts(h);
}

static int cmd_x25519(int argc, char **argv)
{
	unsigned char out[32], k[32], u[32] = {9};

	if (argc != (strcmp(argv[1], "x25519") == 0 ? 4 : 3))
		usage();
	arg_hex(argv[2], k, 32, 32);
	if (argc == 4)
		arg_hex(argv[3], u, 32, 32);
	if (x25519(out, k, u) < 0) {
		perror("cryptotest: x25519");
		return 1;
	}
	print_hex(out, 32);
	return 0;
}

static int cmd_aead(int argc, char **argv)
{
	static unsigned char ad[ARG_MAX_BYTES], in[ARG_MAX_BYTES], out[ARG_MAX_BYTES];
	unsigned char k[32], nonce[12];
	size_t al, n;

	if (argc != 6)
		usage();
	arg_hex(argv[2], k, 32, 32);
	arg_hex(argv[3], nonce, 12, 12);
	al = arg_hex(argv[4], ad, sizeof ad, 0);
	n = arg_hex(argv[5], in, sizeof in - 16, 0);
	if (strcmp(argv[1], "seal") == 0) {
		aead_seal(k, nonce, ad, al, in, n, out);
		print_hex(out, n + 16);
	} else {
		if (aead_open(k, nonce, ad, al, in, n, out) < 0) {
			perror("cryptotest: open");
			return 1;
		}
		print_hex(out, n - 16);
	}
	return 0;
}

static int cmd_hkdf(int argc, char **argv)
{
	static unsigned char salt[ARG_MAX_BYTES], ikm[ARG_MAX_BYTES], info[ARG_MAX_BYTES],
	    okm[HKDF_MAX + 1];
	size_t sl, il, fl;
	unsigned long len;
	char *end;

	if (argc != 6)
		usage();
	sl = arg_hex(argv[2], salt, sizeof salt, 0);
	il = arg_hex(argv[3], ikm, sizeof ikm, 0);
	fl = arg_hex(argv[4], info, sizeof info, 0);
	errno = 0;
	len = strtoul(argv[5], &end, 10);
	if (*end || !*argv[5] || errno || len > sizeof okm)
		usage();
	if (hkdf_sha256(salt, sl, ikm, il, info, fl, okm, len) < 0) {
		perror("cryptotest: hkdf");
		return 1;
	}
	print_hex(okm, len);
	return 0;
}

static int cmd_psk(int argc, char **argv)
{
	unsigned char psk[32];

	if (argc != 3)
		usage();
	if (noise_psk_from_key(argv[2], strlen(argv[2]), psk) < 0) {
		perror("cryptotest: psk");
		return 1;
	}
	print_hex(psk, 32);
	return 0;
}

/* ---- the Noise peer ---- */

enum { TIN = 3, TOUT = 4 }; /* the transport's descriptors */

static void die(const char *what)
{
	fprintf(stderr, "cryptotest: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Read exactly n bytes from fd; 0 on EOF before any, -1 (errno EPIPE on a short stream) else. */
static int read_full(int fd, unsigned char *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = io_read(fd, p + got, n - got);
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EPIPE;
			return got ? -1 : 0;
		}
		got += (size_t)r;
	}
	return 1;
}

/* One handshake message after its 2-byte length; returns its length, -1 at EOF or error. */
static ssize_t frame_read(int fd, unsigned char *buf)
{
	unsigned char h[2];
	size_t n;
	int r = read_full(fd, h, 2);

	if (r <= 0) {
		if (r == 0)
			errno =
			    ECONNRESET; /* the peer closed: most likely it refused our message */
		return -1;
	}
	n = (size_t)h[0] << 8 | h[1];
	if (n && read_full(fd, buf, n) <= 0) {
		errno = ECONNRESET;
		return -1;
	}
	return (ssize_t)n;
}

static int frame_write(int fd, const unsigned char *m, size_t n)
{
	unsigned char f[2 + NOISE_MSG_MAX];

	f[0] = (unsigned char)(n >> 8), f[1] = (unsigned char)n;
	memcpy(f + 2, m, n);
	return io_write_all(fd, f, n + 2);
}

static struct {
	struct record_writer w;
	struct record_reader r;
	unsigned char out[RECORD_WIRE_MAX], in[65536], plain[RECORD_PLAIN_MAX], got[65536];
} P;

/*
 * After the handshake: stdin to the peer as records, the peer's records to
 * stdout, both at once (a side that only wrote could fill the pipes and
 * wait on a peer doing the same), until both streams have ended.
 */
static int pump(void)
{
	size_t outlen = 0, outoff = 0;
	int in_eof = 0, out_closed = 0, peer_end = 0, send_err = 0;

	if (io_set_nonblock(TOUT, 1) < 0)
		die("transport");
	while (!(out_closed && peer_end)) {
		struct pollfd fds[3];
		int nf = 0, ii = -1, io = -1, it = -1;
		if (!in_eof && outoff == outlen)
			ii = nf, fds[nf++] = (struct pollfd){.fd = 0, .events = POLLIN};
		if (outoff < outlen)
			io = nf, fds[nf++] = (struct pollfd){.fd = TOUT, .events = POLLOUT};
		if (!peer_end)
			it = nf, fds[nf++] = (struct pollfd){.fd = TIN, .events = POLLIN};
		if (poll(fds, (nfds_t)nf, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		if (ii >= 0 && fds[ii].revents) {
			ssize_t n = io_read(0, P.plain, sizeof P.plain), k;
			size_t taken;
			if (n < 0)
				die("stdin");
			if (n == 0) {
				k = record_seal_end(&P.w, P.out, sizeof P.out);
				in_eof = 1;
			} else {
				k = record_seal(&P.w, P.plain, (size_t)n, &taken, P.out,
						sizeof P.out);
			}
			if (k < 0)
				die("seal");
			outoff = 0, outlen = (size_t)k;
		}
		if (io >= 0 && fds[io].revents) {
			ssize_t n = write(TOUT, P.out + outoff, outlen - outoff);
			/*
			 * The peer is gone: what our side of the transport says of its
			 * stream (truncated, or ended) is read first, and is the news.
			 */
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				send_err = errno;
				in_eof = out_closed = 1;
				outoff = outlen = 0;
				continue;
			}
			if (n > 0)
				outoff += (size_t)n;
			if (outoff == outlen && in_eof && !out_closed) {
				close(TOUT); /* the END is out: the peer may now see EOF */
				out_closed = 1;
			}
		}
		if (it >= 0 && fds[it].revents) {
			ssize_t n = io_read(TIN, P.in, sizeof P.in), m = -1;
			size_t off = 0;
			if (n < 0)
				die("receive");
			if (n == 0) {
				if (record_eof(&P.r) < 0)
					die(errno == EPIPE ? "stream truncated" : "stream");
				peer_end = 1;
			}
			while (off < (size_t)n && !peer_end) {
				off += record_push(&P.r, P.in + off, (size_t)n - off);
				while ((m = record_pull(&P.r, P.got, sizeof P.got)) > 0)
					if (io_write_all(1, P.got, (size_t)m) < 0)
						die("stdout");
				if (m == 0)
					peer_end = 1;
				else if (errno != EAGAIN)
					die("record rejected");
			}
		}
	}
	if (send_err) {
		errno = send_err;
		die("send");
	}
	return 0;
}

static int cmd_peer(int argc, char **argv)
{
	int initiator = strcmp(argv[1], "noise-init") == 0;
	static unsigned char pro[ARG_MAX_BYTES];
	unsigned char psk[32], msg[NOISE_MSG_MAX], hash[32];
	size_t pl = 0;
	const char *hashfile = NULL;
	struct noise_hs hs;
	struct noise_cs snd, rcv;
	ssize_t m;

	if (argc < 3)
		usage();
	arg_hex(argv[2], psk, 32, 32);
	for (int i = 3; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "-p") == 0)
			pl = arg_hex(argv[i + 1], pro, sizeof pro, 0);
		else if (strcmp(argv[i], "-H") == 0)
			hashfile = argv[i + 1];
		else
			usage();
	}
	if (fcntl(TIN, F_GETFD) < 0 || fcntl(TOUT, F_GETFD) < 0) {
		fputs("cryptotest: the transport goes on fds 3 (in) and 4 (out)\n", stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (noise_hs_init(&hs, initiator, psk, pro, pl) < 0)
		die("getrandom");
	mem_wipe(psk, 32);
	if (initiator) {
		m = noise_hs_write(&hs, NULL, 0, msg, sizeof msg);
		if (m < 0 || frame_write(TOUT, msg, (size_t)m) < 0)
			die("handshake failed");
	}
	m = frame_read(TIN, msg);
	if (m < 0 || noise_hs_read(&hs, msg, (size_t)m, NULL, 0) < 0)
		die("handshake failed");
	if (!initiator) {
		m = noise_hs_write(&hs, NULL, 0, msg, sizeof msg);
		if (m < 0 || frame_write(TOUT, msg, (size_t)m) < 0)
			die("handshake failed");
	}
	if (noise_hs_split(&hs, &snd, &rcv) < 0 || noise_hs_hash(&hs, hash) < 0)
		die("handshake failed");
	if (hashfile) {
		FILE *f = fopen(hashfile, "w");
		char h[65];
		mem_hex(hash, 32, h);
		if (!f || fprintf(f, "%s\n", h) < 0 || fclose(f) != 0)
			die(hashfile);
	}
	noise_hs_wipe(&hs);
	record_writer_init(&P.w, &snd);
	record_reader_init(&P.r, &rcv);
	noise_cs_wipe(&snd);
	noise_cs_wipe(&rcv);
	pump();
	record_writer_wipe(&P.w);
	record_reader_wipe(&P.r);
	return 0;
}

/* ---- tamper: a man in the middle of one direction ---- */

static int cmd_tamper(int argc, char **argv)
{
	static unsigned char f[2 + 65535], held[2 + 65535];
	const char *mode;
	long target = -1;
	size_t heldlen = 0;
	int hold = 0;

	if (argc < 3)
		usage();
	mode = argv[2];
	if (strcmp(mode, "pass") == 0 || strcmp(mode, "drop-last") == 0) {
		if (argc != 3)
			usage();
		hold = strcmp(mode, "drop-last") == 0;
	} else {
		char *end;
		if (argc != 4)
			usage();
		target = strtol(argv[3], &end, 10);
		if (*end || target < 0)
			usage();
		if (strcmp(mode, "flip") && strcmp(mode, "drop") && strcmp(mode, "replay") &&
		    strcmp(mode, "swap") && strcmp(mode, "cut"))
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	for (long i = 0;; i++) {
		int r = read_full(0, f, 2);
		size_t n, len;
		if (r == 0)
			break;
		if (r < 0)
			die("tamper");
		n = (size_t)f[0] << 8 | f[1];
		if (n && read_full(0, f + 2, n) <= 0)
			die("tamper");
		len = n + 2;
		if (i == target && strcmp(mode, "flip") == 0)
			f[2 + n / 2] ^= 0x01;
		if (i == target && strcmp(mode, "cut") == 0) {
			if (io_write_all(1, f, 2 + n / 2) < 0)
				die("tamper");
			return 0; /* and stop: the reader sees EOF mid-record */
		}
		if (i == target && strcmp(mode, "drop") == 0)
			continue;
		if (i == target && strcmp(mode, "swap") == 0) {
			memcpy(held, f, len), heldlen = len;
			continue;
		}
		if (hold && i > 0) { /* never the handshake message: the peers would wait forever */
			if (heldlen && io_write_all(1, held, heldlen) < 0)
				die("tamper");
			memcpy(held, f, len), heldlen = len;
			continue;
		}
		if (io_write_all(1, f, len) < 0)
			die("tamper");
		if (i == target && strcmp(mode, "replay") == 0 && io_write_all(1, f, len) < 0)
			die("tamper");
		if (i == target + 1 && strcmp(mode, "swap") == 0 &&
		    io_write_all(1, held, heldlen) < 0)
			die("tamper");
	}
	/* drop-last: what is held now is the last frame, the END; it goes nowhere. */
	return 0;
}

/* ---- bench ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_bench(void)
{
	static unsigned char buf[65536 + 16], out[65536];
	unsigned char k[32] = {1}, u[32] = {9}, key[32] = {2}, nonce[12] = {0};
	double t0, t;
	long n;

	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++) {
		x25519(u, k, u);
		k[n % 32] ^= u[0];
	}
	printf("x25519: %.0f scalar multiplications/s\n", (double)n / t);
	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++) {
		nonce[0] = (unsigned char)n;
		aead_seal(key, nonce, NULL, 0, buf, 65536, buf);
	}
	printf("chacha20-poly1305 seal, 64 KiB messages: %.0f MB/s\n", (double)n * 65536 / t / 1e6);
	aead_seal(key, nonce, NULL, 0, buf, 65536, buf);
	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++)
		if (aead_open(key, nonce, NULL, 0, buf, 65536 + 16, out) < 0)
			return 1;
	printf("chacha20-poly1305 open, 64 KiB messages: %.0f MB/s\n", (double)n * 65536 / t / 1e6);
	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++)
		chacha20_xor(key, 1, nonce, buf, 65536, buf);
	printf("chacha20 alone: %.0f MB/s\n", (double)n * 65536 / t / 1e6);
	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++)
		poly1305_mac(key, buf, 65536, buf);
	printf("poly1305 alone: %.0f MB/s\n", (double)n * 65536 / t / 1e6);
	t0 = now();
	for (n = 0; (t = now() - t0) < 1.0; n++) {
		struct noise_hs i, r;
		unsigned char m[64];
		noise_pair(&i, &r, noise_psk, noise_psk);
		noise_hs_read(&r, m, (size_t)noise_hs_write(&i, NULL, 0, m, sizeof m), NULL, 0);
		noise_hs_read(&i, m, (size_t)noise_hs_write(&r, NULL, 0, m, sizeof m), NULL, 0);
	}
	printf("Noise NNpsk0 handshakes, both sides: %.0f/s\n", (double)n / t);
	{
		static struct record_writer w;
		static struct record_reader r;
		static unsigned char wire[RECORD_WIRE_MAX], got[RECORD_PLAIN_MAX];
		size_t taken;
		record_pair(&w, &r);
		t0 = now();
		for (n = 0; (t = now() - t0) < 1.0; n++) {
			ssize_t len =
			    record_seal(&w, buf, RECORD_PLAIN_MAX, &taken, wire, sizeof wire);
			if (len < 0 || record_push(&r, wire, (size_t)len) != (size_t)len ||
			    record_pull(&r, got, sizeof got) != RECORD_PLAIN_MAX)
				return 1;
		}
		printf("records of %d bytes, sealed and read back: %.0f MB/s\n", RECORD_PLAIN_MAX,
		       (double)n * RECORD_PLAIN_MAX / t / 1e6);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2) {
		const char *c = argv[1];
		if (strcmp(c, "million") == 0 && argc == 2) {
			million();
			return failures ? 1 : 0;
		}
		if (strcmp(c, "x25519") == 0 || strcmp(c, "x25519-base") == 0)
			return cmd_x25519(argc, argv);
		if (strcmp(c, "seal") == 0 || strcmp(c, "open") == 0)
			return cmd_aead(argc, argv);
		if (strcmp(c, "hkdf") == 0)
			return cmd_hkdf(argc, argv);
		if (strcmp(c, "psk") == 0)
			return cmd_psk(argc, argv);
		if (strcmp(c, "noise-init") == 0 || strcmp(c, "noise-resp") == 0)
			return cmd_peer(argc, argv);
		if (strcmp(c, "tamper") == 0)
			return cmd_tamper(argc, argv);
		if (strcmp(c, "bench") == 0 && argc == 2)
			return cmd_bench();
		usage();
	}
	rfc8439();
	aead_parts();
	rfc7748();
	rfc5869();
	noise_vector();
	noise_failures();
	records();
	psk_from_key();
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
