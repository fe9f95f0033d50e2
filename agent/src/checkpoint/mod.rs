//! Checkpoints that survive a crash: the policy's and the optimizer's tensors in safetensors
//! plus a JSON sidecar (config, env spec, step, normalisers, Adam's step count, the evaluation
//! that made it `best`). Every file is written to a temporary name, synced and renamed, and the
//! sidecar is written last: it is the commit point, so a reader sees either the previous
//! checkpoint or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use tch::{Device, Tensor};
use wormnet_sim::EnvSpec;

use crate::config::TrainConfig;
use crate::eval::EvalSummary;
use crate::policy::{ObsNormalizer, Policy, RewardScaler};
use crate::ppo::adam::Adam;
use crate::seeds::{derive_seed, TORCH_STREAM};

mod sidecar;
pub mod validate;

pub use sidecar::{Sidecar, FORMAT};

/// Everything a checkpoint holds, borrowed from a running trainer.
pub struct CheckpointParts<'a> {
    /// The policy (its variables and normaliser).
    pub policy: &'a Policy,
    /// The trained parameters, in Adam's order, by name.
    pub params: &'a [(String, Tensor)],
    /// The optimizer.
    pub adam: &'a Adam,
    /// The reward scaler.
    pub reward_scaler: Option<&'a RewardScaler>,
    /// Updates completed.
    pub update: usize,
    /// Environment steps completed.
    pub global_step: u64,
    /// Best evaluation mean so far.
    pub best_eval: Option<f64>,
    /// Wall-clock seconds of the run so far.
    pub wall_seconds: f64,
    /// The run's config.
    pub config: &'a TrainConfig,
    /// The env's spec.
    pub spec: &'a EnvSpec,
}

/// Writes checkpoint `tag` (`latest` or `best`) into `dir`: tensors to a new step-stamped file,
/// then the sidecar that names it (the commit point), then removes tensor files no sidecar
/// names.
pub fn save(
    dir: &Path,
    tag: &str,
    parts: &CheckpointParts<'_>,
    eval: Option<EvalSummary>,
) -> Result<()> {
    let tensors_name = format!("{tag}-{:06}.safetensors", parts.update);
    let mut tensors = Vec::new();
    for (name, t) in parts.policy.vs.variables() {
        tensors.push((format!("policy/{name}"), t.detach().to_device(Device::Cpu)));
    }
    for (i, (name, _)) in parts.params.iter().enumerate() {
        tensors.push((
            format!("adam/exp_avg/{name}"),
            parts.adam.exp_avg(i).to_device(Device::Cpu).copy(),
        ));
        tensors.push((
            format!("adam/exp_avg_sq/{name}"),
            parts.adam.exp_avg_sq(i).to_device(Device::Cpu).copy(),
        ));
    }
    let tensors_path = dir.join(&tensors_name);
    save_tensors(&tensors_path, &tensors)?;
    let written = std::fs::read(&tensors_path)
        .with_context(|| format!("cannot read back {}", tensors_path.display()))?;
    let sidecar = Sidecar {
        format: FORMAT,
        tensors: tensors_name,
        tensors_crc32c: Some(crc32c::crc32c(&written)),
        update: parts.update,
        global_step: parts.global_step,
        best_eval: parts.best_eval,
        wall_seconds: parts.wall_seconds,
        adam_step: parts.adam.step,
        obs_norm: parts.policy.obs_normalizer().cloned(),
        reward_scaler: parts.reward_scaler.cloned(),
        eval,
        config: parts.config.clone(),
        env_spec: parts.spec.clone(),
    };
    save_json(&dir.join(format!("{tag}.json")), &sidecar)?;
    remove_unreferenced_tensors(dir);
    Ok(())
}

/// Reads a sidecar and checks every field of it ([`validate::check`]): what it names can be
/// built and loaded without a surprise.
pub fn load_sidecar(path: &Path) -> Result<Sidecar> {
    let mut sidecar: Sidecar = load_json(path)?;
    // Written by wormnet, perhaps an older one: settings retired since are dropped.
    sidecar.config.forget_retired();
    validate::check(&sidecar, path)?;
    Ok(sidecar)
}

/// Restores Adam's moments and step count from the tensors of a checkpoint.
pub fn restore_adam(
    adam: &mut Adam,
    params: &[(String, Tensor)],
    tensors: &[(String, Tensor)],
    sidecar: &Sidecar,
    dir: &Path,
    device: Device,
) -> Result<(), CheckpointError> {
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: dir.join(&sidecar.tensors),
        reason,
    };
    for (i, (name, _)) in params.iter().enumerate() {
        let moment = |prefix: &str| {
            let key = format!("adam/{prefix}/{name}");
            tensors
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| t.to_device(device))
                .ok_or_else(|| mismatch(format!("optimizer tensor {key} is missing")))
        };
        let (m, v) = (moment("exp_avg")?, moment("exp_avg_sq")?);
        let kind = adam.exp_avg(i).kind();
        if m.kind() != kind || v.kind() != kind {
            return Err(mismatch(format!(
                "optimizer tensors of {name} are stored as {:?}, the optimizer holds {kind:?}",
                m.kind()
            )));
        }
        if !adam.set_moments(i, &m, &v) {
            return Err(mismatch(format!(
                "optimizer tensors of {name} have shape {:?}, the parameter has another",
                m.size()
            )));
        }
    }
    adam.step = sidecar.adam_step;
    Ok(())
}

