//! Single sign-on through an OpenID Connect provider (`[auth.oidc]`): the web UI's
//! authorization code flow with PKCE, `state` and `nonce`, over the provider's discovery
//! document, and ID tokens checked against its JWKS.
//!
//! - Discovery is lazy: nothing is fetched at start, so a provider that is down never stops
//!   berth from starting. The document (with its keys) is cached for [`REFRESH`]; a failed
//!   fetch is retried at the next sign-in, at most once per [`RETRY`], and meanwhile the
//!   sign-in page says single sign-on is unavailable (local administrators still sign in).
//! - An ID token whose `kid` is not in the cached key set makes one fresh fetch (the provider
//!   rotated its keys), then is refused.
//! - Only asymmetric signatures are accepted (RSA, RSA-PSS, ECDSA): `alg: none` and HMAC
//!   tokens are refused even though the client secret could check the latter. Times (`exp`,
//!   `iat`) are checked with `clock_skew_secs` of tolerance; `iss`, `aud` and `nonce` must
//!   match exactly.
//! - The identity's subject is `<issuer>#<sub>`: `sub` is unique only within one issuer.
//!
//! The state, nonce and PKCE verifier of a sign-in in progress travel in a short-lived
//! HttpOnly cookie ([`Pending`]), not in process memory, so the callback may land on any
//! replica. The cookie is removed by the callback, which therefore runs once per browser.
//!
//! Depends on `config` and `service::identity` (what a sign-in yields); the UI handlers in
//! `ui::sso` drive it.

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AdditionalClaims, AsyncHttpClient, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, HttpRequest, HttpResponse, IdToken, IdTokenClaims, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse as _,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::auth::InvalidName;
use crate::config::{OIDC_CLIENT_SECRET_ENV, OidcConfig};
use crate::service::identity::{ExternalIdentity, Provider};

/// How long a fetched discovery document (and key set) is used.
pub const REFRESH: Duration = Duration::from_secs(60 * 60);
/// The least time between two fetches after a failure or an unknown key id.
pub const RETRY: Duration = Duration::from_secs(5);
/// Time limit of one request to the provider.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response read from the provider.
const MAX_RESPONSE: usize = 1 << 20;

type Metadata = ProviderMetadataWithLogout;

/// Claims beyond the standard ones: the configured user name and groups claims are read from
/// here.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Extra {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for Extra {}

/// What is done to the user name claim before berth's name rules check it
/// (`username_transform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsernameTransform {
    /// The claim as it is.
    #[default]
    None,
    /// ASCII letters lowercased.
    Lowercase,
    /// The part before the last `@` (e-mail style names); a name without `@` stays whole.
    Localpart,
    /// `Localpart`, then `Lowercase`.
    LocalpartLowercase,
}

impl UsernameTransform {
    /// The transformed name.
    pub fn apply(self, name: &str) -> String {
        let local = |n: &str| n.rsplit_once('@').map_or(n, |(l, _)| l).to_owned();
        match self {
            UsernameTransform::None => name.to_owned(),
            UsernameTransform::Lowercase => name.to_ascii_lowercase(),
            UsernameTransform::Localpart => local(name),
            UsernameTransform::LocalpartLowercase => local(name).to_ascii_lowercase(),
        }
    }
}

impl std::fmt::Display for UsernameTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UsernameTransform::None => "none",
            UsernameTransform::Lowercase => "lowercase",
            UsernameTransform::Localpart => "localpart",
            UsernameTransform::LocalpartLowercase => "localpart_lowercase",
        })
    }
}

type Token =
    IdToken<Extra, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Claims = IdTokenClaims<Extra, CoreGenderClaim>;

