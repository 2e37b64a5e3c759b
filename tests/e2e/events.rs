//! Webhooks and the audit log: signed CloudEvents delivered to a receiver in the test, retried
//! after a failure and after a restart, a test event, the delivery log; audit entries for
//! pushes, deletes and account changes with actor and address, readable by administrators
//! only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::harness::Berth;

const SECRET: &str = "webhook-test-secret";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1: answers each request with the next of `statuses` (200
/// once they run out) and records it.
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub(crate) async fn start(port: u16, statuses: &[u16]) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses.to_vec()));
        let record = got.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let record = record.clone();
                let statuses = statuses.clone();
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut conn).await else {
                        return;
                    };
                    let status = {
                        let mut s = statuses.lock().unwrap();
                        if s.is_empty() { 200 } else { s.remove(0) }
                    };
                    record.lock().unwrap().push(request);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
        Self { port, got, task }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (up to 60 s) until `n` requests have come, and returns them.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived: {got:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request with a `content-length` body.
async fn read_request(conn: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let headers: Vec<(String, String)> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received { headers, body })
}

/// Checks `X-Berth-Signature-256` the way a receiver should: HMAC-SHA256 of the raw body
/// under the shared secret, compared in constant time.
pub(crate) fn signature_is_valid(r: &Received, secret: &str) -> bool {
    let Some(hex_sig) = r
        .header("x-berth-signature-256")
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&r.body);
    mac.verify_slice(&sig).is_ok()
}

/// A server whose configuration file holds `config` (the one-shot commands see it too).
fn start_with_config(config: &str, env: &[(&str, &str)]) -> (Berth, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let mut all = vec![("BERTH_CONFIG", file.to_str().unwrap())];
    all.extend_from_slice(env);
    (Berth::start_with(&all), dir)
}

/// Fast retries, so the tests wait little (they never assert timings).
const FAST: &str = "[webhooks]\npoll_interval_ms = 100\nretry_base_ms = 200\nretry_max_ms = 500\n";

