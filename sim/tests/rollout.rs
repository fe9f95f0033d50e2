//! Rollout files round-trip, keep raw actions and internals, and reject other versions.

mod common;

use common::{Walk, WalkOptions};
use wormnet_sim::rollout::{Decision, Rollout, RolloutError};

fn record() -> Rollout {
    let options = WalkOptions {
        max_length: 6,
        time_limit: Some(4),
        clip: true,
        ..WalkOptions::default()
    };
    let mut t = 0.0f32;
    Rollout::record(
        Box::new(Walk::new(options, None)),
        toml::Table::new(),
        11,
        100,
        |obs| {
            t += 1.0;
            Decision {
                action: vec![2.0 * obs[0].signum()],
                internals: Some(vec![t, -t]),
            }
        },
    )
    .unwrap()
}

#[test]
fn rollout_round_trips_through_a_file() {
    let rollout = record();
    assert!(!rollout.steps.is_empty() && rollout.steps.len() <= 4);
    let last = rollout.steps.last().unwrap();
    assert!(last.terminated || last.truncated);
    // Raw (unclipped) action recorded; the env saw the clipped one (obs[3]).
    assert_eq!(rollout.steps[0].action[0].abs(), 2.0);
    assert_eq!(rollout.steps[0].observation[3].abs(), 1.0);
    assert_eq!(rollout.steps[1].internals, Some(vec![2.0, -2.0]));

    let dir = std::env::temp_dir().join(format!("wormnet-rollout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("episode.json");
    rollout.save(&path).unwrap();
    let back = Rollout::load(&path).unwrap();
    assert_eq!(back, rollout);
    // Infinite observation bounds survive JSON.
    assert!(matches!(&back.spec.observation_space,
        wormnet_sim::Space::Box { high, .. } if high[0] == f32::INFINITY));

    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"format_version\":1", "\"format_version\":99");
    std::fs::write(&path, text).unwrap();
    let err = Rollout::load(&path).unwrap_err();
    assert!(
        matches!(err, RolloutError::Version { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("episode.json"));
    // A step cut short (an edited file) is refused when read, not indexed out of bounds later.
    let mut short = rollout.clone();
    short.steps[0].observation.pop();
    short.save(&path).unwrap();
    let err = Rollout::load(&path).unwrap_err();
    assert!(
        matches!(err, RolloutError::Inconsistent { .. }) && err.to_string().contains("step 0"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn same_seed_records_the_same_episode() {
    assert_eq!(record(), record());
}
