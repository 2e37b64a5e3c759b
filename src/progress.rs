//! Pull progress for people: one bar per layer on a terminal, as `docker pull` draws them;
//! one line per finished step anywhere else (logs, pipes, CI).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_runtime::pull::{LayerProgress, Lines, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display for this process's standard error.
pub fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::new(ProgressDrawTarget::stderr()))
    } else {
        Box::new(Lines)
    }
}

/// A bar per layer, redrawn in place (indicatif limits drawing to 20 times a second, so a
/// report per received chunk costs little).
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    downloading: ProgressStyle,
    status: ProgressStyle,
}

impl Bars {
    fn new(target: ProgressDrawTarget) -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            downloading: ProgressStyle::with_template(
                "{prefix}: {msg:11} [{bar:30}] {bytes}/{total_bytes}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
            status: ProgressStyle::with_template("{prefix}: {msg}").expect("a valid template"),
        }
    }
}

impl Drop for Bars {
    /// The bars stay on screen; what is printed next starts on a line of its own.
    fn drop(&mut self) {
        let drawn = !self
            .bars
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if drawn {
            eprintln!();
        }
    }
}

impl Progress for Bars {
    fn layer(&self, layer: &str, event: LayerProgress) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(layer.to_owned()).or_insert_with(|| {
            self.multi.add(
                ProgressBar::new(0)
                    .with_style(self.status.clone())
                    .with_prefix(layer.to_owned()),
            )
        });
        match event {
            LayerProgress::Present => bar.finish_with_message("Already exists"),
            LayerProgress::Downloading { done, total } => {
                if bar.length() != Some(total) {
                    // Length before style: a bar of length 0 would be drawn full.
                    bar.set_length(total);
                    bar.set_message("Downloading");
                    bar.set_style(self.downloading.clone());
                }
                bar.set_position(done);
            }
            LayerProgress::Unpacking => {
                bar.set_style(self.status.clone());
                bar.set_message("Extracting");
            }
            LayerProgress::Done => bar.finish_with_message("Pull complete"),
        }
    }
}
