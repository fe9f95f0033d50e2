//! Eight f32 lanes in one AVX register, for the batch loops the compiler leaves scalar: with
//! the usual 8 envs a loop over the batch is too short for its vectorised body (unrolled to 16
//! samples). Only add, subtract, multiply, divide and a sign flip: each lane sees exactly the
//! IEEE operation of the scalar code (no FMA), so results are bit-identical.

/// Samples per vector register: the kernels' batch loops run in chunks of this many, and
/// smaller batches take the LTC's per-sample path.
pub const LANES: usize = 8;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_div_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps,
    _mm256_storeu_ps, _mm256_sub_ps, _mm256_xor_ps,
};

/// Eight f32 values. Only the `unsafe` constructors make one, and they require a CPU with
/// AVX, so every operation on an existing `F8` runs where AVX is available.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub struct F8(__m256);

// SAFETY (every `unsafe` block below): an `F8` exists only after a constructor whose
// caller promised AVX; loads and stores go through slices of at least 8 elements
// (indexing panics otherwise).
#[cfg(target_arch = "x86_64")]
impl F8 {
    /// The first 8 values of `s`.
    ///
    /// # Safety
    /// The CPU must support AVX (`is_x86_feature_detected!("avx")`).
    #[inline(always)]
    pub unsafe fn load(s: &[f32]) -> F8 {
        let s = &s[..LANES];
        F8(unsafe { _mm256_loadu_ps(s.as_ptr()) })
    }

    /// `x` in every lane.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[inline(always)]
    pub unsafe fn splat(x: f32) -> F8 {
        F8(unsafe { _mm256_set1_ps(x) })
    }

    /// Writes the lanes to the first 8 values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        let s = &mut s[..LANES];
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) }
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Add for F8 {
    type Output = F8;
    #[inline(always)]
    fn add(self, o: F8) -> F8 {
        F8(unsafe { _mm256_add_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Sub for F8 {
    type Output = F8;
    #[inline(always)]
    fn sub(self, o: F8) -> F8 {
        F8(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Mul for F8 {
    type Output = F8;
    #[inline(always)]
    fn mul(self, o: F8) -> F8 {
        F8(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Div for F8 {
    type Output = F8;
    #[inline(always)]
    fn div(self, o: F8) -> F8 {
        F8(unsafe { _mm256_div_ps(self.0, o.0) })
    }
}

#[cfg(target_arch = "x86_64")]
impl std::ops::Neg for F8 {
    type Output = F8;
    /// `-x` as the scalar code computes it: the sign bit flipped (`0 − x` would give +0
    /// for +0, where −x is −0).
    #[inline(always)]
    fn neg(self) -> F8 {
        F8(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
    }
}
