//! The SBOM documents of a small image, field by field: what a reader of the CycloneDX and
//! SPDX documents finds, and that the same image gives the same bytes.

mod inventory_support;

use std::time::{Duration, UNIX_EPOCH};

use berth_scan::sbom::{self, Format, Subject};
use inventory_support::{Item, inventory, layer};
use serde_json::{Value, json};

const STATUS: &[u8] = b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Source: glibc\nVersion: 2.36-9+deb12u4\n\n\
Package: bsdutils\nStatus: install ok installed\nArchitecture: amd64\n\
Source: util-linux (2.38.1-5)\nVersion: 1:2.38.1-5+b1\n";

const CARGO_LOCK: &[u8] = b"version = 4\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.1\"\n\
source = \"registry+https://github.com/rust-lang/crates.io-index\"\n";

const METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\n\nThe description.\n";

fn image() -> (berth_scan::inventory::Inventory, Subject) {
    let inv = inventory(&[
        layer(&[
            Item::File(
                "etc/os-release",
                b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
            ),
            Item::File("var/lib/dpkg/status", STATUS),
        ]),
        layer(&[
            Item::File("app/Cargo.lock", CARGO_LOCK),
            Item::File(
                "usr/lib/python3/dist-packages/PyYAML-6.0.1.dist-info/METADATA",
                METADATA,
            ),
        ]),
    ]);
    assert_eq!(inv.errors, []);
    assert_eq!(inv.packages.len(), 4, "{:?}", inv.packages);
    let subject = Subject::new(
        "team/app",
        format!("sha256:{}", "ab".repeat(32)),
        UNIX_EPOCH + Duration::from_secs(1_709_210_096),
    )
    .expect("a valid subject")
    .with_registry("registry.example:5000");
    (inv, subject)
}

