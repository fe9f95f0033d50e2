//! The worm's own circuits as wirings: the shipped tap-withdrawal circuit loads from its
//! `.bnn` file with its named neurons and typed synapses, its circuit form (`tw.toml`) is the
//! same wiring, a connectome table is cut by name, and bad files are clear errors.

use std::path::PathBuf;

use wormnet_ncp::wiring::{NeuronType, SynapseKind, Wiring, WiringConfig};

const TW: [&str; 11] = [
    "PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA", "FWD", "REV",
];

fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../configs/wirings")
        .join(name)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn tw_bnn() -> WiringConfig {
    WiringConfig::Bnn {
        path: shipped("tw.bnn"),
        names: strings(&TW),
        sensory: strings(&["PVD", "PLM", "AVM", "ALM"]),
        command: strings(&["AVA", "AVD", "PVC", "AVB"]),
        motor: strings(&["FWD", "REV"]),
    }
}

/// `(from, to, kind)` by name, sorted: a wiring's connections independent of its ids.
fn named_synapses(w: &Wiring) -> Vec<(String, String, SynapseKind)> {
    let names = w.neuron_names();
    let mut out: Vec<_> = w
        .typed_synapses()
        .into_iter()
        .map(|(a, b, k)| (names[a].clone(), names[b].clone(), k))
        .collect();
    out.sort_by(|x, y| (&x.0, &x.1, x.2.as_str()).cmp(&(&y.0, &y.1, y.2.as_str())));
    out
}

#[test]
fn the_tw_circuit_loads_from_its_bnn_file_with_its_names_and_synapses() {
    let w = Wiring::from_config(&tw_bnn()).expect("tw.bnn");
    let mut names = w.neuron_names();
    // Motor neurons come first: they are the outputs.
    assert_eq!(names[..2], ["FWD", "REV"]);
    assert_eq!(w.output_dim(), 2);
    names.sort();
    let mut expected = strings(&TW);
    expected.sort();
    assert_eq!(names, expected);
    let kinds = w.typed_synapses();
    let count = |k: SynapseKind| kinds.iter().filter(|s| s.2 == k).count();
    assert_eq!(kinds.len(), 28);
    assert_eq!(count(SynapseKind::Excitatory), 9);
    assert_eq!(count(SynapseKind::Inhibitory), 17);
    assert_eq!(count(SynapseKind::Gap), 2);
    let syn = named_synapses(&w);
    let has = |a: &str, b: &str, k| {
        syn.contains(&(a.to_string(), b.to_string(), k))
            || (k == SynapseKind::Gap && syn.contains(&(b.to_string(), a.to_string(), k)))
    };
    assert!(has("AVM", "AVD", SynapseKind::Gap) && has("PLM", "PVC", SynapseKind::Gap));
    assert!(has("AVB", "FWD", SynapseKind::Excitatory));
    assert!(has("AVA", "REV", SynapseKind::Excitatory));
    assert!(has("DVA", "AVB", SynapseKind::Inhibitory));
    let id = |n: &str| w.neuron_id(n).expect(n);
    assert_eq!(w.neuron_type(id("PLM")), NeuronType::Sensory);
    assert_eq!(w.neuron_type(id("AVA")), NeuronType::Command);
    assert_eq!(w.neuron_type(id("DVA")), NeuronType::Inter);
    // Built for 2 inputs: each input feeds each of the 4 sensory neurons.
    let built = w.built(2).expect("build");
    assert_eq!(built.sensory_synapse_count(), 8);
    assert!(built
        .sensory_synapses()
        .iter()
        .all(|&(_, j, p)| built.neuron_type(j) == NeuronType::Sensory && p == 1));
}

#[test]
fn the_named_tw_file_is_the_bnn_circuit_and_survives_a_round_trip() {
    let from_bnn = Wiring::from_config(&tw_bnn()).expect("tw.bnn");
    let named = Wiring::load(shipped("tw.toml")).expect("tw.toml");
    assert_eq!(named.neuron_names(), from_bnn.neuron_names());
    assert_eq!(named.neuron_types(), from_bnn.neuron_types());
    assert_eq!(named_synapses(&named), named_synapses(&from_bnn));
    // Saved in the id form (names and junctions kept), built or not, it reads back the same.
    let dir = tempfile::tempdir().expect("tempdir");
    for w in [named.clone(), named.built(3).expect("built")] {
        let path = dir.path().join("tw_ids.toml");
        w.save(&path).expect("save");
        let back = Wiring::load(&path).expect("load");
        assert_eq!(back.neuron_names(), w.neuron_names());
        assert_eq!(back.gap_junctions(), w.gap_junctions());
        let form = |w: &Wiring| serde_json::to_string(&w.built(3).expect("built")).expect("json");
        assert_eq!(form(&back), form(&w));
    }
}

