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
        broker::serve(
            listener,
            BrokerConfig {
                store,
                tokens,
                clock: Clock::system(),
                public_url: args.public_url,
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
