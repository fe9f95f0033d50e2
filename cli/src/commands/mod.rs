//! One module per subcommand: its clap arguments and the function that runs it.

pub mod ablate;
pub mod bench;
pub mod eval;
pub mod imitate;
pub mod info;
pub mod plot;
#[cfg(feature = "render")]
pub mod record;
pub mod report;
pub mod search;
pub mod sweep;
pub mod train;
#[cfg(feature = "render")]
pub mod watch;
pub mod wiring;
