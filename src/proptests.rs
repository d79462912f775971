//! Property tests: every parser of user input answers any input with a value or an error.
//!
//! The parsers: SOQL, bundle TOML, scenario YAML, fixture JSONL lines. None may panic or
//! overflow the stack, however garbled its input.
//!
//! Each parser is fed two kinds of input: edits of a corpus of valid inputs (the repository's
//! own bundles, scenarios and fixtures, and typical queries), and free-form soups of the
//! grammar's tokens, including nesting far past the parsers' depth limits. Cases are bounded
//! so `cargo test` runs them in a few seconds; `PROPTEST_CASES=5000 cargo test --lib
//! proptests` runs longer.

use std::path::Path;

use proptest::prelude::*;

use crate::contract::{soql, Bundle};
use crate::engine::source::parse_jsonl_line;
use crate::sim::Scenario;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 48;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        // Failures print their minimal input; nothing is written into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Up to `max` random edits (insert, delete, replace a character) of one of `corpus`.
fn edits_of(corpus: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    (
        0..corpus.len(),
        proptest::collection::vec((any::<u32>(), 0u8..3, any::<char>()), 0..max),
    )
        .prop_map(move |(pick, edits)| {
            let mut text: Vec<char> = corpus[pick].chars().collect();
            for (at, op, c) in edits {
                let i = at as usize % (text.len() + 1);
                match op {
                    0 => text.insert(i, c),
                    1 if i < text.len() => {
                        text.remove(i);
                    }
                    _ if i < text.len() => text[i] = c,
                    _ => text.push(c),
                }
            }
            text.into_iter().collect()
        })
}

/// A soup of `tokens`, sometimes wrapped in a nesting far deeper than any limit.
fn soup(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(proptest::sample::select(tokens), 0..60),
        0usize..4000,
        any::<bool>(),
    )
        .prop_map(|(toks, depth, deep)| {
            let body = toks.join(" ");
            if deep {
                format!("{}{body}{}", "(".repeat(depth), ")".repeat(depth))
            } else {
                body
            }
        })
}

const QUERIES: &[&str] = &[
    "SELECT Id, Name FROM Account WHERE Name = 'Cedar' ORDER BY Name DESC NULLS LAST LIMIT 10",
    "SELECT COUNT() FROM Contact WHERE (LastName LIKE 'A%' OR NOT Email = null) AND CreatedDate = LAST_N_DAYS:7",
    "SELECT Id, Account.Name FROM Opportunity WHERE Amount >= 100.5 AND StageName IN ('Closed Won', 'Prospecting') OFFSET 5",
    "SELECT Id FROM Account WHERE LastModifiedDate > 2026-01-05T08:00:00Z AND Industry NOT IN ('x')",
    "SELECT Industry, COUNT(Id) n, SUM(AnnualRevenue) FROM Account GROUP BY Industry HAVING COUNT(Id) > 1 ORDER BY COUNT(Id) DESC",
    "SELECT Name, (SELECT LastName FROM Contacts WHERE Email != null ORDER BY LastName LIMIT 5) FROM Account",
    "FIND {Alder* OR \"birch goods\"} IN NAME FIELDS RETURNING Account(Id, Name WHERE Industry = 'Retail' LIMIT 5), Contact LIMIT 10",
];

const SOQL_TOKENS: &[&str] = &[
    "SELECT",
    "Id",
    "Name",
    ",",
    "FROM",
    "Account",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "(",
    ")",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "IN",
    "LIKE",
    "'x'",
    "'",
    "12",
    "1.5e300",
    "null",
    "TRUE",
    "TODAY",
    "LAST_N_DAYS:3",
    "2026-01-05",
    "ORDER",
    "BY",
    "ASC",
    "NULLS",
    "FIRST",
    "LIMIT",
    "OFFSET",
    "COUNT()",
    "COUNT(",
    "SUM(",
    "COUNT_DISTINCT(",
    "GROUP",
    "HAVING",
    "(SELECT",
    "FIND",
    "{",
    "}",
    "RETURNING",
    "FIELDS",
    "Account.Name",
    "\\",
    "é",
    "",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn soql_never_panics(text in prop_oneof![edits_of(QUERIES, 12), soup(SOQL_TOKENS), ".{0,200}"]) {
        let _ = soql::parse(&text);
        let _ = soql::parse_search(&text);
        let cond = text.split_once("WHERE").map_or(text.as_str(), |(_, c)| c);
        if let Ok(e) = soql::parse_condition(cond) {
            let now = crate::sim::Timestamp::parse("2026-01-05T08:00:00Z").unwrap();
            let _ = soql::eval(&e, now, &|_| serde_json::Value::Null);
        }
    }

    #[test]
    fn bundle_toml_never_panics(text in prop_oneof![edits_of(BUNDLES, 16), soup(TOML_TOKENS)]) {
        let dir = tempfile::tempdir().unwrap();
        let tenant = dir.path().join("acme/sandbox");
        std::fs::create_dir_all(&tenant).unwrap();
        std::fs::write(dir.path().join("acme/base.toml"), BASE).unwrap();
        std::fs::write(tenant.join("bundle.toml"), &text).unwrap();
        let _ = Bundle::load(&tenant);
    }

    #[test]
    fn scenario_yaml_never_panics(text in prop_oneof![edits_of(SCENARIOS, 16), soup(YAML_TOKENS)]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, &text).unwrap();
        let _ = Scenario::load(&path);
    }

    #[test]
    fn fixture_lines_never_panic(text in prop_oneof![edits_of(LINES, 12), soup(JSON_TOKENS), ".{0,200}"]) {
        let _ = parse_jsonl_line(Path::new("accounts.jsonl"), "accounts", 1, &text);
    }
}

