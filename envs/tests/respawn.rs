//! Respawning the scene in the existing `App` at a reset (what the worm and the vehicle do)
//! gives the episodes a fresh `App` gives, bit for bit: observations, final observations and
//! rewards over many auto-resets.

use bevy::app::App;
use wormnet_envs::vehicle::{Observation, Vehicle, VehicleOptions};
use wormnet_envs::worm::{Worm, WormOptions};
use wormnet_sim::bevy_env::{BevyEnv, BevyEnvPlugin, PhysicsConfig};
use wormnet_sim::{Env, EnvSpec, EpisodeDriver};

/// `P` with a fresh `App` built at every reset, for comparison.
struct Rebuilt<P>(P);

impl<P: BevyEnvPlugin> BevyEnvPlugin for Rebuilt<P> {
    fn spec(&self) -> EnvSpec {
        self.0.spec()
    }
    fn physics(&self) -> PhysicsConfig {
        self.0.physics()
    }
    fn build(&self, app: &mut App) {
        self.0.build(app)
    }
}

/// Every observation, final observation and reward of `steps` auto-reset steps under a fixed
/// action pattern, as bits, and the number of episodes that ended.
fn episodes(env: Box<dyn Env>, steps: usize) -> (Vec<u32>, usize) {
    let spec = env.spec().clone();
    let (od, ad) = (spec.obs_dim(), spec.action_dim());
    let mut driver = EpisodeDriver::new(env, 0);
    let (mut obs, mut fin) = (vec![0.0; od], vec![0.0; od]);
    driver.reset(Some(5), &mut obs).unwrap();
    let mut out = obs.clone();
    let mut ended = 0;
    for t in 0..steps {
        let action: Vec<f32> = (0..ad).map(|j| ((t + 3 * j) as f32 * 0.3).sin()).collect();
        let step = driver.step_autoreset(&action, &mut obs, &mut fin).unwrap();
        out.extend_from_slice(&obs);
        out.extend_from_slice(&fin);
        out.push(step.step.reward);
        ended += usize::from(step.step.done());
    }
    (out.iter().map(|x| x.to_bits()).collect(), ended)
}

/// Runs `plugin` respawning in place and rebuilt, and compares.
fn assert_respawn_matches_rebuild<P: BevyEnvPlugin>(make: impl Fn() -> P, steps: usize) {
    assert!(make().respawns_in_place());
    let (a, ended) = episodes(Box::new(BevyEnv::new(make())), steps);
    let (b, _) = episodes(Box::new(BevyEnv::new(Rebuilt(make()))), steps);
    assert!(ended >= 5, "several episodes: {ended}");
    assert_eq!(a.len(), b.len());
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert_eq!(first, None, "first differing value at {first:?}");
}

#[test]
fn a_respawned_worm_swims_the_episodes_of_a_fresh_app() {
    let options = WormOptions {
        max_episode_steps: 40,
        goal_distance: 1.0,
        ..WormOptions::default()
    };
    assert_respawn_matches_rebuild(|| Worm::new(options.clone()).unwrap(), 300);
}

#[test]
fn a_respawned_car_drives_the_episodes_of_a_fresh_app() {
    for observation in [Observation::Rays, Observation::Camera] {
        let options = VehicleOptions {
            observation,
            camera_brightness: 0.1,
            camera_noise: 0.05,
            sensor_noise: 0.02,
            ..VehicleOptions::default()
        };
        // The action pattern weaves the car off the road within tens of steps.
        assert_respawn_matches_rebuild(|| Vehicle::new(options.clone()).unwrap(), 400);
    }
}
