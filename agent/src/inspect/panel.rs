//! The neuron panel that `wormnet watch` and `wormnet record` draw beside the scene: the
//! wiring laid out by layer, sensory inputs named by observation, motor neurons by action,
//! and per step every neuron coloured by its potential and every synapse by its activity.

use std::sync::Arc;

use wormnet_ncp::kernels::ltc::LtcKernel;
use wormnet_ncp::wiring::picture::{self, Layout, PictureOptions};
use wormnet_ncp::{NeuronType, Wiring};
use wormnet_sim::frame::Rgba;
use wormnet_sim::render::{LabelSide, PanelEdge, PanelLayout, PanelNode, PanelState};
use wormnet_sim::EnvSpec;

use crate::inspect::audit::neuron_role;
use crate::policy::Policy;

fn role_color(kind: NeuronType) -> Rgba {
    let (r, g, b) = picture::colour(kind);
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
    /// Per edge: `(presynaptic node, postsynaptic node, is a gap junction)`; the junctions
    /// (symmetric: either node may be the one pushed) come after the synapses.
    edges: Vec<(usize, usize, bool)>,
    synapses: Option<Synapses>,
    /// A name per node (observation names, then neuron labels), for the contributor list.
    names: Vec<String>,
    /// The role of each node (the inputs sensory).
    roles: Vec<NeuronType>,
}

/// An LTC's synapses as the panel draws them: each synapse's current into its target,
/// `a·(erev − v_target)` from the kernel (a gap junction's `g·(v_from − v_to)`), relative to
/// the largest of the step (line width and opacity), and for each panel edge its place in the
/// kernel's lists.
struct Synapses {
    kernel: Arc<LtcKernel>,
    /// Panel edge → its place in the kernel's lists.
    slot: Vec<Option<Slot>>,
}

/// Where a panel edge's current is in the kernel's lists, by index.
#[derive(Clone, Copy)]
enum Slot {
    Sensory(usize),
    Internal(usize),
    Gap(usize),
}

/// The picture's nodes as the panel draws them: sensory and motor neurons labelled (sensory
/// on the left), each in its role's colour.
fn panel_nodes(picture: &Layout) -> Vec<PanelNode> {
    picture
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
        .collect()
}

/// For each picture edge, its place in the LTC kernel's sensory or internal synapse list.
fn synapse_slots(picture: &Layout, wiring: &Wiring, sensory: usize) -> Vec<Option<Slot>> {
    let (internal, sensory_list) = (wiring.synapses(), wiring.sensory_synapses());
    picture
        .edges
        .iter()
        .map(|e| {
            if e.from < sensory {
                let key = (e.from, e.to - sensory);
                sensory_list
                    .iter()
                    .position(|&(s, d, _)| (s, d) == key)
                    .map(Slot::Sensory)
            } else {
                let key = (e.from - sensory, e.to - sensory);
                internal
                    .iter()
                    .position(|&(s, d, _)| (s, d) == key)
                    .map(Slot::Internal)
            }
        })
        .chain((0..picture.gaps.len()).map(|k| Some(Slot::Gap(k))))
        .collect()
}

/// A name per node: the `sensory` input names, then each neuron's label (`neuron_ID` when
/// it has none).
fn node_names(
    policy: &Policy,
    spec: &EnvSpec,
    sensory: usize,
    units: usize,
    column_of_id: &[Option<usize>],
) -> Vec<String> {
    let labels = policy.neuron_labels();
    let mut names = policy.sensory_names(spec);
    names.resize(sensory, String::new());
    for id in 0..units {
        let label = column_of_id
            .get(id)
            .copied()
            .flatten()
            .and_then(|c| labels.get(c).cloned())
            .unwrap_or_else(|| format!("neuron_{id}"));
        names.push(label);
    }
    names
}

impl NeuronPanel {
    /// The panel for `policy` acting in `spec`: its wiring laid out by layer (the same layout
    /// as `wormnet wiring`), inputs named by observation (or encoder feature), motor neurons
    /// by action.
    pub fn for_policy(policy: &Policy, spec: &EnvSpec) -> NeuronPanel {
        let net = &policy.actor;
        let Some(wiring) = net.wiring() else {
            return NeuronPanel::from_names(
                spec,
                &policy.sensory_names(spec),
                &net.state_labels(),
                &net.state_neuron_types(),
            );
        };
        let options = PictureOptions {
            sensory_names: policy.sensory_names(spec),
            motor_names: spec.action_names.clone(),
            ..PictureOptions::default()
        };
        let picture = picture::layout(wiring, &options);
        let sensory = wiring.input_dim().unwrap_or(0);
        // Neuron id → state column (identity for LTC, layer order for a wired CfC).
        let mut column_of_id = vec![None; wiring.units()];
        for (col, id) in net.state_neuron_ids().into_iter().enumerate() {
            if let Some(slot) = column_of_id.get_mut(id) {
                *slot = Some(col);
            }
        }
        let nodes = panel_nodes(&picture);
        let column = (0..picture.nodes.len())
            .map(|k| {
                k.checked_sub(sensory)
                    .and_then(|id| column_of_id.get(id).copied().flatten())
            })
            .collect();
        let edges = (picture.edges.iter().map(|e| (e.from, e.to, false)))
            .chain(picture.gaps.iter().map(|&(a, b)| (a, b, true)))
            .collect();
        let synapses = net.ltc_kernel().map(|kernel| Synapses {
            kernel,
            slot: synapse_slots(&picture, wiring, sensory),
        });
        let names = node_names(policy, spec, sensory, wiring.units(), &column_of_id);
        NeuronPanel {
            layout: PanelLayout {
                title: format!(
                    "{} neurons, {} synapses (+ {} sensory)",
                    wiring.units(),
                    wiring.synapse_count(),
                    wiring.sensory_synapse_count()
                ),
                nodes,
                edges: (picture.edges.iter())
                    .map(|e| (e.from, e.to, e.polarity))
                    .chain(picture.gaps.iter().map(|&(a, b)| (a, b, 0)))
                    .map(|(from, to, polarity)| PanelEdge { from, to, polarity })
                    .collect(),
            },
            sensory,
            column,
            edges,
            synapses,
            names,
            roles: picture.nodes.iter().map(|n| n.kind).collect(),
        }
    }

