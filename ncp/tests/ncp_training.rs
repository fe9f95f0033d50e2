//! Training-time guarantees: the hand-written CPU backward equals libtorch autograd, masked
//! synapses carry no signal and get exactly zero gradient (also across Adam steps), per-sample
//! timespans equal running each sample alone, and state resets touch only the marked rows.

use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::cells::Mapping;
use wormnet_ncp::wiring::WiringConfig;
use wormnet_ncp::{CellKind, CellNet, NcpConfig, State};

const F: (Kind, Device) = (Kind::Float, Device::Cpu);

fn auto() -> WiringConfig {
    WiringConfig::AutoNcp {
        units: 19,
        output_size: 4,
        sparsity_level: 0.5,
        seed: 22222,
    }
}

fn ltc(implicit: bool, map: Mapping, unfolds: usize, wiring: WiringConfig) -> NcpConfig {
    NcpConfig {
        cell: CellKind::Ltc,
        wiring: Some(wiring),
        input_mapping: map,
        output_mapping: map,
        ode_unfolds: unfolds,
        implicit_constraints: implicit,
        ..NcpConfig::default()
    }
}

fn cfc_wired(mode: wormnet_ncp::cells::CfcMode) -> NcpConfig {
    NcpConfig {
        cell: CellKind::Cfc,
        wiring: Some(auto()),
        mode,
        ..NcpConfig::default()
    }
}

fn build(config: &NcpConfig, seed: i64) -> (nn::VarStore, CellNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellNet::new(&vs.root(), 8, config).unwrap();
    (vs, net)
}

fn grads(net: &CellNet) -> Vec<(String, Tensor)> {
    net.named_tensors()
        .entries()
        .iter()
        .filter(|e| e.trainable)
        .map(|e| (e.key.clone(), e.tensor.grad().copy()))
        .collect()
}

fn zero_grads(vs: &nn::VarStore) {
    for mut t in vs.trainable_variables() {
        t.zero_grad();
    }
}

#[test]
fn cpu_backward_equals_autograd() {
    let configs = [
        ltc(true, Mapping::Affine, 6, auto()),
        ltc(false, Mapping::Linear, 3, auto()),
        ltc(
            true,
            Mapping::None,
            6,
            WiringConfig::FullyConnected {
                units: 7,
                output_dim: Some(3),
                seed: 1111,
                self_connections: true,
            },
        ),
        ltc(
            false,
            Mapping::Affine,
            4,
            WiringConfig::Random {
                units: 10,
                output_dim: Some(2),
                sparsity_level: 0.5,
                seed: 3,
            },
        ),
        cfc_wired(wormnet_ncp::cells::CfcMode::Default),
        cfc_wired(wormnet_ncp::cells::CfcMode::NoGate),
        cfc_wired(wormnet_ncp::cells::CfcMode::Pure),
        NcpConfig {
            cell: CellKind::Cfc,
            wiring: Some(WiringConfig::Random {
                units: 9,
                output_dim: Some(3),
                sparsity_level: 0.4,
                seed: 5,
            }),
            ..NcpConfig::default()
        },
    ];
    // 3 samples take the LTC kernel's per-sample path, 11 its batch path (8 in vector
    // lanes, 3 one at a time).
    for (k, b) in (0..configs.len()).flat_map(|k| [(k, 3), (k, 11)]) {
        let config = &configs[k];
        let (vs, net) = build(config, 10 + k as i64);
        // Move every parameter off its init so that no gradient term is trivially zero.
        tch::no_grad(|| {
            for mut t in vs.trainable_variables() {
                let noise = t.randn_like() * 0.3;
                let _ = t.g_add_(&noise);
            }
        });
        if !config.implicit_constraints {
            net.apply_weight_constraints();
        }
        let l = 9;
        let x = Tensor::randn([b, l, 8], F).set_requires_grad(true);
        let ts = Tensor::rand([b, l], F) * 1.5 + 0.2;
        let h0 = State {
            h: (Tensor::randn([b, net.state_size() as i64], F) * 0.5).set_requires_grad(true),
            c: None,
        };
        let wy = Tensor::randn([b, l, net.output_size() as i64], F);
        let wh = Tensor::randn([b, net.state_size() as i64], F);
        let loss =
            |y: &Tensor, s: &State| (y * &wy).sum(Kind::Float) + (&s.h * &wh).sum(Kind::Float);

        // Episode starts mid-sequence for half of the configs.
        let starts = (k % 2 == 0).then(|| Tensor::rand([b, l], F).lt(0.25));
        // Reference: libtorch autograd through the generic path, one step at a time.
        let mut st = State {
            h: h0.h.shallow_clone(),
            c: None,
        };
        let mut ys = Vec::new();
        for t in 0..l {
            if let Some(starts) = &starts {
                st = st.reset(&starts.select(1, t));
            }
            let (yt, next) = net.step_generic(&x.select(1, t), &st, &ts.select(1, t).unsqueeze(1));
            ys.push(yt);
            st = next;
        }
        let (y, s) = (Tensor::stack(&ys, 1), st);
        loss(&y, &s).backward();
        let reference = grads(&net);
        let gx_ref = x.grad().copy();
        let gh_ref = h0.h.grad().copy();
        zero_grads(&vs);
        let mut xg = x.grad();
        let _ = xg.zero_();
        let mut hg = h0.h.grad();
        let _ = hg.zero_();

        // Hand-written kernel + tape.
        let (y2, s2, tape) = net.forward_sequence_train(&x, Some(&h0), Some(&ts), starts.as_ref());
        assert!(tape.uses_kernels());
        assert!((&y - &y2).abs().max().double_value(&[]) < 1e-5);
        tape.backward(&loss(&y2, &s2));
        let kernel = grads(&net);
        for ((key, a), (_, g)) in reference.iter().zip(kernel.iter()) {
            let scale = a.abs().max().double_value(&[]).max(1e-3);
            let d = (a - g).abs().max().double_value(&[]);
            assert!(
                d <= 1e-4 * scale,
                "config {k}, batch {b}: {key} grad differs by {d:e} (scale {scale:e})"
            );
        }
        for (name, a, g) in [("x", &gx_ref, &x.grad()), ("h0", &gh_ref, &h0.h.grad())] {
            let scale = a.abs().max().double_value(&[]).max(1e-3);
            let d = (a - g).abs().max().double_value(&[]);
            assert!(
                d <= 1e-4 * scale,
                "config {k}, batch {b}: grad of {name} differs by {d:e}"
            );
        }
    }
}

