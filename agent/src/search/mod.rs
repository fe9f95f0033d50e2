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

mod confirm;
pub mod episodes;
pub mod outcome;
mod run;
pub mod space;

pub use episodes::worst_mean;
pub use outcome::{stop_reason, StopReason, CONFIRM_LOG, LOG};
pub use run::{search, Progress};
