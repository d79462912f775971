//! What the gate reads from the registry in the store before it runs (the deployed and
//! published bundles the contract check compares against) and what it records there after
//! (one verification per tenant, what `can-i-deploy` answers from).

use std::collections::BTreeMap;

use crate::contract::Bundle;
use crate::sim::Timestamp;
use crate::store::{PublishedVersion, Store, StoreError, Verification};
use crate::verify::GateReport;

/// What the store's registry holds, per tenant (`partner/tenant`), for the gate's contract
/// check: the bundle deployed in the environment, and every published version.
#[derive(Debug, Default)]
pub struct RegistryState {
    pub deployed: BTreeMap<String, Bundle>,
    pub published: BTreeMap<String, Vec<PublishedVersion>>,
}

/// Why the registry could not be read. Each is fatal for the gate: it must not pass
/// without the check it was asked for.
#[derive(Debug, thiserror::Error)]
pub enum RegistryReadError {
    #[error("cannot read the registry from the store")]
    Store(#[from] StoreError),
    #[error("{tenant} is recorded as deployed in {environment} with bundle {version}, which is not published")]
    NotPublished {
        tenant: String,
        environment: String,
        version: String,
    },
    #[error("the bundle {tenant} {version} deployed in {environment} is unreadable")]
    Unreadable {
        tenant: String,
        environment: String,
        version: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Reads [`RegistryState`] for `environment` from `store`.
pub async fn registry_state(
    store: &dyn Store,
    environment: &str,
) -> Result<RegistryState, RegistryReadError> {
    let mut state = RegistryState::default();
    for partner in store.partners().await? {
        for v in store.versions(&partner, None).await? {
            state
                .published
                .entry(format!("{}/{}", v.partner, v.tenant))
                .or_default()
                .push(v);
        }
        let deployments = store.deployments(&partner, None, Some(environment)).await?;
        for d in deployments.iter().filter(|d| d.undeployed_at.is_none()) {
            let tenant = format!("{}/{}", d.partner, d.tenant);
            let Some(v) = store
                .version(&d.partner, &d.tenant, &d.bundle_version)
                .await?
            else {
                return Err(RegistryReadError::NotPublished {
                    tenant,
                    environment: environment.to_string(),
                    version: d.bundle_version.clone(),
                });
            };
            let bundle =
                Bundle::from_json(&v.content).map_err(|source| RegistryReadError::Unreadable {
                    tenant: tenant.clone(),
                    environment: environment.to_string(),
                    version: d.bundle_version.clone(),
                    source,
                })?;
            state.deployed.insert(tenant, bundle);
        }
    }
    Ok(state)
}

/// What [`record_verifications`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Tenants whose verification was recorded.
    pub recorded: Vec<String>,
    /// Tenants left out because their pacts were not checked (the bundle has no `pacts/`):
    /// a verification vouches for the pacts too.
    pub pacts_unchecked: Vec<String>,
}

/// Records one verification per tenant of a whole gate run, by `engine_version`, at `at`.
/// The caller decides whether the run vouches for anything (a filtered, sharded or
/// engine-command run does not).
pub async fn record_verifications(
    store: &dyn Store,
    report: &GateReport,
    engine_version: &str,
    at: Timestamp,
) -> Result<Recorded, StoreError> {
    let mut done = Recorded::default();
    for t in &report.tenants {
        if t.pacts.as_ref().is_some_and(|p| !p.checked()) {
            done.pacts_unchecked.push(t.label());
            continue;
        }
        let v = Verification {
            partner: t.partner.clone(),
            tenant: t.tenant.clone(),
            bundle_version: t.bundle_version.clone(),
            bundle_hash: t.bundle_hash.clone(),
            engine_version: engine_version.to_string(),
            success: t.passed(),
            seed: report.seed,
            scenarios: t.runs.iter().map(|r| r.scenario.clone()).collect(),
            verified_at: at,
            verified_by: "syncgate gate".into(),
            engine_config_hash: Some(report.engine_config_hash.clone()),
        };
        store.record_verification(&v).await?;
        done.recorded.push(t.label());
    }
    Ok(done)
}
