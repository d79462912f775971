//! OAuth 2.0 of the mock org, checked the way an org checks it: connected apps (client ID,
//! secret, the certificate JWT bearer assertions are signed for), the org's users with
//! passwords, refresh tokens the org knows, and the endpoints `token` (client credentials by
//! HTTP Basic or form fields, password, refresh token, JWT bearer), `revoke`, `introspect`,
//! `userinfo` and the identity URL. Errors are Salesforce's JSON (`invalid_client_id`,
//! `invalid_client`, `invalid_grant` with its `error_description` texts).
//!
//! As in Salesforce, the password, JWT bearer and client-credentials grants issue no refresh
//! token; refresh tokens come from a connected-app file (the one a team keeps from a
//! web-server flow) and are refused once revoked or when the org never issued them.

use std::path::Path;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use super::answer::Answer;
use super::form::form_pairs;
use super::ids;
use super::org::{API_USER_ID, ORG_ID};
use super::State;
use crate::sim::Timestamp;

/// The user every client-credentials session runs as.
pub const API_USERNAME: &str = "integration@syncgate.mock";
/// JWT audiences an org accepts besides its own URL.
pub const LOGIN_URLS: [&str; 2] = [
    "https://login.salesforce.com",
    "https://test.salesforce.com",
];
/// Session lifetime stated by introspection (an org's default timeout, 2 hours).
const SESSION_SECS: i64 = 7200;
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A connected app.
#[derive(Clone, Debug)]
pub struct ConnectedApp {
    pub client_id: String,
    pub client_secret: String,
    /// RSA public key (PKCS#1 DER) of the certificate uploaded for the JWT bearer flow.
    pub jwt_key: Option<Vec<u8>>,
}

/// A user of the org who can sign in.
#[derive(Clone, Debug)]
pub struct OrgUser {
    pub username: String,
    pub password: Option<String>,
    pub user_id: String,
}

#[derive(Clone, Debug)]
struct RefreshGrant {
    token: String,
    client_id: String,
    username: String,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct Session {
    token: String,
    client_id: String,
    username: String,
    user_id: String,
    issued: Timestamp,
    refresh: Option<String>,
}

/// Apps, users, refresh tokens and sessions; kept across resets of the org.
#[derive(Clone, Debug)]
pub struct Directory {
    apps: Vec<ConnectedApp>,
    users: Vec<OrgUser>,
    audiences: Vec<String>,
    refresh: Vec<RefreshGrant>,
    sessions: Vec<Session>,
}

impl Directory {
    /// Apps that sign in with a secret only, and the integration user (no password).
    pub fn new(clients: &[super::ClientCredentials]) -> Self {
        let mut d = Directory {
            apps: Vec::new(),
            users: vec![OrgUser {
                username: API_USERNAME.into(),
                password: None,
                user_id: API_USER_ID.into(),
            }],
            audiences: LOGIN_URLS.iter().map(|s| s.to_string()).collect(),
            refresh: Vec::new(),
            sessions: Vec::new(),
        };
        for c in clients {
            d.add_app(ConnectedApp {
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                jwt_key: None,
            });
        }
        d
    }

    /// Adds (or replaces, by client ID) a connected app.
    pub fn add_app(&mut self, app: ConnectedApp) {
        self.apps.retain(|a| a.client_id != app.client_id);
        self.apps.push(app);
    }

    /// Adds everything a connected-app file declares.
    pub fn add_file(&mut self, file: &AppFile) {
        self.add_app(file.app.clone());
        for (username, password) in &file.users {
            match self.users.iter_mut().find(|u| &u.username == username) {
                Some(u) => u.password = Some(password.clone()),
                None => {
                    let n = self.users.len() as u64 + 2; // 1 and 2 are the API user and the rep
                    self.users.push(OrgUser {
                        username: username.clone(),
                        password: Some(password.clone()),
                        user_id: ids::numbered("005", n),
                    });
                }
            }
        }
        for a in &file.audiences {
            if !self.audiences.contains(a) {
                self.audiences.push(a.clone());
            }
        }
        for (token, username) in &file.refresh_tokens {
            self.refresh.push(RefreshGrant {
                token: token.clone(),
                client_id: file.app.client_id.clone(),
                username: username.clone(),
                revoked: false,
            });
        }
    }

