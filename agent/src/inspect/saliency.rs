//! Which observations moved each action, for any cell: the gradient of every motor output
//! with respect to the observations the policy saw — at the current step, and summed in
//! magnitude over a short history window (a recurrent policy acts on what it saw before too).
//! Behind a conv encoder the gradient runs through it to the pixels: which parts of the camera
//! image drove the steering ([`pixel_maps`], drawn over the camera view by `record`).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use tch::{Kind, Tensor};
use wormnet_ncp::State;
use wormnet_sim::ImageShape;

use crate::policy::Policy;

/// The saliency of one step: `[output][observation]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StepSaliency {
    /// ∂ output / ∂ observation at this step (signed).
    pub now: Vec<Vec<f32>>,
    /// Σ |∂ output / ∂ observation| over the window's steps, this one included.
    pub window: Vec<Vec<f32>>,
}

/// Saliency of every step of an episode. `inputs` are the observations as the network saw
/// them (normalised), `states` the actor's potentials after each step (what the audit log
/// records); each step replays the last `window` steps from the recorded state before them.
/// None for an actor with an LSTM memory (mixed memory, or the LSTM baseline): the audit
/// records its hidden state but not its cell memory, so a window cannot be replayed exactly.
pub fn saliency(
    policy: &Policy,
    inputs: &[Vec<f32>],
    states: &[Vec<f32>],
    window: usize,
) -> Result<Option<Vec<StepSaliency>>> {
    let actor = &policy.actor;
    if actor.initial_state(1, tch::Device::Cpu).c.is_some() {
        return Ok(None);
    }
    let (obs_dim, outputs, n) = (policy.obs_dim(), actor.output_size(), actor.state_size());
    let mut out = Vec::with_capacity(inputs.len());
    for t in 0..inputs.len() {
        let first = (t + 1).saturating_sub(window.max(1));
        let len = t + 1 - first;
        let flat: Vec<f32> = inputs[first..=t].iter().flatten().copied().collect();
        let h0 = match first.checked_sub(1).and_then(|i| states.get(i)) {
            Some(h) => Tensor::from_slice(h)
                .reshape([1, n as i64])
                .to_device(policy.device()),
            None => Tensor::zeros([1, n as i64], (Kind::Float, policy.device())),
        };
        let mut now = Vec::with_capacity(outputs);
        let mut summed = Vec::with_capacity(outputs);
        for k in 0..outputs {
            let x = Tensor::from_slice(&flat)
                .reshape([1, len as i64, obs_dim as i64])
                .to_device(policy.device())
                .set_requires_grad(true);
            let state = State {
                h: h0.shallow_clone(),
                c: None,
            };
            // Through the conv encoder too, when there is one: the gradient reaches the pixels.
            let (y, tape) = policy.actor_sequence_from(&x, Some(&state));
            tape.backward(
                &y.select(1, len as i64 - 1)
                    .select(1, k as i64)
                    .sum(Kind::Float),
            );
            let grad = Vec::<f32>::try_from(x.grad().to_device(tch::Device::Cpu).reshape([-1]))
                .context("reading the observation gradient")?;
            now.push(grad[(len - 1) * obs_dim..].to_vec());
            summed.push(
                (0..obs_dim)
                    .map(|i| (0..len).map(|s| grad[s * obs_dim + i].abs()).sum())
                    .collect(),
            );
        }
        out.push(StepSaliency {
            now,
            window: summed,
        });
    }
    Ok(Some(out))
}

/// Each step's pixel saliency of an image observation: per pixel (row-major from the top),
/// Σ over outputs and channels of |∂ output / ∂ pixel| at that step — what drove the action.
pub fn pixel_maps(steps: &[StepSaliency], image: ImageShape) -> Vec<Vec<f32>> {
    let plane = image.height * image.width;
    steps
        .iter()
        .map(|s| {
            let mut map = vec![0.0f32; plane];
            for now in &s.now {
                for (k, g) in now.iter().take(image.len()).enumerate() {
                    map[k % plane] += g.abs();
                }
            }
            map
        })
        .collect()
}

/// The saliency log as CSV, a long table: `step,output,observation,now,window` (see
/// [`StepSaliency`]); outputs are the motor neurons' actions, observations by name. With an
/// `image` the pixels are one row, `pixels`, holding Σ |∂| over them (the maps are drawn on
/// the recorded frames instead).
pub fn write_saliency_csv(
    steps: &[StepSaliency],
    outputs: &[String],
    observations: &[String],
    image: Option<ImageShape>,
    path: &Path,
) -> Result<()> {
    let pixels = image.map_or(0, |i| i.len());
    let name = |v: &[String], i: usize| {
        v.get(i)
            .map_or_else(|| i.to_string(), |n| n.replace(',', "_"))
    };
    let mut text = String::from("step,output,observation,now,window\n");
    for (t, s) in steps.iter().enumerate() {
        for (k, (now, window)) in s.now.iter().zip(&s.window).enumerate() {
            if pixels > 0 {
                let sum = |v: &[f32]| v.iter().take(pixels).map(|g| g.abs()).sum::<f32>();
                let _ = writeln!(
                    text,
                    "{t},{},pixels,{},{}",
                    name(outputs, k),
                    sum(now),
                    sum(window)
                );
            }
            for (i, (a, b)) in now.iter().zip(window).enumerate().skip(pixels) {
                let _ = writeln!(
                    text,
                    "{t},{},{},{a},{b}",
                    name(outputs, k),
                    name(observations, i)
                );
            }
        }
    }
    crate::checkpoint::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write the saliency log {}", path.display()))?;
    Ok(())
}
