//! `berth sign`: signs an image in any registry as cosign does, with the credentials and the
//! client `berth pull` and `berth push` use.
//!
//! The image is resolved to its manifest digest first (a tag is only a way to find it; the
//! digest is what is signed). An enforcing hub refuses the `GET` of an unsigned manifest but
//! answers `HEAD` with its digest, media type and size (`Docker-Content-Digest`,
//! `Content-Type`, `Content-Length`), as Harbor does: that is enough to describe it as the
//! subject of a referrer, which is how cosign signs there.
//!
//! The signature goes to the registry twice, so that clients of either scheme find it: as an
//! OCI 1.1 referrer of the manifest (cosign's `--registry-referrers-mode=oci-1-1`), and
//! appended to the manifest tagged `sha256-<hex>.sig` (cosign's default), keeping the
//! signatures other signers put there.
//!
//! Appending to the `.sig` manifest is read-modify-write, as with cosign: two signers of the
//! same image at the same instant can lose one signature in the tag (the referrers keep both).
//!
//! [`sign_bundle`] writes the newer form instead (`cosign sign --new-bundle-format --key`): a
//! sigstore bundle whose DSSE envelope signs an in-toto statement naming the digest, as an
//! OCI 1.1 referrer of the manifest only (cosign writes no `.sig` tag then).

use berth_trust::SigningKey;
use berth_trust::attach::{
    self, AttachError, OCI_MANIFEST, SignatureLayer, SignatureManifest, Subject,
};
use berth_trust::bundle_sign;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest as _, Sha256};

/// Media types the signed manifest is fetched as.
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The largest manifest read (the registry's own limit is 4 MiB).
const MAX_MANIFEST: usize = 4 << 20;

/// Why signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] OciDistributionError),
    /// The manifest fetched is not the one the reference's digest names.
    #[error("the registry returned manifest {actual} for {expected}")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The registry will neither show the manifest of a tag nor name its digest, so the tag
    /// cannot be resolved here.
    #[error(
        "the registry refuses to show {0} (a trust policy?); name the image by digest: IMAGE@sha256:..."
    )]
    Unresolvable(String),
    /// The manifest is not JSON or too large.
    #[error("the manifest is not a manifest: {0}")]
    Manifest(String),
    /// The `.sig` manifest cannot take the signature.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// A bundle referrer's subject describes the manifest (media type and size), and the
    /// registry shows only its digest (neither the manifest nor a `HEAD` describing it).
    #[error(
        "the registry names only the digest of {0} (no manifest, and no media type and size on HEAD), and a bundle referrer must describe it; sign without --new-bundle-format (cosign's .sig tag needs only the digest)"
    )]
    Undescribed(String),
    /// The registry answered the `HEAD` of the manifest with neither success nor a refusal.
    #[error("the registry answered HEAD {reference} with {status}")]
    Head {
        /// The image.
        reference: String,
        /// The HTTP status.
        status: u16,
    },
}

/// What `berth sign` did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The manifest digest signed.
    pub digest: String,
    /// The signing key's id (`sha256:` of its public key).
    pub key: String,
    /// The referrer manifest's digest, when the signed manifest could be described (by its
    /// bytes, or by the headers of a `HEAD`; a registry that names only the digest gets the
    /// signature under the `.sig` tag alone).
    pub referrer: Option<String>,
    /// The `.sig` tag.
    pub tag: String,
    /// Whether the `.sig` manifest already held this very signature.
    pub already_signed: bool,
}

