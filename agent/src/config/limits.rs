//! Upper bounds on every config value that sizes an allocation or a loop, so that a typo
//! (`num_envs = 100000000`, `critic.hidden = [100000, 100000]`, `eval_episodes = 1e12`) is an
//! error naming the field instead of an aborted process or a run that never ends. The bounds
//! lie far beyond any use: they only catch the absurd.

use std::path::Component;

use wormnet_ncp::{NcpConfig, WiringConfig};

use crate::policy::EncoderConfig;

/// Parallel envs of one run (weak scaling to thousands of envs stays well inside).
pub const MAX_ENVS: usize = 65_536;
/// Threads of any kind (env workers, libtorch's intra-op threads).
pub const MAX_THREADS: usize = 1_024;
/// Environment steps of one run.
pub const MAX_TOTAL_STEPS: u64 = 1_000_000_000_000;
/// Episodes of one evaluation.
pub const MAX_EVAL_EPISODES: usize = 100_000;
/// Width of any layer: neurons of a wiring, LSTM/MLP units, critic layers, conv channels.
pub const MAX_WIDTH: usize = 4_096;
/// Layers of any stack (critic, CfC backbone, conv encoder).
pub const MAX_LAYERS: usize = 16;
/// Transitions one rollout holds (`num_envs × steps_per_rollout`).
pub const MAX_ROLLOUT: usize = 1 << 24;

/// The largest magnitude of any float setting outside the env's options (which the env
/// bounds itself): rates, coefficients, clips and timespans live far below it.
pub const MAX_MAGNITUDE: f64 = 1e6;

/// The first float in `value` (a config section serialised, at dotted `key`) that is not
/// finite or exceeds [`MAX_MAGNITUDE`].
pub fn check_floats(value: &toml::Value, key: &str) -> Result<(), (String, String)> {
    match value {
        toml::Value::Float(x) if !(x.is_finite() && x.abs() <= MAX_MAGNITUDE) => Err((
            key.to_string(),
            format!("must be finite and at most {MAX_MAGNITUDE:e} in magnitude, got {x}"),
        )),
        toml::Value::Array(items) => items.iter().try_for_each(|v| check_floats(v, key)),
        toml::Value::Table(table) => table.iter().try_for_each(|(k, v)| {
            let key = if key.is_empty() {
                k.clone()
            } else {
                format!("{key}.{k}")
            };
            check_floats(v, &key)
        }),
        _ => Ok(()),
    }
}

/// A run name is one plain directory name under `runs/`: never a path that leads elsewhere.
pub fn check_run_name(name: &str) -> Result<(), String> {
    let mut parts = std::path::Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) if !name.contains(['/', '\\']) => Ok(()),
        _ => Err(format!(
            "must be one directory name under runs/ (no `/`, `..` or absolute path), got {name:?}; \
             use --run-dir to put a run elsewhere"
        )),
    }
}

/// The first `(field, value, most)` whose value is past its most.
pub fn counts(values: &[(&str, usize, usize)]) -> Result<(), (String, String)> {
    for &(field, value, most) in values {
        if value > most {
            return Err(at_most(field, most as u64, value as u64));
        }
    }
    Ok(())
}

/// The error of a value past its bound.
pub fn at_most(field: &str, most: u64, value: u64) -> (String, String) {
    (
        field.to_string(),
        format!("must be at most {most}, got {value}"),
    )
}

/// Layer widths (`[64, 64]`): at most [`MAX_LAYERS`] of them, each in `1..=MAX_WIDTH`.
pub fn check_stack(field: &str, widths: &[usize]) -> Result<(), (String, String)> {
    if widths.len() > MAX_LAYERS {
        return Err((
            field.to_string(),
            format!("at most {MAX_LAYERS} layers, got {}", widths.len()),
        ));
    }
    for &w in widths {
        if !(1..=MAX_WIDTH).contains(&w) {
            return Err((
                field.to_string(),
                format!("every entry must be between 1 and {MAX_WIDTH}, got {w}"),
            ));
        }
    }
    Ok(())
}

/// A conv encoder's stacks and feature count.
pub fn check_encoder(encoder: &EncoderConfig) -> Result<(), (String, String)> {
    let EncoderConfig::Conv {
        channels,
        kernels,
        strides,
        features,
    } = encoder;
    check_stack("policy.encoder.channels", channels)?;
    check_stack("policy.encoder.kernels", kernels)?;
    check_stack("policy.encoder.strides", strides)?;
    counts(&[("policy.encoder.features", *features, MAX_WIDTH)])
}

/// An NCP, LSTM, GRU or MLP config: widths, depth, unfolds and wiring size bounded.
pub fn check_ncp(field: &str, ncp: &NcpConfig) -> Result<(), (String, String)> {
    let sub = |name: &str| format!("{field}.{name}");
    let widths = [
        ("units", ncp.units),
        ("backbone_units", ncp.backbone_units),
        ("proj_size", ncp.proj_size),
    ];
    for (name, value) in widths {
        if let Some(v) = value.filter(|&v| v > MAX_WIDTH) {
            return Err(at_most(&sub(name), MAX_WIDTH as u64, v as u64));
        }
    }
    if let Some(layers) = ncp.backbone_layers.filter(|&l| l > MAX_LAYERS) {
        return Err(at_most(
            &sub("backbone_layers"),
            MAX_LAYERS as u64,
            layers as u64,
        ));
    }
    if ncp.ode_unfolds > 1_000 {
        return Err(at_most(&sub("ode_unfolds"), 1_000, ncp.ode_unfolds as u64));
    }
    let neurons = ncp
        .wiring
        .as_ref()
        .and_then(WiringConfig::neurons)
        .unwrap_or(0);
    if neurons > MAX_WIDTH {
        return Err((
            sub("wiring"),
            format!("at most {MAX_WIDTH} neurons, got {neurons}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_names_stay_under_runs() {
        for good in ["cartpole-s1", "a.b", "x_y"] {
            assert!(check_run_name(good).is_ok(), "{good}");
        }
        for bad in ["../../x", "/tmp/x", "a/b", "..", ".", "", "a\\b"] {
            assert!(check_run_name(bad).is_err(), "{bad}");
        }
    }
}
