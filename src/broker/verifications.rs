//! Publishing verification results (`pb:publish-verification-results`): recorded against the
//! pact they verify, with the provider version, and the webhook events raised.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    bad_request, caller, find_pact, hal, parse_json, seg, webhooks, Access, ApiResult,
    BrokerConfig, Shared,
};
use crate::store::PactVerificationResult;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultBody {
    success: bool,
    provider_application_version: String,
}

async fn record_result(
    cfg: &BrokerConfig,
    headers: &HeaderMap,
    provider: &str,
    consumer: &str,
    sha: Option<&str>,
    body: &Bytes,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    c.check(provider, Access::Write)?;
    let req: ResultBody = parse_json(body, "verification result")?;
    if req.provider_application_version.trim().is_empty() {
        return Err(bad_request("providerApplicationVersion is empty"));
    }
    let p = find_pact(cfg, provider, consumer, |p| sha.is_none_or(|s| p.sha == s)).await?;
    let now = cfg.clock.now();
    let raw: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut result = PactVerificationResult {
        id: 0,
        consumer: consumer.to_string(),
        provider: provider.to_string(),
        pact_sha: p.sha.clone(),
        provider_version: req.provider_application_version.clone(),
        success: req.success,
        body: raw.to_string(),
        verified_at: now,
    };
    let id = cfg.store.pact_verification_record(&result).await?;
    result.id = id;
    cfg.store
        .pacticipant_version_upsert(provider, &req.provider_application_version, None, None, now)
        .await?;
    webhooks::events::verified(cfg, &c.base, &p, &result);
    let href = format!(
        "{}/pacts/provider/{}/consumer/{}/pact-version/{}/verification-results/{id}",
        c.base,
        seg(provider),
        seg(consumer),
        p.sha
    );
    let out = json!({
        "success": req.success,
        "providerApplicationVersion": req.provider_application_version,
        "verificationDate": now.to_iso(),
        "_links": { "self": { "href": href, "title": "Verification result" } }
    });
    Ok(hal(StatusCode::CREATED, headers, out))
}

pub(super) async fn verify_latest(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    record_result(&cfg, &headers, &provider, &consumer, None, &body).await
}

pub(super) async fn verify_sha(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    record_result(&cfg, &headers, &provider, &consumer, Some(&sha), &body).await
}