/// The manifest `reference` names, described by its own bytes or, where the registry refuses
/// to show it, by the headers of a `HEAD` (`None`: the registry names its digest only), and
/// the digest.
pub async fn resolve(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<(Option<Subject>, String), SignError> {
    let subject = match client.pull_manifest_raw(reference, auth, ACCEPT).await {
        Ok((bytes, _)) => describe(&bytes, reference.digest())?,
        // An enforcing hub refuses the GET of an unsigned manifest but answers HEAD, which names
        // the digest and describes the manifest (cosign resolves and describes it the same way).
        Err(e) if is_denied(&e) => {
            let token = client
                .auth(reference, auth, RegistryOperation::Pull)
                .await?;
            return head(reference, auth, token.as_deref()).await;
        }
        Err(e) => return Err(e.into()),
    };
    let digest = subject.digest.clone();
    Ok((Some(subject), digest))
}

/// `HEAD` of the manifest `reference` names, with the same credentials: its digest
/// (`Docker-Content-Digest`, else the reference's own) and, when the registry gives a manifest
/// media type and a sane size, its description. `token` is the bearer token [`Client::auth`]
/// got for the registry, if it gave one.
async fn head(
    reference: &Reference,
    auth: &RegistryAuth,
    token: Option<&str>,
) -> Result<(Option<Subject>, String), SignError> {
    let registry = reference.resolve_registry();
    let scheme = if crate::credentials::plain_http(registry) {
        "http"
    } else {
        "https"
    };
    let url = format!(
        "{scheme}://{registry}/v2/{}/manifests/{}",
        reference.repository(),
        reference
            .digest()
            .or_else(|| reference.tag())
            .unwrap_or("latest")
    );
    let request = reqwest::Client::new()
        .head(&url)
        .header(reqwest::header::ACCEPT, ACCEPT.join(", "));
    let request = match (token, auth) {
        (Some(token), _) => request.bearer_auth(token),
        (None, RegistryAuth::Bearer(token)) => request.bearer_auth(token),
        (None, RegistryAuth::Basic(user, password)) => request.basic_auth(user, Some(password)),
        (None, RegistryAuth::Anonymous) => request,
    };
    let response = request.send().await.map_err(OciDistributionError::from)?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        // Refused even the HEAD: a digest named in the reference is still signable.
        return match reference.digest() {
            Some(digest) => Ok((None, digest.to_owned())),
            None => Err(SignError::Unresolvable(reference.whole())),
        };
    }
    if !status.is_success() {
        return Err(SignError::Head {
            reference: reference.whole(),
            status: status.as_u16(),
        });
    }
    described_by_headers(response.headers(), reference)
}

/// The digest and description of a manifest from the headers of a `HEAD` of `reference`.
fn described_by_headers(
    headers: &reqwest::header::HeaderMap,
    reference: &Reference,
) -> Result<(Option<Subject>, String), SignError> {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let digest = match (header("docker-content-digest"), reference.digest()) {
        (Some(named), Some(expected)) if named != expected => {
            return Err(SignError::DigestMismatch {
                expected: expected.to_owned(),
                actual: named.to_owned(),
            });
        }
        (Some(named), _) if is_sha256(named) => named.to_owned(),
        (None, Some(expected)) => expected.to_owned(),
        _ => return Err(SignError::Unresolvable(reference.whole())),
    };
    // `Content-Type` may carry parameters; only the manifest types asked for describe one.
    let media_type = header("content-type")
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .filter(|m| ACCEPT.contains(m));
    let size = header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| (1..=MAX_MANIFEST as u64).contains(n));
    let subject = media_type.zip(size).map(|(media_type, size)| Subject {
        media_type: media_type.to_owned(),
        digest: digest.clone(),
        size,
    });
    Ok((subject, digest))
}

