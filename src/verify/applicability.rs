//! What of a built-in scenario applies to a tenant: the library addresses the example data
//! model by object name (`Account`, `Contact`, `Opportunity`), and a tenant that syncs other
//! objects cannot meet a fault rule, an `org_fields` change or a manual edit on an object it
//! does not have. Those parts are left out of its run and reported `not-applicable`, never
//! counted as passed. A user's own scenario files are not adapted: there, naming an object
//! the tenant lacks stays an error or a `faults-fired` failure.

use std::borrow::Cow;

use super::gate::Unchecked;
use super::invariants::names;
use crate::contract::{Bundle, Owner};
use crate::sim::library::is_builtin;
use crate::sim::Scenario;

/// The object a path glob names after `sobjects/` (`/composite/sobjects/Contact/*`), if a
/// literal one.
fn path_object(path: &str) -> Option<&str> {
    let mut segs = path.trim_matches('/').split('/');
    segs.by_ref().find(|s| s.eq_ignore_ascii_case("sobjects"))?;
    segs.next().filter(|s| !s.contains('*'))
}

/// `scenario` as it applies to `bundle`'s tenant, and what was left out of it.
pub fn for_tenant<'s>(
    scenario: &'s Scenario,
    bundle: &Bundle,
) -> (Cow<'s, Scenario>, Vec<Unchecked>) {
    if !is_builtin(scenario) {
        return (Cow::Borrowed(scenario), Vec::new());
    }
    let has = |o: &str| bundle.objects.contains_key(o);
    let tenant = format!("{}/{}", bundle.partner, bundle.tenant);
    let mut notes = Vec::new();
    let mut adapted = scenario.clone();
    adapted.faults.retain(|rule| {
        let object = rule
            .matcher
            .object
            .as_deref()
            .or_else(|| rule.matcher.path.as_deref().and_then(path_object));
        match object {
            Some(o) if !has(o) => {
                notes.push(Unchecked::not_applicable(
                    names::FAULTS_FIRED,
                    &format!(
                        "fault rule `{}` matches {o}, which {tenant} does not sync",
                        rule.name
                    ),
                ));
                false
            }
            _ => true,
        }
    });
    adapted.org_fields.retain(|key, _| {
        let object = key.split_once('.').map_or(key.as_str(), |(o, _)| o);
        if has(object) {
            return true;
        }
        notes.push(Unchecked::not_applicable(
            "org-fields",
            &format!("the scenario changes {key}, but {tenant} does not sync {object}"),
        ));
        false
    });
    let before = adapted.manual_edits.len();
    let mut skipped: Vec<String> = Vec::new();
    adapted.manual_edits.retain(|e| {
        if !has(&e.object) && !skipped.contains(&e.object) {
            skipped.push(e.object.clone());
        }
        has(&e.object)
    });
    if adapted.manual_edits.len() != before {
        notes.push(Unchecked::not_applicable(
            "manual-edits",
            &format!(
                "{} manual edit(s) on {}, which {tenant} does not sync, left out",
                before - adapted.manual_edits.len(),
                skipped.join(", ")
            ),
        ));
    }
    // The sink can only refuse a delivery the consumer makes: one of a rep's changes to a
    // field the tenant's contract says the CRM owns.
    let crm_edit = adapted.manual_edits.iter().any(|e| {
        bundle.object(&e.object).is_some_and(|spec| {
            e.set
                .keys()
                .any(|f| spec.fields.get(f).is_some_and(|f| f.owner == Owner::Crm))
        })
    });
    if adapted.events.sink_refuses > 0 && !crm_edit {
        notes.push(Unchecked::not_applicable(
            names::CRM_CHANGES,
            &format!(
                "the sink's {} refusal(s) left out: no manual edit left changes a field {tenant} \
                 says the CRM owns, so nothing is delivered to refuse",
                adapted.events.sink_refuses
            ),
        ));
        adapted.events.sink_refuses = 0;
        adapted.events.sink_accepts_first = 0;
    }
    if notes.is_empty() {
        (Cow::Borrowed(scenario), notes)
    } else {
        (Cow::Owned(adapted), notes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_edits_and_org_changes_on_objects_a_tenant_lacks_are_left_out_and_said() {
        let mut bundle = Bundle::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("contracts/northwind-outfitters/production"),
        )
        .unwrap();
        let all = crate::sim::library::builtin().unwrap();
        let storm = all.iter().find(|s| s.name == "rate-limit-storm").unwrap();
        let (same, notes) = for_tenant(storm, &bundle);
        assert!(matches!(same, Cow::Borrowed(_)) && notes.is_empty());

        bundle.objects.remove("Contact");
        let (adapted, notes) = for_tenant(storm, &bundle);
        assert_eq!(adapted.faults.len(), 1, "the Contact-only rule is out");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].state, "not-applicable");
        assert!(notes[0].reason.contains("storm-http-date") && notes[0].reason.contains("Contact"));

        bundle.objects.remove("Account");
        let drift = all
            .iter()
            .find(|s| s.name == "partner-changes-field-type")
            .unwrap();
        let (adapted, notes) = for_tenant(drift, &bundle);
        assert!(adapted.org_fields.is_empty());
        assert_eq!(notes[0].invariant, "org-fields");
        let edits = all
            .iter()
            .find(|s| s.name == "manual-edits-during-sync")
            .unwrap();
        let (adapted, notes) = for_tenant(edits, &bundle);
        assert!(adapted
            .manual_edits
            .iter()
            .all(|e| e.object == "Opportunity"));
        assert!(
            notes[0].reason.contains("Account, Contact"),
            "{}",
            notes[0].reason
        );

        // Without Account, Contact and Opportunity no rep's change is delivered: the sink's
        // refusals are left out and said.
        bundle.objects.remove("Opportunity");
        let refusing = all
            .iter()
            .find(|s| s.name == "sink-refuses-then-restart")
            .unwrap();
        assert!(refusing.events.sink_refuses > 0);
        let (adapted, notes) = for_tenant(refusing, &bundle);
        assert_eq!(adapted.events.sink_refuses, 0);
        let note = notes
            .iter()
            .find(|n| n.invariant == names::CRM_CHANGES)
            .unwrap();
        assert!(
            note.reason.contains("refusal(s) left out"),
            "{}",
            note.reason
        );

        // A scenario of the user's own is judged as written.
        let mut own = storm.clone();
        own.path = "mine/rate-limit-storm.yaml".into();
        assert!(for_tenant(&own, &bundle).1.is_empty());
    }
}
