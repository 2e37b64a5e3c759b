//! Starting the registries under test, and reading their memory use.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A registry under test: a URL, and the process when the bench started it.
pub struct Registry {
    /// Short name for reports.
    pub name: String,
    /// `http://host:port`.
    pub url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Registry {
    /// A registry someone else runs.
    pub fn external(name: &str, url: &str) -> Self {
        Self {
            name: name.to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            child: None,
            _dir: None,
        }
    }

    /// Starts `berth serve` from `binary` on a fresh data directory under `scratch`, with
    /// extra `env` settings (for other backends), reported as `name`.
    pub fn start_berth(
        binary: &Path,
        scratch: &Path,
        name: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir_in(scratch)?;
        let addr = free_addr()?;
        let child = Command::new(binary)
            .args(["serve", "--listen", &addr.to_string(), "--data-dir"])
            .arg(dir.path().join("data"))
            .env("BERTH_LOG_LEVEL", "warn")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Self::started(name, addr, child, dir)
    }

    /// Starts Debian's `docker-registry` (CNCF Distribution) with filesystem storage,
    /// deletes enabled and no auth: the same shape as berth's defaults.
    pub fn start_distribution(binary: &Path, scratch: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir_in(scratch)?;
        let addr = free_addr()?;
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Self::started("distribution", addr, child, dir)
    }

    fn started(
        name: &str,
        addr: SocketAddr,
        child: Child,
        dir: tempfile::TempDir,
    ) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!("{name} did not start listening on {addr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            name: name.to_owned(),
            url: format!("http://{addr}"),
            child: Some(child),
            _dir: Some(dir),
        })
    }

    /// The data directory of a berth the bench started.
    pub fn data_dir(&self) -> Option<PathBuf> {
        self._dir.as_ref().map(|d| d.path().join("data"))
    }

    /// `host:port`, as docker names a registry.
    pub fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Peak resident memory of the process in KiB (VmHWM), when the bench started it.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Finds the berth binary: the release build next to this bench, unless given.
pub fn default_berth_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name("berth")
}