    /// A panel without synapses from neuron names alone (a recorded rollout has names and
    /// states but no wiring): the `inputs` by name, then a column per role guessed from the
    /// name prefix, motor neurons named by `spec`'s actions.
    pub fn from_names(
        spec: &EnvSpec,
        inputs: &[String],
        names: &[String],
        types: &[NeuronType],
    ) -> NeuronPanel {
        let sensory = inputs.len();
        let role = |i: usize| -> NeuronType {
            (types.get(i).copied()).unwrap_or_else(|| neuron_role(None, i, &names[i]))
        };
        // A circuit's sensory neurons get a column of their own, after the inputs.
        let order = [
            NeuronType::Sensory,
            NeuronType::Inter,
            NeuronType::Command,
            NeuronType::Motor,
        ];
        let mut nodes: Vec<PanelNode> = (0..sensory)
            .map(|i| PanelNode {
                position: [0.0, i as f32 - (sensory as f32 - 1.0) / 2.0],
                label: inputs[i].clone(),
                label_side: LabelSide::Left,
                role_color: role_color(NeuronType::Sensory),
            })
            .collect();
        let mut column = vec![None; sensory];
        let mut roles = vec![NeuronType::Sensory; sensory];
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
                roles.push(kind);
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
            names: Vec::new(),
            roles,
        }
    }

    /// Nodes and synapses, for the renderer.
    pub fn layout(&self) -> &PanelLayout {
        &self.layout
    }

    /// Colours for one step: inputs and neuron potentials squashed by tanh; synapses (width and
    /// opacity) by their LTC current into the target relative to the step's largest, or by the
    /// squashed presynaptic value for other cells.
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
        let currents = self.currents(input, neurons);
        let max = currents
            .iter()
            .flatten()
            .fold(0.0f32, |m, c| m.max(c.abs()))
            .max(1e-9);
        let edge_activity = self
            .edges
            .iter()
            .enumerate()
            .map(|(k, &(from, _, _))| {
                let a = match currents.get(k) {
                    Some(Some(c)) => c.abs() / max,
                    Some(None) => 0.0,
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

impl NeuronPanel {
    /// Each panel edge's synaptic current this step (LTC; empty for other cells, `None` for an
    /// edge the kernel does not list).
    fn currents(&self, input: &[f32], neurons: &[f32]) -> Vec<Option<f32>> {
        let Some(s) = &self.synapses else {
            return Vec::new();
        };
        let (internal, sensory) = s.kernel.synapse_currents(neurons, input);
        let gaps = s.kernel.gap_currents(neurons);
        s.slot
            .iter()
            .map(|slot| match slot {
                Some(Slot::Sensory(i)) => sensory.get(*i).map(|c| c.2),
                Some(Slot::Internal(i)) => internal.get(*i).map(|c| c.2),
                Some(Slot::Gap(i)) => gaps.get(*i).map(|c| c.2),
                None => None,
            })
            .collect()
    }

    /// The largest synaptic currents into each motor neuron this step, as one line
    /// (`steering <- command_5 -1.48, command_0 +1.40`); None for cells without synapses.
    pub fn top_contributors(
        &self,
        input: &[f32],
        neurons: &[f32],
        per_motor: usize,
    ) -> Option<String> {
        let currents = self.currents(input, neurons);
        if currents.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for target in self.sensory..self.layout.nodes.len() {
            let name = self.names.get(target).map(String::as_str).unwrap_or("");
            if self.roles.get(target) != Some(&NeuronType::Motor) {
                continue;
            }
            // A junction pushes both ends: its other end into this one, either way round.
            let into = |&(from, to, gap): &(usize, usize, bool), c: f32| {
                if to == target {
                    Some((from, c))
                } else if gap && from == target {
                    Some((to, -c))
                } else {
                    None
                }
            };
            let mut inputs: Vec<(usize, f32)> = (self.edges.iter().enumerate())
                .filter_map(|(k, e)| into(e, currents.get(k).copied().flatten()?))
                .collect();
            inputs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            let list: Vec<String> = inputs
                .iter()
                .take(per_motor)
                .map(|&(from, c)| {
                    format!(
                        "{} {c:+.2}",
                        self.names.get(from).map_or("?", String::as_str)
                    )
                })
                .collect();
            parts.push(format!(
                "{} <- {}",
                name.trim_start_matches("motor_"),
                list.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
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
    use crate::inspect::tests::cartpole_policy;

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
}
