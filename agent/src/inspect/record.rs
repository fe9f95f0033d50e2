//! `wormnet record`'s machinery: audited episodes (live with a policy, or from a recorded
//! `Rollout` file) rendered offscreen by Bevy into PNG frames, an animated GIF and, when
//! `ffmpeg` is on the PATH, an MP4; plus the per-step CSV, the activity plot and the rollout.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use wormnet_sim::render::{OffscreenRenderer, RenderConfig, View};
use wormnet_sim::rollout::Rollout;
use wormnet_sim::{EnvFactory, EnvSpec};

use super::audit::{self, acted_observations, Auditor};
use super::panel::NeuronPanel;
use super::{camera, heatmap, plot, saliency};

/// Picture size and which outputs to write.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Write the animated GIF.
    pub gif: bool,
    /// Encode an MP4 with `ffmpeg` when it is on the PATH.
    pub mp4: bool,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            width: 640,
            height: 480,
            gif: true,
            mp4: true,
        }
    }
}

/// What one recorded episode left on disk.
#[derive(Clone, Debug)]
pub struct EpisodeFiles {
    /// The episode's directory.
    pub dir: PathBuf,
    /// PNG frames in order (the reset frame, then one per step).
    pub frames: Vec<PathBuf>,
    /// The animated GIF, if written.
    pub gif: Option<PathBuf>,
    /// The MP4, if ffmpeg made one.
    pub mp4: Option<PathBuf>,
    /// The per-step CSV.
    pub csv: PathBuf,
    /// The activity plot.
    pub activity: PathBuf,
    /// The neuron heatmap with observations and actions under it.
    pub heatmap: PathBuf,
    /// Steps in the episode.
    pub steps: usize,
    /// Sum of rewards.
    pub episode_return: f64,
    /// Seconds spent rendering and writing the frames.
    pub render_seconds: f64,
}

/// The views of a recorded episode: the reset frame with a quiet panel, then one per step with
/// the neurons that chose that step's action. `sensory` maps a raw observation to what the
/// actor's sensory neurons read (identity without a checkpoint). With an image observation
/// each view shows the camera picture the action was chosen on, tinted by `pixel_maps` (one
/// saliency map per step) when given.
pub fn rollout_views(
    rollout: &Rollout,
    panel: Option<&NeuronPanel>,
    sensory: &dyn Fn(&[f32]) -> Vec<f32>,
    pixel_maps: Option<&[Vec<f32>]>,
) -> Vec<View> {
    let total = rollout.steps.len();
    let name = &rollout.spec.name;
    let n = rollout.internal_names.as_ref().map_or(0, Vec::len);
    let image = rollout.spec.image;
    let inset = |obs: &[f32], t: Option<usize>| {
        let map = t.and_then(|t| pixel_maps.and_then(|m| m.get(t)));
        image.map(|i| camera::inset(i, obs, map.map(Vec::as_slice)))
    };
    let mut views = Vec::with_capacity(total + 1);
    views.push(View {
        frame: rollout.initial_frame.clone(),
        panel: panel.map(|p| p.state(&sensory(&rollout.initial_observation), &vec![0.0; n])),
        caption: format!("{name}  seed {}  step 0/{total}", rollout.seed),
        inset: inset(&rollout.initial_observation, None),
    });
    let mut ret = 0.0f64;
    for ((t, step), obs) in rollout
        .steps
        .iter()
        .enumerate()
        .zip(acted_observations(rollout))
    {
        ret += f64::from(step.reward);
        let neurons = step.internals.clone().unwrap_or_default();
        let input = sensory(obs);
        let mut caption = format!(
            "{name}  seed {}  step {}/{total}  t {:.2}s  reward {:+.3}  return {ret:.2}",
            rollout.seed,
            t + 1,
            step.frame.time,
            step.reward
        );
        if let Some(top) = panel.and_then(|p| p.top_contributors(&input, &neurons, 2)) {
            // Short enough to leave room for what pushed the motor neurons.
            caption = format!("{name}  step {}/{total}  | {top}", t + 1);
        }
        views.push(View {
            frame: step.frame.clone(),
            panel: panel.map(|p| p.state(&input, &neurons)),
            caption,
            inset: inset(obs, Some(t)),
        });
    }
    views
}