const BASE: &str = include_str!("../contracts/northwind-outfitters/base.toml");

const BUNDLES: &[&str] = &[
    include_str!("../contracts/northwind-outfitters/production/bundle.toml"),
    include_str!("../contracts/northwind-outfitters/base.toml"),
    include_str!("../contracts/bluepeak-logistics/base.toml"),
    "format = 1\npartner = \"acme\"\ntenant = \"sandbox\"\nversion = \"1.0.0\"\n[limits]\ndaily_api_requests = 100\nconcurrent_long_running = 25\n[objects.Account]\nexternal_id = \"Ext__c\"\nsource = \"accounts\"\n[objects.Account.fields]\nExt__c = { type = \"string\", from = \"account_no\" }\nName = { type = \"string\", from = \"company_name\" }\n[[objects.Account.validation_rules]]\nname = \"r\"\ncondition = \"Name = 'x' AND NOT (Ext__c = null)\"\nmessage = \"m\"\n",
];

const TOML_TOKENS: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    "\n",
    "\"",
    "'",
    "format",
    "1",
    "partner",
    "objects.Account",
    "fields",
    "type",
    "\"string\"",
    "extends",
    "\"../base.toml\"",
    "#",
    "validation_rules",
    "condition",
    "\"(((\"",
    "true",
    "1979-05-27",
    "inf",
    "nan",
];

const SCENARIOS: &[&str] = &[
    include_str!("../harness/scenarios/baseline.yaml"),
    include_str!("../harness/scenarios/lost-responses.yaml"),
    include_str!("../harness/scenarios/manual-edits-during-sync.yaml"),
    include_str!("../harness/broken/ignores-retry-after.yaml"),
];

const YAML_TOKENS: &[&str] = &[
    "purpose:",
    "faults:",
    "- ",
    "name:",
    "match:",
    "{",
    "}",
    "[",
    "]",
    "method:",
    "PATCH",
    "respond:",
    "rate_limited:",
    "retry_after:",
    "1500ms",
    "calls:",
    "first:",
    "times:",
    "\n",
    "  ",
    ":",
    "&a",
    "*a",
    "!!str",
    "|",
    ">",
    "'",
    "\"",
    "#",
    "~",
    "null",
    "1e9",
];

const LINES: &[&str] = &[
    "{\"id\": \"CUST-1\", \"version\": 1, \"data\": {\"company_name\": \"Foxhollow\", \"annual_revenue\": 50753000}}",
    "{\"id\": \"CUST-2\", \"version\": 3, \"deleted\": true}",
    "{\"id\": 7, \"version\": 2, \"updated_at\": \"2026-01-05T08:00:00Z\", \"data\": {\"name\": \"x\"}}",
];

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"id\"",
    "\"version\"",
    "\"data\"",
    "\"deleted\"",
    "\"updated_at\"",
    "1",
    "-1",
    "1e999",
    "18446744073709551616",
    "true",
    "null",
    "\"\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
];

/// Nesting far past every limit, in each format: an error, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_in_every_format() {
    let deep = |open: &str, close: &str| format!("{}{}", open.repeat(5000), close.repeat(5000));
    let dir = tempfile::tempdir().unwrap();
    let tenant = dir.path().join("acme/sandbox");
    std::fs::create_dir_all(&tenant).unwrap();
    std::fs::write(
        tenant.join("bundle.toml"),
        format!("format = 1\nx = {}\n", deep("[", "]")),
    )
    .unwrap();
    assert!(Bundle::load(&tenant).is_err());
    std::fs::write(
        tenant.join("bundle.toml"),
        format!("format = 1\nx = {}\n", deep("{ a = ", "}")),
    )
    .unwrap();
    assert!(Bundle::load(&tenant).is_err());
    let yaml = dir.path().join("s.yaml");
    std::fs::write(&yaml, format!("purpose: {}\n", deep("[", "]"))).unwrap();
    assert!(Scenario::load(&yaml).is_err());
    std::fs::write(
        &yaml,
        format!("purpose: x\nfaults: {}\n", deep("{a: ", "}")),
    )
    .unwrap();
    assert!(Scenario::load(&yaml).is_err());
    let line = format!(
        "{{\"id\": \"A\", \"version\": 1, \"data\": {{\"x\": {}}}}}",
        deep("[", "]")
    );
    assert!(parse_jsonl_line(Path::new("a.jsonl"), "accounts", 1, &line).is_err());
    let cond = format!("{}Name = 'x'{}", "NOT ".repeat(5000), "");
    let err = soql::parse_condition(&cond).unwrap_err();
    assert_eq!(err.code, "MALFORMED_QUERY");
    assert!(err.message.contains("levels deep"), "{}", err.message);
    let flat = vec!["Name = 'x'"; 1200].join(" AND ");
    let err = soql::parse_condition(&flat).unwrap_err();
    assert!(err.message.contains("more than 1000"), "{}", err.message);
    // Within the limits, deep and long conditions still parse and evaluate.
    let ok = format!(
        "{}Name = 'x'{}",
        "(".repeat(soql::MAX_NESTING),
        ")".repeat(soql::MAX_NESTING)
    );
    assert!(soql::parse_condition(&ok).is_ok());
    assert!(soql::parse_condition(&vec!["Name = 'x'"; 1000].join(" OR ")).is_ok());
}
