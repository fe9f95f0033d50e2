//! Wirings: which neuron talks to which, with what polarity — the fixed, sparse structure that
//! makes a Neural Circuit Policy small and auditable.
//!
//! A [`Wiring`] is plain data: `N` neurons, an `N×N` adjacency `[source, destination]` with
//! polarity ±1 (0 = no synapse), and once built for `S` inputs an `S×N` sensory adjacency.
//! Neuron ids are motor-first as in ncps (`[0, M)` motor, then command, then inter), so LTC
//! outputs are the first `M` state entries. The generated kinds (FullyConnected, Random, NCP,
//! AutoNCP) reproduce ncps 1.0.1 synapse for synapse with the same seed (see [`numpy_rng`]);
//! any adjacency can also be loaded from a JSON or TOML file.
//!
//! Unlike ncps, [`Wiring::build`] is idempotent: building twice with the same input size
//! changes nothing (ncps silently adds a second set of synapses).

pub mod numpy_rng;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use numpy_rng::{LegacyRandomState, Pcg64};

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

fn invalid<T>(msg: impl Into<String>) -> Result<T, WiringError> {
    Err(WiringError::Invalid(msg.into()))
}

/// The role of a neuron, used for layering, colouring and labelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeuronType {
    /// An input feature (not a state neuron; sensory ids are a separate index space).
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

/// Largest wiring: keeps `N²` synapse candidates within numpy's 32-bit sampling range.
const MAX_UNITS: usize = 65_535;

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
    /// A wiring file (JSON or TOML, the [`Wiring`] serde form).
    File {
        /// Path of the file.
        path: PathBuf,
    },
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

fn ncp_seed(seed: u64) -> Result<u32, WiringError> {
    u32::try_from(seed).map_err(|_| {
        WiringError::Invalid(format!(
            "NCP seed {seed} must be below 2^32 (numpy RandomState)"
        ))
    })
}

