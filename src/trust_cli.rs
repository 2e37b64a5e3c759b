//! `berth sign`, `berth verify` and `berth key generate`: cosign-compatible signing and
//! verification of images in any registry, with the credentials `berth login` saved.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use anyhow::{Context, bail};
use berth_runtime::Reference;
use berth_runtime::verify::TrustCheck;
use berth_trust::{Mode, Policies, PolicyConfig, PublicKey, SigningKey};
use clap::Subcommand;
use serde_json::json;

/// The variable cosign reads the private key's password from.
const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

/// Signing commands.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Sign an image as cosign does (key-based), in any registry.
    ///
    /// The image is resolved to its manifest digest, which is what is signed. The signature
    /// is pushed as an OCI 1.1 referrer of the manifest and added to the `sha256-<hex>.sig`
    /// manifest cosign uses (signatures already there stay). The key's password comes from
    /// $COSIGN_PASSWORD, or is asked for on the terminal.
    Sign {
        /// The private key: cosign.key (cosign's encrypted format) or a PKCS#8 PEM key
        /// (ECDSA P-256, Ed25519, RSA).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Write a sigstore bundle instead, as `cosign sign --new-bundle-format --key` does: a
        /// DSSE envelope over an in-toto statement naming the digest, pushed as an OCI 1.1
        /// referrer only (no transparency log entry: berth has no log).
        #[arg(long)]
        new_bundle_format: bool,
        /// The image, like registry.example.com/team/app:1.0 or HOST/NAME@sha256:...
        image: String,
    },
    /// Verify an image's cosign signatures against public keys or a trust policy file.
    ///
    /// Prints which key verified which manifest digest; exits with status 1 when no
    /// signature verifies.
    Verify {
        /// A public key (cosign.pub, or any PEM SubjectPublicKeyInfo); repeat for several.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "policy",
            conflicts_with = "policy"
        )]
        key: Vec<PathBuf>,
        /// A trust policy file (`[[trust.policy]]` tables whose scopes name registries): the
        /// keys of the policy covering the image.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// `text` or `json`.
        #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
        output: String,
        /// The image, like registry.example.com/team/app:1.0 or HOST/NAME@sha256:...
        image: String,
    },
    /// Signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a key pair as `cosign generate-key-pair` does: PREFIX.key (ECDSA P-256, encrypted
    /// with $COSIGN_PASSWORD or a password asked for) and PREFIX.pub.
    Generate {
        /// The files' name without extension.
        #[arg(long, default_value = "cosign", value_name = "PREFIX")]
        output_key_prefix: PathBuf,
    },
}

/// Runs a signing command; `Ok(false)` when `verify` found nothing that verifies.
pub fn run(command: TrustCommand) -> anyhow::Result<bool> {
    match command {
        TrustCommand::Sign {
            key,
            new_bundle_format,
            image,
        } => sign(&key, new_bundle_format, &image).map(|()| true),
        TrustCommand::Verify {
            key,
            policy,
            output,
            image,
        } => verify(&key, policy.as_deref(), output == "json", &image),
        TrustCommand::Key {
            command: KeyCommand::Generate { output_key_prefix },
        } => generate(&output_key_prefix).map(|()| true),
    }
}

fn reference(image: &str) -> anyhow::Result<Reference> {
    Reference::from_str(image).with_context(|| format!("{image:?} is not an image reference"))
}

