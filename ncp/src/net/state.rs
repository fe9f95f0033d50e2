//! The recurrent state a network carries between steps.

use tch::Tensor;

/// Recurrent state: neuron potentials `h (B, N)` and the LSTM cell state with mixed memory.
pub struct State {
    /// Cell state: all N neuron potentials (LTC: id order; wired CfC: layer order).
    pub h: Tensor,
    /// LSTM memory (mixed memory only).
    pub c: Option<Tensor>,
}

impl State {
    /// A detached copy (for storing rollout start states).
    pub fn detach(&self) -> State {
        State {
            h: self.h.detach(),
            c: self.c.as_ref().map(|c| c.detach()),
        }
    }

    /// Zeroes the rows where `reset (B,)` is true (episode starts), keeping the others.
    pub fn reset(&self, reset: &Tensor) -> State {
        let keep = reset.logical_not().to_kind(self.h.kind()).unsqueeze(1);
        State {
            h: &self.h * &keep,
            c: self.c.as_ref().map(|c| c * &keep),
        }
    }
}
