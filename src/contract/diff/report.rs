//! The two sides of a diff and the explanation people read: a header, then one line per
//! change with its reason.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Change, Impact};
use crate::contract::bundle::Bundle;

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
        write_changes(&mut out, &self.changes);
        out
    }
}

/// One line per change (its impact, rule and place) and its reason below: the list both a
/// bundle diff and an org's drift (`check-org`) print.
pub fn write_changes(out: &mut String, changes: &[Change]) {
    for c in changes {
        let mark = match c.impact {
            Impact::Breaking => "BREAKING",
            Impact::Safe => "safe    ",
        };
        let _ = writeln!(out, "  {mark} {:<22} {}", c.rule.id(), c.at);
        let _ = writeln!(out, "           {}", c.reason);
    }
}
#[cfg(test)]
mod tests {
    use super::super::diff;
    use super::super::fixtures::{base, field, interactions_mut, values};

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
