//! Registry credentials for the runtime: `berth login` keeps them in a file only its owner
//! may read (Docker's `config.json` format: `{"auths": {HOST: {"auth": base64(user:pass)}}}`),
//! and pulls also look in Docker's own `~/.docker/config.json`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// Why credentials could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file operation failed.
    #[error("cannot use the credentials file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file does not parse.
    #[error("{path} is not a valid credentials file: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Other keys of Docker's file, kept as they are.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    auth: String,
}

/// The credentials file berth writes: `$BERTH_AUTH_FILE`, else
/// `$XDG_CONFIG_HOME/berth/auth.json`, else `~/.config/berth/auth.json`.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_AUTH_FILE") {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"));
    config.join("berth/auth.json")
}

/// Docker's file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

fn load(path: &Path) -> Result<AuthFile, CredentialsError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CredentialsError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(source) => Err(CredentialsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn save(path: &Path, file: &AuthFile) -> Result<(), CredentialsError> {
    let io = |source| CredentialsError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let temp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| CredentialsError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    // Created 0600 from the start: the secret is never readable by others, not even briefly.
    let _ = fs::remove_file(&temp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    fs::rename(&temp, path).map_err(io)
}

/// Stores credentials for `registry` in `path`.
pub fn store(
    path: &Path,
    registry: &str,
    user: &str,
    password: &str,
) -> Result<(), CredentialsError> {
    let mut file = load(path)?;
    file.auths.insert(
        registry.to_owned(),
        AuthEntry {
            auth: STANDARD.encode(format!("{user}:{password}")),
        },
    );
    save(path, &file)
}

/// Forgets credentials for `registry`; returns whether there were any.
pub fn forget(path: &Path, registry: &str) -> Result<bool, CredentialsError> {
    let mut file = load(path)?;
    let had = file.auths.remove(registry).is_some();
    if had {
        save(path, &file)?;
    }
    Ok(had)
}

/// The user and password for `registry`: from berth's file first, then Docker's.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<(String, String)>, CredentialsError> {
    let mut files = vec![path.to_owned()];
    files.extend(docker_path());
    for p in files {
        let file = load(&p)?;
        let entry = file
            .auths
            .get(registry)
            .or_else(|| file.auths.get(&format!("https://{registry}")))
            .or_else(|| file.auths.get(&format!("http://{registry}")));
        if let Some(entry) = entry
            && let Ok(decoded) = STANDARD.decode(&entry.auth)
            && let Ok(text) = String::from_utf8(decoded)
            && let Some((user, password)) = text.split_once(':')
        {
            return Ok(Some((user.to_owned(), password.to_owned())));
        }
    }
    Ok(None)
}

/// Whether `registry` (`host[:port]`) is spoken to over plain HTTP: loopback addresses only,
/// as docker treats 127.0.0.0/8 and `localhost`.
pub fn plain_http(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks credentials the way `docker login` does: `GET /v2/`, then the token endpoint its
/// challenge names (or `/v2/` again with HTTP Basic). Plain HTTP for loopback hosts.
pub async fn verify(registry: &str, user: &str, password: &str) -> Result<(), String> {
    let scheme = if plain_http(registry) {
        "http"
    } else {
        "https"
    };
    let http = reqwest::Client::new();
    let base = format!("{scheme}://{registry}/v2/");
    let first = http
        .get(&base)
        .send()
        .await
        .map_err(|e| format!("cannot reach {registry}: {e}"))?;
    if first.status().is_success() {
        return Ok(());
    }
    let challenge = first
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let answer = if let Some(params) = challenge.strip_prefix("Bearer ") {
        let param = |name: &str| {
            params.split(',').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = param("realm").ok_or("the registry's challenge names no token endpoint")?;
        let mut url = reqwest::Url::parse(&realm).map_err(|e| format!("bad token realm: {e}"))?;
        url.query_pairs_mut().append_pair("account", user);
        if let Some(service) = param("service") {
            url.query_pairs_mut().append_pair("service", &service);
        }
        http.get(url).basic_auth(user, Some(password)).send().await
    } else {
        http.get(&base)
            .basic_auth(user, Some(password))
            .send()
            .await
    }
    .map_err(|e| format!("cannot reach {registry}: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "{registry} refused the credentials ({})",
            answer.status()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn credentials_round_trip_in_a_private_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("berth/auth.json");
        store(&path, "127.0.0.1:5000", "alice", "s3cret:with:colons").expect("store");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            lookup(&path, "127.0.0.1:5000").expect("lookup"),
            Some(("alice".into(), "s3cret:with:colons".into()))
        );
        assert!(forget(&path, "127.0.0.1:5000").expect("forget"));
        assert!(!forget(&path, "127.0.0.1:5000").expect("again"));
    }
}
