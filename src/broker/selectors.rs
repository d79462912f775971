//! "Pacts for verification": which pacts a provider should verify, from consumer version
//! selectors, and whether each is pending.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::store::{BrokerStore, PactPublication, StoreError};

/// The body a verifier posts to `for-verification`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForVerification {
    pub consumer_version_selectors: Vec<Selector>,
    pub provider_version_branch: Option<String>,
    pub provider_version_tags: Vec<String>,
    pub include_pending_status: bool,
    pub include_wip_pacts_since: Option<String>,
}

/// One consumer version selector (the fields the Pact Broker documents).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Selector {
    pub main_branch: Option<bool>,
    pub branch: Option<String>,
    pub matching_branch: Option<bool>,
    pub fallback_branch: Option<String>,
    pub deployed: Option<bool>,
    pub released: Option<bool>,
    pub deployed_or_released: Option<bool>,
    pub environment: Option<String>,
    pub tag: Option<String>,
    pub fallback_tag: Option<String>,
    pub latest: Option<bool>,
    pub consumer: Option<String>,
}

/// A pact chosen for verification.
#[derive(Debug, Clone)]
pub struct Selected {
    pub publication: PactPublication,
    /// Why it was chosen (one per selector that matched it).
    pub descriptions: Vec<String>,
    /// Whether it is the latest pact of its consumer (links then name no version).
    pub is_latest: bool,
    /// Never verified successfully by this provider (on its branch, when one is given).
    pub pending: bool,
    /// Work in progress: not chosen by a selector, included by `includeWipPactsSince`.
    pub wip: bool,
}

/// Consumer branches counted as the main branch (the registry does not track a main branch
/// per pacticipant).
pub const MAIN_BRANCHES: [&str; 2] = ["main", "master"];

