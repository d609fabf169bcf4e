"""Cross-check cryptotest against python3-cryptography (OpenSSL) on random inputs.

usage: /usr/bin/python3 xcheck.py CRYPTOTEST KIND TRIALS

KIND is x25519, aead, hkdf or psk. Each trial runs both ways where there
are two ways (we seal and OpenSSL opens, OpenSSL seals and we open; both
sides of a key agreement). Prints one line per kind with the trial count,
and every disagreement; exits 1 if there was any.
"""
import os
import subprocess
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TOOL = sys.argv[1]
bad = 0


def ours(*args, ok=True):
    """Run cryptotest; its hex output as bytes, or None when it exits 1."""
    p = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if p.returncode == 0:
        return bytes.fromhex(p.stdout.strip())
    if p.returncode == 1 and not ok:
        return None
    raise SystemExit(f"cryptotest {' '.join(args)}: exit {p.returncode}: {p.stderr}")


def agree(what, got, want):
    global bad
    if got != want:
        bad += 1
        print(f"DISAGREE {what}: ours {got.hex() if got else got} theirs {want.hex()}")


def rand(lo, hi):
    return os.urandom(lo + int.from_bytes(os.urandom(2), "little") % (hi - lo + 1))


def pub(priv):
    return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519(trials):
    for _ in range(trials):
        a, b = os.urandom(32), os.urandom(32)
        pa = X25519PrivateKey.from_private_bytes(a)
        pb = X25519PrivateKey.from_private_bytes(b)
        A, B = pub(pa), pub(pb)
        agree("public key", ours("x25519-base", a.hex()), A)
        shared = pa.exchange(X25519PublicKey.from_public_bytes(B))
        agree("shared secret, our a with their B", ours("x25519", a.hex(), B.hex()), shared)
        agree("shared secret, our b with their A", ours("x25519", b.hex(), A.hex()), shared)
        # Any 32 bytes as u, points of the twist included: top bit set too.
        u = os.urandom(32)
        try:
            want = pa.exchange(X25519PublicKey.from_public_bytes(u))
        except ValueError:  # small order, with a chance of 2^-250
            continue
        agree("X25519 of a random u", ours("x25519", a.hex(), u.hex()), want)


def aead(trials):
    # Lengths around the 64-byte block and the 4-, 8- and 16-block batches
    # (SSE2, AVX2, AVX-512), one that takes each batch in turn (1024 + 512 +
    # 256 + 64 + 5), longer ones (Poly1305's 4-lane path takes 256 bytes on),
    # then random ones.
    lengths = [0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 511, 512, 513, 1000,
               1023, 1024, 1025, 1861, 4096, 16383, 16401, 20000]
    for t in range(trials):
        key, nonce = os.urandom(32), os.urandom(12)
        ad = rand(0, 80)
        pt = os.urandom(lengths[t]) if t < len(lengths) else rand(0, 5000)
        c = ChaCha20Poly1305(key)
        sealed = ours("seal", key.hex(), nonce.hex(), ad.hex(), pt.hex())
        try:
            agree("OpenSSL opens what we seal", c.decrypt(nonce, sealed, ad), pt)
        except InvalidTag:
            agree("OpenSSL opens what we seal", b"(InvalidTag)", pt)
        theirs = c.encrypt(nonce, pt, ad)
        agree("we seal what OpenSSL seals", sealed, theirs)
        agree("we open what OpenSSL seals", ours("open", key.hex(), nonce.hex(), ad.hex(), theirs.hex()), pt)
        # And refuse it altered anywhere.
        i = int.from_bytes(os.urandom(2), "little") % len(theirs)
        bent = bytearray(theirs)
        bent[i] ^= 1 << (i % 8)
        got = ours("open", key.hex(), nonce.hex(), ad.hex(), bytes(bent).hex(), ok=False)
        if got is not None:
            agree(f"we refuse OpenSSL's message altered at byte {i}", got, b"(refused)")


def hkdf(trials):
    for _ in range(trials):
        salt, ikm, info = rand(0, 80), rand(0, 100), rand(0, 256)
        n = 1 + int.from_bytes(os.urandom(2), "little") % 1000
        want = HKDF(hashes.SHA256(), n, salt or None, info).derive(ikm)
        agree(f"HKDF of {n} bytes", ours("hkdf", salt.hex(), ikm.hex(), info.hex(), str(n)), want)


def psk(trials):
    keys = ["k12", "a passphrase with spaces", "x"]
    for t in range(trials):
        key = keys[t] if t < len(keys) else os.urandom(32).hex()
        want = HKDF(hashes.SHA256(), 32, b"socketpool psk v1", b"").derive(key.encode())
        agree(f"PSK of {key!r}", ours("psk", key), want)


kind, trials = sys.argv[2], int(sys.argv[3])
{"x25519": x25519, "aead": aead, "hkdf": hkdf, "psk": psk}[kind](trials)
print(f"{kind}: {trials} trials, {bad} disagreements")
sys.exit(1 if bad else 0)
