//! The serde form of a wiring (`kind = "auto_ncp"` …), the NCP generator's parameters as ncps
//! derives them, and what can go wrong making one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What can go wrong when making or loading a wiring; messages name the field or file.
#[derive(Debug, Error)]
pub enum WiringError {
    /// A size or parameter that cannot produce a valid wiring.
    #[error("invalid wiring: {0}")]
    Invalid(String),
    /// `build` called with a different input size than before.
    #[error("wiring already built for {built} inputs, cannot rebuild for {requested}")]
    ConflictingInputDim {
        /// The input size it was built with.
        built: usize,
        /// The input size asked for now.
        requested: usize,
    },
    /// The wiring file could not be read.
    #[error("cannot read wiring file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The wiring file could not be parsed or is inconsistent.
    #[error("wiring file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

pub(super) fn invalid<T>(msg: impl Into<String>) -> Result<T, WiringError> {
    Err(WiringError::Invalid(msg.into()))
}

/// The role of a neuron, used for layering, colouring and labelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeuronType {
    /// An input feature; in a circuit file also a state neuron the inputs feed (the worm's
    /// touch receptors PLM, ALM, …).
    Sensory,
    /// First hidden layer, fed by sensory neurons.
    Inter,
    /// Second hidden layer, with recurrent synapses among itself.
    Command,
    /// Output neurons; their potentials are the cell's outputs.
    Motor,
}

impl NeuronType {
    /// Lower-case name, as ncps's `get_type_of_neuron` returns it.
    pub fn as_str(self) -> &'static str {
        match self {
            NeuronType::Sensory => "sensory",
            NeuronType::Inter => "inter",
            NeuronType::Command => "command",
            NeuronType::Motor => "motor",
        }
    }
}

/// What a connection between two neurons is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynapseKind {
    /// A chemical synapse pulling the target toward a high reversal potential (+1).
    Excitatory,
    /// A chemical synapse pulling the target toward a low reversal potential (−1).
    Inhibitory,
    /// A gap junction (electrical synapse): a symmetric current between the two neurons.
    Gap,
}

impl SynapseKind {
    /// The name used in files and in `attribution.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            SynapseKind::Excitatory => "excitatory",
            SynapseKind::Inhibitory => "inhibitory",
            SynapseKind::Gap => "gap",
        }
    }
}

/// One neuron of a circuit file: its name and role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitNeuron {
    /// Its name (`AVA`); labels it everywhere.
    pub name: String,
    /// `sensory` (fed by the inputs), `inter`, `command` or `motor` (an output).
    pub role: NeuronType,
}

/// One connection of a circuit file, between neurons named in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSynapse {
    /// Presynaptic neuron (for a gap junction, either end).
    pub from: String,
    /// Postsynaptic neuron (for a gap junction, the other end).
    pub to: String,
    /// `excitatory`, `inhibitory` or `gap`.
    pub kind: SynapseKind,
}

/// Largest wiring: keeps `N²` synapse candidates within numpy's 32-bit sampling range.
pub(super) const MAX_UNITS: usize = 65_535;

fn seed_1111() -> u64 {
    1111
}
fn seed_22222() -> u64 {
    22222
}
fn default_true() -> bool {
    true
}
fn half() -> f64 {
    0.5
}

