//! Object rules: an object removed, added or fed from another source; a changed external ID
//! or delete policy.

use std::collections::BTreeMap;

use super::fields::diff_fields;
use super::{push, Change, Impact, Rule};
use crate::contract::bundle::{DeletePolicy, ObjectSpec};

pub(super) fn diff_objects(
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
#[cfg(test)]
mod tests {
    use super::super::diff;
    use super::super::fixtures::{base, both_ways};
    use super::*;

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
}
