//! Webhooks over HTTP, as the Pact Broker offers them and `pact broker create-webhook`,
//! `create-or-update-webhook`, `delete-webhook` and `test-webhook` call them:
//! `POST /webhooks` (and `/webhooks/provider/{p}/consumer/{c}`, `/webhooks/provider/{p}`,
//! `/webhooks/consumer/{c}`), `GET /webhooks`, `GET|PUT|DELETE /webhooks/{uuid}`,
//! `POST /webhooks/{uuid}/execute` and the delivery log `GET /webhooks/{uuid}/executions`.
//!
//! Who may: changing a webhook needs write access to each pacticipant it names; one naming
//! none (every consumer and provider) needs an admin token for every partner (`partner =
//! "*"`, `access = "admin"`). Reading needs read access to one of the pacticipants named
//! (as for pacts), or that admin token for a webhook naming none. The registry delivers
//! wherever a webhook points (any http(s) URL): choosing who holds such tokens is the
//! registry administrator's concern. Definitions never hold credentials: receivers check
//! the `X-Syncgate-Signature` header instead ([`delivery`]).

pub mod delivery;
pub mod events;
pub mod template;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{caller, hal, not_found, parse_json, seg, Access, ApiError, ApiResult, Caller, Shared};
use crate::store::Webhook;
pub use delivery::{Delivery, Secret, SIGNATURE_HEADER};

/// The webhook routes, merged into the registry's router.
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/webhooks", get(list_all).post(create))
        .route(
            "/webhooks/provider/{provider}/consumer/{consumer}",
            get(list_pair).post(create_pair),
        )
        .route(
            "/webhooks/provider/{provider}",
            get(list_provider).post(create_provider),
        )
        .route(
            "/webhooks/consumer/{consumer}",
            get(list_consumer).post(create_consumer),
        )
        .route("/webhooks/{uuid}", get(show).put(put).delete(delete))
        .route("/webhooks/{uuid}/execute", post(execute))
        .route("/webhooks/{uuid}/executions", get(executions))
}

/// Header (or URL query parameter) names whose values are credentials: a webhook carrying
/// one is refused, since the registry keeps no secrets in its store.
fn is_credential_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "secret", "password", "api-key", "apikey"]
        .iter()
        .any(|w| n.contains(w))
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
    label: Option<String>,
}

#[derive(Deserialize)]
struct EventBody {
    name: String,
}

#[derive(Deserialize)]
struct RequestBody {
    method: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    body: Option<Value>,
    username: Option<Value>,
    password: Option<Value>,
}

#[derive(Deserialize)]
struct DefinitionBody {
    description: Option<String>,
    #[serde(default)]
    events: Vec<EventBody>,
    request: Option<RequestBody>,
    consumer: Option<Named>,
    provider: Option<Named>,
    enabled: Option<bool>,
}

fn bad(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, format!("{field}: {msg}"))
}

/// The pacticipant a `consumer`/`provider` object names, checked against the one in the
/// path (if the route has one).
fn filter(
    field: &str,
    body: Option<Named>,
    path: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let named = match body {
        Some(Named { label: Some(_), .. }) => {
            return Err(bad(
                &format!("{field}.label"),
                "pacticipant labels are not supported by this registry; name the pacticipant",
            ))
        }
        Some(Named { name, .. }) => name.filter(|n| !n.is_empty()),
        None => None,
    };
    match (named, path) {
        (Some(n), Some(p)) if n != p => Err(bad(
            &format!("{field}.name"),
            format!("`{n}` is not the {field} in the URL (`{p}`)"),
        )),
        (n, p) => Ok(n.or(p.map(str::to_string))),
    }
}

