//! Field values for generated fixtures: the valid edges of each field type, ordinary values
//! drawn from a seeded stream, and the values each of the bundle's rules must reject.
//!
//! Values are source values (what a fixture's `data` holds), not what the org stores: text
//! for numbers (`"1,234"`) and datetimes in other zones are deliberate, since converting them
//! is the engine's job and the oracle's to check.

use std::time::Duration;

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::{json, Value};

use crate::contract::{FieldSpec, FieldType};
use crate::sim::{Rng, Timestamp};

/// Text that needs more than one byte per character: accents, a ligature, CJK, an emoji.
const MULTI_BYTE: &str = "Zürich–Łódź·東京·Ærøskøbing·🚚·";

/// Text of exactly `len` characters, cycling through `pattern`.
pub fn text_of_len(pattern: &str, len: usize) -> String {
    pattern.chars().cycle().take(len).collect()
}

fn fit(s: String, max: Option<u32>) -> String {
    match max {
        Some(m) if s.chars().count() > m as usize => s.chars().take(m as usize).collect(),
        _ => s,
    }
}

/// An e-mail address of exactly `len` characters (at least 8), or a short one.
fn email_of_len(len: usize) -> String {
    const DOMAIN: &str = "@example.com";
    if len > DOMAIN.len() {
        format!("{}{DOMAIN}", text_of_len("edge.case", len - DOMAIN.len()))
    } else {
        "e@x.io".chars().take(len.max(6)).collect()
    }
}

/// The valid edges of a field, most telling first: the longest text the field takes (in
/// multi-byte characters), every picklist value, numbers at the limits of exactness,
/// dates and datetimes across zones and daylight-saving changes, and an explicit `null`
/// where the field is nillable. `regex`: the field's validation pattern, which text must
/// match (edges that do not are left out).
pub fn edges(field: &FieldSpec, regex: Option<&regex::Regex>) -> Vec<Value> {
    use FieldType as T;
    let max = field.max_length.map(|m| m as usize);
    let mut out: Vec<Value> = match field.ty {
        T::Picklist => {
            let mut v: Vec<Value> = field.values.iter().flatten().map(|s| json!(s)).collect();
            if !field.restricted {
                v.push(json!(fit(
                    "A value not in the list".into(),
                    field.max_length
                )));
            }
            v
        }
        T::Email => vec![
            json!(email_of_len(max.unwrap_or(80))),
            json!(fit(
                "first.last+tag@sub.example.co.uk".into(),
                field.max_length
            )),
        ],
        T::String | T::Textarea | T::Phone | T::Url => vec![
            json!(text_of_len(MULTI_BYTE, max.unwrap_or(300))),
            json!(fit(MULTI_BYTE.into(), field.max_length)),
        ],
        T::Boolean => vec![json!(true), json!(false), json!("yes"), json!("N")],
        T::Int => vec![
            json!(0),
            json!(-1),
            json!(2_147_483_647),
            // Past 2^53: exact only as an integer, never through a float.
            json!(9_007_199_254_740_993_i64),
            json!("1,234"),
        ],
        T::Double | T::Percent => vec![
            json!(0.0),
            json!(-0.5),
            json!(1e-7),
            json!(12_345_678.901_2),
            json!("3.14"),
        ],
        T::Currency => vec![
            json!(0.01),
            json!(19.99),
            json!(12_345_678_901.23),
            json!(-250.5),
            json!(0.125),
            json!("1,234.56"),
        ],
        T::Date => vec![
            json!("2024-02-29"),
            json!("1970-01-01"),
            json!("2099-12-31"),
            // A datetime with a zone names the UTC date: the 28th here, the 2nd there.
            json!("2026-03-29T00:30:00+02:00"),
            json!("2026-11-01T23:30:00-05:00"),
        ],
        T::Datetime => vec![
            json!("2026-03-29T01:30:00Z"),
            // Central Europe springs forward at 02:00 on 29 March 2026 …
            json!("2026-03-29T03:30:00+02:00"),
            // … and falls back at 03:00 on 25 October; 02:30 happens twice.
            json!("2026-10-25T02:30:00+01:00"),
            // US Eastern falls back on 1 November 2026: 01:30 before and after.
            json!("2026-11-01T01:30:00-04:00"),
            json!("2026-11-01T01:30:00-05:00"),
            json!("2026-01-05T08:00:00.123Z"),
            json!("2026-07-01T12:00:00+0530"),
            json!("2026-12-31T23:59:59-1000"),
        ],
        // Set by the caller (a parent's ID).
        T::Reference => Vec::new(),
    };
    if let Some(re) = regex {
        out.retain(|v| !matches!(v, Value::String(s) if !re.is_match(s)));
    }
    if !field.required {
        out.push(Value::Null);
    }
    out
}

