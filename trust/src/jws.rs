//! notation's JWS envelope (notaryproject signature-envelope-jws.md): the JWS JSON
//! serialization, flattened (RFC 7515 §7.2.2), as notation writes it:
//!
//! ```text
//! {
//!   "payload":   BASE64URL(payload JSON),
//!   "protected": BASE64URL({"alg": "PS384", "cty": "application/vnd.cncf.notary.payload.v1+json",
//!                           "crit": ["io.cncf.notary.signingScheme", ...],
//!                           "io.cncf.notary.signingScheme": "notary.x509",
//!                           "io.cncf.notary.signingTime": "2022-08-24T17:18:15.491914+05:30",
//!                           "io.cncf.notary.expiry": ...}),
//!   "header":    {"x5c": [BASE64(DER leaf), BASE64(DER intermediate), ...],
//!                 "io.cncf.notary.signingAgent": "notation/1.0.0"},
//!   "signature": BASE64URL(signature over BASE64URL(protected) '.' BASE64URL(payload))
//! }
//! ```
//!
//! Parsing checks what the JWS format itself requires; [`crate::notation`] checks the rest.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::notation::{Algorithm, Envelope, MAX_ENVELOPE_BYTES, PAYLOAD_CONTENT_TYPE};
use crate::x509::{Cert, MAX_CHAIN};

