//! No build step: the script exists so that the `cc` pin of Cargo.toml's build-dependencies
//! takes part in the build (see the comment there).
fn main() {}
