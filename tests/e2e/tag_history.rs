//! Tag history and restores: every tag change is recorded, a moved or deleted tag is put
//! back through the CLI and the JSON API, garbage collection keeps what the history window
//! can still restore and lets it go afterwards.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Berth;

impl Berth {
    /// Runs `berth ARGS` on this server's database and storage: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(args)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run berth");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn tag_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let resp = self.head(&format!("/v2/{repo}/manifests/{tag}")).await;
        (resp.status() == StatusCode::OK).then(|| {
            resp.headers()["docker-content-digest"]
                .to_str()
                .expect("digest")
                .to_owned()
        })
    }

    async fn restore_api(&self, repo: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/tag-restore/{repo}")))
            .json(&body)
            .send()
            .await
            .expect("restore");
        let status = resp.status();
        (status, resp.json().await.expect("JSON answer"))
    }
}

fn actions(history: &Value) -> Vec<(String, String)> {
    history["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| {
            (
                e["tag"].as_str().expect("tag").to_owned(),
                e["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn moved_and_deleted_tags_are_restored_and_kept_until_their_history_expires() {
    let b = Berth::start_with(&[("BERTH_GC_ENABLED", "false")]);
    let repo = "history/app";
    let one = b.push_image(repo, "v1", 1, 1).await;
    let two = b.push_image(repo, "v1", 2, 1).await;
    let three = b.push_image(repo, "stable", 3, 1).await;
    let del = b.delete(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);

    // The history, newest first, through the API (all tags, then one).
    let all: Value = b
        .get(&format!("/api/v1/tag-history/{repo}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        actions(&all),
        [
            ("v1", "delete"),
            ("stable", "create"),
            ("v1", "move"),
            ("v1", "create")
        ]
        .map(|(t, a)| (t.to_owned(), a.to_owned()))
    );
    let v1: Value = b
        .get(&format!("/api/v1/tag-history/{repo}?tag=v1&n=2"))
        .await
        .json()
        .await
        .expect("json");
    let entries = v1["history"].as_array().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["old_digest"], two.digest.as_str());
    assert_eq!(entries[0]["new_digest"], Value::Null);
    assert_eq!(entries[1]["old_digest"], one.digest.as_str());
    assert_eq!(entries[1]["new_digest"], two.digest.as_str());
    let before = entries[1]["id"].as_i64().expect("id");
    let older: Value = b
        .get(&format!(
            "/api/v1/tag-history/{repo}?tag=v1&before={before}"
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(actions(&older), [("v1".to_owned(), "create".to_owned())]);
    let missing = b.get("/api/v1/tag-history/history/none").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let bad = b
        .get(&format!("/api/v1/tag-history/{repo}?tag=no%20way"))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The CLI shows the same.
    let (ok, out, err) = b.cli(&["tag-history", &format!("{repo}:v1")], &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[1].contains("delete") && lines[2].contains("move"),
        "{out}"
    );

    // Garbage collection keeps what the history can restore, untagged or not.
    let untagged_policy = [("BERTH_GC_COLLECT_UNTAGGED", "true")];
    let report = b.gc(&["--review-delay", "0"], &untagged_policy);
    assert_eq!(report["manifests"], json!([]), "{report}");
    assert_eq!(report["blobs"], json!([]), "{report}");

    // Restore the deleted tag with the CLI (to what it pointed at last), while the server
    // runs: it serves the restored tag at once.
    let (ok, out, err) = b.cli(&["tag-restore", &format!("{repo}:v1")], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&two.digest) && out.contains("was deleted"),
        "{out}"
    );
    assert_eq!(b.tag_digest(repo, "v1").await, Some(two.digest.clone()));

    // Back to the first manifest through the API; the restore is itself in the history.
    let (status, body) = b
        .restore_api(repo, json!({"tag": "v1", "digest": one.digest}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"tag": "v1", "digest": one.digest, "previous": two.digest, "changed": true})
    );
    assert_eq!(b.tag_digest(repo, "v1").await, Some(one.digest.clone()));
    let (status, body) = b
        .restore_api(repo, json!({"tag": "v1", "digest": one.digest}))
        .await;
    assert_eq!((status, &body["changed"]), (StatusCode::OK, &json!(false)));

    // What the tag never pointed at, bad input and a deleted manifest are refused clearly.
    let (status, body) = b
        .restore_api(repo, json!({"tag": "v1", "digest": three.digest}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "not_restorable");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("did not point at")
    );
    let (status, _) = b
        .restore_api(repo, json!({"tag": "v1", "digest": "sha256:nope"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = b.restore_api(repo, json!({"tags": "v1"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let del = b
        .delete(&format!("/v2/{repo}/manifests/{}", three.digest))
        .await;
    assert_eq!(del.status(), StatusCode::ACCEPTED);
    let (ok, _, err) = b.cli(&["tag-restore", &format!("{repo}:stable")], &[]);
    assert!(!ok);
    assert!(err.contains("was deleted"), "{err}");
    let (ok, _, err) = b.cli(&["tag-restore", repo], &[]);
    assert!(!ok && err.contains("REPOSITORY:TAG"), "{err}");

    // Once the window has passed, the history goes and the manifest v1 left with it: the
    // pass that prunes the history reviews it, the next one removes it.
    let expired = [
        ("BERTH_GC_COLLECT_UNTAGGED", "true"),
        ("BERTH_GC_TAG_HISTORY_SECS", "0"),
    ];
    let mut gone = BTreeSet::new();
    for _ in 0..3 {
        let report = b.gc(&["--review-delay", "0"], &expired);
        for m in report["manifests"].as_array().expect("manifests") {
            gone.insert(m["digest"].as_str().expect("digest").to_owned());
        }
    }
    assert_eq!(gone, BTreeSet::from([two.digest.clone()]));
    assert_eq!(b.tag_digest(repo, "v1").await, Some(one.digest.clone()));
    let (ok, out, _) = b.cli(
        &["tag-history", repo, "--json"],
        &[("BERTH_GC_TAG_HISTORY_SECS", "0")],
    );
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).expect("json"),
        json!([])
    );
}

/// `berth retention --config FILE ARGS`: (success, stdout, stderr).
fn retention(b: &Berth, config: &str, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).expect("write config");
    let mut all = vec!["retention", "--config", file.to_str().expect("path")];
    all.extend_from_slice(args);
    b.cli(&all, &[])
}

fn deleted(report: &str) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(report).expect("json");
    v["deleted"]
        .as_array()
        .expect("deleted")
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["repository"].as_str().unwrap(),
                e["tag"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn retention_keeps_newest_recent_pulled_and_matching_tags_and_deletes_the_rest() {
    let b = Berth::start_with(&[
        ("BERTH_GC_ENABLED", "false"),
        ("BERTH_RETENTION_PULLS_FLUSH_SECS", "1"),
    ]);
    for (i, tag) in ["v1", "v2", "v3", "v4", "latest", "dev-1", "dev-2"]
        .iter()
        .enumerate()
    {
        b.push_image("ret/app", tag, 100 + i as u64, 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for (i, tag) in ["a", "b"].iter().enumerate() {
        b.push_image("ret/app/sub", tag, 200 + i as u64, 1).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    b.push_image("other/x", "old", 300, 1).await;
    // v1 is pulled (by digest, as containerd does after resolving the tag): recorded within
    // the flush interval.
    let v1 = b.tag_digest("ret/app", "v1").await.expect("v1");
    let pulled = b.get(&format!("/v2/ret/app/manifests/{v1}")).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    let config = r#"
[[retention.policy]]
scope = "ret"
keep_newest = 2
keep_pulled_within_days = 1
keep_tags = ["latest", "release-*"]

[[retention.policy]]
scope = "ret/app/sub"
keep_newest = 1
"#;
    let expected: BTreeSet<String> = ["ret/app:v2", "ret/app:v3", "ret/app:v4", "ret/app/sub:a"]
        .map(str::to_owned)
        .into();
    let (ok, dry, err) = retention(&b, config, &["--dry-run", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(deleted(&dry), expected, "{dry}");
    assert!(
        b.tag_digest("ret/app", "v2").await.is_some(),
        "a dry run deletes nothing"
    );

    let (ok, out, err) = retention(&b, config, &["--json"]);
    assert!(ok, "{err}");
    assert_eq!(deleted(&out), expected);
    for (repo, tag) in [("ret/app", "v2"), ("ret/app", "v4"), ("ret/app/sub", "a")] {
        assert!(
            b.tag_digest(repo, tag).await.is_none(),
            "{repo}:{tag} still there"
        );
    }
    for (repo, tag) in [
        ("ret/app", "v1"),
        ("ret/app", "latest"),
        ("ret/app", "dev-2"),
        ("ret/app/sub", "b"),
        ("other/x", "old"),
    ] {
        assert!(
            b.tag_digest(repo, tag).await.is_some(),
            "{repo}:{tag} deleted"
        );
    }
    // Deleted tags are in the history and restorable.
    let (ok, _, err) = b.cli(&["tag-restore", "ret/app:v3"], &[]);
    assert!(ok, "{err}");
    assert!(b.tag_digest("ret/app", "v3").await.is_some());

    // A restore counts as a push: v3 is now among the two newest, so dev-1 is not.
    let (ok, out, _) = retention(&b, config, &[]);
    assert!(ok);
    assert!(
        out.contains("deleted ret/app:dev-1") && out.contains("1 of 6 tags deleted"),
        "{out}"
    );

    // Policies that would delete everything, or name nothing valid, are refused.
    let (ok, _, err) = retention(
        &b,
        "[[retention.policy]]\nscope = \"ret\"\n",
        &["--dry-run"],
    );
    assert!(!ok && err.contains("no keep_ rule"), "{err}");
    let bad = "[[retention.policy]]\nscope = \"ret\"\nkeep_tags = [\"[\"]\n";
    let (ok, _, err) = retention(&b, bad, &["--dry-run"]);
    assert!(!ok && err.contains("invalid pattern"), "{err}");
    // No policy anywhere: nothing to do, and it says so.
    let (ok, out, err) = retention(&b, "", &["--dry-run"]);
    assert!(
        ok && out.contains("no retention policies apply"),
        "{out}{err}"
    );
}
