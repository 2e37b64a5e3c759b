//! OSV advisories (schema 1.6): the record types, whether a record affects an installed
//! package, and how severe it is.
//!
//! - [`Record::from_json`] reads one record. Unknown fields are ignored (the schema grows);
//!   what matching uses is checked: a missing `id`, a range without events, an unknown range
//!   type or an event that is not exactly one of `introduced`, `fixed`, `last_affected`,
//!   `limit` is an [`OsvError`], never a panic.
//! - [`affected`] evaluates a record for one package version by the OSV specification's
//!   algorithm ("Evaluation"), with versions ordered by the ecosystem's own rules
//!   ([`crate::version`]).
//! - [`severity`] takes the record's CVSS vector (v4 if present, else v3, scored by
//!   [`cvss`]), else a qualitative label from `database_specific`/`ecosystem_specific`
//!   (GitHub's `MODERATE`, Ubuntu's `medium`), else [`Level::Unknown`]: Debian and Alpine
//!   records usually carry no severity at all.
//!
//! - [`archive`] reads records where they are published: OSV's `all.zip`, a directory of
//!   records, one record file.
//!
//! Depends on [`crate::version`], and [`archive`] on the zip reader of
//! [`crate::inventory::lang::zip`].

pub mod archive;
pub mod cvss;

use std::cmp::Ordering;

use serde::Deserialize;

use crate::version::{Ecosystem, Scheme, VersionError};

pub use cvss::Level;

/// The largest record [`Record::from_json`] reads. The largest real OSV records (Linux kernel
/// and long-lived GitHub advisories listing thousands of versions) are well under it.
pub const MAX_RECORD_BYTES: usize = 8 << 20;

/// One OSV record.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    /// The advisory's id (`DSA-5218-1`, `GHSA-jfh8-c2jp-5v3q`, `RUSTSEC-2021-0124`).
    pub id: String,
    /// When the record last changed (RFC 3339).
    pub modified: String,
    /// When the advisory was published.
    #[serde(default)]
    pub published: Option<String>,
    /// When the advisory was withdrawn; a withdrawn record affects nothing.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids of the same vulnerability (CVE ids, mostly).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Ids of related but different vulnerabilities.
    #[serde(default)]
    pub related: Vec<String>,
    /// Ids of the advisories this one was derived from (schema 1.6).
    #[serde(default)]
    pub upstream: Vec<String>,
    /// A one-line summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// The full description (Markdown).
    #[serde(default)]
    pub details: Option<String>,
    /// Severity scores of the whole record.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// The packages and versions affected.
    #[serde(default)]
    pub affected: Vec<AffectedPackage>,
    /// Links.
    #[serde(default)]
    pub references: Vec<Reference>,
    /// Whatever the publishing database adds (GitHub's `severity` label, for one).
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A severity score: a type and a vector (or, for `Ubuntu`, a label).
#[derive(Debug, Clone, Deserialize)]
pub struct SeverityScore {
    /// `CVSS_V2`, `CVSS_V3`, `CVSS_V4` or `Ubuntu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The vector string (`CVSS:3.1/AV:N/...`) or label.
    pub score: String,
}

/// One affected package with its versions.
#[derive(Debug, Clone, Deserialize)]
pub struct AffectedPackage {
    /// The package; absent only in records that describe no package (then it matches nothing).
    #[serde(default)]
    pub package: Option<Package>,
    /// Severity specific to this package.
    #[serde(default)]
    pub severity: Vec<SeverityScore>,
    /// Affected version ranges.
    #[serde(default)]
    pub ranges: Vec<Range>,
    /// Affected versions, listed one by one.
    #[serde(default)]
    pub versions: Vec<String>,
    /// Ecosystem-defined data (Ubuntu's and Debian's urgency, for one).
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    /// Database-defined data.
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A package as OSV names it.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// `Debian:12`, `PyPI`, ... (see [`Ecosystem::parse_osv`]).
    pub ecosystem: String,
    /// The name in its ecosystem (OS advisories name source packages).
    pub name: String,
    /// A package URL, when given.
    #[serde(default)]
    pub purl: Option<String>,
}

/// How a range's events are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RangeType {
    /// SemVer 2.0 precedence, whatever the ecosystem.
    Semver,
    /// The ecosystem's own order.
    Ecosystem,
    /// Commit hashes of a repository; berth matches packages, not commits, so these are skipped.
    Git,
}

