//! Checkpoint files: atomic writes, truncation and checksums.

use super::*;

#[test]
fn tensors_round_trip_and_no_temp_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latest.safetensors");
    let t = Tensor::from_slice(&[1.0f32, -2.0, 3.5]).reshape([3, 1]);
    save_tensors(&path, &[("actor.w".to_string(), t.shallow_clone())]).unwrap();
    let back = load_tensors(&path, None).unwrap();
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
    let err = load_tensors(&path, None).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("best.safetensors"), "{err}");
    std::fs::write(&path, b"garbage").unwrap();
    assert!(matches!(
        load_tensors(&path, None).unwrap_err(),
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

#[test]
fn sixteen_overwritten_bytes_fail_the_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latest-000004.safetensors");
    let t = Tensor::ones([256], (tch::Kind::Float, tch::Device::Cpu));
    save_tensors(&path, &[("w".to_string(), t)]).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let crc = crc32c::crc32c(&bytes);
    assert!(load_tensors(&path, Some(crc)).is_ok());
    let middle = bytes.len() / 2;
    bytes[middle..middle + 16].copy_from_slice(&[0x7f; 16]);
    std::fs::write(&path, &bytes).unwrap();
    // The header still parses and libtorch would load the changed values without a word.
    assert!(load_tensors(&path, None).is_ok());
    let err = load_tensors(&path, Some(crc)).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("latest-000004.safetensors"),
        "{err}"
    );
    assert!(err.to_string().contains("checksum"), "{err}");
}
