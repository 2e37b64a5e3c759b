//! A client for an upstream registry, the source of a pull-through cache: manifests and blobs
//! over the distribution API, authenticated with HTTP Basic or the Docker token flow.
//!
//! Depends on `domain` only; `service::proxy` decides when to ask. Requests go to the
//! configured base URL, to the token realm its challenges name and to the redirects its blob
//! responses name (registries hand blobs out from CDNs). Repository names and references
//! reach the URL only as parsed `domain` values, whose grammar has no `/..`, `?` or `%`, so
//! no client request can point berth anywhere else.

mod auth;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use http::header;
use reqwest_tls::{Client, Method, Response, Url};

use crate::domain::{Digest, Reference, RepoName};

pub use auth::{Challenge, Credentials, parse_challenge};

/// Redirects followed at most (a blob redirected to a CDN takes one).
const MAX_REDIRECTS: usize = 5;

/// Why the upstream could not provide what was asked.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream has no such repository, manifest or blob (`404`).
    #[error("the upstream registry has no such content")]
    NotFound,
    /// No answer: connection refused or reset, a timeout, a broken body.
    #[error("the upstream registry could not be reached")]
    Unreachable(#[source] reqwest_tls::Error),
    /// The upstream (or its token endpoint) refused the credentials, or has none to offer
    /// to anonymous clients (`401`, `403`).
    #[error("the upstream registry refused access ({0})")]
    Refused(u16),
    /// Any other unexpected status, such as `429` or a `5xx`.
    #[error("the upstream registry answered {0}")]
    Status(u16),
    /// A `WWW-Authenticate` challenge or token response this client cannot use.
    #[error("the upstream registry's authentication cannot be followed: {0}")]
    Challenge(String),
    /// A blob response without `Content-Length`.
    #[error("the upstream registry sent a blob without Content-Length")]
    NoLength,
    /// A manifest larger than the configured limit.
    #[error("the upstream manifest exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The content does not have the digest the upstream or the client named.
    #[error("the upstream sent content whose digest is {actual}, not {expected}")]
    DigestMismatch {
        /// The digest named.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },
}

/// A manifest as the upstream served it.
#[derive(Debug, Clone)]
pub struct UpstreamManifest {
    /// Its `Content-Type`.
    pub media_type: Option<String>,
    /// Its bytes.
    pub content: Bytes,
}

/// A blob's bytes arriving from the upstream.
pub struct UpstreamBlob {
    /// Its size (`Content-Length`).
    pub size: u64,
    /// The bytes, ending with an error if the transfer breaks or stalls.
    pub stream: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// Checks a configured upstream URL: absolute `http` or `https`, with a host, no credentials,
/// query or fragment. The `/v2/` API path is added to it.
pub fn base_url(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?} is not an http or https URL"));
    }
    if !parsed.has_host() {
        return Err(format!("{url:?} has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials go in username and password, not in the URL".into());
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url:?} has a query or fragment"));
    }
    Ok(parsed)
}

