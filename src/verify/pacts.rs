//! Provider verification: does the org honour the bundle's Pact interactions? Runs
//! `pact_verifier` against the mock org (with provider states set directly in the org) or
//! against a real sandbox URL.

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::sync::Arc;

use pact_models::provider_states::ProviderState;
use pact_verifier::callback_executors::{NullRequestFilterExecutor, ProviderStateExecutor};
use pact_verifier::{FilterInfo, PactSource, ProviderInfo, ProviderTransport, VerificationOptions};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::{Bundle, FieldType};
use crate::mock::bulk::JobStage;
use crate::mock::{self, ClientCredentials, MockConfig, MockOrg};
use crate::sim::scenario::{Dur, FaultResponse};
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

/// Credentials the generated pacts sign in with (see tests/pacts.rs).
fn pact_client() -> ClientCredentials {
    ClientCredentials {
        client_id: "syncgate-engine".into(),
        client_secret: "example-secret".into(),
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
        clients: vec![pact_client()],
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
        bundle: bundle.clone(),
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

/// Verifies the bundle's pacts against a real org at `url` with a session `token`.
/// Provider states cannot be set there: interactions that need one are verified as they come.
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
    verify(
        bundle,
        url,
        port,
        parsed.scheme(),
        &host,
        token,
        Arc::new(NoStates),
    )
    .await
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
        _: Option<&reqwest013::Client>,
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
    bundle: Bundle,
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
        _: Option<&reqwest013::Client>,
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
    fn apply(
        self: Arc<Self>,
        state: &ProviderState,
        setup: bool,
    ) -> anyhow::Result<HashMap<String, Value>> {
        if !setup {
            // Each interaction starts from an empty org: a record one interaction's state
            // created must not turn the next interaction's create into an update.
            self.org.reset();
            self.org.force_next_fault(None);
            self.org.set_api_usage(0);
            return Ok(HashMap::new());
        }
        let name = state.name.as_str();
        match name {
            "" | "a connected app with the client-credentials flow enabled" => {}
            "the org is rate limiting" => {
                self.org.force_next_fault(Some(FaultResponse::RateLimited {
                    retry_after: Dur(std::time::Duration::from_secs(60)),
                    http_date: false,
                }))
            }
            "the daily API budget is spent" => {
                let (_, max) = self.org.api_usage();
                self.org.set_api_usage(max);
            }
            _ if name.starts_with("a Bulk upsert job for ") => {
                // "a Bulk upsert job for <Object> by <ExternalIdField> is open | has records
                // uploaded | is complete"
                let rest = name.trim_start_matches("a Bulk upsert job for ");
                let parsed = rest.split_once(" by ").and_then(|(object, rest)| {
                    let (field, stage) = rest.split_once(' ')?;
                    let stage = match stage {
                        "is open" => JobStage::Open,
                        "has records uploaded" => JobStage::Uploaded,
                        "is complete" => JobStage::Complete,
                        _ => return None,
                    };
                    Some((object, field, stage))
                });
                let Some((object, field, stage)) = parsed else {
                    anyhow::bail!("unknown provider state `{name}`: a Bulk job state reads `a Bulk upsert job for <Object> by <ExternalIdField> is open`, `… has records uploaded` or `… is complete`");
                };
                let spec = self.bundle.object(object).ok_or_else(|| {
                    anyhow::anyhow!("provider state `{name}`: the bundle has no object {object}")
                })?;
                let csv = sample_csv(field, spec);
                self.org
                    .stage_bulk_job(object, field, &csv, stage)
                    .map_err(|e| anyhow::anyhow!("provider state `{name}`: {e}"))?;
            }
            _ => {
                // "<Object> with <Field> <value> exists"
                let parsed = name.strip_suffix(" exists").and_then(|rest| {
                    let (object, rest) = rest.split_once(" with ")?;
                    let (field, value) = rest.split_once(' ')?;
                    Some((object, field, value))
                });
                let Some((object, field, value)) = parsed else {
                    anyhow::bail!("unknown provider state `{name}`: the mock org knows `<Object> with <ExternalIdField> <value> exists`, `the org is rate limiting`, `the daily API budget is spent`");
                };
                let spec = self.bundle.object(object).ok_or_else(|| {
                    anyhow::anyhow!("provider state `{name}`: the bundle has no object {object}")
                })?;
                if spec.external_id != field {
                    anyhow::bail!(
                        "provider state `{name}`: {object}'s external ID is {}, not {field}",
                        spec.external_id
                    );
                }
                self.org
                    .put_record(object, value, sample_record(spec))
                    .map_err(|e| {
                        anyhow::anyhow!("provider state `{name}`: {} {}", e.code, e.message)
                    })?;
            }
        }
        Ok(HashMap::new())
    }
}

/// A one-record CSV upload of the least record the org accepts, keyed `STATE-00001`.
fn sample_csv(ext_field: &str, spec: &crate::contract::ObjectSpec) -> String {
    let record = sample_record(spec);
    let mut header = vec![ext_field.to_string()];
    let mut row = vec!["STATE-00001".to_string()];
    for (k, v) in &record {
        header.push(k.clone());
        row.push(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(&header);
    let _ = w.write_record(&row);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The least record the org accepts: every required field with a value of its type.
fn sample_record(spec: &crate::contract::ObjectSpec) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, f) in spec
        .fields
        .iter()
        .filter(|(n, f)| f.required && **n != spec.external_id)
    {
        let v = match f.ty {
            FieldType::Picklist => f
                .values
                .as_ref()
                .and_then(|v| v.first())
                .map(|v| Value::String(v.clone())),
            FieldType::Boolean => Some(Value::Bool(false)),
            t if t.is_number() => Some(Value::from(1)),
            FieldType::Date => Some(Value::String("2026-01-05".into())),
            FieldType::Datetime => Some(Value::String("2026-01-05T08:00:00.000+0000".into())),
            FieldType::Email => Some(Value::String("state@example.com".into())),
            FieldType::Reference => None,
            _ => Some(Value::String("Provider state record".into())),
        };
        if let Some(v) = v {
            out.insert(name.clone(), v);
        }
    }
    out
}
