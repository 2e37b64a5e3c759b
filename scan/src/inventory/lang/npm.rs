//! JavaScript packages: npm lock files and the `package.json` of installed packages.
//!
//! `package-lock.json` (and `npm-shrinkwrap.json`, the same format) comes in three versions
//! (npm's `package-lock.json` documentation):
//! - version 1 (npm 5 and 6): a tree of `dependencies`, name to `{version, dependencies}`;
//! - version 2 (npm 7+): both the version 1 tree and a flat `packages` map keyed by install path
//!   (`node_modules/a/node_modules/@scope/b`), the root project under `""`;
//! - version 3: the `packages` map alone.
//!
//! `packages` is read when present, else `dependencies`. Only packages from a registry are
//! reported: links to workspace folders, `file:` and git dependencies are not npm packages and
//! have no npm advisories. A package installed under another name (`"alias": "npm:real@1.0.0"`)
//! is reported under its real name. Lock files inside `node_modules` are not read: npm ignores
//! them (the hidden `node_modules/.package-lock.json` repeats what the installed `package.json`
//! files already say).
//!
//! Installed packages are found by their `package.json` directly inside a package folder
//! (`node_modules/<name>/package.json` or `node_modules/@scope/<name>/package.json`), which the
//! root project's own `package.json` and files deeper inside a package are not.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;

use crate::inventory::{CatalogError, Cataloguer, FileInfo, Package, PackageType};

use super::{file_name, malformed, read_to_limit};

/// The largest lock file read (the lock of a large monorepo is a few MiB).
pub const LOCK_LIMIT: u64 = 64 << 20;
/// The largest `package.json` read.
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// How deep a version 1 `dependencies` tree is followed (`serde_json` refuses nesting past 128
/// anyway; this keeps the walk's own bound explicit).
const MAX_DEPTH: usize = 64;

/// Reads `package-lock.json` and `npm-shrinkwrap.json` files.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackageLock;

#[derive(Deserialize)]
struct Lock {
    #[serde(rename = "lockfileVersion")]
    version: Option<u32>,
    packages: Option<BTreeMap<String, LockEntry>>,
    dependencies: Option<BTreeMap<String, TreeEntry>>,
}

/// An entry of the version 2 and 3 `packages` map.
#[derive(Deserialize)]
struct LockEntry {
    name: Option<String>,
    version: Option<String>,
    resolved: Option<String>,
    #[serde(default)]
    link: bool,
}

/// An entry of the version 1 `dependencies` tree.
#[derive(Deserialize)]
struct TreeEntry {
    version: Option<String>,
    dependencies: Option<BTreeMap<String, TreeEntry>>,
}

impl Cataloguer for PackageLock {
    fn name(&self) -> &'static str {
        "npm-lock"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        matches!(
            file_name(file.path),
            "package-lock.json" | "npm-shrinkwrap.json"
        ) && !file.path.contains("/node_modules/")
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        const WHAT: &str = "package-lock.json";
        let bytes = read_to_limit(WHAT, file, contents, LOCK_LIMIT)?;
        let lock: Lock =
            serde_json::from_slice(&bytes).map_err(|e| malformed(WHAT, e.to_string()))?;
        drop(bytes);
        if let Some(v) = lock.version
            && !(1..=3).contains(&v)
        {
            return Err(malformed(WHAT, format!("unknown lockfileVersion {v}")));
        }
        let mut found = Found::new(file.path);
        if let Some(packages) = lock.packages {
            for (key, entry) in packages {
                // The root project (`""`) and workspace folders are not installed packages.
                let Some(at) = key.rfind("node_modules/") else {
                    continue;
                };
                if entry.link || entry.resolved.as_deref().is_some_and(not_from_registry) {
                    continue;
                }
                let name = entry
                    .name
                    .unwrap_or_else(|| key[at + "node_modules/".len()..].to_owned());
                if let Some(version) = entry.version {
                    found.add(name, &version);
                }
            }
        } else if let Some(tree) = lock.dependencies {
            let mut stack: Vec<(usize, BTreeMap<String, TreeEntry>)> = vec![(0, tree)];
            while let Some((depth, deps)) = stack.pop() {
                if depth >= MAX_DEPTH {
                    return Err(malformed(WHAT, "dependencies nested too deep"));
                }
                for (name, entry) in deps {
                    if let Some(version) = entry.version {
                        found.add(name, &version);
                    }
                    if let Some(nested) = entry.dependencies {
                        stack.push((depth + 1, nested));
                    }
                }
            }
        }
        Ok(found.packages)
    }
}

/// Whether a `resolved` location is something other than a registry tarball.
fn not_from_registry(resolved: &str) -> bool {
    !(resolved.starts_with("https://") || resolved.starts_with("http://"))
}