use crate::notation::attributes::{
    AUTHENTIC_SIGNING_TIME, CRITICAL, EXPIRY, SIGNING_SCHEME, SIGNING_TIME, VERIFICATION_PLUGIN,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Serialized {
    payload: String,
    protected: String,
    #[serde(default)]
    header: Map<String, Value>,
    signature: String,
}

/// Reads a JWS envelope and checks its protected header.
pub fn parse(bytes: &[u8]) -> Result<Envelope, String> {
    if bytes.len() as u64 > MAX_ENVELOPE_BYTES {
        return Err(format!("larger than {MAX_ENVELOPE_BYTES} bytes"));
    }
    let jws: Serialized =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWS JSON serialization: {e}"))?;
    let protected_json = URL_SAFE_NO_PAD
        .decode(&jws.protected)
        .map_err(|e| format!("protected header: {e}"))?;
    let protected: Map<String, Value> = serde_json::from_slice(&protected_json)
        .map_err(|e| format!("protected header is not a JSON object: {e}"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(&jws.payload)
        .map_err(|e| format!("payload: {e}"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(&jws.signature)
        .map_err(|e| format!("signature: {e}"))?;

    let text = |name: &str| protected.get(name).and_then(Value::as_str);
    let alg = text("alg").ok_or("the protected header has no alg")?;
    let algorithm = Algorithm::from_jws(alg).ok_or_else(|| {
        format!("alg {alg:?} is not allowed (PS256, PS384, PS512, ES256, ES384, ES512)")
    })?;
    if text("cty") != Some(PAYLOAD_CONTENT_TYPE) {
        return Err(format!("cty must be {PAYLOAD_CONTENT_TYPE}"));
    }
    check_critical(&protected)?;
    match text(SIGNING_SCHEME) {
        Some("notary.x509") => {}
        Some("notary.x509.signingAuthority") => {
            return Err("signing scheme notary.x509.signingAuthority needs a timestamp authority's signing time, which berth does not verify".into());
        }
        other => return Err(format!("unknown signing scheme {other:?}")),
    }
    if protected.contains_key(VERIFICATION_PLUGIN) {
        return Err(format!(
            "the signature requires verification plugin {:?}, which berth does not run",
            protected[VERIFICATION_PLUGIN]
        ));
    }
    if protected.contains_key(AUTHENTIC_SIGNING_TIME) {
        return Err(format!(
            "{AUTHENTIC_SIGNING_TIME} belongs to the signingAuthority scheme"
        ));
    }
    let signing_time = text(SIGNING_TIME)
        .and_then(rfc3339)
        .ok_or_else(|| format!("{SIGNING_TIME} is missing or not an RFC 3339 time"))?;
    let expiry = match protected.get(EXPIRY) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(rfc3339)
                .ok_or_else(|| format!("{EXPIRY} is not an RFC 3339 time"))?,
        ),
    };

    let x5c = jws
        .header
        .get("x5c")
        .and_then(Value::as_array)
        .ok_or("the unprotected header has no x5c certificate chain")?;
    if x5c.is_empty() || x5c.len() > MAX_CHAIN {
        return Err(format!(
            "x5c holds {} certificates; 1 to {MAX_CHAIN} are allowed",
            x5c.len()
        ));
    }
    let certs = x5c
        .iter()
        .map(|c| {
            let der = c
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or("x5c holds a value that is not base64")?;
            Cert::from_der(&der).map_err(|e| format!("x5c: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;

    let mut signed = Vec::with_capacity(jws.protected.len() + 1 + jws.payload.len());
    signed.extend_from_slice(jws.protected.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(jws.payload.as_bytes());
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

/// `crit` lists every critical attribute present, and only attributes berth understands
/// (RFC 7515 §4.1.11: a recipient that does not understand a critical header must refuse).
fn check_critical(protected: &Map<String, Value>) -> Result<(), String> {
    let crit = protected
        .get("crit")
        .and_then(Value::as_array)
        .ok_or("the protected header has no crit list")?;
    let mut names = Vec::with_capacity(crit.len());
    for name in crit {
        let name = name
            .as_str()
            .ok_or("crit holds a value that is not a name")?;
        if !CRITICAL.contains(&name) {
            return Err(format!("unknown critical header {name:?}"));
        }
        if !protected.contains_key(name) {
            return Err(format!("crit lists {name:?}, which is not in the header"));
        }
        names.push(name);
    }
    for name in CRITICAL {
        if protected.contains_key(*name) && !names.contains(name) {
            return Err(format!("{name} must be listed in crit"));
        }
    }
    Ok(())
}

/// Unix seconds of an RFC 3339 date-time (`2022-08-24T17:18:15.491914+05:30`, `...Z`);
/// fractions of a second are dropped.
pub(crate) fn rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let o = rest.as_bytes();
            if o.len() != 6 || o[3] != b':' {
                return None;
            }
            let sign = match o[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_as_notation_writes_them() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339("2022-08-24T17:18:15.491914+05:30"),
            Some(1_661_341_695)
        );
        assert_eq!(rfc3339("2022-08-24T11:48:15Z"), Some(1_661_341_695));
        assert_eq!(rfc3339("2024-02-29T00:00:00-01:00"), Some(1_709_168_400));
        for bad in [
            "",
            "2022-08-24",
            "2022-13-01T00:00:00Z",
            "2022-08-24T17:18:15",
            "2022-08-24T17:18:15.Z",
            "2022-08-24T17:18:15+0530",
            "1969-12-31T23:59:59Z",
            "+022-08-24T17:18:15Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_envelopes_are_refused_with_a_reason() {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let header = |extra: Value| {
            let mut h = serde_json::json!({
                "alg": "ES256",
                "cty": PAYLOAD_CONTENT_TYPE,
                "crit": [SIGNING_SCHEME],
                SIGNING_SCHEME: "notary.x509",
                SIGNING_TIME: "2026-01-01T00:00:00Z",
            });
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    h.as_object_mut().unwrap().remove(k);
                } else {
                    h[k] = v.clone();
                }
            }
            h
        };
        let envelope = |h: Value| {
            serde_json::json!({
                "payload": b64(&serde_json::json!({})),
                "protected": b64(&h),
                "header": {"x5c": []},
                "signature": "AA"
            })
            .to_string()
        };
        for (h, expect) in [
            (header(serde_json::json!({"alg": "none"})), "alg \"none\""),
            (header(serde_json::json!({"alg": "HS256"})), "alg \"HS256\""),
            (header(serde_json::json!({"alg": "RS256"})), "not allowed"),
            (header(serde_json::json!({"alg": null})), "no alg"),
            (
                header(serde_json::json!({"cty": "application/json"})),
                "cty",
            ),
            (header(serde_json::json!({"crit": null})), "no crit"),
            (
                header(serde_json::json!({"crit": [SIGNING_SCHEME, "x.unknown"], "x.unknown": 1})),
                "unknown critical header \"x.unknown\"",
            ),
            (
                header(serde_json::json!({EXPIRY: "2030-01-01T00:00:00Z"})),
                "must be listed in crit",
            ),
            (
                header(serde_json::json!({"crit": []})),
                "must be listed in crit",
            ),
            (
                header(serde_json::json!({SIGNING_SCHEME: "notary.x509.signingAuthority"})),
                "timestamp authority",
            ),
            (
                header(serde_json::json!({SIGNING_SCHEME: "notary.pgp"})),
                "unknown signing scheme",
            ),
            (
                header(
                    serde_json::json!({VERIFICATION_PLUGIN: "p", "crit": [SIGNING_SCHEME, VERIFICATION_PLUGIN]}),
                ),
                "plugin",
            ),
            (
                header(serde_json::json!({SIGNING_TIME: "yesterday"})),
                SIGNING_TIME,
            ),
            (header(serde_json::json!({})), "x5c holds 0"),
        ] {
            let err = parse(envelope(h).as_bytes()).expect_err("refused");
            assert!(err.contains(expect), "{err} (expected {expect})");
        }
        for garbage in [
            &b""[..],
            b"not json",
            b"{}",
            b"{\"payload\":\"\",\"protected\":\"%%\",\"signature\":\"\"}",
        ] {
            assert!(parse(garbage).is_err());
        }
        // Deep nesting stops at serde_json's recursion limit, not the stack.
        let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        assert!(parse(deep.as_bytes()).is_err());
        let deep_header = format!(
            r#"{{"payload":"","protected":"{}","signature":""}}"#,
            URL_SAFE_NO_PAD.encode("[".repeat(40_000))
        );
        assert!(parse(deep_header.as_bytes()).is_err());
        // A 1 MB certificate is refused by size before anything is decoded.
        let huge = serde_json::json!({
            "payload": "", "protected": "", "signature": "",
            "header": {"x5c": ["A".repeat(1 << 20)]}
        });
        let err = parse(huge.to_string().as_bytes()).expect_err("too large");
        assert!(err.contains("larger than"), "{err}");
    }
}
