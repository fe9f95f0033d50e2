//! The NCP speed benchmark behind `wormnet bench ncp`: LTC and CfC on AutoNCP(19, 4) with 8
//! inputs, sequences of 100, measured the same way as scripts/dev/bench_ncps.py measures Python
//! ncps, so the two can be run back to back and compared case by case.
//!
//! Modes: `forward` (no-grad sequence forward), `train` (forward + backward + Adam step on an
//! MSE loss), `step` (one streaming no-grad step). Each is measured on the path wormnet picks
//! automatically (`path = "kernel"`: the hand-written CPU kernels of the LTC and the wired CfC)
//! and, with `tch_too`, also on the generic libtorch path for reference.

use std::time::Instant;

use serde::Serialize;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

use crate::config::{CellKind, NcpConfig};
use crate::net::{CellNet, State};
use crate::wiring::WiringConfig;

/// One measured case.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Which implementation measured it (`wormnet`).
    pub implementation: &'static str,
    /// `ltc` or `cfc`.
    pub model: &'static str,
    /// Batch size.
    pub batch: i64,
    /// `forward`, `train` or `step`.
    pub mode: &'static str,
    /// Median milliseconds per call.
    pub ms: f64,
    /// `kernel` (hand-written CPU kernels) or `tch` (generic libtorch ops).
    pub path: &'static str,
    /// libtorch intra-op threads.
    pub threads: i32,
    /// Repetitions measured.
    pub reps: usize,
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Batches for `forward` and `train`.
    pub batches: Vec<i64>,
    /// Batches for `step`.
    pub step_batches: Vec<i64>,
    /// Sequence length.
    pub seq: i64,
    /// Approximate seconds per case.
    pub seconds: f64,
    /// Also measure the generic libtorch path where the kernel is used.
    pub tch_too: bool,
    /// Models to run (`ltc`, `cfc`).
    pub models: Vec<CellKind>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            batches: vec![1, 32, 256],
            step_batches: vec![1, 16, 32, 256],
            seq: 100,
            seconds: 1.0,
            tch_too: true,
            models: vec![CellKind::Ltc, CellKind::Cfc],
        }
    }
}

const INPUTS: i64 = 8;

fn config(cell: CellKind) -> NcpConfig {
    NcpConfig {
        cell,
        wiring: Some(WiringConfig::AutoNcp {
            units: 19,
            output_size: 4,
            sparsity_level: 0.5,
            seed: 22222,
        }),
        ..NcpConfig::default()
    }
}

/// Median time of `f` in ms: two warm-up calls, then repeats for about `seconds` (≥ 3).
fn time_ms(seconds: f64, mut f: impl FnMut()) -> (f64, usize) {
    f();
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 3 || (start.elapsed().as_secs_f64() < seconds && samples.len() < 10_000) {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples.len())
}

/// Runs every case, calling `report` as each finishes.
pub fn run(options: &BenchOptions, mut report: impl FnMut(&BenchRow)) -> anyhow::Result<()> {
    let threads = tch::get_num_threads();
    for &cell in &options.models {
        let model = match cell {
            CellKind::Ltc => "ltc",
            CellKind::Cfc => "cfc",
            other => anyhow::bail!("the NCP bench measures ltc and cfc, not {other:?}"),
        };
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = CellNet::new(&vs.root(), INPUTS as usize, &config(cell))?;
        let mut opt = nn::Adam::default().build(&vs, 1e-3)?;
        let mut emit =
            |mode: &'static str, batch: i64, path: &'static str, (ms, reps): (f64, usize)| {
                report(&BenchRow {
                    implementation: "wormnet",
                    model,
                    batch,
                    mode,
                    ms,
                    path,
                    threads,
                    reps,
                })
            };
        for &b in &options.batches {
            let x = Tensor::randn([b, options.seq, INPUTS], (Kind::Float, Device::Cpu));
            let target = Tensor::randn(
                [b, options.seq, net.output_size() as i64],
                (Kind::Float, Device::Cpu),
            );
            // Both benchmark models (LTC, wired CfC) run on their hand-written CPU kernels.
            let auto_path = "kernel";
            let t = time_ms(options.seconds, || {
                let _ = tch::no_grad(|| net.forward_sequence(&x, None, None));
            });
            emit("forward", b, auto_path, t);
            if options.tch_too {
                // Grad mode on but nothing backpropagated: the generic libtorch ops.
                let t = time_ms(options.seconds, || {
                    let _ = net.forward_sequence(&x, None, None);
                });
                emit("forward", b, "tch", t);
            }
            let t = time_ms(options.seconds, || {
                opt.zero_grad();
                let (y, _, tape) = net.forward_sequence_train(&x, None, None, None);
                tape.backward(&(y - &target).square().mean(Kind::Float));
                opt.step();
            });
            emit("train", b, auto_path, t);
            if options.tch_too {
                let t = time_ms(options.seconds, || {
                    opt.zero_grad();
                    let (y, _) = net.forward_sequence(&x, None, None);
                    (y - &target).square().mean(Kind::Float).backward();
                    opt.step();
                });
                emit("train", b, "tch", t);
            }
        }
        step_cases(&net, options, &mut emit);
    }
    Ok(())
}

/// One emitted measurement: mode, batch, path, (median ms, repetitions).
type Emit<'a> = dyn FnMut(&'static str, i64, &'static str, (f64, usize)) + 'a;

/// The single-step cases of `net` (its kernel, and libtorch's generic step with `tch_too`).
fn step_cases(net: &CellNet, options: &BenchOptions, emit: &mut Emit) {
    for &b in &options.step_batches {
        let x = Tensor::randn([b, INPUTS], (Kind::Float, Device::Cpu));
        let dt = Tensor::ones([b, 1], (Kind::Float, Device::Cpu));
        let mut state = net.initial_state(b, Device::Cpu);
        // Both benchmark models (LTC, wired CfC) run on their hand-written CPU kernels.
        let auto_path = "kernel";
        let t = time_ms(options.seconds, || {
            let (_, s) = net.step(&x, &state, &dt);
            state = s;
        });
        emit("step", b, auto_path, t);
        if options.tch_too {
            let mut state: State = net.initial_state(b, Device::Cpu);
            let t = time_ms(options.seconds, || {
                let (_, s) = tch::no_grad(|| net.step_generic(&x, &state, &dt));
                state = s;
            });
            emit("step", b, "tch", t);
        }
    }
}
