//! Publishing contracts (`POST /contracts/publish`, `pact broker publish`): every contract
//! checked before any is written, the consumer version's branch and tags recorded, and the
//! webhook events raised.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{bad_request, caller, hal, parse_json, seg, webhooks, Access, ApiResult, Shared};
use crate::store::PactPublication;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishBody {
    pacticipant_name: String,
    pacticipant_version_number: String,
    branch: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    contracts: Vec<ContractBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContractBody {
    consumer_name: String,
    provider_name: String,
    specification: String,
    content: String,
}

/// SHA-256 of a pact's JSON, hex: the pact's identity (`pact-version`).
pub fn pact_sha(content: &Value) -> String {
    hex::encode(Sha256::digest(content.to_string().as_bytes()))
}

pub(super) async fn publish_contracts(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let req: PublishBody = parse_json(&body, "publish")?;
    if req.pacticipant_version_number.trim().is_empty() {
        return Err(bad_request("pacticipantVersionNumber is empty"));
    }
    if req.contracts.is_empty() {
        return Err(bad_request("no contracts to publish"));
    }
    let now = cfg.clock.now();
    // Check every contract before writing any: a bad one publishes nothing.
    let mut pubs = Vec::new();
    for (i, k) in req.contracts.iter().enumerate() {
        let at = format!("contracts[{i}]");
        if k.specification != "pact" {
            return Err(bad_request(format!(
                "{at}.specification: only `pact` is supported, not `{}`",
                k.specification
            )));
        }
        if k.consumer_name != req.pacticipant_name {
            return Err(bad_request(format!(
                "{at}.consumerName `{}` is not the published pacticipant `{}`",
                k.consumer_name, req.pacticipant_name
            )));
        }
        c.check(&k.provider_name, Access::Write)?;
        let raw = base64_decode(&k.content)
            .ok_or_else(|| bad_request(format!("{at}.content is not base64")))?;
        let pact: Value = serde_json::from_slice(&raw)
            .map_err(|e| bad_request(format!("{at}.content is not a JSON pact: {e}")))?;
        for (role, expected) in [
            ("consumer", &k.consumer_name),
            ("provider", &k.provider_name),
        ] {
            if let Some(named) = pact
                .pointer(&format!("/{role}/name"))
                .and_then(Value::as_str)
            {
                if named != expected {
                    return Err(bad_request(format!(
                        "{at}: the pact's {role} is `{named}` but the request says `{expected}`"
                    )));
                }
            }
        }
        if !pact.get("interactions").is_some_and(Value::is_array)
            && !pact.get("messages").is_some_and(Value::is_array)
        {
            return Err(bad_request(format!(
                "{at}.content: a pact needs `interactions` (or `messages`)"
            )));
        }
        pubs.push(PactPublication {
            consumer: k.consumer_name.clone(),
            consumer_version: req.pacticipant_version_number.clone(),
            provider: k.provider_name.clone(),
            branch: req.branch.clone(),
            tags: req.tags.clone(),
            sha: pact_sha(&pact),
            content: pact.to_string(),
            published_at: now,
        });
    }
    // The consumer's version, branch and tags are written too: the token must own it.
    c.check(&req.pacticipant_name, Access::Write)?;
    let outcomes = cfg.store.pacts_publish(&pubs).await?;
    let created = outcomes
        .iter()
        .map(|o| *o == crate::store::PublishOutcome::Created);
    webhooks::events::published(&cfg, &c.base, pubs.iter().cloned().zip(created).collect());
    let name = &req.pacticipant_name;
    let version = &req.pacticipant_version_number;
    cfg.store
        .pacticipant_version_upsert(name, version, req.branch.as_deref(), None, now)
        .await?;
    for t in &req.tags {
        cfg.store
            .pacticipant_version_upsert(name, version, None, Some(t), now)
            .await?;
    }
    let b = &c.base;
    let mut notices =
        vec![json!({"type": "success", "text": format!("Created {name} version {version}")})];
    let mut contracts = Vec::new();
    for (p, o) in pubs.iter().zip(&outcomes) {
        let verb = match o {
            crate::store::PublishOutcome::Created => "published",
            crate::store::PublishOutcome::Unchanged => "already published with the same content",
        };
        notices.push(json!({
            "type": "success",
            "text": format!("Pact between {} ({}) and {} {verb}", p.consumer, p.consumer_version, p.provider)
        }));
        contracts.push(json!({
            "href": format!("{b}/pacts/provider/{}/consumer/{}/version/{}", seg(&p.provider), seg(&p.consumer), seg(&p.consumer_version)),
            "title": "Pact",
            "name": format!("Pact between {} ({}) and {}", p.consumer, p.consumer_version, p.provider)
        }));
    }
    let pacticipant_href = format!("{b}/pacticipants/{}", seg(name));
    let version_href = format!("{pacticipant_href}/versions/{}", seg(version));
    let body = json!({
        "notices": notices,
        "logs": [],
        "_embedded": {
            "pacticipant": { "name": name, "_links": { "self": { "href": pacticipant_href } } },
            "version": {
                "number": version,
                "branch": req.branch,
                "tags": req.tags,
                "_links": { "self": { "href": version_href, "name": version, "title": "Version" } }
            }
        },
        "_links": {
            "pb:pacticipant": { "href": pacticipant_href, "name": name, "title": "Pacticipant" },
            "pb:pacticipant-version": { "href": version_href, "name": version, "title": "Pacticipant version" },
            "pb:pacticipant-version-tags": [],
            "pb:contracts": contracts
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

/// Decodes the base64 of a published pact: the standard alphabet (the URL-safe one as
/// a whole, for clients that send it), padding optional, whitespace (line breaks of
/// wrapped encoders) ignored.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::{alphabet, Engine as _};
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&clean)
        .or_else(|_| URL_SAFE.decode(&clean))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGVsbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("e30="), Some(b"{}".to_vec()));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a*=="), None);
        assert_eq!(base64_decode("aGVs\nbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("-_8"), Some(vec![0xfb, 0xff]));
        // The two alphabets are not mixed within one string.
        assert_eq!(base64_decode("+_8"), None);
    }
}
