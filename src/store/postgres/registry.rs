//! The registry index on PostgreSQL: published versions, environments, deployments and
//! verification results, race-safe across processes.

use super::*;

/// Adds an environment unless it is known; deployments and releases add theirs in their own
/// transaction.
pub(super) async fn add_environment_in(c: &impl GenericClient, name: &str) -> StoreResult<()> {
    c.execute(
        "INSERT INTO environments (name) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&name],
    )
    .await
    .map_err(err)?;
    Ok(())
}

#[async_trait]
impl RegistryIndex for PgStore {
    async fn publish(&self, v: &PublishedVersion) -> StoreResult<PublishOutcome> {
        let client = self.lock().await;
        // Insert-or-nothing first: two runners publishing the same version at once both
        // land on the same row, and then compare hashes.
        let inserted = client
            .execute(
                "INSERT INTO published_versions (partner, tenant, version, hash, published_at, content)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&v.partner, &v.tenant, &v.version, &v.hash, &v.published_at.as_millis(), &v.content],
            )
            .await
            .map_err(err)?;
        if inserted == 1 {
            return Ok(PublishOutcome::Created);
        }
        let hash: String = client
            .query_one(
                "SELECT hash FROM published_versions WHERE partner = $1 AND tenant = $2 AND version = $3",
                &[&v.partner, &v.tenant, &v.version],
            )
            .await
            .map_err(err)?
            .get(0);
        if hash == v.hash {
            Ok(PublishOutcome::Unchanged)
        } else {
            Err(version_conflict(v, &hash))
        }
    }

    async fn versions(
        &self,
        partner: &str,
        tenant: Option<&str>,
    ) -> StoreResult<Vec<PublishedVersion>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM published_versions
                 WHERE partner = $1 AND ($2::TEXT IS NULL OR tenant = $2) ORDER BY published_at, seq",
                rows::VERSION_COLUMNS
            ),
            &[&partner, &tenant],
            rows::published_version,
        )
        .await
    }

    async fn version(
        &self,
        partner: &str,
        tenant: &str,
        version: &str,
    ) -> StoreResult<Option<PublishedVersion>> {
        self.first_row(
            &format!(
                "SELECT {} FROM published_versions WHERE partner = $1 AND tenant = $2 AND version = $3",
                rows::VERSION_COLUMNS
            ),
            &[&partner, &tenant, &version],
            rows::published_version,
        )
        .await
    }

    async fn add_environment(&self, name: &str) -> StoreResult<()> {
        add_environment_in(&*self.lock().await, name).await
    }

    async fn environments(&self) -> StoreResult<Vec<String>> {
        self.all_rows("SELECT name FROM environments ORDER BY seq", &[], |r| {
            r.text(0)
        })
        .await
    }

    async fn record_deployment(&self, d: &Deployment) -> StoreResult<()> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        add_environment_in(&tx, &d.environment).await?;
        tx.execute(
            "UPDATE deployments SET undeployed_at = $4
             WHERE partner = $1 AND tenant = $2 AND environment = $3 AND undeployed_at IS NULL",
            &[
                &d.partner,
                &d.tenant,
                &d.environment,
                &d.deployed_at.as_millis(),
            ],
        )
        .await
        .map_err(err)?;
        tx.execute(
            "INSERT INTO deployments (partner, tenant, environment, bundle_version, engine_version, deployed_at, undeployed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &d.partner,
                &d.tenant,
                &d.environment,
                &d.bundle_version,
                &d.engine_version,
                &d.deployed_at.as_millis(),
                &d.undeployed_at.map(Timestamp::as_millis),
            ],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)
    }

    async fn deployments(
        &self,
        partner: &str,
        tenant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<Deployment>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM deployments
                 WHERE partner = $1 AND ($2::TEXT IS NULL OR tenant = $2) AND ($3::TEXT IS NULL OR environment = $3)
                 ORDER BY id",
                rows::DEPLOYMENT_COLUMNS
            ),
            &[&partner, &tenant, &environment],
            rows::deployment,
        )
        .await
    }

    async fn record_verification(&self, v: &Verification) -> StoreResult<()> {
        let scenarios = rows::to_json(&v.scenarios)?;
        // Seeds are u64; stored bit-for-bit in a BIGINT.
        let seed = v.seed as i64;
        self.lock()
            .await
            .execute(
                "INSERT INTO verifications (partner, tenant, bundle_version, bundle_hash, engine_version, success, seed, scenarios, verified_at, verified_by, engine_config_hash)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &[
                    &v.partner,
                    &v.tenant,
                    &v.bundle_version,
                    &v.bundle_hash,
                    &v.engine_version,
                    &v.success,
                    &seed,
                    &scenarios,
                    &v.verified_at.as_millis(),
                    &v.verified_by,
                    &v.engine_config_hash,
                ],
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn partners(&self) -> StoreResult<Vec<String>> {
        self.all_rows(
            "SELECT DISTINCT partner FROM published_versions ORDER BY partner",
            &[],
            |r| r.text(0),
        )
        .await
    }

    async fn verifications(&self, partner: &str, tenant: &str) -> StoreResult<Vec<Verification>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM verifications WHERE partner = $1 AND tenant = $2 ORDER BY id",
                rows::VERIFICATION_COLUMNS
            ),
            &[&partner, &tenant],
            rows::verification,
        )
        .await
    }
}