/// Loads a checkpoint's policy tensors into `policy`, checking names, shapes and the fixed
/// wiring masks; returns every tensor of the file (optimizer state included).
pub fn load_policy_tensors(
    policy: &Policy,
    dir: &Path,
    sidecar: &Sidecar,
) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let path = dir.join(&sidecar.tensors);
    let tensors = load_tensors(&path, sidecar.tensors_crc32c)?;
    let mismatch = |reason: String| CheckpointError::Mismatch {
        path: path.clone(),
        reason,
    };
    let vars = policy.vs.variables();
    let stored = tensors
        .iter()
        .filter(|(k, _)| k.starts_with("policy/"))
        .count();
    if stored != vars.len() {
        return Err(mismatch(format!(
            "it holds {stored} policy tensors, this policy has {} (another wiring or cell?)",
            vars.len()
        )));
    }
    tch::no_grad(|| {
        for (name, var) in &vars {
            let key = format!("policy/{name}");
            let (_, t) = tensors.iter().find(|(k, _)| *k == key).ok_or_else(|| {
                mismatch(format!(
                    "tensor {name} is missing (another wiring or cell?)"
                ))
            })?;
            if t.size() != var.size() {
                return Err(mismatch(format!(
                    "tensor {name} has shape {:?}, this policy needs {:?} (another wiring?)",
                    t.size(),
                    var.size()
                )));
            }
            if t.kind() != var.kind() {
                return Err(mismatch(format!(
                    "tensor {name} is stored as {:?}, this policy holds {:?} (the file was \
                     changed after it was written?)",
                    t.kind(),
                    var.kind()
                )));
            }
            let t = t.to_device(var.device());
            if !bool::try_from(t.isfinite().all()).unwrap_or(false) {
                return Err(CheckpointError::Corrupt {
                    path: path.clone(),
                    reason: format!(
                        "tensor {name} holds NaN or infinite values (the run diverged before \
                         this save); use an earlier checkpoint"
                    ),
                });
            }
            if !var.requires_grad() && !t.equal(var) {
                return Err(mismatch(format!(
                    "fixed tensor {name} differs: the checkpoint was trained with another wiring"
                )));
            }
            let mut var = var.shallow_clone();
            var.copy_(&t);
        }
        Ok(())
    })?;
    Ok(tensors)
}

