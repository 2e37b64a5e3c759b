//! Who is looking at a page: their session, what they may read and do, and the anti-forgery
//! token their forms carry.
//!
//! A sign-in sets the `berth_session` cookie (HttpOnly, SameSite=Lax; over HTTPS it is
//! `__Host-berth_session`, Secure, which browsers accept only from this exact origin, so
//! neither a plain-HTTP page nor a sibling subdomain can plant one) holding a random secret;
//! the database keeps only its hash. Every form carries a CSRF token derived from that secret
//! (SHA-256 with a label), which a page on another site can neither read nor compute; before
//! sign-in, the sign-in form uses a random `berth_csrf` cookie the same way (double submit).
//! POSTs the browser marks as cross-site (`Sec-Fetch-Site: cross-site`) or that carry another
//! site's `Origin` are refused outright.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use sha2::{Digest as _, Sha256};

use super::form::Form;
use super::{Ui, UiError};
use crate::api::auth::RequestParts;
use crate::auth::{Action, Actions, Grants, Principal, access, secret};
use crate::meta::accounts::AccountRecord;
use crate::meta::events::Origin;
use crate::service::accounts::user_principal;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "berth_session";
/// The pre-sign-in anti-forgery cookie's name.
pub const CSRF_COOKIE: &str = "berth_csrf";

/// Who is looking.
pub enum Who {
    /// Authentication is off: everyone may read and do everything.
    Open,
    /// Not signed in.
    Anonymous,
    /// A signed-in user.
    User(Box<AccountRecord>),
}

/// The viewer of a page.
pub struct Viewer {
    /// Who it is.
    pub who: Who,
    principal: Principal,
    grants: Grants,
    /// The anti-forgery token for this viewer's forms (empty when there is nothing to bind
    /// it to yet).
    pub csrf: String,
    /// The session secret, for signing out.
    session: Option<String>,
    /// `scheme://host` as the browser addressed this server.
    pub base_url: String,
    /// Who they are and where they browse from, for the audit log.
    pub origin: Origin,
    /// Where they browse from (the proxy-added address behind a trusted proxy), which sign-in
    /// throttling counts by.
    pub client: std::net::IpAddr,
}

impl Viewer {
    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&AccountRecord> {
        match &self.who {
            Who::User(u) => Some(u),
            _ => None,
        }
    }

    /// Whether authentication is on (there is signing in, and permissions apply).
    pub fn auth_enabled(&self) -> bool {
        !matches!(self.who, Who::Open)
    }

    /// Whether pages are served over HTTPS (as the browser sees it).
    pub fn secure(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// The host (and port) clients pull from.
    pub fn registry_host(&self) -> &str {
        self.base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, h)| h)
    }

    /// The session secret (signing out ends it).
    pub fn session_secret(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Whether the viewer may read the private repository `name` (public ones are added by
    /// the service).
    pub fn reads(&self, name: &str) -> bool {
        match &self.who {
            Who::Open => true,
            Who::Anonymous => false,
            Who::User(_) => {
                access::allowed(&self.principal, &self.grants, name, false).contains(Action::Pull)
            }
        }
    }

    /// What the viewer may do on repository `name`, public visibility included.
    pub async fn actions_on(&self, ui: &Ui, name: &str) -> Result<Actions, UiError> {
        match (&self.who, &ui.gate) {
            (Who::Open, _) | (_, None) => Ok(Actions::ALL),
            (_, Some(gate)) => Ok(gate
                .accounts
                .allowed(&self.principal, &self.grants, name)
                .await?),
        }
    }

    /// Makes sure this viewer's forms can carry a token: before sign-in (or with
    /// authentication off) that needs a random cookie, returned here as a `Set-Cookie` value
    /// to send with the page.
    pub fn prepare_forms(&mut self) -> Result<Option<String>, UiError> {
        if !self.csrf.is_empty() {
            return Ok(None);
        }
        let value = secret::generate()
            .map_err(|_| UiError::Internal("no randomness for a form token".into()))?;
        self.csrf = csrf_token(&value);
        Ok(Some(set_cookie(
            CSRF_COOKIE,
            &value,
            12 * 60 * 60,
            self.secure(),
        )))
    }

    /// Refuses a form that lacks this viewer's anti-forgery token or that the browser marks
    /// as sent from another site, by `Sec-Fetch-Site` or by an `Origin` other than this
    /// server's host (`Origin: null`, from sandboxed frames and the like, included).
    pub fn check_form(&self, headers: &HeaderMap, form: &Form) -> Result<(), UiError> {
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
        // The host, not the scheme: behind a TLS proxy without forwarded headers the page
        // was https while this server sees http, and no other site shares the host.
        let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
            let host = origin
                .to_str()
                .ok()
                .and_then(|o| o.split_once("://"))
                .map(|(_, host)| host);
            host.is_none_or(|h| !h.eq_ignore_ascii_case(self.registry_host()))
        });
        let sent = form.get("csrf");
        if cross_site
            || foreign_origin
            || self.csrf.is_empty()
            || !secret::constant_time_eq(sent.as_bytes(), self.csrf.as_bytes())
        {
            return Err(UiError::Csrf);
        }
        Ok(())
    }
}

