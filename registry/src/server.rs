//! Assembles the registry from configuration and serves it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::either::Either;

use crate::api::auth::Gate;
use crate::api::ratelimit::RateLimits;
use crate::blob::{BlobError, BlobStore};
use crate::config::{Config, StorageBackend, redact_url};
use crate::connections::{Activity, Admission, Admitted, GOAWAY_GRACE, Settings};
use crate::meta::AccountStore;
use crate::meta::{MetaError, MetaStore, PostgresStore, SqliteStore};
use crate::metrics::{ConnectionMetrics, Metrics, TimedOut};
use crate::service::accounts::{AccountSettings, Accounts, AccountsError};
use crate::service::webhooks::{WebhookSetupError, Webhooks};
use crate::service::{Limits, PolicyRecord, Registry};
use crate::tls::{Tls, TlsError};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `[auth.ldap]` could not be set up.
    #[error(transparent)]
    Ldap(crate::ldap::SetupError),
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database URL names no supported database.
    #[error(
        "unsupported database URL {0:?}: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB"
    )]
    DatabaseUrl(String),
    /// The database could not be opened or migrated.
    #[error("cannot open the metadata database {url}")]
    Database {
        /// The URL, password redacted.
        url: String,
        /// Why.
        #[source]
        source: MetaError,
    },
    /// Blob storage could not be opened.
    #[error("cannot open blob storage")]
    Storage(#[from] BlobError),
    /// The storage settings are inconsistent.
    #[error("invalid storage settings: {0}")]
    StorageConfig(String),
    /// A trust policy or one of its key files is unusable.
    #[error("invalid trust policy: {0}")]
    Trust(String),
    /// Single sign-on could not be set up (`[auth.oidc]`).
    #[error("cannot set up single sign-on")]
    Oidc(#[source] crate::oidc::OidcError),
    /// The metrics settings are invalid.
    #[error("invalid metrics settings: {0}")]
    MetricsConfig(String),
    /// Authentication is off and the address is reachable from other machines.
    #[error(
        "refusing to serve {0} without authentication: anyone who can reach it could push and delete images. Turn authentication on ([auth] enabled = true, or BERTH_AUTH_ENABLED=true, then create an administrator with `berth admin user add NAME --admin --password-stdin`), listen on a loopback address (--listen 127.0.0.1:5000), or accept the risk explicitly with [server] allow_unauthenticated_network = true"
    )]
    Unprotected(SocketAddr),
    /// The token signing key file could not be read.
    #[error("cannot read the token signing key {path}")]
    SigningKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The accounts service could not start.
    #[error("cannot start authentication")]
    Accounts(#[from] AccountsError),
    /// The webhooks cannot be set up (a secret is missing).
    #[error("cannot set up webhooks")]
    Webhooks(#[from] WebhookSetupError),
    /// A pull-through cache's upstream cannot be set up.
    #[error("cannot set up a pull-through cache")]
    Proxy(#[from] crate::service::proxy::MirrorError),
    /// The TLS certificate or key cannot be used.
    #[error("cannot serve HTTPS")]
    Tls(#[from] TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Opens the metadata database and blob storage named by `config`.
pub async fn open_registry(config: &Config) -> Result<Registry, StartError> {
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let meta = open_meta(config, config.database.auto_migrate).await?;
    let blobs = open_blobs(config)?;
    let limits = Limits {
        max_manifest_bytes: config.server.max_manifest_bytes,
        referrers_page_size: config.server.referrers_page_size,
        upload_lease_ms: config.server.upload_lease_secs.saturating_mul(1000),
        body_idle_timeout: Duration::from_secs(config.server.body_idle_timeout_secs),
        tag_history: Duration::from_secs(config.gc.tag_history_secs),
        immutable: crate::service::immutable::ImmutableTags::new(&config.policies.immutable),
        retention: config.retention.policy.clone(),
        quotas: crate::service::quota::Quotas::new(&config.policies.quota),
        webhooks: Webhooks::new(&config.webhooks)?,
        trust: crate::service::trust::TrustPolicies::new(
            berth_trust::Policies::load(&config.trust.policy, std::path::Path::new(""))
                .map_err(|e| StartError::Trust(e.to_string()))?,
        ),
        scan: scan_settings(&config.scan),
        vuln: crate::service::vuln_policy::VulnPolicies::new(
            berth_scan::policy::Policies::load(&config.scan.policy)
                .map_err(|e| StartError::Trust(e.to_string()))?,
        ),
    };
    let mirrors = crate::service::proxy::Mirrors::open(&config.proxy)?;
    Ok(Registry::new(meta, blobs, limits).with_mirrors(mirrors))
}

/// `[scan]` as the service uses it.
fn scan_settings(c: &crate::config::ScanConfig) -> crate::service::scanner::ScanSettings {
    crate::service::scanner::ScanSettings {
        enabled: c.enabled,
        format: match c.sbom_format {
            crate::config::SbomFormat::Cyclonedx => berth_scan::sbom::Format::CycloneDx,
            crate::config::SbomFormat::Spdx => berth_scan::sbom::Format::Spdx,
        },
        lease: Duration::from_secs(c.lease_secs.max(1)),
        max_attempts: c.max_attempts.max(1),
        poll: Duration::from_millis(c.poll_interval_ms.max(10)),
        timeout: Duration::from_secs(c.timeout_secs.max(1)),
        max_unpacked_bytes: c.max_unpacked_mib.saturating_mul(1024 * 1024),
    }
}

/// Opens the blob storage `[storage]` names.
pub fn open_blobs(config: &Config) -> Result<BlobStore, StartError> {
    // Cloud clients talk TLS through rustls; pick its ring provider once per process
    // (installing twice is harmless, so the result is ignored).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s = &config.storage;
    if s.backend != StorageBackend::Filesystem && s.bucket.is_empty() {
        return Err(StartError::StorageConfig(format!(
            "storage.backend = {:?} needs storage.bucket",
            s.backend
        )));
    }
    let part_size = usize::try_from(s.part_size_mib.max(1) << 20).unwrap_or(16 << 20);
    let ttl = Duration::from_secs(s.redirect_ttl_secs.max(1));
    let store = match s.backend {
        StorageBackend::Filesystem => {
            if s.redirect {
                return Err(StartError::StorageConfig(
                    "storage.redirect needs a cloud backend (s3, gcs or azure)".into(),
                ));
            }
            return Ok(BlobStore::local(&config.storage_path())?);
        }
        StorageBackend::S3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(&s.bucket)
                .with_virtual_hosted_style_request(!s.path_style)
                .with_allow_http(s.allow_http);
            if !s.region.is_empty() {
                b = b.with_region(&s.region);
            }
            if !s.endpoint.is_empty() {
                b = b.with_endpoint(&s.endpoint);
            }
            if !s.access_key_id.is_empty() {
                b = b.with_access_key_id(&s.access_key_id);
            }
            if !s.secret_access_key.0.is_empty() {
                b = b.with_secret_access_key(&s.secret_access_key.0);
            }
            let store = Arc::new(b.build().map_err(BlobError::from)?);
            let blobs = BlobStore::cloud(store.clone(), part_size);
            if s.redirect {
                blobs.with_redirects(store, ttl)
            } else {
                blobs
            }
        }
        StorageBackend::Gcs => {
            let store = Arc::new(
                GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&s.bucket)
                    .build()
                    .map_err(BlobError::from)?,
            );
            let blobs = BlobStore::cloud(store.clone(), part_size);
            if s.redirect {
                blobs.with_redirects(store, ttl)
            } else {
                blobs
            }
        }
        StorageBackend::Azure => {
            let store = Arc::new(
                MicrosoftAzureBuilder::from_env()
                    .with_container_name(&s.bucket)
                    .with_allow_http(s.allow_http)
                    .build()
                    .map_err(BlobError::from)?,
            );
            let blobs = BlobStore::cloud(store.clone(), part_size);
            if s.redirect {
                blobs.with_redirects(store, ttl)
            } else {
                blobs
            }
        }
    };
    Ok(store)
}

/// Opens the metadata store the database URL names: `sqlite://PATH` or `postgres://...`,
/// migrating its schema when `migrate` is set.
pub async fn open_meta(config: &Config, migrate: bool) -> Result<Arc<dyn MetaStore>, StartError> {
    let url = config.database_url();
    let opened: Result<Arc<dyn MetaStore>, MetaError> = if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        SqliteStore::open(path.as_ref(), config.database.max_connections, migrate)
            .await
            .map(|s| Arc::new(s) as Arc<dyn MetaStore>)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PostgresStore::open(&url, config.database.max_connections, migrate)
            .await
            .map(|s| Arc::new(s) as Arc<dyn MetaStore>)
    } else {
        return Err(StartError::DatabaseUrl(redact_url(&url)));
    };
    opened.map_err(|source| StartError::Database {
        url: redact_url(&url),
        source,
    })
}

/// Opens the accounts service `[auth]` describes over `store`.
pub async fn open_accounts(
    config: &Config,
    store: Arc<dyn AccountStore>,
) -> Result<Accounts, StartError> {
    let a = &config.auth;
    let signing_key_pem = if a.signing_key_file.is_empty() {
        None
    } else {
        let path = PathBuf::from(&a.signing_key_file);
        Some(
            std::fs::read_to_string(&path)
                .map_err(|source| StartError::SigningKey { path, source })?,
        )
    };
    let settings = AccountSettings {
        issuer: a.issuer.clone(),
        service: a.service.clone(),
        token_ttl_secs: a.token_ttl_secs,
        refresh_ttl_secs: a.refresh_token_ttl_secs,
        signing_key_pem,
        key_activation_delay: Duration::from_secs(a.key_activation_delay_secs),
        allowances: crate::auth::throttle::Allowances {
            per_account_address: a.login_free_failures,
            per_address: a.login_address_free_failures,
            per_account: a.login_account_free_failures,
        },
        failure_window: Duration::from_secs(a.login_failure_window_secs),
        lockout: Duration::from_secs(a.login_lockout_secs),
        session_ttl: Duration::from_secs(a.session_ttl_secs),
        reserved_namespaces: config
            .proxy
            .upstream
            .iter()
            .map(|u| u.namespace.clone())
            .collect(),
        group_mappings: a
            .oidc
            .iter()
            .flat_map(|o| o.group.iter())
            .map(|g| (crate::service::identity::Provider::Oidc, g.clone()))
            .collect(),
        local_passwords: a.local_passwords,
    };
    let mut settings = settings;
    let directory = match &a.ldap {
        Some(ldap) => Some(Arc::new(
            crate::ldap::Directory::new(ldap.clone()).map_err(StartError::Ldap)?,
        )),
        None => None,
    };
    settings
        .group_mappings
        .extend(directory.iter().flat_map(|d| d.group_mappings()));
    Ok(Accounts::open(store, &settings)
        .await?
        .with_directory(directory))
}

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    tls: Option<Tls>,
    registry: Registry,
    gate: Option<Arc<Gate>>,
    rate_limits: Option<Arc<RateLimits>>,
    trust_forwarded: bool,
    shutdown_timeout: Duration,
    drain: Duration,
    upload_ttl: Duration,
    cleanup_interval: Duration,
    gc: crate::config::GcConfig,
    scrub: crate::config::ScrubConfig,
    retention: crate::config::RetentionConfig,
    metrics: Arc<Metrics>,
    /// `/metrics` is served (`[metrics] enabled`).
    scrape: bool,
    /// The bearer token scrapers send, if any.
    scrape_token: Option<String>,
    /// The separate `/metrics` listener, if `[metrics] listen` names one.
    metrics_listener: Option<TcpListener>,
    audit: crate::config::AuditConfig,
    webhook_poll: Duration,
    /// Scan workers to run (`[scan] enabled` and `workers`).
    scan_workers: u32,
    /// The advisory sources `serve` refreshes, and how often (`[scan] vulndb_refresh_secs`).
    vulndb_refresh: Option<(Vec<crate::service::vulndb::Source>, Duration)>,
    /// How often the token signing keys are re-read.
    key_reload: Duration,
    /// The limits on open connections.
    admission: Admission,
    /// How each connection is served.
    settings: Settings,
}

