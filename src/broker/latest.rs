//! Listing and "latest" routes: `pb:latest-pact-versions`, `pb:pacticipants`,
//! `pb:latest-version`, `pb:latest-tagged-version` and the latest pact carrying a tag.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{
    caller, find_pact, hal, not_found, pact_response, seg, version_body, Access, ApiResult, Shared,
};

/// `GET /pacts/latest`: the latest pact of every consumer/provider pair the token may read.
pub async fn latest_pact_versions(State(cfg): State<Shared>, headers: HeaderMap) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let b = &c.base;
    let mut latest = BTreeMap::new();
    for p in cfg.store.pacts(None, None).await? {
        if c.scope.allows(&p.provider, Access::Read) || c.scope.allows(&p.consumer, Access::Read) {
            latest.insert((p.consumer.clone(), p.provider.clone()), p);
        }
    }
    let pacts: Vec<Value> = latest
        .values()
        .map(|p| {
            let pair = format!(
                "{b}/pacts/provider/{}/consumer/{}",
                seg(&p.provider),
                seg(&p.consumer)
            );
            json!({
                "createdAt": p.published_at.to_iso(),
                "_embedded": {
                    "consumer": {
                        "name": p.consumer,
                        "_links": { "self": { "href": format!("{b}/pacticipants/{}", seg(&p.consumer)) } },
                        "_embedded": { "version": { "number": p.consumer_version } }
                    },
                    "provider": {
                        "name": p.provider,
                        "_links": { "self": { "href": format!("{b}/pacticipants/{}", seg(&p.provider)) } }
                    }
                },
                "_links": {
                    "self": [
                        { "href": format!("{pair}/latest") },
                        { "href": format!("{pair}/version/{}", seg(&p.consumer_version)) }
                    ]
                }
            })
        })
        .collect();
    let body = json!({
        "pacts": pacts,
        "_links": { "self": { "href": format!("{b}/pacts/latest") } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

/// `GET /pacticipants`: every pacticipant with a pact, a version or a deployment that the
/// token may read, by name.
pub async fn pacticipants(State(cfg): State<Shared>, headers: HeaderMap) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let b = &c.base;
    let mut names = std::collections::BTreeSet::new();
    for p in cfg.store.pacts(None, None).await? {
        names.insert(p.consumer);
        names.insert(p.provider);
    }
    for d in cfg.store.pacticipant_deployments(None, None).await? {
        names.insert(d.pacticipant);
    }
    let list: Vec<Value> = names
        .iter()
        .filter(|n| c.scope.allows(n, Access::Read))
        .map(|n| {
            json!({
                "name": n,
                "displayName": n,
                "_links": { "self": { "href": format!("{b}/pacticipants/{}", seg(n)) } }
            })
        })
        .collect();
    let body = json!({
        "pacticipants": list,
        "_embedded": { "pacticipants": list },
        "_links": { "self": { "href": format!("{b}/pacticipants") } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

async fn latest_version_of(
    cfg: &Shared,
    headers: &HeaderMap,
    name: &str,
    tag: Option<&str>,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    c.check(name, Access::Read)?;
    let latest = cfg
        .store
        .pacticipant_versions(name)
        .await?
        .into_iter()
        .rev()
        .find(|v| tag.is_none_or(|t| v.tags.iter().any(|x| x == t)));
    let Some(v) = latest else {
        return Err(match tag {
            Some(t) => not_found(format!("{name} has no version tagged {t}")),
            None => not_found(format!("{name} has no versions")),
        });
    };
    match version_body(cfg, &c.base, name, &v.version).await? {
        Some(body) => Ok(hal(StatusCode::OK, headers, body)),
        None => Err(not_found(format!("{name} has no version {}", v.version))),
    }
}

/// `GET /pacticipants/{p}/latest-version`.
pub async fn latest_version(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    latest_version_of(&cfg, &headers, &name, None).await
}

/// `GET /pacticipants/{p}/latest-version/{tag}`.
pub async fn latest_tagged_version(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((name, tag)): Path<(String, String)>,
) -> ApiResult {
    latest_version_of(&cfg, &headers, &name, Some(&tag)).await
}

/// `GET /pacts/provider/{p}/consumer/{c}/latest/{tag}`: the latest pact whose consumer
/// version carries the tag.
pub async fn latest_tagged_pact(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, tag)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let tagged: Vec<String> = cfg
        .store
        .pacticipant_versions(&consumer)
        .await?
        .into_iter()
        .filter(|v| v.tags.iter().any(|t| t == &tag))
        .map(|v| v.version)
        .collect();
    let p = find_pact(&cfg, &provider, &consumer, |p| {
        tagged.contains(&p.consumer_version) || p.tags.contains(&tag)
    })
    .await?;
    pact_response(&c.base, &headers, &p)
}
