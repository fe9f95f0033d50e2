//! What a network is built from: the serde config that mirrors ncps's `LTC`/`CfC` arguments
//! (and is the `[policy.actor]` table of an experiment), and why building can fail.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cells::{Activation, CfcMode, Mapping};
use crate::interchange::InterchangeError;
use crate::wiring::{Wiring, WiringConfig, WiringError};

fn one() -> f64 {
    1.0
}

/// One input component feeding a pair of sensory neurons (`[[policy.actor.sensors]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorPair {
    /// Index of the input (observation) component it reads.
    pub input: usize,
    /// Neuron fed `max(x, 0) / range`.
    pub positive: String,
    /// Neuron fed `max(−x, 0) / range`.
    pub negative: String,
    /// The input's scale: `x = ±range` drives a neuron with 1.
    #[serde(default = "one")]
    pub range: f64,
}

/// One output as the difference of two motor neurons (`[[policy.actor.motors]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotorPair {
    /// Motor neuron counted positive (FWD).
    pub positive: String,
    /// Motor neuron counted negative (REV).
    pub negative: String,
}

/// Which continuous-time cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// Liquid time-constant cell (ODE, `ode_unfolds` sub-steps).
    #[default]
    Ltc,
    /// Closed-form continuous-time cell.
    Cfc,
    /// Baseline: an LSTM of `units` cells (no wiring), outputs through `proj_size`.
    Lstm,
    /// Baseline: a GRU of `units` cells (no wiring), outputs through `proj_size`.
    Gru,
    /// Baseline: a feed-forward tanh MLP (`backbone_layers` × `units`, no memory), outputs
    /// through `proj_size`.
    Mlp,
}

impl CellKind {
    /// Whether this is a dense baseline (LSTM, GRU, MLP) rather than a continuous-time cell.
    pub fn is_baseline(self) -> bool {
        matches!(self, CellKind::Lstm | CellKind::Gru | CellKind::Mlp)
    }
}

fn six() -> usize {
    6
}
fn eps() -> f64 {
    1e-8
}
fn yes() -> bool {
    true
}

/// Everything needed to build a policy network; mirrors the ncps `LTC`/`CfC` arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NcpConfig {
    /// `ltc` or `cfc`; the baselines `lstm`, `gru`, `mlp`.
    #[serde(default)]
    pub cell: CellKind,
    /// The wiring (required for LTC unless `units` is set; for CfC, `wiring` = wired CfC).
    #[serde(default)]
    pub wiring: Option<WiringConfig>,
    /// Without a wiring: LTC → FullyConnected(units); CfC → dense CfC with a backbone.
    #[serde(default)]
    pub units: Option<usize>,
    /// LTC input mapping.
    #[serde(default)]
    pub input_mapping: Mapping,
    /// LTC output mapping.
    #[serde(default)]
    pub output_mapping: Mapping,
    /// LTC sub-steps per step.
    #[serde(default = "six")]
    pub ode_unfolds: usize,
    /// LTC denominator epsilon.
    #[serde(default = "eps")]
    pub epsilon: f64,
    /// LTC: softplus positivity (true, ncps `LTC` default) or clamp after each step (false).
    #[serde(default = "yes")]
    pub implicit_constraints: bool,
    /// CfC mode.
    #[serde(default)]
    pub mode: CfcMode,
    /// Add the LSTM mixed-memory augmentation.
    #[serde(default)]
    pub mixed_memory: bool,
    /// Dense CfC backbone activation.
    #[serde(default)]
    pub activation: Activation,
    /// Dense CfC backbone width (default 128).
    #[serde(default)]
    pub backbone_units: Option<usize>,
    /// Dense CfC backbone depth (default 1).
    #[serde(default)]
    pub backbone_layers: Option<usize>,
    /// Dense CfC backbone dropout (default 0).
    #[serde(default)]
    pub backbone_dropout: Option<f64>,
    /// CfC output projection `Linear(output → proj_size)` (key `fc`).
    #[serde(default)]
    pub proj_size: Option<usize>,
    /// Sensor neuron pairs: input components each driving two named sensory neurons (their
    /// positive and negative parts); empty: every input feeds the wiring's own way.
    #[serde(default)]
    pub sensors: Vec<SensorPair>,
    /// Motor neuron pairs: each output is one named motor neuron minus another (FWD − REV);
    /// empty: the motor neurons are the outputs.
    #[serde(default)]
    pub motors: Vec<MotorPair>,
}

impl Default for NcpConfig {
    fn default() -> Self {
        Self {
            cell: CellKind::Ltc,
            wiring: Some(WiringConfig::AutoNcp {
                units: 19,
                output_size: 4,
                sparsity_level: 0.5,
                seed: 22222,
            }),
            units: None,
            input_mapping: Mapping::Affine,
            output_mapping: Mapping::Affine,
            ode_unfolds: 6,
            epsilon: 1e-8,
            implicit_constraints: true,
            mode: CfcMode::Default,
            mixed_memory: false,
            activation: Activation::LecunTanh,
            backbone_units: None,
            backbone_layers: None,
            backbone_dropout: None,
            proj_size: None,
            sensors: Vec::new(),
            motors: Vec::new(),
        }
    }
}

/// Why a network could not be built or loaded.
#[derive(Debug, Error)]
pub enum NcpError {
    /// The wiring is impossible.
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// Inconsistent config fields.
    #[error("invalid NCP config: {0}")]
    Config(String),
    /// Weight exchange failed.
    #[error(transparent)]
    Interchange(#[from] InterchangeError),
}

impl NcpConfig {
    /// The (unbuilt) wiring this network follows: the `wiring` table, or for `units` alone an
    /// LTC's FullyConnected(units) as ncps makes it; None for a dense CfC or a baseline.
    pub fn wiring(&self) -> Result<Option<Wiring>, NcpError> {
        let bad = |m: &str| Err(NcpError::Config(m.to_string()));
        match (&self.wiring, self.units, self.cell) {
            (Some(_), Some(_), _) => bad("give either `wiring` or `units`, not both"),
            (None, None, _) => bad("give a `wiring` or `units`"),
            (Some(_), None, kind) if kind.is_baseline() => bad(
                "a baseline cell (lstm, gru, mlp) has no wiring: give `units` (its width) \
                     and `proj_size` (its outputs) instead",
            ),
            (Some(w), None, _) => Ok(Some(Wiring::from_config(w)?)),
            (None, Some(u), CellKind::Ltc) => {
                Ok(Some(Wiring::fully_connected(u, None, 1111, true)?))
            }
            (None, Some(_), _) => Ok(None),
        }
    }
}
