//! Bakes libtorch's library directory into this crate's tests and examples (so they run from
//! any shell) and records the resolved versions of the crates `wormnet info` reports.

fn main() {
    wormnet_build::link_libtorch();
    crate_versions();
}

/// Records the resolved versions of the crates that decide behaviour, for `runtime::RuntimeInfo`.
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
