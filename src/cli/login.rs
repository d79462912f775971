//! Signing in to an org from the command line: the flags `sync`, `dlq redrive` and
//! `contracts pull|check-org` share, checked where they enter (the URL, the CA file).

use std::path::{Path, PathBuf};

use clap::Args;

use super::args::tenant_dir;
use super::CliError;
use crate::contract::Bundle;
use crate::engine::client::{Credentials, JwtBearer, SalesforceClient, Secret};
use crate::engine::Target;
use crate::sim::Clock;

/// Where and how to sign in.
#[derive(Debug, Args)]
pub struct OrgArgs {
    /// The tenant's bundle: a directory holding `bundle.toml`, or `partner/tenant` in
    /// `--contracts` (under the engine protocol: `SYNCGATE_TENANT`).
    #[arg(long, env = "SYNCGATE_TENANT", value_name = "DIR|PARTNER/TENANT")]
    pub bundle: String,
    /// The registry `partner/tenant` is looked up in (under the engine protocol:
    /// `SYNCGATE_CONTRACTS`).
    #[arg(
        long,
        env = "SYNCGATE_CONTRACTS",
        default_value = "contracts",
        value_name = "DIR"
    )]
    pub contracts: PathBuf,
    /// The org's login URL (e.g. `https://login.salesforce.com`, or a `syncgate mock serve`
    /// URL; under the engine protocol: `SYNCGATE_TARGET_URL`).
    #[arg(long, env = "SYNCGATE_TARGET_URL", value_name = "URL")]
    pub target: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The connected app to sign in as: shared by every command that talks to an org.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The connected app's OAuth client ID (consumer key).
    #[arg(long, env = "SYNCGATE_CLIENT_ID", value_name = "ID")]
    pub client_id: String,
    /// The connected app's client secret (client-credentials flow; not needed with
    /// `--jwt-key`).
    #[arg(
        long,
        env = "SYNCGATE_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        required_unless_present = "jwt_key"
    )]
    pub client_secret: Option<String>,
    /// Sign in with the JWT bearer flow instead: the connected app's RSA private key (PEM)
    /// whose certificate the app holds. Needs `--jwt-username`.
    #[arg(
        long,
        env = "SYNCGATE_JWT_KEY_FILE",
        value_name = "FILE",
        requires = "jwt_username"
    )]
    pub jwt_key: Option<PathBuf>,
    /// The Salesforce user the JWT assertion signs in as (its `sub`).
    #[arg(long, env = "SYNCGATE_JWT_USERNAME", value_name = "USERNAME")]
    pub jwt_username: Option<String>,
    /// The JWT assertion's audience: `https://login.salesforce.com` (production),
    /// `https://test.salesforce.com` (sandbox) or a My Domain URL; default the `--target`.
    #[arg(long, value_name = "URL", requires = "jwt_key")]
    pub jwt_audience: Option<String>,
    /// Also trust this CA certificate (PEM), e.g. the one `syncgate mock serve --tls` writes.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

impl OrgArgs {
    /// The bundle `--bundle` names (a directory, or `partner/tenant` under `--contracts`).
    pub(super) fn bundle(&self) -> Result<Bundle, CliError> {
        Ok(Bundle::load(&tenant_dir(&self.bundle, &self.contracts))?)
    }

    /// The org `--target` names, as the engine's target.
    pub(super) fn target(&self) -> Result<Target, CliError> {
        target("--target", &self.target, &self.client)
    }
}

/// The org at `url` signed in to as `client`; `flag` names the URL's flag in messages.
pub(super) fn target(flag: &str, url: &str, client: &ClientArgs) -> Result<Target, CliError> {
    check_target_url(url).map_err(|why| CliError::bad_input(format!("{flag} `{url}`: {why}")))?;
    let ca_pem = match &client.ca_file {
        None => None,
        Some(p) => Some(
            read_ca_file(p)
                .map_err(|why| CliError::bad_input(format!("--ca-file {}: {why}", p.display())))?,
        ),
    };
    let mut credentials = Credentials::client_credentials(
        client.client_id.clone(),
        Secret::new(client.client_secret.clone().unwrap_or_default()),
    );
    if let Some(key) = &client.jwt_key {
        let pem = std::fs::read_to_string(key).map_err(|e| {
            CliError::bad_input(format!("--jwt-key {}: cannot read it", key.display())).because(e)
        })?;
        if !pem.contains("PRIVATE KEY-----") {
            return Err(CliError::bad_input(format!(
                "--jwt-key {}: no PEM private key in it (expected -----BEGIN PRIVATE KEY----- \
                 or -----BEGIN RSA PRIVATE KEY-----)",
                key.display()
            )));
        }
        credentials.jwt = Some(JwtBearer {
            username: client.jwt_username.clone().unwrap_or_default(),
            private_key_pem: Secret::new(pem),
            audience: client.jwt_audience.clone(),
        });
    }
    Ok(Target {
        login_url: url.to_string(),
        credentials,
        request_log: None,
        ca_pem,
    })
}

/// A client of `target`'s org, signed in; `purpose` names its calls in the org's logs
/// (`describe`, `redrive`).
pub(super) async fn sign_in(
    target: &Target,
    api_version: &str,
    clock: &Clock,
    purpose: &str,
) -> Result<SalesforceClient, CliError> {
    let mut client = SalesforceClient::new(
        &target.login_url,
        api_version,
        target.credentials.clone(),
        clock.clone(),
        "syncgate",
        purpose,
    );
    if let Some(pem) = &target.ca_pem {
        client.trust_ca(pem).map_err(|e| {
            CliError::bad_input("--ca-file: the certificate is unusable").because(e)
        })?;
    }
    client.authenticate().await?;
    Ok(client)
}

/// Why `url` cannot be an org's login URL: it must be `http://` or `https://` with a host.
fn check_target_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| format!("not a URL ({e}); e.g. https://login.salesforce.com"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// A CA file's PEM, or why it is unusable: unreadable, empty, or holding no certificate.
fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if pem.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty (expected a PEM certificate)".into());
    }
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err("no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)".into());
    }
    // Parsing alone accepts some garbage; building a client with it checks the certificate.
    crate::http::client_trusting(&pem).map_err(|e| format!("not a usable PEM certificate: {e}"))?;
    Ok(pem)
}
