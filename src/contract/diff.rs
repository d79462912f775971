//! Breaking-change rules: what changed between two resolved bundles, and whether an engine
//! verified against the old one can still run against the new one.
//!
//! "Breaking" is judged from the engine's side: a change is breaking when records or requests
//! that worked against the old org can fail against the new one (a removed field, a shorter
//! maximum length, a narrower Pact response), and safe when everything that worked still works.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::bundle::{Bundle, DeletePolicy, FieldSpec, FieldType, Limits, ObjectSpec, Owner};

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

/// Which bundle a side of the diff is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub partner: String,
    pub tenant: String,
    pub version: String,
    pub hash: String,
}

impl Side {
    pub fn of(b: &Bundle) -> Side {
        Side {
            partner: b.partner.clone(),
            tenant: b.tenant.clone(),
            version: b.version.clone(),
            hash: b.content_hash(),
        }
    }

    fn label(&self) -> String {
        let short = self
            .hash
            .strip_prefix("sha256:")
            .map_or(self.hash.as_str(), |h| &h[..h.len().min(12)]);
        format!(
            "{}/{} {} ({short})",
            self.partner, self.tenant, self.version
        )
    }
}

/// Every change from `from` to `to`, breaking ones first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleDiff {
    pub from: Side,
    pub to: Side,
    pub changes: Vec<Change>,
}

impl BundleDiff {
    pub fn is_breaking(&self) -> bool {
        self.changes.iter().any(|c| c.impact == Impact::Breaking)
    }

    pub fn breaking(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.impact == Impact::Breaking)
    }

    /// The explanation people read: a header, then one line per change with its reason.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let breaking = self.breaking().count();
        let safe = self.changes.len() - breaking;
        let _ = writeln!(out, "{} -> {}", self.from.label(), self.to.label());
        if self.changes.is_empty() {
            out.push_str("no changes\n");
            return out;
        }
        let _ = writeln!(out, "{breaking} breaking, {safe} safe");
        for c in &self.changes {
            let mark = match c.impact {
                Impact::Breaking => "BREAKING",
                Impact::Safe => "safe    ",
            };
            let _ = writeln!(out, "  {mark} {:<22} {}", c.rule.id(), c.at);
            let _ = writeln!(out, "           {}", c.reason);
        }
        out
    }
}

