//! Publishing a resolved bundle into the store's index: immutable versions, content hashes,
//! and the breaking-change check against the version it follows.

use std::cmp::Ordering;

use serde::Serialize;

use super::bundle::Bundle;
use super::diff::{diff, BundleDiff};
use crate::sim::Timestamp;
use crate::store::{PublishOutcome, PublishedVersion, RegistryIndex, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "{partner}/{tenant} {version} is already published with different content \
         (published {published}, this bundle is {attempted}); a published version is immutable: \
         bump the version in bundle.toml and publish again"
    )]
    Immutable {
        partner: String,
        tenant: String,
        version: String,
        published: String,
        attempted: String,
    },
    #[error(
        "{partner}/{tenant} {version} has {count} breaking change(s) against {previous}; \
         publish it as {suggested} (a new major version) if the break is intended\n{explanation}"
    )]
    Breaking {
        partner: String,
        tenant: String,
        version: String,
        previous: String,
        suggested: String,
        count: usize,
        explanation: String,
    },
    #[error("the published version {partner}/{tenant} {version} cannot be read back: {message}")]
    Unreadable {
        partner: String,
        tenant: String,
        version: String,
        message: String,
    },
    #[error("failed to publish: {0}")]
    Store(#[from] StoreError),
}

/// What `publish` did.
#[derive(Clone, Debug, Serialize)]
pub struct PublishReport {
    pub partner: String,
    pub tenant: String,
    pub version: String,
    pub hash: String,
    /// `created` or `unchanged` (the same version with the same content was already there).
    pub outcome: &'static str,
    /// The diff against the version this one follows, if there is one.
    pub diff: Option<BundleDiff>,
}

/// A bundle version parsed by the `semver` crate (`None` when it is not semantic).
pub fn parse_version(v: &str) -> Option<semver::Version> {
    semver::Version::parse(v).ok()
}

/// Orders version strings by semver precedence (build metadata ignored, pre-release
/// identifiers compared numerically where numeric: `rc.2` < `rc.10`); unparsable ones sort
/// first, by text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (parse_version(a), parse_version(b)) {
        (Some(x), Some(y)) => x.cmp_precedence(&y),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The highest published version of a tenant, by semver.
pub async fn latest(
    store: &dyn RegistryIndex,
    partner: &str,
    tenant: &str,
) -> Result<Option<PublishedVersion>, StoreError> {
    let mut versions = store.versions(partner, Some(tenant)).await?;
    versions.sort_by(|a, b| compare_versions(&a.version, &b.version));
    Ok(versions.pop())
}

fn read_back(v: &PublishedVersion) -> Result<Bundle, PublishError> {
    Bundle::from_json(&v.content).map_err(|e| PublishError::Unreadable {
        partner: v.partner.clone(),
        tenant: v.tenant.clone(),
        version: v.version.clone(),
        message: e.to_string(),
    })
}

/// Reads a published version back into a bundle.
pub fn published_bundle(v: &PublishedVersion) -> Result<Bundle, PublishError> {
    read_back(v)
}

