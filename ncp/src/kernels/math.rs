//! The f32 functions both kernels evaluate per synapse and per sample, written so the compiler
//! vectorises the loops that call them.

/// `e^x` in f32 (Cephes polynomial, ~1 ulp), written so the compiler vectorises loops over it
/// (libm's `expf` is a call per element).
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no libm `round`).
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

/// The logistic function on [`fast_exp`].
#[inline(always)]
pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-z))
}
