//! Auditing a policy: run it step by step while keeping every neuron's state, and write the
//! per-step log (observation, action, reward, every neuron by name).
//!
//! Everything here runs in headless builds too; only the drawing needs the `render` feature.

use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};
use wormnet_sim::rollout::{Decision, Rollout};
use wormnet_sim::Env;

use crate::policy::{Policy, PolicyState};
use wormnet_ncp::kernels::ltc::{LtcKernel, StepAttribution};
use wormnet_ncp::NeuronType;

/// What the policy did on one step, with the state that made it do so.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditStep {
    /// What the actor's sensory neurons read: the observation as the network saw it
    /// (normalised when the checkpoint normalises), or a conv encoder's features of it.
    pub input: Vec<f32>,
    /// The action sent to the env (clipped to its bounds).
    pub action: Vec<f32>,
    /// Every actor neuron's potential after this step, in state order.
    pub neurons: Vec<f32>,
}

/// A policy acting on one env, one step at a time, exactly as in evaluation (frozen observation
/// normalisation, same state update), keeping the actor's neuron states for the audit.
pub struct Auditor {
    policy: Rc<Policy>,
    deterministic: bool,
    zero_actions: bool,
    state: PolicyState,
    actions: Vec<f32>,
    /// The actor's kernel form when it is an LTC whose steps can be explained.
    ltc: Option<Arc<LtcKernel>>,
    /// Each step's explanation since the last reset (LTC actors only).
    attributions: Vec<StepAttribution>,
}

impl Auditor {
    /// Wraps `policy` (its normaliser stays frozen); `deterministic` acts with the
    /// distribution's mode, which is what an audit usually wants.
    pub fn new(policy: Rc<Policy>, deterministic: bool) -> Self {
        let ltc = policy
            .actor
            .ltc_kernel()
            .filter(|_| !policy.actor.config().mixed_memory);
        Auditor {
            state: policy.initial_state(1),
            actions: vec![0.0; policy.action_dim()],
            policy,
            deterministic,
            zero_actions: false,
            ltc,
            attributions: Vec::new(),
        }
    }

    /// The policy being audited.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The observation as the network sees it.
    pub fn normalize(&self, obs: &[f32]) -> Vec<f32> {
        let mut input = obs.to_vec();
        self.policy.normalize(&mut input);
        input
    }

    /// Sends the env zero actions (the policy still runs, so its neurons can be watched): a
    /// look at an env's own dynamics.
    pub fn with_zero_actions(mut self) -> Self {
        self.zero_actions = true;
        self
    }

    /// Zero state: a new episode starts.
    pub fn reset(&mut self) {
        self.attributions.clear();
        self.state = self.policy.initial_state(1);
    }

    /// What the actor's sensory neurons read for one raw observation (see
    /// [`AuditStep::input`]).
    pub fn sensory(&self, obs: &[f32]) -> Vec<f32> {
        self.policy.sensory_input(&self.normalize(obs))
    }

    /// Acts on one raw observation.
    pub fn act(&mut self, obs: &[f32]) -> AuditStep {
        let normalized = self.normalize(obs);
        let x = Tensor::from_slice(&normalized)
            .reshape([1, normalized.len() as i64])
            .to_device(self.policy.device());
        let input = self.policy.sensory_input(&normalized);
        if let Some(kernel) = &self.ltc {
            let v0 = Vec::<f32>::try_from(self.state.actor.h.to_device(Device::Cpu).reshape([-1]))
                .unwrap_or_default();
            let dt = self.policy.timespan();
            self.attributions
                .push(kernel.attribute_step(&input, &v0, dt));
        }
        let act = self.policy.act(&x, &self.state, self.deterministic);
        self.policy.env_actions(&act.action, &mut self.actions);
        if self.zero_actions {
            self.policy.zero_actions(&mut self.actions);
        }
        let neurons = Vec::<f32>::try_from(act.state.actor.h.to_device(Device::Cpu).reshape([-1]))
            .unwrap_or_default();
        self.state = act.state;
        AuditStep {
            input,
            action: self.actions.clone(),
            neurons,
        }
    }

    /// Each step's explanation since the last reset: for an LTC actor (without mixed
    /// memory), where every neuron's change of potential came from; empty otherwise.
    pub fn attributions(&self) -> &[StepAttribution] {
        &self.attributions
    }

    /// What the network saw at each step of `rollout` ([`acted_observations`], normalised).
    pub fn acted_inputs(&self, rollout: &Rollout) -> Vec<Vec<f32>> {
        acted_observations(rollout)
            .into_iter()
            .map(|o| self.normalize(o))
            .collect()
    }

