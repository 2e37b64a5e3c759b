//! Package URLs (purl), the identifiers SBOMs and advisory databases name packages by.
//!
//! The grammar is the purl specification's (`docs/standard/specification.md` of
//! package-url/purl-spec): `pkg:type/namespace/name@version?qualifiers#subpath`. Each namespace
//! segment, the name, the version and each qualifier value is percent-encoded, except the
//! alphanumerics, `.-_~` and the colon `:`, which "shall not be percent-encoded" anywhere;
//! qualifiers are sorted by key and a qualifier with an empty value is left out.
//!
//! Each type follows its definition (`types/<type>-definition.json`); the OS qualifiers
//! (`arch`, `distro`) are the ones Trivy writes, so that tools that match packages by purl find
//! ours:
//!
//! | inventory | purl |
//! | --- | --- |
//! | dpkg | `pkg:deb/<os id>/<name>@<[epoch:]version>?arch=<arch>&distro=<os id>-<VERSION_ID>` |
//! | apk | `pkg:apk/<os id>/<name>@<version>?arch=<arch>&distro=<VERSION_ID>` |
//! | rpm | `pkg:rpm/<os id>/<name>@<version>-<release>?arch=<arch>&distro=<os id>-<VERSION_ID>&epoch=<e>` (`ID=rhel`: namespace `redhat`) |
//! | cargo | `pkg:cargo/<name>@<version>` |
//! | npm | `pkg:npm/%40<scope>/<name>@<version>` (scope and name lower case) |
//! | pypi | `pkg:pypi/<PEP 503 name>@<version>` |
//! | golang | `pkg:golang/<module path>@<version>` (the last segment is the name; lower case) |
//! | maven | `pkg:maven/<group>/<artifact>@<version>` |
//!
//! An rpm package's epoch (`1:3.0.7-27.el9`) goes into the `epoch` qualifier and out of the
//! version, as the rpm type says (epoch 0 is left out); a deb version keeps its epoch, as the deb
//! type's examples do (`pkg:deb/debian/attr@1:2.4.47-2%2Bb1`; Trivy moves it to a qualifier,
//! syft keeps it). Names and namespaces the type definitions call case-insensitive (deb, apk,
//! npm, golang, oci) are lower-cased; rpm, cargo and maven names keep their case.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use crate::inventory::lang::python::normalize_name;
use crate::inventory::{OsRelease, Package, PackageType};

/// A package URL, its components decoded; [`fmt::Display`] writes the canonical string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purl {
    /// The package type, lower case (`deb`, `npm`).
    pub kind: &'static str,
    /// The namespace's segments, none of them empty or holding `/`.
    pub namespace: Vec<String>,
    /// The name.
    pub name: String,
    /// The version.
    pub version: Option<String>,
    /// The qualifiers by key; keys are lower case ASCII.
    pub qualifiers: BTreeMap<&'static str, String>,
}

