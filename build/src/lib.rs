//! wormnet-build: one call for a build script, so that every binary and test of a crate that
//! links libtorch (through tch) finds it at run time with no `LD_LIBRARY_PATH`.
//!
//! tch links libtorch dynamically, and the loader looks for it before `main` runs, so the
//! directory must be in the binary's rpath. Cargo passes link arguments only to the targets of
//! the package whose build script prints them, which is why each crate with binaries or tests
//! calls this from its own `build.rs`:
//!
//! ```no_run
//! wormnet_build::link_libtorch(); // the whole `main` of such a build.rs
//! ```
//!
//! The directory is found the way torch-sys finds it: `DEP_TCH_LIBTORCH_LIB` when the crate
//! depends on torch-sys directly, else `$LIBTORCH/lib`, else (with `LIBTORCH_USE_PYTORCH=1`,
//! what `scripts/env.sh` sets) the `lib/` folder of the venv's `torch` package.

use std::path::PathBuf;
use std::process::Command;

/// Adds libtorch's library directory to the rpath of this package's binaries, tests, examples
/// and benches, and exports it to the crate as the env var `WORMNET_LIBTORCH_LIB` (empty when
/// not found, with a build warning). Returns the directory.
pub fn link_libtorch() -> Option<PathBuf> {
    for var in [
        "DEP_TCH_LIBTORCH_LIB",
        "LIBTORCH",
        "LIBTORCH_USE_PYTORCH",
        "VIRTUAL_ENV",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let dir = libtorch_lib_dir();
    match &dir {
        Some(lib) => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
            println!("cargo:rustc-env=WORMNET_LIBTORCH_LIB={}", lib.display());
        }
        None => {
            println!(
                "cargo:warning=libtorch's directory was not found (set LIBTORCH, or \
                 LIBTORCH_USE_PYTORCH=1 with torch installed); binaries will need LD_LIBRARY_PATH"
            );
            println!("cargo:rustc-env=WORMNET_LIBTORCH_LIB=");
        }
    }
    dir
}

/// Where libtorch's shared libraries are, by torch-sys's rules (see the crate doc).
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(lib));
    }
    if let Some(root) = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(root).join("lib"));
    }
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = match std::env::var_os("VIRTUAL_ENV") {
            Some(venv) => PathBuf::from(venv).join("bin/python"),
            None => PathBuf::from("python3"),
        };
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        let dir = PathBuf::from(text.trim());
        return (out.status.success() && dir.is_dir()).then_some(dir);
    }
    None
}
