//! The Pact index on PostgreSQL: what `registry serve` keeps for the Pact Broker API, shared
//! by every registry process on the database (writes race-safe across processes).

use super::registry::add_environment_in;
use super::*;

#[async_trait]
impl PactIndex for PgStore {
    async fn pacts_publish(&self, pacts: &[PactPublication]) -> StoreResult<Vec<PublishOutcome>> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        let mut outcomes = Vec::new();
        for p in pacts {
            // Insert-or-nothing, then compare: two processes publishing the same pact at once
            // land on one row.
            let inserted = tx
                .execute(
                    "INSERT INTO pact_publications (consumer, consumer_version, provider, branch, tags, sha, content, published_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                    &[
                        &p.consumer,
                        &p.consumer_version,
                        &p.provider,
                        &p.branch,
                        &rows::to_json(&p.tags)?,
                        &p.sha,
                        &p.content,
                        &p.published_at.as_millis(),
                    ],
                )
                .await
                .map_err(err)?;
            if inserted == 1 {
                outcomes.push(PublishOutcome::Created);
                continue;
            }
            let sha: String = tx
                .query_one(
                    "SELECT sha FROM pact_publications WHERE consumer = $1 AND consumer_version = $2 AND provider = $3",
                    &[&p.consumer, &p.consumer_version, &p.provider],
                )
                .await
                .map_err(err)?
                .get(0);
            if sha != p.sha {
                // Dropping the transaction rolls back whatever this call wrote so far.
                return Err(pact_conflict(p, &sha));
            }
            outcomes.push(PublishOutcome::Unchanged);
        }
        tx.commit().await.map_err(err)?;
        Ok(outcomes)
    }

    async fn pacts(
        &self,
        provider: Option<&str>,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactPublication>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM pact_publications
                 WHERE ($1::TEXT IS NULL OR provider = $1) AND ($2::TEXT IS NULL OR consumer = $2) ORDER BY id",
                rows::PACT_COLUMNS
            ),
            &[&provider, &consumer],
            rows::pact_publication,
        )
        .await
    }

    async fn pact_verification_record(&self, v: &PactVerificationResult) -> StoreResult<i64> {
        let row = self
            .lock()
            .await
            .query_one(
                "INSERT INTO pact_verification_results (consumer, provider, pact_sha, provider_version, success, body, verified_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &v.consumer,
                    &v.provider,
                    &v.pact_sha,
                    &v.provider_version,
                    &v.success,
                    &v.body,
                    &v.verified_at.as_millis(),
                ],
            )
            .await
            .map_err(err)?;
        Ok(row.get(0))
    }

    async fn pact_verifications(
        &self,
        provider: &str,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactVerificationResult>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM pact_verification_results
                 WHERE provider = $1 AND ($2::TEXT IS NULL OR consumer = $2) ORDER BY id",
                rows::PACT_VERIFICATION_COLUMNS
            ),
            &[&provider, &consumer],
            rows::pact_verification,
        )
        .await
    }

    async fn pacticipant_version_upsert(
        &self,
        pacticipant: &str,
        version: &str,
        branch: Option<&str>,
        tag: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<PacticipantVersion> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        // Create the row if needed, then lock it: concurrent taggers do not lose each other's tags.
        tx.execute(
            "INSERT INTO pacticipant_versions (pacticipant, version, branch, tags, created_at)
             VALUES ($1, $2, NULL, '[]', $3) ON CONFLICT DO NOTHING",
            &[&pacticipant, &version, &now.as_millis()],
        )
        .await
        .map_err(err)?;
        let row = tx
            .query_one(
                "SELECT branch, tags, created_at FROM pacticipant_versions
                 WHERE pacticipant = $1 AND version = $2 FOR UPDATE",
                &[&pacticipant, &version],
            )
            .await
            .map_err(err)?;
        let v = rows::version_tagged(
            pacticipant,
            version,
            (row.text_opt(0)?, &row.text(1)?, row.int(2)?),
            branch,
            tag,
        )?;
        tx.execute(
            "UPDATE pacticipant_versions SET branch = $3, tags = $4 WHERE pacticipant = $1 AND version = $2",
            &[&pacticipant, &version, &v.branch, &rows::to_json(&v.tags)?],
        )
        .await
        .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(v)
    }

    async fn pacticipant_versions(
        &self,
        pacticipant: &str,
    ) -> StoreResult<Vec<PacticipantVersion>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM pacticipant_versions WHERE pacticipant = $1 ORDER BY created_at, ctid",
                rows::PACTICIPANT_VERSION_COLUMNS
            ),
            &[&pacticipant],
            rows::pacticipant_version,
        )
        .await
    }

    async fn pacticipant_deploy(&self, d: &PacticipantDeployment) -> StoreResult<i64> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        add_environment_in(&tx, &d.environment).await?;
        tx.execute(
            "UPDATE pacticipant_deployments SET undeployed_at = $4
             WHERE pacticipant = $1 AND environment = $2 AND application_instance IS NOT DISTINCT FROM $3 AND undeployed_at IS NULL",
            &[&d.pacticipant, &d.environment, &d.application_instance, &d.deployed_at.as_millis()],
        )
        .await
        .map_err(err)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO pacticipant_deployments (pacticipant, version, environment, application_instance, deployed_at, undeployed_at)
                 VALUES ($1, $2, $3, $4, $5, NULL) RETURNING id",
                &[&d.pacticipant, &d.version, &d.environment, &d.application_instance, &d.deployed_at.as_millis()],
            )
            .await
            .map_err(err)?
            .get(0);
        tx.commit().await.map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_deployments(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantDeployment>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM pacticipant_deployments
                 WHERE ($1::TEXT IS NULL OR pacticipant = $1) AND ($2::TEXT IS NULL OR environment = $2) ORDER BY id",
                rows::PACTICIPANT_DEPLOYMENT_COLUMNS
            ),
            &[&pacticipant, &environment],
            rows::pacticipant_deployment,
        )
        .await
    }

    async fn pacticipant_release(&self, r: &PacticipantRelease) -> StoreResult<i64> {
        let mut client = self.lock().await;
        let tx = client.transaction().await.map_err(err)?;
        add_environment_in(&tx, &r.environment).await?;
        // One release record per version and environment, even with two registries racing.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('syncgate.pacticipant_releases'), hashtext($1 || '/' || $2))",
            &[&r.pacticipant, &r.environment],
        )
        .await
        .map_err(err)?;
        let existing = tx
            .query_opt(
                "SELECT id FROM pacticipant_releases
                 WHERE pacticipant = $1 AND version = $2 AND environment = $3 AND support_ended_at IS NULL",
                &[&r.pacticipant, &r.version, &r.environment],
            )
            .await
            .map_err(err)?;
        if let Some(row) = existing {
            return row.int(0);
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO pacticipant_releases (pacticipant, version, environment, released_at, support_ended_at)
                 VALUES ($1, $2, $3, $4, NULL) RETURNING id",
                &[&r.pacticipant, &r.version, &r.environment, &r.released_at.as_millis()],
            )
            .await
            .map_err(err)?
            .get(0);
        tx.commit().await.map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_releases(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantRelease>> {
        self.all_rows(
            &format!(
                "SELECT {} FROM pacticipant_releases
                 WHERE ($1::TEXT IS NULL OR pacticipant = $1) AND ($2::TEXT IS NULL OR environment = $2) ORDER BY id",
                rows::RELEASE_COLUMNS
            ),
            &[&pacticipant, &environment],
            rows::pacticipant_release,
        )
        .await
    }
}
