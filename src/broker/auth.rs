//! Who is calling: the bearer token's scope ([`super::tokens`]), the check that it may
//! read, write or administer a pacticipant, and the base URL links are written with.

use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::{HeaderMap, StatusCode};

use super::tokens::{Access, TokenScope};
use super::{ApiError, BrokerConfig};

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

pub(super) fn caller<'a>(
    cfg: &'a BrokerConfig,
    headers: &HeaderMap,
) -> Result<Caller<'a>, ApiError> {
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
