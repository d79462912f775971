//! Pacticipants and their versions: `pb:pacticipant`, `pb:pacticipant-version` (with the
//! links to record deployments and releases), and a version's branch and tags.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{caller, hal, not_found, seg, Access, ApiError, ApiResult, BrokerConfig, Shared};

pub(super) async fn pacticipant(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Read)?;
    let b = format!("{}/pacticipants/{}", c.base, seg(&name));
    let body = json!({
        "name": name,
        "_links": {
            "self": { "href": b },
            "pb:versions": { "href": format!("{b}/versions") },
            "pb:version": { "href": format!("{b}/versions/{{version}}"), "templated": true },
            "pb:branch-version": { "href": format!("{b}/branches/{{branch}}/versions/{{version}}"), "templated": true },
            "pb:version-tag": { "href": format!("{b}/versions/{{version}}/tags/{{tag}}"), "templated": true },
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) async fn version_body(
    cfg: &BrokerConfig,
    base: &str,
    name: &str,
    version: &str,
) -> Result<Option<Value>, ApiError> {
    let Some(v) = cfg
        .store
        .pacticipant_versions(name)
        .await?
        .into_iter()
        .find(|v| v.version == version)
    else {
        return Ok(None);
    };
    let b = format!(
        "{base}/pacticipants/{}/versions/{}",
        seg(name),
        seg(version)
    );
    let envs = cfg.store.environments().await?;
    // One link per environment to record a deployment (`deployed`) or a release to it.
    let record_links = |kind: &str, what: &str| -> Vec<Value> {
        envs.iter()
            .map(|e| {
                json!({
                    "href": format!("{b}/{kind}-versions/environment/{}", seg(e)),
                    "title": format!("Record {what} to {e}"),
                    "name": e
                })
            })
            .collect()
    };
    let record = record_links("deployed", "deployment");
    let release = record_links("released", "release");
    Ok(Some(json!({
        "number": v.version,
        "branch": v.branch,
        "tags": v.tags,
        "createdAt": v.created_at.to_iso(),
        "_embedded": {
            "branchVersions": v.branch.iter().map(|b| json!({"name": b})).collect::<Vec<_>>(),
            "tags": v.tags.iter().map(|t| json!({"name": t})).collect::<Vec<_>>(),
        },
        "_links": {
            "self": { "href": b, "name": v.version },
            "pb:pacticipant": { "href": format!("{base}/pacticipants/{}", seg(name)), "name": name },
            "pb:record-deployment": record,
            "pb:record-release": release,
        }
    })))
}

pub(super) async fn pacticipant_version(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Read)?;
    match version_body(&cfg, &c.base, &name, &version).await? {
        Some(body) => Ok(hal(StatusCode::OK, &headers, body)),
        None => Err(not_found(format!("{name} has no version {version}"))),
    }
}

pub(super) async fn put_branch(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, branch, version)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Write)?;
    let v = cfg
        .store
        .pacticipant_version_upsert(&name, &version, Some(&branch), None, cfg.clock.now())
        .await?;
    let body = json!({ "name": branch, "version": v.version, "_links": { "self": { "href": format!("{}/pacticipants/{}/branches/{}/versions/{}", c.base, seg(&name), seg(&branch), seg(&version)) } } });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) async fn put_tag(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, version, tag)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Write)?;
    cfg.store
        .pacticipant_version_upsert(&name, &version, None, Some(&tag), cfg.clock.now())
        .await?;
    let body = json!({ "name": tag, "_links": { "self": { "href": format!("{}/pacticipants/{}/versions/{}/tags/{}", c.base, seg(&name), seg(&version), seg(&tag)) } } });
    Ok(hal(StatusCode::CREATED, &headers, body))
}
