//! The Pact index on SQLite: what `registry serve` keeps for the Pact Broker API (pacts,
//! verification results, pacticipant versions, deployments and releases).

use super::registry::add_environment_in;
use super::*;

#[async_trait]
impl PactIndex for SqliteStore {
    async fn pacts_publish(&self, pacts: &[PactPublication]) -> StoreResult<Vec<PublishOutcome>> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let mut outcomes = Vec::new();
        for p in pacts {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT sha FROM pact_publications WHERE consumer = ?1 AND consumer_version = ?2 AND provider = ?3",
                    params![p.consumer, p.consumer_version, p.provider],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?;
            match existing {
                Some(sha) if sha == p.sha => outcomes.push(PublishOutcome::Unchanged),
                // Dropping the transaction rolls back whatever this call wrote so far.
                Some(sha) => return Err(pact_conflict(p, &sha)),
                None => {
                    tx.execute(
                        "INSERT INTO pact_publications (consumer, consumer_version, provider, branch, tags, sha, content, published_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            p.consumer,
                            p.consumer_version,
                            p.provider,
                            p.branch,
                            rows::to_json(&p.tags)?,
                            p.sha,
                            p.content,
                            p.published_at.as_millis()
                        ],
                    )
                    .map_err(err)?;
                    outcomes.push(PublishOutcome::Created);
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(outcomes)
    }

    async fn pacts(
        &self,
        provider: Option<&str>,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactPublication>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM pact_publications
                 WHERE (?1 IS NULL OR provider = ?1) AND (?2 IS NULL OR consumer = ?2) ORDER BY id",
                rows::PACT_COLUMNS
            ),
            params![provider, consumer],
            rows::pact_publication,
        )
    }

    async fn pact_verification_record(&self, v: &PactVerificationResult) -> StoreResult<i64> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO pact_verification_results (consumer, provider, pact_sha, provider_version, success, body, verified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                v.consumer,
                v.provider,
                v.pact_sha,
                v.provider_version,
                v.success,
                v.body,
                v.verified_at.as_millis()
            ],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid())
    }

    async fn pact_verifications(
        &self,
        provider: &str,
        consumer: Option<&str>,
    ) -> StoreResult<Vec<PactVerificationResult>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM pact_verification_results
                 WHERE provider = ?1 AND (?2 IS NULL OR consumer = ?2) ORDER BY id",
                rows::PACT_VERIFICATION_COLUMNS
            ),
            params![provider, consumer],
            rows::pact_verification,
        )
    }

    async fn pacticipant_version_upsert(
        &self,
        pacticipant: &str,
        version: &str,
        branch: Option<&str>,
        tag: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<PacticipantVersion> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        let existing: Option<(Option<String>, String, i64)> = tx
            .query_row(
                "SELECT branch, tags, created_at FROM pacticipant_versions WHERE pacticipant = ?1 AND version = ?2",
                params![pacticipant, version],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        let (old_branch, tags, created) = existing.unwrap_or((None, "[]".into(), now.as_millis()));
        let v = rows::version_tagged(
            pacticipant,
            version,
            (old_branch, &tags, created),
            branch,
            tag,
        )?;
        tx.execute(
            "INSERT INTO pacticipant_versions (pacticipant, version, branch, tags, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (pacticipant, version) DO UPDATE SET branch = excluded.branch, tags = excluded.tags",
            params![pacticipant, version, v.branch, rows::to_json(&v.tags)?, created],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(v)
    }

    async fn pacticipant_versions(
        &self,
        pacticipant: &str,
    ) -> StoreResult<Vec<PacticipantVersion>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM pacticipant_versions WHERE pacticipant = ?1 ORDER BY created_at, rowid",
                rows::PACTICIPANT_VERSION_COLUMNS
            ),
            params![pacticipant],
            rows::pacticipant_version,
        )
    }

    async fn pacticipant_deploy(&self, d: &PacticipantDeployment) -> StoreResult<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        add_environment_in(&tx, &d.environment)?;
        tx.execute(
            "UPDATE pacticipant_deployments SET undeployed_at = ?4
             WHERE pacticipant = ?1 AND environment = ?2 AND application_instance IS ?3 AND undeployed_at IS NULL",
            params![
                d.pacticipant,
                d.environment,
                d.application_instance,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO pacticipant_deployments (pacticipant, version, environment, application_instance, deployed_at, undeployed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
            params![
                d.pacticipant,
                d.version,
                d.environment,
                d.application_instance,
                d.deployed_at.as_millis()
            ],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_deployments(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantDeployment>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM pacticipant_deployments
                 WHERE (?1 IS NULL OR pacticipant = ?1) AND (?2 IS NULL OR environment = ?2) ORDER BY id",
                rows::PACTICIPANT_DEPLOYMENT_COLUMNS
            ),
            params![pacticipant, environment],
            rows::pacticipant_deployment,
        )
    }

    async fn pacticipant_release(&self, r: &PacticipantRelease) -> StoreResult<i64> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(err)?;
        add_environment_in(&tx, &r.environment)?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM pacticipant_releases
                 WHERE pacticipant = ?1 AND version = ?2 AND environment = ?3 AND support_ended_at IS NULL",
                params![r.pacticipant, r.version, r.environment],
                |row| row.get(0),
            )
            .optional()
            .map_err(err)?;
        if let Some(id) = existing {
            tx.commit().map_err(err)?;
            return Ok(id);
        }
        tx.execute(
            "INSERT INTO pacticipant_releases (pacticipant, version, environment, released_at, support_ended_at)
             VALUES (?1, ?2, ?3, ?4, NULL)",
            params![r.pacticipant, r.version, r.environment, r.released_at.as_millis()],
        )
        .map_err(err)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(err)?;
        Ok(id)
    }

    async fn pacticipant_releases(
        &self,
        pacticipant: Option<&str>,
        environment: Option<&str>,
    ) -> StoreResult<Vec<PacticipantRelease>> {
        all_rows(
            &self.lock(),
            &format!(
                "SELECT {} FROM pacticipant_releases
                 WHERE (?1 IS NULL OR pacticipant = ?1) AND (?2 IS NULL OR environment = ?2) ORDER BY id",
                rows::RELEASE_COLUMNS
            ),
            params![pacticipant, environment],
            rows::pacticipant_release,
        )
    }
}
