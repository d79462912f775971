//! Provider verification: does the org honour the bundle's Pact interactions? Runs
//! `pact_verifier` against the mock org (with provider states set directly in the org) or
//! against a real sandbox URL.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

use pact_models::provider_states::ProviderState;
use pact_verifier::callback_executors::{
    HttpRequestProviderStateExecutor, NullRequestFilterExecutor, ProviderStateExecutor,
};
use pact_verifier::{FilterInfo, PactSource, ProviderInfo, ProviderTransport, VerificationOptions};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::Bundle;
use crate::mock::{self, MockConfig, MockOrg};
use crate::sim::{Clock, Seed, Timestamp};

/// The verdict on one interaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InteractionVerdict {
    pub description: String,
    /// Provider states the interaction needs.
    pub states: Vec<String>,
    pub passed: bool,
    /// What did not match, as the verifier put it.
    pub mismatches: Vec<String>,
}

/// Provider verification of one tenant's pacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PactCheck {
    /// Where the provider ran: `mock org` or the sandbox URL.
    pub provider: String,
    pub interactions: Vec<InteractionVerdict>,
    /// Set when verification could not run at all.
    pub error: Option<String>,
    /// Set when there was nothing to verify (the bundle has no pacts): said, never passed
    /// off as a verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_checked: Option<String>,
    /// The verifier's own report, for `--verbose` readers and debugging.
    #[serde(skip)]
    pub output: String,
}

impl PactCheck {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.interactions.iter().all(|i| i.passed)
    }

    /// Whether any pact was verified (false: see `not_checked`).
    pub fn checked(&self) -> bool {
        self.not_checked.is_none()
    }
}

/// Verifies the bundle's pacts against a fresh mock org of the bundle.
pub async fn verify_against_mock(bundle: &Bundle, seed: Seed) -> PactCheck {
    let clock = Clock::virtual_at(
        Timestamp::parse(crate::sim::scenario::DEFAULT_START).expect("default start parses"),
    );
    let org = MockOrg::new(MockConfig {
        bundle: bundle.clone(),
        scenario: None,
        seed,
        clock,
        clients: vec![mock::states::pact_client()],
    });
    let running = match mock::spawn(org.clone(), 0).await {
        Ok(r) => r,
        Err(e) => {
            return PactCheck {
                provider: "mock org".into(),
                interactions: Vec::new(),
                error: Some(format!("failed to start the mock org: {e}")),
                not_checked: None,
                output: String::new(),
            }
        }
    };
    let token = org.issue_token();
    let states = Arc::new(MockStates {
        org: org.clone(),
        errors: Default::default(),
    });
    let mut check = verify(
        bundle,
        "mock org",
        running.addr.port(),
        "http",
        "127.0.0.1",
        Some(&token),
        states.clone(),
    )
    .await;
    let errors = states
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for (state, why) in errors {
        for i in check
            .interactions
            .iter_mut()
            .filter(|i| i.states.contains(&state))
        {
            i.mismatches
                .push(format!("provider state `{state}`: {why}"));
        }
    }
    running.stop().await;
    check
}

/// Where a team's state-change service for its sandbox listens (Pact's protocol; see
/// docs/mock.md "Provider states"). Without it, states cannot be set on a real org.
pub const STATES_URL_ENV: &str = "SYNCGATE_PROVIDER_STATES_URL";

/// Verifies the bundle's pacts against a real org at `url` with a session `token`.
/// Provider states are set through the state-change service at `$SYNCGATE_PROVIDER_STATES_URL`
/// (setup before and teardown after each interaction); without one, interactions that need
/// a state are verified as they come.
pub async fn verify_against_url(bundle: &Bundle, url: &str, token: Option<&str>) -> PactCheck {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return PactCheck {
                provider: url.into(),
                interactions: Vec::new(),
                error: Some(format!("`{url}` is not a URL: {e}")),
                not_checked: None,
                output: String::new(),
            }
        }
    };
    let host = parsed.host_str().unwrap_or("localhost").to_string();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let scheme = parsed.scheme();
    match std::env::var(STATES_URL_ENV).ok().filter(|u| !u.is_empty()) {
        Some(states_url) => {
            let states = HttpRequestProviderStateExecutor {
                state_change_url: Some(states_url),
                state_change_teardown: true,
                state_change_body: true,
                retries: 0,
            };
            verify(bundle, url, port, scheme, &host, token, Arc::new(states)).await
        }
        None => verify(bundle, url, port, scheme, &host, token, Arc::new(NoStates)).await,
    }
}

