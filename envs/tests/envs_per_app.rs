//! K envs in one Bevy `App` (`env.envs_per_app`, one world each) give the episodes of one env
//! per `App`, bit for bit, and one env's panic leaves its neighbours in the `App` running.

use bevy::app::{App, Update};
use bevy::ecs::prelude::*;
use wormnet_envs::{vehicle, worm};
use wormnet_sim::bevy_env::{BevyEnv, BevyEnvPlugin, EnvAction, EnvSystems, PhysicsConfig};
use wormnet_sim::rand::SeedableRng;
use wormnet_sim::rand_chacha::ChaCha8Rng;
use wormnet_sim::{Env, EnvSpec, EpisodeDriver, FaultKind, VecEnv, VecEnvConfig};

fn table(text: &str) -> toml::Table {
    toml::from_str(text).unwrap()
}

/// Every observation, final observation of a finished env, reward and flag of `steps` VecEnv
/// steps under seeded random actions, as bits, and the number of episodes that ended.
fn run(env: &str, options: &str, workers: usize, envs_per_app: usize) -> (Vec<u32>, usize) {
    const N: usize = 5;
    let factory = wormnet_envs::registry()
        .factory(env, table(options))
        .unwrap();
    let mut config = VecEnvConfig::new(N, workers);
    config.envs_per_app = envs_per_app;
    let mut envs = VecEnv::new(factory, config).unwrap();
    let space = envs.spec().action_space.clone();
    let ad = envs.action_dim();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut actions = vec![0.0f32; N * ad];
    let mut out: Vec<u32> = envs
        .reset(Some(17))
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect();
    let mut ended = 0;
    for _ in 0..300 {
        for row in actions.chunks_mut(ad) {
            space.sample(&mut rng, row);
        }
        let step = envs.step(&actions).unwrap();
        out.extend(step.obs.iter().map(|x| x.to_bits()));
        out.extend(step.rewards.iter().map(|x| x.to_bits()));
        for i in 0..N {
            out.push(u32::from(step.terminated[i]) | u32::from(step.truncated[i]) << 1);
            if let Some(last) = step.final_observation(i) {
                out.extend(last.iter().map(|x| x.to_bits()));
            }
        }
        ended += step.episodes.len();
    }
    (out, ended)
}

fn assert_same_whatever_k(env: &str, options: &str) {
    let (one, ended) = run(env, options, 1, 1);
    assert!(ended >= 5, "{env}: episodes end and envs respawn: {ended}");
    // K = 2 on one worker: groups of 2, 2, 1; on two workers (shares of 2 and 3): 2 | 2, 1.
    for (workers, k) in [(1, 2), (1, 5), (2, 2), (2, 4)] {
        let (grouped, _) = run(env, options, workers, k);
        assert_eq!(
            grouped.len(),
            one.len(),
            "{env}, {workers} workers, K = {k}"
        );
        let first = grouped.iter().zip(&one).position(|(a, b)| a != b);
        assert_eq!(
            first, None,
            "{env}, {workers} workers, K = {k}: first differing value at {first:?}"
        );
    }
}

#[test]
fn worms_in_one_app_swim_the_episodes_of_an_app_each() {
    assert_same_whatever_k("worm", "max_episode_steps = 40");
}

#[test]
fn cars_in_one_app_drive_the_episodes_of_an_app_each() {
    assert_same_whatever_k("vehicle", "sensor_noise = 0.02");
}

#[test]
fn envs_that_are_not_bevy_envs_ignore_envs_per_app() {
    assert_same_whatever_k("cartpole", "");
}

/// `P`, whose act system panics on an action of exactly 1 (one that random actions never draw).
struct PanicsOnOne<P>(P);

impl<P: BevyEnvPlugin> BevyEnvPlugin for PanicsOnOne<P> {
    fn spec(&self) -> EnvSpec {
        self.0.spec()
    }
    fn physics(&self) -> PhysicsConfig {
        self.0.physics()
    }
    fn build(&self, app: &mut App) {
        self.0.build(app);
        app.add_systems(
            Update,
            (|action: Res<EnvAction>| {
                if action.0[0] == 1.0 {
                    panic!("told to panic");
                }
            })
            .in_set(EnvSystems::Act),
        );
    }
    fn respawns_in_place(&self) -> bool {
        self.0.respawns_in_place()
    }
}

