//! `wormnet search`: adaptive random search over the TW circuit on the real cartpole finds a
//! far better circuit than the seeded one within seconds, keeps only tries that score at least
//! the incumbent, gives the same bits for the same seed and threads, and writes a run directory
//! that evaluation and `report` read, labelled by method beside a PPO run of the same config.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};

use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::compare::{group, markdown, summarize, Method, RunRecord};
use wormnet_agent::config::TrainConfig;
use wormnet_agent::eval::{evaluate, EvalOptions};
use wormnet_agent::interrupt::STOP;
use wormnet_agent::search::{search, StopReason, CONFIRM_LOG};
use wormnet_agent::train::Trainer;

/// libtorch's random generator is process-wide: tests that build policies take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shipped `tw_cartpole.toml` (the TW circuit on the continuous cartpole without
/// velocities) with `overrides`.
fn tw_cartpole(overrides: &[&str]) -> TrainConfig {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let text = std::fs::read_to_string(format!("{root}/configs/tw_cartpole.toml"))
        .expect("shipped config")
        .replace("\"configs/wirings/", &format!("\"{root}/configs/wirings/"));
    let overrides: Vec<_> = overrides
        .iter()
        .map(|o| o.parse().expect("override"))
        .collect();
    TrainConfig::parse_with(&text, Path::new("tw_cartpole.toml"), &overrides).expect("parses")
}

/// `search.csv`'s try rows as (incumbent score after, candidate score, accepted, width).
fn tries(dir: &Path) -> Vec<(f64, f64, bool, usize)> {
    let text = std::fs::read_to_string(dir.join("search.csv")).expect("search.csv");
    text.lines()
        .skip(1)
        .filter(|l| l.ends_with(','))
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[2].parse().unwrap(),
                c[3].parse().unwrap(),
                c[4] == "1",
                c[5].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn search_finds_a_far_better_tw_circuit_on_cartpole_within_seconds() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = tw_cartpole(&[
        "search.iterations=1000",
        "search.eval_every=250",
        "run.threads=2",
    ]);
    let registry = wormnet_envs::registry();
    let mut evals = Vec::new();
    let stop = search(config, dir.path(), &registry, |p| evals.push(p.clone())).expect("search");
    assert_eq!(stop, StopReason::Iterations);
    let rows = tries(dir.path());
    assert_eq!(rows.len(), 1000);
    // A try is kept exactly when it scores at least the incumbent; only a kept try or a
    // re-scoring (after `patience` rejections, with a wider width) moves the incumbent's score.
    let mut incumbent = None::<f64>;
    for (i, &(after, candidate, accepted, _)) in rows.iter().enumerate() {
        if let Some(before) = incumbent {
            assert_eq!(accepted, candidate >= before, "try {}", i + 1);
            if accepted {
                assert_eq!(after, candidate, "try {}", i + 1);
            }
        }
        incumbent = Some(after);
    }
    assert!(rows.iter().any(|r| r.2) && rows.iter().any(|r| !r.2));
    let last = evals.last().expect("evaluations");
    // The seeded circuit drops the pole after ~30 steps.
    assert!(
        last.eval.mean_return > 60.0 && last.score > 2.0 * rows[0].0,
        "no real improvement: {evals:?}"
    );
}

#[test]
fn the_same_seed_and_threads_give_the_same_bits() {
    let _serial = serial();
    let registry = wormnet_envs::registry();
    let run = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        let config = tw_cartpole(&[
            "search.iterations=60",
            "search.patience=10",
            "search.eval_every=0",
            "run.threads=2",
            seed,
        ]);
        search(config, dir.path(), &registry, |_| {}).expect("search");
        let tensors = std::fs::read(dir.path().join("latest-000060.safetensors")).unwrap();
        let scores: Vec<_> = tries(dir.path()).iter().map(|t| (t.1, t.2, t.3)).collect();
        (tensors, scores)
    };
    let (a, b, c) = (run("run.seed=3"), run("run.seed=3"), run("run.seed=4"));
    assert!(a.0 == b.0, "the checkpoints differ");
    assert_eq!(a.1, b.1);
    assert!(a.0 != c.0, "another seed searched the same way");
    assert!(
        a.1.iter().any(|t| t.2 > 4),
        "no widening in 60 tries: {:?}",
        a.1
    );
}

