//! The search loop: tries, re-scoring and widening, periodic evaluation, the run directory.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Tensor;
use wormnet_ncp::parse_device;
use wormnet_sim::{EnvFactory, EnvSpec, Registry};

use super::confirm::{contends, decide};
use super::episodes::{worst_mean, Episode, Scorer};
use super::outcome::{StopReason, CONFIRM_LOG, LOG};
use super::space::SearchSpace;
use crate::checkpoint::{self, CheckpointParts};
use crate::config::{SearchConfig, TrainConfig};
use crate::eval::{evaluate, EvalOptions, EvalSummary};
use crate::interrupt::STOP;
use crate::metrics::{names, MetricsWriter, Scalars, COLUMNS};
use crate::policy::{ObsNormalizer, Policy};
use crate::ppo::adam::Adam;
use crate::rundir;
use crate::seeds::{derive_seed, CONFIRM_STREAM, PERTURB_STREAM, SEARCH_STREAM, TORCH_STREAM};
use crate::threads::{available_cores, ThreadBudget};

/// Header of [`CONFIRM_LOG`]: the try, the periodic evaluation, the confirmation (episodes,
/// seed, return, success) and what it decided.
const CONFIRM_HEADER: &str =
    "iteration,env_steps,eval_return,eval_success,episodes,seed,return,success,best,solved";

/// Header of [`LOG`].
const HEADER: &str =
    "iteration,env_steps,incumbent_score,candidate_score,accepted,width,wall_seconds,stop";

/// Where a search stands after a periodic evaluation: the progress line.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Tries done.
    pub iteration: usize,
    /// Env steps of every scoring so far (evaluations not counted, as in PPO).
    pub env_steps: u64,
    /// The incumbent's score: mean return of its worst `search.worst` episodes.
    pub score: f64,
    /// Scalars a try perturbs now.
    pub width: usize,
    /// Tries accepted so far.
    pub accepted: usize,
    /// The incumbent's evaluation (`run.eval_episodes`, deterministic).
    pub eval: EvalSummary,
    /// Its confirmation on `search.confirm_episodes` fresh episodes, where one ran.
    pub confirmation: Option<EvalSummary>,
    /// Wall-clock seconds since the run started.
    pub wall_seconds: f64,
}

/// The width after `patience` rejections: twice as wide, up to `max_perturb` (and the `len`
/// scalars there are); from there a new cycle starts at `perturb`.
fn wider(width: usize, cfg: &SearchConfig, len: usize) -> usize {
    let widest = cfg.max_perturb.min(len);
    match width * 2 > widest {
        true if width >= widest => cfg.perturb.min(len),
        true => widest,
        false => width * 2,
    }
}

/// The search's state: the incumbent, its score, and the counters that steer the width.
struct Search<'a> {
    config: &'a TrainConfig,
    space: SearchSpace,
    scorer: Scorer,
    incumbent: Vec<f32>,
    score: f64,
    width: usize,
    failures: usize,
    accepted: usize,
    /// Scorings so far: the `SEARCH_STREAM` index of the next one's episode seeds.
    draws: u64,
    /// Confirmations so far: the `CONFIRM_STREAM` index of the next one's episode seeds.
    confirmations: u64,
    env_steps: u64,
    /// Seconds spent scoring since the last metrics row, and the mean return of the last try.
    scoring_seconds: f64,
    last_return: f64,
}

/// One try's line of [`LOG`].
struct Try {
    candidate: f64,
    accepted: bool,
}

