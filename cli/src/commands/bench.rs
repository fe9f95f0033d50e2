//! `wormnet bench …`: throughput figures measured the same way every time, so numbers in
//! issues and READMEs are comparable. The measuring loops live in the library crates; this
//! module only parses arguments and prints.

use std::path::Path;
use std::time::Duration;

use wormnet_agent::config::TrainConfig;
use wormnet_agent::ppo::update::UpdateStats;
use wormnet_agent::train::Trainer;

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
    /// Where a training second goes: steps/s, rollout vs update, and the update's parts.
    Train(TrainBench),
}

/// Arguments of `wormnet bench train`.
#[derive(Args)]
pub struct TrainBench {
    /// Experiment config (e.g. configs/cartpole.toml).
    pub config: std::path::PathBuf,
    /// Updates to measure, after one warm-up update.
    #[arg(long, default_value_t = 20)]
    pub updates: usize,
    /// Sets a config value by dotted key, as `wormnet train --set` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<wormnet_agent::config::Override>,
    /// Thread counts to measure, e.g. `1,2,4,8` (run.threads; default: the config's, else all
    /// cores); with several, a scaling table follows.
    #[arg(long, value_delimiter = ',', value_name = "N,…")]
    pub threads: Vec<usize>,
    /// Weak scaling: `env.num_envs` = K × threads for each thread count (the config's
    /// minibatch count is kept).
    #[arg(long, value_name = "K")]
    pub envs_per_thread: Option<usize>,
}

/// Arguments of `wormnet bench ncp` (scripts/dev/bench_ncps.py runs the same cases on Python ncps).
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
    /// Number of worker threads W; 0 steps the envs on this thread, without a VecEnv: the
    /// figure of one core, as a Gym env's step loop gives it.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Envs per Bevy `App` K (one world each, as `env.envs_per_app` in a config); envs that are
    /// not Bevy envs ignore it.
    #[arg(long, default_value_t = 1)]
    pub envs_per_app: usize,
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
        BenchCommand::Train(args) => bench_train(args, registry),
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
    if args.envs == 0 {
        anyhow::bail!("--envs must be at least 1");
    }
    if args.envs_per_app == 0 {
        anyhow::bail!("--envs-per-app must be at least 1");
    }
    let mut options = toml::Table::new();
    crate::options::apply(&mut options, &args.options)?;
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        anyhow::bail!("--seconds must be positive, got {}", args.seconds);
    }
    let factory = registry.factory(&args.name, options)?;
    let mut vec_env = wormnet_sim::VecEnvConfig::new(args.envs, args.workers);
    vec_env.envs_per_app = args.envs_per_app;
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
            "{}: {:.0} env steps/s at dt {} s ({} envs, {} workers, {} per app, {} steps in {:.2} s, {} episodes)",
            report.env,
            report.steps_per_sec,
            report.dt,
            report.envs,
            report.workers,
            report.envs_per_app,
            report.steps,
            report.seconds,
            report.episodes
        );
    }
    Ok(())
}

/// Trains `updates` updates (after a warm-up) of a config in a scratch run directory and
/// prints where the time went, once per thread count; nothing is kept.
fn bench_train(args: TrainBench, registry: &Registry) -> Result<()> {
    if args.updates == 0 {
        anyhow::bail!("--updates must be at least 1");
    }
    if args.threads.contains(&0) || args.envs_per_thread == Some(0) {
        anyhow::bail!("--threads and --envs-per-thread must be at least 1");
    }
    let base = TrainConfig::load_with(&args.config, &args.overrides)?;
    let counts: Vec<Option<usize>> = if args.threads.is_empty() {
        vec![base.run.threads]
    } else {
        args.threads.iter().map(|&t| Some(t)).collect()
    };
    let mut rows = Vec::new();
    for threads in counts {
        let mut config = base.clone();
        config.run.threads = threads;
        if let Some(k) = args.envs_per_thread {
            config.env.num_envs = k * threads.unwrap_or(1);
        }
        config
            .validate(&args.config)
            .context("--threads / --envs-per-thread")?;
        let batch = (config.env.num_envs * config.ppo.steps_per_rollout) as u64;
        // A budget past the measured updates, so that no final evaluation is due.
        config.run.total_steps = batch * (args.updates as u64 + 2);
        config.run.eval_every = 0;
        config.run.checkpoint_every = args.updates + 2;
        // PPO's speed from whatever weights: no cloning of an expert before it.
        config.imitation.before_ppo = false;
        let scratch =
            std::env::temp_dir().join(format!("wormnet-bench-train-{}", std::process::id()));
        let result = train_and_report(&args, &config, batch, &scratch, registry);
        let _ = std::fs::remove_dir_all(&scratch);
        rows.push(result?);
    }
    if rows.len() > 1 {
        print_scaling(&rows);
    }
    Ok(())
}

