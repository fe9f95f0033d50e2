//! CartPole-v1 with Gymnasium's exact dynamics (float64 Euler integration, float32
//! observations), plus a `no_velocity` variant for recurrent policies and a `continuous` force
//! (the worm-level-control experiments' pendulum balancing).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use wormnet_sim::env::check_option_ranges;
use wormnet_sim::frame::{Geometry, Overlay, Polyline, Pose, Rgba, Shape};
use wormnet_sim::{parse_options, Env, EnvError, EnvSpec, Frame, Space, Step};

/// Registry name.
pub const NAME: &str = "cartpole";

const GRAVITY: f64 = 9.8;
const MASS_CART: f64 = 1.0;
const MASS_POLE: f64 = 0.1;
const HALF_LENGTH: f64 = 0.5;
const FORCE_MAG: f64 = 10.0;
const TAU: f64 = 0.02;
const X_THRESHOLD: f64 = 2.4;

/// Options accepted in the env's TOML table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartPoleOptions {
    /// Hide the cart and pole velocities (observation = cart position, pole angle).
    pub no_velocity: bool,
    /// A continuous force: the action is one number in [−1, 1], the force `action · force`
    /// (Gymnasium's discrete push is ±force).
    pub continuous: bool,
    /// The largest force on the cart, N (Gymnasium: 10).
    pub force: f64,
}

impl Default for CartPoleOptions {
    fn default() -> Self {
        CartPoleOptions {
            no_velocity: false,
            continuous: false,
            force: FORCE_MAG,
        }
    }
}

/// The classic cart-pole balancing task (Gymnasium CartPole-v1: 500-step limit, reward 1 per
/// step, terminates when |x| > 2.4 or |θ| > 12°). Action 0 pushes left, 1 pushes right.
pub struct CartPole {
    spec: EnvSpec,
    options: CartPoleOptions,
    /// `[x, x_dot, theta, theta_dot]`, float64 like Gymnasium.
    state: [f64; 4],
    rng: ChaCha8Rng,
    last_action: f32,
    steps: u32,
}

fn theta_threshold() -> f64 {
    // Same expression as Gymnasium, so the float64 threshold is identical.
    12.0 * 2.0 * std::f64::consts::PI / 360.0
}

impl CartPole {
    /// A cart-pole with the given options.
    pub fn new(options: CartPoleOptions) -> Self {
        let t = theta_threshold() as f32;
        let (low, high, names): (Vec<f32>, Vec<f32>, Vec<&str>) = if options.no_velocity {
            (
                vec![-4.8, -2.0 * t],
                vec![4.8, 2.0 * t],
                vec!["cart_position", "pole_angle"],
            )
        } else {
            (
                vec![-4.8, f32::NEG_INFINITY, -2.0 * t, f32::NEG_INFINITY],
                vec![4.8, f32::INFINITY, 2.0 * t, f32::INFINITY],
                vec![
                    "cart_position",
                    "cart_velocity",
                    "pole_angle",
                    "pole_angular_velocity",
                ],
            )
        };
        let action_space = match options.continuous {
            true => Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            false => Space::Discrete { n: 2 },
        };
        let spec = EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box { low, high },
            action_space,
            dt: TAU as f32,
            max_episode_steps: Some(500),
            observation_names: names.into_iter().map(String::from).collect(),
            action_names: vec![if options.continuous {
                "force"
            } else {
                "push_right"
            }
            .into()],
            clip_actions: options.continuous,
            survival_is_success: true,
            image: None,
        };
        CartPole {
            spec,
            options,
            state: [0.0; 4],
            rng: ChaCha8Rng::seed_from_u64(0),
            last_action: 0.0,
            steps: 0,
        }
    }

    /// Builds from a TOML options table (unknown options are an error).
    pub fn from_options(options: &toml::Table) -> Result<Self, EnvError> {
        let options: CartPoleOptions = parse_options(NAME, options)?;
        check_option_ranges(NAME, &[("force", options.force as f32)], &[])?;
        Ok(CartPole::new(options))
    }

    /// The float64 state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Overwrites the state, e.g. to replay a trajectory recorded from Gymnasium.
    pub fn set_state(&mut self, state: [f64; 4], obs: &mut [f32]) {
        self.state = state;
        self.observe(obs);
    }

    fn observe(&self, obs: &mut [f32]) {
        let [x, x_dot, theta, theta_dot] = self.state;
        if self.options.no_velocity {
            obs.copy_from_slice(&[x as f32, theta as f32]);
        } else {
            obs.copy_from_slice(&[x as f32, x_dot as f32, theta as f32, theta_dot as f32]);
        }
    }
}

impl Env for CartPole {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        for s in &mut self.state {
            *s = self.rng.random_range(-0.05..0.05);
        }
        self.steps = 0;
        self.last_action = 0.0;
        self.observe(obs);
    }

    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step {
        let [x, x_dot, theta, theta_dot] = self.state;
        self.last_action = action[0];
        let force = match self.options.continuous {
            true => f64::from(action[0].clamp(-1.0, 1.0)) * self.options.force,
            false if action[0] == 1.0 => self.options.force,
            false => -self.options.force,
        };
        let total_mass = MASS_POLE + MASS_CART;
        let polemass_length = MASS_POLE * HALF_LENGTH;
        let costheta = theta.cos();
        let sintheta = theta.sin();
        // Operation order as in Gymnasium's cartpole.py (left to right), for identical rounding.
        let temp = (force + polemass_length * (theta_dot * theta_dot) * sintheta) / total_mass;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * (costheta * costheta) / total_mass));
        let xacc = temp - polemass_length * thetaacc * costheta / total_mass;
        let x = x + TAU * x_dot;
        let x_dot = x_dot + TAU * xacc;
        let theta = theta + TAU * theta_dot;
        let theta_dot = theta_dot + TAU * thetaacc;
        self.state = [x, x_dot, theta, theta_dot];
        self.steps += 1;
        let t = theta_threshold();
        let terminated = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x) || !(-t..=t).contains(&theta);
        self.observe(obs);
        Step {
            reward: 1.0,
            terminated,
            truncated: false,
        }
    }

    fn frame(&self) -> Frame {
        let [x, _, theta, _] = self.state;
        let (x, theta) = (x as f32, theta as f32);
        let pole_len = 2.0 * HALF_LENGTH as f32;
        Frame {
            time: self.steps as f32 * self.spec.dt,
            view: Some([-2.6, -0.5, 2.6, 1.5]),
            shapes: vec![
                Shape {
                    geometry: Geometry::Rect {
                        half_width: 0.25,
                        half_height: 0.15,
                    },
                    pose: Pose {
                        x,
                        y: 0.0,
                        angle: 0.0,
                    },
                    color: Rgba::rgb(40, 40, 40),
                },
                Shape {
                    // The pole leans right for positive theta (clockwise from vertical).
                    geometry: Geometry::Rect {
                        half_width: 0.05,
                        half_height: pole_len / 2.0,
                    },
                    pose: Pose {
                        x: x + theta.sin() * pole_len / 2.0,
                        y: 0.15 + theta.cos() * pole_len / 2.0,
                        angle: -theta,
                    },
                    color: Rgba::rgb(202, 152, 101),
                },
            ],
            polylines: vec![Polyline {
                points: vec![[-X_THRESHOLD as f32, -0.15], [X_THRESHOLD as f32, -0.15]],
                closed: false,
                color: Rgba::rgb(0, 0, 0),
                width: 0.02,
            }],
            overlays: vec![Overlay {
                label: "push_right".to_string(),
                value: self.last_action,
                at: Some([x, -0.3]),
            }],
        }
    }
}
