//! The Salesforce REST client the engine calls through: OAuth, the headers every call
//! carries, limit tracking from `Sforce-Limit-Info`, and classification of failures.

use std::fmt;

use reqwest::Method;
use serde_json::{json, Value};

use super::retry::{classify, Failure};
use crate::sim::{Clock, Timestamp};

/// The header in which syncgate's mock org states when the daily window reopens (seconds),
/// once the budget is spent (docs/engine-protocol.md). Written out here rather than taken
/// from `mock`: the engine does not depend on the mock.
const WINDOW_RESET_HEADER: &str = "x-syncgate-limit-reset";

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the engine signs in: the client-credentials grant, or — with `jwt` — the OAuth 2.0
/// JWT bearer flow (the usual server-to-server sign-in: no secret leaves the machine, an
/// assertion signed with the connected app's private key names the user).
#[derive(Clone, Debug)]
pub struct Credentials {
    pub client_id: String,
    /// Not sent with `jwt` (the assertion is the proof).
    pub client_secret: Secret,
    pub jwt: Option<JwtBearer>,
}

impl Credentials {
    /// The client-credentials grant.
    pub fn client_credentials(client_id: impl Into<String>, client_secret: Secret) -> Self {
        Credentials {
            client_id: client_id.into(),
            client_secret,
            jwt: None,
        }
    }
}

/// The JWT bearer flow's settings.
#[derive(Clone, Debug)]
pub struct JwtBearer {
    /// The Salesforce username the assertion's `sub` names.
    pub username: String,
    /// The connected app's RSA private key, PEM (PKCS#8 or PKCS#1).
    pub private_key_pem: Secret,
    /// The assertion's `aud`: `https://login.salesforce.com`, `https://test.salesforce.com`
    /// for a sandbox, or a My Domain URL; `None` is the login URL signed in to.
    pub audience: Option<String>,
}

/// How long a JWT bearer assertion is valid: Salesforce allows at most three minutes.
const ASSERTION_LIFETIME_SECS: i64 = 180;

/// A request as the engine sent it, kept for consumer-conformance checks (the token and
/// the `Authorization` header are never kept).
#[derive(Clone, Debug, PartialEq)]
pub struct SentRequest {
    pub method: String,
    /// Path from the host, e.g. `/services/data/v62.0/composite/sobjects/Account/Ext__c`.
    pub path: String,
    /// Header names and values sent, `Authorization` left out.
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

/// Where a client records the requests it sends (shared, so the caller can read it after).
pub type RequestLog = std::sync::Arc<std::sync::Mutex<Vec<SentRequest>>>;

/// API usage from the last `Sforce-Limit-Info: api-usage=USED/MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

/// One successful answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub correlation_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("failed to sign in at {url}: {message}")]
    Auth { url: String, message: String },
}

pub struct SalesforceClient {
    http: reqwest::Client,
    login_url: String,
    instance_url: String,
    api_version: String,
    credentials: Credentials,
    token: Option<Secret>,
    clock: Clock,
    client_name: String,
    run_id: String,
    calls: u64,
    requests: u64,
    log: Option<RequestLog>,
    pub usage: Option<ApiUsage>,
    /// When the daily window reopens, as the last answer stated it (`X-Syncgate-Limit-Reset:
    /// SECONDS`, sent by syncgate's mock org once the budget is spent; a real org states
    /// nothing, and the engine waits for the next UTC day).
    pub window_opens: Option<Timestamp>,
    /// The signed-in user's ID (the last part of the token answer's `id` URL): writes made
    /// as this user are the engine's own.
    pub user_id: Option<String>,
    /// The org's ID (the part before the user ID in the token answer's `id` URL).
    pub org_id: Option<String>,
}

impl SalesforceClient {
    pub fn new(
        login_url: &str,
        api_version: &str,
        credentials: Credentials,
        clock: Clock,
        client_name: &str,
        run_id: &str,
    ) -> Self {
        let http = crate::http::client();
        SalesforceClient {
            http,
            login_url: login_url.trim_end_matches('/').to_string(),
            instance_url: login_url.trim_end_matches('/').to_string(),
            api_version: api_version.to_string(),
            credentials,
            token: None,
            clock,
            client_name: client_name.to_string(),
            run_id: run_id.to_string(),
            calls: 0,
            requests: 0,
            log: None,
            usage: None,
            window_opens: None,
            user_id: None,
            org_id: None,
        }
    }

    /// API calls made (sign-ins excluded).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Also trusts the CA certificate(s) in `pem` (a mock org's self-signed CA, a corporate
    /// proxy's); the public web roots stay trusted.
    pub fn trust_ca(&mut self, pem: &[u8]) -> Result<(), ClientError> {
        let bad = |message: String| ClientError::Auth {
            url: self.login_url.clone(),
            message,
        };
        self.http = crate::http::client_trusting(pem).map_err(bad)?;
        Ok(())
    }