/// Checks a definition and turns it into a webhook (timestamps and UUID from the caller).
fn definition(
    body: &Bytes,
    uuid: &str,
    path_consumer: Option<&str>,
    path_provider: Option<&str>,
    now: crate::sim::Timestamp,
) -> Result<Webhook, ApiError> {
    let d: DefinitionBody = parse_json(body, "webhook")?;
    if d.events.is_empty() {
        return Err(bad(
            "events",
            format!("give at least one event ({})", events::EVENTS.join(", ")),
        ));
    }
    for (i, e) in d.events.iter().enumerate() {
        if !events::EVENTS.contains(&e.name.as_str()) {
            return Err(bad(
                &format!("events[{i}].name"),
                format!(
                    "`{}` is not an event: use one of {}",
                    e.name,
                    events::EVENTS.join(", ")
                ),
            ));
        }
    }
    let Some(r) = d.request else {
        return Err(bad("request", "missing: give {method, url, headers, body}"));
    };
    if r.username.is_some() || r.password.is_some() {
        return Err(bad(
            "request.username/password",
            "the registry stores no credentials; receivers check the X-Syncgate-Signature header (HMAC-SHA256 of the body under the registry's webhook secret) instead",
        ));
    }
    let method = r
        .method
        .unwrap_or_else(|| "POST".into())
        .to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(bad(
            "request.method",
            format!("`{method}` is not GET, POST, PUT, PATCH or DELETE"),
        ));
    }
    let Some(url) = r.url.filter(|u| !u.trim().is_empty()) else {
        return Err(bad("request.url", "missing"));
    };
    check_url(&url)?;
    let mut texts = vec![url.clone()];
    for (k, v) in &r.headers {
        let field = format!("request.headers.{k}");
        if is_credential_name(k) {
            return Err(bad(&field, "the registry stores no credentials in webhooks; receivers check the X-Syncgate-Signature header instead"));
        }
        if k.to_ascii_lowercase().starts_with("x-syncgate-") {
            return Err(bad(&field, "X-Syncgate-* headers are set by the registry"));
        }
        let Some(text) = v.as_str() else {
            return Err(bad(&field, "a header value must be a string"));
        };
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(bad(&field, "not a valid header name"));
        }
        texts.push(text.to_string());
    }
    if let Some(b) = &r.body {
        template::strings_of(b, &mut texts);
    }
    let unknown: Vec<String> = texts
        .iter()
        .flat_map(|t| template::unknown_placeholders(t))
        .collect();
    if let Some(u) = unknown.first() {
        return Err(bad(
            "request",
            format!(
                "`${{pactbroker.{u}}}` is not a template variable: use one of {}",
                template::VARIABLES
                    .iter()
                    .map(|v| format!("${{pactbroker.{v}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let request = delivery::RequestTemplate {
        method,
        url,
        headers: r.headers,
        body: r.body,
    };
    Ok(Webhook {
        uuid: uuid.to_string(),
        description: d.description.unwrap_or_default(),
        consumer: filter("consumer", d.consumer, path_consumer)?,
        provider: filter("provider", d.provider, path_provider)?,
        events: d.events.into_iter().map(|e| e.name).collect(),
        request: serde_json::to_string(&request)
            .map_err(|e| bad("request", format!("cannot be kept: {e}")))?,
        enabled: d.enabled.unwrap_or(true),
        created_at: now,
        updated_at: now,
    })
}

/// Only http(s) URLs, without credentials in them; the scheme and host cannot be templated.
fn check_url(url: &str) -> Result<(), ApiError> {
    let sample = template::expand_url(url, &template::Context::default());
    let parsed = reqwest::Url::parse(&sample)
        .map_err(|e| bad("request.url", format!("`{url}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(
            "request.url",
            format!(
                "only http(s) URLs are delivered, not `{}:`",
                parsed.scheme()
            ),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "request.url",
            "the registry stores no credentials: take the user and password out of the URL",
        ));
    }
    if let Some((name, _)) = parsed.query_pairs().find(|(k, _)| is_credential_name(k)) {
        return Err(bad(
            "request.url",
            format!("the query parameter `{name}` looks like a credential, and the registry stores none: receivers check the X-Syncgate-Signature header instead"),
        ));
    }
    let authority = url.split("://").nth(1).unwrap_or_default();
    let host_part = authority.split(['/', '?', '#']).next().unwrap_or_default();
    if host_part.contains("${") {
        return Err(bad(
            "request.url",
            "the host cannot be a template variable (a webhook goes to one receiver)",
        ));
    }
    Ok(())
}

/// Checks the caller may read (read access to a pacticipant the webhook names) or change
/// (write access to every one it names) a webhook.
fn may(c: &Caller, w: &Webhook, access: Access) -> Result<(), ApiError> {
    let named: Vec<&String> = w.consumer.iter().chain(w.provider.iter()).collect();
    if named.is_empty() {
        if c.scope.access == Access::Admin && c.scope.partner == "*" {
            return Ok(());
        }
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` may not {} a webhook for every pacticipant: that needs an admin token for every partner (partner = \"*\", access = \"admin\"); or name the consumer or provider",
                c.scope.name,
                if access == Access::Read { "read" } else { "change" }
            ),
        ));
    }
    // Reading is like reading pacts: either side will do. Changing needs both.
    if access == Access::Read && named.iter().any(|n| c.scope.allows(n, access)) {
        return Ok(());
    }
    for n in named {
        c.check(n, access)?;
    }
    Ok(())
}

fn view(base: &str, w: &Webhook) -> Value {
    let href = format!("{base}/webhooks/{}", seg(&w.uuid));
    let request: Value = serde_json::from_str(&w.request).unwrap_or(Value::Null);
    let mut v = json!({
        "uuid": w.uuid,
        "description": w.description,
        "enabled": w.enabled,
        "events": w.events.iter().map(|e| json!({ "name": e })).collect::<Vec<_>>(),
        "request": request,
        "createdAt": w.created_at.to_iso(),
        "updatedAt": w.updated_at.to_iso(),
        "_links": {
            "self": { "href": href, "title": w.description },
            "pb:execute": { "href": format!("{href}/execute"), "title": "Test the webhook" },
            "pb:executions": { "href": format!("{href}/executions"), "title": "Delivery log" },
            "pb:webhooks": { "href": format!("{base}/webhooks"), "title": "Webhooks" },
        }
    });
    for (role, name) in [("consumer", &w.consumer), ("provider", &w.provider)] {
        if let Some(n) = name {
            v[role] = json!({ "name": n });
            v["_links"][format!("pb:{role}")] =
                json!({ "href": format!("{base}/pacticipants/{}", seg(n)), "name": n });
        }
    }
    v
}

async fn store_new(
    cfg: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    consumer: Option<&str>,
    provider: Option<&str>,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    require_secret(cfg)?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let w = definition(body, &uuid, consumer, provider, cfg.clock.now())?;
    may(&c, &w, Access::Write)?;
    cfg.store.webhook_put(&w).await?;
    Ok(hal(StatusCode::CREATED, headers, view(&c.base, &w)))
}

/// Creating webhooks on a process that could not sign them would only fill the log with
/// undelivered events.
fn require_secret(cfg: &Shared) -> Result<(), ApiError> {
    if cfg.webhooks.secret.is_some() {
        return Ok(());
    }
    Err(ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "this registry delivers no webhooks: it was started without a signing secret (registry serve --webhook-secret-env VAR)".into(),
    ))
}

async fn create(State(cfg): State<Shared>, headers: HeaderMap, body: Bytes) -> ApiResult {
    store_new(&cfg, &headers, &body, None, None).await
}

async fn create_pair(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    store_new(&cfg, &headers, &body, Some(&consumer), Some(&provider)).await
}

async fn create_provider(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    body: Bytes,
) -> ApiResult {
    store_new(&cfg, &headers, &body, None, Some(&provider)).await
}

async fn create_consumer(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(consumer): Path<String>,
    body: Bytes,
) -> ApiResult {
    store_new(&cfg, &headers, &body, Some(&consumer), None).await
}

/// Webhooks the caller may read, narrowed to those naming `consumer`/`provider` when given.
async fn list(
    cfg: &Shared,
    headers: &HeaderMap,
    consumer: Option<&str>,
    provider: Option<&str>,
    self_href: &str,
) -> ApiResult {
    let c = caller(cfg, headers)?;
    let hooks: Vec<Webhook> = cfg
        .store
        .webhooks()
        .await?
        .into_iter()
        .filter(|w| consumer.is_none_or(|n| w.consumer.as_deref() == Some(n)))
        .filter(|w| provider.is_none_or(|n| w.provider.as_deref() == Some(n)))
        .filter(|w| may(&c, w, Access::Read).is_ok())
        .collect();
    let links: Vec<Value> = hooks
        .iter()
        .map(|w| json!({ "href": format!("{}/webhooks/{}", c.base, seg(&w.uuid)), "title": w.description, "name": w.description }))
        .collect();
    let body = json!({
        "_embedded": { "webhooks": hooks.iter().map(|w| view(&c.base, w)).collect::<Vec<_>>() },
        "_links": {
            "self": { "href": format!("{}{self_href}", c.base), "title": "Webhooks" },
            "pb:create": { "href": format!("{}{self_href}", c.base), "title": "Create a webhook" },
            "pb:webhooks": links,
        }
    });
    Ok(hal(StatusCode::OK, headers, body))
}

async fn list_all(State(cfg): State<Shared>, headers: HeaderMap) -> ApiResult {
    list(&cfg, &headers, None, None, "/webhooks").await
}

async fn list_pair(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path((provider, consumer)): Path<(String, String)>,
) -> ApiResult {
    let href = format!(
        "/webhooks/provider/{}/consumer/{}",
        seg(&provider),
        seg(&consumer)
    );
    list(&cfg, &headers, Some(&consumer), Some(&provider), &href).await
}

async fn list_provider(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(provider): Path<String>,
) -> ApiResult {
    let href = format!("/webhooks/provider/{}", seg(&provider));
    list(&cfg, &headers, None, Some(&provider), &href).await
}

async fn list_consumer(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(consumer): Path<String>,
) -> ApiResult {
    let href = format!("/webhooks/consumer/{}", seg(&consumer));
    list(&cfg, &headers, Some(&consumer), None, &href).await
}

/// The webhook, if it exists and the caller may `access` it.
async fn existing(
    cfg: &Shared,
    c: &Caller<'_>,
    uuid: &str,
    access: Access,
) -> Result<Webhook, ApiError> {
    let w = cfg
        .store
        .webhook(uuid)
        .await?
        .ok_or_else(|| not_found(format!("no webhook {uuid}")))?;
    may(c, &w, access)?;
    Ok(w)
}

async fn show(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let w = existing(&cfg, &c, &uuid, Access::Read).await?;
    Ok(hal(StatusCode::OK, &headers, view(&c.base, &w)))
}

/// `PUT /webhooks/{uuid}` (`create-or-update-webhook`): the caller must be allowed both
/// the webhook as it was and as it will be.
async fn put(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
    body: Bytes,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    require_secret(&cfg)?;
    let valid = (1..=64).contains(&uuid.len())
        && uuid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !valid {
        return Err(bad(
            "uuid",
            format!("`{uuid}` must be 1 to 64 letters, digits, `-` or `_` (pact broker generate-uuid makes one)"),
        ));
    }
    let mut w = definition(&body, &uuid, None, None, cfg.clock.now())?;
    may(&c, &w, Access::Write)?;
    let before = cfg.store.webhook(&uuid).await?;
    if let Some(old) = &before {
        may(&c, old, Access::Write)?;
        w.created_at = old.created_at;
    }
    let created = cfg.store.webhook_put(&w).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(hal(status, &headers, view(&c.base, &w)))
}

async fn delete(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    existing(&cfg, &c, &uuid, Access::Write).await?;
    cfg.store.webhook_delete(&uuid).await?;
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// `GET /webhooks/{uuid}/executions`: every delivery attempt, oldest first.
async fn executions(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    existing(&cfg, &c, &uuid, Access::Read).await?;
    let log = cfg.store.webhook_executions(&uuid).await?;
    let items: Vec<Value> = log
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "delivery": e.delivery,
                "event": e.event,
                "consumer": e.consumer,
                "provider": e.provider,
                "attempt": e.attempt,
                "status": e.status.as_str(),
                "success": e.status == crate::store::ExecutionStatus::Success,
                "responseCode": e.response_code,
                "error": e.error,
                "executedAt": e.executed_at.to_iso(),
            })
        })
        .collect();
    let href = format!("{}/webhooks/{}", c.base, seg(&uuid));
    let body = json!({
        "executions": items,
        "_links": {
            "self": { "href": format!("{href}/executions"), "title": "Delivery log" },
            "pb:webhook": { "href": href },
        }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

/// `POST /webhooks/{uuid}/execute` (`test-webhook`): one attempt now, with the values of the
/// latest pact the webhook covers (the placeholders stay empty when there is none), logged
/// like any delivery; no retries.
async fn execute(
    State(cfg): State<Shared>,
    headers: HeaderMap,
    Path(uuid): Path<String>,
) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let w = existing(&cfg, &c, &uuid, Access::Write).await?;
    let event = w.events.first().cloned().unwrap_or_default();
    let latest = cfg
        .store
        .pacts(w.provider.as_deref(), w.consumer.as_deref())
        .await?
        .into_iter()
        .rev()
        .find(|p| c.scope.allows(&p.provider, Access::Read));
    let mut context = latest
        .as_ref()
        .map(|p| events::pact_context(&c.base, p))
        .unwrap_or_default();
    context.set("eventName", event.as_str());
    let job = delivery::Job {
        consumer: latest
            .as_ref()
            .map(|p| p.consumer.clone())
            .unwrap_or_default(),
        provider: latest
            .as_ref()
            .map(|p| p.provider.clone())
            .unwrap_or_default(),
        webhook: w,
        event,
        context,
        delivery: format!("test-{}", uuid::Uuid::new_v4()),
    };
    let a = delivery::attempt_once(&cfg.webhooks, &job).await;
    delivery::log(cfg.store.as_ref(), &cfg.clock, &job, 1, &a).await;
    let success = a.status == crate::store::ExecutionStatus::Success;
    let body = json!({
        "success": success,
        "status": a.status.as_str(),
        "response": { "status": a.response_code },
        "error": a.error,
        "_links": { "pb:webhook": { "href": format!("{}/webhooks/{}", c.base, seg(&uuid)) } }
    });
    Ok(hal(StatusCode::OK, &headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(json: Value) -> Result<Webhook, ApiError> {
        let body = Bytes::from(json.to_string());
        definition(
            &body,
            "u1",
            None,
            Some("p"),
            crate::sim::Timestamp::from_millis(0),
        )
    }

    fn message(r: Result<Webhook, ApiError>) -> String {
        match r {
            Ok(w) => panic!("accepted: {w:?}"),
            Err(ApiError(status, m)) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{m}");
                m
            }
        }
    }

    #[test]
    fn credential_headers_are_recognised_by_name() {
        for h in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "PRIVATE-TOKEN",
            "X-Hub-Secret",
        ] {
            assert!(is_credential_name(h), "{h}");
        }
        for h in [
            "Content-Type",
            "Accept",
            "X-GitHub-Api-Version",
            "User-Agent",
        ] {
            assert!(!is_credential_name(h), "{h}");
        }
    }

    #[test]
    fn a_definition_is_normalised_and_its_faults_named() {
        let w = def(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "method": "post", "url": "https://ci.test/${pactbroker.providerName}" }
        }))
        .unwrap_or_else(|e| panic!("{}", e.1));
        assert_eq!(w.provider.as_deref(), Some("p"));
        assert!(w.enabled && w.consumer.is_none());
        let req: delivery::RequestTemplate =
            serde_json::from_str(&w.request).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.method, "POST");

        let m = message(def(
            json!({ "events": [], "request": { "url": "https://x.test/" } }),
        ));
        assert!(m.starts_with("events:"), "{m}");
        let m = message(def(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "method": "TRACE", "url": "https://x.test/" }
        })));
        assert!(m.starts_with("request.method:"), "{m}");
        let m = message(def(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "url": "https://user:pw@x.test/" }
        })));
        assert!(m.contains("take the user and password out"), "{m}");
        let m = message(def(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "url": "https://x.test/hook?id=1&access_token=abc" }
        })));
        assert!(m.contains("`access_token` looks like a credential"), "{m}");
        let m = message(def(json!({
            "events": [{ "name": "contract_published" }],
            "provider": { "name": "other" },
            "request": { "url": "https://x.test/" }
        })));
        assert!(m.starts_with("provider.name:"), "{m}");
        let m = message(def(json!({
            "events": [{ "name": "contract_published" }],
            "request": { "url": "https://x.test/", "headers": { "X-Syncgate-Signature": "forged" } }
        })));
        assert!(m.contains("set by the registry"), "{m}");
    }
}
