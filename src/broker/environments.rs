//! Environments and deployments: `/environments`, `pb:record-deployment` and the versions
//! currently deployed in an environment.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad_request, caller, hal, not_found, parse_json, seg, version_body, Access, ApiError,
    ApiResult, BrokerConfig, Shared,
};
use crate::store::PacticipantDeployment;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployBody {
    application_instance: Option<String>,
}

pub(super) async fn record_deployment(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, version, env)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Write)?;
    let req: DeployBody = parse_json(&body, "record-deployment")?;
    check_target(&cfg, &c.base, &name, &version, &env).await?;
    let now = cfg.clock.now();
    let id = cfg
        .store
        .pacticipant_deploy(&PacticipantDeployment {
            id: 0,
            pacticipant: name.clone(),
            version: version.clone(),
            environment: env.clone(),
            application_instance: req.application_instance.clone(),
            deployed_at: now,
            undeployed_at: None,
        })
        .await?;
    let state = json!({
        "uuid": id.to_string(),
        "currentlyDeployed": true,
        "applicationInstance": req.application_instance,
        "createdAt": now.to_iso(),
    });
    let body = recorded(&c.base, "deployed-versions", id, &version, &env, state);
    Ok(hal(StatusCode::CREATED, &headers, body))
}

/// Refuses (404) to record `name` `version` in `env` unless the environment and the version
/// exist (a deployment and a release alike).
pub(super) async fn check_target(
    cfg: &BrokerConfig,
    base: &str,
    name: &str,
    version: &str,
    env: &str,
) -> Result<(), ApiError> {
    if !cfg.store.environments().await?.iter().any(|e| e == env) {
        return Err(not_found(format!("no environment named {env}")));
    }
    if version_body(cfg, base, name, version).await?.is_none() {
        return Err(not_found(format!("{name} has no version {version}")));
    }
    Ok(())
}

/// The answer to a recorded deployment or release (`kind`: `deployed-versions` or
/// `released-versions`): its `state` (uuid, currently…, createdAt) followed by the version,
/// the environment and the links.
pub(super) fn recorded(
    base: &str,
    kind: &str,
    id: impl std::fmt::Display,
    version: &str,
    env: &str,
    mut state: Value,
) -> Value {
    state["_embedded"] = json!({
        "version": { "number": version },
        "environment": { "uuid": env, "name": env }
    });
    state["_links"] = json!({
        "self": { "href": format!("{base}/{kind}/{id}") },
        "pb:environment": { "href": format!("{base}/environments/{}", seg(env)), "name": env }
    });
    state
}

fn environment_json(base: &str, name: &str) -> Value {
    json!({
        "uuid": name,
        "name": name,
        "displayName": name,
        "production": name == "production",
        "_links": {
            "self": { "href": format!("{base}/environments/{}", seg(name)), "name": name },
            "pb:currently-deployed-deployed-versions": {
                "href": format!("{base}/environments/{}/deployed-versions/currently-deployed", seg(name))
            },
            "pb:currently-supported-released-versions": {
                "href": format!("{base}/environments/{}/released-versions/currently-supported", seg(name))
            }
        }
    })
}

#[derive(Deserialize)]
pub(super) struct NameFilter {
    name: Option<String>,
}

pub(super) async fn environments(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Query(filter): Query<NameFilter>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let list: Vec<Value> = cfg
        .store
        .environments()
        .await?
        .iter()
        .filter(|e| filter.name.as_deref().is_none_or(|n| n == e.as_str()))
        .map(|e| environment_json(&c.base, e))
        .collect();
    let body = json!({
        "_embedded": { "environments": list },
        "_links": { "self": { "href": format!("{}/environments", c.base) } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) async fn environment(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(env): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    if !cfg.store.environments().await?.contains(&env) {
        return Err(not_found(format!("no environment named {env}")));
    }
    Ok(hal(
        StatusCode::OK,
        &headers,
        environment_json(&c.base, &env),
    ))
}

#[derive(Deserialize)]
struct NewEnvironment {
    name: String,
}

pub(super) async fn create_environment(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    // Environments are global: only an admin token creates them.
    if c.scope.access != Access::Admin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` may not create environments (that needs `access = \"admin\"`)",
                c.scope.name
            ),
        ));
    }
    let req: NewEnvironment = parse_json(&body, "environment")?;
    let valid = !req.name.is_empty()
        && req
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(bad_request(format!(
            "environment name `{}` must be letters, digits, `-`, `_` or `.`",
            req.name
        )));
    }
    cfg.store.add_environment(&req.name).await?;
    Ok(hal(
        StatusCode::CREATED,
        &headers,
        environment_json(&c.base, &req.name),
    ))
}

#[derive(Deserialize)]
pub(super) struct PacticipantFilter {
    pub(super) pacticipant: Option<String>,
}

pub(super) async fn currently_deployed(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(env): Path<String>,
    Query(filter): Query<PacticipantFilter>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let list: Vec<Value> = cfg
        .store
        .pacticipant_deployments(filter.pacticipant.as_deref(), Some(&env))
        .await?
        .into_iter()
        .filter(|d| d.undeployed_at.is_none() && c.scope.allows(&d.pacticipant, Access::Read))
        .map(|d| {
            json!({
                "uuid": d.id.to_string(),
                "currentlyDeployed": true,
                "applicationInstance": d.application_instance,
                "createdAt": d.deployed_at.to_iso(),
                "_embedded": {
                    "pacticipant": { "name": d.pacticipant },
                    "version": { "number": d.version }
                }
            })
        })
        .collect();
    let body = json!({
        "_embedded": { "deployedVersions": list },
        "_links": { "self": { "href": format!("{}/environments/{}/deployed-versions/currently-deployed", c.base, seg(&env)) } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}
