//! Matching an image's packages against OSV advisories: which records affect which installed
//! package, how badly, and from which version on it is fixed.
//!
//! Pure: the caller gives the inventory's packages, its operating system and the candidate
//! records (looked up by [`Target`]s in the advisory database), and gets [`Findings`] back.
//!
//! Each package is first named the way OSV names it ([`target`]):
//!
//! | package | OSV ecosystem | name, version |
//! | --- | --- | --- |
//! | dpkg on `ID=debian` | `Debian:<VERSION_ID major>` (`Debian:12`) | the source package and its version |
//! | dpkg on `ID=ubuntu` | `Ubuntu:<VERSION_ID>` (`Ubuntu:22.04:LTS` for LTS releases) | the source package and its version |
//! | apk on `ID=alpine` | `Alpine:v<major.minor>` (`Alpine:v3.19`) | the origin (source) package |
//! | rpm on `ID=rocky` / `ID=almalinux` | `Rocky Linux:<major>` / `AlmaLinux:<major>` | the binary package, `epoch:version-release` |
//! | rpm on `ID=rhel` (RHEL, UBI) | `Red Hat:enterprise_linux:<major>`, matching every stream of it | the binary package, `epoch:version-release` |
//! | cargo, npm, PyPI, Go, Maven | `crates.io`, `npm`, `PyPI`, `Go`, `Maven` | as found (PyPI in PEP 503 form) |
//!
//! Debian's and Ubuntu's security trackers, and so OSV's `Debian` and `Ubuntu` records, name
//! source packages (`expat`, not `libexpat1`), Alpine's secdb names origins; AlmaLinux's and
//! Rocky's errata list binary rpms. OS packages on a distribution OSV does not cover (or
//! without a `VERSION_ID`: Debian testing, Alpine edge) get no target and are not matched.
//!
//! Red Hat publishes its own OSV records (RHSA ids, the CVEs in `upstream`; OSV's `Red Hat`
//! archive), one `affected` entry per binary rpm and product stream. The OSV schema's
//! ecosystem table says the release is the stream's CPE without its `cpe:/[oa]:redhat:`
//! prefix (`Red Hat:enterprise_linux:9::baseos`, `Red Hat:enterprise_linux:9::appstream`,
//! `Red Hat:rhel_eus:9.4::baseos`; RHEL 10: `Red Hat:enterprise_linux:10.1`), and the
//! versions are rpm's `epoch:version-release` with the epoch written even when 0
//! (`0:8.7p1-38.el9_4.1` in RHSA-2024:4312). os-release does not name a stream, and a package
//! database does not say which repository a package came from, so an `ID=rhel` image (RHEL
//! and UBI both say `rhel`) is given `enterprise_linux:<major>` and every stream of that
//! major applies ([`Ecosystem::release_applies`]): the main stream's fix is what `dnf update`
//! brings. Extended-support streams (EUS, AUS, E4S) and layered products are not matched.
//!
//! Then each candidate record is evaluated by [`crate::osv::affected`], in the ecosystem's
//! own version order; withdrawn records and records whose ranges do not parse never match
//! (the latter are listed in [`Findings::skipped`]).
//!
//! Depends on [`crate::inventory`] (the package model), [`crate::osv`] and
//! [`crate::version`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::inventory::{OsRelease, Package, PackageType};
use crate::osv::{self, Level, Record, pep503_name};
use crate::version::Ecosystem;

/// Where Debian and Ubuntu install the Python modules of their own packages (Debian Python
/// Policy 1.5; `pip` installs into `/usr/local/lib/python3.X/dist-packages` instead).
pub const DEBIAN_PYTHON_DIR: &str = "/usr/lib/python3/dist-packages/";

/// A package named as OSV names it: what to look up in the advisory database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// OSV's ecosystem name without the release (`Debian`, `crates.io`).
    pub ecosystem: String,
    /// What follows the first `:` (`12`, `v3.19`, `22.04:LTS`), or empty.
    pub release: String,
    /// The package's name in that ecosystem (PyPI: PEP 503 form).
    pub name: String,
    /// The version its advisories' ranges are evaluated at.
    pub version: String,
}

impl Target {
    /// The full OSV ecosystem string (`Debian:12`).
    pub fn osv_ecosystem(&self) -> String {
        if self.release.is_empty() {
            self.ecosystem.clone()
        } else {
            format!("{}:{}", self.ecosystem, self.release)
        }
    }
}

