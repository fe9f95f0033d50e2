//! Bakes libtorch's library directory into every binary and test of this crate as an rpath, so
//! that `wormnet` runs from any shell without LD_LIBRARY_PATH.

fn main() {
    crate_versions();
    // torch-sys declares `links = "tch"` and prints `cargo:libtorch_lib=…`, which cargo hands to
    // direct dependents as DEP_TCH_LIBTORCH_LIB.
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(lib) if !lib.is_empty() => {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
            println!("cargo:rustc-env=WORMNET_LIBTORCH_LIB={lib}");
        }
        _ => {
            println!(
                "cargo:warning=torch-sys did not report its libtorch directory; \
                 binaries will need LD_LIBRARY_PATH to find libtorch"
            );
            println!("cargo:rustc-env=WORMNET_LIBTORCH_LIB=");
        }
    }
}

/// Records the resolved versions of the crates that decide behaviour, for `wormnet info`.
fn crate_versions() {
    const WANTED: [&str; 4] = ["tch", "torch-sys", "bevy", "bevy_rapier2d"];
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut found = Vec::new();
    let mut name: Option<&str> = None;
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(n), Some(v)) = (name, line.strip_prefix("version = ")) {
            if WANTED.contains(&n) {
                found.push(format!("{n}={}", v.trim_matches('"')));
            }
            name = None;
        }
    }
    println!("cargo:rustc-env=WORMNET_DEP_VERSIONS={}", found.join(","));
}
