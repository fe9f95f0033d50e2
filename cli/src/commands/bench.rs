//! `wormnet bench …`: throughput figures measured the same way every time, so numbers in
//! issues and READMEs are comparable. The measuring loops live in the library crates; this
//! module only parses arguments and prints.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use wormnet_sim::Registry;

/// What to measure.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Environment steps per second with random actions through a VecEnv.
    Env(EnvBench),
    /// NCP speed: LTC and CfC on AutoNCP(19, 4), 8 inputs, sequence 100 (forward, train, step).
    Ncp(NcpBench),
}

/// Arguments of `wormnet bench ncp` (scripts/bench_ncps.py runs the same cases on Python ncps).
#[derive(Args)]
pub struct NcpBench {
    /// libtorch intra-op threads (Python ncps reference numbers use 1).
    #[arg(long, default_value_t = 1)]
    pub threads: i32,
    /// Approximate seconds to measure each case.
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Batch sizes for `forward` and `train`.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 32, 256])]
    pub batches: Vec<i64>,
    /// Batch sizes for the streaming `step`.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 32, 256])]
    pub step_batches: Vec<i64>,
    /// Sequence length.
    #[arg(long, default_value_t = 100)]
    pub seq: i64,
    /// Skip the generic-libtorch reference rows for the LTC.
    #[arg(long)]
    pub no_tch: bool,
    /// Print one JSON object per case (`model`, `batch`, `mode`, `ms`, …).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `wormnet bench env`.
#[derive(Args)]
pub struct EnvBench {
    /// Registered env name (e.g. cartpole, pendulum, ball_slope).
    pub name: String,
    /// Number of envs N in the VecEnv.
    #[arg(long, default_value_t = 16)]
    pub envs: usize,
    /// Number of worker threads W.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Seconds to measure (after a short warm-up).
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Seed for the envs and the random actions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Env option as TOML `key=value`, repeatable (e.g. `--option no_velocity=true`).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Microseconds a waiting thread polls before sleeping (default: the VecEnv's).
    #[arg(long)]
    pub spin_us: Option<u64>,
    /// Print one JSON object (`env`, `envs`, `workers`, `steps_per_sec`, …) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `wormnet bench` subcommand.
pub fn run(command: BenchCommand, registry: &Registry) -> Result<()> {
    match command {
        BenchCommand::Env(args) => bench_env(args, registry),
        BenchCommand::Ncp(args) => bench_ncp(args),
    }
}

fn bench_ncp(args: NcpBench) -> Result<()> {
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        anyhow::bail!("--seconds must be positive, got {}", args.seconds);
    }
    if args.threads < 1 || args.seq < 1 {
        anyhow::bail!("--threads and --seq must be at least 1");
    }
    if args
        .batches
        .iter()
        .chain(&args.step_batches)
        .any(|&b| b < 1)
    {
        anyhow::bail!("batch sizes must be at least 1");
    }
    // Bounded so a typo cannot ask for terabytes: batch × seq samples of the sequence modes.
    const MAX_SAMPLES: i64 = 10_000_000;
    if let Some(&b) = args
        .batches
        .iter()
        .chain(&args.step_batches)
        .find(|&&b| b.saturating_mul(args.seq) > MAX_SAMPLES || b > MAX_SAMPLES)
    {
        anyhow::bail!(
            "--batches/--step-batches {b} with --seq {} asks for more than {MAX_SAMPLES} \
             sample-steps per call; use smaller batches",
            args.seq
        );
    }
    if args.threads > 1024 {
        anyhow::bail!("--threads {} is more than 1024", args.threads);
    }
    tch::set_num_threads(args.threads);
    let options = wormnet_ncp::bench::BenchOptions {
        batches: args.batches,
        step_batches: args.step_batches,
        seq: args.seq,
        seconds: args.seconds,
        tch_too: !args.no_tch,
        ..Default::default()
    };
    if !args.json {
        println!(
            "wormnet NCP bench, AutoNCP(19,4), 8 inputs, seq {}, {} torch thread(s)",
            options.seq, args.threads
        );
    }
    wormnet_ncp::bench::run(&options, |row| {
        if args.json {
            match serde_json::to_string(row) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("cannot serialise bench row: {e}"),
            }
        } else {
            let per = if row.mode == "step" {
                format!("{:9.1} µs", row.ms * 1e3)
            } else {
                format!("{:9.2} ms", row.ms)
            };
            println!(
                "{:<4} {:<8} batch {:>4}  {per}  ({}, {} reps)",
                row.model, row.mode, row.batch, row.path, row.reps
            );
        }
    })
}

fn bench_env(args: EnvBench, registry: &Registry) -> Result<()> {
    // Bounded so a typo cannot allocate or spawn without end.
    const MAX_ENVS: usize = 65_536;
    const MAX_WORKERS: usize = 1024;
    if args.envs > MAX_ENVS || args.workers > MAX_WORKERS {
        anyhow::bail!(
            "--envs {} / --workers {}: at most {MAX_ENVS} envs on {MAX_WORKERS} workers",
            args.envs,
            args.workers
        );
    }
    let mut options = toml::Table::new();
    crate::options::apply(&mut options, &args.options)?;
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        anyhow::bail!("--seconds must be positive, got {}", args.seconds);
    }
    let factory = registry.factory(&args.name, options)?;
    let mut vec_env = wormnet_sim::VecEnvConfig::new(args.envs, args.workers);
    if let Some(us) = args.spin_us {
        vec_env.spin = Duration::from_micros(us);
    }
    let config = wormnet_sim::bench::BenchConfig {
        vec_env,
        duration: Duration::from_secs_f64(args.seconds),
        seed: args.seed,
    };
    let report = wormnet_sim::bench::bench_env(factory, &config)
        .with_context(|| format!("benchmarking env `{}`", args.name))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {:.0} env steps/s at dt {} s ({} envs, {} workers, {} steps in {:.2} s, {} episodes)",
            report.env,
            report.steps_per_sec,
            report.dt,
            report.envs,
            report.workers,
            report.steps,
            report.seconds,
            report.episodes
        );
    }
    Ok(())
}
