//! Just enough of ELF to find a section by name: the file header, the section header table and
//! the section name table (System V ABI, "Object Files", chapter 4). 32- and 64-bit, either byte
//! order. Every offset and count read from the file is checked against the file's length and a
//! bound before it is used.

use std::io;

use super::spool::Spool;

/// The four bytes every ELF file starts with.
pub const MAGIC: &[u8; 4] = b"\x7fELF";

/// More sections than any real executable has; a count above it is garbage.
const MAX_SECTIONS: u64 = 1 << 16;
/// The largest section name table read.
const MAX_NAMES: u64 = 4 << 20;
/// A section without file contents (`.bss`).
const SHT_NOBITS: u32 = 8;

/// Where a section's bytes are in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// The file offset of its first byte.
    pub offset: u64,
    /// Its length in bytes.
    pub size: u64,
    /// Its address in the program's memory image (0 when not loaded).
    pub addr: u64,
}

/// Why a file could not be read as ELF.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not an ELF file at all: nothing for a cataloguer to say.
    #[error("not an ELF file")]
    NotElf,
    /// An ELF file whose headers contradict themselves or the file's length.
    #[error("{0}")]
    Malformed(&'static str),
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The section headers of an ELF file, with their names.
#[derive(Debug)]
pub struct Sections {
    entries: Vec<(String, Section)>,
}

impl Sections {
    /// Reads the section header table of the ELF file in `spool`.
    pub fn read(spool: &mut Spool) -> Result<Self, ElfError> {
        if spool.len() < 52 {
            return Err(ElfError::NotElf);
        }
        let ident = spool.read_at(0, 16)?;
        if &ident[..4] != MAGIC {
            return Err(ElfError::NotElf);
        }
        let wide = match ident[4] {
            1 => false,
            2 => true,
            _ => return Err(ElfError::Malformed("unknown ELF class")),
        };
        let big = match ident[5] {
            1 => false,
            2 => true,
            _ => return Err(ElfError::Malformed("unknown ELF byte order")),
        };
        let e = Endian { big };
        let header = spool.read_at(0, if wide { 64 } else { 52 })?;
        let (shoff, shentsize, mut shnum, mut shstrndx) = if wide {
            (
                e.u64(&header[0x28..]),
                e.u16(&header[0x3a..]),
                u64::from(e.u16(&header[0x3c..])),
                u64::from(e.u16(&header[0x3e..])),
            )
        } else {
            (
                u64::from(e.u32(&header[0x20..])),
                e.u16(&header[0x2e..]),
                u64::from(e.u16(&header[0x30..])),
                u64::from(e.u16(&header[0x32..])),
            )
        };
        if shoff == 0 {
            // No section headers (fully stripped with `sstrip`): nothing to find by name.
            return Ok(Self {
                entries: Vec::new(),
            });
        }
        let entsize = u64::from(shentsize);
        if entsize < if wide { 64 } else { 40 } {
            return Err(ElfError::Malformed("section header entries too small"));
        }
        let read_header = |spool: &mut Spool, index: u64| -> Result<RawSection, ElfError> {
            let at = index
                .checked_mul(entsize)
                .and_then(|o| o.checked_add(shoff))
                .ok_or(ElfError::Malformed("section header offset overflows"))?;
            let raw = spool
                .read_at(at, entsize)
                .map_err(|_| ElfError::Malformed("section header past the end of the file"))?;
            Ok(RawSection::parse(&raw, wide, e))
        };
        // Extended numbering: more than 0xff00 sections keep the count and the name table's
        // index in the first section header (ELF gABI, "Extended Section Header Numbering").
        if shnum == 0 || shstrndx == 0xffff {
            let first = read_header(spool, 0)?;
            if shnum == 0 {
                shnum = first.size;
            }
            if shstrndx == 0xffff {
                shstrndx = u64::from(first.link);
            }
        }
        if shnum > MAX_SECTIONS {
            return Err(ElfError::Malformed("too many sections"));
        }
        if shstrndx >= shnum {
            return Err(ElfError::Malformed("section name table index out of range"));
        }
        let raw: Vec<RawSection> = (0..shnum)
            .map(|i| read_header(spool, i))
            .collect::<Result<_, _>>()?;
        // In range: `shstrndx < shnum == raw.len()`.
        let names = raw[usize::try_from(shstrndx)
            .map_err(|_| ElfError::Malformed("section name table index out of range"))?];
        if names.size > MAX_NAMES {
            return Err(ElfError::Malformed("section name table too large"));
        }
        let names = spool
            .read_at(names.offset, names.size)
            .map_err(|_| ElfError::Malformed("section name table past the end of the file"))?;
        let entries = raw
            .into_iter()
            .filter(|s| s.kind != SHT_NOBITS)
            .filter_map(|s| {
                let start = usize::try_from(s.name).ok()?;
                let rest = names.get(start..)?;
                let end = rest.iter().position(|&b| b == 0)?;
                let name = String::from_utf8_lossy(&rest[..end]).into_owned();
                Some((
                    name,
                    Section {
                        offset: s.offset,
                        size: s.size,
                        addr: s.addr,
                    },
                ))
            })
            .collect();
        Ok(Self { entries })
    }

    /// The first section called `name`.
    pub fn find(&self, name: &str) -> Option<Section> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, section)| *section)
    }

    /// The file offset of `len` bytes at address `addr` of the program's memory image, when one
    /// section with file contents holds them all.
    pub fn offset_of(&self, addr: u64, len: u64) -> Option<u64> {
        self.entries.iter().find_map(|(_, s)| {
            let end = addr.checked_add(len)?;
            (s.addr != 0 && addr >= s.addr && end <= s.addr.checked_add(s.size)?)
                .then(|| s.offset + (addr - s.addr))
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct RawSection {
    name: u32,
    kind: u32,
    link: u32,
    addr: u64,
    offset: u64,
    size: u64,
}

impl RawSection {
    fn parse(raw: &[u8], wide: bool, e: Endian) -> Self {
        if wide {
            Self {
                name: e.u32(&raw[0..]),
                kind: e.u32(&raw[4..]),
                addr: e.u64(&raw[16..]),
                offset: e.u64(&raw[24..]),
                size: e.u64(&raw[32..]),
                link: e.u32(&raw[40..]),
            }
        } else {
            Self {
                name: e.u32(&raw[0..]),
                kind: e.u32(&raw[4..]),
                addr: u64::from(e.u32(&raw[12..])),
                offset: u64::from(e.u32(&raw[16..])),
                size: u64::from(e.u32(&raw[20..])),
                link: e.u32(&raw[24..]),
            }
        }
    }
}

/// The byte order of the file; callers pass slices at least as long as the value.
#[derive(Debug, Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let b = [b[0], b[1]];
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
        if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    }
}

#[cfg(test)]
pub(crate) const BUILD_BASE: u64 = 0x40_0000;

/// Builds small ELF64 little-endian files with the given sections (each loaded at
/// [`BUILD_BASE`] plus its file offset), for tests here and in the cataloguers that read sections.
#[cfg(test)]
pub(crate) fn build(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut names = vec![0u8];
    let mut name_offsets = Vec::new();
    for (name, _) in sections.iter().copied().chain([(".shstrtab", &[][..])]) {
        name_offsets.push(names.len() as u32);
        names.extend_from_slice(name.as_bytes());
        names.push(0);
    }
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(MAGIC);
    out[4] = 2; // ELFCLASS64
    out[5] = 1; // little-endian
    out[6] = 1; // EV_CURRENT
    let mut placed = Vec::new();
    for (_, data) in sections {
        placed.push((out.len() as u64, data.len() as u64));
        out.extend_from_slice(data);
    }
    placed.push((out.len() as u64, names.len() as u64));
    out.extend_from_slice(&names);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len() as u64;
    out.extend_from_slice(&[0u8; 64]); // the null section
    for (i, (offset, size)) in placed.iter().enumerate() {
        let mut sh = [0u8; 64];
        sh[0..4].copy_from_slice(&name_offsets[i].to_le_bytes());
        let kind: u32 = if i + 1 == placed.len() { 3 } else { 1 }; // STRTAB, PROGBITS
        sh[4..8].copy_from_slice(&kind.to_le_bytes());
        // Loaded at a fixed distance from the file offset, as a non-PIE executable is.
        sh[16..24].copy_from_slice(&(BUILD_BASE + offset).to_le_bytes());
        sh[24..32].copy_from_slice(&offset.to_le_bytes());
        sh[32..40].copy_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&sh);
    }
    let shnum = placed.len() as u16 + 1;
    out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&shnum.to_le_bytes());
    out[0x3e..0x40].copy_from_slice(&(shnum - 1).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sections_of_a_built_file() {
        let elf = build(&[(".text", b"code"), (".dep-v0", b"deps")]);
        let sections = Sections::read(&mut Spool::from_vec(elf.clone())).expect("elf");
        let dep = sections.find(".dep-v0").expect("section");
        assert_eq!(&elf[dep.offset as usize..][..dep.size as usize], b"deps");
        assert_eq!(sections.offset_of(dep.addr + 1, 3), Some(dep.offset + 1));
        assert_eq!(sections.offset_of(dep.addr + 1, 4), None);
        assert_eq!(sections.offset_of(u64::MAX, 2), None);
        assert!(sections.find(".go.buildinfo").is_none());
    }

    #[test]
    fn finds_sections_of_this_test_binary() {
        // A real ELF file from the real linker: the test binary running this test.
        let exe = std::env::current_exe().expect("current exe");
        let bytes = std::fs::read(exe).expect("read");
        let sections = Sections::read(&mut Spool::from_vec(bytes)).expect("elf");
        assert!(sections.find(".text").is_some());
        assert!(sections.find(".rodata").is_some());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(matches!(
            Sections::read(&mut Spool::from_vec(b"#!/bin/sh\necho hi\n".repeat(4))),
            Err(ElfError::NotElf)
        ));
        let elf = build(&[(".text", b"code")]);
        // Every truncation and every single corrupted byte of the headers.
        for cut in 0..elf.len() {
            let _ = Sections::read(&mut Spool::from_vec(elf[..cut].to_vec()));
        }
        for at in 0..64 {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = elf.clone();
                bad[at] = value;
                let _ = Sections::read(&mut Spool::from_vec(bad));
            }
        }
        let shoff = elf.len() - 3 * 64;
        for at in shoff..elf.len() {
            let mut bad = elf.clone();
            bad[at] = 0xff;
            let _ = Sections::read(&mut Spool::from_vec(bad));
        }
    }
}
