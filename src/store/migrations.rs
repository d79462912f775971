//! Versioned schema migrations, applied in order on open and recorded in `schema_migrations`.
//!
//! Each migration carries its SQL for every backend; a version is the same change on both,
//! so a database of either kind at version N has the same tables.

use super::{StoreError, StoreResult};

/// One migration: its version, a name, and its SQL for each backend.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The newest schema version this build knows.
pub fn newest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The migrations a database at schema version `current` still needs, oldest first. A
/// database newer than this build is refused: this build would not know its tables.
pub fn pending(current: i64) -> StoreResult<impl Iterator<Item = &'static Migration>> {
    let newest = newest();
    if current > newest {
        return Err(StoreError::failed(format!(
            "the database is at schema version {current}, newer than this build knows ({newest}); upgrade syncgate"
        )));
    }
    Ok(MIGRATIONS.iter().filter(move |m| m.version > current))
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "registry index, dead letters, dedupe keys, checkpoints",
        sqlite: "
        CREATE TABLE published_versions (
            partner TEXT NOT NULL, tenant TEXT NOT NULL, version TEXT NOT NULL,
            hash TEXT NOT NULL, published_at INTEGER NOT NULL, content TEXT NOT NULL,
            PRIMARY KEY (partner, tenant, version));
        CREATE TABLE environments (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            partner TEXT NOT NULL, tenant TEXT NOT NULL, environment TEXT NOT NULL,
            bundle_version TEXT NOT NULL, engine_version TEXT NOT NULL,
            deployed_at INTEGER NOT NULL, undeployed_at INTEGER);
        CREATE INDEX deployments_by_tenant ON deployments (partner, tenant, environment);
        CREATE TABLE verifications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            partner TEXT NOT NULL, tenant TEXT NOT NULL, bundle_version TEXT NOT NULL,
            bundle_hash TEXT NOT NULL, engine_version TEXT NOT NULL, success INTEGER NOT NULL,
            seed INTEGER NOT NULL, scenarios TEXT NOT NULL, verified_at INTEGER NOT NULL,
            verified_by TEXT NOT NULL);
        CREATE INDEX verifications_by_tenant ON verifications (partner, tenant);
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL, object TEXT NOT NULL, source_id TEXT NOT NULL,
            error_code TEXT NOT NULL, letter TEXT NOT NULL, history TEXT NOT NULL,
            UNIQUE (tenant, object, source_id));
        CREATE TABLE dedupe_keys (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
        CREATE TABLE checkpoints (scope TEXT PRIMARY KEY, value TEXT NOT NULL);
    ",
        postgres: "
        CREATE TABLE published_versions (
            partner TEXT NOT NULL, tenant TEXT NOT NULL, version TEXT NOT NULL,
            hash TEXT NOT NULL, published_at BIGINT NOT NULL, content TEXT NOT NULL,
            seq BIGSERIAL NOT NULL,
            PRIMARY KEY (partner, tenant, version));
        CREATE TABLE environments (name TEXT PRIMARY KEY, seq BIGSERIAL NOT NULL);
        CREATE TABLE deployments (
            id BIGSERIAL PRIMARY KEY,
            partner TEXT NOT NULL, tenant TEXT NOT NULL, environment TEXT NOT NULL,
            bundle_version TEXT NOT NULL, engine_version TEXT NOT NULL,
            deployed_at BIGINT NOT NULL, undeployed_at BIGINT);
        CREATE INDEX deployments_by_tenant ON deployments (partner, tenant, environment);
        CREATE TABLE verifications (
            id BIGSERIAL PRIMARY KEY,
            partner TEXT NOT NULL, tenant TEXT NOT NULL, bundle_version TEXT NOT NULL,
            bundle_hash TEXT NOT NULL, engine_version TEXT NOT NULL, success BOOLEAN NOT NULL,
            seed BIGINT NOT NULL, scenarios TEXT NOT NULL, verified_at BIGINT NOT NULL,
            verified_by TEXT NOT NULL);
        CREATE INDEX verifications_by_tenant ON verifications (partner, tenant);
        CREATE TABLE dead_letters (
            id BIGSERIAL PRIMARY KEY,
            tenant TEXT NOT NULL, object TEXT NOT NULL, source_id TEXT NOT NULL,
            error_code TEXT NOT NULL, letter TEXT NOT NULL, history TEXT NOT NULL,
            UNIQUE (tenant, object, source_id));
        CREATE TABLE dedupe_keys (key TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
        CREATE TABLE checkpoints (scope TEXT PRIMARY KEY, value TEXT NOT NULL);
    ",
    },
    Migration {
        version: 2,
        name: "Pact Broker API: pacts, verification results, pacticipant versions, deployments",
        sqlite: "
        CREATE TABLE pact_publications (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            consumer TEXT NOT NULL, consumer_version TEXT NOT NULL, provider TEXT NOT NULL,
            branch TEXT, tags TEXT NOT NULL, sha TEXT NOT NULL, content TEXT NOT NULL,
            published_at INTEGER NOT NULL,
            UNIQUE (consumer, consumer_version, provider));
        CREATE TABLE pact_verification_results (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            consumer TEXT NOT NULL, provider TEXT NOT NULL, pact_sha TEXT NOT NULL,
            provider_version TEXT NOT NULL, success INTEGER NOT NULL, body TEXT NOT NULL,
            verified_at INTEGER NOT NULL);
        CREATE TABLE pacticipant_versions (
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, branch TEXT, tags TEXT NOT NULL,
            created_at INTEGER NOT NULL, PRIMARY KEY (pacticipant, version));
        CREATE TABLE pacticipant_deployments (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, environment TEXT NOT NULL,
            application_instance TEXT, deployed_at INTEGER NOT NULL, undeployed_at INTEGER);
    ",
        postgres: "
        CREATE TABLE pact_publications (
            id BIGSERIAL PRIMARY KEY,
            consumer TEXT NOT NULL, consumer_version TEXT NOT NULL, provider TEXT NOT NULL,
            branch TEXT, tags TEXT NOT NULL, sha TEXT NOT NULL, content TEXT NOT NULL,
            published_at BIGINT NOT NULL,
            UNIQUE (consumer, consumer_version, provider));
        CREATE TABLE pact_verification_results (
            id BIGSERIAL PRIMARY KEY,
            consumer TEXT NOT NULL, provider TEXT NOT NULL, pact_sha TEXT NOT NULL,
            provider_version TEXT NOT NULL, success BOOLEAN NOT NULL, body TEXT NOT NULL,
            verified_at BIGINT NOT NULL);
        CREATE TABLE pacticipant_versions (
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, branch TEXT, tags TEXT NOT NULL,
            created_at BIGINT NOT NULL, PRIMARY KEY (pacticipant, version));
        CREATE TABLE pacticipant_deployments (
            id BIGSERIAL PRIMARY KEY,
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, environment TEXT NOT NULL,
            application_instance TEXT, deployed_at BIGINT NOT NULL, undeployed_at BIGINT);
    ",
    },
    Migration {
        version: 3,
        name: "engine work leases",
        sqlite: "
        CREATE TABLE work_items (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant TEXT NOT NULL, key TEXT NOT NULL, stage INTEGER NOT NULL,
            payload TEXT NOT NULL,
            worker TEXT, token INTEGER NOT NULL DEFAULT 0, expires_at INTEGER,
            done INTEGER NOT NULL DEFAULT 0,
            UNIQUE (tenant, key));
        CREATE INDEX work_items_open ON work_items (tenant, done, stage);
    ",
        postgres: "
        CREATE TABLE work_items (
            id BIGSERIAL PRIMARY KEY,
            tenant TEXT NOT NULL, key TEXT NOT NULL, stage INTEGER NOT NULL,
            payload TEXT NOT NULL,
            worker TEXT, token BIGINT NOT NULL DEFAULT 0, expires_at BIGINT,
            done BOOLEAN NOT NULL DEFAULT FALSE,
            UNIQUE (tenant, key));
        CREATE INDEX work_items_open ON work_items (tenant, done, stage);
    ",
    },
    Migration {
        version: 4,
        name: "applied record versions; superseded dead letters",
        sqlite: "
        CREATE TABLE applied_versions (
            tenant TEXT NOT NULL, object TEXT NOT NULL, source_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (tenant, object, source_id));
        ALTER TABLE dead_letters ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
        ALTER TABLE dead_letters ADD COLUMN superseded_by INTEGER;
    ",
        postgres: "
        CREATE TABLE applied_versions (
            tenant TEXT NOT NULL, object TEXT NOT NULL, source_id TEXT NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (tenant, object, source_id));
        ALTER TABLE dead_letters ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
        ALTER TABLE dead_letters ADD COLUMN superseded_by BIGINT;
    ",
    },
    Migration {
        version: 5,
        name: "the engine configuration a verification ran with",
        sqlite: "ALTER TABLE verifications ADD COLUMN engine_config_hash TEXT;",
        postgres: "ALTER TABLE verifications ADD COLUMN engine_config_hash TEXT;",
    },
    Migration {
        version: 6,
        name: "Pact Broker API: released versions",
        sqlite: "
        CREATE TABLE pacticipant_releases (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, environment TEXT NOT NULL,
            released_at INTEGER NOT NULL, support_ended_at INTEGER);
    ",
        postgres: "
        CREATE TABLE pacticipant_releases (
            id BIGSERIAL PRIMARY KEY,
            pacticipant TEXT NOT NULL, version TEXT NOT NULL, environment TEXT NOT NULL,
            released_at BIGINT NOT NULL, support_ended_at BIGINT);
    ",
    },
    Migration {
        version: 7,
        name: "Pact Broker API: webhooks and their delivery log",
        sqlite: "
        CREATE TABLE webhooks (
            uuid TEXT PRIMARY KEY, seq INTEGER NOT NULL, description TEXT NOT NULL,
            consumer TEXT, provider TEXT, events TEXT NOT NULL, request TEXT NOT NULL,
            enabled INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
        CREATE TABLE webhook_executions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            webhook_uuid TEXT NOT NULL, delivery TEXT NOT NULL, event TEXT NOT NULL,
            consumer TEXT NOT NULL, provider TEXT NOT NULL, attempt INTEGER NOT NULL,
            status TEXT NOT NULL, response_code INTEGER, error TEXT,
            executed_at INTEGER NOT NULL);
        CREATE INDEX webhook_executions_by_webhook ON webhook_executions (webhook_uuid);
    ",
        postgres: "
        CREATE TABLE webhooks (
            uuid TEXT PRIMARY KEY, seq BIGSERIAL NOT NULL, description TEXT NOT NULL,
            consumer TEXT, provider TEXT, events TEXT NOT NULL, request TEXT NOT NULL,
            enabled BOOLEAN NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
        CREATE TABLE webhook_executions (
            id BIGSERIAL PRIMARY KEY,
            webhook_uuid TEXT NOT NULL, delivery TEXT NOT NULL, event TEXT NOT NULL,
            consumer TEXT NOT NULL, provider TEXT NOT NULL, attempt INTEGER NOT NULL,
            status TEXT NOT NULL, response_code INTEGER, error TEXT,
            executed_at BIGINT NOT NULL);
        CREATE INDEX webhook_executions_by_webhook ON webhook_executions (webhook_uuid);
    ",
    },
];
