//! Vulnerability policies: which findings a namespace accepts (its CVE allowlist, each entry
//! until its expiry) and above which severity its images are refused (`prevent_vulnerable`).
//!
//! The same `[[scan.policy]]` tables serve the registry (in berth's configuration, scopes are
//! repository names: `team` or `team/app`) and the runtime (in `/etc/berth/policy.toml`,
//! scopes name a registry: `registry.example.com/team`), as `[[trust.policy]]` tables do. A
//! scope covers that name and everything under `scope/`; the most specific scope covering a
//! name is the one that applies, so `team/app` can relax or tighten what `team` says.
//!
//! ```toml
//! [[scan.policy]]
//! scope = "team"
//! prevent_vulnerable = "high"          # critical | high | medium | low; absent: refuse nothing
//! allowlist = [
//!   { id = "CVE-2023-1234", expires = "2027-01-31", reason = "not reachable" },
//!   { id = "GHSA-xxxx-yyyy-zzzz" },    # no expiry: accepted for good
//! ]
//! ```
//!
//! An entry names an advisory by its id or any alias (compared without case). A date expires
//! at its start, 00:00 UTC; an RFC 3339 time at that instant. From that second on the entry no
//! longer accepts anything, and the finding is reported with the expired entry, so that
//! people see why an image that passed yesterday is refused today.
//!
//! [`judge`] is the one rule, pure: findings, an allowlist, a threshold and "now" in, which
//! finding each entry accepts and the counts of the others out. No I/O; the registry feeds it
//! stored findings, the runtime the findings of an image it inventoried.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::matching::{AllowEntry, Allowlist, Finding, Threshold};
use crate::osv::Level;

/// One allowlist entry as written: in a `[[scan.policy]]` table, an organization's list
/// (JSON), or `berth scan --allowlist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowItem {
    /// The advisory id or an alias (`CVE-2023-1234`).
    pub id: String,
    /// When it stops accepting: a date (`2027-01-31`, 00:00 UTC) or an RFC 3339 time; TOML's
    /// own dates and times too. Absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Expiry>,
    /// Why it is accepted, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An expiry as written: a string, or a TOML date or time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Expiry {
    /// `"2027-01-31"`, `"2027-01-31T12:00:00Z"`.
    Text(String),
    /// `2027-01-31` (TOML).
    Toml(toml::value::Datetime),
}

impl Expiry {
    /// As written.
    pub fn as_text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Toml(d) => d.to_string(),
        }
    }
}

/// Longest advisory id or alias accepted in an entry.
pub const MAX_ID_LEN: usize = 128;
/// Longest reason accepted in an entry.
pub const MAX_REASON_LEN: usize = 1024;

/// Why an allowlist entry is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The id is empty, too long or has spaces or control characters.
    #[error("allowlist entry {0:?}: an id is an advisory id or CVE, without spaces")]
    Id(String),
    /// The expiry is not a date or an RFC 3339 time.
    #[error(
        "allowlist entry {id}: expires {expires:?} is not a date (2027-01-31) or an RFC 3339 time"
    )]
    Expiry {
        /// The entry's id.
        id: String,
        /// As written.
        expires: String,
    },
    /// The reason is too long.
    #[error("allowlist entry {0}: the reason is longer than {MAX_REASON_LEN} bytes")]
    Reason(String),
}

impl AllowItem {
    /// The entry, its expiry as Unix seconds.
    pub fn entry(&self) -> Result<AllowEntry, EntryError> {
        let id = self.id.trim();
        if id.is_empty()
            || id.len() > MAX_ID_LEN
            || id.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(EntryError::Id(self.id.chars().take(MAX_ID_LEN).collect()));
        }
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.len() > MAX_REASON_LEN)
        {
            return Err(EntryError::Reason(id.to_owned()));
        }
        let expires = self
            .expires
            .as_ref()
            .map(|e| {
                unix_seconds(e).ok_or_else(|| EntryError::Expiry {
                    id: id.to_owned(),
                    expires: e.as_text().chars().take(64).collect(),
                })
            })
            .transpose()?;
        Ok(AllowEntry {
            id: id.to_owned(),
            expires,
            reason: self.reason.clone(),
        })
    }
}

/// Reads allowlist entries.
pub fn allowlist(items: &[AllowItem]) -> Result<Allowlist, EntryError> {
    Ok(Allowlist {
        entries: items
            .iter()
            .map(AllowItem::entry)
            .collect::<Result<_, _>>()?,
    })
}

