//! Field rules: removed and added fields, types, required, lengths, picklists, references
//! and the mapping that fills them.

use std::collections::{BTreeMap, BTreeSet};

use super::{push, Change, Impact, Rule};
use crate::contract::bundle::{FieldSpec, FieldType, Owner};

pub(super) fn diff_fields(
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{base, both_ways, field, rules, values};
    use super::*;

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
                    label: None,
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
}
