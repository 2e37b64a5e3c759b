//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>).
//!
//! The document DESCRIBES the image, a package of purpose `CONTAINER` (version its digest,
//! purl `pkg:oci`); the image CONTAINS its operating system (purpose `OPERATING_SYSTEM`, the JSON schema's spelling) and
//! every package (purpose `LIBRARY`, its purl as a `PACKAGE-MANAGER` external reference, the
//! path it was found at in `sourceInfo`). Files are not listed (`filesAnalyzed: false`), and
//! licences and download locations are `NOASSERTION`: the inventory does not read them.

use serde_json::{Value, json};

use super::cyclonedx::kind;
use super::{SPDX_NAMESPACE_BASE, Subject, TOOL_VERSION, entries};
use crate::inventory::Inventory;

const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
const IMAGE_ID: &str = "SPDXRef-Image";
const OS_ID: &str = "SPDXRef-OperatingSystem";
const NOASSERTION: &str = "NOASSERTION";

/// The SPDX 2.3 document of `inventory`, the packages of `subject`.
pub fn spdx(inventory: &Inventory, subject: &Subject) -> Value {
    let name = format!("{}@{}", subject.repository(), subject.digest());
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": subject.repository(),
        "versionInfo": subject.digest(),
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [purl_ref(&subject.purl().to_string())],
    })];
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)];
    if let Some(os) = &inventory.os {
        let mut package = json!({
            "SPDXID": OS_ID,
            "name": os.id,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING_SYSTEM",
            "sourceInfo": "from /etc/os-release",
        });
        if let Some(version) = &os.version_id {
            package["versionInfo"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            package["description"] = json!(pretty);
        }
        packages.push(package);
        relationships.push(relationship(IMAGE_ID, "CONTAINS", OS_ID));
    }
    for entry in entries(inventory) {
        let p = entry.package;
        let id = format!("SPDXRef-Package-{}", entry.id);
        let mut package = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "sourceInfo": format!("{} package found in {}", kind(p.kind), p.path),
            "externalRefs": [purl_ref(&entry.purl)],
        });
        if let Some(source) = &p.source {
            let version = source.version.as_deref().unwrap_or(&p.version);
            package["comment"] = json!(format!("source package: {} {version}", source.name));
        }
        packages.push(package);
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": DOCUMENT_ID,
        "name": name,
        "documentNamespace": format!(
            "{SPDX_NAMESPACE_BASE}/{}/{}",
            subject.repository(),
            subject.uuid("spdx")
        ),
        "creationInfo": {
            "created": subject.created(),
            "creators": [format!("Tool: berth-{TOOL_VERSION}")],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}
