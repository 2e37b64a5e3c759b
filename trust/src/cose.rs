//! notation's COSE envelope (notaryproject signature-envelope-cose.md): a `COSE_Sign1_Tagged`
//! (RFC 9052 §4.2), CBOR tag 18 over
//!
//! ```text
//! [ protected:   bstr .cbor { 1 (alg): -37 PS256 | -38 PS384 | -39 PS512 | -7 ES256 | -35 ES384 | -36 ES512,
//!                             2 (crit): ["io.cncf.notary.signingScheme", ...],
//!                             3 (content type): "application/vnd.cncf.notary.payload.v1+json",
//!                             "io.cncf.notary.signingScheme": "notary.x509",
//!                             "io.cncf.notary.signingTime": 1(epoch seconds),
//!                             "io.cncf.notary.expiry": 1(epoch seconds) },
//!   unprotected: { 33 (x5chain): [bstr DER leaf, bstr DER intermediate, ...],
//!                  "io.cncf.notary.signingAgent": tstr },
//!   payload:     bstr (the payload JSON),
//!   signature:   bstr over Sig_structure ["Signature1", protected, h'', payload] ]
//! ```
//!
//! Parsing checks what the COSE format requires; [`crate::notation`] checks the rest.

use ciborium::value::{Integer, Value};

use crate::notation::{Algorithm, Envelope, MAX_ENVELOPE_BYTES, PAYLOAD_CONTENT_TYPE};
use crate::x509::{Cert, MAX_CHAIN};

/// CBOR nesting read at most: a COSE_Sign1 is four levels deep.
const MAX_DEPTH: usize = 16;
/// `COSE_Sign1_Tagged`'s tag.
const SIGN1_TAG: u64 = 18;

const ALG: i64 = 1;
const CRIT: i64 = 2;
const CONTENT_TYPE: i64 = 3;
const X5CHAIN: i64 = 33;

use crate::notation::attributes::{
    AUTHENTIC_SIGNING_TIME, CRITICAL, EXPIRY, SIGNING_SCHEME, SIGNING_TIME, VERIFICATION_PLUGIN,
};

/// A header map, looked up by integer or text label.
struct Headers(Vec<(Value, Value)>);

impl Headers {
    fn int(&self, label: i64) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_integer() == Some(Integer::from(label)))
            .map(|(_, v)| v)
    }

    fn text(&self, label: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.as_text() == Some(label))
            .map(|(_, v)| v)
    }
}

fn read(bytes: &[u8]) -> Result<Value, String> {
    let mut cursor = std::io::Cursor::new(bytes);
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut cursor, MAX_DEPTH)
        .map_err(|e| format!("not CBOR: {e}"))?;
    if cursor.position() != bytes.len() as u64 {
        return Err("bytes after the CBOR item".into());
    }
    Ok(value)
}

