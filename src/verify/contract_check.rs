//! The gate's contract check: the bundle on disk against the version deployed in the target
//! environment, else the latest version published at or below it (semver order), else a
//! statement that it was not checked; and a changed bundle under a published number fails.

use serde::Serialize;

use super::gate::GateError;
use crate::contract::publish::compare_versions;
use crate::contract::Bundle;
use crate::store::PublishedVersion;

/// The bundle on disk classified against the one deployed in an environment, else against
/// the latest version published below it, else a statement that it was not checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractCheck {
    pub environment: String,
    /// What the bundle was compared with: `deployed` (the version deployed in
    /// `environment`), `published` (the latest published version at or below the bundle's,
    /// nothing being deployed) or `none` (not checked: see `note`).
    pub against: &'static str,
    /// The version compared with (absent when not checked).
    pub deployed_version: Option<String>,
    pub changes: Vec<ContractChange>,
    /// Why the check did not run, when it did not.
    pub note: Option<String>,
}

/// One difference, breaking or safe, with its reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ContractChange {
    pub breaking: bool,
    pub rule: String,
    pub at: String,
    pub reason: String,
}

impl ContractCheck {
    pub fn passed(&self) -> bool {
        !self.changes.iter().any(|c| c.breaking)
    }
    /// Whether the bundle was compared with anything.
    pub fn checked(&self) -> bool {
        self.against != "none"
    }
    /// One line saying what was compared, for reports.
    pub fn summary(&self) -> String {
        if let Some(note) = &self.note {
            return note.clone();
        }
        let breaking = self.changes.iter().filter(|c| c.breaking).count();
        let since = self.deployed_version.as_deref().unwrap_or("?");
        let what = if self.against == "deployed" {
            format!("since {since} deployed in {}", self.environment)
        } else {
            format!(
                "since {since}, the latest published (nothing deployed in {})",
                self.environment
            )
        };
        format!(
            "{} change(s), {breaking} breaking, {what}",
            self.changes.len()
        )
    }
}

/// Checks `bundle` against what the registry holds for its tenant: the deployed version if
/// any, else the latest published at or below its version; and that a published version of
/// the same number has the same content.
pub(crate) fn contract_check(
    bundle: &Bundle,
    environment: &str,
    deployed: Option<&Bundle>,
    published: &[PublishedVersion],
) -> Result<ContractCheck, GateError> {
    let label = format!("{}/{}", bundle.partner, bundle.tenant);
    let hash = bundle.content_hash();
    let read = |v: &PublishedVersion| {
        Bundle::from_json(&v.content).map_err(|e| {
            GateError::Store(format!(
                "the published {label} {} cannot be read back: {e}",
                v.version
            ))
        })
    };
    let same_number = published.iter().find(|v| v.version == bundle.version);
    let (against, old) = match deployed {
        Some(d) => ("deployed", Some(d.clone())),
        None => {
            let below = published
                .iter()
                .filter(|v| compare_versions(&v.version, &bundle.version).is_le())
                .max_by(|a, b| compare_versions(&a.version, &b.version));
            match below {
                Some(v) => ("published", Some(read(v)?)),
                None => ("none", None),
            }
        }
    };
    let Some(old) = old else {
        let note = if published.is_empty() {
            format!("not checked: nothing deployed in {environment} and nothing published")
        } else {
            format!(
                "not checked: nothing deployed in {environment} and nothing published at or below {}",
                bundle.version
            )
        };
        return Ok(ContractCheck {
            environment: environment.to_string(),
            against,
            deployed_version: None,
            changes: Vec::new(),
            note: Some(note),
        });
    };
    let d = crate::contract::diff::diff(&old, bundle);
    let mut changes: Vec<ContractChange> = Vec::new();
    if let Some(v) = same_number.filter(|v| v.hash != hash) {
        changes.push(ContractChange {
            breaking: true,
            rule: "version-not-bumped".into(),
            at: "version".into(),
            reason: format!(
                "{label} {} is published with content {}, this bundle is {hash}: a published version is immutable, bump the version",
                v.version, v.hash
            ),
        });
    }
    changes.extend(d.changes.iter().map(|c| ContractChange {
        breaking: c.impact == crate::contract::diff::Impact::Breaking,
        rule: c.rule.id().to_string(),
        at: c.at.clone(),
        reason: c.reason.clone(),
    }));
    Ok(ContractCheck {
        environment: environment.to_string(),
        against,
        deployed_version: Some(old.version.clone()),
        changes,
        note: None,
    })
}
