//! The machine's own limits, measured in the same run: what a registry could reach at best.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::blobs::mb_per_s;

/// SHA-256 throughput on one core, MB/s.
pub fn sha256_single_core() -> f64 {
    let data = vec![0x5au8; 256 << 20];
    let started = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..4 {
        h.update(&data);
    }
    std::hint::black_box(h.finalize());
    mb_per_s(4 * data.len(), started)
}

/// Loopback TCP throughput with one connection, MB/s.
pub async fn loopback() -> anyhow::Result<f64> {
    const TOTAL: usize = 4 << 30;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return anyhow::Ok(total);
            }
            total += n;
        }
    });
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let chunk = vec![0u8; 1 << 20];
    let started = Instant::now();
    for _ in 0..TOTAL / chunk.len() {
        s.write_all(&chunk).await?;
    }
    s.shutdown().await?;
    drop(s);
    let total = reader.await??;
    Ok(mb_per_s(total, started))
}

/// Sequential write of 1 GiB followed by fsync, MB/s.
pub fn synced_disk_write(dir: &Path) -> anyhow::Result<f64> {
    let path = dir.join("disk-write-test");
    let chunk = vec![0xa5u8; 8 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path)?;
    for _ in 0..128 {
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    let rate = mb_per_s(128 * chunk.len(), started);
    std::fs::remove_file(&path)?;
    Ok(rate)
}
