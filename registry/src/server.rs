//! Assembles the registry from configuration and serves it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::blob::{BlobError, BlobStore};
use crate::config::{Config, StorageBackend, redact_url};
use crate::meta::{MetaError, MetaStore, PostgresStore, SqliteStore};
use crate::service::{Limits, Registry};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
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
    let meta = open_meta(config).await?;
    let blobs = match config.storage.backend {
        StorageBackend::Filesystem => BlobStore::local(&config.storage_path())?,
    };
    let limits = Limits {
        max_manifest_bytes: config.server.max_manifest_bytes,
        referrers_page_size: config.server.referrers_page_size,
        upload_lease_ms: config.server.upload_lease_secs.saturating_mul(1000),
        body_idle_timeout: Duration::from_secs(config.server.body_idle_timeout_secs),
    };
    Ok(Registry::new(meta, blobs, limits))
}

/// Opens the metadata store the database URL names: `sqlite://PATH` or `postgres://...`.
pub async fn open_meta(config: &Config) -> Result<Arc<dyn MetaStore>, StartError> {
    let url = config.database_url();
    let opened: Result<Arc<dyn MetaStore>, MetaError> = if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        SqliteStore::open(path.as_ref(), config.database.max_connections)
            .await
            .map(|s| Arc::new(s) as Arc<dyn MetaStore>)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PostgresStore::open(&url, config.database.max_connections)
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

/// A bound, ready-to-run server.
pub struct Server {
    listener: TcpListener,
    registry: Registry,
    shutdown_timeout: Duration,
}

impl Server {
    /// Opens the stores and binds the listen address.
    pub async fn bind(config: &Config) -> Result<Self, StartError> {
        let registry = open_registry(config).await?;
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            listener,
            registry,
            shutdown_timeout: Duration::from_secs(config.server.shutdown_timeout_secs),
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish for up to the
    /// configured shutdown timeout.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = crate::api::router(self.registry);
        let listener = self.listener.tap_io(|tcp| {
            // Small responses (manifests, status codes) should not wait for Nagle's algorithm.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let stopping = Arc::new(tokio::sync::Notify::new());
        let notify = stopping.clone();
        let graceful = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            notify.notify_one();
        });
        let grace = self.shutdown_timeout;
        tokio::select! {
            served = graceful => served,
            () = async {
                stopping.notified().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(
                    timeout_secs = grace.as_secs(),
                    "requests still in flight at the shutdown timeout; exiting"
                );
                Ok(())
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