/// The component or package whose purl, at JSON pointer `at`, starts with `prefix`.
fn by_purl<'a>(items: &'a Value, prefix: &str, at: &str) -> &'a Value {
    items
        .as_array()
        .expect("an array")
        .iter()
        .find(|c| {
            c.pointer(at)
                .and_then(Value::as_str)
                .is_some_and(|p| p.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix}"))
}

#[test]
fn cyclonedx_names_the_image_its_os_and_every_package() {
    let (inv, subject) = image();
    let bom = sbom::cyclonedx(&inv, &subject);
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["version"], 1);
    let serial = bom["serialNumber"].as_str().expect("a serial number");
    assert!(
        serial.starts_with("urn:uuid:") && serial.len() == 45,
        "{serial}"
    );
    assert_eq!(bom["metadata"]["timestamp"], "2024-02-29T12:34:56Z");
    assert_eq!(
        bom["metadata"]["tools"]["components"][0],
        json!({"type": "application", "name": "berth", "version": sbom::TOOL_VERSION})
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(
        bom["metadata"]["component"],
        json!({
            "type": "container",
            "bom-ref": "image",
            "name": "team/app",
            "version": digest,
            "purl": format!("pkg:oci/app@{digest}?repository_url=registry.example:5000%2Fteam%2Fapp"),
        })
    );
    let components = &bom["components"];
    assert_eq!(components.as_array().map(Vec::len), Some(5));
    assert_eq!(
        components[0],
        json!({
            "type": "operating-system",
            "bom-ref": "operating-system",
            "name": "debian",
            "version": "12",
            "description": "Debian GNU/Linux 12 (bookworm)",
        })
    );
    let purl = "/purl";
    let bsdutils = by_purl(components, "pkg:deb/", purl);
    assert_eq!(bsdutils["type"], "library");
    assert_eq!(bsdutils["name"], "bsdutils");
    assert_eq!(bsdutils["version"], "1:2.38.1-5+b1");
    assert_eq!(
        bsdutils["purl"],
        "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12"
    );
    assert_eq!(
        bsdutils["properties"],
        json!([
            {"name": "berth:package:type", "value": "dpkg"},
            {"name": "berth:package:path", "value": "/var/lib/dpkg/status"},
            {"name": "berth:package:source", "value": "util-linux"},
            {"name": "berth:package:source-version", "value": "2.38.1-5"},
        ])
    );
    by_purl(
        components,
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
        purl,
    );
    by_purl(components, "pkg:cargo/serde@1.0.1", purl);
    let pyyaml = by_purl(components, "pkg:pypi/pyyaml@6.0.1", purl);
    assert_eq!(pyyaml["name"], "PyYAML");

    // Every bom-ref is unique, and the image depends on each component.
    let refs: Vec<&str> = components
        .as_array()
        .expect("components")
        .iter()
        .map(|c| c["bom-ref"].as_str().expect("a bom-ref"))
        .collect();
    let unique: std::collections::BTreeSet<_> = refs.iter().collect();
    assert_eq!(unique.len(), refs.len());
    assert_eq!(
        bom["dependencies"],
        json!([{"ref": "image", "dependsOn": refs}])
    );
}

#[test]
fn spdx_describes_the_image_which_contains_the_packages() {
    let (inv, subject) = image();
    let doc = sbom::spdx(&inv, &subject);
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    let digest = format!("sha256:{}", "ab".repeat(32));
    assert_eq!(doc["name"], format!("team/app@{digest}"));
    let namespace = doc["documentNamespace"].as_str().expect("a namespace");
    assert!(
        namespace.starts_with("https://berth.invalid/spdx/team/app/") && !namespace.contains('#'),
        "{namespace}"
    );
    assert_eq!(
        doc["creationInfo"],
        json!({
            "created": "2024-02-29T12:34:56Z",
            "creators": [format!("Tool: berth-{}", sbom::TOOL_VERSION)],
        })
    );
    let packages = &doc["packages"];
    assert_eq!(packages.as_array().map(Vec::len), Some(6));
    assert_eq!(packages[0]["SPDXID"], "SPDXRef-Image");
    assert_eq!(packages[0]["versionInfo"], digest);
    assert_eq!(packages[0]["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(packages[1]["SPDXID"], "SPDXRef-OperatingSystem");
    let purl = "/externalRefs/0/referenceLocator";
    let libc = by_purl(packages, "pkg:deb/debian/libc6@", purl);
    assert_eq!(libc["name"], "libc6");
    assert_eq!(libc["versionInfo"], "2.36-9+deb12u4");
    assert_eq!(libc["downloadLocation"], "NOASSERTION");
    assert_eq!(libc["filesAnalyzed"], false);
    assert_eq!(
        libc["externalRefs"][0]["referenceCategory"],
        "PACKAGE-MANAGER"
    );
    assert_eq!(libc["externalRefs"][0]["referenceType"], "purl");
    assert_eq!(
        libc["sourceInfo"],
        "dpkg package found in /var/lib/dpkg/status"
    );
    let id = libc["SPDXID"].as_str().expect("an id");
    assert!(
        id.starts_with("SPDXRef-Package-dpkg-")
            && id[8..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
        "{id}"
    );

    let relationships = doc["relationships"].as_array().expect("relationships");
    assert_eq!(relationships.len(), 6);
    assert_eq!(
        relationships[0],
        json!({
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Image",
        })
    );
    for (relationship, package) in relationships[1..]
        .iter()
        .zip(&packages.as_array().expect("packages")[1..])
    {
        assert_eq!(relationship["spdxElementId"], "SPDXRef-Image");
        assert_eq!(relationship["relationshipType"], "CONTAINS");
        assert_eq!(relationship["relatedSpdxElement"], package["SPDXID"]);
    }
}

#[test]
fn the_same_image_gives_the_same_documents() {
    let (inv, subject) = image();
    for format in Format::ALL {
        let a = serde_json::to_vec(&format.document(&inv, &subject)).expect("json");
        let b = serde_json::to_vec(&format.document(&inv.clone(), &subject.clone())).expect("json");
        assert_eq!(a, b, "{format:?}");
    }
    // Another image (another digest) gets another serial number and namespace, and its
    // packages keep their ids: they depend on the package and its path alone.
    let other = Subject::new(
        "team/app",
        format!("sha256:{}", "cd".repeat(32)),
        UNIX_EPOCH,
    )
    .expect("valid");
    let (a, b) = (
        sbom::cyclonedx(&inv, &subject),
        sbom::cyclonedx(&inv, &other),
    );
    assert_ne!(a["serialNumber"], b["serialNumber"]);
    assert_eq!(a["components"], b["components"]);
    let (a, b) = (sbom::spdx(&inv, &subject), sbom::spdx(&inv, &other));
    assert_ne!(a["documentNamespace"], b["documentNamespace"]);
    assert_eq!(a["packages"][2], b["packages"][2]);
}

#[test]
fn media_types_of_the_referrers() {
    assert_eq!(
        Format::CycloneDx.media_type(),
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(Format::Spdx.media_type(), "application/spdx+json");
}

/// The same purl at two paths (one crate in two lock files) is two components with ids of
/// their own.
#[test]
fn one_package_at_two_paths_has_two_ids() {
    let inv = inventory(&[layer(&[
        Item::File("a/Cargo.lock", CARGO_LOCK),
        Item::File("b/Cargo.lock", CARGO_LOCK),
    ])]);
    assert_eq!(inv.packages.len(), 2);
    let (_, subject) = image();
    let bom = sbom::cyclonedx(&inv, &subject);
    let components = bom["components"].as_array().expect("components");
    assert_eq!(components.len(), 2, "no OS without os-release");
    assert_eq!(components[0]["purl"], components[1]["purl"]);
    assert_ne!(components[0]["bom-ref"], components[1]["bom-ref"]);
}
