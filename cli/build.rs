//! Bakes libtorch's library directory into the `wormnet` binary and this crate's tests, so
//! `wormnet` runs from any shell with no LD_LIBRARY_PATH.

fn main() {
    wormnet_build::link_libtorch();
}
