//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>).
//!
//! The image is `metadata.component` (type `container`, version its digest, purl `pkg:oci`);
//! its operating system, from os-release, is a component of type `operating-system`; every
//! package is a component of type `library` with its purl. What CycloneDX has no field for
//! is in `properties` under the `berth:` prefix: the path a package was found at, its
//! inventory type, and its source package. `dependencies` says the image holds the OS and
//! every package, and nothing about the packages' own dependencies, which berth does not read.

use serde_json::{Value, json};

use super::{Subject, TOOL_VERSION, entries};
use crate::inventory::{Inventory, PackageType};

/// The `bom-ref` of the image.
const IMAGE_REF: &str = "image";
/// The `bom-ref` of the operating system.
const OS_REF: &str = "operating-system";

/// The CycloneDX 1.6 BOM of `inventory`, the packages of `subject`.
pub fn cyclonedx(inventory: &Inventory, subject: &Subject) -> Value {
    let mut components = Vec::new();
    let mut refs = Vec::new();
    if let Some(os) = &inventory.os {
        let mut component = json!({
            "type": "operating-system",
            "bom-ref": OS_REF,
            "name": os.id,
        });
        if let Some(version) = &os.version_id {
            component["version"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            component["description"] = json!(pretty);
        }
        components.push(component);
        refs.push(OS_REF.to_owned());
    }
    for entry in entries(inventory) {
        let p = entry.package;
        let mut properties = vec![
            property("berth:package:type", &kind(p.kind)),
            property("berth:package:path", &p.path),
        ];
        if let Some(source) = &p.source {
            properties.push(property("berth:package:source", &source.name));
            if let Some(version) = &source.version {
                properties.push(property("berth:package:source-version", version));
            }
        }
        let mut component = json!({
            "type": "library",
            "bom-ref": entry.id,
            "name": p.name,
            "version": p.version,
            "purl": entry.purl,
            "properties": properties,
        });
        // Maven names its coordinates group and artifact, as CycloneDX does.
        if let (PackageType::Maven, Some((group, artifact))) = (p.kind, p.name.split_once(':')) {
            component["group"] = json!(group);
            component["name"] = json!(artifact);
        }
        refs.push(entry.id);
        components.push(component);
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", subject.uuid("cyclonedx")),
        "version": 1,
        "metadata": {
            "timestamp": subject.created(),
            "tools": {
                "components": [{
                    "type": "application",
                    "name": "berth",
                    "version": TOOL_VERSION,
                }],
            },
            "component": {
                "type": "container",
                "bom-ref": IMAGE_REF,
                "name": subject.repository(),
                "version": subject.digest(),
                "purl": subject.purl().to_string(),
            },
        },
        "components": components,
        "dependencies": [{ "ref": IMAGE_REF, "dependsOn": refs }],
    })
}

fn property(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// The inventory's name of a package type (`dpkg`, `pypi`).
pub(super) fn kind(kind: PackageType) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