impl Purl {
    /// A purl of `kind` with no namespace, version or qualifiers.
    pub fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Purl {
            kind,
            namespace: Vec::new(),
            name: name.into(),
            version: None,
            qualifiers: BTreeMap::new(),
        }
    }

    /// The purl of a package found in an image whose operating system is `os`.
    pub fn of_package(package: &Package, os: Option<&OsRelease>) -> Self {
        match package.kind {
            PackageType::Dpkg => os_package(OsType::DEB, package, os),
            PackageType::Apk => os_package(OsType::APK, package, os),
            PackageType::Rpm => os_package(OsType::RPM, package, os),
            PackageType::Cargo => Purl::new("cargo", &package.name).at(&package.version),
            PackageType::Npm => {
                let name = package.name.to_lowercase();
                match name.split_once('/') {
                    Some((scope, bare)) if scope.starts_with('@') => {
                        Purl::new("npm", bare).within([scope]).at(&package.version)
                    }
                    _ => Purl::new("npm", name).at(&package.version),
                }
            }
            PackageType::Pypi => {
                Purl::new("pypi", normalize_name(&package.name)).at(&package.version)
            }
            PackageType::Golang => {
                let path = package.name.to_lowercase();
                match path.rsplit_once('/') {
                    Some((namespace, last)) => Purl::new("golang", last)
                        .within(namespace.split('/'))
                        .at(&package.version),
                    None => Purl::new("golang", &path).at(&package.version),
                }
            }
            PackageType::Maven => match package.name.split_once(':') {
                Some((group, artifact)) => Purl::new("maven", artifact)
                    .within([group])
                    .at(&package.version),
                None => Purl::new("maven", &package.name).at(&package.version),
            },
        }
    }

    /// The purl of an image (type `oci`): the repository's last segment, the manifest digest,
    /// and the full repository in `repository_url` when the registry's host is known.
    pub fn of_image(repository: &str, digest: &str, registry: Option<&str>) -> Self {
        let last = repository.rsplit('/').next().unwrap_or(repository);
        let mut purl = Purl::new("oci", last.to_lowercase()).at(digest);
        if let Some(registry) = registry {
            purl = purl.with(
                "repository_url",
                format!("{}/{repository}", registry.trim_end_matches('/')),
            );
        }
        purl
    }

    /// This purl with namespace `segments` (empty ones are not segments).
    pub fn within<S: AsRef<str>>(mut self, segments: impl IntoIterator<Item = S>) -> Self {
        self.namespace = segments
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        self
    }

    /// This purl with `version` (an empty one is none).
    pub fn at(mut self, version: &str) -> Self {
        self.version = Some(version.to_owned()).filter(|v| !v.is_empty());
        self
    }

    /// This purl with qualifier `key` (an empty value is none, as the specification says).
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if value.is_empty() {
            self.qualifiers.remove(key);
        } else {
            self.qualifiers.insert(key, value);
        }
        self
    }
}

/// How an OS package type's purls are made.
struct OsType {
    kind: &'static str,
    /// The namespace when the image has no os-release.
    fallback: &'static str,
    /// Whether `distro` is `<os id>-<VERSION_ID>` (else `VERSION_ID` alone, as Trivy writes apk).
    distro_with_id: bool,
    /// Whether the name is case-insensitive, so lower-cased.
    lowercase: bool,
    /// Whether the epoch moves from the version into the `epoch` qualifier.
    epoch_qualifier: bool,
}

impl OsType {
    const DEB: OsType = OsType {
        kind: "deb",
        fallback: "debian",
        distro_with_id: true,
        lowercase: true,
        epoch_qualifier: false,
    };
    const APK: OsType = OsType {
        kind: "apk",
        fallback: "alpine",
        distro_with_id: false,
        lowercase: true,
        epoch_qualifier: false,
    };
    const RPM: OsType = OsType {
        kind: "rpm",
        fallback: "",
        distro_with_id: true,
        lowercase: false,
        epoch_qualifier: true,
    };
}

/// An OS package: namespace the distribution, `arch`, `distro` from the os-release (its
/// `VERSION_ID`, else its codename), and for rpm `epoch`.
fn os_package(t: OsType, package: &Package, os: Option<&OsRelease>) -> Purl {
    let (epoch, version) = match split_epoch(&package.version) {
        (epoch, rest) if t.epoch_qualifier => (epoch, rest),
        _ => (None, package.version.as_str()),
    };
    let namespace = os.map_or(t.fallback, |os| vendor(&os.id)).to_lowercase();
    let distro = os.and_then(|os| match &os.version_id {
        Some(v) if t.distro_with_id => Some(format!("{}-{v}", os.id)),
        Some(v) => Some(v.clone()),
        None => os.version_codename.clone(),
    });
    let name = if t.lowercase {
        package.name.to_lowercase()
    } else {
        package.name.clone()
    };
    Purl::new(t.kind, name)
        .within([namespace])
        .at(version)
        .with("arch", package.arch.clone().unwrap_or_default())
        .with("distro", distro.unwrap_or_default())
        .with("epoch", epoch.filter(|e| *e != "0").unwrap_or_default())
}

