#include "hkdf.h"

#include <errno.h>
#include <string.h>

#include "mem.h"

void hkdf_extract(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen,
		  unsigned char prk[SHA256_LEN])
{
	/* HMAC pads a short key with zeros, so no salt and 32 zero bytes give the same PRK. */
	hmac_sha256(salt, saltlen, ikm, ikmlen, prk);
}

int hkdf_expand(const unsigned char prk[SHA256_LEN], const void *info, size_t infolen, void *okm,
		size_t len)
{
	unsigned char buf[SHA256_LEN + HKDF_INFO_MAX + 1], t[SHA256_LEN];
	unsigned char *o = okm;
	size_t tlen = 0; /* T(0) is empty */

	if (len > HKDF_MAX || infolen > HKDF_INFO_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (unsigned i = 1; len; i++) {
		size_t take = len < SHA256_LEN ? len : SHA256_LEN;
		memcpy(buf, t, tlen);
		if (infolen)
			memcpy(buf + tlen, info, infolen);
		buf[tlen + infolen] = (unsigned char)i;
		hmac_sha256(prk, SHA256_LEN, buf, tlen + infolen + 1, t);
		tlen = SHA256_LEN;
		memcpy(o, t, take);
		o += take;
		len -= take;
	}
	mem_wipe(buf, sizeof buf);
	mem_wipe(t, sizeof t);
	return 0;
}

int hkdf_sha256(const void *salt, size_t saltlen, const void *ikm, size_t ikmlen, const void *info,
		size_t infolen, void *okm, size_t len)
{
	unsigned char prk[SHA256_LEN];
	int r;

	hkdf_extract(salt, saltlen, ikm, ikmlen, prk);
	r = hkdf_expand(prk, info, infolen, okm, len);
	mem_wipe(prk, sizeof prk);
	return r;
}

void hkdf_noise(const unsigned char ck[SHA256_LEN], const void *ikm, size_t ikmlen,
		unsigned char out1[SHA256_LEN], unsigned char out2[SHA256_LEN], unsigned char *out3)
{
	unsigned char prk[SHA256_LEN], okm[3 * SHA256_LEN];
	size_t n = out3 ? 3 : 2;

	/* Through locals: the outputs may be ck itself (MixKey writes the new ck over the old). */
	hkdf_extract(ck, SHA256_LEN, ikm, ikmlen, prk);
	(void)hkdf_expand(prk, NULL, 0, okm, n * SHA256_LEN); /* cannot fail: 96 bytes, no info */
	memcpy(out1, okm, SHA256_LEN);
	memcpy(out2, okm + SHA256_LEN, SHA256_LEN);
	if (out3)
		memcpy(out3, okm + 2 * SHA256_LEN, SHA256_LEN);
	mem_wipe(prk, sizeof prk);
	mem_wipe(okm, sizeof okm);
}
