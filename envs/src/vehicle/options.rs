//! The vehicle's options: every knob of the track, the car, the sensors, the reward and the
//! noise, with their defaults and checks (`configs/vehicle.toml` documents each one).

use serde::Deserialize;
use wormnet_sim::EnvError;

use super::camera::CameraParams;
use super::car::CarParams;
use super::track::TrackParams;

/// Registry name (the options' errors name the env by it).
pub const NAME: &str = "vehicle";

/// Which seed range new tracks are drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSet {
    /// `train_seeds`.
    Train,
    /// `eval_seeds` (held out from training).
    Eval,
}

/// What the car observes besides its speed and steering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// The fan of range sensors.
    Rays,
    /// A forward-looking grey camera image of the ground (`camera_*` options).
    Camera,
}

/// Options accepted in the env's TOML table; `configs/vehicle.toml` documents each one.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VehicleOptions {
    /// Simulated seconds per env step.
    pub dt: f32,
    /// Time limit in env steps; running out of time without a lap is a failure.
    pub max_episode_steps: u32,
    /// Cruise speed in m/s (held by a speed controller unless `throttle`), and the reward's
    /// reference speed.
    pub speed: f32,
    /// Add a throttle/brake action; the car then starts at `speed` and the policy controls it.
    pub throttle: bool,
    /// Speed cap with `throttle`, m/s; also the scale of the `speed` observation.
    pub max_speed: f32,
    /// Forward acceleration at full throttle, m/s².
    pub max_accel: f32,
    /// Deceleration at full brake, m/s².
    pub max_brake: f32,
    /// Front-wheel angle at |steering| = 1, radians.
    pub max_steer: f32,
    /// Fastest steering-angle change, rad/s.
    pub steer_rate: f32,
    /// Car mass, kg.
    pub mass: f32,
    /// Car body length, m.
    pub car_length: f32,
    /// Car body width, m.
    pub car_width: f32,
    /// Distance from the centre of mass to the front axle, m.
    pub front_axle: f32,
    /// Distance from the centre of mass to the rear axle, m.
    pub rear_axle: f32,
    /// Lateral tyre force per radian of slip per newton of axle load, 1/rad.
    pub cornering_stiffness: f32,
    /// Tyre–road friction coefficient.
    pub friction: f32,
    /// `rays` (range sensors) or `camera` (a grey image of the road ahead).
    pub observation: Observation,
    /// Camera image width, pixels.
    pub camera_width: usize,
    /// Camera image height, pixels.
    pub camera_height: usize,
    /// Camera horizontal field of view, radians.
    pub camera_fov: f32,
    /// Camera height above the ground, m.
    pub camera_mount_height: f32,
    /// Camera downward tilt, radians.
    pub camera_pitch: f32,
    /// Farthest ground the camera draws, m (beyond: sky).
    pub camera_range: f32,
    /// Standard deviation of Gaussian noise added to every pixel (training augmentation).
    pub camera_noise: f32,
    /// Half-width of a uniform brightness offset drawn per episode (training augmentation).
    pub camera_brightness: f32,
    /// Number of range sensors.
    pub rays: usize,
    /// Angle covered by the fan of range sensors, radians, centred on the heading.
    pub ray_spread: f32,
    /// Range of the sensors, m; readings are divided by it.
    pub ray_range: f32,
    /// Observe the heading error and lateral offset (the lane geometry as two numbers, which
    /// a linear policy can lap with); false leaves the range sensors, speed and steering.
    pub privileged: bool,
    /// Standard deviation of Gaussian noise added to every (normalised) observation component.
    pub sensor_noise: f32,
    /// Half height, m, of a view that follows the car in `watch`/`record` (0: the whole track).
    /// Only what is drawn changes.
    pub follow: f32,
    /// Centre-line length range of generated tracks, `[min, max]` metres.
    pub track_length: [f32; 2],
    /// Road width range, `[min, max]` metres.
    pub track_width: [f32; 2],
    /// Sharpest bend allowed, 1/m.
    pub max_curvature: f32,
    /// Harmonics shaping each track (more: more bends).
    pub track_harmonics: usize,
    /// Amplitude of the harmonics before they are limited by `max_curvature`.
    pub track_roughness: f32,
    /// Which seed range tracks are drawn from: `train` or `eval`.
    pub tracks: TrackSet,
    /// Training track seeds, `[first, end)`.
    pub train_seeds: [u64; 2],
    /// Held-out evaluation track seeds, `[first, end)`; must not overlap `train_seeds`.
    pub eval_seeds: [u64; 2],
    /// Drive this one track every episode instead of drawing from a range.
    pub track_seed: Option<u64>,
    /// Half-width of the uniform random lateral start offset, m.
    pub start_offset: f32,
    /// Half-width of the uniform random start heading error, radians.
    pub start_heading: f32,
    /// Weight of the progress term (1 per step at `speed` along the centre line).
    pub progress_weight: f32,
    /// Weight of the squared normalised distance from the centre line, per step.
    pub centre_penalty: f32,
    /// Reward subtracted when the car leaves the road or stalls.
    pub crash_penalty: f32,
    /// The episode fails after this many seconds without new progress (wrong way, circling).
    pub stall_seconds: f32,
}

