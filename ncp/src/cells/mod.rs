//! The cells as ncps defines them, on libtorch autograd (any device): each knows its equations
//! and its parameters under ncps's `state_dict` keys, and nothing of kernels or training.
//!
//! - [`ltc`]: the liquid time-constant cell over a wiring.
//! - [`cfc`]: the closed-form cell (dense, with a backbone) and its dense layer.
//! - [`wired_cfc`]: one masked CfC per wiring layer.
//! - [`lstm`]: the mixed-memory LSTM run before a cell (and the LSTM baseline).
//! - [`baseline`]: the GRU and the memoryless MLP an NCP is compared against.

pub mod baseline;
pub mod cfc;
pub mod lstm;
pub mod ltc;
pub mod wired_cfc;

pub use baseline::{GruCell, MlpCell};
pub use cfc::{Activation, CfcCell, CfcHeads, CfcMode, CfcOptions, Dense};
pub use lstm::LstmCell;
pub use ltc::{LtcCell, LtcOptions, Mapping};
pub use wired_cfc::WiredCfcCell;
