//! Pendulum-v1 with Gymnasium's exact dynamics and mixed float32/float64 arithmetic, plus a
//! `no_velocity` variant for recurrent policies.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::f64::consts::PI;
use wormnet_sim::frame::{Geometry, Overlay, Pose, Rgba, Shape};
use wormnet_sim::{parse_options, Env, EnvError, EnvSpec, Frame, Space, Step};

/// Registry name.
pub const NAME: &str = "pendulum";

const MAX_SPEED: f64 = 8.0;
const MAX_TORQUE: f32 = 2.0;
const DT: f64 = 0.05;
const G: f64 = 10.0;
const M: f64 = 1.0;
const L: f64 = 1.0;

/// Options accepted in the env's TOML table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PendulumOptions {
    /// Hide the angular velocity (observation = cos θ, sin θ).
    pub no_velocity: bool,
}

/// Swing-up of an inverted pendulum (Gymnasium Pendulum-v1: 200-step limit, never terminates,
/// reward −(θ² + 0.1 θ̇² + 0.001 u²)). The torque is clipped to [−2, 2] as Gymnasium does inside
/// `step`, so the spec sets `clip_actions`.
pub struct Pendulum {
    spec: EnvSpec,
    options: PendulumOptions,
    /// `[theta, theta_dot]`, float64 like Gymnasium.
    state: [f64; 2],
    rng: ChaCha8Rng,
    last_torque: f32,
    steps: u32,
}

fn angle_normalize(x: f64) -> f64 {
    // Python's `%` with a positive divisor is `rem_euclid`.
    (x + PI).rem_euclid(2.0 * PI) - PI
}

impl Pendulum {
    /// A pendulum with the given options.
    pub fn new(options: PendulumOptions) -> Self {
        let (low, high, names): (Vec<f32>, Vec<f32>, Vec<&str>) = if options.no_velocity {
            (
                vec![-1.0, -1.0],
                vec![1.0, 1.0],
                vec!["cos_theta", "sin_theta"],
            )
        } else {
            (
                vec![-1.0, -1.0, -MAX_SPEED as f32],
                vec![1.0, 1.0, MAX_SPEED as f32],
                vec!["cos_theta", "sin_theta", "angular_velocity"],
            )
        };
        let spec = EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box { low, high },
            action_space: Space::Box {
                low: vec![-MAX_TORQUE],
                high: vec![MAX_TORQUE],
            },
            dt: DT as f32,
            max_episode_steps: Some(200),
            observation_names: names.into_iter().map(String::from).collect(),
            action_names: vec!["torque".to_string()],
            clip_actions: true,
            survival_is_success: false,
            image: None,
        };
        Pendulum {
            spec,
            options,
            state: [0.0; 2],
            rng: ChaCha8Rng::seed_from_u64(0),
            last_torque: 0.0,
            steps: 0,
        }
    }

    /// Builds from a TOML options table (unknown options are an error).
    pub fn from_options(options: &toml::Table) -> Result<Self, EnvError> {
        Ok(Pendulum::new(parse_options(NAME, options)?))
    }

    /// The float64 state `[theta, theta_dot]` (θ = 0 is upright).
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Overwrites the state, e.g. to replay a trajectory recorded from Gymnasium.
    pub fn set_state(&mut self, state: [f64; 2], obs: &mut [f32]) {
        self.state = state;
        self.observe(obs);
    }

    fn observe(&self, obs: &mut [f32]) {
        let [th, thdot] = self.state;
        obs[0] = th.cos() as f32;
        obs[1] = th.sin() as f32;
        if !self.options.no_velocity {
            obs[2] = thdot as f32;
        }
    }
}

impl Env for Pendulum {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.state = [
            self.rng.random_range(-PI..PI),
            self.rng.random_range(-1.0..1.0),
        ];
        self.steps = 0;
        self.last_torque = 0.0;
        self.observe(obs);
    }

    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step {
        let [th, thdot] = self.state;
        // Gymnasium: u = np.clip(u, -max_torque, max_torque)[0] stays float32, and NumPy 2
        // keeps `0.001 * u**2` and `3.0 * u` in float32 before mixing with float64 terms.
        let u: f32 = action[0].clamp(-MAX_TORQUE, MAX_TORQUE);
        self.last_torque = u;
        let u_cost = 0.001f32 * (u * u);
        let an = angle_normalize(th);
        let costs = an * an + 0.1 * (thdot * thdot) + f64::from(u_cost);
        let u_acc = f64::from((3.0 / (M * L * L)) as f32 * u);
        let newthdot = thdot + (3.0 * G / (2.0 * L) * th.sin() + u_acc) * DT;
        let newthdot = newthdot.clamp(-MAX_SPEED, MAX_SPEED);
        let newth = th + newthdot * DT;
        self.state = [newth, newthdot];
        self.steps += 1;
        self.observe(obs);
        Step {
            reward: -costs as f32,
            terminated: false,
            truncated: false,
        }
    }

    fn frame(&self) -> Frame {
        let th = self.state[0] as f32;
        Frame {
            time: self.steps as f32 * self.spec.dt,
            view: Some([-1.3, -1.3, 1.3, 1.3]),
            shapes: vec![
                Shape {
                    // θ = 0 points up; the rod is centred halfway along its length.
                    geometry: Geometry::Rect {
                        half_width: 0.1,
                        half_height: 0.5,
                    },
                    pose: Pose {
                        x: -th.sin() * 0.5,
                        y: th.cos() * 0.5,
                        angle: th,
                    },
                    color: Rgba::rgb(204, 77, 77),
                },
                Shape {
                    geometry: Geometry::Circle { radius: 0.05 },
                    pose: Pose::default(),
                    color: Rgba::rgb(0, 0, 0),
                },
            ],
            polylines: vec![],
            overlays: vec![Overlay {
                label: "torque".to_string(),
                value: self.last_torque,
                at: Some([0.0, -1.1]),
            }],
        }
    }
}
