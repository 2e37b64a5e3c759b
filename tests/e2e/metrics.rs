//! Prometheus metrics: `/metrics` parsed strictly as OpenMetrics text, its counters moved by
//! exactly what the test did, the storage gauges matching what was pushed, scheduled passes
//! counted, and the endpoint's protection (token, administrators) and separate listener.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Berth, random_bytes};

/// A parsed exposition: every sample by name and labels, and every family's type.
#[derive(Debug)]
pub(crate) struct Exposition {
    samples: HashMap<(String, BTreeMap<String, String>), f64>,
    types: HashMap<String, String>,
}

impl Exposition {
    /// Parses `text`, failing on anything OpenMetrics does not allow here: a sample without
    /// a `# TYPE` line for its family before it, a suffix its type does not have, a family
    /// split in two, a repeated series, bad label syntax, histogram buckets that are not
    /// cumulative or do not end at `_count`, or anything but exactly one `# EOF` at the end.
    fn parse(text: &str) -> Self {
        let body = text
            .strip_suffix("# EOF\n")
            .unwrap_or_else(|| panic!("no final # EOF:\n{text}"));
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = HashMap::new();
        let mut current: Option<String> = None;
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (kind, name) = (parts.next().unwrap(), parts.next().unwrap());
                assert!(valid_name(name), "bad family name in {line:?}");
                match kind {
                    "TYPE" => {
                        let ty = parts.next().unwrap();
                        assert!(
                            [
                                "counter",
                                "gauge",
                                "histogram",
                                "info",
                                "summary",
                                "stateset",
                                "unknown"
                            ]
                            .contains(&ty),
                            "{line}"
                        );
                        assert!(
                            types.insert(name.to_owned(), ty.to_owned()).is_none(),
                            "family {name} declared twice"
                        );
                        current = Some(name.to_owned());
                    }
                    "HELP" | "UNIT" => assert!(
                        current.as_deref() == Some(name) || !types.contains_key(name),
                        "{line}"
                    ),
                    _ => panic!("unexpected comment {line:?}"),
                }
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (
                    name,
                    parse_labels(rest.strip_suffix('}').expect("closing brace")),
                ),
                None => (series, BTreeMap::new()),
            };
            let family = current
                .as_deref()
                .unwrap_or_else(|| panic!("{line:?} before any # TYPE"));
            let allowed: &[&str] = match types[family].as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_count", "_sum", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            assert!(
                allowed.iter().any(|s| name == format!("{family}{s}")),
                "{name} is not a sample name of {} family {family}",
                types[family]
            );
            assert!(
                samples.insert((name.to_owned(), labels), value).is_none(),
                "repeated series {series}"
            );
        }
        let e = Self { samples, types };
        e.check_histograms();
        e
    }

    /// Every histogram's buckets are cumulative and end (`+Inf`) at its count.
    fn check_histograms(&self) {
        for (family, _) in self.types.iter().filter(|(_, t)| *t == "histogram") {
            let mut buckets: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for ((name, labels), value) in &self.samples {
                if *name == format!("{family}_bucket") {
                    let mut rest = labels.clone();
                    let le = rest.remove("le").expect("le");
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().expect("le")
                    };
                    buckets.entry(rest).or_default().push((le, *value));
                }
            }
            for (labels, mut series) in buckets {
                series.sort_by(|a, b| a.0.total_cmp(&b.0));
                assert!(
                    series.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family} {labels:?}: buckets not cumulative"
                );
                let inf = series.last().expect("a bucket");
                assert_eq!(inf.0, f64::INFINITY, "{family} {labels:?}: no +Inf bucket");
                let count = self.samples[&(format!("{family}_count"), labels.clone())];
                assert_eq!(inf.1, count, "{family} {labels:?}: +Inf bucket != count");
            }
        }
    }

    /// The sample `name{labels}`, if present.
    pub(crate) fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples.get(&(name.to_owned(), labels)).copied()
    }

    /// The sample `name{labels}`, which must be present.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }

    /// `berth_http_requests_total` of one endpoint, method and status (0 when never seen).
    fn requests(&self, route: &str, method: &str, status: &str) -> f64 {
        self.get(
            "berth_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
        .unwrap_or(0.0)
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y\"z"` (escapes: `\\`, `\"`, `\n`).
fn parse_labels(mut s: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !s.is_empty() {
        let (key, rest) = s.split_once("=\"").expect("label =\"");
        assert!(valid_name(key), "bad label name {key:?}");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("closing quote") {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect("escape").1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => panic!("bad escape \\{c}"),
                },
                (_, c) => value.push(c),
            }
        };
        assert!(
            labels.insert(key.to_owned(), value).is_none(),
            "label {key} twice"
        );
        s = &rest[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
    labels
}

/// The parser is as strict as its doc says (so the checks below mean something).
#[test]
fn the_parser_rejects_what_openmetrics_does_not_allow() {
    let ok = "# HELP a A.\n# TYPE a counter\na_total{x=\"q\\\"\"} 1\n# EOF\n";
    assert_eq!(Exposition::parse(ok).value("a_total", &[("x", "q\"")]), 1.0);
    for bad in [
        "# TYPE a counter\na_total 1\n",
        "a_total 1\n# EOF\n",
        "# TYPE a counter\na 1\n# EOF\n",
        "# TYPE a counter\na_total 1\na_total 2\n# EOF\n",
        "# TYPE a gauge\na{x=\"1} 1\n# EOF\n",
        "# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n# EOF\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\nh_sum 0\n# EOF\n",
        "# TYPE a gauge\na 1\n# EOF\n# EOF\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| Exposition::parse(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

/// `GET url` with `client` (and `auth` as the Authorization header).
async fn fetch(client: &reqwest::Client, url: &str, auth: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request.send().await.expect("scrape")
}

/// Scrapes `url` (which must answer `200` with the OpenMetrics media type) and parses it.
async fn scrape_url(client: &reqwest::Client, url: &str, auth: Option<&str>) -> Exposition {
    let resp = fetch(client, url, auth).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let ty = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ty.starts_with("application/openmetrics-text; version=1.0.0"),
        "{ty}"
    );
    Exposition::parse(&resp.text().await.unwrap())
}

pub(crate) async fn scrape(b: &Berth) -> Exposition {
    scrape_url(&b.http, &b.url("/metrics"), None).await
}

/// Scrapes until `done` holds (passes run on their own schedule), for up to 30 seconds.
pub(crate) async fn scrape_until(
    b: &Berth,
    what: &str,
    done: impl Fn(&Exposition) -> bool,
) -> Exposition {
    for _ in 0..300 {
        let m = scrape(b).await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never showed in the metrics:\n{}", b.logs());
}

/// The bytes of the blobs a pushed manifest names (its config and layers).
fn blob_bytes(manifest: &[u8]) -> u64 {
    let m: Value = serde_json::from_slice(manifest).unwrap();
    let layers: u64 = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    layers + m["config"]["size"].as_u64().unwrap()
}

#[tokio::test]
async fn requests_bytes_and_storage_are_counted_exactly() {
    let b = Berth::start();
    let missing = b.get("/v2/app/one/manifests/missing").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let data = random_bytes(5000, 1);
    let blob = b.push_blob("app/one", &data).await;
    let got = b.get(&format!("/v2/app/one/blobs/{}", blob.digest)).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().len(), data.len());
    let head = b.head(&format!("/v2/app/one/blobs/{}", blob.digest)).await;
    assert_eq!(head.status(), StatusCode::OK);
    let image = b.push_image("app/two", "v1", 2, 1).await;
    let image_blobs = blob_bytes(&image.bytes);
    // An upload left open after its first 300 bytes.
    let location = b.start_upload("app/one").await;
    let patched = b
        .http
        .patch(b.url(&location))
        .header("content-type", "application/octet-stream")
        .body(vec![7u8; 300])
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);

    let m = scrape(&b).await;
    // Each request counted once under its endpoint and status, nothing else.
    for (route, method, status, n) in [
        ("manifest_get", "GET", "404", 1.0),
        ("upload_start", "POST", "201", 3.0),
        ("upload_start", "POST", "202", 1.0),
        ("upload_patch", "PATCH", "202", 1.0),
        ("blob_get", "GET", "200", 1.0),
        ("blob_head", "HEAD", "200", 1.0),
        ("manifest_put", "PUT", "201", 1.0),
        // The scrape itself is counted once its response is ready, after this text.
        ("metrics", "GET", "200", 0.0),
    ] {
        assert_eq!(m.requests(route, method, status), n, "{route} {status}");
    }
    let total: f64 = m
        .samples
        .iter()
        .filter(|((name, _), _)| name == "berth_http_requests_total")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, 9.0, "{:?}", m.samples);
    let get = [("route", "manifest_get"), ("method", "GET")];
    assert_eq!(
        m.value("berth_http_request_duration_seconds_count", &get),
        1.0
    );
    assert!(m.value("berth_http_request_duration_seconds_sum", &get) > 0.0);
    let uploads = [("route", "upload_start"), ("method", "POST")];
    assert_eq!(
        m.value("berth_http_request_duration_seconds_count", &uploads),
        4.0
    );
    // Bytes in and out, exactly the bodies.
    let bytes = |name, route| m.value(name, &[("route", route)]);
    assert_eq!(
        bytes("berth_http_request_bytes_total", "upload_start"),
        (data.len() as u64 + image_blobs) as f64
    );
    assert_eq!(
        bytes("berth_http_request_bytes_total", "upload_patch"),
        300.0
    );
    assert_eq!(
        bytes("berth_http_request_bytes_total", "manifest_put"),
        image.size as f64
    );
    assert_eq!(
        bytes("berth_http_response_bytes_total", "blob_get"),
        data.len() as f64
    );
    assert_eq!(bytes("berth_http_response_bytes_total", "blob_head"), 0.0);
    // What the registry stores, read from the database.
    for (gauge, value) in [
        ("berth_storage_repositories", 2),
        ("berth_storage_blobs", 3),
        ("berth_storage_blob_bytes", data.len() as u64 + image_blobs),
        ("berth_storage_manifests", 1),
        ("berth_storage_manifest_bytes", image.size as u64),
        ("berth_upload_sessions", 1),
        ("berth_upload_session_bytes", 300),
        ("berth_upload_requests_in_flight", 0),
    ] {
        assert_eq!(m.value(gauge, &[]), value as f64, "{gauge}");
    }
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(m.value("berth_build_info", &version), 1.0);
    assert_eq!(m.types["berth_http_request_duration_seconds"], "histogram");

    // A second scrape right away: the first one is counted now, and the storage gauges come
    // from the sample taken seconds ago rather than from another round of queries.
    b.push_blob("app/one", b"one more blob").await;
    let again = scrape(&b).await;
    assert_eq!(again.requests("metrics", "GET", "200"), 1.0);
    assert_eq!(again.requests("upload_start", "POST", "201"), 4.0);
    assert_eq!(again.value("berth_storage_blobs", &[]), 3.0);
}

/// A PATCH whose body is still arriving counts as an upload in flight, and stops counting
/// when it is answered.
#[tokio::test]
async fn an_upload_is_in_flight_while_its_body_streams() {
    let b = Berth::start();
    let location = b.start_upload("app/slow").await;
    let mut tcp = tokio::net::TcpStream::connect(b.addr).await.unwrap();
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 2000\r\nConnection: close\r\n\r\n",
        b.host()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&[1u8; 1000]).await.unwrap();
    scrape_until(&b, "the upload in flight", |m| {
        m.value("berth_upload_requests_in_flight", &[]) == 1.0
    })
    .await;
    tcp.write_all(&[1u8; 1000]).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 202"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let m = scrape(&b).await;
    assert_eq!(m.value("berth_upload_requests_in_flight", &[]), 0.0);
    assert_eq!(m.requests("upload_patch", "PATCH", "202"), 1.0);
    assert_eq!(
        m.value(
            "berth_http_request_bytes_total",
            &[("route", "upload_patch")]
        ),
        2000.0
    );
}