impl Server {
    /// Loads the TLS certificate (when configured), opens the stores and binds the listen
    /// address.
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        // First: a bad certificate path is a typo to report before touching any storage.
        let tls = Tls::from_config(&config.tls)?;
        let addr = config.server.listen;
        if !config.auth.enabled
            && !addr.ip().is_loopback()
            && !config.server.allow_unauthenticated_network
        {
            return Err(StartError::Unprotected(addr));
        }
        let registry = open_registry(config).await?;
        // The audit log's record of which policies are in force (see `record_policies`).
        let policies = serde_json::json!({
            "immutable": config.policies.immutable,
            "quota": config.policies.quota,
            "retention": config.retention.policy,
            "ratelimit": config.ratelimit,
        });
        match registry.record_policies(policies).await {
            Ok(PolicyRecord::Changed) => {
                tracing::info!("the hub policies changed; recorded in the audit log");
            }
            // The first record of a new registry is no news to its operator.
            Ok(PolicyRecord::First | PolicyRecord::Unchanged) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record the hub policies in the audit log"),
        }
        let rate_limits = RateLimits::new(&config.ratelimit).map(Arc::new);
        let gate = if config.auth.enabled {
            let accounts = open_accounts(config, registry.account_store()).await?;
            Some(Arc::new(Gate {
                accounts: Arc::new(accounts),
                realm: config.auth.realm.clone(),
                trust_forwarded: config.server.trust_forwarded_headers,
                rate_limits: rate_limits.clone(),
                jwks_max_age_secs: config.auth.key_reload_secs,
                oidc: match &config.auth.oidc {
                    Some(o) => Some(Arc::new(
                        crate::oidc::Oidc::new(o).map_err(StartError::Oidc)?,
                    )),
                    None => None,
                },
            }))
        } else {
            None
        };
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let metrics_listener = match config.metrics.listen_addr() {
            Err(e) => return Err(StartError::MetricsConfig(e)),
            Ok(Some(addr)) if config.metrics.enabled => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            Ok(_) => None,
        };
        let token = &config.metrics.token.0;
        let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
        let admission = admission(config, &metrics);
        if config.scan.vulndb_refresh_secs > 0 && config.scan.vulndb_sources.is_empty() {
            tracing::warn!(
                "scan.vulndb_refresh_secs is set but scan.vulndb_sources is empty: nothing to refresh"
            );
        }
        Ok(Self {
            listener,
            tls,
            registry,
            gate,
            rate_limits,
            trust_forwarded: config.server.trust_forwarded_headers,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_secs),
            drain: Duration::from_secs(config.server.shutdown_drain_secs),
            upload_ttl: Duration::from_secs(config.server.upload_ttl_secs),
            gc: config.gc.clone(),
            scrub: config.scrub.clone(),
            retention: config.retention.clone(),
            metrics,
            scrape: config.metrics.enabled,
            scrape_token: (!token.is_empty()).then(|| token.clone()),
            metrics_listener,
            audit: config.audit.clone(),
            webhook_poll: Duration::from_millis(config.webhooks.poll_interval_ms),
            scan_workers: if config.scan.enabled {
                config.scan.workers
            } else {
                0
            },
            vulndb_refresh: (config.scan.vulndb_refresh_secs > 0
                && !config.scan.vulndb_sources.is_empty())
            .then(|| {
                (
                    config
                        .scan
                        .vulndb_sources
                        .iter()
                        .map(|s| crate::service::vulndb::Source::parse(s))
                        .collect(),
                    Duration::from_secs(config.scan.vulndb_refresh_secs),
                )
            }),
            key_reload: Duration::from_secs(config.auth.key_reload_secs.max(1)),
            cleanup_interval: Duration::from_secs(
                config.server.upload_cleanup_interval_secs.max(1),
            ),
            admission,
            settings: Settings::from_config(&config.server, &config.tls),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The address of the separate `/metrics` listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Whether the port speaks HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then shuts down without dropping a request:
    ///
    /// 1. drain: `/readyz` reports not-ready and every HTTP/1 response carries
    ///    `Connection: close`, while the listener still accepts (load balancers notice and
    ///    stop routing here);
    /// 2. the listener closes; open connections stay up until their client closes them or
    ///    their next request is answered (with `Connection: close`). Idle keep-alive
    ///    connections are never closed from this side, since a client may be sending a request
    ///    on one at that very moment. HTTP/2 connections get a GOAWAY instead, which tells the
    ///    client exactly which requests were taken, so closing them races nothing;
    /// 3. after the shutdown timeout, whatever is left is dropped.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let ready = Arc::new(AtomicBool::new(true));
        let ui = crate::ui::router(
            self.registry.clone(),
            self.gate.clone(),
            self.trust_forwarded,
        );
        // `/metrics` on the main listener is for the token or administrators when either is
        // configured; a separate listener has no accounts, only the token (if any).
        let endpoint = |admins| crate::api::metrics::Endpoint {
            metrics: self.metrics.clone(),
            registry: self.registry.clone(),
            token: self.scrape_token.clone(),
            admins,
            accounts: self.gate.as_ref().map(|g| g.accounts.clone()),
        };
        let (scrape_here, scrape_apart) = match (self.scrape, self.metrics_listener) {
            (false, _) => (None, None),
            (true, None) => (Some(endpoint(self.gate.clone())), None),
            (true, Some(listener)) => (None, Some((listener, endpoint(None)))),
        };
        let app = crate::api::router(crate::api::RouterParts {
            registry: self.registry.clone(),
            gate: self.gate.clone(),
            ready: ready.clone(),
            pages: ui,
            rate_limits: self.rate_limits.clone(),
            metrics: self.metrics.clone(),
            scrape: scrape_here,
            trust_forwarded: self.trust_forwarded,
        });
        let _metrics_server = scrape_apart.map(|(listener, endpoint)| {
            AbortOnDrop(tokio::spawn(serve_metrics(
                listener,
                crate::api::metrics::router(endpoint),
            )))
        });
        let _collector = self.gc.enabled.then(|| {
            AbortOnDrop(tokio::spawn(collect_garbage_forever(
                self.registry.clone(),
                self.gc.clone(),
                self.metrics.clone(),
            )))
        });
        let _scrubber = self.scrub.enabled.then(|| {
            AbortOnDrop(tokio::spawn(scrub_forever(
                self.registry.clone(),
                self.scrub.clone(),
                self.metrics.clone(),
            )))
        });
        let _retention = AbortOnDrop(tokio::spawn(retention_forever(
            self.registry.clone(),
            self.retention.clone(),
            self.metrics.clone(),
        )));
        // Always running: organizations may add webhooks of their own at any time.
        let _webhooks = {
            let metrics = self.metrics.clone();
            AbortOnDrop(tokio::spawn(crate::service::webhooks::deliver_forever(
                self.registry.clone(),
                self.webhook_poll,
                move |tally| metrics.webhook_deliveries(tally),
            )))
        };
        let _audit = (self.audit.retention_days > 0).then(|| {
            AbortOnDrop(tokio::spawn(prune_audit_forever(
                self.registry.clone(),
                Duration::from_secs(self.audit.retention_days.saturating_mul(86_400)),
            )))
        });
        let _keys = self.gate.as_ref().map(|gate| {
            AbortOnDrop(tokio::spawn(reload_keys_forever(
                gate.accounts.clone(),
                self.key_reload,
            )))
        });
        // Scan workers hear of the shutdown and give their jobs back before the process ends.
        let (stop_scans, scans_stopped) = watch::channel(false);
        let mut scanners = tokio::task::JoinSet::new();
        for worker in 0..self.scan_workers {
            let (registry, stop, metrics) = (
                self.registry.clone(),
                scans_stopped.clone(),
                self.metrics.clone(),
            );
            scanners.spawn(async move {
                registry
                    .scan_forever(stop, worker == 0, move |end, took| {
                        metrics.scan_ended(end, took)
                    })
                    .await;
            });
        }
        let _advisories = self.vulndb_refresh.map(|(sources, every)| {
            let registry = self.registry.clone();
            AbortOnDrop(tokio::spawn(async move {
                registry.refresh_advisories_forever(sources, every).await;
            }))
        });
        let _janitor = AbortOnDrop(tokio::spawn(expire_uploads_forever(
            self.registry,
            self.upload_ttl,
            self.cleanup_interval,
        )));
        let _reloader = self
            .tls
            .clone()
            .map(|tls| AbortOnDrop(tokio::spawn(tls.reload_forever())));
        let (closed_tx, closed) = watch::channel(false);
        let drain = self.drain;
        let stop_accepting = async move {
            shutdown.await;
            stop_scans.send_replace(true);
            ready.store(false, Ordering::Release);
            tracing::info!(drain_secs = drain.as_secs(), "draining before shutdown");
            tokio::time::sleep(drain).await;
        };
        let serving = Serving {
            tls: self.tls.clone(),
            app,
            closed,
            settings: self.settings,
            metrics: self.metrics.connections.clone(),
        };
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(stop_accepting);
        loop {
            tokio::select! {
                () = &mut stop_accepting => break,
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(c) => c,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    match self.admission.admit(peer.ip()) {
                        Ok(admitted) => {
                            connections.spawn(serve_connection(
                                tcp,
                                peer,
                                serving.clone(),
                                admitted,
                            ));
                        }
                        Err(_) => refuse(tcp, serving.tls.is_none()),
                    }
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.listener);
        closed_tx.send_replace(true);
        tracing::info!(
            open = connections.len(),
            "stopped accepting; finishing open connections"
        );
        let finished = tokio::time::timeout(self.shutdown_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        // Each worker gives its job back at once; the bound covers a database that hangs.
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while scanners.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                open = connections.len(),
                timeout_secs = self.shutdown_timeout.as_secs(),
                "connections still open at the shutdown timeout; exiting"
            );
        }
        Ok(())
    }
}

