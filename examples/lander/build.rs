//! Lets this crate's binary and tests find libtorch at run time, with no LD_LIBRARY_PATH.

fn main() {
    wormnet_build::link_libtorch();
}
