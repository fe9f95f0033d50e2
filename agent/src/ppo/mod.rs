//! Proximal Policy Optimisation for recurrent NCP policies: every implementation detail the
//! reference checklist names, each visible in one place.

pub mod adam;
pub mod config;
pub mod gae;
