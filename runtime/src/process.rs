//! What the container runs, from the image config and the `run` options, with Docker's rules:
//! `--entrypoint` replaces the image's entrypoint and drops its `Cmd`; arguments after the
//! image replace `Cmd`; environment is the daemon's defaults, then the image's, then `-e` and
//! `--env-file` (later names win); `-w` and `-u` replace `WorkingDir` and `User`.

use std::collections::HashMap;

use oci_spec::image::Config;

/// The search path set when neither the image nor the user sets `PATH` (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process part of `run`'s options.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// Arguments after the image.
    pub command: Vec<String>,
    /// `-e` values and `--env-file` lines, in order: `K=V`, or `K` to copy the caller's `K`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`.
    pub user: Option<String>,
    /// `-t`: sets `TERM`.
    pub tty: bool,
}

/// The process to start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessPlan {
    /// argv.
    pub args: Vec<String>,
    /// The image's entrypoint as used (kept for `commit`).
    pub entrypoint: Vec<String>,
    /// The cmd as used (kept for `commit`).
    pub cmd: Vec<String>,
    /// `K=V` strings, each name once.
    pub env: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// The user spec to resolve against the image (`""`: root).
    pub user: String,
    /// The signal `stop` sends first (the image's `StopSignal`, else SIGTERM).
    pub stop_signal: String,
}

/// Why the options cannot make a process.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessError {
    /// Neither the image nor the command line names a program.
    #[error("no command specified: the image has no Entrypoint or Cmd, give one after the image")]
    NoCommand,
    /// `-w` must be absolute.
    #[error("the working directory {0:?} is not an absolute path")]
    RelativeWorkdir(String),
    /// An environment entry with an empty name or a NUL.
    #[error("invalid environment entry {0:?}")]
    BadEnv(String),
}

/// Reads an `--env-file`: `K=V` or `K` lines; blank lines and `#` comments are skipped.
pub fn env_file_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Merges `K=V` lists (later names replace earlier ones in place).
fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    for entry in lists.iter().flat_map(|l| l.iter()) {
        let name = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if !values.contains_key(name) {
            order.push(name.to_owned());
        }
        values.insert(name.to_owned(), entry.clone());
    }
    order
        .into_iter()
        .filter_map(|n| values.remove(&n))
        .collect()
}

