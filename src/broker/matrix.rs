//! `GET /matrix`: the answer behind `pact broker can-i-deploy`, from published pacts, their
//! verification results and the versions deployed in the target environment — and from the
//! registry's own records: the gate's verifications of engine versions against tenant bundles
//! and the tenants' deployments (`syncgate contracts record-deployment`), with the engine as
//! pacticipant [`ENGINE`] and each tenant's org as `<partner>-salesforce-<tenant>`.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::tokens::owner_of;
use super::{bad_request, caller, hal, Access, ApiResult, Shared};
use crate::store::{BrokerStore, PactPublication, StoreError};

/// The engine's pacticipant name: the consumer the pact files name.
pub const ENGINE: &str = "syncgate-engine";

/// One integration row: a consumer version, a provider version, and its verification state.
struct Row {
    consumer: String,
    consumer_version: Option<String>,
    provider: String,
    provider_version: Option<String>,
    /// `Some(true)` verified, `Some(false)` failed, `None` no result.
    verified: Option<bool>,
    verified_at: Option<String>,
    pact_created: Option<String>,
    /// Who verified: a Pact verifier's result, or `syncgate gate`.
    verified_by: &'static str,
}

fn currently_deployed(
    deployments: &[crate::store::PacticipantDeployment],
    pacticipant: &str,
) -> Vec<String> {
    let mut v: Vec<String> = deployments
        .iter()
        .filter(|d| d.undeployed_at.is_none() && d.pacticipant == pacticipant)
        .map(|d| d.version.clone())
        .collect();
    v.dedup();
    v
}

async fn result_of(
    store: &dyn BrokerStore,
    p: &PactPublication,
    provider_version: &str,
) -> Result<(Option<bool>, Option<String>), StoreError> {
    let last = store
        .pact_verifications(&p.provider, Some(&p.consumer))
        .await?
        .into_iter()
        .rev()
        .find(|v| v.pact_sha == p.sha && v.provider_version == provider_version);
    Ok(match last {
        Some(v) => (Some(v.success), Some(v.verified_at.to_iso())),
        None => (None, None),
    })
}

/// Rows for deploying `pacticipant` at `version` into `environment`, in both roles.
async fn rows(
    store: &dyn BrokerStore,
    pacticipant: &str,
    version: &str,
    environment: &str,
) -> Result<Vec<Row>, StoreError> {
    let mut deployments = store
        .pacticipant_deployments(None, Some(environment))
        .await?;
    // A version released there (and still supported) is in the environment too.
    deployments.extend(
        store
            .pacticipant_releases(None, Some(environment))
            .await?
            .into_iter()
            .map(|r| crate::store::PacticipantDeployment {
                id: r.id,
                pacticipant: r.pacticipant,
                version: r.version,
                environment: r.environment,
                application_instance: None,
                deployed_at: r.released_at,
                undeployed_at: r.support_ended_at,
            }),
    );
    let mut out = Vec::new();
    // As a consumer: its pacts must be verified by the provider versions in the environment.
    for p in store
        .pacts(None, Some(pacticipant))
        .await?
        .into_iter()
        .filter(|p| p.consumer_version == version)
    {
        let deployed = currently_deployed(&deployments, &p.provider);
        if deployed.is_empty() {
            out.push(Row {
                consumer: p.consumer.clone(),
                consumer_version: Some(version.to_string()),
                provider: p.provider.clone(),
                provider_version: None,
                verified: None,
                verified_at: None,
                pact_created: Some(p.published_at.to_iso()),
                verified_by: "pact verifier",
            });
        }
        for pv in deployed {
            let (verified, verified_at) = result_of(store, &p, &pv).await?;
            out.push(Row {
                consumer: p.consumer.clone(),
                consumer_version: Some(version.to_string()),
                provider: p.provider.clone(),
                provider_version: Some(pv),
                verified,
                verified_at,
                pact_created: Some(p.published_at.to_iso()),
                verified_by: "pact verifier",
            });
        }
    }
    // As a provider: the pacts of the consumer versions in the environment must be verified
    // by this version.
    let mut consumers: Vec<(String, String)> = deployments
        .iter()
        .filter(|d| d.undeployed_at.is_none() && d.pacticipant != pacticipant)
        .map(|d| (d.pacticipant.clone(), d.version.clone()))
        .collect();
    consumers.sort();
    consumers.dedup();
    for (consumer, cv) in consumers {
        let Some(p) = store
            .pacts(Some(pacticipant), Some(&consumer))
            .await?
            .into_iter()
            .rev()
            .find(|p| p.consumer_version == cv)
        else {
            continue;
        };
        let (verified, verified_at) = result_of(store, &p, version).await?;
        out.push(Row {
            consumer,
            consumer_version: Some(cv),
            provider: pacticipant.to_string(),
            provider_version: Some(version.to_string()),
            verified,
            verified_at,
            pact_created: Some(p.published_at.to_iso()),
            verified_by: "pact verifier",
        });
    }
    out.extend(tenant_rows(store, pacticipant, version, environment).await?);
    Ok(out)
}

