//! What the sweep hands an executor (one [`Job`] per trial to run now) and what executors
//! report back ([`Event`]s), shared by the local and the Ray executor.

use std::path::{Path, PathBuf};

/// One trial to run now: its id, `wormnet` arguments and log file.
pub struct Job {
    /// The trial id.
    pub id: String,
    /// Arguments for the `wormnet` binary.
    pub args: Vec<String>,
    /// Where its output goes.
    pub log: PathBuf,
    /// Its run directory.
    pub run_dir: PathBuf,
}

/// How a trial's process ended.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEnd {
    /// Exit code 0: trained to its budget.
    Finished,
    /// Stopped by the sweep's Ctrl-C / SIGTERM after saving.
    Interrupted,
    /// Anything else, with the error it printed.
    Failed(String),
}

/// What an executor reports as trials run.
pub enum Event {
    /// The trial's process started.
    Started(String),
    /// The trial's process ended.
    Ended(String, JobEnd),
}

/// The error a failed trial printed (its last `Error:` line), else its exit code.
pub fn log_error(log: &Path, code: Option<i32>) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .rev()
        .find(|l| l.starts_with("Error:"))
        .map(|l| l.trim_start_matches("Error:").trim().to_string())
        .unwrap_or_else(|| match code {
            Some(c) => format!("exit code {c}; see {}", log.display()),
            None => format!("killed by a signal; see {}", log.display()),
        })
}