/// How to make a wiring: the serde form used in experiment configs (`kind = "auto_ncp"` …).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WiringConfig {
    /// Every neuron to every neuron (ncps `FullyConnected`), polarity −1 with probability 1/3.
    FullyConnected {
        /// Number of neurons.
        units: usize,
        /// Number of motor (output) neurons; defaults to `units`.
        #[serde(default)]
        output_dim: Option<usize>,
        /// numpy `default_rng` seed (ncps `erev_init_seed`).
        #[serde(default = "seed_1111")]
        seed: u64,
        /// Whether neurons synapse onto themselves.
        #[serde(default = "default_true")]
        self_connections: bool,
    },
    /// A random subset of all synapses (ncps `Random`).
    Random {
        /// Number of neurons.
        units: usize,
        /// Number of motor (output) neurons; defaults to `units`.
        #[serde(default)]
        output_dim: Option<usize>,
        /// Fraction of synapses removed, in `[0, 1)`.
        #[serde(default)]
        sparsity_level: f64,
        /// numpy `default_rng` seed.
        #[serde(default = "seed_1111")]
        seed: u64,
    },
    /// The four-layer Neural Circuit Policy with explicit sizes and fan-outs (ncps `NCP`).
    Ncp {
        /// Inter neurons (first hidden layer).
        inter_neurons: usize,
        /// Command neurons (second hidden layer, recurrent).
        command_neurons: usize,
        /// Motor neurons (outputs).
        motor_neurons: usize,
        /// Inter neurons each sensory input connects to.
        sensory_fanout: usize,
        /// Command neurons each inter neuron connects to.
        inter_fanout: usize,
        /// Recurrent command→command synapses drawn (duplicates collapse).
        recurrent_command_synapses: usize,
        /// Command neurons each motor neuron listens to.
        motor_fanin: usize,
        /// numpy `RandomState` seed, `< 2^32`.
        #[serde(default = "seed_22222")]
        seed: u64,
    },
    /// An NCP sized automatically from a neuron budget (ncps `AutoNCP`).
    AutoNcp {
        /// Total neurons (inter + command + motor).
        units: usize,
        /// Motor neurons (outputs).
        output_size: usize,
        /// Sparsity in `[0.1, 1.0]`; fan-outs are `(1 − sparsity)` of the target layer.
        #[serde(default = "half")]
        sparsity_level: f64,
        /// numpy `RandomState` seed, `< 2^32`.
        #[serde(default = "seed_22222")]
        seed: u64,
    },
    /// A wiring file (JSON or TOML: the [`Wiring`] serde form or a circuit of named neurons).
    File {
        /// Path of the file.
        path: PathBuf,
    },
    /// A `.bnn` circuit file of the worm-level-control experiments, its neurons named here.
    Bnn {
        /// Path of the file.
        path: PathBuf,
        /// Neuron names, by the file's indices.
        names: Vec<String>,
        /// Neurons the inputs feed.
        #[serde(default)]
        sensory: Vec<String>,
        /// Command neurons (the rest are inter neurons).
        #[serde(default)]
        command: Vec<String>,
        /// Motor neurons: the outputs, in the order of `names`.
        motor: Vec<String>,
    },
    /// A cut of a connectome edge list (`pre post type synapses`, the OpenWorm c302 tables).
    Connectome {
        /// Path of the table.
        path: PathBuf,
        /// The neurons to keep (merged names such as `AVA` take both sides `AVAL`, `AVAR`).
        keep: Vec<String>,
        /// Neurons the inputs feed.
        #[serde(default)]
        sensory: Vec<String>,
        /// Command neurons (the rest are inter neurons).
        #[serde(default)]
        command: Vec<String>,
        /// Motor neurons: the outputs, in the order of `keep`.
        motor: Vec<String>,
        /// Neurons whose chemical synapses are inhibitory (the rest excitatory).
        #[serde(default)]
        inhibitory: Vec<String>,
    },
    /// A circuit written out in the config itself (named neurons, typed synapses), the way a
    /// run keeps a wiring read from a file: its directory alone rebuilds the policy, whatever
    /// later happens to the file ([`WiringConfig::embedded`]).
    Circuit {
        /// Where the circuit comes from; informational.
        #[serde(default)]
        source: Option<String>,
        /// The neurons, in the wiring's order (motor neurons first).
        neuron: Vec<CircuitNeuron>,
        /// The connections.
        #[serde(default)]
        synapse: Vec<CircuitSynapse>,
    },
}

/// The most neurons a generated wiring may have: an LTC of this size already holds 16 M
/// synapses; a typo (`units = 100000000`) is an error instead of an allocation that aborts.
pub const MAX_NEURONS: usize = 4_096;

impl WiringConfig {
    /// How many neurons the generator would make (None for a wiring file, sized by its file).
    pub fn neurons(&self) -> Option<usize> {
        match self {
            WiringConfig::FullyConnected { units, .. }
            | WiringConfig::Random { units, .. }
            | WiringConfig::AutoNcp { units, .. } => Some(*units),
            WiringConfig::Ncp {
                inter_neurons,
                command_neurons,
                motor_neurons,
                ..
            } => Some(
                inter_neurons
                    .saturating_add(*command_neurons)
                    .saturating_add(*motor_neurons),
            ),
            WiringConfig::Bnn { names, .. } => Some(names.len()),
            WiringConfig::Connectome { keep, .. } => Some(keep.len()),
            WiringConfig::Circuit { neuron, .. } => Some(neuron.len()),
            WiringConfig::File { .. } => None,
        }
    }
}