/// Rows from the registry's own records: deploying the engine at `version` meets every
/// tenant deployed in the environment (its bundle there); deploying a tenant's bundle at
/// `version` meets the engine version deployed for that tenant.
async fn tenant_rows(
    store: &dyn BrokerStore,
    pacticipant: &str,
    version: &str,
    environment: &str,
) -> Result<Vec<Row>, StoreError> {
    let (owner, tenant) = owner_of(pacticipant);
    let partners = if pacticipant == ENGINE {
        store.partners().await?
    } else if tenant.is_some() {
        vec![owner.clone()]
    } else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for partner in partners {
        let live = store
            .deployments(&partner, tenant.as_deref(), Some(environment))
            .await?
            .into_iter()
            .filter(|d| d.undeployed_at.is_none());
        for d in live {
            let (engine_version, bundle_version) = if pacticipant == ENGINE {
                (version.to_string(), d.bundle_version.clone())
            } else {
                (d.engine_version.clone(), version.to_string())
            };
            let published = store.version(&partner, &d.tenant, &bundle_version).await?;
            let verification = match &published {
                None => None,
                Some(p) => store
                    .verifications(&partner, &d.tenant)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|v| v.engine_version == engine_version && v.bundle_hash == p.hash),
            };
            out.push(Row {
                consumer: ENGINE.to_string(),
                consumer_version: Some(engine_version),
                provider: format!("{partner}-salesforce-{}", d.tenant),
                provider_version: Some(bundle_version),
                verified: verification.as_ref().map(|v| v.success),
                verified_at: verification.as_ref().map(|v| v.verified_at.to_iso()),
                pact_created: published.map(|p| p.published_at.to_iso()),
                verified_by: "syncgate gate",
            });
        }
    }
    Ok(out)
}

/// Rows between explicitly given versions (no environment): for each ordered pair, the
/// consumer version's pacts with that provider, verified (or not) by the provider version.
async fn pair_rows(
    store: &dyn BrokerStore,
    versions: &[(String, String)],
) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    for (consumer, cv) in versions {
        for (provider, pv) in versions {
            if consumer == provider {
                continue;
            }
            let Some(p) = store
                .pacts(Some(provider), Some(consumer))
                .await?
                .into_iter()
                .rev()
                .find(|p| &p.consumer_version == cv)
            else {
                continue;
            };
            let (verified, verified_at) = result_of(store, &p, pv).await?;
            out.push(Row {
                consumer: consumer.clone(),
                consumer_version: Some(cv.clone()),
                provider: provider.clone(),
                provider_version: Some(pv.clone()),
                verified,
                verified_at,
                pact_created: Some(p.published_at.to_iso()),
                verified_by: "pact verifier",
            });
        }
    }
    Ok(out)
}

