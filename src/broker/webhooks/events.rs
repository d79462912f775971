//! Webhook events: which are raised by a publish or a verification result, the template
//! values each carries, and which webhooks they go to. Raised in the background: working
//! out and delivering events never delays or fails the publish.

use std::sync::Arc;

use super::delivery::{self, Delivery, Job};
use super::template::Context;
use crate::broker::selectors::MAIN_BRANCHES;
use crate::broker::{pact_link, BrokerConfig};
use crate::sim::Clock;
use crate::store::{BrokerStore, PactPublication, PactVerificationResult, StoreResult, Webhook};

pub const CONTRACT_PUBLISHED: &str = "contract_published";
pub const CONTRACT_CONTENT_CHANGED: &str = "contract_content_changed";
pub const CONTRACT_REQUIRING_VERIFICATION_PUBLISHED: &str =
    "contract_requiring_verification_published";
pub const PROVIDER_VERIFICATION_PUBLISHED: &str = "provider_verification_published";
pub const PROVIDER_VERIFICATION_SUCCEEDED: &str = "provider_verification_succeeded";
pub const PROVIDER_VERIFICATION_FAILED: &str = "provider_verification_failed";

/// Every event a webhook may subscribe to.
pub const EVENTS: &[&str] = &[
    CONTRACT_PUBLISHED,
    CONTRACT_CONTENT_CHANGED,
    CONTRACT_REQUIRING_VERIFICATION_PUBLISHED,
    PROVIDER_VERIFICATION_PUBLISHED,
    PROVIDER_VERIFICATION_SUCCEEDED,
    PROVIDER_VERIFICATION_FAILED,
];

/// What delivering needs, owned by the background task.
#[derive(Clone)]
struct Raiser {
    store: Arc<dyn BrokerStore>,
    clock: Clock,
    settings: Arc<Delivery>,
    base: String,
}

impl Raiser {
    fn of(cfg: &BrokerConfig, base: &str) -> Raiser {
        Raiser {
            store: cfg.store.clone(),
            clock: cfg.clock.clone(),
            settings: cfg.webhooks.clone(),
            base: base.to_string(),
        }
    }

    /// Enabled webhooks; none is the common case, and ends the work at once.
    async fn hooks(&self) -> StoreResult<Vec<Webhook>> {
        let mut all = self.store.webhooks().await?;
        all.retain(|w| w.enabled);
        Ok(all)
    }

    /// Sends `event` to every webhook in `hooks` that wants it.
    fn dispatch(&self, hooks: &[Webhook], event: &str, p: &PactPublication, ctx: &Context) {
        for w in hooks
            .iter()
            .filter(|w| wants(w, event, &p.consumer, &p.provider))
        {
            let mut context = ctx.clone();
            context.set("eventName", event);
            delivery::spawn(
                self.store.clone(),
                self.clock.clone(),
                self.settings.clone(),
                Job {
                    webhook: w.clone(),
                    event: event.to_string(),
                    consumer: p.consumer.clone(),
                    provider: p.provider.clone(),
                    context,
                    delivery: uuid::Uuid::new_v4().to_string(),
                },
            );
        }
    }
}

/// Whether webhook `w` is for `event` between `consumer` and `provider`.
pub fn wants(w: &Webhook, event: &str, consumer: &str, provider: &str) -> bool {
    w.enabled
        && w.events.iter().any(|e| e == event)
        && w.consumer.as_deref().is_none_or(|c| c == consumer)
        && w.provider.as_deref().is_none_or(|p| p == provider)
}

/// The values every event about pact `p` carries.
pub fn pact_context(base: &str, p: &PactPublication) -> Context {
    let mut c = Context::default();
    c.set("pactUrl", pact_link(base, p, false))
        .set("consumerName", p.consumer.as_str())
        .set("providerName", p.provider.as_str())
        .set("consumerVersionNumber", p.consumer_version.as_str())
        .set(
            "consumerVersionBranch",
            p.branch.clone().unwrap_or_default(),
        )
        .set("consumerVersionTags", p.tags.join(", "));
    c
}

fn result_url(base: &str, p: &PactPublication, id: i64) -> String {
    format!(
        "{}/pact-version/{}/verification-results/{id}",
        pact_link(base, p, true),
        p.sha
    )
}

/// After a publish: `contract_published` for each pact, `contract_content_changed` for a
/// pact newly published whose content differs from the one published before it for the
/// same pair (or that is the pair's first), and `contract_requiring_verification_published`
/// for each provider version that should verify it and has not (the latest on the
/// provider's main branch, deployed and released versions; with none of those, once if
/// nobody verified this content). `pubs` pairs each publication with whether it was new.
pub fn published(cfg: &BrokerConfig, base: &str, pubs: Vec<(PactPublication, bool)>) {
    let r = Raiser::of(cfg, base);
    tokio::spawn(async move {
        if let Err(e) = raise_published(&r, &pubs).await {
            eprintln!("registry: webhook events of a publish were not raised: {e}");
        }
    });
}

