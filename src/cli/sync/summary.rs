//! What `syncgate sync` prints when it ends: the run summary, as text or JSON.

use super::super::{print_json, CliError};
use crate::engine::runner::RunSummary;

/// The summary on stdout: JSON with `json`, else text naming `tenant` and `target`.
pub(super) fn print(
    summary: &RunSummary,
    json: bool,
    tenant: &str,
    target: &str,
) -> Result<(), CliError> {
    if json {
        print_json(summary)
    } else {
        print_text(summary, tenant, target);
        Ok(())
    }
}

fn print_text(summary: &RunSummary, tenant: &str, target: &str) {
    let report = &summary.report;
    println!(
        "synced {tenant} into {target}{}",
        if summary.interrupted {
            " (stopped early: the rest resumes on the next start)"
        } else {
            ""
        }
    );
    println!("  records:        {}", report.records);
    println!("  created:        {}", report.created);
    println!("  updated:        {}", report.updated);
    println!(
        "  already synced: {} (same version applied before)",
        report.already_synced
    );
    println!(
        "  dead-lettered:  {}{}",
        report.dead_lettered,
        if report.dead_lettered > 0 {
            " (see `syncgate dlq list`)"
        } else {
            ""
        }
    );
    if report.already_dead_lettered > 0 {
        println!(
            "  still rejected: {} (versions Salesforce refused before; `syncgate dlq redrive` sends them)",
            report.already_dead_lettered
        );
    }
    println!("  retries:        {}", report.retries);
    match report.api_usage {
        Some(u) => println!(
            "  API calls:      {} (org budget now {}/{} today)",
            report.api_calls, u.used, u.max
        ),
        None => println!("  API calls:      {}", report.api_calls),
    }
    if report.rejected_before_sending > 0 {
        println!(
            "  rejected:       {} before sending (the bundle rejects them; in the dead-letter queue, no API call spent)",
            report.rejected_before_sending
        );
    }
    if report.deleted > 0 {
        println!("  deleted:        {} (hard_delete policy)", report.deleted);
    }
    for (entity, routed) in &report.routed_columns {
        let pairs: Vec<String> = routed.iter().map(|(c, f)| format!("{c} -> {f}")).collect();
        println!(
            "  new columns:    {entity}: {} (routed to same-named fields)",
            pairs.join(", ")
        );
    }
    for (entity, cols) in &report.unmapped_columns {
        println!(
            "  unmapped:       {entity}: {} (no field of the bundle reads them)",
            cols.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if !report.conflicts.is_empty() {
        println!(
            "  conflicts:      {} field value(s) kept as Salesforce has them (edited there after the source's change):",
            report.conflicts.len()
        );
        for c in report.conflicts.iter().take(10) {
            println!(
                "                  {} {}.{}: kept {}, source wanted {} (Salesforce {} by {}, source {})",
                c.object, c.source_id, c.field, c.crm_value, c.source_value,
                c.crm_modified_at, c.crm_modified_by, c.source_changed_at
            );
        }
        if report.conflicts.len() > 10 {
            println!(
                "                  … and {} more (`--json` lists them all)",
                report.conflicts.len() - 10
            );
        }
    }
    if let Some(c) = &summary.crm_changes {
        println!(
            "  CRM changes:    {} delivered to the source ({} events, {} duplicates and {} own echoes skipped, {} gaps re-read, {} re-syncs)",
            c.changes_delivered, c.events_seen, c.duplicates_skipped, c.echoes_skipped, c.gaps_reread, c.resyncs
        );
    }
    if let Some(w) = &summary.shared {
        println!(
            "  shared work:    {} batch(es) sent by this process, {} taken over by another",
            w.completed.len(),
            w.lost.len()
        );
    }
}
