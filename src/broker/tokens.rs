//! Bearer tokens for the registry server: each scoped to a partner (optionally some of its
//! tenants) and to read or write access, loaded from a TOML file.
//!
//! ```toml
//! [[token]]
//! name = "bluepeak-ci"              # shown in errors; the token itself never is
//! sha256 = "9f86d0…"                # hex SHA-256 of the token (or `token = "…"` in clear)
//! partner = "bluepeak-logistics"    # or "*" for every partner
//! tenants = ["sandbox"]             # optional: only these tenants
//! access = "write"                  # "read", "write" (includes read) or "admin" (includes
//!                                   # write, and may create environments)
//! ```

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
    /// Write, plus what is global to the registry (creating environments).
    Admin,
}

/// One token's scope.
#[derive(Clone, Debug)]
pub struct TokenScope {
    pub name: String,
    /// A partner name, or `*` for all.
    pub partner: String,
    /// Tenants the token is limited to; empty = every tenant of the partner.
    pub tenants: Vec<String>,
    pub access: Access,
    digest: [u8; 32],
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    token: Option<String>,
    sha256: Option<String>,
    partner: String,
    #[serde(default)]
    tenants: Vec<String>,
    access: Access,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read tokens file {path}: {message}")]
    Read { path: String, message: String },
    #[error("tokens file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// The tokens the server accepts.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    scopes: Vec<TokenScope>,
}

/// A pacticipant name as the registry reads it: `<partner>-salesforce-<tenant>` is a tenant's
/// org; any other name stands for a partner (or the engine) as a whole.
pub fn owner_of(pacticipant: &str) -> (String, Option<String>) {
    match pacticipant.rsplit_once("-salesforce-") {
        Some((partner, tenant)) if !partner.is_empty() && !tenant.is_empty() => {
            (partner.to_string(), Some(tenant.to_string()))
        }
        _ => (pacticipant.to_string(), None),
    }
}

impl TokenScope {
    /// Whether this token may `access` the pacticipant's contracts.
    pub fn allows(&self, pacticipant: &str, access: Access) -> bool {
        if access > self.access {
            return false;
        }
        if self.partner == "*" {
            return true;
        }
        let (partner, tenant) = owner_of(pacticipant);
        if partner != self.partner {
            return false;
        }
        match tenant {
            _ if self.tenants.is_empty() => true,
            Some(t) => self.tenants.contains(&t),
            // A partner-wide name is beyond a token limited to some tenants.
            None => false,
        }
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TokenError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        Tokens::parse(&text).map_err(|message| TokenError::Invalid {
            path: shown,
            message,
        })
    }

    /// Parses the TOML format in the module docs; the message names the entry at fault.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokenFile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| crate::contract::bundle::line_col(text, s.start));
            match at {
                Some((line, col)) => format!("line {line}, column {col}: {}", e.message()),
                None => e.message().to_string(),
            }
        })?;
        let mut scopes = Vec::new();
        for (i, t) in file.token.into_iter().enumerate() {
            let which = format!("token #{} (`{}`)", i + 1, t.name);
            let digest = match (&t.token, &t.sha256) {
                (Some(clear), None) if !clear.is_empty() => digest(clear),
                (None, Some(hexed)) => {
                    let bytes = hex::decode(hexed.trim())
                        .map_err(|_| format!("{which}: `sha256` is not hex"))?;
                    bytes
                        .try_into()
                        .map_err(|_| format!("{which}: `sha256` must be 64 hex digits"))?
                }
                _ => return Err(format!("{which}: give exactly one of `token` or `sha256`")),
            };
            if t.partner.is_empty() {
                return Err(format!("{which}: `partner` is empty"));
            }
            scopes.push(TokenScope {
                name: t.name,
                partner: t.partner,
                tenants: t.tenants,
                access: t.access,
                digest,
            });
        }
        Ok(Tokens { scopes })
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// The scope of a presented token, if it is known. Compares digests in constant time.
    pub fn find(&self, presented: &str) -> Option<&TokenScope> {
        let d = digest(presented);
        self.scopes.iter().find(|s| {
            s.digest
                .iter()
                .zip(d.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[token]]
        name = "bluepeak-ci"
        token = "bp-write"
        partner = "bluepeak-logistics"
        access = "write"

        [[token]]
        name = "northwind-sandbox-reader"
        sha256 = "0f1c2a6e4e3bd7a0f8e9e63d5cb1d1e41c5b4f1c0c4a8c4e0e1b3b6a9f3e2d1c"
        partner = "northwind-outfitters"
        tenants = ["sandbox"]
        access = "read"
    "#;

    #[test]
    fn names_map_to_partner_and_tenant() {
        assert_eq!(
            owner_of("bluepeak-logistics-salesforce-sandbox"),
            ("bluepeak-logistics".into(), Some("sandbox".into()))
        );
        assert_eq!(
            owner_of("syncgate-engine"),
            ("syncgate-engine".into(), None)
        );
    }

    #[test]
    fn a_token_reaches_its_partner_only_and_write_needs_write() {
        let tokens = Tokens::parse(FILE).unwrap_or_else(|e| panic!("{e}"));
        let bp = tokens
            .find("bp-write")
            .unwrap_or_else(|| panic!("token not found"));
        assert!(bp.allows("bluepeak-logistics-salesforce-sandbox", Access::Write));
        assert!(!bp.allows("northwind-outfitters-salesforce-sandbox", Access::Read));
        assert!(tokens.find("bp-writ").is_none());
        let mut reader = tokens.scopes[1].clone();
        reader.digest = digest("nw-read");
        assert!(reader.allows("northwind-outfitters-salesforce-sandbox", Access::Read));
        assert!(!reader.allows("northwind-outfitters-salesforce-sandbox", Access::Write));
        assert!(!reader.allows("northwind-outfitters-salesforce-production", Access::Read));
    }

    #[test]
    fn admin_includes_write_and_write_is_not_admin() {
        let tokens = Tokens::parse(
            "[[token]]\nname = \"ops\"\ntoken = \"ops\"\npartner = \"*\"\naccess = \"admin\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ops = tokens
            .find("ops")
            .unwrap_or_else(|| panic!("token not found"));
        assert_eq!(ops.access, Access::Admin);
        assert!(ops.allows("bluepeak-logistics-salesforce-sandbox", Access::Write));
        assert!(ops.allows("syncgate-engine", Access::Admin));
        let writer = Tokens::parse(FILE).unwrap_or_else(|e| panic!("{e}"));
        let bp = writer
            .find("bp-write")
            .unwrap_or_else(|| panic!("token not found"));
        assert!(!bp.allows("bluepeak-logistics-salesforce-sandbox", Access::Admin));
    }

    #[test]
    fn a_bad_file_names_the_entry() {
        let err = Tokens::parse("[[token]]\nname = \"x\"\npartner = \"p\"\naccess = \"read\"\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("token #1 (`x`)"), "{err}");
        let err = Tokens::parse("[[token]]\nname = 3\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("line 2"), "{err}");
    }
}
