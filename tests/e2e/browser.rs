//! The web UI in real headless Chromium (Debian's `chromium` and `chromium-driver`), driven
//! through WebDriver: sign in, browse a multi-platform image down to its layers, search,
//! create and revoke a token, delete a tag after confirming, and check the page on a phone
//! screen. Screenshots of the main pages land in `target/test-artifacts/ui/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::tool;
use crate::ui::{ALICE_PASSWORD, Hub, basic};

/// A running chromedriver, stopped on drop.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Starts chromedriver and a headless Chromium session, or `None` (a skip, outside CI) when
/// they are not installed.
pub(crate) async fn browser() -> Option<(Driver, Client, tempfile::TempDir)> {
    let driver = tool("chromedriver")?;
    let chromium = tool("chromium")?;
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().expect("profile dir");
    // Headless, as root in a container (no sandbox), and quiet: no background traffic to
    // anywhere but the registry on loopback.
    let args = [
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-gpu".into(),
        "--window-size=1280,900".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-domain-reliability".into(),
        "--disable-sync".into(),
        "--disable-client-side-phishing-detection".into(),
        "--metrics-recording-only".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("WebDriver session");
    Some((driver, client, profile))
}

/// Runs a browser test's steps, then closes the session even when a step failed (so no
/// Chromium is left behind) and lets the failure through.
pub(crate) async fn closing(c: &Client, steps: impl std::future::Future<Output = ()>) {
    let outcome = std::panic::AssertUnwindSafe(steps).catch_unwind().await;
    c.clone().close().await.expect("close session");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Signs `user` in through the login form and waits for the signed-in header.
pub(crate) async fn sign_in(c: &Client, b: &crate::harness::Berth, user: &str, password: &str) {
    c.goto(&b.url("/ui/login")).await.expect("goto");
    fill(c, "#username", user).await;
    fill(c, "#password", password).await;
    click(c, "form.stacked button[type=submit]").await;
    wait_for(c, Locator::Css("form[action='/ui/logout']"))
        .await
        .expect("signed in");
}

/// Signs out with the header's button and waits for the "Sign in" link.
pub(crate) async fn sign_out(c: &Client) {
    click(c, "form[action='/ui/logout'] button").await;
    wait_for(c, Locator::LinkText("Sign in"))
        .await
        .expect("signed out");
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/ui");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

pub(crate) async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).expect("save screenshot");
}

pub(crate) async fn text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .text()
        .await
        .expect("text")
}

/// Waits (up to 15 s) for an element, as pages load after clicks.
pub(crate) async fn wait_for(
    c: &Client,
    locator: Locator<'_>,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(locator)
        .await
}

pub(crate) async fn fill(c: &Client, css: &str, value: &str) {
    let e = c.find(Locator::Css(css)).await.expect(css);
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

pub(crate) async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("click");
}

/// Every visible form control has a label (or an ARIA label).
async fn all_controls_labelled(c: &Client) -> bool {
    let script =
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
        .every(e => e.labels.length > 0 || e.getAttribute('aria-label'));";
    c.execute(script, vec![]).await.expect("script") == json!(true)
}

#[tokio::test]
async fn chromium_signs_in_browses_searches_manages_tokens_and_deletes() {
    let Some((_driver, c, _profile)) = browser().await else {
        return;
    };
    let hub = Hub::start(true).await;
    closing(&c, run(&c, &hub)).await;
}