/// The connection limits `[server]` sets, `max_connections` lowered to fit the open-file
/// limit (which is raised to its maximum first).
fn admission(config: &Config, metrics: &Metrics) -> Admission {
    let s = &config.server;
    let budget = crate::connections::fd_budget(s.max_connections);
    let fmt = |limit: Option<u64>| limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
    if budget.limit != budget.started_with {
        tracing::info!(
            from = %fmt(budget.started_with),
            to = %fmt(budget.limit),
            "raised the open-file limit"
        );
    }
    if budget.max_connections < s.max_connections as usize {
        tracing::warn!(
            configured = s.max_connections,
            max_connections = budget.max_connections,
            open_file_limit = %fmt(budget.limit),
            "server.max_connections lowered to fit the open-file limit (raise it with ulimit -n or LimitNOFILE)"
        );
    }
    let per_address = s.max_connections_per_address as usize;
    if s.trust_forwarded_headers && per_address > 0 && per_address < budget.max_connections {
        tracing::warn!(
            max_connections_per_address = per_address,
            "behind a reverse proxy every connection comes from the proxy's address: \
             server.max_connections_per_address caps the proxy (0 turns it off)"
        );
    }
    tracing::info!(
        max_connections = budget.max_connections,
        max_connections_per_address = per_address,
        "connection limits"
    );
    Admission::new(
        budget.max_connections,
        per_address,
        metrics.connections.clone(),
    )
}

