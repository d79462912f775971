//! The registry over HTTP, compatible with the Pact Broker endpoints standard Pact tooling
//! uses (`pact broker publish|record-deployment|can-i-deploy`, `pact verifier --broker-url`).
//!
//! Relation names follow the Pact Broker; paths are ours. Every request needs a bearer token
//! scoped to a partner ([`tokens`]); a pacticipant named `<partner>-salesforce-<tenant>` is
//! that tenant's org, any other name counts as a partner of its own (see the README's
//! "Registry" section for the whole mapping).

pub mod environments;
pub mod latest;
pub mod matrix;
pub mod order;
pub mod releases;
pub mod selectors;
pub mod tokens;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::sim::{Clock, Timestamp};
use crate::store::{BrokerStore, PactPublication, PactVerificationResult, StoreError};
pub use tokens::{Access, TokenScope, Tokens};

/// What the server needs: the store, the accepted tokens, the clock, and the base URL links
/// are written with (by default the request's `Host`).
#[derive(Clone)]
pub struct BrokerConfig {
    pub store: Arc<dyn BrokerStore>,
    pub tokens: Tokens,
    pub clock: Clock,
    pub public_url: Option<String>,
    /// How webhooks are signed, retried and timed out ([`webhooks::delivery`]).
    pub webhooks: Arc<webhooks::Delivery>,
}

type Shared = Arc<BrokerConfig>;

