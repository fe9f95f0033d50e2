//! The `wormnet` command: one entry point for everything a user does with wormnet.

mod audit_command;
mod bench;
mod runs;
mod wiring_command;

use anyhow::Result;
use clap::{Parser, Subcommand};

use wormnet_agent::runtime::{RuntimeInfo, EXPECTED_LIBTORCH};

/// Train, evaluate and audit Neural Circuit Policies on Bevy + Rapier environments.
#[derive(Parser)]
#[command(name = "wormnet", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the libtorch version, CUDA devices, CPU threads and crate versions.
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Train an NCP policy with PPO from a config file (or continue a run with --resume).
    Train(runs::TrainArgs),
    /// Evaluate a trained policy: mean ± std return and success rate over N episodes.
    Eval(runs::EvalArgs),
    /// Draw a wiring (from an experiment config, a wiring config or a wiring file) as SVG/PNG.
    Wiring(wiring_command::WiringArgs),
    /// Plot a run's learning curves (return, length, losses, SPS) as PNG.
    Plot(audit_command::PlotArgs),
    /// Render episodes offscreen (PNG frames, GIF, MP4) with a per-step CSV of every neuron.
    #[cfg(feature = "render")]
    Record(audit_command::RecordArgs),
    /// Watch the policy act live in a window, its neurons lighting up beside the scene.
    #[cfg(feature = "render")]
    Watch(audit_command::WatchArgs),
    /// Measure throughput (env steps/s, …) the same way every time.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Info { json } => info(json),
        Command::Bench { what } => bench::run(what),
        Command::Train(args) => runs::train(args),
        Command::Eval(args) => runs::eval(args),
        Command::Wiring(args) => wiring_command::run(args),
        Command::Plot(args) => audit_command::plot(args),
        #[cfg(feature = "render")]
        Command::Record(args) => audit_command::record(args),
        #[cfg(feature = "render")]
        Command::Watch(args) => audit_command::watch(args),
    }
}

fn info(json: bool) -> Result<()> {
    let info = RuntimeInfo::gather();
    if json {
        println!("{}", serde_json::to_string(&info)?);
        return Ok(());
    }
    let version = info.libtorch_version.as_deref().unwrap_or("unknown");
    println!("libtorch        {version}");
    match &info.libtorch_dir {
        Some(dir) => println!("libtorch dir    {}", dir.display()),
        None => println!("libtorch dir    not found in this process"),
    }
    if !info.version_matches() {
        println!(
            "warning         tch expects libtorch {EXPECTED_LIBTORCH}; run scripts/setup to install it"
        );
    }
    if info.cuda_available {
        println!(
            "cuda            available, {} device(s), cudnn {}",
            info.cuda_devices,
            if info.cudnn_available { "yes" } else { "no" }
        );
    } else {
        let why = match &info.cuda_backend {
            Ok(_) => "no CUDA device or driver found".to_string(),
            Err(e) => e.clone(),
        };
        println!("cuda            not available, training runs on the CPU ({why})");
    }
    println!(
        "cpu threads     {} intra-op, {} inter-op (OMP_NUM_THREADS changes it)",
        info.cpu_threads, info.interop_threads
    );
    println!(
        "cpu backends    mkl {}, openmp {}",
        yes_no(info.mkl),
        yes_no(info.openmp)
    );
    let crates: Vec<String> = info
        .crates
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("crates          {}", crates.join(", "));
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
