#!/usr/bin/env python3
"""Notation signatures made without berth: an implementation independent of berth's, for tests.

The PKI and the signatures come from the openssl CLI; this script only lays out what notation
writes (notaryproject signature-envelope-jws.md and signature-specification.md): the JWS JSON
serialization with its protected header, the x5c chain (leaf first) and the payload naming the
signed manifest. Standard library only.

    notation_sign.py pki DIR
        root.key/root.pem (self-signed CA), inter.key/inter.pem (CA issued by the root).
    notation_sign.py leaf DIR NAME SUBJECT [--key ec256|ec384|ec521|rsa2048|rsa3072|rsa4096]
                     [--ext leaf|nocodesign] [--start YYYYMMDDHHMMSSZ] [--end YYYYMMDDHHMMSSZ]
                     [--issuer inter|root]
        NAME.key/NAME.pem issued by the intermediate (SUBJECT like /C=US/O=Acme/CN=release).
    notation_sign.py sign DIR NAME --digest D --media-type M --size N [--alg ES256]
                     [--expiry RFC3339] [--signing-time RFC3339] [--set NAME=JSON]... [--crit NAME]...
        The JWS envelope on standard output, signed by NAME.key, x5c = NAME, intermediate.
        With --cose, the COSE_Sign1_Tagged envelope (signature-envelope-cose.md) instead:
        --expiry and --signing-time are then Unix seconds, --set values JSON as well.
"""

import argparse
import base64
import datetime
import json
import os
import subprocess
import sys
import time

CA_CONFIG = """
[ ca ]
default_ca = berth_test_ca
[ berth_test_ca ]
database = {dir}/index.txt
new_certs_dir = {dir}/issued
serial = {dir}/serial
default_md = sha256
policy = anything
preserve = yes
email_in_dn = no
unique_subject = no
copy_extensions = none
[ anything ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ ca_ext ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ leaf_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
[ nocodesign_ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
"""

KEYS = {
    "ec256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "ec384": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "ec521": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
    "rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "rsa3072": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
    "rsa4096": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
}

# alg -> (openssl digest, ECDSA field size in bytes or None for RSASSA-PSS)
ALGS = {
    "ES256": ("-sha256", 32),
    "ES384": ("-sha384", 48),
    "ES512": ("-sha512", 66),
    "PS256": ("-sha256", None),
    "PS384": ("-sha384", None),
    "PS512": ("-sha512", None),
}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def config(d):
    path = os.path.join(d, "ca.cnf")
    if not os.path.exists(path):
        os.makedirs(os.path.join(d, "issued"), exist_ok=True)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(path, "w") as f:
            f.write(CA_CONFIG.format(dir=d))
    return path


def issue(d, name, subject, key, ext, issuer, start, end):
    cnf = config(d)
    openssl("genpkey", *KEYS[key], "-out", f"{name}.key", cwd=d)
    openssl("req", "-new", "-config", cnf, "-key", f"{name}.key", "-subj", subject,
            "-out", f"{name}.csr", cwd=d)
    openssl("ca", "-batch", "-config", cnf, "-cert", f"{issuer}.pem", "-keyfile",
            f"{issuer}.key", "-extensions", f"{ext}_ext", "-startdate", start, "-enddate", end,
            "-notext", "-in", f"{name}.csr", "-out", f"{name}.pem", cwd=d)


def pki(args):
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    cnf = config(d)
    openssl("genpkey", *KEYS["ec384"], "-out", "root.key", cwd=d)
    openssl("req", "-new", "-x509", "-config", cnf, "-key", "root.key", "-subj",
            "/C=US/O=Acme/CN=Acme Root", "-days", "3650", "-extensions", "ca_ext",
            "-out", "root.pem", cwd=d)
    issue(d, "inter", "/C=US/O=Acme/CN=Acme Signing CA", "ec256", "ca", "root",
          "20200101000000Z", "20991231000000Z")


def leaf(args):
    d = os.path.abspath(args.dir)
    issue(d, args.name, args.subject, args.key, args.ext, args.issuer, args.start, args.end)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_pem(path):
    """The DER of a one-certificate PEM file."""
    lines = open(path).read().strip().splitlines()
    return base64.b64decode("".join(l for l in lines if not l.startswith("-----")))


def der_ecdsa_to_raw(der, size):
    """ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }) to JWS's r || s (RFC 7518 §3.4)."""

    def read(buf, i):
        tag, length = buf[i], buf[i + 1]
        i += 2
        if length & 0x80:
            n = length & 0x7F
            length = int.from_bytes(buf[i:i + n], "big")
            i += n
        return tag, buf[i:i + length], i + length

    tag, seq, _ = read(der, 0)
    assert tag == 0x30
    _, r, i = read(seq, 0)
    _, s, _ = read(seq, i)
    as_int = lambda b: int.from_bytes(b, "big")
    return as_int(r).to_bytes(size, "big") + as_int(s).to_bytes(size, "big")


