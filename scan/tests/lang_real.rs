//! The language cataloguers against files written by the real tools: Go binaries compared with
//! `go version -m`, a Rust binary carrying a `.dep-v0` section added by `objcopy`, jars packed by
//! Maven (Debian's `/usr/share/maven-repo`) and `zip` compared with `unzip`, and lock files
//! written by `npm` (tests/data/lang/npm) compared with the `node_modules` tree they describe.
//!
//! A missing tool skips its test locally and fails it under `CI=true`. The Debian packages:
//! `golang-go`, `binutils`, `zip`, `unzip`, and a Java library packaged with its Maven metadata
//! (`libplexus-utils2-java`); the Go test also reads `containerd` and `skopeo` when installed.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_scan::inventory::lang::{binary, java, npm};
use berth_scan::inventory::{Cataloguer, FileInfo, Package, PackageType};

/// Whether `tool` is on the PATH; under CI its absence fails the test.
fn require(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: `{tool}` is required"
        );
        eprintln!("skipped: `{tool}` is not installed");
    }
    found
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Offers a file on disk to a cataloguer as the walker would.
fn catalog(c: &dyn Cataloguer, path: &Path, executable: bool) -> Vec<Package> {
    let size = fs::metadata(path).expect("stat").len();
    let name = path.to_str().expect("utf-8 path");
    let file = FileInfo {
        path: name,
        size,
        executable,
    };
    assert!(c.wants(&file), "{name}");
    let mut contents = fs::File::open(path).expect("open");
    c.catalog(&file, &mut contents)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn set(packages: &[Package]) -> BTreeSet<(PackageType, String, String)> {
    packages
        .iter()
        .map(|p| (p.kind, p.name.clone(), p.version.clone()))
        .collect()
}

fn golang(name: &str, version: &str) -> (PackageType, String, String) {
    (PackageType::Golang, name.to_owned(), version.to_owned())
}

/// What `go version -m` says a binary holds, by the rules the cataloguer documents: modules as
/// compiled (a replacement wins, a directory replacement is left out) and the standard library.
fn go_version_m(path: &Path) -> BTreeSet<(PackageType, String, String)> {
    let out = run(Command::new("go").arg("version").arg("-m").arg(path));
    let mut lines = out.lines();
    let first = lines.next().expect("first line");
    let go = first.rsplit(": ").next().expect("go version");
    let mut found: Vec<(String, String)> = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.trim_start_matches('\t').split('\t').collect();
        match fields.as_slice() {
            ["mod" | "dep", path, version, ..] => {
                found.push(((*path).to_owned(), (*version).to_owned()))
            }
            ["=>", path, version, ..] => {
                let replaced = found.pop().expect("replaced module");
                if !version.is_empty() {
                    found.push(((*path).to_owned(), (*version).to_owned()));
                } else {
                    drop(replaced);
                }
            }
            _ => {}
        }
    }
    let semver = format!("v{}", go.trim_start_matches("go"));
    let semver = match semver.matches('.').count() {
        1 => format!("{semver}.0"),
        _ => semver,
    };
    found
        .iter()
        .map(|(n, v)| golang(n, v))
        .chain([golang("stdlib", &semver)])
        .collect()
}

