//! Which version is the latest, one rule for every route (latest pact, latest version, the
//! matrix, selectors, webhooks): the highest by semver precedence when every version in
//! question is semantic (`2.0.0-rc.10` after `2.0.0-rc.2`, `1.10.0` after `1.9.0` even if
//! published before it), else the last created (commit SHAs and other opaque versions have
//! no order of their own).

use std::collections::BTreeMap;

use crate::contract::publish::{compare_versions, parse_version};

/// Sorts `items` (given oldest first) from oldest to latest by that rule. Stable: items of
/// the same version keep their creation order.
pub fn sort<T>(items: &mut [T], version: impl Fn(&T) -> &str) {
    if items.iter().all(|i| parse_version(version(i)).is_some()) {
        items.sort_by(|a, b| compare_versions(version(a), version(b)));
    }
}

/// The latest of `items` (given oldest first).
pub fn latest<T>(mut items: Vec<T>, version: impl Fn(&T) -> &str) -> Option<T> {
    sort(&mut items, version);
    items.pop()
}

/// The latest item of each group (`key`), in key order; the rule applies within each group.
pub fn latest_per<'a, T, K: Ord>(
    items: impl IntoIterator<Item = &'a T>,
    key: impl Fn(&T) -> K,
    version: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    let mut groups: BTreeMap<K, Vec<&'a T>> = BTreeMap::new();
    for i in items {
        groups.entry(key(i)).or_default().push(i);
    }
    groups
        .into_values()
        .filter_map(|g| latest(g, |i| version(i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_versions_go_by_precedence_and_opaque_ones_by_creation() {
        let semver = vec!["1.10.0", "2.0.0-rc.10", "1.9.0", "2.0.0-rc.2"];
        assert_eq!(latest(semver, |v| v), Some("2.0.0-rc.10"));
        let shas = vec!["f00d", "1.9.0", "beef"];
        assert_eq!(latest(shas, |v| v), Some("beef"));
        let mut same = vec![("1.0.0", 1), ("0.9.0", 2), ("1.0.0", 3)];
        sort(&mut same, |v| v.0);
        assert_eq!(same, [("0.9.0", 2), ("1.0.0", 1), ("1.0.0", 3)]);
    }

    #[test]
    fn each_group_has_its_own_latest() {
        let items = [("a", "1.10.0"), ("b", "x2"), ("a", "1.9.0"), ("b", "x1")];
        let got = latest_per(&items, |i| i.0, |i| i.1);
        assert_eq!(got, [&("a", "1.10.0"), &("b", "x1")]);
    }
}