/// The OSV ecosystem and release of the image's OS packages, from os-release, or `None` when
/// OSV has no advisories for that distribution and release (see the module doc).
fn os_ecosystem(kind: PackageType, os: &OsRelease) -> Option<(Ecosystem, String)> {
    let version = os.version_id.as_deref()?.trim();
    let mut parts = version.split('.');
    let major = parts.next().filter(|m| !m.is_empty())?;
    let minor = parts.next();
    match (kind, os.id.as_str()) {
        (PackageType::Dpkg, "debian") => Some((Ecosystem::Debian, major.to_owned())),
        (PackageType::Dpkg, "ubuntu") => {
            // OSV marks long-term support releases: `Ubuntu:22.04:LTS`, but `Ubuntu:23.10`.
            // LTS releases are the April ones of even years.
            let lts = minor == Some("04") && major.parse::<u32>().is_ok_and(|y| y % 2 == 0);
            let release = if lts {
                format!("{version}:LTS")
            } else {
                version.to_owned()
            };
            Some((Ecosystem::Ubuntu, release))
        }
        (PackageType::Apk, "alpine") => Some((Ecosystem::Alpine, format!("v{major}.{}", minor?))),
        (PackageType::Rpm, "rocky") => Some((Ecosystem::RockyLinux, major.to_owned())),
        (PackageType::Rpm, "almalinux") => Some((Ecosystem::AlmaLinux, major.to_owned())),
        (PackageType::Rpm, "rhel") => {
            Some((Ecosystem::RedHat, format!("enterprise_linux:{major}")))
        }
        _ => None,
    }
}

/// `package` as OSV names it on `os`, or `None` when it cannot be matched (see the module doc).
pub fn target(package: &Package, os: Option<&OsRelease>) -> Option<Target> {
    let language = |ecosystem: Ecosystem, name: String| Target {
        ecosystem: ecosystem.osv_name().to_owned(),
        release: String::new(),
        name,
        version: package.version.clone(),
    };
    match package.kind {
        PackageType::Cargo => Some(language(Ecosystem::CratesIo, package.name.clone())),
        PackageType::Npm => Some(language(Ecosystem::Npm, package.name.clone())),
        PackageType::Pypi => Some(language(Ecosystem::PyPi, pep503_name(&package.name))),
        PackageType::Golang => Some(language(Ecosystem::Go, package.name.clone())),
        PackageType::Maven => Some(language(Ecosystem::Maven, package.name.clone())),
        PackageType::Dpkg | PackageType::Apk | PackageType::Rpm => {
            let (ecosystem, release) = os_ecosystem(package.kind, os?)?;
            let source = package.source.as_ref();
            let (name, version) = match package.kind {
                // dpkg: `Source: expat (2.5.0-1)` when the binary's version differs (binNMUs).
                PackageType::Dpkg => (
                    source.map_or(&package.name, |s| &s.name),
                    source
                        .and_then(|s| s.version.as_ref())
                        .unwrap_or(&package.version),
                ),
                PackageType::Apk => (source.map_or(&package.name, |s| &s.name), &package.version),
                _ => (&package.name, &package.version),
            };
            Some(Target {
                ecosystem: ecosystem.osv_name().to_owned(),
                release,
                name: name.clone(),
                version: version.clone(),
            })
        }
    }
}

/// Whether `package` is a Python distribution that Debian or Ubuntu installed as part of one
/// of its own packages (`python3-requests` puts `requests-2.28.1.dist-info` under
/// [`DEBIAN_PYTHON_DIR`]), in an inventory that has dpkg packages.
///
/// Such a package is matched once, as the OS package: the distribution backports fixes
/// without changing the upstream version (`2.28.1+dfsg-1+deb12u1` is fixed while PyPI's
/// `2.28.1` is not), so matching the dist-info against PyPI advisories would report fixed
/// vulnerabilities, and report the real ones twice. Trivy and grype skip them the same way.
pub fn is_os_python(package: &Package, has_dpkg: bool) -> bool {
    has_dpkg && package.kind == PackageType::Pypi && package.path.starts_with(DEBIAN_PYTHON_DIR)
}

