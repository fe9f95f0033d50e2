//! wormnet-feature-pins: no code. Its dependencies switch on, in every build of the workspace,
//! the features that test-only dependencies would otherwise add only when testing — so that the
//! README's train command and test command share one build of Bevy, rapier and tch (see
//! Cargo.toml for the check that keeps it true).
