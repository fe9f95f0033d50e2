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
fn update_threads_are_one_or_two() {
    for bad in [0, 3] {
        let text = format!("{MINIMAL}\n[run]\nupdate_threads = {bad}\n");
        let e = TrainConfig::parse(&text, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run.update_threads") && e.contains("1 or 2"),
            "{e}"
        );
    }
    let text = format!("{MINIMAL}\n[run]\nupdate_threads = 1\n");
    assert_eq!(
        TrainConfig::parse(&text, Path::new("c.toml"))
            .unwrap()
            .run
            .update_threads,
        1
    );
    assert_eq!(
        TrainConfig::parse(MINIMAL, Path::new("c.toml"))
            .unwrap()
            .run
            .update_threads,
        2
    );
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
