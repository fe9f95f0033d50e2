//! One HTML page per recording, to send to a colleague: the episode's frames with a scrubber
//! and a play button; the neuron heatmap and the observation and action traces with a cursor at
//! the current step; what pushed each motor neuron at that step (LTC); for camera policies,
//! which pixels drove the action; the wiring; the run's config, checkpoint step and
//! evaluation; and the ablation table when one was run.
//!
//! The page opens from disk with no server and no network: its data is embedded as JSON and
//! drawn by a few lines of plain JavaScript on canvases; the frames are the PNGs beside it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use wormnet_ncp::NeuronType;

use super::audit::neuron_role;

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
    /// The role of each neuron (`sensory`, `inter`, `command`, `motor`): the heatmap's rows.
    roles: Vec<&'static str>,
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
        roles: Vec::new(),
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
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    e.frames = frame_paths(dir, rel);
    if dir.join("saliency.png").exists() {
        e.saliency = Some(format!("{}/saliency.png", rel.display()));
    }
    let roles = neuron_roles(dir, &e.neurons);
    let motors: HashSet<&str> = (e.neurons.iter().zip(&roles))
        .filter(|(_, r)| **r == NeuronType::Motor)
        .map(|(n, _)| n.as_str())
        .collect();
    e.contributions = motor_contributions(dir, e.obs.len(), &motors);
    e.roles = roles.iter().map(|r| r.as_str()).collect();
    Ok(e)
}

/// The episode's frame pictures (`frames/*.png`, in order), as paths under `rel`.
fn frame_paths(dir: &Path, rel: &Path) -> Vec<String> {
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
    names
        .iter()
        .map(|n| format!("{}/frames/{n}", rel.display()))
        .collect()
}

/// The role of each of `neurons` (the step log's neuron columns): as recorded beside the log
/// in `rollout.json`, else read from its label (see [`neuron_role`]).
fn neuron_roles(dir: &Path, neurons: &[String]) -> Vec<NeuronType> {
    let recorded = wormnet_sim::rollout::Rollout::load(&dir.join("rollout.json")).ok();
    let by_name: HashMap<String, NeuronType> = recorded
        .and_then(|r| {
            let roles = r.internal_roles.as_deref();
            let names = r.internal_names.as_ref()?;
            let role = |(k, n): (usize, &String)| (n.clone(), neuron_role(roles, k, n));
            Some(names.iter().enumerate().map(role).collect())
        })
        .unwrap_or_default();
    (neurons.iter())
        .map(|n| {
            by_name
                .get(n)
                .copied()
                .unwrap_or_else(|| neuron_role(None, 0, n))
        })
        .collect()
}

/// Per step of `steps`: for each motor neuron (named in `motors`), its three largest inputs
/// `(source, Δv)` from `attribution.csv` (none when the file is missing).
fn motor_contributions(
    dir: &Path,
    steps: usize,
    motors: &HashSet<&str>,
) -> Vec<BTreeMap<String, Vec<(String, f64)>>> {
    let mut contributions = vec![BTreeMap::new(); steps];
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
            if motors.contains(target) {
                let source = match c.get(1) {
                    Some(&"sensory") => format!("obs {}", c.get(2).unwrap_or(&"")),
                    Some(&"gap") => format!("gap {}", c.get(2).unwrap_or(&"")),
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
            if let Some(step) = contributions.get_mut(t) {
                step.insert(target, inputs);
            }
        }
    }
    contributions
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
    // The SVG is ours (`wormnet_ncp::wiring::picture` escapes every name in it).
    let wiring = std::fs::read_to_string(out.join("wiring.svg")).unwrap_or_default();
    let data = serde_json::json!({ "meta": meta, "episodes": episodes });
    let data = script_json(&serde_json::to_string(&data)?);
    let html = fill(
        TEMPLATE,
        &[
            ("title", &html_text(&meta.title)),
            ("wiring", &wiring),
            ("data", &data),
        ],
    );
    let path = out.join("report.html");
    crate::checkpoint::write_atomic(&path, html.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `s` as HTML text or a quoted attribute value: the one escaping every string that enters
/// the page as markup goes through.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON text made safe inside a `<script>` element: `<`, `>` and `&` (so neither `</script>`
/// nor `<!--` can end or bend the element) and the line separators JavaScript once refused
/// become `\uXXXX` escapes. They only occur inside JSON strings, where the escapes mean the
/// same characters, so the data parses back unchanged.
pub fn script_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// `template` with each `{{key}}` replaced by its value, in one pass from left to right: the
/// values are never scanned again, so a value holding `{{data}}` stays that text. Unknown
/// placeholders are left as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let known = after.find("}}").and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (v, end + 2))
        });
        match known {
            Some((value, used)) => {
                out.push_str(value);
                rest = &after[used..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The page: layout, then the script that draws it from the embedded data.
const TEMPLATE: &str = include_str!("report.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_values_are_never_filled_again() {
        let page = fill(
            "<h1>{{title}}</h1>{{ odd }}<p>{{data}}</p>{{",
            &[("title", "{{data}}"), ("data", "[1]")],
        );
        assert_eq!(page, "<h1>{{data}}</h1>{{ odd }}<p>[1]</p>{{");
    }

    #[test]
    fn strings_cannot_leave_their_html_text_or_script_element() {
        let payload = "</script><!--<img src=x onerror='a&b'>\"\u{2028}\u{2029}";
        let text = html_text(payload);
        assert!(!text.contains(['<', '>', '"', '\'']), "{text}");
        let json =
            script_json(&serde_json::to_string(&serde_json::json!({ "k": payload })).unwrap());
        assert!(
            !json.contains(['<', '>', '&', '\u{2028}', '\u{2029}']),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["k"], payload);
    }

    #[test]
    fn the_page_never_parses_data_as_markup() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!TEMPLATE.contains(sink), "report.html uses {sink}");
        }
    }
}