/// An ordinary value for record `i`, drawn from `rng`; for text under a validation
/// pattern, a string the pattern matches (or `None` when none can be made).
pub fn typical(
    field: &FieldSpec,
    i: usize,
    rng: &mut Rng,
    pattern: Option<&regex::Regex>,
) -> Option<Value> {
    use FieldType as T;
    const WORDS: [&str; 12] = [
        "Alder", "Birch", "Cedar", "Fjord", "Harbor", "Lumen", "Meadow", "Nordic", "Orchard",
        "Prairie", "Summit", "Tundra",
    ];
    let word = |rng: &mut Rng| WORDS[rng.up_to(WORDS.len() as u64 - 1) as usize];
    if let Some(re) = pattern {
        if field.ty.is_text() && field.ty != T::Picklist {
            return sample_match(re.as_str(), rng)
                .filter(|s| re.is_match(s))
                .filter(|s| {
                    field
                        .max_length
                        .is_none_or(|m| s.chars().count() <= m as usize)
                })
                .map(Value::String);
        }
    }
    let start = Timestamp::parse("2020-01-01T00:00:00Z").expect("a fixed date parses");
    Some(match field.ty {
        T::Picklist => {
            let values = field.values.as_deref().unwrap_or_default();
            match values.len() {
                0 => Value::Null,
                n => json!(values[i % n]),
            }
        }
        T::String | T::Textarea => json!(fit(
            format!("{} {} {}", word(rng), word(rng), i + 1),
            field.max_length
        )),
        T::Phone => json!(fit(
            format!("+1 555-{:04}", rng.up_to(9999)),
            field.max_length
        )),
        T::Url => json!(fit(
            format!("https://{}.example.com/{}", word(rng).to_lowercase(), i + 1),
            field.max_length
        )),
        T::Email => {
            let long = format!("{}.{}@example.com", word(rng).to_lowercase(), i + 1);
            match field.max_length {
                Some(m) if long.len() > m as usize => json!(email_of_len(m as usize)),
                _ => json!(long),
            }
        }
        T::Boolean => json!(rng.chance(0.5)),
        T::Int => json!(rng.up_to(50_000)),
        T::Double | T::Percent => json!(rng.up_to(1_000_000) as f64 / 100.0),
        T::Currency => json!(rng.up_to(100_000_000) as f64 / 100.0),
        T::Date => json!(start
            .plus(Duration::from_secs(rng.up_to(3_650) * 86_400))
            .to_date()),
        T::Datetime => json!(start
            .plus(Duration::from_secs(rng.up_to(3_650 * 86_400)))
            .to_iso()),
        T::Reference => Value::Null,
    })
}

/// One way a value breaks one of the bundle's rules, and the Salesforce error it must meet.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    /// `max_length`, `restricted_picklist`, `type`, `email`, `missing_parent`.
    pub rule: &'static str,
    pub code: &'static str,
    pub value: Value,
}

/// The values of `field` each of its rules must reject (the required rule and validation
/// rules are the caller's: they need the record, not the field).
pub fn breaches(field: &FieldSpec) -> Vec<Breach> {
    breaches_spelt(field, Spelling::Plain)
}

/// More of the same for the `poison` set: other spellings of each breach.
pub fn poison_breaches(field: &FieldSpec) -> Vec<Breach> {
    breaches_spelt(field, Spelling::Poison)
}

/// Which spelling of a breach: the one every set carries, or the `poison` set's other one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spelling {
    Plain,
    Poison,
}

