//! Bakes libtorch's library directory into this crate's test binaries.

fn main() {
    wormnet_build::link_libtorch();
}
