//! A new tenant bundle written from an org's describe metadata (`syncgate contracts pull`):
//! the org's side filled in, the mapping marked for people to fill.
//!
//! Every guess is marked on its line: `# MAPPING` for a source entity or column guessed from
//! the names, `# POLICY` for the delete policy. Fields the org has but a bundle cannot carry
//! (types bundles do not know, lookups to objects not pulled) are listed as comments under
//! their object, with the reason.

use std::fmt::Write as _;

use super::bundle::{FieldType, Limits};
use super::describe::{field_spec, DescribedObject};

/// What a pull writes.
pub struct PullInput<'a> {
    pub partner: &'a str,
    pub tenant: &'a str,
    pub api_version: &'a str,
    pub limits: Limits,
    /// Whether `limits` came from the org's `/limits` (else they are placeholders).
    pub limits_from_org: bool,
    /// Each pulled object with the external-ID field chosen for it.
    pub objects: Vec<(DescribedObject, String)>,
    /// Where the describe came from (the login URL), for the header.
    pub origin: &'a str,
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PullCounts {
    pub objects: usize,
    pub fields: usize,
    pub skipped: usize,
    pub marked: usize,
}

/// `Billing_City__c` → `billing_city`, `AccountId` → `account_id`.
pub fn snake_case(name: &str) -> String {
    let base = name.strip_suffix("__c").unwrap_or(name);
    let mut out = String::with_capacity(base.len() + 4);
    let mut prev_lower = false;
    for c in base.chars() {
        if c == '_' || c == ' ' {
            if !out.ends_with('_') && !out.is_empty() {
                out.push('_');
            }
            prev_lower = false;
        } else if c.is_uppercase() {
            if prev_lower && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
    }
    out
}

/// A source entity name guessed from the object: `Opportunity` → `opportunities`.
fn guess_source(object: &str) -> String {
    let s = snake_case(object);
    if let Some(stem) = s.strip_suffix('y') {
        format!("{stem}ies")
    } else if s.ends_with('s') {
        format!("{s}es")
    } else {
        format!("{s}s")
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The bundle's TOML text.
pub fn render(input: &PullInput<'_>) -> (String, PullCounts) {
    let mut counts = PullCounts::default();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Pulled by `syncgate contracts pull` from the describe metadata of {}.",
        input.origin
    );
    t.push_str(
        "#
# From the org: each field's type, max_length, required, picklist values (restricted or
# not), lookups (`to`, `relationship`) and the external ID with its uniqueness; the limits
# from /limits.
# Yours to fill before the bundle means anything (describe does not carry them):
#   - `# MAPPING` lines: the source entity (`source`) and column (`from`) are guesses from
#     the names; fix them, and mark fields people keep in Salesforce `owner = \"crm\"`;
#   - `# POLICY` lines: what a source delete does (hard_delete, archive, inactive);
#   - validation rules (`validation_rules`), which are not in describe;
#   - then `syncgate contracts validate` and `syncgate contracts pacts`.
",
    );
    let _ = writeln!(t, "format = 1");
    let _ = writeln!(t, "partner = {}", quoted(input.partner));
    let _ = writeln!(t, "tenant = {}", quoted(input.tenant));
    let _ = writeln!(t, "version = \"0.1.0\"");
    let _ = writeln!(t, "kind = \"salesforce\"");
    let _ = writeln!(t, "api_version = {}", quoted(input.api_version));
    let _ = writeln!(t, "\n[limits]");
    if !input.limits_from_org {
        let _ = writeln!(
            t,
            "# LIMITS: the org's /limits did not answer; these are placeholders, put the org's own"
        );
        counts.marked += 1;
    }
    let _ = writeln!(
        t,
        "daily_api_requests = {}",
        input.limits.daily_api_requests
    );
    let _ = writeln!(
        t,
        "concurrent_long_running = {}",
        input.limits.concurrent_long_running
    );
    let _ = writeln!(
        t,
        "long_running_threshold_secs = {}  # not in /limits: Salesforce's 20 s unless you know better",
        input.limits.long_running_threshold_secs
    );
    let synced: Vec<&str> = input.objects.iter().map(|(o, _)| o.name.as_str()).collect();
    for (object, ext) in &input.objects {
        counts.objects += 1;
        let name = &object.name;
        let _ = writeln!(t, "\n[objects.{name}]");
        let _ = writeln!(t, "external_id = {}", quoted(ext));
        let _ = writeln!(
            t,
            "source = {}  # MAPPING: the source entity (file stem or table) feeding {name}",
            quoted(&guess_source(name))
        );
        let _ = writeln!(
            t,
            "delete = {{ policy = \"hard_delete\" }}  # POLICY: hard_delete, archive (field) or inactive (field, value)"
        );
        counts.marked += 2;
        if object.field(ext).is_some_and(|f| f.unique) {
            let _ = writeln!(t, "unique_external_id = true");
        }
        let _ = writeln!(t, "\n[objects.{name}.fields]");
        let mut skipped = Vec::new();
        for f in object.writable() {
            let spec = match field_spec(f, &synced) {
                Ok(s) => s,
                Err(why) => {
                    skipped.push(format!("{}: {why}", f.name));
                    continue;
                }
            };
            counts.fields += 1;
            let mut parts = vec![format!("type = {}", quoted(spec.ty.describe_name()))];
            if spec.required {
                parts.push("required = true".into());
            }
            if let Some(n) = spec.max_length {
                parts.push(format!("max_length = {n}"));
            }
            if let Some(values) = &spec.values {
                let list: Vec<String> = values.iter().map(|v| quoted(v)).collect();
                parts.push(format!("values = [{}]", list.join(", ")));
                if !spec.restricted {
                    parts.push("restricted = false".into());
                }
            }
            if let Some(to) = &spec.to {
                parts.push(format!("to = {}", quoted(to)));
            }
            if let Some(rel) = &spec.relationship {
                parts.push(format!("relationship = {}", quoted(rel)));
            }
            let column = if spec.ty == FieldType::Reference {
                // The column holding the parent's external-ID value.
                snake_case(spec.relationship.as_deref().unwrap_or(&f.name))
                    + if spec.relationship.is_some() {
                        "_key"
                    } else {
                        ""
                    }
            } else {
                snake_case(&f.name)
            };
            parts.push(format!("from = {}", quoted(&column)));
            counts.marked += 1;
            let _ = writeln!(
                t,
                "{} = {{ {} }}  # MAPPING",
                field_key(&f.name),
                parts.join(", ")
            );
        }
        if !skipped.is_empty() {
            let _ = writeln!(
                t,
                "# Not pulled (the org has them; a bundle cannot carry them):"
            );
            for s in &skipped {
                let _ = writeln!(t, "#   {s}");
            }
            counts.skipped += skipped.len();
        }
    }
    (t, counts)
}

/// A TOML key: bare when it can be.
fn field_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        quoted(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_turn_into_guessed_columns_and_entities() {
        assert_eq!(snake_case("BillingCity"), "billing_city");
        assert_eq!(snake_case("BP_Account_Key__c"), "bp_account_key");
        assert_eq!(snake_case("Fleet_Size__c"), "fleet_size");
        assert_eq!(snake_case("AccountId"), "account_id");
        assert_eq!(guess_source("Opportunity"), "opportunities");
        assert_eq!(guess_source("Shipment__c"), "shipments");
        assert_eq!(guess_source("Address"), "addresses");
    }
}