#[test]
fn a_connectome_table_is_cut_by_name_with_sides_merged() {
    let keep = strings(&[
        "PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA",
    ]);
    let w = Wiring::from_config(&WiringConfig::Connectome {
        path: shipped("c302_tw_excerpt.tsv"),
        keep: keep.clone(),
        sensory: strings(&["PLM", "AVM", "ALM", "PVD"]),
        command: strings(&["AVD", "PVC"]),
        motor: strings(&["AVA", "AVB"]),
        inhibitory: strings(&["DVA"]),
    })
    .expect("connectome cut");
    assert_eq!(w.neuron_names()[..2], ["AVA", "AVB"]);
    let syn = named_synapses(&w);
    let gap = |a: &str, b: &str| {
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        syn.contains(&(a.to_string(), b.to_string(), SynapseKind::Gap))
            || syn.contains(&(b.to_string(), a.to_string(), SynapseKind::Gap))
    };
    // The table's junctions, sides merged: AVM–AVDL is AVM–AVD, PLML–PVCL is PLM–PVC; the
    // AVAL–AVAR junction joins one neuron to itself and is dropped.
    assert!(gap("AVM", "AVD") && gap("PLM", "PVC") && gap("ALM", "AVM"));
    assert_eq!(w.gap_junction_count(), 6, "{syn:?}");
    assert!(w.gap_junctions().iter().all(|(a, b)| a != b));
    // Chemical synapses take the sign of their presynaptic neuron.
    for (a, _, k) in &syn {
        match k {
            SynapseKind::Inhibitory => assert_eq!(a, "DVA"),
            SynapseKind::Excitatory => assert_ne!(a, "DVA"),
            SynapseKind::Gap => {}
        }
    }
    assert!(syn
        .iter()
        .any(|s| s.0 == "DVA" && s.2 == SynapseKind::Inhibitory));
}

#[test]
fn bad_circuits_are_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bnn = |text: &str| {
        let path = dir.path().join("bad.bnn");
        std::fs::write(&path, text).expect("write");
        let config = WiringConfig::Bnn {
            path,
            names: strings(&["A", "B", "C"]),
            sensory: strings(&["A"]),
            command: vec![],
            motor: strings(&["C"]),
        };
        Wiring::from_config(&config)
            .expect_err("refused")
            .to_string()
    };
    let err = bnn("size 3\nex 0 5 1.0\n");
    assert!(
        err.contains("bad.bnn") && err.contains("line 2") && err.contains("below size 3"),
        "{err}"
    );
    let err = bnn("size 3\nspike 0 1\n");
    assert!(err.contains("unknown statement `spike`"), "{err}");
    let err = bnn("ex 0 1 1.0\n");
    assert!(err.contains("`size N` must come first"), "{err}");
    let err = bnn("size 4\n");
    assert!(
        err.contains("names lists 3 neurons, the file has size 4"),
        "{err}"
    );
    let err = bnn("size 3\ngj 1 1 0.5\n");
    assert!(err.contains("differ"), "{err}");
    let err = bnn("size 3\nex 0 1 1\ninh 0 1 2\n");
    assert!(err.contains("A -> B is listed twice"), "{err}");
    let circuit = |text: &str| {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).expect("write");
        Wiring::load(&path).expect_err("refused").to_string()
    };
    let neurons = "[[neuron]]\nname = \"A\"\nrole = \"sensory\"\n[[neuron]]\nname = \"M\"\nrole = \"motor\"\n";
    let err = circuit(&format!(
        "{neurons}[[synapse]]\nfrom = \"A\"\nto = \"X\"\nkind = \"gap\"\n"
    ));
    assert!(err.contains("no neuron named \"X\""), "{err}");
    let err = circuit(&format!(
        "{neurons}[[synapse]]\nfrom = \"A\"\nto = \"M\"\nkind = \"electric\"\n"
    ));
    assert!(
        err.contains("bad.toml") && err.contains("electric"),
        "{err}"
    );
    let err = circuit("[[neuron]]\nname = \"A\"\nrole = \"inter\"\n");
    assert!(err.contains("at least one neuron of role motor"), "{err}");
    let err = circuit("[[neuron]]\nname = \"A B\"\nrole = \"motor\"\n");
    assert!(err.contains("neuron name \"A B\""), "{err}");
    // A circuit without sensory neurons cannot take inputs.
    let path = dir.path().join("no_sensory.toml");
    std::fs::write(&path, "[[neuron]]\nname = \"M\"\nrole = \"motor\"\n").expect("write");
    let err = Wiring::load(&path)
        .expect("loads")
        .built(2)
        .expect_err("refused");
    assert!(
        err.to_string().contains("no neuron of role sensory"),
        "{err}"
    );
}

