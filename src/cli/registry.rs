//! `syncgate registry serve`: the registry's Pact Broker-compatible HTTP API.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{error, exit};
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

fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::sim::time::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{s}` is not a duration above zero (e.g. 200ms, 5s, 1m)"))
}

/// The webhook delivery settings, the secret read from the variable `--webhook-secret-env`
/// names (an unset or empty one is bad input, named in the message).
fn webhook_settings(args: &RegistryServeArgs) -> Result<broker::webhooks::Delivery, String> {
    let secret = match &args.webhook_secret_env {
        None => None,
        Some(var) => {
            let value = std::env::var_os(var).unwrap_or_default();
            let secret = broker::webhooks::Secret::new(value.into_encoded_bytes());
            if secret.is_none() {
                return Err(format!(
                    "--webhook-secret-env {var}: the environment variable {var} is unset or empty; set it to the shared secret webhook receivers check signatures with"
                ));
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

pub fn serve(args: RegistryServeArgs, db: Option<&str>) -> i32 {
    let tokens = match Tokens::load(&args.tokens) {
        Ok(t) if t.is_empty() => {
            error(format_args!(
                "{} holds no tokens: nobody could use the registry",
                args.tokens.display()
            ));
            return exit::BAD_INPUT;
        }
        Ok(t) => t,
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let webhooks = match webhook_settings(&args) {
        Ok(w) => std::sync::Arc::new(w),
        Err(e) => {
            error(e);
            return exit::BAD_INPUT;
        }
    };
    let store = match store::open_broker(db) {
        Ok(s) => s,
        Err(e) => {
            error(format_args!("cannot open the store: {e}"));
            return exit::INTERNAL;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error(format_args!("failed to start the async runtime: {e}"));
            return exit::INTERNAL;
        }
    };
    let served = runtime.block_on(async {
        for env in ["sandbox", "production"] {
            store
                .add_environment(env)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
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
    });
    if let Err(e) = served {
        error(format_args!(
            "failed to serve on {}:{}: {e}",
            args.bind, args.port
        ));
        return exit::INTERNAL;
    }
    exit::PASSED
}
