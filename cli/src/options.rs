//! `--option key=value`: env options given on the command line, laid over a config's, and the
//! check that they leave the spaces the policy was trained on.

use anyhow::{bail, Context, Result};
use wormnet_agent::checkpoint::LoadedPolicy;
use wormnet_agent::config::Override;
use wormnet_sim::{EnvFactory, EnvSpec, Registry};

/// Parses each `key=value` (a TOML value; a bare word is a string, as with `--set`) and lays
/// them over `base`, in order.
pub fn apply(base: &mut toml::Table, options: &[String]) -> Result<()> {
    for option in options {
        let o: Override = option
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--option {e}"))?;
        o.apply(base).map_err(|e| anyhow::anyhow!("--option {e}"))?;
    }
    Ok(())
}

/// Fails, naming the `--option`s, when the env built for evaluation observes or acts in
/// other spaces than the one the policy was trained on.
pub fn check_spaces(factory: &EnvFactory, trained: &EnvSpec, options: &[String]) -> Result<()> {
    let env = factory
        .build()
        .with_context(|| format!("cannot build env `{}`", factory.name()))?;
    let spec = env.spec();
    let given = if options.is_empty() {
        "the run's evaluation options".to_string()
    } else {
        format!("--option {}", options.join(" --option "))
    };
    for (what, now, then) in [
        (
            "observation",
            &spec.observation_space,
            &trained.observation_space,
        ),
        ("action", &spec.action_space, &trained.action_space),
    ] {
        if now.dim() != then.dim() {
            bail!(
                "{given} changes env `{}`'s {what} space to {} values; the policy was trained \
                 on {} (drop the option, or evaluate a policy trained with it)",
                factory.name(),
                now.dim(),
                then.dim()
            );
        }
    }
    Ok(())
}

/// The evaluation envs of a loaded policy: its run's evaluation options with the `--option`s
/// laid over them, refused when they change the spaces the policy was trained on. Returns the
/// factory and the options it builds envs with.
pub fn eval_envs(
    registry: &Registry,
    loaded: &LoadedPolicy,
    options: &[String],
) -> Result<(EnvFactory, toml::Table)> {
    let config = &loaded.sidecar.config;
    let mut env_options = config.eval_env_options();
    apply(&mut env_options, options)?;
    let factory = registry
        .factory(&config.env.name, env_options.clone())
        .with_context(|| format!("{}: its [env] section", loaded.path.display()))?;
    check_spaces(&factory, &loaded.sidecar.env_spec, options)?;
    Ok((factory, env_options))
}
