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
    /// Inputs computed upstream (an encoder): (the detached leaf the networks read, the
    /// tensor it was detached from). After the networks' backward, the leaf's gradient
    /// continues into the upstream graph.
    upstream: Vec<(Tensor, Tensor)>,
}

impl Tape {
    /// A tape holding one kernel's backward.
    pub(crate) fn kernel(tape: kernels::Tape) -> Self {
        Tape {
            kernels: vec![tape],
            upstream: Vec::new(),
        }
    }

    /// Both tapes' backward passes in one (e.g. an actor's and a critic's).
    pub fn join(mut self, other: Tape) -> Tape {
        self.kernels.extend(other.kernels);
        self.upstream.extend(other.upstream);
        self
    }

    /// Continues the backward pass upstream of the networks' input: `leaf` is what they read
    /// (`source.detach()` with grad required), `source` the upstream tensor (an encoder's
    /// output). The upstream graph is then traversed once, with the gradient every network
    /// (kernel or autograd) left on `leaf`.
    pub fn with_upstream(mut self, leaf: &Tensor, source: &Tensor) -> Tape {
        self.upstream
            .push((leaf.shallow_clone(), source.shallow_clone()));
        self
    }

    /// Backpropagates `loss` into every parameter's `.grad`: libtorch's backward, then each
    /// kernel's backward through time from the gradients it left on the kernel outputs.
    pub fn backward(self, loss: &Tensor) {
        loss.backward();
        for tape in self.kernels {
            tape.backward();
        }
        for (leaf, source) in self.upstream {
            let g = leaf.grad();
            if g.defined() {
                // `Σ source · g` has exactly `g` as its gradient with respect to `source`.
                (source * g.detach()).sum(tch::Kind::Float).backward();
            }
        }
    }

    /// Whether a hand-written kernel ran the forward.
    pub fn uses_kernels(&self) -> bool {
        !self.kernels.is_empty()
    }
}
