//! The process-wide stop request: Ctrl-C or SIGTERM sets [`STOP`], and every long loop
//! (training, imitation, sweeps) checks it where stopping loses nothing.

use std::sync::atomic::AtomicBool;

/// Set by the Ctrl-C / SIGTERM handler; checked at safe points (between updates, epochs).
pub static STOP: AtomicBool = AtomicBool::new(false);