/// Classifies every change from `old` (what the engine was verified against) to `new`.
pub fn diff(old: &Bundle, new: &Bundle) -> BundleDiff {
    let mut changes = Vec::new();
    diff_limits(&old.limits, &new.limits, &mut changes);
    diff_api_version(&old.api_version, &new.api_version, &mut changes);
    diff_objects(&old.objects, &new.objects, &mut changes);
    diff_pacts(&old.pacts, &new.pacts, &mut changes);
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

fn diff_limits(old: &Limits, new: &Limits, out: &mut Vec<Change>) {
    let pairs = [
        (
            "daily_api_requests",
            old.daily_api_requests,
            new.daily_api_requests,
            "fewer API requests per 24 hours: a sync sized for the old budget can hit REQUEST_LIMIT_EXCEEDED",
        ),
        (
            "concurrent_long_running",
            u64::from(old.concurrent_long_running),
            u64::from(new.concurrent_long_running),
            "fewer long-running requests at once: the engine's concurrency can be refused",
        ),
        (
            "long_running_threshold_secs",
            old.long_running_threshold_secs,
            new.long_running_threshold_secs,
            "requests count as long-running sooner, so the concurrency limit bites earlier",
        ),
    ];
    for (name, before, after, why_lower) in pairs {
        let at = format!("limits.{name}");
        if after < before {
            push(
                out,
                Rule::LimitLowered,
                Impact::Breaking,
                at,
                format!("lowered from {before} to {after}; {why_lower}"),
            );
        } else if after > before {
            push(
                out,
                Rule::LimitRaised,
                Impact::Safe,
                at,
                format!("raised from {before} to {after}; everything that fitted still fits"),
            );
        }
    }
}

fn diff_api_version(old: &str, new: &str, out: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let parse = |v: &str| v.parse::<f64>().ok();
    let lowered = matches!((parse(old), parse(new)), (Some(a), Some(b)) if b < a);
    if lowered {
        push(
            out,
            Rule::ApiVersionChanged,
            Impact::Breaking,
            "api_version".into(),
            format!("lowered from {old} to {new}: resources of the newer API may be missing"),
        );
    } else {
        push(
            out,
            Rule::ApiVersionChanged,
            Impact::Safe,
            "api_version".into(),
            format!("changed from {old} to {new}: Salesforce keeps older API versions working"),
        );
    }
}

fn diff_objects(
    old: &BTreeMap<String, ObjectSpec>,
    new: &BTreeMap<String, ObjectSpec>,
    out: &mut Vec<Change>,
) {
    for (name, o) in old {
        let at = format!("objects.{name}");
        let Some(n) = new.get(name) else {
            push(
                out,
                Rule::ObjectRemoved,
                Impact::Breaking,
                at,
                format!(
                    "{name} is no longer synced: its source `{}` records would have nowhere to go",
                    o.source
                ),
            );
            continue;
        };
        if o.external_id != n.external_id {
            push(
                out,
                Rule::ExternalIdChanged,
                Impact::Breaking,
                format!("{at}.external_id"),
                format!(
                    "upserts now match on `{}` instead of `{}`: existing records would not be found and would be created twice",
                    n.external_id, o.external_id
                ),
            );
        }
        if o.delete != n.delete {
            push(
                out,
                Rule::DeletePolicyChanged,
                Impact::Breaking,
                format!("{at}.delete"),
                format!(
                    "source deletes now {} instead of {}: records deleted upstream end differently in the org",
                    describe_delete(&n.delete),
                    describe_delete(&o.delete)
                ),
            );
        }
        if o.source != n.source {
            push(
                out,
                Rule::MappingChanged,
                Impact::Safe,
                format!("{at}.source"),
                format!(
                    "fed from source `{}` instead of `{}` (a mapping change, not an org change)",
                    n.source, o.source
                ),
            );
        }
        diff_fields(name, &o.fields, &n.fields, out);
    }
    for (name, n) in new {
        if !old.contains_key(name) {
            push(
                out,
                Rule::ObjectAdded,
                Impact::Safe,
                format!("objects.{name}"),
                format!(
                    "{name} is newly synced from `{}`: nothing that worked before depends on it",
                    n.source
                ),
            );
        }
    }
}

fn describe_delete(p: &DeletePolicy) -> String {
    match p {
        DeletePolicy::HardDelete => "hard-delete the record".into(),
        DeletePolicy::Archive { field } => format!("set `{field}` to true"),
        DeletePolicy::Inactive { field, value } => format!("set `{field}` to \"{value}\""),
    }
}

fn diff_fields(
    object: &str,
    old: &BTreeMap<String, FieldSpec>,
    new: &BTreeMap<String, FieldSpec>,
    out: &mut Vec<Change>,
) {
    for (name, o) in old {
        let at = format!("objects.{object}.fields.{name}");
        let Some(n) = new.get(name) else {
            let why = match &o.from {
                Some(col) => format!(
                    "the engine writes `{col}` into it; Salesforce would reject those writes (INVALID_FIELD)"
                ),
                None => "the engine relies on it being there (it guards CRM-owned values)".into(),
            };
            push(
                out,
                Rule::FieldRemoved,
                Impact::Breaking,
                at,
                format!("{object}.{name} is gone: {why}"),
            );
            continue;
        };
        diff_field(object, name, &at, o, n, out);
    }
    for (name, n) in new {
        if old.contains_key(name) {
            continue;
        }
        let at = format!("objects.{object}.fields.{name}");
        match (n.required, &n.from) {
            (true, None) => push(
                out,
                Rule::RequiredFieldAdded,
                Impact::Breaking,
                at,
                format!(
                    "new required field {object}.{name} that the mapping does not fill: every insert would fail with REQUIRED_FIELD_MISSING (add `from`)"
                ),
            ),
            (true, Some(col)) => push(
                out,
                Rule::RequiredFieldAdded,
                Impact::Safe,
                at,
                format!("new required field {object}.{name}, filled from `{col}` by the mapping"),
            ),
            (false, _) => push(
                out,
                Rule::OptionalFieldAdded,
                Impact::Safe,
                at,
                format!("new optional field {object}.{name}: records without it are still accepted"),
            ),
        }
    }
}

fn diff_field(
    object: &str,
    name: &str,
    at: &str,
    o: &FieldSpec,
    n: &FieldSpec,
    out: &mut Vec<Change>,
) {
    let field = format!("{object}.{name}");
    if o.ty != n.ty {
        push(
            out,
            Rule::TypeChanged,
            Impact::Breaking,
            format!("{at}.type"),
            format!(
                "{field} changed from {} to {}: values the engine sends as {} may be rejected",
                o.ty.describe_name(),
                n.ty.describe_name(),
                o.ty.describe_name()
            ),
        );
        // Length and picklist rules compare like with like; a new type makes them moot.
        return;
    }
    if !o.required && n.required {
        let why = match &n.from {
            Some(col) => format!("records with an empty `{col}` would be rejected"),
            None => "nothing fills it, so every insert would be rejected".into(),
        };
        push(
            out,
            Rule::BecameRequired,
            Impact::Breaking,
            format!("{at}.required"),
            format!("{field} is now required: {why} (REQUIRED_FIELD_MISSING)"),
        );
    } else if o.required && !n.required {
        push(
            out,
            Rule::BecameOptional,
            Impact::Safe,
            format!("{at}.required"),
            format!("{field} is no longer required: every record accepted before still is"),
        );
    }
    match (o.max_length, n.max_length) {
        (Some(a), Some(b)) if b < a => push(
            out,
            Rule::MaxLengthReduced,
            Impact::Breaking,
            format!("{at}.max_length"),
            format!("{field} max length {a} -> {b}: values of {} to {a} characters would be rejected (STRING_TOO_LONG)", b + 1),
        ),
        (None, Some(b)) => push(
            out,
            Rule::MaxLengthReduced,
            Impact::Breaking,
            format!("{at}.max_length"),
            format!("{field} is now limited to {b} characters: longer values would be rejected (STRING_TOO_LONG)"),
        ),
        (Some(a), Some(b)) if b > a => push(
            out,
            Rule::MaxLengthIncreased,
            Impact::Safe,
            format!("{at}.max_length"),
            format!("{field} max length {a} -> {b}: every value that fitted still fits"),
        ),
        (Some(a), None) => push(
            out,
            Rule::MaxLengthIncreased,
            Impact::Safe,
            format!("{at}.max_length"),
            format!("{field} is no longer limited to {a} characters"),
        ),
        _ => {}
    }
    if o.ty == FieldType::Picklist {
        diff_picklist(&field, at, o, n, out);
    }
    if o.to != n.to || o.relationship != n.relationship {
        push(
            out,
            Rule::ReferenceChanged,
            Impact::Breaking,
            format!("{at}.to"),
            format!(
                "{field} now points to {} via `{}` instead of {} via `{}`: parent look-ups would fail",
                n.to.as_deref().unwrap_or("nothing"),
                n.relationship.as_deref().unwrap_or("-"),
                o.to.as_deref().unwrap_or("nothing"),
                o.relationship.as_deref().unwrap_or("-"),
            ),
        );
    }
    if o.from != n.from || o.owner != n.owner {
        let who = |f: &FieldSpec| match (f.owner, &f.from) {
            (Owner::Crm, _) => "owned by the CRM".to_string(),
            (Owner::Source, Some(col)) => format!("filled from `{col}`"),
            (Owner::Source, None) => "not filled".to_string(),
        };
        push(
            out,
            Rule::MappingChanged,
            Impact::Safe,
            format!("{at}.from"),
            format!(
                "{field} is now {} (was {}): a mapping change, the org accepts the same values",
                who(n),
                who(o)
            ),
        );
    }
}

fn diff_picklist(field: &str, at: &str, o: &FieldSpec, n: &FieldSpec, out: &mut Vec<Change>) {
    let before: BTreeSet<&String> = o.values.iter().flatten().collect();
    let after: BTreeSet<&String> = n.values.iter().flatten().collect();
    let removed: Vec<&str> = before.difference(&after).map(|s| s.as_str()).collect();
    let added: Vec<&str> = after.difference(&before).map(|s| s.as_str()).collect();
    if !removed.is_empty() {
        let list = quoted(&removed);
        if n.restricted {
            push(
                out,
                Rule::PicklistValueRemoved,
                Impact::Breaking,
                format!("{at}.values"),
                format!("{field} no longer allows {list}: records with it would be rejected (INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST)"),
            );
        } else {
            push(
                out,
                Rule::PicklistValueRemoved,
                Impact::Safe,
                format!("{at}.values"),
                format!("{field} no longer lists {list}, but the picklist is unrestricted and still accepts it"),
            );
        }
    }
    if !added.is_empty() {
        push(
            out,
            Rule::PicklistValueAdded,
            Impact::Safe,
            format!("{at}.values"),
            format!(
                "{field} also allows {}: every value accepted before still is",
                quoted(&added)
            ),
        );
    }
    if !o.restricted && n.restricted {
        push(
            out,
            Rule::PicklistRestricted,
            Impact::Breaking,
            format!("{at}.restricted"),
            format!(
                "{field} is now a restricted picklist: values outside its list would be rejected"
            ),
        );
    } else if o.restricted && !n.restricted {
        push(
            out,
            Rule::PicklistUnrestricted,
            Impact::Safe,
            format!("{at}.restricted"),
            format!("{field} is no longer restricted: it accepts any value"),
        );
    }
}

fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Interactions of every pact file, keyed by description and provider states (not by file
/// name, so two tenants' pacts compare interaction by interaction).
fn interactions(pacts: &BTreeMap<String, Value>) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    for pact in pacts.values() {
        for i in pact
            .get("interactions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let description = i.get("description").and_then(Value::as_str).unwrap_or("");
            let states: Vec<&str> = i
                .get("providerStates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .collect();
            let key = if states.is_empty() {
                description.to_string()
            } else {
                format!("{description} (given {})", states.join(", "))
            };
            out.insert(key, i);
        }
    }
    out
}

fn diff_pacts(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>, out: &mut Vec<Change>) {
    let before = interactions(old);
    let after = interactions(new);
    for (key, o) in &before {
        let at = format!("pacts[\"{key}\"]");
        let Some(n) = after.get(key) else {
            push(
                out,
                Rule::InteractionRemoved,
                Impact::Breaking,
                at,
                "the engine relies on this interaction and it is no longer in the contract".into(),
            );
            continue;
        };
        let status = |v: &Value| v.pointer("/response/status").and_then(Value::as_u64);
        if status(o) != status(n) {
            push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.status"),
                format!(
                    "the response status changed from {} to {}",
                    status(o).map_or("none".into(), |s| s.to_string()),
                    status(n).map_or("none".into(), |s| s.to_string())
                ),
            );
        }
        let body = |v: &Value| v.pointer("/response/body/content").cloned();
        match (body(o), body(n)) {
            (Some(a), Some(b)) => compare_shape(&at, "$", &a, &b, out),
            (Some(_), None) => push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.body"),
                "the response no longer has a body".into(),
            ),
            (None, Some(_)) => push(
                out,
                Rule::ResponseWidened,
                Impact::Safe,
                format!("{at}.response.body"),
                "the response now has a body the engine may ignore".into(),
            ),
            (None, None) => {}
        }
    }
    for key in after.keys() {
        if !before.contains_key(key) {
            push(
                out,
                Rule::InteractionAdded,
                Impact::Safe,
                format!("pacts[\"{key}\"]"),
                "a new interaction: nothing that worked before depends on it".into(),
            );
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compares the shape of two response bodies: keys and JSON types, not example values.
fn compare_shape(at: &str, path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => compare_shape(at, &p, va, vb, out),
                    None => push(
                        out,
                        Rule::ResponseNarrowed,
                        Impact::Breaking,
                        format!("{at}.response.body"),
                        format!("`{p}` is no longer in the response"),
                    ),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                push(
                    out,
                    Rule::ResponseWidened,
                    Impact::Safe,
                    format!("{at}.response.body"),
                    format!("`{path}.{k}` is new in the response; the engine can ignore it"),
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
            (Some(x), Some(y)) => compare_shape(at, &format!("{path}[*]"), x, y, out),
            (Some(_), None) => push(
                out,
                Rule::ResponseNarrowed,
                Impact::Breaking,
                format!("{at}.response.body"),
                format!("`{path}` no longer has any elements"),
            ),
            _ => {}
        },
        _ if kind(old) != kind(new) => push(
            out,
            Rule::ResponseNarrowed,
            Impact::Breaking,
            format!("{at}.response.body"),
            format!("`{path}` changed from {} to {}", kind(old), kind(new)),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn base() -> Bundle {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/bluepeak-logistics/sandbox");
        match Bundle::load(&dir) {
            Ok(b) => b,
            Err(e) => panic!("example bundle does not load: {e}"),
        }
    }

    fn field<'a>(b: &'a mut Bundle, object: &str, name: &str) -> &'a mut FieldSpec {
        b.objects
            .get_mut(object)
            .and_then(|o| o.fields.get_mut(name))
            .unwrap_or_else(|| panic!("no field {object}.{name}"))
    }

    fn values<'a>(b: &'a mut Bundle, object: &str, name: &str) -> &'a mut Vec<String> {
        field(b, object, name)
            .values
            .as_mut()
            .unwrap_or_else(|| panic!("{object}.{name} is not a picklist"))
    }

    /// The rules that fired, with their impact.
    fn rules(old: &Bundle, new: &Bundle) -> Vec<(Rule, Impact)> {
        diff(old, new)
            .changes
            .iter()
            .map(|c| (c.rule, c.impact))
            .collect()
    }

    /// Checks a rule in both directions: `old -> new` fires `forward`, `new -> old` fires `back`.
    fn both_ways(old: &Bundle, new: &Bundle, forward: (Rule, Impact), back: (Rule, Impact)) {
        assert_eq!(rules(old, new), vec![forward], "old -> new");
        assert_eq!(rules(new, old), vec![back], "new -> old");
    }

    #[test]
    fn identical_bundles_have_no_changes() {
        let d = diff(&base(), &base());
        assert!(d.changes.is_empty());
        assert!(!d.is_breaking());
    }

    #[test]
    fn field_removed_is_breaking_and_a_new_optional_field_is_safe() {
        let old = base();
        let mut new = base();
        new.objects
            .get_mut("Account")
            .map(|o| o.fields.remove("Phone"));
        both_ways(
            &old,
            &new,
            (Rule::FieldRemoved, Impact::Breaking),
            (Rule::OptionalFieldAdded, Impact::Safe),
        );
    }

    #[test]
    fn type_changed_is_breaking_both_ways() {
        let old = base();
        let mut new = base();
        field(&mut new, "Account", "NumberOfEmployees").ty = FieldType::Double;
        both_ways(
            &old,
            &new,
            (Rule::TypeChanged, Impact::Breaking),
            (Rule::TypeChanged, Impact::Breaking),
        );
    }

    #[test]
    fn became_required_is_breaking_and_became_optional_is_safe() {
        let old = base();
        let mut new = base();
        field(&mut new, "Contact", "Email").required = true;
        both_ways(
            &old,
            &new,
            (Rule::BecameRequired, Impact::Breaking),
            (Rule::BecameOptional, Impact::Safe),
        );
    }

    #[test]
    fn shorter_max_length_is_breaking_and_longer_is_safe() {
        let old = base();
        let mut new = base();
        field(&mut new, "Account", "BillingCity").max_length = Some(20);
        both_ways(
            &old,
            &new,
            (Rule::MaxLengthReduced, Impact::Breaking),
            (Rule::MaxLengthIncreased, Impact::Safe),
        );
        let mut unlimited = base();
        field(&mut unlimited, "Account", "BillingCity").max_length = None;
        both_ways(
            &unlimited,
            &old,
            (Rule::MaxLengthReduced, Impact::Breaking),
            (Rule::MaxLengthIncreased, Impact::Safe),
        );
    }

    #[test]
    fn picklist_value_removed_is_breaking_and_added_is_safe() {
        let old = base();
        let mut new = base();
        values(&mut new, "Account", "Industry").retain(|x| x != "Retail");
        both_ways(
            &old,
            &new,
            (Rule::PicklistValueRemoved, Impact::Breaking),
            (Rule::PicklistValueAdded, Impact::Safe),
        );
    }

    #[test]
    fn a_value_removed_from_an_unrestricted_picklist_is_safe() {
        let mut old = base();
        field(&mut old, "Account", "Industry").restricted = false;
        let mut new = old.clone();
        values(&mut new, "Account", "Industry").retain(|x| x != "Retail");
        assert_eq!(
            rules(&old, &new),
            vec![(Rule::PicklistValueRemoved, Impact::Safe)]
        );
    }

    #[test]
    fn restricting_a_picklist_is_breaking_and_unrestricting_is_safe() {
        let mut old = base();
        field(&mut old, "Account", "Industry").restricted = false;
        let new = base();
        both_ways(
            &old,
            &new,
            (Rule::PicklistRestricted, Impact::Breaking),
            (Rule::PicklistUnrestricted, Impact::Safe),
        );
    }

    #[test]
    fn external_id_changed_is_breaking_both_ways() {
        let old = base();
        let mut new = base();
        if let Some(o) = new.objects.get_mut("Account") {
            let spec = o.fields["BP_Account_Key__c"].clone();
            o.fields.insert("BP_Legacy_Key__c".into(), spec);
        }
        let mut with_both = base();
        with_both.objects = new.objects.clone();
        if let Some(o) = new.objects.get_mut("Account") {
            o.external_id = "BP_Legacy_Key__c".into();
        }
        both_ways(
            &with_both,
            &new,
            (Rule::ExternalIdChanged, Impact::Breaking),
            (Rule::ExternalIdChanged, Impact::Breaking),
        );
        assert!(diff(&old, &with_both)
            .changes
            .iter()
            .all(|c| c.impact == Impact::Safe));
    }

    #[test]
    fn object_removed_is_breaking_and_a_new_object_is_safe() {
        let old = base();
        let mut new = base();
        new.objects.remove("Opportunity");
        both_ways(
            &old,
            &new,
            (Rule::ObjectRemoved, Impact::Breaking),
            (Rule::ObjectAdded, Impact::Safe),
        );
    }

    #[test]
    fn delete_policy_changed_is_breaking_both_ways() {
        let old = base();
        let mut new = base();
        if let Some(o) = new.objects.get_mut("Account") {
            o.delete = DeletePolicy::HardDelete;
        }
        both_ways(
            &old,
            &new,
            (Rule::DeletePolicyChanged, Impact::Breaking),
            (Rule::DeletePolicyChanged, Impact::Breaking),
        );
    }

    #[test]
    fn lowered_limits_are_breaking_and_raised_limits_are_safe() {
        let old = base();
        for change in [
            |l: &mut Limits| l.daily_api_requests /= 2,
            |l: &mut Limits| l.concurrent_long_running -= 1,
            |l: &mut Limits| l.long_running_threshold_secs -= 5,
        ] {
            let mut new = base();
            change(&mut new.limits);
            both_ways(
                &old,
                &new,
                (Rule::LimitLowered, Impact::Breaking),
                (Rule::LimitRaised, Impact::Safe),
            );
        }
    }

    #[test]
    fn a_new_required_field_is_breaking_unless_the_mapping_fills_it() {
        let old = base();
        let mut unfilled = base();
        if let Some(o) = unfilled.objects.get_mut("Account") {
            o.fields.insert(
                "Region__c".into(),
                FieldSpec {
                    ty: FieldType::String,
                    required: true,
                    max_length: Some(40),
                    values: None,
                    restricted: true,
                    owner: Owner::Crm,
                    from: None,
                    to: None,
                    relationship: None,
                },
            );
        }
        assert_eq!(
            rules(&old, &unfilled),
            vec![(Rule::RequiredFieldAdded, Impact::Breaking)]
        );
        let mut filled = unfilled.clone();
        let f = field(&mut filled, "Account", "Region__c");
        f.owner = Owner::Source;
        f.from = Some("region".into());
        assert_eq!(
            rules(&old, &filled),
            vec![(Rule::RequiredFieldAdded, Impact::Safe)]
        );
        // Taking the field away again is a removal, breaking either way.
        assert_eq!(
            rules(&filled, &old),
            vec![(Rule::FieldRemoved, Impact::Breaking)]
        );
    }

    #[test]
    fn reference_target_changed_is_breaking() {
        let old = base();
        let mut new = base();
        field(&mut new, "Opportunity", "AccountId").relationship = Some("Parent".into());
        both_ways(
            &old,
            &new,
            (Rule::ReferenceChanged, Impact::Breaking),
            (Rule::ReferenceChanged, Impact::Breaking),
        );
    }

    #[test]
    fn mapping_changes_are_safe() {
        let old = base();
        let mut new = base();
        field(&mut new, "Account", "BillingCity").from = Some("city".into());
        both_ways(
            &old,
            &new,
            (Rule::MappingChanged, Impact::Safe),
            (Rule::MappingChanged, Impact::Safe),
        );
    }

    #[test]
    fn a_lower_api_version_is_breaking_and_a_higher_one_safe() {
        let old = base();
        let mut new = base();
        new.api_version = "58.0".into();
        both_ways(
            &old,
            &new,
            (Rule::ApiVersionChanged, Impact::Breaking),
            (Rule::ApiVersionChanged, Impact::Safe),
        );
    }

    fn first_pact(b: &mut Bundle) -> &mut Value {
        b.pacts
            .values_mut()
            .next()
            .unwrap_or_else(|| panic!("example bundle has no pact"))
    }

    fn interactions_mut(b: &mut Bundle) -> &mut Vec<Value> {
        match first_pact(b).get_mut("interactions") {
            Some(Value::Array(a)) => a,
            _ => panic!("pact has no interactions"),
        }
    }

    /// The token request's interaction (interactions are in description order).
    fn token_interaction(b: &mut Bundle) -> &mut Value {
        interactions_mut(b)
            .iter_mut()
            .find(|i| i["description"] == "a client-credentials token request")
            .expect("the pact has the token request")
    }

    #[test]
    fn interaction_removed_is_breaking_and_added_is_safe() {
        let old = base();
        let mut new = base();
        interactions_mut(&mut new).remove(0);
        both_ways(
            &old,
            &new,
            (Rule::InteractionRemoved, Impact::Breaking),
            (Rule::InteractionAdded, Impact::Safe),
        );
    }

    #[test]
    fn a_narrower_response_is_breaking_and_a_wider_one_safe() {
        let old = base();
        let mut new = base();
        // The token response loses `instance_url`.
        let removed = token_interaction(&mut new)
            .pointer_mut("/response/body/content")
            .and_then(Value::as_object_mut)
            .and_then(|o| o.remove("instance_url"));
        assert!(
            removed.is_some(),
            "the first interaction is the token request"
        );
        both_ways(
            &old,
            &new,
            (Rule::ResponseNarrowed, Impact::Breaking),
            (Rule::ResponseWidened, Impact::Safe),
        );
    }

    #[test]
    fn a_response_field_changing_type_or_status_is_breaking() {
        let old = base();
        let mut new = base();
        if let Some(v) = token_interaction(&mut new).pointer_mut("/response/body/content/issued_at")
        {
            *v = Value::from(1_767_600_000_000_u64);
        }
        assert_eq!(
            rules(&old, &new),
            vec![(Rule::ResponseNarrowed, Impact::Breaking)]
        );
        let mut status = base();
        if let Some(v) = token_interaction(&mut status).pointer_mut("/response/status") {
            *v = Value::from(201);
        }
        assert_eq!(
            rules(&old, &status),
            vec![(Rule::ResponseNarrowed, Impact::Breaking)]
        );
    }

    #[test]
    fn explanation_lists_breaking_changes_first_with_reasons() {
        let old = base();
        let mut new = base();
        new.version = "3.0.0".into();
        new.objects
            .get_mut("Account")
            .map(|o| o.fields.remove("Phone"));
        field(&mut new, "Account", "BillingCity").max_length = Some(20);
        field(&mut new, "Contact", "Title").max_length = Some(255);
        let industry = values(&mut new, "Account", "Industry");
        industry.retain(|x| x != "Retail");
        industry.push("Energy".into());
        field(&mut new, "Contact", "Email").required = true;
        new.limits.daily_api_requests = 10_000;
        interactions_mut(&mut new).remove(1);
        let mut d = diff(&old, &new);
        d.from.hash = "sha256:0ld0ld0ld0ld0ld".into();
        d.to.hash = "sha256:new0new0new0new".into();
        assert!(d.is_breaking());
        insta::assert_snapshot!(d.explain());
    }
}
