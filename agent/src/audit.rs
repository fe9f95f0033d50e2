//! Auditing a policy: run it step by step while keeping every neuron's state, write the per-step
//! log (observation, action, reward, every neuron by name) and describe the neuron panel that
//! `wormnet watch` and `wormnet record` draw beside the scene.
//!
//! Everything here runs in headless builds too; only the drawing needs the `render` feature.

use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};
use wormnet_sim::frame::Rgba;
use wormnet_sim::render::{LabelSide, PanelEdge, PanelLayout, PanelNode, PanelState};
use wormnet_sim::rollout::{Decision, Rollout};
use wormnet_sim::{Env, EnvSpec};

use crate::ltc::LtcCell;
use crate::normalize::ObsNormalizer;
use crate::policy::{Policy, PolicyState};
use crate::wiring::NeuronType;
use crate::wiring_picture::{self, PictureOptions};

/// What the policy did on one step, with the state that made it do so.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditStep {
    /// The observation as the network saw it (normalised when the checkpoint normalises).
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
    obs_norm: Option<ObsNormalizer>,
    deterministic: bool,
    state: PolicyState,
    actions: Vec<f32>,
}

impl Auditor {
    /// Wraps `policy`; `obs_norm` (from the checkpoint) is frozen; `deterministic` acts with the
    /// distribution's mode, which is what an audit usually wants.
    pub fn new(policy: Rc<Policy>, obs_norm: Option<&ObsNormalizer>, deterministic: bool) -> Self {
        let obs_norm = obs_norm.cloned().map(|mut n| {
            n.frozen = true;
            n
        });
        Auditor {
            state: policy.initial_state(1),
            actions: vec![0.0; policy.action_dim()],
            policy,
            obs_norm,
            deterministic,
        }
    }

    /// The policy being audited.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The observation as the network sees it.
    pub fn normalize(&self, obs: &[f32]) -> Vec<f32> {
        let mut input = obs.to_vec();
        if let Some(n) = &self.obs_norm {
            n.apply(&mut input);
        }
        input
    }

    /// Zero state: a new episode starts.
    pub fn reset(&mut self) {
        self.state = self.policy.initial_state(1);
    }

    /// Acts on one raw observation.
    pub fn act(&mut self, obs: &[f32]) -> AuditStep {
        let input = self.normalize(obs);
        let x = Tensor::from_slice(&input)
            .reshape([1, input.len() as i64])
            .to_device(self.policy.device());
        let act = self.policy.act(&x, &self.state, self.deterministic);
        self.policy.env_actions(&act.action, &mut self.actions);
        let neurons = Vec::<f32>::try_from(act.state.actor.h.to_device(Device::Cpu).reshape([-1]))
            .unwrap_or_default();
        self.state = act.state;
        AuditStep {
            input,
            action: self.actions.clone(),
            neurons,
        }
    }

    /// Names of the neurons in state order (`motor_0`, `command_3`, …).
    pub fn neuron_labels(&self) -> Vec<String> {
        self.policy.actor.state_labels()
    }
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
    Ok(rollout)
}

/// The observation the policy acted on at each step: the reset observation, then each step's.
pub fn acted_observations(rollout: &Rollout) -> Vec<&[f32]> {
    std::iter::once(rollout.initial_observation.as_slice())
        .chain(rollout.steps.iter().map(|s| s.observation.as_slice()))
        .take(rollout.steps.len())
        .collect()
}