/// The packages of one file, each (name, version) once: a version 1 tree repeats a package at
/// every place it is installed.
struct Found<'a> {
    path: &'a str,
    seen: std::collections::BTreeSet<(String, String)>,
    packages: Vec<Package>,
}

impl<'a> Found<'a> {
    fn new(path: &'a str) -> Self {
        Self {
            path,
            seen: Default::default(),
            packages: Vec::new(),
        }
    }

    /// Adds `name` at `version`, where `version` is a registry version: an alias
    /// (`npm:real@1.0.0`) counts under its real name; `file:`, `git+…`, `github:` and tarball
    /// URLs do not count.
    fn add(&mut self, mut name: String, version: &str) {
        let version = match version.strip_prefix("npm:") {
            Some(aliased) => match aliased.rfind('@') {
                Some(at) if at > 0 => {
                    name = aliased[..at].to_owned();
                    &aliased[at + 1..]
                }
                _ => return,
            },
            None => version,
        };
        if name.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
            return;
        }
        if self.seen.insert((name.clone(), version.to_owned())) {
            self.packages.push(Package {
                kind: PackageType::Npm,
                name,
                version: version.to_owned(),
                source: None,
                arch: None,
                path: self.path.to_owned(),
            });
        }
    }
}

/// Reads the `package.json` of packages installed in `node_modules`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeModules;

#[derive(Deserialize)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
}

/// Whether `path` is the `package.json` at the top of an installed package's folder.
fn is_installed_manifest(path: &str) -> bool {
    let Some(dir) = path.strip_suffix("/package.json") else {
        return false;
    };
    let mut parts = dir.rsplit('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some("node_modules"), _) => !name.is_empty() && !name.starts_with(['.', '@']),
        (Some(name), Some(scope), Some("node_modules")) => {
            scope.len() > 1 && scope.starts_with('@') && !name.is_empty() && !name.starts_with('.')
        }
        _ => false,
    }
}

