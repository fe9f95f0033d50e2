//! A sidecar is input like any file a user can edit: before anything is built from it, every
//! field is checked against the others — the config as a config file is checked, the env spec
//! as an env's, the normalisers' lengths against the spec and the run, every number for range —
//! so a tampered or foreign sidecar is an error naming the field, never a panic or a policy
//! that runs silently with a wrong normaliser.

use std::path::Path;

use super::sidecar::{Sidecar, FORMAT};
use crate::config::limits::MAX_WIDTH;
use crate::policy::{ObsNormalizer, RewardScaler, RunningMeanStd};

/// Observation components a sidecar may describe (a 512×512 RGB image and then some).
const MAX_OBS_DIM: usize = 1 << 20;

/// The first field of `sidecar` (read from `path`) that cannot be used, as a one-line message
/// naming the file and the field.
pub fn check(sidecar: &Sidecar, path: &Path) -> anyhow::Result<()> {
    let at = |field: &str, message: String| {
        anyhow::anyhow!("checkpoint {}: {field}: {message}", path.display())
    };
    if sidecar.format != FORMAT {
        return Err(at(
            "format",
            format!(
                "checkpoint format {} is not the supported {FORMAT} (written by another \
                 wormnet version?)",
                sidecar.format
            ),
        ));
    }
    check_tensors_name(&sidecar.tensors).map_err(|m| at("tensors", m))?;
    // The config inside is checked exactly as a config file.
    sidecar.config.validate(path)?;
    let spec = &sidecar.env_spec;
    spec.validate().map_err(|e| at("env_spec", e.to_string()))?;
    if spec.obs_dim() > MAX_OBS_DIM || spec.action_dim() > MAX_WIDTH {
        return Err(at(
            "env_spec",
            format!(
                "{} observation and {} action components; at most {MAX_OBS_DIM} and {MAX_WIDTH}",
                spec.obs_dim(),
                spec.action_dim()
            ),
        ));
    }
    if spec.name != sidecar.config.env.name {
        return Err(at(
            "env_spec.name",
            format!(
                "`{}` differs from the config's env.name `{}`",
                spec.name, sidecar.config.env.name
            ),
        ));
    }
    if let Some(norm) = &sidecar.obs_norm {
        check_obs_norm(norm, spec.obs_dim()).map_err(|m| at("obs_norm", m))?;
    }
    if let Some(scaler) = &sidecar.reward_scaler {
        check_reward_scaler(scaler, sidecar.config.env.num_envs)
            .map_err(|m| at("reward_scaler", m))?;
    }
    check_counters(sidecar).map_err(|(field, m)| at(field, m))
}

/// The tensors file must lie beside the sidecar: a bare file name, nothing that climbs out.
fn check_tensors_name(name: &str) -> Result<(), String> {
    let plain = Path::new(name).file_name().is_some_and(|f| f == name);
    if plain && name.ends_with(".safetensors") && !name.contains(['/', '\\']) {
        Ok(())
    } else {
        Err(format!(
            "must name a .safetensors file beside the sidecar, got {name:?}"
        ))
    }
}

fn check_obs_norm(norm: &ObsNormalizer, obs_dim: usize) -> Result<(), String> {
    check_stats(&norm.stats, obs_dim, "the env's observation")?;
    if !(norm.clip > 0.0 && norm.clip.is_finite()) {
        return Err(format!("clip must be > 0 and finite, got {}", norm.clip));
    }
    positive_epsilon(norm.epsilon)
}

fn check_reward_scaler(scaler: &RewardScaler, num_envs: usize) -> Result<(), String> {
    check_stats(&scaler.stats, 1, "a return")?;
    if scaler.returns.len() != num_envs {
        return Err(format!(
            "returns has {} entries for env.num_envs = {num_envs}",
            scaler.returns.len()
        ));
    }
    if scaler.returns.iter().any(|r| !r.is_finite()) {
        return Err("returns holds NaN or infinite values".into());
    }
    if !(0.0..=1.0).contains(&scaler.gamma) {
        return Err(format!("gamma must lie in [0, 1], got {}", scaler.gamma));
    }
    if !(scaler.clip > 0.0 && scaler.clip.is_finite()) {
        return Err(format!("clip must be > 0 and finite, got {}", scaler.clip));
    }
    positive_epsilon(scaler.epsilon)
}

fn check_stats(stats: &RunningMeanStd, dim: usize, what: &str) -> Result<(), String> {
    if stats.mean.len() != dim || stats.var.len() != dim {
        return Err(format!(
            "mean and var have {} and {} entries; {what} has {dim} components",
            stats.mean.len(),
            stats.var.len()
        ));
    }
    if stats.mean.iter().any(|m| !m.is_finite()) {
        return Err("mean holds NaN or infinite values".into());
    }
    if let Some(v) = stats.var.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
        return Err(format!("every variance must be >= 0 and finite, got {v}"));
    }
    if !(stats.count > 0.0 && stats.count.is_finite()) {
        return Err(format!("count must be > 0 and finite, got {}", stats.count));
    }
    Ok(())
}

fn positive_epsilon(epsilon: f64) -> Result<(), String> {
    if epsilon > 0.0 && epsilon.is_finite() {
        Ok(())
    } else {
        Err(format!("epsilon must be > 0 and finite, got {epsilon}"))
    }
}

fn check_counters(s: &Sidecar) -> Result<(), (&'static str, String)> {
    if !(s.wall_seconds >= 0.0 && s.wall_seconds.is_finite()) {
        return Err((
            "wall_seconds",
            format!("must be >= 0 and finite, got {}", s.wall_seconds),
        ));
    }
    if s.adam_step < 0 {
        return Err(("adam_step", format!("must be >= 0, got {}", s.adam_step)));
    }
    if let Some(best) = s.best_eval.filter(|b| !b.is_finite()) {
        return Err(("best_eval", format!("must be finite, got {best}")));
    }
    if let Some(e) = &s.eval {
        let rate_ok = e.success_rate.is_none_or(|r| (0.0..=1.0).contains(&r));
        let finite = [e.mean_return, e.std_return, e.mean_length]
            .iter()
            .all(|v| v.is_finite());
        if !rate_ok || !finite || e.std_return < 0.0 || e.episodes == 0 {
            return Err((
                "eval",
                "needs finite returns and lengths, std >= 0, a success rate in [0, 1] and at \
                 least one episode"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensors_must_lie_beside_the_sidecar() {
        assert!(check_tensors_name("latest-000010.safetensors").is_ok());
        for bad in [
            "../x.safetensors",
            "/etc/x.safetensors",
            "a/b.safetensors",
            "latest.json",
            "",
        ] {
            assert!(check_tensors_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normaliser_stats_are_checked_for_length_and_range() {
        let mut norm = ObsNormalizer::new(4, 10.0);
        assert!(check_obs_norm(&norm, 4).is_ok());
        assert!(check_obs_norm(&norm, 1)
            .unwrap_err()
            .contains("1 components"));
        norm.clip = -1.0;
        assert!(check_obs_norm(&norm, 4).unwrap_err().contains("clip"));
        let mut norm = ObsNormalizer::new(4, 10.0);
        norm.stats.var[2] = -0.5;
        assert!(check_obs_norm(&norm, 4).unwrap_err().contains("variance"));
        let norm = ObsNormalizer::new(1, 10.0);
        let err = check_obs_norm(&norm, 4).unwrap_err();
        assert!(err.contains("4 components"), "{err}");
    }
}