/// Closes a connection beyond the limits. Plain HTTP first gets a bare `503` (written only
/// if the socket takes it at once: the accept loop never waits on a refused client); TLS
/// is just closed, as a response would need a handshake.
fn refuse(tcp: TcpStream, plain: bool) {
    if plain {
        // Read what already arrived, so closing sends FIN rather than RST (which could
        // discard the 503 before the client reads it).
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            if !matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {
                break;
            }
        }
        let _ = tcp.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n",
        );
    }
}

/// What the server knows about a request's connection, available to handlers as a request
/// extension.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address (the proxy's, behind a reverse proxy).
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// What every connection is served with.
#[derive(Clone)]
struct Serving {
    tls: Option<Tls>,
    app: axum::Router,
    /// Turns true when the listener has closed.
    closed: watch::Receiver<bool>,
    settings: Settings,
    metrics: ConnectionMetrics,
}

/// Serves one accepted connection: the TLS handshake first when HTTPS is on, then HTTP/2
/// when ALPN chose it, else HTTP/1.1 until the client closes the connection or a response
/// says `Connection: close`. The connection counts against the limits until `_admitted`
/// drops with it.
async fn serve_connection(tcp: TcpStream, peer: SocketAddr, serving: Serving, _admitted: Admitted) {
    // Small responses (manifests, status codes) should not wait for Nagle's algorithm.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let (io, h2) = match &serving.tls {
        None => (Either::Left(tcp), false),
        Some(tls) => match tls.accept(tcp).await {
            Ok(stream) => {
                let h2 = crate::tls::is_h2(&stream);
                (Either::Right(stream), h2)
            }
            Err(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut {
                    serving.metrics.timed_out(TimedOut::TlsHandshake);
                }
                // Scanners, plain-HTTP clients and clients that distrust the certificate.
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    let info = ConnInfo {
        peer,
        tls: serving.tls.is_some(),
    };
    // HTTP/2 requests are tracked for the header and idle timeouts hyper lacks there.
    let activity = h2.then(Activity::default);
    let service = {
        let app = serving.app.clone();
        let hsts = serving.settings.hsts.clone();
        let activity = activity.clone();
        // Cheaper than `Router::layer`, which rebuilds the router for every connection.
        hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(info);
            let in_progress = activity.as_ref().map(Activity::start);
            let response = tower::ServiceExt::oneshot(app.clone(), request);
            let hsts = hsts.clone();
            async move {
                let mut response = response.await?;
                if let Some(hsts) = hsts {
                    response
                        .headers_mut()
                        .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts);
                }
                // The request stays in progress until its response body is sent or dropped.
                Ok::<_, Infallible>(match in_progress {
                    None => response,
                    Some(in_progress) => response.map(|body| {
                        axum::body::Body::new(body.map_frame(move |frame| {
                            let _held = &in_progress;
                            frame
                        }))
                    }),
                })
            }
        })
    };
    let io = hyper_util::rt::TokioIo::new(io);
    let served = match activity {
        Some(activity) => {
            let conn = serving.settings.http2().serve_connection(io, service);
            tokio::pin!(conn);
            let settings = &serving.settings;
            tokio::select! {
                served = conn.as_mut() => served,
                () = listener_closed(serving.closed.clone()) => {
                    // Requests in flight finish; the GOAWAY names the last one taken, so the
                    // client knows which it may safely send again on a new connection.
                    conn.as_mut().graceful_shutdown();
                    close_http2(conn, &activity).await
                }
                why = activity.expired(settings.header_read_timeout, settings.idle_timeout) => {
                    serving.metrics.timed_out(why);
                    tracing::debug!(%peer, reason = why.as_str(), "closing an HTTP/2 connection");
                    conn.as_mut().graceful_shutdown();
                    close_http2(conn, &activity).await
                }
            }
        }
        None => {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                // A client must send its request head within this time (slowloris
                // protection); it also ends kept-alive connections left idle as long.
                .header_read_timeout(serving.settings.header_read_timeout)
                .serve_connection(io, service);
            tokio::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = listener_closed(serving.closed.clone()) => {
                    // A kept-alive connection waiting for its next request closes now rather
                    // than holding the shutdown for the header timeout; one with a request in
                    // flight closes once its response is sent.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if served.as_ref().is_err_and(hyper::Error::is_timeout) {
                serving.metrics.timed_out(TimedOut::RequestHead);
            }
            served
        }
    };
    if let Err(e) = served {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Finishes an HTTP/2 connection after its GOAWAY: the requests in progress complete, then
/// the client has [`GOAWAY_GRACE`] to close; one that stays silent (never answers the
/// GOAWAY's ping, never finished its preface) is dropped.
async fn close_http2<F>(conn: std::pin::Pin<&mut F>, activity: &Activity) -> hyper::Result<()>
where
    F: Future<Output = hyper::Result<()>>,
{
    tokio::select! {
        served = conn => served,
        () = activity.quiet_for(GOAWAY_GRACE) => Ok(()),
    }
}

/// Completes when the listener has closed (or the server is gone).
async fn listener_closed(mut closed: watch::Receiver<bool>) {
    let _ = closed.wait_for(|closed| *closed).await;
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `/metrics` alone on its own listener (plain HTTP/1.1, no TLS) until aborted.
async fn serve_metrics(listener: TcpListener, app: axum::Router) {
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}

/// Removes expired upload sessions every `interval`, on every replica (each session is taken
/// by exactly one).
async fn expire_uploads_forever(registry: Registry, ttl: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match registry.expire_uploads(ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "removed expired upload sessions"),
            Err(e) => tracing::warn!(error = %e, "could not remove expired upload sessions"),
        }
    }
}

