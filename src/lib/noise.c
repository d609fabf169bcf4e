#include "noise.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "aead.h"
#include "hkdf.h"
#include "mem.h"
#include "sha256.h"
#include "x25519.h"

/* The step a state is in: the messages through so far, or why it can do nothing. */
enum { STEP_DONE = 2, STEP_SPLIT = 3, STEP_FAILED = -1 };

/* ChaChaPoly's nonce (Noise §12.3): 32 zero bits, then n as 64 bits little-endian. */
static void cs_nonce(unsigned char nonce[AEAD_NONCE], uint64_t n)
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (unsigned char)(n >> 8 * i);
}

static void cs_init(struct noise_cs *cs, const unsigned char k[NOISE_KEY])
{
	memcpy(cs->k, k, NOISE_KEY);
	cs->n = 0;
	cs->haskey = 1;
}

/* The checks encrypt and decrypt share; sets errno and returns -1 when one fails. */
static int cs_check(const struct noise_cs *cs, size_t n, size_t max)
{
	if (!cs->haskey) {
		errno = EINVAL;
		return -1;
	}
	if (n > max) {
		errno = EMSGSIZE;
		return -1;
	}
	if (cs->n == UINT64_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	return 0;
}

int noise_cs_encrypt_parts(struct noise_cs *cs, const void *ad, size_t adlen, const void *head,
			   size_t hn, const void *in, size_t n, void *out)
{
	unsigned char nonce[AEAD_NONCE];

	if (cs_check(cs, hn + n, NOISE_CS_PLAIN_MAX) < 0)
		return -1;
	cs_nonce(nonce, cs->n);
	if (aead_seal_parts(cs->k, nonce, ad, adlen, head, hn, in, n, out) < 0)
		return -1;
	cs->n++;
	return 0;
}

int noise_cs_encrypt(struct noise_cs *cs, const void *ad, size_t adlen, const void *in, size_t n,
		     void *out)
{
	return noise_cs_encrypt_parts(cs, ad, adlen, NULL, 0, in, n, out);
}

int noise_cs_decrypt_parts(struct noise_cs *cs, const void *ad, size_t adlen, const void *in,
			   size_t n, void *head, size_t hn, void *out)
{
	unsigned char nonce[AEAD_NONCE];

	if (cs_check(cs, n, NOISE_MSG_MAX) < 0)
		return -1;
	cs_nonce(nonce, cs->n);
	if (aead_open_parts(cs->k, nonce, ad, adlen, in, n, head, hn, out) < 0)
		return -1;
	/* Only a message that authenticates uses up its nonce (Noise §5.1). */
	cs->n++;
	return 0;
}

int noise_cs_decrypt(struct noise_cs *cs, const void *ad, size_t adlen, const void *in, size_t n,
		     void *out)
{
	return noise_cs_decrypt_parts(cs, ad, adlen, in, n, NULL, 0, out);
}

void noise_cs_wipe(struct noise_cs *cs) { mem_wipe(cs, sizeof *cs); }

static void mix_hash(unsigned char h[NOISE_HASH], const void *data, size_t n)
{
	struct sha256 s;

	sha256_init(&s);
	sha256_update(&s, h, NOISE_HASH);
	sha256_update(&s, data, n);
	sha256_final(&s, h);
}

static void mix_key(struct noise_hs *hs, const unsigned char *ikm, size_t n)
{
	unsigned char k[NOISE_KEY];

	hkdf_noise(hs->ck, ikm, n, hs->ck, k, NULL);
	cs_init(&hs->cs, k);
	mem_wipe(k, sizeof k);
}

static void mix_key_and_hash(struct noise_hs *hs, const unsigned char *ikm, size_t n)
{
	unsigned char th[NOISE_HASH], k[NOISE_KEY];

	hkdf_noise(hs->ck, ikm, n, hs->ck, th, k);
	mix_hash(hs->h, th, sizeof th);
	cs_init(&hs->cs, k);
	mem_wipe(th, sizeof th);
	mem_wipe(k, sizeof k);
}

/* The handshake cipher always has a key here: the psk token comes first. */
static void encrypt_and_hash(struct noise_hs *hs, const void *pt, size_t n, unsigned char *out)
{
	(void)noise_cs_encrypt(&hs->cs, hs->h, NOISE_HASH, pt, n, out); /* sizes checked before */
	mix_hash(hs->h, out, n + NOISE_TAG);
}

static int decrypt_and_hash(struct noise_hs *hs, const unsigned char *ct, size_t n, void *out)
{
	unsigned char h[NOISE_HASH];
	int r;

	/* Hash the ciphertext before decrypting it: out may be where it lies. */
	memcpy(h, hs->h, sizeof h);
	mix_hash(h, ct, n);
	r = noise_cs_decrypt(&hs->cs, hs->h, NOISE_HASH, ct, n, out);
	if (r == 0)
		memcpy(hs->h, h, sizeof h);
	mem_wipe(h, sizeof h);
	return r;
}

static int fail(struct noise_hs *hs, int err)
{
	noise_hs_wipe(hs);
	hs->step = STEP_FAILED;
	errno = err;
	return -1;
}

int noise_hs_init_ephemeral(struct noise_hs *hs, int initiator, const unsigned char psk[NOISE_PSK],
			    const void *prologue, size_t plen, const unsigned char e[32])
{
	static const char name[] = NOISE_PROTOCOL;

	memset(hs, 0, sizeof *hs);
	hs->initiator = initiator != 0;
	/* The name is longer than HASHLEN, so h starts as its hash (§5.2 InitializeSymmetric). */
	sha256(name, sizeof name - 1, hs->h);
	memcpy(hs->ck, hs->h, NOISE_HASH);
	mix_hash(hs->h, plen ? prologue : "", plen);
	memcpy(hs->psk, psk, NOISE_PSK);
	memcpy(hs->e, e, sizeof hs->e);
	(void)x25519_base(hs->epub, hs->e); /* the base point has prime order: never zero */
	return 0;
}

int noise_hs_init(struct noise_hs *hs, int initiator, const unsigned char psk[NOISE_PSK],
		  const void *prologue, size_t plen)
{
	unsigned char e[32];
	size_t got = 0;

	while (got < sizeof e) {
		ssize_t r = getrandom(e + got, sizeof e - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			mem_wipe(e, sizeof e);
			return -1;
		}
		got += (size_t)r;
	}
	noise_hs_init_ephemeral(hs, initiator, psk, prologue, plen, e);
	mem_wipe(e, sizeof e);
	return 0;
}

/* Whether it is this side's turn to write (writing 1) or to read (writing 0). */
static int my_turn(const struct noise_hs *hs, int writing)
{
	if (hs->step != 0 && hs->step != 1)
		return 0;
	/* The initiator writes message 0 and reads message 1; the responder the other way. */
	return (hs->step == 0) == (hs->initiator == writing);
}

ssize_t noise_hs_write(struct noise_hs *hs, const void *payload, size_t n, void *out, size_t cap)
{
	unsigned char *o = out;

	if (!my_turn(hs, 1)) {
		errno = EINVAL;
		return -1;
	}
	if (n > NOISE_HS_PAYLOAD_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if (cap < n + NOISE_HS_OVERHEAD) {
		errno = ENOBUFS;
		return -1;
	}
	if (hs->step == 0) {
		/* -> psk, e */
		mix_key_and_hash(hs, hs->psk, NOISE_PSK);
		mem_wipe(hs->psk, sizeof hs->psk);
		memcpy(o, hs->epub, 32);
		mix_hash(hs->h, hs->epub, 32);
		mix_key(hs, hs->epub, 32); /* in a PSK handshake e is also a key input (§9.2) */
	} else {
		/* <- e, ee */
		memcpy(o, hs->epub, 32);
		mix_hash(hs->h, hs->epub, 32);
		mix_key(hs, hs->epub, 32);
		mix_key(hs, hs->ee, sizeof hs->ee); /* computed when message 1 was read */
		mem_wipe(hs->ee, sizeof hs->ee);
		mem_wipe(hs->e, sizeof hs->e);
	}
	encrypt_and_hash(hs, payload, n, o + 32);
	hs->step++;
	return (ssize_t)(n + NOISE_HS_OVERHEAD);
}

ssize_t noise_hs_read(struct noise_hs *hs, const void *msg, size_t n, void *payload, size_t cap)
{
	const unsigned char *m = msg;
	unsigned char ss[32];

	if (!my_turn(hs, 0)) {
		errno = EINVAL;
		return -1;
	}
	if (n < NOISE_HS_OVERHEAD || n > NOISE_MSG_MAX)
		return fail(hs, EBADMSG);
	if (cap < n - NOISE_HS_OVERHEAD) {
		errno = ENOBUFS;
		return -1;
	}
	if (hs->step == 0) {
		/* -> psk, e */
		mix_key_and_hash(hs, hs->psk, NOISE_PSK);
		mem_wipe(hs->psk, sizeof hs->psk);
		memcpy(hs->re, m, 32);
		mix_hash(hs->h, hs->re, 32);
		mix_key(hs, hs->re, 32);
		/* ee goes into our reply; a key of small order is refused now, with its message. */
		if (x25519(hs->ee, hs->e, hs->re) < 0)
			return fail(hs, EBADMSG);
	} else {
		/* <- e, ee */
		memcpy(hs->re, m, 32);
		mix_hash(hs->h, hs->re, 32);
		mix_key(hs, hs->re, 32);
		if (x25519(ss, hs->e, hs->re) < 0) {
			mem_wipe(ss, sizeof ss);
			return fail(hs, EBADMSG);
		}
		mix_key(hs, ss, sizeof ss);
		mem_wipe(ss, sizeof ss);
		mem_wipe(hs->e, sizeof hs->e);
	}
	if (decrypt_and_hash(hs, m + 32, n - 32, payload) < 0)
		return fail(hs, EBADMSG);
	hs->step++;
	return (ssize_t)(n - NOISE_HS_OVERHEAD);
}

int noise_hs_done(const struct noise_hs *hs) { return hs->step == STEP_DONE; }

int noise_hs_split(struct noise_hs *hs, struct noise_cs *send, struct noise_cs *recv)
{
	unsigned char k1[NOISE_KEY], k2[NOISE_KEY], h[NOISE_HASH];

	if (hs->step != STEP_DONE) {
		errno = EINVAL;
		return -1;
	}
	hkdf_noise(hs->ck, "", 0, k1, k2, NULL);
	/* k1 protects what the initiator sends, k2 what the responder sends. */
	cs_init(send, hs->initiator ? k1 : k2);
	cs_init(recv, hs->initiator ? k2 : k1);
	mem_wipe(k1, sizeof k1);
	mem_wipe(k2, sizeof k2);
	memcpy(h, hs->h, sizeof h);
	noise_hs_wipe(hs);
	memcpy(hs->h, h, sizeof h);
	hs->step = STEP_SPLIT;
	return 0;
}

int noise_hs_hash(const struct noise_hs *hs, unsigned char out[NOISE_HASH])
{
	if (hs->step != STEP_DONE && hs->step != STEP_SPLIT) {
		errno = EINVAL;
		return -1;
	}
	memcpy(out, hs->h, NOISE_HASH);
	return 0;
}

void noise_hs_wipe(struct noise_hs *hs)
{
	mem_wipe(hs, sizeof *hs);
	hs->step = STEP_FAILED;
}

int noise_psk_from_key(const void *key, size_t keylen, unsigned char psk[NOISE_PSK])
{
	static const char salt[] = "socketpool psk v1";

	if (keylen == 0) {
		errno = EINVAL;
		return -1;
	}
	return hkdf_sha256(salt, sizeof salt - 1, key, keylen, NULL, 0, psk, NOISE_PSK);
}
