//! One process per run directory: an OS lock held for the life of a train or resume, so two
//! runs pointed at one directory cannot mix their metrics and checkpoints. The lock is
//! advisory (`flock`), lives in `RUN/.lock` with the holder's pid, and dies with the process —
//! a killed run leaves nothing to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The held lock of a run directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

/// Why a run directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "run directory {dir} is in use by another wormnet process{holder}; wait for it to \
         finish, or choose another --run-dir"
    )]
    Busy {
        /// The run directory.
        dir: PathBuf,
        /// ` (pid N)` when the holder wrote its pid.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock run directory {dir}: {source}")]
    Io {
        /// The run directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Linux's "no locks available" (e.g. an NFS mount without a lock daemon).
const ENOLCK: i32 = 37;

/// The name of the lock file inside a run directory (ignored when checking that a directory is
/// empty).
pub const LOCK_FILE: &str = ".lock";

impl RunLock {
    /// Takes the lock of `dir` (which must exist) at once, or fails naming the holder's pid.
    pub fn acquire(dir: &Path) -> Result<RunLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Busy {
                    dir: dir.to_path_buf(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    },
                });
            }
            // Filesystems without `flock` (some network mounts): train unguarded rather than
            // not at all, and say so.
            Err(TryLockError::Error(e))
                if e.kind() == std::io::ErrorKind::Unsupported
                    || e.raw_os_error() == Some(ENOLCK) =>
            {
                tracing::warn!(
                    "cannot lock run directory {} ({e}); make sure no other run uses it",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(io)?;
        Ok(RunLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` if needed, locks it and checks that it holds nothing yet: where a new run
/// (trained or imitated) starts. A directory with a run in it names `resume`, the command that
/// continues it, when there is one.
pub fn claim_new(dir: &Path, resume: Option<&str>) -> anyhow::Result<RunLock> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create run directory {}: {e}", dir.display()))?;
    let lock = RunLock::acquire(dir)?;
    let found = contents(dir);
    if !found.is_empty() {
        let run = dir.join("latest.json").exists();
        anyhow::bail!(
            "{} already holds {} ({}); {}",
            dir.display(),
            if run { "a run" } else { "files" },
            found.join(", "),
            match resume.filter(|_| run) {
                Some(command) => format!(
                    "continue it with `{command} {}`, or choose another --run-dir",
                    dir.display()
                ),
                None => "choose another --run-dir (nothing there was changed)".to_string(),
            }
        );
    }
    Ok(lock)
}

/// The entries of `dir` other than the lock file (empty when `dir` does not exist).
pub fn contents(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != LOCK_FILE)
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_naming_the_holder_and_a_dropped_lock_frees_the_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = RunLock::acquire(dir.path()).expect("first lock");
        let e = RunLock::acquire(dir.path()).expect_err("second lock must fail");
        let msg = e.to_string();
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(
            contents(dir.path()).is_empty(),
            "the lock file is not content"
        );
        drop(first);
        RunLock::acquire(dir.path()).expect("free again");
    }
}