/// Runs a garbage-collection pass every `gc.interval_secs` (the first one after one interval,
/// so that starting a replica is not also a pass).
async fn collect_garbage_forever(
    registry: Registry,
    gc: crate::config::GcConfig,
    metrics: Arc<Metrics>,
) {
    let interval = Duration::from_secs(gc.interval_secs.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        match registry
            .collect_garbage_recorded(
                &gc.options(false),
                crate::meta::maintenance::GcRunner::Serve,
            )
            .await
        {
            Ok(report) => metrics.gc.succeeded(&report, started.elapsed()),
            Err(e) => {
                metrics.gc.failed(started.elapsed());
                tracing::warn!(error = %e, "garbage collection failed; retried next interval");
            }
        }
    }
}

/// Records pulled tags every `retention.pulls_flush_secs` and, when enabled, applies the
/// retention policies every `retention.interval_secs`.
async fn retention_forever(
    registry: Registry,
    retention: crate::config::RetentionConfig,
    metrics: Arc<Metrics>,
) {
    let flush = Duration::from_secs(retention.pulls_flush_secs.max(1));
    let mut flushes = tokio::time::interval_at(tokio::time::Instant::now() + flush, flush);
    flushes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let every = Duration::from_secs(retention.interval_secs.max(1));
    let mut runs = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    runs.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Organizations may set rules of their own at any time: an enabled schedule runs even
    // while the configuration has no policy.
    let scheduled = retention.enabled;
    loop {
        tokio::select! {
            _ = flushes.tick() => {
                if let Err(e) = registry.flush_pulls().await {
                    tracing::warn!(error = %e, "could not record pulls; retried next interval");
                }
            }
            _ = runs.tick(), if scheduled => {
                let started = std::time::Instant::now();
                match registry.apply_retention(false).await {
                    Ok(report) => metrics.retention.succeeded(&report, started.elapsed()),
                    Err(e) => {
                        metrics.retention.failed(started.elapsed());
                        tracing::warn!(error = %e, "retention failed; retried next interval");
                    }
                }
            }
        }
    }
}

