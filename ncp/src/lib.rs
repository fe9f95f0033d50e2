//! wormnet-ncp: Neural Circuit Policies on libtorch, usable on their own as Python's `ncps` is —
//! no simulator, no environments, no reinforcement learning.
//!
//! It exists so that the model can be trusted and reused apart from the trainer: the wirings
//! reproduce ncps 1.0.1 synapse for synapse, the cells reproduce its outputs and gradients, and
//! weights move between the two as safetensors under ncps's `state_dict` keys. On the CPU the
//! LTC and the wired CfC run hand-written kernels, ~20× faster than ncps, with the same results.
//!
//! ```
//! use wormnet_ncp::tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
//! use wormnet_ncp::{CellNet, NcpConfig};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let net = CellNet::new(&vs.root(), 8, &NcpConfig::default())?; // LTC on AutoNCP(19, 4), 8 inputs
//! let x = Tensor::randn([32, 100, 8], (Kind::Float, Device::Cpu)); // (batch, time, features)
//! let (y, _state) = net.forward_sequence(&x, None, None); // y: (32, 100, 4) motor neurons
//! let mut adam = nn::Adam::default().build(&vs, 1e-3)?;
//! let (y, _, tape) = net.forward_sequence_train(&x, None, None, None);
//! adam.zero_grad();
//! tape.backward(&y.square().mean(Kind::Float)); // one call, whichever path ran
//! adam.step();
//! net.save_safetensors(std::env::temp_dir().join("ltc.safetensors"))?; // ncps: LTC(8, AutoNCP(19, 4))
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The rooms, from the bottom up (each imports only the ones above it in this list):
//! - [`wiring`]: which neuron talks to which — generators, files, numpy's RNGs, pictures.
//! - [`interchange`]: tensors under ncps keys, and safetensors in and out.
//! - [`cells`]: LTC, CfC, wired CfC and the mixed-memory LSTM on libtorch autograd.
//! - [`kernels`]: the hand-written CPU kernels and their shared plumbing (they know no cell).
//! - [`config`]: the serde config of a network ([`NcpConfig`]).
//! - [`net`]: [`CellNet`], which builds a cell from a config and picks the kernel or autograd.
//! - [`bench`], [`runtime`]: speed figures, and what the loaded libtorch can do.

pub mod bench;
pub mod cells;
pub mod config;
pub mod interchange;
pub mod kernels;
pub mod net;
pub mod runtime;
pub mod wiring;

pub use config::{CellKind, MotorPair, NcpConfig, NcpError, SensorPair};
pub use interchange::{InterchangeError, NamedTensors};
pub use net::{CellNet, State, Tape};
pub use runtime::{parse_device, DeviceError, RuntimeInfo};
pub use wiring::{NeuronType, Wiring, WiringConfig, WiringError};

/// Re-exported so users build tensors and optimizers with exactly this crate's tch.
pub use tch;