/// The anti-forgery token bound to a cookie's secret.
pub fn csrf_token(cookie_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"berth-ui-csrf\0");
    h.update(cookie_secret.as_bytes());
    hex::encode(&h.finalize()[..20])
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// The name a cookie goes by: over HTTPS with the `__Host-` prefix, which browsers accept only
/// with `Secure`, `Path=/` and no `Domain`, so no other origin can set or overwrite it.
pub fn cookie_name(name: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`; over HTTPS `Secure` and the
/// `__Host-` prefix ([`cookie_name`]). `max_age = 0` deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    let name = cookie_name(name, secure);
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}");
    if secure {
        c.push_str("; Secure");
    }
    c
}

impl FromRequestParts<Arc<Ui>> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, ui: &Arc<Ui>) -> Result<Self, UiError> {
        let rp = RequestParts {
            headers: &parts.headers,
            conn: parts.extensions.get::<crate::server::ConnInfo>().copied(),
            authority: parts.uri.authority().map(|a| a.as_str()),
        };
        let base_url = rp.base_url(ui.trust_forwarded);
        // Over HTTPS only the prefixed names count: an unprefixed cookie may have been planted.
        let secure = base_url.starts_with("https://");
        if let Some(gate) = &ui.gate
            && let Some(session) = cookie(&parts.headers, &cookie_name(SESSION_COOKIE, secure))
            && let Some(account) = gate.accounts.session(session).await?
        {
            let principal = user_principal(&account);
            let grants = gate.accounts.grants(&principal).await?;
            let origin = rp.origin(account.name.clone(), ui.trust_forwarded);
            return Ok(Viewer {
                origin,
                client: rp.client_addr(ui.trust_forwarded),
                who: Who::User(Box::new(account)),
                principal,
                grants,
                csrf: csrf_token(session),
                session: Some(session.to_owned()),
                base_url,
            });
        }
        // Not signed in, or no accounts at all (authentication off). Forms still carry a
        // token, bound to the pre-sign-in cookie, so a page elsewhere cannot post through
        // this browser (with authentication off, say, delete tags).
        let csrf = cookie(&parts.headers, &cookie_name(CSRF_COOKIE, secure))
            .map(csrf_token)
            .unwrap_or_default();
        Ok(Viewer {
            origin: rp.origin(String::new(), ui.trust_forwarded),
            client: rp.client_addr(ui.trust_forwarded),
            who: if ui.gate.is_some() {
                Who::Anonymous
            } else {
                Who::Open
            },
            principal: Principal::Anonymous,
            grants: Grants::default(),
            csrf,
            session: None,
            base_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_parse_and_tokens_bind_to_them() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; berth_session=s3cret; b=\"2\""
                .parse()
                .expect("header"),
        );
        assert_eq!(cookie(&h, "berth_session"), Some("s3cret"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "berth"), None);
        assert_ne!(csrf_token("one"), csrf_token("two"));
        assert_eq!(csrf_token("one").len(), 40);
        let c = set_cookie("x", "v", 60, true);
        assert!(c.starts_with("__Host-x=v; Path=/;"), "{c}");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(set_cookie("x", "v", 60, false).starts_with("x=v; Path=/;"));
    }
}