#[test]
fn the_picture_names_the_neurons_and_draws_the_gap_junctions() {
    use wormnet_ncp::wiring::picture::{self, PictureOptions};
    let w = Wiring::load(shipped("tw.toml"))
        .expect("tw.toml")
        .built(2)
        .expect("built");
    let options = PictureOptions {
        labels: true,
        // An env's action names do not rename a circuit's own motor neurons.
        motor_names: strings(&["push_right", "push_left"]),
        ..PictureOptions::default()
    };
    let text = picture::svg(&w, &options);
    assert_eq!(text.matches("class=\"gap\"").count(), 2);
    assert!(text.contains("gap junction"));
    for name in TW {
        assert!(
            text.contains(&format!(">{name}<")),
            "{name} is not labelled"
        );
    }
    assert!(!text.contains("push_right"));
    // The generated wirings draw no junctions and keep their legend.
    let plain = picture::svg(
        &Wiring::auto_ncp(19, 4, 0.5, 1)
            .expect("w")
            .built(3)
            .expect("b"),
        &options,
    );
    assert!(!plain.contains("gap"));
    assert!(plain.contains("push_right"));
}

/// A run keeps a file's circuit in its config: the embedded form rebuilds the same wiring
/// (ids, names, roles, synapses, junctions, and the same sensory synapses once built), needs
/// no file, and generated wirings are left as they are.
#[test]
fn an_embedded_circuit_is_the_same_wiring_without_its_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("tw.bnn");
    std::fs::copy(shipped("tw.bnn"), &copy).expect("copy");
    let WiringConfig::Bnn {
        names,
        sensory,
        command,
        motor,
        ..
    } = tw_bnn()
    else {
        unreachable!("tw_bnn is a bnn config")
    };
    let config = WiringConfig::Bnn {
        path: copy.clone(),
        names,
        sensory,
        command,
        motor,
    };
    let original = Wiring::from_config(&config).expect("tw.bnn");
    let embedded = config.embedded().expect("reads").expect("a circuit");
    std::fs::remove_file(&copy).expect("remove");
    assert!(matches!(embedded, WiringConfig::Circuit { .. }));
    let rebuilt = Wiring::from_config(&embedded).expect("no file needed");
    assert_eq!(rebuilt.neuron_names(), original.neuron_names());
    assert_eq!(rebuilt.neuron_types(), original.neuron_types());
    assert_eq!(rebuilt.typed_synapses(), original.typed_synapses());
    assert_eq!(rebuilt.gap_junctions(), original.gap_junctions());
    let (a, b) = (
        original.built(4).expect("built"),
        rebuilt.built(4).expect("built"),
    );
    assert_eq!(a.sensory_synapse_count(), b.sensory_synapse_count());
    assert_eq!(a.typed_synapses(), b.typed_synapses());
    // Through TOML, as a run's config.toml holds it.
    let text = toml::to_string(&embedded).expect("serialises");
    let back: WiringConfig = toml::from_str(&text).expect("parses");
    assert_eq!(back, embedded);
    assert_eq!(
        embedded.embedded().expect("no file"),
        None,
        "already embedded"
    );
    let generated = WiringConfig::AutoNcp {
        units: 8,
        output_size: 2,
        sparsity_level: 0.5,
        seed: 1,
    };
    assert_eq!(generated.embedded().expect("generated"), None);
}
