//! Parity with ncps 1.0.1: the fixtures in tests/fixtures/ncps were produced by
//! scripts/dev/ncps_fixtures.py with the real package; these tests need no Python.
//!
//! For every case: load ncps's state_dict (safetensors), run the fixture input through the
//! generic libtorch path, the no-grad CPU kernel and the training kernel, and compare output
//! sequences and final states (max abs diff ≤ 1e-5). Then the other direction: our saved file
//! has exactly ncps's keys and shapes and reloads to the same outputs. With
//! `WORMNET_EXPORT_DIR` set, our own freshly initialised weights and outputs are written there
//! for scripts/dev/ncps_check_export.py to load into ncps with `strict=True`.

use std::path::{Path, PathBuf};

use tch::{nn, Device, Kind, Tensor};
use wormnet_ncp::wiring::{Wiring, WiringConfig};
use wormnet_ncp::{CellNet, NcpConfig, State};

const TOL: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ncps")
}

struct Case {
    name: String,
    config: NcpConfig,
    input_size: usize,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            config: serde_json::from_value(c["config"].clone())
                .unwrap_or_else(|e| panic!("{}: {e}", c["name"])),
            input_size: c["input_size"].as_u64().unwrap() as usize,
        })
        .collect()
}

fn read(path: &Path) -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(path).unwrap()
}

fn get(io: &[(String, Tensor)], key: &str) -> Option<Tensor> {
    io.iter()
        .find(|(k, _)| k == key)
        .map(|(_, t)| t.shallow_clone())
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shape mismatch");
    (a - b).abs().max().double_value(&[])
}

struct Io {
    x: Tensor,
    h0: Option<State>,
    ts: Option<Tensor>,
    y: Tensor,
    h: Tensor,
    c: Option<Tensor>,
}

fn load_io(name: &str) -> Io {
    let io = read(&fixtures().join(format!("{name}.io.safetensors")));
    let h0 = get(&io, "h0").map(|h| State {
        h,
        c: get(&io, "c0"),
    });
    Io {
        x: get(&io, "input").unwrap(),
        h0,
        ts: get(&io, "timespans"),
        y: get(&io, "output").unwrap(),
        h: get(&io, "final_h").unwrap(),
        c: get(&io, "final_c"),
    }
}

fn build(case: &Case, seed: i64) -> (nn::VarStore, CellNet) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = CellNet::new(&vs.root(), case.input_size, &case.config).unwrap();
    (vs, net)
}

/// ncps returns the whole last layer of a single-layer wired CfC (quirk Q6); we return the
/// motor neurons, its first `M` columns.
fn expected_output(net: &CellNet, y: &Tensor) -> Tensor {
    let m = net.output_size() as i64;
    y.narrow(2, 0, m)
}

fn compare(
    label: &str,
    net: &CellNet,
    io: &Io,
    run: impl Fn(&CellNet, &Io) -> (Tensor, State),
) -> f64 {
    let (y, s) = run(net, io);
    let dy = max_diff(&y.detach(), &expected_output(net, &io.y));
    let dh = max_diff(&s.h.detach(), &io.h);
    let dc = match (&s.c, &io.c) {
        (Some(a), Some(b)) => max_diff(&a.detach(), b),
        (None, None) => 0.0,
        _ => panic!("{label}: mixed-memory state mismatch"),
    };
    let d = dy.max(dh).max(dc);
    assert!(
        d <= TOL,
        "{label}: max abs diff {d:e} (y {dy:e}, h {dh:e}, c {dc:e})"
    );
    d
}

#[test]
fn ncps_weights_give_ncps_outputs() {
    let mut worst: f64 = 0.0;
    for case in cases() {
        let (_vs, net) = build(&case, 7);
        net.load_safetensors(fixtures().join(format!("{}.safetensors", case.name)))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let io = load_io(&case.name);
        // Generic libtorch path, autograd on.
        worst = worst.max(compare(
            &format!("{} generic", case.name),
            &net,
            &io,
            |n, io| n.forward_sequence(&io.x, io.h0.as_ref(), io.ts.as_ref()),
        ));
        // No-grad: the CPU kernel for LTC, the same tch path otherwise.
        worst = worst.max(compare(
            &format!("{} no-grad", case.name),
            &net,
            &io,
            |n, io| tch::no_grad(|| n.forward_sequence(&io.x, io.h0.as_ref(), io.ts.as_ref())),
        ));
        // Training forward (kernel with a tape for LTC).
        worst = worst.max(compare(
            &format!("{} train", case.name),
            &net,
            &io,
            |n, io| {
                let (y, s, _tape) =
                    n.forward_sequence_train(&io.x, io.h0.as_ref(), io.ts.as_ref(), None);
                (y, s)
            },
        ));
        // Streaming: one step at a time with the per-step timespans.
        worst = worst.max(compare(
            &format!("{} step", case.name),
            &net,
            &io,
            |n, io| {
                let (b, l) = (io.x.size()[0], io.x.size()[1]);
                let mut state = match &io.h0 {
                    Some(s) => State {
                        h: s.h.shallow_clone(),
                        c: s.c.as_ref().map(|c| c.shallow_clone()),
                    },
                    None => n.initial_state(b, Device::Cpu),
                };
                let mut ys = Vec::new();
                for t in 0..l {
                    let dt = match &io.ts {
                        Some(ts) => ts.select(1, t).unsqueeze(1),
                        None => Tensor::ones([b, 1], (Kind::Float, Device::Cpu)),
                    };
                    let (y, s) = n.step(&io.x.select(1, t), &state, &dt);
                    ys.push(y);
                    state = s;
                }
                (Tensor::stack(&ys, 1), state)
            },
        ));
    }
    println!("worst max abs diff over all cases and paths: {worst:e}");
}

