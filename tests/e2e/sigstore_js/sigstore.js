#!/usr/bin/env node
// sigstore-js (the reference JavaScript implementation of sigstore, the one npm provenance
// uses) signing and verifying sigstore bundles for berth's interoperability tests
// (tests/e2e/sigstore_js.rs). Nothing here is berth's: keys come from Node's crypto, bundles
// from @sigstore/sign and @sigstore/bundle, verdicts from @sigstore/verify.
//
//   keygen DIR                      DIR/js.key (PKCS#8 P-256) and DIR/js.pub (SPKI PEM)
//   sign KEY DIGEST NAME            a DSSE bundle (in-toto statement naming DIGEST, cosign's
//                                   predicate type) signed by KEY, no witnesses: printed JSON
//   verify BUNDLE PUB DIGEST        verifies a keyed bundle with the public key PUB as trust
//                                   material, no log (thresholds 0), and that its statement
//                                   names DIGEST (a DSSE bundle) or that ARTIFACT is what it
//                                   signed (a message signature, --artifact FILE)
//   verify BUNDLE --trusted-root ROOT --issuer ISSUER --san SAN DIGEST
//                                   verifies a keyless bundle against a sigstore trusted root
//                                   (Fulcio CAs, Rekor keys; no CT log: ctlogThreshold 0) and
//                                   the signer's identity
//
// Prints a JSON verdict; exits 1 when verification fails.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { DSSEBundleBuilder } = require('@sigstore/sign');
const { bundleFromJSON, bundleToJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const IN_TOTO = 'application/vnd.in-toto+json';
const COSIGN_SIGN = 'https://sigstore.dev/cosign/sign/v1';

// cosign's and sigstore-go's hint for a key: base64 of SHA-256 over its DER SubjectPublicKeyInfo.
function hintOf(publicKey) {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('base64');
}

function keygen(dir) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(path.join(dir, 'js.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  fs.writeFileSync(path.join(dir, 'js.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  return { hint: hintOf(publicKey) };
}

async function sign(keyFile, digest, name) {
  const privateKey = crypto.createPrivateKey(fs.readFileSync(keyFile));
  const publicKey = crypto.createPublicKey(privateKey);
  // A custom signer: ECDSA P-256 with SHA-256 (DER), over what the builder hands it (the DSSE
  // pre-authentication encoding).
  const signer = {
    sign: async (data) => ({
      signature: crypto.sign('sha256', data, privateKey),
      key: {
        $case: 'publicKey',
        publicKey: publicKey.export({ type: 'spki', format: 'pem' }),
        hint: hintOf(publicKey),
      },
    }),
  };
  const [algorithm, hex] = digest.split(':');
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { [algorithm]: hex } }],
    predicateType: COSIGN_SIGN,
    predicate: {},
  };
  const builder = new DSSEBundleBuilder({ signer, witnesses: [] });
  const bundle = await builder.create({ data: Buffer.from(JSON.stringify(statement)), type: IN_TOTO });
  return bundleToJSON(bundle);
}

function option(args, name) {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
}

function verify(args) {
  const trustedRoot = option(args, '--trusted-root');
  const issuer = option(args, '--issuer');
  const san = option(args, '--san');
  const artifact = option(args, '--artifact');
  const [bundleFile, ...rest] = args;
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundleFile, 'utf8')));
  const entity = toSignedEntity(bundle, artifact && fs.readFileSync(artifact));
  let verifier;
  let policy;
  let digest;
  if (trustedRoot) {
    [digest] = rest;
    const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(trustedRoot, 'utf8')));
    // The private sigstore runs no certificate transparency log, so no SCT is required; a
    // transparency-log entry is (the default threshold of 1).
    verifier = new Verifier(toTrustMaterial(root), { ctlogThreshold: 0 });
    policy = { subjectAlternativeName: san, extensions: { issuer } };
  } else {
    const [pubFile, d] = rest;
    digest = d;
    const publicKey = crypto.createPublicKey(fs.readFileSync(pubFile));
    const keys = {
      [hintOf(publicKey)]: { rawBytes: publicKey.export({ type: 'spki', format: 'der' }) },
    };
    const empty = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
    // A keyed signature with no log and no timestamp authority, as berth and cosign
    // --tlog-upload=false make them: nothing is witnessed, so nothing is required.
    verifier = new Verifier(toTrustMaterial(empty, keys), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      tsaThreshold: 0,
    });
  }
  verifier.verify(entity, policy);
  // sigstore-js checks the signature; what was signed is the caller's to check.
  const content = bundle.content;
  if (content.$case === 'dsseEnvelope') {
    const envelope = content.dsseEnvelope;
    if (envelope.payloadType !== IN_TOTO) {
      throw new Error(`payload type ${envelope.payloadType}`);
    }
    const statement = JSON.parse(envelope.payload.toString('utf8'));
    const [algorithm, hex] = digest.split(':');
    if (!statement.subject.some((s) => s.digest && s.digest[algorithm] === hex)) {
      throw new Error(`the statement does not name ${digest}`);
    }
    return { verified: true, content: 'dsse', predicateType: statement.predicateType };
  }
  const signed = 'sha256:' + Buffer.from(content.messageSignature.messageDigest.digest).toString('hex');
  if (signed !== digest) {
    throw new Error(`the message signature signs ${signed}, not ${digest}`);
  }
  return { verified: true, content: 'message' };
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case 'keygen':
      return keygen(args[0]);
    case 'sign':
      return sign(args[0], args[1], args[2]);
    case 'verify':
      return verify(args);
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\n'),
  (e) => {
    process.stdout.write(JSON.stringify({ verified: false, error: `${e.code || e.name}: ${e.message}` }) + '\n');
    process.exitCode = 1;
  },
);
