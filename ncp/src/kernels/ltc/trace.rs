//! What the LTC forward pass records for its backward pass.

/// What the forward pass keeps for the backward pass.
#[derive(Default)]
pub struct Trace {
    /// Every sub-step state, `[t][u in 0..=U][n][B]` (per sample, `[b][t][u][n]`, for a
    /// batch under 8).
    pub(super) states: Vec<f32>,
    /// Every internal synapse's sigmoid in every unfold, `[t][u in 0..U][k][B]` (per sample,
    /// `[b][t][u][k]`): the backward pass reads them instead of computing them again.
    pub(super) sigmoids: Vec<f32>,
}
