//! The page shell (header, navigation, footer) and small rendering helpers shared by pages.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::asset_version;
use super::form::encode;
use super::viewer::Viewer;
use crate::auth::jwt::civil_time;
use crate::meta::now_ms;

/// A breadcrumb: label and link.
pub type Crumb = (String, String);

/// A whole page around `body`.
pub fn page(viewer: &Viewer, title: &str, crumbs: &[Crumb], body: Markup) -> Markup {
    shell(title, Some(viewer), crumbs, body)
}

/// A page for an error, without knowing who is looking.
pub fn error_page(title: &str, message: &str) -> Markup {
    shell(
        title,
        None,
        &[],
        html! {
            section.notice.error role="alert" {
                h1 { (title) }
                p { (message) }
                p { a href="/ui/" { "Back to the hub" } }
            }
        },
    )
}

fn shell(title: &str, viewer: Option<&Viewer>, crumbs: &[Crumb], body: Markup) -> Markup {
    let v = asset_version();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · berth" }
                link rel="stylesheet" href={ "/ui/static/berth.css?v=" (v) };
                script src={ "/ui/static/berth.js?v=" (v) } defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "berth" }
                    form.search role="search" action="/ui/search" method="get" {
                        label.visually-hidden for="q" { "Search repositories and tags" }
                        input #q type="search" name="q" placeholder="Search repositories and tags" maxlength="200";
                    }
                    nav aria-label="Account" {
                        @if let Some(viewer) = viewer {
                            @if let Some(user) = viewer.user() {
                                @if user.admin {
                                    a #nav-audit href="/ui/audit" { "Audit log" }
                                    a href="/ui/admin/usage" { "Usage" }
                                    a href="/ui/admin/maintenance" { "Maintenance" }
                                }
                                a href="/ui/account" { (user.name) }
                                form.inline action="/ui/logout" method="post" {
                                    (csrf_field(viewer))
                                    button.link type="submit" { "Sign out" }
                                }
                            } @else if viewer.auth_enabled() {
                                a href="/ui/login" { "Sign in" }
                            }
                        }
                    }
                }
                @if !crumbs.is_empty() {
                    nav.crumbs aria-label="Breadcrumb" {
                        ol {
                            li { a href="/ui/" { "Home" } }
                            @for (label, href) in crumbs {
                                li { a href=(href) { (label) } }
                            }
                        }
                    }
                }
                main #main { (body) }
                footer { "berth " (env!("CARGO_PKG_VERSION")) " · OCI registry" }
            }
        }
    }
}

/// The hidden field carrying the viewer's anti-forgery token.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A command with a copy button (the button works with the script; the text can always be
/// selected by hand).
pub fn copy_box(label: &str, text: &str) -> Markup {
    html! {
        div.copy {
            code { (text) }
            button.copy-button type="button" data-copy=(text) aria-label={ "Copy " (label) } hidden { "Copy" }
        }
    }
}

/// A size in SI units, as docker prints them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value < 10.0 {
        format!("{value:.2} {}", UNITS[unit])
    } else if value < 100.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// A size range (`a` when both ends agree).
pub fn size_range((low, high): (u64, u64)) -> String {
    if low == high {
        bytes(low)
    } else {
        format!("{} – {}", bytes(low), bytes(high))
    }
}

/// A UTC timestamp (Unix ms) as ISO 8601.
pub fn iso_time(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil_time(ms.div_euclid(1000));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A timestamp shown as "5 minutes ago", with the exact time on hover.
pub fn when(ms: i64) -> Markup {
    let iso = iso_time(ms);
    html! { time datetime=(iso) title=(iso) { (ago(now_ms() - ms)) } }
}

fn ago(elapsed_ms: i64) -> String {
    let s = elapsed_ms.max(0) / 1000;
    let (n, unit) = match s {
        0..60 => return "just now".into(),
        60..3600 => (s / 60, "minute"),
        3600..86_400 => (s / 3600, "hour"),
        86_400..2_592_000 => (s / 86_400, "day"),
        2_592_000..31_536_000 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// `sha256:0123456789ab` — enough of a digest to recognise it.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.chars().take(19).collect(),
    }
}

/// The link to a repository's page.
pub fn repo_href(name: &str) -> String {
    format!("/ui/r/{name}")
}

/// The link to a manifest's page. Valid digests go in as they are (`:` is fine in a path);
/// anything else read from a manifest is percent-encoded.
pub fn manifest_href(name: &str, digest: &str) -> String {
    match crate::domain::Digest::parse(digest) {
        Ok(d) => format!("/ui/r/{name}/-/manifest/{d}"),
        Err(_) => format!("/ui/r/{name}/-/manifest/{}", encode(digest)),
    }
}

/// Breadcrumbs down to a repository: its namespace, then the repository.
pub fn repo_crumbs(name: &str) -> Vec<Crumb> {
    let namespace = crate::auth::access::namespace_of(name);
    let mut crumbs = Vec::new();
    if namespace != name {
        crumbs.push((namespace.to_owned(), format!("/ui/n/{namespace}")));
    }
    crumbs.push((name.to_owned(), repo_href(name)));
    crumbs
}

/// An HTML response, with a cookie to set when given.
pub fn html_response(markup: Markup, set_cookie: Option<String>) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    if let Some(c) = set_cookie
        && let Ok(v) = header::HeaderValue::from_str(&c)
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_like_docker() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(3_210_000), "3.21 MB");
        assert_eq!(bytes(45_600_000), "45.6 MB");
        assert_eq!(bytes(123_000_000_000), "123 GB");
        assert_eq!(size_range((1000, 1000)), "1.00 kB");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(ago(30_000), "just now");
        assert_eq!(ago(120_000), "2 minutes ago");
        assert_eq!(ago(3_600_000), "1 hour ago");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let m = copy_box("cmd", "<script>alert(1)</script>");
        let s = m.into_string();
        assert!(!s.contains("<script>"), "{s}");
        assert!(s.contains("&lt;script&gt;"));
    }
}
