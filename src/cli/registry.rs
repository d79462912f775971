//! `syncgate registry serve`: the registry's Pact Broker-compatible HTTP API.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::parse_positive_duration;
use super::{server_runtime, CliError, CliResult, Context, Outcome};
use crate::broker::{self, BrokerConfig, Tokens};
use crate::sim::Clock;
use crate::store;

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Serve the registry over HTTP until Ctrl-C (Pact Broker-compatible endpoints).
    ///
    /// Prints the base URL on one line of stdout. Every request needs a bearer token from the
    /// tokens file (format in the README's "Registry" section).
    Serve(RegistryServeArgs),
}

#[derive(Debug, Args)]
pub struct RegistryServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 9292)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub bind: String,
    /// TOML file of bearer tokens, each scoped to a partner (and optionally tenants), read or write.
    #[arg(long, env = "SYNCGATE_REGISTRY_TOKENS", value_name = "FILE")]
    pub tokens: PathBuf,
    /// Base URL written into links (when behind a proxy); default: `http://` + the request's Host.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Environment variable holding the shared secret webhooks are signed with
    /// (`X-Syncgate-Signature: sha256=<HMAC-SHA256 of the body>`); without it, no webhook
    /// can be created or delivered. The secret itself is never a flag, logged or stored.
    #[arg(long, value_name = "VAR")]
    pub webhook_secret_env: Option<String>,
    /// Delivery attempts per event and webhook, the first included.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub webhook_attempts: u32,
    /// Wait after a failed delivery attempt; it doubles after each further one (at most 10 min).
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub webhook_backoff: std::time::Duration,
    /// How long one delivery attempt may take.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub webhook_timeout: std::time::Duration,
}

/// The webhook delivery settings, the secret read from the variable `--webhook-secret-env`
/// names (an unset or empty one is bad input, named in the message).
fn webhook_settings(args: &RegistryServeArgs) -> Result<broker::webhooks::Delivery, CliError> {
    let secret = match &args.webhook_secret_env {
        None => None,
        Some(var) => {
            let value = std::env::var_os(var).unwrap_or_default();
            let secret = broker::webhooks::Secret::new(value.into_encoded_bytes());
            if secret.is_none() {
                return Err(CliError::bad_input(format!(
                    "--webhook-secret-env {var}: the environment variable {var} is unset or empty; set it to the shared secret webhook receivers check signatures with"
                )));
            }
            secret
        }
    };
    Ok(broker::webhooks::Delivery {
        secret,
        max_attempts: args.webhook_attempts,
        backoff: args.webhook_backoff,
        timeout: args.webhook_timeout,
    })
}

pub(super) fn serve(args: RegistryServeArgs, db: Option<&str>) -> CliResult {
    let tokens = Tokens::load(&args.tokens)?;
    if tokens.is_empty() {
        return Err(CliError::bad_input(format!(
            "{} holds no tokens: nobody could use the registry",
            args.tokens.display()
        )));
    }
    let webhooks = std::sync::Arc::new(webhook_settings(&args)?);
    let store = store::open_broker(db).context("cannot open the store")?;
    let runtime = server_runtime()?;
    runtime
        .block_on(async {
            for env in ["sandbox", "production"] {
                store
                    .add_environment(env)
                    .await
                    .map_err(std::io::Error::other)?;
            }
            let listener = tokio::net::TcpListener::bind((args.bind.as_str(), args.port)).await?;
            let addr = listener.local_addr()?;
            println!("http://{addr}");
            eprintln!("registry: serving the Pact Broker API on http://{addr}; Ctrl-C stops");
            match &args.webhook_secret_env {
                Some(var) => eprintln!(
                    "registry: webhooks signed with the secret in ${var}, up to {} attempts each",
                    webhooks.max_attempts
                ),
                None => eprintln!(
                    "registry: webhooks off (no --webhook-secret-env: nothing to sign them with)"
                ),
            }
            broker::serve(
                listener,
                BrokerConfig {
                    store,
                    tokens,
                    clock: Clock::system(),
                    public_url: args.public_url,
                    webhooks,
                },
                async {
                    let _ = tokio::signal::ctrl_c().await;
                },
            )
            .await
        })
        .context(format_args!(
            "failed to serve on {}:{}",
            args.bind, args.port
        ))?;
    Ok(Outcome::Passed)
}
