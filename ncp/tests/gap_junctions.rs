//! Gap junctions (electrical synapses) in the LTC: the hand-written kernel equals autograd
//! through the cell with junctions (forward and backward, both paths of the kernel), both
//! match central finite differences of a float64 copy of the cell, and a wiring without
//! junctions has exactly the parameters it had before.

use tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::wiring::{Wiring, WiringConfig, WiringFile};
use wormnet_ncp::{CellKind, CellNet, NcpConfig, State};

const F: (Kind, Device) = (Kind::Float, Device::Cpu);
const INPUTS: i64 = 5;

/// A random 10-neuron wiring (3 motor) with four gap junctions, written as a wiring file.
fn junction_config(dir: &std::path::Path, implicit: bool) -> NcpConfig {
    let wiring = Wiring::random(10, Some(3), 0.5, 7).expect("wiring");
    let mut file = WiringFile::from(wiring.built(INPUTS as usize).expect("built"));
    file.gap_junctions = vec![(0, 4), (7, 2), (3, 9), (5, 6)];
    let path = dir.join(format!("gaps_{implicit}.toml"));
    std::fs::write(&path, toml::to_string(&file).expect("toml")).expect("write");
    NcpConfig {
        cell: CellKind::Ltc,
        wiring: Some(WiringConfig::File { path }),
        ode_unfolds: 4,
        implicit_constraints: implicit,
        ..NcpConfig::default()
    }
}

fn build(config: &NcpConfig, seed: i64) -> (nn::VarStore, CellNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellNet::new(&vs.root(), INPUTS as usize, config).expect("net");
    tch::no_grad(|| {
        for mut t in vs.trainable_variables() {
            let noise = t.randn_like() * 0.3;
            let _ = t.g_add_(&noise);
        }
    });
    net.apply_weight_constraints();
    (vs, net)
}

fn gap_w(net: &CellNet) -> Tensor {
    net.ltc()
        .and_then(|c| c.gap_w.as_ref())
        .expect("gap_w")
        .shallow_clone()
}

/// Inputs of one test run: x `(B, L, S)`, timespans, initial state, episode starts and the
/// loss weights on outputs and final state.
struct Batch {
    x: Tensor,
    ts: Tensor,
    h0: Tensor,
    starts: Tensor,
    wy: Tensor,
    wh: Tensor,
}

fn batch(net: &CellNet, b: i64, seed: i64) -> Batch {
    tch::manual_seed(seed);
    let l = 6;
    Batch {
        x: Tensor::randn([b, l, INPUTS], F),
        ts: Tensor::rand([b, l], F) * 1.5 + 0.2,
        h0: Tensor::randn([b, net.state_size() as i64], F) * 0.5,
        starts: Tensor::rand([b, l], F).lt(0.2),
        wy: Tensor::randn([b, l, net.output_size() as i64], F),
        wh: Tensor::randn([b, net.state_size() as i64], F),
    }
}

/// The loss through libtorch autograd, one cell step at a time, in the batch's kind.
fn generic_loss(net: &CellNet, d: &Batch) -> Tensor {
    let mut st = State {
        h: d.h0.shallow_clone(),
        c: None,
    };
    let mut terms = Vec::new();
    for t in 0..d.x.size()[1] {
        st = st.reset(&d.starts.select(1, t));
        let dt = d.ts.select(1, t).unsqueeze(1);
        let (y, next) = net.step_generic(&d.x.select(1, t), &st, &dt);
        terms.push((y * d.wy.select(1, t)).sum(d.x.kind()));
        st = next;
    }
    terms.push((&st.h * &d.wh).sum(d.x.kind()));
    Tensor::stack(&terms, 0).sum(d.x.kind())
}

/// Outputs, final state and gradients (every parameter, then x and h0) through the kernel.
fn kernel_run(net: &CellNet, vs: &nn::VarStore, d: &Batch) -> (Tensor, Tensor, Vec<Tensor>) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
    let x = d.x.copy().set_requires_grad(true);
    let h = d.h0.copy().set_requires_grad(true);
    let state = State {
        h: h.shallow_clone(),
        c: None,
    };
    let (y, s, tape) = net.forward_sequence_train(&x, Some(&state), Some(&d.ts), Some(&d.starts));
    assert!(tape.uses_kernels());
    let loss = (&y * &d.wy).sum(Kind::Float) + (&s.h * &d.wh).sum(Kind::Float);
    tape.backward(&loss);
    let mut grads: Vec<Tensor> = trainable(net).iter().map(|t| t.grad().copy()).collect();
    grads.extend([x.grad().copy(), h.grad().copy()]);
    (y, s.h, grads)
}

fn trainable(net: &CellNet) -> Vec<Tensor> {
    net.named_tensors()
        .entries()
        .iter()
        .filter(|e| e.trainable)
        .map(|e| e.tensor.shallow_clone())
        .collect()
}

