//! berth's container runtime: images pulled from any registry into a local content store,
//! each layer unpacked once and shared.
//!
//! Modules, each depending only on those above it:
//!
//! ```text
//! unpack        path-safe layer extraction with OCI whiteouts as overlayfs whiteouts
//! store         the root directory: verified blobs, unpacked layers, the image index
//! credentials   registry logins (berth's file, then Docker's config.json)
//! pull          choose the platform, download in parallel with resumption, verify, unpack
//! ```

pub mod credentials;
pub mod pull;
pub mod store;
pub mod unpack;

pub use oci_client::Reference;
pub use oci_client::secrets::RegistryAuth;
