//! End-to-end tests: the real `berth` binary over real sockets.
#![expect(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod admin_api;
mod api_basics;
mod api_blobs;
mod api_listing;
mod api_manifests;
mod auth;
mod browser;
mod cli;
mod client;
mod clients_oci;
mod connections;
mod crash;
mod events;
mod gc;
mod harness;
mod hub_pages;
mod keyless;
mod keys;
mod ldap;
mod linkage;
mod logins;
mod memory;
mod metrics;
mod namespaces;
mod nginx;
mod notation;
mod org_policy;
mod org_rules;
mod policies;
mod proxy;
mod quota_pages;
mod ratelimit;
mod real_clients;
mod replicas;
mod runtime_pull;
mod runtime_run;
mod scan_cli;
mod scan_findings;
mod scan_hub;
mod scan_policy;
mod scan_rhel;
mod scan_ui;
mod sigstore_js;
mod sso;
mod storage;
mod tag_history;
mod tls;
mod trust;
mod trust_cli;
mod ui;
mod vulndb;
