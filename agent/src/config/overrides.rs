//! `--set KEY=VALUE` overrides: a dotted key into a config's TOML and the value to put there,
//! applied before the config is read so that a bad key or value is named like one in the file.

/// One `--set KEY=VALUE`: a dotted key into the config (`ppo.learning_rate`,
/// `policy.actor.cell`) and a TOML value (`1e-3`, `true`, `[64, 64]`; a bare word is a string).
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// The dotted path, split at the dots.
    pub key: Vec<String>,
    /// The value to put there.
    pub value: toml::Value,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not KEY=VALUE (e.g. ppo.learning_rate=1e-3)"))?;
        let value = value.trim();
        let value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t
                .remove("v")
                .unwrap_or(toml::Value::String(value.to_string())),
            // A bare word is a string, but a number TOML cannot hold is not a word.
            Err(_) if looks_numeric(value) => {
                return Err(format!(
                    "`{s}`: {value} is not a number wormnet can hold (integers fit in 64 bits)"
                ))
            }
            Err(_) => toml::Value::String(value.to_string()),
        };
        Override::new(key.trim(), value).map_err(|e| format!("`{s}`: {e}"))
    }
}

/// Whether `text` is an integer too big for TOML's 64 bits (a bare word like `007` that TOML
/// refuses for its leading zero stays a string).
fn looks_numeric(text: &str) -> bool {
    let digits = text
        .strip_prefix(['+', '-'])
        .unwrap_or(text)
        .replace('_', "");
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && text.replace('_', "").parse::<i64>().is_err()
}

impl Override {
    /// The override of dotted `key` (`ppo.epochs`) with `value`; an empty part is an error.
    pub fn new(key: &str, value: toml::Value) -> Result<Self, String> {
        let key: Vec<String> = key.split('.').map(str::to_string).collect();
        if key.iter().any(String::is_empty) {
            return Err("the key must be dotted names, e.g. ppo.epochs".into());
        }
        Ok(Override { key, value })
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key.join("."), self.value)
    }
}

impl Override {
    /// Puts the value at the key, creating tables on the way; a key through a non-table is
    /// an error naming it.
    pub fn apply(&self, table: &mut toml::Table) -> Result<(), String> {
        let Some((last, parents)) = self.key.split_last() else {
            return Err("--set: an empty key".into());
        };
        let mut at = table;
        for (i, part) in parents.iter().enumerate() {
            let entry = at
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            at = entry.as_table_mut().ok_or_else(|| {
                format!(
                    "--set {self}: `{}` is a value, not a table",
                    self.key[..=i].join(".")
                )
            })?;
        }
        at.insert(last.clone(), self.value.clone());
        Ok(())
    }

    /// Whether a deserialisation message is about this override's key.
    pub(super) fn is_named_in(&self, message: &str) -> bool {
        let last = self.key.last().map_or("", String::as_str);
        (!last.is_empty() && message.contains(&format!("`{last}`")))
            || message.contains(&self.key.join("."))
    }

    /// The value as a `--set` argument writes it (strings bare).
    pub fn value_arg(&self) -> String {
        match &self.value {
            toml::Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}
