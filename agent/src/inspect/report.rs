//! One HTML page per recording, to send to a colleague: the episode's frames with a scrubber
//! and a play button; the neuron heatmap and the observation and action traces with a cursor at
//! the current step; what pushed each motor neuron at that step (LTC); for camera policies,
//! which pixels drove the action; the wiring; the run's config, checkpoint step and
//! evaluation; and the ablation table when one was run.
//!
//! The page opens from disk with no server and no network: its data is embedded as JSON and
//! drawn by a few lines of plain JavaScript on canvases; the frames are the PNGs beside it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// What the page says about the run besides the episodes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReportMeta {
    /// Heading: the run or file recorded.
    pub title: String,
    /// The run's config as TOML, if known.
    pub config: Option<String>,
    /// The checkpoint's environment step, if a checkpoint was recorded.
    pub checkpoint_step: Option<u64>,
    /// The checkpoint's evaluation, as one line, if it has one.
    pub evaluation: Option<String>,
    /// The rows of `ablation.jsonl`, when `wormnet ablate` was run on the checkpoint.
    pub ablation: Vec<serde_json::Value>,
}

/// One episode's series, as the page draws them.
#[derive(Serialize)]
struct Episode {
    name: String,
    frames: Vec<String>,
    dt: f64,
    observations: Vec<String>,
    actions: Vec<String>,
    neurons: Vec<String>,
    /// `[step][column]` of each kind.
    obs: Vec<Vec<f64>>,
    act: Vec<Vec<f64>>,
    act_names: Vec<String>,
    neuron: Vec<Vec<f64>>,
    reward: Vec<f64>,
    /// Per step: for each motor neuron, its three largest inputs `(source, Δv)`.
    contributions: Vec<BTreeMap<String, Vec<(String, f64)>>>,
    /// The episode's mean pixel saliency picture, for camera policies.
    saliency: Option<String>,
}

/// Reads one episode folder written by `record` (`steps.csv`, `frames/`, `attribution.csv`).
fn episode(dir: &Path, base: &Path) -> Result<Episode> {
    let steps = dir.join("steps.csv");
    let text = std::fs::read_to_string(&steps)
        .with_context(|| format!("cannot read {}", steps.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let pick = |prefix: &str| -> Vec<(usize, String)> {
        header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.strip_prefix(prefix).map(|n| (i, n.to_string())))
            .collect()
    };
    let (obs_cols, act_cols, neuron_cols) = (pick("obs/"), pick("action/"), pick("neuron/"));
    let reward_col = header.iter().position(|h| *h == "reward");
    let time_col = header.iter().position(|h| *h == "time");
    let mut e = Episode {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        frames: Vec::new(),
        dt: 0.0,
        observations: obs_cols.iter().map(|c| c.1.clone()).collect(),
        actions: act_cols.iter().map(|c| c.1.clone()).collect(),
        neurons: neuron_cols.iter().map(|c| c.1.clone()).collect(),
        obs: Vec::new(),
        act: Vec::new(),
        act_names: act_cols.iter().map(|c| c.1.clone()).collect(),
        neuron: Vec::new(),
        reward: Vec::new(),
        contributions: Vec::new(),
        saliency: None,
    };
    let mut times = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let get = |i: usize| {
            cells
                .get(i)
                .and_then(|c| c.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        e.obs.push(obs_cols.iter().map(|c| get(c.0)).collect());
        e.act.push(act_cols.iter().map(|c| get(c.0)).collect());
        e.neuron
            .push(neuron_cols.iter().map(|c| get(c.0)).collect());
        e.reward.push(reward_col.map_or(0.0, get));
        times.push(time_col.map_or(0.0, get));
    }
    e.dt = match times.as_slice() {
        [a, b, ..] => b - a,
        _ => 0.0,
    };
    let frames = dir.join("frames");
    let mut names: Vec<String> = std::fs::read_dir(&frames)
        .map(|d| {
            d.flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".png"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    e.frames = names
        .iter()
        .map(|n| format!("{}/frames/{n}", rel.display()))
        .collect();
    if dir.join("saliency.png").exists() {
        e.saliency = Some(format!("{}/saliency.png", rel.display()));
    }
    e.contributions = vec![BTreeMap::new(); e.obs.len()];
    if let Ok(text) = std::fs::read_to_string(dir.join("attribution.csv")) {
        let mut per: BTreeMap<(usize, String), Vec<(String, f64)>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let c: Vec<&str> = line.split(',').collect();
            let (Some(t), Some(target), Some(dv)) = (
                c.first().and_then(|v| v.parse::<usize>().ok()),
                c.get(3),
                c.get(4).and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            if target.starts_with("motor") {
                let source = match c.get(1) {
                    Some(&"sensory") => format!("obs {}", c.get(2).unwrap_or(&"")),
                    _ => c.get(2).unwrap_or(&"").to_string(),
                };
                per.entry((t, target.to_string()))
                    .or_default()
                    .push((source, dv));
            }
        }
        for ((t, target), mut inputs) in per {
            inputs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
            inputs.truncate(3);
            if let Some(step) = e.contributions.get_mut(t) {
                step.insert(target, inputs);
            }
        }
    }
    Ok(e)
}

/// Writes `out/report.html` for the episodes recorded in `out/episode_*/`; returns its path.
pub fn write_report(out: &Path, meta: &ReportMeta) -> Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("steps.csv").exists())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!(
            "{}: no recorded episode (episode_*/steps.csv) to report",
            out.display()
        );
    }
    let episodes = dirs
        .iter()
        .map(|d| episode(d, out))
        .collect::<Result<Vec<_>>>()?;
    let wiring = std::fs::read_to_string(out.join("wiring.svg")).unwrap_or_default();
    let data = serde_json::json!({ "meta": meta, "episodes": episodes });
    // `</` would end the script element early.
    let data = serde_json::to_string(&data)?.replace("</", "<\\/");
    let html = TEMPLATE
        .replace("{{title}}", &escape(&meta.title))
        .replace("{{wiring}}", &wiring)
        .replace("{{data}}", &data);
    let path = out.join("report.html");
    crate::checkpoint::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page: layout, then the script that draws it from the embedded data.
const TEMPLATE: &str = include_str!("report.html");
