//! Host loops: the parts of the PPO update that are a few microseconds of arithmetic but dozens
//! of small libtorch operations — the gradients' global norm, the ratio's statistics, and a
//! categorical policy's whole actor loss with its gradient in the logits — computed as plain
//! loops over the CPU tensors' memory.
//!
//! **The contract: they agree with the libtorch operations they replace to float rounding, not
//! to the bit.** Sums run in index order and accumulate in f64 (libtorch sums f32 in vector
//! lanes, in an order that depends on its build and the CPU); element-wise steps are the same
//! f32 operations as libtorch's where a comparison depends on them (the clip fraction). The
//! tests hold every result within a relative 1e-5 of libtorch's on random data of lengths from
//! 1 to beyond 100 000. Being sequential, the loops give the same bits for the same input:
//! a run repeats itself exactly on the same build and machine.
//!
//! `ppo.host_loops = false` turns them all off (with Adam's host step): every loss, statistic
//! and norm then comes from libtorch's operations, to bisect a suspected difference.
//!
//! - [`memory`]: which tensors the loops may read, and their elements as slices.
//! - [`stats`]: the sums of squares, means and ratio statistics.
//! - [`categorical`]: a categorical policy's actor loss and its gradient in the logits.

pub(crate) mod categorical;
mod memory;
mod stats;

pub(crate) use memory::{host_f32, host_slice, host_slice_mut};
pub(crate) use stats::{grad_norm, mean_and_std, ratio_stats};

#[cfg(test)]
mod tests;
