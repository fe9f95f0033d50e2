//! The plumbing both kernels share: reading tensors into flat vectors ([`Run`]), the
//! [`Kernel`] trait a kernel implements, the sequence / streaming-step / training entry points,
//! the [`Tape`] that hands a kernel's gradients to libtorch autograd, and the parameter cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

/// A tensor's values as f32; a contiguous CPU f32 tensor is read directly (no libtorch op).
pub fn values(t: &Tensor) -> Vec<f32> {
    if t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous() {
        let n = t.numel();
        if n == 0 {
            return Vec::new();
        }
        // SAFETY: a defined, contiguous CPU float tensor holds `n` f32 values at data_ptr,
        // and we only read them while `t` is borrowed.
        return unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, n) }.to_vec();
    }
    let t = t
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let n = t.numel();
    let mut v = vec![0f32; n];
    t.copy_data(&mut v, n);
    v
}

/// A CPU f32 tensor of `shape` holding `v`.
pub fn to_tensor(v: &[f32], shape: &[i64]) -> Tensor {
    // SAFETY: reinterpreting initialised f32s as bytes.
    let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) };
    Tensor::from_data_size(bytes, shape, Kind::Float)
}

/// The inputs of one kernel run as flat vectors, sample-major as the tensors were.
pub struct Run {
    /// Batch size `B`.
    pub b: usize,
    /// Sequence length `L` (1 for a streaming step).
    pub l: usize,
    /// Input features `S`.
    pub s: usize,
    /// Inputs `[b][t][S]`.
    pub x: Vec<f32>,
    /// Initial state `[b][N]`.
    pub h0: Vec<f32>,
    /// Elapsed time per sample and step, `[b][t]`.
    pub ts: Vec<f32>,
    /// Episode starts `[b][t]`: the state is zeroed before that step.
    pub starts: Option<Vec<bool>>,
}

impl Run {
    /// Sample `bi` as a run of its own (batch 1): kernels run small batches one sample at a
    /// time, where their loops vectorise over a sample's neurons instead of the batch.
    pub fn sample(&self, bi: usize) -> Run {
        let (l, s, n) = (self.l, self.s, self.h0.len() / self.b.max(1));
        Run {
            b: 1,
            l,
            s,
            x: self.x[bi * l * s..(bi + 1) * l * s].to_vec(),
            h0: self.h0[bi * n..(bi + 1) * n].to_vec(),
            ts: self.ts[bi * l..(bi + 1) * l].to_vec(),
            starts: self
                .starts
                .as_ref()
                .map(|st| st[bi * l..(bi + 1) * l].to_vec()),
        }
    }

    /// A sequence `x (B, L, S)` from `h0 (B, N)` with timespans `(B, L)` (1.0 if None).
    pub fn sequence(x: &Tensor, h0: &Tensor, ts: Option<&Tensor>, starts: Option<&Tensor>) -> Run {
        let size = x.size();
        let (b, l, s) = (size[0] as usize, size[1] as usize, size[2] as usize);
        Run {
            b,
            l,
            s,
            x: values(x),
            h0: values(h0),
            ts: match ts {
                Some(t) => values(t),
                None => vec![1.0; b * l],
            },
            starts: starts.map(|t| {
                values(&t.to_kind(Kind::Float))
                    .into_iter()
                    .map(|v| v != 0.0)
                    .collect()
            }),
        }
    }

    /// One streaming step `x (B, S)` from `h (B, N)`; `dt` is one value per sample or a scalar
    /// broadcast to all.
    pub fn step(x: &Tensor, h: &Tensor, dt: &Tensor) -> Run {
        let size = x.size();
        let (b, s) = (size[0] as usize, size[1] as usize);
        let dt = values(dt);
        Run {
            b,
            l: 1,
            s,
            x: values(x),
            h0: values(h),
            ts: if dt.len() == b {
                dt
            } else {
                vec![dt.first().copied().unwrap_or(1.0); b]
            },
            starts: None,
        }
    }
}

