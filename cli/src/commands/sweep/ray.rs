//! The Ray executor: a small Python driver (`ray_driver.py`, carried inside the binary)
//! submits each trial as a Ray task that runs this `wormnet` binary on whatever node Ray picks,
//! and streams each trial's start and end back as JSON lines.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use wormnet_agent::checkpoint::write_atomic;
use wormnet_agent::train::STOP;

use super::jobs::{log_error, Event, Job, JobEnd};

const DRIVER: &str = include_str!("ray_driver.py");

/// The Python that has Ray: `WORMNET_PYTHON` (set by `scripts/env.sh` to the project venv),
/// else `python3` on PATH.
fn python() -> String {
    std::env::var("WORMNET_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `jobs` as Ray tasks of `cpus` CPUs each on the cluster at `address`.
pub fn run(
    binary: &Path,
    jobs: &[Job],
    cpus: usize,
    address: &str,
    sweep_dir: &Path,
    report: &mut dyn FnMut(Event),
) -> Result<()> {
    let dir = sweep_dir.join("ray");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (driver_path, plan_path) = write_driver(binary, jobs, cpus, &dir)?;
    let mut child = spawn_driver(&driver_path, &plan_path, address, &dir)?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut signalled = false;
    let mut driver_error = None;
    loop {
        if STOP.load(Ordering::SeqCst) && !signalled {
            signalled = true;
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if let Some(e) = msg["error"].as_str() {
                    driver_error = Some(e.to_string());
                } else if let Some(id) = msg["started"].as_str() {
                    report(Event::Started(id.to_string()));
                } else if let Some(id) = msg["ended"].as_str() {
                    report(Event::Ended(id.to_string(), job_end(&msg, id, jobs)));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait()?;
    if let Some(e) = driver_error {
        bail!("{e}");
    }
    if !status.success() && !signalled {
        bail!(
            "the Ray driver failed ({status}); its log: {}",
            dir.join("driver.log").display()
        );
    }
    Ok(())
}

/// Writes the plan (binary, working directory, CPUs per trial and every job) and the driver
/// into `dir`, for the driver to read; returns the driver's path and the plan's.
fn write_driver(
    binary: &Path,
    jobs: &[Job],
    cpus: usize,
    dir: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let cwd = std::env::current_dir()?;
    let plan = serde_json::json!({
        "binary": binary,
        "cwd": cwd,
        "cpus_per_trial": cpus,
        "jobs": jobs.iter().map(|j| serde_json::json!({
            "id": j.id, "args": j.args, "log": j.log, "run_dir": j.run_dir,
        })).collect::<Vec<_>>(),
    });
    let plan_path = dir.join("plan.json");
    write_atomic(&plan_path, serde_json::to_string_pretty(&plan)?.as_bytes())?;
    let driver_path = dir.join("ray_driver.py");
    write_atomic(&driver_path, DRIVER.as_bytes())?;
    Ok((driver_path, plan_path))
}

/// Starts the driver on the plan, its stdout piped for the event lines and its stderr into
/// `dir/driver.log`.
fn spawn_driver(driver_path: &Path, plan_path: &Path, address: &str, dir: &Path) -> Result<Child> {
    let driver_log = std::fs::File::create(dir.join("driver.log"))?;
    let python = python();
    Command::new(&python)
        .arg(driver_path)
        .arg(plan_path)
        .arg(address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(driver_log)
        .spawn()
        .with_context(|| {
            format!("cannot run {python} for the Ray executor: run scripts/setup --ray, or set WORMNET_PYTHON to a python with ray")
        })
}

/// How the trial `id` ended, from the driver's `ended` line: a failure names the driver's
/// reason, else the error in the trial's log.
fn job_end(msg: &serde_json::Value, id: &str, jobs: &[Job]) -> JobEnd {
    if msg["interrupted"].as_bool() == Some(true) {
        return JobEnd::Interrupted;
    }
    if msg["rc"].as_i64() == Some(0) {
        return JobEnd::Finished;
    }
    let job = jobs.iter().find(|j| j.id == id);
    let code = msg["rc"].as_i64().map(|c| c as i32);
    match (job, msg["why"].as_str()) {
        (_, Some(why)) => JobEnd::Failed(format!("ray: {why}")),
        (Some(job), None) => JobEnd::Failed(log_error(&job.log, code)),
        (None, None) => JobEnd::Failed("unknown trial".into()),
    }
}