/// An expiry as Unix seconds: an RFC 3339 time, or a date, which expires at its start, 00:00
/// UTC. A time without an offset (TOML's local times) is taken as UTC.
pub fn unix_seconds(expiry: &Expiry) -> Option<i64> {
    let parsed;
    let d = match expiry {
        Expiry::Toml(d) => d,
        Expiry::Text(t) => {
            parsed = t.trim().parse::<toml::value::Datetime>().ok()?;
            &parsed
        }
    };
    let date = d.date?;
    let (h, m, s) = d
        .time
        .map_or((0, 0, 0), |t| (t.hour, t.minute, t.second.unwrap_or(0)));
    let offset_minutes = match d.offset {
        None | Some(toml::value::Offset::Z) => 0,
        Some(toml::value::Offset::Custom { minutes }) => i64::from(minutes),
    };
    let days = days_from_civil(
        i64::from(date.year),
        i64::from(date.month),
        i64::from(date.day),
    );
    Some(
        days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s)
            - offset_minutes * 60,
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as an RFC 3339 time, UTC.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// One `[[scan.policy]]` table as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A repository or namespace (registry) or an image reference prefix (runtime).
    pub scope: String,
    /// Refuse pulls (and runs) of images with findings at or above this severity that no
    /// entry accepts: `critical`, `high`, `medium` or `low`. Absent: refuse nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevent_vulnerable: Option<String>,
    /// Accepted advisories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowlist: Vec<AllowItem>,
    /// Registry only: robot accounts may pull what the policy would refuse (CI that pushes,
    /// scans, then decides).
    #[serde(default)]
    pub exempt_robots: bool,
}

/// Why policies could not be loaded; each names its table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A scope is empty or malformed.
    #[error("scan.policy[{index}]: invalid scope {scope:?}: {reason}")]
    Scope {
        /// Which table.
        index: usize,
        /// The scope as written.
        scope: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two tables have the same scope.
    #[error("scan.policy[{index}]: scope {scope:?} appears twice (also scan.policy[{first}])")]
    Duplicate {
        /// The later table.
        index: usize,
        /// The earlier one.
        first: usize,
        /// The scope.
        scope: String,
    },
    /// `prevent_vulnerable` is not a severity.
    #[error(
        "scan.policy[{index}]: prevent_vulnerable = {value:?} is not a severity: use critical, high, medium or low"
    )]
    Threshold {
        /// Which table.
        index: usize,
        /// As written.
        value: String,
    },
    /// An allowlist entry is unusable.
    #[error("scan.policy[{index}]: {source}")]
    Entry {
        /// Which table.
        index: usize,
        /// Why.
        #[source]
        source: EntryError,
    },
}

/// A policy, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The scope it covers.
    pub scope: String,
    /// The severity at or above which unaccepted findings refuse an image, if any.
    pub prevent_vulnerable: Option<Threshold>,
    /// Accepted advisories.
    pub allowlist: Allowlist,
    /// Whether robots may pull what it refuses.
    pub exempt_robots: bool,
}

/// Every policy, looked up by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    policies: Vec<Policy>,
}

impl Policies {
    /// Reads `configs`; invalid scopes, thresholds and entries and duplicate scopes are
    /// errors naming the table.
    pub fn load(configs: &[PolicyConfig]) -> Result<Self, PolicyError> {
        let mut policies: Vec<Policy> = Vec::with_capacity(configs.len());
        for (index, config) in configs.iter().enumerate() {
            let scope = config.scope.trim_end_matches('/');
            check_scope(scope).map_err(|reason| PolicyError::Scope {
                index,
                scope: config.scope.clone(),
                reason,
            })?;
            if let Some(first) = policies.iter().position(|p| p.scope == scope) {
                return Err(PolicyError::Duplicate {
                    index,
                    first,
                    scope: scope.to_owned(),
                });
            }
            let prevent_vulnerable = config
                .prevent_vulnerable
                .as_deref()
                .map(|v| {
                    v.parse::<Threshold>()
                        .ok()
                        .filter(|t| t.0 >= Level::Low)
                        .ok_or_else(|| PolicyError::Threshold {
                            index,
                            value: v.chars().take(32).collect(),
                        })
                })
                .transpose()?;
            let allowlist = allowlist(&config.allowlist)
                .map_err(|source| PolicyError::Entry { index, source })?;
            policies.push(Policy {
                scope: scope.to_owned(),
                prevent_vulnerable,
                allowlist,
                exempt_robots: config.exempt_robots,
            });
        }
        Ok(Self { policies })
    }