fn csv_name(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c == ',' || c == '\n' || c == '"' {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{prefix}/{clean}")
}

/// The per-step log as CSV: `step, time, obs/<name>… (what the policy saw), action/<name>…,
/// reward, terminated, truncated, neuron/<name>… (after acting)`. Floats are written in Rust's
/// shortest round-trip form, so reading them back gives the exact values.
pub fn write_steps_csv(rollout: &Rollout, path: &Path) -> Result<()> {
    let spec = &rollout.spec;
    let neuron_names = rollout.internal_names.clone().unwrap_or_default();
    let mut header = vec!["step".to_string(), "time".to_string()];
    header.extend(spec.observation_names.iter().map(|n| csv_name("obs", n)));
    header.extend(spec.action_names.iter().map(|n| csv_name("action", n)));
    header.extend(["reward", "terminated", "truncated"].map(String::from));
    header.extend(neuron_names.iter().map(|n| csv_name("neuron", n)));
    let mut out = header.join(",");
    out.push('\n');
    let observations = acted_observations(rollout);
    for (t, (step, obs)) in rollout.steps.iter().zip(observations).enumerate() {
        let _ = write!(out, "{t},{}", step.frame.time);
        for v in obs.iter().chain(&step.action) {
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

fn role_color(kind: NeuronType) -> Rgba {
    let (r, g, b) = wiring_picture::colour(kind);
    Rgba::rgb(r, g, b)
}

/// Maps network values to panel colours: which state column feeds each node, and (for LTC
/// cells) the synapse parameters that turn potentials into synapse activity.
pub struct NeuronPanel {
    layout: PanelLayout,
    /// Sensory inputs (the first nodes).
    sensory: usize,
    /// Node index → state column (None for sensory nodes).
    column: Vec<Option<usize>>,
    /// Per edge: `(presynaptic node, postsynaptic node, is sensory)`.
    edges: Vec<(usize, usize, bool)>,
    synapses: Option<SynapseParams>,
}

/// LTC synapse parameters on the CPU: activity = w·σ(σ_k·(v_pre − μ)), shown relative to the
/// largest w of its kind.
struct SynapseParams {
    n: usize,
    w: Vec<f32>,
    sigma: Vec<f32>,
    mu: Vec<f32>,
    sensory_w: Vec<f32>,
    sensory_sigma: Vec<f32>,
    sensory_mu: Vec<f32>,
    input_w: Option<Vec<f32>>,
    input_b: Option<Vec<f32>>,
    w_max: f32,
    sensory_w_max: f32,
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().to_device(Device::Cpu).reshape([-1])).unwrap_or_default()
}

impl SynapseParams {
    fn from_cell(cell: &LtcCell, n: usize) -> Option<SynapseParams> {
        tch::no_grad(|| {
            let positive = |t: &Tensor| {
                if cell.options.implicit_constraints {
                    t.softplus()
                } else {
                    t.shallow_clone()
                }
            };
            let w: Vec<f32> = flat(&(positive(&cell.w) * &cell.sparsity_mask));
            let sensory_w: Vec<f32> =
                flat(&(positive(&cell.sensory_w) * &cell.sensory_sparsity_mask));
            let max = |v: &[f32]| v.iter().copied().fold(0.0f32, f32::max).max(1e-6);
            let p = SynapseParams {
                n,
                w_max: max(&w),
                sensory_w_max: max(&sensory_w),
                w,
                sigma: flat(&cell.sigma),
                mu: flat(&cell.mu),
                sensory_w,
                sensory_sigma: flat(&cell.sensory_sigma),
                sensory_mu: flat(&cell.sensory_mu),
                input_w: cell.input_w.as_ref().map(flat),
                input_b: cell.input_b.as_ref().map(flat),
            };
            (p.w.len() == n * n && p.sigma.len() == n * n && p.mu.len() == n * n).then_some(p)
        })
    }

    fn internal(&self, src: usize, dst: usize, v_pre: f32) -> f32 {
        let k = src * self.n + dst;
        let s = 1.0 / (1.0 + (-(self.sigma[k] * (v_pre - self.mu[k]))).exp());
        self.w[k] * s / self.w_max
    }

    fn sensory(&self, input: usize, dst: usize, x: f32) -> f32 {
        let k = input * self.n + dst;
        let (Some(&w), Some(&sig), Some(&mu)) = (
            self.sensory_w.get(k),
            self.sensory_sigma.get(k),
            self.sensory_mu.get(k),
        ) else {
            return 0.0;
        };
        let x = x * self
            .input_w
            .as_ref()
            .and_then(|v| v.get(input))
            .copied()
            .unwrap_or(1.0)
            + self
                .input_b
                .as_ref()
                .and_then(|v| v.get(input))
                .copied()
                .unwrap_or(0.0);
        let s = 1.0 / (1.0 + (-(sig * (x - mu))).exp());
        w * s / self.sensory_w_max
    }
}

impl NeuronPanel {
    /// The panel for `policy` acting in `spec`: its wiring laid out by layer (the same layout
    /// as `wormnet wiring`), inputs named by observation, motor neurons by action.
    pub fn for_policy(policy: &Policy, spec: &EnvSpec) -> NeuronPanel {
        let net = &policy.actor;
        let Some(wiring) = net.wiring() else {
            return NeuronPanel::from_names(spec, &net.state_labels(), &net.state_neuron_types());
        };
        let options = PictureOptions {
            sensory_names: spec.observation_names.clone(),
            motor_names: spec.action_names.clone(),
            ..PictureOptions::default()
        };
        let picture = wiring_picture::layout(wiring, &options);
        let sensory = wiring.input_dim().unwrap_or(0);
        // Neuron id → state column (identity for LTC, layer order for a wired CfC).
        let mut column_of_id = vec![None; wiring.units()];
        for (col, id) in net.state_neuron_ids().into_iter().enumerate() {
            if let Some(slot) = column_of_id.get_mut(id) {
                *slot = Some(col);
            }
        }
        let nodes = picture
            .nodes
            .iter()
            .map(|n| PanelNode {
                position: [n.x, n.y],
                label: match n.kind {
                    NeuronType::Sensory | NeuronType::Motor => n.label.clone(),
                    _ => String::new(),
                },
                label_side: if n.kind == NeuronType::Sensory {
                    LabelSide::Left
                } else {
                    LabelSide::Right
                },
                role_color: role_color(n.kind),
            })
            .collect();
        let column = (0..picture.nodes.len())
            .map(|k| {
                k.checked_sub(sensory)
                    .and_then(|id| column_of_id.get(id).copied().flatten())
            })
            .collect();
        let edges = picture
            .edges
            .iter()
            .map(|e| (e.from, e.to, e.from < sensory))
            .collect();
        let synapses = net
            .ltc()
            .and_then(|cell| SynapseParams::from_cell(cell, wiring.units()));
        NeuronPanel {
            layout: PanelLayout {
                title: format!(
                    "{} neurons, {} synapses (+ {} sensory)",
                    wiring.units(),
                    wiring.synapse_count(),
                    wiring.sensory_synapse_count()
                ),
                nodes,
                edges: picture
                    .edges
                    .iter()
                    .map(|e| PanelEdge {
                        from: e.from,
                        to: e.to,
                        polarity: e.polarity,
                    })
                    .collect(),
            },
            sensory,
            column,
            edges,
            synapses,
        }
    }

    /// A panel without synapses from neuron names alone (a recorded rollout has names and
    /// states but no wiring): inputs, then a column per role guessed from the name prefix.
    pub fn from_names(spec: &EnvSpec, names: &[String], types: &[NeuronType]) -> NeuronPanel {
        let sensory = spec.obs_dim();
        let role = |i: usize| -> NeuronType {
            types.get(i).copied().unwrap_or_else(|| {
                let n = names[i].as_str();
                if n.starts_with("motor") {
                    NeuronType::Motor
                } else if n.starts_with("command") {
                    NeuronType::Command
                } else {
                    NeuronType::Inter
                }
            })
        };
        let order = [NeuronType::Inter, NeuronType::Command, NeuronType::Motor];
        let mut nodes: Vec<PanelNode> = (0..sensory)
            .map(|i| PanelNode {
                position: [0.0, i as f32 - (sensory as f32 - 1.0) / 2.0],
                label: spec.observation_names.get(i).cloned().unwrap_or_default(),
                label_side: LabelSide::Left,
                role_color: role_color(NeuronType::Sensory),
            })
            .collect();
        let mut column = vec![None; sensory];
        let mut x = 0.0;
        for kind in order {
            let members: Vec<usize> = (0..names.len()).filter(|&i| role(i) == kind).collect();
            if members.is_empty() {
                continue;
            }
            x += 1.0;
            let mut motor = 0;
            for (r, &i) in members.iter().enumerate() {
                let label = if kind == NeuronType::Motor {
                    let l = spec
                        .action_names
                        .get(motor)
                        .cloned()
                        .unwrap_or_else(|| names[i].clone());
                    motor += 1;
                    l
                } else {
                    String::new()
                };
                nodes.push(PanelNode {
                    position: [x, r as f32 - (members.len() as f32 - 1.0) / 2.0],
                    label,
                    label_side: LabelSide::Right,
                    role_color: role_color(kind),
                });
                column.push(Some(i));
            }
        }
        NeuronPanel {
            layout: PanelLayout {
                title: format!("{} neurons", names.len()),
                nodes,
                edges: Vec::new(),
            },
            sensory,
            column,
            edges: Vec::new(),
            synapses: None,
        }
    }

    /// Nodes and synapses, for the renderer.
    pub fn layout(&self) -> &PanelLayout {
        &self.layout
    }

    /// Colours for one step: inputs and neuron potentials squashed by tanh; synapses by their
    /// LTC activity (relative to the strongest synapse of their kind), or by the squashed
    /// presynaptic value for other cells.
    pub fn state(&self, input: &[f32], neurons: &[f32]) -> PanelState {
        let value = |node: usize| -> f32 {
            if node < self.sensory {
                input.get(node).copied().unwrap_or(0.0)
            } else {
                self.column
                    .get(node)
                    .copied()
                    .flatten()
                    .and_then(|c| neurons.get(c).copied())
                    .unwrap_or(0.0)
            }
        };
        let node_activity = (0..self.layout.nodes.len())
            .map(|k| finite_tanh(value(k)))
            .collect();
        let edge_activity = self
            .edges
            .iter()
            .map(|&(from, to, sensory)| {
                let a = match &self.synapses {
                    Some(p) if sensory => p.sensory(from, to - self.sensory, value(from)),
                    Some(p) => p.internal(from - self.sensory, to - self.sensory, value(from)),
                    None => finite_tanh(value(from)).abs(),
                };
                if a.is_finite() {
                    a.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        PanelState {
            node_activity,
            edge_activity,
        }
    }
}

fn finite_tanh(v: f32) -> f32 {
    if v.is_finite() {
        v.tanh()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;

    fn cartpole_policy() -> (Policy, EnvSpec) {
        let env = wormnet_envs::registry()
            .make("cartpole", &toml::Table::new())
            .expect("cartpole");
        let spec = env.spec().clone();
        let config: PolicyConfig = toml::from_str(
            r#"
            [actor]
            cell = "ltc"
            wiring = { kind = "auto_ncp", units = 8, output_size = 2, seed = 3 }
            "#,
        )
        .expect("config");
        tch::manual_seed(0);
        (
            Policy::new(&spec, &config, Device::Cpu).expect("policy"),
            spec,
        )
    }

    #[test]
    fn panel_covers_inputs_and_neurons_and_reacts_to_state() {
        let (policy, spec) = cartpole_policy();
        let panel = NeuronPanel::for_policy(&policy, &spec);
        let n = policy.actor.state_size();
        assert_eq!(panel.layout().nodes.len(), spec.obs_dim() + n);
        assert_eq!(panel.layout().nodes[0].label, spec.observation_names[0]);
        let quiet = panel.state(&vec![0.0; spec.obs_dim()], &vec![0.0; n]);
        let busy = panel.state(&vec![2.0; spec.obs_dim()], &vec![1.5; n]);
        assert_eq!(quiet.edge_activity.len(), panel.layout().edges.len());
        assert_ne!(quiet, busy);
        assert!(busy
            .edge_activity
            .iter()
            .chain(&busy.node_activity)
            .all(|v| v.is_finite() && v.abs() <= 1.0));
    }

    #[test]
    fn step_log_round_trips_the_neuron_states() {
        let (policy, _) = cartpole_policy();
        let mut auditor = Auditor::new(Rc::new(policy), None, true);
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