    fn app(&self, client_id: &str) -> Option<&ConnectedApp> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    fn user(&self, username: &str) -> Option<&OrgUser> {
        self.users
            .iter()
            .find(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// The username and user ID a session token acts as (the API user for tokens issued
    /// without a sign-in).
    pub fn session_user(&self, token: &str) -> (String, String) {
        self.sessions
            .iter()
            .find(|s| s.token == token)
            .map(|s| (s.username.clone(), s.user_id.clone()))
            .unwrap_or_else(|| (API_USERNAME.into(), API_USER_ID.into()))
    }
}

/// A connected-app file (`mock serve --connected-app FILE`), TOML:
///
/// ```toml
/// client_id = "3MVG9example"
/// client_secret = "…"
/// certificate = "jwt.crt"   # X.509 PEM (or an RSA PUBLIC KEY PEM), relative to the file
/// audiences = ["https://my-org.my.salesforce.com"]   # besides login./test.salesforce.com
///
/// [[users]]
/// username = "integration@example.com"
/// password = "…"
///
/// [[refresh_tokens]]
/// token = "5Aep861…"
/// username = "integration@example.com"
/// ```
#[derive(Clone, Debug)]
pub struct AppFile {
    pub app: ConnectedApp,
    pub users: Vec<(String, String)>,
    pub audiences: Vec<String>,
    pub refresh_tokens: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    client_id: String,
    client_secret: String,
    certificate: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    refresh_tokens: Vec<RawRefresh>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefresh {
    token: String,
    username: String,
}

impl AppFile {
    /// Reads a connected-app file; the error names the file and what to fix.
    pub fn load(path: &Path) -> Result<AppFile, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let raw: RawFile = toml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
        if raw.client_id.trim().is_empty() {
            return Err(format!("{shown}: `client_id` is empty"));
        }
        let jwt_key = match &raw.certificate {
            None => None,
            Some(cert) => {
                let cert_path = path.parent().unwrap_or(Path::new(".")).join(cert);
                let pem = std::fs::read(&cert_path)
                    .map_err(|e| format!("{shown}: `certificate` {}: {e}", cert_path.display()))?;
                Some(
                    rsa_public_key(&pem).map_err(|e| {
                        format!("{shown}: `certificate` {}: {e}", cert_path.display())
                    })?,
                )
            }
        };
        let usernames: Vec<&str> = raw.users.iter().map(|u| u.username.as_str()).collect();
        for (i, r) in raw.refresh_tokens.iter().enumerate() {
            if r.username != API_USERNAME && !usernames.contains(&r.username.as_str()) {
                return Err(format!(
                    "{shown}: refresh_tokens[{i}]: user `{}` is not among [[users]]",
                    r.username
                ));
            }
        }
        Ok(AppFile {
            app: ConnectedApp {
                client_id: raw.client_id,
                client_secret: raw.client_secret,
                jwt_key,
            },
            users: raw
                .users
                .into_iter()
                .map(|u| (u.username, u.password))
                .collect(),
            audiences: raw.audiences,
            refresh_tokens: raw
                .refresh_tokens
                .into_iter()
                .map(|r| (r.token, r.username))
                .collect(),
        })
    }
}

/// The RSA public key (PKCS#1 DER) of an X.509 certificate or a public-key PEM.
pub fn rsa_public_key(pem: &[u8]) -> Result<Vec<u8>, String> {
    let (_, block) =
        x509_parser::pem::parse_x509_pem(pem).map_err(|e| format!("not a PEM file ({e})"))?;
    let spki_der = match block.label.as_str() {
        "CERTIFICATE" => {
            let cert = block
                .parse_x509()
                .map_err(|e| format!("not an X.509 certificate ({e})"))?;
            return Ok(cert.public_key().subject_public_key.data.to_vec());
        }
        "PUBLIC KEY" => block.contents,
        "RSA PUBLIC KEY" => return Ok(block.contents),
        other => return Err(format!("a PEM `{other}` block; give the certificate")),
    };
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki_der)
        .map_err(|e| format!("unreadable public key ({e})"))?;
    Ok(spki.subject_public_key.data.to_vec())
}

/// Salesforce's OAuth error answer.
fn oauth_error(error: &str, description: &str) -> Answer {
    Answer {
        error_code: Some(error.to_string()),
        ..Answer::ok(
            StatusCode::BAD_REQUEST,
            json!({"error": error, "error_description": description}),
        )
    }
}

fn invalid_client_id() -> Answer {
    oauth_error("invalid_client_id", "client identifier invalid")
}

fn invalid_client() -> Answer {
    oauth_error("invalid_client", "invalid client credentials")
}

/// Client ID and secret from HTTP Basic or the form.
fn client_auth(headers: &HeaderMap, form: &[(String, String)]) -> (Option<String>, Option<String>) {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (i.to_string(), p.to_string()))
        });
    if let Some((id, secret)) = basic {
        return (Some(id), Some(secret));
    }
    (field(form, "client_id"), field(form, "client_secret"))
}