impl NcpParams {
    fn validate(&self) -> Result<(), WiringError> {
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
enum Generator {
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
}

/// A wiring: neurons, typed and layered, with a fixed signed adjacency. Plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WiringFile", into = "WiringFile")]
pub struct Wiring {
    units: usize,
    output_dim: usize,
    input_dim: Option<usize>,
    adjacency: Vec<i8>,
    sensory_adjacency: Vec<i8>,
    neuron_types: Vec<NeuronType>,
    layers: Vec<Vec<usize>>,
    generator: Generator,
    config: Option<WiringConfig>,
}

impl Wiring {
    /// Makes the (unbuilt) wiring a config describes; a `file` config is loaded and may be built.
    pub fn from_config(config: &WiringConfig) -> Result<Self, WiringError> {
        let mut w = match config {
            WiringConfig::FullyConnected {
                units,
                output_dim,
                seed,
                self_connections,
            } => Self::fully_connected(*units, *output_dim, *seed, *self_connections)?,
            WiringConfig::Random {
                units,
                output_dim,
                sparsity_level,
                seed,
            } => Self::random(*units, *output_dim, *sparsity_level, *seed)?,
            WiringConfig::Ncp {
                inter_neurons,
                command_neurons,
                motor_neurons,
                sensory_fanout,
                inter_fanout,
                recurrent_command_synapses,
                motor_fanin,
                seed,
            } => Self::ncp(NcpParams {
                inter: *inter_neurons,
                command: *command_neurons,
                motor: *motor_neurons,
                sensory_fanout: *sensory_fanout,
                inter_fanout: *inter_fanout,
                recurrent_command_synapses: *recurrent_command_synapses,
                motor_fanin: *motor_fanin,
                seed: ncp_seed(*seed)?,
            })?,
            WiringConfig::AutoNcp {
                units,
                output_size,
                sparsity_level,
                seed,
            } => Self::ncp(auto_ncp_params(
                *units,
                *output_size,
                *sparsity_level,
                *seed,
            )?)?,
            WiringConfig::File { path } => return Self::load(path),
        };
        w.config = Some(config.clone());
        Ok(w)
    }

    fn empty(units: usize, output_dim: usize, generator: Generator) -> Result<Self, WiringError> {
        if units == 0 {
            return invalid("a wiring needs at least one neuron");
        }
        if units > MAX_UNITS {
            return invalid(format!(
                "{units} neurons: at most {MAX_UNITS} are supported"
            ));
        }
        if output_dim == 0 || output_dim > units {
            return invalid(format!(
                "output_dim {output_dim} must be in 1..={units} (units)"
            ));
        }
        let neuron_types = (0..units)
            .map(|i| {
                if i < output_dim {
                    NeuronType::Motor
                } else {
                    NeuronType::Inter
                }
            })
            .collect();
        Ok(Self {
            units,
            output_dim,
            input_dim: None,
            adjacency: vec![0; units * units],
            sensory_adjacency: Vec::new(),
            neuron_types,
            layers: vec![(0..units).collect()],
            generator,
            config: None,
        })
    }

    /// ncps `FullyConnected(units, output_dim, erev_init_seed, self_connections)`.
    pub fn fully_connected(
        units: usize,
        output_dim: Option<usize>,
        seed: u64,
        self_connections: bool,
    ) -> Result<Self, WiringError> {
        let mut w = Self::empty(
            units,
            output_dim.unwrap_or(units),
            Generator::FullyConnected {
                seed,
                self_connections,
            },
        )?;
        w.generate_internal();
        Ok(w)
    }

    /// ncps `Random(units, output_dim, sparsity_level, random_seed)`.
    pub fn random(
        units: usize,
        output_dim: Option<usize>,
        sparsity_level: f64,
        seed: u64,
    ) -> Result<Self, WiringError> {
        if !(0.0..1.0).contains(&sparsity_level) {
            return invalid(format!(
                "Random sparsity_level {sparsity_level} must be in [0, 1)"
            ));
        }
        let mut w = Self::empty(
            units,
            output_dim.unwrap_or(units),
            Generator::Random {
                sparsity_level,
                seed,
            },
        )?;
        w.generate_internal();
        Ok(w)
    }

    /// ncps `NCP(...)`: the synapses are drawn at `build`, when the input size is known.
    pub fn ncp(params: NcpParams) -> Result<Self, WiringError> {
        params.validate()?;
        let units = params.inter + params.command + params.motor;
        let mut w = Self::empty(units, params.motor, Generator::Ncp(params))?;
        let m = params.motor;
        let c = params.command;
        for (i, t) in w.neuron_types.iter_mut().enumerate() {
            *t = if i < m {
                NeuronType::Motor
            } else if i < m + c {
                NeuronType::Command
            } else {
                NeuronType::Inter
            };
        }
        w.layers = vec![
            (m + c..units).collect(),
            (m..m + c).collect(),
            (0..m).collect(),
        ];
        Ok(w)
    }

    /// ncps `AutoNCP(units, output_size, sparsity_level, seed)`.
    pub fn auto_ncp(
        units: usize,
        output_size: usize,
        sparsity_level: f64,
        seed: u64,
    ) -> Result<Self, WiringError> {
        Self::ncp(auto_ncp_params(units, output_size, sparsity_level, seed)?)
    }

    /// Internal synapses drawn in the constructor (FullyConnected, Random), continuing into
    /// `build` with the same generator state, as ncps does.
    fn generate_internal(&mut self) {
        let _ = self.draw(None);
    }

    /// Runs the generator from its seed: internal synapses and, when `inputs` is given, the
    /// sensory ones. Regenerating from scratch is what makes `build` idempotent.
    fn draw(&mut self, inputs: Option<usize>) -> Result<(), WiringError> {
        let n = self.units;
        match self.generator.clone() {
            Generator::FullyConnected {
                seed,
                self_connections,
            } => {
                let mut rng = Pcg64::new(seed);
                self.adjacency = vec![0; n * n];
                for src in 0..n {
                    for dst in 0..n {
                        if src == dst && !self_connections {
                            continue;
                        }
                        self.adjacency[src * n + dst] = rng.pick(&[-1i8, 1, 1]);
                    }
                }
                if let Some(s) = inputs {
                    self.sensory_adjacency = vec![0; s * n];
                    for v in self.sensory_adjacency.iter_mut() {
                        *v = rng.pick(&[-1i8, 1, 1]);
                    }
                }
            }
            Generator::Random {
                sparsity_level,
                seed,
            } => {
                let mut rng = Pcg64::new(seed);
                self.adjacency = vec![0; n * n];
                let count = round_half_even((n * n) as f64 * (1.0 - sparsity_level));
                for idx in rng.choose_indices(n * n, count) {
                    self.adjacency[idx] = rng.pick(&[-1i8, 1, 1]);
                }
                if let Some(s) = inputs {
                    self.sensory_adjacency = vec![0; s * n];
                    let count = round_half_even((s * n) as f64 * (1.0 - sparsity_level));
                    for idx in rng.choose_indices(s * n, count) {
                        // ncps draws two polarities and keeps the second (quirk Q3).
                        let _ = rng.pick(&[-1i8, 1, 1]);
                        self.sensory_adjacency[idx] = rng.pick(&[-1i8, 1, 1]);
                    }
                }
            }
            Generator::Ncp(p) => {
                if let Some(s) = inputs {
                    self.draw_ncp(&p, s)?;
                }
            }
            Generator::Custom => {}
        }
        Ok(())
    }

    fn draw_ncp(&mut self, p: &NcpParams, s: usize) -> Result<(), WiringError> {
        if s == 0 {
            return invalid("an NCP wiring needs at least one input");
        }
        let n = self.units;
        let (m, c, i) = (p.motor, p.command, p.inter);
        let motor: Vec<usize> = (0..m).collect();
        let command: Vec<usize> = (m..m + c).collect();
        let inter: Vec<usize> = (m + c..n).collect();
        let sensory: Vec<usize> = (0..s).collect();
        let mut rng = LegacyRandomState::new(p.seed);
        let mut adj = vec![0i8; n * n];
        let mut sadj = vec![0i8; s * n];
        let pol = |rng: &mut LegacyRandomState| rng.pick(&[-1i8, 1]);

        // 1. sensory -> inter
        let mut unreached = inter.clone();
        for &src in &sensory {
            for dst in rng.choose(&inter, p.sensory_fanout) {
                unreached.retain(|&x| x != dst);
                sadj[src * n + dst] = pol(&mut rng);
            }
        }
        let fanin = (s * p.sensory_fanout / i).clamp(1, s);
        for &dst in &unreached {
            for src in rng.choose(&sensory, fanin) {
                sadj[src * n + dst] = pol(&mut rng);
            }
        }
        // 2. inter -> command
        let mut unreached = command.clone();
        for &src in &inter {
            for dst in rng.choose(&command, p.inter_fanout) {
                unreached.retain(|&x| x != dst);
                adj[src * n + dst] = pol(&mut rng);
            }
        }
        let fanin = (i * p.inter_fanout / c).clamp(1, c);
        for &dst in &unreached {
            for src in rng.choose(&inter, fanin) {
                adj[src * n + dst] = pol(&mut rng);
            }
        }
        // 3. command -> command (recurrent)
        for _ in 0..p.recurrent_command_synapses {
            let src = rng.pick(&command);
            let dst = rng.pick(&command);
            adj[src * n + dst] = pol(&mut rng);
        }
        // 4. command -> motor
        let mut unreached = command.clone();
        for &dst in &motor {
            for src in rng.choose(&command, p.motor_fanin) {
                unreached.retain(|&x| x != src);
                adj[src * n + dst] = pol(&mut rng);
            }
        }
        let fanout = (m * p.motor_fanin / c).clamp(1, m);
        for &src in &unreached {
            for dst in rng.choose(&motor, fanout) {
                adj[src * n + dst] = pol(&mut rng);
            }
        }
        self.adjacency = adj;
        self.sensory_adjacency = sadj;
        Ok(())
    }

    /// Fixes the number of inputs and draws the sensory synapses. Idempotent: a second call
    /// with the same size changes nothing; a different size is an error.
    pub fn build(&mut self, input_dim: usize) -> Result<(), WiringError> {
        match self.input_dim {
            Some(d) if d == input_dim => return Ok(()),
            Some(d) => {
                return Err(WiringError::ConflictingInputDim {
                    built: d,
                    requested: input_dim,
                })
            }
            None => {}
        }
        if input_dim == 0 || input_dim > MAX_UNITS {
            return invalid(format!(
                "{input_dim} inputs: a wiring needs 1..={MAX_UNITS} inputs"
            ));
        }
        if self.generator == Generator::Custom {
            return invalid(format!(
                "this wiring was loaded without sensory synapses; its file must list them for {input_dim} inputs"
            ));
        }
        self.draw(Some(input_dim))?;
        self.input_dim = Some(input_dim);
        Ok(())
    }

    /// A built copy, leaving `self` untouched (handy for reusing one wiring in several cells).
    pub fn built(&self, input_dim: usize) -> Result<Self, WiringError> {
        let mut w = self.clone();
        w.build(input_dim)?;
        Ok(w)
    }

    /// Number of neurons `N` (the state size).
    pub fn units(&self) -> usize {
        self.units
    }
    /// Number of motor neurons `M` (the output size).
    pub fn output_dim(&self) -> usize {
        self.output_dim
    }
    /// Number of inputs `S`, once built.
    pub fn input_dim(&self) -> Option<usize> {
        self.input_dim
    }
    /// Whether `build` has fixed the input size.
    pub fn is_built(&self) -> bool {
        self.input_dim.is_some()
    }
    /// The config this wiring was generated from, if any.
    pub fn config(&self) -> Option<&WiringConfig> {
        self.config.as_ref()
    }
    /// Polarity of the synapse `src → dst` (0 if none).
    pub fn synapse(&self, src: usize, dst: usize) -> i8 {
        self.adjacency[src * self.units + dst]
    }
    /// Polarity of the sensory synapse `input → dst` (0 if none or unbuilt).
    pub fn sensory_synapse(&self, input: usize, dst: usize) -> i8 {
        self.sensory_adjacency
            .get(input * self.units + dst)
            .copied()
            .unwrap_or(0)
    }
    /// Row-major `N×N` adjacency `[src, dst]` with values in {−1, 0, 1}.
    pub fn adjacency(&self) -> &[i8] {
        &self.adjacency
    }
    /// Row-major `S×N` sensory adjacency (empty until built).
    pub fn sensory_adjacency(&self) -> &[i8] {
        &self.sensory_adjacency
    }
    /// Number of internal synapses.
    pub fn synapse_count(&self) -> usize {
        self.adjacency.iter().filter(|&&v| v != 0).count()
    }
    /// Number of sensory synapses (the correct count; ncps's cells report the internal one).
    pub fn sensory_synapse_count(&self) -> usize {
        self.sensory_adjacency.iter().filter(|&&v| v != 0).count()
    }
    /// The role of neuron `id`.
    pub fn neuron_type(&self, id: usize) -> NeuronType {
        self.neuron_types[id]
    }
    /// Roles of all neurons, by id.
    pub fn neuron_types(&self) -> &[NeuronType] {
        &self.neuron_types
    }
    /// Display names: `motor_0`, `command_0`, `inter_0`, … numbered within each type.
    pub fn neuron_names(&self) -> Vec<String> {
        let mut counts = std::collections::HashMap::new();
        self.neuron_types
            .iter()
            .map(|t| {
                let k = counts.entry(*t).or_insert(0usize);
                *k += 1;
                format!("{}_{}", t.as_str(), *k - 1)
            })
            .collect()
    }
    /// Layers in processing order (NCP: inter, command, motor), as neuron ids; the wired CfC
    /// runs one cell per layer.
    pub fn layers(&self) -> &[Vec<usize>] {
        &self.layers
    }
    /// Internal synapses as `(src, dst, polarity)`, row-major.
    pub fn synapses(&self) -> Vec<(usize, usize, i8)> {
        edges(&self.adjacency, self.units)
    }
    /// Sensory synapses as `(input, dst, polarity)`, row-major.
    pub fn sensory_synapses(&self) -> Vec<(usize, usize, i8)> {
        edges(&self.sensory_adjacency, self.units)
    }

    /// Reads a wiring file (`.json`, or TOML for any other extension).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WiringError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WiringError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed: Result<Self, String> = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| WiringError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Writes the wiring as JSON (`.json`) or TOML, loadable with [`Wiring::load`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), WiringError> {
        let path = path.as_ref();
        let text = if path.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(self).map_err(|e| e.to_string())
        } else {
            toml::to_string(self).map_err(|e| e.to_string())
        }
        .map_err(|message| WiringError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        std::fs::write(path, text).map_err(|source| WiringError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

fn edges(adj: &[i8], n: usize) -> Vec<(usize, usize, i8)> {
    adj.iter()
        .enumerate()
        .filter(|(_, &v)| v != 0)
        .map(|(k, &v)| (k / n, k % n, v))
        .collect()
}

/// numpy's `np.round` (banker's rounding) followed by `int()`.
fn round_half_even(x: f64) -> usize {
    let r = x.round();
    let r = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    };
    r.max(0.0) as usize
}

/// The file form of a wiring: explicit synapse lists, readable and editable by hand.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WiringFile {
    /// Number of neurons.
    pub units: usize,
    /// Number of motor neurons (ids `0..output_dim`).
    pub output_dim: usize,
    /// Number of inputs; required when `sensory_synapses` is non-empty.
    #[serde(default)]
    pub input_dim: Option<usize>,
    /// Role per neuron id; defaults to motor below `output_dim`, inter above.
    #[serde(default)]
    pub neuron_types: Option<Vec<NeuronType>>,
    /// Layers in processing order (for the wired CfC); defaults to one layer of all neurons.
    #[serde(default)]
    pub layers: Option<Vec<Vec<usize>>>,
    /// `[src, dst, polarity]` triples.
    #[serde(default)]
    pub synapses: Vec<(usize, usize, i8)>,
    /// `[input, dst, polarity]` triples.
    #[serde(default)]
    pub sensory_synapses: Vec<(usize, usize, i8)>,
    /// The config it was generated from, if any (informational).
    #[serde(default)]
    pub generated_from: Option<WiringConfig>,
}

impl From<Wiring> for WiringFile {
    fn from(w: Wiring) -> Self {
        WiringFile {
            units: w.units,
            output_dim: w.output_dim,
            input_dim: w.input_dim,
            neuron_types: Some(w.neuron_types.clone()),
            layers: Some(w.layers.clone()),
            synapses: w.synapses(),
            sensory_synapses: w.sensory_synapses(),
            generated_from: w.config.clone(),
        }
    }
}

impl TryFrom<WiringFile> for Wiring {
    type Error = WiringError;

    fn try_from(f: WiringFile) -> Result<Self, WiringError> {
        let mut w = Wiring::empty(f.units, f.output_dim, Generator::Custom)?;
        let n = f.units;
        if let Some(types) = f.neuron_types {
            if types.len() != n {
                return invalid(format!(
                    "neuron_types has {} entries for {n} units",
                    types.len()
                ));
            }
            if types.contains(&NeuronType::Sensory) {
                return invalid("neuron_types: sensory is not a state neuron type");
            }
            w.neuron_types = types;
        }
        if let Some(layers) = f.layers {
            let mut seen = vec![false; n];
            for id in layers.iter().flatten() {
                if *id >= n || seen[*id] {
                    return invalid(format!(
                        "layers must list every neuron id below {n} exactly once (bad id {id})"
                    ));
                }
                seen[*id] = true;
            }
            if seen.iter().any(|s| !s) || layers.iter().any(|l| l.is_empty()) {
                return invalid("layers must be non-empty and cover every neuron");
            }
            w.layers = layers;
        }
        for &(src, dst, p) in &f.synapses {
            if src >= n || dst >= n || (p != 1 && p != -1) {
                return invalid(format!(
                    "synapse [{src}, {dst}, {p}]: ids must be below {n}, polarity ±1"
                ));
            }
            w.adjacency[src * n + dst] = p;
        }
        match f.input_dim {
            Some(s) if s > 0 => {
                w.sensory_adjacency = vec![0; s * n];
                for &(src, dst, p) in &f.sensory_synapses {
                    if src >= s || dst >= n || (p != 1 && p != -1) {
                        return invalid(format!(
                            "sensory synapse [{src}, {dst}, {p}]: input below {s}, id below {n}, polarity ±1"
                        ));
                    }
                    w.sensory_adjacency[src * n + dst] = p;
                }
                w.input_dim = Some(s);
            }
            _ if !f.sensory_synapses.is_empty() => {
                return invalid("sensory_synapses given without a positive input_dim");
            }
            _ => {}
        }
        w.config = f.generated_from;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_ncp_19_4_has_the_documented_sizes() {
        let mut w = Wiring::auto_ncp(19, 4, 0.5, 22222).unwrap();
        w.build(8).unwrap();
        let count = |t| w.neuron_types().iter().filter(|&&x| x == t).count();
        assert_eq!(count(NeuronType::Inter), 9);
        assert_eq!(count(NeuronType::Command), 6);
        assert_eq!(count(NeuronType::Motor), 4);
        assert_eq!(w.synapse_count(), 45);
        assert_eq!(w.sensory_synapse_count(), 35);
        // First row of the documented edge list: s0->[+13 +14 -15 +18].
        let s0: Vec<_> = w
            .sensory_synapses()
            .into_iter()
            .filter(|e| e.0 == 0)
            .collect();
        assert_eq!(s0, vec![(0, 13, 1), (0, 14, 1), (0, 15, -1), (0, 18, 1)]);
    }

    #[test]
    fn build_is_idempotent_and_rejects_other_sizes() {
        let mut w = Wiring::auto_ncp(19, 4, 0.5, 22222).unwrap();
        w.build(8).unwrap();
        let once = w.clone();
        w.build(8).unwrap();
        assert_eq!(w, once);
        assert!(matches!(
            w.build(5),
            Err(WiringError::ConflictingInputDim {
                built: 8,
                requested: 5
            })
        ));
    }

    #[test]
    fn impossible_sizes_are_errors() {
        assert!(Wiring::auto_ncp(19, 19, 0.5, 1).is_err());
        assert!(Wiring::auto_ncp(6, 4, 0.5, 1).is_err());
        assert!(Wiring::auto_ncp(19, 4, 0.05, 1).is_err());
        assert!(Wiring::auto_ncp(19, 4, 0.5, 1 << 40).is_err());
        let p = NcpParams {
            inter: 3,
            command: 2,
            motor: 1,
            sensory_fanout: 4,
            inter_fanout: 1,
            recurrent_command_synapses: 1,
            motor_fanin: 1,
            seed: 0,
        };
        assert!(Wiring::ncp(p).is_err());
        assert!(Wiring::ncp(NcpParams {
            sensory_fanout: 2,
            motor_fanin: 3,
            ..p
        })
        .is_err());
        assert!(Wiring::ncp(NcpParams {
            sensory_fanout: 2,
            inter_fanout: 3,
            ..p
        })
        .is_err());
        assert!(Wiring::random(4, None, 1.0, 1).is_err());
        assert!(Wiring::fully_connected(4, Some(5), 1, true).is_err());
        assert!(Wiring::random(70_000, None, 0.5, 1).is_err());
    }

    #[test]
    fn serde_round_trip_keeps_everything() {
        let w = Wiring::auto_ncp(19, 4, 0.5, 3).unwrap().built(8).unwrap();
        let json = serde_json::to_string(&w).unwrap();
        let back: Wiring = serde_json::from_str(&json).unwrap();
        assert_eq!(back.adjacency(), w.adjacency());
        assert_eq!(back.sensory_adjacency(), w.sensory_adjacency());
        assert_eq!(back.neuron_types(), w.neuron_types());
        assert_eq!(back.layers(), w.layers());
        assert_eq!(back.config(), w.config());
        let toml_text = toml::to_string(&w).unwrap();
        let back: Wiring = toml::from_str(&toml_text).unwrap();
        assert_eq!(back.adjacency(), w.adjacency());
    }

    #[test]
    fn config_rejects_unknown_fields() {
        let ok: WiringConfig =
            toml::from_str("kind = \"auto_ncp\"\nunits = 19\noutput_size = 4\n").unwrap();
        assert_eq!(
            ok,
            WiringConfig::AutoNcp {
                units: 19,
                output_size: 4,
                sparsity_level: 0.5,
                seed: 22222
            }
        );
        assert!(toml::from_str::<WiringConfig>(
            "kind = \"auto_ncp\"\nunits = 19\noutput_size = 4\nbogus = 1\n"
        )
        .is_err());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let bad = r#"{"units": 3, "output_dim": 1, "synapses": [[0, 7, 1]]}"#;
        assert!(serde_json::from_str::<Wiring>(bad).is_err());
        let bad = r#"{"units": 3, "output_dim": 1, "synapses": [[0, 1, 2]]}"#;
        assert!(serde_json::from_str::<Wiring>(bad).is_err());
        let bad = r#"{"units": 3, "output_dim": 1, "sensory_synapses": [[0, 1, 1]]}"#;
        assert!(serde_json::from_str::<Wiring>(bad).is_err());
        let bad = r#"{"units": 3, "output_dim": 1, "layers": [[0, 1]]}"#;
        assert!(serde_json::from_str::<Wiring>(bad).is_err());
        let err = Wiring::load("/nonexistent/wiring.json").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/wiring.json"));
    }

    #[test]
    fn file_wirings_load_through_the_config() {
        let dir = std::env::temp_dir().join(format!("wormnet-wiring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let w = Wiring::auto_ncp(16, 4, 0.5, 9).unwrap().built(5).unwrap();
        for name in ["w.json", "w.toml"] {
            let path = dir.join(name);
            w.save(&path).unwrap();
            let cfg = WiringConfig::File { path: path.clone() };
            let back = Wiring::from_config(&cfg).unwrap();
            assert_eq!(back.adjacency(), w.adjacency());
            assert_eq!(back.sensory_adjacency(), w.sensory_adjacency());
            assert_eq!(back.layers(), w.layers());
            // Same input size: a no-op; another: an error naming both sizes.
            assert!(back.built(5).is_ok());
            assert!(back.built(6).unwrap_err().to_string().contains('6'));
        }
        // A hand-written file without sensory synapses cannot be built.
        let path = dir.join("bare.json");
        std::fs::write(
            &path,
            r#"{"units": 3, "output_dim": 1, "synapses": [[1, 0, 1], [2, 1, -1]]}"#,
        )
        .unwrap();
        let bare = Wiring::load(&path).unwrap();
        assert_eq!(bare.synapse_count(), 2);
        assert!(bare.built(2).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_half_even_matches_numpy() {
        assert_eq!(round_half_even(2.5), 2);
        assert_eq!(round_half_even(3.5), 4);
        assert_eq!(round_half_even(2.4), 2);
        assert_eq!(round_half_even(40.5), 40);
    }
}
