//! `--option key=value`: env options given on the command line, laid over a config's.

use anyhow::{Context, Result};

/// Parses each `key=value` as TOML and lays them over `base`, in order.
pub fn apply(base: &mut toml::Table, options: &[String]) -> Result<()> {
    for option in options {
        let table: toml::Table = toml::from_str(option)
            .with_context(|| format!("--option `{option}` is not TOML `key = value`"))?;
        base.extend(table);
    }
    Ok(())
}