/// Scheduled garbage collection: what a pass removed is counted once, with its bytes.
#[tokio::test]
async fn scheduled_gc_passes_are_counted() {
    let b = Berth::start_with(&[
        ("BERTH_GC_INTERVAL_SECS", "1"),
        ("BERTH_GC_REVIEW_DELAY_SECS", "0"),
    ]);
    // A layer no manifest refers to: garbage at the next pass.
    let data = random_bytes(3000, 9);
    let blob = b.push_blob("gc/app", &data).await;
    let m = scrape_until(&b, "a GC pass removing the blob", |m| {
        m.value("berth_gc_blobs_removed_total", &[]) >= 1.0
    })
    .await;
    assert_eq!(m.value("berth_gc_blobs_removed_total", &[]), 1.0);
    assert_eq!(
        m.value("berth_gc_freed_bytes_total", &[]),
        data.len() as f64
    );
    assert_eq!(m.value("berth_gc_manifests_removed_total", &[]), 0.0);
    assert!(m.value("berth_gc_passes_total", &[("outcome", "success")]) >= 1.0);
    assert_eq!(
        m.value("berth_gc_passes_total", &[("outcome", "failure")]),
        0.0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = m.value("berth_gc_last_success_timestamp_seconds", &[]);
    assert!((now - last).abs() < 60.0, "{last} vs {now}");
    assert!(m.value("berth_gc_last_duration_seconds", &[]) >= 0.0);
    let gone = b.head(&format!("/v2/gc/app/blobs/{}", blob.digest)).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

/// Scheduled scrub and retention: a lost blob is found and quarantined, an old tag removed.
#[tokio::test]
async fn scheduled_scrub_and_retention_passes_are_counted() {
    let config = r#"
[retention]
enabled = true
interval_secs = 1

[[retention.policy]]
scope = "ret"
keep_newest = 1

[scrub]
enabled = true
interval_secs = 1
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.toml");
    std::fs::write(&file, config).unwrap();
    let b = Berth::start_with(&[
        ("BERTH_CONFIG", file.to_str().unwrap()),
        ("BERTH_GC_ENABLED", "false"),
    ]);
    b.push_image("ret/app", "old", 1, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    b.push_image("ret/app", "new", 2, 1).await;
    let lost = b"bytes that will vanish";
    b.push_blob("scr/app", lost).await;
    let key = b
        .stored_objects()
        .into_iter()
        .find(|k| b.read_object(k) == lost)
        .expect("stored");
    b.delete_object(&key);
    let m = scrape_until(&b, "the scrub finding and the retention run", |m| {
        m.value("berth_scrub_blobs_quarantined_total", &[]) >= 1.0
            && m.value("berth_retention_tags_removed_total", &[]) >= 1.0
    })
    .await;
    assert_eq!(m.value("berth_scrub_blobs_quarantined_total", &[]), 1.0);
    assert_eq!(
        m.value("berth_scrub_findings_total", &[("problem", "missing")]),
        1.0
    );
    assert_eq!(
        m.value("berth_scrub_findings_total", &[("problem", "corrupt")]),
        0.0
    );
    assert!(m.value("berth_scrub_blobs_checked_total", &[]) >= 1.0);
    assert!(m.value("berth_scrub_passes_total", &[("outcome", "success")]) >= 1.0);
    assert_eq!(m.value("berth_retention_tags_removed_total", &[]), 1.0);
    assert!(m.value("berth_retention_tags_judged_total", &[]) >= 2.0);
    assert!(m.value("berth_retention_passes_total", &[("outcome", "success")]) >= 1.0);
    assert_eq!(
        b.head("/v2/ret/app/manifests/old").await.status(),
        StatusCode::NOT_FOUND
    );
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// With authentication on, `/metrics` on the main listener is for the token holder and
/// administrators; never for anonymous callers or ordinary users.
#[tokio::test]
async fn metrics_on_the_main_listener_need_the_token_or_an_administrator() {
    let b = Berth::start_with(&[
        ("BERTH_AUTH_ENABLED", "true"),
        ("BERTH_METRICS_TOKEN", "scrape-token-0123456789"),
    ]);
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password-1\n",
    );
    b.admin_ok(
        &["user", "add", "alice", "--password-stdin"],
        "alice-password-1\n",
    );
    let url = b.url("/metrics");
    let anonymous = fetch(&b.http, &url, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<_> = anonymous
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer"))
            && challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );
    assert!(!anonymous.text().await.unwrap().contains("berth_"));
    for (auth, status) in [
        ("Bearer wrong-token", StatusCode::UNAUTHORIZED),
        ("Bearer scrape-token-01234567", StatusCode::UNAUTHORIZED),
        (&basic("root", "wrong-password"), StatusCode::UNAUTHORIZED),
        (&basic("alice", "alice-password-1"), StatusCode::FORBIDDEN),
    ] {
        let resp = fetch(&b.http, &url, Some(auth)).await;
        assert_eq!(resp.status(), status, "{auth}");
    }
    let m = scrape_url(&b.http, &url, Some("Bearer scrape-token-0123456789")).await;
    // The refusals were counted too.
    assert_eq!(m.requests("metrics", "GET", "401"), 4.0);
    assert_eq!(m.requests("metrics", "GET", "403"), 1.0);
    scrape_url(&b.http, &url, Some(&basic("root", "root-password-1"))).await;
    // The token is never logged.
    assert!(!b.logs().contains("scrape-token-0123456789"));

    // Without a token, administrators only.
    let b = Berth::start_with(&[("BERTH_AUTH_ENABLED", "true")]);
    b.admin_ok(
        &["user", "add", "root", "--admin", "--password-stdin"],
        "root-password-1\n",
    );
    let url = b.url("/metrics");
    let anonymous = fetch(&b.http, &url, None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let any_bearer = fetch(&b.http, &url, Some("Bearer x")).await;
    assert_eq!(any_bearer.status(), StatusCode::UNAUTHORIZED);
    scrape_url(&b.http, &url, Some(&basic("root", "root-password-1"))).await;
}

/// `[metrics] listen` serves `/metrics` alone on its own address (the main listener no
/// longer does), counting the main listener's traffic; a token protects it there too.
/// `enabled = false` serves it nowhere.
#[tokio::test]
async fn metrics_on_a_separate_listener() {
    let b = Berth::start_with(&[
        ("BERTH_METRICS_LISTEN", "127.0.0.1:0"),
        ("BERTH_METRICS_TOKEN", "scrape-token-0123456789"),
    ]);
    let addr = metrics_addr(&b).await;
    assert_ne!(addr, b.addr.to_string());
    let url = format!("http://{addr}/metrics");
    assert_eq!(
        b.get("/metrics").await.status(),
        StatusCode::NOT_FOUND,
        "served on the main listener too"
    );
    assert_eq!(
        fetch(&b.http, &url, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let base = fetch(&b.http, &format!("http://{addr}/v2/"), None).await;
    assert_eq!(base.status(), StatusCode::NOT_FOUND);
    assert_eq!(b.get("/v2/").await.status(), StatusCode::OK);
    let m = scrape_url(&b.http, &url, Some("Bearer scrape-token-0123456789")).await;
    assert_eq!(m.requests("base", "GET", "200"), 1.0);
    assert_eq!(m.requests("unknown", "GET", "404"), 1.0);
    // Scrapes of the separate listener are not HTTP traffic of the registry.
    assert_eq!(m.requests("metrics", "GET", "401"), 0.0);

    let off = Berth::start_with(&[("BERTH_METRICS_ENABLED", "false")]);
    assert_eq!(off.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    // Without authentication or a token, the main listener's `/metrics` is open.
    let open = Berth::start();
    scrape(&open).await;
}

/// The separate listener's address, from the log line that announces it.
async fn metrics_addr(b: &Berth) -> String {
    for _ in 0..100 {
        for line in b.logs().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let Some(addr) = v.get("metrics").and_then(Value::as_str)
            {
                return addr.to_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no metrics address logged:\n{}", b.logs());
}
