//! One behavioural suite for every store backend: each test runs against each backend.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use syncgate::engine::dlq::{DeadLetter, ErrorClass};
use syncgate::sim::Timestamp;
use syncgate::store::{
    self, Deployment, DlqFilter, MemoryStore, PublishOutcome, PublishedVersion, RegistryIndex,
    SqliteStore, Store, StoreError, Verification,
};

/// Every backend this machine can run, with its name.
fn backends() -> Vec<(&'static str, Arc<dyn Store>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(&dir.path().join("nested/state.sqlite")).unwrap();
    vec![
        (
            "memory",
            Arc::new(MemoryStore::new()) as Arc<dyn Store>,
            None,
        ),
        (
            "sqlite-memory",
            store::open(Some("sqlite::memory:")).unwrap(),
            None,
        ),
        ("sqlite-file", Arc::new(file), Some(dir)),
    ]
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn version(v: &str, hash: &str) -> PublishedVersion {
    PublishedVersion {
        partner: "northwind".into(),
        tenant: "sandbox".into(),
        version: v.into(),
        hash: hash.into(),
        published_at: t("2026-01-05T08:00:00Z"),
        content: "{}".into(),
    }
}

fn letter(id: &str, code: &str) -> DeadLetter {
    DeadLetter {
        tenant: "northwind/sandbox".into(),
        object: "Account".into(),
        source_id: id.into(),
        source_version: 1,
        payload: json!({"Name": "Cedar"}),
        class: ErrorClass::Rejected,
        error_code: code.into(),
        message: "m".into(),
        attempts: 1,
        correlation_id: Some("sg-000001".into()),
        first_failed_at: t("2026-01-05T08:00:00Z"),
        last_failed_at: t("2026-01-05T08:00:01Z"),
    }
}

#[tokio::test]
async fn published_versions_are_immutable() {
    for (name, s, _keep) in backends() {
        assert_eq!(
            s.publish(&version("1.0.0", "sha256:a")).await.unwrap(),
            PublishOutcome::Created,
            "{name}"
        );
        assert_eq!(
            s.publish(&version("1.0.0", "sha256:a")).await.unwrap(),
            PublishOutcome::Unchanged,
            "{name}"
        );
        let e = s.publish(&version("1.0.0", "sha256:b")).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{name}: {e}");
        s.publish(&version("1.1.0", "sha256:c")).await.unwrap();
        let all = s.versions("northwind", Some("sandbox")).await.unwrap();
        assert_eq!(
            all.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(),
            ["1.0.0", "1.1.0"],
            "{name}"
        );
        assert_eq!(
            s.version("northwind", "sandbox", "1.0.0")
                .await
                .unwrap()
                .unwrap()
                .hash,
            "sha256:a",
            "{name}"
        );
        assert!(
            s.versions("bluepeak", None).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_deployment_replaces_the_previous_one_in_its_environment() {
    for (name, s, _keep) in backends() {
        let dep = |v: &str, env: &str, at: &str| Deployment {
            partner: "northwind".into(),
            tenant: "sandbox".into(),
            environment: env.into(),
            bundle_version: v.into(),
            engine_version: "0.1.0".into(),
            deployed_at: t(at),
            undeployed_at: None,
        };
        s.record_deployment(&dep("1.0.0", "production", "2026-01-05T08:00:00Z"))
            .await
            .unwrap();
        s.record_deployment(&dep("1.0.0", "staging", "2026-01-05T08:30:00Z"))
            .await
            .unwrap();
        s.record_deployment(&dep("1.1.0", "production", "2026-01-05T09:00:00Z"))
            .await
            .unwrap();
        let prod = s
            .deployments("northwind", Some("sandbox"), Some("production"))
            .await
            .unwrap();
        assert_eq!(prod.len(), 2, "{name}");
        assert_eq!(
            prod[0].undeployed_at,
            Some(t("2026-01-05T09:00:00Z")),
            "{name}"
        );
        assert_eq!(prod[1].undeployed_at, None, "{name}");
        let staging = s
            .deployments("northwind", None, Some("staging"))
            .await
            .unwrap();
        assert_eq!(
            staging[0].undeployed_at, None,
            "{name}: another environment is untouched"
        );
        assert_eq!(
            s.environments().await.unwrap(),
            ["production", "staging"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn verifications_round_trip() {
    for (name, s, _keep) in backends() {
        let v = Verification {
            partner: "northwind".into(),
            tenant: "sandbox".into(),
            bundle_version: "1.3.0".into(),
            bundle_hash: "sha256:x".into(),
            engine_version: "0.1.0".into(),
            success: true,
            seed: 42,
            scenarios: vec!["baseline".into(), "rate-limit-storm".into()],
            verified_at: t("2026-01-05T08:00:00Z"),
            verified_by: "syncgate gate".into(),
        };
        s.record_verification(&v).await.unwrap();
        assert_eq!(
            s.verifications("northwind", "sandbox").await.unwrap(),
            vec![v],
            "{name}"
        );
        assert!(
            s.verifications("northwind", "production")
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_dead_letter_that_fails_again_keeps_its_history() {
    for (name, s, _keep) in backends() {
        let id = s
            .dlq_append(&letter("A-1", "STRING_TOO_LONG"))
            .await
            .unwrap();
        s.dlq_append(&letter("A-2", "INVALID_TYPE")).await.unwrap();
        let again = s
            .dlq_append(&letter("A-1", "REQUIRED_FIELD_MISSING"))
            .await
            .unwrap();
        assert_eq!(id, again, "{name}: same record, same entry");
        let all = s
            .dlq_list(&DlqFilter::tenant("northwind/sandbox"))
            .await
            .unwrap();
        assert_eq!(all.len(), 2, "{name}");
        assert_eq!(all[0].letter.error_code, "REQUIRED_FIELD_MISSING", "{name}");
        assert_eq!(all[0].history.len(), 1, "{name}");
        assert_eq!(all[0].history[0].error_code, "STRING_TOO_LONG", "{name}");
        let only = DlqFilter {
            error_code: Some("INVALID_TYPE".into()),
            ..DlqFilter::tenant("northwind/sandbox")
        };
        assert_eq!(s.dlq_list(&only).await.unwrap().len(), 1, "{name}");
        let taken = s.dlq_take(id).await.unwrap().unwrap();
        assert_eq!(taken.letter.source_id, "A-1", "{name}");
        assert!(
            s.dlq_take(id).await.unwrap().is_none(),
            "{name}: taken once"
        );
        assert_eq!(
            s.dlq_list(&DlqFilter::default()).await.unwrap().len(),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn dedupe_keys_expire() {
    for (name, s, _keep) in backends() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(60);
        assert!(s.check_and_set("k", now, ttl).await.unwrap(), "{name}");
        assert!(
            !s.check_and_set("k", now.plus(Duration::from_secs(59)), ttl)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            s.check_and_set("k", now.plus(Duration::from_secs(60)), ttl)
                .await
                .unwrap(),
            "{name}: expired key is taken over"
        );
        assert!(s.check_and_set("other", now, ttl).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn checkpoints_overwrite() {
    for (name, s, _keep) in backends() {
        assert_eq!(s.checkpoint("accounts").await.unwrap(), None, "{name}");
        s.set_checkpoint("accounts", "2026-01-05T08:00:00Z")
            .await
            .unwrap();
        s.set_checkpoint("accounts", "2026-01-05T09:00:00Z")
            .await
            .unwrap();
        assert_eq!(
            s.checkpoint("accounts").await.unwrap().as_deref(),
            Some("2026-01-05T09:00:00Z"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn sqlite_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.publish(&version("1.0.0", "sha256:a")).await.unwrap();
    }
    let s = store::open(Some(path.to_str().unwrap())).unwrap();
    assert_eq!(s.versions("northwind", None).await.unwrap().len(), 1);
}