impl Default for VehicleOptions {
    fn default() -> Self {
        VehicleOptions {
            dt: 0.05,
            max_episode_steps: 1200,
            speed: 8.0,
            throttle: false,
            max_speed: 12.0,
            max_accel: 4.0,
            max_brake: 8.0,
            max_steer: 0.5,
            steer_rate: 2.0,
            mass: 1200.0,
            car_length: 4.2,
            car_width: 1.8,
            front_axle: 1.2,
            rear_axle: 1.4,
            cornering_stiffness: 12.0,
            friction: 0.9,
            observation: Observation::Rays,
            camera_width: 64,
            camera_height: 24,
            camera_fov: 1.75,
            camera_mount_height: 1.4,
            camera_pitch: 0.2,
            camera_range: 40.0,
            camera_noise: 0.0,
            camera_brightness: 0.0,
            rays: 11,
            ray_spread: std::f32::consts::PI,
            ray_range: 40.0,
            privileged: true,
            sensor_noise: 0.0,
            follow: 0.0,
            track_length: [200.0, 350.0],
            track_width: [8.0, 10.0],
            max_curvature: 0.08,
            track_harmonics: 4,
            track_roughness: 0.6,
            tracks: TrackSet::Train,
            train_seeds: [0, 1_000_000],
            eval_seeds: [1_000_000, 1_000_050],
            track_seed: None,
            start_offset: 1.0,
            start_heading: 0.1,
            progress_weight: 1.0,
            centre_penalty: 0.5,
            crash_penalty: 10.0,
            stall_seconds: 5.0,
        }
    }
}

impl VehicleOptions {
    pub(super) fn validate(&self) -> Result<(), EnvError> {
        let positive = [
            ("dt", self.dt),
            ("speed", self.speed),
            ("max_speed", self.max_speed),
            ("max_accel", self.max_accel),
            ("max_brake", self.max_brake),
            ("max_steer", self.max_steer),
            ("steer_rate", self.steer_rate),
            ("mass", self.mass),
            ("car_length", self.car_length),
            ("car_width", self.car_width),
            ("front_axle", self.front_axle),
            ("rear_axle", self.rear_axle),
            ("cornering_stiffness", self.cornering_stiffness),
            ("friction", self.friction),
            ("ray_range", self.ray_range),
            ("camera_fov", self.camera_fov),
            ("camera_mount_height", self.camera_mount_height),
            ("camera_range", self.camera_range),
            ("max_curvature", self.max_curvature),
            ("stall_seconds", self.stall_seconds),
        ];
        let non_negative = [
            ("ray_spread", self.ray_spread),
            ("sensor_noise", self.sensor_noise),
            ("camera_pitch", self.camera_pitch),
            ("camera_noise", self.camera_noise),
            ("camera_brightness", self.camera_brightness),
            ("follow", self.follow),
            ("track_roughness", self.track_roughness),
            ("start_offset", self.start_offset),
            ("start_heading", self.start_heading),
            ("progress_weight", self.progress_weight),
            ("centre_penalty", self.centre_penalty),
            ("crash_penalty", self.crash_penalty),
        ];
        wormnet_sim::env::check_option_ranges(NAME, &positive, &non_negative)?;
        self.check_sizes()?;
        self.check_geometry()?;
        self.check_seeds_and_steps()
    }