    /// The policy for `name` (a repository, or an image reference without tag): the one with
    /// the longest scope covering it.
    pub fn for_name(&self, name: &str) -> Option<&Policy> {
        self.policies
            .iter()
            .filter(|p| covers(&p.scope, name))
            .max_by_key(|p| p.scope.len())
    }

    /// Whether no policy is configured.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Every policy, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.policies.iter()
    }
}

fn check_scope(scope: &str) -> Result<(), &'static str> {
    if scope.is_empty() {
        return Err("a scope names a namespace or repository; it cannot be empty");
    }
    if scope
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("empty, `.` and `..` path segments are not allowed");
    }
    // A port is the only `:` a name prefix has (`host:5000/team`).
    let rest = scope.split_once('/').map_or("", |(_, rest)| rest);
    if scope.contains(['@', '*', '?', ' ']) || rest.contains(':') {
        return Err("a scope is a name prefix, without tag, digest or wildcards");
    }
    Ok(())
}

/// Whether `scope` covers `name`: the same name, or a name under `scope/`.
pub fn covers(scope: &str, name: &str) -> bool {
    name.strip_prefix(scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// What [`judge`] needs of a finding: the registry's stored findings and [`Finding`] both.
pub trait Judged {
    /// The advisory's id.
    fn advisory(&self) -> &str;
    /// Its aliases.
    fn aliases(&self) -> &[String];
    /// Its severity.
    fn level(&self) -> Level;
}

impl Judged for Finding {
    fn advisory(&self) -> &str {
        &self.advisory
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn level(&self) -> Level {
        self.severity
    }
}

/// What an allowlist says of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// No entry names it: it counts.
    Open,
    /// Entry `i` accepts it.
    Allowlisted(usize),
    /// Only entries that have expired name it (the first such, `i`): it counts again.
    Expired(usize),
}

/// Counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Critical.
    pub critical: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
    /// Scored 0.
    pub none: u64,
    /// Without a score or label.
    pub unknown: u64,
}

impl Counts {
    fn add(&mut self, level: Level) {
        *match level {
            Level::Critical => &mut self.critical,
            Level::High => &mut self.high,
            Level::Medium => &mut self.medium,
            Level::Low => &mut self.low,
            Level::None => &mut self.none,
            Level::Unknown => &mut self.unknown,
        } += 1;
    }

    /// The counts, most severe first, as `(level, count)`.
    pub fn by_level(&self) -> [(Level, u64); 6] {
        [
            (Level::Critical, self.critical),
            (Level::High, self.high),
            (Level::Medium, self.medium),
            (Level::Low, self.low),
            (Level::None, self.none),
            (Level::Unknown, self.unknown),
        ]
    }

    /// All of them.
    pub fn total(&self) -> u64 {
        self.by_level().iter().map(|(_, n)| n).sum()
    }
}

/// What [`judge`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Per finding, in the order given.
    pub marks: Vec<Mark>,
    /// The findings no live entry accepts, by severity.
    pub open: Counts,
    /// The findings accepted.
    pub allowlisted: u64,
    /// The threshold judged against, if any.
    pub threshold: Option<Threshold>,
}

impl Judgement {
    /// The open findings at or above the threshold, by severity (zero without a threshold).
    pub fn over_threshold(&self) -> Counts {
        let mut c = self.open;
        for (level, n) in [
            (Level::Critical, &mut c.critical),
            (Level::High, &mut c.high),
            (Level::Medium, &mut c.medium),
            (Level::Low, &mut c.low),
            (Level::None, &mut c.none),
            (Level::Unknown, &mut c.unknown),
        ] {
            if !self.threshold.is_some_and(|t| t.met_by(level)) {
                *n = 0;
            }
        }
        c
    }

    /// Whether an open finding is at or above the threshold.
    pub fn refuses(&self) -> bool {
        self.over_threshold().total() > 0
    }

    /// Why it refuses, for people: `2 critical, 1 high not allowlisted (threshold high)`;
    /// `None` when it does not.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refuses().then(|| Refusal {
            counts: self.over_threshold(),
            threshold: self.threshold.unwrap_or(Threshold(Level::Unknown)),
        })
    }
}

/// The counts that refuse an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Open findings at or above the threshold.
    pub counts: Counts,
    /// The threshold.
    pub threshold: Threshold,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .counts
            .by_level()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(level, n)| format!("{n} {}", level.as_str()))
            .collect();
        write!(
            f,
            "{} not allowlisted (threshold {})",
            parts.join(", "),
            self.threshold
        )
    }
}

