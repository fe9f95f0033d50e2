//! The baseline cells an NCP is compared with (LSTM, GRU, MLP): built from the same config,
//! trained through the same calls, with the memory each should (and the MLP should not) have.

use tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::cells::GruCell;
use wormnet_ncp::wiring::WiringConfig;
use wormnet_ncp::{CellKind, CellNet, NcpConfig};

const F: (Kind, Device) = (Kind::Float, Device::Cpu);

fn baseline(cell: CellKind) -> NcpConfig {
    NcpConfig {
        cell,
        wiring: None,
        units: Some(16),
        proj_size: Some(3),
        ..NcpConfig::default()
    }
}

fn build(config: &NcpConfig) -> (nn::VarStore, CellNet) {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellNet::new(&vs.root(), 8, config).unwrap();
    (vs, net)
}

#[test]
fn every_baseline_trains_end_to_end() {
    for cell in [CellKind::Lstm, CellKind::Gru, CellKind::Mlp] {
        let (vs, net) = build(&baseline(cell));
        let x = Tensor::randn([4, 5, 8], F);
        let starts = Tensor::zeros([4, 5], F);
        let (y, _, tape) = net.forward_sequence_train(&x, None, None, Some(&starts));
        assert_eq!(y.size(), [4, 5, 3], "{cell:?}");
        tape.backward(&y.pow_tensor_scalar(2).sum(Kind::Float));
        for (name, t) in vs.variables() {
            let g = t.grad();
            assert!(
                g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{cell:?}: {name} got no gradient"
            );
        }
        // One step at a time gives the sequence's outputs.
        let mut state = net.initial_state(4, Device::Cpu);
        let dt = Tensor::ones([4, 1], F);
        for t in 0..5 {
            let (out, next) = net.step(&x.select(1, t), &state, &dt);
            let diff = (&out - y.select(1, t)).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{cell:?} step {t}: {diff}");
            state = next;
        }
    }
}

#[test]
fn recurrent_baselines_remember_and_the_mlp_does_not() {
    for (cell, remembers) in [
        (CellKind::Lstm, true),
        (CellKind::Gru, true),
        (CellKind::Mlp, false),
    ] {
        let (_vs, net) = build(&baseline(cell));
        let x = Tensor::randn([2, 6, 8], F);
        let changed = x.copy();
        let _ = changed.narrow(1, 0, 1).fill_(3.0);
        let last = |input: &Tensor| {
            tch::no_grad(|| net.forward_sequence(input, None, None).0.select(1, 5))
        };
        let diff = (last(&x) - last(&changed)).abs().max().double_value(&[]);
        assert_eq!(
            diff > 1e-6,
            remembers,
            "{cell:?}: the first input moved the last output by {diff}"
        );
    }
}

#[test]
fn the_gru_follows_the_textbook_equations() {
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut named = Default::default();
    let gru = GruCell::new(&vs.root(), "", 5, 4, &mut named);
    let (x, h) = (Tensor::randn([3, 5], F), Tensor::randn([3, 4], F));
    let gi = x.linear(&gru.weight_ih, Some(&gru.bias_ih)).chunk(3, 1);
    let gh = h.linear(&gru.weight_hh, Some(&gru.bias_hh)).chunk(3, 1);
    let r = (&gi[0] + &gh[0]).sigmoid();
    let z = (&gi[1] + &gh[1]).sigmoid();
    let n = (&gi[2] + &r * &gh[2]).tanh();
    let expected: Tensor = (1.0 - &z) * &n + &z * &h;
    let diff = (gru.step(&x, &h) - expected).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "{diff}");
}

#[test]
fn baseline_configs_name_what_is_missing_or_extra() {
    let err = |config: NcpConfig| {
        let vs = nn::VarStore::new(Device::Cpu);
        CellNet::new(&vs.root(), 8, &config)
            .err()
            .expect("an invalid config")
            .to_string()
    };
    let with_wiring = NcpConfig {
        wiring: Some(WiringConfig::AutoNcp {
            units: 8,
            output_size: 3,
            sparsity_level: 0.5,
            seed: 1,
        }),
        units: None,
        ..baseline(CellKind::Lstm)
    };
    assert!(err(with_wiring).contains("has no wiring: give `units`"));
    let no_proj = NcpConfig {
        proj_size: None,
        ..baseline(CellKind::Gru)
    };
    assert!(err(no_proj).contains("needs `proj_size`"));
    let mixed = NcpConfig {
        mixed_memory: true,
        ..baseline(CellKind::Mlp)
    };
    assert!(err(mixed).contains("mixed_memory"));
    let no_layers = NcpConfig {
        backbone_layers: Some(0),
        ..baseline(CellKind::Mlp)
    };
    assert!(err(no_layers).contains("backbone_layers"));
}
