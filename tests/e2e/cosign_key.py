"""Seals a private key in cosign's encrypted format, independently of berth, for its tests.

    python3 cosign_key.py KEY.der PASSWORD OUT.key

KEY.der is a PKCS#8 DER private key (as `openssl genpkey -outform DER` writes it). The output
is what `cosign generate-key-pair` writes: a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` holding
the JSON of go-securesystemslib's `encrypted` package: scrypt (N=32768, r=8, p=1) derives a
32-byte key from the password and a random 32-byte salt, and NaCl's secretbox
(XSalsa20-Poly1305, PyNaCl) seals the DER with a random 24-byte nonce.
"""

import base64
import hashlib
import json
import os
import sys
import textwrap

import nacl.secret


def main():
    der_path, password, out = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    with open(der_path, "rb") as f:
        der = f.read()
    salt = os.urandom(32)
    key = hashlib.scrypt(password, salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = nacl.secret.SecretBox(key).encrypt(der, nonce)
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": 32768, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
    }
    body = base64.b64encode(json.dumps(document).encode()).decode()
    with open(out, "w") as f:
        f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
        f.write("\n".join(textwrap.wrap(body, 64)) + "\n")
        f.write("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")


if __name__ == "__main__":
    main()
