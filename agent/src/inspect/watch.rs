//! `wormnet watch`'s live source: the policy acting in one env, step by step, through the same
//! [`EpisodeDriver`] every VecEnv worker wraps its envs in (action checks and clipping, time
//! limit, fault isolation), with the neuron panel coloured by the state that chose each action.

use std::rc::Rc;

use wormnet_sim::render::{Inset, LiveSource, View};
use wormnet_sim::{EnvFactory, EnvSpec, EpisodeDriver};

use super::audit::Auditor;
use super::camera;
use super::panel::NeuronPanel;
use crate::policy::Policy;

/// A policy driving an env for the window; each reset uses the next seed.
pub struct LivePolicy {
    auditor: Auditor,
    panel: Rc<NeuronPanel>,
    factory: EnvFactory,
    driver: Option<EpisodeDriver>,
    obs: Vec<f32>,
    next_seed: u64,
    seed: u64,
    steps: usize,
    episode_return: f64,
    finished: bool,
    dt: f32,
}

impl LivePolicy {
    /// `factory` builds the env (one per episode); seeds start at `first_seed`.
    pub fn new(
        policy: Rc<Policy>,
        deterministic: bool,
        factory: EnvFactory,
        panel: Rc<NeuronPanel>,
        first_seed: u64,
    ) -> LivePolicy {
        LivePolicy {
            auditor: Auditor::new(policy, deterministic),
            panel,
            factory,
            driver: None,
            obs: Vec::new(),
            next_seed: first_seed,
            seed: first_seed,
            steps: 0,
            episode_return: 0.0,
            finished: true,
            dt: 0.05,
        }
    }

    /// Sends zero actions instead of the policy's (see [`Auditor::with_zero_actions`]).
    pub fn with_zero_actions(mut self) -> Self {
        self.auditor = self.auditor.with_zero_actions();
        self
    }

    fn caption(&self, reward: f32) -> String {
        let name = self.factory.name();
        format!(
            "{name}  seed {}  step {}  reward {reward:+.3}  return {:.2}",
            self.seed, self.steps, self.episode_return
        )
    }

    /// The camera picture in the current observation, for image observations.
    fn inset(&self) -> Option<Inset> {
        camera_view(self.driver.as_ref()?.spec(), &self.obs)
    }

    fn error_view(&self, message: String) -> View {
        tracing::error!("{message}");
        View {
            caption: message,
            ..View::default()
        }
    }
}

impl LiveSource for LivePolicy {
    fn reset(&mut self) -> View {
        self.seed = self.next_seed;
        self.next_seed = self.next_seed.wrapping_add(1);
        self.steps = 0;
        self.episode_return = 0.0;
        self.finished = true;
        self.auditor.reset();
        let env = match self.factory.build() {
            Ok(env) => env,
            Err(e) => return self.error_view(format!("cannot build env: {e}")),
        };
        let mut driver = EpisodeDriver::new(env, 0);
        self.dt = driver.spec().dt;
        self.obs = vec![0.0; driver.spec().obs_dim()];
        if let Err(e) = driver.reset(Some(self.seed), &mut self.obs) {
            return self.error_view(format!("reset failed: {e}"));
        }
        self.finished = false;
        let neurons = vec![0.0; self.auditor.neuron_labels().len()];
        let view = View {
            frame: driver.env().frame(),
            panel: Some(self.panel.state(&self.auditor.sensory(&self.obs), &neurons)),
            caption: self.caption(0.0),
            inset: camera_view(driver.spec(), &self.obs),
        };
        self.driver = Some(driver);
        view
    }

    fn step(&mut self) -> Option<View> {
        if self.finished {
            return None;
        }
        // What the car saw when it chose this action, shown with the step's result.
        let seen = self.inset();
        let acted = self.auditor.act(&self.obs);
        let driver = self.driver.as_mut()?;
        match driver.step(&acted.action, &mut self.obs) {
            Ok(t) => {
                self.steps += 1;
                self.episode_return += f64::from(t.step.reward);
                self.finished = t.step.done();
                let frame = driver.env().frame();
                // Short enough to leave room for what pushed the motor neurons.
                let caption = match self.panel.top_contributors(&acted.input, &acted.neurons, 2) {
                    Some(top) => format!("{}  step {}  | {top}", self.factory.name(), self.steps),
                    None => self.caption(t.step.reward),
                };
                Some(View {
                    frame,
                    panel: Some(self.panel.state(&acted.input, &acted.neurons)),
                    caption,
                    inset: seen,
                })
            }
            Err(e) => {
                self.finished = true;
                Some(self.error_view(format!("env fault: {e}")))
            }
        }
    }

    fn dt(&self) -> f32 {
        self.dt
    }
}

/// The camera picture at the start of `obs` when `spec` observes an image (no saliency tint:
/// the live window does not take gradients).
fn camera_view(spec: &EnvSpec, obs: &[f32]) -> Option<Inset> {
    spec.image.map(|image| camera::inset(image, obs, None))
}
