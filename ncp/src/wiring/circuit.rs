//! Circuits: named neurons with roles and typed synapses (excitatory, inhibitory, gap
//! junction) — the hand-written TOML form of a wiring file, and the one constructor that it
//! and the importers (`.bnn` files, connectome tables) share.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::config::{
    invalid, CircuitNeuron, CircuitSynapse, Generator, NeuronType, SynapseKind, WiringConfig,
    WiringError,
};
use super::graph::Wiring;

/// The circuit form of a wiring file: `[[neuron]]` tables (name, role) and `[[synapse]]`
/// tables (from, to, kind), in any order; motor neurons become the outputs in file order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitFile {
    /// Where the circuit comes from (a paper, a data file); informational.
    #[serde(default)]
    pub source: Option<String>,
    /// The neurons.
    pub neuron: Vec<CircuitNeuron>,
    /// The connections.
    #[serde(default)]
    pub synapse: Vec<CircuitSynapse>,
}

impl CircuitFile {
    /// The wiring this circuit describes (see [`Wiring::from_circuit`]).
    pub fn to_wiring(&self) -> Result<Wiring, WiringError> {
        let ids: HashMap<&str, usize> = self
            .neuron
            .iter()
            .enumerate()
            .map(|(k, n)| (n.name.as_str(), k))
            .collect();
        let id = |name: &str, s: &CircuitSynapse| {
            ids.get(name).copied().ok_or_else(|| {
                WiringError::Invalid(format!(
                    "synapse {} -> {}: no neuron named {name:?}",
                    s.from, s.to
                ))
            })
        };
        let synapses = self
            .synapse
            .iter()
            .map(|s| Ok((id(&s.from, s)?, id(&s.to, s)?, s.kind)))
            .collect::<Result<Vec<_>, WiringError>>()?;
        Wiring::from_circuit(&self.neuron, &synapses)
    }
}

/// Roles for `names` from the lists of sensory, command and motor neurons (the rest inter);
/// every listed name must be one of `names` (`what` names the list's source in errors).
pub fn assign_roles(
    names: &[String],
    [sensory, command, motor]: [&[String]; 3],
    what: &str,
) -> Result<Vec<CircuitNeuron>, WiringError> {
    let mut neurons: Vec<CircuitNeuron> = names
        .iter()
        .map(|n| CircuitNeuron {
            name: n.clone(),
            role: NeuronType::Inter,
        })
        .collect();
    for (list, role) in [
        (sensory, NeuronType::Sensory),
        (command, NeuronType::Command),
        (motor, NeuronType::Motor),
    ] {
        for name in list {
            let Some(neuron) = neurons.iter_mut().find(|n| &n.name == name) else {
                return invalid(format!(
                    "{what}: {} neuron {name:?} is not among its neurons",
                    role.as_str()
                ));
            };
            if neuron.role != NeuronType::Inter {
                return invalid(format!("{what}: neuron {name:?} is given two roles"));
            }
            neuron.role = role;
        }
    }
    Ok(neurons)
}

impl Wiring {
    /// A wiring from named neurons and typed connections `(from, to, kind)` by index into
    /// `neurons`. Motor neurons are renumbered first (the outputs, in the order given), the
    /// rest follow in order; names and roles go with them. Inputs are not listed: building
    /// for `S` inputs connects each input to each sensory neuron (excitatory).
    pub fn from_circuit(
        neurons: &[CircuitNeuron],
        synapses: &[(usize, usize, SynapseKind)],
    ) -> Result<Self, WiringError> {
        let n = neurons.len();
        let is_motor = |k: &usize| neurons[*k].role == NeuronType::Motor;
        let order: Vec<usize> = (0..n)
            .filter(is_motor)
            .chain((0..n).filter(|k| !is_motor(k)))
            .collect();
        let m = order.iter().take_while(|k| is_motor(k)).count();
        if m == 0 {
            return invalid("a circuit needs at least one neuron of role motor (its outputs)");
        }
        let mut new_id = vec![0usize; n];
        for (new, &old) in order.iter().enumerate() {
            new_id[old] = new;
        }
        let mut w = Wiring::empty(n, m, Generator::Circuit)?;
        w.neuron_types = order.iter().map(|&k| neurons[k].role).collect();
        w.set_names(order.iter().map(|&k| neurons[k].name.clone()).collect())?;
        let mut gaps = Vec::new();
        for &(a, b, kind) in synapses {
            if a >= n || b >= n {
                return invalid(format!("synapse {a} -> {b}: ids must be below {n}"));
            }
            let (a, b) = (new_id[a], new_id[b]);
            let polarity = match kind {
                SynapseKind::Gap => {
                    gaps.push((a, b));
                    continue;
                }
                SynapseKind::Excitatory => 1,
                SynapseKind::Inhibitory => -1,
            };
            let names = w.neuron_names();
            if w.adjacency[a * n + b] != 0 {
                return invalid(format!(
                    "chemical synapse {} -> {} is listed twice",
                    names[a], names[b]
                ));
            }
            w.adjacency[a * n + b] = polarity;
        }
        let names = w.neuron_names();
        w.set_gap_junctions(&gaps).map_err(|e| match e {
            WiringError::Invalid(m) => {
                WiringError::Invalid(format!("{m} (neurons by id: {})", names.join(", ")))
            }
            other => other,
        })?;
        Ok(w)
    }

    /// Connections as `(from, to, kind)` by id: chemical synapses, then gap junctions.
    pub fn typed_synapses(&self) -> Vec<(usize, usize, SynapseKind)> {
        let chemical = self.synapses().into_iter().map(|(a, b, p)| {
            let kind = if p > 0 {
                SynapseKind::Excitatory
            } else {
                SynapseKind::Inhibitory
            };
            (a, b, kind)
        });
        let gaps = self
            .gap_junctions
            .iter()
            .map(|&(a, b)| (a, b, SynapseKind::Gap));
        chemical.chain(gaps).collect()
    }
}

impl WiringConfig {
    /// This wiring with the circuit its file holds written into the config (kind `circuit`),
    /// so that a run's config rebuilds it without the file; None for a wiring that reads no
    /// file (generators rebuild from their seeds) or whose file is not a circuit of named
    /// neurons.
    pub fn embedded(&self) -> Result<Option<WiringConfig>, WiringError> {
        let path = match self {
            WiringConfig::File { path }
            | WiringConfig::Bnn { path, .. }
            | WiringConfig::Connectome { path, .. } => path,
            _ => return Ok(None),
        };
        let wiring = Wiring::from_config(self)?;
        if wiring.generator != Generator::Circuit {
            return Ok(None);
        }
        let names = wiring.neuron_names();
        let neuron = (names.iter().zip(wiring.neuron_types()))
            .map(|(name, &role)| CircuitNeuron {
                name: name.clone(),
                role,
            })
            .collect();
        let synapse = (wiring.typed_synapses().into_iter())
            .map(|(a, b, kind)| CircuitSynapse {
                from: names[a].clone(),
                to: names[b].clone(),
                kind,
            })
            .collect();
        Ok(Some(WiringConfig::Circuit {
            source: Some(format!("{}, as read when the run began", path.display())),
            neuron,
            synapse,
        }))
    }
}
