//! Layers for the inventory tests, built with the `tar` crate (what real writers produce), and
//! hand-made headers for what the `tar` crate refuses to write (escaping paths, sparse files).

#![allow(dead_code, reason = "each test binary uses a part")]

pub mod rpm_header;

use std::io::{Read, Write};

use berth_scan::inventory::{Inventory, LayerBlob, Limits, Walker, default_cataloguers};

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// One entry of a layer.
pub enum Item<'a> {
    File(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// An empty regular file, e.g. a whiteout `.wh.name`.
    Empty(&'a str),
}

/// A tar layer of `items`, in order.
pub fn layer(items: &[Item<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match item {
            Item::File(path, data) | Item::Exec(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if matches!(item, Item::Exec(..)) {
                    0o755
                } else {
                    0o644
                });
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).expect("file");
            }
            Item::Empty(path) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, &[][..])
                    .expect("empty file");
            }
            Item::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, path, &[][..])
                    .expect("dir");
            }
            Item::Symlink(path, target) | Item::HardLink(path, target) => {
                let kind = if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                header.set_entry_type(kind);
                header.set_mode(0o777);
                header.set_size(0);
                builder
                    .append_link(&mut header, path, target)
                    .expect("link");
            }
        }
    }
    builder.into_inner().expect("tar")
}

pub fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(tar).expect("gzip");
    encoder.finish().expect("gzip")
}

pub fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).expect("zstd")
}

/// The inventory of plain tar layers with the default cataloguers and limits.
pub fn inventory(layers: &[Vec<u8>]) -> Inventory {
    inventory_with(layers, Limits::default())
}

/// The inventory of plain tar layers with `limits`. Every layer test also checks the walk of
/// two layers at a time ([`Walker::add_layers`]) against the walk of one at a time: with
/// every layer walked ahead of its turn, and with every walk ahead given up at once.
pub fn inventory_with(layers: &[Vec<u8>], limits: Limits) -> Inventory {
    let cataloguers = default_cataloguers();
    let one_at_a_time = Inventory::from_layers(
        layers.iter().map(|l| (TAR, l.as_slice())),
        &cataloguers,
        limits.clone(),
    );
    for max_lookahead_bytes in [limits.max_lookahead_bytes, 1] {
        let blobs = layers
            .iter()
            .map(|l| LayerBlob {
                media_type: TAR.to_owned(),
                open: Box::new(move || Ok(Box::new(l.as_slice()) as Box<dyn Read + Send>)),
            })
            .collect();
        let mut walker = Walker::new(
            &cataloguers,
            Limits {
                max_lookahead_bytes,
                ..limits.clone()
            },
        );
        walker.add_layers(blobs);
        assert_eq!(
            walker.finish(),
            one_at_a_time,
            "two layers at a time (look-ahead {max_lookahead_bytes} bytes)"
        );
    }
    one_at_a_time
}

/// A dpkg status with one installed package per `(name, version)`.
pub fn dpkg_status(packages: &[(&str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, version) in packages {
        out.push_str(&format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\nDescription: {name}\n the {name} package\n\n"
        ));
    }
    out.into_bytes()
}

/// `(name, version, path)` of every package found.
pub fn found(inventory: &Inventory) -> Vec<(String, String, String)> {
    inventory
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.version.clone(), p.path.clone()))
        .collect()
}

/// A raw 512-byte header block with `name`, `typeflag`, `size` (octal) and a valid checksum.
pub fn raw_header(name: &[u8], typeflag: u8, size: u64) -> [u8; 512] {
    let mut block = [0u8; 512];
    block[..name.len()].copy_from_slice(name);
    block[100..108].copy_from_slice(b"0000644\0");
    block[108..116].copy_from_slice(b"0000000\0");
    block[116..124].copy_from_slice(b"0000000\0");
    let size_field = format!("{size:011o}\0");
    block[124..136].copy_from_slice(size_field.as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = typeflag;
    block[257..265].copy_from_slice(b"ustar  \0");
    set_checksum(&mut block);
    block
}

pub fn set_checksum(block: &mut [u8; 512]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// Peak resident memory of this process (Linux `VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}