/// `sha256:` and 64 lowercase hex digits: a digest worth signing.
fn is_sha256(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Signs `reference` with `key` and pushes the signature.
pub async fn sign(
    reference: &Reference,
    auth: &RegistryAuth,
    key: &SigningKey,
) -> Result<Signed, SignError> {
    let client = crate::pull::client_for(reference);
    client
        .auth(reference, auth, RegistryOperation::Push)
        .await?;
    let (subject, digest) = resolve(&client, reference, auth).await?;
    let registry = reference.registry().to_owned();
    let repository = reference.repository().to_owned();
    let payload = attach::simple_signing_payload(&format!("{registry}/{repository}"), &digest);
    let signature = key.sign(&payload.bytes);
    let layer = SignatureLayer { payload, signature };
    push_blob(
        &client,
        reference,
        &layer.payload.bytes,
        &layer.payload.digest,
    )
    .await?;

    let referrer = match &subject {
        Some(subject) => {
            let m = attach::referrer_manifest(subject, &layer);
            let target = Reference::with_digest(
                registry.clone(),
                repository.clone(),
                m.manifest.digest.clone(),
            );
            push_manifest(&client, reference, &target, &m).await?;
            Some(m.manifest.digest)
        }
        None => None,
    };

    let tag = berth_trust::cosign_signature_tag(&digest);
    let tag_ref = Reference::with_tag(registry, repository, tag.clone());
    let existing = match client
        .pull_manifest_raw(&tag_ref, auth, &[OCI_MANIFEST, ACCEPT[3]])
        .await
    {
        Ok((bytes, _)) => Some(bytes),
        Err(e) if is_not_found(&e) => None,
        Err(e) => return Err(e.into()),
    };
    let updated = attach::tag_manifest(existing.as_deref(), &layer)?;
    if let Some(m) = &updated {
        push_manifest(&client, reference, &tag_ref, m).await?;
    }
    Ok(Signed {
        digest,
        key: key.public_key().id().to_string(),
        referrer,
        tag,
        already_signed: updated.is_none(),
    })
}

/// What `berth sign --new-bundle-format` did.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    /// The manifest digest signed.
    pub digest: String,
    /// The signing key's id (`sha256:` of its public key).
    pub key: String,
    /// The referrer manifest's digest.
    pub referrer: String,
}

/// Signs `reference` with `key` as a sigstore bundle and pushes it as a referrer. As with
/// cosign, the referrer records when it was made, so signing again adds another one.
pub async fn sign_bundle(
    reference: &Reference,
    auth: &RegistryAuth,
    key: &SigningKey,
) -> Result<SignedBundle, SignError> {
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let client = crate::pull::client_for(reference);
    client
        .auth(reference, auth, RegistryOperation::Push)
        .await?;
    let (subject, digest) = resolve(&client, reference, auth).await?;
    let Some(subject) = subject else {
        return Err(SignError::Undescribed(reference.whole()));
    };
    let bundle = bundle_sign::dsse_bundle(key, &digest);
    push_blob(&client, reference, &bundle.bytes, &bundle.digest).await?;
    let m = bundle_sign::bundle_referrer(&subject, &bundle, &created);
    let target = Reference::with_digest(
        reference.registry().to_owned(),
        reference.repository().to_owned(),
        m.manifest.digest.clone(),
    );
    push_manifest(&client, reference, &target, &m).await?;
    Ok(SignedBundle {
        digest,
        key: key.public_key().id().to_string(),
        referrer: m.manifest.digest,
    })
}

/// The descriptor of the manifest `bytes`, checked against the digest the reference named.
fn describe(bytes: &[u8], expected: Option<&str>) -> Result<Subject, SignError> {
    if bytes.len() > MAX_MANIFEST {
        return Err(SignError::Manifest(format!("{} bytes", bytes.len())));
    }
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
    if let Some(expected) = expected
        && expected != digest
    {
        return Err(SignError::DigestMismatch {
            expected: expected.to_owned(),
            actual: digest,
        });
    }
    let json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| SignError::Manifest(e.to_string()))?;
    let media_type = match json.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_owned(),
        None if json.get("manifests").is_some() => ACCEPT[0].to_owned(),
        None => OCI_MANIFEST.to_owned(),
    };
    Ok(Subject {
        media_type,
        digest,
        size: bytes.len() as u64,
    })
}

async fn push_blob(
    client: &Client,
    reference: &Reference,
    bytes: &[u8],
    digest: &str,
) -> Result<(), SignError> {
    if !client.blob_exists(reference, digest).await? {
        client.push_blob(reference, bytes.to_vec(), digest).await?;
    }
    Ok(())
}

async fn push_manifest(
    client: &Client,
    reference: &Reference,
    target: &Reference,
    m: &SignatureManifest,
) -> Result<(), SignError> {
    push_blob(client, reference, &m.config.bytes, &m.config.digest).await?;
    client
        .push_manifest_raw(target, m.manifest.bytes.clone(), http_header(OCI_MANIFEST))
        .await?;
    Ok(())
}