/// The targets of an inventory's packages, without repeats: what to look up.
pub fn targets(packages: &[Package], os: Option<&OsRelease>) -> BTreeSet<Target> {
    let has_dpkg = packages.iter().any(|p| p.kind == PackageType::Dpkg);
    packages
        .iter()
        .filter(|p| !is_os_python(p, has_dpkg))
        .filter_map(|p| target(p, os))
        .collect()
}

/// One advisory affecting one installed package.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The package as found (its binary name for OS packages).
    pub package: String,
    /// How it was installed.
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// The installed version, as the package database records it.
    pub installed: String,
    /// The OSV ecosystem it was matched in (`Debian:12`).
    pub ecosystem: String,
    /// The name it was matched by (the source package, for Debian).
    pub matched_name: String,
    /// The advisory's id.
    pub advisory: String,
    /// The advisory's aliases (CVE ids) and upstream ids, sorted.
    pub aliases: Vec<String>,
    /// The advisory's summary.
    pub summary: Option<String>,
    /// The severity level.
    pub severity: Level,
    /// The CVSS base score, when a vector was scored.
    pub score: Option<f64>,
    /// The lowest version that fixes it: the first `fixed` event above the installed version
    /// over all ranges that contain it; `None` when no fix is known.
    pub fixed: Option<String>,
    /// Each such range's fix, lowest first (usually one).
    pub fixed_versions: Vec<String>,
    /// Whether a fixed version is known.
    pub fixable: bool,
    /// The files the package was found in (one, unless the same package is installed twice).
    pub paths: Vec<String>,
}

/// A record that could not be evaluated for a package (a version that does not parse in the
/// ecosystem's scheme), so it did not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The record's id.
    pub advisory: String,
    /// The package.
    pub package: String,
    /// Why.
    pub reason: String,
}

/// What matching found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Findings {
    /// Sorted by severity (most severe first), then package, version and advisory.
    pub findings: Vec<Finding>,
    /// Records that could not be evaluated, sorted.
    pub skipped: Vec<Skipped>,
}

/// Matches `packages` of an image whose OS is `os` against `records`, the candidate advisories
/// (any superset of those affecting the packages' [`targets`]; others are simply not matched).
///
/// A package found at several paths with the same version is one finding per advisory, with
/// every path. Python distributions of Debian's own packages are left to the dpkg package
/// ([`is_os_python`]).
pub fn match_packages(
    packages: &[Package],
    os: Option<&OsRelease>,
    records: &[Record],
) -> Findings {
    // The records by (ecosystem, name) of each package they name, so each package evaluates
    // only its own candidates.
    let mut by_package: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        for entry in &record.affected {
            let Some(p) = &entry.package else { continue };
            let Ok(eco) = Ecosystem::parse_osv(&p.ecosystem) else {
                continue;
            };
            let name = if eco.ecosystem == Ecosystem::PyPi {
                pep503_name(&p.name)
            } else {
                p.name.clone()
            };
            let list = by_package
                .entry((eco.ecosystem.osv_name().to_owned(), name))
                .or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let has_dpkg = packages.iter().any(|p| p.kind == PackageType::Dpkg);
    let mut found: BTreeMap<(PackageType, String, String, String), Finding> = BTreeMap::new();
    let mut skipped = BTreeSet::new();
    for package in packages {
        if is_os_python(package, has_dpkg) {
            continue;
        }
        let Some(target) = target(package, os) else {
            continue;
        };
        let Some(candidates) = by_package.get(&(target.ecosystem.clone(), target.name.clone()))
        else {
            continue;
        };
        let ecosystem = target.osv_ecosystem();
        for &i in candidates {
            let record = &records[i];
            let key = (
                package.kind,
                package.name.clone(),
                package.version.clone(),
                record.id.clone(),
            );
            if let Some(seen) = found.get_mut(&key) {
                if !seen.paths.contains(&package.path) {
                    seen.paths.push(package.path.clone());
                }
                continue;
            }
            let hit = match osv::affected(record, &ecosystem, &target.name, &target.version) {
                Ok(Some(hit)) => hit,
                Ok(None) => continue,
                Err(e) => {
                    skipped.insert((record.id.clone(), package.name.clone(), e.to_string()));
                    continue;
                }
            };
            // The entry of this package's own release (Red Hat's records list every stream of
            // every product the advisory fixes), for its severity.
            let entry = record.affected.iter().find(|e| {
                e.package.as_ref().is_some_and(|p| {
                    Ecosystem::parse_osv(&p.ecosystem).is_ok_and(|eco| {
                        eco.ecosystem.osv_name() == target.ecosystem
                            && eco
                                .release
                                .as_deref()
                                .is_none_or(|r| eco.ecosystem.release_applies(r, &target.release))
                    })
                })
            });
            let severity = osv::severity(record, entry);
            let mut aliases: Vec<String> = record
                .aliases
                .iter()
                .chain(&record.upstream)
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            aliases.retain(|a| a != &record.id);
            found.insert(
                key,
                Finding {
                    package: package.name.clone(),
                    kind: package.kind,
                    installed: package.version.clone(),
                    ecosystem: ecosystem.clone(),
                    matched_name: target.name.clone(),
                    advisory: record.id.clone(),
                    aliases,
                    summary: record.summary.clone(),
                    severity: severity.level,
                    score: severity.score,
                    fixed: hit.fixed.first().cloned(),
                    fixable: !hit.fixed.is_empty(),
                    fixed_versions: hit.fixed,
                    paths: vec![package.path.clone()],
                },
            );
        }
    }
    let mut findings: Vec<Finding> = found.into_values().collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.installed.cmp(&b.installed))
            .then_with(|| a.advisory.cmp(&b.advisory))
    });
    Findings {
        findings,
        skipped: skipped
            .into_iter()
            .map(|(advisory, package, reason)| Skipped {
                advisory,
                package,
                reason,
            })
            .collect(),
    }
}

