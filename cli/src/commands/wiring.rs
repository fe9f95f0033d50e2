//! `wormnet wiring`: draws the wiring of an experiment config (its actor NCP, labelled with the
//! env's observation and action names), of a wiring config (`kind = "auto_ncp"` …) or of a
//! wiring file, as SVG or PNG.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use wormnet_ncp::wiring::picture::{self, PictureOptions};
use wormnet_ncp::{NcpConfig, Wiring, WiringConfig};
use wormnet_sim::Registry;

/// The most sensory inputs a drawn wiring may have (a camera's pixels fit).
const MAX_INPUTS: usize = 1 << 16;

/// Arguments of `wormnet wiring`.
#[derive(Args)]
pub struct WiringArgs {
    /// An experiment config (draws `[policy.actor]`), a wiring config (`kind = …`) or a wiring
    /// file (JSON or TOML synapse lists).
    pub input: PathBuf,
    /// Output picture: `.svg` or `.png`.
    #[arg(long, default_value = "wiring.svg")]
    pub out: PathBuf,
    /// Number of inputs (sensory neurons). Default: the env's observation size for an
    /// experiment config, the file's own for a wiring file.
    #[arg(long)]
    pub inputs: Option<usize>,
    /// Write neuron names beside the neurons (SVG); always on for a circuit with its own names.
    #[arg(long)]
    pub labels: bool,
    /// Also write the built wiring as a wiring file (`.json` or `.toml`), loadable as
    /// `wiring = { kind = "file", path = … }`.
    #[arg(long)]
    pub save: Option<PathBuf>,
}

/// Runs `wormnet wiring`.
pub fn run(args: WiringArgs, registry: &Registry) -> Result<()> {
    let path = &args.input;
    if path.extension().is_some_and(|e| e == "bnn") {
        bail!(
            "{}: a .bnn file names no neurons; draw it through a wiring config of kind \"bnn\" \
             that names them (docs/config.md#wiring-files)",
            path.display()
        );
    }
    let value = read_value(path)?;
    let mut options = PictureOptions {
        labels: args.labels,
        title: Some(path.display().to_string()),
        ..Default::default()
    };
    if let Some(n) = args.inputs.filter(|n| !(1..=MAX_INPUTS).contains(n)) {
        bail!("--inputs must be between 1 and {MAX_INPUTS}, got {n}");
    }
    let mut inputs = args.inputs;
    let mut wiring = if let Some(policy) = value.get("policy") {
        let (wiring, built_inputs) =
            experiment_wiring(policy, &value, path, registry, &mut options)?;
        inputs = built_inputs.or(inputs);
        wiring
    } else if value.get("kind").is_some() {
        let cfg: WiringConfig = value
            .try_into()
            .with_context(|| format!("{}: invalid wiring config", path.display()))?;
        Wiring::from_config(&cfg)?
    } else {
        Wiring::load(path)?
    };
    size_inputs(&mut wiring, inputs, path)?;
    // A circuit's own names (AVA, FWD) are what it is read by: drawn without being asked.
    options.labels |= wiring.has_own_names();
    picture::write(&wiring, &options, &args.out)?;
    println!(
        "{}: {} neurons, {} synapses{}, {} sensory synapses -> {}",
        path.display(),
        wiring.units(),
        wiring.synapse_count(),
        match wiring.gap_junction_count() {
            0 => String::new(),
            g => format!(", {g} gap junctions"),
        },
        wiring.sensory_synapse_count(),
        args.out.display()
    );
    if let Some(save) = &args.save {
        wiring.save(save)?;
        println!("wiring written to {}", save.display());
    }
    Ok(())
}

/// The file as a TOML value: JSON for a `.json` file, TOML otherwise.
fn read_value(path: &Path) -> Result<toml::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: toml::Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?
    } else {
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?
    };
    Ok(value)
}

/// Builds an unbuilt wiring for `inputs` sensory neurons, and refuses a built one whose input
/// count differs (or an unbuilt one with no count given).
fn size_inputs(wiring: &mut Wiring, inputs: Option<usize>, path: &Path) -> Result<()> {
    match (wiring.input_dim(), inputs) {
        (None, Some(s)) => wiring.build(s)?,
        (Some(d), Some(s)) if d != s => {
            bail!(
                "{}: the wiring has {d} inputs, --inputs says {s}",
                path.display()
            )
        }
        (None, None) => bail!(
            "{}: how many inputs? pass --inputs N to build the wiring",
            path.display()
        ),
        _ => {}
    }
    Ok(())
}

fn env_spec(env: &toml::Value, registry: &Registry) -> Result<wormnet_sim::EnvSpec> {
    let name = env
        .get("name")
        .and_then(|n| n.as_str())
        .context("[env] has no name")?;
    let options = match env.get("options") {
        Some(toml::Value::Table(t)) => t.clone(),
        Some(_) => bail!("[env.options] must be a table"),
        None => toml::Table::new(),
    };
    let env = registry.make(name, &options)?;
    Ok(env.spec().clone())
}

/// The actor's wiring of an experiment config, built as the policy builds it when the config
/// names an env (sensor pairs feed their own neurons); with its input count where it was
/// built. The env's action and input names go into `options`.
fn experiment_wiring(
    policy: &toml::Value,
    value: &toml::Value,
    path: &Path,
    registry: &Registry,
    options: &mut PictureOptions,
) -> Result<(Wiring, Option<usize>)> {
    let actor = policy
        .get("actor")
        .with_context(|| format!("{}: no [policy.actor] section", path.display()))?;
    let actor: NcpConfig = actor
        .clone()
        .try_into()
        .with_context(|| format!("{}: [policy.actor] is invalid", path.display()))?;
    let Some(wiring) = actor
        .wiring()
        .with_context(|| format!("{}: [policy.actor]", path.display()))?
    else {
        bail!(
            "{}: the actor is a dense CfC (no wiring to draw)",
            path.display()
        );
    };
    if let Some(env) = value.get("env") {
        let spec = env_spec(env, registry).with_context(|| {
            format!(
                "{}: cannot build the [env] to size the inputs",
                path.display()
            )
        })?;
        options.motor_names = spec.action_names.clone();
        // Built as the policy builds it (sensor pairs feed their own neurons).
        let built = actor.built_wiring(spec.obs_dim(), &spec.observation_names);
        let built = built.with_context(|| format!("{}: [policy.actor]", path.display()))?;
        if let Some((built, names)) = built {
            options.sensory_names = names;
            let inputs = built.input_dim();
            return Ok((built, inputs));
        }
    }
    Ok((wiring, None))
}