impl Search<'_> {
    /// Scores `values` on fresh episodes: (mean of the worst k returns, the episodes).
    fn score(&mut self, values: &[f32]) -> Result<(f64, Vec<Episode>)> {
        let cfg = &self.config.search;
        let base = derive_seed(self.config.run.seed, SEARCH_STREAM + self.draws);
        let seeds: Vec<u64> = (0..cfg.episodes as u64)
            .map(|j| derive_seed(base, j))
            .collect();
        self.draws += 1;
        let started = Instant::now();
        let episodes = self.scorer.run(values, &seeds)?;
        self.scoring_seconds += started.elapsed().as_secs_f64();
        self.env_steps += episodes.iter().map(|e| u64::from(e.length)).sum::<u64>();
        let returns: Vec<f64> = episodes.iter().map(|e| e.ret).collect();
        self.last_return = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
        Ok((worst_mean(&returns, cfg.worst), episodes))
    }

    /// Try `i`: perturb, constrain, score, keep or undo; re-score and widen after
    /// `search.patience` rejections in a row.
    fn step(&mut self, i: usize) -> Result<Try> {
        let cfg = &self.config.search;
        let mut rng =
            ChaCha8Rng::seed_from_u64(derive_seed(self.config.run.seed, PERTURB_STREAM + i as u64));
        let mut candidate = self.incumbent.clone();
        self.space
            .perturb(&mut candidate, self.width, cfg.step, &mut rng);
        let policy = self.scorer.policy();
        self.space.write(policy, &candidate);
        policy.apply_weight_constraints();
        let candidate = self.space.read(policy);
        let (score, _) = self.score(&candidate)?;
        let cfg = &self.config.search;
        // Ties are kept: on a plateau (every episode at the time limit, or every one failing
        // at once) the search drifts instead of standing still.
        let accepted = score >= self.score && score.is_finite();
        if accepted {
            self.incumbent = candidate;
            self.score = score;
            self.width = cfg.perturb.min(self.space.len());
            self.failures = 0;
            self.accepted += 1;
        } else {
            self.failures += 1;
            if self.failures >= cfg.patience {
                let incumbent = self.incumbent.clone();
                self.score = self.score(&incumbent)?.0;
                self.width = wider(self.width, cfg, self.space.len());
                self.failures = 0;
            }
        }
        Ok(Try {
            candidate: score,
            accepted,
        })
    }

    /// The scorer's policy holding the incumbent's values (a rejected try leaves its own).
    fn incumbent_policy(&self) -> &Policy {
        let policy = self.scorer.policy();
        self.space.write(policy, &self.incumbent);
        policy
    }
}

/// The seeded initial policy (and, with `ppo.norm_obs`, a fresh normaliser that search never
/// updates), plus `replicas` more built alike for the other scoring threads.
fn policies(
    config: &TrainConfig,
    spec: &EnvSpec,
    replicas: usize,
) -> Result<(Policy, Vec<Policy>)> {
    tch::set_num_threads(1);
    let device = parse_device(&config.run.device)?;
    let norm = config
        .ppo
        .norm_obs
        .then(|| ObsNormalizer::new(spec.obs_dim(), config.ppo.obs_clip));
    // Before the seed: building the replicas must not move the policy's random stream.
    let mut others = Vec::with_capacity(replicas);
    for _ in 0..replicas {
        let mut p = Policy::new(spec, &config.policy, device)?;
        p.set_obs_normalizer(norm.clone());
        others.push(p);
    }
    tch::manual_seed(derive_seed(config.run.seed, TORCH_STREAM) as i64);
    let mut policy = Policy::new(spec, &config.policy, device)?;
    policy.set_obs_normalizer(norm);
    Ok((policy, others))
}

/// What the run directory is written with: the run's files and how to save a checkpoint.
struct RunFiles<'a> {
    dir: &'a Path,
    config: &'a TrainConfig,
    spec: EnvSpec,
    params: Vec<(String, Tensor)>,
    adam: Adam,
    metrics: MetricsWriter,
    started: Instant,
}

