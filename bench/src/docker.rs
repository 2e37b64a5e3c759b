//! `docker push` and `docker pull` wall time of a fresh, never-deduplicated image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, ensure};

use crate::servers::Registry;

/// A docker client bound to a daemon.
pub struct Docker {
    bin: PathBuf,
    host: String,
    config: tempfile::TempDir,
}

impl Docker {
    /// A client for the daemon at `host` (e.g. `unix:///run/docker.sock`).
    pub fn new(bin: PathBuf, host: String) -> anyhow::Result<Self> {
        Ok(Self {
            bin,
            host,
            config: tempfile::tempdir()?,
        })
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new(&self.bin)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", self.config.path())
            .env("DOCKER_BUILDKIT", "0")
            .args(args)
            .output()
            .with_context(|| format!("cannot run {}", self.bin.display()))?;
        ensure!(
            out.status.success(),
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// `docker pull` of `image` (which this daemon does not hold), timed, then removed again;
    /// returns seconds.
    pub fn pull_secs(&self, image: &str) -> anyhow::Result<f64> {
        let started = Instant::now();
        self.run(&["pull", "-q", image])?;
        let pull = started.elapsed().as_secs_f64();
        self.run(&["rmi", image])?;
        Ok(pull)
    }

    /// Builds a 6-layer image (busybox plus 5 random 64 MiB files) that no registry has seen,
    /// pushes it, removes it locally and pulls it; returns (push seconds, pull seconds).
    pub fn push_pull(
        &self,
        reg: &Registry,
        busybox: &Path,
        scratch: &Path,
        seed: u64,
    ) -> anyhow::Result<(f64, f64)> {
        let ctx = tempfile::tempdir_in(scratch)?;
        std::fs::create_dir_all(ctx.path().join("bin"))?;
        std::fs::copy(busybox, ctx.path().join("bin/busybox"))?;
        let mut dockerfile = String::from("FROM scratch\nCOPY bin/ /bin/\n");
        for i in 0..5u64 {
            let blob = crate::blobs::random_blob(64 << 20, seed * 10 + i);
            std::fs::write(ctx.path().join(format!("f{i}")), &blob.bytes)?;
            dockerfile.push_str(&format!("COPY f{i} /data/f{i}\n"));
        }
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile)?;
        let image = format!("{}/bench/docker:r{seed}", reg.host());
        self.run(&[
            "build",
            "-q",
            "--network",
            "none",
            "-t",
            &image,
            &ctx.path().to_string_lossy(),
        ])?;
        let started = Instant::now();
        self.run(&["push", "-q", &image])?;
        let push = started.elapsed().as_secs_f64();
        self.run(&["rmi", &image])?;
        let started = Instant::now();
        self.run(&["pull", "-q", &image])?;
        let pull = started.elapsed().as_secs_f64();
        self.run(&["rmi", &image])?;
        Ok((push, pull))
    }
}