    /// Records every API request sent from now on into `log`.
    pub fn record_to(&mut self, log: RequestLog) {
        self.log = Some(log);
    }

    /// HTTP requests sent, sign-ins included.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// A JWT bearer assertion for `jwt`, signed RS256, valid from now for three minutes
    /// (`exp` in seconds of the wall clock the org reads).
    fn assertion(&self, jwt: &JwtBearer) -> Result<Secret, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(jwt.private_key_pem.expose().as_bytes())
            .map_err(|e| format!("the JWT private key is not an RSA key in PEM: {e}"))?;
        let now = self.clock.wall_time_of(self.clock.now()).as_millis() / 1000;
        let claims = json!({
            "iss": self.credentials.client_id,
            "sub": jwt.username,
            "aud": jwt.audience.as_deref().unwrap_or(&self.login_url),
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Secret::new)
            .map_err(|e| format!("cannot sign the JWT assertion: {e}"))
    }

    /// Signs in: the client-credentials grant, or the JWT bearer grant when the
    /// credentials carry one.
    pub async fn authenticate(&mut self) -> Result<(), ClientError> {
        self.requests += 1;
        let url = format!("{}/services/oauth2/token", self.login_url);
        let auth_err = |message: String| ClientError::Auth {
            url: url.clone(),
            message,
        };
        let assertion = match &self.credentials.jwt {
            Some(jwt) => Some(self.assertion(jwt).map_err(auth_err)?),
            None => None,
        };
        let form: Vec<(&str, &str)> = match &assertion {
            Some(assertion) => vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.expose()),
            ],
            None => vec![
                ("grant_type", "client_credentials"),
                ("client_id", self.credentials.client_id.as_str()),
                ("client_secret", self.credentials.client_secret.expose()),
            ],
        };
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| auth_err(crate::store::cause_chain(&e.without_url())))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| auth_err(format!("unreadable token response: {}", e.without_url())))?;
        if !status.is_success() {
            let desc = body
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("no description");
            return Err(auth_err(format!("HTTP {status}: {desc}")));
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| auth_err("no access_token in the answer".into()))?;
        if let Some(instance) = body.get("instance_url").and_then(Value::as_str) {
            self.instance_url = instance.trim_end_matches('/').to_string();
        }
        self.user_id = body
            .get("id")
            .and_then(Value::as_str)
            .and_then(|u| u.rsplit('/').next())
            .filter(|u| !u.is_empty())
            .map(str::to_string);
        self.org_id = body
            .get("id")
            .and_then(Value::as_str)
            .and_then(|u| u.rsplit('/').nth(1))
            .filter(|o| !o.is_empty())
            .map(str::to_string);
        self.token = Some(Secret::new(token));
        Ok(())
    }

    /// The session of the last sign-in, for APIs beside REST (the Pub/Sub API): the access
    /// token and the instance URL. `None` before the first sign-in.
    pub fn session(&self) -> Option<(&Secret, &str)> {
        self.token.as_ref().map(|t| (t, self.instance_url.as_str()))
    }

    /// Upserts up to 200 records of `object` by `ext_field` with sObject Collections
    /// (`allOrNone: false`): one result per record, in order.
    pub async fn upsert_collection(
        &mut self,
        object: &str,
        ext_field: &str,
        records: &[Value],
    ) -> Result<Reply, Failure> {
        let records = with_attributes(object, records);
        let body = json!({"allOrNone": false, "records": records});
        let path = format!("composite/sobjects/{object}/{ext_field}");
        self.call(Method::PATCH, &path, Some(&body)).await
    }

    /// Creates up to 200 records of `object` with sObject Collections (`POST`,
    /// `allOrNone: false`). Not idempotent: the engine upserts; this is for tools and tests
    /// that need records created as such.
    pub async fn create_collection(
        &mut self,
        object: &str,
        records: &[Value],
    ) -> Result<Reply, Failure> {
        let records = with_attributes(object, records);
        let body = json!({"allOrNone": false, "records": records});
        self.call(Method::POST, "composite/sobjects", Some(&body))
            .await
    }

    /// One API call under `/services/data/vNN.N/` with a JSON body (if any) and a JSON answer.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, Failure> {
        let raw = self
            .send(
                method,
                path,
                body.map(RequestBody::Json),
                "application/json",
            )
            .await?;
        let parsed: Value = if raw.bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&raw.bytes).unwrap_or(Value::Null)
        };
        if parsed.is_null() && !raw.bytes.is_empty() {
            return Err(Failure::transport(format!(
                "garbled {} response: not JSON",
                raw.status
            )));
        }
        Ok(Reply {
            status: raw.status,
            body: parsed,
            correlation_id: raw.correlation_id,
        })
    }

    /// One API call whose answer is text (Bulk API 2.0 result CSVs), optionally sending a
    /// CSV body (a Bulk upload). Errors are JSON and classified like every other call.
    pub async fn call_text(
        &mut self,
        method: Method,
        path: &str,
        body: Option<RequestBody<'_>>,
        accept: &str,
    ) -> Result<TextReply, Failure> {
        let raw = self.send(method, path, body, accept).await?;
        let text = String::from_utf8(raw.bytes.to_vec()).map_err(|_| {
            Failure::transport(format!("garbled {} response: not UTF-8", raw.status))
        })?;
        Ok(TextReply {
            status: raw.status,
            text,
            correlation_id: raw.correlation_id,
        })
    }

    /// Sends one request with the headers every call carries, records it, reads the
    /// limits header, and classifies a non-2xx answer.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<RequestBody<'_>>,
        accept: &str,
    ) -> Result<RawReply, Failure> {
        self.calls += 1;
        self.requests += 1;
        let method_name = method.to_string();
        let correlation_id = format!("{}-{:06}", self.run_id, self.calls);
        let url = format!(
            "{}/services/data/v{}/{}",
            self.instance_url, self.api_version, path
        );
        let mut req = self
            .http
            .request(method, &url)
            .header(
                "Sforce-Call-Options",
                format!("client={}", self.client_name),
            )
            .header("X-Correlation-Id", &correlation_id)
            .header("Accept", accept);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token.expose());
        }
        let content_type = match &body {
            Some(RequestBody::Json(b)) => {
                req = req.json(b);
                Some("application/json")
            }
            Some(RequestBody::Csv(text)) => {
                req = req
                    .header("Content-Type", "text/csv")
                    .body(text.to_string());
                Some("text/csv")
            }
            None => None,
        };
        if let Some(log) = &self.log {
            let path = reqwest::Url::parse(&url)
                .map(|u| u.path().to_string())
                .unwrap_or_default();
            let mut headers = vec![
                (
                    "Sforce-Call-Options".to_string(),
                    format!("client={}", self.client_name),
                ),
                ("X-Correlation-Id".to_string(), correlation_id.clone()),
                ("Accept".to_string(), accept.to_string()),
            ];
            if let Some(ct) = content_type {
                headers.push(("Content-Type".to_string(), ct.to_string()));
            }
            let sent = SentRequest {
                method: method_name.clone(),
                path,
                headers,
                body: match &body {
                    Some(RequestBody::Json(b)) => Some((*b).clone()),
                    Some(RequestBody::Csv(text)) => Some(Value::String(text.to_string())),
                    None => None,
                },
            };
            log.lock().unwrap_or_else(|p| p.into_inner()).push(sent);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::transport(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        {
            self.usage = Some(usage);
        }
        self.window_opens = headers
            .get(WINDOW_RESET_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|secs| self.clock.now().plus(std::time::Duration::from_secs(secs)));
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::transport(format!("response lost: {}", e.without_url())))?;
        if (200..300).contains(&status) {
            return Ok(RawReply {
                status,
                bytes,
                correlation_id,
            });
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Err(classify(status, &headers, &body, self.clock.now()))
    }
}

