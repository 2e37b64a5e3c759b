//! berth's registry: the OCI Distribution Spec v1.1 and Docker Registry HTTP API V2 over
//! metadata in SQL and blobs in object storage.
//!
//! Layers, each depending only on those below it:
//!
//! ```text
//! api/, ui/  HTTP (the registry API; the web UI's pages): parse a request into typed values,
//!            call one service method, render
//! service/   the registry's rules; the only layer touching both metadata and blobs
//! meta/      metadata in SQL behind the MetaStore trait (SQLite, PostgreSQL)
//! blob/      content-addressed bytes over object_store; the key layout in one enum
//! upstream/  a client for other registries (the sources of pull-through caches)
//! domain/    names, tags, digests, references, manifests; no I/O
//! ```
//!
//! `config`, `telemetry`, `metrics`, `tls`, `connections` and `server` assemble these into a
//! running process.

pub mod api;
pub mod auth;
pub mod blob;
pub mod config;
pub mod connections;
pub mod domain;
pub mod ldap;
pub mod meta;
pub mod metrics;
pub mod oidc;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod upstream;
