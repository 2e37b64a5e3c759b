//! `berth-bench`: measures registries on loopback, by default berth and CNCF Distribution
//! (Debian's `docker-registry`) started side by side with equivalent settings and measured
//! alternately, and prints a Markdown report with the ratio berth / Distribution.

mod blobs;
mod docker;
mod load;
mod machine;
mod scan;
mod servers;
mod trust;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use servers::Registry;

/// Benchmarks berth against CNCF Distribution on this machine.
#[derive(Debug, Parser)]
#[command(name = "berth-bench")]
struct Args {
    /// berth binary to start (default: `berth` next to this program).
    #[arg(long)]
    berth_binary: Option<PathBuf>,
    /// Measure an already running berth at this URL instead of starting one.
    #[arg(long)]
    berth_url: Option<String>,
    /// Distribution binary to start.
    #[arg(long, default_value = "/usr/bin/docker-registry")]
    distribution_binary: PathBuf,
    /// Measure an already running Distribution at this URL instead of starting one.
    #[arg(long)]
    distribution_url: Option<String>,
    /// Also measure berth on PostgreSQL (this database URL, which should be empty) ...
    #[arg(long, requires = "s3_endpoint")]
    postgres_url: Option<String>,
    /// ... and an S3-compatible store at this endpoint (plain HTTP, test credentials) ...
    #[arg(long, requires = "postgres_url")]
    s3_endpoint: Option<String>,
    /// ... in this bucket (which must exist).
    #[arg(long, default_value = "berth-bench")]
    s3_bucket: String,
    /// Measure berth only.
    #[arg(long)]
    no_distribution: bool,
    /// Rounds of every measurement; each figure is the median of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// Size of the blob pushed and pulled, MiB.
    #[arg(long, default_value_t = 1024)]
    blob_mib: usize,
    /// Chunk size of the chunked push, MiB.
    #[arg(long, default_value_t = 16)]
    chunk_mib: usize,
    /// Seconds of each manifest GET/HEAD load run.
    #[arg(long, default_value_t = 10)]
    load_secs: u64,
    /// Concurrent connections of the manifest load.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Tags put on one manifest (then listed).
    #[arg(long, default_value_t = 10_000)]
    tags: usize,
    /// Repositories created (then listed in the catalog).
    #[arg(long, default_value_t = 10_000)]
    repos: usize,
    /// Docker daemon for the docker push/pull measurement (skipped when absent).
    #[arg(long, env = "BERTH_BENCH_DOCKER_HOST")]
    docker_host: Option<String>,
    /// Docker client binary.
    #[arg(long, default_value = "/usr/bin/docker")]
    docker_binary: PathBuf,
    /// Static busybox for the docker image's first layer.
    #[arg(long, default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// Directory for registry data and scratch files.
    #[arg(long, default_value = "/tmp")]
    scratch: PathBuf,
    /// Size of the image inventoried by `--only scan`, MiB.
    #[arg(long, default_value_t = 1024)]
    scan_image_mib: usize,
    /// Its layers.
    #[arg(long, default_value_t = 20)]
    scan_layers: usize,
    /// Images re-matched after an advisory import by `--only scan`.
    #[arg(long, default_value_t = 1000)]
    scan_images: usize,
    /// Measurements to run (comma-separated): blobs, manifests, tags, docker, and trust (the
    /// manifest loads again on a berth enforcing a signature policy, `berth-enforcing`); and,
    /// only when named, scan (vulnerability scanning on berths of their own: inventory of a
    /// large image against its pull, push with scanning on and off, re-matching many images
    /// after an advisory import).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "blobs,manifests,tags,docker,trust"
    )]
    only: Vec<String>,
    /// Also write the report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// One measured figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Metric {
    PushMonolithic,
    PushChunked,
    Pull,
    ManifestGetRps,
    ManifestGetP50,
    ManifestGetP99,
    ManifestGetErrors,
    ManifestHeadRps,
    ManifestHeadP50,
    ManifestHeadP99,
    ManifestHeadErrors,
    TagPuts,
    ListTags,
    ListCatalog,
    UiRepositoryPage,
    UiHomePage,
    DockerPush,
    DockerPull,
    PeakRss,
}

