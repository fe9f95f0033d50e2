//! Seeded fuzzing of everything a user hands wormnet: the shipped configs with one value
//! mutated, `--set` overrides with hostile values, and checkpoint sidecars with one field
//! tampered. Each case must end in a named error or a run that makes sense — never a panic,
//! never a directory left behind by a start that failed, never an absurd value accepted.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use wormnet_agent::checkpoint::load_checkpoint;
use wormnet_agent::compare::runs::flatten;
use wormnet_agent::config::{Override, TrainConfig};
use wormnet_agent::train::Trainer;
use wormnet_sim::rand::{Rng, SeedableRng};
use wormnet_sim::rand_chacha::ChaCha8Rng;
use wormnet_sim::Registry;

const CONFIGS: [&str; 4] = ["cartpole", "pendulum", "vehicle", "worm"];

/// Values that have broken parsers before: out of range, of the wrong type, too big, hostile.
const HOSTILE: [&str; 24] = [
    "0",
    "-1",
    "1e30",
    "-1e30",
    "1e-9",
    "nan",
    "inf",
    "-inf",
    "100000000",
    "9223372036854775807",
    "4294967296",
    "0.5",
    "true",
    "\"\"",
    "\"../../x\"",
    "\"/tmp/x\"",
    "\"<img src=x onerror=alert(1)>\"",
    "\"{{data}}\"",
    "[]",
    "[100000, 100000]",
    "[1e-9, 1e-9]",
    "[-1, 1e30]",
    "{ kind = \"fully_connected\", units = 100000 }",
    "{}",
];

/// Keys whose mutation would start minutes of work instead of testing input (cloning an
/// expert before PPO): left alone.
const NOT_MUTATED: [&str; 1] = ["imitation.before_ppo"];

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn hostile_value(rng: &mut ChaCha8Rng) -> &'static str {
    HOSTILE[rng.random_range(0..HOSTILE.len())]
}

/// One fuzz case's verdict: a named error, or an accepted config that passes [`sane`] and
/// whose run starts — and a start that fails leaves no directory.
fn judge(
    case: &str,
    parsed: std::thread::Result<Result<TrainConfig, impl std::fmt::Display>>,
    registry: &Registry,
    run_dir: &Path,
) -> bool {
    let config = match parsed {
        Err(_) => panic!("{case}: parsing panicked"),
        Ok(Err(e)) => {
            let text = e.to_string();
            assert!(
                !text.trim().is_empty() && !text.contains('\n'),
                "{case}: {text}"
            );
            return false;
        }
        Ok(Ok(config)) => config,
    };
    let started = catch_unwind(AssertUnwindSafe(|| {
        Trainer::create(config.clone(), run_dir, registry)
    }));
    match started {
        Err(_) => panic!("{case}: starting the run panicked"),
        Ok(Err(e)) => {
            assert!(
                !run_dir.exists(),
                "{case}: a failed start ({e:#}) left {}",
                run_dir.display()
            );
        }
        Ok(Ok(trainer)) => {
            drop(trainer);
            std::fs::remove_dir_all(run_dir).unwrap();
            // The run started: its env took the options, and they must make sense.
            sane(case, &config, registry);
        }
    }
    true
}

/// An accepted config holds no absurd value ([`sane_numbers`]), and a few random steps of its
/// env give finite observations and rewards of a sensible size.
fn sane(case: &str, config: &TrainConfig, registry: &Registry) {
    sane_numbers(case, config);
    let mut env = registry
        .make(&config.env.name, &config.env.options)
        .unwrap_or_else(|e| panic!("{case}: accepted options the env refuses: {e}"));
    let spec = env.spec().clone();
    let mut obs = vec![0.0; spec.obs_dim()];
    let mut action = vec![0.0; spec.action_dim()];
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    env.reset(Some(1), &mut obs);
    for _ in 0..30 {
        spec.action_space.sample(&mut rng, &mut action);
        let step = env.step(&action, &mut obs);
        assert!(
            step.reward.is_finite() && step.reward.abs() < 1e6,
            "{case}: reward {}",
            step.reward
        );
        assert!(
            obs.iter().all(|x| x.is_finite()),
            "{case}: observation {obs:?}"
        );
        if step.done() {
            env.reset(None, &mut obs);
        }
    }
}

