#!/usr/bin/env python3
"""A private, offline stand-in for sigstore's public services, for berth's tests.

Everything berth verifies for keyless signatures is made here by an implementation independent
of berth's (the openssl command for keys, certificates and signatures; Python's json, hashlib
and base64 for the rest):

  init DIR       a Fulcio-like CA (P-384 root and intermediate), a Rekor-like log key (P-256)
                 and DIR/trusted_root.json naming both, as sigstore's protobuf-specs write it.
  sign DIR ...   a Fulcio-like leaf certificate (P-256, SAN, OIDC issuer extension,
                 codeSigning) issued by DIR's CA, a signature for a manifest digest, a Rekor
                 entry with its signed entry timestamp (and an inclusion proof and checkpoint),
                 printed as JSON: either cosign's annotations (--form cosign) or a sigstore
                 bundle v0.3 (--form message or --form dsse; --key signs with a key instead).

The options that break things (--integrated-time outside the certificate, --tamper-set,
--statement-digest, ...) exist so that tests can check each refusal.
"""

import argparse
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

CA_CNF = """
[ ca ]
default_ca = ca_default
[ ca_default ]
database = {dir}/index.txt
new_certs_dir = {dir}/newcerts
serial = {dir}/serial
default_md = sha384
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
organizationName = optional
commonName = optional
[ v3_root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ v3_intermediate ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

LEAF_EXT = """
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectAltName = critical,{san}
authorityKeyIdentifier = keyid
{issuer_ext}
"""


def b64(data):
    return base64.b64encode(data).decode()


def openssl(*args, cwd=None, data=None):
    out = subprocess.run(["openssl", *args], cwd=cwd, input=data, capture_output=True)
    if out.returncode != 0:
        sys.exit("openssl %s: %s" % (" ".join(args), out.stderr.decode()))
    return out.stdout


def genkey(path, curve):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out", path)


def spki_der(key):
    return openssl("pkey", "-in", key, "-pubout", "-outform", "DER")


def pem_to_der(pem_path):
    return openssl("x509", "-in", pem_path, "-outform", "DER")


def sign_bytes(key, data):
    """ECDSA (DER) over SHA-256 of data."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return openssl("dgst", "-sha256", "-sign", key, f.name)


def sign_digest(key, digest):
    """ECDSA (DER) over a precomputed SHA-256 digest."""
    with tempfile.NamedTemporaryFile() as f:
        f.write(digest)
        f.flush()
        return openssl("pkeyutl", "-sign", "-inkey", key, "-in", f.name)


def issue(d, csr, out, start, end, extfile, section, signer_cert=None, signer_key=None, selfsign_key=None):
    args = ["ca", "-batch", "-notext", "-config", os.path.join(d, "ca.cnf"), "-in", csr, "-out", out,
            "-startdate", start, "-enddate", end, "-extfile", extfile, "-extensions", section]
    if selfsign_key:
        args += ["-selfsign", "-keyfile", selfsign_key]
    else:
        args += ["-cert", signer_cert, "-keyfile", signer_key]
    openssl(*args)


def init(d):
    os.makedirs(os.path.join(d, "newcerts"), exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write(CA_CNF.format(dir=d))
    p = lambda n: os.path.join(d, n)
    genkey(p("root.key"), "P-384")
    genkey(p("inter.key"), "P-384")
    genkey(p("rekor.key"), "P-256")
    openssl("req", "-new", "-key", p("root.key"), "-subj", "/O=fake-sigstore/CN=root", "-out", p("root.csr"))
    issue(d, p("root.csr"), p("root.pem"), "20200101000000Z", "20400101000000Z", cnf, "v3_root", selfsign_key=p("root.key"))
    openssl("req", "-new", "-key", p("inter.key"), "-subj", "/O=fake-sigstore/CN=intermediate", "-out", p("inter.csr"))
    issue(d, p("inter.csr"), p("inter.pem"), "20200101000000Z", "20400101000000Z", cnf, "v3_intermediate",
          signer_cert=p("root.pem"), signer_key=p("root.key"))
    rekor = spki_der(p("rekor.key"))
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://rekor.invalid",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(rekor), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": "2020-01-01T00:00:00Z"}},
            "logId": {"keyId": b64(hashlib.sha256(rekor).digest())},
        }],
        "certificateAuthorities": [{
            "subject": {"organization": "fake-sigstore", "commonName": "root"},
            "uri": "https://fulcio.invalid",
            "certChain": {"certificates": [{"rawBytes": b64(pem_to_der(p("inter.pem")))},
                                           {"rawBytes": b64(pem_to_der(p("root.pem")))}]},
            "validFor": {"start": "2020-01-01T00:00:00Z"},
        }],
        "ctlogs": [],
        "timestampAuthorities": [],
    }
    with open(p("trusted_root.json"), "w") as f:
        json.dump(root, f, indent=2)


