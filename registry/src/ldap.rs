//! An LDAP directory or Active Directory that checks passwords (`[auth.ldap]`).
//!
//! A sign-in is *search, then bind*: berth binds as its service account, searches the user
//! under `user_base` with `user_filter` (the name escaped per RFC 4515; names that are not
//! valid berth account names are refused before any query), reads their groups (`memberOf`
//! or a group search), and then binds as the entry found with the password given. An empty
//! password is never sent: RFC 4513 §5.1.2 makes that an unauthenticated bind, which
//! "succeeds". berth never builds a DN from what a client sends, so no DN is escaped here;
//! the user's DN goes into the group filter escaped per RFC 4515 like any value.
//!
//! A user the `disabled_filter` matches (OpenLDAP's `pwdAccountLockedTime`, Active
//! Directory's `userAccountControl` bit 2) is treated as absent. Tokens of directory users are
//! re-checked by their stored subject ([`Directory::lookup`]); answers are cached for
//! `cache_ttl_secs` so that a pull storm does not hammer the directory. Failures are never
//! cached, and a directory that cannot be reached refuses: nothing falls back.
//!
//! Depends on `service::identity` for [`ExternalIdentity`] only; `service::accounts` calls in.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::auth::AccountName;
use crate::config::Secret;
use crate::service::identity::{ExternalIdentity, GroupMapping, Provider};

/// The environment variable that holds the service account's password.
pub const BIND_PASSWORD_ENV: &str = "BERTH_AUTH_LDAP_BIND_PASSWORD";

/// LDAP result code `invalidCredentials` (RFC 4511 §4.1.9).
const INVALID_CREDENTIALS: u32 = 49;

/// How many sign-ins and subjects are remembered.
const CACHE_ENTRIES: usize = 4096;

/// `[auth.ldap]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA(s) that sign the directory's certificate; empty means the system's.
    #[serde(default)]
    pub ca_file: String,
    /// The service account berth searches with.
    #[serde(default)]
    pub bind_dn: String,
    /// File holding the service account's password (or set `BERTH_AUTH_LDAP_BIND_PASSWORD`).
    #[serde(default)]
    pub bind_password_file: String,
    /// Set from `BERTH_AUTH_LDAP_BIND_PASSWORD` only.
    #[serde(default, skip_serializing)]
    pub bind_password: Option<Secret>,
    /// Where users are searched.
    pub user_base: String,
    /// The user search filter; `{name}` stands for the escaped user name.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// The attribute holding the user name berth uses.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
    /// The attribute that identifies a user for good (`entryUUID`, `objectGUID`); empty means
    /// the entry's DN, which changes when an entry is moved or renamed.
    #[serde(default)]
    pub id_attribute: String,
    /// Users this filter matches are refused, as if absent.
    #[serde(default)]
    pub disabled_filter: String,
    /// Where groups are searched; empty means no group search.
    #[serde(default)]
    pub group_base: String,
    /// The group search filter; `{dn}` stands for the user's escaped DN, `{name}` for the
    /// escaped user name.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    /// The attribute naming a group.
    #[serde(default = "default_group_name_attribute")]
    pub group_name_attribute: String,
    /// A user attribute listing the DNs of their groups (`memberOf`); empty means none.
    #[serde(default)]
    pub member_of_attribute: String,
    /// How long a directory answer is trusted, seconds.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl_secs: u64,
    /// How long one conversation with the directory may take, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// `[[auth.ldap.group]]`: what directory groups give.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupMapping>,
}

fn default_user_filter() -> String {
    "(uid={name})".into()
}
fn default_name_attribute() -> String {
    "uid".into()
}
fn default_group_filter() -> String {
    "(member={dn})".into()
}
fn default_group_name_attribute() -> String {
    "cn".into()
}
fn default_cache_ttl() -> u64 {
    60
}
fn default_timeout() -> u64 {
    5
}

