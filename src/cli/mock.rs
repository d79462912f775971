//! `syncgate mock serve`: a tenant's mock org (or, with `--pact`, its partner stub) over
//! HTTP on loopback until Ctrl-C.

use super::args::MockServeArgs;
use super::{server_runtime, write_file, CliError, CliResult, Context, Outcome};
use crate::contract::Bundle;
use crate::sim::Seed;

pub(super) fn serve(args: MockServeArgs) -> CliResult {
    let bundle = Bundle::load(&args.registry.tenant_dir(&args.bundle))?;
    let scenario = match &args.scenario {
        None => None,
        Some(p) => Some(crate::sim::Scenario::load(p)?),
    };
    let runtime = server_runtime()?;
    // The org as the scenario's partner changed it (`org_fields`), as the gate builds it.
    let bundle = match &scenario {
        Some(s) => crate::verify::gate::org_as_changed(&bundle, s)?,
        None => bundle,
    };
    let label = format!("{}/{}", bundle.partner, bundle.tenant);
    let serve_failed = || format!("failed to serve on 127.0.0.1:{}", args.port);
    if args.pact {
        let stub = crate::mock::partner::PartnerMock::new(
            &bundle,
            scenario.as_ref(),
            Seed(args.seed),
            crate::sim::Clock::shifted(),
        );
        runtime
            .block_on(async {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
                let addr = listener.local_addr()?;
                println!("http://{addr}");
                eprintln!("partner stub {label}: Pact interactions of the bundle; set provider states at http://{addr}/__syncgate/provider-states; Ctrl-C stops");
                crate::mock::partner::serve(listener, stub, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
            })
            .context(serve_failed())?;
        return Ok(Outcome::Passed);
    }
    let app_file = match args.connected_app.as_deref() {
        None => None,
        Some(path) => Some(crate::mock::oauth::AppFile::load(path).map_err(CliError::bad_input)?),
    };
    let org = crate::mock::MockOrg::new(crate::mock::MockConfig {
        bundle,
        scenario,
        seed: Seed(args.seed),
        clock: crate::sim::Clock::shifted(),
        clients: vec![crate::mock::ClientCredentials {
            client_id: args.client_id.clone(),
            client_secret: args.client_secret,
        }],
    });
    org.limit_journal(usize::try_from(args.journal_limit).unwrap_or(usize::MAX));
    org.limit_events(usize::try_from(args.event_limit).unwrap_or(usize::MAX));
    if let Some(f) = &app_file {
        org.add_connected_app(f);
    }
    runtime
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
            let addr = listener.local_addr()?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            if !args.tls {
                println!("http://{addr}");
                eprintln!("mock org {label}: sign in at http://{addr}/services/oauth2/token with client_id {}; admin API at http://{addr}/__syncgate/; Ctrl-C stops", args.client_id);
                return crate::mock::serve(listener, org.clone(), shutdown).await;
            }
            let cert = crate::mock::tls::SelfSigned::generate().map_err(std::io::Error::other)?;
            let ca_file = args.ca_file.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("syncgate-mock-{}-ca.pem", addr.port()))
            });
            std::fs::write(&ca_file, cert.ca_pem())?;
            let base = format!("https://localhost:{}", addr.port());
            println!("{base} {}", ca_file.display());
            eprintln!("mock org {label}: sign in at {base}/services/oauth2/token with client_id {}; trust {} (REQUESTS_CA_BUNDLE, NODE_EXTRA_CA_CERTS); Ctrl-C stops", args.client_id, ca_file.display());
            crate::mock::serve_tls(listener, &cert, org.clone(), shutdown).await
        })
        .context(serve_failed())?;
    if let Some(path) = &args.journal {
        write_file(path, &crate::mock::journal::to_json_lines(&org.journal()))?;
    }
    Ok(Outcome::Passed)
}