def leaf_cert(d, work, args):
    """A Fulcio-like certificate for a fresh P-256 key; returns (key path, PEM, DER)."""
    key = os.path.join(work, "leaf.key")
    genkey(key, "P-256")
    csr = os.path.join(work, "leaf.csr")
    openssl("req", "-new", "-key", key, "-subj", "/O=sigstore.dev", "-out", csr)
    san = ("email:" if "@" in args.subject and "://" not in args.subject else "URI:") + args.subject
    if args.issuer_v1:
        # V1: the issuer's raw bytes as the extension value.
        issuer_ext = "1.3.6.1.4.1.57264.1.1 = DER:" + args.issuer.encode().hex()
    else:
        issuer_ext = "1.3.6.1.4.1.57264.1.8 = ASN1:UTF8String:" + args.issuer
    ext = os.path.join(work, "leaf.ext")
    with open(ext, "w") as f:
        f.write(LEAF_EXT.format(san=san, issuer_ext=issuer_ext))
    pem = os.path.join(work, "leaf.pem")
    issue(d, csr, pem, args.cert_start, args.cert_end, ext, "leaf",
          signer_cert=os.path.join(d, "inter.pem"), signer_key=os.path.join(d, "inter.key"))
    text = open(pem).read()
    return key, text, pem_to_der(pem)


def mth(leaves):
    """RFC 9162 2.1.1: the Merkle tree hash of leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def path(m, leaves):
    """RFC 9162 2.1.3.1: the audit path of leaf m."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def log_entry(d, body, args):
    """The Rekor entry of body: (log id hex, SET, proof) with SET over the canonical JSON."""
    rekor_key = os.path.join(d, "rekor.key")
    log_id = hashlib.sha256(spki_der(rekor_key)).hexdigest()
    body_b64 = b64(body)
    canonical = json.dumps({"body": body_b64, "integratedTime": args.integrated_time,
                            "logID": log_id, "logIndex": args.log_index},
                           sort_keys=True, separators=(",", ":")).encode()
    set_ = sign_bytes(rekor_key, canonical)
    if args.tamper_set:
        canonical = canonical.replace(b'"logIndex":%d' % args.log_index, b'"logIndex":%d' % (args.log_index + 1))
        set_ = sign_bytes(rekor_key, canonical)
    # A tree of five entries with this one fourth (index 3).
    leaves = [hashlib.sha256(b"\x00" + b"other entry %d" % i).digest() for i in range(5)]
    leaves[3] = hashlib.sha256(b"\x00" + body).digest()
    root = mth(leaves)
    # A signed note: the signature covers the text, which ends before the blank line.
    note = "fake-rekor - 1\n%d\n%s\n" % (len(leaves), b64(root))
    sig = sign_bytes(rekor_key, note.encode())
    hint = hashlib.sha256(spki_der(rekor_key)).digest()[:4]
    checkpoint = note + "\n\u2014 fake-rekor %s\n" % b64(hint + sig)
    proof = {"logIndex": "3", "rootHash": b64(root), "treeSize": str(len(leaves)),
             "hashes": [b64(h) for h in path(3, leaves)], "checkpoint": {"envelope": checkpoint}}
    return log_id, body_b64, set_, proof


def hashedrekord(sig, verifier_pem, digest_hex):
    return json.dumps({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": digest_hex}},
        "signature": {"content": b64(sig), "publicKey": {"content": b64(verifier_pem.encode())}}}},
        separators=(",", ":")).encode()