fn hooks_config(url: &str) -> String {
    format!(
        "{FAST}
[[webhooks.hook]]
name = \"ci\"
url = \"{url}\"
scope = \"acme\"
secret = \"{SECRET}\"

[[webhooks.hook]]
name = \"elsewhere\"
url = \"{url}\"
scope = \"other\"
events = [\"push\"]
"
    )
}

fn json_out(b: &Berth, args: &[&str]) -> Value {
    let (ok, out, err) = b.cli(args, &[]);
    assert!(ok, "berth {args:?} failed: {out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|_| panic!("not JSON: {out}"))
}

// Multi-threaded: the receiver answers while the test waits on a blocking `berth` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_signed_cloud_events_retried_after_a_failure() {
    // The first attempt fails with 500; the retry succeeds.
    let receiver = Receiver::start(0, &[500]).await;
    let (b, _config) = start_with_config(&hooks_config(&receiver.url()), &[]);
    let pushed = b.push_image("acme/app", "v1", 1, 1).await;

    let got = receiver.wait_for(2).await;
    let (first, second) = (&got[0], &got[1]);
    assert_eq!(first.body, second.body, "a retry sends the same event");
    for r in [first, second] {
        assert!(signature_is_valid(r, SECRET), "bad signature: {r:?}");
        assert!(!signature_is_valid(r, "another-secret"));
        assert!(r.header("x-berth-timestamp").is_some());
        assert_eq!(
            r.header("content-type"),
            Some("application/cloudevents+json; charset=utf-8")
        );
    }
    let event = first.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "dev.berth.image.pushed");
    assert_eq!(event["source"], "berth");
    assert_eq!(event["subject"], "acme/app:v1");
    assert_eq!(event["datacontenttype"], "application/json");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let data = &event["data"];
    assert_eq!(data["repository"], "acme/app");
    assert_eq!(data["tag"], "v1");
    assert_eq!(data["digest"], pushed.digest.as_str());
    assert_eq!(data["mediaType"], pushed.media_type);
    assert_eq!(data["size"], pushed.size);
    assert_eq!(data["actor"], "", "authentication is off: anonymous");

    // The delivery log shows both attempts with their codes, through the CLI and the API.
    let log = json_out(&b, &["webhook", "deliveries", "ci", "--json"]);
    let delivery = &log[0];
    assert_eq!(delivery["event_id"], event["id"]);
    assert_eq!(delivery["state"], "delivered");
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{log}");
    assert_eq!(attempts[0]["status"], 500);
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(attempts[1]["error"], Value::Null);
    let api: Value = b
        .get("/api/v1/webhooks/ci/deliveries")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(api["deliveries"][0]["attempts"], delivery["attempts"]);
    // And the worker's attempts in the metrics: one failure, then one delivery.
    let outcome = |m: &crate::metrics::Exposition, o: &str| {
        m.get("berth_webhook_deliveries_total", &[("outcome", o)])
            .unwrap_or(0.0)
    };
    crate::metrics::scrape_until(&b, "the webhook attempts", |m| {
        outcome(m, "failed") == 1.0 && outcome(m, "delivered") == 1.0
    })
    .await;

    // A delete reaches the webhook too, naming the digest the tag pointed at.
    let resp = b.delete("/v2/acme/app/manifests/v1").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let got = receiver.wait_for(3).await;
    let deleted = got[2].json();
    assert_eq!(deleted["type"], "dev.berth.tag.deleted");
    assert_eq!(deleted["data"]["digest"], pushed.digest.as_str());
    assert!(signature_is_valid(&got[2], SECRET));

    // The test event, through the API (answered with the attempt) and the CLI.
    let resp = b
        .http
        .post(b.url("/api/v1/webhooks/ci/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let test: Value = resp.json().await.unwrap();
    assert_eq!(test["state"], "delivered", "{test}");
    assert_eq!(test["attempts"][0]["status"], 200);
    let got = receiver.wait_for(4).await;
    assert_eq!(got[3].json()["type"], "dev.berth.webhook.test");
    assert!(signature_is_valid(&got[3], SECRET));
    let (ok, out, err) = b.cli(&["webhook", "test", "ci"], &[]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("delivered") && out.contains("200"), "{out}");
    receiver.wait_for(5).await;
    let resp = b
        .http
        .post(b.url("/api/v1/webhooks/nope/test"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Pushes outside a webhook's scope reach only the webhooks whose scope they are in:
    // "elsewhere" hears of other/app, "ci" does not.
    b.push_image("other/app", "v1", 2, 1).await;
    let got = receiver.wait_for(6).await;
    assert_eq!(got[5].json()["data"]["repository"], "other/app");
    assert!(
        got[5].header("x-berth-signature-256").is_none(),
        "no secret, no signature"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        6,
        "one delivery per listening webhook"
    );
}

// Multi-threaded: the receiver answers while the test waits on a blocking `berth` command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_delivery_survives_a_restart() {
    // A port with nothing listening: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "{FAST}
[[webhooks.hook]]
name = \"down\"
url = \"http://127.0.0.1:{port}/hook\"
secret = \"{SECRET}\"
max_attempts = 1000
"
    );
    let (mut b, config_dir) =
        start_with_config(&config, &[("BERTH_SERVER_SHUTDOWN_DRAIN_SECS", "0")]);
    let pushed = b.push_image("acme/app", "v1", 3, 1).await;
    // Wait for a failed attempt, so the delivery is known to be pending and retried.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = json_out(&b, &["webhook", "deliveries", "down", "--json"]);
        if log[0]["attempts"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(log[0]["state"], "pending");
            assert_eq!(log[0]["attempts"][0]["status"], Value::Null);
            assert!(log[0]["attempts"][0]["error"].as_str().is_some());
            break;
        }
        assert!(Instant::now() < deadline, "no attempt was made: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Closing the test's idle connections lets the server stop without waiting for them.
    b.http = reqwest::Client::new();
    assert!(b.terminate(Duration::from_secs(30)), "clean shutdown");

    // Restart on the same data, then bring the receiver up: the delivery arrives.
    let file = config_dir.path().join("berth.toml");
    let restarted = Berth::start_in(&b.data_dir, &[("BERTH_CONFIG", file.to_str().unwrap())]);
    let receiver = Receiver::start(port, &[]).await;
    let got = receiver.wait_for(1).await;
    let event = got[0].json();
    assert_eq!(event["type"], "dev.berth.image.pushed");
    assert_eq!(event["data"]["digest"], pushed.digest.as_str());
    assert!(signature_is_valid(&got[0], SECRET));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = json_out(&restarted, &["webhook", "deliveries", "down", "--json"]);
        if log[0]["state"] == "delivered" {
            let attempts = log[0]["attempts"].as_array().unwrap();
            assert!(attempts.len() >= 2, "{log}");
            assert_eq!(attempts.last().unwrap()["status"], 200);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recorded as delivered: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const ROOT: (&str, &str) = ("root", "root-password-1");

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// `METHOD path` with HTTP Basic credentials (if any) and a JSON body (if any).
async fn call(
    b: &Berth,
    who: Option<(&str, &str)>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().request(method, b.url(path));
    if let Some((u, p)) = who {
        req = req.header("authorization", basic(u, p));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The audit entries `query` selects, as the administrator reads them.
async fn audit(b: &Berth, query: &str) -> Vec<Value> {
    let (s, v) = call(
        b,
        Some(ROOT),
        reqwest::Method::GET,
        &format!("/api/v1/audit?{query}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["entries"].as_array().unwrap().clone()
}

fn find<'a>(entries: &'a [Value], action: &str) -> &'a Value {
    entries
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} entry in {entries:#?}"))
}

#[tokio::test]
async fn every_change_leaves_an_audit_entry_with_actor_and_address() {
    use reqwest::Method as M;
    let mut b = Berth::start_with(&[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", ROOT.0, "--admin", "--password-stdin"],
        &format!("{}\n", ROOT.1),
    );
    let alice = ("alice", "alice-password-1");
    let root = Some(ROOT);
    // Account, team, permission, token and visibility changes through the admin API.
    for (method, path, body) in [
        (
            M::POST,
            "/api/v1/users",
            json!({"name": alice.0, "password": alice.1}),
        ),
        (M::POST, "/api/v1/orgs", json!({"name": "acme"})),
        (M::POST, "/api/v1/orgs/acme/teams", json!({"name": "devs"})),
        (
            M::PUT,
            "/api/v1/orgs/acme/teams/devs/grants",
            json!({"role": "write"}),
        ),
        (
            M::PUT,
            "/api/v1/visibility/acme/app",
            json!({"public": true}),
        ),
    ] {
        let (s, v) = call(&b, root, method, path, Some(body)).await;
        assert!(s.is_success(), "{path}: {s} {v}");
    }
    let (s, _) = call(
        &b,
        root,
        M::PUT,
        "/api/v1/orgs/acme/teams/devs/members/alice",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, token) = call(
        &b,
        Some(alice),
        M::POST,
        "/api/v1/tokens",
        Some(json!({"name": "laptop", "scopes": ["acme/*:pull,push"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = token["secret"].as_str().unwrap().to_owned();

    // Alice pushes with her token; the administrator deletes a tag and a manifest.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", basic(alice.0, &secret).parse().unwrap());
    b.http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    let one = b.push_image("acme/app", "v1", 1, 1).await;
    let two = b.push_image("acme/app", "v2", 2, 1).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", basic(ROOT.0, ROOT.1).parse().unwrap());
    b.http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    assert_eq!(
        b.delete("/v2/acme/app/manifests/v1").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        b.delete(&format!("/v2/acme/app/manifests/{}", two.digest))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let (s, _) = call(&b, Some(alice), M::DELETE, "/api/v1/tokens/laptop", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let all = audit(&b, "n=100").await;
    // Nothing secret is recorded: no token value, no password.
    let text = serde_json::to_string(&all).unwrap();
    for secret in [secret.as_str(), alice.1, ROOT.1] {
        assert!(!text.contains(secret), "a secret in the audit log: {text}");
    }
    let by_cli = all
        .iter()
        .find(|e| e["action"] == "user.create" && e["target"] == "root")
        .unwrap();
    assert!(
        by_cli["actor"].as_str().unwrap().starts_with("cli:"),
        "{by_cli}"
    );
    assert!(by_cli["address"].is_null());
    let created = all
        .iter()
        .find(|e| e["action"] == "user.create" && e["target"] == "alice")
        .unwrap();
    assert_eq!(created["actor"], "root");
    assert_eq!(created["address"], "127.0.0.1");
    assert_eq!(created["detail"]["admin"], false);
    assert_eq!(find(&all, "org.create")["target"], "acme");
    assert!(
        all.iter().any(|e| e["action"] == "member.set"
            && e["target"] == "root"
            && e["detail"]["owner"] == true),
        "the founder owns the organization"
    );
    assert_eq!(find(&all, "team.create")["target"], "acme/devs");
    let grant = find(&all, "grant.set");
    assert_eq!(grant["target"], "acme/devs");
    assert_eq!(grant["detail"]["role"], "write");
    assert_eq!(find(&all, "team.member.add")["target"], "alice");
    let visibility = find(&all, "repository.visibility");
    assert_eq!(visibility["repository"], "acme/app");
    assert_eq!(visibility["detail"]["public"], true);
    let token = find(&all, "token.create");
    assert_eq!(token["actor"], "alice");
    assert_eq!(token["target"], "alice/laptop");
    assert_eq!(find(&all, "token.revoke")["target"], "alice/laptop");

    let pushes: Vec<&Value> = all
        .iter()
        .filter(|e| e["action"] == "manifest.push")
        .collect();
    assert_eq!(pushes.len(), 2);
    let push = pushes.iter().find(|e| e["tag"] == "v1").unwrap();
    assert_eq!(push["actor"], "alice");
    assert_eq!(push["address"], "127.0.0.1");
    assert_eq!(push["repository"], "acme/app");
    assert_eq!(push["digest"], one.digest.as_str());
    assert_eq!(push["media_type"], one.media_type);
    assert_eq!(push["size"], one.size);
    let tag_delete = find(&all, "tag.delete");
    assert_eq!(tag_delete["actor"], "root");
    assert_eq!(tag_delete["tag"], "v1");
    assert_eq!(tag_delete["digest"], one.digest.as_str());
    let manifest_delete = find(&all, "manifest.delete");
    assert_eq!(manifest_delete["digest"], two.digest.as_str());
    assert_eq!(manifest_delete["size"], two.size);
    // Newest first.
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");

    // Filters: by action family, repository (namespace), actor, and paging.
    let tags = audit(&b, "action=tag").await;
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0]["action"], "tag.delete");
    let in_acme = audit(&b, "repository=acme").await;
    assert_eq!(in_acme.len(), 5, "{in_acme:#?}");
    assert!(in_acme.iter().all(|e| e["repository"] == "acme/app"));
    let by_alice = audit(&b, "actor=alice").await;
    assert_eq!(by_alice.len(), 4, "{by_alice:#?}");
    let page = audit(&b, &format!("n=2&before={}", ids[0])).await;
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"].as_i64(), Some(ids[1]));
    let future = audit(&b, &format!("since={}", i64::MAX / 2)).await;
    assert!(future.is_empty());

    // Only administrators read it.
    let (s, _) = call(&b, Some(alice), M::GET, "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(&b, None, M::GET, "/api/v1/audit", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(&b, Some(alice), M::GET, "/api/v1/webhooks", None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // And through the CLI.
    let entries = json_out(&b, &["audit", "--action", "manifest", "--json"]);
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["manifest.delete", "manifest.push", "manifest.push"]
    );
    let (ok, out, err) = b.cli(&["audit", "--actor", "alice", "--since", "1h"], &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("token.revoke") && out.contains("manifest.push") && out.contains("127.0.0.1"),
        "{out}"
    );
}
