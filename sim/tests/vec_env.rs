//! VecEnv behaviour: auto-reset, statistics, seeding and shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{factory, within, Walk, WalkOptions, BASE_SEED};
use proptest::prelude::*;
use wormnet_sim::{Env, EpisodeDriver, VecEnv, VecEnvConfig};

/// Everything a VecEnv step reports, for whole-trajectory comparisons.
#[derive(Debug, PartialEq)]
struct Record {
    obs: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
    finals: Vec<Option<Vec<f32>>>,
    episodes: Vec<(usize, f64, u32, bool)>,
}

fn run(
    options: &str,
    n: usize,
    w: usize,
    seed: u64,
    actions: &[Vec<f32>],
) -> (Vec<f32>, Vec<Record>) {
    let mut envs = VecEnv::new(factory(options), VecEnvConfig::new(n, w)).unwrap();
    let first = envs.reset(Some(seed)).unwrap().to_vec();
    let mut records = Vec::new();
    for a in actions {
        let out = envs.step(a).unwrap();
        records.push(Record {
            obs: out.obs.to_vec(),
            rewards: out.rewards.to_vec(),
            terminated: out.terminated.to_vec(),
            truncated: out.truncated.to_vec(),
            finals: (0..n)
                .map(|i| out.final_observation(i).map(|o| o.to_vec()))
                .collect(),
            episodes: out
                .episodes
                .iter()
                .map(|e| (e.env_index, e.episode_return, e.length, e.terminated))
                .collect(),
        });
    }
    (first, records)
}

fn actions_strategy() -> impl Strategy<Value = (usize, usize, u64, u32, Option<u32>, Vec<Vec<f32>>)>
{
    (
        1usize..6,
        1usize..4,
        any::<u64>(),
        1u32..8,
        prop::option::of(1u32..6),
        1usize..40,
    )
        .prop_flat_map(|(n, w, seed, max_len, limit, steps)| {
            let acts = proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, n), steps);
            (
                Just(n),
                Just(w),
                Just(seed),
                Just(max_len),
                Just(limit),
                acts,
            )
        })
}

