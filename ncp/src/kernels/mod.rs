//! Hand-written CPU kernels: the LTC and wired-CfC steps as plain f32 loops over the wiring's
//! synapses, with a hand-written backward pass through time.
//!
//! Why: on an NCP's tiny tensors libtorch spends a few µs dispatching each op, and one LTC step
//! is ~15 ops per unfold × 6 unfolds (twice that in backward), so the autograd path is all
//! overhead. The kernels do the arithmetic only.
//!
//! - [`plumbing`]: what both kernels share, in one place, so each kernel holds only its math:
//!   reading tensors ([`Run`]), the [`Kernel`] trait, the sequence / streaming-step / training
//!   entry points, the [`Tape`] that hands gradients to libtorch, the [`ParamCache`].
//! - [`math`]: `exp` and the logistic function, vectorisable.
//! - `lanes`: eight f32 lanes in an AVX register, for batch loops too short for the compiler.
//! - [`ltc`], [`cfc`]: the two kernels.
//!
//! Kernels know nothing of the cells: the network (`crate::net`) reads a cell's tensors into a
//! kernel's own parameter form.

pub mod cfc;
mod lanes;
pub mod ltc;
pub mod math;
pub mod plumbing;

pub use lanes::LANES;
pub use math::{fast_exp, sigmoid};
pub use plumbing::{
    forward_sequence, forward_sequence_train, parameters_written, step, to_tensor, values,
    Gradients, Kernel, ParamCache, Run, Tape,
};
