//! Property tests: every generated NCP/AutoNCP wiring respects its layer rules (sensory→inter,
//! inter→command, command→command, command→motor only) and its fan-in/fan-out counts, and
//! impossible sizes are errors, never panics.

use proptest::prelude::*;
use wormnet_ncp::wiring::{auto_ncp_params, NcpParams, NeuronType, Wiring};

fn check_ncp(w: &Wiring, p: &NcpParams, s: usize) {
    use NeuronType::*;
    let n = w.units();
    assert_eq!(n, p.inter + p.command + p.motor);
    assert_eq!(w.output_dim(), p.motor);
    for id in 0..n {
        let expected = if id < p.motor {
            Motor
        } else if id < p.motor + p.command {
            Command
        } else {
            Inter
        };
        assert_eq!(w.neuron_type(id), expected, "neuron {id}");
    }
    // Layer rules.
    for (src, dst, pol) in w.synapses() {
        assert!(pol == 1 || pol == -1);
        let pair = (w.neuron_type(src), w.neuron_type(dst));
        assert!(
            matches!(
                pair,
                (Inter, Command) | (Command, Command) | (Command, Motor)
            ),
            "forbidden synapse {src}->{dst} {pair:?}"
        );
    }
    for (_, dst, pol) in w.sensory_synapses() {
        assert!(pol == 1 || pol == -1);
        assert_eq!(w.neuron_type(dst), Inter, "sensory synapse onto {dst}");
    }
    // Fan-out / fan-in counts.
    let ids = |t: NeuronType| (0..n).filter(move |&i| w.neuron_type(i) == t);
    let out_deg = |src: usize, t: NeuronType| ids(t).filter(|&d| w.synapse(src, d) != 0).count();
    let in_deg = |dst: usize, t: NeuronType| ids(t).filter(|&i| w.synapse(i, dst) != 0).count();
    for input in 0..s {
        let k = ids(Inter)
            .filter(|&d| w.sensory_synapse(input, d) != 0)
            .count();
        assert!(
            k >= p.sensory_fanout,
            "sensory {input} reaches {k} inter neurons"
        );
    }
    for i in ids(Inter) {
        let k = (0..s)
            .filter(|&input| w.sensory_synapse(input, i) != 0)
            .count();
        assert!(k >= 1, "inter {i} has no sensory input");
        assert!(out_deg(i, Command) >= p.inter_fanout, "inter {i} fan-out");
    }
    let mut recurrent = 0;
    for c in ids(Command) {
        assert!(in_deg(c, Inter) >= 1, "command {c} has no inter input");
        assert!(
            out_deg(c, Motor) >= 1,
            "command {c} reaches no motor neuron"
        );
        recurrent += out_deg(c, Command);
    }
    assert!(recurrent >= 1 && recurrent <= p.recurrent_command_synapses);
    for m in ids(Motor) {
        assert!(in_deg(m, Command) >= p.motor_fanin, "motor {m} fan-in");
    }
    assert_eq!(w.input_dim(), Some(s));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ncp_wirings_respect_layer_rules(
        inter in 1usize..12, command in 1usize..10, motor in 1usize..6,
        s in 1usize..12, seed in any::<u32>(),
        fo in 0.0f64..1.0, fi in 0.0f64..1.0, mf in 0.0f64..1.0, rec in 1usize..12,
    ) {
        let p = NcpParams {
            inter, command, motor,
            sensory_fanout: 1 + (fo * (inter - 1) as f64) as usize,
            inter_fanout: 1 + (fi * (command - 1) as f64) as usize,
            recurrent_command_synapses: rec,
            motor_fanin: 1 + (mf * (command - 1) as f64) as usize,
            seed,
        };
        match Wiring::ncp(p) {
            Ok(w) => check_ncp(&w.built(s).unwrap(), &p, s),
            // The only rejection left: more inter inputs per command neuron than inter neurons.
            Err(e) => prop_assert!(e.to_string().contains("inter inputs per command")),
        }
    }

    #[test]
    fn auto_ncp_wirings_respect_layer_rules(
        units in 1usize..60, outputs in 1usize..20, sparsity in 0.0f64..1.2,
        s in 1usize..12, seed in any::<u32>(),
    ) {
        match auto_ncp_params(units, outputs, sparsity, seed as u64) {
            Ok(p) => {
                prop_assert!(outputs + 2 < units && (0.1..=1.0).contains(&sparsity));
                let w = Wiring::auto_ncp(units, outputs, sparsity, seed as u64).unwrap().built(s).unwrap();
                check_ncp(&w, &p, s);
            }
            Err(_) => {
                prop_assert!(outputs + 2 >= units || !(0.1..=1.0).contains(&sparsity)
                    || Wiring::auto_ncp(units, outputs, sparsity, seed as u64).is_err());
            }
        }
    }

    #[test]
    fn random_wirings_have_the_requested_count(units in 1usize..20, sparsity in 0.0f64..0.99, s in 1usize..6, seed in any::<u64>()) {
        let w = Wiring::random(units, None, sparsity, seed).unwrap().built(s).unwrap();
        let expected = ((units * units) as f64 * (1.0 - sparsity)).round() as i64;
        prop_assert!((w.synapse_count() as i64 - expected).abs() <= 1);
    }
}

#[test]
fn auto_ncp_19_4_with_8_inputs() {
    let w = Wiring::auto_ncp(19, 4, 0.5, 22222)
        .unwrap()
        .built(8)
        .unwrap();
    let count = |t| w.neuron_types().iter().filter(|&&x| x == t).count();
    assert_eq!(
        (
            count(NeuronType::Inter),
            count(NeuronType::Command),
            count(NeuronType::Motor)
        ),
        (9, 6, 4)
    );
    let p = auto_ncp_params(19, 4, 0.5, 22222).unwrap();
    assert_eq!(
        (
            p.sensory_fanout,
            p.inter_fanout,
            p.recurrent_command_synapses,
            p.motor_fanin
        ),
        (4, 3, 6, 3)
    );
    check_ncp(&w, &p, 8);
}

#[test]
fn impossible_auto_ncp_sizes_are_errors() {
    assert!(Wiring::auto_ncp(19, 19, 0.5, 0).is_err());
    assert!(Wiring::auto_ncp(19, 25, 0.5, 0).is_err());
    assert!(Wiring::auto_ncp(4, 2, 0.5, 0).is_err());
}
