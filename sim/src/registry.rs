//! Name → constructor registry, so configs and the CLI pick envs by name and a new env needs
//! no trainer change.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bevy_env::{BevyEnv, BevyEnvPlugin};
use crate::env::{Env, EnvError};

/// Builds one env from its TOML options. Shared across threads: every VecEnv worker calls it
/// on its own thread, which is how `!Send` envs (Bevy apps) are vectorised.
pub type Constructor = Arc<dyn Fn(&toml::Table) -> Result<Box<dyn Env>, EnvError> + Send + Sync>;

/// Builds K envs that share one Bevy `App` (one world each), for `env.envs_per_app`.
type GroupConstructor =
    Arc<dyn Fn(&toml::Table, usize) -> Result<Vec<Box<dyn Env>>, EnvError> + Send + Sync>;

/// The single and the grouped constructor of a Bevy env, from its plugin's constructor.
fn bevy_constructors<P, F>(plugin: F) -> (Constructor, GroupConstructor)
where
    P: BevyEnvPlugin,
    F: Fn(&toml::Table) -> Result<P, EnvError> + Send + Sync + 'static,
{
    let plugin = Arc::new(plugin);
    let single = Arc::clone(&plugin);
    let constructor: Constructor =
        Arc::new(move |options| Ok(Box::new(BevyEnv::new(single(options)?)) as Box<dyn Env>));
    let group: GroupConstructor = Arc::new(move |options, k| {
        let plugins = (0..k)
            .map(|_| plugin(options))
            .collect::<Result<Vec<P>, EnvError>>()?;
        Ok(BevyEnv::group(plugins)
            .into_iter()
            .map(|env| Box::new(env) as Box<dyn Env>)
            .collect())
    });
    (constructor, group)
}

/// Why a registry lookup or registration failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// No env of that name is registered.
    #[error(
        "unknown env `{name}`; registered envs: {}. An env from another crate is known only to \
         that crate's own `wormnet` binary (see \"Outside this repository\" in envs/README.md)",
        known.join(", ")
    )]
    UnknownEnv {
        /// The requested name.
        name: String,
        /// What is available.
        known: Vec<String>,
    },
    /// A name was registered twice.
    #[error("env `{0}` is already registered")]
    Duplicate(String),
    /// The constructor rejected the options or failed.
    #[error(transparent)]
    Env(#[from] EnvError),
}

struct Entry {
    summary: String,
    constructor: Constructor,
    group: Option<GroupConstructor>,
}

/// The set of envs a program knows by name.
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    /// An empty registry; `wormnet_envs::registry()` returns the populated one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an env under `name` with a one-line summary for `--help`-style listings.
    pub fn register<F>(
        &mut self,
        name: &str,
        summary: &str,
        constructor: F,
    ) -> Result<(), RegistryError>
    where
        F: Fn(&toml::Table) -> Result<Box<dyn Env>, EnvError> + Send + Sync + 'static,
    {
        self.insert(name, summary, Arc::new(constructor), None)
    }

    /// Adds a Bevy env under `name` from its plugin's constructor, so that K of its envs can
    /// share one `App` (`env.envs_per_app`; see [`BevyEnv::group`]).
    pub fn register_bevy<P, F>(
        &mut self,
        name: &str,
        summary: &str,
        plugin: F,
    ) -> Result<(), RegistryError>
    where
        P: BevyEnvPlugin,
        F: Fn(&toml::Table) -> Result<P, EnvError> + Send + Sync + 'static,
    {
        let (constructor, group) = bevy_constructors(plugin);
        self.insert(name, summary, constructor, Some(group))
    }

    fn insert(
        &mut self,
        name: &str,
        summary: &str,
        constructor: Constructor,
        group: Option<GroupConstructor>,
    ) -> Result<(), RegistryError> {
        if self.entries.contains_key(name) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                summary: summary.to_string(),
                constructor,
                group,
            },
        );
        Ok(())
    }

    /// Registered names in sorted order.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// The summary given at registration, if the name exists.
    pub fn summary(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(|e| e.summary.as_str())
    }

    /// A `Send` recipe for building `name` with `options` on any thread (what VecEnv takes).
    /// Only the name is checked here; options are checked when the env is built.
    pub fn factory(&self, name: &str, options: toml::Table) -> Result<EnvFactory, RegistryError> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| RegistryError::UnknownEnv {
                name: name.to_string(),
                known: self.names(),
            })?;
        Ok(EnvFactory {
            name: name.to_string(),
            options,
            constructor: entry.constructor.clone(),
            group: entry.group.clone(),
        })
    }

    /// Builds one env on the calling thread (for single-env tools: watch, record, tests).
    pub fn make(&self, name: &str, options: &toml::Table) -> Result<Box<dyn Env>, RegistryError> {
        Ok(self.factory(name, options.clone())?.build()?)
    }
}

/// A registered constructor bound to its options: cloneable and `Send`, so each worker thread
/// builds its own envs.
#[derive(Clone)]
pub struct EnvFactory {
    name: String,
    options: toml::Table,
    constructor: Constructor,
    group: Option<GroupConstructor>,
}

impl EnvFactory {
    /// A factory from a constructor directly, for envs that live outside any registry (tests).
    pub fn new<F>(name: &str, options: toml::Table, constructor: F) -> Self
    where
        F: Fn(&toml::Table) -> Result<Box<dyn Env>, EnvError> + Send + Sync + 'static,
    {
        EnvFactory {
            name: name.to_string(),
            options,
            constructor: Arc::new(constructor),
            group: None,
        }
    }

    /// The registry name this factory builds.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options every built env receives.
    pub fn options(&self) -> &toml::Table {
        &self.options
    }

    /// Builds one env on the calling thread and validates its spec.
    pub fn build(&self) -> Result<Box<dyn Env>, EnvError> {
        let env = (self.constructor)(&self.options)?;
        env.spec().validate()?;
        Ok(env)
    }

    /// Builds `k` envs on the calling thread. Envs of a Bevy env registered with
    /// [`Registry::register_bevy`] share one `App`, one world each; any other env is built `k`
    /// times. Either way each env gives the episodes it would give alone, bit for bit.
    pub fn build_group(&self, k: usize) -> Result<Vec<Box<dyn Env>>, EnvError> {
        let envs = match &self.group {
            Some(group) if k > 1 => group(&self.options, k)?,
            _ => (0..k)
                .map(|_| (self.constructor)(&self.options))
                .collect::<Result<Vec<_>, _>>()?,
        };
        for env in &envs {
            env.spec().validate()?;
        }
        Ok(envs)
    }

    /// Whether the env is a Bevy env whose envs [`EnvFactory::build_group`] can put in one `App`.
    pub fn shares_apps(&self) -> bool {
        self.group.is_some()
    }
}

impl std::fmt::Debug for EnvFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvFactory")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}
