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

pub mod definition;
pub mod delivery;
pub mod events;
pub mod template;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use super::{caller, hal, not_found, seg, Access, ApiError, ApiResult, Caller, Shared};
use crate::store::Webhook;
use definition::{bad, definition};
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