/// Judges `findings` against `allowlist` and `threshold` at `now` (Unix seconds): which entry
/// accepts each finding (an entry whose expiry is after `now`; at `now` it has expired), and
/// the counts of the findings no entry accepts.
pub fn judge<F: Judged>(
    findings: &[F],
    allowlist: &Allowlist,
    threshold: Option<Threshold>,
    now: i64,
) -> Judgement {
    let mut open = Counts::default();
    let mut allowlisted = 0;
    let marks = findings
        .iter()
        .map(|f| {
            let names = |e: &AllowEntry| {
                e.id.eq_ignore_ascii_case(f.advisory())
                    || f.aliases().iter().any(|a| e.id.eq_ignore_ascii_case(a))
            };
            let live = |e: &AllowEntry| e.expires.is_none_or(|t| t > now);
            let entries = &allowlist.entries;
            if let Some(i) = entries.iter().position(|e| live(e) && names(e)) {
                allowlisted += 1;
                return Mark::Allowlisted(i);
            }
            open.add(f.level());
            match entries.iter().position(names) {
                Some(i) => Mark::Expired(i),
                None => Mark::Open,
            }
        })
        .collect();
    Judgement {
        marks,
        open,
        allowlisted,
        threshold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct F(&'static str, &'static [&'static str], Level);

    impl Judged for (String, Vec<String>, Level) {
        fn advisory(&self) -> &str {
            &self.0
        }
        fn aliases(&self) -> &[String] {
            &self.1
        }
        fn level(&self) -> Level {
            self.2
        }
    }

    fn findings(list: &[F]) -> Vec<(String, Vec<String>, Level)> {
        list.iter()
            .map(|F(id, aliases, level)| {
                (
                    (*id).to_owned(),
                    aliases.iter().map(|a| (*a).to_owned()).collect(),
                    *level,
                )
            })
            .collect()
    }

    fn item(id: &str, expires: Option<&str>) -> AllowItem {
        AllowItem {
            id: id.into(),
            expires: expires.map(|e| Expiry::Text(e.into())),
            reason: None,
        }
    }

    fn config(scope: &str) -> PolicyConfig {
        PolicyConfig {
            scope: scope.into(),
            prevent_vulnerable: None,
            allowlist: Vec::new(),
            exempt_robots: false,
        }
    }

    #[test]
    fn expiries_are_dates_at_midnight_utc_or_rfc3339_times() {
        let secs = |e: &str| unix_seconds(&Expiry::Text(e.into()));
        assert_eq!(secs("1970-01-01"), Some(0));
        assert_eq!(secs("2027-01-31"), Some(1_801_353_600));
        assert_eq!(secs("2027-01-31T00:00:00Z"), Some(1_801_353_600));
        assert_eq!(secs("2027-01-31T01:00:00+01:00"), Some(1_801_353_600));
        assert_eq!(secs("2000-02-29T12:34:56Z"), Some(951_827_696));
        assert_eq!(secs("tomorrow"), None);
        assert_eq!(secs("12:00:00"), None);
        assert_eq!(rfc3339(1_801_353_600), "2027-01-31T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
    }

    #[test]
    fn toml_dates_and_strings_both_read() {
        #[derive(Deserialize)]
        struct File {
            scan: Section,
        }
        #[derive(Deserialize)]
        struct Section {
            policy: Vec<PolicyConfig>,
        }
        let text = r#"
            [[scan.policy]]
            scope = "team"
            prevent_vulnerable = "high"
            allowlist = [
              { id = "CVE-2023-1", expires = 2027-01-31 },
              { id = "CVE-2023-2", expires = "2027-01-31", reason = "unreachable" },
              { id = "CVE-2023-3" },
            ]
        "#;
        let file: File = toml::from_str(text).expect("parses");
        // As the registry reads its configuration: through a `toml::Value` first.
        let value: toml::Value = toml::from_str(text).expect("value");
        let again: File = value.try_into().expect("from a value");
        for file in [file, again] {
            let p = Policies::load(&file.scan.policy).expect("loads");
            let policy = p.for_name("team/app").expect("covers");
            assert_eq!(policy.prevent_vulnerable, Some(Threshold(Level::High)));
            let expiries: Vec<_> = policy.allowlist.entries.iter().map(|e| e.expires).collect();
            assert_eq!(expiries, [Some(1_801_353_600), Some(1_801_353_600), None]);
        }
    }

    #[test]
    fn an_entry_accepts_by_id_or_alias_until_it_expires_at_exactly_its_time() {
        let list = allowlist(&[
            item("cve-2023-1111", Some("2027-01-31")),
            item("GHSA-aaaa", None),
        ])
        .expect("list");
        let found = findings(&[
            F("DSA-1", &["CVE-2023-1111"], Level::Critical),
            F("GHSA-aaaa", &[], Level::High),
            F("CVE-2023-2222", &[], Level::High),
            F("CVE-2023-3333", &[], Level::Low),
        ]);
        let expiry = 1_801_353_600;
        let threshold = Some(Threshold(Level::High));

        let before = judge(&found, &list, threshold, expiry - 1);
        assert_eq!(
            before.marks,
            [
                Mark::Allowlisted(0),
                Mark::Allowlisted(1),
                Mark::Open,
                Mark::Open
            ]
        );
        assert_eq!(before.allowlisted, 2);
        assert_eq!((before.open.high, before.open.low), (1, 1));
        assert_eq!(
            before.refusal().expect("refused").to_string(),
            "1 high not allowlisted (threshold high)"
        );

        // At the expiry itself the entry no longer accepts.
        let at = judge(&found, &list, threshold, expiry);
        assert_eq!(at.marks[0], Mark::Expired(0));
        assert_eq!(at.allowlisted, 1);
        assert_eq!(
            at.refusal().expect("refused").to_string(),
            "1 critical, 1 high not allowlisted (threshold high)"
        );
        assert_eq!(at.open.total(), 3);
    }

    #[test]
    fn nothing_is_refused_without_a_threshold_or_below_it() {
        let found = findings(&[
            F("CVE-1", &[], Level::Medium),
            F("CVE-2", &[], Level::Unknown),
        ]);
        let list = Allowlist::default();
        assert!(!judge(&found, &list, None, 0).refuses());
        assert!(!judge(&found, &list, Some(Threshold(Level::High)), 0).refuses());
        let medium = judge(&found, &list, Some(Threshold(Level::Medium)), 0);
        assert_eq!(
            medium.refusal().map(|r| r.to_string()).as_deref(),
            Some("1 medium not allowlisted (threshold medium)")
        );
        assert!(
            !judge::<(String, Vec<String>, Level)>(&[], &list, Some(Threshold(Level::Low)), 0)
                .refuses()
        );
    }

    #[test]
    fn the_most_specific_scope_applies() {
        let mut app = config("team/app");
        app.prevent_vulnerable = Some("critical".into());
        let p = Policies::load(&[config("team"), app, config("reg.example:5000/team")])
            .expect("policies");
        let scope = |n: &str| p.for_name(n).map(|p| p.scope.clone());
        assert_eq!(scope("team/app").as_deref(), Some("team/app"));
        assert_eq!(scope("team/app/sub").as_deref(), Some("team/app"));
        assert_eq!(scope("team/apps").as_deref(), Some("team"));
        assert_eq!(scope("teams"), None);
        assert_eq!(
            scope("reg.example:5000/team/x").as_deref(),
            Some("reg.example:5000/team")
        );
    }

    #[test]
    fn bad_tables_are_refused_naming_the_table() {
        let with = |f: &dyn Fn(&mut PolicyConfig)| {
            let mut c = config("team");
            f(&mut c);
            c
        };
        for (bad, expect) in [
            (vec![config("")], "scan.policy[0]: invalid scope"),
            (vec![config("team/../x")], "scan.policy[0]: invalid scope"),
            (
                vec![config("ok"), config("team:1/x:y")],
                "scan.policy[1]: invalid scope",
            ),
            (
                vec![config("team"), config("team/")],
                "scan.policy[1]: scope \"team\" appears twice (also scan.policy[0])",
            ),
            (
                vec![with(&|c| c.prevent_vulnerable = Some("severe".into()))],
                "scan.policy[0]: prevent_vulnerable = \"severe\" is not a severity",
            ),
            (
                vec![with(&|c| c.prevent_vulnerable = Some("unknown".into()))],
                "is not a severity",
            ),
            (
                vec![with(&|c| c.allowlist.push(item("CVE-1", Some("soon"))))],
                "scan.policy[0]: allowlist entry CVE-1: expires \"soon\"",
            ),
            (
                vec![with(&|c| c.allowlist.push(item("CVE 1", None)))],
                "scan.policy[0]: allowlist entry \"CVE 1\"",
            ),
        ] {
            let err = Policies::load(&bad).expect_err("refused");
            assert!(err.to_string().contains(expect), "{err}");
        }
    }
}
