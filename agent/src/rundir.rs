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
    /// Whether [`claim_new`] made the directory (so [`NewRunGuard`] may remove it).
    created_dir: bool,
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
                return Err(busy(dir, pid.trim()));
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
        Ok(RunLock {
            _file: file,
            path,
            created_dir: false,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates `dir` if needed, locks it and checks that it holds nothing yet: where a new run
/// (trained or imitated) starts. A directory with something in it is refused before anything
/// is written there (not even the lock file); one with a run in it names `resume`, the command
/// that continues it, when there is one.
pub fn claim_new(dir: &Path, resume: Option<&str>) -> anyhow::Result<RunLock> {
    if let Some(busy) = held_elsewhere(dir) {
        return Err(busy.into());
    }
    refuse_used(dir, resume)?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create run directory {}: {e}", dir.display()))?;
    let mut lock = RunLock::acquire(dir)?;
    lock.created_dir = created_dir;
    // Again under the lock: another process may have started a run there in between.
    refuse_used(dir, resume)?;
    Ok(lock)
}

/// The [`LockError::Busy`] of a directory whose lock another process holds, found without
/// writing anything (a shared lock on the lock file, tried and released at once).
fn held_elsewhere(dir: &Path) -> Option<LockError> {
    let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(busy(dir, pid.trim()))
        }
        _ => None,
    }
}

fn busy(dir: &Path, pid: &str) -> LockError {
    LockError::Busy {
        dir: dir.to_path_buf(),
        holder: if pid.is_empty() {
            String::new()
        } else {
            format!(" (pid {pid})")
        },
    }
}

fn refuse_used(dir: &Path, resume: Option<&str>) -> anyhow::Result<()> {
    let found = contents(dir);
    if found.is_empty() {
        return Ok(());
    }
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
    )
}

/// Leaves a new run's directory as it was found when the run fails to start: armed when the
/// directory is claimed, disarmed by [`NewRunGuard::keep`] once the run has started. Dropped
/// armed (an error returned, a panic unwinding), it takes the directory's lock again — a
/// directory another process has claimed meanwhile is left alone — and removes what a starting
/// run writes there ([`written_by_a_run`]), and the directory too when the claim made it and
/// nothing else is in it. A directory holding a checkpoint (a run's or its cloned policy's) is
/// kept whole: nothing that could be resumed or fine-tuned is lost.
pub struct NewRunGuard<'a> {
    dir: &'a Path,
    created_dir: bool,
    lock: Option<RunLock>,
    armed: bool,
}

impl<'a> NewRunGuard<'a> {
    /// Arms the guard for `dir`, claimed by [`claim_new`]; it holds `lock` until
    /// [`Self::take_lock`] hands it on.
    pub fn new(dir: &'a Path, lock: RunLock) -> Self {
        NewRunGuard {
            dir,
            created_dir: lock.created_dir,
            lock: Some(lock),
            armed: true,
        }
    }

    /// The lock, for whatever holds the run from now on (the guard takes it again to clean up).
    pub fn take_lock(&mut self) -> Option<RunLock> {
        self.lock.take()
    }

    /// The run started: keep the directory (and release the lock if the guard still holds it).
    pub fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for NewRunGuard<'_> {
    fn drop(&mut self) {
        let dir = self.dir;
        let has_checkpoint = ["latest.json", "best.json", "imitation/latest.json"]
            .iter()
            .any(|f| dir.join(f).exists());
        if !self.armed || has_checkpoint {
            return;
        }
        // Taken again if handed on; busy: another process claimed the directory meanwhile.
        let Some(lock) = self.lock.take().or_else(|| RunLock::acquire(dir).ok()) else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == LOCK_FILE || !written_by_a_run(&name) {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
        // The lock file goes last, held: then the directory, if the claim made it and it is empty.
        let _ = std::fs::remove_file(lock.path());
        drop(lock);
        if self.created_dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether `name` is one of the files a run writes into its directory before its first
/// checkpoint (anything else there is someone else's and is never removed).
fn written_by_a_run(name: &str) -> bool {
    matches!(
        name,
        "config.toml"
            | "metrics.csv"
            | "imitation.csv"
            | "imitation"
            | "evals.jsonl"
            | "search.csv"
            | "confirmations.csv"
    ) || name.starts_with("events.out.tfevents.")
        || name.ends_with(".safetensors")
        || is_temporary(name)
}

/// `NAME.tmp-PID`: the temporary of an atomic write.
fn is_temporary(name: &str) -> bool {
    name.rsplit_once(".tmp-")
        .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes what a killed process can leave behind in a run directory it was writing: temporary
/// files of atomic writes (`latest.json.tmp-PID`). Call it holding the directory's lock, so no
/// live writer owns them.
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temporary(&entry.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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

    #[test]
    fn a_used_directory_is_refused_without_writing_a_lock_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = claim_new(dir.path(), None).expect_err("not empty");
        assert!(e.to_string().contains("nothing there was changed"), "{e}");
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_failed_new_run_leaves_nothing_but_a_checkpoint_is_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        let fail = |dir: &Path, files: &[&str]| {
            let guard = NewRunGuard::new(dir, claim_new(dir, None).unwrap());
            for f in files {
                std::fs::write(dir.join(f), "x").unwrap();
            }
            drop(guard);
        };
        let made = root.path().join("made");
        fail(&made, &["config.toml", "metrics.csv"]);
        assert!(!made.exists(), "the directory the claim made is removed");

        let given = root.path().join("given");
        std::fs::create_dir(&given).unwrap();
        fail(&given, &["metrics.csv", "latest.json.tmp-77"]);
        assert!(given.exists() && contents(&given).is_empty());
        assert!(!given.join(LOCK_FILE).exists());

        // A file of someone else's that appeared after the claim is kept, and so its folder.
        let shared = root.path().join("shared");
        fail(&shared, &["config.toml", "notes.txt"]);
        assert_eq!(contents(&shared), vec!["notes.txt".to_string()]);

        let kept = root.path().join("kept");
        fail(&kept, &["config.toml", "latest.json"]);
        assert!(kept.join("latest.json").exists() && kept.join("config.toml").exists());

        // The lock handed on: the guard takes it again to clean up.
        let handed = root.path().join("handed");
        let mut guard = NewRunGuard::new(&handed, claim_new(&handed, None).unwrap());
        drop(guard.take_lock());
        drop(guard);
        assert!(!handed.exists());

        let started = root.path().join("started");
        let mut guard = NewRunGuard::new(&started, claim_new(&started, None).unwrap());
        let lock = guard.take_lock();
        guard.keep();
        assert!(started.join(LOCK_FILE).exists());
        drop(lock);
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("latest.json.tmp-99999"), "half").unwrap();
        std::fs::write(dir.path().join("latest.json"), "{}").unwrap();
        remove_stale_temporaries(dir.path());
        assert_eq!(contents(dir.path()), vec!["latest.json".to_string()]);
    }
}