fn field(form: &[(String, String)], key: &str) -> Option<String> {
    form.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// Checks the client: a known ID, and the secret when `need_secret` or when one is given.
fn check_client(
    dir: &Directory,
    id: Option<&str>,
    secret: Option<&str>,
    need_secret: bool,
) -> Result<String, Answer> {
    let app = id.and_then(|i| dir.app(i)).ok_or_else(invalid_client_id)?;
    match secret {
        Some(s) if s == app.client_secret => Ok(app.client_id.clone()),
        None if !need_secret => Ok(app.client_id.clone()),
        _ => Err(invalid_client()),
    }
}

/// `POST /services/oauth2/token`.
pub(super) fn token(state: &mut State, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Answer {
    let form = form_pairs(&String::from_utf8_lossy(body));
    let (id, secret) = client_auth(headers, &form);
    let dir = &state.oauth;
    let granted = match field(&form, "grant_type").as_deref() {
        Some("client_credentials") => check_client(dir, id.as_deref(), secret.as_deref(), true)
            .map(|c| (c, API_USERNAME.to_string(), API_USER_ID.to_string(), None)),
        Some("password") => {
            check_client(dir, id.as_deref(), secret.as_deref(), true).and_then(|c| {
                let user = field(&form, "username")
                    .and_then(|u| dir.user(&u))
                    .filter(|u| u.password.is_some() && u.password == field(&form, "password"))
                    .ok_or_else(|| oauth_error("invalid_grant", "authentication failure"))?;
                Ok((c, user.username.clone(), user.user_id.clone(), None))
            })
        }
        Some("refresh_token") => check_client(dir, id.as_deref(), secret.as_deref(), false)
            .and_then(|c| {
                let token = field(&form, "refresh_token").unwrap_or_default();
                let grant = dir
                    .refresh
                    .iter()
                    .find(|g| g.token == token && g.client_id == c && !g.revoked)
                    .ok_or_else(|| oauth_error("invalid_grant", "expired access/refresh token"))?;
                let user = dir
                    .user(&grant.username)
                    .ok_or_else(|| oauth_error("invalid_grant", "expired access/refresh token"))?;
                Ok((c, user.username.clone(), user.user_id.clone(), Some(token)))
            }),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let assertion = field(&form, "assertion").unwrap_or_default();
            jwt_bearer(state, &assertion, now).map(|(c, u, i)| (c, u, i, None))
        }
        Some(_) => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
        None => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    };
    let (client_id, username, user_id, refresh) = match granted {
        Ok(g) => g,
        Err(answer) => return answer,
    };
    let token = format!("{ORG_ID_15}!{}", state.token_rng.token(96, ALNUM));
    let signature = state.token_rng.token(43, ALNUM) + "=";
    state.tokens.push(token.clone());
    state.oauth.sessions.push(Session {
        token: token.clone(),
        client_id,
        username,
        user_id: user_id.clone(),
        issued: now,
        refresh,
    });
    let base = state.base_url.clone();
    Answer::ok(
        StatusCode::OK,
        json!({
            "access_token": token,
            "instance_url": base,
            "id": format!("{base}/id/{ORG_ID}/{user_id}"),
            "token_type": "Bearer",
            "issued_at": now.as_millis().to_string(),
            "signature": signature,
        }),
    )
}

/// The org ID's 15-character form, as session tokens start with it.
const ORG_ID_15: &str = "00D8d0000000001";

/// Records a token issued without a sign-in (tools that bring no credentials).
pub(super) fn issue_plain(state: &mut State) -> String {
    let token = format!("{ORG_ID_15}!{}", state.token_rng.token(96, ALNUM));
    state.tokens.push(token.clone());
    token
}

/// Verifies a JWT bearer assertion: RS256 signed with the app's certificate, `iss` a known
/// client ID, `aud` a login URL of the org, `exp` not passed, `sub` a user of the org.
fn jwt_bearer(
    state: &State,
    assertion: &str,
    now: Timestamp,
) -> Result<(String, String, String), Answer> {
    let invalid = || oauth_error("invalid_grant", "invalid assertion");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid());
    }
    // The issuer says whose certificate to check the signature with: read it first.
    let mut peek = Validation::new(Algorithm::RS256);
    peek.insecure_disable_signature_validation();
    peek.validate_exp = false;
    peek.validate_aud = false;
    peek.required_spec_claims.clear();
    let unverified =
        jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_secret(b""), &peek)
            .map_err(|_| invalid())?
            .claims;
    let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
    let dir = &state.oauth;
    let app = dir.app(iss).ok_or_else(invalid_client_id)?;
    let key = app.jwt_key.as_ref().ok_or_else(invalid)?;
    let mut check = Validation::new(Algorithm::RS256);
    check.validate_exp = false;
    check.validate_aud = false;
    check.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(assertion, &DecodingKey::from_rsa_der(key), &check)
        .map_err(|_| invalid())?
        .claims;
    let own = state.base_url.trim_end_matches('/');
    let aud_ok = |a: &str| {
        let a = a.trim_end_matches('/');
        a == own || dir.audiences.iter().any(|x| x.trim_end_matches('/') == a)
    };
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => aud_ok(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_ok {
        return Err(oauth_error("invalid_grant", "audience is invalid"));
    }
    // `exp` is seconds on the client's (wall) clock; some clients send it as a string.
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(invalid)?;
    let expires = state
        .clock
        .org_time_of(Timestamp::from_millis(exp.saturating_mul(1000)));
    if expires <= now {
        return Err(oauth_error("invalid_grant", "expired authorization code"));
    }
    let user = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|s| dir.user(s))
        .ok_or_else(|| oauth_error("invalid_grant", "user hasn't approved this consumer"))?;
    Ok((
        app.client_id.clone(),
        user.username.clone(),
        user.user_id.clone(),
    ))
}

