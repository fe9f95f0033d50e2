use super::config::round_half_even;
use super::*;

#[test]
fn auto_ncp_19_4_has_the_documented_sizes() {
    let mut w = Wiring::auto_ncp(19, 4, 0.5, 22222).unwrap();
    w.build(8).unwrap();
    let count = |t| w.neuron_types().iter().filter(|&&x| x == t).count();
    assert_eq!(count(NeuronType::Inter), 9);
    assert_eq!(count(NeuronType::Command), 6);
    assert_eq!(count(NeuronType::Motor), 4);
    assert_eq!(w.synapse_count(), 45);
    assert_eq!(w.sensory_synapse_count(), 35);
    // First row of the documented edge list: s0->[+13 +14 -15 +18].
    let s0: Vec<_> = w
        .sensory_synapses()
        .into_iter()
        .filter(|e| e.0 == 0)
        .collect();
    assert_eq!(s0, vec![(0, 13, 1), (0, 14, 1), (0, 15, -1), (0, 18, 1)]);
}

#[test]
fn build_is_idempotent_and_rejects_other_sizes() {
    let mut w = Wiring::auto_ncp(19, 4, 0.5, 22222).unwrap();
    w.build(8).unwrap();
    let once = w.clone();
    w.build(8).unwrap();
    assert_eq!(w, once);
    assert!(matches!(
        w.build(5),
        Err(WiringError::ConflictingInputDim {
            built: 8,
            requested: 5
        })
    ));
}

#[test]
fn impossible_sizes_are_errors() {
    assert!(Wiring::auto_ncp(19, 19, 0.5, 1).is_err());
    assert!(Wiring::auto_ncp(6, 4, 0.5, 1).is_err());
    assert!(Wiring::auto_ncp(19, 4, 0.05, 1).is_err());
    assert!(Wiring::auto_ncp(19, 4, 0.5, 1 << 40).is_err());
    let p = NcpParams {
        inter: 3,
        command: 2,
        motor: 1,
        sensory_fanout: 4,
        inter_fanout: 1,
        recurrent_command_synapses: 1,
        motor_fanin: 1,
        seed: 0,
    };
    assert!(Wiring::ncp(p).is_err());
    assert!(Wiring::ncp(NcpParams {
        sensory_fanout: 2,
        motor_fanin: 3,
        ..p
    })
    .is_err());
    assert!(Wiring::ncp(NcpParams {
        sensory_fanout: 2,
        inter_fanout: 3,
        ..p
    })
    .is_err());
    assert!(Wiring::random(4, None, 1.0, 1).is_err());
    assert!(Wiring::fully_connected(4, Some(5), 1, true).is_err());
    assert!(Wiring::random(70_000, None, 0.5, 1).is_err());
}

#[test]
fn serde_round_trip_keeps_everything() {
    let w = Wiring::auto_ncp(19, 4, 0.5, 3).unwrap().built(8).unwrap();
    let json = serde_json::to_string(&w).unwrap();
    let back: Wiring = serde_json::from_str(&json).unwrap();
    assert_eq!(back.adjacency(), w.adjacency());
    assert_eq!(back.sensory_adjacency(), w.sensory_adjacency());
    assert_eq!(back.neuron_types(), w.neuron_types());
    assert_eq!(back.layers(), w.layers());
    assert_eq!(back.config(), w.config());
    let toml_text = toml::to_string(&w).unwrap();
    let back: Wiring = toml::from_str(&toml_text).unwrap();
    assert_eq!(back.adjacency(), w.adjacency());
}

#[test]
fn config_rejects_unknown_fields() {
    let ok: WiringConfig =
        toml::from_str("kind = \"auto_ncp\"\nunits = 19\noutput_size = 4\n").unwrap();
    assert_eq!(
        ok,
        WiringConfig::AutoNcp {
            units: 19,
            output_size: 4,
            sparsity_level: 0.5,
            seed: 22222
        }
    );
    assert!(toml::from_str::<WiringConfig>(
        "kind = \"auto_ncp\"\nunits = 19\noutput_size = 4\nbogus = 1\n"
    )
    .is_err());
}

#[test]
fn bad_files_are_errors_not_panics() {
    let bad = r#"{"units": 3, "output_dim": 1, "synapses": [[0, 7, 1]]}"#;
    assert!(serde_json::from_str::<Wiring>(bad).is_err());
    let bad = r#"{"units": 3, "output_dim": 1, "synapses": [[0, 1, 2]]}"#;
    assert!(serde_json::from_str::<Wiring>(bad).is_err());
    let bad = r#"{"units": 3, "output_dim": 1, "sensory_synapses": [[0, 1, 1]]}"#;
    assert!(serde_json::from_str::<Wiring>(bad).is_err());
    let bad = r#"{"units": 3, "output_dim": 1, "layers": [[0, 1]]}"#;
    assert!(serde_json::from_str::<Wiring>(bad).is_err());
    let err = Wiring::load("/nonexistent/wiring.json").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/wiring.json"));
}

#[test]
fn file_wirings_load_through_the_config() {
    let dir = std::env::temp_dir().join(format!("wormnet-wiring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let w = Wiring::auto_ncp(16, 4, 0.5, 9).unwrap().built(5).unwrap();
    for name in ["w.json", "w.toml"] {
        let path = dir.join(name);
        w.save(&path).unwrap();
        let cfg = WiringConfig::File { path: path.clone() };
        let back = Wiring::from_config(&cfg).unwrap();
        assert_eq!(back.adjacency(), w.adjacency());
        assert_eq!(back.sensory_adjacency(), w.sensory_adjacency());
        assert_eq!(back.layers(), w.layers());
        // Same input size: a no-op; another: an error naming both sizes.
        assert!(back.built(5).is_ok());
        assert!(back.built(6).unwrap_err().to_string().contains('6'));
    }
    // A hand-written file without sensory synapses cannot be built.
    let path = dir.join("bare.json");
    std::fs::write(
        &path,
        r#"{"units": 3, "output_dim": 1, "synapses": [[1, 0, 1], [2, 1, -1]]}"#,
    )
    .unwrap();
    let bare = Wiring::load(&path).unwrap();
    assert_eq!(bare.synapse_count(), 2);
    assert!(bare.built(2).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn round_half_even_matches_numpy() {
    assert_eq!(round_half_even(2.5), 2);
    assert_eq!(round_half_even(3.5), 4);
    assert_eq!(round_half_even(2.4), 2);
    assert_eq!(round_half_even(40.5), 40);
}
