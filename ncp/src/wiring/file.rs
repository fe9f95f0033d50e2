//! Wiring files: explicit synapse lists in JSON or TOML (by id, or as a circuit of named
//! neurons), readable and editable by hand, so any adjacency (a connectome, a hand-made
//! circuit) can drive a cell.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::circuit::CircuitFile;
use super::config::{invalid, Generator, NeuronType, WiringConfig, WiringError};
use super::graph::Wiring;

impl Wiring {
    /// Reads a wiring file (`.json`, or TOML for any other extension).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WiringError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WiringError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed: Result<Self, String> = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
            Some("bnn") => Err(
                "a .bnn file names no neurons: use a wiring of kind \"bnn\" with its `names`"
                    .to_string(),
            ),
            _ => from_toml(&text),
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

/// A TOML wiring file: the circuit form (`[[neuron]]` tables) or the id form.
fn from_toml(text: &str) -> Result<Wiring, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    if table.contains_key("neuron") {
        let circuit: CircuitFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())?;
        circuit.to_wiring().map_err(|e| e.to_string())
    } else {
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string())
    }
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
    /// The neurons' own names by id (`AVA`, …); absent: generated from the roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Gap junctions `[a, b]` (electrical, symmetric), ids below `units`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gap_junctions: Vec<(usize, usize)>,
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
            names: w.names.clone(),
            gap_junctions: w.gap_junctions.clone(),
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
            // Sensory neurons of a circuit that lists no inputs: building connects each input
            // to each of them (the worm's touch receptors).
            if types.contains(&NeuronType::Sensory) && f.sensory_synapses.is_empty() {
                w.generator = Generator::Circuit;
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
        if let Some(names) = f.names {
            w.set_names(names)?;
        }
        w.set_gap_junctions(&f.gap_junctions)?;
        w.config = f.generated_from;
        Ok(w)
    }
}

/// A wiring serialises as its file form, so configs, checkpoints and files all read the same.
impl Serialize for Wiring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WiringFile::from(self.clone()).serialize(serializer)
    }
}

/// Reading a wiring checks it as a wiring file is checked.
impl<'de> Deserialize<'de> for Wiring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = WiringFile::deserialize(deserializer)?;
        Wiring::try_from(file).map_err(serde::de::Error::custom)
    }
}