impl RunFiles<'_> {
    fn save(
        &self,
        s: &Search<'_>,
        i: usize,
        tag: &str,
        best: Option<f64>,
        eval: Option<EvalSummary>,
    ) -> Result<()> {
        let parts = CheckpointParts {
            policy: s.incumbent_policy(),
            params: &self.params,
            adam: &self.adam,
            reward_scaler: None,
            update: i,
            global_step: s.env_steps,
            best_eval: best,
            wall_seconds: self.started.elapsed().as_secs_f64(),
            config: self.config,
            spec: &self.spec,
        };
        checkpoint::save(self.dir, tag, &parts, eval)
    }

    fn log(&self, line: &str) -> Result<()> {
        self.append(LOG, line)
    }

    fn append(&self, name: &str, line: &str) -> Result<()> {
        let path = self.dir.join(name);
        checkpoint::append_line(&path, line)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The line of [`CONFIRM_LOG`] of a confirmed evaluation (the log's header first).
    fn log_confirmation(&self, i: usize, s: &Search<'_>, c: &Checked) -> Result<()> {
        let Some((confirmation, seed)) = &c.confirmation else {
            return Ok(());
        };
        if !self.dir.join(CONFIRM_LOG).exists() {
            self.append(CONFIRM_LOG, CONFIRM_HEADER)?;
        }
        let success = |e: &EvalSummary| e.success_rate.map_or(String::new(), |r| r.to_string());
        self.append(
            CONFIRM_LOG,
            &format!(
                "{i},{},{},{},{},{seed},{},{},{},{}",
                s.env_steps,
                c.eval.mean_return,
                success(&c.eval),
                confirmation.episodes,
                confirmation.mean_return,
                success(confirmation),
                u8::from(c.best),
                u8::from(c.solved)
            ),
        )
    }

    fn log_try(&self, s: &Search<'_>, i: usize, t: &Try) -> Result<()> {
        self.log(&format!(
            "{},{},{},{},{},{},{:.3},",
            i + 1,
            s.env_steps,
            s.score,
            t.candidate,
            u8::from(t.accepted),
            s.width,
            self.started.elapsed().as_secs_f64()
        ))
    }

    /// The metrics row of an evaluation, under PPO's names so `report` reads both alike.
    fn log_eval(&mut self, s: &mut Search<'_>, eval: &EvalSummary) -> Result<()> {
        let mut row = Scalars::new();
        row.insert(names::EVAL_MEAN_RETURN.into(), eval.mean_return);
        if let Some(rate) = eval.success_rate {
            row.insert(names::EVAL_SUCCESS_RATE.into(), rate);
        }
        row.insert(names::EPISODIC_RETURN.into(), s.last_return);
        row.insert(names::ROLLOUT_SECONDS.into(), s.scoring_seconds);
        row.insert(
            names::WALL_SECONDS.into(),
            self.started.elapsed().as_secs_f64(),
        );
        s.scoring_seconds = 0.0;
        Ok(self.metrics.log(s.env_steps, &row)?)
    }
}

/// Searches `config`'s circuit into a new run directory `run_dir`; `progress` hears of every
/// periodic evaluation. Ctrl-C ([`STOP`]) ends it after the current try with `latest` saved.
pub fn search(
    mut config: TrainConfig,
    run_dir: &Path,
    registry: &Registry,
    mut progress: impl FnMut(&Progress),
) -> Result<StopReason> {
    let started = Instant::now();
    if config.run.init_from.is_some() {
        bail!("run.init_from: search starts from the run's seeded weights; remove it");
    }
    let cores = available_cores();
    let episodes = config.search.episodes;
    let budget = ThreadBudget::plan(config.run.threads, cores, episodes, episodes, None);
    // The run's config says how many threads made its bits.
    config.run.threads = Some(budget.threads);
    let factory = registry
        .factory(&config.env.name, config.env.options.clone())
        .context("config [env] options")?;
    let eval_factory = registry
        .factory(&config.env.name, config.eval_env_options())
        .context("config [env] eval_options")?;
    let spec = factory
        .build()
        .context("config [env] options")?
        .spec()
        .clone();
    let threads = budget.threads.min(episodes);
    let (policy, replicas) = policies(&config, &spec, threads - 1)?;
    let space = SearchSpace::of(&policy);
    if space.is_empty() {
        bail!("policy.actor has no parameters to search");
    }
    let params = policy.parameters();
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let adam = Adam::new(&tensors, 1e-3, config.ppo.adam_eps);
    let incumbent = space.read(&policy);
    let scorer = Scorer::new(policy, replicas, &space, &factory)?;
    let guard = rundir::NewRunGuard::new(run_dir, rundir::claim_new(run_dir, None)?);
    config.policy.embed_circuits()?;
    checkpoint::write_atomic(&run_dir.join("config.toml"), config.to_toml().as_bytes())?;
    let mut files = RunFiles {
        dir: run_dir,
        config: &config,
        spec,
        params,
        adam,
        metrics: MetricsWriter::open(run_dir, None, COLUMNS)?,
        started,
    };
    files.log(HEADER)?;
    let width = config.search.perturb.min(space.len());
    let mut s = Search {
        config: &config,
        space,
        scorer,
        incumbent,
        score: f64::NEG_INFINITY,
        width,
        failures: 0,
        accepted: 0,
        draws: 0,
        confirmations: 0,
        env_steps: 0,
        scoring_seconds: 0.0,
        last_return: 0.0,
    };
    let first = s.incumbent.clone();
    s.score = s.score(&first)?.0;
    let stop = search_loop(&mut s, &mut files, &eval_factory, &mut progress)?;
    guard.keep();
    Ok(stop)
}

/// Tries until the budget is spent, the task solved or Ctrl-C; evaluates every
/// `search.eval_every` tries and at the end, saving `latest` and `best`.
fn search_loop(
    s: &mut Search<'_>,
    files: &mut RunFiles<'_>,
    eval_factory: &EnvFactory,
    progress: &mut impl FnMut(&Progress),
) -> Result<StopReason> {
    let config = files.config;
    let cfg = &config.search;
    let mut options = EvalOptions::during_training(config);
    options.deterministic = true;
    // The value `best` was chosen by: its confirmation's mean return (its evaluation's
    // without confirmations).
    let mut best: Option<f64> = None;
    let mut done = 0;
    let mut evaluated_at = None;
    let stop = loop {
        if STOP.load(Ordering::SeqCst) {
            break StopReason::Interrupted;
        }
        if done >= cfg.iterations {
            break StopReason::Iterations;
        }
        if cfg
            .minutes
            .is_some_and(|m| files.started.elapsed().as_secs_f64() >= m * 60.0)
        {
            break StopReason::Minutes;
        }
        let t = s.step(done)?;
        done += 1;
        files.log_try(s, done - 1, &t)?;
        if cfg.eval_every > 0 && done % cfg.eval_every == 0 {
            let checked = evaluate_incumbent(s, files, eval_factory, &options, &mut best, done)?;
            files.save(s, done, "latest", best, None)?;
            evaluated_at = Some(done);
            let solved = checked.solved;
            progress(&progress_of(s, files, done, checked));
            if solved {
                break StopReason::Solved;
            }
        }
    };
    if stop.finished() && evaluated_at != Some(done) {
        let checked = evaluate_incumbent(s, files, eval_factory, &options, &mut best, done)?;
        progress(&progress_of(s, files, done, checked));
    }
    files.save(s, done, "latest", best, None)?;
    files.log(&format!(
        "{done},{},{},,,{},{:.3},{}",
        s.env_steps,
        s.score,
        s.width,
        files.started.elapsed().as_secs_f64(),
        stop.word()
    ))?;
    Ok(stop)
}

/// One periodic evaluation of the incumbent: the evaluation, its confirmation (and that one's
/// seed) where one ran, whether the incumbent became `best`, and whether the run is solved.
struct Checked {
    eval: EvalSummary,
    confirmation: Option<(EvalSummary, u64)>,
    best: bool,
    solved: bool,
}

/// Evaluates the incumbent and logs the metrics row; confirms the evaluation on fresh episodes
/// where [`contends`] says so (a line of [`CONFIRM_LOG`]), saves `best` where [`decide`] says
/// so, and says whether the run is solved.
fn evaluate_incumbent(
    s: &mut Search<'_>,
    files: &mut RunFiles<'_>,
    eval_factory: &EnvFactory,
    options: &EvalOptions,
    best: &mut Option<f64>,
    done: usize,
) -> Result<Checked> {
    let cfg = &files.config.search;
    let eval = evaluate(s.incumbent_policy(), eval_factory.clone(), options)?;
    files.log_eval(s, &eval)?;
    let confirmation = if cfg.confirm_episodes > 0 && contends(cfg, *best, &eval) {
        let seed = derive_seed(files.config.run.seed, CONFIRM_STREAM + s.confirmations);
        s.confirmations += 1;
        let fresh = EvalOptions {
            episodes: cfg.confirm_episodes,
            seed,
            ..options.clone()
        };
        let summary = evaluate(s.incumbent_policy(), eval_factory.clone(), &fresh)?;
        Some((summary, seed))
    } else {
        None
    };
    let (new_best, solved) = decide(cfg, *best, &eval, confirmation.as_ref().map(|c| &c.0));
    let checked = Checked {
        eval,
        confirmation,
        best: new_best.is_some(),
        solved,
    };
    files.log_confirmation(done, s, &checked)?;
    if new_best.is_some() {
        *best = new_best;
        files.save(s, done, "best", *best, Some(checked.eval.clone()))?;
    }
    Ok(checked)
}

fn progress_of(s: &Search<'_>, files: &RunFiles<'_>, done: usize, checked: Checked) -> Progress {
    Progress {
        iteration: done,
        env_steps: s.env_steps,
        score: s.score,
        width: s.width,
        accepted: s.accepted,
        eval: checked.eval,
        confirmation: checked.confirmation.map(|(c, _)| c),
        wall_seconds: files.started.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_doubles_up_to_max_perturb_then_starts_a_new_cycle() {
        let cfg = SearchConfig::default();
        let cycle = |len: usize| {
            let mut w = cfg.perturb.min(len);
            (0..7)
                .map(|_| {
                    w = wider(w, &cfg, len);
                    w
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(cycle(707), [8, 16, 32, 64, 4, 8, 16]);
        assert_eq!(cycle(20), [8, 16, 20, 4, 8, 16, 20]);
        assert_eq!(cycle(3), [3, 3, 3, 3, 3, 3, 3]);
    }
}