/// The purl namespace of the distribution whose os-release `ID` is `id`: the id itself, but
/// `redhat` for RHEL and UBI (`ID=rhel`), the vendor name Red Hat's own purls use (its SBOMs,
/// its VEX and OSV records: `pkg:rpm/redhat/openssh`), as the rpm type's definition says the
/// namespace is the vendor.
fn vendor(id: &str) -> &str {
    match id {
        "rhel" => "redhat",
        _ => id,
    }
}

/// `1:2.36-9` into (`Some("1")`, `2.36-9`); a version without a numeric epoch is whole.
fn split_epoch(version: &str) -> (Option<&str>, &str) {
    match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (Some(epoch), rest)
        }
        _ => (None, version),
    }
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pkg:{}/", self.kind)?;
        for segment in &self.namespace {
            encode(f, segment)?;
            f.write_char('/')?;
        }
        encode(f, &self.name)?;
        if let Some(version) = &self.version {
            f.write_char('@')?;
            encode(f, version)?;
        }
        for (i, (key, value)) in self.qualifiers.iter().enumerate() {
            f.write_char(if i == 0 { '?' } else { '&' })?;
            write!(f, "{key}=")?;
            encode(f, value)?;
        }
        Ok(())
    }
}

/// Percent-encodes `text` as the specification's "Character encoding" clause says: UTF-8
/// octets outside the alphanumerics, `.-_~` and `:` become `%XX`.
fn encode(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~' | b':') {
            f.write_char(char::from(byte))?;
        } else {
            write!(f, "%{byte:02X}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(kind: PackageType, name: &str, version: &str, arch: Option<&str>) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            source: None,
            arch: arch.map(str::to_owned),
            path: "/x".into(),
        }
    }

    fn os(id: &str, version_id: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version_id.map(str::to_owned),
            ..OsRelease::default()
        }
    }

    fn purl(kind: PackageType, name: &str, version: &str, arch: Option<&str>) -> String {
        Purl::of_package(&package(kind, name, version, arch), None).to_string()
    }

    #[test]
    fn os_packages() {
        let debian = os("debian", Some("12"));
        let p = package(PackageType::Dpkg, "libc6", "2.36-9+deb12u4", Some("amd64"));
        assert_eq!(
            Purl::of_package(&p, Some(&debian)).to_string(),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        let p = package(
            PackageType::Dpkg,
            "bsdutils",
            "1:2.38.1-5+b1",
            Some("amd64"),
        );
        assert_eq!(
            Purl::of_package(&p, Some(&debian)).to_string(),
            "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12"
        );
        // The deb type's own example.
        let p = package(PackageType::Dpkg, "attr", "1:2.4.47-2+b1", Some("amd64"));
        assert_eq!(
            Purl::of_package(&p, None).to_string(),
            "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64"
        );
        let alpine = os("alpine", Some("3.19.1"));
        let p = package(PackageType::Apk, "musl", "1.2.4-r2", Some("x86_64"));
        assert_eq!(
            Purl::of_package(&p, Some(&alpine)).to_string(),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1"
        );
        let rocky = os("rocky", Some("9.4"));
        let p = package(
            PackageType::Rpm,
            "openssl",
            "1:3.0.7-27.el9",
            Some("x86_64"),
        );
        assert_eq!(
            Purl::of_package(&p, Some(&rocky)).to_string(),
            "pkg:rpm/rocky/openssl@3.0.7-27.el9?arch=x86_64&distro=rocky-9.4&epoch=1"
        );
        let p = package(PackageType::Rpm, "bash", "0:5.1.8-9.el9", None);
        assert_eq!(
            Purl::of_package(&p, Some(&rocky)).to_string(),
            "pkg:rpm/rocky/bash@5.1.8-9.el9?distro=rocky-9.4"
        );
        // RHEL and UBI: Red Hat's vendor namespace, the os-release id in `distro`.
        let rhel = os("rhel", Some("9.4"));
        let p = package(
            PackageType::Rpm,
            "openssh",
            "0:8.7p1-38.el9",
            Some("x86_64"),
        );
        assert_eq!(
            Purl::of_package(&p, Some(&rhel)).to_string(),
            "pkg:rpm/redhat/openssh@8.7p1-38.el9?arch=x86_64&distro=rhel-9.4"
        );
        // Debian sid has a codename and no VERSION_ID; an image without os-release falls back
        // to the package manager's own distribution and no distro.
        let sid = OsRelease {
            version_codename: Some("trixie".into()),
            ..os("debian", None)
        };
        let p = package(PackageType::Dpkg, "tzdata", "2024a-1", Some("all"));
        assert_eq!(
            Purl::of_package(&p, Some(&sid)).to_string(),
            "pkg:deb/debian/tzdata@2024a-1?arch=all&distro=trixie"
        );
        assert_eq!(
            Purl::of_package(&p, None).to_string(),
            "pkg:deb/debian/tzdata@2024a-1?arch=all"
        );
        assert_eq!(
            purl(
                PackageType::Rpm,
                "centerim",
                "1:4.22.10-1.el6",
                Some("i686")
            ),
            "pkg:rpm/centerim@4.22.10-1.el6?arch=i686&epoch=1"
        );
    }

    #[test]
    fn language_packages() {
        use PackageType::*;
        assert_eq!(purl(Cargo, "serde", "1.0.1", None), "pkg:cargo/serde@1.0.1");
        assert_eq!(
            purl(Npm, "@Scope/Name", "1.0.0", None),
            "pkg:npm/%40scope/name@1.0.0"
        );
        assert_eq!(purl(Npm, "foobar", "12.3.1", None), "pkg:npm/foobar@12.3.1");
        assert_eq!(purl(Pypi, "PyYAML", "6.0", None), "pkg:pypi/pyyaml@6.0");
        assert_eq!(
            purl(Pypi, "Zope.Interface", "6.0", None),
            "pkg:pypi/zope-interface@6.0"
        );
        assert_eq!(
            purl(Golang, "github.com/x/y", "v1.2.3", None),
            "pkg:golang/github.com/x/y@v1.2.3"
        );
        assert_eq!(
            purl(Golang, "github.com/Azure/go-autorest", "v1.0.0", None),
            "pkg:golang/github.com/azure/go-autorest@v1.0.0"
        );
        assert_eq!(
            purl(Golang, "stdlib", "go1.22.1", None),
            "pkg:golang/stdlib@go1.22.1"
        );
        assert_eq!(
            purl(Maven, "org.apache.xmlgraphics:batik-anim", "1.9.1", None),
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"
        );
        assert_eq!(
            purl(Maven, "group:artifact", "1.0", None),
            "pkg:maven/group/artifact@1.0"
        );
    }

    /// The specification's own examples, and its encoding rules: `:` stays, `+`, space, `/`
    /// inside a value and non-ASCII are encoded, qualifiers are sorted, empty ones dropped.
    #[test]
    fn the_specifications_examples_and_encoding() {
        let curl = Purl::new("deb", "curl")
            .within(["debian"])
            .at("7.50.3-1")
            .with("distro", "jessie")
            .with("arch", "i386");
        assert_eq!(
            curl.to_string(),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        let batik = Purl::new("maven", "batik-anim")
            .within(["org.apache.xmlgraphics"])
            .at("1.9.1")
            .with("packaging", "sources")
            .with("classifier", "");
        assert_eq!(
            batik.to_string(),
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1?packaging=sources"
        );
        let odd = Purl::new("generic", "a b/c+d")
            .within(["ns", ""])
            .at("1.0 ü")
            .with("checksum", "sha256:de4d501267da")
            .with("vcs_url", "git+https://example.com/x@y");
        assert_eq!(
            odd.to_string(),
            "pkg:generic/ns/a%20b%2Fc%2Bd@1.0%20%C3%BC?checksum=sha256:de4d501267da\
             &vcs_url=git%2Bhttps:%2F%2Fexample.com%2Fx%40y"
        );
    }

    #[test]
    fn images() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            Purl::of_image("team/App", &digest, None).to_string(),
            format!("pkg:oci/app@{digest}")
        );
        assert_eq!(
            Purl::of_image("library/debian", &digest, Some("registry.example:5000")).to_string(),
            format!(
                "pkg:oci/debian@{digest}?repository_url=registry.example:5000%2Flibrary%2Fdebian"
            )
        );
    }
}
