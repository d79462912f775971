//! The replay timeline: every request the org answered (with its bodies on request), every
//! retry, wait and dead letter of the engine, every manual edit of the scenario, and every
//! invariant check, in order, on the virtual clock.

use std::fmt::Write as _;

use serde::Serialize;

use super::gate::RunResult;
use super::invariants::names;
use crate::engine::{EngineEvent, EventKind};
use crate::mock::{EditRecord, JournalEntry};

/// One line of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step<'a> {
    Request(&'a JournalEntry),
    Engine(&'a EngineEvent),
    /// A sales rep's edit from the scenario: saved at `at`, or not saved (`at` absent).
    ManualEdit {
        name: &'a str,
        object: &'a str,
        external_id: &'a str,
        set: &'a serde_json::Map<String, serde_json::Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        at: Option<String>,
        /// `saved`, `not saved` (the record was missing or a rule refused it) or `not made`
        /// (its time never came).
        outcome: &'static str,
    },
    Check {
        invariant: &'static str,
        passed: bool,
        details: &'a [String],
    },
    /// An invariant the run could not judge (`not-checked` / `not-applicable`).
    Unchecked {
        invariant: &'static str,
        state: &'static str,
        reason: &'a str,
    },
}

/// Requests and engine events merged in the order they happened (an engine event comes
/// right after the request it reacted to), then the invariant checks.
pub fn steps(run: &RunResult) -> Vec<Step<'_>> {
    let mut out =
        Vec::with_capacity(run.journal.len() + run.report.events.len() + names::ALL.len());
    let mut events = run.report.events.iter().peekable();
    let mut made: Vec<&EditRecord> = run.edits.iter().filter(|e| e.made).collect();
    made.sort_by_key(|e| e.after_request);
    let mut edits = made.into_iter().peekable();
    for entry in &run.journal {
        while let Some(e) = events.next_if(|e| e.after_request < entry.seq) {
            out.push(Step::Engine(e));
        }
        while let Some(e) = edits.next_if(|e| e.after_request < entry.seq) {
            out.push(edit_step(e));
        }
        out.push(Step::Request(entry));
    }
    out.extend(events.map(Step::Engine));
    out.extend(edits.map(edit_step));
    out.extend(run.edits.iter().filter(|e| !e.made).map(edit_step));
    for invariant in names::ALL {
        let broken = run.violations.iter().find(|v| v.invariant == invariant);
        let unchecked = run.not_checked.iter().find(|u| u.invariant == invariant);
        if let (None, Some(u)) = (broken, unchecked) {
            out.push(Step::Unchecked {
                invariant,
                state: u.state,
                reason: &u.reason,
            });
            continue;
        }
        out.push(Step::Check {
            invariant,
            passed: broken.is_none(),
            details: broken.map(|v| v.details.as_slice()).unwrap_or_default(),
        });
    }
    out
}

fn edit_step(e: &EditRecord) -> Step<'_> {
    Step::ManualEdit {
        name: &e.edit.name,
        object: &e.edit.object,
        external_id: &e.edit.external_id,
        set: &e.edit.set,
        at: e.saved_at.map(|t| t.to_iso()),
        outcome: match (e.made, e.saved_at) {
            (_, Some(_)) => "saved",
            (true, None) => "not saved",
            (false, None) => "not made",
        },
    }
}

/// The timeline for a terminal, one line per step.
pub fn render(run: &RunResult) -> String {
    render_with(run, false)
}

/// [`render`], with each request's and response's body under it when `bodies` is set
/// (cut at 4 KiB; the sign-in's bodies, which hold credentials, are never kept).
pub fn render_with(run: &RunResult, bodies: bool) -> String {
    let mut out = String::new();
    for step in steps(run) {
        match step {
            Step::ManualEdit {
                name,
                object,
                external_id,
                set,
                at,
                outcome,
            } => {
                let values = serde_json::Value::Object(set.clone());
                match at {
                    Some(at) => {
                        let _ = writeln!(
                            out,
                            "{at}  manual edit `{name}`: {object} {external_id} set {values}"
                        );
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "manual edit `{name}`: {object} {external_id} set {values}: {outcome}"
                        );
                    }
                }
            }
            Step::Request(e) => {
                let _ = write!(
                    out,
                    "{}  #{:<4} {} {} -> {}",
                    e.at, e.seq, e.method, e.path, e.status
                );
                if let Some((ok, failed)) = e.outcome {
                    let _ = write!(out, " ({ok} ok, {failed} failed)");
                }
                if let Some(code) = &e.error_code {
                    let _ = write!(out, " {code}");
                }
                if let Some(f) = &e.fault {
                    let _ = write!(out, "  [fault {f}]");
                }
                if let Some(nb) = e.not_before {
                    let _ = write!(out, "  retry not before {nb}");
                }
                out.push('\n');
                if bodies {
                    if let Some(b) = &e.request_body {
                        let _ = writeln!(out, "        > {b}");
                    }
                    if let Some(b) = &e.response_body {
                        let _ = writeln!(out, "        < {b}");
                    }
                }
            }
            Step::Engine(e) => {
                let what = match &e.kind {
                    EventKind::Retry {
                        attempt,
                        records,
                        code,
                    } => format!(
                        "retry: attempt {attempt} failed for {records} record(s) with {code}"
                    ),
                    EventKind::Wait { until, reason } => format!("wait until {until} ({reason})"),
                    EventKind::DeadLetter { source_id, code } => {
                        format!("dead-letter {source_id}: {code}")
                    }
                    EventKind::Conflict { source_id, field } => {
                        format!("conflict {source_id}.{field}: Salesforce's newer value kept")
                    }
                    EventKind::Delete { source_id, policy } => {
                        format!("delete {source_id} ({policy})")
                    }
                    EventKind::Note { message } => message.clone(),
                };
                let _ = writeln!(out, "{}  engine {}: {what}", e.at, e.object);
            }
            Step::Check {
                invariant,
                passed,
                details,
            } => {
                let _ = writeln!(
                    out,
                    "check {invariant}: {}",
                    if passed { "ok" } else { "FAILED" }
                );
                for d in details {
                    let _ = writeln!(out, "  {d}");
                }
            }
            Step::Unchecked {
                invariant,
                state,
                reason,
            } => {
                let _ = writeln!(out, "check {invariant}: {state} ({reason})");
            }
        }
    }
    out
}

/// The timeline as JSON lines (`--trace`).
pub fn json_lines(run: &RunResult) -> String {
    let mut out = String::new();
    for step in steps(run) {
        out.push_str(&serde_json::to_string(&step).expect("timeline step serializes"));
        out.push('\n');
    }
    out
}