/// Deletes the `latest-*` / `best-*` tensors files that their tag's sidecar superseded. A tag
/// whose sidecar cannot be read keeps every file: nothing is deleted that no readable sidecar
/// accounts for.
fn remove_unreferenced_tensors(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for tag in ["latest", "best"] {
        let Ok(sidecar) = load_json::<Sidecar>(&dir.join(format!("{tag}.json"))) else {
            continue;
        };
        let prefix = format!("{tag}-");
        for name in &names {
            if name.starts_with(&prefix)
                && name.ends_with(".safetensors")
                && *name != sidecar.tensors
            {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
    }
}

/// A loaded checkpoint, ready to act: for `wormnet eval`, `watch` and `record`.
pub struct LoadedPolicy {
    /// The policy with the checkpoint's weights and normaliser.
    pub policy: Policy,
    /// The checkpoint's sidecar.
    pub sidecar: Sidecar,
    /// The sidecar's path.
    pub path: PathBuf,
}

/// The policy a run of `config` starts from (untrained, the run's own initial weights and
/// normaliser), standing in for a checkpoint: to look at an env with `record` or `watch`
/// before training. `path` (the config file) names it in messages.
pub fn untrained(config: TrainConfig, env_spec: EnvSpec, path: &Path) -> Result<LoadedPolicy> {
    tch::manual_seed(derive_seed(config.run.seed, TORCH_STREAM) as i64);
    let mut policy = Policy::new(&env_spec, &config.policy, Device::Cpu)
        .with_context(|| format!("config {}", path.display()))?;
    let obs_norm = config
        .ppo
        .norm_obs
        .then(|| ObsNormalizer::new(env_spec.obs_dim(), config.ppo.obs_clip));
    policy.set_obs_normalizer(obs_norm.clone());
    Ok(LoadedPolicy {
        policy,
        sidecar: Sidecar {
            format: FORMAT,
            tensors: String::new(),
            tensors_crc32c: None,
            update: 0,
            global_step: 0,
            best_eval: None,
            wall_seconds: 0.0,
            adam_step: 0,
            obs_norm,
            reward_scaler: None,
            eval: None,
            config,
            env_spec,
        },
        path: path.to_path_buf(),
    })
}

/// The sidecar a run directory's policy is read from: `best.json`, else `latest.json`; a
/// path that is not a directory is taken as a sidecar itself.
pub fn sidecar_path(target: &Path) -> PathBuf {
    if !target.is_dir() {
        return target.to_path_buf();
    }
    let best = target.join("best.json");
    if best.exists() {
        best
    } else {
        target.join("latest.json")
    }
}

/// Loads `best` (else `latest`) from a run directory, or a given `*.json` sidecar, rebuilding
/// the policy from the sidecar's config and env spec.
pub fn load_checkpoint(target: &Path, device: Device) -> Result<LoadedPolicy> {
    let path = sidecar_path(target);
    // A run still training replaces its checkpoint: between reading the sidecar and its
    // tensors, the tensors it names may be superseded and deleted (the trainer writes the new
    // tensors, then the sidecar naming them, then deletes the old file). So while the named
    // file is missing, or the sidecar has moved on to another, read again for up to 3 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let sidecar = load_sidecar(&path)?;
        let tensors = sidecar.tensors.clone();
        let dir = path.parent().unwrap_or(Path::new("."));
        match load_with_sidecar(&path, sidecar, device) {
            Err(e)
                if std::time::Instant::now() < deadline
                    && (!dir.join(&tensors).exists() || sidecar_moved_on(&path, &tensors)) =>
            {
                tracing::debug!(
                    "{} was replaced while being read ({e:#}); reading it again",
                    path.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// Whether the sidecar at `path` now names another tensors file than `tensors`.
fn sidecar_moved_on(path: &Path, tensors: &str) -> bool {
    load_json::<Sidecar>(path).is_ok_and(|s| s.tensors != tensors)
}

fn load_with_sidecar(path: &Path, sidecar: Sidecar, device: Device) -> Result<LoadedPolicy> {
    let path = path.to_path_buf();
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut policy = Policy::new(&sidecar.env_spec, &sidecar.config.policy, device)
        .with_context(|| format!("{}: rebuilding its policy", path.display()))?;
    policy.set_obs_normalizer(sidecar.obs_norm.clone());
    load_policy_tensors(&policy, dir, &sidecar)?;
    Ok(LoadedPolicy {
        policy,
        sidecar,
        path,
    })
}

/// Why a checkpoint could not be written or read, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // Each variant's message says it all; the fields are the file and why.
pub enum CheckpointError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read checkpoint {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("checkpoint {path} is corrupt or truncated: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("checkpoint {path} does not fit this model: {reason}")]
    Mismatch { path: PathBuf, reason: String },
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync
/// the directory. A crash at any point leaves the old file (or none) in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let err = |source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Appends `line` to `path` (created if missing) and syncs it: logs that grow a line at a
/// time (`evals.jsonl`, `imitation.csv`) and survive a crash line by line.
pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")?;
    file.sync_all()
}

/// Saves named tensors as safetensors, atomically (see [`write_atomic`]).
pub fn save_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    let tmp = temp_name(path);
    let named: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let result = Tensor::write_safetensors(&named, &tmp)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|_| File::open(&tmp)?.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path))
        .and_then(|_| sync_dir(path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Loads every tensor of a safetensors file, turning libtorch's errors into ones naming the file;
/// with `crc32c`, the file must have that checksum (silent corruption is refused).
pub fn load_tensors(
    path: &Path,
    crc32c: Option<u32>,
) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    if !path.exists() {
        return Err(CheckpointError::Read {
            path: path.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    // Validate the header ourselves first: libtorch's reader reports truncation poorly.
    let bytes = std::fs::read(path).map_err(|e| CheckpointError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    check_safetensors_header(&bytes).map_err(|reason| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    })?;
    if let Some(expected) = crc32c {
        let found = crc32c::crc32c(&bytes);
        if found != expected {
            return Err(CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "checksum {found:08x} differs from the {expected:08x} its sidecar recorded \
                     (the file changed after it was written)"
                ),
            });
        }
    }
    Tensor::read_safetensors(path).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Serialises a sidecar as pretty JSON, atomically.
pub fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let text = serde_json::to_vec_pretty(value).map_err(|e| CheckpointError::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(path, &text)
}

/// Reads a JSON sidecar, naming the file and the failing field on error.
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T, CheckpointError> {
    let text = std::fs::read(path).map_err(|e| CheckpointError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Checks that a safetensors file is complete: its JSON header parses and every tensor's byte
/// range lies inside the file.
fn check_safetensors_header(bytes: &[u8]) -> Result<(), String> {
    let n = bytes
        .get(..8)
        .ok_or("shorter than the 8-byte header length")?;
    let n = u64::from_le_bytes(n.try_into().map_err(|_| "bad header length")?) as usize;
    let header = bytes
        .get(8..8usize.saturating_add(n))
        .ok_or_else(|| format!("header of {n} bytes runs past the end of the file"))?;
    let header: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("header is not JSON: {e}"))?;
    let data_len = (bytes.len() - 8 - n) as u64;
    let entries = header.as_object().ok_or("header is not a JSON object")?;
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        let end = entry
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(|| format!("tensor {name:?} has no data_offsets"))?;
        if end > data_len {
            return Err(format!(
                "tensor {name:?} ends at byte {end} but the data section has {data_len} bytes"
            ));
        }
    }
    Ok(())
}

fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
