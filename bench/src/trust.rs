//! The cost of an enforcing trust policy on the hot path (issue 19's benchmark): a second berth
//! whose `bench` namespace refuses unsigned images, serving the same small image signed with
//! `berth sign`, is measured beside the plain one. Verdicts are cached per manifest and key
//! set, so its manifest `GET` should stay within 10% of the plain berth's.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

use crate::servers::Registry;

/// The name of the enforcing berth in reports.
pub const NAME: &str = "berth-enforcing";

/// A key pair made by `berth key generate`, and the configuration enforcing it on `bench`.
pub struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// Makes the key pair and the configuration file in a fresh directory under `scratch`.
    pub fn new(berth: &Path, scratch: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir_in(scratch)?;
        let prefix = dir.path().join("bench");
        run(Command::new(berth)
            .args(["key", "generate", "--output-key-prefix"])
            .arg(&prefix)
            .env("COSIGN_PASSWORD", ""))?;
        std::fs::write(
            dir.path().join("berth.toml"),
            format!(
                "[[trust.policy]]\nscope = \"bench\"\nmode = \"enforce\"\nkeys = [{:?}]\n",
                dir.path().join("bench.pub")
            ),
        )?;
        Ok(Self { dir })
    }

    /// The environment that starts berth with the policy.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "BERTH_CONFIG".to_owned(),
            self.config().display().to_string(),
        )]
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("berth.toml")
    }

    /// Signs `repo:latest` on `reg` with `berth sign`, after checking that the policy refuses
    /// it unsigned (so the figures are those of an enforcing hub).
    pub async fn sign(
        &self,
        berth: &Path,
        http: &reqwest::Client,
        reg: &Registry,
        repo: &str,
    ) -> anyhow::Result<()> {
        let url = format!("{}/v2/{repo}/manifests/latest", reg.url);
        let status = http.get(&url).send().await?.status();
        ensure!(status == 403, "{NAME} served an unsigned image: {status}");
        run(Command::new(berth)
            .arg("sign")
            .arg("--key")
            .arg(self.dir.path().join("bench.key"))
            .arg(format!("{}/{repo}:latest", reg.host()))
            .env("COSIGN_PASSWORD", ""))?;
        let status = http.get(&url).send().await?.status();
        ensure!(status == 200, "{NAME} refused the signed image: {status}");
        Ok(())
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
