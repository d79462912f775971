//! Listing and "latest" routes: `pb:latest-pact-versions`, `pb:pacticipants`,
//! `pb:latest-version`, `pb:latest-tagged-version` and the latest pact carrying a tag.

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
    let mut readable = cfg.store.pacts(None, None).await?;
    readable.retain(|p| {
        c.scope.allows(&p.provider, Access::Read) || c.scope.allows(&p.consumer, Access::Read)
    });
    let latest = super::order::latest_per(
        &readable,
        |p| (p.consumer.clone(), p.provider.clone()),
        |p| &p.consumer_version,
    );
    let pacts: Vec<Value> = latest
        .into_iter()
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
    let mut versions = cfg.store.pacticipant_versions(name).await?;
    versions.retain(|v| tag.is_none_or(|t| v.tags.iter().any(|x| x == t)));
    let latest = super::order::latest(versions, |v| &v.version);
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

/// Which publications a `…/branch…` route lists: what its path names.
#[derive(serde::Deserialize)]
pub struct BranchPath {
    provider: String,
    consumer: Option<String>,
    /// `None`: the main branch ([`super::selectors::MAIN_BRANCHES`]).
    branch: Option<String>,
}

async fn branch_pacts(cfg: &Shared, headers: &HeaderMap, q: BranchPath, latest: bool) -> ApiResult {
    let c = caller(cfg, headers)?;
    c.check(&q.provider, Access::Read)?;
    let on_branch = |b: &Option<String>| match (&q.branch, b) {
        (Some(want), Some(b)) => want == b,
        (None, Some(b)) => super::selectors::MAIN_BRANCHES.contains(&b.as_str()),
        (_, None) => false,
    };
    let pubs: Vec<_> = cfg
        .store
        .pacts(Some(&q.provider), q.consumer.as_deref())
        .await?
        .into_iter()
        .filter(|p| on_branch(&p.branch))
        .collect();
    let chosen: Vec<&crate::store::PactPublication> = if latest {
        super::latest_per_consumer(&pubs)
    } else {
        pubs.iter().collect()
    };
    let b = &c.base;
    let links: Vec<Value> = chosen
        .iter()
        .map(|p| {
            json!({
                "href": format!(
                    "{b}/pacts/provider/{}/consumer/{}/version/{}",
                    seg(&p.provider),
                    seg(&p.consumer),
                    seg(&p.consumer_version)
                ),
                "title": format!("Pact between {} ({}) and {}", p.consumer, p.consumer_version, p.provider),
                "name": p.consumer,
            })
        })
        .collect();
    let branch = q.branch.as_deref().unwrap_or("the main branch");
    let body = json!({
        "_links": {
            "self": {
                "href": format!("{b}/pacts/provider/{}/branch", seg(&q.provider)),
                "title": format!("Pacts for the provider {} from {branch}", q.provider)
            },
            "pb:provider": { "href": format!("{b}/pacticipants/{}", seg(&q.provider)), "name": q.provider },
            "pb:pacts": links,
        }
    });
    Ok(hal(StatusCode::OK, headers, body))
}

/// `GET /pacts/provider/{p}[/consumer/{c}]/branch[/{branch}]`: the pacts from a consumer
/// branch (the main branch without one).
pub async fn branch_pacts_all(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(q): Path<BranchPath>,
) -> ApiResult {
    branch_pacts(&cfg, &headers, q, false).await
}

/// `GET …/branch[/{branch}]/latest`: the latest of those per consumer.
pub async fn branch_pacts_latest(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(q): Path<BranchPath>,
) -> ApiResult {
    branch_pacts(&cfg, &headers, q, true).await
}

/// `GET /pacts/provider/{p}/consumer/{c}/pact-version/{sha}/verification-results/latest`
/// (`pb:latest-verification-results`): the last result posted for that pact content.
pub async fn latest_verification_results(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha)): Path<(String, String, String)>,
) -> ApiResult {
    verification_result(&cfg, &headers, &provider, &consumer, &sha, None).await
}

/// `GET /pacts/provider/{p}/consumer/{c}/pact-version/{sha}/verification-results/{id}`: one
/// result (the link a verification answer and `${pactbroker.verificationResultUrl}` give).
pub async fn verification_result_by_id(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha, id)): Path<(String, String, String, i64)>,
) -> ApiResult {
    verification_result(&cfg, &headers, &provider, &consumer, &sha, Some(id)).await
}

/// The result `id` (or the last) posted for the pact content `sha`.
async fn verification_result(
    cfg: &Shared,
    headers: &HeaderMap,
    provider: &str,
    consumer: &str,
    sha: &str,
    id: Option<i64>,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    c.check(provider, Access::Read)?;
    let last = cfg
        .store
        .pact_verifications(provider, Some(consumer))
        .await?
        .into_iter()
        .rev()
        .find(|v| v.pact_sha == sha && id.is_none_or(|i| v.id == i))
        .ok_or_else(|| {
            not_found(format!(
                "no such verification result for the pact between {consumer} and {provider} ({sha})"
            ))
        })?;
    let mut body: Value = serde_json::from_str(&last.body).unwrap_or_else(|_| json!({}));
    if !body.is_object() {
        body = json!({});
    }
    let pv = format!(
        "{}/pacts/provider/{}/consumer/{}/pact-version/{sha}",
        c.base,
        seg(provider),
        seg(consumer)
    );
    body["success"] = json!(last.success);
    body["providerApplicationVersion"] = json!(last.provider_version);
    body["verificationDate"] = json!(last.verified_at.to_iso());
    body["_links"] = json!({
        "self": { "href": format!("{pv}/verification-results/{}", last.id), "title": "Verification result" },
        "pb:pact-version": { "href": pv },
    });
    Ok(hal(StatusCode::OK, headers, body))
}