/// Why single sign-on failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or sent a bad discovery document.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the code or sent a bad token response.
    #[error("the identity provider did not complete the sign-in: {0}")]
    Exchange(String),
    /// The ID token failed a check (signature, issuer, audience, nonce, times).
    #[error("the identity provider's ID token was refused: {0}")]
    Token(String),
    /// The ID token lacks the user name claim.
    #[error("the ID token has no {0:?} claim to name the user")]
    NoName(String),
    /// The callback does not belong to a sign-in this browser started.
    #[error("this sign-in was not started here, was already used or has expired; start again")]
    State,
    /// The configuration is unusable.
    #[error("[auth.oidc] {0}")]
    Config(String),
}

/// One OIDC provider, shared by every request.
pub struct Oidc {
    config: OidcConfig,
    secret: Option<ClientSecret>,
    http: Http,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Through the configuration's own Debug, which redacts the client secret.
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Cache {
    metadata: Option<(Metadata, Instant)>,
    last_attempt: Option<Instant>,
}

/// A sign-in in progress, kept in the database between the redirect to the provider and
/// the callback (see [`crate::service::sign_ins`]).
pub use crate::meta::accounts::PendingLogin as Pending;

impl Oidc {
    /// Sets up the provider from `[auth.oidc]`: reads the client secret (file, environment
    /// or configuration) and builds the HTTP client. Fetches nothing.
    pub fn new(config: &OidcConfig) -> Result<Self, OidcError> {
        let secret = if !config.client_secret_file.is_empty() {
            let s = std::fs::read_to_string(&config.client_secret_file).map_err(|e| {
                OidcError::Config(format!(
                    "client_secret_file {}: {e}",
                    config.client_secret_file
                ))
            })?;
            Some(s.trim_end().to_owned())
        } else if let Ok(s) = std::env::var(OIDC_CLIENT_SECRET_ENV) {
            Some(s)
        } else {
            Some(config.client_secret.clone())
        }
        .filter(|s| !s.is_empty())
        .map(ClientSecret::new);
        // Installing the ring provider twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest_tls::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            // The specs forbid following redirects on these requests (an SSRF guard too).
            .redirect(reqwest_tls::redirect::Policy::none());
        if !config.ca_file.is_empty() {
            let pem = std::fs::read(&config.ca_file)
                .map_err(|e| OidcError::Config(format!("ca_file {}: {e}", config.ca_file)))?;
            let certs = reqwest_tls::Certificate::from_pem_bundle(&pem)
                .map_err(|e| OidcError::Config(format!("ca_file {}: {e}", config.ca_file)))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| OidcError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            config: config.clone(),
            secret,
            http: Http(client),
            cache: Mutex::new(Cache::default()),
        })
    }

    /// The button's label.
    pub fn display_name(&self) -> &str {
        &self.config.display_name
    }

    /// Why a new person's name was refused, for them: the claim it came from, the transform
    /// and the rule it breaks.
    pub fn bad_name_message(&self, invalid: &InvalidName) -> String {
        format!(
            "Your user name at the identity provider cannot be a berth user name. The ID token's \
             {:?} claim, after username_transform = \"{}\", gives {:?}, and berth's rule is: names \
             are 1 to 64 lowercase letters and digits, separated by single '.', '_' or '-'. An \
             administrator can choose another username_claim or username_transform.",
            self.config.username_claim, self.config.username_transform, invalid.0
        )
    }

    /// The most sign-ins kept in progress: in all (`max_pending_logins`) and from one client
    /// address (`max_pending_logins_per_address`).
    pub fn max_pending(&self) -> (u64, u64) {
        (
            self.config.max_pending_logins,
            self.config.max_pending_logins_per_address,
        )
    }

    /// The redirect URL a sign-in in progress recorded, if it is one this server would have
    /// chosen: the configured one, or a callback path on some address of this server.
    pub fn pending_redirect<'a>(&'a self, pending: &'a Pending) -> Option<&'a str> {
        if !self.config.redirect_url.is_empty() {
            return Some(&self.config.redirect_url);
        }
        let r = pending.redirect.as_str();
        ((r.starts_with("http://") || r.starts_with("https://"))
            && r.ends_with("/ui/login/oidc/callback"))
        .then_some(r)
    }

