//! Webhook delivery: signing, sending, retrying with exponential backoff, and logging every
//! attempt in the store. Runs on tasks of its own, so an event never delays or fails the
//! request that raised it; the registry process that handled that request delivers.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use super::template::{self, Context};
use crate::sim::Clock;
use crate::store::{BrokerStore, ExecutionStatus, Webhook, WebhookExecution};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body under the shared secret>`.
pub const SIGNATURE_HEADER: &str = "X-Syncgate-Signature";
/// The header naming the event delivered.
pub const EVENT_HEADER: &str = "X-Syncgate-Event";
/// The header carrying the webhook's UUID.
pub const WEBHOOK_HEADER: &str = "X-Syncgate-Webhook";
/// The header identifying the delivery (the same on every attempt of one event).
pub const DELIVERY_HEADER: &str = "X-Syncgate-Delivery";

/// No wait between attempts grows past this.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The shared secret deliveries are signed with. Never printed, logged or stored.
#[derive(Clone)]
pub struct Secret(Arc<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Option<Secret> {
        (!bytes.is_empty()).then(|| Secret(Arc::new(bytes)))
    }

    /// `sha256=<hex>`: HMAC-SHA256 of `body` under the secret.
    pub fn sign(&self, body: &[u8]) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|e| unreachable!("HMAC takes any key length: {e}"));
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// How this registry process delivers webhooks.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `None`: the process was started without one, and delivers nothing (each skipped
    /// delivery is logged as an error).
    pub secret: Option<Secret>,
    /// Attempts per event and webhook, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each further one.
    pub backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            secret: None,
            max_attempts: 5,
            backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Delivery {
    /// The wait before attempt `next` (2, 3, …): `backoff`, doubled per attempt since.
    pub fn wait_before(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(MAX_BACKOFF)
    }
}

/// A webhook's request as defined (templates unexpanded), as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestTemplate {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: serde_json::Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// One event to deliver to one webhook.
pub struct Job {
    pub webhook: Webhook,
    pub event: String,
    pub consumer: String,
    pub provider: String,
    pub context: Context,
    /// Identifies this delivery in the log and the `X-Syncgate-Delivery` header.
    pub delivery: String,
}

/// What one attempt came to.
pub struct Attempt {
    pub status: ExecutionStatus,
    pub response_code: Option<u16>,
    pub error: Option<String>,
    /// Whether another attempt could succeed (not for a request that cannot be built).
    pub retryable: bool,
}

/// The request for a job, ready to send.
struct Rendered {
    method: reqwest::Method,
    url: reqwest::Url,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn render(job: &Job) -> Result<Rendered, String> {
    let req: RequestTemplate = serde_json::from_str(&job.webhook.request)
        .map_err(|e| format!("the stored request is unreadable: {e}"))?;
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| format!("`{}` is not an HTTP method", req.method))?;
    let url_text = template::expand_url(&req.url, &job.context);
    let url = reqwest::Url::parse(&url_text)
        .map_err(|e| format!("the expanded URL is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http(s) URLs are delivered, not {}:",
            url.scheme()
        ));
    }
    let body = req
        .body
        .as_ref()
        .map(|b| template::expand_body(b, &job.context))
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k.clone(), template::expand_text(&text, &job.context))
        })
        .collect();
    let json_body = req.body.as_ref().is_some_and(|b| !b.is_string());
    if json_body
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Ok(Rendered {
        method,
        url,
        headers,
        body: body.into_bytes(),
    })
}

/// Sends one attempt (the caller logs it).
pub async fn attempt(client: &reqwest::Client, settings: &Delivery, job: &Job) -> Attempt {
    let fail = |error: String| Attempt {
        status: ExecutionStatus::Error,
        response_code: None,
        error: Some(error),
        retryable: false,
    };
    let Some(secret) = &settings.secret else {
        return fail("not delivered: this registry process has no webhook secret (start `registry serve` with --webhook-secret-env)".into());
    };
    let r = match render(job) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut req = client
        .request(r.method, r.url)
        .timeout(settings.timeout)
        .header(
            reqwest::header::USER_AGENT,
            concat!("syncgate-registry/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, secret.sign(&r.body))
        .header(EVENT_HEADER, &job.event)
        .header(WEBHOOK_HEADER, &job.webhook.uuid)
        .header(DELIVERY_HEADER, &job.delivery);
    for (k, v) in &r.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    match req.body(r.body).send().await {
        Ok(resp) => {
            let code = resp.status();
            if code.is_success() {
                Attempt {
                    status: ExecutionStatus::Success,
                    response_code: Some(code.as_u16()),
                    error: None,
                    retryable: false,
                }
            } else {
                Attempt {
                    status: ExecutionStatus::Failure,
                    response_code: Some(code.as_u16()),
                    error: Some(format!("the receiver answered {code}")),
                    // Other 4xx answers say the request itself is wrong: sending it again
                    // cannot help.
                    retryable: code.is_server_error() || matches!(code.as_u16(), 408 | 429),
                }
            }
        }
        // Without the URL: its query may carry what its owner considers private.
        Err(e) => Attempt {
            status: ExecutionStatus::Error,
            response_code: None,
            error: Some(crate::store::cause_chain(&e.without_url())),
            retryable: true,
        },
    }
}

/// The client deliveries use: no redirects (a webhook goes where it says, nowhere else).
pub fn client() -> Result<reqwest::Client, String> {
    crate::http::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            format!(
                "cannot start an HTTP client: {}",
                crate::store::cause_chain(&e)
            )
        })
}

/// One attempt with a fresh client (an attempt that cannot start one is an error).
pub async fn attempt_once(settings: &Delivery, job: &Job) -> Attempt {
    match client() {
        Ok(c) => attempt(&c, settings, job).await,
        Err(error) => Attempt {
            status: ExecutionStatus::Error,
            response_code: None,
            error: Some(error),
            retryable: false,
        },
    }
}

/// Delivers `job` in the background: attempts until one succeeds, one cannot be retried,
/// or `max_attempts` are spent, waiting `backoff` (doubling) between them; logs each.
pub fn spawn(store: Arc<dyn BrokerStore>, clock: Clock, settings: Arc<Delivery>, job: Job) {
    tokio::spawn(async move {
        let attempts = settings.max_attempts.max(1);
        for n in 1..=attempts {
            let a = attempt_once(&settings, &job).await;
            log(store.as_ref(), &clock, &job, n, &a).await;
            if a.status == ExecutionStatus::Success || !a.retryable || n == attempts {
                break;
            }
            clock.sleep(settings.wait_before(n + 1)).await;
        }
    });
}

/// Appends an attempt to the webhook's log; a store failure is reported on stderr (the
/// delivery itself goes on).
pub async fn log(store: &dyn BrokerStore, clock: &Clock, job: &Job, n: u32, a: &Attempt) {
    let e = WebhookExecution {
        id: 0,
        webhook_uuid: job.webhook.uuid.clone(),
        delivery: job.delivery.clone(),
        event: job.event.clone(),
        consumer: job.consumer.clone(),
        provider: job.provider.clone(),
        attempt: n,
        status: a.status,
        response_code: a.response_code,
        error: a.error.clone(),
        executed_at: clock.now(),
    };
    if let Err(err) = store.webhook_execution_record(&e).await {
        eprintln!(
            "registry: cannot log attempt {n} of webhook {} ({}): {err}",
            job.webhook.uuid, job.event
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        let s = Secret::new(b"Jefe".to_vec()).unwrap_or_else(|| unreachable!());
        assert_eq!(
            s.sign(b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(Secret::new(Vec::new()).is_none());
    }

    #[test]
    fn waits_double_from_the_backoff_and_stop_growing() {
        let d = Delivery {
            backoff: Duration::from_millis(100),
            ..Delivery::default()
        };
        let waits: Vec<u128> = (2..=5).map(|n| d.wait_before(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800]);
        assert_eq!(d.wait_before(60), MAX_BACKOFF);
    }
}