/// Plans the process. `host_env` answers `-e NAME` (no `=`), like Docker's client does; a
/// name the caller does not have is left out.
pub fn plan(
    image: Option<&Config>,
    options: &ProcessOptions,
    hostname: &str,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ProcessPlan, ProcessError> {
    let image_list = |f: fn(&Config) -> &Option<Vec<String>>| {
        image.and_then(|c| f(c).clone()).unwrap_or_default()
    };
    let (entrypoint, cmd) = match &options.entrypoint {
        // An empty --entrypoint "" clears the image's, as in Docker.
        Some(e) if e.is_empty() => (Vec::new(), options.command.clone()),
        Some(e) => (vec![e.clone()], options.command.clone()),
        None if !options.command.is_empty() => {
            (image_list(Config::entrypoint), options.command.clone())
        }
        None => (image_list(Config::entrypoint), image_list(Config::cmd)),
    };
    let args: Vec<String> = entrypoint.iter().chain(&cmd).cloned().collect();
    if args.is_empty() {
        return Err(ProcessError::NoCommand);
    }

    let mut defaults = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if options.tty {
        defaults.push("TERM=xterm".to_owned());
    }
    let image_env = image_list(Config::env);
    let mut user_env = Vec::new();
    for entry in &options.env {
        if entry.is_empty() || entry.starts_with('=') || entry.contains('\0') {
            return Err(ProcessError::BadEnv(entry.clone()));
        }
        if entry.contains('=') {
            user_env.push(entry.clone());
        } else if let Some(value) = host_env(entry) {
            user_env.push(format!("{entry}={value}"));
        }
    }
    let env = merge_env(&[&defaults, &image_env, &user_env]);

    let cwd = match &options.workdir {
        Some(w) => w.clone(),
        None => image
            .and_then(|c| c.working_dir().clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".to_owned()),
    };
    if !cwd.starts_with('/') {
        return Err(ProcessError::RelativeWorkdir(cwd));
    }
    let user = match &options.user {
        Some(u) => u.clone(),
        None => image.and_then(|c| c.user().clone()).unwrap_or_default(),
    };
    let stop_signal = image
        .and_then(|c| c.stop_signal().clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".to_owned());
    Ok(ProcessPlan {
        args,
        entrypoint,
        cmd,
        env,
        cwd,
        user,
        stop_signal,
    })
}

/// Parses a signal name or number: `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> Option<nix::sys::signal::Signal> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok();
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        serde_json::from_str(json).expect("config")
    }

    fn no_host(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn entrypoint_and_cmd_combine_like_docker() {
        let image = config(
            r#"{"Entrypoint":["/bin/app"],"Cmd":["--serve"],"Env":["PATH=/app/bin","A=image"],
                "WorkingDir":"/srv","User":"app","StopSignal":"SIGQUIT"}"#,
        );
        let opts = ProcessOptions::default();
        let p = plan(Some(&image), &opts, "h", &no_host).expect("plan");
        assert_eq!(p.args, ["/bin/app", "--serve"]);
        assert_eq!(p.cwd, "/srv");
        assert_eq!(p.user, "app");
        assert_eq!(p.stop_signal, "SIGQUIT");
        assert_eq!(p.env, ["PATH=/app/bin", "HOSTNAME=h", "A=image"]);

        let args = ProcessOptions {
            command: vec!["--debug".into()],
            ..opts.clone()
        };
        assert_eq!(
            plan(Some(&image), &args, "h", &no_host).expect("args").args,
            ["/bin/app", "--debug"]
        );
        let entry = ProcessOptions {
            entrypoint: Some("/bin/sh".into()),
            ..opts.clone()
        };
        assert_eq!(
            plan(Some(&image), &entry, "h", &no_host)
                .expect("entry")
                .args,
            ["/bin/sh"]
        );
        let cleared = ProcessOptions {
            entrypoint: Some(String::new()),
            command: vec!["true".into()],
            ..opts
        };
        assert_eq!(
            plan(Some(&image), &cleared, "h", &no_host)
                .expect("cleared")
                .args,
            ["true"]
        );
    }

    #[test]
    fn environment_merges_in_order_and_refuses_bad_entries() {
        let image = config(r#"{"Cmd":["sh"],"Env":["A=1","B=2"]}"#);
        let opts = ProcessOptions {
            env: vec!["B=3".into(), "FROM_HOST".into(), "MISSING".into()],
            tty: true,
            ..Default::default()
        };
        let host = |k: &str| (k == "FROM_HOST").then(|| "x".to_owned());
        let p = plan(Some(&image), &opts, "box", &host).expect("plan");
        assert_eq!(
            p.env,
            [
                format!("PATH={DEFAULT_PATH}").as_str(),
                "HOSTNAME=box",
                "TERM=xterm",
                "A=1",
                "B=3",
                "FROM_HOST=x"
            ]
        );
        assert_eq!(p.cwd, "/");
        assert_eq!(p.stop_signal, "SIGTERM");
        for bad in ["=x", "", "A\0=1"] {
            let opts = ProcessOptions {
                env: vec![bad.into()],
                ..Default::default()
            };
            assert!(plan(Some(&image), &opts, "h", &no_host).is_err(), "{bad:?}");
        }
        assert_eq!(
            plan(None, &ProcessOptions::default(), "h", &no_host),
            Err(ProcessError::NoCommand)
        );
        let rel = ProcessOptions {
            workdir: Some("srv".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(Some(&image), &rel, "h", &no_host),
            Err(ProcessError::RelativeWorkdir("srv".into()))
        );
        assert_eq!(
            env_file_lines("# c\n\nA=1\n  B\n"),
            vec!["A=1".to_owned(), "B".to_owned()]
        );
    }

    #[test]
    fn signals_parse_by_name_or_number() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("SIGQUIT"), Some(Signal::SIGQUIT));
        assert_eq!(parse_signal("term"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }
}