    /// The callback URL for a browser that reached berth at `base_url`.
    pub fn redirect_url(&self, base_url: &str) -> String {
        if self.config.redirect_url.is_empty() {
            format!("{}/ui/login/oidc/callback", base_url.trim_end_matches('/'))
        } else {
            self.config.redirect_url.clone()
        }
    }

    /// Whether the provider answers (a cached document counts): for the sign-in page.
    pub async fn available(&self) -> bool {
        self.metadata(false).await.is_ok()
    }

    /// The discovery document: cached, refetched after [`REFRESH`] or when `force`d, with
    /// fetches at least [`RETRY`] apart. A stale document is used when a refetch fails.
    async fn metadata(&self, force: bool) -> Result<Metadata, OidcError> {
        let mut cache = self.cache.lock().await;
        let fresh = cache
            .metadata
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < REFRESH);
        let may_try = cache.last_attempt.is_none_or(|at| at.elapsed() >= RETRY);
        if (force || !fresh) && may_try {
            cache.last_attempt = Some(Instant::now());
            match self.discover().await {
                Ok(m) => cache.metadata = Some((m, Instant::now())),
                Err(e) => tracing::warn!(target: "berth::oidc", error = %e, "discovery failed"),
            }
        }
        cache
            .metadata
            .as_ref()
            .map(|(m, _)| m.clone())
            .ok_or_else(|| OidcError::Unavailable("discovery has not succeeded yet".into()))
    }

    async fn discover(&self) -> Result<Metadata, OidcError> {
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| OidcError::Unavailable(crate::telemetry::error_chain(&e)))
    }

    fn client(&self, metadata: Metadata, redirect: &str) -> Result<Client, OidcError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| OidcError::Config(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.secret.clone(),
        )
        .set_redirect_uri(redirect))
    }

    fn scopes(&self) -> Vec<String> {
        if !self.config.scopes.is_empty() {
            return self.config.scopes.clone();
        }
        let mut s: Vec<String> = ["openid", "profile", "email"].map(String::from).into();
        if !self.config.group.is_empty() {
            s.push("groups".into());
        }
        s
    }

    /// Starts a sign-in: the provider's authorization URL to send the browser to, and what
    /// the callback will need.
    pub async fn begin(&self, redirect: &str, next: &str) -> Result<(String, Pending), OidcError> {
        let client = self.client(self.metadata(false).await?, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.scopes().into_iter().filter(|s| s != "openid") {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: next.to_owned(),
            redirect: redirect.to_owned(),
        };
        Ok((url.to_string(), pending))
    }

    /// Finishes a sign-in: checks `state` against the browser's [`Pending`], trades the code
    /// for tokens and checks the ID token. Returns who signed in.
    pub async fn finish(
        &self,
        redirect: &str,
        pending: &Pending,
        state: &str,
        code: &str,
    ) -> Result<ExternalIdentity, OidcError> {
        if !crate::auth::secret::constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(OidcError::State);
        }
        let client = self.client(self.metadata(false).await?, redirect)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(crate::telemetry::error_chain(&e)))?;
        let raw = response
            .id_token()
            .ok_or_else(|| OidcError::Exchange("no ID token in the response".into()))?
            .to_string();
        let token: Token = raw
            .parse()
            .map_err(|e: serde_json::Error| OidcError::Token(e.to_string()))?;
        let claims = match self.verify(&client, &token, &pending.nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys since the document was fetched.
                let client = self.client(self.metadata(true).await?, redirect)?;
                self.verify(&client, &token, &pending.nonce)
            }
            other => other,
        }
        .map_err(|e| OidcError::Token(e.to_string()))?;
        self.identity(&claims)
    }

    fn verify(
        &self,
        client: &Client,
        token: &Token,
        nonce: &str,
    ) -> Result<Claims, ClaimsVerificationError> {
        use CoreJwsSigningAlgorithm as A;
        let skew = chrono::TimeDelta::seconds(self.config.clock_skew_secs as i64);
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs([
                A::RsaSsaPkcs1V15Sha256,
                A::RsaSsaPkcs1V15Sha384,
                A::RsaSsaPkcs1V15Sha512,
                A::RsaSsaPssSha256,
                A::RsaSsaPssSha384,
                A::RsaSsaPssSha512,
                A::EcdsaP256Sha256,
                A::EcdsaP384Sha384,
            ])
            // `exp` may have passed by up to the skew; `iat` may lie up to the skew ahead.
            .set_time_fn(move || chrono::Utc::now() - skew)
            .set_issue_time_verifier_fn(move |iat| {
                if iat <= chrono::Utc::now() + skew {
                    Ok(())
                } else {
                    Err(format!("issued in the future ({iat})"))
                }
            });
        token
            .claims(&verifier, &Nonce::new(nonce.to_owned()))
            .cloned()
    }

    fn identity(&self, claims: &Claims) -> Result<ExternalIdentity, OidcError> {
        let extra = &claims.additional_claims().claims;
        let want = self.config.username_claim.as_str();
        let name = match want {
            "preferred_username" => claims.preferred_username().map(|n| n.to_string()),
            "email" => claims.email().map(|e| e.to_string()),
            "sub" => Some(claims.subject().to_string()),
            "nickname" => claims
                .nickname()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            "name" => claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            other => extra.get(other).and_then(|v| v.as_str()).map(String::from),
        }
        .ok_or_else(|| OidcError::NoName(want.to_owned()))?;
        // Checked against the name rules when an account is made of it (a returning person
        // is found by subject, whatever the name).
        let name = self.config.username_transform.apply(&name);
        let groups = match extra.get(&self.config.groups_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(String::from))
                .collect(),
            Some(serde_json::Value::String(g)) => vec![g.clone()],
            _ => Vec::new(),
        };
        Ok(ExternalIdentity {
            provider: Provider::Oidc,
            subject: format!("{}#{}", claims.issuer().as_str(), claims.subject().as_str()),
            name,
            groups,
        })
    }

    /// Where to send the browser after signing out of berth: the provider's
    /// `end_session_endpoint` (RP-initiated logout) when `logout = true` and it has one.
    pub async fn logout_url(&self, base_url: &str) -> Option<String> {
        if !self.config.logout {
            return None;
        }
        let metadata = self.metadata(false).await.ok()?;
        let end = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = end.url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                &format!("{}/ui/", base_url.trim_end_matches('/')),
            );
        Some(url.to_string())
    }
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// openidconnect's HTTP requests through berth's reqwest (rustls with ring), so no second
/// HTTP client or TLS stack is built in.
struct Http(reqwest_tls::Client);

