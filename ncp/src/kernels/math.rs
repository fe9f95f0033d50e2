//! The f32 functions both kernels evaluate per synapse and per sample, written so the compiler
//! vectorises the loops that call them.

/// `e^x` in f32 (Cephes polynomial, ~1 ulp), written so the compiler vectorises loops over it
/// (libm's `expf` is a call per element).
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no libm `round`): in
    // that binade one ulp is 1, so `shifted` is 1.5·2^23 + k exactly and its low bits hold k.
    let shifted = x * std::f32::consts::LOG2_E + 12_582_912.0;
    let k = shifted - 12_582_912.0;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^k from k's bits, integer operations only: a float-to-int `as` cast saturates and
    // maps NaN to 0, which costs compare-and-select per element and stops vectorisation.
    let k_bits = shifted.to_bits().wrapping_sub(12_582_912f32.to_bits());
    e * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// The logistic function on [`fast_exp`].
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-z))
}

#[cfg(test)]
mod tests {
    use super::fast_exp;

    /// `fast_exp` as first written, with a saturating `as` cast for 2^k: the reference the
    /// integer-only form must equal bit for bit (so no run changes with it).
    fn fast_exp_cast(x: f32) -> f32 {
        let x = x.clamp(-87.0, 88.0);
        let k = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
        let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let e = p * r * r + r + 1.0;
        e * f32::from_bits((((k as i32) + 127) as u32) << 23)
    }

    #[test]
    fn integer_exponent_matches_the_cast_bit_for_bit() {
        let mut checked = 0;
        // Every 101st float of both signs, from the smallest subnormal to infinity.
        for bits in (0..0x7f80_0001u32).step_by(101) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                assert_eq!(
                    fast_exp(x).to_bits(),
                    fast_exp_cast(x).to_bits(),
                    "exp({x:e})"
                );
                checked += 1;
            }
        }
        for x in [
            0.0,
            -87.0,
            88.0,
            -87.5,
            88.5,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert_eq!(
                fast_exp(x).to_bits(),
                fast_exp_cast(x).to_bits(),
                "exp({x})"
            );
        }
        assert!(fast_exp(f32::NAN).is_nan() && checked > 40_000_000);
        assert!((fast_exp(1.0) - std::f32::consts::E).abs() < 1e-6);
    }
}
