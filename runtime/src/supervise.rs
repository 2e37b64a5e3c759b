//! The supervisor: the container's parent for its whole life (`berth run` itself in the
//! foreground, a detached `berth` process with `-d`). It copies the container's output into
//! the log (and to our terminal when attached), forwards signals, keeps a terminal's size,
//! reaps the init process and turns its end into an exit status (128 + signal if killed).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::logs::{LogWriter, Stream};
use crate::run::Io;

/// What the supervisor connects besides the log.
#[derive(Debug, Clone, Copy)]
pub struct Attach {
    /// Copy output to our stdout/stderr.
    pub output: bool,
    /// Copy our stdin to the container's terminal.
    pub stdin: bool,
    /// Forward SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the container.
    pub forward_signals: bool,
}

enum Source {
    Output(File, Stream),
    /// Our stdin, copied to the terminal.
    Input(File),
}

const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Reaps children; returns the init process's status once it has ended.
fn reap(init: Pid) -> Option<i32> {
    let mut status = None;
    loop {
        match nix::sys::wait::waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == init => status = Some(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == init => status = Some(128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return status,
            Ok(_) => {}
        }
    }
}

/// Supervises until the container's init process has ended and its output is drained;
/// returns its exit status.
/// `log` is the container's output log (`None` for an `exec`, whose output is not the
/// container's).
pub fn supervise(
    pid: i32,
    io: Io,
    mut log: Option<&mut LogWriter>,
    attach: Attach,
) -> io::Result<i32> {
    let init = Pid::from_raw(pid);
    let mut mask = SigSet::empty();
    for s in FORWARDED
        .iter()
        .chain(&[Signal::SIGCHLD, Signal::SIGWINCH, Signal::SIGPIPE])
    {
        mask.add(*s);
    }
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    // A SIGCHLD that came before the mask was set is gone: look once.
    let mut status = reap(init);

    let (mut sources, master): (Vec<Source>, Option<File>) = match io {
        Io::Pipes { stdout, stderr } => (
            vec![
                Source::Output(File::from(stdout), Stream::Stdout),
                Source::Output(File::from(stderr), Stream::Stderr),
            ],
            None,
        ),
        Io::Terminal { master } => {
            let writer = File::from(master.try_clone()?);
            let mut sources = vec![Source::Output(File::from(master), Stream::Stdout)];
            if attach.stdin {
                let stdin: OwnedFd = io::stdin().as_fd().try_clone_to_owned()?;
                crate::terminal::copy_size(&stdin, &writer);
                sources.push(Source::Input(File::from(stdin)));
            }
            (sources, Some(writer))
        }
    };

    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let outputs_open = sources.iter().any(|s| matches!(s, Source::Output(..)));
        if status.is_some() && !outputs_open {
            break;
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        for s in &sources {
            let fd = match s {
                Source::Output(f, _) | Source::Input(f) => f.as_fd(),
            };
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        // Once the init process has ended, whatever still holds its output gets two seconds.
        let timeout = if status.is_some() {
            PollTimeout::from(2000u16)
        } else {
            PollTimeout::NONE
        };
        let ready = match nix::poll::poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if ready == 0 {
            break;
        }
        let revents: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if revents[0] {
            while let Ok(Some(info)) = signals.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if let Some(code) = reap(init) {
                            status = Some(code);
                        }
                    }
                    Ok(Signal::SIGWINCH) => {
                        if let Some(m) = &master {
                            crate::terminal::copy_size(io::stdin(), m);
                        }
                    }
                    // Once reaped, the init's pid may belong to another process already.
                    Ok(sig)
                        if attach.forward_signals
                            && status.is_none()
                            && FORWARDED.contains(&sig) =>
                    {
                        let _ = nix::sys::signal::kill(init, sig);
                    }
                    _ => {}
                }
            }
        }
        let mut closed = Vec::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if !revents[i + 1] {
                continue;
            }
            match source {
                Source::Output(f, stream) => match f.read(&mut buf) {
                    // EIO: the terminal's last user is gone.
                    Ok(0) | Err(_) => closed.push(i),
                    Ok(n) => {
                        if let Some(log) = log.as_deref_mut() {
                            let _ = log.write(*stream, &buf[..n]);
                        }
                        if attach.output {
                            let _ = match stream {
                                Stream::Stdout => {
                                    let mut out = io::stdout().lock();
                                    out.write_all(&buf[..n]).and_then(|_| out.flush())
                                }
                                Stream::Stderr => io::stderr().lock().write_all(&buf[..n]),
                            };
                        }
                    }
                },
                Source::Input(f) => match f.read(&mut buf) {
                    Ok(0) | Err(_) => closed.push(i),
                    Ok(n) => {
                        if let Some(mut m) = master.as_ref() {
                            let _ = m.write_all(&buf[..n]);
                        }
                    }
                },
            }
        }
        for i in closed.into_iter().rev() {
            sources.remove(i);
        }
    }
    // Whatever ended, the init process must be reaped before we report.
    let code = match status {
        Some(code) => code,
        None => match nix::sys::wait::waitpid(init, None) {
            Ok(WaitStatus::Exited(_, code)) => code,
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            _ => 255,
        },
    };
    let _ = mask.thread_unblock();
    Ok(code)
}