async fn run(c: &Client, hub: &Hub) {
    let base = hub.b.url("");
    // Sign in.
    c.goto(&format!("{base}/ui/login")).await.expect("goto");
    assert!(all_controls_labelled(c).await);
    fill(c, "#username", "alice").await;
    fill(c, "#password", ALICE_PASSWORD).await;
    screenshot(c, "sign-in").await;
    click(c, "form.stacked button[type=submit]").await;
    wait_for(c, Locator::Css("form[action='/ui/logout']"))
        .await
        .expect("signed in");
    let home = text(c).await;
    assert!(
        home.contains("Recently pushed") && home.contains("acme/app"),
        "{home}"
    );
    screenshot(c, "home").await;

    // Home → repository → the multi-platform tag → one platform's layers.
    c.find(Locator::LinkText("acme/app"))
        .await
        .expect("repository link")
        .click()
        .await
        .expect("click");
    wait_for(c, Locator::Css("table.tags")).await.expect("tags");
    let repo = text(c).await;
    assert!(repo.contains("linux/amd64") && repo.contains("linux/arm64") && repo.contains("v1.0"));
    // The script ran under the content security policy: copy buttons are revealed.
    let copy = c
        .find(Locator::Css("button.copy-button"))
        .await
        .expect("copy button");
    assert!(
        copy.is_displayed().await.expect("displayed"),
        "berth.js did not run"
    );
    screenshot(c, "repository").await;
    c.find(Locator::LinkText("latest"))
        .await
        .expect("tag link")
        .click()
        .await
        .expect("click");
    wait_for(c, Locator::Id("platforms"))
        .await
        .expect("platforms");
    screenshot(c, "index").await;
    click(c, &format!("a[href*='{}']", hub.arm64.digest)).await;
    wait_for(c, Locator::Id("layers")).await.expect("layers");
    let image = text(c).await;
    assert!(
        image.contains("linux/arm64") && image.contains("/bin/app"),
        "{image}"
    );
    assert!(image.contains("application/vnd.oci.image.layer.v1.tar+gzip"));
    screenshot(c, "image").await;
    // The image with config, labels and an SBOM referrer.
    c.goto(&format!(
        "{base}/ui/r/acme/app/-/manifest/{}",
        hub.image.digest
    ))
    .await
    .expect("goto");
    let image = text(c).await;
    assert!(
        image.contains("Referrers") && image.contains(crate::ui::XSS),
        "labels show as text"
    );
    screenshot(c, "image-config").await;

    // Search from the header.
    fill(c, "header #q", "v1").await;
    c.find(Locator::Css("header #q"))
        .await
        .expect("search box")
        .send_keys("\u{E007}")
        .await
        .expect("enter");
    wait_for(c, Locator::Id("found-tags"))
        .await
        .expect("results");
    let found = text(c).await;
    assert!(found.contains("acme/app:v1.0"), "{found}");
    screenshot(c, "search").await;

    // Create a token, use it with the registry, revoke it.
    c.goto(&format!("{base}/ui/account")).await.expect("goto");
    assert!(all_controls_labelled(c).await);
    fill(c, "#token-name", "laptop").await;
    click(c, "form[action='/ui/account/tokens'] button").await;
    let secret = wait_for(c, Locator::Css(".notice .copy code"))
        .await
        .expect("new token")
        .text()
        .await
        .expect("secret");
    assert!(secret.starts_with("berth_"), "{secret}");
    screenshot(c, "account").await;
    let api = reqwest::Client::new();
    let tags = hub.b.url("/v2/alice/public-tool/tags/list");
    let status = |auth: String| {
        let (api, tags) = (api.clone(), tags.clone());
        async move {
            let r = api.get(tags).header("authorization", auth).send().await;
            r.expect("registry").status()
        }
    };
    assert_eq!(status(basic("alice", &secret)).await, StatusCode::OK);
    click(c, "button[aria-label='Revoke token laptop']").await;
    wait_for(c, Locator::Css("p.notice"))
        .await
        .expect("revoked notice");
    assert!(text(c).await.contains("Token laptop revoked."));
    assert_eq!(
        status(basic("alice", &secret)).await,
        StatusCode::UNAUTHORIZED
    );

    // Delete a tag, confirming first.
    c.goto(&format!("{base}/ui/r/acme/app/-/settings"))
        .await
        .expect("goto");
    assert!(all_controls_labelled(c).await);
    fill(c, "#tag", "old").await;
    click(c, "form[action$='/-/delete-tag'] button").await;
    wait_for(c, Locator::Css("section.confirm"))
        .await
        .expect("confirmation");
    screenshot(c, "confirm-delete").await;
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/old").await.status(),
        StatusCode::OK,
        "nothing deleted before confirming"
    );
    click(c, "section.confirm button.danger").await;
    wait_for(c, Locator::Css("table.tags"))
        .await
        .expect("back on the repository");
    assert_eq!(
        hub.b.get("/v2/acme/app/manifests/old").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!text(c).await.contains("\nold\n"));

    // On a phone-sized screen the repository page does not scroll sideways.
    c.set_window_size(390, 844).await.expect("resize");
    c.goto(&format!("{base}/ui/r/acme/app"))
        .await
        .expect("goto");
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
            vec![],
        )
        .await
        .expect("script");
    screenshot(c, "repository-phone").await;
    assert_eq!(fits, json!(true), "the page overflows a phone screen");

    // Sign out.
    c.set_window_size(1280, 900).await.expect("resize");
    click(c, "form[action='/ui/logout'] button").await;
    wait_for(c, Locator::LinkText("Sign in"))
        .await
        .expect("signed out");
    assert!(!text(c).await.contains("acme/app"));
}
