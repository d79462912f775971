//! Pact V4 files of the interactions the syncgate engine relies on, generated from a
//! tenant's resolved bundle: what `syncgate contracts pacts` writes and checks, and what the
//! test suite compares the committed files with.
//!
//! The interactions are derived from the bundle (objects, external IDs, source-owned
//! fields, picklists, delete policies, limits), not recorded from an engine run: the
//! engine's requests follow from the same bundle, and `sync_cli`'s tests check that the
//! gate's baseline run sends what `syncgate sync` sends. The files live at
//! `<tenant>/pacts/syncgate-engine-<provider>.json`, where `Bundle::load` picks them up.
//!
//! Output is deterministic: object keys are sorted recursively and the volatile
//! `metadata.pactRust` block (pact library versions) is stripped before writing and before
//! comparing.

mod interactions;

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Bundle;

pub use interactions::{BUDGET_STATE, CALL_OPTIONS, FIRST_BULK_JOB, RATE_LIMIT_STATE};

/// The consumer name of every generated pact.
pub const CONSUMER: &str = "syncgate-engine";

/// Metadata keys that change with the pact library version, not with the contract.
const VOLATILE_METADATA: &[&str] = &["pactRust"];

/// One tenant's generated pact.
#[derive(Clone, Debug)]
pub struct GeneratedPact {
    /// `<partner>-salesforce-<tenant>`.
    pub provider: String,
    /// Canonical JSON: sorted keys, volatile metadata stripped.
    pub json: Value,
}

impl GeneratedPact {
    /// `syncgate-engine-<provider>.json`.
    pub fn file_name(&self) -> String {
        format!("{CONSUMER}-{}.json", self.provider)
    }

    /// Where the file belongs in the tenant directory `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join("pacts").join(self.file_name())
    }

    /// The file's bytes: pretty JSON and a final newline.
    pub fn text(&self) -> String {
        render(&self.json)
    }
}

/// Why a bundle's pact cannot be generated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PactGenError(pub String);

/// The provider name of a bundle's pact.
pub fn provider_name(bundle: &Bundle) -> String {
    format!("{}-salesforce-{}", bundle.partner, bundle.tenant)
}

/// Generates the pact of one bundle.
pub fn generate(bundle: &Bundle) -> Result<GeneratedPact, PactGenError> {
    let provider = provider_name(bundle);
    let json = interactions::build(bundle, &provider)?;
    Ok(GeneratedPact {
        provider,
        json: canonical(json),
    })
}

/// How a committed pact file compares with the generated one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Byte for byte the generated file.
    Current,
    /// No file at the path.
    Missing,
    /// A file that differs; the text says where.
    Stale(String),
}

/// Compares the file at `path` with `generated`.
pub fn freshness(path: &Path, generated: &GeneratedPact) -> Freshness {
    let Ok(committed) = std::fs::read_to_string(path) else {
        return Freshness::Missing;
    };
    let text = generated.text();
    if committed == text {
        return Freshness::Current;
    }
    match serde_json::from_str::<Value>(&committed).map(canonical) {
        Err(e) => Freshness::Stale(format!("invalid JSON ({e})")),
        Ok(json) if json == generated.json => {
            Freshness::Stale("same content, other formatting or metadata".into())
        }
        Ok(_) => Freshness::Stale(first_difference(&text, &committed)),
    }
}

/// Other generated pact files in `dir/pacts` (of a provider that no longer exists).
pub fn leftovers(dir: &Path, generated: &GeneratedPact) -> Vec<PathBuf> {
    let keep = generated.file_name();
    let Ok(entries) = std::fs::read_dir(dir.join("pacts")) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{CONSUMER}-")) && name.ends_with(".json") && name != keep
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Writes the generated file into the tenant directory `dir` (creating `pacts/`) and
/// removes generated files of other providers; returns the removed paths.
pub fn write(dir: &Path, generated: &GeneratedPact) -> std::io::Result<Vec<PathBuf>> {
    let path = generated.path_in(dir);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let removed = leftovers(dir, generated);
    for p in &removed {
        std::fs::remove_file(p)?;
    }
    std::fs::write(&path, generated.text())?;
    Ok(removed)
}

/// Sorted keys everywhere, volatile metadata removed.
pub fn canonical(mut pact: Value) -> Value {
    if let Some(md) = pact.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in VOLATILE_METADATA {
            md.remove(*key);
        }
    }
    sort_keys(pact)
}

fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Pretty JSON with a final newline.
pub fn render(pact: &Value) -> String {
    let mut text = serde_json::to_string_pretty(pact).expect("JSON values always render");
    text.push('\n');
    text
}

/// The first line where `expected` and `actual` differ.
pub fn first_difference(expected: &str, actual: &str) -> String {
    let mut e = expected.lines();
    let mut a = actual.lines();
    let mut line = 1;
    loop {
        match (e.next(), a.next()) {
            (None, None) => return "only whitespace differs".into(),
            (x, y) if x == y => line += 1,
            (x, y) => {
                return format!(
                    "first difference at line {line}: committed `{}`, generated `{}`",
                    y.unwrap_or("<end of file>").trim(),
                    x.unwrap_or("<end of file>").trim()
                )
            }
        }
    }
}
