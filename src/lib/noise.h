/*
 * noise: the handshake of the encrypted channel, the Noise Protocol
 * Framework (rev 34) protocol Noise_NNpsk0_25519_ChaChaPoly_SHA256:
 *
 *	-> psk, e
 *	<- e, ee
 *
 * Both sides hold a 32-byte pre-shared key and make fresh ephemeral keys;
 * after the two messages each has a CipherState per direction (forward
 * secret: the ephemeral keys are wiped) and a handshake hash both share.
 * A message sent or read under a wrong PSK fails authentication.
 *
 * What the PSK is worth: NNpsk0 proves knowledge of the PSK and nothing
 * else, so the PSK is the whole of the channel's authentication. A PSK
 * made from a short passphrase (noise_psk_from_key) is exactly as hard to
 * guess as that passphrase, offline: anyone who recorded one handshake
 * can try guesses against its first message at leisure, and an active
 * attacker learns by one connection whether one guess was right. Use 32
 * random bytes from a key file (head -c 32 /dev/urandom) wherever the
 * channel must hold against someone who can record traffic.
 *
 * The state holds no pointers and allocates nothing; each secret in it is
 * wiped when it is no longer needed and on every failure.
 */
#ifndef SP_NOISE_H
#define SP_NOISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NOISE_PROTOCOL "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
#define NOISE_KEY 32
#define NOISE_PSK 32
#define NOISE_HASH 32
#define NOISE_TAG 16
#define NOISE_MSG_MAX 65535 /* the longest Noise message, a handshake or transport one */
/* Handshake message lengths: an ephemeral key, then the payload and its tag. */
#define NOISE_HS_OVERHEAD (32 + NOISE_TAG)
#define NOISE_HS_PAYLOAD_MAX (NOISE_MSG_MAX - NOISE_HS_OVERHEAD)
#define NOISE_CS_PLAIN_MAX (NOISE_MSG_MAX - NOISE_TAG)

/* A CipherState: one direction of transport after the handshake. */
struct noise_cs {
	unsigned char k[NOISE_KEY];
	uint64_t n; /* the nonce of the next message */
	int haskey;
};

struct noise_hs {
	struct noise_cs cs; /* the SymmetricState's cipher, keyed by the PSK */
	unsigned char ck[NOISE_HASH], h[NOISE_HASH];
	unsigned char psk[NOISE_PSK];
	unsigned char e[32], epub[32], re[32]; /* ephemeral private, public; the peer's */
	unsigned char ee[32];		       /* the responder's DH(e, re), from read to write */
	int initiator;
	int step; /* messages processed: 0, 1, 2 (done); -1 after a failure or split */
};

/*
 * Start a handshake: initiator is 1 for the side that sends the first
 * message, 0 for the other. The prologue (plen bytes, may be 0) is data
 * both sides must agree on, e.g. a protocol version: it is hashed in, and
 * a mismatch makes the handshake fail. Makes the ephemeral key pair from
 * getrandom(2). Returns 0, or -1 with errno from getrandom.
 */
int noise_hs_init(struct noise_hs *hs, int initiator, const unsigned char psk[NOISE_PSK],
		  const void *prologue, size_t plen);

/*
 * noise_hs_init with a given ephemeral private key, for test vectors only:
 * an ephemeral key used twice loses the forward secrecy. Returns 0.
 */
int noise_hs_init_ephemeral(struct noise_hs *hs, int initiator, const unsigned char psk[NOISE_PSK],
			    const void *prologue, size_t plen, const unsigned char e[32]);

/*
 * Write this side's next handshake message, carrying n bytes of payload
 * (encrypted, but sent before the peer is authenticated: keep it to what
 * may go to anyone who holds the PSK), into out. Returns the message
 * length, n + NOISE_HS_OVERHEAD, or -1 with errno: EINVAL when it is not
 * this side's turn to write (or after a failure); EMSGSIZE when n is over
 * NOISE_HS_PAYLOAD_MAX, ENOBUFS when cap is short (these two leave the
 * state as it was).
 */
