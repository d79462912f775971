//! One behavioural suite for every store backend: each test runs against each backend,
//! PostgreSQL included when it is reachable (in a schema of its own per test).

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use syncgate::engine::dlq::{DeadLetter, ErrorClass};
use syncgate::sim::Timestamp;
use syncgate::store::{
    self, AppliedVersion, CheckpointStore, Deployment, DlqFilter, Lease, LeaseStore, LetterStatus,
    MemoryStore, PublishOutcome, PublishedVersion, RegistryIndex, SqliteStore, Store, StoreError,
    Verification, WorkItem,
};

/// Every backend this machine can run, by name; PostgreSQL's schema is dropped with it.
struct Backends {
    stores: Vec<(&'static str, Arc<dyn Store>)>,
    _dir: tempfile::TempDir,
    _pg: Option<support::PgSchema>,
}

impl Backends {
    fn each(&self) -> impl Iterator<Item = (&'static str, &Arc<dyn Store>)> {
        self.stores.iter().map(|(n, s)| (*n, s))
    }
}

async fn backends(test: &str) -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(&dir.path().join("nested/state.sqlite")).unwrap();
    let mut stores: Vec<(&'static str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite-memory",
            store::open(Some("sqlite::memory:")).unwrap(),
        ),
        ("sqlite-file", Arc::new(file)),
    ];
    let pg = support::postgres(test).await;
    if let Some(pg) = &pg {
        stores.push(("postgres", pg.store.clone() as Arc<dyn Store>));
    }
    Backends {
        stores,
        _dir: dir,
        _pg: pg,
    }
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
        idempotency_key: format!("northwind/sandbox|Account|{id}|upsert|1"),
        headers_sent: [(
            "Sforce-Call-Options".to_string(),
            "client=syncgate".to_string(),
        )]
        .into(),
    }
}

#[tokio::test]
async fn published_versions_are_immutable() {
    let all = backends("published_versions_are_immutable").await;
    for (name, s) in all.each() {
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
        assert_eq!(s.partners().await.unwrap(), ["northwind"], "{name}");
    }
}