/// A version range as a list of events.
#[derive(Debug, Clone, Deserialize)]
pub struct Range {
    /// How to order the events.
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository of a `GIT` range.
    #[serde(default)]
    pub repo: Option<String>,
    /// The events, in any order.
    pub events: Vec<Event>,
}

/// One event of a range: exactly one of the four keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Versions from here on are affected (`"0"`: from the beginning).
    Introduced(String),
    /// Versions from here on are not affected.
    Fixed(String),
    /// Versions after this one are not affected.
    LastAffected(String),
    /// Versions from here on are outside the range, whatever else it says.
    Limit(String),
}

impl Event {
    fn version(&self) -> &str {
        match self {
            Self::Introduced(v) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => v,
        }
    }
}

/// A link.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// `ADVISORY`, `FIX`, `WEB`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub url: String,
}

/// Why a record cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    /// The record is larger than [`MAX_RECORD_BYTES`].
    #[error("OSV record is {0} bytes, more than {MAX_RECORD_BYTES}")]
    TooLarge(usize),
    /// The JSON does not fit the schema.
    #[error("malformed OSV record: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON fits, but a rule of the schema is broken.
    #[error("malformed OSV record {id:?}: {reason}")]
    Invalid {
        /// The record's id (may be empty when that is what is wrong).
        id: String,
        /// The broken rule.
        reason: &'static str,
    },
    /// A version in a range is not a version of the range's scheme.
    #[error("OSV record {id}: {source}")]
    Version {
        /// The record's id.
        id: String,
        /// The version that does not parse.
        source: VersionError,
    },
}

impl Record {
    /// Reads and checks one record.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OsvError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(OsvError::TooLarge(bytes.len()));
        }
        let record: Self = serde_json::from_slice(bytes)?;
        record.check()?;
        Ok(record)
    }

    fn check(&self) -> Result<(), OsvError> {
        let invalid = |reason| OsvError::Invalid {
            id: self.id.chars().take(64).collect(),
            reason,
        };
        if self.id.trim().is_empty() {
            return Err(invalid("empty id"));
        }
        if self.modified.trim().is_empty() {
            return Err(invalid("empty modified"));
        }
        for affected in &self.affected {
            for range in &affected.ranges {
                if range.events.is_empty() {
                    return Err(invalid("a range without events"));
                }
                if !range
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Introduced(_)))
                {
                    return Err(invalid("a range without an introduced event"));
                }
                if range.kind == RangeType::Git && range.repo.is_none() {
                    return Err(invalid("a GIT range without a repo"));
                }
            }
        }
        Ok(())
    }
}

/// What a record says about an installed package it affects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    /// The versions that fix it, oldest first: for each range the installed version is in,
    /// the first `fixed` event after it. Empty when no fix is known (only `last_affected`, or
    /// an open range).
    pub fixed: Vec<String>,
}

/// Whether `record` affects version `installed` of `package` in `ecosystem` (an OSV ecosystem
/// string such as `Debian:12`), and if so with which fixes.
///
/// A record's package matches when its ecosystem is the same and its release is absent or
/// applies to the package's ([`Ecosystem::release_applies`]: the same, or for Red Hat one of
/// the release's product streams), and its name is the same (PyPI names are compared
/// normalised, as PEP 503 says).
/// Withdrawn records affect nothing. A version that does not parse in the scheme of a range
/// that applies is an error, so the caller can log the record and go on.
pub fn affected(
    record: &Record,
    ecosystem: &str,
    package: &str,
    installed: &str,
) -> Result<Option<Affected>, OsvError> {
    if record.withdrawn.is_some() {
        return Ok(None);
    }
    let Ok(target) = Ecosystem::parse_osv(ecosystem) else {
        return Ok(None);
    };
    let mut found: Option<(Scheme, Vec<String>)> = None;
    for entry in &record.affected {
        let Some(p) = &entry.package else { continue };
        let Ok(theirs) = Ecosystem::parse_osv(&p.ecosystem) else {
            continue;
        };
        if theirs.ecosystem != target.ecosystem
            || theirs.release.as_deref().is_some_and(|r| {
                !target
                    .ecosystem
                    .release_applies(r, target.release.as_deref().unwrap_or_default())
            })
            || !same_name(target.ecosystem, &p.name, package)
        {
            continue;
        }
        let eco_scheme = target.ecosystem.scheme();
        let mut hit = listed(eco_scheme, &entry.versions, installed);
        let mut fixed = Vec::new();
        for range in &entry.ranges {
            let scheme = match range.kind {
                RangeType::Git => continue,
                RangeType::Ecosystem => eco_scheme,
                RangeType::Semver if eco_scheme == Scheme::Go => Scheme::Go,
                RangeType::Semver => Scheme::SemVer,
            };
            let verdict =
                evaluate(scheme, &range.events, installed).map_err(|source| OsvError::Version {
                    id: record.id.clone(),
                    source,
                })?;
            if let Some(fix) = verdict {
                hit = true;
                fixed.extend(fix);
            }
        }
        if hit {
            let (_, all) = found.get_or_insert_with(|| (eco_scheme, Vec::new()));
            all.extend(fixed);
        }
    }
    Ok(found.map(|(scheme, mut fixed)| {
        sort_versions(scheme, &mut fixed);
        fixed.dedup();
        Affected { fixed }
    }))
}