/// The breaches of `field` in one spelling. Which rule a field type breaks, and the code
/// the org answers it with, is stated once here; only the breaking values differ.
fn breaches_spelt(field: &FieldSpec, spelling: Spelling) -> Vec<Breach> {
    use FieldType as T;
    use Spelling::{Plain, Poison};
    let mut out = Vec::new();
    if field.ty.is_text() {
        if let Some(max) = field.max_length {
            let value = match spelling {
                // One character over, counted in characters, not bytes.
                Plain => text_of_len(MULTI_BYTE, max as usize + 1),
                Poison => text_of_len("x", max as usize + 25),
            };
            out.push(Breach {
                rule: "max_length",
                code: "STRING_TOO_LONG",
                value: json!(value),
            });
        }
    }
    let (rule, code) = match field.ty {
        T::Picklist if field.restricted => (
            "restricted_picklist",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        T::Email => ("email", "INVALID_EMAIL_ADDRESS"),
        T::Boolean | T::Int | T::Double | T::Currency | T::Percent | T::Date | T::Datetime => {
            // Text no reader of the type takes: Salesforce's JSON reader refuses it as sent.
            ("type", "JSON_PARSER_ERROR")
        }
        T::Reference => ("missing_parent", "INVALID_FIELD"),
        _ => return out,
    };
    let value = match (spelling, field.ty) {
        (Plain, T::Picklist) => json!("Not A Listed Value"),
        // A listed value in the wrong case is still off the list.
        (Poison, T::Picklist) => json!(field
            .values
            .iter()
            .flatten()
            .next()
            .map_or("zzz".into(), |v| v.to_uppercase() + "!")),
        (Plain, T::Email) => json!("not an e-mail"),
        (Plain, T::Boolean) => json!("maybe"),
        (Poison, T::Boolean) => json!(2),
        (Plain, T::Int) => json!("twelve"),
        (Poison, T::Int) => json!("12.5"),
        (Plain, T::Double | T::Currency | T::Percent) => json!("n/a"),
        (Poison, T::Double | T::Currency | T::Percent) => json!("1.2.3"),
        (Plain, T::Date) => json!("2026-02-30"),
        (Poison, T::Date) => json!("05/01/2026"),
        (Plain, T::Datetime) => json!("2026-01-05T08:00:00"),
        (Poison, T::Datetime) => json!("yesterday"),
        (Plain, T::Reference) => json!("NO-SUCH-PARENT"),
        // The poison set has no second spelling of a bad e-mail or a missing parent.
        _ => return out,
    };
    out.push(Breach { rule, code, value });
    out
}

/// A string `pattern` matches, built from its syntax tree: literals as written, a class's
/// member chosen by `rng`, a repetition's minimum (at least once when the maximum allows),
/// one branch of an alternation. `None` for patterns it cannot build (byte classes).
/// Hand-written: no crate generates from a `regex_syntax` tree with our seeded streams.
pub fn sample_match(pattern: &str, rng: &mut Rng) -> Option<String> {
    let hir = regex_syntax::parse(pattern).ok()?;
    let mut out = String::new();
    build(&hir, rng, &mut out).then_some(out)
}

fn build(hir: &Hir, rng: &mut Rng, out: &mut String) -> bool {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(s) => {
                out.push_str(s);
                true
            }
            Err(_) => false,
        },
        HirKind::Class(Class::Unicode(class)) => {
            let ranges = class.ranges();
            if ranges.is_empty() {
                return false;
            }
            // Prefer printable ASCII members, so the sample reads well.
            let printable: Vec<_> = ranges
                .iter()
                .filter(|r| r.start() <= '~' && r.end() >= ' ')
                .collect();
            let (lo, hi) = match printable.is_empty() {
                true => (ranges[0].start(), ranges[0].start()),
                false => {
                    let r = printable[rng.up_to(printable.len() as u64 - 1) as usize];
                    (r.start().max(' '), r.end().min('~'))
                }
            };
            let span = hi as u32 - lo as u32;
            match char::from_u32(lo as u32 + rng.up_to(u64::from(span)) as u32) {
                Some(c) => {
                    out.push(c);
                    true
                }
                None => false,
            }
        }
        HirKind::Class(Class::Bytes(_)) => false,
        HirKind::Repetition(rep) => {
            let times = match rep.max {
                Some(max) => rep.min.max(1).min(max),
                None => rep.min.max(1),
            };
            (0..times).all(|_| build(&rep.sub, rng, out))
        }
        HirKind::Capture(cap) => build(&cap.sub, rng, out),
        HirKind::Concat(parts) => parts.iter().all(|p| build(p, rng, out)),
        HirKind::Alternation(branches) => {
            let pick = rng.up_to(branches.len() as u64 - 1) as usize;
            build(&branches[pick], rng, out)
        }
    }
}

