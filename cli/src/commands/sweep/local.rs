//! The local executor: up to N `wormnet train` processes at once on this machine, each
//! writing its output to its own log, polled until all have ended.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use wormnet_agent::train::STOP;

use super::jobs::{log_error, Event, Job, JobEnd};

/// Runs `jobs` with `binary`, `parallel` at a time, reporting each start and end. On Ctrl-C or
/// SIGTERM the running trials get SIGTERM (they save their latest checkpoint) and no more
/// start.
pub fn run(
    binary: &Path,
    jobs: &[Job],
    parallel: usize,
    report: &mut dyn FnMut(Event),
) -> Result<()> {
    let mut queue = jobs.iter();
    let mut running: Vec<(&Job, Child)> = Vec::new();
    let mut stopping = false;
    loop {
        if STOP.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            for (_, child) in &running {
                // SAFETY: sending a signal to a child we spawned and have not yet reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        while !stopping && running.len() < parallel {
            let Some(job) = queue.next() else { break };
            let child = spawn(binary, job)?;
            report(Event::Started(job.id.clone()));
            running.push((job, child));
        }
        if running.is_empty() {
            return Ok(());
        }
        let mut i = 0;
        while i < running.len() {
            match running[i].1.try_wait()? {
                Some(status) => {
                    let (job, _) = running.swap_remove(i);
                    let end = if status.success() {
                        JobEnd::Finished
                    } else if stopping {
                        JobEnd::Interrupted
                    } else {
                        JobEnd::Failed(log_error(&job.log, status.code()))
                    };
                    report(Event::Ended(job.id.clone(), end));
                }
                None => i += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts one trial with its output in its log; if the sweep process dies (even by SIGKILL)
/// the trial gets SIGTERM, saves and stops, so a re-run can resume it.
fn spawn(binary: &Path, job: &Job) -> Result<Child> {
    let log =
        File::create(&job.log).with_context(|| format!("cannot create {}", job.log.display()))?;
    let mut command = Command::new(binary);
    command
        .args(&job.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command
        .spawn()
        .with_context(|| format!("cannot start {} for trial {}", binary.display(), job.id))
}
