//! The config reference (`docs/config.md`) against the config structs: every field a config
//! file may hold has a row on the page, and every row names a field that exists — so the page
//! cannot drift from the code.
//!
//! The fields are not listed here by hand: each table of the config is probed with a key no
//! struct has, and serde's `deny_unknown_fields` error ("unknown field `…`, expected one of
//! `a`, `b`, …") names every field the struct accepts, optional ones included. Tagged enums
//! (`policy.actor.wiring`, `policy.encoder`) are probed for their kinds the same way, then
//! each kind for its fields.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use wormnet_agent::config::{Override, TrainConfig};

/// A key no config struct has.
const PROBE: &str = "__docs_probe__";

/// Config tables that are structs: their fields are probed and each needs a row (or, if it is
/// itself listed here or in [`TAGGED`], its own fields do).
const STRUCTS: &[&str] = &[
    "",
    "env",
    "policy",
    "policy.actor",
    "policy.critic",
    "ppo",
    "run",
    "imitation",
    "search",
];

/// Config tables that are enums tagged by `kind`: `P.kind` and every kind's fields need a row.
const TAGGED: &[&str] = &["policy.actor.wiring", "policy.encoder"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The base config every probe is laid over (a valid one, so only the probe can fail).
fn base() -> String {
    let path = root().join("configs/cartpole.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The names serde lists after "expected" in the error the override causes (`one of `a`,
/// `b``, `` `a` or `b` ``, `` `a` ``).
fn expected_names(overrides: &[Override]) -> Vec<String> {
    let err = match TrainConfig::parse_with(&base(), Path::new("cartpole.toml"), overrides) {
        Ok(_) => panic!("the probe {overrides:?} was accepted"),
        Err(e) => e.to_string(),
    };
    let at = err
        .find("expected")
        .unwrap_or_else(|| panic!("no `expected` list in: {err}"));
    let mut rest = err[at + "expected".len()..].trim_start();
    rest = rest.strip_prefix("one of").unwrap_or(rest).trim_start();
    let mut names = Vec::new();
    while let Some(after) = rest.strip_prefix('`') {
        let end = after.find('`').expect("a closing backtick");
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
        match [", ", " or "]
            .iter()
            .find_map(|sep| rest.strip_prefix(*sep))
        {
            Some(next) => rest = next,
            None => break,
        }
    }
    assert!(!names.is_empty(), "no names parsed from: {err}");
    names
}

fn probe_struct(path: &str) -> Vec<String> {
    let key = join(path, PROBE);
    expected_names(&[Override::new(&key, toml::Value::Integer(0)).unwrap()])
}

fn probe_kind(path: &str, kind: &str, extra: bool) -> Vec<String> {
    let mut table = toml::Table::new();
    table.insert("kind".into(), toml::Value::String(kind.into()));
    if extra {
        table.insert(PROBE.into(), toml::Value::Integer(0));
    }
    expected_names(&[Override::new(path, toml::Value::Table(table)).unwrap()])
}

/// Every dotted key a config may hold, and every kind name of the tagged tables.
fn config_keys() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut keys = BTreeSet::new();
    for path in STRUCTS {
        for field in probe_struct(path) {
            let key = join(path, &field);
            if !STRUCTS.contains(&key.as_str()) && !TAGGED.contains(&key.as_str()) {
                keys.insert(key);
            }
        }
    }
    let mut kinds = BTreeSet::new();
    for path in TAGGED {
        keys.insert(format!("{path}.kind"));
        for kind in probe_kind(path, PROBE, false) {
            for field in probe_kind(path, &kind, true) {
                keys.insert(format!("{path}.{field}"));
            }
            kinds.insert(kind);
        }
    }
    (keys, kinds)
}

/// The page, and the keys in the first column of its tables (`| `run.seed` | …`).
fn documented() -> (String, BTreeSet<String>) {
    let path = root().join("docs/config.md");
    let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let keys = page
        .lines()
        .filter_map(|line| line.trim().strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_string())
        .filter(|key| key.contains('.'))
        .collect();
    (page, keys)
}

#[test]
fn the_probe_reads_the_fields_of_a_known_table() {
    let fields = probe_struct("imitation");
    assert!(fields.contains(&"before_ppo".to_string()), "{fields:?}");
    assert!(fields.contains(&"max_grad_norm".to_string()), "{fields:?}");
    let kinds = probe_kind("policy.actor.wiring", PROBE, false);
    assert!(kinds.contains(&"auto_ncp".to_string()), "{kinds:?}");
}

#[test]
fn every_config_field_has_a_row_in_the_reference() {
    let (keys, kinds) = config_keys();
    let (page, rows) = documented();
    let missing: Vec<_> = keys.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "docs/config.md lacks a row (| `key` | …) for: {missing:?}"
    );
    let unnamed: Vec<_> = kinds
        .iter()
        .filter(|k| !page.contains(&format!("`{k}`")))
        .collect();
    assert!(
        unnamed.is_empty(),
        "docs/config.md never names the kinds {unnamed:?}"
    );
}

#[test]
fn every_row_of_the_reference_is_a_config_field() {
    let (keys, _) = config_keys();
    let (_, rows) = documented();
    let unknown: Vec<_> = rows.difference(&keys).collect();
    assert!(
        unknown.is_empty(),
        "docs/config.md documents keys no config struct has: {unknown:?}"
    );
}
