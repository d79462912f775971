//! can-i-deploy: may this engine version go to that environment for a tenant? Answered from
//! the verification results the gate recorded and the deployments in the store's index.

use serde::Serialize;

use super::publish::latest;
use crate::store::{Deployment, RegistryIndex, StoreError, Verification};

/// The question.
#[derive(Clone, Debug)]
pub struct DeployQuery {
    pub partner: String,
    pub tenant: String,
    pub engine_version: String,
    pub environment: String,
    /// The bundle version to check against; by default the one deployed in the environment,
    /// else the latest published.
    pub bundle_version: Option<String>,
    /// The engine configuration to deploy (`sha256:…`, see `engine::config_file`): a
    /// verification of another configuration does not count. `None` accepts any.
    pub engine_config_hash: Option<String>,
}

/// The answer, with its reason and the evidence behind it.
#[derive(Clone, Debug, Serialize)]
pub struct DeployDecision {
    pub deployable: bool,
    pub reason: String,
    pub partner: String,
    pub tenant: String,
    pub engine_version: String,
    pub environment: String,
    pub bundle_version: Option<String>,
    pub bundle_hash: Option<String>,
    /// Where the bundle version came from: `given`, `deployed` or `latest`.
    pub bundle_source: &'static str,
    /// The verification the answer rests on (the latest of this engine against this bundle).
    pub verification: Option<Verification>,
    /// What is deployed in the environment now.
    pub current: Option<Deployment>,
    /// The engine configuration asked about.
    pub engine_config_hash: Option<String>,
}

/// Answers the query. Store errors are errors; every other "no" is a decision.
pub async fn can_i_deploy(
    store: &dyn RegistryIndex,
    q: &DeployQuery,
) -> Result<DeployDecision, StoreError> {
    let current = store
        .deployments(&q.partner, Some(&q.tenant), Some(&q.environment))
        .await?
        .into_iter()
        .rev()
        .find(|d| d.undeployed_at.is_none());
    let (bundle_version, bundle_source) = match (&q.bundle_version, &current) {
        (Some(v), _) => (Some(v.clone()), "given"),
        (None, Some(d)) => (Some(d.bundle_version.clone()), "deployed"),
        (None, None) => (
            latest(store, &q.partner, &q.tenant)
                .await?
                .map(|v| v.version),
            "latest",
        ),
    };
    let mut decision = DeployDecision {
        deployable: false,
        reason: String::new(),
        partner: q.partner.clone(),
        tenant: q.tenant.clone(),
        engine_version: q.engine_version.clone(),
        environment: q.environment.clone(),
        bundle_version: bundle_version.clone(),
        bundle_hash: None,
        bundle_source,
        verification: None,
        current,
        engine_config_hash: q.engine_config_hash.clone(),
    };
    let label = format!("{}/{}", q.partner, q.tenant);
    let Some(bundle_version) = bundle_version else {
        decision.reason = format!(
            "no bundle version of {label} is published; run `syncgate contracts publish` first"
        );
        return Ok(decision);
    };
    let Some(published) = store
        .version(&q.partner, &q.tenant, &bundle_version)
        .await?
    else {
        decision.reason =
            format!("bundle {label} {bundle_version} is not published in the registry");
        return Ok(decision);
    };
    decision.bundle_hash = Some(published.hash.clone());
    let which = match bundle_source {
        "deployed" => format!("the bundle deployed in {}", q.environment),
        "latest" => format!(
            "the latest published bundle, as nothing is deployed in {} yet",
            q.environment
        ),
        _ => "the bundle asked for".to_string(),
    };
    let verifications = store.verifications(&q.partner, &q.tenant).await?;
    let ours = verifications
        .iter()
        .rev()
        .find(|v| v.engine_version == q.engine_version && v.bundle_hash == published.hash);
    let other_config = ours.and_then(|v| {
        q.engine_config_hash
            .as_ref()
            .filter(|asked| v.engine_config_hash.as_ref() != Some(*asked))
            .map(|asked| (v, asked))
    });
    if let Some((v, asked)) = other_config {
        decision.reason = format!(
            "engine {} was verified against {label} {bundle_version} ({}) at {} with engine configuration {}, not the configuration asked about ({asked}); checked against {which}; run the gate with that configuration (`--engine-config`)",
            q.engine_version,
            published.hash,
            v.verified_at.to_iso(),
            v.engine_config_hash.as_deref().unwrap_or("unrecorded")
        );
        decision.verification = Some(v.clone());
        return Ok(decision);
    }
    match ours {
        Some(v) if v.success => {
            decision.deployable = true;
            decision.reason = format!(
                "engine {} passed verification against {label} {bundle_version} ({}) at {} by {} (seed {}, {} scenario(s)); checked against {which}",
                q.engine_version,
                published.hash,
                v.verified_at.to_iso(),
                v.verified_by,
                v.seed,
                v.scenarios.len()
            );
        }
        Some(v) => {
            decision.reason = format!(
                "engine {} failed verification against {label} {bundle_version} ({}) at {} by {} (seed {}); checked against {which}; fix the failure and run the gate again",
                q.engine_version,
                published.hash,
                v.verified_at.to_iso(),
                v.verified_by,
                v.seed
            );
        }
        None => {
            let mut others: Vec<&str> = verifications
                .iter()
                .filter(|v| v.success && v.bundle_hash == published.hash)
                .map(|v| v.engine_version.as_str())
                .collect();
            others.dedup();
            let hint = if others.is_empty() {
                String::new()
            } else {
                format!(" (verified engine versions: {})", others.join(", "))
            };
            decision.reason = format!(
                "no verification of engine {} against {label} {bundle_version} ({}){hint}; checked against {which}; run `syncgate gate --partner {} --tenant {} --engine-version {}` on that bundle",
                q.engine_version, published.hash, q.partner, q.tenant, q.engine_version
            );
        }
    }
    decision.verification = ours.cloned();
    Ok(decision)
}
