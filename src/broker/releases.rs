//! Released versions (`pact broker record-release`): a version released to an environment
//! stays there beside the versions released before it, until its support ends.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::environments::{check_target, recorded};
use super::{caller, hal, seg, Access, ApiResult, Shared};
use crate::store::PacticipantRelease;

/// `POST /pacticipants/{p}/versions/{v}/released-versions/environment/{env}`.
pub async fn record_release(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, version, env)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&name, Access::Write)?;
    check_target(&cfg, &c.base, &name, &version, &env).await?;
    let now = cfg.clock.now();
    let id = cfg
        .store
        .pacticipant_release(&PacticipantRelease {
            id: 0,
            pacticipant: name.clone(),
            version: version.clone(),
            environment: env.clone(),
            released_at: now,
            support_ended_at: None,
        })
        .await?;
    let released = cfg
        .store
        .pacticipant_releases(Some(&name), Some(&env))
        .await?
        .into_iter()
        .find(|r| r.id == id);
    let at = released.map_or(now, |r| r.released_at);
    let state = json!({
        "uuid": id.to_string(),
        "currentlySupported": true,
        "createdAt": at.to_iso(),
    });
    let body = recorded(&c.base, "released-versions", id, &version, &env, state);
    Ok(hal(StatusCode::CREATED, &headers, body))
}

/// `GET /environments/{env}/released-versions/currently-supported[?pacticipant=P]`.
pub(super) async fn currently_supported(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(env): Path<String>,
    axum::extract::Query(filter): axum::extract::Query<super::environments::PacticipantFilter>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let list: Vec<Value> = cfg
        .store
        .pacticipant_releases(filter.pacticipant.as_deref(), Some(&env))
        .await?
        .into_iter()
        .filter(|r| r.support_ended_at.is_none() && c.scope.allows(&r.pacticipant, Access::Read))
        .map(|r| {
            json!({
                "uuid": r.id.to_string(),
                "currentlySupported": true,
                "createdAt": r.released_at.to_iso(),
                "_embedded": {
                    "pacticipant": { "name": r.pacticipant },
                    "version": { "number": r.version }
                }
            })
        })
        .collect();
    let body = json!({
        "_embedded": { "releasedVersions": list },
        "_links": { "self": { "href": format!("{}/environments/{}/released-versions/currently-supported", c.base, seg(&env)) } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}