fn options(max_len: u32, limit: Option<u32>) -> String {
    match limit {
        Some(l) => format!("max_length = {max_len}\ntime_limit = {l}"),
        None => format!("max_length = {max_len}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// The VecEnv equals N independent envs driven by hand with Gymnasium's SAME_STEP rule:
    /// a finished env's returned obs is the next episode's first (steps = 0), its final obs is
    /// kept, and episode return/length are the sums over the episode.
    #[test]
    fn autoreset_matches_independent_envs((n, w, seed, max_len, limit, actions) in actions_strategy()) {
        let opts = options(max_len, limit);
        let (first, records) = run(&opts, n, w, seed, &actions);
        let parsed: WalkOptions = toml::from_str(&opts).unwrap();
        for i in 0..n {
            let mut driver = EpisodeDriver::new(Box::new(Walk::new(parsed.clone(), None)), i);
            let mut obs = vec![0.0; 4];
            driver.reset(Some(seed.wrapping_add(i as u64)), &mut obs).unwrap();
            prop_assert_eq!(&first[i * 4..i * 4 + 4], &obs[..]);
            let (mut ret, mut len) = (0.0f64, 0u32);
            for (t, a) in actions.iter().enumerate() {
                let r = &records[t];
                let tr = driver.step(&a[i..i + 1], &mut obs).unwrap();
                ret += f64::from(tr.step.reward);
                len += 1;
                prop_assert_eq!(r.rewards[i], tr.step.reward);
                prop_assert_eq!(r.terminated[i], tr.step.terminated);
                prop_assert_eq!(r.truncated[i], tr.step.truncated);
                if let Some(l) = limit {
                    prop_assert_eq!(tr.step.truncated, len >= l);
                }
                let stats: Vec<_> = r.episodes.iter().filter(|e| e.0 == i).collect();
                if tr.step.done() {
                    prop_assert_eq!(r.finals[i].as_deref(), Some(&obs[..]));
                    prop_assert_eq!(stats.len(), 1);
                    prop_assert_eq!(stats[0].1, ret);
                    prop_assert_eq!(stats[0].2, len);
                    prop_assert_eq!(stats[0].3, tr.step.terminated);
                    prop_assert_eq!(obs[1] as u32, len);
                    driver.reset(None, &mut obs).unwrap();
                    // The returned observation starts the next episode.
                    prop_assert_eq!(obs[1], 0.0);
                    ret = 0.0;
                    len = 0;
                } else {
                    prop_assert!(r.finals[i].is_none());
                    prop_assert!(stats.is_empty());
                }
                prop_assert_eq!(&r.obs[i * 4..i * 4 + 4], &obs[..]);
            }
        }
    }

    /// Same seed ⇒ same trajectory whether 1 or 2 workers run the envs.
    #[test]
    fn seeding_is_independent_of_worker_count((n, _w, seed, max_len, limit, actions) in actions_strategy()) {
        let opts = options(max_len, limit);
        let flat: Vec<Vec<f32>> = actions.clone();
        let one = run(&opts, n, 1, seed, &flat);
        let two = run(&opts, n, 2, seed, &flat);
        prop_assert_eq!(one, two);
    }
}

#[test]
fn different_seeds_give_different_episodes() {
    let acts = vec![vec![0.1f32; 4]; 5];
    let a = run("max_length = 5", 4, 2, 1, &acts);
    let b = run("max_length = 5", 4, 2, 2, &acts);
    assert_ne!(a.0, b.0);
}

#[test]
fn reset_none_continues_each_envs_rng() {
    let mut envs = VecEnv::new(factory("max_length = 5"), VecEnvConfig::new(3, 2)).unwrap();
    let a = envs.reset(Some(7)).unwrap().to_vec();
    let b = envs.reset(None).unwrap().to_vec();
    assert_ne!(
        a, b,
        "reset(None) must continue the RNG, not repeat the seed"
    );
    let c = envs.reset(Some(7)).unwrap().to_vec();
    assert_eq!(a, c);
}

#[test]
fn shares_cover_all_envs_with_more_workers_than_envs() {
    let mut envs = VecEnv::new(factory("max_length = 3"), VecEnvConfig::new(3, 8)).unwrap();
    assert_eq!(envs.num_workers(), 3);
    envs.reset(Some(BASE_SEED)).unwrap();
    let out = envs.step(&[0.5, 0.5, 0.5]).unwrap();
    assert!(out.obs.chunks(4).all(|o| o[3] == 0.5 || o[1] == 0.0));
}

#[test]
fn drop_shuts_workers_down_and_drops_envs() {
    let live = Arc::new(AtomicUsize::new(0));
    let l = live.clone();
    within(10, move || {
        let mut envs = VecEnv::new(
            common::counted_factory("max_length = 4", l.clone()),
            VecEnvConfig::new(6, 2),
        )
        .unwrap();
        assert_eq!(l.load(Ordering::SeqCst), 6);
        envs.reset(Some(1)).unwrap();
        envs.step(&[0.0; 6]).unwrap();
        drop(envs);
    });
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "every env was dropped by its worker"
    );
}

#[test]
fn clipping_applies_only_inside_and_caller_keeps_raw_action() {
    let mut envs = VecEnv::new(
        factory("max_length = 100\nclip = true"),
        VecEnvConfig::new(2, 2),
    )
    .unwrap();
    envs.reset(Some(3)).unwrap();
    let actions = vec![5.0f32, -0.25];
    let out = envs.step(&actions).unwrap();
    assert_eq!(out.obs[3], 1.0, "env saw the clipped action");
    assert_eq!(out.obs[7], -0.25);
    assert_eq!(actions, vec![5.0, -0.25], "caller's buffer untouched");
}

#[test]
fn step_view_accessors_agree_with_buffers() {
    let mut envs = VecEnv::new(factory("max_length = 1"), VecEnvConfig::new(2, 1)).unwrap();
    envs.reset(Some(1)).unwrap();
    let out = envs.step(&[0.3, -0.3]).unwrap();
    // max_length 1: every env finishes every step.
    assert!(out.done(0) && out.done(1));
    assert_eq!(out.final_observation(1).unwrap()[3], -0.3);
    assert_eq!(out.episodes.len(), 2);
    let w = Walk::new(WalkOptions::default(), None);
    assert_eq!(w.spec().obs_dim(), envs.obs_dim());
}

#[test]
fn vec_env_and_factories_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<VecEnv>();
    assert_send_sync::<wormnet_sim::EnvFactory>();
    assert_send_sync::<VecEnvConfig>();
}
