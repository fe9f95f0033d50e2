//! wormnet-cli: the `wormnet` command as a library entry point over any environment
//! [`Registry`](wormnet_sim::Registry).
//!
//! It exists so that a crate with its own environments gets the whole command — `train` with
//! the progress bar, Ctrl-C saving and `--resume`; `sweep`, `report`, `eval`, `record`, `watch`, `ablate`, `bench`, `plot`,
//! `wiring`, `info` — without copying any of it. Its `main` builds a registry and returns what [`main`]
//! returns:
//!
//! ```no_run
//! let mut registry = wormnet_cli::envs::registry(); // the built-ins, if wanted
//! // registry.register("lander", "…", |options| …)?;  // its own envs
//! let exit: std::process::ExitCode = wormnet_cli::main(registry);
//! # Ok::<(), wormnet_cli::sim::RegistryError>(())
//! ```
//!
//! and it reaches every wormnet crate, and the versions of Bevy, rapier, tch, rand and toml
//! they were built with, through the re-exports below — so its derives compile with this crate
//! as its only wormnet dependency.
//!
//! - [`commands`]: one module per subcommand, its arguments and the function that runs it.
//! - [`options`]: `--option key=value` over a config's env options, and the check that they
//!   keep the spaces the policy was trained on.

pub mod commands;
pub mod options;

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use wormnet_sim::Registry;

/// Re-exported: policies, PPO, checkpoints, evaluation, recording.
pub use wormnet_agent as agent;
/// Re-exported: wormnet's built-in environments.
pub use wormnet_envs as envs;
/// Re-exported: the NCP model library (and its `tch`).
pub use wormnet_ncp as ncp;
/// Re-exported: the environment contract (and its `bevy`, `bevy_rapier2d`, `rand`, `toml`).
pub use wormnet_sim as sim;

/// Train, evaluate and audit Neural Circuit Policies on Bevy + Rapier environments.
#[derive(Parser)]
#[command(name = "wormnet", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the libtorch version, CUDA devices, CPU threads, crate versions and known envs.
    Info(commands::info::InfoArgs),
    /// Train an NCP policy with PPO from a config file (or continue a run with --resume).
    Train(commands::train::TrainArgs),
    /// Clone the env's expert (behavioural cloning with DAgger rounds) into a new run directory.
    Imitate(commands::imitate::ImitateArgs),
    /// Adaptive random search over the circuit's parameters (the worm papers' optimiser).
    Search(commands::search::SearchArgs),
    /// Train every trial of a sweep file (seeds × grid × variants), locally or on Ray; resumable.
    Sweep(commands::sweep::SweepArgs),
    /// Compare runs across seeds: CI table (Markdown, CSV), learning curves, robustness to noise.
    Report(commands::report::ReportArgs),
    /// Evaluate a trained policy: mean ± std return and success rate over N episodes.
    Eval(commands::eval::EvalArgs),
    /// Draw a wiring (from an experiment config, a wiring config or a wiring file) as SVG/PNG.
    Wiring(commands::wiring::WiringArgs),
    /// Plot a run's learning curves (return, length, losses, SPS) as PNG.
    Plot(commands::plot::PlotArgs),
    /// Render episodes offscreen (PNG frames, GIF, MP4) with a per-step CSV of every neuron.
    #[cfg(feature = "render")]
    Record(commands::record::RecordArgs),
    /// Watch the policy act live in a window, its neurons lighting up beside the scene.
    #[cfg(feature = "render")]
    Watch(commands::watch::WatchArgs),
    /// Knock out each neuron (and layer) of an LTC policy: what it costs, sorted by effect.
    Ablate(commands::ablate::AblateArgs),
    /// Measure throughput (env steps/s, NCP steps) the same way every time.
    Bench {
        #[command(subcommand)]
        what: commands::bench::BenchCommand,
    },
}

/// Runs the command line of this process over `registry`; errors are printed as one line
/// (the message and its causes, never a backtrace) and give exit code 1.
pub fn main(registry: Registry) -> ExitCode {
    // A file-size limit (`ulimit -f`) then makes a write fail with an error we report, like a
    // full disk, instead of killing the process with SIGXFSZ before it can save or print.
    // SAFETY: setting a signal's disposition to "ignore" at start-up, before any thread.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // Output piped into a reader that stops early (`wormnet info | head -2`) ends the process
    // quietly, as for any Unix tool, instead of a panic about a broken pipe (Rust ignores
    // SIGPIPE by default, and `println!` panics on the error).
    // SAFETY: as above, setting a signal's disposition at start-up.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match run(registry, std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line (see [`wormnet_sim::env::one_line`], which the Python
/// bindings share so that both say the same words).
pub fn one_line(e: &anyhow::Error) -> String {
    wormnet_sim::env::one_line(e.as_ref())
}

/// Parses `args` (the program name first, as `std::env::args_os`) and runs the subcommand over
/// `registry`. `--help`, `--version` and usage errors print as clap prints them and exit.
pub fn run<I, T>(registry: Registry, args: I) -> Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    init_logging();
    match cli.command {
        Command::Info(args) => commands::info::run(args, &registry),
        Command::Train(args) => commands::train::run(args, &registry),
        Command::Imitate(args) => commands::imitate::run(args, &registry),
        Command::Search(args) => commands::search::run(args, &registry),
        Command::Sweep(args) => commands::sweep::run(args),
        Command::Report(args) => commands::report::run(args, &registry),
        Command::Eval(args) => commands::eval::run(args, &registry),
        Command::Wiring(args) => commands::wiring::run(args, &registry),
        Command::Plot(args) => commands::plot::run(args),
        #[cfg(feature = "render")]
        Command::Record(args) => commands::record::run(args, &registry),
        #[cfg(feature = "render")]
        Command::Watch(args) => commands::watch::run(args, &registry),
        Command::Ablate(args) => commands::ablate::run(args, &registry),
        Command::Bench { what } => commands::bench::run(what, &registry),
    }
}

/// Log lines (`RUST_LOG`, default info) go to stderr; a second call is a no-op.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_in_its_message_is_said_once() {
        let io = std::io::Error::other("No space left on device");
        let write = wormnet_agent::checkpoint::CheckpointError::Write {
            path: "runs/x/latest.json".into(),
            source: io,
        };
        let e = anyhow::Error::new(write).context("saving the latest checkpoint");
        assert_eq!(
            super::one_line(&e),
            "saving the latest checkpoint: cannot write runs/x/latest.json: No space left on \
             device"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(super::one_line(&plain), "outer: inner");
    }
}