async fn raise_published(r: &Raiser, pubs: &[(PactPublication, bool)]) -> StoreResult<()> {
    let hooks = r.hooks().await?;
    if hooks.is_empty() {
        return Ok(());
    }
    for (p, created) in pubs {
        let verifications: Vec<PactVerificationResult> = r
            .store
            .pact_verifications(&p.provider, Some(&p.consumer))
            .await?
            .into_iter()
            .filter(|v| v.pact_sha == p.sha)
            .collect();
        let mut ctx = pact_context(&r.base, p);
        match verifications.last() {
            Some(v) => {
                ctx.set("githubVerificationStatus", github_status(v.success))
                    .set("verificationResultUrl", result_url(&r.base, p, v.id));
            }
            None => {
                ctx.set("githubVerificationStatus", "pending");
            }
        }
        r.dispatch(&hooks, CONTRACT_PUBLISHED, p, &ctx);
        if *created && content_changed(r.store.as_ref(), p).await? {
            r.dispatch(&hooks, CONTRACT_CONTENT_CHANGED, p, &ctx);
        }
        let candidates = provider_versions_to_verify(r.store.as_ref(), &p.provider).await?;
        if candidates.is_empty() {
            if verifications.is_empty() {
                r.dispatch(&hooks, CONTRACT_REQUIRING_VERIFICATION_PUBLISHED, p, &ctx);
            }
            continue;
        }
        for v in candidates {
            if verifications
                .iter()
                .any(|x| x.provider_version == v.version)
            {
                continue;
            }
            let mut c = ctx.clone();
            c.set("providerVersionNumber", v.version.as_str())
                .set(
                    "providerVersionBranch",
                    v.branch.clone().unwrap_or_default(),
                )
                .set("providerVersionTags", v.tags.join(", "));
            r.dispatch(&hooks, CONTRACT_REQUIRING_VERIFICATION_PUBLISHED, p, &c);
        }
    }
    Ok(())
}

fn github_status(success: bool) -> &'static str {
    if success {
        "success"
    } else {
        "failure"
    }
}

/// Whether `p` differs from the pact published just before it for its pair (publication
/// order), or is the pair's first.
async fn content_changed(store: &dyn BrokerStore, p: &PactPublication) -> StoreResult<bool> {
    let pair = store.pacts(Some(&p.provider), Some(&p.consumer)).await?;
    let at = pair
        .iter()
        .position(|x| x.consumer_version == p.consumer_version);
    let previous = at.and_then(|i| i.checked_sub(1)).map(|i| &pair[i]);
    Ok(previous.is_none_or(|prev| prev.sha != p.sha))
}

/// The provider versions whose verification of a new pact matters: the latest on its main
/// branch, and those currently deployed or released (each once, in that order).
async fn provider_versions_to_verify(
    store: &dyn BrokerStore,
    provider: &str,
) -> StoreResult<Vec<crate::store::PacticipantVersion>> {
    let versions = store.pacticipant_versions(provider).await?;
    let main: Vec<_> = versions
        .iter()
        .filter(|v| {
            v.branch
                .as_deref()
                .is_some_and(|b| MAIN_BRANCHES.contains(&b))
        })
        .cloned()
        .collect();
    let mut wanted: Vec<String> = crate::broker::order::latest(main, |v| &v.version)
        .map(|v| v.version)
        .into_iter()
        .collect();
    for d in store.pacticipant_deployments(Some(provider), None).await? {
        if d.undeployed_at.is_none() {
            wanted.push(d.version);
        }
    }
    for rel in store.pacticipant_releases(Some(provider), None).await? {
        if rel.support_ended_at.is_none() {
            wanted.push(rel.version);
        }
    }
    let mut out: Vec<crate::store::PacticipantVersion> = Vec::new();
    for w in wanted {
        if out.iter().any(|v| v.version == w) {
            continue;
        }
        // A deployed version the registry has no record of still needs verifying.
        let v = versions.iter().find(|v| v.version == w).cloned().unwrap_or(
            crate::store::PacticipantVersion {
                pacticipant: provider.to_string(),
                version: w,
                branch: None,
                tags: Vec::new(),
                created_at: crate::sim::Timestamp::from_millis(0),
            },
        );
        out.push(v);
    }
    Ok(out)
}

/// After a verification result: `provider_verification_published`, and
/// `provider_verification_succeeded` or `…_failed`.
pub fn verified(
    cfg: &BrokerConfig,
    base: &str,
    p: &PactPublication,
    result: &PactVerificationResult,
) {
    let r = Raiser::of(cfg, base);
    let (p, result) = (p.clone(), result.clone());
    tokio::spawn(async move {
        if let Err(e) = raise_verified(&r, &p, &result).await {
            eprintln!("registry: webhook events of a verification result were not raised: {e}");
        }
    });
}

async fn raise_verified(
    r: &Raiser,
    p: &PactPublication,
    result: &PactVerificationResult,
) -> StoreResult<()> {
    let hooks = r.hooks().await?;
    if hooks.is_empty() {
        return Ok(());
    }
    let provider_version = r
        .store
        .pacticipant_versions(&p.provider)
        .await?
        .into_iter()
        .find(|v| v.version == result.provider_version);
    let build_url = serde_json::from_str::<serde_json::Value>(&result.body)
        .ok()
        .and_then(|b| {
            b.get("buildUrl")
                .and_then(|u| u.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let mut ctx = pact_context(&r.base, p);
    ctx.set("providerVersionNumber", result.provider_version.as_str())
        .set(
            "providerVersionBranch",
            provider_version
                .as_ref()
                .and_then(|v| v.branch.clone())
                .unwrap_or_default(),
        )
        .set(
            "providerVersionTags",
            provider_version
                .map(|v| v.tags.join(", "))
                .unwrap_or_default(),
        )
        .set("githubVerificationStatus", github_status(result.success))
        .set("verificationResultUrl", result_url(&r.base, p, result.id))
        .set("buildUrl", build_url);
    r.dispatch(&hooks, PROVIDER_VERIFICATION_PUBLISHED, p, &ctx);
    let outcome = if result.success {
        PROVIDER_VERIFICATION_SUCCEEDED
    } else {
        PROVIDER_VERIFICATION_FAILED
    };
    r.dispatch(&hooks, outcome, p, &ctx);
    Ok(())
}
