//! The wiring itself: typed, layered neurons with a fixed signed adjacency, and what the cells
//! read from it.

use super::config::{invalid, Generator, NeuronType, WiringConfig, WiringError, MAX_UNITS};

/// A wiring: neurons, typed and layered, with a fixed signed adjacency. Plain data; serialised
/// in its file form (`WiringFile`).
#[derive(Clone, Debug, PartialEq)]
pub struct Wiring {
    pub(super) units: usize,
    pub(super) output_dim: usize,
    pub(super) input_dim: Option<usize>,
    pub(super) adjacency: Vec<i8>,
    pub(super) sensory_adjacency: Vec<i8>,
    pub(super) neuron_types: Vec<NeuronType>,
    pub(super) layers: Vec<Vec<usize>>,
    pub(super) generator: Generator,
    pub(super) config: Option<WiringConfig>,
    /// Neuron names by id (None: generated from the roles, `inter_0`, …).
    pub(super) names: Option<Vec<String>>,
    /// Gap junctions `(a, b)`, `a < b`, sorted.
    pub(super) gap_junctions: Vec<(usize, usize)>,
}

/// Constructors shared by the generators and the file format, and what cells read.
impl Wiring {
    pub(super) fn empty(
        units: usize,
        output_dim: usize,
        generator: Generator,
    ) -> Result<Self, WiringError> {
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
            names: None,
            gap_junctions: Vec::new(),
        })
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
    /// Display names, the one source of every neuron label (panel, logs, heatmap, ablation,
    /// report): the wiring's own names (`AVA`, …) where it has them, else `motor_0`,
    /// `command_0`, `inter_0`, … numbered within each type.
    pub fn neuron_names(&self) -> Vec<String> {
        if let Some(names) = &self.names {
            return names.clone();
        }
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
    /// Whether the neurons carry their own names (a circuit file) rather than generated ones.
    pub fn has_own_names(&self) -> bool {
        self.names.is_some()
    }
    /// The id of the neuron named `name` (own names or generated ones).
    pub fn neuron_id(&self, name: &str) -> Option<usize> {
        self.neuron_names().iter().position(|n| n == name)
    }
    /// Gap junctions (electrical synapses) as unordered pairs `(a, b)` with `a < b`, sorted:
    /// each carries a symmetric current `g·(v_a − v_b)`, fixed by the wiring like a synapse.
    pub fn gap_junctions(&self) -> &[(usize, usize)] {
        &self.gap_junctions
    }
    /// Number of gap junctions.
    pub fn gap_junction_count(&self) -> usize {
        self.gap_junctions.len()
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
}

impl Wiring {
    /// Sets the gap junctions from `pairs`, checked: ids below `N`, no neuron joined to itself,
    /// no pair twice (in either order).
    pub(super) fn set_gap_junctions(
        &mut self,
        pairs: &[(usize, usize)],
    ) -> Result<(), WiringError> {
        let n = self.units;
        let mut out: Vec<(usize, usize)> = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            if a >= n || b >= n || a == b {
                return invalid(format!(
                    "gap junction [{a}, {b}]: ids must be below {n} and differ"
                ));
            }
            out.push((a.min(b), a.max(b)));
        }
        out.sort_unstable();
        if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
            return invalid(format!(
                "gap junction [{}, {}] is listed twice",
                w[0].0, w[0].1
            ));
        }
        self.gap_junctions = out;
        Ok(())
    }

    /// Sets the neurons' own names, checked: one per neuron, unique, made of letters, digits,
    /// `_`, `.` or `-` (they become CSV columns and HTML labels).
    pub(super) fn set_names(&mut self, names: Vec<String>) -> Result<(), WiringError> {
        if names.len() != self.units {
            return invalid(format!(
                "names has {} entries for {} neurons",
                names.len(),
                self.units
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for name in &names {
            let ok = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
            if name.is_empty() || !name.chars().all(ok) {
                return invalid(format!(
                    "neuron name {name:?}: use letters, digits, '_', '.' or '-'"
                ));
            }
            if !seen.insert(name.as_str()) {
                return invalid(format!("neuron name {name:?} is used twice"));
            }
        }
        self.names = Some(names);
        Ok(())
    }
}

pub(super) fn edges(adj: &[i8], n: usize) -> Vec<(usize, usize, i8)> {
    adj.iter()
        .enumerate()
        .filter(|(_, &v)| v != 0)
        .map(|(k, &v)| (k / n, k % n, v))
        .collect()
}