#[test]
fn ltc_kernel_per_sample_path_equals_the_batch_path() {
    // A batch of 9 runs in the batch-wide loops (8 samples in vector lanes, 1 alone); each
    // sample alone takes the per-sample path (vectorised over synapses). Outputs, states and
    // the inputs' gradients are per sample, so they must agree to the bit; the parameters'
    // gradients are sums over samples, chained through softplus after (batch) or before
    // (one sample at a time) the sum, so they agree to rounding.
    let single: Vec<(i64, i64)> = (0..9).map(|i| (i, 1)).collect();
    for (k, config) in [
        ltc(true, Mapping::Affine, 6, auto()),
        ltc(false, Mapping::Linear, 3, auto()),
    ]
    .iter()
    .enumerate()
    {
        assert_parts_equal_the_whole(config, 90 + k as i64, 9, &single);
    }
}

#[test]
fn cfc_kernel_per_sample_path_equals_the_batch_path() {
    // 9 samples run in the batch loops; 5 and 2 run one sample at a time (the per-sample
    // path), and a single sample runs the batch-1 loops down the weights' columns.
    use wormnet_ncp::cells::CfcMode;
    let parts = [(0, 5), (5, 1), (6, 1), (7, 2)];
    for (k, mode) in [CfcMode::Default, CfcMode::NoGate, CfcMode::Pure]
        .into_iter()
        .enumerate()
    {
        assert_parts_equal_the_whole(&cfc_wired(mode), 70 + k as i64, 9, &parts);
    }
}

