//! berth needs no C library beyond the C runtime to build or run (issue 17): the binary cargo
//! builds with the project's own settings links no libseccomp, dynamically or statically.

use std::process::Command;

use crate::harness;

#[test]
fn berth_links_no_libseccomp() {
    let berth = env!("CARGO_BIN_EXE_berth");
    let bytes = std::fs::read(berth).unwrap();
    // Linked in at all, libseccomp's entry points would be names in the symbol tables
    // (NUL-terminated strings).
    let symbols: [&[u8]; 3] = [b"seccomp_init", b"seccomp_export_bpf", b"seccomp_rule_add"];
    if let Some(found) = bytes.split(|&b| b == 0).find(|s| symbols.contains(s)) {
        panic!("{berth} has {}", String::from_utf8_lossy(found));
    }
    let Some(ldd) = harness::tool("ldd") else {
        return;
    };
    let out = Command::new(ldd).arg(berth).output().unwrap();
    let libs = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && libs.contains("libc.so"),
        "ldd: {libs}"
    );
    assert!(
        !libs.contains("libseccomp"),
        "{berth} needs libseccomp:\n{libs}"
    );
}