/// One upstream registry.
pub struct Upstream {
    /// The base URL without a trailing slash.
    base: String,
    http: Client,
    timeout: Duration,
    auth: auth::Authenticator,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for the registry at `url` (checked by [`base_url`]); `timeout` bounds
    /// connecting, each manifest or token request, and each wait for more bytes of a blob.
    pub fn new(
        url: &str,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Result<Self, UpstreamSetupError> {
        let base = base_url(url).map_err(UpstreamSetupError::Url)?;
        // reqwest's TLS is rustls without a bundled provider: use ring's, like the cloud
        // storage clients (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .read_timeout(timeout)
            // reqwest drops Authorization when a redirect leaves the host.
            .redirect(reqwest_tls::redirect::Policy::limited(MAX_REDIRECTS))
            .build()
            .map_err(UpstreamSetupError::Client)?;
        Ok(Self {
            base: base.as_str().trim_end_matches('/').to_owned(),
            http,
            timeout,
            auth: auth::Authenticator::new(credentials),
        })
    }

    /// The base URL, for logs.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET` a manifest of repository `name` by tag or digest, at most `limit` bytes. The
    /// content is not verified here: the caller knows which digest it must have.
    pub async fn manifest(
        &self,
        name: &RepoName,
        reference: &Reference,
        limit: u64,
    ) -> Result<UpstreamManifest, UpstreamError> {
        let path = format!("{name}/manifests/{reference}");
        let mut response = self.send(Method::GET, name, &path).await?;
        if header_len(&response).is_some_and(|n| n > limit) {
            return Err(UpstreamError::TooLarge { limit });
        }
        let media_type = header_str(&response, header::CONTENT_TYPE);
        let mut content = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(UpstreamError::Unreachable)? {
            if (content.len() + chunk.len()) as u64 > limit {
                return Err(UpstreamError::TooLarge { limit });
            }
            content.extend_from_slice(&chunk);
        }
        let content = content.freeze();
        if let Some(expected) = header_digest(&response) {
            let actual = Digest::compute(expected.algorithm(), &content);
            if actual != expected {
                return Err(UpstreamError::DigestMismatch { expected, actual });
            }
        }
        Ok(UpstreamManifest {
            media_type,
            content,
        })
    }

    /// `HEAD` a manifest: its digest as `Docker-Content-Digest` says, or `None` when the
    /// upstream does not say (the caller then fetches the manifest).
    pub async fn manifest_digest(
        &self,
        name: &RepoName,
        reference: &Reference,
    ) -> Result<Option<Digest>, UpstreamError> {
        let path = format!("{name}/manifests/{reference}");
        let response = self.send(Method::HEAD, name, &path).await?;
        Ok(header_digest(&response))
    }

    /// `HEAD` a blob: its size.
    pub async fn blob_size(&self, name: &RepoName, digest: &Digest) -> Result<u64, UpstreamError> {
        let response = self
            .send(Method::HEAD, name, &format!("{name}/blobs/{digest}"))
            .await?;
        header_len(&response).ok_or(UpstreamError::NoLength)
    }

    /// `GET` a blob as a stream. Its bytes are not verified here.
    pub async fn blob(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> Result<UpstreamBlob, UpstreamError> {
        let response = self
            .send_streaming(Method::GET, name, &format!("{name}/blobs/{digest}"))
            .await?;
        let size = header_len(&response).ok_or(UpstreamError::NoLength)?;
        let stream = futures_util::stream::unfold(Some(response), |response| async move {
            let mut response = response?;
            match response.chunk().await {
                Ok(Some(bytes)) => Some((Ok(bytes), Some(response))),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e)), None)),
            }
        });
        Ok(UpstreamBlob {
            size,
            stream: Box::pin(stream),
        })
    }

    /// Sends a request with the overall timeout (manifests, `HEAD`s).
    async fn send(
        &self,
        method: Method,
        name: &RepoName,
        path: &str,
    ) -> Result<Response, UpstreamError> {
        self.exchange(method, name, path, Some(self.timeout)).await
    }

    /// Sends a request whose body may take long (blobs): only connecting and each read are
    /// bounded by the timeout.
    async fn send_streaming(
        &self,
        method: Method,
        name: &RepoName,
        path: &str,
    ) -> Result<Response, UpstreamError> {
        self.exchange(method, name, path, None).await
    }

    /// Sends `method /v2/<path>` with what the upstream wants for pulling `name`, answering
    /// one authentication challenge; maps statuses to errors.
    async fn exchange(
        &self,
        method: Method,
        name: &RepoName,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<Response, UpstreamError> {
        let url = format!("{}/v2/{path}", self.base);
        let scope = format!("repository:{name}:pull");
        let request = |authorization: Option<String>| {
            let mut r = self
                .http
                .request(method.clone(), &url)
                .header(header::ACCEPT, MANIFEST_TYPES);
            if let Some(t) = timeout {
                r = r.timeout(t);
            }
            if let Some(a) = authorization {
                r = r.header(header::AUTHORIZATION, a);
            }
            r
        };
        let first = self
            .auth
            .authorization(&self.http, &scope, self.timeout)
            .await?;
        let mut response = request(first)
            .send()
            .await
            .map_err(UpstreamError::Unreachable)?;
        if response.status().as_u16() == 401 {
            let challenge = header_str(&response, header::WWW_AUTHENTICATE);
            let answer = self
                .auth
                .answer(&self.http, challenge.as_deref(), &scope, self.timeout)
                .await?;
            response = request(Some(answer))
                .send()
                .await
                .map_err(UpstreamError::Unreachable)?;
        }
        match response.status().as_u16() {
            200..=299 => Ok(response),
            404 => Err(UpstreamError::NotFound),
            s @ (401 | 403) => Err(UpstreamError::Refused(s)),
            s => Err(UpstreamError::Status(s)),
        }
    }
}

/// The manifest types berth stores, for `Accept`: without it registries may convert or
/// refuse multi-platform images.
/// (One literal; a test checks that it lists every type.)
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

fn header_str(response: &Response, name: header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Content-Length` as sent (reqwest's `content_length()` is the body's, which a `HEAD`
/// response does not have).
fn header_len(response: &Response) -> Option<u64> {
    header_str(response, header::CONTENT_LENGTH).and_then(|n| n.trim().parse().ok())
}

fn header_digest(response: &Response) -> Option<Digest> {
    header_str(
        response,
        header::HeaderName::from_static("docker-content-digest"),
    )
    .and_then(|d| Digest::parse(d.trim()).ok())
}

/// Why an upstream client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamSetupError {
    /// The URL is unusable.
    #[error("invalid upstream URL: {0}")]
    Url(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest_tls::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST};

    #[test]
    fn accepts_every_manifest_type_berth_stores() {
        for t in [
            OCI_INDEX,
            OCI_MANIFEST,
            DOCKER_MANIFEST_LIST,
            DOCKER_MANIFEST_V2,
        ] {
            assert!(MANIFEST_TYPES.contains(t), "{t}");
        }
    }

    #[test]
    fn base_urls_are_plain_http_locations() {
        assert_eq!(
            base_url("https://registry-1.docker.io").unwrap().as_str(),
            "https://registry-1.docker.io/"
        );
        base_url("http://127.0.0.1:5000/prefix/").unwrap();
        for bad in [
            "registry-1.docker.io",
            "ftp://host",
            "https://user:pw@host",
            "https://host/?x=1",
            "https://host/#f",
            "unix:/run/registry.sock",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_base_url_loses_its_trailing_slash() {
        let u = Upstream::new("http://127.0.0.1:1/mirror/", None, Duration::from_secs(1)).unwrap();
        assert_eq!(u.url(), "http://127.0.0.1:1/mirror");
    }
}