/// Reads a COSE envelope and checks its protected header.
pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    if bytes.len() as u64 > MAX_ENVELOPE_BYTES {
        return Err(format!("larger than {MAX_ENVELOPE_BYTES} bytes"));
    }
    let Value::Tag(SIGN1_TAG, inner) = read(bytes)? else {
        return Err("not a COSE_Sign1_Tagged (CBOR tag 18)".into());
    };
    let Value::Array(parts) = *inner else {
        return Err("COSE_Sign1 is not an array".into());
    };
    let [protected_raw, unprotected, payload, signature] =
        <[Value; 4]>::try_from(parts).map_err(|_| "COSE_Sign1 has not 4 elements")?;
    let Value::Bytes(protected_raw) = protected_raw else {
        return Err("the protected header is not a byte string".into());
    };
    let Value::Map(protected) = read(&protected_raw)? else {
        return Err("the protected header is not a map".into());
    };
    let protected = Headers(protected);
    let Value::Map(unprotected) = unprotected else {
        return Err("the unprotected header is not a map".into());
    };
    let unprotected = Headers(unprotected);
    let Value::Bytes(payload) = payload else {
        return Err(
            "the payload is not a byte string (detached payloads are not notation's)".into(),
        );
    };
    let Value::Bytes(signature) = signature else {
        return Err("the signature is not a byte string".into());
    };

    let alg = protected
        .int(ALG)
        .and_then(Value::as_integer)
        .and_then(|i| i64::try_from(i).ok())
        .ok_or("the protected header has no alg")?;
    let algorithm = match alg {
        -37 => Algorithm::Ps256,
        -38 => Algorithm::Ps384,
        -39 => Algorithm::Ps512,
        -7 => Algorithm::Es256,
        -35 => Algorithm::Es384,
        -36 => Algorithm::Es512,
        other => {
            return Err(format!(
                "alg {other} is not allowed (PS256, PS384, PS512, ES256, ES384, ES512)"
            ));
        }
    };
    if protected.int(CONTENT_TYPE).and_then(Value::as_text) != Some(PAYLOAD_CONTENT_TYPE) {
        return Err(format!("content type must be {PAYLOAD_CONTENT_TYPE}"));
    }
    check_critical(&protected)?;
    match protected.text(SIGNING_SCHEME).and_then(Value::as_text) {
        Some("notary.x509") => {}
        Some("notary.x509.signingAuthority") => {
            return Err("signing scheme notary.x509.signingAuthority needs a timestamp authority's signing time, which berth does not verify".into());
        }
        other => return Err(format!("unknown signing scheme {other:?}")),
    }
    if let Some(plugin) = protected.text(VERIFICATION_PLUGIN) {
        return Err(format!(
            "the signature requires verification plugin {plugin:?}, which berth does not run"
        ));
    }
    if protected.text(AUTHENTIC_SIGNING_TIME).is_some() {
        return Err(format!(
            "{AUTHENTIC_SIGNING_TIME} belongs to the signingAuthority scheme"
        ));
    }
    let signing_time = protected
        .text(SIGNING_TIME)
        .and_then(epoch)
        .ok_or_else(|| format!("{SIGNING_TIME} is missing or not a tag-1 epoch time"))?;
    let expiry = match protected.text(EXPIRY) {
        None => None,
        Some(v) => Some(epoch(v).ok_or_else(|| format!("{EXPIRY} is not a tag-1 epoch time"))?),
    };

    let chain: Vec<&[u8]> = match unprotected.int(X5CHAIN) {
        Some(Value::Bytes(one)) => vec![one],
        Some(Value::Array(many)) => many
            .iter()
            .map(|c| c.as_bytes().map(Vec::as_slice))
            .collect::<Option<_>>()
            .ok_or("x5chain holds a value that is not a byte string")?,
        _ => return Err("the unprotected header has no x5chain certificate chain".into()),
    };
    if chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(format!(
            "x5chain holds {} certificates; 1 to {MAX_CHAIN} are allowed",
            chain.len()
        ));
    }
    let certs = chain
        .into_iter()
        .map(|der| Cert::from_der(der).map_err(|e| format!("x5chain: {e}")))
        .collect::<Result<Vec<_>, String>>()?;

    // Sig_structure (RFC 9052 §4.4), with no external data.
    let sig_structure = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected_raw),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.clone()),
    ]);
    let mut signed = Vec::new();
    ciborium::ser::into_writer(&sig_structure, &mut signed)
        .map_err(|e| format!("Sig_structure: {e}"))?;
    Ok(Envelope {
        algorithm,
        signed,
        signature,
        certs,
        signing_time,
        expiry,
        payload,
    })
}

/// `crit` lists every critical label present, and only labels berth understands (RFC 9052
/// §3.1: a recipient that does not understand a critical label must refuse).
fn check_critical(protected: &Headers) -> Result<(), String> {
    let crit = protected
        .int(CRIT)
        .and_then(Value::as_array)
        .ok_or("the protected header has no crit list")?;
    let mut names = Vec::with_capacity(crit.len());
    for label in crit {
        let Some(name) = label.as_text() else {
            return Err(format!("unknown critical header {label:?}"));
        };
        if !CRITICAL.contains(&name) {
            return Err(format!("unknown critical header {name:?}"));
        }
        if protected.text(name).is_none() {
            return Err(format!("crit lists {name:?}, which is not in the header"));
        }
        names.push(name);
    }
    for name in CRITICAL {
        if protected.text(name).is_some() && !names.contains(name) {
            return Err(format!("{name} must be listed in crit"));
        }
    }
    Ok(())
}

