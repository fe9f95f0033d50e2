//! Looking inside a policy: the per-step audit log, the neuron panel drawn beside the scene,
//! plots of runs and episodes, the neuron heatmap and correlation table of an episode, gradient
//! saliency (down to the pixels of a camera), neuron knockouts (ablation), the HTML report of a recording, and (with the
//! `render` feature) offscreen recording and the live window.

pub mod ablation;
pub mod audit;
#[cfg(feature = "render")]
pub mod camera;
pub mod folder;
pub mod heatmap;
pub mod panel;
pub mod plot;
#[cfg(feature = "render")]
pub mod record;
pub mod report;
pub mod saliency;
#[cfg(feature = "render")]
pub mod watch;

#[cfg(test)]
mod tests {
    use tch::Device;
    use wormnet_sim::EnvSpec;

    use crate::policy::{Policy, PolicyConfig};

    /// A small untrained LTC policy for cartpole, the same every call.
    pub(crate) fn cartpole_policy() -> (Policy, EnvSpec) {
        let env = wormnet_envs::registry()
            .make("cartpole", &toml::Table::new())
            .expect("cartpole");
        let spec = env.spec().clone();
        let config: PolicyConfig = toml::from_str(
            r#"
            [actor]
            cell = "ltc"
            wiring = { kind = "auto_ncp", units = 8, output_size = 2, seed = 3 }
            "#,
        )
        .expect("config");
        tch::manual_seed(0);
        (
            Policy::new(&spec, &config, Device::Cpu).expect("policy"),
            spec,
        )
    }
}