/// One measured thread count: (threads used, envs, training steps/s).
type ScalingRow = (usize, usize, f64);

/// The scaling table: each thread count's speed-up over the first row and its efficiency
/// (speed-up ÷ thread ratio).
fn print_scaling(rows: &[ScalingRow]) {
    let (t0, _, sps0) = rows[0];
    println!("threads   envs   training steps/s   speed-up   efficiency");
    for &(t, envs, sps) in rows {
        let speedup = sps / sps0;
        println!(
            "{t:>7} {envs:>6} {sps:>18.0} {speedup:>9.2}× {:>11.0} %",
            100.0 * speedup * t0 as f64 / t as f64
        );
    }
}

/// Trains one warm-up update and the measured ones in `scratch`, then prints where the time
/// went.
fn train_and_report(
    args: &TrainBench,
    config: &TrainConfig,
    batch: u64,
    scratch: &Path,
    registry: &Registry,
) -> Result<ScalingRow> {
    let mut trainer = Trainer::create(config.clone(), scratch, registry)
        .with_context(|| format!("config {}", args.config.display()))?;
    println!("{}", trainer.threads);
    trainer.run(Some(1), |_, _| {})?;
    let total = measure_updates(&mut trainer, args.updates)?;
    let sps = print_breakdown(args, config, batch, &total);
    Ok((trainer.threads.threads, config.env.num_envs, sps))
}

/// Trains `updates` updates, summing each part's seconds over them.
fn measure_updates(trainer: &mut Trainer, updates: usize) -> Result<UpdateStats> {
    let mut total = UpdateStats::default();
    trainer.run(Some(updates), |_, s| {
        for (sum, x) in [
            (&mut total.rollout_seconds, s.rollout_seconds),
            (&mut total.update_seconds, s.update_seconds),
            (&mut total.batching_seconds, s.batching_seconds),
            (&mut total.actor_seconds, s.actor_seconds),
            (&mut total.critic_seconds, s.critic_seconds),
            (&mut total.shard_wait_seconds, s.shard_wait_seconds),
            (&mut total.loss_seconds, s.loss_seconds),
            (&mut total.backward_seconds, s.backward_seconds),
            (&mut total.optimizer_seconds, s.optimizer_seconds),
        ] {
            *sum += x;
        }
        total.shards = s.shards;
    })?;
    Ok(total)
}

/// Prints the training speed and each part's milliseconds per update; returns the speed.
fn print_breakdown(
    args: &TrainBench,
    config: &TrainConfig,
    batch: u64,
    total: &UpdateStats,
) -> f64 {
    let n = args.updates as f64;
    let steps = batch as f64 * n;
    let train = total.rollout_seconds + total.update_seconds;
    let ms = |s: f64| 1e3 * s / n;
    // What no part measures: the replay's set-up, reading the losses and statistics.
    let rest = total.update_seconds
        - total.batching_seconds
        - total.actor_seconds
        - total.critic_seconds
        - total.shard_wait_seconds
        - total.loss_seconds
        - total.backward_seconds
        - total.optimizer_seconds;
    let samples = batch as f64 * config.ppo.epochs as f64;
    println!(
        "wormnet bench train {}: {} updates of {} steps ({} envs × {}), {} epochs × {} minibatches",
        args.config.display(),
        args.updates,
        batch,
        config.env.num_envs,
        config.ppo.steps_per_rollout,
        config.ppo.epochs,
        config.ppo.minibatches
    );
    println!(
        "training steps/s: {:.0}   (rollout {:.1} s = {:.0} %, update {:.1} s = {:.0} %)",
        steps / train,
        total.rollout_seconds,
        100.0 * total.rollout_seconds / train,
        total.update_seconds,
        100.0 * total.update_seconds / train
    );
    println!(
        "per update: rollout {:.1} ms; update {:.1} ms = gae and batching {:.1} + actor {:.1} + critic {:.1} + loss {:.1} + backward {:.1} (the trainer's shard of {}) + shard wait {:.1} + optimizer {:.1} + other {:.1}",
        ms(total.rollout_seconds),
        ms(total.update_seconds),
        ms(total.batching_seconds),
        ms(total.actor_seconds),
        ms(total.critic_seconds),
        ms(total.loss_seconds),
        ms(total.backward_seconds),
        total.shards,
        ms(total.shard_wait_seconds),
        ms(total.optimizer_seconds),
        ms(rest)
    );
    println!(
        "update per sample-step (epochs × envs × steps): {:.2} µs",
        1e6 * total.update_seconds / n / samples
    );
    steps / train
}