    /// Names of the neurons in state order (`command_3`, …; motor neurons by the action they
    /// drive: `motor_steering`, or `motor_push_right=1` for a discrete action's logit).
    pub fn neuron_labels(&self) -> Vec<String> {
        self.policy.neuron_labels()
    }

    /// The role of each neuron in state order (`sensory`, `inter`, `command`, `motor`), what
    /// the heatmaps group by (the names of a circuit's neurons say nothing of their roles).
    pub fn neuron_roles(&self) -> Vec<String> {
        self.policy
            .actor
            .state_neuron_types()
            .into_iter()
            .map(|t| t.as_str().to_string())
            .collect()
    }
}

/// The role of neuron `k`, labelled `name`: its recorded role (`roles`, as
/// [`Auditor::neuron_roles`] writes them) or, where none was recorded, the role its generated
/// label starts with (`motor_steering`, `command_3`; anything else inter). The one place a
/// neuron's role is read back from a recording: a circuit's names (`AVA`) say nothing of it.
pub fn neuron_role(roles: Option<&[String]>, k: usize, name: &str) -> NeuronType {
    const ROLES: [NeuronType; 4] = [
        NeuronType::Sensory,
        NeuronType::Inter,
        NeuronType::Command,
        NeuronType::Motor,
    ];
    let recorded = roles.and_then(|r| r.get(k));
    if let Some(role) = recorded.and_then(|r| ROLES.into_iter().find(|t| t.as_str() == r)) {
        return role;
    }
    [NeuronType::Motor, NeuronType::Command]
        .into_iter()
        .find(|t| name.starts_with(t.as_str()))
        .unwrap_or(NeuronType::Inter)
}

/// Records one episode (at most `max_steps` steps) of `env` from `seed` with `auditor`; every
/// step carries the neuron states as `internals`, named by [`Auditor::neuron_labels`].
pub fn record_episode(
    env: Box<dyn Env>,
    options: toml::Table,
    seed: u64,
    max_steps: usize,
    auditor: &mut Auditor,
) -> Result<Rollout> {
    auditor.reset();
    let labels = auditor.neuron_labels();
    let mut rollout = Rollout::record(env, options, seed, max_steps, |obs| {
        let step = auditor.act(obs);
        Decision {
            action: step.action,
            internals: Some(step.neurons),
        }
    })?;
    rollout.internal_names = Some(labels);
    rollout.internal_roles = Some(auditor.neuron_roles());
    Ok(rollout)
}

/// The actor's neuron states after each step of a recorded episode (empty where a step
/// recorded none): the states a saliency window replays from.
pub fn recorded_states(rollout: &Rollout) -> Vec<Vec<f32>> {
    rollout
        .steps
        .iter()
        .map(|s| s.internals.clone().unwrap_or_default())
        .collect()
}

/// The observation the policy acted on at each step: the reset observation, then each step's.
pub fn acted_observations(rollout: &Rollout) -> Vec<&[f32]> {
    std::iter::once(rollout.initial_observation.as_slice())
        .chain(rollout.steps.iter().map(|s| s.observation.as_slice()))
        .take(rollout.steps.len())
        .collect()
}

fn csv_name(prefix: &str, name: &str) -> String {
    format!("{prefix}/{}", csv_clean(name))
}

/// A name as one CSV cell, the same in every log: `,`, newlines and `"` become `_`.
fn csv_clean(name: &str) -> String {
    let clean = |c: char| {
        if matches!(c, ',' | '\n' | '"') {
            '_'
        } else {
            c
        }
    };
    name.chars().map(clean).collect()
}

/// The per-step log as CSV: `step, time, obs/<name>… (what the policy saw; an image's pixels
/// are left out: they are in `rollout.json`), action/<name>…, reward, terminated, truncated,
/// neuron/<name>… (after acting)`. Floats are written in Rust's
/// shortest round-trip form, so reading them back gives the exact values.
pub fn write_steps_csv(rollout: &Rollout, path: &Path) -> Result<()> {
    let spec = &rollout.spec;
    let neuron_names = rollout.internal_names.clone().unwrap_or_default();
    let mut header = vec!["step".to_string(), "time".to_string()];
    let flat = spec.flat_observations();
    header.extend(
        spec.observation_names[flat.clone()]
            .iter()
            .map(|n| csv_name("obs", n)),
    );
    header.extend(spec.action_names.iter().map(|n| csv_name("action", n)));
    header.extend(["reward", "terminated", "truncated"].map(String::from));
    header.extend(neuron_names.iter().map(|n| csv_name("neuron", n)));
    let mut out = header.join(",");
    out.push('\n');
    let observations = acted_observations(rollout);
    for (t, (step, obs)) in rollout.steps.iter().zip(observations).enumerate() {
        let _ = write!(out, "{t},{}", step.frame.time);
        for v in obs[flat.clone()].iter().chain(&step.action) {
            let _ = write!(out, ",{v}");
        }
        let _ = write!(
            out,
            ",{},{},{}",
            step.reward,
            u8::from(step.terminated),
            u8::from(step.truncated)
        );
        if let Some(internals) = &step.internals {
            for v in internals {
                let _ = write!(out, ",{v}");
            }
        }
        out.push('\n');
    }
    crate::checkpoint::write_atomic(path, out.as_bytes())
        .with_context(|| format!("cannot write the step log {}", path.display()))?;
    Ok(())
}

