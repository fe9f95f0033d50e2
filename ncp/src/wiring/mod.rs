//! Wirings: which neuron talks to which, with what polarity — the fixed, sparse structure that
//! makes a Neural Circuit Policy small and auditable.
//!
//! A [`Wiring`] is plain data: `N` neurons, an `N×N` adjacency `[source, destination]` with
//! polarity ±1 (0 = no synapse), and once built for `S` inputs an `S×N` sensory adjacency.
//! Neuron ids are motor-first as in ncps (`[0, M)` motor, then command, then inter), so LTC
//! outputs are the first `M` state entries. The generated kinds (FullyConnected, Random, NCP,
//! AutoNCP) reproduce ncps 1.0.1 synapse for synapse with the same seed (see [`numpy_rng`]);
//! any adjacency can also be loaded from a JSON or TOML file.
//!
//! Unlike ncps, [`Wiring::build`] is idempotent: building twice with the same input size
//! changes nothing (ncps silently adds a second set of synapses).

mod circuit;
mod config;
mod file;
mod generators;
mod graph;
mod import;
pub mod numpy_rng;
pub mod picture;
#[cfg(test)]
mod tests;

pub use circuit::{assign_roles, CircuitFile};
pub use config::{
    auto_ncp_params, CircuitNeuron, CircuitSynapse, NcpParams, NeuronType, SynapseKind,
    WiringConfig, WiringError, MAX_NEURONS,
};
pub use file::WiringFile;
pub use graph::Wiring;
pub use import::{parse_bnn, Roles};
