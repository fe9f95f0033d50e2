//! `wormnet info`: which libtorch this process loaded and what it can do, so a user sees why
//! training picked a device or thread count before anything else goes wrong, and which envs
//! this command knows.

use anyhow::Result;
use clap::Args;
use wormnet_ncp::runtime::{RuntimeInfo, EXPECTED_LIBTORCH};
use wormnet_sim::Registry;

/// Arguments of `wormnet info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wormnet info`.
pub fn run(args: InfoArgs, registry: &Registry) -> Result<()> {
    let info = RuntimeInfo::gather();
    if args.json {
        let mut value = serde_json::to_value(&info)?;
        value["envs"] = serde_json::json!(registry.names());
        value["cores"] = serde_json::json!(wormnet_agent::threads::available_cores());
        println!("{value}");
        return Ok(());
    }
    let version = info.libtorch_version.as_deref().unwrap_or("unknown");
    println!("libtorch        {version}");
    match &info.libtorch_dir {
        Some(dir) => println!("libtorch dir    {}", dir.display()),
        None => println!("libtorch dir    not found in this process"),
    }
    if !info.version_matches() {
        println!(
            "warning         tch expects libtorch {EXPECTED_LIBTORCH}; run scripts/setup to install it"
        );
    }
    if info.cuda_available {
        println!(
            "cuda            available, {} device(s), cudnn {}",
            info.cuda_devices,
            if info.cudnn_available { "yes" } else { "no" }
        );
    } else {
        let why = match &info.cuda_backend {
            Ok(_) => "no CUDA device or driver found".to_string(),
            Err(e) => e.clone(),
        };
        println!("cuda            not available, training runs on the CPU ({why})");
    }
    let cores = wormnet_agent::threads::available_cores();
    let split = wormnet_agent::threads::ThreadBudget::plan(None, cores, 16, 16, None);
    println!(
        "run threads     {cores} cores this process may use (cgroup quota and affinity \
         included): a run's default run.threads; e.g. 16 envs: {split}"
    );
    println!(
        "libtorch        {} intra-op, {} inter-op threads by default (OMP_NUM_THREADS); \
         training sets 1 on each of its threads",
        info.cpu_threads, info.interop_threads
    );
    println!(
        "cpu backends    mkl {}, openmp {}",
        yes_no(info.mkl),
        yes_no(info.openmp)
    );
    let crates: Vec<String> = info
        .crates
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    println!("crates          {}", crates.join(", "));
    println!("envs            {}", registry.names().join(", "));
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
