//! MountainCarContinuous-v0 with Gymnasium's exact dynamics (its float32 state and NumPy 2's
//! mixed float32/float64 arithmetic), a goal task: an episode succeeds when the car reaches
//! the flag, which the env reports itself ([`Env::success`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use wormnet_sim::env::check_option_ranges;
use wormnet_sim::frame::{Geometry, Overlay, Polyline, Pose, Rgba, Shape};
use wormnet_sim::{parse_options, Env, EnvError, EnvSpec, Frame, Space, Step};

/// Registry name.
pub const NAME: &str = "mountaincar";

const MIN_POSITION: f64 = -1.2;
const MAX_POSITION: f64 = 0.6;
const MAX_SPEED: f64 = 0.07;
const GOAL_POSITION: f64 = 0.45;
const POWER: f32 = 0.0015;

/// The slope's pull per step, `0.0025·cos(3x)`: the car's energy is `v²/2 + SLOPE/3·sin(3x)`.
const SLOPE: f64 = 0.0025;

/// Options accepted in the env's TOML table; the defaults are Gymnasium's task.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MountainCarOptions {
    /// Potential-based reward shaping by the car's mechanical energy (Ng et al., 1999): each
    /// step's reward gains `energy_shaping` × the change of energy, in units of the energy
    /// from the valley floor at rest to the flag, so the shaping of a whole episode adds up to
    /// `energy_shaping` × (final − initial energy) and leaves the best policy as it is. 0 (the
    /// default) is Gymnasium's reward; set it for training envs only (`eval_options`: 0).
    pub energy_shaping: f64,
}

/// The car's mechanical energy at `[position, velocity]`, in units of the rise from the valley
/// floor at rest (0) to standing at the flag (1).
fn energy([position, velocity]: [f64; 2]) -> f64 {
    let e = |x: f64, v: f64| v * v / 2.0 + SLOPE / 3.0 * (3.0 * x).sin();
    let floor = -SLOPE / 3.0;
    (e(position, velocity) - floor) / (e(GOAL_POSITION, 0.0) - floor)
}

/// Drive an under-powered car up the right hill (Gymnasium MountainCarContinuous-v0: 999-step
/// limit, reward 100 at the flag minus 0.1·force² per step, terminates at the flag). The
/// observation is `[position, velocity]`, the action one force in [−1, 1], clipped as
/// Gymnasium clips it inside `step`.
pub struct MountainCar {
    spec: EnvSpec,
    /// `[position, velocity]`; after the first step float32 values, as Gymnasium stores them.
    state: [f64; 2],
    /// Whether `state` holds float32 values (Gymnasium computes in float32 from then on).
    single: bool,
    reached: bool,
    rng: ChaCha8Rng,
    last_force: f32,
    steps: u32,
    energy_shaping: f64,
}

impl MountainCar {
    /// A mountain car with the given options.
    pub fn new(options: MountainCarOptions) -> Self {
        let spec = EnvSpec {
            name: NAME.to_string(),
            observation_space: Space::Box {
                low: vec![MIN_POSITION as f32, -MAX_SPEED as f32],
                high: vec![MAX_POSITION as f32, MAX_SPEED as f32],
            },
            action_space: Space::Box {
                low: vec![-1.0],
                high: vec![1.0],
            },
            dt: 1.0,
            max_episode_steps: Some(999),
            observation_names: vec!["position".into(), "velocity".into()],
            action_names: vec!["force".into()],
            clip_actions: true,
            survival_is_success: false,
            image: None,
        };
        MountainCar {
            spec,
            state: [0.0; 2],
            single: false,
            reached: false,
            rng: ChaCha8Rng::seed_from_u64(0),
            last_force: 0.0,
            steps: 0,
            energy_shaping: options.energy_shaping,
        }
    }

    /// Builds from a TOML options table (unknown options are an error).
    pub fn from_options(options: &toml::Table) -> Result<Self, EnvError> {
        let options: MountainCarOptions = parse_options(NAME, options)?;
        let shaping = options.energy_shaping as f32;
        check_option_ranges(NAME, &[], &[("energy_shaping", shaping)])?;
        Ok(MountainCar::new(options))
    }

