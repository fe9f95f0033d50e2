//! Where every random stream of a run comes from: each is derived from `(run.seed, stream)`, so a
//! run resumed from a checkpoint draws exactly what the uninterrupted run would have, whatever
//! ran before.

/// A well-mixed 64-bit value from a seed and a stream index (splitmix64), so each update gets
/// independent random streams that do not depend on what ran before it.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed
        .wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// libtorch's generator: stream 0 initialises the policy, stream `u + 1` samples update `u`.
pub const TORCH_STREAM: u64 = 0;
/// Env seeds at the checkpoint boundary before update `u`: `ENV_STREAM + u`.
pub const ENV_STREAM: u64 = 1 << 40;
/// Minibatch shuffling of update `u`: `SHUFFLE_STREAM + u`.
pub const SHUFFLE_STREAM: u64 = 2 << 40;
/// Seeds of the evaluation envs during training.
pub const EVAL_STREAM: u64 = 3 << 40;
/// Observation noise of an evaluation, derived from the evaluation's seed.
pub const NOISE_STREAM: u64 = 1;
/// Action sampling of a standalone evaluation (`wormnet eval --seed S`), from its seed.
pub const ACTION_STREAM: u64 = 4 << 40;
/// Episode seeds of `wormnet search`'s `d`-th scoring (incumbent or try): `SEARCH_STREAM + d`.
pub const SEARCH_STREAM: u64 = 5 << 40;
/// Which scalars `wormnet search`'s try `i` perturbs, and by how much: `PERTURB_STREAM + i`.
pub const PERTURB_STREAM: u64 = 6 << 40;
/// Episode seeds of `wormnet search`'s `c`-th confirmation of an evaluation: `CONFIRM_STREAM + c`.
pub const CONFIRM_STREAM: u64 = 7 << 40;