/// Gradients a kernel's backward pass computed, in the order of its parameter list.
pub struct Gradients {
    /// One flat gradient per parameter tensor the kernel was built from (dense shapes).
    pub params: Vec<Vec<f32>>,
    /// Gradient of the inputs `[b][t][S]`.
    pub x: Vec<f32>,
    /// Gradient of the initial state `[b][N]`.
    pub h0: Vec<f32>,
}

/// The math of one hand-written kernel over flat f32 vectors.
pub trait Kernel: Send + Sync + 'static {
    /// What the forward pass keeps for the backward pass.
    type Trace: Default + Send + 'static;
    /// Neurons in the state `N`.
    fn state_size(&self) -> usize;
    /// Width of the outputs `M`.
    fn output_size(&self) -> usize;
    /// Runs `run`, returning outputs `[b][t][M]` and the final state `[b][N]`, recording into
    /// `trace` when given.
    fn forward(&self, run: &Run, trace: Option<&mut Self::Trace>) -> (Vec<f32>, Vec<f32>);
    /// Backpropagates the output and final-state gradients `gy`, `gh` through the run.
    fn backward(&self, run: &Run, trace: &Self::Trace, gy: &[f32], gh: &[f32]) -> Gradients;
}

/// No-grad forward over `(B, L, S)` from `h0 (B, N)` → `(outputs (B, L, M), final (B, N))`.
pub fn forward_sequence<K: Kernel>(
    kernel: &K,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
) -> (Tensor, Tensor) {
    let run = Run::sequence(x, h0, ts, None);
    let (y, h) = kernel.forward(&run, None);
    let (b, l) = (run.b as i64, run.l as i64);
    (
        to_tensor(&y, &[b, l, kernel.output_size() as i64]),
        to_tensor(&h, &[b, kernel.state_size() as i64]),
    )
}

/// One streaming step: `x (B, S)`, `h (B, N)`, `dt` a scalar tensor or `(B, 1)` →
/// `(outputs (B, M), new state (B, N))`, with as few libtorch calls as possible.
pub fn step<K: Kernel>(kernel: &K, x: &Tensor, h: &Tensor, dt: &Tensor) -> (Tensor, Tensor) {
    let run = Run::step(x, h, dt);
    let (y, hn) = kernel.forward(&run, None);
    let b = run.b as i64;
    (
        to_tensor(&y, &[b, kernel.output_size() as i64]),
        to_tensor(&hn, &[b, kernel.state_size() as i64]),
    )
}

/// Forward for training (state zeroed before the steps marked in `starts (B, L)`, if given).
/// `params` are the tensors the kernel was built from, in the order of its
/// [`Gradients::params`] (None for a parameter the cell does not have). Returns
/// `(y, h_final, tape)`: `y` and `h_final` are leaves that require grad, and
/// [`Tape::backward`] puts the gradients where autograd through the cell would have.
pub fn forward_sequence_train<K: Kernel>(
    kernel: Arc<K>,
    params: Vec<Option<Tensor>>,
    x: &Tensor,
    h0: &Tensor,
    ts: Option<&Tensor>,
    starts: Option<&Tensor>,
) -> (Tensor, Tensor, Tape) {
    let run = Run::sequence(x, h0, ts, starts);
    let mut trace = K::Trace::default();
    let (y, h) = kernel.forward(&run, Some(&mut trace));
    let (b, l) = (run.b as i64, run.l as i64);
    let (m, n) = (kernel.output_size() as i64, kernel.state_size() as i64);
    let y = to_tensor(&y, &[b, l, m]).set_requires_grad(true);
    let h = to_tensor(&h, &[b, n]).set_requires_grad(true);
    let tape = Tape {
        y: y.shallow_clone(),
        h: h.shallow_clone(),
        x: x.shallow_clone(),
        h0: h0.shallow_clone(),
        params,
        pending: Box::new(move |gy, gh| kernel.backward(&run, &trace, gy, gh)),
    };
    (y, h, tape)
}