#[test]
fn kernel_equals_autograd_with_gap_junctions() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (k, implicit) in [true, false].into_iter().enumerate() {
        let config = junction_config(dir.path(), implicit);
        let (vs, net) = build(&config, 40 + k as i64);
        // 3 samples take the kernel's per-sample path, 11 its batch path.
        for b in [3, 11] {
            let d = batch(&net, b, 50 + b);
            let (y, h, kernel) = kernel_run(&net, &vs, &d);
            // Reference: autograd through the cell, one step at a time.
            for mut t in vs.trainable_variables() {
                t.zero_grad();
            }
            let x = d.x.copy().set_requires_grad(true);
            let h0 = d.h0.copy().set_requires_grad(true);
            let reference_batch = Batch {
                x: x.shallow_clone(),
                h0: h0.shallow_clone(),
                ..batch(&net, b, 50 + b)
            };
            let loss = generic_loss(&net, &reference_batch);
            loss.backward();
            let mut reference: Vec<Tensor> =
                trainable(&net).iter().map(|t| t.grad().copy()).collect();
            reference.extend([x.grad().copy(), h0.grad().copy()]);
            let kernel_loss = (&y * &d.wy).sum(Kind::Float) + (&h * &d.wh).sum(Kind::Float);
            let dl = (kernel_loss - &loss).abs().double_value(&[]);
            assert!(
                dl <= 1e-5 * (1.0 + loss.abs().double_value(&[])),
                "loss differs by {dl:e}"
            );
            let gap = gap_w(&net).grad();
            assert!(
                gap.abs().max().double_value(&[]) > 1e-3,
                "no gradient reached gap_w"
            );
            for (i, (a, g)) in reference.iter().zip(&kernel).enumerate() {
                let scale = a.abs().max().double_value(&[]).max(1e-3);
                let diff = (a - g).abs().max().double_value(&[]);
                assert!(
                    diff <= 1e-5 * scale.max(1.0),
                    "implicit {implicit}, batch {b}: gradient {i} differs by {diff:e} (scale {scale:e})"
                );
            }
        }
    }
}

#[test]
fn gap_gradients_match_central_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = junction_config(dir.path(), true);
    let (vs, net) = build(&config, 3);
    let d = batch(&net, 4, 8);
    let (_, _, kernel) = kernel_run(&net, &vs, &d);
    let kernel_gap = kernel[trainable(&net)
        .iter()
        .position(|t| t.size() == gap_w(&net).size() && t.data_ptr() == gap_w(&net).data_ptr())
        .expect("gap_w among the trainable tensors")]
    .to_kind(Kind::Double);
    // A float64 copy of the cell: autograd, and central differences of the same loss.
    let (mut vs64, net64) = build(&config, 3);
    vs64.copy(&vs).expect("copy");
    vs64.double();
    let d64 = Batch {
        x: d.x.to_kind(Kind::Double),
        ts: d.ts.to_kind(Kind::Double),
        h0: d.h0.to_kind(Kind::Double),
        starts: d.starts.shallow_clone(),
        wy: d.wy.to_kind(Kind::Double),
        wh: d.wh.to_kind(Kind::Double),
    };
    let g = gap_w(&net64);
    generic_loss(&net64, &d64).backward();
    let autograd = g.grad().copy();
    let eps = 1e-6;
    let numeric: Vec<f64> = (0..g.numel() as i64)
        .map(|k| {
            let at = |delta: f64| {
                tch::no_grad(|| {
                    let _ = g.get(k).g_add_scalar_(delta);
                    let loss = generic_loss(&net64, &d64).double_value(&[]);
                    let _ = g.get(k).g_add_scalar_(-delta);
                    loss
                })
            };
            (at(eps) - at(-eps)) / (2.0 * eps)
        })
        .collect();
    let numeric = Tensor::from_slice(&numeric);
    let scale = numeric.abs().max().double_value(&[]);
    assert!(
        scale > 1e-3,
        "the junctions do not move the loss: {numeric:?}"
    );
    let autograd_error = (&autograd - &numeric).abs().max().double_value(&[]);
    let kernel_error = (&kernel_gap - &numeric).abs().max().double_value(&[]);
    assert!(
        autograd_error <= 1e-6 * scale,
        "autograd {autograd:?} vs central differences {numeric:?}"
    );
    assert!(
        kernel_error <= 1e-4 * scale,
        "kernel {kernel_gap:?} vs central differences {numeric:?}"
    );
}

#[test]
fn junctions_add_one_conductance_each_and_no_junctions_add_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = |config: &NcpConfig| -> Vec<(String, Vec<i64>)> {
        let (_, net) = build(config, 1);
        net.named_tensors()
            .entries()
            .iter()
            .map(|e| (e.key.clone(), e.tensor.size()))
            .collect()
    };
    let with = keys(&junction_config(dir.path(), true));
    let mut plain_config = junction_config(dir.path(), true);
    let wiring = Wiring::random(10, Some(3), 0.5, 7).expect("wiring");
    let path = dir.path().join("plain.toml");
    wiring
        .built(INPUTS as usize)
        .expect("built")
        .save(&path)
        .expect("save");
    assert!(!std::fs::read_to_string(&path)
        .expect("read")
        .contains("gap"));
    plain_config.wiring = Some(WiringConfig::File { path });
    let without = keys(&plain_config);
    assert!(
        without.iter().all(|(k, _)| !k.contains("gap")),
        "{without:?}"
    );
    // The same tensors in the same order, plus one conductance per junction at the end.
    assert_eq!(with[..without.len()], without[..]);
    assert_eq!(
        with[without.len()..],
        [("rnn_cell.gap_w".to_string(), vec![4])]
    );
    // A CfC cannot model them: a clear error, not a silent drop.
    let cfc = NcpConfig {
        cell: CellKind::Cfc,
        ..junction_config(dir.path(), true)
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let err = CellNet::new(&vs.root(), INPUTS as usize, &cfc)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("gap junctions"), "{err}");
}
