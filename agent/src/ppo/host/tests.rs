//! The host loops' contract: within a relative 1e-5 of the libtorch operations they replace,
//! on random data of lengths from 1 to beyond 100 000 (past 32 768, where libtorch may split a
//! sum over threads).

use tch::{Kind, Tensor};

use super::stats::{grad_norm, mean_and_std, ratio_stats};

/// Lengths that reach a vector's tail, several of libtorch's levels and its parallel sums.
const LENGTHS: [usize; 7] = [1, 7, 64, 1_000, 4_099, 32_768, 100_003];

/// `n` floats spread over `[-scale, scale)`, from a fixed generator (libtorch's is shared
/// with the tests running beside).
fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Within a relative 1e-5 of libtorch's value, or of `scale` (the size of the summands) where
/// the value is a mean of terms of either sign, near zero.
fn close(ours: f64, theirs: f64, scale: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= 1e-5 * theirs.abs().max(scale),
        "{what}: host {ours} vs libtorch {theirs}"
    );
}

#[test]
fn the_gradient_norm_agrees_with_libtorchs_to_float_rounding() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        let grads = random(n, k as u64, 3e-2);
        // `clip_grad_norm_`: each tensor's sum of squares, stacked, summed, its root.
        let halves = [&grads[..n / 2], &grads[n / 2..]];
        let theirs = tch::no_grad(|| {
            let squares: Vec<Tensor> = halves
                .iter()
                .filter(|g| !g.is_empty())
                .map(|g| Tensor::from_slice(g).pow_tensor_scalar(2).sum(Kind::Float))
                .collect();
            Tensor::stack(&squares, 0)
                .sum(Kind::Float)
                .sqrt()
                .double_value(&[])
        });
        let ours = grad_norm([&grads[..]]);
        close(ours, theirs, 0.0, &format!("norm of {n}"));
        // In pieces, the same elements in the same order: the same bits.
        assert_eq!(
            grad_norm(halves).to_bits(),
            ours.to_bits(),
            "norm of {n} in halves"
        );
    }
}

#[test]
fn means_and_ratio_statistics_agree_with_libtorchs_to_float_rounding() {
    for (k, n) in LENGTHS.into_iter().enumerate() {
        // Log-ratios of up to ±0.3: a share of them outside a clip range of 0.2.
        let logratio = Tensor::from_slice(&random(n, 100 + k as u64, 0.3));
        let ratio = logratio.exp();
        let ours = ratio_stats(&logratio, &ratio, 0.2).expect("host loops apply");
        let theirs = tch::no_grad(|| {
            [
                (-&logratio).mean(Kind::Float),
                ((&ratio - 1.0) - &logratio).mean(Kind::Float),
                (&ratio - 1.0)
                    .abs()
                    .gt(0.2)
                    .to_kind(Kind::Float)
                    .mean(Kind::Float),
            ]
            .map(|t| t.double_value(&[]))
        });
        // old_approx_kl is a mean of terms of either sign: relative to their size.
        let scales = [0.15, 0.0, 0.0];
        for (i, what) in ["old_approx_kl", "approx_kl", "clipfrac"]
            .iter()
            .enumerate()
        {
            close(ours[i], theirs[i], scales[i], &format!("{what} of {n}"));
        }
        if n > 1 {
            let adv = random(n, 200 + k as u64, 5.0);
            let (mean, std) = mean_and_std(&adv);
            let t = Tensor::from_slice(&adv);
            close(
                mean,
                t.mean(Kind::Float).double_value(&[]),
                2.5,
                &format!("mean of {n}"),
            );
            close(
                std,
                t.std(true).double_value(&[]),
                0.0,
                &format!("std of {n}"),
            );
        }
    }
}

#[test]
fn ratio_statistics_are_left_to_libtorch_where_the_loops_do_not_apply() {
    let doubles = Tensor::from_slice(&[0.1f64, -0.2]);
    assert!(ratio_stats(&doubles, &doubles.exp(), 0.2).is_none());
    let strided = Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.0])
        .reshape([2, 2])
        .transpose(0, 1);
    assert!(ratio_stats(&strided, &strided.exp(), 0.2).is_none());
    let empty = Tensor::from_slice::<f32>(&[]);
    assert!(ratio_stats(&empty, &empty, 0.2).is_none());
}