#[test]
fn a_go_binary_built_here_with_dependencies_and_a_replacement() {
    if !require("go") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let write = |path: &str, text: &str| {
        let path = d.join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    // Vendored, so that no module proxy is needed; the build information is the same.
    write(
        "go.mod",
        "module example.com/app\n\ngo 1.19\n\nrequire (\n\texample.com/dep v1.2.3\n\t\
         example.com/old v1.0.0\n)\n\nreplace example.com/old v1.0.0 => example.com/new v1.1.0\n",
    );
    write(
        "vendor/modules.txt",
        "# example.com/dep v1.2.3\n## explicit\nexample.com/dep\n\
         # example.com/old v1.0.0 => example.com/new v1.1.0\n## explicit\nexample.com/old\n",
    );
    write(
        "vendor/example.com/dep/dep.go",
        "package dep\n\nfunc X() int { return 1 }\n",
    );
    write(
        "vendor/example.com/old/old.go",
        "package old\n\nfunc Y() int { return 2 }\n",
    );
    write(
        "main.go",
        "package main\n\nimport (\n\t\"os\"\n\n\t\"example.com/dep\"\n\t\"example.com/old\"\n)\n\n\
         func main() { os.Exit(dep.X() + old.Y() - 3) }\n",
    );
    run(Command::new("go")
        .args(["build", "-o", "app", "."])
        .current_dir(d)
        .env("GOFLAGS", "-mod=vendor")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local"));
    let app = d.join("app");
    let packages = catalog(&binary::Executables, &app, true);
    let go = run(Command::new("go").args(["env", "GOVERSION"]));
    let stdlib = format!("v{}", go.trim().trim_start_matches("go"));
    assert_eq!(
        set(&packages),
        [
            golang("example.com/app", "(devel)"),
            golang("example.com/dep", "v1.2.3"),
            golang("example.com/new", "v1.1.0"),
            golang("stdlib", &stdlib),
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(set(&packages), go_version_m(&app));
}

#[test]
fn go_binaries_of_this_machine_agree_with_go_version_m() {
    if !require("go") {
        return;
    }
    let mut checked = 0;
    for path in ["/usr/bin/containerd", "/usr/bin/skopeo", "/usr/sbin/runc"] {
        let path = Path::new(path);
        if !path.is_file() {
            continue;
        }
        let packages = catalog(&binary::Executables, path, true);
        assert_eq!(set(&packages), go_version_m(path), "{}", path.display());
        checked += 1;
    }
    if checked == 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: no Go binaries to read"
        );
    }
}

#[test]
fn a_rust_binary_with_a_dep_v0_section() {
    if !require("objcopy") {
        return;
    }
    // The dependency list of `cargo auditable` 0.6 for a small binary, as its JSON is written.
    let json = r#"{"packages":[{"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3],"root":true},{"name":"bitflags","version":"1.3.2","source":"crates.io"},{"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},{"name":"libc","version":"0.2.149","source":"crates.io"}]}"#;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, json.as_bytes()).expect("compress");
    let dir = tempfile::tempdir().expect("tempdir");
    let deps = dir.path().join("deps.z");
    fs::write(&deps, z.finish().expect("compress")).expect("write");
    let exe = dir.path().join("app");
    // A real ELF executable from the real linker: this test binary.
    let me = std::env::current_exe().expect("current exe");
    run(Command::new("objcopy")
        .arg(format!("--add-section=.dep-v0={}", deps.display()))
        .arg(&me)
        .arg(&exe));
    let packages = catalog(&binary::Executables, &exe, true);
    let cargo = |n: &str, v: &str| (PackageType::Cargo, n.to_owned(), v.to_owned());
    assert_eq!(
        set(&packages),
        [cargo("bitflags", "1.3.2"), cargo("libc", "0.2.149")]
            .into_iter()
            .collect()
    );
    // Without the section, the same binary has nothing to say.
    assert!(catalog(&binary::Executables, &me, true).is_empty());
}

fn files_under(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            files_under(&path, depth - 1, out);
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// The Maven coordinates `unzip` finds in a jar's `pom.properties` files.
fn unzip_coordinates(jar: &Path) -> BTreeSet<(PackageType, String, String)> {
    let list = run(Command::new("unzip").arg("-Z1").arg(jar));
    let mut out = BTreeSet::new();
    for entry in list
        .lines()
        .filter(|l| l.starts_with("META-INF/maven/") && l.ends_with("/pom.properties"))
    {
        let text = run(Command::new("unzip").arg("-p").arg(jar).arg(entry));
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(str::trim)
                .map(str::to_owned)
        };
        if let (Some(g), Some(a), Some(v)) = (get("groupId"), get("artifactId"), get("version")) {
            out.insert((PackageType::Maven, format!("{g}:{a}"), v));
        }
    }
    out
}

/// Jars of this machine's Maven repository (Debian's), each file once.
fn real_jars() -> Vec<PathBuf> {
    let mut files = Vec::new();
    files_under(Path::new("/usr/share/maven-repo"), 12, &mut files);
    let mut seen = BTreeSet::new();
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jar"))
        .filter(|p| seen.insert(fs::canonicalize(p).unwrap_or_else(|_| p.clone())))
        .collect()
}

#[test]
fn jars_of_this_machine_agree_with_unzip() {
    if !require("unzip") {
        return;
    }
    let jars = real_jars();
    let mut with_coordinates = 0;
    for jar in &jars {
        let expected = unzip_coordinates(jar);
        with_coordinates += usize::from(!expected.is_empty());
        assert_eq!(
            set(&catalog(&java::Archives, jar, false)),
            expected,
            "{}",
            jar.display()
        );
    }
    if with_coordinates == 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: no jars with Maven metadata on this machine"
        );
    }
}

