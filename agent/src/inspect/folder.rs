//! The folder `wormnet record` writes into. A recording must never mix with another, nor
//! destroy what is not one: the folder is new, empty, or a previous recording (recognised by
//! its files, every one of which `record` writes), which is removed before the new one is
//! written; any other folder is refused untouched.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What `record` writes beside the episode folders.
const TOP: &[&str] = &["report.html", "wiring.svg"];

/// What `record` writes in an episode folder (a rollout file rendered by an older `record`
/// left these directly in the folder).
const EPISODE: &[&str] = &[
    "frames",
    "episode.gif",
    "episode.mp4",
    "steps.csv",
    "activity.png",
    "heatmap.png",
    "correlations.csv",
    "rollout.json",
    "saliency.csv",
    "saliency.png",
    "attribution.csv",
    "attribution.png",
];

/// The folder a recording goes into, as found before recording.
#[derive(Debug)]
pub struct OutFolder {
    /// The folder.
    pub path: PathBuf,
    /// Whether it did not exist (an interrupted recording that kept nothing removes it again).
    pub created: bool,
    /// A previous recording's entries, removed by [`OutFolder::clear`].
    previous: Vec<PathBuf>,
}

/// `name` is `known` or a temporary file of it (`steps.csv.tmp-123`, `rollout.json.tmp`).
fn named(name: &str, known: &[&str]) -> bool {
    known.iter().any(|k| {
        name == *k
            || name
                .strip_prefix(k)
                .is_some_and(|rest| rest.starts_with(".tmp"))
    })
}

/// `episode_` and at least three digits: the folders `record` numbers its episodes with.
fn is_episode_name(name: &str) -> bool {
    name.strip_prefix("episode_")
        .is_some_and(|n| n.len() >= 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `path` (not followed if a link) is what `record` writes under `name`: a file of a
/// known name, an episode folder holding only such files, a `frames/` folder of frames.
fn written_by_record(path: &Path, name: &str, top: bool) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let listing = |ok: &dyn Fn(&Path, &str) -> bool| {
        std::fs::read_dir(path).is_ok_and(|mut d| {
            d.all(|e| e.is_ok_and(|e| ok(&e.path(), &e.file_name().to_string_lossy())))
        })
    };
    if meta.is_dir() {
        if name == "frames" {
            return listing(&|p, n| {
                n.starts_with("frame_") && n.ends_with(".png") && p.is_file() && !p.is_symlink()
            });
        }
        if top && is_episode_name(name) {
            return listing(&|p, n| written_by_record(p, n, false));
        }
        return false;
    }
    meta.is_file() && (named(name, EPISODE) || (top && named(name, TOP)))
}

impl OutFolder {
    /// Looks at `path` and changes nothing: new, empty or a previous recording are accepted;
    /// anything else is an error naming the folder and an entry `record` did not write.
    pub fn check(path: &Path) -> Result<OutFolder> {
        let mut folder = OutFolder {
            path: path.to_path_buf(),
            created: !path.exists(),
            previous: Vec::new(),
        };
        if folder.created {
            return Ok(folder);
        }
        if !path.is_dir() {
            bail!("--out {}: not a folder", path.display());
        }
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !written_by_record(&entry.path(), &name, true) {
                bail!(
                    "--out {} holds `{name}`, which is not part of a recording by `wormnet \
                     record`; nothing was changed (choose a new or empty folder)",
                    path.display()
                );
            }
            folder.previous.push(entry.path());
        }
        folder.previous.sort();
        Ok(folder)
    }

    /// Whether `path` lies inside this folder (re-rendering a rollout file of the recording
    /// being replaced would remove it before reading it).
    pub fn holds(&self, path: &Path) -> bool {
        match (self.path.canonicalize(), path.canonicalize()) {
            (Ok(folder), Ok(inner)) => inner.starts_with(folder),
            _ => false,
        }
    }

    /// Creates the folder, or removes the previous recording found by [`OutFolder::check`].
    pub fn clear(&self) -> Result<()> {
        for entry in &self.previous {
            let removed = if entry.is_dir() && !entry.is_symlink() {
                std::fs::remove_dir_all(entry)
            } else {
                std::fs::remove_file(entry)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| {
                        format!("cannot remove the previous recording's {}", entry.display())
                    });
                }
                _ => {}
            }
        }
        std::fs::create_dir_all(&self.path)
            .with_context(|| format!("cannot create {}", self.path.display()))
    }

    /// Removes what a recording that kept nothing wrote: the folder's recording files, and
    /// the folder itself if this recording created it.
    pub fn abandon(&self) -> Result<()> {
        let left = OutFolder::check(&self.path)?;
        left.clear()?;
        if self.created {
            std::fs::remove_dir(&self.path)
                .with_context(|| format!("cannot remove {}", self.path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn a_previous_recording_is_replaced_and_anything_else_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("audit");
        let fresh = OutFolder::check(&out).unwrap();
        assert!(fresh.created);
        fresh.clear().unwrap();
        for file in [
            "report.html",
            "wiring.svg",
            "episode_000/steps.csv",
            "episode_000/frames/frame_00000.png",
            "episode_001/rollout.json.tmp",
            "episode_001/episode.mp4",
        ] {
            touch(&out.join(file));
        }
        let previous = OutFolder::check(&out).unwrap();
        assert!(!previous.created && previous.holds(&out.join("episode_000/steps.csv")));
        previous.clear().unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        for foreign in [
            "notes.txt",
            "episode_000/notes.txt",
            "episode_000/frames/mine.jpg",
            "episode_x/steps.csv",
            "src/main.rs",
        ] {
            touch(&out.join("episode_000/steps.csv"));
            touch(&out.join(foreign));
            let e = OutFolder::check(&out).unwrap_err().to_string();
            assert!(
                e.contains("audit") && e.contains("nothing was changed"),
                "{e}"
            );
            assert!(out.join(foreign).exists() && out.join("episode_000/steps.csv").exists());
            std::fs::remove_dir_all(&out).unwrap();
        }
        touch(&out);
        let e = OutFolder::check(&out).unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    #[test]
    fn an_abandoned_recording_leaves_no_folder_it_created() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("new");
        let folder = OutFolder::check(&out).unwrap();
        folder.clear().unwrap();
        touch(&out.join("wiring.svg"));
        folder.abandon().unwrap();
        assert!(!out.exists());
    }
}
