//! `wormnet plot`: a run's learning curves (return, length, losses, SPS) as one PNG.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// Arguments of `wormnet plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A run directory (holding metrics.csv).
    pub run_dir: PathBuf,
    /// Output PNG (default: <run dir>/curves.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `wormnet plot`.
pub fn run(args: PlotArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("curves.png"));
    wormnet_agent::inspect::plot::learning_curves(&args.run_dir, &out)?;
    println!("learning curves written to {}", out.display());
    Ok(())
}
