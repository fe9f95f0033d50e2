//! Importers for the worm's own circuits: the `.bnn` text files of the worm-level-control
//! experiments (the tap-withdrawal circuit), and connectome edge lists (the OpenWorm c302
//! tables, `pre post type synapses`) cut down to the neurons a wiring keeps.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::circuit::assign_roles;
use super::config::{SynapseKind, WiringError};
use super::graph::Wiring;

/// The roles of a circuit's neurons by name: `[sensory, command, motor]` (the rest inter).
pub type Roles<'a> = [&'a [String]; 3];

/// One connection of a `.bnn` file: `(from, to, kind)` by index.
type BnnSynapse = (usize, usize, SynapseKind);

/// Parses a `.bnn` circuit: `size N` first, then `cm i c`, `gleak i g`, `vleak i v`,
/// `ex|inh i j w [sigma]`, `gj i j w` and `const …` lines; `#` starts a comment. Returns the
/// size and the connections (the values are the original simulator's and are not used).
pub fn parse_bnn(text: &str) -> Result<(usize, Vec<BnnSynapse>), String> {
    let mut size: Option<usize> = None;
    let mut synapses = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&head) = words.first() else {
            continue;
        };
        let at = |m: &str| format!("line {}: {m} (`{line}`)", k + 1);
        let int = |i: usize| -> Result<usize, String> {
            let v: usize = words
                .get(i)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| at("expected a neuron index"))?;
            match size {
                Some(n) if v < n => Ok(v),
                Some(n) => Err(at(&format!("neuron {v} is not below size {n}"))),
                None => Err(at("`size N` must come first")),
            }
        };
        let number = |i: usize| -> Result<f64, String> {
            words
                .get(i)
                .and_then(|w| w.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| at("expected a number"))
        };
        let arity = |lo: usize, hi: usize| {
            if (lo..=hi).contains(&words.len()) {
                Ok(())
            } else {
                Err(at(&format!("`{head}` takes {} values", lo - 1)))
            }
        };
        match head {
            "size" if size.is_none() => {
                arity(2, 2)?;
                let n: usize = words[1]
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| at("size must be a positive integer"))?;
                size = Some(n);
            }
            "size" => return Err(at("size given twice")),
            "cm" | "gleak" | "vleak" => {
                arity(3, 3)?;
                int(1)?;
                number(2)?;
            }
            "ex" | "inh" | "gj" => {
                arity(4, if head == "gj" { 4 } else { 5 })?;
                let (i, j) = (int(1)?, int(2)?);
                (3..words.len()).try_for_each(|w| number(w).map(|_| ()))?;
                let kind = match head {
                    "ex" => SynapseKind::Excitatory,
                    "inh" => SynapseKind::Inhibitory,
                    _ => SynapseKind::Gap,
                };
                synapses.push((i, j, kind));
            }
            "const" => {}
            other => return Err(at(&format!("unknown statement `{other}`"))),
        }
    }
    let size = size.ok_or("no `size N` line")?;
    Ok((size, synapses))
}

impl Wiring {
    /// A wiring from a `.bnn` file's text, its neurons named by index (`names`) and given
    /// roles; the synapses' kinds are the file's.
    pub fn from_bnn(text: &str, names: &[String], roles: Roles<'_>) -> Result<Self, WiringError> {
        let invalid = |m: String| WiringError::Invalid(m);
        let (size, synapses) = parse_bnn(text).map_err(invalid)?;
        if names.len() != size {
            return Err(invalid(format!(
                "names lists {} neurons, the file has size {size}",
                names.len()
            )));
        }
        let neurons = assign_roles(names, roles, "bnn wiring")?;
        Wiring::from_circuit(&neurons, &synapses)
    }

    /// Reads a `.bnn` file (see [`Wiring::from_bnn`]); errors name the file.
    pub fn load_bnn(path: &Path, names: &[String], roles: Roles<'_>) -> Result<Self, WiringError> {
        let text = read(path)?;
        Self::from_bnn(&text, names, roles).map_err(|e| parse_error(path, e))
    }