/// Publishes `bundle`: a no-op if the same version with the same content is there, refused if
/// the version exists with other content, and refused if it breaks the version it follows (the
/// highest published version below it) without a major-version bump.
pub async fn publish(
    store: &dyn RegistryIndex,
    bundle: &Bundle,
    now: Timestamp,
) -> Result<PublishReport, PublishError> {
    let hash = bundle.content_hash();
    let report = |outcome, diff| PublishReport {
        partner: bundle.partner.clone(),
        tenant: bundle.tenant.clone(),
        version: bundle.version.clone(),
        hash: hash.clone(),
        outcome,
        diff,
    };
    let mut versions = store
        .versions(&bundle.partner, Some(&bundle.tenant))
        .await?;
    if let Some(existing) = versions.iter().find(|v| v.version == bundle.version) {
        if existing.hash == hash {
            return Ok(report("unchanged", None));
        }
        return Err(PublishError::Immutable {
            partner: bundle.partner.clone(),
            tenant: bundle.tenant.clone(),
            version: bundle.version.clone(),
            published: existing.hash.clone(),
            attempted: hash,
        });
    }
    versions.retain(|v| compare_versions(&v.version, &bundle.version) == Ordering::Less);
    versions.sort_by(|a, b| compare_versions(&a.version, &b.version));
    let change = match versions.last() {
        None => None,
        Some(previous) => {
            let d = diff(&read_back(previous)?, bundle);
            let major = |v: &str| parse_version(v).map(|s| s.major);
            let bumped = matches!((major(&previous.version), major(&bundle.version)), (Some(a), Some(b)) if b > a);
            if d.is_breaking() && !bumped {
                let next = major(&previous.version).map_or(0, |m| m + 1);
                return Err(PublishError::Breaking {
                    partner: bundle.partner.clone(),
                    tenant: bundle.tenant.clone(),
                    version: bundle.version.clone(),
                    previous: previous.version.clone(),
                    suggested: format!("{next}.0.0"),
                    count: d.breaking().count(),
                    explanation: d.explain(),
                });
            }
            Some(d)
        }
    };
    let outcome = store
        .publish(&PublishedVersion {
            partner: bundle.partner.clone(),
            tenant: bundle.tenant.clone(),
            version: bundle.version.clone(),
            hash: hash.clone(),
            published_at: now,
            content: bundle.to_json(),
        })
        .await;
    match outcome {
        Ok(PublishOutcome::Created) => Ok(report("created", change)),
        Ok(PublishOutcome::Unchanged) => Ok(report("unchanged", None)),
        // Someone published the same version between our read and our write.
        Err(StoreError::Conflict(_)) => Err(PublishError::Immutable {
            partner: bundle.partner.clone(),
            tenant: bundle.tenant.clone(),
            version: bundle.version.clone(),
            published: "another hash".into(),
            attempted: hash,
        }),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::path::Path;

    fn sandbox() -> Bundle {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/bluepeak-logistics/sandbox");
        Bundle::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn semver_orders_numerically_and_pre_releases_first() {
        assert_eq!(compare_versions("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare_versions("2.0.0-rc.1", "2.0.0"), Ordering::Less);
        assert_eq!(compare_versions("2.0.0+build", "2.0.0"), Ordering::Equal);
        assert_eq!(
            compare_versions("2.0.0-rc.10", "2.0.0-rc.2"),
            Ordering::Greater
        );
        assert_eq!(
            compare_versions("2.0.0-rc.2", "2.0.0-beta"),
            Ordering::Greater
        );
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(parse_version("01.2.0"), None);
    }

    #[tokio::test]
    async fn same_content_is_a_no_op_and_other_content_is_refused() {
        let store = MemoryStore::new();
        let b = sandbox();
        let first = publish(&store, &b, at(1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.outcome, "created");
        let again = publish(&store, &b, at(2))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.outcome, "unchanged");
        let mut changed = b.clone();
        changed.limits.daily_api_requests += 1;
        let err = publish(&store, &changed, at(3)).await.err();
        assert!(
            matches!(err, Some(PublishError::Immutable { .. })),
            "{err:?}"
        );
        assert_eq!(
            store.versions(&b.partner, None).await.map(|v| v.len()).ok(),
            Some(1)
        );
    }

    #[tokio::test]
    async fn breaking_changes_need_a_major_bump() {
        let store = MemoryStore::new();
        let b = sandbox();
        publish(&store, &b, at(1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut minor = b.clone();
        minor.version = "2.2.0".into();
        minor.objects.remove("Opportunity");
        let err = publish(&store, &minor, at(2)).await.err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("publish it as 3.0.0"), "{msg}");
        assert!(msg.contains("object-removed"), "{msg}");
        // What the user reads, with the content hashes (which follow the example bundle) redacted.
        let shown = msg
            .replace(&b.short_hash(), "<2.1.0 hash>")
            .replace(&minor.short_hash(), "<2.2.0 hash>");
        insta::assert_snapshot!(shown);
        let mut major = minor.clone();
        major.version = "3.0.0".into();
        let ok = publish(&store, &major, at(3))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.outcome, "created");
        assert!(ok.diff.is_some_and(|d| d.is_breaking()));
        // A safe change needs no bump beyond a new version.
        let mut safe = major.clone();
        safe.version = "3.0.1".into();
        safe.limits.daily_api_requests += 1000;
        let ok = publish(&store, &safe, at(4))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.outcome, "created");
    }
}
