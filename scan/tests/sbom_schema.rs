//! berth's SBOM documents against the formats' official JSON schemas and validators, for an
//! image made of real package databases: this machine's dpkg status and os-release, the
//! workspace's own `Cargo.lock`, a real npm lock file and Python metadata.
//!
//! - CycloneDX 1.6: `cyclonedx-python-lib`'s strict validator (the CycloneDX project's own
//!   library, with the 1.6 schema it ships, `additionalProperties: false` throughout).
//! - SPDX 2.3: the SPDX project's JSON schema (`$id http://spdx.org/rdf/terms/2.3`, as shipped
//!   by `lib4sbom`) with `jsonschema`, then `spdx-tools`' full validation (ids, relationships,
//!   purls, the namespace URI), which the schema does not check.
//!
//! The validators are Python packages (tests/run installs them). Without them the tests skip,
//! and fail under CI=true.

mod inventory_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use berth_scan::inventory::{Inventory, PackageType};
use berth_scan::sbom::{Format, Subject};
use inventory_support::{Item, inventory, layer};
use serde_json::Value;

const VALIDATE: &str = r#"
import json, sys
from importlib.resources import files
kind, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
problems = []
if kind == "cyclonedx":
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        problems.append(str(error))
else:
    import jsonschema
    schema = json.loads(files("lib4sbom").joinpath("schemas/spdx/2.3-schema.json").read_text())
    assert schema["$id"] == "http://spdx.org/rdf/terms/2.3", schema["$id"]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    problems += [f"schema: {e.json_path}: {e.message}" for e in validator.iter_errors(json.loads(text))]
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    try:
        document = parse_file(path)
        problems += [f"spdx-tools: {m.validation_message}" for m in validate_full_spdx_document(document, "SPDX-2.3")]
    except Exception as e:
        problems.append(f"spdx-tools cannot parse it: {e}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
"#;

/// Whether the validators are installed; under CI=true their absence fails the test.
fn have_validators() -> bool {
    let present = Command::new("python3")
        .args([
            "-c",
            "import cyclonedx.validation.json, jsonschema, lib4sbom, spdx_tools.spdx",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the SBOM validators (PyPI cyclonedx-python-lib[json-validation], lib4sbom, \
             spdx-tools) are missing (CI=true)"
        );
        eprintln!("skipped: the SBOM validators are not installed");
    }
    present
}

/// Runs the validator on `document`; `Err` holds what it said.
fn validate(dir: &Path, format: Format, document: &Value) -> Result<(), String> {
    let (kind, name) = match format {
        Format::CycloneDx => ("cyclonedx", "bom.cdx.json"),
        Format::Spdx => ("spdx", "bom.spdx.json"),
    };
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(document).expect("json")).expect("write");
    let out = Command::new("python3")
        .args(["-c", VALIDATE, kind])
        .arg(&path)
        .output()
        .expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(said)
    }
}

/// An image of this machine's real package databases.
fn real_image() -> (Inventory, Subject) {
    let status = std::fs::read("/var/lib/dpkg/status").unwrap_or_default();
    let os_release = std::fs::read("/etc/os-release")
        .or_else(|_| std::fs::read("/usr/lib/os-release"))
        .expect("this machine's os-release");
    let cargo_lock = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"))
        .expect("the workspace's Cargo.lock");
    let npm_lock = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lang/npm/package-lock-v3.json"),
    )
    .expect("the npm fixture");
    let metadata = b"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nYAML.\n";
    let inv = inventory(&[
        layer(&[
            Item::File("etc/os-release", &os_release),
            Item::File("var/lib/dpkg/status", &status),
        ]),
        layer(&[
            Item::File("srv/berth/Cargo.lock", &cargo_lock),
            Item::File("srv/web/package-lock.json", &npm_lock),
            Item::File(
                "usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA",
                metadata,
            ),
        ]),
    ]);
    assert_eq!(inv.errors, []);
    for kind in [PackageType::Cargo, PackageType::Npm, PackageType::Pypi] {
        assert!(
            inv.packages.iter().any(|p| p.kind == kind),
            "no {kind:?} packages"
        );
    }
    let subject = Subject::new(
        "berth/sbom-test",
        format!("sha256:{}", "5e".repeat(32)),
        UNIX_EPOCH + Duration::from_secs(1_764_806_400),
    )
    .expect("valid")
    .with_registry("127.0.0.1:5000");
    (inv, subject)
}

#[test]
fn documents_of_real_databases_pass_the_official_validators() {
    if !have_validators() {
        return;
    }
    let (inv, subject) = real_image();
    let dir = tempfile::tempdir().expect("tmp");
    for format in Format::ALL {
        let made = Instant::now();
        let document = format.document(&inv, &subject);
        let made = made.elapsed();
        let checked = Instant::now();
        if let Err(said) = validate(dir.path(), format, &document) {
            panic!("{format:?} document refused:\n{said}");
        }
        eprintln!(
            "{format:?}: made in {made:?}, validated in {:?}",
            checked.elapsed()
        );
    }
    eprintln!(
        "{} packages ({} dpkg) validated as CycloneDX 1.6 and SPDX 2.3",
        inv.packages.len(),
        inv.packages
            .iter()
            .filter(|p| p.kind == PackageType::Dpkg)
            .count()
    );
}

/// The validators do refuse what the formats forbid, so a green run above means something.
#[test]
fn the_validators_refuse_broken_documents() {
    if !have_validators() {
        return;
    }
    // A small image: the validators take seconds over a thousand packages.
    let (_, subject) = real_image();
    let inv = inventory(&[layer(&[
        Item::File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
        Item::File(
            "var/lib/dpkg/status",
            b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n\
Package: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\n",
        ),
    ])]);
    assert_eq!(inv.packages.len(), 2);
    let dir = tempfile::tempdir().expect("tmp");

    let mut bom = Format::CycloneDx.document(&inv, &subject);
    bom["components"][1]["type"] = "lib".into();
    assert!(validate(dir.path(), Format::CycloneDx, &bom).is_err());
    let mut bom = Format::CycloneDx.document(&inv, &subject);
    bom["serialNumber"] = "urn:uuid:not-a-uuid".into();
    assert!(validate(dir.path(), Format::CycloneDx, &bom).is_err());

    // An id outside `SPDXRef-[A-Za-z0-9.-]+`, which only spdx-tools checks.
    let mut doc = Format::Spdx.document(&inv, &subject);
    doc["packages"][2]["SPDXID"] = "SPDXRef-no_underscores".into();
    let said = validate(dir.path(), Format::Spdx, &doc).expect_err("refused");
    assert!(said.contains("spdx-tools"), "{said}");
    // A missing required field, which the schema checks.
    let mut doc = Format::Spdx.document(&inv, &subject);
    doc["packages"][2]
        .as_object_mut()
        .expect("a package")
        .remove("downloadLocation");
    let said = validate(dir.path(), Format::Spdx, &doc).expect_err("refused");
    assert!(said.contains("schema:"), "{said}");
}