impl LdapConfig {
    /// Checks what can be checked without the directory.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("ldap://") || self.url.starts_with("ldaps://")) {
            return Err(format!(
                "[auth.ldap] url must start with ldap:// or ldaps://, not {:?}",
                self.url
            ));
        }
        if self.starttls && self.url.starts_with("ldaps://") {
            return Err("[auth.ldap] starttls is for ldap:// URLs; ldaps:// is TLS already".into());
        }
        if self.user_base.is_empty() || !self.user_filter.contains("{name}") {
            return Err("[auth.ldap] needs user_base and a user_filter with {name}".into());
        }
        if !self.bind_password_file.is_empty() && self.bind_password.is_some() {
            return Err(format!(
                "[auth.ldap] bind_password_file and {BIND_PASSWORD_ENV} are both set; keep one"
            ));
        }
        for mapping in &self.groups {
            mapping
                .validate()
                .map_err(|e| format!("[[auth.ldap.group]]: {e}"))?;
        }
        Ok(())
    }
}

/// Why the directory could not answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Connecting, TLS, the service bind or a search failed.
    #[error("the LDAP directory at {url} failed: {source}")]
    Ldap {
        /// The directory.
        url: String,
        /// What failed.
        source: ldap3::LdapError,
    },
    /// The directory took longer than `timeout_secs`.
    #[error("the LDAP directory at {0} did not answer in time")]
    Timeout(String),
}

/// Why the directory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file could not be read.
    #[error("[auth.ldap] {what} {path}: {source}")]
    Read {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("[auth.ldap] ca_file {0}: no usable PEM certificate")]
    Ca(String),
}

/// A user as the directory describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The identity to sign in.
    pub identity: ExternalIdentity,
    /// Whether the directory was asked just now (not answered from the cache): then groups
    /// are synced and the sign-in audited.
    pub fresh: bool,
}