/// Runs a batch of `b` through the kernel whole and in `parts` (row offset, rows): outputs,
/// states and the inputs' gradients must agree to the bit, the parameters' gradients (sums
/// over samples) to rounding.
fn assert_parts_equal_the_whole(config: &NcpConfig, seed: i64, b: i64, parts: &[(i64, i64)]) {
    let (vs, net) = build(config, seed);
    tch::no_grad(|| {
        for mut t in vs.trainable_variables() {
            let noise = t.randn_like() * 0.3;
            let _ = t.g_add_(&noise);
        }
    });
    let l = 7;
    let x = Tensor::randn([b, l, 8], F);
    let ts = Tensor::rand([b, l], F) * 1.5 + 0.2;
    let h0 = Tensor::randn([b, net.state_size() as i64], F) * 0.5;
    let starts = Tensor::rand([b, l], F).lt(0.2);
    let wy = Tensor::randn([b, l, net.output_size() as i64], F);
    let wh = Tensor::randn([b, net.state_size() as i64], F);
    let run = |rows: (i64, i64)| {
        zero_grads(&vs);
        let x = x.narrow(0, rows.0, rows.1).copy().set_requires_grad(true);
        let h = h0.narrow(0, rows.0, rows.1).copy().set_requires_grad(true);
        let state = State {
            h: h.shallow_clone(),
            c: None,
        };
        let (y, s, tape) = net.forward_sequence_train(
            &x,
            Some(&state),
            Some(&ts.narrow(0, rows.0, rows.1)),
            Some(&starts.narrow(0, rows.0, rows.1)),
        );
        let loss = (&y * wy.narrow(0, rows.0, rows.1)).sum(Kind::Float)
            + (&s.h * wh.narrow(0, rows.0, rows.1)).sum(Kind::Float);
        tape.backward(&loss);
        (y, s.h, x.grad(), h.grad(), grads(&net))
    };
    let (y, h, gx, gh, params) = run((0, b));
    let mut summed: Vec<Tensor> = params.iter().map(|(_, g)| g.zeros_like()).collect();
    for &(first, rows) in parts {
        let (yi, hi, gxi, ghi, pi) = run((first, rows));
        for (name, whole, part) in [("y", &y, yi), ("h", &h, hi), ("x grad", &gx, gxi)]
            .into_iter()
            .chain([("h0 grad", &gh, ghi)])
        {
            assert!(
                whole.narrow(0, first, rows).equal(&part),
                "seed {seed} rows {first}+{rows}: {name} differs between the paths"
            );
        }
        for (sum, (_, g)) in summed.iter_mut().zip(&pi) {
            *sum += g;
        }
    }
    for ((key, whole), sum) in params.iter().zip(&summed) {
        let scale = whole.abs().max().double_value(&[]).max(1e-3);
        let d = (whole - sum).abs().max().double_value(&[]);
        assert!(
            d <= 1e-5 * scale,
            "seed {seed}: {key} grad differs by {d:e}"
        );
    }
}

/// (parameter key, mask key) pairs whose masked entries must stay silent.
fn masked_pairs(net: &CellNet) -> Vec<(Tensor, Tensor, String)> {
    let entries = net.named_tensors().entries();
    let find = |k: &str| {
        entries
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.tensor.shallow_clone())
    };
    let mut out = Vec::new();
    if let (Some(m), Some(sm)) = (
        find("rnn_cell.sparsity_mask"),
        find("rnn_cell.sensory_sparsity_mask"),
    ) {
        if net.ltc().is_some() {
            for k in ["w", "sigma", "mu", "erev"] {
                out.push((
                    find(&format!("rnn_cell.{k}")).unwrap(),
                    m.shallow_clone(),
                    k.to_string(),
                ));
            }
            for k in ["sensory_w", "sensory_sigma", "sensory_mu", "sensory_erev"] {
                out.push((
                    find(&format!("rnn_cell.{k}")).unwrap(),
                    sm.shallow_clone(),
                    k.to_string(),
                ));
            }
        }
    }
    for l in 0..3 {
        if let Some(m) = find(&format!("rnn_cell.layer_{l}.sparsity_mask")) {
            for head in ["ff1", "ff2"] {
                if let Some(w) = find(&format!("rnn_cell.layer_{l}.{head}.weight")) {
                    out.push((w, m.shallow_clone(), format!("layer_{l}.{head}")));
                }
            }
        }
    }
    out
}

