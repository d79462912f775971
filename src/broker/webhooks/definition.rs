//! A webhook definition as `pact broker create-webhook` sends it, checked field by field
//! (events, method, an http(s) URL without credentials, headers, template variables) and
//! turned into the stored [`Webhook`]; every refusal names the field at fault.

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::{delivery, events, template};
use crate::broker::{parse_json, ApiError};
use crate::store::Webhook;

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

pub(super) fn bad(field: &str, msg: impl std::fmt::Display) -> ApiError {
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
pub(super) fn definition(
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