/// An error answer: status and message, as JSON.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "message": self.1 },
            "notices": [{ "type": "error", "text": self.1 }],
        });
        (
            self.0,
            [(CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
            StoreError::NotFound(m) => ApiError(StatusCode::NOT_FOUND, format!("{m} not found")),
            e @ (StoreError::Backend { .. } | StoreError::BadUrl(_)) => {
                ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn not_found(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, msg.into())
}

/// A JSON answer; `application/hal+json` when the client asks for it.
fn hal(status: StatusCode, headers: &HeaderMap, body: Value) -> Response {
    let wants_hal = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/hal+json"));
    let ct = if wants_hal {
        "application/hal+json"
    } else {
        "application/json"
    };
    (status, [(CONTENT_TYPE, ct)], body.to_string()).into_response()
}

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request's caller: the token's scope, and the base URL for links.
pub struct Caller<'a> {
    pub scope: &'a TokenScope,
    pub base: String,
}

impl Caller<'_> {
    /// Refuses with 403 unless the token may `access` the pacticipant.
    pub fn check(&self, pacticipant: &str, access: Access) -> Result<(), ApiError> {
        if self.scope.allows(pacticipant, access) {
            return Ok(());
        }
        let what = match access {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "administer",
        };
        let tenants = if self.scope.tenants.is_empty() {
            String::new()
        } else {
            format!(" (tenants {})", self.scope.tenants.join(", "))
        };
        Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` ({} access to partner {}{tenants}) may not {what} `{pacticipant}`",
                self.scope.name,
                match self.scope.access {
                    Access::Read => "read",
                    Access::Write => "write",
                    Access::Admin => "admin",
                },
                self.scope.partner
            ),
        ))
    }
}

fn caller<'a>(cfg: &'a BrokerConfig, headers: &HeaderMap) -> Result<Caller<'a>, ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a bearer token is required (Authorization: Bearer …)".into(),
        ));
    };
    let Some(scope) = cfg.tokens.find(presented) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not known to this registry".into(),
        ));
    };
    let base = match &cfg.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("http://{host}")
        }
    };
    Ok(Caller { scope, base })
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    let text = if body.is_empty() { &b"{}"[..] } else { body };
    serde_json::from_slice(text).map_err(|e| bad_request(format!("invalid {what} body: {e}")))
}

/// The routes; state is shared by every handler.
pub fn router(config: BrokerConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/contracts/publish", post(publish_contracts))
        .route("/pacts/latest", get(latest::latest_pact_versions))
        .route(
            "/pacts/provider/{provider}/branch",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/branch/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/branch/{branch}",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/branch/{branch}/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/{branch}",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/{branch}/latest",
            get(latest::branch_pacts_latest),
        )
        .route("/pacticipants", get(latest::pacticipants))
        .route(
            "/pacticipants/{pacticipant}/latest-version",
            get(latest::latest_version),
        )
        .route(
            "/pacticipants/{pacticipant}/latest-version/{tag}",
            get(latest::latest_tagged_version),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/latest/{tag}",
            get(latest::latest_tagged_pact),
        )
        .route("/pacts/provider/{provider}", get(provider_pacts))
        .route("/pacts/provider/{provider}/latest", get(provider_pacts))
        .route(
            "/pacts/provider/{provider}/for-verification",
            get(for_verification_link).post(for_verification),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}",
            get(latest_pact),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/latest",
            get(latest_pact),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/version/{version}",
            get(pact_by_version),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}",
            get(pact_by_sha),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/verification-results",
            post(verify_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results",
            post(verify_sha),
        )
        .route("/pacticipants/{pacticipant}", get(pacticipant))
        .route(
            "/pacticipants/{pacticipant}/versions/{version}",
            get(pacticipant_version),
        )
        .route(
            "/pacticipants/{pacticipant}/branches/{branch}/versions/{version}",
            put(put_branch),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/tags/{tag}",
            put(put_tag),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/deployed-versions/environment/{environment}",
            post(environments::record_deployment),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/released-versions/environment/{environment}",
            post(releases::record_release),
        )
        .route(
            "/environments/{environment}/released-versions/currently-supported",
            get(releases::currently_supported),
        )
        .route(
            "/environments",
            get(environments::environments).post(environments::create_environment),
        )
        .route(
            "/environments/{environment}",
            get(environments::environment),
        )
        .route(
            "/environments/{environment}/deployed-versions/currently-deployed",
            get(environments::currently_deployed),
        )
        .route("/matrix", get(matrix::matrix))
        .route(
            "/pacticipants/{pacticipant}/latest-version/{tag}/can-i-deploy/to/{environment}/badge",
            get(matrix::can_i_deploy_badge),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results/latest",
            get(latest::latest_verification_results),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results/{id}",
            get(latest::verification_result_by_id),
        )
        .merge(webhooks::routes())
        .fallback(|| async {
            ApiError(StatusCode::NOT_FOUND, "no such resource in this registry".into())
        })
        .with_state(Arc::new(config))
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn index(State(cfg): State<Shared>, headers: HeaderMap) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let b = &c.base;
    let body = json!({
        "_links": {
            "self": { "href": format!("{b}/"), "title": "Index" },
            "pb:publish-contracts": { "href": format!("{b}/contracts/publish"), "title": "Publish contracts" },
            "pb:latest-provider-pacts": {
                "href": format!("{b}/pacts/provider/{{provider}}/latest"),
                "title": "Latest pacts by provider", "templated": true
            },
            "pb:provider-pacts": {
                "href": format!("{b}/pacts/provider/{{provider}}"),
                "title": "All pacts for a provider", "templated": true
            },
            "pb:provider-pacts-for-verification": {
                "href": format!("{b}/pacts/provider/{{provider}}/for-verification"),
                "title": "Pact versions to be verified for the specified provider", "templated": true
            },
            "pb:latest-pact-versions": { "href": format!("{b}/pacts/latest"), "title": "Latest pact versions" },
            "pb:pacticipants": { "href": format!("{b}/pacticipants"), "title": "Pacticipants" },
            "pb:latest-version": {
                "href": format!("{b}/pacticipants/{{pacticipant}}/latest-version"),
                "title": "Latest pacticipant version", "templated": true
            },
            "pb:latest-tagged-version": {
                "href": format!("{b}/pacticipants/{{pacticipant}}/latest-version/{{tag}}"),
                "title": "Latest pacticipant version with the tag", "templated": true
            },
            "pb:pacticipant": {
                "href": format!("{b}/pacticipants/{{pacticipant}}"),
                "title": "Fetch pacticipant by name", "templated": true
            },
            "pb:pacticipant-version": {
                "href": format!("{b}/pacticipants/{{pacticipant}}/versions/{{version}}"),
                "title": "Fetch pacticipant version", "templated": true
            },
            "pb:environments": { "href": format!("{b}/environments"), "title": "Environments" },
            "pb:environment": {
                "href": format!("{b}/environments/{{uuid}}"),
                "title": "Environment", "templated": true
            },
            "pb:matrix": { "href": format!("{b}/matrix"), "title": "The matrix behind can-i-deploy" },
            "pb:webhooks": { "href": format!("{b}/webhooks"), "title": "Webhooks" },
            "pb:webhook": {
                "href": format!("{b}/webhooks/{{uuid}}"),
                "title": "Webhook", "templated": true
            },
            "pb:can-i-deploy-badge": {
                "href": format!("{b}/pacticipants/{{pacticipant}}/latest-version/{{tag}}/can-i-deploy/to/{{environment}}/badge"),
                "title": "Can I deploy the latest version with the tag to the environment (SVG badge)", "templated": true
            }
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

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

async fn publish_contracts(
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

/// Decodes standard base64 (padding optional, whitespace ignored).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed: &[u8] = {
        let mut end = clean.len();
        while end > 0 && clean[end - 1] == b'=' {
            end -= 1;
        }
        &clean[..end]
    };
    if trimmed.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The latest publication per consumer ([`order`]), in consumer order.
pub fn latest_per_consumer(pubs: &[PactPublication]) -> Vec<&PactPublication> {
    order::latest_per(pubs, |p| p.consumer.clone(), |p| &p.consumer_version)
}

fn pact_link(base: &str, p: &PactPublication, is_latest: bool) -> String {
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

async fn provider_pacts(
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

async fn for_verification_link(
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

async fn for_verification(
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

fn pact_response(base: &str, headers: &HeaderMap, p: &PactPublication) -> ApiResult {
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

async fn find_pact(
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

async fn latest_pact(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let p = find_pact(&cfg, &provider, &consumer, |_| true).await?;
    pact_response(&c.base, &headers, &p)
}

async fn pact_by_version(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, version)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let p = find_pact(&cfg, &provider, &consumer, |p| {
        p.consumer_version == version
    })
    .await?;
    pact_response(&c.base, &headers, &p)
}

async fn pact_by_sha(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha)): Path<(String, String, String)>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    c.check(&provider, Access::Read)?;
    let p = find_pact(&cfg, &provider, &consumer, |p| p.sha == sha).await?;
    pact_response(&c.base, &headers, &p)
}

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

async fn verify_latest(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    record_result(&cfg, &headers, &provider, &consumer, None, &body).await
}

async fn verify_sha(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer, sha)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    record_result(&cfg, &headers, &provider, &consumer, Some(&sha), &body).await
}

async fn pacticipant(
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

async fn version_body(
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
    let record: Vec<Value> = envs
        .iter()
        .map(|e| {
            json!({
                "href": format!("{b}/deployed-versions/environment/{}", seg(e)),
                "title": format!("Record deployment to {e}"),
                "name": e
            })
        })
        .collect();
    let release: Vec<Value> = envs
        .iter()
        .map(|e| {
            json!({
                "href": format!("{b}/released-versions/environment/{}", seg(e)),
                "title": format!("Record release to {e}"),
                "name": e
            })
        })
        .collect();
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

async fn pacticipant_version(
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

async fn put_branch(
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

async fn put_tag(
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

/// The time the server stamps records with.
pub fn now(cfg: &BrokerConfig) -> Timestamp {
    cfg.clock.now()
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
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(seg("Pact Broker"), "Pact%20Broker");
        assert_eq!(seg("a/b"), "a%2Fb");
        assert_eq!(seg("bluepeak-logistics"), "bluepeak-logistics");
    }
}
