//! Registry API helpers for tests: push blobs, manifests and whole images.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Berth, random_bytes, sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A blob as a descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    pub digest: String,
    pub size: usize,
    pub media_type: &'static str,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

/// A pushed manifest.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: String,
    pub size: usize,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Pushed {
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size })
    }
}

/// Asserts a status and, for errors, that the body is the spec's envelope with `code`.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(resp.status(), status, "unexpected status");
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let body: Value = resp.json().await.expect("error body is JSON");
    let codes: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| e["code"].as_str().expect("code"))
        .collect();
    assert!(codes.contains(&code), "expected {code} in {body}");
    body
}

impl Berth {
    /// Pushes `data` with a single `POST ?digest=`.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> Blob {
        self.push_blob_typed(repo, data, OCI_LAYER).await
    }

    pub async fn push_blob_typed(&self, repo: &str, data: &[u8], media_type: &'static str) -> Blob {
        let digest = sha256(data);
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .body(data.to_vec())
            .send()
            .await
            .expect("push blob");
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{:?}",
            resp.text().await
        );
        Blob {
            digest,
            size: data.len(),
            media_type,
        }
    }

    /// Starts an upload session; returns its Location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        resp.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned()
    }

    /// `PUT` a manifest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("put manifest")
    }

    /// Pushes a small random image (config and `layers` layers) tagged `tag`.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: u64, layers: usize) -> Pushed {
        let config = self
            .push_blob_typed(repo, format!(r#"{{"seed":{seed}}}"#).as_bytes(), OCI_CONFIG)
            .await;
        let mut layer_descs = Vec::new();
        for i in 0..layers {
            let data = random_bytes(1000 + i, seed * 100 + i as u64);
            layer_descs.push(self.push_blob(repo, &data).await.descriptor());
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": layer_descs,
        });
        self.push_manifest_json(repo, tag, OCI_MANIFEST, &manifest)
            .await
    }

    /// Pushes a JSON manifest under `reference`, asserting success.
    pub async fn push_manifest_json(
        &self,
        repo: &str,
        reference: &str,
        media_type: &'static str,
        manifest: &Value,
    ) -> Pushed {
        let bytes = serde_json::to_vec(manifest).expect("json");
        let resp = self.put_manifest(repo, reference, media_type, &bytes).await;
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{:?}",
            resp.text().await
        );
        let digest = sha256(&bytes);
        assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
        Pushed {
            digest,
            size: bytes.len(),
            media_type,
            bytes,
        }
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.expect("get")
    }

    pub async fn head(&self, path: &str) -> Response {
        self.http.head(self.url(path)).send().await.expect("head")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .send()
            .await
            .expect("delete")
    }
}