impl Metric {
    fn label(self, a: &Args) -> String {
        match self {
            Self::PushMonolithic => format!(
                "monolithic push of a {} MiB blob (POST + PUT), MB/s",
                a.blob_mib
            ),
            Self::PushChunked => format!("chunked push, {} MiB PATCH chunks, MB/s", a.chunk_mib),
            Self::Pull => "blob pull, MB/s".into(),
            Self::ManifestGetRps => format!(
                "manifest GET by tag, {} connections, requests/s",
                a.connections
            ),
            Self::ManifestGetP50 => "manifest GET p50 latency, ms".into(),
            Self::ManifestGetP99 => "manifest GET p99 latency, ms".into(),
            Self::ManifestGetErrors => "manifest GET errors".into(),
            Self::ManifestHeadRps => format!(
                "manifest HEAD by tag, {} connections, requests/s",
                a.connections
            ),
            Self::ManifestHeadP50 => "manifest HEAD p50 latency, ms".into(),
            Self::ManifestHeadP99 => "manifest HEAD p99 latency, ms".into(),
            Self::ManifestHeadErrors => "manifest HEAD errors".into(),
            Self::TagPuts => format!(
                "tag PUTs on one manifest ({} tags, 8 clients), tags/s",
                a.tags
            ),
            Self::ListTags => format!("list {} tags, ms", a.tags),
            Self::ListCatalog => format!(
                "list a catalog of {} repositories (pages of 1000), ms",
                a.repos
            ),
            Self::UiRepositoryPage => format!(
                "web UI: first page of that repository of {} tags, median of 20, ms",
                a.tags
            ),
            Self::UiHomePage => format!(
                "web UI: home page of a hub of {} repositories, median of 20, ms",
                a.repos
            ),
            Self::DockerPush => "docker push, fresh 6-layer image (5 x 64 MiB), s".into(),
            Self::DockerPull => "docker pull of that image, s".into(),
            Self::PeakRss => "server peak resident memory, MiB".into(),
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Self::PushMonolithic
                | Self::PushChunked
                | Self::Pull
                | Self::ManifestGetRps
                | Self::ManifestHeadRps
                | Self::TagPuts
        )
    }
}

/// Figures per registry and metric, one per round.
type Results = BTreeMap<String, BTreeMap<Metric, Vec<f64>>>;

fn record(results: &mut Results, reg: &Registry, metric: Metric, value: f64) {
    results
        .entry(reg.name.clone())
        .or_default()
        .entry(metric)
        .or_default()
        .push(value);
}

fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // reqwest is built without a bundled TLS provider in this workspace; install ring's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    std::fs::create_dir_all(&args.scratch)?;
    let mut registries = Vec::new();
    let bin = args
        .berth_binary
        .clone()
        .unwrap_or_else(servers::default_berth_binary);
    registries.push(match &args.berth_url {
        Some(url) => Registry::external("berth", url),
        None => Registry::start_berth(&bin, &args.scratch, "berth", &[])
            .context("starting berth (build it with cargo build --release)")?,
    });
    if let (Some(db), Some(s3)) = (&args.postgres_url, &args.s3_endpoint) {
        let env: Vec<(String, String)> = [
            ("BERTH_DATABASE_URL", db.as_str()),
            ("BERTH_STORAGE_BACKEND", "s3"),
            ("BERTH_STORAGE_BUCKET", args.s3_bucket.as_str()),
            ("BERTH_STORAGE_ENDPOINT", s3.as_str()),
            ("BERTH_STORAGE_ALLOW_HTTP", "true"),
            ("BERTH_STORAGE_REGION", "us-east-1"),
            ("BERTH_STORAGE_ACCESS_KEY_ID", "bench"),
            ("BERTH_STORAGE_SECRET_ACCESS_KEY", "bench"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        registries.push(
            Registry::start_berth(&bin, &args.scratch, "berth-pg-s3", &env)
                .context("starting berth on PostgreSQL + S3")?,
        );
    }
    let wants = |what: &str| args.only.iter().any(|o| o == what);
    let trust = match &args.berth_url {
        None if wants("trust") => {
            let setup = trust::Setup::new(&bin, &args.scratch)?;
            // Right after the plain berth, so that in every round the two are measured one
            // after the other, on the same machine state (the rounds alternate the order).
            registries.insert(
                1,
                Registry::start_berth(&bin, &args.scratch, trust::NAME, &setup.env())
                    .context("starting berth with a trust policy")?,
            );
            Some(setup)
        }
        _ => None,
    };
    if !args.no_distribution {
        registries.push(match &args.distribution_url {
            Some(url) => Registry::external("distribution", url),
            None => Registry::start_distribution(&args.distribution_binary, &args.scratch)
                .context("starting Distribution (apt install docker-registry)")?,
        });
    }
    eprintln!("measuring the machine's limits");
    let limits = [
        ("SHA-256 on one core, MB/s", machine::sha256_single_core()),
        (
            "loopback TCP, one connection, MB/s",
            machine::loopback().await?,
        ),
        (
            "synced sequential disk write, MB/s",
            machine::synced_disk_write(&args.scratch)?,
        ),
    ];
    let docker = match &args.docker_host {
        Some(host) => Some(docker::Docker::new(
            args.docker_binary.clone(),
            host.clone(),
        )?),
        None => {
            eprintln!("no --docker-host: skipping docker push/pull");
            None
        }
    };

    let http = reqwest::Client::new();
    let mut results = Results::new();
    let mut manifests = BTreeMap::new();
    for reg in &registries {
        manifests.insert(
            reg.name.clone(),
            load::push_small_image(&http, reg, "bench/small", 7).await?,
        );
        if let Some(setup) = trust.as_ref().filter(|_| reg.name == trust::NAME) {
            setup.sign(&bin, &http, reg, "bench/small").await?;
        }
    }
    for round in 0..args.rounds {
        // Alternate the order so neither registry always runs on a warmer machine.
        let mut order: Vec<&Registry> = registries.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for reg in order {
            eprintln!("round {} of {}: {}", round + 1, args.rounds, reg.name);
            let seed = round * 1000
                + match reg.name.as_str() {
                    "berth" => 1,
                    "distribution" => 2,
                    _ => 3,
                };
            // The enforcing berth is there for the manifest loads alone.
            let enforcing = reg.name == trust::NAME;
            let wants = |what: &str| {
                if enforcing {
                    what == "manifests"
                } else {
                    args.only.iter().any(|o| o == what && o != "trust")
                }
            };
            if wants("blobs") {
                let blob = blobs::random_blob(args.blob_mib << 20, seed);
                let v = blobs::push_monolithic(&http, reg, "bench/blob", &blob).await?;
                record(&mut results, reg, Metric::PushMonolithic, v);
                let v = blobs::pull(reg, "bench/blob", &blob).await?;
                record(&mut results, reg, Metric::Pull, v);
                drop(blob);
                let blob = blobs::random_blob(args.blob_mib << 20, seed + 500);
                let v = blobs::push_chunked(&http, reg, "bench/blob", &blob, args.chunk_mib << 20)
                    .await?;
                record(&mut results, reg, Metric::PushChunked, v);
                drop(blob);
            }

            let secs = Duration::from_secs(args.load_secs);
            if wants("manifests") {
                for (head, rps, p50, p99, errors) in [
                    (
                        false,
                        Metric::ManifestGetRps,
                        Metric::ManifestGetP50,
                        Metric::ManifestGetP99,
                        Metric::ManifestGetErrors,
                    ),
                    (
                        true,
                        Metric::ManifestHeadRps,
                        Metric::ManifestHeadP50,
                        Metric::ManifestHeadP99,
                        Metric::ManifestHeadErrors,
                    ),
                ] {
                    let r = load::manifest_load(reg, "bench/small", head, args.connections, secs)
                        .await?;
                    record(&mut results, reg, rps, r.rps);
                    record(&mut results, reg, p50, r.p50_ms);
                    record(&mut results, reg, p99, r.p99_ms);
                    record(&mut results, reg, errors, r.errors as f64);
                }
            }
            if wants("tags") {
                if round == 0 {
                    let manifest = &manifests[&reg.name];
                    let v = load::tag_puts(reg, "bench/small", manifest, args.tags, 8).await?;
                    record(&mut results, reg, Metric::TagPuts, v);
                    load::make_repositories(reg, manifest, "bench/small", args.repos, 8).await?;
                }
                let (ms, n) =
                    load::list_all(&http, reg, "/v2/bench/small/tags/list", "tags").await?;
                anyhow::ensure!(n > args.tags, "{} listed {n} tags", reg.name);
                record(&mut results, reg, Metric::ListTags, ms);
                let (ms, n) =
                    load::list_all(&http, reg, "/v2/_catalog?n=1000", "repositories").await?;
                anyhow::ensure!(n >= args.repos, "{} listed {n} repositories", reg.name);
                record(&mut results, reg, Metric::ListCatalog, ms);
                // Only berth has a web UI.
                if reg.name.starts_with("berth") {
                    let ms = load::page_ms(&http, reg, "/ui/r/bench/small", 20).await?;
                    record(&mut results, reg, Metric::UiRepositoryPage, ms);
                    let ms = load::page_ms(&http, reg, "/ui/", 20).await?;
                    record(&mut results, reg, Metric::UiHomePage, ms);
                }
            }
            if let Some(d) = docker.as_ref().filter(|_| wants("docker")) {
                let (push, pull) = d.push_pull(reg, &args.busybox, &args.scratch, seed)?;
                record(&mut results, reg, Metric::DockerPush, push);
                record(&mut results, reg, Metric::DockerPull, pull);
            }
        }
    }
    for reg in &registries {
        if let Some(kib) = reg.peak_rss_kib() {
            record(&mut results, reg, Metric::PeakRss, kib as f64 / 1024.0);
        }
    }
    let mut report = render(&args, &registries, &results, &limits);
    if wants("scan") {
        let options = scan::Options {
            image_mib: args.scan_image_mib,
            layers: args.scan_layers,
            images: args.scan_images,
            rounds: args.rounds,
            docker: docker.as_ref(),
        };
        report.push_str(&scan::run(&bin, &args.scratch, &options).await?);
    }
    // The report is this program's output, so it goes to stdout (progress goes to stderr).
    std::io::Write::write_all(&mut std::io::stdout(), report.as_bytes())?;
    if let Some(path) = &args.markdown {
        std::fs::write(path, &report)?;
    }
    Ok(())
}

fn render(
    args: &Args,
    registries: &[Registry],
    results: &Results,
    limits: &[(&str, f64)],
) -> String {
    let mut out = String::new();
    let names: Vec<&str> = registries.iter().map(|r| r.name.as_str()).collect();
    out.push_str(&format!(
        "Medians of {} rounds, registries measured alternately on this machine ({} cores).\n\n",
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    ));
    out.push_str(&format!("| measurement | {} |", names.join(" | ")));
    let berth_at = names.iter().position(|n| *n == "berth");
    let dist_at = names.iter().position(|n| *n == "distribution");
    let ratio = berth_at.is_some() && dist_at.is_some();
    if ratio {
        out.push_str(" berth / distribution |");
    }
    out.push('\n');
    out.push_str(&format!(
        "|---|{}",
        "---:|".repeat(names.len() + usize::from(ratio))
    ));
    out.push('\n');
    let metrics: std::collections::BTreeSet<Metric> =
        results.values().flat_map(|m| m.keys().copied()).collect();
    for metric in metrics {
        let values: Vec<Option<f64>> = names
            .iter()
            .map(|n| {
                results
                    .get(*n)
                    .and_then(|m| m.get(&metric))
                    .and_then(|v| median(v))
            })
            .collect();
        let cells: Vec<String> = values.iter().map(|v| v.map_or("-".into(), fmt)).collect();
        out.push_str(&format!(
            "| {} | {} |",
            metric.label(args),
            cells.join(" | ")
        ));
        if let (Some(b), Some(d)) = (berth_at, dist_at) {
            let r = match (values[b], values[d]) {
                (Some(a), Some(b)) if b != 0.0 => {
                    let better = if metric.higher_is_better() {
                        a >= b
                    } else {
                        a <= b
                    };
                    format!("{:.2}{}", a / b, if better { "" } else { " (worse)" })
                }
                _ => "-".into(),
            };
            out.push_str(&format!(" {r} |"));
        }
        out.push('\n');
    }
    let rate = |name: &str, metric: Metric| {
        results
            .get(name)
            .and_then(|m| m.get(&metric))
            .and_then(|v| median(v))
    };
    for (metric, what) in [
        (Metric::ManifestGetRps, "GET"),
        (Metric::ManifestHeadRps, "HEAD"),
    ] {
        if let (Some(plain), Some(enforcing)) = (rate("berth", metric), rate(trust::NAME, metric)) {
            out.push_str(&format!(
                "\nManifest {what} under an enforcing signature policy (a signed image): {:.1}% of \
                 berth's rate without one.\n",
                100.0 * enforcing / plain
            ));
        }
    }
    out.push_str("\nMachine limits measured in the same run:\n\n| limit | value |\n|---|---:|\n");
    for (name, v) in limits {
        out.push_str(&format!("| {name} | {} |\n", fmt(*v)));
    }
    out
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
