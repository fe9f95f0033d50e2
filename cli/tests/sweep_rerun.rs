//! A sweep re-run never loses or mislabels a trial: one whose checkpoint cannot be read is
//! named and kept exactly as it is, and settings changed since the trials were trained stop
//! the re-run, naming the changed keys, before anything in the directory changes.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{json, write_config, BIN};

/// `wormnet sweep SWEEP --out OUT EXTRA…`.
fn sweep(sweep: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("sweep")
        .arg(sweep)
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("wormnet runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A sweep file over the small cartpole config (256 steps, evaluated at the end), one trial
/// per seed, with `set`.
fn write_sweep(dir: &Path, seeds: &str, set: &str) -> PathBuf {
    let config = write_config(dir, 256, 0);
    let path = dir.join("sweep.toml");
    let text = format!(
        "config = {:?}\nseeds = {seeds}\nset = {{ {set} }}\n",
        config.file_name().unwrap().to_str().unwrap()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file below `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel.join(""), Vec::new());
                walk(root, &path, out);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Each trial's (status, error) in the manifest.
fn manifest(sweep_dir: &Path) -> BTreeMap<String, (String, String)> {
    let manifest = json(&sweep_dir.join("manifest.json"));
    manifest["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_string(),
                (
                    t["status"].as_str().unwrap().to_string(),
                    t["error"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_rerun_names_and_keeps_every_trial_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_sweep(dir.path(), "[1, 2, 3, 4]", "");
    let out_dir = dir.path().join("sweep");
    let out = sweep(&file, &out_dir, &["--parallel", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let trial = |id: &str| out_dir.join("trials").join(id);
    // s1: a checkpoint of a newer format; s2: a truncated sidecar; s3: a sidecar that cannot
    // be read at all; s4: no checkpoint at all (as if killed before its first).
    let latest = trial("s1").join("latest.json");
    let text = std::fs::read_to_string(&latest).unwrap();
    assert!(text.contains("\"format\": 1"), "{text}");
    std::fs::write(&latest, text.replace("\"format\": 1", "\"format\": 2")).unwrap();
    let latest = trial("s2").join("latest.json");
    let bytes = std::fs::read(&latest).unwrap();
    std::fs::write(&latest, &bytes[..bytes.len() / 2]).unwrap();
    let latest = trial("s3").join("latest.json");
    std::fs::remove_file(&latest).unwrap();
    std::fs::create_dir(&latest).unwrap();
    for name in ["latest.json", "best.json"] {
        std::fs::remove_file(trial("s4").join(name)).unwrap();
    }
    std::fs::write(trial("s4").join("left-over"), "").unwrap();
    let kept = [
        ("s1", "format 2"),
        ("s2", "corrupt or truncated"),
        ("s3", "cannot read checkpoint"),
    ];
    let before: Vec<_> = kept.iter().map(|(id, _)| snapshot(&trial(id))).collect();

    let out = sweep(&file, &out_dir, &["--parallel", "2"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("(0 already finished; 3 unreadable, kept; 1 to run")
            && err.contains("3 of 4 trials have a checkpoint that cannot be read"),
        "{err}"
    );
    let statuses = manifest(&out_dir);
    for ((id, why), before) in kept.iter().zip(&before) {
        assert_eq!(&snapshot(&trial(id)), before, "trial {id} was changed");
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("trial {id}: kept")) && l.contains(why)),
            "{id}: {err}"
        );
        let (status, error) = &statuses[*id];
        assert!(
            status == "unreadable" && error.contains(why),
            "{id}: {status} {error}"
        );
    }
    // Only the trial without any checkpoint was started afresh.
    assert!(!trial("s4").join("left-over").exists());
    assert!(trial("s4").join("latest.json").is_file());
    assert_eq!(statuses["s4"].0, "finished");
}

#[test]
fn a_rerun_with_other_settings_names_the_changed_keys_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_sweep(dir.path(), "[1, 2]", "\"ppo.learning_rate\" = 0.0003");
    let original = std::fs::read_to_string(&file).unwrap();
    let out_dir = dir.path().join("sweep");
    // Two at a time: each trial's config records its share of the cores in run.threads.
    let out = sweep(&file, &out_dir, &["--parallel", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&out_dir);

    std::fs::write(&file, original.replace("0.0003", "0.001")).unwrap();
    let out = sweep(&file, &out_dir, &["--parallel", "1"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("2 trials")
            && err.contains("ppo.learning_rate: 0.0003 -> 0.001")
            && err.contains("--out")
            && !err.contains("threads"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Not a byte changed: not sweep.toml, not manifest.json, not a trial.
    assert_eq!(snapshot(&out_dir), before);
    let out = sweep(&file, &out_dir, &["--dry-run"]);
    assert!(!out.status.success(), "{}", stderr(&out));

    // The old settings, alone on the machine this time (two update threads: the same
    // results), find the trials finished.
    std::fs::write(&file, &original).unwrap();
    let out = sweep(&file, &out_dir, &["--parallel", "1"]);
    assert!(
        out.status.success() && stderr(&out).contains("(2 already finished; 0 to run"),
        "{}",
        stderr(&out)
    );
}
