//! `syncgate contracts pull` (a new bundle from a live org's describe metadata) and
//! `syncgate contracts check-org` (has the live org drifted from the bundle?), signing in
//! as `syncgate sync` does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use serde::Serialize;

use super::sync::{check_target_url, read_ca_file};
use super::{error, exit, runtime};
use crate::contract::describe::{self, DescribedObject};
use crate::contract::diff::{diff, Change, Impact};
use crate::contract::pull::{self, PullInput};
use crate::contract::{Bundle, Limits};
use crate::engine::client::{Credentials, SalesforceClient, Secret};
use crate::sim::Clock;

/// Where and how to sign in: the flags and variables `syncgate sync` uses.
#[derive(Debug, Args)]
pub struct OrgLogin {
    /// The org's login URL (e.g. `https://login.salesforce.com`, or a `syncgate mock serve` URL).
    #[arg(long, value_name = "URL")]
    pub org: String,
    #[command(flatten)]
    pub client: super::sync::ClientArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub login: OrgLogin,
    /// The objects to pull, comma-separated (e.g. `Account,Contact`); lookups between them
    /// become references.
    #[arg(long, value_delimiter = ',', required = true, value_name = "OBJECTS")]
    pub objects: Vec<String>,
    /// The new tenant, `partner/tenant`: written to `<contracts>/<partner>/<tenant>/bundle.toml`.
    #[arg(value_name = "PARTNER/TENANT")]
    pub tenant: String,
    /// The registry directory to write into.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// The REST API version to read describe with (and to write into the bundle).
    #[arg(long, default_value = "62.0", value_name = "VERSION")]
    pub api_version: String,
    /// The external ID of an object with several (or to pick one), `Object.Field` (repeatable).
    #[arg(long, value_name = "OBJECT.FIELD")]
    pub external_id: Vec<String>,
    /// Overwrite an existing bundle.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckOrgArgs {
    #[command(flatten)]
    pub login: OrgLogin,
    /// The tenant: `partner/tenant` under --contracts, or a tenant directory.
    #[arg(value_name = "PARTNER/TENANT|DIR")]
    pub tenant: String,
    /// The registry `partner/tenant` is looked up in.
    #[arg(long, default_value = "contracts", value_name = "DIR")]
    pub contracts: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A failed step: exit code and message.
struct Stop(i32, String);

async fn connect(login: &OrgLogin, api_version: &str) -> Result<SalesforceClient, Stop> {
    if let Err(why) = check_target_url(&login.org) {
        return Err(Stop(
            exit::BAD_INPUT,
            format!("--org `{}`: {why}", login.org),
        ));
    }
    let mut client = SalesforceClient::new(
        &login.org,
        api_version,
        Credentials {
            client_id: login.client.client_id.clone(),
            client_secret: Secret::new(login.client.client_secret.clone()),
        },
        Clock::system(),
        "syncgate",
        "describe",
    );
    if let Some(path) = &login.client.ca_file {
        let pem = read_ca_file(path).map_err(|why| {
            Stop(
                exit::BAD_INPUT,
                format!("--ca-file {}: {why}", path.display()),
            )
        })?;
        client
            .trust_ca(&pem)
            .map_err(|e| Stop(exit::BAD_INPUT, e.to_string()))?;
    }
    client
        .authenticate()
        .await
        .map_err(|e| Stop(exit::INTERNAL, e.to_string()))?;
    Ok(client)
}

/// One object's describe, or `None` when the org has no such object.
async fn describe_object(
    client: &mut SalesforceClient,
    object: &str,
) -> Result<Option<DescribedObject>, Stop> {
    match client
        .call(Method::GET, &format!("sobjects/{object}/describe"), None)
        .await
    {
        Ok(reply) => describe::parse(object, &reply.body)
            .map(Some)
            .map_err(|e| Stop(exit::INTERNAL, e)),
        Err(f) if f.status == Some(404) => Ok(None),
        Err(f) => Err(Stop(
            exit::INTERNAL,
            format!(
                "describe {object}: HTTP {} {} {}",
                f.status.map_or("-".to_string(), |s| s.to_string()),
                f.code,
                f.message
            ),
        )),
    }
}

/// The org's limits, or `None` when `/limits` does not answer.
async fn org_limits(client: &mut SalesforceClient, fallback: &Limits) -> Option<Limits> {
    let reply = client.call(Method::GET, "limits", None).await.ok()?;
    Some(describe::limits(&reply.body, fallback))
}

fn finish(result: Result<i32, Stop>) -> i32 {
    match result {
        Ok(code) => code,
        Err(Stop(code, msg)) => {
            error(msg);
            code
        }
    }
}

pub fn pull(args: PullArgs) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    finish(rt.block_on(pull_async(args)))
}