/// 6×7×6 colour cube: a fixed GIF palette, so frames need no per-frame quantisation.
fn gif_palette() -> Vec<u8> {
    let mut p = Vec::with_capacity(256 * 3);
    for r in 0..6u32 {
        for g in 0..7u32 {
            for b in 0..6u32 {
                p.extend([r * 255 / 5, g * 255 / 6, b * 255 / 5].map(|v| v as u8));
            }
        }
    }
    p.resize(256 * 3, 0);
    p
}

fn gif_indices(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .map(|px| {
            let q = |v: u8, levels: u32| (u32::from(v) * (levels - 1) + 127) / 255;
            (q(px[0], 6) * 42 + q(px[1], 7) * 6 + q(px[2], 6)) as u8
        })
        .collect()
}

/// Writes the frames of `views` into `dir` (PNG per frame, optional GIF); returns the frame
/// paths and the GIF path.
fn write_frames(
    renderer: &mut OffscreenRenderer,
    views: Vec<View>,
    dir: &Path,
    dt: f32,
    options: &RecordOptions,
) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir)
        .with_context(|| format!("cannot create {}", frames_dir.display()))?;
    let gif_path = dir.join("episode.gif");
    let mut gif = if options.gif {
        let file = File::create(&gif_path)
            .with_context(|| format!("cannot create {}", gif_path.display()))?;
        let mut encoder = gif::Encoder::new(
            BufWriter::new(file),
            options.width as u16,
            options.height as u16,
            &gif_palette(),
        )
        .with_context(|| format!("cannot start {}", gif_path.display()))?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .with_context(|| format!("cannot write {}", gif_path.display()))?;
        Some(encoder)
    } else {
        None
    };
    let delay = ((dt * 100.0).round() as u16).max(2);
    let mut paths = Vec::with_capacity(views.len());
    renderer.render(views, |i, picture| {
        if stopped() {
            return Err("interrupted".to_string());
        }
        let path = frames_dir.join(format!("frame_{i:05}.png"));
        let file =
            File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let encoder = image::codecs::png::PngEncoder::new_with_quality(
            BufWriter::new(file),
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        );
        image::ImageEncoder::write_image(
            encoder,
            picture.as_raw(),
            picture.width(),
            picture.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        paths.push(path);
        if let Some(encoder) = gif.as_mut() {
            let frame = gif::Frame {
                width: picture.width() as u16,
                height: picture.height() as u16,
                delay,
                buffer: std::borrow::Cow::Owned(gif_indices(picture.as_raw())),
                ..gif::Frame::default()
            };
            encoder
                .write_frame(&frame)
                .map_err(|e| format!("cannot write {}: {e}", gif_path.display()))?;
        }
        Ok(())
    })?;
    let gif_written = gif.map(|encoder| {
        drop(encoder);
        gif_path
    });
    Ok((paths, gif_written))
}

