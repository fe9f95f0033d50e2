//! The generated wirings of ncps 1.0.1 (FullyConnected, Random, NCP, AutoNCP), synapse for
//! synapse with the same seeds, and building a wiring for a number of inputs.

use super::circuit::CircuitFile;
use super::config::{
    auto_ncp_params, invalid, ncp_seed, round_half_even, Generator, NcpParams, NeuronType,
    WiringConfig, WiringError, MAX_UNITS,
};
use super::graph::Wiring;
use super::numpy_rng::{LegacyRandomState, Pcg64};

impl Wiring {
    /// Makes the (unbuilt) wiring a config describes; a `file` config is loaded and may be built.
    pub fn from_config(config: &WiringConfig) -> Result<Self, WiringError> {
        if let Some(n) = config.neurons().filter(|&n| n > super::config::MAX_NEURONS) {
            return Err(WiringError::Invalid(format!(
                "{n} neurons; a wiring may have at most {}",
                super::config::MAX_NEURONS
            )));
        }
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
            WiringConfig::Bnn {
                path,
                names,
                sensory,
                command,
                motor,
            } => Self::load_bnn(path, names, [sensory, command, motor])?,
            WiringConfig::Connectome {
                path,
                keep,
                sensory,
                command,
                motor,
                inhibitory,
            } => Self::load_connectome(path, keep, [sensory, command, motor], inhibitory)?,
            WiringConfig::Circuit {
                source,
                neuron,
                synapse,
            } => CircuitFile {
                source: source.clone(),
                neuron: neuron.clone(),
                synapse: synapse.clone(),
            }
            .to_wiring()?,
        };
        w.config = Some(config.clone());
        Ok(w)
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
            Generator::Circuit => {
                if let Some(s) = inputs {
                    let sensory: Vec<usize> = (0..n)
                        .filter(|&j| self.neuron_types[j] == NeuronType::Sensory)
                        .collect();
                    if sensory.is_empty() {
                        return invalid(
                            "the circuit has no neuron of role sensory for its inputs to feed",
                        );
                    }
                    self.sensory_adjacency = vec![0; s * n];
                    for i in 0..s {
                        for &j in &sensory {
                            self.sensory_adjacency[i * n + j] = 1;
                        }
                    }
                }
            }
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

    /// A built copy whose input `i` feeds only neuron `targets[i]` (excitatory), whatever
    /// the generator: the sensor pairs of a circuit (`x⁺ → PLM`, `x⁻ → AVM`).
    pub fn built_onto(&self, targets: &[usize]) -> Result<Self, WiringError> {
        let n = self.units;
        if targets.is_empty() || targets.iter().any(|&j| j >= n) {
            return invalid(format!(
                "sensory targets {targets:?}: need at least one, each below {n}"
            ));
        }
        let mut w = self.clone();
        w.sensory_adjacency = vec![0; targets.len() * n];
        for (i, &j) in targets.iter().enumerate() {
            w.sensory_adjacency[i * n + j] = 1;
        }
        w.input_dim = Some(targets.len());
        Ok(w)
    }

    /// A built copy, leaving `self` untouched (handy for reusing one wiring in several cells).
    pub fn built(&self, input_dim: usize) -> Result<Self, WiringError> {
        let mut w = self.clone();
        w.build(input_dim)?;
        Ok(w)
    }
}
