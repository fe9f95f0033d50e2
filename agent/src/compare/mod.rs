//! Comparing runs the way one seed cannot: runs grouped by config (everything but the seed),
//! each group's final and best evaluation as a mean with a 95 % bootstrap confidence interval
//! across seeds, the interquartile mean, steps and wall time to a threshold, learning curves
//! with confidence bands, and success under observation noise — `wormnet report`.
//!
//! - [`runs`]: what a run directory says, and runs grouped by config.
//! - [`table`]: a group's numbers, as Markdown and CSV.
//! - [`stats`]: bootstrap intervals and the IQM; [`plot`]: the figures;
//!   [`robustness`]: the noise evaluation.

pub mod plot;
pub mod robustness;
pub mod runs;
pub mod stats;
pub mod table;

pub use runs::{find_runs, group, Group, Method, RunRecord};
pub use table::{csv, markdown, summarize, GroupRow};
