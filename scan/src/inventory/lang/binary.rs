//! Executables: Go build information ([`super::golang`]) and `cargo auditable` dependency lists
//! ([`super::cargo`]), both read from ELF sections.
//!
//! One cataloguer for both, so that each executable is spooled once. The first four bytes decide
//! cheaply: anything but ELF (scripts, most of `/usr/bin` in some images) is answered at once.
//! An ELF file's section headers sit at its end, so the file is spooled (to memory when small,
//! to a temporary file otherwise: memory stays flat) up to [`LIMIT`].

use std::io::Read;

use crate::inventory::{CatalogError, Cataloguer, FileInfo, Package};

use super::elf::{self, ElfError, Sections};
use super::spool::Spool;
use super::{cargo, golang, malformed};

/// The largest executable read (a large Go binary such as `dockerd` is about 100 MiB).
pub const LIMIT: u64 = 256 << 20;
const WHAT: &str = "executable";

/// Reads Go and Rust (`cargo auditable`) executables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Executables;

impl Cataloguer for Executables {
    fn name(&self) -> &'static str {
        "executable"
    }

    fn wants(&self, file: &FileInfo<'_>) -> bool {
        file.executable && file.size >= 64
    }

    fn catalog(
        &self,
        file: &FileInfo<'_>,
        contents: &mut dyn Read,
    ) -> Result<Vec<Package>, CatalogError> {
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match contents.read(&mut magic[got..])? {
                0 => return Ok(Vec::new()),
                n => got += n,
            }
        }
        if &magic != elf::MAGIC {
            return Ok(Vec::new());
        }
        let mut spool = Spool::fill(WHAT, file.size, &mut magic.chain(contents), LIMIT)?;
        let sections = match Sections::read(&mut spool) {
            Ok(sections) => sections,
            Err(ElfError::NotElf) => return Ok(Vec::new()),
            Err(ElfError::Malformed(reason)) => return Err(malformed("ELF file", reason)),
            Err(ElfError::Io(e)) => return Err(e.into()),
        };
        let mut packages = Vec::new();
        if let Some(section) = sections.find(golang::SECTION) {
            let data = spool
                .read_at(section.offset, section.size.min(golang::SECTION_LIMIT))
                .map_err(|_| malformed("ELF file", "section past the end of the file"))?;
            // Before Go 1.18 the section holds pointers into the memory image.
            let mut read = |addr: u64, len: u64| {
                let offset = sections.offset_of(addr, len)?;
                spool.read_at(offset, len).ok()
            };
            packages.extend(golang::parse_buildinfo(&data, file.path, &mut read)?);
        }
        if let Some(section) = sections.find(cargo::AUDITABLE_SECTION) {
            if section.size > cargo::AUDITABLE_LIMIT {
                return Err(CatalogError::TooLarge {
                    what: "cargo auditable dependency list",
                    limit: cargo::AUDITABLE_LIMIT,
                });
            }
            let data = spool
                .read_at(section.offset, section.size)
                .map_err(|_| malformed("ELF file", "section past the end of the file"))?;
            packages.extend(cargo::parse_auditable(&data, file.path)?);
        }
        Ok(packages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::PackageType;

    fn catalog(bytes: &[u8]) -> Result<Vec<Package>, CatalogError> {
        let file = FileInfo {
            path: "/usr/local/bin/app",
            size: bytes.len() as u64,
            executable: true,
        };
        Executables.catalog(&file, &mut &bytes[..])
    }

    #[test]
    fn reads_go_and_rust_sections_of_one_binary() {
        let go = golang::build_section(
            "go1.22.1",
            "path\texample.com/app\nmod\texample.com/app\tv1.0.0\t\n\
             dep\tgolang.org/x/text\tv0.3.7\th1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\n",
        );
        let deps = cargo::tests::compress(cargo::tests::AUDITABLE_JSON.as_bytes());
        let elf = elf::build(&[
            (".text", b"\x90\x90"),
            (".go.buildinfo", &go),
            (".dep-v0", &deps),
        ]);
        let packages = catalog(&elf).expect("catalog");
        let found: Vec<_> = packages
            .iter()
            .map(|p| (p.kind, p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (PackageType::Golang, "example.com/app", "v1.0.0"),
                (PackageType::Golang, "golang.org/x/text", "v0.3.7"),
                (PackageType::Golang, "stdlib", "v1.22.1"),
                (PackageType::Cargo, "regex", "1.5.4"),
                (PackageType::Cargo, "memchr", "2.4.1"),
            ]
        );
    }

    #[test]
    fn reads_build_information_from_before_go_1_18() {
        // Go 1.13 to 1.17: the header points to two Go string headers (data pointer, length) in
        // `.data`, whose data is in `.rodata`. The sections of `elf::build` are loaded at
        // `BUILD_BASE` plus their file offset; `.rodata` is first, after the 64-byte ELF header.
        let version = b"go1.16.15";
        let modinfo = golang::frame("mod\texample.com/old\tv0.1.0\t\n");
        let modinfo = &modinfo[..];
        let mut rodata = version.to_vec();
        rodata.extend_from_slice(modinfo);
        let rodata_addr = elf::BUILD_BASE + 64;
        let mut data = Vec::new();
        for (addr, len) in [
            (rodata_addr, version.len()),
            (rodata_addr + version.len() as u64, modinfo.len()),
        ] {
            data.extend_from_slice(&addr.to_le_bytes());
            data.extend_from_slice(&(len as u64).to_le_bytes());
        }
        let data_addr = rodata_addr + rodata.len() as u64;
        let mut header = b"\xff Go buildinf:\x08\x00".to_vec();
        header.extend_from_slice(&data_addr.to_le_bytes());
        header.extend_from_slice(&(data_addr + 16).to_le_bytes());
        let elf = elf::build(&[
            (".rodata", &rodata),
            (".data", &data),
            (".go.buildinfo", &header),
        ]);
        let packages = catalog(&elf).expect("catalog");
        let found: Vec<_> = packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            found,
            [("example.com/old", "v0.1.0"), ("stdlib", "v1.16.15")]
        );
    }

    #[test]
    fn other_executables_have_nothing_to_say() {
        assert!(
            catalog(b"#!/bin/sh\nexec true\n")
                .expect("script")
                .is_empty()
        );
        assert!(catalog(b"\x7fEL").expect("short").is_empty());
        let plain = elf::build(&[(".text", b"\x90")]);
        assert!(catalog(&plain).expect("plain ELF").is_empty());
        // This test binary: a real ELF file with neither section.
        let me = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        assert!(catalog(&me).expect("real ELF").is_empty());
    }

    #[test]
    fn garbage_sections_are_errors_never_panics() {
        let elf = elf::build(&[(".go.buildinfo", b"\xff Go buildinf:garbage")]);
        assert!(matches!(catalog(&elf), Err(CatalogError::Malformed { .. })));
        let elf = elf::build(&[(".dep-v0", b"not zlib")]);
        assert!(matches!(catalog(&elf), Err(CatalogError::Malformed { .. })));
        let go = golang::build_section("go1.22.1", "mod\texample.com/app\tv1.0.0\t\n");
        let elf = elf::build(&[(".go.buildinfo", &go)]);
        for cut in 0..elf.len() {
            let _ = catalog(&elf[..cut]);
        }
    }

    #[test]
    fn executables_over_the_bound_are_refused() {
        let file = FileInfo {
            path: "/huge",
            size: LIMIT + 1,
            executable: true,
        };
        let mut stream = elf::MAGIC.chain(std::io::repeat(0));
        assert!(matches!(
            Executables.catalog(&file, &mut stream),
            Err(CatalogError::TooLarge { .. })
        ));
    }
}