#[test]
fn masked_synapses_get_zero_gradient_throughout_training() {
    use wormnet_ncp::cells::CfcMode;
    let configs = [
        (ltc(true, Mapping::Affine, 6, auto()), false),
        (ltc(true, Mapping::Affine, 6, auto()), true),
        (ltc(false, Mapping::Affine, 6, auto()), true),
        (cfc_wired(CfcMode::Default), false),
        (cfc_wired(CfcMode::Pure), false),
        (cfc_wired(CfcMode::NoGate), true),
        (cfc_wired(CfcMode::Pure), true),
    ];
    for (k, (config, kernel)) in configs.iter().enumerate() {
        let (vs, net) = build(config, 30 + k as i64);
        let pairs = masked_pairs(&net);
        assert!(!pairs.is_empty());
        let before: Vec<Tensor> = pairs.iter().map(|(p, _, _)| p.copy()).collect();
        let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
        for step in 0..5 {
            let x = Tensor::randn([4, 6, 8], F);
            let target = Tensor::randn([4, 6, net.output_size() as i64], F);
            opt.zero_grad();
            if *kernel {
                let (y, _, tape) = net.forward_sequence_train(&x, None, None, None);
                tape.backward(&(&y - &target).square().mean(Kind::Float));
            } else {
                let (y, _) = net.forward_sequence(&x, None, None);
                (&y - &target).square().mean(Kind::Float).backward();
            }
            for (p, m, name) in &pairs {
                let g = p.grad();
                let masked = (g.abs() * (m.neg() + 1.0))
                    .sum(Kind::Float)
                    .double_value(&[]);
                assert_eq!(masked, 0.0, "config {k} step {step}: {name} masked grad");
                let live = (g.abs() * m).sum(Kind::Float).double_value(&[]);
                assert!(live > 0.0, "config {k}: {name} has no gradient at all");
            }
            opt.step();
            net.apply_weight_constraints();
        }
        for ((p, m, name), b) in pairs.iter().zip(before.iter()) {
            let moved = ((p - b).abs() * (m.neg() + 1.0))
                .sum(Kind::Float)
                .double_value(&[]);
            assert_eq!(
                moved, 0.0,
                "config {k}: masked {name} changed during training"
            );
        }
    }
}

#[test]
fn masked_weights_change_no_output() {
    use wormnet_ncp::cells::CfcMode;
    for (k, config) in [
        ltc(true, Mapping::Affine, 6, auto()),
        cfc_wired(CfcMode::NoGate),
    ]
    .iter()
    .enumerate()
    {
        let (_vs, net) = build(config, 50 + k as i64);
        let x = Tensor::randn([3, 5, 8], F);
        let (y0, s0) = net.forward_sequence(&x, None, None);
        let (yk0, _) = tch::no_grad(|| net.forward_sequence(&x, None, None));
        tch::no_grad(|| {
            for (p, m, _) in masked_pairs(&net) {
                let noise = Tensor::randn(p.size().as_slice(), F) * 5.0;
                let mut p = p;
                let _ = p.g_add_(&(noise * (m.neg() + 1.0)));
            }
        });
        let (y1, s1) = net.forward_sequence(&x, None, None);
        let (yk1, _) = tch::no_grad(|| net.forward_sequence(&x, None, None));
        assert_eq!((&y0 - &y1).abs().max().double_value(&[]), 0.0, "config {k}");
        assert_eq!(
            (&s0.h - &s1.h).abs().max().double_value(&[]),
            0.0,
            "config {k}"
        );
        assert_eq!(
            (&yk0 - &yk1).abs().max().double_value(&[]),
            0.0,
            "config {k} kernel"
        );
    }
}

#[test]
fn per_sample_timespans_equal_running_each_sample_alone() {
    use wormnet_ncp::cells::CfcMode;
    let dense_cfc = NcpConfig {
        cell: CellKind::Cfc,
        wiring: None,
        units: Some(12),
        backbone_units: Some(16),
        mixed_memory: true,
        ..NcpConfig::default()
    };
    let mixed_ltc = NcpConfig {
        mixed_memory: true,
        ..ltc(true, Mapping::Affine, 6, auto())
    };
    for (k, config) in [
        ltc(true, Mapping::Affine, 6, auto()),
        mixed_ltc,
        cfc_wired(CfcMode::Default),
        dense_cfc,
    ]
    .iter()
    .enumerate()
    {
        let (_vs, net) = build(config, 70 + k as i64);
        let (b, l) = (5, 7);
        let x = Tensor::randn([b, l, 8], F);
        let ts = Tensor::rand([b, l], F) * 2.0 + 0.1;
        for grad in [true, false] {
            let run = |x: &Tensor, ts: &Tensor| {
                if grad {
                    net.forward_sequence(x, None, Some(ts))
                } else {
                    tch::no_grad(|| net.forward_sequence(x, None, Some(ts)))
                }
            };
            let (y, s) = run(&x, &ts);
            for i in 0..b {
                let (yi, si) = run(&x.narrow(0, i, 1), &ts.narrow(0, i, 1));
                let d = (y.narrow(0, i, 1) - yi).abs().max().double_value(&[]);
                let dh = (s.h.narrow(0, i, 1) - si.h).abs().max().double_value(&[]);
                assert!(
                    d < 1e-6 && dh < 1e-6,
                    "config {k} grad {grad} sample {i}: {d:e} {dh:e}"
                );
            }
            // And the timespans matter: a uniform Δt gives different outputs.
            let (yu, _) = run(&x, &Tensor::ones([b, l], F));
            assert!((&y - yu).abs().max().double_value(&[]) > 1e-4);
        }
    }
}

