//! Authenticating to an upstream registry: HTTP Basic, or the Docker token flow (a `401`
//! whose `WWW-Authenticate: Bearer realm=...,service=...` names a token endpoint, asked for a
//! token per repository scope, anonymously or with Basic credentials).
//!
//! The scheme is learnt from the first challenge and remembered, so later requests carry the
//! right `Authorization` at once; tokens are cached per scope until shortly before they expire.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::UpstreamError;

/// Tokens older than their lifetime minus this are fetched again, so a token never expires
/// on its way to the upstream.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// Lifetime assumed when a token response names none (the token specification's default).
const DEFAULT_TOKEN_SECS: u64 = 60;
/// Scopes whose tokens are cached at most; the cache starts over beyond that.
const MAX_TOKENS: usize = 1024;

/// A user name and password for the upstream. `Debug` shows no password.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// A `WWW-Authenticate` challenge this client can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP Basic with the configured credentials.
    Basic,
    /// The Docker token flow: ask `realm` for a token for `service` and a scope.
    Bearer {
        /// The token endpoint.
        realm: reqwest_tls::Url,
        /// The `service` parameter to pass along, if the challenge named one.
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (RFC 9110 §11.6.1: a scheme, then `name=value` or
/// `name="quoted value"` parameters separated by commas). Returns `None` for schemes other
/// than Basic and Bearer, or a Bearer challenge without a usable `realm` (an absolute
/// `http`/`https` URL).
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let realm = reqwest_tls::Url::parse(&param("realm")?).ok()?;
    if !matches!(realm.scheme(), "http" | "https") {
        return None;
    }
    Some(Challenge::Bearer {
        realm,
        service: param("service"),
    })
}

/// `name=value` pairs of a challenge, values unquoted (`\x` stands for `x` inside quotes).
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if name.is_empty() {
            return out;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
            value = value.trim().to_owned();
        }
        out.push((name, value));
    }
}

/// The token endpoint's answer (Docker's token specification; OAuth2 says `access_token`).
#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Default)]
struct State {
    /// How the upstream wants to be authenticated, once it has said so.
    scheme: Option<Challenge>,
    /// Bearer tokens by scope, with when to stop using them.
    tokens: HashMap<String, (String, Instant)>,
}

/// What one upstream requires, and the tokens it handed out.
pub(super) struct Authenticator {
    credentials: Option<Credentials>,
    state: Mutex<State>,
}

impl Authenticator {
    pub(super) fn new(credentials: Option<Credentials>) -> Self {
        Self {
            credentials,
            state: Mutex::new(State::default()),
        }
    }

    fn scheme(&self) -> Option<Challenge> {
        self.state.lock().ok().and_then(|s| s.scheme.clone())
    }

    fn cached_token(&self, scope: &str) -> Option<String> {
        let state = self.state.lock().ok()?;
        let (token, until) = state.tokens.get(scope)?;
        (Instant::now() < *until).then(|| token.clone())
    }

    /// The `Authorization` value to send with a first request for `scope`: none until the
    /// upstream has challenged once, then Basic or a (cached or new) bearer token.
    pub(super) async fn authorization(
        &self,
        http: &reqwest_tls::Client,
        scope: &str,
        timeout: Duration,
    ) -> Result<Option<String>, UpstreamError> {
        match self.scheme() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic)),
            Some(challenge @ Challenge::Bearer { .. }) => match self.cached_token(scope) {
                Some(token) => Ok(Some(format!("Bearer {token}"))),
                None => self.token(http, &challenge, scope, timeout).await.map(Some),
            },
        }
    }

    /// Answers a `401` whose `WWW-Authenticate` is `header`: remembers the scheme and returns
    /// the `Authorization` to retry with (a new token, never a cached one, since the upstream
    /// just refused what was sent).
    pub(super) async fn answer(
        &self,
        http: &reqwest_tls::Client,
        header: Option<&str>,
        scope: &str,
        timeout: Duration,
    ) -> Result<String, UpstreamError> {
        let challenge = header
            .and_then(parse_challenge)
            .ok_or_else(|| UpstreamError::Challenge(header.unwrap_or_default().to_owned()))?;
        if let Ok(mut state) = self.state.lock() {
            state.scheme = Some(challenge.clone());
        }
        match &challenge {
            Challenge::Basic => self
                .credentials
                .as_ref()
                .map(Credentials::basic)
                .ok_or(UpstreamError::Refused(401)),
            Challenge::Bearer { .. } => self.token(http, &challenge, scope, timeout).await,
        }
    }

    /// Fetches a bearer token for `scope` from the challenge's realm (with Basic credentials
    /// when configured) and caches it.
    async fn token(
        &self,
        http: &reqwest_tls::Client,
        challenge: &Challenge,
        scope: &str,
        timeout: Duration,
    ) -> Result<String, UpstreamError> {
        let Challenge::Bearer { realm, service } = challenge else {
            return Err(UpstreamError::Challenge("not a bearer challenge".into()));
        };
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut request = http.get(url).timeout(timeout);
        if let Some(c) = &self.credentials {
            request = request.header(http::header::AUTHORIZATION, c.basic());
        }
        let response = request.send().await.map_err(UpstreamError::Unreachable)?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Err(UpstreamError::Refused(status.as_u16()));
        }
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        let body = response.bytes().await.map_err(UpstreamError::Unreachable)?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::Challenge(format!("token response: {e}")))?;
        let token = parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| UpstreamError::Challenge("token response without a token".into()))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(DEFAULT_TOKEN_SECS));
        if let Ok(mut state) = self.state.lock() {
            if state.tokens.len() >= MAX_TOKENS {
                state.tokens.clear();
            }
            let until = Instant::now() + lifetime.saturating_sub(TOKEN_MARGIN);
            state
                .tokens
                .insert(scope.to_owned(), (token.clone(), until));
        }
        Ok(format!("Bearer {token}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>) -> Challenge {
        Challenge::Bearer {
            realm: reqwest_tls::Url::parse(realm).unwrap(),
            service: service.map(str::to_owned),
        }
    }

    #[test]
    fn parses_the_challenges_registries_send() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(bearer(
                "https://auth.docker.io/token",
                Some("registry.docker.io")
            ))
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        // Unquoted values, spaces around commas, other case, escapes inside quotes.
        assert_eq!(
            parse_challenge(r#"BEARER service = berth , realm=http://127.0.0.1:5000/token"#),
            Some(bearer("http://127.0.0.1:5000/token", Some("berth")))
        );
        assert_eq!(
            parse_challenge(r#"Bearer realm="https://a.example/t",service="a \"quoted\" name""#),
            Some(bearer("https://a.example/t", Some(r#"a "quoted" name"#)))
        );
    }

    #[test]
    fn refuses_challenges_it_cannot_answer() {
        for value in [
            "",
            "Negotiate abc",
            "Bearer",
            r#"Bearer service="x""#,
            r#"Bearer realm="/token""#,
            r#"Bearer realm="file:///etc/passwd""#,
        ] {
            assert_eq!(parse_challenge(value), None, "{value}");
        }
    }

    #[test]
    fn credentials_keep_their_password_out_of_debug_output() {
        let c = Credentials {
            username: "mirror".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("mirror") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(c.basic(), "Basic bWlycm9yOmh1bnRlcjI=");
    }
}