def cbor(value):
    """A tiny CBOR encoder (RFC 8949, definite lengths, shortest heads): enough for COSE."""

    def head(major, n):
        if n < 24:
            return bytes([major << 5 | n])
        for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
        raise ValueError(n)

    if isinstance(value, Tag):
        return head(6, value.tag) + cbor(value.value)
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return head(3, len(data)) + data
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(type(value))


class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


COSE_ALGS = {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}


def openssl_sign(d, name, alg, data):
    with open(os.path.join(d, "signing-input"), "wb") as f:
        f.write(data)
    digest, size = ALGS[alg]
    extra = []
    if size is None:
        extra = ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    openssl("dgst", digest, "-sign", f"{name}.key", *extra, "-out", "signature",
            "signing-input", cwd=d)
    signature = open(os.path.join(d, "signature"), "rb").read()
    if size is not None:
        signature = der_ecdsa_to_raw(signature, size)
    return signature


def sign_cose(args, d, payload, chain):
    header = {
        1: COSE_ALGS[args.alg],
        2: ["io.cncf.notary.signingScheme"],
        3: "application/vnd.cncf.notary.payload.v1+json",
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": Tag(1, int(args.signing_time or time.time())),
    }
    if args.expiry:
        header[2].append("io.cncf.notary.expiry")
        header["io.cncf.notary.expiry"] = Tag(1, int(args.expiry))
    for item in args.set or []:
        name, value = item.split("=", 1)
        header[name] = json.loads(value)
    for name in args.crit or []:
        header[2].append(name)
    protected = cbor(header)
    body = json.dumps(payload).encode()
    to_sign = cbor(["Signature1", protected, b"", body])
    signature = openssl_sign(d, args.name, args.alg, to_sign)
    unprotected = {33: chain, "io.cncf.notary.signingAgent": "notation-go/1.3.0"}
    sys.stdout.buffer.write(cbor(Tag(18, [protected, unprotected, body, signature])))


def sign(args):
    d = os.path.abspath(args.dir)
    payload = {
        "targetArtifact": {
            "mediaType": args.media_type,
            "digest": args.digest,
            "size": int(args.size),
        }
    }
    chain = [der_pem(os.path.join(d, f"{args.name}.pem")), der_pem(os.path.join(d, "inter.pem"))]
    if args.cose:
        return sign_cose(args, d, payload, chain)
    tz = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    signing_time = args.signing_time or datetime.datetime.now(tz).isoformat()
    header = {
        "alg": args.alg,
        "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme"],
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": signing_time,
    }
    if args.expiry:
        header["crit"].append("io.cncf.notary.expiry")
        header["io.cncf.notary.expiry"] = args.expiry
    for item in args.set or []:
        name, value = item.split("=", 1)
        header[name] = json.loads(value)
    for name in args.crit or []:
        header["crit"].append(name)
    protected = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    signature = openssl_sign(d, args.name, args.alg, f"{protected}.{body}".encode())
    envelope = {
        "payload": body,
        "protected": protected,
        "header": {
            "x5c": [base64.b64encode(c).decode() for c in chain],
            "io.cncf.notary.signingAgent": "notation-go/1.3.0",
        },
        "signature": b64url(signature),
    }
    sys.stdout.write(json.dumps(envelope))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("pki")
    c.add_argument("dir")
    c.set_defaults(run=pki)
    c = sub.add_parser("leaf")
    c.add_argument("dir")
    c.add_argument("name")
    c.add_argument("subject")
    c.add_argument("--key", default="ec256", choices=sorted(KEYS))
    c.add_argument("--ext", default="leaf", choices=["leaf", "nocodesign"])
    c.add_argument("--issuer", default="inter")
    c.add_argument("--start", default="20200101000000Z")
    c.add_argument("--end", default="20991231000000Z")
    c.set_defaults(run=leaf)
    c = sub.add_parser("sign")
    c.add_argument("dir")
    c.add_argument("name")
    c.add_argument("--digest", required=True)
    c.add_argument("--media-type", required=True)
    c.add_argument("--size", required=True)
    c.add_argument("--alg", default="ES256", choices=sorted(ALGS))
    c.add_argument("--expiry")
    c.add_argument("--signing-time")
    c.add_argument("--set", action="append")
    c.add_argument("--crit", action="append")
    c.add_argument("--cose", action="store_true")
    c.set_defaults(run=sign)
    args = p.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
