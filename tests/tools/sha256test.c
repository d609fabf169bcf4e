/*
 * sha256test: check src/lib/sha256.c against the FIPS 180-4 examples and
 * the RFC 4231 HMAC-SHA-256 test cases; prints one TAP-like line per
 * vector and exits 1 if any differs.
 * sha256test hmac KEY MSG: print HMAC-SHA-256(KEY, MSG) in hex (tests use
 * it to play a hand-written master).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/sha256.h"

static int failures, count;

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static size_t unhex(const char *s, unsigned char *out)
{
	size_t n = strlen(s) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (unsigned char)v;
	}
	return n;
}

static void check(const char *name, const unsigned char d[SHA256_LEN], const char *want,
		  size_t wantlen)
{
	char got[2 * SHA256_LEN + 1];

	hex(d, SHA256_LEN, got);
	count++;
	if (strncmp(got, want, wantlen) == 0) {
		printf("ok %d %s\n", count, name);
	} else {
		printf("not ok %d %s\n#   got  %.*s\n#   want %s\n", count, name, (int)wantlen, got,
		       want);
		failures++;
	}
}

static void fips(void)
{
	static const struct {
		const char *msg, *want;
	} v[] = {
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
		{"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
		 "nopqrlmnopqrsmnopqrstnopqrstu",
		 "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
	};
	unsigned char d[SHA256_LEN];
	struct sha256 s;
	char block[1000];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char name[64];
		snprintf(name, sizeof name, "FIPS 180-4 message %zu (%zu bytes)", i + 1,
			 strlen(v[i].msg));
		sha256(v[i].msg, strlen(v[i].msg), d);
		check(name, d, v[i].want, 64);
	}
	/* One million 'a', fed in uneven pieces to exercise the block buffer. */
	memset(block, 'a', sizeof block);
	sha256_init(&s);
	for (size_t left = 1000000, step = 1; left;) {
		size_t n = step < left ? step : left;
		sha256_update(&s, block, n);
		left -= n;
		step = step % 991 + 7; /* stays below sizeof block */
	}
	sha256_final(&s, d);
	check("FIPS 180-4 one million 'a'", d,
	      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", 64);
}

static void rfc4231(void)
{
	static const struct {
		const char *key, *msg, *want; /* key and msg in hex */
	} v[] = {
		{"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
		 "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
		{"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
		 "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
		 "dddddddddddddddddddd",
		 "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
		{"0102030405060708090a0b0c0d0e0f10111213141516171819",
		 "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
		 "cdcdcdcdcdcdcdcdcdcd",
		 "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
		/* Case 5: the output truncated to 128 bits. */
		{"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
		 "a3b6167473100ee06e0c796c2955552b"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaa",
		 "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d20"
		 "48617368204b6579204669727374",
		 "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
		{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaaaa",
		 "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b"
		 "2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a652064"
		 "6174612e20546865206b6579206e6565647320746f20626520686173686564206265666f72652062"
		 "65696e6720757365642062792074686520484d414320616c676f726974686d2e",
		 "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	};
	unsigned char key[256], msg[256], d[SHA256_LEN];

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char name[64];
		size_t kl = unhex(v[i].key, key), ml = unhex(v[i].msg, msg);
		snprintf(name, sizeof name, "RFC 4231 test case %zu", i + 1);
		hmac_sha256(key, kl, msg, ml, d);
		check(name, d, v[i].want, strlen(v[i].want));
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "hmac") == 0) {
		unsigned char d[SHA256_LEN];
		char out[2 * SHA256_LEN + 1];
		hmac_sha256(argv[2], strlen(argv[2]), argv[3], strlen(argv[3]), d);
		hex(d, SHA256_LEN, out);
		puts(out);
		return 0;
	}
	if (argc != 1) {
		fputs("usage: sha256test [hmac KEY MSG]\n", stderr);
		return 2;
	}
	fips();
	rfc4231();
	printf("1..%d\n", count);
	return failures ? 1 : 0;
}