/// A value of `field`'s type that `pattern` does not match, for the record that breaks a
/// validation rule; `None` when every candidate matches.
pub fn sample_mismatch(field: &FieldSpec, pattern: &regex::Regex) -> Option<String> {
    ["#invalid#", "0", "x", "ZZZZ-0000-zzzz", "not matching 123"]
        .into_iter()
        .map(|c| fit(c.to_string(), field.max_length))
        .find(|c| !c.is_empty() && !pattern.is_match(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Seed;

    fn spec(ty: FieldType) -> FieldSpec {
        FieldSpec {
            from: Some("c".into()),
            ..FieldSpec::of(ty)
        }
    }

    #[test]
    fn text_edges_reach_max_length_in_characters_and_one_more_breaks_it() {
        let f = FieldSpec {
            max_length: Some(40),
            ..spec(FieldType::String)
        };
        let e = edges(&f, None);
        let longest = e[0].as_str().unwrap();
        assert_eq!(longest.chars().count(), 40);
        assert!(longest.len() > 40, "multi-byte characters: {longest}");
        assert_eq!(e.last(), Some(&Value::Null), "nillable: explicit null");
        let b = breaches(&f);
        assert_eq!(b[0].code, "STRING_TOO_LONG");
        assert_eq!(b[0].value.as_str().unwrap().chars().count(), 41);
    }

    #[test]
    fn picklist_edges_hold_every_value_and_required_fields_no_null() {
        let f = FieldSpec {
            values: Some(vec!["A".into(), "B".into(), "C".into()]),
            required: true,
            ..spec(FieldType::Picklist)
        };
        assert_eq!(edges(&f, None), vec![json!("A"), json!("B"), json!("C")]);
        assert_eq!(breaches(&f)[0].rule, "restricted_picklist");
        let open = FieldSpec {
            restricted: false,
            ..f
        };
        assert_eq!(edges(&open, None).len(), 4);
        assert!(breaches(&open).is_empty());
    }

    #[test]
    fn datetimes_cross_zones_and_daylight_saving() {
        let e = edges(&spec(FieldType::Datetime), None);
        for needle in ["+02:00", "+01:00", "-04:00", "-05:00", "+0530", ".123Z"] {
            assert!(
                e.iter()
                    .any(|v| v.as_str().is_some_and(|s| s.contains(needle))),
                "{needle}"
            );
        }
        for v in e.iter().filter_map(Value::as_str) {
            assert!(Timestamp::parse(v).is_some(), "{v} does not parse");
        }
        let bad = &breaches(&spec(FieldType::Datetime))[0];
        assert!(Timestamp::parse(bad.value.as_str().unwrap()).is_none());
    }

    #[test]
    fn emails_fit_and_stay_addresses() {
        let f = FieldSpec {
            max_length: Some(30),
            ..spec(FieldType::Email)
        };
        for v in edges(&f, None).iter().filter_map(Value::as_str) {
            assert!(v.chars().count() <= 30 && v.contains('@'), "{v}");
        }
        assert_eq!(
            edges(&f, None)[0].as_str().unwrap().chars().count(),
            30,
            "the longest address the field takes"
        );
    }

    #[test]
    fn samples_match_their_pattern_and_mismatches_do_not() {
        let mut rng = Seed(3).stream("t");
        for p in [
            r"[A-Z]{2}-\d{4}",
            r"\d{5}(-\d{4})?",
            r"(GB|DE|FR)[0-9]{9}",
            r"[a-z]+@[a-z]+\.com",
        ] {
            let re = regex::Regex::new(&format!("^(?:{p})$")).unwrap();
            for _ in 0..20 {
                let s = sample_match(p, &mut rng).unwrap();
                assert!(re.is_match(&s), "{s} for {p}");
            }
            let f = spec(FieldType::String);
            let bad = sample_mismatch(&f, &re).unwrap();
            assert!(!re.is_match(&bad), "{bad} for {p}");
        }
    }

    #[test]
    fn the_same_stream_gives_the_same_values() {
        let f = FieldSpec {
            max_length: Some(20),
            ..spec(FieldType::String)
        };
        let draw = || {
            let mut rng = Seed(9).stream("v");
            (0..10)
                .map(|i| typical(&f, i, &mut rng, None).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
    }
}
