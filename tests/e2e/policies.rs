//! Hub policies: immutable tags and quotas, refused with a message naming the rule, through the API and
//! to a real `docker push`.

use reqwest::StatusCode;
use serde_json::json;

use crate::client::expect_error;
use crate::harness::{Berth, random_bytes, sha256};
use crate::real_clients::{Docker, busybox, docker_build};

const RULES: &str = r#"
[[policies.immutable]]
scope = "rel"
tags = ["v*"]
"#;

/// `berth serve` with a configuration file holding `config`, expected to refuse it:
/// (success, stderr).
fn serve_with(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, config).expect("bad");
    let (ok, _, err) = crate::cli::berth(
        &[
            "serve",
            "--config",
            bad.to_str().expect("path"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    (ok, err)
}

/// A server whose configuration file holds `config` (through `BERTH_CONFIG`, which the
/// one-shot commands `b.cli` runs see too).
pub(crate) fn start_with_config(config: &str, env: &[(&str, &str)]) -> (Berth, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).expect("config");
    let mut all = vec![("BERTH_CONFIG", file.to_str().expect("path"))];
    all.extend_from_slice(env);
    (Berth::start_with(&all), dir)
}

#[tokio::test]
async fn immutable_tags_cannot_be_moved_deleted_or_restored_elsewhere() {
    let (b, _config) = start_with_config(RULES, &[("BERTH_GC_ENABLED", "false")]);
    let one = b.push_image("rel/app", "v1", 1, 1).await;
    // The same manifest again is fine (docker re-pushes do that).
    let again = b
        .put_manifest("rel/app", "v1", one.media_type, &one.bytes)
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    // Another manifest under the tag is refused, naming the rule; the tag did not move.
    let two = b.push_image("rel/app", "scratch", 2, 1).await;
    let moved = b
        .put_manifest("rel/app", "v1", two.media_type, &two.bytes)
        .await;
    let body = expect_error(moved, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("rel/app:v1") && message.contains("immutable-tag rule for rel: v*"),
        "{message}"
    );
    let head = b.head("/v2/rel/app/manifests/v1").await;
    assert_eq!(head.headers()["docker-content-digest"], one.digest.as_str());
    // Deleting the tag, or the manifest under it, is refused too.
    let del = b.delete("/v2/rel/app/manifests/v1").await;
    expect_error(del, StatusCode::FORBIDDEN, "DENIED").await;
    let del = b
        .delete(&format!("/v2/rel/app/manifests/{}", one.digest))
        .await;
    let body = expect_error(del, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(body.to_string().contains("points at it"), "{body}");
    // Other tags and repositories outside the scope are not affected.
    b.push_image("rel/app", "latest", 3, 1).await;
    b.push_image("rel/app", "latest", 4, 1).await;
    b.push_image("dev/app", "v1", 5, 1).await;
    b.push_image("dev/app", "v1", 6, 1).await;
    // A restore would move it: refused.
    let resp = b
        .http
        .post(b.url("/api/v1/tag-restore/rel/app"))
        .json(&json!({"tag": "v1", "digest": two.digest}))
        .send()
        .await
        .expect("restore");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Retention leaves immutable tags alone.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("retention.toml");
    std::fs::write(
        &file,
        format!("{RULES}\n[[retention.policy]]\nscope = \"rel\"\nkeep_tags = [\"none\"]\n"),
    )
    .expect("config");
    let (ok, out, err) = b.cli(
        &[
            "retention",
            "--json",
            "--config",
            file.to_str().expect("path"),
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("\"latest\"") && !out.contains("\"v1\""),
        "{out}"
    );
    // A bad rule stops the server from starting.
    let (ok, err) = serve_with("[[policies.immutable]]\nscope = \"rel\"\ntags = []\n");
    assert!(!ok && err.contains("tags is empty"), "{err}");
}

#[tokio::test]
async fn docker_push_over_an_immutable_tag_shows_the_rule() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let (b, _config) = start_with_config(RULES, &[]);
    let image = format!("{}/rel/busybox:v1", b.host());
    docker_build(&docker, &busybox, "first", &image);
    docker.ok(&["push", &image]);
    docker_build(&docker, &busybox, "second", &image);
    let (ok, out, err) = docker.run(&["push", &image]);
    assert!(!ok, "the second push must fail: {out}");
    assert!(
        err.contains("denied") && err.contains("immutable-tag rule for rel: v*"),
        "{err}"
    );
    docker.ok(&["rmi", &image]);
}

/// `serve` applies retention policies and scrubs on schedule, without any command.
#[tokio::test]
async fn serve_runs_retention_and_scrub_passes_on_schedule() {
    let config = r#"
[retention]
enabled = true
interval_secs = 1

[[retention.policy]]
scope = "sched"
keep_newest = 1

[scrub]
enabled = true
interval_secs = 1
items_per_pass = 1000
"#;
    let (b, _config) = start_with_config(config, &[("BERTH_GC_ENABLED", "false")]);
    b.push_image("sched/app", "old", 1, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    b.push_image("sched/app", "new", 2, 1).await;
    let lost = b.push_blob("sched/app", b"bytes that will vanish").await;
    let key = b
        .stored_objects()
        .into_iter()
        .find(|k| b.read_object(k) == b"bytes that will vanish")
        .expect("stored");
    b.delete_object(&key);
    let mut done = false;
    for _ in 0..100 {
        let old = b.head("/v2/sched/app/manifests/old").await.status();
        let blob = b
            .head(&format!("/v2/sched/app/blobs/{}", lost.digest))
            .await
            .status();
        if old == StatusCode::NOT_FOUND && blob == StatusCode::NOT_FOUND {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "retention and scrub did not run: {}", b.logs());
    let kept = b.head("/v2/sched/app/manifests/new").await;
    assert_eq!(kept.status(), StatusCode::OK);
    let (ok, out, _) = b.cli(&["scrub", "--findings"], &[]);
    assert!(ok && out.contains("missing: blob"), "{out}");
}

const QUOTAS: &str = r#"
[[policies.quota]]
scope = "q"
max_bytes = 3000
max_repositories = 2
"#;

#[tokio::test]
async fn quotas_refuse_bytes_and_repositories_past_the_limit() {
    let (b, _config) = start_with_config(QUOTAS, &[("BERTH_GC_ENABLED", "false")]);
    let first = random_bytes(2000, 1);
    b.push_blob("q/a", &first).await;
    // 2000 + 1500 > 3000: refused at the end of the upload, naming the rule.
    let second = random_bytes(1500, 2);
    let digest = sha256(&second);
    let resp = b
        .http
        .post(b.url(&format!("/v2/q/a/blobs/uploads/?digest={digest}")))
        .body(second.clone())
        .send()
        .await
        .expect("post");
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    let message = body["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("quota exceeded") && message.contains("policies.quota for q"),
        "{message}"
    );
    // The refused blob is nowhere.
    let head = b.head(&format!("/v2/q/a/blobs/{digest}")).await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    // The same refusal through a chunked session.
    let location = b.start_upload("q/a").await;
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = b
        .http
        .put(format!("{}{location}{sep}digest={digest}", b.url("")))
        .body(second.clone())
        .send()
        .await
        .expect("put");
    expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    // A blob the namespace already holds costs nothing: into a second repository, by upload
    // and by mount.
    b.push_blob("q/b", &first).await;
    let mounted = b
        .http
        .post(b.url(&format!(
            "/v2/q/b/blobs/uploads/?mount={}&from=q/a",
            sha256(&first)
        )))
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), StatusCode::CREATED);
    // A small new blob still fits; a third repository does not.
    b.push_blob("q/b", &random_bytes(500, 3)).await;
    let resp = b
        .http
        .post(b.url("/v2/q/c/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    let body = expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    assert!(
        body.to_string().contains("2 of its 2 repositories"),
        "{body}"
    );
    // Full: nothing more may start, even a mount of a blob from elsewhere.
    b.push_blob("q/b", &random_bytes(500, 4)).await;
    let resp = b
        .http
        .post(b.url("/v2/q/a/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    let outside = b.push_blob("other/x", &random_bytes(100, 5)).await;
    let resp = b
        .http
        .post(b.url(&format!(
            "/v2/q/a/blobs/uploads/?mount={}&from=other/x",
            outside.digest
        )))
        .send()
        .await
        .expect("mount");
    expect_error(resp, StatusCode::FORBIDDEN, "DENIED").await;
    // Other namespaces are not limited.
    b.push_blob("other/x", &random_bytes(5000, 6)).await;
    // Usage through the API and the CLI shows the quota.
    let usage: serde_json::Value = b.get("/api/v1/usage/q").await.json().await.expect("usage");
    assert_eq!(
        usage["quotas"],
        json!([{"scope": "q", "source": "config", "max_bytes": 3000, "used_bytes": 3000,
                "max_repositories": 2, "repositories": 2}])
    );
    let (ok, out, err) = b.cli(&["usage", "q"], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("quota q: 2.9 KiB of 2.9 KiB (100%), 2 of 2 repositories"),
        "{out}"
    );
    // The web UI shows it on the namespace and repository pages.
    for page in ["/ui/n/q", "/ui/r/q/a"] {
        let html = b.get(page).await.text().await.expect("page");
        assert!(html.contains("Quota of q"), "{page}: {html}");
    }
    // A rule without limits stops the server from starting.
    let (ok, err) = serve_with("[[policies.quota]]\nscope = \"q\"\n");
    assert!(
        !ok && err.contains("sets neither max_bytes nor max_repositories"),
        "{err}"
    );
}

#[tokio::test]
async fn docker_push_past_a_quota_shows_the_refusal() {
    let (Some(docker), Some(busybox)) = (Docker::get(), busybox()) else {
        return;
    };
    let (b, _config) = start_with_config(
        "[[policies.quota]]\nscope = \"small\"\nmax_bytes = \"100kB\"\n",
        &[],
    );
    let image = format!("{}/small/busybox:1", b.host());
    docker_build(&docker, &busybox, "quota", &image);
    let (ok, out, err) = docker.run(&["push", &image]);
    assert!(!ok, "the push must fail: {out}");
    assert!(
        err.contains("denied") && err.contains("quota exceeded") && err.contains("small"),
        "{err}"
    );
    // The same image fits elsewhere.
    let elsewhere = format!("{}/big/busybox:1", b.host());
    docker.ok(&["tag", &image, &elsewhere]);
    docker.ok(&["push", &elsewhere]);
    docker.ok(&["rmi", &image, &elsewhere]);
}

/// Policies live in the configuration file: a server that starts with other ones than the
/// last recorded leaves a `policy.change` entry in the audit log. Only a change is news in
/// the server's log; the first record of a new registry is quiet.
#[tokio::test]
async fn a_policy_change_is_in_the_audit_log() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("berth.toml");
    let data = dir.path().join("data");
    let env = [("BERTH_CONFIG", file.to_str().expect("path"))];
    let entries = |b: &Berth| {
        let (ok, out, err) = b.cli(&["audit", "--action", "policy", "--json"], &[]);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("json")
    };
    std::fs::write(&file, QUOTAS).expect("config");
    let mut b = Berth::start_in(&data, &env);
    let first = entries(&b);
    let list = first.as_array().expect("entries");
    assert_eq!(list.len(), 1, "{first}");
    assert_eq!(list[0]["action"], "policy.change");
    assert_eq!(list[0]["actor"], "system:config");
    assert_eq!(
        list[0]["detail"]["policies"]["quota"][0]["max_bytes"], 3000,
        "{first}"
    );
    const CHANGED: &str = "the hub policies changed";
    assert!(!b.logs().contains(CHANGED), "{}", b.logs());
    // The same policies again: nothing new.
    assert!(b.terminate(std::time::Duration::from_secs(10)));
    let mut b = Berth::start_in(&data, &env);
    assert_eq!(entries(&b).as_array().expect("entries").len(), 1);
    // Another quota: a second entry, newest first.
    std::fs::write(&file, QUOTAS.replace("3000", "4000")).expect("config");
    assert!(b.terminate(std::time::Duration::from_secs(10)));
    let b = Berth::start_in(&data, &env);
    let after = entries(&b);
    let list = after.as_array().expect("entries");
    assert_eq!(list.len(), 2, "{after}");
    assert_eq!(list[0]["detail"]["policies"]["quota"][0]["max_bytes"], 4000);
    assert!(b.logs().contains(CHANGED), "{}", b.logs());
}