fn sign(key_file: &Path, new_bundle_format: bool, image: &str) -> anyhow::Result<()> {
    let pem = std::fs::read_to_string(key_file)
        .with_context(|| format!("cannot read key file {}", key_file.display()))?;
    let password = if berth_trust::sign::is_encrypted(&pem) {
        Some(password(false)?)
    } else {
        None
    };
    let key = SigningKey::from_pem(&pem, password.as_deref().map(str::as_bytes))
        .with_context(|| format!("key file {}", key_file.display()))?;
    let reference = reference(image)?;
    let auth = crate::runtime_cli::auth_for(&reference)?;
    let source = format!("{}/{}", reference.registry(), reference.repository());
    if new_bundle_format {
        let signed = crate::runtime_cli::block_on(async {
            berth_runtime::sign::sign_bundle(&reference, &auth, &key)
                .await
                .with_context(|| format!("cannot sign {image}"))
        })?;
        writeln!(
            std::io::stdout().lock(),
            "Signed {source}@{} with key {} (sigstore bundle, referrer {})",
            signed.digest,
            signed.key,
            signed.referrer
        )?;
        return Ok(());
    }
    let signed = crate::runtime_cli::block_on(async {
        berth_runtime::sign::sign(&reference, &auth, &key)
            .await
            .with_context(|| format!("cannot sign {image}"))
    })?;
    if signed.referrer.is_none() {
        eprintln!(
            "note: the registry names the manifest's digest but does not describe it, so the signature is under the {} tag only (no OCI 1.1 referrer)",
            signed.tag
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Signed {source}@{} with key {}{}",
        signed.digest,
        signed.key,
        if signed.already_signed {
            " (this signature was already there)"
        } else {
            ""
        }
    )?;
    Ok(())
}

fn verify(
    keys: &[PathBuf],
    policy: Option<&Path>,
    json: bool,
    image: &str,
) -> anyhow::Result<bool> {
    let reference = reference(image)?;
    let source = format!("{}/{}", reference.registry(), reference.repository());
    // Which file each key came from, to say which one verified.
    let mut files = Vec::new();
    let check;
    let from_keys;
    let policy = match policy {
        Some(file) => {
            check = TrustCheck::load(Some(file), false)?;
            check
                .policy_for(&source)
                .with_context(|| format!("no policy in {} covers {source}", file.display()))?
        }
        None => {
            for file in keys {
                let pem = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read key file {}", file.display()))?;
                let key = PublicKey::from_pem(&pem)
                    .with_context(|| format!("key file {}", file.display()))?;
                files.push((key.id().to_string(), file.display().to_string()));
            }
            let cwd = std::env::current_dir().context("no current directory")?;
            let config = PolicyConfig {
                scope: source.clone(),
                mode: Mode::Enforce,
                keys: keys.to_vec(),
                exempt_robots: false,
                require_signature_for_tags: false,
                trusted_root: None,
                identity: Vec::new(),
                notation_trust_store: None,
                notation_identities: Vec::new(),
            };
            from_keys = Policies::load(&[config], &cwd)?;
            from_keys
                .for_name(&source)
                .context("the keys' policy covers the image")?
        }
    };
    verify_with(&reference, policy, &source, &files, json, image)
}

fn verify_with(
    reference: &Reference,
    policy: &berth_trust::Policy,
    source: &str,
    files: &[(String, String)],
    json: bool,
    image: &str,
) -> anyhow::Result<bool> {
    let auth = crate::runtime_cli::auth_for(reference)?;
    let (digest, outcome) = crate::runtime_cli::block_on(async {
        let client = berth_runtime::pull::client_for(reference);
        let (_, digest) = berth_runtime::sign::resolve(&client, reference, &auth)
            .await
            .with_context(|| format!("cannot read {image}"))?;
        let outcome =
            berth_runtime::verify::verify_image(&client, reference, &auth, &digest, policy).await;
        Ok((digest, outcome))
    })?;
    let file = |id: &str| files.iter().find(|(k, _)| k == id).map(|(_, f)| f.clone());
    let mut out = std::io::stdout().lock();
    match &outcome {
        Ok(key) if json => writeln!(
            out,
            "{}",
            json!({"image": source, "digest": digest, "verified": true, "key": key,
                   "key_file": file(key), "policy": policy.scope})
        )?,
        Ok(key) => writeln!(
            out,
            "Verified {source}@{digest}: signed with key {key}{}",
            file(key).map(|f| format!(" ({f})")).unwrap_or_default()
        )?,
        Err(why) if json => writeln!(
            out,
            "{}",
            json!({"image": source, "digest": digest, "verified": false, "reason": why,
                   "policy": policy.scope})
        )?,
        Err(why) => {
            eprintln!("berth: {source}@{digest} is not verified: {why}");
        }
    }
    Ok(outcome.is_ok())
}

fn generate(prefix: &Path) -> anyhow::Result<()> {
    let key_path = with_extension(prefix, "key");
    let pub_path = with_extension(prefix, "pub");
    for path in [&key_path, &pub_path] {
        if path.exists() {
            bail!("{} exists; not overwriting it", path.display());
        }
    }
    let password = password(true)?;
    let key = SigningKey::generate_p256()?;
    let sealed = key.to_encrypted_pem(password.as_bytes())?;
    write_new(&key_path, sealed.as_bytes(), 0o600)?;
    write_new(&pub_path, key.public_key_pem()?.as_bytes(), 0o644)?;
    eprintln!(
        "Private key written to {}\nPublic key written to {}",
        key_path.display(),
        pub_path.display()
    );
    Ok(())
}

fn with_extension(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The key password: $COSIGN_PASSWORD (which may be empty, as with cosign), or typed on the
/// terminal without echo (twice when making a key).
fn password(confirm: bool) -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_VAR) {
        return Ok(p);
    }
    let first = prompt("Enter password for private key: ")?;
    if confirm && prompt("Enter password for private key again: ")? != first {
        bail!("the passwords do not match");
    }
    Ok(first)
}

fn prompt(label: &str) -> anyhow::Result<String> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .with_context(|| format!("no terminal to ask for the password: set {PASSWORD_VAR}"))?;
    let raw = berth_runtime::terminal::RawMode::enter(&tty)
        .with_context(|| format!("no terminal to ask for the password: set {PASSWORD_VAR}"))?;
    let mut tty_w = &tty;
    tty_w.write_all(label.as_bytes())?;
    let mut line = Vec::new();
    // One byte at a time: in raw mode each key arrives as it is typed, and nothing past the
    // end of the line may be read away from the terminal.
    let mut byte = [0u8; 1];
    loop {
        if (&tty).read(&mut byte)? == 0 {
            break;
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            3 => {
                drop(raw);
                bail!("interrupted");
            }
            127 | 8 => {
                line.pop();
            }
            b => line.push(b),
        }
        if line.len() > 4096 {
            bail!("the password is too long");
        }
    }
    drop(raw);
    tty_w.write_all(b"\r\n")?;
    String::from_utf8(line).context("the password is not UTF-8")
}
