//! How a search run's log is named and how it says the run ended.

/// The per-try log of a search run, beside its checkpoints; its last row, with `stop` filled,
/// is the state the run ended in.
pub const LOG: &str = "search.csv";

/// The log of a search run's confirmations (`search.confirm_episodes`), a line each: what
/// picked `best` and what stopped the run, beside its checkpoints.
pub const CONFIRM_LOG: &str = "confirmations.csv";

/// Why a search run stopped, as its log's last row says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `search.iterations` tries done.
    Iterations,
    /// `search.minutes` spent.
    Minutes,
    /// An evaluation and its confirmation on fresh episodes reached `search.stop_at_success`.
    Solved,
    /// Ctrl-C ([`crate::interrupt::STOP`]): `latest` saved, the budget not spent.
    Interrupted,
}

impl StopReason {
    /// The word in the log's `stop` column.
    pub fn word(self) -> &'static str {
        match self {
            StopReason::Iterations => "iterations",
            StopReason::Minutes => "minutes",
            StopReason::Solved => "solved",
            StopReason::Interrupted => "interrupted",
        }
    }

    /// Whether the run spent its budget or solved the task (not interrupted).
    pub fn finished(self) -> bool {
        self != StopReason::Interrupted
    }
}

/// How a search run in `dir` ended, from its log's last row; `None` when the directory holds
/// no search log or the run has not ended (still running, or killed).
pub fn stop_reason(dir: &std::path::Path) -> Option<StopReason> {
    let text = std::fs::read_to_string(dir.join(LOG)).ok()?;
    let mut lines = text.lines();
    let column = lines.next()?.split(',').position(|h| h == "stop")?;
    let word = lines.last()?.split(',').nth(column)?;
    [
        StopReason::Iterations,
        StopReason::Minutes,
        StopReason::Solved,
        StopReason::Interrupted,
    ]
    .into_iter()
    .find(|r| r.word() == word)
}