/// `GET /matrix?q[][pacticipant]=P&q[][version]=V&latestby=cvp&environment=E`.
pub async fn matrix(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let mut selectors: Vec<(String, Option<String>, bool)> = Vec::new();
    let mut environment = None;
    let mut latestby: Option<String> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "q[][pacticipant]" => selectors.push((v.clone(), None, false)),
            "q[][version]" => match selectors.last_mut() {
                Some(s) => s.1 = Some(v.clone()),
                None => return Err(bad_request("q[][version] before q[][pacticipant]")),
            },
            "q[][latest]" => match selectors.last_mut() {
                Some(s) => s.2 = v == "true",
                None => return Err(bad_request("q[][latest] before q[][pacticipant]")),
            },
            "environment" => environment = Some(v.clone()),
            "latestby" => latestby = Some(v.clone()),
            _ => {}
        }
    }
    if let Some(by) = latestby {
        // Rows are already the latest result per consumer version and provider version.
        if by != "cvp" && by != "cvpv" {
            return Err(bad_request(format!(
                "latestby must be `cvp` or `cvpv`, not `{by}`"
            )));
        }
    }
    if selectors.is_empty() {
        return Err(bad_request("give at least one q[][pacticipant]"));
    }
    if environment.is_none() && selectors.len() < 2 {
        return Err(bad_request(
            "give the target environment (`environment=`, `--to-environment` in the Pact CLI), or two or more pacticipant versions",
        ));
    }
    let mut resolved = Vec::new();
    for (name, version, latest) in &selectors {
        c.check(name, Access::Read)?;
        let version = match (version, latest) {
            (Some(v), _) => v.clone(),
            (None, true) => match latest_version(cfg.store.pacticipant_versions(name).await?) {
                Some(v) => v.version,
                None => return Err(bad_request(format!("{name} has no versions"))),
            },
            (None, false) => {
                return Err(bad_request(format!(
                    "give q[][version] or q[][latest]=true for {name}"
                )))
            }
        };
        resolved.push((name.clone(), version));
    }
    let mut all = Vec::new();
    match &environment {
        Some(env) => {
            for (name, version) in &resolved {
                all.extend(rows(cfg.store.as_ref(), name, version, env).await?);
            }
        }
        None => all = pair_rows(cfg.store.as_ref(), &resolved).await?,
    }
    let environment = environment.unwrap_or_else(|| "the given versions".to_string());
    // Rows the token may not read are left out of the answer, but still count.
    let success = all.iter().filter(|r| r.verified == Some(true)).count();
    let failed = all.iter().filter(|r| r.verified == Some(false)).count();
    let unknown = all.iter().filter(|r| r.verified.is_none()).count();
    let mut notices = Vec::new();
    for r in &all {
        let cv = r.consumer_version.as_deref().unwrap_or("?");
        let text = match (r.verified, &r.provider_version) {
            (Some(true), Some(pv)) => (
                "success",
                format!(
                    "The pact between {} {cv} and {} {pv} has been verified successfully",
                    r.consumer, r.provider
                ),
            ),
            (Some(false), Some(pv)) => (
                "error",
                format!(
                    "The verification of the pact between {} {cv} and {} {pv} failed",
                    r.consumer, r.provider
                ),
            ),
            (_, Some(pv)) => (
                "error",
                format!(
                    "There is no verified pact between {} {cv} and {} {pv}",
                    r.consumer, r.provider
                ),
            ),
            (_, None) => (
                "error",
                format!(
                    "There is no verified pact between {} {cv} and a version of {} in {environment} (no version of {} is recorded as deployed there)",
                    r.consumer, r.provider, r.provider
                ),
            ),
        };
        notices.push(json!({ "type": text.0, "text": text.1 }));
    }
    // As the Pact Broker answers: `false` when a verification failed or a provider has no
    // version there at all; `null` (unknown, not deployable) while a verification is only
    // missing, which is what `can-i-deploy --retry-while-unknown` waits on.
    let missing_provider = all.iter().any(|r| r.provider_version.is_none());
    let deployable = if failed > 0 || missing_provider {
        Value::Bool(false)
    } else if unknown > 0 {
        Value::Null
    } else {
        Value::Bool(true)
    };
    let reason = if deployable == Value::Bool(true) {
        if all.is_empty() {
            "There are no missing dependencies".to_string()
        } else {
            "All required verification results are published and successful".to_string()
        }
    } else if failed > 0 {
        "One or more verifications have failed".to_string()
    } else {
        "There are missing verification results".to_string()
    };
    let matrix: Vec<Value> = all
        .iter()
        .filter(|r| c.scope.allows(&r.consumer, Access::Read) || c.scope.allows(&r.provider, Access::Read))
        .map(|r| {
            json!({
                "consumer": { "name": r.consumer, "version": r.consumer_version.as_ref().map(|v| json!({"number": v})) },
                "provider": { "name": r.provider, "version": r.provider_version.as_ref().map(|v| json!({"number": v})) },
                "pact": { "createdAt": r.pact_created },
                "verificationResult": r.verified.map(|s| json!({ "success": s, "verifiedAt": r.verified_at, "verifiedBy": r.verified_by })),
            })
        })
        .collect();
    let body = json!({
        "summary": {
            "deployable": deployable,
            "reason": reason,
            "success": success,
            "failed": failed,
            "unknown": unknown,
        },
        "notices": notices,
        "matrix": matrix,
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

/// The latest of a pacticipant's versions ([`super::order`]).
fn latest_version(
    versions: Vec<crate::store::PacticipantVersion>,
) -> Option<crate::store::PacticipantVersion> {
    super::order::latest(versions, |v| &v.version)
}

/// `GET /pacticipants/{p}/latest-version/{tag}/can-i-deploy/to/{env}/badge`
/// (`pb:can-i-deploy-badge`): whether the latest version with the tag may go to the
/// environment, as an SVG badge — `yes`, `no`, or `unknown` while a verification is missing.
pub async fn can_i_deploy_badge(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    axum::extract::Path((name, tag, environment)): axum::extract::Path<(String, String, String)>,
) -> Result<axum::response::Response, super::ApiError> {
    use axum::response::IntoResponse;
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Read)?;
    let mut tagged = cfg.store.pacticipant_versions(&name).await?;
    tagged.retain(|v| v.tags.iter().any(|t| t == &tag));
    let latest = latest_version(tagged);
    let verdict = match latest {
        None => "no version",
        Some(v) => {
            let all = rows(cfg.store.as_ref(), &name, &v.version, &environment).await?;
            if all
                .iter()
                .any(|r| r.verified == Some(false) || r.provider_version.is_none())
            {
                "no"
            } else if all.iter().any(|r| r.verified.is_none()) {
                "unknown"
            } else {
                "yes"
            }
        }
    };
    let colour = match verdict {
        "yes" => "#4c1",
        "no" => "#e05d44",
        _ => "#9f9f9f",
    };
    let label = format!("can-i-deploy {tag} to {environment}");
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (lw, vw) = (label.len() * 7 + 10, verdict.len() * 7 + 10);
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{l}: {v}"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{vw}" height="20" fill="{colour}"/><g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="5" y="14">{l}</text><text x="{vx}" y="14">{v}</text></g></svg>"##,
        w = lw + vw,
        l = esc(&label),
        v = esc(verdict),
        vx = lw + 5,
    );
    Ok((
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response())
}
