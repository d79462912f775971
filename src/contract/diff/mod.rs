//! Breaking-change rules: what changed between two resolved bundles, and whether an engine
//! verified against the old one can still run against the new one.
//!
//! "Breaking" is judged from the engine's side: a change is breaking when records or requests
//! that worked against the old org can fail against the new one (a removed field, a shorter
//! maximum length, a narrower Pact response), and safe when everything that worked still works.
//!
//! Layout: `limits` (the org's limits and API version), `policies` (objects, external IDs,
//! delete policies, sources), `fields` (types, lengths, required, picklists, references,
//! mapping), `pacts` (interactions and response shapes), `report` (the two sides and the
//! explanation people read).

mod fields;
#[cfg(test)]
mod fixtures;
mod limits;
mod pacts;
mod policies;
mod report;

use serde::Serialize;

use super::bundle::Bundle;

pub use report::{write_changes, BundleDiff, Side};

/// Whether a change can break an engine verified against the old bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    Breaking,
    Safe,
}

/// The rule that classified a change. Each has a stable kebab-case id (in `--json` and text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    ObjectRemoved,
    ObjectAdded,
    FieldRemoved,
    OptionalFieldAdded,
    RequiredFieldAdded,
    TypeChanged,
    BecameRequired,
    BecameOptional,
    MaxLengthReduced,
    MaxLengthIncreased,
    PicklistValueRemoved,
    PicklistValueAdded,
    PicklistRestricted,
    PicklistUnrestricted,
    ExternalIdChanged,
    DeletePolicyChanged,
    ReferenceChanged,
    MappingChanged,
    LimitLowered,
    LimitRaised,
    ApiVersionChanged,
    InteractionRemoved,
    InteractionAdded,
    ResponseNarrowed,
    ResponseWidened,
}

impl Rule {
    /// The rule's id, as written in explanations and JSON.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ObjectRemoved => "object-removed",
            Rule::ObjectAdded => "object-added",
            Rule::FieldRemoved => "field-removed",
            Rule::OptionalFieldAdded => "optional-field-added",
            Rule::RequiredFieldAdded => "required-field-added",
            Rule::TypeChanged => "type-changed",
            Rule::BecameRequired => "became-required",
            Rule::BecameOptional => "became-optional",
            Rule::MaxLengthReduced => "max-length-reduced",
            Rule::MaxLengthIncreased => "max-length-increased",
            Rule::PicklistValueRemoved => "picklist-value-removed",
            Rule::PicklistValueAdded => "picklist-value-added",
            Rule::PicklistRestricted => "picklist-restricted",
            Rule::PicklistUnrestricted => "picklist-unrestricted",
            Rule::ExternalIdChanged => "external-id-changed",
            Rule::DeletePolicyChanged => "delete-policy-changed",
            Rule::ReferenceChanged => "reference-changed",
            Rule::MappingChanged => "mapping-changed",
            Rule::LimitLowered => "limit-lowered",
            Rule::LimitRaised => "limit-raised",
            Rule::ApiVersionChanged => "api-version-changed",
            Rule::InteractionRemoved => "interaction-removed",
            Rule::InteractionAdded => "interaction-added",
            Rule::ResponseNarrowed => "response-narrowed",
            Rule::ResponseWidened => "response-widened",
        }
    }
}

/// One classified change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub rule: Rule,
    pub impact: Impact,
    /// Where, as a dotted path into the bundle (`objects.Account.fields.Name`, `limits.…`,
    /// `pacts["a request for the org's limits"]`).
    pub at: String,
    /// Why the change is breaking or safe, in a sentence.
    pub reason: String,
}

/// Classifies every change from `old` (what the engine was verified against) to `new`.
pub fn diff(old: &Bundle, new: &Bundle) -> BundleDiff {
    let mut changes = Vec::new();
    limits::diff_limits(&old.limits, &new.limits, &mut changes);
    limits::diff_api_version(&old.api_version, &new.api_version, &mut changes);
    policies::diff_objects(&old.objects, &new.objects, &mut changes);
    pacts::diff_pacts(&old.pacts, &new.pacts, &mut changes);
    // Stable order: breaking first, then by place, then by rule.
    changes.sort_by(|a, b| (a.impact, &a.at, a.rule).cmp(&(b.impact, &b.at, b.rule)));
    BundleDiff {
        from: Side::of(old),
        to: Side::of(new),
        changes,
    }
}

fn push(out: &mut Vec<Change>, rule: Rule, impact: Impact, at: String, reason: String) {
    out.push(Change {
        rule,
        impact,
        at,
        reason,
    });
}
#[cfg(test)]
mod tests {
    use super::fixtures::base;
    use super::*;

    #[test]
    fn identical_bundles_have_no_changes() {
        let d = diff(&base(), &base());
        assert!(d.changes.is_empty());
        assert!(!d.is_breaking());
    }
}