/// A severity threshold: findings at or above it count (`--fail-on high`).
///
/// Parsed from `unknown`, `low`, `medium`, `high` or `critical` (any case). The order is
/// [`Level`]'s: `unknown` is below `low`, so the `unknown` threshold counts every finding,
/// and a finding of unknown severity (Debian and Alpine records carry none) meets no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Threshold(pub Level);

impl Threshold {
    /// Whether a finding of `level` is at or above the threshold.
    pub fn met_by(self, level: Level) -> bool {
        level >= self.0
    }
}

/// A threshold that is not one of the levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a severity: use unknown, low, medium, high or critical")]
pub struct BadThreshold(pub String);

impl FromStr for Threshold {
    type Err = BadThreshold;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Threshold(match s.trim().to_ascii_lowercase().as_str() {
            "unknown" => Level::Unknown,
            "low" => Level::Low,
            "medium" => Level::Medium,
            "high" => Level::High,
            "critical" => Level::Critical,
            _ => return Err(BadThreshold(s.chars().take(32).collect())),
        }))
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// One accepted advisory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowEntry {
    /// The advisory's id or one of its aliases (`CVE-2023-49092`), compared without case.
    pub id: String,
    /// When the acceptance ends (Unix seconds); `None`: never.
    pub expires: Option<i64>,
    /// Why it is accepted, for the record.
    pub reason: Option<String>,
}

/// Accepted advisories: a finding whose advisory or alias is listed, before its entry
/// expires, is shown as accepted and does not count towards a [`Threshold`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    /// The entries, in the order given.
    pub entries: Vec<AllowEntry>,
}

impl Allowlist {
    /// The live entry that accepts `finding` at `now` (Unix seconds), if any: the first one
    /// naming its advisory or an alias whose expiry is after `now`.
    pub fn accepts(&self, finding: &Finding, now: i64) -> Option<&AllowEntry> {
        self.entries.iter().find(|e| {
            e.expires.is_none_or(|t| t > now)
                && (e.id.eq_ignore_ascii_case(&finding.advisory)
                    || finding.aliases.iter().any(|a| e.id.eq_ignore_ascii_case(a)))
        })
    }

    /// The entries naming `finding` that have expired by `now`: an expired acceptance is
    /// worth saying, since the finding counts again.
    pub fn expired_for(&self, finding: &Finding, now: i64) -> Option<&AllowEntry> {
        self.entries.iter().find(|e| {
            e.expires.is_some_and(|t| t <= now)
                && (e.id.eq_ignore_ascii_case(&finding.advisory)
                    || finding.aliases.iter().any(|a| e.id.eq_ignore_ascii_case(a)))
        })
    }
}
