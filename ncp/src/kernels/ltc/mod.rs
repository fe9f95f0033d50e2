//! The LTC kernel: ncps's fused semi-implicit solver (`ode_unfolds` sub-steps per step) as
//! plain f32 loops over the wiring's synapse list (only the unmasked synapses), and its
//! backward pass through time. Its gradients equal autograd's through the LTC cell of
//! `crate::cells` (checked in the crate's tests).

// Numerical kernels over parallel arrays read best with explicit indices.
#![allow(clippy::needless_range_loop)]

use super::plumbing::{Gradients, Kernel, Run};

mod attribution;
mod backward;
mod forward;
mod gaps;
mod params;
mod sample;
mod trace;

pub use attribution::StepAttribution;
pub use params::{param, LtcKernel, LtcSpec, SynapseActivity};
pub use trace::Trace;

impl Kernel for LtcKernel {
    type Trace = Trace;

    fn state_size(&self) -> usize {
        self.n
    }

    fn output_size(&self) -> usize {
        self.m
    }

    fn forward(&self, r: &Run, trace: Option<&mut Trace>) -> (Vec<f32>, Vec<f32>) {
        let mut y = vec![0f32; r.b * r.l * self.m];
        let mut h = vec![0f32; r.b * self.n];
        let mut trace = trace;
        if let Some(t) = trace.as_deref_mut() {
            t.states.reserve(r.b * r.l * (self.unfolds + 1) * self.n);
            t.sigmoids
                .reserve(r.b * r.l * self.unfolds * self.syn.src.len());
        }
        forward::forward(self, r, &mut y, &mut h, trace);
        (y, h)
    }

    fn backward(&self, r: &Run, trace: &Trace, gy: &[f32], gh: &[f32]) -> Gradients {
        backward::backward(self, r, trace, gy, gh)
    }
}