/// Every number of an accepted config is finite and below 1e12 (seeds apart).
fn sane_numbers(case: &str, config: &TrainConfig) {
    let value = toml::Value::try_from(config).unwrap();
    let mut numbers = Vec::new();
    collect_numbers(&value, "", &mut numbers);
    for (key, x) in numbers {
        if key.contains("seed") {
            continue;
        }
        assert!(
            x.is_finite() && x.abs() <= 1e12,
            "{case}: accepted {key} = {x}"
        );
    }
}

fn collect_numbers(v: &toml::Value, key: &str, out: &mut Vec<(String, f64)>) {
    match v {
        toml::Value::Integer(i) => out.push((key.to_string(), *i as f64)),
        toml::Value::Float(f) => out.push((key.to_string(), *f)),
        toml::Value::Array(a) => a.iter().for_each(|x| collect_numbers(x, key, out)),
        toml::Value::Table(t) => {
            for (k, x) in t {
                collect_numbers(x, &format!("{key}.{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn mutated_configs_and_overrides_are_named_errors_or_sane_runs() {
    let registry = wormnet_envs::registry();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(27);
    let (mut cases, mut accepted) = (0, 0);
    for round in 0..45 {
        let name = CONFIGS[round % CONFIGS.len()];
        let path = configs_dir().join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let table: toml::Table = toml::from_str(&text).unwrap();
        // Every leaf of the config as a dotted key (the sweep's config comparison has them).
        let mut keys: Vec<String> = flatten(&text).into_keys().collect();
        keys.retain(|k| !NOT_MUTATED.contains(&k.as_str()));
        for kind in ["file", "set", "new key"] {
            let key = match kind {
                "new key" => format!("{}.extra_{round}", keys[rng.random_range(0..keys.len())]),
                _ => keys[rng.random_range(0..keys.len())].clone(),
            };
            let value = hostile_value(&mut rng);
            let case = format!("{name}: {kind} {key} = {value}");
            let run_dir = tmp.path().join(format!("run-{cases}"));
            cases += 1;
            let parsed = catch_unwind(AssertUnwindSafe(|| -> Result<TrainConfig, String> {
                let o: Override = format!("{key}={value}").parse()?;
                if kind == "set" {
                    return TrainConfig::parse_with(&text, &path, &[o]).map_err(|e| e.to_string());
                }
                // The mutation written into the file itself.
                let mut t = table.clone();
                o.apply(&mut t)?;
                TrainConfig::parse(&toml::to_string(&t).map_err(|e| e.to_string())?, &path)
                    .map_err(|e| e.to_string())
            }));
            accepted += usize::from(judge(&case, parsed, &registry, &run_dir));
        }
    }
    assert!(cases >= 135, "{cases} cases");
    // Most mutations are refused; some (a seed, a harmless count) must still be accepted, or
    // the test would not reach the run start.
    assert!(
        accepted > 0 && accepted < cases,
        "{accepted} of {cases} accepted"
    );
}

/// A tiny trained run whose `latest` checkpoint the sidecar cases tamper with.
fn trained_run(dir: &Path, registry: &Registry) -> PathBuf {
    let path = configs_dir().join("cartpole.toml");
    let overrides: Vec<Override> = [
        "env.num_envs=2",
        "env.workers=1",
        "ppo.steps_per_rollout=16",
        "ppo.minibatches=1",
        "ppo.epochs=1",
        "run.total_steps=64",
        "run.eval_every=0",
        "run.eval_episodes=1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let config = TrainConfig::load_with(&path, &overrides).unwrap();
    let run = dir.join("trained");
    let mut trainer = Trainer::create(config, &run, registry).unwrap();
    trainer.run(None, |_, _| {}).unwrap();
    run
}

/// Every leaf of a JSON value as a path of keys and indices.
fn json_leaves(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let mut p = at.clone();
                p.push(k.clone());
                json_leaves(x, p, out);
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate().take(3) {
                let mut p = at.clone();
                p.push(i.to_string());
                json_leaves(x, p, out);
            }
            out.push(at); // the array itself: shortened or replaced
        }
        _ => out.push(at),
    }
}

fn json_at<'a>(v: &'a mut serde_json::Value, path: &[String]) -> &'a mut serde_json::Value {
    path.iter().fold(v, |v, k| match v {
        serde_json::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => &mut v[k.as_str()],
    })
}

const HOSTILE_JSON: [&str; 14] = [
    "-1",
    "0",
    "1e300",
    "-1e300",
    "18446744073709551615",
    "0.5",
    "\"x\"",
    "\"../../../etc/passwd\"",
    "\"<script>alert(1)</script>\"",
    "true",
    "null",
    "[]",
    "[1.0]",
    "[100000, 100000]",
];

#[test]
fn tampered_sidecars_are_named_errors_or_consistent_policies() {
    let registry = wormnet_envs::registry();
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_run(tmp.path(), &registry);
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("latest.json")).unwrap()).unwrap();
    let mut paths = Vec::new();
    json_leaves(&original, Vec::new(), &mut paths);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut refused = 0;
    let cases = 90;
    for case in 0..cases {
        let path = &paths[rng.random_range(0..paths.len())];
        let value = HOSTILE_JSON[rng.random_range(0..HOSTILE_JSON.len())];
        let mut tampered = original.clone();
        *json_at(&mut tampered, path) = serde_json::from_str(value).unwrap();
        let what = format!("case {case}: {} = {value}", path.join("."));
        std::fs::write(run.join("latest.json"), tampered.to_string()).unwrap();
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            load_checkpoint(&run.join("latest.json"), tch::Device::Cpu)
        }))
        .unwrap_or_else(|_| panic!("{what}: loading panicked"));
        let resumed = catch_unwind(AssertUnwindSafe(|| Trainer::resume(&run, None, &registry)))
            .unwrap_or_else(|_| panic!("{what}: resuming panicked"));
        for e in [loaded.as_ref().err(), resumed.as_ref().err()]
            .into_iter()
            .flatten()
        {
            let text = format!("{e:#}");
            assert!(!text.contains('\n'), "{what}: {text}");
        }
        if let Ok(loaded) = &loaded {
            let s = &loaded.sidecar;
            if let Some(norm) = &s.obs_norm {
                assert_eq!(norm.stats.mean.len(), s.env_spec.obs_dim(), "{what}");
                assert!(norm.clip > 0.0, "{what}");
            }
            sane_numbers(&what, &s.config);
        }
        match (&loaded, resumed) {
            // A run that resumes builds its envs: the options must make sense too.
            (Ok(loaded), Ok(trainer)) => {
                drop(trainer);
                sane(&what, &loaded.sidecar.config, &registry);
            }
            (Err(_), Ok(_)) => panic!("{what}: resumed from a sidecar that does not load"),
            (Err(_), Err(_)) => refused += 1,
            (Ok(_), Err(_)) => {}
        }
    }
    assert!(
        refused > cases / 3,
        "only {refused} of {cases} tampered sidecars refused"
    );
}