#[test]
fn a_search_run_is_evaluated_and_reported_beside_ppo_by_method() {
    let _serial = serial();
    let registry = wormnet_envs::registry();
    let runs = tempfile::tempdir().unwrap();
    let (s_dir, p_dir) = (runs.path().join("search"), runs.path().join("ppo"));
    let small = ["search.eval_every=20", "run.eval_episodes=4"];
    let config = tw_cartpole(&[&["search.iterations=40"], &small[..]].concat());
    search(config, &s_dir, &registry, |_| {}).expect("search");
    let ppo = tw_cartpole(&[&["run.total_steps=1024"], &small[..]].concat());
    let mut trainer = Trainer::create(ppo, &p_dir, &registry).expect("create");
    trainer.run(None, |_, _| {}).expect("train");

    let loaded = load_checkpoint(&s_dir, tch::Device::Cpu).expect("search run loads");
    let factory = registry
        .factory("cartpole", loaded.sidecar.config.eval_env_options())
        .unwrap();
    let mut options = EvalOptions::during_training(&loaded.sidecar.config);
    options.deterministic = true;
    let summary = evaluate(&loaded.policy, factory, &options).expect("eval");
    let sidecar = loaded
        .sidecar
        .eval
        .clone()
        .expect("best holds its evaluation");
    assert_eq!(
        summary.mean_return, sidecar.mean_return,
        "best reloads as saved"
    );

    let record = RunRecord::load(&s_dir).expect("record");
    assert_eq!(record.method, Method::Search(Some(StopReason::Iterations)));
    assert_eq!(record.unfinished(), None);
    assert_eq!(record.evals.len(), 2);
    let groups = group(vec![record, RunRecord::load(&p_dir).expect("ppo record")]);
    let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
    assert_eq!(groups.len(), 2, "{labels:?}");
    assert!(labels[0].contains("method=search"), "{labels:?}");
    assert!(labels[1].contains("method=ppo"), "{labels:?}");
    let row = summarize(&groups[0], None).expect("a row");
    assert!(row.final_success.is_some() && row.wall_seconds.is_some());
    let steps = std::fs::read_to_string(s_dir.join("search.csv")).unwrap();
    let steps: f64 = steps
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        row.env_steps, steps,
        "the report's env steps are the scorings'"
    );
    let ppo_row = summarize(&groups[1], None).expect("a row");
    assert_eq!(ppo_row.env_steps, 1024.0);
    let table = markdown(&[row, ppo_row], None, "success");
    assert!(table.contains("| env steps |"), "{table}");
}

#[test]
fn best_goes_by_fresh_episodes_that_confirm_an_evaluation() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = tw_cartpole(&[
        "search.iterations=100",
        "search.eval_every=20",
        "run.eval_episodes=4",
        "search.confirm_episodes=8",
        "run.threads=1",
    ]);
    let mut evals = Vec::new();
    search(config, dir.path(), &wormnet_envs::registry(), |p| {
        evals.push(p.clone())
    })
    .expect("search");
    assert_eq!(evals.len(), 5);
    // An evaluation is confirmed exactly when it is at least as good as the best so far (none
    // of these succeeds, so none could stop the run), and the best is the best confirmation.
    let mut best = None::<f64>;
    for p in &evals {
        let contends = best.is_none_or(|b| p.eval.mean_return >= b);
        assert_eq!(p.confirmation.is_some(), contends, "{p:?}");
        if let Some(c) = &p.confirmation {
            assert_eq!(c.episodes, 8);
            if best.is_none_or(|b| c.mean_return > b) {
                best = Some(c.mean_return);
            }
        }
    }
    let loaded = load_checkpoint(dir.path(), tch::Device::Cpu).expect("best loads");
    assert_eq!(loaded.sidecar.best_eval, best);
    assert_eq!(
        loaded.sidecar.eval.map(|e| e.episodes),
        Some(4),
        "best keeps its periodic evaluation, which reproduces"
    );
    // confirmations.csv has a line per confirmation; the last one taken as best is the best.
    let log = std::fs::read_to_string(dir.path().join(CONFIRM_LOG)).expect("the log");
    let rows: Vec<Vec<&str>> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let confirmed = evals.iter().filter(|p| p.confirmation.is_some()).count();
    assert_eq!(rows.len(), confirmed, "{log}");
    let taken = rows.iter().rfind(|r| r[8] == "1").expect("a best");
    assert_eq!(taken[6].parse::<f64>().ok(), best, "{log}");
    // A search recorded before confirmations existed is read as one without them.
    let record = RunRecord::load(dir.path()).expect("record");
    assert_eq!(record.config.search.confirm_episodes, 8);
    let path = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("confirm_episodes"))
        .collect();
    assert!(old.len() < text.lines().count());
    std::fs::write(&path, old.join("\n")).unwrap();
    let record = RunRecord::load(dir.path()).expect("record");
    assert_eq!(record.config.search.confirm_episodes, 0);
}

#[test]
fn ctrl_c_stops_a_search_with_latest_saved() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let config = tw_cartpole(&["search.eval_every=0"]);
    STOP.store(true, Ordering::SeqCst);
    let stop = search(config, dir.path(), &wormnet_envs::registry(), |_| {});
    STOP.store(false, Ordering::SeqCst);
    assert_eq!(stop.expect("search"), StopReason::Interrupted);
    assert!(load_checkpoint(dir.path(), tch::Device::Cpu).is_ok());
    let record_stop = wormnet_agent::search::stop_reason(dir.path());
    assert_eq!(record_stop, Some(StopReason::Interrupted));
}