#[test]
fn reset_zeroes_only_the_marked_rows() {
    let (_vs, net) = build(
        &NcpConfig {
            mixed_memory: true,
            ..NcpConfig::default()
        },
        3,
    );
    let s = State {
        h: Tensor::ones([3, 19], F),
        c: Some(Tensor::ones([3, 19], F) * 2.0),
    };
    let r = s.reset(&Tensor::from_slice(&[false, true, false]));
    let rows: Vec<f64> = (0..3)
        .map(|i| r.h.get(i).sum(Kind::Float).double_value(&[]))
        .collect();
    assert_eq!(rows, vec![19.0, 0.0, 19.0]);
    let c = r.c.unwrap();
    assert_eq!(c.get(1).sum(Kind::Float).double_value(&[]), 0.0);
    assert_eq!(c.get(2).sum(Kind::Float).double_value(&[]), 38.0);
    assert_eq!(net.state_labels()[0], "motor_0");
}

#[test]
fn explicit_constraints_clamp_after_steps() {
    let (_vs, net) = build(&ltc(false, Mapping::Affine, 6, auto()), 4);
    let cell = net.ltc().unwrap();
    tch::no_grad(|| {
        let mut w = cell.w.shallow_clone();
        let _ = w.fill_(-1.0);
    });
    net.apply_weight_constraints();
    assert_eq!(cell.w.min().double_value(&[]), 0.0);
}

#[test]
fn bad_configs_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let bad = [
        NcpConfig {
            units: Some(8),
            ..NcpConfig::default()
        },
        NcpConfig {
            wiring: None,
            ..NcpConfig::default()
        },
        NcpConfig {
            ode_unfolds: 0,
            ..NcpConfig::default()
        },
        NcpConfig {
            proj_size: Some(2),
            ..NcpConfig::default()
        },
        NcpConfig {
            cell: CellKind::Cfc,
            backbone_units: Some(4),
            ..NcpConfig::default()
        },
        NcpConfig {
            wiring: Some(WiringConfig::AutoNcp {
                units: 5,
                output_size: 4,
                sparsity_level: 0.5,
                seed: 1,
            }),
            ..NcpConfig::default()
        },
    ];
    for c in bad {
        assert!(CellNet::new(&vs.root(), 8, &c).is_err(), "{c:?}");
    }
    let toml_err = toml::from_str::<NcpConfig>("cell = \"ltc\"\nunfolds = 3\n");
    assert!(toml_err.is_err());
}

#[test]
fn audit_states_cover_every_neuron_every_step() {
    let (_vs, net) = build(&cfc_wired(wormnet_ncp::cells::CfcMode::Default), 5);
    let x = Tensor::randn([2, 6, 8], F);
    let (y, states, last) = net.forward_sequence_states(&x, None, None);
    assert_eq!(states.size(), vec![2, 6, 19]);
    let (y2, last2) = net.forward_sequence(&x, None, None);
    assert_eq!((&y - y2).abs().max().double_value(&[]), 0.0);
    assert_eq!((&last.h - &last2.h).abs().max().double_value(&[]), 0.0);
    assert_eq!(
        (states.select(1, 5) - &last.h)
            .abs()
            .max()
            .double_value(&[]),
        0.0
    );
    // Wired CfC state is in layer order: inter first, motor last (ids 0..4).
    let ids = net.state_neuron_ids();
    assert_eq!(&ids[15..], &[0, 1, 2, 3]);
    assert_eq!(net.state_labels()[15], "motor_0");
    assert_eq!(net.state_labels()[0], "inter_0");
}

