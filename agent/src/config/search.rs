//! `[search]`: the worm-level-control paper's optimiser, `wormnet search` — adaptive random
//! search over the circuit's parameters, judged by the worst episodes of each try.

use serde::{Deserialize, Serialize};

/// `[search]`: how `wormnet search` perturbs the circuit, scores a try and when it stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Deterministic episodes (N) every try is scored on, fresh episode seeds each time.
    pub episodes: usize,
    /// The score is the mean return of the worst `worst` (k) of those episodes: a change must
    /// help the hard starts, not only the average.
    pub worst: usize,
    /// Scalar parameters perturbed at once, at first and after every accepted change.
    pub perturb: usize,
    /// Noise of a perturbed scalar, relative: σ = step × max(|value|, its tensor's initial mean
    /// magnitude).
    pub step: f64,
    /// Rejected tries in a row before the incumbent is re-scored on fresh episodes (its score
    /// may have been lucky) and twice as many scalars are perturbed at once.
    pub patience: usize,
    /// The widest a try gets: widening past it starts again from `perturb`, so a search on a
    /// plateau cycles through small and wide moves instead of perturbing everything forever.
    pub max_perturb: usize,
    /// Tries at most.
    pub iterations: usize,
    /// Wall-clock budget in minutes (`--minutes`); absent, only `iterations` bounds the run.
    pub minutes: Option<f64>,
    /// Evaluate the incumbent (`run.eval_episodes`) and save `latest` every this many tries
    /// (0: only at the end). Not `run.eval_every`: PPO's cadence in updates would spend a
    /// search's time evaluating.
    pub eval_every: usize,
    /// Stop once a periodic evaluation succeeds at least this often (and, with
    /// `confirm_episodes`, so do that many fresh episodes).
    pub stop_at_success: Option<f64>,
    /// Fresh episodes that confirm a periodic evaluation before it decides anything: every
    /// evaluation sees the same `run.eval_episodes` starts, so after many of them one passes by
    /// luck. An evaluation at least as good as the best so far, or one that would stop the run,
    /// is run again on this many new starts, and `best` and the stop go by those. 0: by the
    /// periodic evaluation alone.
    pub confirm_episodes: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            episodes: 16,
            worst: 8,
            perturb: 4,
            step: 1.0,
            patience: 50,
            max_perturb: 64,
            iterations: 50_000,
            minutes: None,
            eval_every: 200,
            stop_at_success: None,
            confirm_episodes: 100,
        }
    }
}

/// The most tries, episodes or patience a search may ask for (a typo, not a plan, past it).
const MOST: usize = 1_000_000_000;

impl SearchConfig {
    /// The first field that cannot work, as `(field, why)`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let counts = [
            ("episodes", self.episodes, 100_000),
            ("worst", self.worst, self.episodes.min(100_000)),
            ("perturb", self.perturb, MOST),
            ("max_perturb", self.max_perturb, MOST),
            ("patience", self.patience, MOST),
            ("iterations", self.iterations, MOST),
        ];
        if self.confirm_episodes > 100_000 {
            return Err((
                "confirm_episodes",
                format!("must be at most 100000, got {}", self.confirm_episodes),
            ));
        }
        if self.eval_every > MOST {
            return Err((
                "eval_every",
                format!("must be at most {MOST}, got {}", self.eval_every),
            ));
        }
        for (field, value, most) in counts {
            if !(1..=most).contains(&value) {
                let bound = if field == "worst" {
                    format!("between 1 and search.episodes ({most})")
                } else {
                    format!("between 1 and {most}")
                };
                return Err((field, format!("must be {bound}, got {value}")));
            }
        }
        if self.max_perturb < self.perturb {
            return Err((
                "max_perturb",
                format!(
                    "must be at least search.perturb ({}), got {}",
                    self.perturb, self.max_perturb
                ),
            ));
        }
        if !(self.step > 0.0 && self.step <= 1e3) {
            return Err(("step", format!("must be in (0, 1000], got {}", self.step)));
        }
        if let Some(m) = self.minutes {
            if !(m > 0.0 && m <= 1e9) {
                return Err(("minutes", format!("must be in (0, 1e9], got {m}")));
            }
        }
        if let Some(s) = self.stop_at_success {
            if !(s > 0.0 && s <= 1.0) {
                return Err(("stop_at_success", format!("must be in (0, 1], got {s}")));
            }
        }
        Ok(())
    }
}