/// `ffmpeg` on the PATH, if any.
pub fn ffmpeg_available() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn encode_mp4(dir: &Path, dt: f32) -> Option<PathBuf> {
    let out = dir.join("episode.mp4");
    let fps = (1.0 / dt.max(1e-3)).round().clamp(1.0, 120.0);
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-framerate"])
        .arg(format!("{fps}"))
        .arg("-i")
        .arg(dir.join("frames").join("frame_%05d.png"))
        .args([
            "-vf",
            "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => Some(out),
        Ok(s) => {
            tracing::warn!("ffmpeg failed ({s}); {} not written", out.display());
            None
        }
        Err(e) => {
            tracing::warn!("cannot run ffmpeg: {e}");
            None
        }
    }
}

/// Renders a recorded episode into `dir` with everything an audit needs: frames, GIF, MP4
/// (when possible), `steps.csv`, `activity.png`, `heatmap.png`, `correlations.csv` and
/// `rollout.json`. `sensory` and `pixel_maps` as in [`rollout_views`].
pub fn write_episode(
    renderer: &mut OffscreenRenderer,
    rollout: &Rollout,
    panel: Option<&NeuronPanel>,
    sensory: &dyn Fn(&[f32]) -> Vec<f32>,
    pixel_maps: Option<&[Vec<f32>]>,
    dir: &Path,
    options: &RecordOptions,
) -> Result<EpisodeFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let started = Instant::now();
    let views = rollout_views(rollout, panel, sensory, pixel_maps);
    let (frames, gif) = write_frames(renderer, views, dir, rollout.spec.dt, options)?;
    let render_seconds = started.elapsed().as_secs_f64();
    let mp4 = if options.mp4 && ffmpeg_available() {
        encode_mp4(dir, rollout.spec.dt)
    } else {
        None
    };
    if stopped() {
        // ffmpeg shares the terminal's Ctrl-C: its video may be cut short.
        return Err(anyhow!("interrupted"));
    }
    let csv = dir.join("steps.csv");
    audit::write_steps_csv(rollout, &csv)?;
    let activity = dir.join("activity.png");
    plot::activity_traces(rollout, &activity)?;
    let heatmap = dir.join("heatmap.png");
    heatmap::neuron_heatmap(rollout, &heatmap)?;
    heatmap::correlation_table(rollout, &dir.join("correlations.csv"))?;
    rollout
        .save(&dir.join("rollout.json"))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(EpisodeFiles {
        dir: dir.to_path_buf(),
        frames,
        gif,
        mp4,
        csv,
        activity,
        heatmap,
        steps: rollout.steps.len(),
        episode_return: rollout.episode_return(),
        render_seconds,
    })
}

/// The renderer for a policy's panel at the given size.
pub fn renderer_for(
    panel: Option<&NeuronPanel>,
    options: &RecordOptions,
) -> Result<OffscreenRenderer> {
    OffscreenRenderer::new(RenderConfig {
        width: options.width,
        height: options.height,
        panel: panel.map(|p| p.layout().clone()),
    })
    .map_err(|e| anyhow!("{e}"))
}

/// Steps of history the saliency log sums over.
pub const SALIENCY_WINDOW: usize = 8;

/// Whether Ctrl-C or SIGTERM asked to stop ([`crate::interrupt::STOP`]); recording checks it
/// before every frame and episode.
fn stopped() -> bool {
    crate::interrupt::STOP.load(std::sync::atomic::Ordering::SeqCst)
}

/// What the episodes of one [`record_policy`] share.
struct Session<'a> {
    auditor: &'a mut Auditor,
    factory: &'a EnvFactory,
    spec: &'a EnvSpec,
    max_steps: usize,
    options: &'a RecordOptions,
    panel: NeuronPanel,
    renderer: OffscreenRenderer,
}