#[tokio::test]
async fn a_deployment_replaces_the_previous_one_in_its_environment() {
    let all = backends("a_deployment_replaces_the_previous_one_in_its_environment").await;
    for (name, s) in all.each() {
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
    let all = backends("verifications_round_trip").await;
    for (name, s) in all.each() {
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
            engine_config_hash: Some("sha256:c".into()),
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
    let all = backends("a_dead_letter_that_fails_again_keeps_its_history").await;
    for (name, s) in all.each() {
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

/// A batch of letters (and of rejection keys) stored in one call is what one call per
/// letter stores: a record twice in the batch keeps one entry with the first in its
/// history, and a key twice is set once.
#[tokio::test]
async fn a_batch_of_letters_and_keys_is_stored_like_one_at_a_time() {
    let all = backends("a_batch_of_letters_and_keys_is_stored_like_one_at_a_time").await;
    for (name, s) in all.each() {
        let ids = s
            .dlq_append_all(&[
                letter("B-1", "STRING_TOO_LONG"),
                letter("B-2", "INVALID_TYPE"),
                letter("B-1", "REQUIRED_FIELD_MISSING"),
            ])
            .await
            .unwrap();
        assert_eq!(ids.len(), 3, "{name}");
        assert_eq!(ids[0], ids[2], "{name}: same record, same entry");
        assert_ne!(ids[0], ids[1], "{name}");
        let listed = s
            .dlq_list(&DlqFilter::tenant("northwind/sandbox"))
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{name}");
        let b1 = listed.iter().find(|l| l.letter.source_id == "B-1").unwrap();
        assert_eq!(b1.letter.error_code, "REQUIRED_FIELD_MISSING", "{name}");
        assert_eq!(b1.history.len(), 1, "{name}");
        assert_eq!(b1.history[0].error_code, "STRING_TOO_LONG", "{name}");
        assert!(s.dlq_append_all(&[]).await.unwrap().is_empty(), "{name}");

        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(60);
        let keys = ["r1".to_string(), "r2".to_string(), "r1".to_string()];
        let set = s.check_and_set_all(&keys, now, ttl).await.unwrap();
        assert_eq!(set, vec![true, true, false], "{name}");
        assert!(s.is_live("r2", now).await.unwrap(), "{name}");
        assert!(!s.check_and_set("r1", now, ttl).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn dedupe_keys_expire() {
    let all = backends("dedupe_keys_expire").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(60);
        assert!(!s.is_live("k", now).await.unwrap(), "{name}: unset");
        assert!(s.check_and_set("k", now, ttl).await.unwrap(), "{name}");
        assert!(
            s.is_live("k", now.plus(Duration::from_secs(59)))
                .await
                .unwrap(),
            "{name}: live"
        );
        assert!(
            !s.is_live("k", now.plus(Duration::from_secs(60)))
                .await
                .unwrap(),
            "{name}: expired"
        );
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
async fn an_applied_newer_version_supersedes_the_dead_letter_of_an_older_one() {
    let all = backends("an_applied_newer_version_supersedes_the_dead_letter").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(60);
        let applied = |id: &'static str, key: &'static str, version: u64| AppliedVersion {
            key,
            tenant: "northwind/sandbox",
            object: "Account",
            source_id: id,
            version,
        };
        let mut v2 = letter("A-1", "STRING_TOO_LONG");
        v2.source_version = 2;
        let id = s.dlq_append(&v2).await.unwrap();
        s.dlq_append(&letter("A-2", "STRING_TOO_LONG"))
            .await
            .unwrap();
        assert_eq!(
            s.applied_version("northwind/sandbox", "Account", "A-1")
                .await
                .unwrap(),
            None,
            "{name}"
        );
        // An older version landing changes nothing: the letter is newer.
        assert!(s
            .mark_applied(&applied("A-1", "k1", 1), now, ttl)
            .await
            .unwrap());
        let listed = s.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(listed[0].status, LetterStatus::Queued, "{name}");
        // Version 3 lands: the v2 letter is retired, kept, and says by what.
        assert!(s
            .mark_applied(&applied("A-1", "k3", 3), now, ttl)
            .await
            .unwrap());
        assert!(
            s.is_live("k3", now).await.unwrap(),
            "{name}: the key is set too"
        );
        assert!(
            !s.mark_applied(&applied("A-1", "k3", 3), now, ttl)
                .await
                .unwrap(),
            "{name}: a live key is reported as such"
        );
        // A late, older version never lowers the newest applied one.
        s.mark_applied(&applied("A-1", "k2", 2), now, ttl)
            .await
            .unwrap();
        assert_eq!(
            s.applied_version("northwind/sandbox", "Account", "A-1")
                .await
                .unwrap(),
            Some(3),
            "{name}"
        );
        let listed = s.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(
            listed.len(),
            2,
            "{name}: superseded letters stay in history"
        );
        assert_eq!(listed[0].id, id, "{name}");
        assert_eq!(listed[0].status, LetterStatus::Superseded, "{name}");
        assert_eq!(listed[0].superseded_by, Some(3), "{name}");
        assert_eq!(
            listed[1].status,
            LetterStatus::Queued,
            "{name}: other records untouched"
        );
        // A letter for a version already overtaken is stored superseded at once; a newer
        // one is queued again with the superseded one in its history.
        s.dlq_append(&v2).await.unwrap();
        let again = s.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(again[0].status, LetterStatus::Superseded, "{name}");
        let mut v4 = letter("A-1", "REQUIRED_FIELD_MISSING");
        v4.source_version = 4;
        s.dlq_append(&v4).await.unwrap();
        let again = s.dlq_list(&DlqFilter::default()).await.unwrap();
        assert_eq!(again[0].status, LetterStatus::Queued, "{name}");
        assert_eq!(again[0].superseded_by, None, "{name}");
        assert_eq!(again[0].history.len(), 2, "{name}");
        // Retiring by hand (what a redrive does when the store knows a newer version).
        assert!(
            !s.dlq_supersede("northwind/sandbox", "Account", "A-1", 3)
                .await
                .unwrap(),
            "{name}: v3 does not overtake v4"
        );
        assert!(
            s.dlq_supersede("northwind/sandbox", "Account", "A-1", 4)
                .await
                .unwrap(),
            "{name}"
        );
        let taken = s.dlq_take(id).await.unwrap().unwrap();
        assert_eq!(taken.status, LetterStatus::Superseded, "{name}");
    }
}

#[tokio::test]
async fn a_batch_of_applied_versions_is_marked_in_one_call_like_one_at_a_time() {
    let all = backends("a_batch_of_applied_versions_is_marked_in_one_call").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(60);
        let applied = |id: &'static str, key: &'static str, version: u64| AppliedVersion {
            key,
            tenant: "northwind/sandbox",
            object: "Account",
            source_id: id,
            version,
        };
        let mut v1 = letter("A-1", "STRING_TOO_LONG");
        v1.source_version = 1;
        s.dlq_append(&v1).await.unwrap();
        s.dlq_append(&letter("A-9", "STRING_TOO_LONG"))
            .await
            .unwrap();
        assert!(s.check_and_set("b2", now, ttl).await.unwrap());
        let set = s
            .mark_applied_all(
                &[
                    applied("A-1", "b1", 2),
                    applied("A-2", "b2", 1),
                    applied("A-3", "b3", 5),
                    applied("A-3", "b3", 5),
                ],
                now,
                ttl,
            )
            .await
            .unwrap();
        assert_eq!(
            set,
            vec![true, false, true, false],
            "{name}: a live key (set before, or earlier in the batch) is reported as such"
        );
        for key in ["b1", "b2", "b3"] {
            assert!(s.is_live(key, now).await.unwrap(), "{name}: {key}");
        }
        for (id, v) in [("A-1", 2), ("A-2", 1), ("A-3", 5)] {
            assert_eq!(
                s.applied_version("northwind/sandbox", "Account", id)
                    .await
                    .unwrap(),
                Some(v),
                "{name}: {id}"
            );
        }
        let listed = s.dlq_list(&DlqFilter::default()).await.unwrap();
        let status = |id: &str| {
            listed
                .iter()
                .find(|l| l.letter.source_id == id)
                .map(|l| l.status)
        };
        assert_eq!(status("A-1"), Some(LetterStatus::Superseded), "{name}");
        assert_eq!(status("A-9"), Some(LetterStatus::Queued), "{name}");
        assert!(s.mark_applied_all(&[], now, ttl).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn checkpoints_overwrite() {
    let all = backends("checkpoints_overwrite").await;
    for (name, s) in all.each() {
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

fn items(keys: &[(&str, i32)]) -> Vec<WorkItem> {
    keys.iter()
        .map(|(k, stage)| WorkItem {
            key: (*k).into(),
            stage: *stage,
            payload: format!("payload of {k}"),
        })
        .collect()
}

const TENANT: &str = "northwind/sandbox";

#[tokio::test]
async fn leases_split_work_between_workers() {
    let all = backends("leases_split_work_between_workers").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(30);
        let work = items(&[("b1", 0), ("b2", 0), ("b3", 0), ("b4", 0), ("b5", 0)]);
        assert_eq!(s.lease_enqueue(TENANT, &work).await.unwrap(), 5, "{name}");
        assert_eq!(
            s.lease_enqueue(TENANT, &work[..2]).await.unwrap(),
            0,
            "{name}: enqueueing a key again is a no-op"
        );
        let a = s.lease_claim(TENANT, "a", 2, now, ttl).await.unwrap();
        let b = s.lease_claim(TENANT, "b", 10, now, ttl).await.unwrap();
        assert_eq!(
            a.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
            ["b1", "b2"],
            "{name}: oldest first"
        );
        assert_eq!(b.len(), 3, "{name}");
        let keys: BTreeSet<&str> = a.iter().chain(&b).map(|l| l.key.as_str()).collect();
        assert_eq!(keys.len(), 5, "{name}: nobody gets an item twice");
        assert_eq!(a[0].payload, "payload of b1", "{name}");
        assert_eq!(a[0].expires_at, now.plus(ttl), "{name}");
        assert!(
            s.lease_claim(TENANT, "c", 10, now, ttl)
                .await
                .unwrap()
                .is_empty(),
            "{name}: live leases are not offered"
        );
        assert!(
            s.lease_claim("bluepeak/sandbox", "c", 10, now, ttl)
                .await
                .unwrap()
                .is_empty(),
            "{name}: another tenant's queue is separate"
        );
        for l in a.iter().chain(&b) {
            s.lease_complete(l).await.unwrap();
        }
        assert_eq!(s.lease_open(TENANT).await.unwrap(), 0, "{name}");
        assert!(
            s.lease_claim(TENANT, "c", 10, now.plus(ttl * 10), ttl)
                .await
                .unwrap()
                .is_empty(),
            "{name}: done work is never offered again"
        );
    }
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_old_holder_cannot_complete_it() {
    let all = backends("an_expired_lease_is_taken_over").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(30);
        s.lease_enqueue(TENANT, &items(&[("b1", 0)])).await.unwrap();
        let held = s.lease_claim(TENANT, "a", 1, now, ttl).await.unwrap();
        assert_eq!(held.len(), 1, "{name}");
        let renewed = s
            .lease_renew(&held[0], now.plus(Duration::from_secs(20)), ttl)
            .await
            .unwrap();
        assert_eq!(renewed, now.plus(Duration::from_secs(50)), "{name}");
        assert!(
            s.lease_claim(TENANT, "b", 1, now.plus(Duration::from_secs(49)), ttl)
                .await
                .unwrap()
                .is_empty(),
            "{name}: a renewed lease is still held"
        );
        let taken = s
            .lease_claim(TENANT, "b", 1, now.plus(Duration::from_secs(50)), ttl)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1, "{name}: expired, so b takes it");
        assert_eq!(taken[0].key, "b1", "{name}");
        assert!(
            taken[0].token > held[0].token,
            "{name}: a new fencing token"
        );
        let stale: Lease = held[0].clone();
        let e = s.lease_complete(&stale).await.unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{name}: {e}");
        let e = s
            .lease_renew(&stale, now.plus(Duration::from_secs(51)), ttl)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{name}: {e}");
        assert_eq!(s.lease_open(TENANT).await.unwrap(), 1, "{name}");
        s.lease_complete(&taken[0]).await.unwrap();
        assert_eq!(s.lease_open(TENANT).await.unwrap(), 0, "{name}");
        let e = s.lease_complete(&taken[0]).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Conflict(_)),
            "{name}: completing twice fails: {e}"
        );
    }
}

#[tokio::test]
async fn later_stages_wait_for_earlier_ones() {
    let all = backends("later_stages_wait_for_earlier_ones").await;
    for (name, s) in all.each() {
        let now = t("2026-01-05T08:00:00Z");
        let ttl = Duration::from_secs(30);
        s.lease_enqueue(TENANT, &items(&[("contacts-1", 1), ("accounts-1", 0)]))
            .await
            .unwrap();
        let first = s.lease_claim(TENANT, "a", 5, now, ttl).await.unwrap();
        assert_eq!(
            first.iter().map(|l| l.key.as_str()).collect::<Vec<_>>(),
            ["accounts-1"],
            "{name}: parents first"
        );
        assert!(
            s.lease_claim(TENANT, "b", 5, now, ttl)
                .await
                .unwrap()
                .is_empty(),
            "{name}: children wait while a parent batch is in flight"
        );
        s.lease_complete(&first[0]).await.unwrap();
        let next = s.lease_claim(TENANT, "b", 5, now, ttl).await.unwrap();
        assert_eq!(next.len(), 1, "{name}");
        assert_eq!(next[0].stage, 1, "{name}");
    }
}

#[tokio::test]
async fn postgres_is_opened_from_its_url_and_migrated_once() {
    let Some(pg) = support::postgres("postgres_is_opened_from_its_url").await else {
        return;
    };
    // store::open blocks; it must also work from inside this (single-threaded) runtime.
    let url = format!(
        "{}?options=-csearch_path%3D{}",
        support::pg_url(),
        pg.schema
    );
    let s = store::open(Some(&url)).unwrap();
    s.publish(&version("1.0.0", "sha256:a")).await.unwrap();
    assert_eq!(
        pg.store.versions("northwind", None).await.unwrap().len(),
        1,
        "the URL's search_path reached the same schema"
    );
    // Opening several times at once: the advisory lock serialises the migration runs.
    let opens = (0..4).map(|_| pg.another());
    for s in futures_util::future::join_all(opens).await {
        assert!(s.versions("northwind", None).await.is_ok());
    }
    let again = pg.another().await;
    assert_eq!(
        again
            .verifications("northwind", "sandbox")
            .await
            .unwrap()
            .len(),
        0
    );
}

/// A store that cannot be reached or opened keeps the driver's error as its typed source:
/// a printer walking `source()` reaches the refused connection (an `io::Error`), and a
/// SQLite file that cannot be opened keeps SQLite's own error.
#[test]
fn a_backend_error_keeps_its_cause_as_its_source() {
    fn causes(e: &StoreError) -> Vec<&(dyn std::error::Error + 'static)> {
        let mut out = Vec::new();
        let mut next = std::error::Error::source(e);
        while let Some(cause) = next {
            out.push(cause);
            next = cause.source();
        }
        out
    }
    // Port 1 refuses at once (nothing listens there).
    let Err(refused) = store::open(Some("postgres://postgres@127.0.0.1:1/test")) else {
        panic!("a PostgreSQL on port 1 was reached");
    };
    assert!(matches!(refused, StoreError::Backend { .. }), "{refused}");
    let io = causes(&refused)
        .into_iter()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("no io::Error under {refused:?}"));
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused, "{io}");
    assert!(
        store::cause_chain(&refused).contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{}",
        store::cause_chain(&refused)
    );

    // A directory where the database file should be.
    let dir = tempfile::tempdir().unwrap();
    let Err(unopenable) = SqliteStore::open(dir.path()) else {
        panic!("a directory opened as a SQLite database");
    };
    assert!(
        causes(&unopenable)
            .iter()
            .any(|c| c.downcast_ref::<rusqlite::Error>().is_some()),
        "no rusqlite::Error under {unopenable:?}"
    );
}

#[tokio::test]
async fn postgres_fresh_schemas_migrate_concurrently() {
    let Some(pg) = support::postgres("postgres_fresh_schemas_migrate").await else {
        return;
    };
    // A fresh schema, opened by four connections at once: exactly one applies the migrations.
    let schema = format!("{}_fresh", pg.schema);
    let url = support::pg_url();
    let opens = (0..4).map(|_| syncgate::store::PgStore::connect(&url, Some(&schema)));
    let stores = futures_util::future::join_all(opens).await;
    let mut stores: Vec<_> = stores.into_iter().map(|s| s.unwrap()).collect();
    // Dropped (with its schema) even if an assertion below fails.
    let first = support::PgSchema {
        store: Arc::new(stores.remove(0)),
        schema: schema.clone(),
    };
    first
        .store
        .set_checkpoint("accounts", "cursor-1")
        .await
        .unwrap();
    assert_eq!(
        stores[2].checkpoint("accounts").await.unwrap().as_deref(),
        Some("cursor-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_claims_never_share_an_item() {
    let Some(pg) = support::postgres("postgres_concurrent_claims").await else {
        return;
    };
    let work: Vec<WorkItem> = (0..60)
        .map(|i| WorkItem {
            key: format!("batch-{i:03}"),
            stage: 0,
            payload: String::new(),
        })
        .collect();
    pg.store.lease_enqueue(TENANT, &work).await.unwrap();
    let now = t("2026-01-05T08:00:00Z");
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = Arc::new(pg.another().await);
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let leases = s
                    .lease_claim(TENANT, &format!("w{w}"), 3, now, Duration::from_secs(60))
                    .await
                    .unwrap();
                if leases.is_empty() {
                    return got;
                }
                for l in leases {
                    s.lease_complete(&l).await.unwrap();
                    got.push(l.key);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 60, "every item claimed");
    assert_eq!(distinct.len(), 60, "no item claimed twice");
    assert_eq!(pg.store.lease_open(TENANT).await.unwrap(), 0);
}

/// The backends that also keep the Pact Broker API's index.
async fn pact_backends(
    test: &str,
) -> (
    Vec<(&'static str, Arc<dyn store::BrokerStore>)>,
    tempfile::TempDir,
    Option<support::PgSchema>,
) {
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteStore::open(&dir.path().join("pacts.sqlite")).unwrap();
    let mut stores: Vec<(&'static str, Arc<dyn store::BrokerStore>)> = vec![
        (
            "sqlite-memory",
            store::open_broker(Some("sqlite::memory:")).unwrap(),
        ),
        ("sqlite-file", Arc::new(file)),
    ];
    let pg = support::postgres(test).await;
    if let Some(pg) = &pg {
        stores.push(("postgres", pg.store.clone() as Arc<dyn store::BrokerStore>));
    }
    (stores, dir, pg)
}

#[tokio::test]
async fn the_pact_index_behaves_the_same_on_every_backend() {
    use syncgate::store::{
        PactPublication, PactVerificationResult, PacticipantDeployment, PacticipantRelease,
    };
    let (all, _dir, _pg) = pact_backends("the_pact_index_behaves_the_same").await;
    let publication = |provider: &str, sha: &str| PactPublication {
        consumer: "syncgate-engine".into(),
        consumer_version: "1.0.0".into(),
        provider: provider.into(),
        branch: Some("main".into()),
        tags: vec!["prod".into()],
        sha: sha.into(),
        content: "{}".into(),
        published_at: Timestamp::from_millis(1),
    };
    for (name, s) in &all {
        // All or nothing: b is new, a conflicts, neither is written.
        let first = s.pacts_publish(&[publication("a", "1")]).await.unwrap();
        assert_eq!(first, [PublishOutcome::Created], "{name}");
        let mixed = s
            .pacts_publish(&[publication("b", "2"), publication("a", "changed")])
            .await;
        assert!(
            matches!(mixed, Err(StoreError::Conflict(_))),
            "{name}: {mixed:?}"
        );
        let again = s.pacts_publish(&[publication("a", "1")]).await.unwrap();
        assert_eq!(again, [PublishOutcome::Unchanged], "{name}");
        let pacts = s.pacts(None, None).await.unwrap();
        assert_eq!(pacts, [publication("a", "1")], "{name}");
        assert!(s.pacts(Some("b"), None).await.unwrap().is_empty(), "{name}");

        // Versions gather a branch and tags.
        s.pacticipant_version_upsert("app", "1", Some("main"), None, t("2026-01-01T00:00:00Z"))
            .await
            .unwrap();
        s.pacticipant_version_upsert("app", "1", None, Some("t1"), t("2026-01-02T00:00:00Z"))
            .await
            .unwrap();
        let v = s
            .pacticipant_version_upsert("app", "1", None, Some("t2"), t("2026-01-03T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(v.branch.as_deref(), Some("main"), "{name}");
        assert_eq!(v.tags, ["t1", "t2"], "{name}");
        assert_eq!(v.created_at, t("2026-01-01T00:00:00Z"), "{name}");
        s.pacticipant_version_upsert("app", "2", None, None, t("2026-01-04T00:00:00Z"))
            .await
            .unwrap();
        let versions: Vec<String> = s
            .pacticipant_versions("app")
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, ["1", "2"], "{name}");

        // Verification results, oldest first.
        for (i, ok) in [false, true].into_iter().enumerate() {
            let id = s
                .pact_verification_record(&PactVerificationResult {
                    id: 0,
                    consumer: "syncgate-engine".into(),
                    provider: "a".into(),
                    pact_sha: "1".into(),
                    provider_version: format!("2.{i}"),
                    success: ok,
                    body: "{}".into(),
                    verified_at: Timestamp::from_millis(10 + i as i64),
                })
                .await
                .unwrap();
            assert!(id > 0, "{name}");
        }
        let results = s
            .pact_verifications("a", Some("syncgate-engine"))
            .await
            .unwrap();
        let got: Vec<(String, bool)> = results
            .iter()
            .map(|r| (r.provider_version.clone(), r.success))
            .collect();
        assert_eq!(got, [("2.0".into(), false), ("2.1".into(), true)], "{name}");

        // A deployment replaces the one in the same environment and instance only.
        let deploy = |version: &str, instance: Option<&str>, at: i64| PacticipantDeployment {
            id: 0,
            pacticipant: "app".into(),
            version: version.into(),
            environment: "production".into(),
            application_instance: instance.map(str::to_string),
            deployed_at: Timestamp::from_millis(at),
            undeployed_at: None,
        };
        s.pacticipant_deploy(&deploy("1", None, 1)).await.unwrap();
        s.pacticipant_deploy(&deploy("1", Some("x"), 2))
            .await
            .unwrap();
        s.pacticipant_deploy(&deploy("2", None, 3)).await.unwrap();
        let live: Vec<(String, Option<String>)> = s
            .pacticipant_deployments(Some("app"), Some("production"))
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.undeployed_at.is_none())
            .map(|d| (d.version, d.application_instance))
            .collect();
        assert_eq!(
            live,
            [("1".into(), Some("x".into())), ("2".into(), None)],
            "{name}"
        );

        // Releases keep earlier ones; the same release twice is one record.
        let release = |version: &str, at: i64| PacticipantRelease {
            id: 0,
            pacticipant: "app".into(),
            version: version.into(),
            environment: "production".into(),
            released_at: Timestamp::from_millis(at),
            support_ended_at: None,
        };
        let r1 = s.pacticipant_release(&release("1", 10)).await.unwrap();
        let r2 = s.pacticipant_release(&release("2", 20)).await.unwrap();
        assert_ne!(r1, r2, "{name}");
        assert_eq!(
            s.pacticipant_release(&release("1", 30)).await.unwrap(),
            r1,
            "{name}"
        );
        let released: Vec<String> = s
            .pacticipant_releases(Some("app"), None)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(released, ["1", "2"], "{name}");
    }
}

#[tokio::test]
async fn webhooks_and_their_delivery_log_behave_the_same_on_every_backend() {
    use syncgate::store::{ExecutionStatus, Webhook, WebhookExecution};
    let (all, _dir, _pg) = pact_backends("webhooks_and_their_delivery_log").await;
    let hook = |uuid: &str, provider: Option<&str>, at: i64| Webhook {
        uuid: uuid.into(),
        description: format!("hook {uuid}"),
        consumer: None,
        provider: provider.map(str::to_string),
        events: vec![
            "contract_published".into(),
            "contract_content_changed".into(),
        ],
        request: r#"{"method":"POST","url":"https://ci.test/"}"#.into(),
        enabled: true,
        created_at: Timestamp::from_millis(at),
        updated_at: Timestamp::from_millis(at),
    };
    let attempt =
        |uuid: &str, n: u32, status: ExecutionStatus, code: Option<u16>| WebhookExecution {
            id: 0,
            webhook_uuid: uuid.into(),
            delivery: "d1".into(),
            event: "contract_published".into(),
            consumer: "c".into(),
            provider: "p".into(),
            attempt: n,
            status,
            response_code: code,
            error: (status != ExecutionStatus::Success).then(|| "the receiver answered 500".into()),
            executed_at: Timestamp::from_millis(100 + i64::from(n)),
        };
    for (name, s) in &all {
        assert!(
            s.webhook_put(&hook("b", Some("p"), 1)).await.unwrap(),
            "{name}"
        );
        assert!(s.webhook_put(&hook("a", None, 2)).await.unwrap(), "{name}");
        // Replacing keeps the place in the list and the creation time given by the caller.
        let mut changed = hook("b", Some("q"), 1);
        changed.enabled = false;
        changed.updated_at = Timestamp::from_millis(3);
        assert!(!s.webhook_put(&changed).await.unwrap(), "{name}");
        let listed = s.webhooks().await.unwrap();
        assert_eq!(listed, [changed.clone(), hook("a", None, 2)], "{name}");
        assert_eq!(s.webhook("b").await.unwrap(), Some(changed), "{name}");
        assert_eq!(s.webhook("zzz").await.unwrap(), None, "{name}");

        let first = attempt("b", 1, ExecutionStatus::Failure, Some(500));
        let second = attempt("b", 2, ExecutionStatus::Success, Some(204));
        let id1 = s.webhook_execution_record(&first).await.unwrap();
        let id2 = s.webhook_execution_record(&second).await.unwrap();
        s.webhook_execution_record(&attempt("a", 1, ExecutionStatus::Error, None))
            .await
            .unwrap();
        assert!(id2 > id1, "{name}");
        let log = s.webhook_executions("b").await.unwrap();
        let expected = [
            WebhookExecution { id: id1, ..first },
            WebhookExecution { id: id2, ..second },
        ];
        assert_eq!(log, expected, "{name}");

        // Deleting takes the log with it; deleting again finds nothing.
        assert!(s.webhook_delete("b").await.unwrap(), "{name}");
        assert!(!s.webhook_delete("b").await.unwrap(), "{name}");
        assert!(
            s.webhook_executions("b").await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(s.webhook_executions("a").await.unwrap().len(), 1, "{name}");
        assert_eq!(s.webhooks().await.unwrap().len(), 1, "{name}");
    }
}