def sign(d, args):
    digest = args.digest
    with tempfile.TemporaryDirectory() as work:
        if args.key:
            key, cert_pem, cert_der = args.key, None, None
            verifier_pem = openssl("pkey", "-in", args.key, "-pubout").decode()
        else:
            key, cert_pem, cert_der = leaf_cert(d, work, args)
            verifier_pem = cert_pem
        if args.form == "cosign":
            payload = json.dumps({"critical": {"identity": {"docker-reference": args.reference},
                                               "image": {"docker-manifest-digest": digest},
                                               "type": "cosign container image signature"},
                                  "optional": None}).encode()
            sig = sign_bytes(key, payload)
            body = hashedrekord(sig, verifier_pem, hashlib.sha256(payload).hexdigest())
            log_id, body_b64, set_, _ = log_entry(d, body, args)
            chain = open(os.path.join(d, "inter.pem")).read() + open(os.path.join(d, "root.pem")).read()
            print(json.dumps({
                "payload": b64(payload),
                "signature": b64(sig),
                "certificate": cert_pem,
                "chain": chain,
                "bundle": json.dumps({"SignedEntryTimestamp": b64(set_), "Payload": {
                    "body": body_b64, "integratedTime": args.integrated_time,
                    "logIndex": args.log_index, "logID": log_id}}),
            }))
            return
        bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
        if args.form == "message":
            raw = bytes.fromhex(digest.split(":", 1)[1])
            sig = sign_digest(key, raw)
            body = hashedrekord(sig, verifier_pem, raw.hex())
            bundle["messageSignature"] = {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(raw)},
                                          "signature": b64(sig)}
            kind = "hashedrekord"
        else:
            statement_digest = args.statement_digest or digest
            payload = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                                  "subject": [{"name": args.reference,
                                               "digest": {"sha256": statement_digest.split(":", 1)[1]}}],
                                  "predicateType": "https://sigstore.dev/cosign/sign/v1",
                                  "predicate": {}}).encode()
            ptype = "application/vnd.in-toto+json"
            pae = b"DSSEv1 %d %s %d " % (len(ptype), ptype.encode(), len(payload)) + payload
            sig = sign_bytes(key, pae)
            envelope = {"payload": b64(payload), "payloadType": ptype, "signatures": [{"sig": b64(sig), "keyid": ""}]}
            body = json.dumps({"apiVersion": "0.0.1", "kind": "dsse", "spec": {
                "envelopeHash": {"algorithm": "sha256",
                                 "value": hashlib.sha256(json.dumps(envelope).encode()).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": b64(sig), "verifier": b64(verifier_pem.encode())}]}},
                separators=(",", ":")).encode()
            bundle["dsseEnvelope"] = envelope
            kind = "dsse"
        log_id, body_b64, set_, proof = log_entry(d, body, args)
        entry = {"logIndex": str(args.log_index), "logId": {"keyId": b64(bytes.fromhex(log_id))},
                 "kindVersion": {"kind": kind, "version": "0.0.1"},
                 "integratedTime": str(args.integrated_time),
                 "canonicalizedBody": body_b64}
        if not args.no_promise:
            entry["inclusionPromise"] = {"signedEntryTimestamp": b64(set_)}
        if not args.no_proof:
            entry["inclusionProof"] = proof
        material = {"tlogEntries": [entry]}
        if cert_der is None:
            material["publicKey"] = {"hint": b64(hashlib.sha256(spki_der(key)).digest())}
        else:
            material["certificate"] = {"rawBytes": b64(cert_der)}
        bundle["verificationMaterial"] = material
        print(json.dumps(bundle))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init")
    i.add_argument("dir")
    s = sub.add_parser("sign")
    s.add_argument("dir")
    s.add_argument("--digest", required=True, help="the manifest digest signed (sha256:<hex>)")
    s.add_argument("--reference", default="registry.invalid/team/app")
    s.add_argument("--form", choices=["cosign", "message", "dsse"], default="cosign")
    s.add_argument("--key", help="sign with this PEM private key (a keyed bundle) instead of a certificate")
    s.add_argument("--issuer", default="https://token.actions.githubusercontent.com")
    s.add_argument("--issuer-v1", action="store_true", help="write the deprecated V1 issuer extension")
    s.add_argument("--subject", default="https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main")
    s.add_argument("--cert-start", default="20240101000000Z")
    s.add_argument("--cert-end", default="20240101001000Z")
    s.add_argument("--integrated-time", type=int, default=1704067500, help="2024-01-01T00:05:00Z")
    s.add_argument("--log-index", type=int, default=42)
    s.add_argument("--tamper-set", action="store_true", help="sign another logIndex than the entry has")
    s.add_argument("--statement-digest", help="the in-toto subject digest (default: --digest)")
    s.add_argument("--no-promise", action="store_true")
    s.add_argument("--no-proof", action="store_true")
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    if a.cmd == "init":
        init(d)
    else:
        sign(d, a)


if __name__ == "__main__":
    main()
