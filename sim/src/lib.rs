//! wormnet-sim: what every environment plugs into and what the trainer talks to.
//!
//! It exists so that environments and the trainer never depend on each other: both depend on
//! this contract, and nothing here links libtorch.
