//! Which tensors the host loops may read (non-empty, contiguous f32 on the CPU), and their
//! elements as slices.

use tch::{Kind, Tensor};

/// Whether `t` is a non-empty, contiguous f32 CPU tensor of `n` elements: what host loops
/// over it ([`host_slice`]) need.
pub(crate) fn host_f32(t: &Tensor, n: usize) -> bool {
    t.device() == tch::Device::Cpu
        && t.kind() == Kind::Float
        && t.is_contiguous()
        && t.numel() == n
        && n > 0
        && !t.data_ptr().is_null()
}

/// A tensor's elements as a slice. Safety: `t` passed [`host_f32`], and nothing writes to it
/// while the slice lives.
pub(crate) unsafe fn host_slice(t: &Tensor) -> &[f32] {
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// A tensor's elements as a mutable slice, written without libtorch: its version does not
/// change (so autograd's check for in-place changes cannot see it, and the kernels' caches are
/// told by `parameters_written`). Safety: as [`host_slice`], and nothing else reads or writes
/// the tensor while the slice lives.
#[allow(clippy::mut_from_ref)]
pub(crate) unsafe fn host_slice_mut(t: &Tensor) -> &mut [f32] {
    // SAFETY: the caller's promise.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}