/// `POST /services/oauth2/revoke` (also `GET ?token=`): an access token ends its session; a
/// refresh token is revoked with every session issued from it.
pub(super) fn revoke(state: &mut State, query: Option<&str>, body: &[u8]) -> Answer {
    let mut form = form_pairs(&String::from_utf8_lossy(body));
    form.extend(query.map(form_pairs).unwrap_or_default());
    let token = field(&form, "token").unwrap_or_default();
    if let Some(grant) = state
        .oauth
        .refresh
        .iter_mut()
        .find(|g| g.token == token && !g.revoked)
    {
        grant.revoked = true;
        let ended: Vec<String> = state
            .oauth
            .sessions
            .iter()
            .filter(|s| s.refresh.as_deref() == Some(token.as_str()))
            .map(|s| s.token.clone())
            .collect();
        state.tokens.retain(|t| !ended.contains(t));
        return Answer::empty(StatusCode::OK);
    }
    if !token.is_empty() && state.tokens.contains(&token) {
        state.tokens.retain(|t| *t != token);
        return Answer::empty(StatusCode::OK);
    }
    oauth_error("invalid_token", "invalid token")
}

/// `POST /services/oauth2/introspect` (the client authenticates): is the token active, and
/// whose is it.
pub(super) fn introspect(state: &State, headers: &HeaderMap, body: &[u8]) -> Answer {
    let form = form_pairs(&String::from_utf8_lossy(body));
    let (id, secret) = client_auth(headers, &form);
    if let Err(answer) = check_client(&state.oauth, id.as_deref(), secret.as_deref(), true) {
        return answer;
    }
    let token = field(&form, "token").unwrap_or_default();
    let base = &state.base_url;
    if state.tokens.contains(&token) {
        let (username, user_id) = state.oauth.session_user(&token);
        let s = state.oauth.sessions.iter().find(|s| s.token == token);
        let iat = s.map(|s| s.issued.as_millis() / 1000).unwrap_or(0);
        return Answer::ok(
            StatusCode::OK,
            json!({
                "active": true,
                "scope": "api",
                "client_id": s.map(|s| s.client_id.clone()),
                "username": username,
                "sub": format!("{base}/id/{ORG_ID}/{user_id}"),
                "token_type": "access_token",
                "exp": iat + SESSION_SECS,
                "iat": iat,
                "nbf": iat,
            }),
        );
    }
    if let Some(g) = state
        .oauth
        .refresh
        .iter()
        .find(|g| g.token == token && !g.revoked)
    {
        let user_id = state
            .oauth
            .user(&g.username)
            .map(|u| u.user_id.clone())
            .unwrap_or_default();
        return Answer::ok(
            StatusCode::OK,
            json!({
                "active": true,
                "scope": "api refresh_token",
                "client_id": g.client_id,
                "username": g.username,
                "sub": format!("{base}/id/{ORG_ID}/{user_id}"),
                "token_type": "refresh_token",
            }),
        );
    }
    Answer::ok(StatusCode::OK, json!({"active": false}))
}

