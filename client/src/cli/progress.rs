//! Progress of a sync: a spinner line on a terminal, plain lines (one per
//! finished phase) when stderr is a file or a pipe, so captured output
//! holds no carriage returns or escape sequences. No colour either way.

use std::io::IsTerminal;

use casebook::sync::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::term::tell;

/// Reports one sync round's progress.
pub struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("a fixed template parses"),
            );
            bar
        });
        Reporter { bar }
    }

    /// Shows one step.
    pub fn step(&mut self, p: Progress) {
        let (line, finished) = match p {
            Progress::Pushed { done, total } => {
                (format!("sent {done}/{total} changes"), done == total)
            }
            Progress::Fetched { docs, of, bytes } => (
                format!(
                    "fetched {docs}/{of} documents ({:.1} MB)",
                    bytes as f64 / 1e6
                ),
                docs == of,
            ),
            Progress::Applied { docs, of } => (format!("merged {docs}/{of} documents"), docs == of),
            Progress::Visible { .. } => return,
        };
        match &self.bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None if finished => tell!("{line}"),
            None => {}
        }
    }

    /// Clears the spinner line, if there is one.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
