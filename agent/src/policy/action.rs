//! How the actor's outputs become env actions and back: the Gaussian's means (rescaled onto
//! bounded components) or a categorical's logits.

/// How actions are drawn from the actor's outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// Diagonal Gaussian around the motor outputs; samples are clipped to the bounds only when
    /// sent to the env (the raw sample is what PPO stores). With `rescale`, the policy acts in
    /// [-1, 1] per bounded component and `env_actions` maps that onto `[low, high]`.
    Continuous {
        /// Lower bound per component.
        low: Vec<f32>,
        /// Upper bound per component.
        high: Vec<f32>,
        /// Act in [-1, 1] and rescale onto bounded components.
        rescale: bool,
    },
    /// Categorical over the motor outputs as logits.
    Discrete {
        /// Number of actions.
        n: usize,
    },
}

impl ActionKind {
    /// Turns raw policy actions (rows, in place) into what the env expects: Box samples
    /// clipped to the bounds (after rescaling from [-1, 1] where enabled), Discrete indices as
    /// floats (unchanged).
    pub fn env_actions(&self, out: &mut [f32]) {
        if let ActionKind::Continuous { low, high, rescale } = self {
            for row in out.chunks_mut(low.len()) {
                for ((x, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
                    *x = if *rescale && lo.is_finite() && hi.is_finite() {
                        lo + (x.clamp(-1.0, 1.0) + 1.0) * 0.5 * (hi - lo)
                    } else {
                        x.clamp(lo, hi)
                    };
                }
            }
        }
    }

    /// Overwrites env actions with "do nothing": 0 clipped into each Box component's bounds,
    /// action 0 of a Discrete space.
    pub fn zero_actions(&self, out: &mut [f32]) {
        out.fill(0.0);
        if let ActionKind::Continuous { low, high, .. } = self {
            for row in out.chunks_mut(low.len()) {
                for ((x, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
                    *x = x.clamp(lo, hi);
                }
            }
        }
    }

    /// Env actions (rows) as the actor's outputs would have to be to take them, the inverse
    /// of [`Self::env_actions`]: targets for behavioural cloning. None for Discrete actions,
    /// which have no such point.
    pub fn output_targets(&self, env_actions: &[f32]) -> Option<Vec<f32>> {
        let ActionKind::Continuous { low, high, rescale } = self else {
            return None;
        };
        let mut out = env_actions.to_vec();
        for row in out.chunks_mut(low.len()) {
            for ((x, &lo), &hi) in row.iter_mut().zip(low).zip(high) {
                *x = if *rescale && lo.is_finite() && hi.is_finite() {
                    (2.0 * (*x - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0)
                } else {
                    x.clamp(lo, hi)
                };
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloning_targets_invert_the_rescaling() {
        let kind = ActionKind::Continuous {
            low: vec![-2.0, 0.0],
            high: vec![2.0, 10.0],
            rescale: true,
        };
        let env = [1.0f32, 2.5, -2.0, 10.0];
        let targets = kind.output_targets(&env).unwrap();
        assert_eq!(targets, vec![0.5, -0.5, -1.0, 1.0]);
        let mut back = targets.clone();
        kind.env_actions(&mut back);
        assert_eq!(back, env.to_vec());
        assert!(ActionKind::Discrete { n: 2 }
            .output_targets(&[1.0])
            .is_none());
    }
}
