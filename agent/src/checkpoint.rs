//! Checkpoints that survive a crash: tensors in safetensors plus a JSON sidecar (config, step,
//! normalisers, RNG, …), each written to a temporary name, synced and renamed, so a reader sees
//! either the previous checkpoint or the new one, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};
use tch::Tensor;

/// Why a checkpoint could not be written or read, naming the file and what to do.
#[derive(Debug, thiserror::Error)]
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

/// Loads every tensor of a safetensors file, turning libtorch's errors into ones naming the file.
pub fn load_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
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
mod tests {
    use super::*;

    #[test]
    fn tensors_round_trip_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latest.safetensors");
        let t = Tensor::from_slice(&[1.0f32, -2.0, 3.5]).reshape([3, 1]);
        save_tensors(&path, &[("actor.w".to_string(), t.shallow_clone())]).unwrap();
        let back = load_tensors(&path).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].0, "actor.w");
        assert!(back[0].1.equal(&t));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("latest.safetensors")]);
    }

    #[test]
    fn truncated_file_is_reported_as_corrupt_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("best.safetensors");
        let t = Tensor::ones([64], (tch::Kind::Float, tch::Device::Cpu));
        save_tensors(&path, &[("w".to_string(), t)]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = load_tensors(&path).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("best.safetensors"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load_tensors(&path).unwrap_err(),
            CheckpointError::Corrupt { .. }
        ));
    }

    #[test]
    fn failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save_json(&path, &serde_json::json!({"step": 1})).unwrap();
        // A directory where the temp file should go makes the write fail midway.
        std::fs::create_dir(temp_name(&path)).unwrap();
        assert!(save_json(&path, &serde_json::json!({"step": 2})).is_err());
        let v: serde_json::Value = load_json(&path).unwrap();
        assert_eq!(v["step"], 1);
    }
}
