//! `wormnet wiring` on the worm's own circuit, as the docs run it: the tap-withdrawal circuit
//! drawn with its neurons' names and its gap junctions, without asking for labels.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wormnet");

#[test]
fn the_tap_withdrawal_config_is_drawn_with_its_names_and_junctions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("tw.svg");
    let out = Command::new(BIN)
        .current_dir(root)
        .args(["wiring", "configs/tw_cartpole.toml", "--out"])
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("11 neurons, 26 synapses, 2 gap junctions"),
        "{stdout}"
    );
    let picture = std::fs::read_to_string(&svg).unwrap();
    let labels: Vec<&str> = picture
        .split("</text>")
        .filter_map(|t| t.rsplit('>').next())
        .collect();
    for name in [
        "PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA", "FWD", "REV",
    ] {
        assert!(labels.contains(&name), "{name} not drawn: {labels:?}");
    }
    assert!(
        labels.contains(&"pole_angle+"),
        "sensor pair inputs: {labels:?}"
    );
    assert_eq!(
        picture.matches("<path class=\"gap\"").count(),
        2,
        "the two junctions drawn as their own (dashed) paths"
    );
}