    /// The track's ranges, the camera's and the rays' sizes, the steering's limit.
    fn check_sizes(&self) -> Result<(), EnvError> {
        // Bounds that keep the task a task: a physics step of at most a second, a fan of rays
        // no wider than a circle, noise that leaves a signal (observations are normalised to
        // about ±1, pixels to [0, 1]).
        for (name, value, most) in [
            ("dt", self.dt, 1.0),
            ("ray_spread", self.ray_spread, std::f32::consts::TAU),
            ("sensor_noise", self.sensor_noise, 10.0),
            ("camera_noise", self.camera_noise, 1.0),
            ("camera_brightness", self.camera_brightness, 1.0),
        ] {
            if value > most {
                return bad(format!("{name} must be at most {most}, got {value}"));
            }
        }
        if self.track_width[0] < 2.0 * self.car_width {
            return bad(format!(
                "track_width must leave room for the car: its minimum must be at least twice \
                 car_width ({}), got {}",
                2.0 * self.car_width,
                self.track_width[0]
            ));
        }
        for (name, [lo, hi]) in [
            ("track_length", self.track_length),
            ("track_width", self.track_width),
        ] {
            if !(lo > 0.0 && lo <= hi && hi.is_finite()) {
                return bad(format!(
                    "{name} must be [min, max] with 0 < min <= max, got [{lo}, {hi}]"
                ));
            }
        }
        if self.camera_fov >= 3.0 {
            return bad(format!(
                "camera_fov must be below 3 radians, got {}",
                self.camera_fov
            ));
        }
        for (name, v) in [
            ("camera_width", self.camera_width),
            ("camera_height", self.camera_height),
        ] {
            if !(2..=512).contains(&v) {
                return bad(format!("{name} must be in 2..=512, got {v}"));
            }
        }
        if !(1..=64).contains(&self.rays) {
            return bad(format!("rays must be in 1..=64, got {}", self.rays));
        }
        if self.max_steer >= 1.5 {
            return bad(format!(
                "max_steer must be below 1.5 rad, got {}",
                self.max_steer
            ));
        }
        Ok(())
    }

    /// The car fits its axles, and the tracks can bend as `max_curvature` lets them.
    fn check_geometry(&self) -> Result<(), EnvError> {
        if self.front_axle + self.rear_axle > self.car_length {
            return bad(format!(
                "front_axle + rear_axle ({}) must fit in car_length ({})",
                self.front_axle + self.rear_axle,
                self.car_length
            ));
        }
        let circle = std::f32::consts::TAU / self.track_length[0];
        if circle >= 0.8 * self.max_curvature {
            return bad(format!(
                "max_curvature ({}) must exceed 1.25 × the curvature of the shortest track as a circle ({circle:.4}); raise it or track_length",
                self.max_curvature
            ));
        }
        if self.max_curvature * 0.5 * self.track_width[1] >= 0.7 {
            return bad(format!(
                "max_curvature × track_width/2 must stay below 0.7 so the inner border never folds, got {}",
                self.max_curvature * 0.5 * self.track_width[1]
            ));
        }
        Ok(())
    }

    /// Seed ranges that do not overlap, and episodes long enough for a lap.
    fn check_seeds_and_steps(&self) -> Result<(), EnvError> {
        for (name, [first, end]) in [
            ("train_seeds", self.train_seeds),
            ("eval_seeds", self.eval_seeds),
        ] {
            if first >= end {
                return bad(format!(
                    "{name} must be [first, end) with first < end, got [{first}, {end}]"
                ));
            }
        }
        let [a, b] = self.train_seeds;
        let [c, d] = self.eval_seeds;
        if a < d && c < b {
            return bad(format!(
                "train_seeds [{a}, {b}) and eval_seeds [{c}, {d}) overlap: held-out tracks would be trained on"
            ));
        }
        if !self.throttle {
            let lap_steps = self.track_length[1] / self.speed / self.dt;
            if 1.2 * lap_steps > self.max_episode_steps as f32 {
                return bad(format!(
                    "max_episode_steps ({}) is too short for a lap of the longest track at `speed` ({lap_steps:.0} steps + 20 %)",
                    self.max_episode_steps
                ));
            }
        }
        Ok(())
    }

    pub(super) fn car(&self) -> CarParams {
        CarParams {
            mass: self.mass,
            length: self.car_length,
            width: self.car_width,
            front: self.front_axle,
            rear: self.rear_axle,
            cornering_stiffness: self.cornering_stiffness,
            friction: self.friction,
        }
    }

    pub(super) fn track_params(&self) -> TrackParams {
        TrackParams {
            length: self.track_length,
            width: self.track_width,
            max_curvature: self.max_curvature,
            harmonics: self.track_harmonics,
            roughness: self.track_roughness,
        }
    }

    /// Sensor directions relative to the heading, radians (positive: left), right to left.
    pub(super) fn camera(&self) -> CameraParams {
        CameraParams {
            width: self.camera_width,
            height: self.camera_height,
            fov: self.camera_fov,
            mount_height: self.camera_mount_height,
            pitch: self.camera_pitch,
            range: self.camera_range,
        }
    }

    pub(super) fn ray_angles(&self) -> Vec<f32> {
        if self.rays == 1 {
            return vec![0.0];
        }
        (0..self.rays)
            .map(|i| -0.5 * self.ray_spread + self.ray_spread * i as f32 / (self.rays - 1) as f32)
            .collect()
    }
}

/// A `vehicle` options error with `message`.
fn bad(message: String) -> Result<(), EnvError> {
    Err(EnvError::Options {
        env: NAME.to_string(),
        message,
    })
}