#[test]
fn a_war_packed_by_zip_reports_its_libraries() {
    if !require("zip") || !require("unzip") {
        return;
    }
    let libs: Vec<PathBuf> = real_jars()
        .into_iter()
        .filter(|j| !unzip_coordinates(j).is_empty())
        .take(4)
        .collect();
    if libs.is_empty() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI: no jars");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let lib = root.join("WEB-INF/lib");
    fs::create_dir_all(&lib).expect("mkdir");
    let mut expected = BTreeSet::new();
    for (i, jar) in libs.iter().enumerate() {
        fs::copy(jar, lib.join(format!("lib{i}.jar"))).expect("copy");
        expected.extend(unzip_coordinates(jar));
    }
    let maven = root.join("META-INF/maven/com.example/shop");
    fs::create_dir_all(&maven).expect("mkdir");
    fs::write(
        maven.join("pom.properties"),
        "groupId=com.example\nartifactId=shop\nversion=3.1.0\n",
    )
    .expect("write");
    expected.insert((
        PackageType::Maven,
        "com.example:shop".to_owned(),
        "3.1.0".to_owned(),
    ));
    let war = dir.path().join("shop.war");
    run(Command::new("zip")
        .arg("-q")
        .arg("-r")
        .arg(&war)
        .arg(".")
        .current_dir(&root));
    assert_eq!(set(&catalog(&java::Archives, &war, false)), expected);
}

#[test]
fn lock_files_written_by_npm() {
    // Written by npm 11.19.1 (`npm install --package-lock-only --offline --lockfile-version N`)
    // from a node_modules tree holding these packages, listed here from their own package.json
    // files: nested (`minipass-pipeline/node_modules/minipass`) and scoped names included.
    let installed: BTreeSet<_> = [
        ("@npmcli/promise-spawn", "9.0.1"),
        ("balanced-match", "4.0.4"),
        ("brace-expansion", "5.0.9"),
        ("glob", "13.0.6"),
        ("isexe", "4.0.0"),
        ("lru-cache", "11.5.1"),
        ("minimatch", "10.2.5"),
        ("minipass", "7.1.3"),
        ("minipass-pipeline", "1.2.4"),
        ("minipass", "3.3.6"),
        ("yallist", "4.0.0"),
        ("path-scurry", "2.0.2"),
        ("semver", "7.8.5"),
        ("which", "6.0.1"),
    ]
    .into_iter()
    .map(|(n, v)| (PackageType::Npm, n.to_owned(), v.to_owned()))
    .collect();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lang/npm");
    for version in 1..=3 {
        let lock = data.join(format!("package-lock-v{version}.json"));
        // The cataloguer wants the file by its usual name.
        let dir = tempfile::tempdir().expect("tempdir");
        let named = dir.path().join("package-lock.json");
        fs::copy(&lock, &named).expect("copy");
        assert_eq!(
            set(&catalog(&npm::PackageLock, &named, false)),
            installed,
            "lockfileVersion {version}"
        );
    }
}