#[test]
fn our_files_have_ncps_keys_and_reload_to_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let export = std::env::var_os("WORMNET_EXPORT_DIR").map(PathBuf::from);
    for (k, case) in cases().into_iter().enumerate() {
        let (_vs, net) = build(&case, 100 + k as i64);
        let path = dir.path().join(format!("{}.safetensors", case.name));
        net.save_safetensors(&path).unwrap();
        // Same key set and shapes as the state_dict ncps saved.
        let ours = read(&path);
        let theirs = read(&fixtures().join(format!("{}.safetensors", case.name)));
        let mut a: Vec<(String, Vec<i64>)> =
            ours.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        let mut b: Vec<(String, Vec<i64>)> =
            theirs.iter().map(|(k, t)| (k.clone(), t.size())).collect();
        a.sort();
        b.sort();
        assert_eq!(
            a, b,
            "{}: keys/shapes differ from ncps's state_dict",
            case.name
        );
        // A fresh network with other weights reproduces our outputs after loading.
        let io = load_io(&case.name);
        let (y, s) = net.forward_sequence(&io.x, io.h0.as_ref(), io.ts.as_ref());
        let (_vs2, other) = build(&case, 999);
        other.load_safetensors(&path).unwrap();
        let (y2, s2) = other.forward_sequence(&io.x, io.h0.as_ref(), io.ts.as_ref());
        assert_eq!(max_diff(&y.detach(), &y2.detach()), 0.0, "{}", case.name);
        assert_eq!(
            max_diff(&s.h.detach(), &s2.h.detach()),
            0.0,
            "{}",
            case.name
        );
        if let Some(dir) = &export {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::copy(&path, dir.join(format!("{}.safetensors", case.name))).unwrap();
            let mut out = vec![("output", y.detach()), ("final_h", s.h.detach())];
            if let Some(c) = &s.c {
                out.push(("final_c", c.detach()));
            }
            Tensor::write_safetensors(&out, dir.join(format!("{}.out.safetensors", case.name)))
                .unwrap();
        }
    }
}

#[test]
fn wirings_are_bit_identical_to_ncps() {
    let text = std::fs::read_to_string(fixtures().join("wirings.json")).unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = read(&fixtures().join("wirings.safetensors"));
    for w in list.as_array().unwrap() {
        let key = w["key"].as_str().unwrap();
        let cfg: WiringConfig = serde_json::from_value(w["config"].clone()).unwrap();
        let s = w["input_dim"].as_u64().unwrap() as usize;
        let wiring = Wiring::from_config(&cfg).unwrap().built(s).unwrap();
        let adj: Vec<i8> = Vec::<i32>::try_from(
            get(&tensors, &format!("{key}.adjacency"))
                .unwrap()
                .flatten(0, -1),
        )
        .unwrap()
        .into_iter()
        .map(|v| v as i8)
        .collect();
        let sadj: Vec<i8> = Vec::<i32>::try_from(
            get(&tensors, &format!("{key}.sensory_adjacency"))
                .unwrap()
                .flatten(0, -1),
        )
        .unwrap()
        .into_iter()
        .map(|v| v as i8)
        .collect();
        assert_eq!(
            wiring.adjacency(),
            adj.as_slice(),
            "{key} {cfg:?} adjacency"
        );
        assert_eq!(
            wiring.sensory_adjacency(),
            sadj.as_slice(),
            "{key} {cfg:?} sensory"
        );
    }
}

#[test]
fn loading_rejects_wrong_files_with_their_name() {
    let all = cases();
    let ltc = all
        .iter()
        .find(|c| c.name == "ltc_autoncp_implicit_affine_u6")
        .unwrap();
    let (_vs, net) = build(ltc, 1);
    // Another model's file: keys differ.
    let other = fixtures().join("cfc_default_l1.safetensors");
    let err = net.load_safetensors(&other).unwrap_err().to_string();
    assert!(err.contains("cfc_default_l1.safetensors"), "{err}");
    // Same keys, another wiring: masks differ.
    let ncp = fixtures().join("ltc_ncp_implicit_affine_u6.safetensors");
    assert!(net.load_safetensors(&ncp).is_err());
    let missing = fixtures().join("does_not_exist.safetensors");
    let err = net.load_safetensors(&missing).unwrap_err().to_string();
    assert!(err.contains("does_not_exist.safetensors"), "{err}");
}