/// NCP layer sizes and fan-outs, the parameters of the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NcpParams {
    /// Inter neurons.
    pub inter: usize,
    /// Command neurons.
    pub command: usize,
    /// Motor neurons.
    pub motor: usize,
    /// Sensory fan-out onto inter neurons.
    pub sensory_fanout: usize,
    /// Inter fan-out onto command neurons.
    pub inter_fanout: usize,
    /// Recurrent command synapses drawn.
    pub recurrent_command_synapses: usize,
    /// Motor fan-in from command neurons.
    pub motor_fanin: usize,
    /// RandomState seed.
    pub seed: u32,
}

/// AutoNCP's derivation of NCP parameters, exactly as ncps computes it (f64, truncation).
pub fn auto_ncp_params(
    units: usize,
    output_size: usize,
    sparsity_level: f64,
    seed: u64,
) -> Result<NcpParams, WiringError> {
    if output_size == 0 {
        return invalid("AutoNCP output_size must be at least 1");
    }
    if output_size + 2 >= units {
        return invalid(format!(
            "AutoNCP output_size ({output_size}) must be less than units − 2 ({units} − 2)"
        ));
    }
    if !(0.1..=1.0).contains(&sparsity_level) {
        return invalid(format!(
            "AutoNCP sparsity_level {sparsity_level} must be in [0.1, 1.0]"
        ));
    }
    let density = 1.0 - sparsity_level;
    let inter_and_command = units - output_size;
    let command = ((0.4 * inter_and_command as f64) as usize).max(1);
    let inter = inter_and_command - command;
    let params = NcpParams {
        inter,
        command,
        motor: output_size,
        sensory_fanout: ((inter as f64 * density) as usize).max(1),
        inter_fanout: ((command as f64 * density) as usize).max(1),
        recurrent_command_synapses: ((command as f64 * density * 2.0) as usize).max(1),
        motor_fanin: ((command as f64 * density) as usize).max(1),
        seed: ncp_seed(seed)?,
    };
    params.validate()?;
    Ok(params)
}

pub(super) fn ncp_seed(seed: u64) -> Result<u32, WiringError> {
    u32::try_from(seed).map_err(|_| {
        WiringError::Invalid(format!(
            "NCP seed {seed} must be below 2^32 (numpy RandomState)"
        ))
    })
}

impl NcpParams {
    pub(super) fn validate(&self) -> Result<(), WiringError> {
        if self.inter == 0 || self.command == 0 || self.motor == 0 {
            return invalid(format!(
                "NCP layers must be non-empty (inter {}, command {}, motor {})",
                self.inter, self.command, self.motor
            ));
        }
        if self.motor_fanin == 0 || self.motor_fanin > self.command {
            return invalid(format!(
                "NCP motor_fanin {} must be in 1..={} (command neurons)",
                self.motor_fanin, self.command
            ));
        }
        if self.sensory_fanout == 0 || self.sensory_fanout > self.inter {
            return invalid(format!(
                "NCP sensory_fanout {} must be in 1..={} (inter neurons)",
                self.sensory_fanout, self.inter
            ));
        }
        if self.inter_fanout == 0 || self.inter_fanout > self.command {
            return invalid(format!(
                "NCP inter_fanout {} must be in 1..={} (command neurons)",
                self.inter_fanout, self.command
            ));
        }
        let command_fanin = (self.inter * self.inter_fanout / self.command).clamp(1, self.command);
        if command_fanin > self.inter {
            return invalid(format!(
                "NCP with {} inter and {} command neurons would need {} inter inputs per command neuron",
                self.inter, self.command, command_fanin
            ));
        }
        Ok(())
    }
}

/// Where a wiring's synapses come from, so that `build` can generate the sensory part.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Generator {
    FullyConnected {
        seed: u64,
        self_connections: bool,
    },
    Random {
        sparsity_level: f64,
        seed: u64,
    },
    Ncp(NcpParams),
    /// Loaded from a file: the sensory synapses (if any) are part of the data.
    Custom,
    /// A circuit whose inputs are not listed: `build` connects every input to every neuron of
    /// role sensory (excitatory), the circuit's own synapses untouched.
    Circuit,
}

/// numpy's `np.round` (banker's rounding) followed by `int()`.
pub(super) fn round_half_even(x: f64) -> usize {
    let r = x.round();
    let r = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    };
    r.max(0.0) as usize
}