/// `GET /services/oauth2/userinfo` (OpenID Connect claims) for a session.
pub(super) fn userinfo(state: &State, token: &str, api_version: &str) -> Answer {
    let base = &state.base_url;
    let (username, user_id) = state.oauth.session_user(token);
    Answer::ok(
        StatusCode::OK,
        json!({
            "sub": format!("{base}/id/{ORG_ID}/{user_id}"),
            "user_id": user_id,
            "organization_id": ORG_ID,
            "preferred_username": username,
            "name": "Integration User",
            "email": username,
            "zoneinfo": "GMT",
            "locale": "en_US",
            "user_type": "STANDARD",
            "active": true,
            "urls": urls(base, api_version),
        }),
    )
}

/// `GET /id/{orgId}/{userId}`: the identity service, as jsforce's `identity()` reads it.
pub(super) fn identity(state: &State, token: &str, api_version: &str) -> Answer {
    let base = &state.base_url;
    let (username, user_id) = state.oauth.session_user(token);
    Answer::ok(
        StatusCode::OK,
        json!({
            "id": format!("{base}/id/{ORG_ID}/{user_id}"),
            "asserted_user": true,
            "user_id": user_id,
            "organization_id": ORG_ID,
            "username": username,
            "nick_name": username.split('@').next().unwrap_or(""),
            "display_name": "Integration User",
            "email": username,
            "email_verified": true,
            "first_name": "Integration",
            "last_name": "User",
            "timezone": "GMT",
            "active": true,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "urls": urls(base, api_version),
        }),
    )
}

fn urls(base: &str, v: &str) -> Value {
    let data = format!("{base}/services/data/v{v}");
    json!({
        "rest": format!("{data}/"),
        "sobjects": format!("{data}/sobjects/"),
        "search": format!("{data}/search/"),
        "query": format!("{data}/query/"),
        "recent": format!("{data}/recent/"),
        "profile": format!("{base}/{API_USER_ID}"),
        "users": format!("{data}/chatter/users"),
        "custom_domain": base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_pem_certificates() {
        assert!(rsa_public_key(b"not a pem").is_err());
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(rsa_public_key(pem).unwrap_err().contains("PRIVATE KEY"));
    }
}
