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
    let runs: usize = report.tenants.iter().map(|t| t.runs.len()).sum();
    let _ = writeln!(
        out,
        "syncgate gate: {} tenant(s) x {} scenario(s) = {runs} runs, seed {}",
        report.tenants.len(),
        report.scenarios.len(),
        report.seed
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

/// The command that re-runs exactly this run.
pub fn reproduce(report: &GateReport, t: &TenantResult, r: &RunResult) -> String {
    format!(
        "syncgate gate --partner {} --tenant {} --scenario {} --seed {}",
        t.partner, t.tenant, r.scenario, report.seed
    )
}

/// JUnit XML: one suite per tenant, one case per scenario; failures list the broken invariants.
pub fn junit(report: &GateReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = report.tenants.iter().map(|t| t.runs.len()).sum();
    let failures: usize = report
        .tenants
        .iter()
        .flat_map(|t| &t.runs)
        .filter(|r| !r.passed())
        .count();
    let _ = writeln!(out, "<testsuites name=\"syncgate gate\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\">");
    for t in &report.tenants {
        let f = t.runs.iter().filter(|r| !r.passed()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"0\">",
            xml(&t.label()),
            t.runs.len()
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
        let _ = writeln!(out, "    </properties>");
        for r in &t.runs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&t.label()),
                xml(&r.scenario)
            );
            if r.passed() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
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