impl Session<'_> {
    /// Records and writes one episode from `seed` into `dir`.
    fn episode(&mut self, seed: u64, dir: &Path) -> Result<EpisodeFiles> {
        let Session {
            auditor,
            factory,
            spec,
            max_steps,
            options,
            panel,
            renderer,
        } = self;
        let (spec, max_steps, options) = (*spec, *max_steps, *options);
        let env = factory
            .build()
            .with_context(|| format!("cannot build env `{}`", factory.name()))?;
        let rollout =
            audit::record_episode(env, factory.options().clone(), seed, max_steps, auditor)?;
        let inputs = auditor.acted_inputs(&rollout);
        let states = audit::recorded_states(&rollout);
        let policy = auditor.policy();
        let steps = saliency::saliency(policy, &inputs, &states, SALIENCY_WINDOW)?;
        let maps = match (&steps, spec.image) {
            (Some(steps), Some(image)) => Some(saliency::pixel_maps(steps, image)),
            _ => None,
        };
        let sensory = |o: &[f32]| auditor.sensory(o);
        let files = write_episode(
            renderer,
            &rollout,
            Some(&*panel),
            &sensory,
            maps.as_deref(),
            dir,
            options,
        )?;
        if let Some(steps) = &steps {
            saliency::write_saliency_csv(
                steps,
                policy.output_names(),
                &spec.observation_names,
                spec.image,
                &dir.join("saliency.csv"),
            )?;
        }
        if let (Some(maps), Some(image)) = (&maps, spec.image) {
            let observations = acted_observations(&rollout);
            camera::write_mean_saliency(image, &observations, maps, 8, &dir.join("saliency.png"))?;
        }
        if !auditor.attributions().is_empty() {
            let names = auditor.neuron_labels();
            let inputs = auditor.policy().sensory_names(spec);
            audit::write_attribution_csv(
                auditor.attributions(),
                &names,
                &inputs,
                &dir.join("attribution.csv"),
            )?;
            heatmap::attribution_heatmap(
                auditor.attributions(),
                (&names, &auditor.neuron_roles()),
                &inputs,
                &spec.name,
                &dir.join("attribution.png"),
            )?;
        }
        Ok(files)
    }
}

/// Records `seeds.len()` episodes of the env `factory` builds (whose spec is `spec`) with
/// `auditor` into `out/episode_NNN/`. A stop request ([`crate::interrupt::STOP`]) ends it
/// early: the finished episodes are returned and the one in progress is removed.
pub fn record_policy(
    auditor: &mut Auditor,
    factory: &EnvFactory,
    spec: &EnvSpec,
    seeds: &[u64],
    max_steps: usize,
    out: &Path,
    options: &RecordOptions,
) -> Result<Vec<EpisodeFiles>> {
    let panel = NeuronPanel::for_policy(auditor.policy(), spec);
    let renderer = renderer_for(Some(&panel), options)?;
    let mut session = Session {
        auditor,
        factory,
        spec,
        max_steps,
        options,
        panel,
        renderer,
    };
    let mut episodes = Vec::with_capacity(seeds.len());
    for (i, &seed) in seeds.iter().enumerate() {
        if stopped() {
            break;
        }
        let dir = out.join(format!("episode_{i:03}"));
        match session.episode(seed, &dir) {
            Ok(files) => episodes.push(files),
            Err(_) if stopped() => {
                discard(&dir);
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(episodes)
}

/// Removes an episode folder a stop request cut short (a half-written episode is no record).
fn discard(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        tracing::warn!(
            "cannot remove the unfinished episode {}: {e}",
            dir.display()
        );
    }
}

/// Renders a recorded rollout file into `out/episode_000/` (where [`record_policy`] puts its
/// first episode, so the report finds it) without re-simulating: the panel shows the recorded
/// neuron states by name (the file carries no wiring, so no synapses). A stop request
/// ([`crate::interrupt::STOP`]) removes the episode folder and returns an error.
pub fn record_rollout_file(
    path: &Path,
    out: &Path,
    options: &RecordOptions,
) -> Result<EpisodeFiles> {
    let rollout = Rollout::load(path).map_err(|e| anyhow!("{e}"))?;
    let panel = rollout.internal_names.as_ref().map(|names| {
        // The raw observations are the inputs; an image's pixels get no nodes.
        let spec = &rollout.spec;
        let inputs = if spec.image.is_some() {
            Vec::new()
        } else {
            spec.observation_names.clone()
        };
        let roles = rollout.internal_roles.as_deref();
        let types: Vec<_> = (names.iter().enumerate())
            .map(|(k, name)| audit::neuron_role(roles, k, name))
            .collect();
        NeuronPanel::from_names(spec, &inputs, names, &types)
    });
    let mut renderer = renderer_for(panel.as_ref(), options)?;
    let dir = out.join("episode_000");
    let written = write_episode(
        &mut renderer,
        &rollout,
        panel.as_ref(),
        &|o: &[f32]| o.to_vec(),
        None,
        &dir,
        options,
    );
    if written.is_err() && stopped() {
        discard(&dir);
    }
    written
}