    /// The state `[position, velocity]`.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Overwrites the state with a float64 one (as after Gymnasium's reset), e.g. to replay a
    /// trajectory recorded from Gymnasium.
    pub fn set_state(&mut self, state: [f64; 2], obs: &mut [f32]) {
        self.state = state;
        self.single = false;
        self.reached = false;
        self.observe(obs);
    }

    fn observe(&self, obs: &mut [f32]) {
        obs[0] = self.state[0] as f32;
        obs[1] = self.state[1] as f32;
    }

    /// Gymnasium's update of `[position, velocity]` for `action`, before it stores them as
    /// float32: float32 arithmetic where its operands are float32 (NumPy 2 keeps Python floats
    /// weak); a clipped force is a Python float, so its push is float64.
    fn advance(&self, action: f32) -> [f64; 2] {
        let [position, velocity] = self.state;
        let force = action.clamp(-1.0, 1.0);
        let slope = match self.single {
            true => SLOPE * f64::from(3.0f32 * position as f32).cos(),
            false => SLOPE * (3.0 * position).cos(),
        };
        let delta = match force == action {
            true => f64::from(force * POWER - slope as f32),
            false => f64::from(force) * f64::from(POWER) - slope,
        };
        let mut velocity = match self.single {
            true => f64::from(velocity as f32 + delta as f32),
            false => velocity + delta,
        };
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED);
        let mut position = match self.single {
            true => f64::from(position as f32 + velocity as f32),
            false => position + velocity,
        };
        position = position.clamp(MIN_POSITION, MAX_POSITION);
        if position == MIN_POSITION && velocity < 0.0 {
            velocity = 0.0;
        }
        [position, velocity]
    }
}

impl Env for MountainCar {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&mut self, seed: Option<u64>, obs: &mut [f32]) {
        if let Some(seed) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.state = [self.rng.random_range(-0.6..-0.4), 0.0];
        self.single = false;
        self.reached = false;
        self.steps = 0;
        self.last_force = 0.0;
        self.observe(obs);
    }

    fn step(&mut self, action: &[f32], obs: &mut [f32]) -> Step {
        self.last_force = action[0].clamp(-1.0, 1.0);
        let before = energy(self.state);
        let [position, velocity] = self.advance(action[0]);
        let terminated = position >= GOAL_POSITION && velocity >= 0.0;
        self.state = [f64::from(position as f32), f64::from(velocity as f32)];
        self.single = true;
        self.reached = terminated;
        self.steps += 1;
        self.observe(obs);
        let mut reward = if terminated { 100.0 } else { 0.0 };
        reward -= f64::from(action[0]).powi(2) * 0.1;
        if self.energy_shaping != 0.0 {
            reward += self.energy_shaping * (energy(self.state) - before);
        }
        Step {
            reward: reward as f32,
            terminated,
            truncated: false,
        }
    }

    fn success(&self) -> Option<bool> {
        Some(self.reached)
    }

    fn frame(&self) -> Frame {
        let height = |x: f32| (3.0 * x).sin() * 0.45 + 0.55;
        let x = self.state[0] as f32;
        let hill: Vec<[f32; 2]> = (0..=90)
            .map(|k| {
                let x = MIN_POSITION as f32 + k as f32 * 0.02;
                [x, height(x)]
            })
            .collect();
        let goal = GOAL_POSITION as f32;
        Frame {
            time: self.steps as f32,
            view: Some([-1.25, -0.1, 0.65, 1.2]),
            shapes: vec![Shape {
                geometry: Geometry::Rect {
                    half_width: 0.06,
                    half_height: 0.025,
                },
                pose: Pose {
                    x,
                    y: height(x) + 0.03,
                    angle: (1.35 * (3.0 * x).cos()).atan(),
                },
                color: Rgba::rgb(40, 40, 40),
            }],
            polylines: vec![
                Polyline {
                    points: hill,
                    closed: false,
                    color: Rgba::rgb(0, 0, 0),
                    width: 0.01,
                },
                Polyline {
                    points: vec![[goal, height(goal)], [goal, height(goal) + 0.12]],
                    closed: false,
                    color: Rgba::rgb(204, 204, 0),
                    width: 0.015,
                },
            ],
            overlays: vec![Overlay {
                label: "force".to_string(),
                value: self.last_force,
                at: Some([x, height(x) - 0.1]),
            }],
        }
    }
}