    /// A wiring cut from a connectome edge list (tab- or comma-separated `pre post type
    /// synapses`, type `chemical` or `electrical`; `pre post …` header lines and `#` comments
    /// skipped):
    /// the neurons named in `keep` and the connections among them. A table name that is not
    /// kept but ends in `L` or `R` after a kept name (`AVAL`, `AVAR` for `AVA`) counts as that
    /// neuron; connections between the two sides of one kept neuron are dropped. Chemical
    /// synapses are excitatory unless their presynaptic neuron is listed in `inhibitory`
    /// (the table has no signs; the trained reversal potentials decide in the end).
    pub fn from_connectome(
        text: &str,
        keep: &[String],
        roles: Roles<'_>,
        inhibitory: &[String],
    ) -> Result<Self, WiringError> {
        let invalid = |m: String| WiringError::Invalid(m);
        let ids: HashMap<&str, usize> = keep
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), k))
            .collect();
        let resolve = |name: &str| -> Option<usize> {
            ids.get(name).copied().or_else(|| {
                let stem = name.strip_suffix('L').or_else(|| name.strip_suffix('R'))?;
                ids.get(stem).copied()
            })
        };
        // Counts per kept pair and kind, in a deterministic order.
        let mut found: BTreeMap<(usize, usize, bool), u64> = BTreeMap::new();
        for (k, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            let cells: Vec<&str> = line.split(['\t', ',']).map(str::trim).collect();
            if line.is_empty() || cells[..2.min(cells.len())] == ["pre", "post"] {
                continue;
            }
            let [pre, post, kind, count] = cells[..] else {
                return Err(invalid(format!(
                    "line {}: expected `pre post type synapses`, got `{line}`",
                    k + 1
                )));
            };
            let electrical = match kind {
                "chemical" | "chem" => false,
                "electrical" | "gap" | "gapjunction" => true,
                other => {
                    return Err(invalid(format!(
                        "line {}: type `{other}` is neither chemical nor electrical",
                        k + 1
                    )))
                }
            };
            let count: u64 = count.parse().map_err(|_| {
                invalid(format!("line {}: `{count}` is not a synapse count", k + 1))
            })?;
            if let (Some(a), Some(b)) = (resolve(pre), resolve(post)) {
                if a != b || pre == post {
                    let pair = if electrical {
                        (a.min(b), a.max(b))
                    } else {
                        (a, b)
                    };
                    *found.entry((pair.0, pair.1, electrical)).or_default() += count;
                }
            }
        }
        let synapses: Vec<(usize, usize, SynapseKind)> = found
            .into_keys()
            .filter(|&(a, b, electrical)| !(electrical && a == b))
            .map(|(a, b, electrical)| {
                let kind = if electrical {
                    SynapseKind::Gap
                } else if inhibitory.contains(&keep[a]) {
                    SynapseKind::Inhibitory
                } else {
                    SynapseKind::Excitatory
                };
                (a, b, kind)
            })
            .collect();
        let neurons = assign_roles(keep, roles, "connectome wiring")?;
        Wiring::from_circuit(&neurons, &synapses)
    }

    /// Reads a connectome edge list (see [`Wiring::from_connectome`]); errors name the file.
    pub fn load_connectome(
        path: &Path,
        keep: &[String],
        roles: Roles<'_>,
        inhibitory: &[String],
    ) -> Result<Self, WiringError> {
        let text = read(path)?;
        Self::from_connectome(&text, keep, roles, inhibitory).map_err(|e| parse_error(path, e))
    }
}

fn read(path: &Path) -> Result<String, WiringError> {
    std::fs::read_to_string(path).map_err(|source| WiringError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_error(path: &Path, e: WiringError) -> WiringError {
    let message = match e {
        WiringError::Invalid(m) => m,
        other => other.to_string(),
    };
    WiringError::Parse {
        path: path.to_path_buf(),
        message,
    }
}