ssize_t noise_hs_write(struct noise_hs *hs, const void *payload, size_t n, void *out, size_t cap);

/*
 * Read the peer's next handshake message msg (n bytes) and put its payload
 * in payload (room cap; payload may be msg + 32, in place). Returns the
 * payload length, or -1 with errno: EBADMSG when the message fails
 * authentication (a wrong PSK or prologue, or an altered message), is too
 * short, or holds a key of small order; EINVAL when it is not this side's
 * turn to read (or after a failure); ENOBUFS when cap is short for the
 * payload, leaving the state as it was. Any other failure wipes the
 * state: the handshake is over.
 */
ssize_t noise_hs_read(struct noise_hs *hs, const void *msg, size_t n, void *payload, size_t cap);

/* 1 when both messages are through and noise_hs_split may be called, else 0. */
int noise_hs_done(const struct noise_hs *hs);

/*
 * The transport CipherStates of a finished handshake: send for this
 * side's messages, recv for the peer's. Wipes the handshake's secrets; the
 * handshake hash stays for noise_hs_hash. Returns 0, or -1 with errno
 * EINVAL when the handshake is not done.
 */
int noise_hs_split(struct noise_hs *hs, struct noise_cs *send, struct noise_cs *recv);

/*
 * The handshake hash h, the same on both sides: a channel binding (sign
 * it, or compare it out of band). Valid once done, also after the split.
 * Returns 0, or -1 with errno EINVAL before the handshake is done.
 */
int noise_hs_hash(const struct noise_hs *hs, unsigned char out[NOISE_HASH]);

/* Wipe the whole state, handshake hash included; it refuses everything after. */
void noise_hs_wipe(struct noise_hs *hs);

/*
 * Encrypt n bytes (at most NOISE_CS_PLAIN_MAX) with associated data ad
 * into out (n + NOISE_TAG bytes; out may be in) under the next nonce.
 * Returns 0, or -1 with errno EMSGSIZE when n is too long, EINVAL when cs
 * has no key, EOVERFLOW when the nonces are used up (2^64 - 1 is reserved,
 * so after 2^64 - 1 messages: rekey by a new handshake long before).
 */
int noise_cs_encrypt(struct noise_cs *cs, const void *ad, size_t adlen, const void *in, size_t n,
		     void *out);

/*
 * The same, of the hn bytes of head (at most 64) followed by the n of in
 * as one plaintext (aead_seal_parts: out overlaps in only as in == out + hn).
 */
int noise_cs_encrypt_parts(struct noise_cs *cs, const void *ad, size_t adlen, const void *head,
			   size_t hn, const void *in, size_t n, void *out);

/*
 * Decrypt a message of n bytes (tag included, at most NOISE_MSG_MAX) into
 * out (n - NOISE_TAG bytes; out may be in). Returns 0, or -1 with errno
 * EBADMSG when it fails authentication (altered, replayed, reordered or
 * under another key; the nonce then stays, and out is untouched),
 * EMSGSIZE, EINVAL or EOVERFLOW as noise_cs_encrypt.
 */
int noise_cs_decrypt(struct noise_cs *cs, const void *ad, size_t adlen, const void *in, size_t n,
		     void *out);

/*
 * The same, the plaintext's first hn bytes (at most 64) to head and the
 * rest to out (aead_open_parts: out overlaps in only as out == in + hn).
 */
int noise_cs_decrypt_parts(struct noise_cs *cs, const void *ad, size_t adlen, const void *in,
			   size_t n, void *head, size_t hn, void *out);

/* Wipe the key: the CipherState can do nothing after it. */
void noise_cs_wipe(struct noise_cs *cs);

/*
 * The PSK from a user's KEY, keylen bytes of text or of a key file:
 * HKDF-SHA256 with salt "socketpool psk v1", the key as input and an
 * empty info. This spreads the key's entropy over 32 bytes; it adds none,
 * so see above about passphrases. Returns 0, or -1 with errno EINVAL for
 * an empty key.
 */
int noise_psk_from_key(const void *key, size_t keylen, unsigned char psk[NOISE_PSK]);

#endif