/// Steps each driver in turn with a sine pattern (env 1 gets a 1.0 at step `panic_at`) and
/// records each driver's observations and rewards, as bits, until it faults.
fn interleaved(mut drivers: Vec<EpisodeDriver>, panic_at: usize) -> Vec<Vec<u32>> {
    let od = drivers[0].spec().obs_dim();
    let ad = drivers[0].spec().action_dim();
    let (mut obs, mut last) = (vec![0.0; od], vec![0.0; od]);
    let mut out = vec![Vec::new(); drivers.len()];
    for (i, driver) in drivers.iter_mut().enumerate() {
        driver.reset(Some(40 + i as u64), &mut obs).unwrap();
        out[i].extend(obs.iter().map(|x| x.to_bits()));
    }
    let mut broken = vec![false; drivers.len()];
    for t in 0..200 {
        for (i, driver) in drivers.iter_mut().enumerate() {
            if broken[i] {
                continue;
            }
            let mut action: Vec<f32> = (0..ad)
                .map(|j| ((t + 3 * j + i) as f32 * 0.3).sin() * 0.9)
                .collect();
            if i == 1 && t == panic_at {
                action[0] = 1.0;
            }
            match driver.step_autoreset(&action, &mut obs, &mut last) {
                Ok(step) => {
                    out[i].extend(obs.iter().map(|x| x.to_bits()));
                    out[i].push(step.step.reward.to_bits());
                }
                Err(fault) => {
                    assert!(matches!(fault.kind, FaultKind::Panicked { .. }), "{fault}");
                    broken[i] = true;
                }
            }
        }
    }
    out
}

/// Three envs of `make` in one `App` step as three `App`s do, and when the middle one panics
/// mid-run the other two go on exactly as they would have.
fn assert_grouped_and_isolated<P: BevyEnvPlugin>(make: impl Fn() -> P) {
    let group = BevyEnv::group((0..3).map(|_| PanicsOnOne(make())));
    assert_eq!(group[0].envs_in_app(), 3);
    let drivers = |envs: Vec<Box<dyn Env>>| {
        envs.into_iter()
            .enumerate()
            .map(|(i, env)| EpisodeDriver::new(env, i))
            .collect::<Vec<_>>()
    };
    let boxed = |envs: Vec<BevyEnv<PanicsOnOne<P>>>| {
        envs.into_iter()
            .map(|env| Box::new(env) as Box<dyn Env>)
            .collect::<Vec<_>>()
    };
    let grouped = interleaved(drivers(boxed(group)), 120);
    let alone: Vec<Box<dyn Env>> = (0..3)
        .map(|_| Box::new(BevyEnv::new(PanicsOnOne(make()))) as Box<dyn Env>)
        .collect();
    let separate = interleaved(drivers(alone), 120);
    assert_eq!(grouped, separate);
    // The panicking env stopped at step 120; its neighbours ran all 200 steps.
    let per_step = make().spec().obs_dim() + 1;
    assert!(grouped[1].len() < grouped[0].len());
    assert_eq!(grouped[0].len(), grouped[2].len());
    assert_eq!(grouped[0].len(), make().spec().obs_dim() + 200 * per_step);
}

#[test]
fn a_panicking_worm_leaves_the_worms_in_its_app_swimming() {
    assert_grouped_and_isolated(|| worm::plugin(&table("max_episode_steps = 30")).unwrap());
}

#[test]
fn a_panicking_car_leaves_the_cars_in_its_app_driving() {
    assert_grouped_and_isolated(|| vehicle::plugin(&toml::Table::new()).unwrap());
}

#[test]
fn the_registry_puts_a_bevy_envs_group_in_one_app() {
    let registry = wormnet_envs::registry();
    let worms = registry.factory("worm", toml::Table::new()).unwrap();
    assert!(worms.shares_apps());
    assert_eq!(worms.build_group(4).unwrap().len(), 4);
    let poles = registry.factory("cartpole", toml::Table::new()).unwrap();
    assert!(!poles.shares_apps());
    assert_eq!(poles.build_group(3).unwrap().len(), 3);
    // A group is built by the plugin's constructor: bad options fail the group, named.
    let bad = registry.factory("worm", table("segments = 0")).unwrap();
    let e = bad.build_group(2).err().expect("bad options").to_string();
    assert!(e.contains("worm") && e.contains("segments"), "{e}");
}
