//! Generalised advantage estimation over a rollout, with Gymnasium's two kinds of episode end:
//! a terminated episode has no future, a truncated one (time limit) is bootstrapped from the
//! value of its final observation, computed with the pre-reset hidden state.

/// One rollout's per-step data, each laid out `[step][env]` (length `steps × envs`).
pub struct GaeInput<'a> {
    /// Number of envs.
    pub envs: usize,
    /// Rewards (scaled).
    pub rewards: &'a [f32],
    /// Value estimates of the observations acted on.
    pub values: &'a [f32],
    /// The episode ended in a terminal state at this step (no bootstrap).
    pub terminated: &'a [bool],
    /// The episode was cut by the time limit at this step: bootstrap from `final_values`.
    pub truncated: &'a [bool],
    /// V(final observation) where `truncated`; ignored elsewhere.
    pub final_values: &'a [f32],
    /// V(observation after the last step), one per env.
    pub last_values: &'a [f32],
    /// Discount γ.
    pub gamma: f32,
    /// GAE λ.
    pub lambda: f32,
}

/// Returns `(advantages, returns)`, both `[step][env]`, with `returns = advantages + values`.
pub fn gae(input: &GaeInput<'_>) -> (Vec<f32>, Vec<f32>) {
    let n = input.envs;
    let len = input.rewards.len();
    assert!(
        n > 0 && len.is_multiple_of(n),
        "rollout is not a whole number of steps"
    );
    for (name, l) in [
        ("values", input.values.len()),
        ("terminated", input.terminated.len()),
        ("truncated", input.truncated.len()),
        ("final_values", input.final_values.len()),
    ] {
        assert_eq!(l, len, "{name} has {l} entries, rewards {len}");
    }
    assert_eq!(
        input.last_values.len(),
        n,
        "last_values needs one value per env"
    );
    let steps = len / n;
    let (g, l) = (input.gamma, input.lambda);
    let mut adv = vec![0.0f32; len];
    let mut running = vec![0.0f32; n];
    for t in (0..steps).rev() {
        // `e` indexes six per-env arrays at once; an iterator chain would hide that.
        #[allow(clippy::needless_range_loop)]
        for e in 0..n {
            let i = t * n + e;
            let next_value = if t + 1 == steps {
                input.last_values[e]
            } else {
                input.values[i + n]
            };
            let done = input.terminated[i] || input.truncated[i];
            let mut reward = input.rewards[i];
            if input.truncated[i] && !input.terminated[i] {
                reward += g * input.final_values[i];
            }
            let not_done = if done { 0.0 } else { 1.0 };
            let delta = reward + g * next_value * not_done - input.values[i];
            running[e] = delta + g * l * not_done * running[e];
            adv[i] = running[e];
        }
    }
    let returns = adv.iter().zip(input.values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[allow(clippy::too_many_arguments)] // mirrors GaeInput field by field for terse cases
    fn run(
        rewards: &[f32],
        values: &[f32],
        terminated: &[bool],
        truncated: &[bool],
        final_values: &[f32],
        last: f32,
        gamma: f32,
        lambda: f32,
    ) -> Vec<f32> {
        gae(&GaeInput {
            envs: 1,
            rewards,
            values,
            terminated,
            truncated,
            final_values,
            last_values: &[last],
            gamma,
            lambda,
        })
        .0
    }

    #[test]
    fn terminated_cuts_and_truncated_bootstraps_from_the_final_value() {
        let r = [1.0, 1.0, 1.0];
        let v = [0.5, 0.5, 0.5];
        let fv = [0.0, 10.0, 0.0];
        // Terminated at step 1: advantage there is r - V, nothing after it leaks back.
        let a = run(
            &r,
            &v,
            &[false, true, false],
            &[false; 3],
            &fv,
            7.0,
            0.9,
            1.0,
        );
        assert!((a[1] - 0.5).abs() < 1e-6);
        assert!((a[0] - (1.0 + 0.9 * 1.0 - 0.5)).abs() < 1e-6);
        // Truncated at step 1: bootstrap with V(final obs) = 10, not with V(next episode's obs).
        let a = run(
            &r,
            &v,
            &[false; 3],
            &[false, true, false],
            &fv,
            7.0,
            0.9,
            1.0,
        );
        assert!((a[1] - (1.0 + 0.9 * 10.0 - 0.5)).abs() < 1e-5);
        // Last step bootstraps from last_values.
        assert!((a[2] - (1.0 + 0.9 * 7.0 - 0.5)).abs() < 1e-5);
    }

    proptest! {
        #[test]
        fn lambda_one_gives_discounted_returns(
            rewards in prop::collection::vec(-5.0f32..5.0, 1..40),
            gamma in 0.5f32..0.999,
        ) {
            // With λ = 1 and no episode end, returns are Monte-Carlo returns bootstrapped by last.
            let t = rewards.len();
            let values = vec![0.3f32; t];
            let (_, ret) = gae(&GaeInput {
                envs: 1, rewards: &rewards, values: &values,
                terminated: &vec![false; t], truncated: &vec![false; t],
                final_values: &vec![0.0; t], last_values: &[2.0], gamma, lambda: 1.0,
            });
            let mut g = 2.0f32;
            for i in (0..t).rev() {
                g = rewards[i] + gamma * g;
                prop_assert!((ret[i] - g).abs() < 1e-3 * (1.0 + g.abs()), "step {i}: {} vs {g}", ret[i]);
            }
        }

        #[test]
        fn envs_are_independent(rewards in prop::collection::vec(-1.0f32..1.0, 8)) {
            // Two envs interleaved give the same advantages as each alone.
            let both = gae(&GaeInput {
                envs: 2, rewards: &rewards, values: &[0.1; 8],
                terminated: &[false, false, true, false, false, false, false, false],
                truncated: &[false; 8], final_values: &[0.0; 8], last_values: &[1.0, -1.0],
                gamma: 0.99, lambda: 0.95,
            }).0;
            let r0: Vec<f32> = rewards.iter().step_by(2).copied().collect();
            let alone = gae(&GaeInput {
                envs: 1, rewards: &r0, values: &[0.1; 4],
                terminated: &[false, true, false, false], truncated: &[false; 4],
                final_values: &[0.0; 4], last_values: &[1.0], gamma: 0.99, lambda: 0.95,
            }).0;
            for k in 0..4 {
                prop_assert!((both[2 * k] - alone[k]).abs() < 1e-6);
            }
        }
    }
}
