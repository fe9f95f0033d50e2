//! Weights that move between wormnet and ncps: every tensor is registered under the exact key
//! ncps's PyTorch `state_dict` uses (`rnn_cell.gleak`, `rnn_cell.layer_0.ff1.weight`,
//! `lstm.input_map.weight`, …), so a safetensors file written by either side loads in the other
//! with `strict=True` semantics.

use std::path::{Path, PathBuf};

use tch::{nn, Kind, Tensor};
use thiserror::Error;

/// Why a safetensors file could not be loaded into (or written from) a model.
#[derive(Debug, Error)]
pub enum InterchangeError {
    /// libtorch could not read or write the file.
    #[error("safetensors file {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// libtorch's message.
        message: String,
    },
    /// The file's keys are not exactly the model's keys.
    #[error("safetensors file {path} does not match the model: missing {missing:?}, unexpected {unexpected:?}")]
    Keys {
        /// The file.
        path: PathBuf,
        /// Keys the model has and the file lacks.
        missing: Vec<String>,
        /// Keys the file has and the model lacks.
        unexpected: Vec<String>,
    },
    /// A tensor has the wrong shape.
    #[error(
        "safetensors file {path}: tensor {key} has shape {found:?}, the model expects {expected:?}"
    )]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// Shape in the file.
        found: Vec<i64>,
        /// Shape in the model.
        expected: Vec<i64>,
    },
    /// A sparsity mask differs from the one the wiring defines.
    #[error("safetensors file {path}: {key} differs from this wiring's mask (the weights were trained with another wiring)")]
    Mask {
        /// The file.
        path: PathBuf,
        /// The mask's key.
        key: String,
    },
}

/// One registered tensor: its ncps key, the variable, and whether the optimizer trains it.
pub struct Entry {
    /// ncps `state_dict` key.
    pub key: String,
    /// The variable (shares storage with the VarStore's).
    pub tensor: Tensor,
    /// False for the constant sparsity masks.
    pub trainable: bool,
}

/// The ncps-named tensors of a model, in ncps's registration order.
#[derive(Default)]
pub struct NamedTensors {
    entries: Vec<Entry>,
}

impl NamedTensors {
    /// Registers a trainable variable in `path` under `name` and records its ncps key
    /// (`prefix` + `name`).
    pub fn var(&mut self, path: &nn::Path, prefix: &str, name: &str, init: Tensor) -> Tensor {
        self.add(path, prefix, name, init, true)
    }

    /// Registers a constant (a sparsity mask): stored and exchanged, never trained.
    pub fn constant(&mut self, path: &nn::Path, prefix: &str, name: &str, init: Tensor) -> Tensor {
        self.add(path, prefix, name, init, false)
    }

    fn add(
        &mut self,
        path: &nn::Path,
        prefix: &str,
        name: &str,
        init: Tensor,
        trainable: bool,
    ) -> Tensor {
        let init = init.to_kind(Kind::Float).to_device(path.device());
        let t = path.add(name, init, trainable);
        self.entries.push(Entry {
            key: format!("{prefix}{name}"),
            tensor: t.shallow_clone(),
            trainable,
        });
        t
    }

    /// All entries, in registration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends another model part's entries.
    pub fn extend(&mut self, other: NamedTensors) {
        self.entries.extend(other.entries);
    }

    /// Writes all tensors (masks included) to a safetensors file with ncps keys.
    pub fn save(&self, path: &Path) -> Result<(), InterchangeError> {
        let named: Vec<(&str, Tensor)> = self
            .entries
            .iter()
            .map(|e| {
                (
                    e.key.as_str(),
                    e.tensor.detach().to_device(tch::Device::Cpu).contiguous(),
                )
            })
            .collect();
        Tensor::write_safetensors(&named, path).map_err(|e| InterchangeError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Loads a safetensors file whose keys must be exactly ours (strict), shapes equal and
    /// masks identical to the wiring's.
    pub fn load(&self, path: &Path) -> Result<(), InterchangeError> {
        let io = |e: tch::TchError| InterchangeError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let file = Tensor::read_safetensors(path).map_err(io)?;
        let mut missing: Vec<String> = Vec::new();
        for e in &self.entries {
            if !file.iter().any(|(k, _)| k == &e.key) {
                missing.push(e.key.clone());
            }
        }
        let unexpected: Vec<String> = file
            .iter()
            .filter(|(k, _)| !self.entries.iter().any(|e| &e.key == k))
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(InterchangeError::Keys {
                path: path.to_path_buf(),
                missing,
                unexpected,
            });
        }
        for e in &self.entries {
            let Some((_, src)) = file.iter().find(|(k, _)| k == &e.key) else {
                continue;
            };
            if src.size() != e.tensor.size() {
                return Err(InterchangeError::Shape {
                    path: path.to_path_buf(),
                    key: e.key.clone(),
                    found: src.size(),
                    expected: e.tensor.size(),
                });
            }
            let src = src.to_kind(Kind::Float).to_device(e.tensor.device());
            if !e.trainable {
                let same = src.eq_tensor(&e.tensor).all().int64_value(&[]) == 1;
                if !same {
                    return Err(InterchangeError::Mask {
                        path: path.to_path_buf(),
                        key: e.key.clone(),
                    });
                }
                continue;
            }
            tch::no_grad(|| {
                let mut t = e.tensor.shallow_clone();
                t.copy_(&src);
            });
        }
        Ok(())
    }
}

/// Uniform `U(lo, hi)` like `torch.rand(shape) * (hi − lo) + lo`.
pub fn uniform(shape: &[i64], lo: f64, hi: f64) -> Tensor {
    Tensor::rand(shape, (Kind::Float, tch::Device::Cpu)) * (hi - lo) + lo
}

/// `xavier_uniform_` with gain 1 on a `(fan_out, fan_in)` weight.
pub fn xavier(shape: &[i64]) -> Tensor {
    let bound = (6.0 / (shape[0] + shape[1]) as f64).sqrt();
    uniform(shape, -bound, bound)
}

/// torch's default `Linear` bias init, `U(±1/√fan_in)`.
pub fn default_bias(out: i64, fan_in: i64) -> Tensor {
    let bound = 1.0 / (fan_in as f64).sqrt();
    uniform(&[out], -bound, bound)
}