/// The attribution log as CSV, a long table: `step,kind,source,target,delta_v`, one row per
/// synapse (`kind` = `synapse`, source a neuron), sensory synapse (`sensory`, source an
/// observation), gap junction (`gap`, source the junction's other end; two rows per junction)
/// and leak (`leak`, source `leak`) per step. `delta_v` is the change of the
/// target's potential that source caused in that step; a target's rows of one step add up to
/// its change of potential (`steps.csv`'s neuron column, this step's value minus the previous
/// step's, or minus 0 at the episode start).
pub fn write_attribution_csv(
    attributions: &[StepAttribution],
    neuron_names: &[String],
    observation_names: &[String],
    path: &Path,
) -> Result<()> {
    let name =
        |names: &[String], i: usize| names.get(i).map_or_else(|| i.to_string(), |n| csv_clean(n));
    let mut out = String::from("step,kind,source,target,delta_v\n");
    for (t, a) in attributions.iter().enumerate() {
        for &(src, dst, dv) in &a.synapses {
            let _ = writeln!(
                out,
                "{t},synapse,{},{},{dv}",
                name(neuron_names, src),
                name(neuron_names, dst)
            );
        }
        for &(input, dst, dv) in &a.sensory {
            let _ = writeln!(
                out,
                "{t},sensory,{},{},{dv}",
                name(observation_names, input),
                name(neuron_names, dst)
            );
        }
        for &(other, j, dv) in &a.gaps {
            let _ = writeln!(
                out,
                "{t},gap,{},{},{dv}",
                name(neuron_names, other),
                name(neuron_names, j)
            );
        }
        for (j, dv) in a.leak.iter().enumerate() {
            let _ = writeln!(out, "{t},leak,leak,{},{dv}", name(neuron_names, j));
        }
    }
    crate::checkpoint::write_atomic(path, out.as_bytes())
        .with_context(|| format!("cannot write the attribution log {}", path.display()))?;
    Ok(())
}

/// Reads back the `neuron/…` columns of a step log: (names, one row per step).
pub fn read_neuron_columns(path: &Path) -> Result<(Vec<String>, Vec<Vec<f32>>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the step log {}", path.display()))?;
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        bail!("{}: empty step log", path.display());
    };
    let columns: Vec<(usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("neuron/").map(|n| (i, n.to_string())))
        .collect();
    let mut rows = Vec::new();
    for (line_no, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let mut row = Vec::with_capacity(columns.len());
        for (i, name) in &columns {
            let cell = cells.get(*i).copied().unwrap_or("");
            let v: f32 = cell.parse().with_context(|| {
                format!(
                    "{}: line {}: column neuron/{name} is not a number: {cell:?}",
                    path.display(),
                    line_no + 2
                )
            })?;
            row.push(v);
        }
        rows.push(row);
    }
    Ok((columns.into_iter().map(|(_, n)| n).collect(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::tests::cartpole_policy;

    #[test]
    fn step_log_round_trips_the_neuron_states() {
        let (policy, _) = cartpole_policy();
        let mut auditor = Auditor::new(Rc::new(policy), true);
        let env = wormnet_envs::registry()
            .make("cartpole", &toml::Table::new())
            .expect("cartpole");
        let rollout = record_episode(env, toml::Table::new(), 7, 25, &mut auditor).expect("record");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("steps.csv");
        write_steps_csv(&rollout, &path).expect("csv");
        let (names, rows) = read_neuron_columns(&path).expect("read");
        assert_eq!(names, auditor.neuron_labels());
        assert_eq!(rows.len(), rollout.steps.len());
        for (row, step) in rows.iter().zip(&rollout.steps) {
            assert_eq!(Some(row), step.internals.as_ref());
        }
        assert!(read_neuron_columns(&dir.path().join("missing.csv"))
            .unwrap_err()
            .to_string()
            .contains("missing.csv"));
    }
}