/// Deletes audit entries (and finished webhook deliveries) older than `keep`, hourly, on
/// every replica (a second replica's pass finds nothing left to delete).
async fn prune_audit_forever(registry: Registry, keep: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match registry.prune_audit(keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "pruned old audit entries"),
            Err(e) => tracing::warn!(error = %e, "could not prune the audit log"),
        }
    }
}

/// Re-reads the token signing keys every `interval`, so a rotation made in the database
/// (`berth admin key rotate`) reaches this replica without a restart.
async fn reload_keys_forever(
    accounts: Arc<crate::service::accounts::Accounts>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = accounts.keys().reload().await {
            tracing::warn!(error = %e, "cannot re-read the token signing keys");
        }
    }
}

/// Runs a scrub pass of `scrub.items_per_pass` items every `scrub.interval_secs`.
async fn scrub_forever(
    registry: Registry,
    scrub: crate::config::ScrubConfig,
    metrics: Arc<Metrics>,
) {
    let interval = Duration::from_secs(scrub.interval_secs.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let options = crate::service::scrub::ScrubOptions {
        limit: Some(scrub.items_per_pass.max(1)),
        restart: false,
    };
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        match registry.scrub(&options).await {
            Ok(report) => metrics.scrub.succeeded(&report, started.elapsed()),
            Err(e) => {
                metrics.scrub.failed(started.elapsed());
                tracing::warn!(error = %e, "scrub failed; resumed next interval");
            }
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
    // Give the log line a moment to flush before the runtime winds down.
    tokio::time::sleep(Duration::from_millis(10)).await;
}