impl Cataloguer for NodeModules {
    fn name(&self) -> &'static str {
        "npm-package"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        is_installed_manifest(file.path)
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        const WHAT: &str = "package.json";
        let bytes = read_to_limit(WHAT, file, contents, MANIFEST_LIMIT)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| malformed(WHAT, e.to_string()))?;
        let mut found = Found::new(file.path);
        if let (Some(name), Some(version)) = (manifest.name, manifest.version) {
            found.add(name, &version);
        }
        Ok(found.packages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &dyn Cataloguer, path: &str, text: &str) -> Result<Vec<Package>, CatalogError> {
        let file = FileInfo {
            path,
            size: text.len() as u64,
            executable: false,
        };
        assert!(c.wants(&file), "{path}");
        c.catalog(&file, &mut text.as_bytes())
    }

    fn pairs(packages: &[Package]) -> Vec<(&str, &str)> {
        packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect()
    }

    const V1: &str = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 1, "requires": true,
  "dependencies": {
    "lodash": {"version": "4.17.20", "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz",
               "integrity": "sha512-PlhdFcillOINfeV7Ni6oF1TAEayyZBoZ8bcshTHqOYJYlrqzRK5hagpagky5o4HfCzzd1TRkXPMFq6cKk9rGmA=="},
    "@babel/code-frame": {"version": "7.12.13", "dev": true,
      "dependencies": {"chalk": {"version": "2.4.2"}, "lodash": {"version": "4.17.20"}}},
    "local": {"version": "file:../local"},
    "fork": {"version": "github:someone/fork#0123456789abcdef"},
    "old-name": {"version": "npm:minimist@1.2.5"}
  }
}"#;

    const V2: &str = r#"{
  "name": "app", "version": "1.0.0", "lockfileVersion": 2, "requires": true,
  "packages": {
    "": {"name": "app", "version": "1.0.0", "dependencies": {"express": "^4.17.1"}},
    "node_modules/express": {"version": "4.17.1", "resolved": "https://registry.npmjs.org/express/-/express-4.17.1.tgz"},
    "node_modules/express/node_modules/debug": {"version": "2.6.9", "resolved": "https://registry.npmjs.org/debug/-/debug-2.6.9.tgz"},
    "node_modules/@types/node": {"version": "18.11.9", "dev": true},
    "node_modules/alias": {"name": "minimist", "version": "1.2.5", "resolved": "https://registry.npmjs.org/minimist/-/minimist-1.2.5.tgz"},
    "node_modules/fork": {"version": "1.0.0", "resolved": "git+ssh://git@github.com/someone/fork.git#0123456789abcdef"},
    "node_modules/workspace-a": {"resolved": "packages/a", "link": true},
    "packages/a": {"name": "workspace-a", "version": "0.0.1"}
  },
  "dependencies": {
    "express": {"version": "4.17.1"},
    "ignored-because-packages-is-read": {"version": "9.9.9"}
  }
}"#;

    #[test]
    fn reads_version_1_trees() {
        let packages = run(&PackageLock, "/app/package-lock.json", V1).expect("v1");
        let mut found = pairs(&packages);
        found.sort();
        assert_eq!(
            found,
            [
                ("@babel/code-frame", "7.12.13"),
                ("chalk", "2.4.2"),
                ("lodash", "4.17.20"),
                ("minimist", "1.2.5"),
            ]
        );
    }

    #[test]
    fn reads_version_2_and_3_package_maps() {
        let packages = run(&PackageLock, "/app/package-lock.json", V2).expect("v2");
        assert_eq!(
            pairs(&packages),
            [
                ("@types/node", "18.11.9"),
                ("minimist", "1.2.5"),
                ("express", "4.17.1"),
                ("debug", "2.6.9"),
            ]
        );
        assert!(packages.iter().all(|p| p.kind == PackageType::Npm));
        assert!(packages.iter().all(|p| p.path == "/app/package-lock.json"));
        let v3 = r#"{"name":"app","lockfileVersion":3,"packages":{"":{"name":"app"},
            "node_modules/ms":{"version":"2.1.3","resolved":"https://registry.npmjs.org/ms/-/ms-2.1.3.tgz"}}}"#;
        let packages = run(&PackageLock, "/npm-shrinkwrap.json", v3).expect("v3");
        assert_eq!(pairs(&packages), [("ms", "2.1.3")]);
    }

    #[test]
    fn lock_files_inside_node_modules_are_not_read() {
        for path in [
            "/app/node_modules/.package-lock.json",
            "/app/node_modules/x/package-lock.json",
        ] {
            let file = FileInfo {
                path,
                size: 2,
                executable: false,
            };
            assert!(!PackageLock.wants(&file), "{path}");
        }
    }

    #[test]
    fn reads_installed_package_manifests() {
        let manifest = r#"{"name": "@babel/core", "version": "7.20.5", "license": "MIT",
            "dependencies": {"semver": "^6.3.0"}}"#;
        let packages = run(
            &NodeModules,
            "/app/node_modules/@babel/core/package.json",
            manifest,
        )
        .expect("manifest");
        assert_eq!(pairs(&packages), [("@babel/core", "7.20.5")]);
        let packages = run(
            &NodeModules,
            "/usr/lib/node_modules/npm/node_modules/semver/package.json",
            r#"{"name":"semver","version":"7.3.8"}"#,
        )
        .expect("manifest");
        assert_eq!(pairs(&packages), [("semver", "7.3.8")]);
        // A marker file without a version (`{"type": "module"}`) says nothing.
        let packages = run(&NodeModules, "/n/node_modules/x/package.json", "{}").expect("empty");
        assert!(packages.is_empty());
    }

    #[test]
    fn only_package_folders_are_wanted() {
        for (path, wanted) in [
            ("/app/package.json", false),
            ("/app/node_modules/x/package.json", true),
            ("/app/node_modules/@s/x/package.json", true),
            ("/app/node_modules/x/lib/package.json", false),
            ("/app/node_modules/x/node_modules/y/package.json", true),
            ("/app/node_modules/@s/package.json", false),
            ("/app/node_modules/.bin/package.json", false),
            ("/app/node_modules/package.json", false),
            ("node_modules/x/package.json", true),
            ("/app/node_modules/x/package.jsonx", false),
        ] {
            let file = FileInfo {
                path,
                size: 2,
                executable: false,
            };
            assert_eq!(NodeModules.wants(&file), wanted, "{path}");
        }
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "",
            "[]",
            "{\"lockfileVersion\": 7}",
            "{\"packages\": []}",
            "{\"dependencies\": {\"a\": {\"version\": 1}}}",
            "\u{0}",
        ] {
            assert!(
                run(&PackageLock, "/package-lock.json", bad).is_err(),
                "{bad:?}"
            );
        }
        let deep = format!(
            "{{\"lockfileVersion\":1,\"dependencies\":{}1{}}}",
            "{\"a\":{\"dependencies\":".repeat(100_000),
            "}}".repeat(100_000)
        );
        assert!(run(&PackageLock, "/package-lock.json", &deep).is_err());
        for cut in 0..V2.len() {
            let _ = run(&PackageLock, "/package-lock.json", &V2[..cut]);
        }
        assert!(run(&NodeModules, "/node_modules/a/package.json", "{\"name\": [").is_err());
    }
}
