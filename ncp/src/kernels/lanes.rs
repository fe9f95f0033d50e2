//! Eight f32 lanes in one AVX register, for the batch loops the compiler leaves scalar: with
//! the usual 8 envs a loop over the batch is too short for its vectorised body (unrolled to 16
//! samples). Only add, subtract, multiply and divide: each lane sees exactly the IEEE operation
//! of the scalar code (no FMA), so results are bit-identical. Call only from code compiled
//! for AVX2 after checking the CPU (`is_x86_feature_detected!`).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_div_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps,
    _mm256_storeu_ps, _mm256_sub_ps,
};

/// Number of lanes.
pub const LANES: usize = 8;

/// Eight f32 values.
#[derive(Clone, Copy)]
pub struct F8(__m256);

// SAFETY (every `unsafe` below): the callers run on a CPU with AVX (see the module doc); loads
// and stores go through slices of at least 8 elements (indexing panics otherwise).
impl F8 {
    /// The first 8 values of `s`.
    #[inline(always)]
    pub fn load(s: &[f32]) -> F8 {
        let s = &s[..LANES];
        F8(unsafe { _mm256_loadu_ps(s.as_ptr()) })
    }

    /// Writes the lanes to the first 8 values of `s`.
    #[inline(always)]
    pub fn store(self, s: &mut [f32]) {
        let s = &mut s[..LANES];
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), self.0) }
    }

    /// `x` in every lane.
    #[inline(always)]
    pub fn splat(x: f32) -> F8 {
        F8(unsafe { _mm256_set1_ps(x) })
    }
}

impl std::ops::Add for F8 {
    type Output = F8;
    #[inline(always)]
    fn add(self, o: F8) -> F8 {
        F8(unsafe { _mm256_add_ps(self.0, o.0) })
    }
}

impl std::ops::Sub for F8 {
    type Output = F8;
    #[inline(always)]
    fn sub(self, o: F8) -> F8 {
        F8(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
}

impl std::ops::Mul for F8 {
    type Output = F8;
    #[inline(always)]
    fn mul(self, o: F8) -> F8 {
        F8(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
}

impl std::ops::Div for F8 {
    type Output = F8;
    #[inline(always)]
    fn div(self, o: F8) -> F8 {
        F8(unsafe { _mm256_div_ps(self.0, o.0) })
    }
}

impl std::ops::Neg for F8 {
    type Output = F8;
    /// `-x` as the scalar code computes it: `0 − x` would turn −0 into +0, so flip the sign
    /// by multiplying with −1, which is exact.
    #[inline(always)]
    fn neg(self) -> F8 {
        self * F8::splat(-1.0)
    }
}
