//! Which fixture set each tenant's runs read: the hand-written one under `--fixtures DIR`
//! when it feeds the tenant, else one generated from the tenant's bundle
//! ([`crate::source::generate`]) and written under `--fixtures-out DIR` so it can be read,
//! and replayed with `--fixtures`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::gate::{GateError, GateOptions};
use crate::contract::{Bundle, TenantRef};
use crate::sim::{Scenario, Seed, Timestamp};
use crate::source::generate::{self, SetKind};
use crate::source::SourceSet;

/// Where generated sets go when `--fixtures-out` is not given (beside the store).
pub const DEFAULT_OUT: &str = ".syncgate/fixtures";

/// One tenant's fixture sets, by name: where each was read from and its records.
#[derive(Clone, Debug, Default)]
pub struct TenantFixtures {
    pub sets: BTreeMap<String, std::sync::Arc<SourceSet>>,
    pub dirs: BTreeMap<String, PathBuf>,
    /// Names of the sets generated for this tenant.
    pub generated: Vec<String>,
}

/// How to find or make the sets.
#[derive(Clone, Debug)]
pub struct FixtureOptions<'a> {
    pub fixtures: &'a Path,
    pub out: &'a Path,
    pub seed: Seed,
    pub records: usize,
}

/// Whether `dir` holds a file for one of `bundle`'s source entities.
/// Whether a hand-written set in `dir` feeds `bundle` (one of its files is a source the
/// bundle reads); otherwise the gate generates the set for the tenant.
pub fn feeds(dir: &Path, bundle: &Bundle) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let p = e.path();
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        p.extension().is_some_and(|x| x == "jsonl" || x == "csv")
            && bundle
                .objects
                .values()
                .any(|o| Some(&o.source) == stem.as_ref())
    })
}

/// The external IDs the scenarios' manual edits name, per object.
fn named_ids(scenarios: &[Scenario]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in scenarios {
        for e in &s.manual_edits {
            let ids = out.entry(e.object.clone()).or_default();
            if !ids.contains(&e.external_id) {
                ids.push(e.external_id.clone());
            }
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    out
}

/// Every set the `planned` scenarios read, for one tenant: hand-written where `--fixtures`
/// has it for this tenant, generated otherwise (unknown set names cannot be generated: exit
/// 2). What is generated depends on the whole `library` (the records its manual edits name,
/// the starts), not on which of its scenarios run, so one run replays with the same files.
pub fn resolve(
    bundle: &Bundle,
    library: &[Scenario],
    planned: &[&Scenario],
    opts: &FixtureOptions<'_>,
) -> Result<TenantFixtures, GateError> {
    let mut out = TenantFixtures::default();
    let named = named_ids(library);
    for s in planned {
        for name in s.fixture_sets() {
            if out.sets.contains_key(name) {
                continue;
            }
            let hand = opts.fixtures.join(name);
            if feeds(&hand, bundle) {
                out.sets
                    .insert(name.to_string(), SourceSet::load_dir(&hand)?.into());
                out.dirs.insert(name.to_string(), hand);
                continue;
            }
            let kind = SetKind::from_name(name).ok_or_else(|| {
                GateError::Usage(format!(
                    "{}: fixture set `{name}` is not in {} (no file there feeds {}/{}), and only these sets can be generated from a bundle: {}",
                    s.path.display(),
                    opts.fixtures.display(),
                    bundle.partner,
                    bundle.tenant,
                    SetKind::names()
                ))
            })?;
            let dir = opts
                .out
                .join(&bundle.partner)
                .join(&bundle.tenant)
                .join(name);
            let gen_opts = generate::Options {
                seed: opts.seed,
                records: opts.records,
                start: earliest_start(library, name),
                named: named.clone(),
            };
            let set = generate::generate(bundle, kind, &gen_opts);
            set.write_to(&dir, bundle, &gen_opts).map_err(|e| {
                GateError::Usage(format!(
                    "cannot write the generated fixture set to {}: {e} (choose another place with --fixtures-out DIR)",
                    dir.display()
                ))
            })?;
            out.sets
                .insert(name.to_string(), SourceSet::load_dir(&dir)?.into());
            out.dirs.insert(name.to_string(), dir);
            out.generated.push(name.to_string());
        }
    }
    Ok(out)
}

/// The fixture sets of a gate's planned `(tenant, scenario)` runs, per tenant (indexes
/// into `bundles` and `scenarios`); generation draws on the whole `library`.
pub fn resolve_plan(
    bundles: &[(TenantRef, Bundle)],
    library: &[Scenario],
    scenarios: &[Scenario],
    plan: &[(usize, usize)],
    opts: &GateOptions,
) -> Result<Vec<TenantFixtures>, GateError> {
    let fixture_opts = FixtureOptions {
        fixtures: &opts.fixtures,
        out: &opts.fixtures_out,
        seed: opts.seed,
        records: opts.records,
    };
    (0..bundles.len())
        .map(|t| {
            let planned: Vec<&Scenario> = plan
                .iter()
                .filter(|(pt, _)| *pt == t)
                .map(|&(_, s)| &scenarios[s])
                .collect();
            resolve(&bundles[t].1, library, &planned, &fixture_opts)
        })
        .collect()
}

/// The generated sets, as `partner/tenant set → directory`, for reports.
pub fn listing(bundles: &[(TenantRef, Bundle)], fixtures: &[TenantFixtures]) -> Vec<String> {
    bundles
        .iter()
        .zip(fixtures)
        .flat_map(|((_, b), f)| {
            f.generated.iter().map(move |set| {
                format!(
                    "{}/{} {set} → {}",
                    b.partner,
                    b.tenant,
                    f.dirs[set].display()
                )
            })
        })
        .collect()
}

/// The earliest start of the scenarios reading `set` (second-day changes are stamped after it).
fn earliest_start(scenarios: &[Scenario], set: &str) -> Timestamp {
    scenarios
        .iter()
        .filter(|s| s.fixture_sets().contains(&set))
        .map(|s| s.start)
        .min()
        .unwrap_or_else(|| {
            Timestamp::parse(crate::sim::scenario::DEFAULT_START).expect("default start parses")
        })
}