async fn verify<S: ProviderStateExecutor + Send + Sync + 'static>(
    bundle: &Bundle,
    provider_label: &str,
    port: u16,
    scheme: &str,
    host: &str,
    token: Option<&str>,
    states: Arc<S>,
) -> PactCheck {
    let mut check = PactCheck {
        provider: provider_label.to_string(),
        interactions: Vec::new(),
        error: None,
        not_checked: None,
        output: String::new(),
    };
    if bundle.pacts.is_empty() {
        check.not_checked =
            Some("not checked: the bundle has no pacts/ (generate the tenant's pact file)".into());
        return check;
    }
    #[allow(deprecated)]
    let provider = ProviderInfo {
        name: format!("{}-salesforce-{}", bundle.partner, bundle.tenant),
        host: host.to_string(),
        transports: vec![ProviderTransport {
            transport: "http".into(),
            port: Some(port),
            path: None,
            scheme: Some(scheme.to_string()),
        }],
        ..ProviderInfo::default()
    };
    let sources = bundle
        .pacts
        .keys()
        .map(|f| PactSource::File(bundle.dir.join("pacts").join(f).display().to_string()))
        .collect();
    let mut custom_headers = HashMap::new();
    if let Some(t) = token {
        custom_headers.insert("Authorization".to_string(), format!("Bearer {t}"));
    }
    let options = VerificationOptions::<NullRequestFilterExecutor> {
        custom_headers,
        coloured_output: false,
        request_timeout: 10_000,
        ..VerificationOptions::default()
    };
    // The verifier prints its own report to stdout; keep the gate's output ours.
    let (result, output) = with_stdout_captured(pact_verifier::verify_provider_async(
        provider,
        sources,
        FilterInfo::None,
        Vec::new(),
        &options,
        None,
        &states,
        None,
    ))
    .await;
    check.output = output;
    match result {
        Err(e) => check.error = Some(format!("the Pact verifier failed: {e}")),
        Ok(r) => {
            for i in r.interaction_results {
                let mismatches = match &i.result {
                    Ok(()) => Vec::new(),
                    Err(pact_verifier::MismatchResult::Mismatches { mismatches, .. }) => {
                        mismatches.iter().map(|m| m.description()).collect()
                    }
                    Err(pact_verifier::MismatchResult::Error(e, _)) => vec![e.clone()],
                };
                check.interactions.push(InteractionVerdict {
                    description: i.interaction_description.clone(),
                    states: i.provider_states.clone(),
                    passed: i.result.is_ok(),
                    mismatches,
                });
            }
            check
                .interactions
                .sort_by(|a, b| a.description.cmp(&b.description));
        }
    }
    check
}

/// Runs `fut` with file descriptor 1 pointed at a temporary file, so a library that prints
/// cannot interleave with our report. The gate runs on one thread, so nothing else of ours
/// writes meanwhile.
async fn with_stdout_captured<T>(fut: impl std::future::Future<Output = T>) -> (T, String) {
    let _ = std::io::stdout().flush();
    let Ok(mut sink) = tempfile::tempfile() else {
        return (fut.await, String::new());
    };
    use std::os::fd::AsRawFd;
    // SAFETY: dup/dup2 on valid descriptors; the saved descriptor is restored and closed below.
    let saved = unsafe { libc::dup(1) };
    if saved < 0 || unsafe { libc::dup2(sink.as_raw_fd(), 1) } < 0 {
        return (fut.await, String::new());
    }
    let out = fut.await;
    let _ = std::io::stdout().flush();
    // SAFETY: `saved` is the descriptor dup'ed above.
    unsafe {
        libc::dup2(saved, 1);
        libc::close(saved);
    }
    let mut text = String::new();
    let _ = sink.rewind().and_then(|_| sink.read_to_string(&mut text));
    (out, text)
}

/// Provider states against a real org: none can be set.
#[derive(Debug)]
struct NoStates;

#[async_trait::async_trait]
impl ProviderStateExecutor for NoStates {
    async fn call(
        self: Arc<Self>,
        _: Option<String>,
        _: &ProviderState,
        _: bool,
        _: Option<&reqwest::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        Ok(HashMap::new())
    }

    fn teardown(&self) -> bool {
        false
    }
}

/// Provider states set directly in the mock org.
struct MockStates {
    org: MockOrg,
    /// Why a state could not be set, by state name (the verifier only says that one failed).
    errors: std::sync::Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for MockStates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockStates")
    }
}

#[async_trait::async_trait]
impl ProviderStateExecutor for MockStates {
    async fn call(
        self: Arc<Self>,
        _: Option<String>,
        state: &ProviderState,
        setup: bool,
        _: Option<&reqwest::Client>,
    ) -> anyhow::Result<HashMap<String, Value>> {
        let result = self.clone().apply(state, setup);
        if let Err(e) = &result {
            self.errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(state.name.clone(), e.to_string());
        }
        result
    }

    fn teardown(&self) -> bool {
        true
    }
}

impl MockStates {
    /// The same code the org's `/__syncgate/provider-states` endpoint runs.
    fn apply(
        self: Arc<Self>,
        state: &ProviderState,
        setup: bool,
    ) -> anyhow::Result<HashMap<String, Value>> {
        if setup {
            let params: Map<String, Value> = state
                .params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            mock::states::setup(&self.org, &state.name, &params).map_err(anyhow::Error::msg)?;
        } else {
            mock::states::teardown(&self.org);
        }
        Ok(HashMap::new())
    }
}
