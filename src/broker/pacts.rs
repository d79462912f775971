//! Reading pacts: a provider's latest pacts, a pact by consumer version or content SHA, and
//! the pacts for verification (`pact verifier --broker-url` with consumer version selectors).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{json, Value};

use super::{
    caller, hal, not_found, order, parse_json, seg, selectors, Access, ApiError, ApiResult,
    BrokerConfig, Shared,
};
use crate::store::PactPublication;

/// The latest publication per consumer ([`order`]), in consumer order.
pub fn latest_per_consumer(pubs: &[PactPublication]) -> Vec<&PactPublication> {
    order::latest_per(pubs, |p| p.consumer.clone(), |p| &p.consumer_version)
}

pub(super) fn pact_link(base: &str, p: &PactPublication, is_latest: bool) -> String {
    if is_latest {
        format!(
            "{base}/pacts/provider/{}/consumer/{}",
            seg(&p.provider),
            seg(&p.consumer)
        )
    } else {
        format!(
            "{base}/pacts/provider/{}/consumer/{}/version/{}",
            seg(&p.provider),
            seg(&p.consumer),
            seg(&p.consumer_version)
        )
    }
}

pub(super) async fn provider_pacts(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let pubs = cfg.store.pacts(Some(&provider), None).await?;
    let links: Vec<Value> = latest_per_consumer(&pubs)
        .into_iter()
        .map(|p| {
            json!({
                "href": pact_link(&c.base, p, true),
                "title": "Pact",
                "name": format!("Pact between {} ({}) and {}", p.consumer, p.consumer_version, p.provider)
            })
        })
        .collect();
    let b = &c.base;
    let body = json!({
        "_links": {
            "self": { "href": format!("{b}/pacts/provider/{}/latest", seg(&provider)) },
            "provider": { "href": format!("{b}/pacticipants/{}", seg(&provider)), "name": provider },
            "pb:pacts": links,
            "pacts": links,
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) async fn for_verification_link(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let body = json!({
        "_links": {
            "self": {
                "href": format!("{}/pacts/provider/{}/for-verification", c.base, seg(&provider)),
                "title": "Pacts to be verified"
            }
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) async fn for_verification(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let req: selectors::ForVerification = parse_json(&body, "pacts-for-verification")?;
    let pacts = selectors::select(cfg.store.as_ref(), &provider, &req).await?;
    let entries: Vec<Value> = pacts
        .iter()
        .map(|s| {
            let mut e = json!({
                "shortDescription": s.descriptions.join(", "),
                "_links": {
                    "self": {
                        "href": pact_link(&c.base, &s.publication, s.is_latest),
                        "name": format!("Pact between {} and {}", s.publication.consumer, s.publication.provider)
                    }
                }
            });
            if req.include_pending_status {
                let mut notices = vec![json!({
                    "when": "before_verification",
                    "text": format!(
                        "The pact at {} is being verified because it matches the following configured selection criterion: {}",
                        pact_link(&c.base, &s.publication, s.is_latest),
                        s.descriptions.join(", ")
                    )
                })];
                let text = if s.pending {
                    format!("This pact is in pending state for this version of {provider} because a successful verification result has not yet been published. If this verification fails, it will not cause the overall build to fail.")
                } else {
                    format!("This pact has been verified successfully by {provider} before, so a failure will fail the build.")
                };
                notices.push(json!({ "when": "before_verification", "text": text }));
                e["verificationProperties"] = if s.wip {
                    json!({ "pending": true, "wip": true, "notices": notices })
                } else {
                    json!({ "pending": s.pending, "notices": notices })
                };
            }
            e
        })
        .collect();
    let body = json!({
        "_embedded": { "pacts": entries },
        "_links": {
            // The resource this answer came from, as the index advertises it (a template).
            "self": {
                "href": format!("{}/pacts/provider/{{provider}}/for-verification", c.base),
                "title": "Pacts to be verified",
                "templated": true
            }
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

pub(super) fn pact_response(base: &str, headers: &HeaderMap, p: &PactPublication) -> ApiResult {
    let mut pact: Value = serde_json::from_str(&p.content).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stored pact is unreadable: {e}"),
        )
    })?;
    let pv = format!(
        "{base}/pacts/provider/{}/consumer/{}/pact-version/{}",
        seg(&p.provider),
        seg(&p.consumer),
        p.sha
    );
    pact["_links"] = json!({
        "self": { "href": pact_link(base, p, false), "title": "Pact", "name": format!("Pact between {} ({}) and {}", p.consumer, p.consumer_version, p.provider) },
        "pb:pact-version": { "href": pv, "name": p.sha },
        "pb:publish-verification-results": { "href": format!("{pv}/verification-results"), "title": "Publish verification results" },
        "pb:latest-verification-results": { "href": format!("{pv}/verification-results/latest"), "title": "Latest verification results" },
        "pb:consumer": { "href": format!("{base}/pacticipants/{}", seg(&p.consumer)), "name": p.consumer },
        "pb:consumer-version": { "href": format!("{base}/pacticipants/{}/versions/{}", seg(&p.consumer), seg(&p.consumer_version)), "name": p.consumer_version },
        "pb:provider": { "href": format!("{base}/pacticipants/{}", seg(&p.provider)), "name": p.provider },
    });
    Ok(hal(StatusCode::OK, headers, pact))
}

pub(super) async fn find_pact(
    cfg: &BrokerConfig,
    provider: &str,
    consumer: &str,
    pick: impl Fn(&PactPublication) -> bool,
) -> Result<PactPublication, ApiError> {
    let mut pacts = cfg.store.pacts(Some(provider), Some(consumer)).await?;
    order::sort(&mut pacts, |p| &p.consumer_version);
    pacts
        .into_iter()
        .rev()
        .find(|p| pick(p))
        .ok_or_else(|| not_found(format!("no such pact between {consumer} and {provider}")))
}

/// The latest pact between `consumer` and `provider` that `pick` accepts, as HAL.
async fn pact_answer(
    cfg: &BrokerConfig,
    headers: &HeaderMap,
    provider: &str,
    consumer: &str,
    pick: impl Fn(&PactPublication) -> bool,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    c.check(provider, Access::Read)?;
    let p = find_pact(cfg, provider, consumer, pick).await?;
    pact_response(&c.base, headers, &p)
}

pub(super) async fn latest_pact(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
) -> ApiResult {
    pact_answer(&cfg, &headers, &provider, &consumer, |_| true).await
}

pub(super) async fn pact_by_version(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, version)): Path<(String, String, String)>,
) -> ApiResult {
    pact_answer(&cfg, &headers, &provider, &consumer, |p| {
        p.consumer_version == version
    })
    .await
}

pub(super) async fn pact_by_sha(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha)): Path<(String, String, String)>,
) -> ApiResult {
    pact_answer(&cfg, &headers, &provider, &consumer, |p| p.sha == sha).await
}