#[test]
fn a_checkpoint_replaced_while_it_is_read_is_read_again() {
    let registry = wormnet_envs::registry();
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_run(tmp.path(), &registry);
    let latest = run.join("latest.json");
    let mut sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    let current = run.join(sidecar["tensors"].as_str().unwrap());
    // What a reader meets mid-save: the sidecar it read names tensors already deleted; the
    // trainer's next sidecar, naming the new file, lands a moment later.
    sidecar["tensors"] = "latest-999998.safetensors".into();
    std::fs::write(&latest, sidecar.to_string()).unwrap();
    let writer = {
        let (latest, current, mut sidecar) = (latest.clone(), current.clone(), sidecar.clone());
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            let renamed = current.with_file_name("latest-999999.safetensors");
            std::fs::rename(&current, &renamed).unwrap();
            sidecar["tensors"] = "latest-999999.safetensors".into();
            let tmp = latest.with_extension("json.tmp-1");
            std::fs::write(&tmp, sidecar.to_string()).unwrap();
            std::fs::rename(&tmp, &latest).unwrap();
        })
    };
    let loaded = load_checkpoint(&latest, tch::Device::Cpu);
    writer.join().unwrap();
    let loaded = loaded.unwrap_or_else(|e| panic!("not read again: {e:#}"));
    assert_eq!(loaded.sidecar.tensors, "latest-999999.safetensors");
}