/// The kernel half of a backward pass, type-erased over the kernel.
type PendingBackward = Box<dyn FnOnce(&[f32], &[f32]) -> Gradients>;

/// What a kernel's training forward keeps for its backward pass.
pub struct Tape {
    y: Tensor,
    h: Tensor,
    x: Tensor,
    h0: Tensor,
    params: Vec<Option<Tensor>>,
    pending: PendingBackward,
}

impl Tape {
    /// Reads the gradients autograd left on the outputs (zero where undefined: an output the
    /// loss does not use), runs the kernel's backward through time and accumulates the
    /// results into the parameters' `.grad` (and `x`'s, `h0`'s when they require grad): added
    /// in place into the `.grad` of a leaf that has one (a trainer zeroes them before each
    /// backward), else through one surrogate backward, `Σ (θ · g_θ).sum()`, whose gradient is
    /// exactly `g_θ` and which carries it upstream of a non-leaf. For a leaf both give what
    /// autograd's accumulation gives, to the bit (no tensor hooks are involved: tch sets
    /// none); the in-place add skips a few libtorch operations per tensor, which on an NCP's
    /// tiny tensors are the cost.
    pub fn backward(self) {
        let grad_of = |t: &Tensor| {
            let g = t.grad();
            if g.defined() {
                values(&g)
            } else {
                vec![0f32; t.numel()]
            }
        };
        let grads = (self.pending)(&grad_of(&self.y), &grad_of(&self.h));
        let mut surrogate: Option<Tensor> = None;
        let targets = self.params.iter().zip(&grads.params);
        let inputs = [(Some(&self.x), &grads.x), (Some(&self.h0), &grads.h0)];
        for (t, g) in targets.map(|(t, g)| (t.as_ref(), g)).chain(inputs) {
            let Some(t) = t.filter(|t| t.requires_grad()) else {
                continue;
            };
            let mut gt = to_tensor(g, &t.size());
            if t.device() != Device::Cpu {
                gt = gt.to_device(t.device());
            }
            let mut existing = t.grad();
            if t.is_leaf() && existing.defined() {
                tch::no_grad(|| {
                    let _ = existing.g_add_(&gt);
                });
                continue;
            }
            let term = (t * gt).sum(Kind::Float);
            surrogate = Some(match surrogate.take() {
                Some(s) => s + term,
                None => term,
            });
        }
        if let Some(s) = surrogate {
            s.backward();
        }
    }
}

/// A kernel's parameters cached between calls and rebuilt when any parameter tensor changes
/// (libtorch bumps a tensor's version on every in-place update, e.g. an optimizer step, and a
/// write that bypasses libtorch calls [`parameters_written`]).
pub struct ParamCache<K> {
    slot: Mutex<Option<(ParamsKey, Arc<K>)>>,
}

/// The generation of every [`ParamCache`]'s key, and (version, data pointer) of every parameter
/// tensor: changes whenever a parameter does.
type ParamsKey = (u64, Vec<(i64, usize)>);

/// Bumped by [`parameters_written`]: part of every cache key.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Says that parameter tensors were written without libtorch (through their data pointers, as
/// the optimizer's step does), so their versions did not change: every [`ParamCache`]
/// rebuilds on its next call.
pub fn parameters_written() {
    WRITES.fetch_add(1, Ordering::Release);
}

impl<K> Default for ParamCache<K> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }
}

impl<K> ParamCache<K> {
    /// The cached kernel if none of `tensors` changed since it was built, else `build()`.
    pub fn get(&self, tensors: &[&Tensor], build: impl FnOnce() -> K) -> Arc<K> {
        let key: ParamsKey = (
            WRITES.load(Ordering::Acquire),
            tensors
                .iter()
                .map(|t| (t.internal_version(), t.data_ptr() as usize))
                .collect(),
        );
        let mut slot = match self.slot.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((k, p)) = slot.as_ref() {
            if *k == key {
                return p.clone();
            }
        }
        let p = Arc::new(build());
        *slot = Some((key, p.clone()));
        p
    }
}