/// PyPI names are case-insensitive and treat runs of `-`, `_` and `.` alike (PEP 503); other
/// ecosystems compare names exactly.
fn same_name(ecosystem: Ecosystem, a: &str, b: &str) -> bool {
    if ecosystem != Ecosystem::PyPi {
        return a == b;
    }
    pep503_name(a) == pep503_name(b)
}

/// A PyPI name in PEP 503 normal form: lower case, each run of `-`, `_` and `.` one `-`.
pub fn pep503_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether `installed` is in the explicit `versions` list: the same string, or the same version
/// in the ecosystem's order (PyPI's `1.0` is `1.0.0`). Entries that do not parse can only match
/// as strings: the list is data, not a range.
fn listed(scheme: Scheme, versions: &[String], installed: &str) -> bool {
    versions
        .iter()
        .any(|v| v == installed || scheme.compare(v, installed) == Ok(Ordering::Equal))
}

/// The OSV evaluation of one range: `None` when `installed` is outside it, else the first
/// `fixed` event after it (if any).
fn evaluate(
    scheme: Scheme,
    events: &[Event],
    installed: &str,
) -> Result<Option<Option<String>>, VersionError> {
    match scheme {
        Scheme::Dpkg => evaluate_in(crate::version::dpkg::Version::parse, events, installed),
        Scheme::Apk => evaluate_in(crate::version::apk::Version::parse, events, installed),
        Scheme::Rpm => evaluate_in(crate::version::rpm::Version::parse, events, installed),
        Scheme::SemVer => evaluate_in(crate::version::semver::Version::parse, events, installed),
        Scheme::Go => evaluate_in(crate::version::golang::Version::parse, events, installed),
        Scheme::Pep440 => evaluate_in(crate::version::pep440::Version::parse, events, installed),
        Scheme::Maven => evaluate_in(crate::version::maven::Version::parse, events, installed),
    }
}