async fn pull_async(args: PullArgs) -> Result<i32, Stop> {
    let bad = |m: String| Stop(exit::BAD_INPUT, m);
    let Some((partner, tenant)) = args
        .tenant
        .split_once('/')
        .filter(|(p, t)| !p.is_empty() && !t.is_empty() && !t.contains('/'))
    else {
        return Err(bad(format!(
            "`{}` is not `partner/tenant` (e.g. acme-corp/sandbox)",
            args.tenant
        )));
    };
    let dir = args.contracts.join(partner).join(tenant);
    let path = dir.join("bundle.toml");
    if path.exists() && !args.force {
        return Err(bad(format!(
            "{} exists: pull writes new bundles (give --force to overwrite it, or use `syncgate contracts check-org` to compare)",
            path.display()
        )));
    }
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for spec in &args.external_id {
        let Some((object, field)) = spec.split_once('.') else {
            return Err(bad(format!(
                "--external-id `{spec}`: write Object.Field (e.g. Account.Account_Key__c)"
            )));
        };
        chosen.insert(object.to_string(), field.to_string());
    }
    let mut objects: Vec<String> = Vec::new();
    for o in args
        .objects
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
    {
        if !objects.iter().any(|x| x == o) {
            objects.push(o.to_string());
        }
    }
    if objects.is_empty() {
        return Err(bad(
            "--objects names no object (e.g. --objects Account,Contact)".into(),
        ));
    }
    let mut client = connect(&args.login, &args.api_version).await?;
    let mut pulled = Vec::new();
    for name in &objects {
        let Some(d) = describe_object(&mut client, name).await? else {
            return Err(bad(format!(
                "the org at {} has no object {name}",
                args.login.org
            )));
        };
        let ext = match chosen.get(name) {
            Some(field) => {
                if !d.external_ids().iter().any(|f| &f.name == field) {
                    return Err(bad(format!(
                        "--external-id {name}.{field}: the org has no writable text external-ID field {field} on {name} (it has: {})",
                        names(&d)
                    )));
                }
                field.clone()
            }
            None => match d.external_ids().as_slice() {
                [one] => one.name.clone(),
                [] => {
                    return Err(bad(format!(
                        "{name} has no writable text external-ID field: the engine upserts by one. Create one in the org (Text, External ID, Unique) and pull again"
                    )))
                }
                _ => {
                    return Err(bad(format!(
                        "{name} has several external-ID fields ({}): pick one with --external-id {name}.FIELD",
                        names(&d)
                    )))
                }
            },
        };
        pulled.push((d, ext));
    }
    let fallback = Limits {
        daily_api_requests: 15_000,
        concurrent_long_running: 25,
        long_running_threshold_secs: 20,
    };
    let from_org = org_limits(&mut client, &fallback).await;
    let (text, counts) = pull::render(&PullInput {
        partner,
        tenant,
        api_version: &args.api_version,
        limits_from_org: from_org.is_some(),
        limits: from_org.unwrap_or(fallback),
        objects: pulled,
        origin: args.login.org.trim_end_matches('/'),
    });
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, &text))
        .map_err(|e| {
            Stop(
                exit::INTERNAL,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    // What was written must load: if not, that is our bug, and the file says where.
    Bundle::load(&dir).map_err(|e| {
        Stop(
            exit::INTERNAL,
            format!("the pulled bundle does not load (a syncgate bug; please report it): {e}"),
        )
    })?;
    println!(
        "wrote {} ({} objects, {} fields{}); {} lines marked MAPPING, POLICY or LIMITS to fill in",
        path.display(),
        counts.objects,
        counts.fields,
        if counts.skipped > 0 {
            format!(", {} not carried, listed in comments", counts.skipped)
        } else {
            String::new()
        },
        counts.marked
    );
    println!(
        "next: fix the marked lines, then `syncgate contracts validate {}` and `syncgate contracts pacts {partner}/{tenant}`",
        dir.display()
    );
    Ok(exit::PASSED)
}

fn names(d: &DescribedObject) -> String {
    let list: Vec<&str> = d.external_ids().iter().map(|f| f.name.as_str()).collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// `check-org`'s verdict.
#[derive(Debug, Serialize)]
struct Drift {
    tenant: String,
    version: String,
    org: String,
    breaking: usize,
    changes: Vec<Change>,
}

pub fn check_org(args: CheckOrgArgs) -> i32 {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    finish(rt.block_on(check_org_async(args)))
}

async fn check_org_async(args: CheckOrgArgs) -> Result<i32, Stop> {
    let as_dir = PathBuf::from(&args.tenant);
    let dir = if as_dir.join("bundle.toml").is_file() {
        as_dir
    } else {
        args.contracts.join(&args.tenant)
    };
    let contract = Bundle::load(&dir).map_err(|e| Stop(exit::BAD_INPUT, e.to_string()))?;
    let mut client = connect(&args.login, &contract.api_version).await?;
    let mut described = BTreeMap::new();
    for name in contract.objects.keys() {
        if let Some(d) = describe_object(&mut client, name).await? {
            described.insert(name.clone(), d);
        }
    }
    let limits = org_limits(&mut client, &contract.limits).await;
    let (org, unreadable) = describe::org_view(&contract, &described, limits.as_ref());
    let mut changes = diff(&contract, &org).changes;
    changes.extend(unreadable.into_iter().map(|u| Change {
        rule: crate::contract::diff::Rule::TypeChanged,
        impact: Impact::Breaking,
        at: u.at,
        reason: u.reason,
    }));
    changes.sort_by(|a, b| (a.impact, &a.at, a.rule).cmp(&(b.impact, &b.at, b.rule)));
    let breaking = changes
        .iter()
        .filter(|c| c.impact == Impact::Breaking)
        .count();
    let drift = Drift {
        tenant: format!("{}/{}", contract.partner, contract.tenant),
        version: contract.version.clone(),
        org: args.login.org.clone(),
        breaking,
        changes,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&drift)
            .map_err(|e| Stop(exit::INTERNAL, e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", explain(&drift));
    }
    Ok(if breaking > 0 {
        exit::FAILED
    } else {
        exit::PASSED
    })
}

fn explain(d: &Drift) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "check-org {} {} against {}",
        d.tenant, d.version, d.org
    );
    if d.changes.is_empty() {
        out.push_str("no drift: the org matches the bundle (types, lengths, required, picklists, lookups, external IDs, limits)\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{} breaking, {} safe",
        d.breaking,
        d.changes.len() - d.breaking
    );
    crate::contract::diff::write_changes(&mut out, &d.changes);
    out
}