/// A request body: JSON, or CSV text (Bulk API 2.0 uploads).
pub enum RequestBody<'a> {
    Json(&'a Value),
    Csv(&'a str),
}

/// One successful answer read as text.
#[derive(Debug)]
pub struct TextReply {
    pub status: u16,
    pub text: String,
    pub correlation_id: String,
}

struct RawReply {
    status: u16,
    bytes: bytes::Bytes,
    correlation_id: String,
}

/// Collections records carry `attributes.type`.
fn with_attributes(object: &str, records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(m) = r.as_object_mut() {
                m.insert("attributes".into(), json!({"type": object}));
            }
            r
        })
        .collect()
}

/// Parses `api-usage=USED/MAX` (it comes first; other parts may follow).
pub fn parse_limit_info(v: &str) -> Option<ApiUsage> {
    let part = v.split(';').next()?.trim().strip_prefix("api-usage=")?;
    let (used, max) = part.split_once('/')?;
    Some(ApiUsage {
        used: used.trim().parse().ok()?,
        max: max.trim().parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info() {
        assert_eq!(
            parse_limit_info("api-usage=18/15000"),
            Some(ApiUsage {
                used: 18,
                max: 15000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=5/10; per-app-api-usage=1/5(appName=x)"),
            Some(ApiUsage { used: 5, max: 10 })
        );
        assert_eq!(parse_limit_info("per-app=1/2"), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials::client_credentials("id", Secret::new("hunter2"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
