//! The backward pass of a training forward, whatever path ran it: autograd alone, or autograd
//! followed by the hand-written kernels' backward. A trainer calls [`Tape::backward`] once with
//! its loss and never needs to know which cells it trains.

use tch::Tensor;

use crate::kernels;

/// The pending kernel backward passes of one or more training forwards (none for autograd).
#[derive(Default)]
#[must_use = "call Tape::backward(loss) instead of loss.backward()"]
pub struct Tape {
    kernels: Vec<kernels::Tape>,
}

impl Tape {
    /// A tape holding one kernel's backward.
    pub(crate) fn kernel(tape: kernels::Tape) -> Self {
        Tape {
            kernels: vec![tape],
        }
    }

    /// Both tapes' backward passes in one (e.g. an actor's and a critic's).
    pub fn join(mut self, other: Tape) -> Tape {
        self.kernels.extend(other.kernels);
        self
    }

    /// Backpropagates `loss` into every parameter's `.grad`: libtorch's backward, then each
    /// kernel's backward through time from the gradients it left on the kernel outputs.
    pub fn backward(self, loss: &Tensor) {
        loss.backward();
        for tape in self.kernels {
            tape.backward();
        }
    }

    /// Whether a hand-written kernel ran the forward.
    pub fn uses_kernels(&self) -> bool {
        !self.kernels.is_empty()
    }
}