#[test]
fn cuda_generic_path_matches_cpu_when_available() {
    if !wormnet_ncp::runtime::cuda_available() {
        println!("no CUDA device: nothing to compare");
        return;
    }
    for config in [
        ltc(true, Mapping::Affine, 6, auto()),
        cfc_wired(wormnet_ncp::cells::CfcMode::Pure),
    ] {
        let (vs, net) = build(&config, 6);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        net.save_safetensors(&path).unwrap();
        let mut gpu_vs = nn::VarStore::new(Device::Cuda(0));
        let gpu = CellNet::new(&gpu_vs.root(), 8, &config).unwrap();
        gpu.load_safetensors(&path).unwrap();
        gpu_vs.freeze();
        let x = Tensor::randn([4, 5, 8], F);
        let ts = Tensor::rand([4, 5], F) + 0.5;
        let (y, _) = net.forward_sequence(&x, None, Some(&ts));
        let (yg, _) =
            gpu.forward_sequence(&x.to(Device::Cuda(0)), None, Some(&ts.to(Device::Cuda(0))));
        let d = (y - yg.to(Device::Cpu)).abs().max().double_value(&[]);
        assert!(d < 1e-5, "cuda differs by {d:e}");
        drop(vs);
    }
}

#[test]
fn kernel_sees_parameter_updates() {
    use wormnet_ncp::cells::CfcMode;
    for (k, config) in [
        ltc(true, Mapping::Affine, 6, auto()),
        cfc_wired(CfcMode::Default),
    ]
    .iter()
    .enumerate()
    {
        let (vs, net) = build(config, 90 + k as i64);
        let mut opt = nn::Adam::default().build(&vs, 1e-1).unwrap();
        let x = Tensor::randn([3, 4, 8], F);
        let state = net.initial_state(3, Device::Cpu);
        let dt = Tensor::ones([3, 1], F);
        let (before, _) = tch::no_grad(|| net.forward_sequence(&x, None, None));
        let (step_before, _) = net.step(&x.select(1, 0), &state, &dt);
        // One optimizer step changes every parameter in place.
        opt.zero_grad();
        let (y, _, tape) = net.forward_sequence_train(&x, None, None, None);
        tape.backward(&y.square().sum(Kind::Float));
        opt.step();
        let (after, _) = tch::no_grad(|| net.forward_sequence(&x, None, None));
        let (step_after, _) = net.step(&x.select(1, 0), &state, &dt);
        let (reference, _) = net.forward_sequence(&x, None, None);
        assert!(
            (&before - &after).abs().max().double_value(&[]) > 1e-4,
            "config {k}"
        );
        assert!((&step_before - &step_after).abs().max().double_value(&[]) > 1e-4);
        assert!(
            (&after - reference).abs().max().double_value(&[]) < 1e-5,
            "config {k}"
        );
    }
}

#[test]
fn synapse_currents_are_activity_times_driving_force() {
    let (_vs, net) = build(&ltc(true, Mapping::Affine, 6, auto()), 9);
    let kernel = net.ltc_kernel().expect("an LTC has a kernel");
    let v: Vec<f32> = (0..19).map(|i| ((i as f32) * 0.37).sin() * 0.9).collect();
    let x: Vec<f32> = (0..8).map(|i| ((i as f32) * 0.71).cos()).collect();
    let (act_int, act_sens) = kernel.synapse_activity(&v, &x);
    let (cur_int, cur_sens) = kernel.synapse_currents(&v, &x);
    let (mut up, mut down) = (0, 0);
    for (acts, curs) in [(act_int, cur_int), (act_sens, cur_sens)] {
        assert_eq!(acts.len(), curs.len());
        for (&(s, d, a), &(s2, d2, c)) in acts.iter().zip(&curs) {
            assert_eq!((s, d), (s2, d2));
            assert!(a > 0.0, "activity of {s}->{d} is {a}");
            // A fresh wiring has reversal potentials of ±1: the current is a·(±1 − v_dst).
            let force = c / a;
            let excit = (force - (1.0 - v[d])).abs() < 1e-4;
            let inhib = (force - (-1.0 - v[d])).abs() < 1e-4;
            assert!(
                excit || inhib,
                "{s}->{d}: current {c}, activity {a}, v {}",
                v[d]
            );
            if excit {
                up += 1;
            } else {
                down += 1;
            }
        }
    }
    assert!(up > 0 && down > 0, "{up} excitatory, {down} inhibitory");
}