/// An HTTP failure talking to the provider.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let response = self
                .0
                .request(parts.method, url)
                .headers(parts.headers)
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError(crate::telemetry::error_chain(&e)))?;
            let status = response.status();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            let mut response = response;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| HttpError(crate::telemetry::error_chain(&e)))?
            {
                if body.len() + chunk.len() > MAX_RESPONSE {
                    return Err(HttpError("response larger than 1 MiB".into()));
                }
                body.extend_from_slice(&chunk);
            }
            let mut out = http::Response::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::UsernameTransform as T;

    #[test]
    fn username_transforms() {
        let upn = "Alice.Smith@Contoso.onmicrosoft.com";
        assert_eq!(T::None.apply(upn), upn);
        assert_eq!(
            T::Lowercase.apply(upn),
            "alice.smith@contoso.onmicrosoft.com"
        );
        assert_eq!(T::Localpart.apply(upn), "Alice.Smith");
        assert_eq!(T::LocalpartLowercase.apply(upn), "alice.smith");
        // The last "@" separates the domain; a name without one stays whole.
        assert_eq!(T::Localpart.apply("\"a@b\"@example.com"), "\"a@b\"");
        assert_eq!(T::Localpart.apply("bob"), "bob");
        assert_eq!(T::Localpart.apply("@example.com"), "");
    }
}
