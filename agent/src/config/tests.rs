//! The config file's parsing and validation: defaults, typos and ranges named by field and file.

use super::*;

const MINIMAL: &str = r#"
[env]
name = "cartpole"
[policy.actor]
cell = "cfc"
wiring = { kind = "auto_ncp", units = 8, output_size = 2 }
"#;

#[test]
fn minimal_config_gets_defaults_and_round_trips() {
    let c = TrainConfig::parse(MINIMAL, Path::new("x.toml")).unwrap();
    assert_eq!(c.env.num_envs, 8);
    assert_eq!(c.run.seed, 1);
    let again = TrainConfig::parse(&c.to_toml(), Path::new("resolved.toml")).unwrap();
    assert_eq!(again, c);
}

#[test]
fn unknown_field_names_field_and_file() {
    let text = format!("{MINIMAL}\n[ppo]\nlearning_rat = 1e-3\n");
    let e = TrainConfig::parse(&text, Path::new("configs/typo.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("configs/typo.toml") && e.contains("learning_rat"),
        "{e}"
    );
}

#[test]
fn ill_typed_field_is_named() {
    let text = format!("{MINIMAL}\n[run]\ntotal_steps = \"lots\"\n");
    let e = TrainConfig::parse(&text, Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("total_steps"), "{e}");
}

fn set(s: &str) -> Override {
    s.parse().unwrap()
}

#[test]
fn overrides_set_nested_values_and_are_validated_like_the_file() {
    let o = [
        set("ppo.learning_rate=1e-3"),
        set("policy.actor.cell=cfc"),
        set("policy.critic.hidden=[32]"),
        set("run.eval_deterministic = true"),
    ];
    let c = TrainConfig::parse_with(MINIMAL, Path::new("x.toml"), &o).unwrap();
    assert_eq!(c.ppo.learning_rate, 1e-3);
    assert_eq!(c.policy.critic.hidden, vec![32]);
    assert!(c.run.eval_deterministic);
    for (bad, named) in [
        ("ppo.learning_rat=1e-3", "learning_rat"),
        ("polcy.actor.cell=ltc", "polcy"),
        ("policy.actor.cell=gru2", "gru2"),
        ("run.total_steps=lots", "total_steps"),
    ] {
        let e = TrainConfig::parse_with(MINIMAL, Path::new("x.toml"), &[set(bad)])
            .unwrap_err()
            .to_string();
        assert!(e.contains(named) && e.contains("x.toml"), "{bad}: {e}");
    }
    let e = TrainConfig::parse_with(MINIMAL, Path::new("x.toml"), &[set("env.name.x=1")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`env.name` is a value"), "{e}");
    let e = TrainConfig::parse_with(MINIMAL, Path::new("x.toml"), &[set("ppo.minibatches=3")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("ppo.minibatches"), "{e}");
    assert!("no_equals".parse::<Override>().is_err());
    assert!("a..b=1".parse::<Override>().is_err());
}

#[test]
fn invalid_minibatches_name_the_ppo_field() {
    let text = format!("{MINIMAL}\n[ppo]\nminibatches = 3\n");
    let e = TrainConfig::parse(&text, Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ppo.minibatches"), "{e}");
}

#[test]
fn threads_default_to_the_machine_and_update_threads_is_named_as_replaced() {
    let c = TrainConfig::parse(MINIMAL, Path::new("c.toml")).unwrap();
    assert_eq!((c.run.threads, c.env.workers), (None, None));
    let text = format!("{MINIMAL}\n[run]\nthreads = 3\n");
    let c = TrainConfig::parse(&text, Path::new("c.toml")).unwrap();
    assert_eq!(c.run.threads, Some(3));
    // Written back as given, so a run's config says how many threads made its bits.
    assert!(toml::to_string(&c).unwrap().contains("threads = 3"));
    for (text, field) in [
        (
            format!("{MINIMAL}\n[run]\nupdate_threads = 2\n"),
            "run.update_threads",
        ),
        (format!("{MINIMAL}\n[run]\nthreads = 0\n"), "run.threads"),
    ] {
        let e = TrainConfig::parse(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
    let e = TrainConfig::parse(
        &format!("{MINIMAL}\n[run]\nupdate_threads = 2\n"),
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("replaced by run.threads"), "{e}");
}

/// A person's config that sets a retired key is refused, naming it and its replacement; a run's
/// record of the same key (every run before it was retired wrote it) reads as if it were absent.
#[test]
fn retired_keys_are_refused_in_a_config_and_dropped_from_a_runs_record() {
    let old = format!("{MINIMAL}\n[run]\nupdate_threads = 2\n[ppo]\nlog_std_init = 0.0\n");
    let e = TrainConfig::parse(
        &format!("{MINIMAL}\n[ppo]\nlog_std_init = -0.5\n"),
        Path::new("c.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("ppo.log_std_init") && e.contains("policy.log_std_init"),
        "{e}"
    );
    assert!(TrainConfig::parse(&old, Path::new("c.toml")).is_err());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("config.toml");
    std::fs::write(&record, &old).unwrap();
    let read = TrainConfig::load_record(&record).unwrap();
    assert_eq!(
        read,
        TrainConfig::parse(MINIMAL, Path::new("c.toml")).unwrap()
    );
    // The same for a checkpoint's copy of the config (read with serde, then forgotten).
    let mut from_json: TrainConfig = serde_json::from_value(serde_json::json!({
        "env": {"name": "cartpole"},
        "policy": {"actor": {"cell": "cfc", "wiring": {"kind": "auto_ncp", "units": 8, "output_size": 2}}},
        "run": {"update_threads": 2},
        "ppo": {"log_std_init": 0.0},
    }))
    .unwrap();
    assert!(from_json.validate(Path::new("best.json")).is_err());
    from_json.forget_retired();
    assert_eq!(from_json, read);
    // A record still names what is wrong in it.
    std::fs::write(&record, format!("{old}seed = -1\n")).unwrap();
    let e = TrainConfig::load_record(&record).unwrap_err().to_string();
    assert!(e.contains("config.toml"), "{e}");
}

#[test]
fn envs_per_app_defaults_to_one_and_zero_is_named() {
    let c = TrainConfig::parse(MINIMAL, Path::new("c.toml")).unwrap();
    assert_eq!(c.env.envs_per_app, 1);
    let text = MINIMAL.replace("[env]\n", "[env]\nenvs_per_app = 0\n");
    assert_ne!(text, MINIMAL);
    let e = TrainConfig::parse(&text, Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("env.envs_per_app") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn absurd_sizes_are_named_before_anything_allocates() {
    for (bad, named) in [
        ("env.num_envs=100000000", "env.num_envs"),
        ("env.workers=5000", "env.workers"),
        (
            "policy.critic.hidden=[100000, 100000]",
            "policy.critic.hidden",
        ),
        ("run.eval_episodes=1000000000000", "run.eval_episodes"),
        ("run.total_steps=10000000000000000", "run.total_steps"),
        (
            "policy.actor.ode_unfolds=100000000",
            "policy.actor.ode_unfolds",
        ),
        ("ppo.steps_per_rollout=10000000", "ppo.steps_per_rollout"),
        ("ppo.obs_clip=-1", "ppo.obs_clip"),
        ("ppo.reward_clip=nan", "ppo.reward_clip"),
        ("policy.log_std_init=1e30", "policy.log_std_init"),
        ("run.name=\"../../x\"", "run.name"),
        ("run.name=\"/tmp/x\"", "run.name"),
    ] {
        let e = TrainConfig::parse_with(MINIMAL, Path::new("x.toml"), &[set(bad)])
            .unwrap_err()
            .to_string();
        assert!(e.contains(named) && e.contains("x.toml"), "{bad}: {e}");
    }
    let wide_lstm = "[env]\nname = \"cartpole\"\n[policy.actor]\ncell = \"lstm\"\nunits = 100000\n";
    let e = TrainConfig::parse(wide_lstm, Path::new("x.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("policy.actor.units"), "{e}");
}

#[test]
fn a_number_too_big_for_64_bits_is_called_a_number() {
    let e = "run.total_steps=99999999999999999999"
        .parse::<Override>()
        .unwrap_err();
    assert!(
        e.contains("64 bits") && e.contains("run.total_steps"),
        "{e}"
    );
    // Words stay strings, also those TOML refuses as numbers.
    assert_eq!(
        set("run.device=cuda").value,
        toml::Value::String("cuda".into())
    );
    assert_eq!(set("run.name=007").value, toml::Value::String("007".into()));
}

#[test]
fn search_fields_are_checked_by_name() {
    for (set, field) in [
        ("[search]\nworst = 20\nepisodes = 16", "search.worst"),
        ("[search]\nstep = 0.0", "search.step"),
        ("[search]\niterations = 0", "search.iterations"),
        ("[search]\nminutes = -1.0", "search.minutes"),
        ("[search]\nstop_at_success = 1.5", "search.stop_at_success"),
        ("[search]\nepisodes = 1000000000000", "search.episodes"),
    ] {
        let e = TrainConfig::parse(&format!("{MINIMAL}\n{set}\n"), Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && !e.contains('\n'), "{set}: {e}");
    }
    let c = TrainConfig::parse(MINIMAL, Path::new("c.toml")).unwrap();
    assert_eq!((c.search.episodes, c.search.worst), (16, 8));
}
