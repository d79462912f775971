//! Gate reports: the terminal summary and JUnit XML. Both are deterministic for a seed:
//! they show virtual time only, never wall time, ports or tokens.

use std::fmt::Write as _;

use super::gate::{GateReport, RunResult, TenantResult};
use crate::sim::time::format_duration;

/// Terminal styling: ANSI colors on a TTY unless `NO_COLOR` is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn pass(&self, s: &str) -> String {
        self.paint("1;32", s)
    }
    fn fail(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// The human summary printed by `syncgate gate`.
pub fn terminal(report: &GateReport, style: Style) -> String {
    let mut out = String::new();
    let runs = report.run_count();
    let _ = writeln!(
        out,
        "syncgate gate: {} tenant(s) x {} scenario(s) = {runs} runs, seed {}",
        report.tenants.len(),
        report.scenarios.len(),
        report.seed
    );
    let _ = writeln!(
        out,
        "engine configuration: {} {}",
        report.engine_config_source,
        style.dim(&short(&report.engine_config_hash))
    );
    for t in &report.tenants {
        out.push('\n');
        let verdict = if t.passed() {
            style.pass("PASS")
        } else {
            style.fail("FAIL")
        };
        let passed = t.runs.iter().filter(|r| r.passed()).count();
        let _ = writeln!(
            out,
            "{verdict} {}  bundle {} {}  {passed}/{} scenarios",
            t.label(),
            t.bundle_version,
            style.dim(&short(&t.bundle_hash)),
            t.runs.len()
        );
        if let Some(c) = &t.contract {
            let mark = if !c.checked() {
                style.dim("--  ")
            } else if c.passed() {
                style.pass("ok  ")
            } else {
                style.fail("FAIL")
            };
            let _ = writeln!(
                out,
                "  {mark} {:<28} {}",
                "contract-check",
                style.dim(&c.summary())
            );
            for ch in c.changes.iter().filter(|c| c.breaking) {
                let _ = writeln!(
                    out,
                    "       {} {} {}: {}",
                    style.fail("x"),
                    ch.rule,
                    ch.at,
                    ch.reason
                );
            }
        }
        if let Some(p) = &t.pacts {
            let mark = if !p.checked() {
                style.dim("--  ")
            } else if p.passed() {
                style.pass("ok  ")
            } else {
                style.fail("FAIL")
            };
            let passed = p.interactions.iter().filter(|i| i.passed).count();
            let what = match &p.not_checked {
                Some(why) => why.clone(),
                None => format!(
                    "{passed}/{} interactions, verified against the {}",
                    p.interactions.len(),
                    p.provider
                ),
            };
            let _ = writeln!(
                out,
                "  {mark} {:<28} {}",
                "pact-verification",
                style.dim(&what)
            );
            if let Some(e) = &p.error {
                let _ = writeln!(out, "       {} {e}", style.fail("x"));
            }
            for i in p.interactions.iter().filter(|i| !i.passed) {
                let _ = writeln!(out, "       {} {}", style.fail("x"), i.description);
                for m in &i.mismatches {
                    let _ = writeln!(out, "         {m}");
                }
            }
        }
        for r in &t.runs {
            let mark = if r.passed() {
                style.pass("ok  ")
            } else {
                style.fail("FAIL")
            };
            let _ = writeln!(
                out,
                "  {mark} {:<28} {}",
                r.scenario,
                style.dim(&run_stats(r))
            );
            for v in &r.violations {
                let _ = writeln!(out, "       {} {}", style.fail("x"), v.invariant);
                for d in &v.details {
                    let _ = writeln!(out, "         {d}");
                }
            }
            for u in &r.not_checked {
                let _ = writeln!(
                    out,
                    "       {} {} {}: {}",
                    style.dim("?"),
                    u.invariant,
                    u.state,
                    u.reason
                );
            }
            if !r.passed() {
                let _ = writeln!(out, "       reproduce: {}", reproduce(report, t, r));
            }
        }
    }
    let failed: Vec<String> = report
        .tenants
        .iter()
        .filter(|t| !t.passed())
        .map(TenantResult::label)
        .collect();
    out.push('\n');
    if failed.is_empty() {
        let _ = writeln!(
            out,
            "{} all {} tenant(s) passed every scenario",
            style.pass("PASS"),
            report.tenants.len()
        );
    } else {
        let _ = writeln!(
            out,
            "{} {} of {} tenant(s) failed: {}",
            style.fail("FAIL"),
            failed.len(),
            report.tenants.len(),
            failed.join(", ")
        );
    }
    out
}

fn short(hash: &str) -> String {
    hash.strip_prefix("sha256:")
        .map(|h| format!("sha256:{}", &h[..12.min(h.len())]))
        .unwrap_or_else(|| hash.to_string())
}

fn run_stats(r: &RunResult) -> String {
    let s = &r.report;
    let mut parts = vec![format!(
        "{} records: {} created, {} updated, {} dead-lettered",
        s.records, s.created, s.updated, s.dead_lettered
    )];
    parts.push(format!("{} requests ({} faulted)", r.requests, r.faults));
    if s.retries > 0 {
        parts.push(format!("{} retries", s.retries));
    }
    parts.push(format!(
        "{} virtual",
        format_duration(std::time::Duration::from_secs(r.virtual_secs))
    ));
    parts.join(", ")
}

/// The command that re-runs exactly this run and prints its timeline.
pub fn reproduce(report: &GateReport, t: &TenantResult, r: &RunResult) -> String {
    let mut dir = if report.scenarios_dir.is_empty() || report.scenarios_dir == DEFAULT_SCENARIOS {
        String::new()
    } else {
        format!(" --scenarios {}", report.scenarios_dir)
    };
    // Generated fixtures are made again, byte for byte, from the seed and the record count.
    if !report.generated_fixtures.is_empty()
        && report.records != crate::source::generate::DEFAULT_RECORDS
    {
        dir.push_str(&format!(" --records {}", report.records));
    }
    let mut engine = String::new();
    if report.engine_config_source != "defaults" {
        let path = shell_words::quote(&report.engine_config_source);
        engine.push_str(&format!(" --engine-config {path}"));
    }
    if let Some(cmd) = &report.engine_cmd {
        engine.push_str(&format!(" --engine-cmd {}", shell_words::quote(cmd)));
    }
    format!(
        "syncgate replay {}{dir} --partner {} --tenant {} --seed {}{engine}",
        r.scenario, t.partner, t.tenant, report.seed
    )
}

const DEFAULT_SCENARIOS: &str = "harness/scenarios";

/// The JSON report (`--json`), format version 1, documented in `docs/report.md`.
pub fn json(report: &GateReport) -> String {
    let tenants: Vec<serde_json::Value> = report
        .tenants
        .iter()
        .map(|t| {
            let runs: Vec<serde_json::Value> = t
                .runs
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "scenario": r.scenario,
                        "purpose": r.purpose,
                        "passed": r.passed(),
                        "violations": r.violations,
                        "not_checked": r.not_checked,
                        "records": r.report.records,
                        "created": r.report.created,
                        "updated": r.report.updated,
                        "dead_lettered": r.report.dead_lettered,
                        "retries": r.report.retries,
                        "api_calls": r.report.api_calls,
                        "unmapped_columns": r.report.unmapped_columns,
                        "requests": r.requests,
                        "faults": r.faults,
                        "virtual_seconds": r.virtual_secs,
                        "metrics": r.metrics,
                        "reproduce": if r.passed() { serde_json::Value::Null } else { reproduce(report, t, r).into() },
                    })
                })
                .collect();
            serde_json::json!({
                "partner": t.partner,
                "tenant": t.tenant,
                "bundle_version": t.bundle_version,
                "bundle_hash": t.bundle_hash,
                "passed": t.passed(),
                "pacts": t.pacts,
                "contract": t.contract,
                "runs": runs,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "format_version": 1,
        "tool": "syncgate",
        "engine_version": env!("CARGO_PKG_VERSION"),
        "engine_config_hash": report.engine_config_hash,
        "engine_config_source": report.engine_config_source,
        "passed": report.passed(),
        "seed": report.seed,
        "shard": report.shard,
        "scenarios": report.scenarios,
        "generated_fixtures": report.generated_fixtures,
        "records": report.records,
        "tenants": tenants,
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("report serializes");
    out.push('\n');
    out
}

/// A Markdown summary (`--markdown`), e.g. for `$GITHUB_STEP_SUMMARY`.
pub fn markdown(report: &GateReport) -> String {
    let mut out = String::new();
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "## syncgate gate: {verdict}\n");
    let runs = report.run_count();
    let _ = write!(
        out,
        "{} tenant(s), {} scenario(s), {runs} runs, seed `{}`",
        report.tenants.len(),
        report.scenarios.len(),
        report.seed
    );
    if let Some(shard) = &report.shard {
        let _ = write!(out, ", shard {shard}");
    }
    let _ = write!(
        out,
        ", engine configuration {} `{}`",
        md(&report.engine_config_source),
        report.engine_config_hash
    );
    out.push_str("\n\n| tenant | bundle | verdict | scenarios passed |\n|---|---|---|---|\n");
    for t in &report.tenants {
        let passed = t.runs.iter().filter(|r| r.passed()).count();
        let _ = writeln!(
            out,
            "| {} | {} `{}` | {} | {passed}/{} |",
            md(&t.label()),
            md(&t.bundle_version),
            short(&t.bundle_hash),
            if t.passed() { "pass" } else { "**FAIL**" },
            t.runs.len()
        );
    }
    // The contract check of every tenant, run or not: a check that did not run says so.
    if report.tenants.iter().any(|t| t.contract.is_some()) {
        out.push('\n');
        for t in &report.tenants {
            if let Some(c) = &t.contract {
                let verdict = if !c.checked() {
                    String::new()
                } else if c.passed() {
                    "pass, ".to_string()
                } else {
                    "**FAIL**, ".to_string()
                };
                let _ = writeln!(
                    out,
                    "- {} contract-check: {verdict}{}",
                    md(&t.label()),
                    md(&c.summary())
                );
            }
        }
    }
    let failures: Vec<(&TenantResult, &RunResult)> = report
        .tenants
        .iter()
        .flat_map(|t| t.runs.iter().filter(|r| !r.passed()).map(move |r| (t, r)))
        .collect();
    let pact_failures: Vec<&TenantResult> = report
        .tenants
        .iter()
        .filter(|t| t.pacts.as_ref().is_some_and(|p| !p.passed()))
        .collect();
    let contract_failed = report
        .tenants
        .iter()
        .any(|t| t.contract.as_ref().is_some_and(|c| !c.passed()));
    if !failures.is_empty() || !pact_failures.is_empty() || contract_failed {
        out.push_str("\n### Failures\n");
        for t in report
            .tenants
            .iter()
            .filter(|t| t.contract.as_ref().is_some_and(|c| !c.passed()))
        {
            let c = t.contract.as_ref().expect("filtered on contract");
            let _ = writeln!(
                out,
                "\n#### {} · contract check: {}\n",
                md(&t.label()),
                md(&c.summary())
            );
            for ch in c.changes.iter().filter(|c| c.breaking) {
                let _ = writeln!(
                    out,
                    "- **{}** `{}`: {}",
                    md(&ch.rule),
                    ch.at,
                    md(&ch.reason)
                );
            }
        }
        for t in pact_failures {
            let p = t.pacts.as_ref().expect("filtered on pacts");
            let _ = writeln!(
                out,
                "\n#### {} · pact verification against the {}\n",
                md(&t.label()),
                md(&p.provider)
            );
            if let Some(e) = &p.error {
                let _ = writeln!(out, "- {}", md(e));
            }
            for i in p.interactions.iter().filter(|i| !i.passed) {
                let _ = writeln!(out, "- **{}**", md(&i.description));
                for m in &i.mismatches {
                    let _ = writeln!(out, "  - {}", md(m));
                }
            }
        }
        for (t, r) in failures {
            let _ = writeln!(
                out,
                "\n#### {} · {}\n\n{}\n",
                md(&t.label()),
                md(&r.scenario),
                md(&r.purpose)
            );
            for v in &r.violations {
                let _ = writeln!(out, "- **{}**", v.invariant);
                for d in &v.details {
                    let _ = writeln!(out, "  - {}", md(d));
                }
            }
            let _ = writeln!(out, "\nReproduce: `{}`", reproduce(report, t, r));
        }
    }
    out
}