/// Unix seconds of a CBOR epoch date-time (tag 1 over an unsigned integer).
fn epoch(value: &Value) -> Option<u64> {
    match value {
        Value::Tag(1, inner) => inner.as_integer().and_then(|i| u64::try_from(i).ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).expect("cbor");
        out
    }

    fn envelope(protected: Vec<(Value, Value)>, chain: Value) -> Vec<u8> {
        encode(&Value::Tag(
            SIGN1_TAG,
            Box::new(Value::Array(vec![
                Value::Bytes(encode(&Value::Map(protected))),
                Value::Map(vec![(Value::Integer(X5CHAIN.into()), chain)]),
                Value::Bytes(b"{}".to_vec()),
                Value::Bytes(vec![0; 64]),
            ])),
        ))
    }

    fn header(alg: i64, extra: &[(&str, Value)], crit: &[&str]) -> Vec<(Value, Value)> {
        let mut h = vec![
            (Value::Integer(ALG.into()), Value::Integer(alg.into())),
            (
                Value::Integer(CRIT.into()),
                Value::Array(crit.iter().map(|c| Value::Text((*c).into())).collect()),
            ),
            (
                Value::Integer(CONTENT_TYPE.into()),
                Value::Text(PAYLOAD_CONTENT_TYPE.into()),
            ),
            (
                Value::Text(SIGNING_SCHEME.into()),
                Value::Text("notary.x509".into()),
            ),
            (
                Value::Text(SIGNING_TIME.into()),
                Value::Tag(1, Box::new(Value::Integer(1_700_000_000.into()))),
            ),
        ];
        for (k, v) in extra {
            h.retain(|(key, _)| key.as_text() != Some(k));
            h.push((Value::Text((*k).into()), v.clone()));
        }
        h
    }

    #[test]
    fn malformed_and_forbidden_envelopes_are_refused_with_a_reason() {
        let none: Value = Value::Array(Vec::new());
        for (bytes, expect) in [
            (
                envelope(header(-7, &[], &[SIGNING_SCHEME]), none.clone()),
                "x5chain holds 0",
            ),
            // HMAC (5 = HS256) and RSASSA-PKCS1 (-257) are not notation's.
            (
                envelope(header(5, &[], &[SIGNING_SCHEME]), none.clone()),
                "alg 5",
            ),
            (
                envelope(header(-257, &[], &[SIGNING_SCHEME]), none.clone()),
                "alg -257",
            ),
            (
                envelope(header(-7, &[], &[]), none.clone()),
                "must be listed in crit",
            ),
            (
                envelope(
                    header(
                        -7,
                        &[("x.unknown", Value::Bool(true))],
                        &[SIGNING_SCHEME, "x.unknown"],
                    ),
                    none.clone(),
                ),
                "unknown critical header",
            ),
            (
                envelope(
                    header(
                        -7,
                        &[(
                            SIGNING_SCHEME,
                            Value::Text("notary.x509.signingAuthority".into()),
                        )],
                        &[SIGNING_SCHEME],
                    ),
                    none.clone(),
                ),
                "timestamp authority",
            ),
            (
                envelope(
                    header(
                        -7,
                        &[(SIGNING_TIME, Value::Text("2024-01-01T00:00:00Z".into()))],
                        &[SIGNING_SCHEME],
                    ),
                    none.clone(),
                ),
                "epoch",
            ),
            (
                envelope(
                    header(-7, &[], &[SIGNING_SCHEME]),
                    Value::Bytes(vec![0x30; 10]),
                ),
                "x5chain: malformed",
            ),
            (b"garbage".to_vec(), "not CBOR"),
            (Vec::new(), "not CBOR"),
            (encode(&Value::Array(Vec::new())), "tag 18"),
            (
                encode(&Value::Tag(SIGN1_TAG, Box::new(Value::Array(Vec::new())))),
                "4 elements",
            ),
            // An array claiming four billion elements, with none there.
            (vec![0xd2, 0x9a, 0xff, 0xff, 0xff, 0xff], "not CBOR"),
            // A byte string claiming 4 GiB.
            (vec![0xd2, 0x84, 0x5a, 0xff, 0xff, 0xff, 0xff], "not CBOR"),
            // Deep nesting stops at the recursion limit.
            (vec![0x81; 10_000], "not CBOR"),
        ] {
            let err = parse(&bytes).expect_err("refused");
            assert!(err.contains(expect), "{err} (expected {expect})");
        }
        let mut trailing = envelope(header(-7, &[], &[SIGNING_SCHEME]), none);
        trailing.push(0);
        assert!(parse(&trailing).unwrap_err().contains("after"));
    }
}
