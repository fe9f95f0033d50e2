//! The worm-level-control paper's optimiser as a second trainer: adaptive random search over
//! every parameter the circuit acts with. A try perturbs a few scalars of the incumbent, scores
//! it on `search.episodes` deterministic episodes (fresh seeds every time, on all cores) as the
//! mean return of the worst `search.worst`, and is kept when that score is at least the
//! incumbent's. After `search.patience` rejections in a row the incumbent is re-scored on
//! fresh episodes (its score may have been lucky) and twice as many scalars are perturbed at
//! once, back to `search.perturb` after the next accepted try. The result is an ordinary run
//! directory (`config.toml`, `latest`/`best` checkpoints, `metrics.csv` like PPO's, and the
//! per-try log [`LOG`]): `eval`, `record`, `ablate` and `report` read it.
//!
//! Every random stream derives from `run.seed`; the same seed and thread count give the same
//! bits.

pub mod episodes;
mod run;
pub mod space;

pub use run::{search, Progress};

/// The per-try log of a search run, beside its checkpoints; its last row, with `stop` filled,
/// is the state the run ended in.
pub const LOG: &str = "search.csv";

/// The mean of the `worst` lowest returns (all of them when there are fewer).
pub fn worst_mean(returns: &[f64], worst: usize) -> f64 {
    let mut sorted = returns.to_vec();
    sorted.sort_by(f64::total_cmp);
    let k = worst.clamp(1, sorted.len().max(1)).min(sorted.len());
    if k == 0 {
        return f64::NAN;
    }
    sorted[..k].iter().sum::<f64>() / k as f64
}

/// Why a search run stopped, as its log's last row says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `search.iterations` tries done.
    Iterations,
    /// `search.minutes` spent.
    Minutes,
    /// An evaluation reached `search.stop_at_success`.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_the_mean_of_the_worst_returns() {
        assert_eq!(worst_mean(&[5.0, 1.0, 3.0, 10.0], 2), 2.0);
        assert_eq!(worst_mean(&[5.0, 1.0], 8), 3.0);
        assert!(worst_mean(&[], 2).is_nan());
    }
}