fn http_header(value: &'static str) -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_static(value)
}

fn codes(e: &OciDistributionError) -> Vec<&OciErrorCode> {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|e| &e.code).collect()
        }
        _ => Vec::new(),
    }
}

/// A 403 `DENIED`: an enforcing policy refuses to show an unsigned manifest.
fn is_denied(e: &OciDistributionError) -> bool {
    codes(e).contains(&&OciErrorCode::Denied)
        || matches!(e, OciDistributionError::ServerError { code: 403, .. })
}

fn is_not_found(e: &OciDistributionError) -> bool {
    codes(e)
        .iter()
        .any(|c| matches!(c, OciErrorCode::ManifestUnknown | OciErrorCode::NotFound))
        || matches!(
            e,
            OciDistributionError::ServerError { code: 404, .. }
                | OciDistributionError::ImageManifestNotFoundError(_)
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_described_by_their_bytes_and_checked_against_the_digest() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let s = describe(index, None).expect("subject");
        assert_eq!(s.media_type, ACCEPT[0]);
        assert_eq!(s.size, index.len() as u64);
        assert!(describe(index, Some(&s.digest)).is_ok());
        let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        assert!(matches!(
            describe(index, Some(wrong)),
            Err(SignError::DigestMismatch { .. })
        ));
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(
            describe(docker, None).expect("subject").media_type,
            ACCEPT[3]
        );
    }

    #[test]
    fn a_head_describes_the_manifest_when_it_names_a_manifest_type_and_a_sane_size() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let digest = format!("sha256:{}", "ab".repeat(32));
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_str(v).expect("value"));
            }
            h
        };
        let by_tag: Reference = "127.0.0.1:5000/team/app:v1".parse().expect("reference");
        let full = headers(&[
            ("docker-content-digest", &digest),
            ("content-type", &format!("{OCI_MANIFEST}; charset=utf-8")),
            ("content-length", "512"),
        ]);
        let (subject, d) = described_by_headers(&full, &by_tag).expect("described");
        assert_eq!(d, digest);
        let subject = subject.expect("subject");
        assert_eq!(
            (
                subject.media_type.as_str(),
                subject.digest.as_str(),
                subject.size
            ),
            (OCI_MANIFEST, digest.as_str(), 512)
        );

        // Named but not described: a digest alone.
        for partial in [
            headers(&[
                ("docker-content-digest", &digest),
                ("content-length", "512"),
            ]),
            headers(&[
                ("docker-content-digest", &digest),
                ("content-type", "text/html"),
                ("content-length", "512"),
            ]),
            headers(&[
                ("docker-content-digest", &digest),
                ("content-type", OCI_MANIFEST),
                ("content-length", "0"),
            ]),
            headers(&[
                ("docker-content-digest", &digest),
                ("content-type", OCI_MANIFEST),
                ("content-length", "999999999"),
            ]),
        ] {
            let (subject, d) = described_by_headers(&partial, &by_tag).expect("named");
            assert!(subject.is_none());
            assert_eq!(d, digest);
        }

        // Not named at all, or named badly: nothing to sign by tag.
        for unnamed in [
            headers(&[("content-type", OCI_MANIFEST), ("content-length", "512")]),
            headers(&[("docker-content-digest", "sha256:short")]),
        ] {
            assert!(matches!(
                described_by_headers(&unnamed, &by_tag),
                Err(SignError::Unresolvable(_))
            ));
        }

        // By digest: the header must agree with it.
        let by_digest: Reference = format!("127.0.0.1:5000/team/app@{digest}")
            .parse()
            .expect("reference");
        assert!(described_by_headers(&full, &by_digest).is_ok());
        let other = format!("sha256:{}", "cd".repeat(32));
        let lying = headers(&[("docker-content-digest", &other)]);
        assert!(matches!(
            described_by_headers(&lying, &by_digest),
            Err(SignError::DigestMismatch { .. })
        ));
    }
}
