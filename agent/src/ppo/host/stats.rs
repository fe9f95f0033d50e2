//! The sums of the update as plain loops accumulating in f64 (see the contract in
//! [`super`]): the gradients' global norm, a mean and standard deviation, and the ratio's
//! statistics.

use tch::Tensor;

use super::memory::{host_f32, host_slice};

/// The global L2 norm of gradients given as slices in parameter order: `√Σ g²` over every
/// element in turn (one flat buffer or its pieces give the same bits), what `clip_grad_norm_`
/// gives from its per-tensor sums of squares.
pub(crate) fn grad_norm<'a>(grads: impl IntoIterator<Item = &'a [f32]>) -> f64 {
    grads
        .into_iter()
        .flatten()
        .map(|&g| f64::from(g) * f64::from(g))
        .sum::<f64>()
        .sqrt()
}

/// The mean of `x` and its unbiased standard deviation (as torch's `std(true)`; NaN for one
/// element).
pub(crate) fn mean_and_std(x: &[f32]) -> (f64, f64) {
    let count = x.len() as f64;
    let mean = x.iter().map(|&a| f64::from(a)).sum::<f64>() / count;
    let var = x
        .iter()
        .map(|&a| (f64::from(a) - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0);
    (mean, var.sqrt())
}

/// The ratio's diagnostics as CleanRL logs them, from the log-ratios and ratios of a
/// minibatch: `old_approx_kl` (the mean of `−logratio`), `approx_kl` (the mean of
/// `(ratio − 1) − logratio`) and `clipfrac` (the share of samples with
/// `|ratio − 1| > clip_coef`). Each sample's terms are libtorch's f32 operations, their means
/// f64 sums. `None` where the loops do not apply (not contiguous f32 on the CPU, or empty).
pub(crate) fn ratio_stats(logratio: &Tensor, ratio: &Tensor, clip_coef: f64) -> Option<[f64; 3]> {
    let n = logratio.numel();
    if !host_f32(logratio, n) || !host_f32(ratio, n) {
        return None;
    }
    // SAFETY: both passed `host_f32`, and nothing writes to them while these slices live.
    let (logratio, ratio) = unsafe { (host_slice(logratio), host_slice(ratio)) };
    let clip = clip_coef as f32;
    let (mut old_kl, mut kl, mut clipped) = (0f64, 0f64, 0f64);
    for (&lr, &r) in logratio.iter().zip(ratio) {
        old_kl += f64::from(-lr);
        kl += f64::from((r - 1.0) - lr);
        if (r - 1.0).abs() > clip {
            clipped += 1.0;
        }
    }
    let count = n as f64;
    Some([old_kl / count, kl / count, clipped / count])
}
