//! Sensor and motor neuron pairs around a circuit, as in the worm-level-control experiments:
//! an input's positive and negative parts feed two named sensory neurons (and only them), an
//! output is one motor neuron minus another, on every path (kernel, autograd, training with
//! an input gradient), and bad pairs are errors naming the pair and the neuron.

use std::path::PathBuf;

use wormnet_ncp::tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::wiring::WiringConfig;
use wormnet_ncp::{CellKind, CellNet, MotorPair, NcpConfig, SensorPair, State};

const TW: [&str; 11] = [
    "PVD", "PLM", "AVA", "AVD", "PVC", "AVB", "AVM", "ALM", "DVA", "FWD", "REV",
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sensor(input: usize, positive: &str, negative: &str, range: f64) -> SensorPair {
    SensorPair {
        input,
        positive: positive.into(),
        negative: negative.into(),
        range,
    }
}

/// The TW circuit with the pendulum's pairs: input 1 (angle) → PLM/AVM over ±0.12, input 0
/// (position) → ALM/PVD over ±1, the output FWD − REV.
fn tw(motors: bool) -> NcpConfig {
    NcpConfig {
        cell: CellKind::Ltc,
        wiring: Some(WiringConfig::Bnn {
            path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/wirings/tw.bnn"),
            names: strings(&TW),
            sensory: strings(&["PVD", "PLM", "AVM", "ALM"]),
            command: strings(&["AVA", "AVD", "PVC", "AVB"]),
            motor: strings(&["FWD", "REV"]),
        }),
        sensors: vec![sensor(1, "PLM", "AVM", 0.12), sensor(0, "ALM", "PVD", 1.0)],
        motors: match motors {
            true => vec![MotorPair {
                positive: "FWD".into(),
                negative: "REV".into(),
            }],
            false => Vec::new(),
        },
        ..NcpConfig::default()
    }
}

fn build(config: &NcpConfig) -> (nn::VarStore, CellNet) {
    tch_seed();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellNet::new(&vs.root(), 2, config).expect("net");
    (vs, net)
}

fn tch_seed() {
    wormnet_ncp::tch::manual_seed(11);
}

#[test]
fn each_input_feeds_its_pair_and_only_it() {
    let (_vs, net) = build(&tw(true));
    let w = net.wiring().expect("wired");
    let names = w.neuron_names();
    let fed: Vec<(usize, &str)> = w
        .sensory_synapses()
        .into_iter()
        .map(|(i, j, p)| {
            assert_eq!(p, 1, "excitatory");
            (i, names[j].as_str())
        })
        .collect();
    assert_eq!(fed, [(0, "PLM"), (1, "AVM"), (2, "ALM"), (3, "PVD")]);
    assert_eq!((net.input_size(), net.output_size()), (2, 1));
    let x = Tensor::from_slice(&[0.5f32, -0.06]).reshape([1, 2]);
    let sensed = Vec::<f32>::try_from(net.sense(&x).reshape([-1])).expect("floats");
    let want = [0.0, 0.5, 0.5, 0.0];
    for (a, b) in sensed.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{sensed:?} vs {want:?}");
    }
    assert_eq!(
        net.sensory_names(&strings(&["cart_position", "pole_angle"])),
        [
            "pole_angle+",
            "pole_angle-",
            "cart_position+",
            "cart_position-"
        ]
    );
}

#[test]
fn the_output_is_fwd_minus_rev_on_every_path() {
    let (vp, paired) = build(&tw(true));
    let (mut vm, plain) = build(&tw(false));
    // The same weights whatever other tests draw from libtorch's global generator meanwhile.
    vm.copy(&vp).expect("the same parameters");
    let w = plain.wiring().expect("wired");
    let (fwd, rev) = (
        w.neuron_id("FWD").expect("FWD") as i64,
        w.neuron_id("REV").expect("REV") as i64,
    );
    let x = Tensor::randn([3, 2], (Kind::Float, Device::Cpu)) * 0.3;
    let dt = Tensor::ones([3, 1], (Kind::Float, Device::Cpu));
    let s0 = paired.initial_state(3, Device::Cpu);
    let (y, _) = paired.step(&x, &s0, &dt);
    let (m, _) = plain.step(&x, &s0, &dt);
    let want = m.select(1, fwd) - m.select(1, rev);
    assert_eq!(y.size(), [3, 1]);
    let gap = f64::try_from((y.select(1, 0) - &want).abs().max()).expect("scalar");
    assert!(gap < 1e-6, "kernel step: {gap}");
    let (g, _) = paired.step_generic(&x, &s0, &dt);
    let gap = f64::try_from((g - &y).abs().max()).expect("scalar");
    assert!(gap < 1e-5, "autograd step vs kernel: {gap}");
}

#[test]
fn the_training_forward_carries_the_gradient_back_through_the_pairs() {
    let (_vs, net) = build(&tw(true));
    // Angle positive, position negative: only PLM and PVD are driven.
    let x = Tensor::from_slice(&[-0.4f32, 0.05, -0.2, 0.03])
        .reshape([1, 2, 2])
        .set_requires_grad(true);
    let state = State {
        h: Tensor::zeros([1, 11], (Kind::Float, Device::Cpu)),
        c: None,
    };
    let (y, _, tape) = net.forward_sequence_train(&x, Some(&state), None, None);
    tape.backward(&y.sum(Kind::Float));
    let g = x.grad();
    assert!(g.defined(), "the input has a gradient");
    let g = Vec::<f32>::try_from(g.reshape([-1])).expect("floats");
    assert!(
        g.iter().all(|v| v.abs() > 0.0),
        "every component moves it: {g:?}"
    );
}

#[test]
fn bad_pairs_name_the_pair_and_the_neuron() {
    let err = |config: NcpConfig| {
        let vs = nn::VarStore::new(Device::Cpu);
        CellNet::new(&vs.root(), 2, &config)
            .err()
            .expect("refused")
            .to_string()
    };
    let mut c = tw(true);
    c.sensors[1].negative = "XYZ".into();
    let e = err(c);
    assert!(e.contains("sensors[1]") && e.contains("XYZ"), "{e}");
    let mut c = tw(true);
    c.sensors[0].input = 2;
    assert!(err(c).contains("input 2"));
    let mut c = tw(true);
    c.sensors[0].range = 0.0;
    assert!(err(c).contains("range"));
    let mut c = tw(true);
    c.motors[0].negative = "AVA".into();
    let e = err(c);
    assert!(
        e.contains("motors[0]") && e.contains("motor neurons"),
        "{e}"
    );
    let c = NcpConfig {
        cell: CellKind::Lstm,
        wiring: None,
        units: Some(8),
        ..tw(true)
    };
    assert!(err(c).contains("need a wiring"));
}
