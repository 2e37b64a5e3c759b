//! `berth sign`: signs an image in any registry as cosign does, with the credentials and the
//! client `berth pull` and `berth push` use.
//!
//! The image is resolved to its manifest digest first (a tag is only a way to find it; the
//! digest is what is signed). The signature goes to the registry twice, so that clients of
//! either scheme find it: as an OCI 1.1 referrer of the manifest (cosign's
//! `--registry-referrers-mode=oci-1-1`), and appended to the manifest tagged
//! `sha256-<hex>.sig` (cosign's default), keeping the signatures other signers put there.
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
    /// registry shows only its digest.
    #[error(
        "the registry refuses to show the manifest of {0} (a trust policy?), and a bundle referrer must describe it; sign without --new-bundle-format (cosign's .sig tag needs only the digest)"
    )]
    Undescribed(String),
}

/// What `berth sign` did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The manifest digest signed.
    pub digest: String,
    /// The signing key's id (`sha256:` of its public key).
    pub key: String,
    /// The referrer manifest's digest, when the signed manifest could be described (an
    /// enforcing hub serves an unsigned manifest to nobody, so only its digest is known, from
    /// a `HEAD`: then the signature goes under the `.sig` tag alone).
    pub referrer: Option<String>,
    /// The `.sig` tag.
    pub tag: String,
    /// Whether the `.sig` manifest already held this very signature.
    pub already_signed: bool,
}

/// The manifest `reference` names, described by its own bytes (`None`: the registry refuses
/// to show it, but the reference names its digest), and the digest.
pub async fn resolve(
    client: &Client,
    reference: &Reference,
    auth: &RegistryAuth,
) -> Result<(Option<Subject>, String), SignError> {
    let subject = match client.pull_manifest_raw(reference, auth, ACCEPT).await {
        Ok((bytes, _)) => describe(&bytes, reference.digest())?,
        Err(e) if is_denied(&e) => {
            // An enforcing hub refuses the GET of an unsigned manifest but answers HEAD, which
            // names the digest (cosign resolves tags the same way).
            let digest = match reference.digest() {
                Some(d) => d.to_owned(),
                None => match client.fetch_manifest_digest(reference, auth).await {
                    Ok(d) => d,
                    Err(e) if is_denied(&e) => {
                        return Err(SignError::Unresolvable(reference.whole()));
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            return Ok((None, digest));
        }
        Err(e) => return Err(e.into()),
    };
    let digest = subject.digest.clone();
    Ok((Some(subject), digest))
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
}
