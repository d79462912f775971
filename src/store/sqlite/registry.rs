//! The registry index on SQLite: published versions, environments, deployments and
//! verification results.

use super::*;

#[async_trait]
impl RegistryIndex for SqliteStore {
    async fn publish(&self, v: &PublishedVersion) -> StoreResult<PublishOutcome> {
        let conn = self.lock();
        let existing: Option<String> = conn
            .query_row(
                "SELECT hash FROM published_versions WHERE partner = ?1 AND tenant = ?2 AND version = ?3",
                params![v.partner, v.tenant, v.version],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        match existing {
            Some(hash) if hash == v.hash => Ok(PublishOutcome::Unchanged),
            Some(hash) => Err(version_conflict(v, &hash)),
            None => {
                conn.execute(
                    "INSERT INTO published_versions (partner, tenant, version, hash, published_at, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![v.partner, v.tenant, v.version, v.hash, v.published_at.as_millis(), v.content],
                )
                .map_err(err)?;
                Ok(PublishOutcome::Created)
            }
        }
    }

    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM published_versions
                 WHERE partner = ?1 AND (?2 IS NULL OR tenant = ?2) ORDER BY published_at, rowid",
                rows::VERSION_COLUMNS
            ),
            params![partner, tenant],
            rows::published_version,
        )
    }

    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>> {
        first_row(
            &self.lock(),
            &format!(
                "SELECT {} FROM published_versions WHERE partner = ?1 AND tenant = ?2 AND version = ?3",
                rows::VERSION_COLUMNS
            ),
            params![partner, tenant, version],
            rows::published_version,
        )
    }

    async fn add_environment(&self, name: &str) -> StoreResult<()> {
        add_environment_in(&self.lock(), name)
    }

    async fn environments(&self) -> StoreResult<Vec<String>> {
        all_rows(
            &self.lock(),
            "SELECT name FROM environments ORDER BY seq",
            [],
            |r| r.text(0),
        )
    }

    async fn record_deployment(&self, d: &Deployment) -> StoreResult<()> {
        let mut conn = self.lock();
        let tx = write(&mut conn)?;
        add_environment_in(&tx, &d.environment)?;
        tx.execute(
            "UPDATE deployments SET undeployed_at = ?4
             WHERE partner = ?1 AND tenant = ?2 AND environment = ?3 AND undeployed_at IS NULL",
            params![
                d.partner,
                d.tenant,
                d.environment,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO deployments (partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                d.partner,
                d.tenant,
                d.environment,
                d.bundle_version,
                d.engine_version,
                d.deployed_at.as_millis(),
                d.undeployed_at.map(Timestamp::as_millis)
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM deployments
                 WHERE partner = ?1 AND (?2 IS NULL OR tenant = ?2) AND (?3 IS NULL OR environment = ?3) ORDER BY id",
                rows::DEPLOYMENT_COLUMNS
            ),
            params![partner, tenant, environment],
            rows::deployment,
        )
    }

    async fn record_verification(&self, v: &Verification) -> StoreResult<()> {
        let scenarios = rows::to_json(&v.scenarios)?;
        self.lock()
            .execute(
                "INSERT INTO verifications (partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    v.partner,
                    v.tenant,
                    v.bundle_version,
                    v.bundle_hash,
                    v.engine_version,
                    v.success,
                    v.seed as i64,
                    scenarios,
                    v.verified_at.as_millis(),
                    v.verified_by,
                    v.engine_config_hash
                ],
            )
            .map_err(err)?;
        Ok(())
    }

    async fn partners(&self) -> StoreResult<Vec<String>> {
        all_rows(
            &self.lock(),
            "SELECT DISTINCT partner FROM published_versions ORDER BY partner",
            [],
            |r| r.text(0),
        )
    }

    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM verifications WHERE partner = ?1 AND tenant = ?2 ORDER BY id",
                rows::VERIFICATION_COLUMNS
            ),
            params![partner, tenant],
            rows::verification,
        )
    }
}

/// Adds an environment unless it is known (new ones are listed last); deployments and
/// releases add theirs in the same transaction.
pub(super) fn add_environment_in(conn: &Connection, name: &str) -> StoreResult<()> {
    conn.execute(
        "INSERT OR IGNORE INTO environments (name, seq) VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM environments))",
        params![name],
    )
    .map_err(err)?;
    Ok(())
}
