//! Runs the real `berth` binary on 127.0.0.1 with its own data directory, and talks to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

/// A running `berth serve`.
pub struct Berth {
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its data directory (kept across restarts).
    pub data_dir: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
    /// An HTTP client for it.
    pub http: reqwest::Client,
    /// `http`, or `https` for a server with `[tls]` (set it with a client that trusts it).
    pub scheme: &'static str,
}

impl Berth {
    /// Starts berth on a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts berth on a fresh data directory with extra environment settings.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut b = Self::start_in(&tmp.path().join("data"), env);
        b._tmp = Some(tmp);
        b
    }

    /// Starts berth on `data_dir` (which may hold a previous run's data), on the backends
    /// `BERTH_TEST_BACKEND` selects.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_at(data_dir, env, "127.0.0.1:0")
    }

    /// Like [`Berth::start_in`], listening on `listen` (to restart a replica on its port).
    pub fn start_at(data_dir: &Path, env: &[(&str, &str)], listen: &str) -> Self {
        std::fs::create_dir_all(data_dir).expect("data dir");
        // reqwest is built without a bundled TLS provider (the registry installs ring's);
        // the tests' client needs one too, even though it only speaks plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let backend_env = backend_env(data_dir);
        let log = data_dir.with_extension(format!("log.{}", unique()));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .env("BERTH_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let env: Vec<(String, String)> = backend_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .chain(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .collect();
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn berth");
        let addr = wait_for_addr(&log);
        Self {
            child: Some(child),
            addr,
            data_dir: data_dir.to_owned(),
            log,
            env,
            _tmp: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            scheme: "http",
        }
    }

    /// Runs `berth admin ARGS` on this server's database (same settings), with `stdin`;
    /// returns (success, stdout, stderr).
    pub fn admin(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.arg("admin")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn berth admin");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("berth admin");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `berth admin ARGS`, which must succeed; returns its stdout.
    pub fn admin_ok(&self, args: &[&str], stdin: &str) -> String {
        let (ok, out, err) = self.admin(args, stdin);
        assert!(ok, "berth admin {args:?} failed:\n{out}\n{err}");
        out
    }

    /// The settings this server runs with (its backends, and what the test added).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `http://127.0.0.1:PORT` + `path` (`https://` when `scheme` says so).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// `127.0.0.1:PORT`, as docker and skopeo name the registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit; returns whether it
    /// exited successfully in time.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Keys of every object in blob storage (`blobs/...`, `data/...`, `uploads/...`).
    pub fn stored_objects(&self) -> Vec<String> {
        match backend() {
            Backend::Sqlite | Backend::Postgres => {
                let root = self.data_dir.join("blobs");
                walk(&root)
                    .into_iter()
                    .filter_map(|p| {
                        p.strip_prefix(&root)
                            .ok()
                            .map(|r| r.to_string_lossy().into_owned())
                    })
                    .collect()
            }
            Backend::PostgresS3 => {
                let bucket = store_name(&self.data_dir);
                let (status, _, body) =
                    s3_request("GET", &format!("/{bucket}?list-type=2&max-keys=100000"));
                assert_eq!(status, 200, "list bucket");
                let xml = String::from_utf8_lossy(&body);
                xml.split("<Key>")
                    .skip(1)
                    .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
                    .collect()
            }
        }
    }

    /// Multipart uploads in progress in the bucket (always empty for a local directory).
    pub fn open_multipart_uploads(&self) -> Vec<String> {
        if backend() != Backend::PostgresS3 {
            return Vec::new();
        }
        let bucket = store_name(&self.data_dir);
        let (status, _, body) = s3_request("GET", &format!("/{bucket}?uploads"));
        assert_eq!(status, 200, "list multipart uploads");
        let xml = String::from_utf8_lossy(&body);
        xml.split("<UploadId>")
            .skip(1)
            .filter_map(|s| s.split_once("</UploadId>").map(|(k, _)| k.to_owned()))
            .collect()
    }

    /// The bytes of a stored object, by key.
    pub fn read_object(&self, key: &str) -> Vec<u8> {
        match backend() {
            Backend::Sqlite | Backend::Postgres => {
                std::fs::read(self.data_dir.join("blobs").join(key)).expect("read object")
            }
            Backend::PostgresS3 => {
                let bucket = store_name(&self.data_dir);
                let (status, _, body) = s3_request("GET", &format!("/{bucket}/{key}"));
                assert_eq!(status, 200, "get object {key}");
                body
            }
        }
    }

    /// Replaces the bytes of a stored object (damage, for the scrub tests).
    pub fn write_object(&self, key: &str, data: &[u8]) {
        match backend() {
            Backend::Sqlite | Backend::Postgres => {
                std::fs::write(self.data_dir.join("blobs").join(key), data).expect("write object")
            }
            Backend::PostgresS3 => {
                let bucket = store_name(&self.data_dir);
                let (status, _, _) = s3_request_with("PUT", &format!("/{bucket}/{key}"), data);
                assert_eq!(status, 200, "put object {key}");
            }
        }
    }

    /// Deletes a stored object (loss, for the scrub tests).
    pub fn delete_object(&self, key: &str) {
        match backend() {
            Backend::Sqlite | Backend::Postgres => {
                std::fs::remove_file(self.data_dir.join("blobs").join(key)).expect("delete object")
            }
            Backend::PostgresS3 => {
                let bucket = store_name(&self.data_dir);
                let (status, _, _) = s3_request("DELETE", &format!("/{bucket}/{key}"));
                assert_eq!(status, 204, "delete object {key}");
            }
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- berth log ({}) ---\n{}",
                self.log.display(),
                self.logs()
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The metadata and storage backends the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite and a local directory (the default).
    Sqlite,
    /// PostgreSQL (`BERTH_TEST_POSTGRES_URL`) and a local directory.
    Postgres,
    /// PostgreSQL and an S3-compatible server (`BERTH_TEST_S3_ENDPOINT`).
    PostgresS3,
}

/// The backend chosen by `BERTH_TEST_BACKEND` (`sqlite`, `postgres` or `postgres-s3`).
pub fn backend() -> Backend {
    match std::env::var("BERTH_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("postgres-s3") => Backend::PostgresS3,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("unknown BERTH_TEST_BACKEND {other:?}"),
    }
}

/// A short name derived from a data directory, for its database and bucket.
fn store_name(data_dir: &Path) -> String {
    format!(
        "berth-{}",
        &sha256(data_dir.to_string_lossy().as_bytes())[7..23]
    )
}

/// Settings that point a berth process at the chosen backends. Each data directory gets its
/// own PostgreSQL database and bucket, kept across restarts of the same directory.
fn backend_env(data_dir: &Path) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if matches!(backend(), Backend::Postgres | Backend::PostgresS3) {
        let admin = std::env::var("BERTH_TEST_POSTGRES_URL")
            .expect("this BERTH_TEST_BACKEND needs BERTH_TEST_POSTGRES_URL (tests/run sets both)");
        let name = store_name(data_dir).replace('-', "_");
        let out = Command::new("psql")
            .arg(&admin)
            .args([
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .output()
            .expect("run psql");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already exists"),
            "CREATE DATABASE failed: {err}"
        );
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        env.push(("BERTH_DATABASE_URL", format!("{base}/{name}")));
    }
    if backend() == Backend::PostgresS3 {
        let bucket = store_name(data_dir);
        // moto accepts unsigned requests, so the bucket is created with a plain PUT.
        let (status, _, body) = s3_request("PUT", &format!("/{bucket}"));
        assert!(
            status == 200 || status == 409,
            "create bucket: {status} {}",
            String::from_utf8_lossy(&body)
        );
        env.extend([
            ("BERTH_STORAGE_BACKEND", "s3".to_owned()),
            ("BERTH_STORAGE_BUCKET", bucket),
            ("BERTH_STORAGE_ENDPOINT", s3_endpoint()),
            ("BERTH_STORAGE_ALLOW_HTTP", "true".to_owned()),
            ("BERTH_STORAGE_REGION", "us-east-1".to_owned()),
            ("BERTH_STORAGE_ACCESS_KEY_ID", "test".to_owned()),
            ("BERTH_STORAGE_SECRET_ACCESS_KEY", "test".to_owned()),
            // S3's minimum, so test-sized blobs still span several parts.
            ("BERTH_STORAGE_PART_SIZE_MIB", "5".to_owned()),
        ]);
    }
    env
}

/// The S3-compatible test server, `http://127.0.0.1:PORT`.
pub fn s3_endpoint() -> String {
    std::env::var("BERTH_TEST_S3_ENDPOINT")
        .expect("BERTH_TEST_BACKEND=postgres-s3 needs BERTH_TEST_S3_ENDPOINT (tests/run sets it)")
}

/// A request to the S3 test server. moto does not check signatures but refuses anonymous
/// reads of private objects, so a syntactically valid (unchecked) Authorization is sent.
fn s3_request(method: &str, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    s3_request_with(method, path, &[])
}

fn s3_request_with(method: &str, path: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let endpoint = s3_endpoint();
    let addr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("S3 endpoint address");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=00\r\n\r\n",
        endpoint.trim_start_matches("http://"),
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    raw_http(addr, &request)
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) << 20 | N.fetch_add(1, Ordering::Relaxed)
}

fn wait_for_addr(log: &Path) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line)
                && let Some(addr) = v.get("addr").and_then(|a| a.as_str())
            {
                return addr.parse().expect("addr");
            }
        }
        assert!(Instant::now() < deadline, "berth did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A raw HTTP/1.1 exchange, for requests a well-behaved client library refuses to send (path
/// tricks). Send `Connection: close`. Returns status, lowercase headers and body.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf)
}

/// Sends `request` and closes the connection: a client that dies mid-body.
pub fn send_and_hang_up(addr: SocketAddr, request: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request).expect("write");
    let _ = s.shutdown(std::net::Shutdown::Both);
    // Give the server a moment to notice before the test looks at the result.
    std::thread::sleep(Duration::from_millis(200));
}

fn parse_response(buf: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP response head in {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, buf[end + 4..].to_vec())
}

/// Whether external client tests must run: in CI a missing tool is a failure, never a skip.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds an external tool, or explains why it is absent. Panics in CI when it is missing.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(),
            "{name} is required in CI but was not found on PATH"
        );
        eprintln!("SKIPPED: {name} not found on PATH (install it, or run tests/run)");
    }
    found
}