/// Escapes what Markdown tables and emphasis would swallow.
fn md(s: &str) -> String {
    // GitHub's Markdown ignores intraword underscores (`Ext__c`), so only table pipes and
    // asterisks need escaping.
    s.replace('|', "\\|").replace('*', "\\*")
}

/// JUnit XML: one suite per tenant, one case per scenario; failures list the broken invariants.
pub fn junit(report: &GateReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let cases = |t: &TenantResult| {
        t.runs.len() + usize::from(t.pacts.is_some()) + usize::from(t.contract.is_some())
    };
    let failed_cases = |t: &TenantResult| {
        t.runs.iter().filter(|r| !r.passed()).count()
            + usize::from(t.pacts.as_ref().is_some_and(|p| !p.passed()))
            + usize::from(t.contract.as_ref().is_some_and(|c| !c.passed()))
    };
    let total: usize = report.tenants.iter().map(cases).sum();
    let failures: usize = report.tenants.iter().map(failed_cases).sum();
    let _ = writeln!(out, "<testsuites name=\"syncgate gate\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\">");
    for t in &report.tenants {
        let f = failed_cases(t);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"{}\">",
            xml(&t.label()),
            cases(t),
            usize::from(t.contract.as_ref().is_some_and(|c| !c.checked()))
                + usize::from(t.pacts.as_ref().is_some_and(|p| !p.checked()))
        );
        let _ = writeln!(out, "    <properties>");
        let _ = writeln!(
            out,
            "      <property name=\"bundle.version\" value=\"{}\"/>",
            xml(&t.bundle_version)
        );
        let _ = writeln!(
            out,
            "      <property name=\"bundle.hash\" value=\"{}\"/>",
            xml(&t.bundle_hash)
        );
        let _ = writeln!(
            out,
            "      <property name=\"seed\" value=\"{}\"/>",
            report.seed
        );
        let _ = writeln!(
            out,
            "      <property name=\"engine.config.hash\" value=\"{}\"/>",
            xml(&report.engine_config_hash)
        );
        let _ = writeln!(out, "    </properties>");
        if let Some(c) = &t.contract {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"contract-check\"",
                xml(&t.label())
            );
            if !c.checked() {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(&c.summary())
                );
            } else if c.passed() {
                out.push_str("/>\n");
            } else {
                let mut body = String::new();
                for ch in c.changes.iter().filter(|c| c.breaking) {
                    let _ = writeln!(body, "{} {}: {}", ch.rule, ch.at, ch.reason);
                }
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"contract\" message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&c.summary()),
                    xml(&body)
                );
            }
        }
        if let Some(p) = &t.pacts {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"pact-verification\"",
                xml(&t.label())
            );
            if let Some(why) = &p.not_checked {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml(why)
                );
            } else if p.passed() {
                out.push_str("/>\n");
            } else {
                let mut body = String::new();
                if let Some(e) = &p.error {
                    let _ = writeln!(body, "{e}");
                }
                for i in p.interactions.iter().filter(|i| !i.passed) {
                    let _ = writeln!(body, "{}:", i.description);
                    for m in &i.mismatches {
                        let _ = writeln!(body, "  {m}");
                    }
                }
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"pact\" message=\"the {} does not honour the bundle's pacts\">{}</failure>\n    </testcase>",
                    xml(&p.provider),
                    xml(&body)
                );
            }
        }
        for r in &t.runs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&t.label()),
                xml(&r.scenario)
            );
            if r.passed() && r.not_checked.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if !r.not_checked.is_empty() {
                let lines: Vec<String> = r
                    .not_checked
                    .iter()
                    .map(|u| format!("{} {}: {}", u.invariant, u.state, u.reason))
                    .collect();
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    xml(&lines.join("\n"))
                );
            }
            if r.passed() {
                out.push_str("    </testcase>\n");
                continue;
            }
            let names: Vec<&str> = r.violations.iter().map(|v| v.invariant).collect();
            let mut body = String::new();
            for v in &r.violations {
                let _ = writeln!(body, "{}:", v.invariant);
                for d in &v.details {
                    let _ = writeln!(body, "  {d}");
                }
            }
            let _ = writeln!(body, "reproduce: {}", reproduce(report, t, r));
            let _ = writeln!(
                out,
                "      <failure type=\"invariant\" message=\"broken: {}\">{}</failure>",
                xml(&names.join(", ")),
                xml(&body)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}