fn evaluate_in<V: Ord>(
    parse: fn(&str) -> Result<V, VersionError>,
    events: &[Event],
    installed: &str,
) -> Result<Option<Option<String>>, VersionError> {
    let version = parse(installed)?;
    // `introduced: "0"` is before every version, whatever the scheme; it has no parsed form.
    let events = events
        .iter()
        .map(|event| match event {
            Event::Introduced(v) if v == "0" => Ok((None, event)),
            _ => parse(event.version()).map(|v| (Some(v), event)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limited = events.iter().any(|(_, e)| matches!(e, Event::Limit(_)));
    let below_a_limit = events.iter().any(|(at, e)| {
        matches!(e, Event::Limit(_)) && at.as_ref().is_some_and(|limit| version < *limit)
    });
    if limited && !below_a_limit {
        return Ok(None);
    }
    // The specification walks the events sorted by version and lets each one at or below the
    // installed version set the state; the state left is that of the greatest such event (the
    // later one in the record on a tie). Finding it directly needs no sort, so an order that is
    // not total on odd strings (Maven's is not) cannot make it panic.
    let mut last: Option<(&Option<V>, bool)> = None;
    for (at, event) in &events {
        let state = match (event, at) {
            (Event::Introduced(_), None) => true,
            (Event::Introduced(_), Some(at)) if version >= *at => true,
            (Event::Fixed(_), Some(at)) if version >= *at => false,
            (Event::LastAffected(_), Some(at)) if version > *at => false,
            _ => continue,
        };
        if last.is_none_or(|(greatest, _)| at >= greatest) {
            last = Some((at, state));
        }
    }
    if !last.is_some_and(|(_, affected)| affected) {
        return Ok(None);
    }
    // The fix is the first `fixed` event after the installed version.
    let mut fix: Option<(&V, &String)> = None;
    for (at, event) in &events {
        if let (Event::Fixed(name), Some(at)) = (event, at)
            && *at > version
            && fix.is_none_or(|(best, _)| at < best)
        {
            fix = Some((at, name));
        }
    }
    Ok(Some(fix.map(|(_, name)| name.clone())))
}

/// Sorts versions oldest first by insertion, which terminates and never panics whatever the
/// comparison does; there is one version per matching range, so few.
fn sort_versions(scheme: Scheme, versions: &mut [String]) {
    for i in 1..versions.len() {
        let mut j = i;
        while j > 0 && scheme.compare(&versions[j - 1], &versions[j]) == Ok(Ordering::Greater) {
            versions.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// A record's severity for one package.
#[derive(Debug, Clone, PartialEq)]
pub struct Severity {
    /// The qualitative level.
    pub level: Level,
    /// The CVSS base score, when a vector was scored.
    pub score: Option<f64>,
    /// The vector or label it came from.
    pub source: Option<String>,
}

/// The severity of `record` for the affected entry `entry` (or the record as a whole): the
/// entry's own CVSS vectors, then the record's, v4 before v3 (v2 is not scored); then a label
/// from `database_specific.severity` or `ecosystem_specific.severity`/`urgency`; else
/// [`Level::Unknown`]. A vector that does not parse is skipped, not an error.
pub fn severity(record: &Record, entry: Option<&AffectedPackage>) -> Severity {
    let scores = entry
        .map(|e| e.severity.as_slice())
        .unwrap_or_default()
        .iter()
        .chain(&record.severity);
    let scores: Vec<&SeverityScore> = scores.collect();
    for kind in ["CVSS_V4", "CVSS_V3"] {
        for s in scores.iter().filter(|s| s.kind == kind) {
            let scored = if kind == "CVSS_V4" {
                cvss::score_v4(&s.score)
            } else {
                cvss::score_v3(&s.score)
            };
            if let Ok(score) = scored {
                return Severity {
                    level: Level::from_score(score),
                    score: Some(score),
                    source: Some(s.score.clone()),
                };
            }
        }
    }
    let labels = [
        entry
            .and_then(|e| e.database_specific.as_ref())
            .and_then(|d| d.get("severity")),
        entry
            .and_then(|e| e.ecosystem_specific.as_ref())
            .and_then(|d| d.get("severity")),
        entry
            .and_then(|e| e.ecosystem_specific.as_ref())
            .and_then(|d| d.get("urgency")),
        record
            .database_specific
            .as_ref()
            .and_then(|d| d.get("severity")),
    ];
    let ubuntu = scores
        .iter()
        .find(|s| s.kind == "Ubuntu")
        .map(|s| s.score.as_str());
    let label = labels
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .chain(ubuntu);
    for label in label {
        if let Some(level) = Level::from_label(label) {
            return Severity {
                level,
                score: None,
                source: Some(label.to_owned()),
            };
        }
    }
    Severity {
        level: Level::Unknown,
        score: None,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(json: &str) -> Record {
        Record::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn one_range(ecosystem: &str, name: &str, kind: &str, events: &str) -> Record {
        record(&format!(
            r#"{{"id":"TEST-1","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"{ecosystem}","name":"{name}"}},"ranges":[{{"type":"{kind}","events":{events}}}]}}]}}"#
        ))
    }

    fn fixed(r: &Record, eco: &str, name: &str, v: &str) -> Option<Vec<String>> {
        affected(r, eco, name, v)
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|a| a.fixed)
    }

    #[test]
    fn spec_evaluation_with_two_ranges_and_last_affected() {
        let r = one_range(
            "PyPI",
            "pkg",
            "ECOSYSTEM",
            r#"[{"introduced":"1.0"},{"fixed":"1.5"},{"introduced":"2.0"},{"last_affected":"2.3"}]"#,
        );
        assert_eq!(fixed(&r, "PyPI", "pkg", "0.9"), None);
        assert_eq!(
            fixed(&r, "PyPI", "pkg", "1.0"),
            Some(vec!["1.5".to_owned()])
        );
        assert_eq!(
            fixed(&r, "PyPI", "pkg", "1.4.9"),
            Some(vec!["1.5".to_owned()])
        );
        assert_eq!(fixed(&r, "PyPI", "pkg", "1.5"), None);
        assert_eq!(fixed(&r, "PyPI", "pkg", "1.7"), None);
        assert_eq!(
            fixed(&r, "PyPI", "pkg", "2.3"),
            Some(vec![]),
            "last_affected is inclusive"
        );
        assert_eq!(fixed(&r, "PyPI", "pkg", "2.3.post1"), None);
    }

    #[test]
    fn events_are_sorted_by_the_ecosystem_not_by_text() {
        // "1.10" sorts before "1.9" as text; dpkg puts it after.
        let r = one_range(
            "Debian:12",
            "p",
            "ECOSYSTEM",
            r#"[{"fixed":"1.10-1"},{"introduced":"1.9-1"}]"#,
        );
        assert_eq!(
            fixed(&r, "Debian:12", "p", "1.9-3"),
            Some(vec!["1.10-1".to_owned()])
        );
        assert_eq!(fixed(&r, "Debian:12", "p", "1.10-1"), None);
        assert_eq!(fixed(&r, "Debian:12", "p", "1.8"), None);
    }

    #[test]
    fn limit_bounds_the_range() {
        let r = one_range(
            "crates.io",
            "c",
            "SEMVER",
            r#"[{"introduced":"0"},{"limit":"2.0.0"}]"#,
        );
        assert_eq!(fixed(&r, "crates.io", "c", "1.9.9"), Some(vec![]));
        assert_eq!(fixed(&r, "crates.io", "c", "2.0.0"), None);
    }

    #[test]
    fn git_ranges_are_skipped_and_versions_lists_honoured() {
        let r = record(
            r#"{"id":"T","modified":"x","affected":[{"package":{"ecosystem":"PyPI","name":"Foo_Bar"},
            "ranges":[{"type":"GIT","repo":"https://example.invalid/r","events":[{"introduced":"0"}]}],
            "versions":["1.0","2.0"]}]}"#,
        );
        assert_eq!(
            fixed(&r, "PyPI", "foo-bar", "1.0.0"),
            Some(vec![]),
            "1.0.0 is 1.0 in PEP 440"
        );
        assert_eq!(fixed(&r, "PyPI", "FOO.bar", "2.0"), Some(vec![]));
        assert_eq!(
            fixed(&r, "PyPI", "foo-bar", "1.5"),
            None,
            "the GIT range says nothing"
        );
        assert_eq!(fixed(&r, "npm", "foo-bar", "1.0"), None);
    }

    #[test]
    fn ecosystem_release_must_match_when_the_record_names_one() {
        let r = one_range(
            "Debian:11",
            "zlib",
            "ECOSYSTEM",
            r#"[{"introduced":"0"},{"fixed":"1:1.2.11.dfsg-2+deb11u2"}]"#,
        );
        assert!(fixed(&r, "Debian:11", "zlib", "1:1.2.11.dfsg-2+deb11u1").is_some());
        assert_eq!(
            fixed(&r, "Debian:12", "zlib", "1:1.2.11.dfsg-2+deb11u1"),
            None
        );
        assert_eq!(fixed(&r, "Debian", "zlib", "1:1.2.11.dfsg-2+deb11u1"), None);
        assert_eq!(
            fixed(&r, "Ubuntu:22.04:LTS", "zlib", "1:1.2.11.dfsg-2+deb11u1"),
            None
        );
        assert_eq!(fixed(&r, "Nonsense", "zlib", "1"), None);
    }

    #[test]
    fn go_semver_ranges_take_v_prefixed_versions() {
        let r = one_range(
            "Go",
            "golang.org/x/net",
            "SEMVER",
            r#"[{"introduced":"0"},{"fixed":"0.7.0"}]"#,
        );
        assert_eq!(
            fixed(&r, "Go", "golang.org/x/net", "v0.6.0"),
            Some(vec!["0.7.0".to_owned()])
        );
        assert_eq!(
            fixed(
                &r,
                "Go",
                "golang.org/x/net",
                "v0.0.0-20220722155237-a158d28d115b"
            ),
            Some(vec!["0.7.0".to_owned()])
        );
        assert_eq!(fixed(&r, "Go", "golang.org/x/net", "v0.7.0"), None);
    }

    #[test]
    fn odd_maven_versions_evaluate_without_sorting() {
        // Maven's order is not transitive on strings like these; evaluation must still answer.
        let r = one_range(
            "Maven",
            "g:a",
            "ECOSYSTEM",
            r#"[{"introduced":"."},{"fixed":"0a09~t~"},{"introduced":"1-sp"},{"last_affected":"1.x"},{"limit":"2-"}]"#,
        );
        for installed in [".", "0a09~t~", "1", "1-sp", "1.x", "1-1", "2", "0"] {
            assert!(
                affected(&r, "Maven", "g:a", installed).is_ok(),
                "{installed}"
            );
        }
    }

    #[test]
    fn withdrawn_records_affect_nothing() {
        let mut r = one_range("npm", "x", "SEMVER", r#"[{"introduced":"0"}]"#);
        assert!(fixed(&r, "npm", "x", "1.0.0").is_some());
        r.withdrawn = Some("2024-01-02T00:00:00Z".to_owned());
        assert_eq!(fixed(&r, "npm", "x", "1.0.0"), None);
    }

    #[test]
    fn bad_versions_are_errors_not_panics() {
        let r = one_range(
            "npm",
            "x",
            "SEMVER",
            r#"[{"introduced":"0"},{"fixed":"not a version"}]"#,
        );
        assert!(matches!(
            affected(&r, "npm", "x", "1.0.0"),
            Err(OsvError::Version { .. })
        ));
        let r = one_range("npm", "x", "SEMVER", r#"[{"introduced":"0"}]"#);
        assert!(matches!(
            affected(&r, "npm", "x", "1.0"),
            Err(OsvError::Version { .. })
        ));
    }

    #[test]
    fn malformed_records_are_errors() {
        let bad = [
            "",
            "null",
            "[]",
            "{}",
            r#"{"id":"X"}"#,
            r#"{"id":"","modified":"m"}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"ECOSYSTEM","events":[]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1"}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"WEIRD","events":[{"introduced":"0"}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"GIT","events":[{"introduced":"0"}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"SEMVER","events":[{"fixd":"1"}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":[{"ranges":[{"type":"SEMVER","events":[{"introduced":0}]}]}]}"#,
            r#"{"id":"X","modified":"m","affected":"all"}"#,
            r#"{"id":"X","modified":"m","severity":[{"type":"CVSS_V3"}]}"#,
        ];
        for json in bad {
            assert!(
                Record::from_json(json.as_bytes()).is_err(),
                "{json} accepted"
            );
        }
        let deep = "[".repeat(100_000);
        assert!(Record::from_json(deep.as_bytes()).is_err());
        let huge = vec![b' '; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            Record::from_json(&huge),
            Err(OsvError::TooLarge(_))
        ));
        // Unknown fields are fine.
        record(
            r#"{"id":"X","modified":"m","schema_version":"1.6.0","credits":[{"name":"a"}],"new_field":{}}"#,
        );
    }

    #[test]
    fn severity_prefers_vectors_then_labels_then_unknown() {
        let r = record(
            r#"{"id":"X","modified":"m","severity":[
                {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
                {"type":"CVSS_V4","score":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
                "database_specific":{"severity":"MODERATE"}}"#,
        );
        let s = severity(&r, None);
        assert_eq!((s.level, s.score), (Level::Critical, Some(9.3)), "v4 first");
        let r = record(
            r#"{"id":"X","modified":"m","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/garbage"}],
                "database_specific":{"severity":"MODERATE"}}"#,
        );
        assert_eq!(
            severity(&r, None).level,
            Level::Medium,
            "a bad vector falls back to the label"
        );
        let r = record(r#"{"id":"DSA-1","modified":"m"}"#);
        assert_eq!(
            severity(&r, None),
            Severity {
                level: Level::Unknown,
                score: None,
                source: None
            }
        );
        let r = record(
            r#"{"id":"UBUNTU-CVE-1","modified":"m","severity":[{"type":"Ubuntu","score":"high"}]}"#,
        );
        assert_eq!(severity(&r, None).level, Level::High);
    }
}
