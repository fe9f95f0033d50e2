//! What a camera policy sees, for the audit: the image part of an observation as a picture
//! for the renderer's inset, tinted red where the pixel saliency says the action came from,
//! and the episode's mean saliency over its mean view as a PNG.

use std::path::Path;

use anyhow::{Context, Result};
use wormnet_sim::frame::Rgba;
use wormnet_sim::render::Inset;
use wormnet_sim::ImageShape;

/// Share of the pixel's colour given to red where the saliency is at its frame's maximum.
const TINT: f32 = 0.85;

/// The image at the start of `obs` as an inset (grey for one channel, RGB for three, the first
/// channel otherwise), tinted by `saliency` (one value per pixel, scaled by its maximum).
pub fn inset(image: ImageShape, obs: &[f32], saliency: Option<&[f32]>) -> Inset {
    let plane = image.height * image.width;
    let value = |c: usize, k: usize| -> f32 { obs.get(c * plane + k).copied().unwrap_or(0.0) };
    let peak = saliency
        .map(|s| s.iter().fold(0.0f32, |m, &v| m.max(v)))
        .filter(|&m| m > 0.0);
    let pixels = (0..plane)
        .map(|k| {
            let rgb = if image.channels == 3 {
                [value(0, k), value(1, k), value(2, k)]
            } else {
                [value(0, k); 3]
            };
            let mut rgb = rgb.map(|v| v.clamp(0.0, 1.0));
            if let (Some(s), Some(peak)) = (saliency, peak) {
                let w = TINT * (s.get(k).copied().unwrap_or(0.0) / peak).clamp(0.0, 1.0);
                rgb = [
                    rgb[0] * (1.0 - w) + w,
                    rgb[1] * (1.0 - w),
                    rgb[2] * (1.0 - w),
                ];
            }
            let [r, g, b] = rgb.map(|v| (v * 255.0).round() as u8);
            Rgba::rgb(r, g, b)
        })
        .collect();
    Inset {
        width: image.width,
        height: image.height,
        pixels,
    }
}

/// Writes the episode's mean view tinted by its mean pixel saliency, each pixel drawn as a
/// `scale × scale` block: where, over the whole episode, the steering looked.
pub fn write_mean_saliency(
    image: ImageShape,
    observations: &[&[f32]],
    maps: &[Vec<f32>],
    scale: u32,
    path: &Path,
) -> Result<()> {
    let plane = image.height * image.width;
    let mut mean_obs = vec![0.0f32; image.len()];
    for obs in observations {
        for (m, v) in mean_obs.iter_mut().zip(obs.iter()) {
            *m += v / observations.len().max(1) as f32;
        }
    }
    let mut mean_map = vec![0.0f32; plane];
    for map in maps {
        // Each step's map scaled to its own maximum, so every step counts alike.
        let peak = map.iter().fold(0.0f32, |m, &v| m.max(v));
        if peak > 0.0 {
            for (m, v) in mean_map.iter_mut().zip(map) {
                *m += v / peak / maps.len() as f32;
            }
        }
    }
    let picture = inset(image, &mean_obs, Some(&mean_map));
    let (w, h) = (image.width as u32 * scale, image.height as u32 * scale);
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        let k = (y / scale) as usize * image.width + (x / scale) as usize;
        image::Rgba(picture.pixels[k].0)
    });
    img.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}