/// The directory client.
pub struct Directory {
    config: LdapConfig,
    bind_password: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    ttl: Duration,
    salt: [u8; 32],
    logins: Mutex<lru::LruCache<[u8; 32], (ExternalIdentity, Instant)>>,
    subjects: Mutex<lru::LruCache<String, (ExternalIdentity, Instant)>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

type Cache<K> = Mutex<lru::LruCache<K, (ExternalIdentity, Instant)>>;

fn cache<K: std::hash::Hash + Eq>() -> Cache<K> {
    Mutex::new(lru::LruCache::new(
        NonZeroUsize::new(CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
    ))
}

impl Directory {
    /// Reads the password and CA files.
    pub fn new(config: LdapConfig) -> Result<Self, SetupError> {
        let bind_password = match (&config.bind_password, config.bind_password_file.as_str()) {
            (Some(secret), _) => secret.0.clone(),
            (None, "") => String::new(),
            (None, path) => std::fs::read_to_string(path)
                .map_err(|source| SetupError::Read {
                    what: "bind_password_file",
                    path: path.into(),
                    source,
                })?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
        };
        let tls = if config.ca_file.is_empty() {
            None
        } else {
            let pem = std::fs::read(&config.ca_file).map_err(|source| SetupError::Read {
                what: "ca_file",
                path: config.ca_file.clone(),
                source,
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| SetupError::Ca(config.ca_file.clone()))?;
                roots
                    .add(cert)
                    .map_err(|_| SetupError::Ca(config.ca_file.clone()))?;
            }
            if roots.is_empty() {
                return Err(SetupError::Ca(config.ca_file.clone()));
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|_| SetupError::Ca(config.ca_file.clone()))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(Arc::new(tls))
        };
        let mut salt = [0u8; 32];
        // A fixed salt only weakens the in-memory cache key, never a stored secret.
        let _ = getrandom::fill(&mut salt);
        Ok(Self {
            ttl: Duration::from_secs(config.cache_ttl_secs),
            config,
            bind_password,
            tls,
            salt,
            logins: cache(),
            subjects: cache(),
        })
    }

    /// What `[[auth.ldap.group]]` maps.
    pub fn group_mappings(&self) -> impl Iterator<Item = (Provider, GroupMapping)> + '_ {
        self.config
            .groups
            .iter()
            .map(|g| (Provider::Ldap, g.clone()))
    }

    /// Checks `password` for the directory user `name`: `None` if there is no such enabled
    /// user or the password is wrong.
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Found>, DirectoryError> {
        if password.is_empty() || AccountName::parse(name).is_err() {
            return Ok(None);
        }
        let key = self.login_key(name, password);
        if let Some(identity) = self.cached(&self.logins, &key) {
            return Ok(Some(Found {
                identity,
                fresh: false,
            }));
        }
        let filter = self.user_filter(&ldap_escape(name));
        let found = self
            .converse(|mut ldap| async move {
                let Some(entry) = self
                    .find(&mut ldap, &self.config.user_base, Scope::Subtree, &filter)
                    .await?
                else {
                    return Ok(None);
                };
                let identity = self.identity(&mut ldap, &entry).await?;
                // Bind as the user last: the service account did the reading.
                let bound = ldap
                    .simple_bind(&entry.dn, password)
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(match bound.rc {
                    0 => Some(identity),
                    INVALID_CREDENTIALS => None,
                    _ => return Err(self.error(ldap3::LdapError::LdapResult { result: bound })),
                })
            })
            .await?;
        Ok(found.map(|identity| {
            self.remember(&self.logins, key, &identity);
            self.remember(&self.subjects, identity.subject.clone(), &identity);
            Found {
                identity,
                fresh: true,
            }
        }))
    }

    /// The user with stored subject `subject` as the directory has them now: `None` if
    /// they were deleted, disabled or left the user filter.
    pub async fn lookup(&self, subject: &str) -> Result<Option<Found>, DirectoryError> {
        if let Some(identity) = self.cached(&self.subjects, &subject.to_owned()) {
            return Ok(Some(Found {
                identity,
                fresh: false,
            }));
        }
        let (base, scope, filter) = if self.config.id_attribute.is_empty() {
            (subject.to_owned(), Scope::Base, self.user_filter("*"))
        } else {
            let value = if subject.starts_with('\\') {
                // A binary id (objectGUID), stored in its escaped form.
                subject.to_owned()
            } else {
                ldap_escape(subject).into_owned()
            };
            let by_id = format!("({}={value})", self.config.id_attribute);
            (
                self.config.user_base.clone(),
                Scope::Subtree,
                format!("(&{}{by_id})", self.user_filter("*")),
            )
        };
        let found = self
            .converse(|mut ldap| async move {
                match self.find(&mut ldap, &base, scope, &filter).await {
                    Ok(Some(entry)) => self.identity(&mut ldap, &entry).await.map(Some),
                    Ok(None) => Ok(None),
                    // A DN that no longer exists.
                    Err(DirectoryError::Ldap {
                        source: ldap3::LdapError::LdapResult { result },
                        ..
                    }) if result.rc == 32 => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(found
            .filter(|identity| identity.subject == subject)
            .map(|identity| {
                self.remember(&self.subjects, identity.subject.clone(), &identity);
                Found {
                    identity,
                    fresh: true,
                }
            }))
    }

    /// `(&user_filter(!disabled_filter))` with `{name}` replaced by `value` (escaped already,
    /// or `*` for any).
    fn user_filter(&self, value: &str) -> String {
        let users = self.config.user_filter.replace("{name}", value);
        if self.config.disabled_filter.is_empty() {
            users
        } else {
            format!("(&{users}(!{}))", self.config.disabled_filter)
        }
    }

    /// Connects, binds as the service account and runs `talk`, all within the timeout.
    async fn converse<'a, T, F, Fut>(&'a self, talk: F) -> Result<T, DirectoryError>
    where
        F: FnOnce(ldap3::Ldap) -> Fut,
        Fut: Future<Output = Result<T, DirectoryError>> + 'a,
    {
        let timeout = Duration::from_secs(self.config.timeout_secs.max(1));
        let work = async {
            let mut settings = LdapConnSettings::new()
                .set_conn_timeout(timeout)
                .set_starttls(self.config.starttls);
            if let Some(tls) = &self.tls {
                settings = settings.set_config(tls.clone());
            }
            let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
                .await
                .map_err(|e| self.error(e))?;
            ldap3::drive!(conn);
            if !self.config.bind_dn.is_empty() {
                ldap.simple_bind(&self.config.bind_dn, &self.bind_password)
                    .await
                    .and_then(ldap3::LdapResult::success)
                    .map_err(|e| self.error(e))?;
            }
            let mut done = ldap.clone();
            let answer = talk(ldap).await;
            let _ = done.unbind().await;
            answer
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| DirectoryError::Timeout(self.config.url.clone()))?
    }

    /// The one entry `filter` finds, or `None` (none, or more than one: ambiguous).
    async fn find(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        let mut attrs = vec![self.config.name_attribute.as_str()];
        if !self.config.id_attribute.is_empty() {
            attrs.push(&self.config.id_attribute);
        }
        if !self.config.member_of_attribute.is_empty() {
            attrs.push(&self.config.member_of_attribute);
        }
        let (entries, _) = ldap
            .search(base, scope, filter, attrs)
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| self.error(e))?;
        if entries.len() > 1 {
            tracing::warn!(target: "berth::auth", base, filter, "the LDAP user search found several entries; refusing");
            return Ok(None);
        }
        Ok(entries.into_iter().next().map(SearchEntry::construct))
    }

    /// The identity of a user entry, with their groups.
    async fn identity(
        &self,
        ldap: &mut ldap3::Ldap,
        entry: &SearchEntry,
    ) -> Result<ExternalIdentity, DirectoryError> {
        let first = |attr: &str| {
            entry
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(attr))
                .and_then(|(_, v)| v.first().cloned())
        };
        let subject = if self.config.id_attribute.is_empty() {
            entry.dn.clone()
        } else if let Some(id) = first(&self.config.id_attribute) {
            id
        } else {
            entry
                .bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&self.config.id_attribute))
                .and_then(|(_, v)| v.first())
                .map(|bytes| bytes.iter().map(|b| format!("\\{b:02x}")).collect())
                .unwrap_or_else(|| entry.dn.clone())
        };
        let mut groups = Vec::new();
        if !self.config.member_of_attribute.is_empty() {
            for dn in entry
                .attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(&self.config.member_of_attribute))
                .flat_map(|(_, v)| v)
            {
                groups.extend(first_rdn_value(dn));
                groups.push(dn.clone());
            }
        }
        let name = first(&self.config.name_attribute).unwrap_or_default();
        if !self.config.group_base.is_empty() {
            let filter = self
                .config
                .group_filter
                .replace("{dn}", &ldap_escape(&entry.dn))
                .replace("{name}", &ldap_escape(&name));
            let (entries, _) = ldap
                .search(
                    &self.config.group_base,
                    Scope::Subtree,
                    &filter,
                    vec![self.config.group_name_attribute.as_str()],
                )
                .await
                .and_then(ldap3::SearchResult::success)
                .map_err(|e| self.error(e))?;
            for group in entries.into_iter().map(SearchEntry::construct) {
                groups.extend(
                    group
                        .attrs
                        .iter()
                        .filter(|(k, _)| k.eq_ignore_ascii_case(&self.config.group_name_attribute))
                        .flat_map(|(_, v)| v.iter().cloned()),
                );
                groups.push(group.dn);
            }
        }
        groups.sort();
        groups.dedup();
        Ok(ExternalIdentity {
            provider: Provider::Ldap,
            subject,
            // Directory names are often capitalized (AD's sAMAccountName); berth's are not.
            name: name.to_ascii_lowercase(),
            groups,
        })
    }

    fn error(&self, source: ldap3::LdapError) -> DirectoryError {
        DirectoryError::Ldap {
            url: self.config.url.clone(),
            source,
        }
    }

    fn login_key(&self, name: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(name.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached<K: std::hash::Hash + Eq>(
        &self,
        cache: &Cache<K>,
        key: &K,
    ) -> Option<ExternalIdentity> {
        let mut entries = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(key) {
            Some((identity, at)) if at.elapsed() < self.ttl => Some(identity.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    fn remember<K: std::hash::Hash + Eq>(
        &self,
        cache: &Cache<K>,
        key: K,
        identity: &ExternalIdentity,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(key, (identity.clone(), Instant::now()));
    }
}

/// The value of a DN's first RDN (`cn=devs,ou=groups,…` → `devs`), unescaped per RFC 4514
/// for the common `\,`-style escapes; `None` if it is not a simple `attr=value` RDN.
fn first_rdn_value(dn: &str) -> Option<String> {
    let (_, rest) = dn.split_once('=')?;
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            ',' | '+' => break,
            c => value.push(c),
        }
    }
    Some(value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_per_rfc4515() {
        // RFC 4515 §3: `*`, `(`, `)`, `\` and NUL become `\XX`.
        assert_eq!(ldap_escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(ldap_escape("a\0b"), "a\\00b");
        assert_eq!(ldap_escape("back\\slash"), "back\\5cslash");
        assert_eq!(ldap_escape("alice"), "alice");
    }

    #[test]
    fn dn_values_are_escaped_per_rfc4514() {
        // RFC 4514 §2.4: `"+,;<>\` and NUL anywhere, `#` or space first, space last.
        assert_eq!(ldap3::dn_escape("a,b+c"), "a\\2cb\\2bc");
        assert_eq!(ldap3::dn_escape(" #x "), "\\20#x\\20");
        assert_eq!(ldap3::dn_escape("#x"), "\\23x");
        assert_eq!(ldap3::dn_escape("nul\0"), "nul\\00");
    }

    fn config() -> LdapConfig {
        toml::from_str(
            r#"
            url = "ldap://127.0.0.1:1"
            user_base = "ou=people,dc=example,dc=org"
            user_filter = "(&(objectClass=inetOrgPerson)(uid={name}))"
            disabled_filter = "(pwdAccountLockedTime=*)"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn the_user_filter_leaves_out_disabled_users() {
        let d = Directory::new(config()).unwrap();
        assert_eq!(
            d.user_filter(&ldap_escape("*)(uid=*")),
            "(&(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))(!(pwdAccountLockedTime=*)))"
        );
    }

    #[tokio::test]
    async fn names_that_are_no_account_names_and_empty_passwords_never_reach_the_directory() {
        // The directory at port 1 is down: reaching it would be an error, not `None`.
        let d = Directory::new(config()).unwrap();
        for (name, password) in [
            ("*)(uid=*", "x"),
            ("a\0", "x"),
            ("Alice", "x"),
            ("alice", ""),
        ] {
            assert!(
                d.authenticate(name, password).await.unwrap().is_none(),
                "{name:?}"
            );
        }
        assert!(d.authenticate("alice", "x").await.is_err());
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(
            first_rdn_value("cn=dev\\,ops,ou=groups,dc=x").as_deref(),
            Some("dev,ops")
        );
        assert_eq!(first_rdn_value("CN=Devs,OU=G").as_deref(), Some("Devs"));
        assert_eq!(first_rdn_value("nonsense"), None);
    }

    #[test]
    fn the_config_checks_itself() {
        let mut c = config();
        assert!(c.validate().is_ok());
        c.url = "http://x".into();
        assert!(c.validate().is_err());
        let mut c = config();
        c.user_filter = "(uid=alice)".into();
        assert!(c.validate().is_err());
    }
}
