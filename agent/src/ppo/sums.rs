//! Float sums in the order of ATen's CPU `sum`, from host loops, so that they have its bits.
//!
//! A sum of floats depends on the order of its additions. ATen sums a contiguous float tensor
//! in vectors of `lanes` floats, four vectors side by side, folded in levels of 16, then the
//! tail and the lanes one by one; `mean` is that sum divided by the count. The vector width is
//! the one ATen chose for this CPU at start-up: [`lanes`] finds it once per process by summing
//! test data both ways, and where not exactly one width gives libtorch's bits the callers keep
//! libtorch's operations. The gradient norm (`adam`) and the ratio statistics of the PPO loss
//! (`update`) use it: each is dozens of libtorch operations per minibatch otherwise.

use std::sync::OnceLock;

use tch::{Kind, Tensor};

/// Tensors at least this long may be summed by several threads, in chunks: the host loops
/// follow the one-thread order only (ATen's grain size for parallel loops).
pub(crate) const MAX_LEN: usize = 32_768;

/// The width of the float vectors ATen's sum runs on here (8 with AVX2), or `None` when not
/// exactly one of the widths tried reproduces libtorch's sums (another libtorch, another
/// order): then the norm stays libtorch's, only slower.
pub(crate) fn lanes() -> Option<usize> {
    static LANES: OnceLock<Option<usize>> = OnceLock::new();
    *LANES.get_or_init(|| {
        // Lengths that reach every branch: shorter than a vector, a tail, several levels.
        let lengths = [1usize, 3, 7, 13, 21, 64, 100, 777, 4_099, MAX_LEN - 1];
        let mut seed = 0x2545_f491_u32;
        let data: Vec<Vec<f32>> = lengths
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 0.5
                    })
                    .collect()
            })
            .collect();
        let theirs: Vec<u32> = tch::no_grad(|| {
            data.iter()
                .map(|x| {
                    let sum = Tensor::from_slice(x).sum(Kind::Float);
                    (f32::try_from(sum).unwrap_or(f32::NAN)).to_bits()
                })
                .collect()
        });
        let matching: Vec<usize> = [4, 8, 16]
            .into_iter()
            .filter(|&lanes| {
                data.iter()
                    .zip(&theirs)
                    .all(|(x, &bits)| sum(x.len(), lanes, |i| x[i]).to_bits() == bits)
            })
            .collect();
        match matching[..] {
            [lanes] => Some(lanes),
            _ => {
                tracing::debug!(
                    "host sums: libtorch's sums match {matching:?} of the vector widths tried, \
                     so the gradient norm and the ratio statistics stay libtorch's"
                );
                None
            }
        }
    })
}

/// ATen's sum of `len` floats (`item(i)` is the i-th) on one thread, for `len` under
/// [`MAX_LEN`]: a vectorised row sum over the whole vectors, then the tail, then the lanes.
pub(crate) fn sum(len: usize, lanes: usize, item: impl Fn(usize) -> f32) -> f32 {
    let total = if len >= lanes {
        let vectors = len / lanes;
        let partial = row_sum(vectors, lanes, |v, lane| item(v * lanes + lane));
        let mut total = 0.0f32;
        for i in vectors * lanes..len {
            total += item(i);
        }
        for value in &partial[..lanes] {
            total += value;
        }
        total
    } else {
        row_sum(len, 1, |i, _| item(i))[0]
    };
    // The output starts at zero and the sum is added to it.
    0.0 + total
}

/// Partial sums of `size` items of `width` lanes each (`item(i, lane)`), kept as four
/// interleaved rows (items 4r, 4r+1, 4r+2, 4r+3), each summed in levels; then the items left
/// over go into the first row, and the other rows are added to it in order.
fn row_sum(size: usize, width: usize, item: impl Fn(usize, usize) -> f32) -> [f32; 16] {
    const ROWS: usize = 4;
    const LEVELS: usize = 4;
    // ATen's step is 2^max(4, ceil(log2(rows)) / 4): 16 up to 2^19 rows, far above what
    // MAX_LEN allows.
    const STEP_POWER: usize = 4;
    const STEP: usize = 1 << STEP_POWER;
    let rows = size / ROWS;
    let mut acc = [[[0.0f32; 16]; ROWS]; LEVELS];
    let add_row = |acc: &mut [[f32; 16]; ROWS], r: usize| {
        for (k, row) in acc.iter_mut().enumerate() {
            for (lane, value) in row[..width].iter_mut().enumerate() {
                *value += item(r * ROWS + k, lane);
            }
        }
    };
    let mut r = 0;
    while r + STEP <= rows {
        for _ in 0..STEP {
            add_row(&mut acc[0], r);
            r += 1;
        }
        for level in 1..LEVELS {
            let (done, rest) = acc.split_at_mut(level);
            for (into, from) in rest[0].iter_mut().zip(done[level - 1].iter_mut()) {
                for (a, b) in into.iter_mut().zip(from.iter_mut()) {
                    *a += *b;
                    *b = 0.0;
                }
            }
            let mask = (STEP - 1) << (level * STEP_POWER);
            if r & mask != 0 {
                break;
            }
        }
    }
    while r < rows {
        add_row(&mut acc[0], r);
        r += 1;
    }
    let (first, rest) = acc.split_at_mut(1);
    for level in rest.iter() {
        for (into, from) in first[0].iter_mut().zip(level) {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
    }
    let mut partial = first[0];
    for i in rows * ROWS..size {
        for (lane, value) in partial[0][..width].iter_mut().enumerate() {
            *value += item(i, lane);
        }
    }
    let (head, others) = partial.split_at_mut(1);
    for other in others.iter() {
        for (a, b) in head[0].iter_mut().zip(other) {
            *a += b;
        }
    }
    head[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_sums_find_libtorchs_order() {
        let lanes = lanes().expect("not exactly one vector width gives libtorch's sums");
        assert!([4, 8, 16].contains(&lanes));
        // A sum in plain order differs from libtorch's somewhere in these lengths, so the
        // calibration has teeth.
        let x: Vec<f32> = (0..4_099)
            .map(|i| ((i as f32) * 0.37).sin() * 1e3)
            .collect();
        let theirs = f32::try_from(Tensor::from_slice(&x).sum(Kind::Float)).unwrap();
        let plain: f32 = x.iter().sum();
        assert_ne!(
            plain.to_bits(),
            theirs.to_bits(),
            "plain order happens to agree"
        );
        assert_eq!(sum(x.len(), lanes, |i| x[i]).to_bits(), theirs.to_bits());
    }
}
