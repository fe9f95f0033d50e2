//! The gradients' global norm from host loops, to the bit as libtorch computes it:
//! `clip_grad_norm_` takes each gradient's sum of squares, stacks them and sums again, ~45
//! libtorch operations per step on an NCP policy, more than a tenth of a cartpole update. The
//! sums follow ATen's order ([`crate::ppo::sums`]).

use crate::ppo::sums::sum;

/// The sum of squares of each slice `(offset, len)` of `grads`, then the sum of those sums:
/// what libtorch's `stack(g_i.pow(2).sum()).sum()` gives, to the bit. Each slice, and their
/// number, is shorter than [`crate::ppo::sums::MAX_LEN`]; `lanes` comes from
/// [`crate::ppo::sums::lanes`].
pub(super) fn sum_of_squares(grads: &[f32], slices: &[(usize, usize)], lanes: usize) -> f32 {
    let sums: Vec<f32> = slices
        .iter()
        .map(|&(offset, len)| {
            let g = &grads[offset..offset + len];
            sum(len, lanes, |i| g[i] * g[i])
        })
        .collect();
    sum(sums.len(), lanes, |i| sums[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppo::sums::lanes;
    use tch::{Kind, Tensor};

    #[test]
    fn sums_of_squares_match_libtorchs_to_the_bit() {
        let lanes = lanes().expect("not exactly one vector width gives libtorch's sums");
        let lens = [2usize, 64, 1_664, 4_096, 7, 1, 24, 600, 9];
        let total: usize = lens.iter().sum();
        let grads: Vec<f32> = (0..total)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1.3e-3)
            .collect();
        let mut slices = Vec::new();
        let mut offset = 0;
        for len in lens {
            slices.push((offset, len));
            offset += len;
        }
        let theirs = tch::no_grad(|| {
            let sums: Vec<Tensor> = slices
                .iter()
                .map(|&(o, n)| {
                    Tensor::from_slice(&grads[o..o + n])
                        .pow_tensor_scalar(2)
                        .sum(Kind::Float)
                })
                .collect();
            f32::try_from(Tensor::stack(&sums, 0).sum(Kind::Float)).unwrap()
        });
        assert_eq!(
            sum_of_squares(&grads, &slices, lanes).to_bits(),
            theirs.to_bits()
        );
    }
}