/// Applies the selectors to the provider's pacts.
pub async fn select(
    store: &dyn BrokerStore,
    provider: &str,
    req: &ForVerification,
) -> Result<Vec<Selected>, StoreError> {
    let pubs = store.pacts(Some(provider), None).await?;
    let latest: BTreeSet<(String, String)> = super::latest_per_consumer(&pubs)
        .into_iter()
        .map(|p| (p.consumer.clone(), p.sha.clone()))
        .collect();
    let mut chosen: Vec<(usize, String)> = Vec::new();
    let latest_index = |candidates: &[usize]| -> Vec<usize> {
        let indexed: Vec<(usize, &PactPublication)> =
            candidates.iter().map(|&i| (i, &pubs[i])).collect();
        super::order::latest_per(
            &indexed,
            |(_, p)| p.consumer.clone(),
            |(_, p)| &p.consumer_version,
        )
        .into_iter()
        .map(|(i, _)| *i)
        .collect()
    };
    let all: Vec<usize> = (0..pubs.len()).collect();
    if req.consumer_version_selectors.is_empty() {
        for i in latest_index(&all) {
            chosen.push((i, "latest".into()));
        }
    }
    let deployments = store.pacticipant_deployments(None, None).await?;
    for s in &req.consumer_version_selectors {
        let of_consumer: Vec<usize> = all
            .iter()
            .copied()
            .filter(|&i| s.consumer.as_deref().is_none_or(|c| pubs[i].consumer == c))
            .collect();
        let wants_deployed = s.deployed == Some(true)
            || s.released == Some(true)
            || s.deployed_or_released == Some(true)
            || s.environment.is_some();
        let (hits, description): (Vec<usize>, String) = if wants_deployed {
            let live: BTreeSet<(&str, &str)> = deployments
                .iter()
                .filter(|d| d.undeployed_at.is_none())
                .filter(|d| s.environment.as_deref().is_none_or(|e| d.environment == e))
                .map(|d| (d.pacticipant.as_str(), d.version.as_str()))
                .collect();
            let hits = of_consumer
                .iter()
                .copied()
                .filter(|&i| {
                    live.contains(&(pubs[i].consumer.as_str(), pubs[i].consumer_version.as_str()))
                })
                .collect();
            let d = match &s.environment {
                Some(e) => format!("currently deployed to {e}"),
                None => "currently deployed".into(),
            };
            (hits, d)
        } else if s.branch.is_some()
            || s.main_branch == Some(true)
            || s.matching_branch == Some(true)
        {
            let wanted: Vec<String> = if let Some(b) = &s.branch {
                vec![b.clone()]
            } else if s.matching_branch == Some(true) {
                req.provider_version_branch.iter().cloned().collect()
            } else {
                MAIN_BRANCHES.iter().map(|b| b.to_string()).collect()
            };
            let on = |branches: &[String]| -> Vec<usize> {
                of_consumer
                    .iter()
                    .copied()
                    .filter(|&i| {
                        pubs[i]
                            .branch
                            .as_ref()
                            .is_some_and(|b| branches.contains(b))
                    })
                    .collect()
            };
            let mut hits = on(&wanted);
            let mut label = wanted.first().cloned().unwrap_or_default();
            if hits.is_empty() {
                if let Some(f) = &s.fallback_branch {
                    hits = on(std::slice::from_ref(f));
                    label = f.clone();
                }
            }
            if s.latest != Some(false) {
                hits = latest_index(&hits);
            }
            let d = if s.main_branch == Some(true) {
                format!("latest from main branch ({label})")
            } else {
                format!("latest from branch {label}")
            };
            (hits, d)
        } else if let Some(tag) = &s.tag {
            let with = |t: &str| -> Vec<usize> {
                of_consumer
                    .iter()
                    .copied()
                    .filter(|&i| pubs[i].tags.iter().any(|x| x == t))
                    .collect()
            };
            let mut hits = with(tag);
            let mut label = tag.clone();
            if hits.is_empty() {
                if let Some(f) = &s.fallback_tag {
                    hits = with(f);
                    label = f.clone();
                }
            }
            if s.latest == Some(true) {
                hits = latest_index(&hits);
                (hits, format!("latest with tag {label}"))
            } else {
                (hits, format!("all with tag {label}"))
            }
        } else {
            (latest_index(&of_consumer), "latest".to_string())
        };
        for i in hits {
            chosen.push((i, description.clone()));
        }
    }
    // One entry per pact content and consumer, with every reason it was chosen.
    let mut out: Vec<Selected> = Vec::new();
    let verifications = store.pact_verifications(provider, None).await?;
    let provider_versions = store.pacticipant_versions(provider).await?;
    let is_pending = |p: &PactPublication| {
        !verifications.iter().any(|v| {
            v.success
                && v.consumer == p.consumer
                && v.pact_sha == p.sha
                && req.provider_version_branch.as_ref().is_none_or(|b| {
                    provider_versions
                        .iter()
                        .any(|pv| pv.version == v.provider_version && pv.branch.as_ref() == Some(b))
                })
        })
    };
    for (i, description) in chosen {
        let p = &pubs[i];
        if let Some(existing) = out
            .iter_mut()
            .find(|s| s.publication.consumer == p.consumer && s.publication.sha == p.sha)
        {
            if !existing.descriptions.contains(&description) {
                existing.descriptions.push(description);
            }
            continue;
        }
        out.push(Selected {
            publication: p.clone(),
            descriptions: vec![description],
            is_latest: latest.contains(&(p.consumer.clone(), p.sha.clone())),
            pending: is_pending(p),
            wip: false,
        });
    }
    // WIP: the latest pact of each consumer branch that no selector chose, still pending,
    // published since the given date.
    let since = req
        .include_wip_pacts_since
        .as_deref()
        .and_then(crate::sim::Timestamp::parse);
    if let (Some(since), true) = (since, req.include_pending_status) {
        let heads = super::order::latest_per(
            pubs.iter().filter(|p| p.branch.is_some()),
            |p| (p.consumer.clone(), p.branch.clone()),
            |p| &p.consumer_version,
        );
        for p in heads {
            let taken = out
                .iter()
                .any(|s| s.publication.consumer == p.consumer && s.publication.sha == p.sha);
            if !taken && p.published_at >= since && is_pending(p) {
                out.push(Selected {
                    publication: p.clone(),
                    descriptions: vec![format!(
                        "work in progress (latest from branch {})",
                        p.branch.as_deref().unwrap_or_default()
                    )],
                    is_latest: latest.contains(&(p.consumer.clone(), p.sha.clone())),
                    pending: true,
                    wip: true,
                });
            }
        }
    }
    Ok(out)
}
