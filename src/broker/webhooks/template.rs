//! Webhook templates: the `${pactbroker.NAME}` placeholders of a webhook's URL, headers and
//! body, and their expansion for one event.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Every placeholder a webhook may use, as the Pact Broker names them. The labels have no
/// counterpart in this registry (pacticipants carry no labels) and expand to nothing.
pub const VARIABLES: &[&str] = &[
    "pactUrl",
    "verificationResultUrl",
    "eventName",
    "consumerName",
    "providerName",
    "consumerVersionNumber",
    "providerVersionNumber",
    "consumerVersionBranch",
    "providerVersionBranch",
    "consumerVersionTags",
    "providerVersionTags",
    "githubVerificationStatus",
    "buildUrl",
    "consumerLabels",
    "providerLabels",
];

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    // A constant pattern: it compiles, or every test fails at once.
    Regex::new(r"\$\{pactbroker\.([A-Za-z]*)\}").unwrap_or_else(|e| unreachable!("{e}"))
});

/// The values of one event's placeholders; one not set expands to the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context(BTreeMap<&'static str, String>);

impl Context {
    /// Sets a placeholder's value (`name` is one of [`VARIABLES`]).
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        debug_assert!(VARIABLES.contains(&name), "{name}");
        self.0.insert(name, value.into());
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// Placeholders in `text` that are not in [`VARIABLES`] (each once, in order of appearance).
pub fn unknown_placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cap in PLACEHOLDER.captures_iter(text) {
        let name = &cap[1];
        if !VARIABLES.contains(&name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// `text` with its placeholders replaced by their values, each passed through `escape`.
pub fn expand(text: &str, ctx: &Context, escape: impl Fn(&str) -> String) -> String {
    PLACEHOLDER
        .replace_all(text, |cap: &regex::Captures| escape(ctx.get(&cap[1])))
        .into_owned()
}

/// A URL's placeholders, values percent-encoded (a branch named `feat/x` stays one segment).
pub fn expand_url(url: &str, ctx: &Context) -> String {
    expand(url, ctx, crate::broker::seg)
}

/// A header value's placeholders, values as they are.
pub fn expand_text(text: &str, ctx: &Context) -> String {
    expand(text, ctx, str::to_string)
}

/// A body: a JSON string is text to expand; any other JSON has its strings (keys included)
/// expanded and is sent as JSON, so a value with a quote in it stays valid JSON.
pub fn expand_body(body: &Value, ctx: &Context) -> String {
    match body {
        Value::String(s) => expand_text(s, ctx),
        other => expand_json(other, ctx).to_string(),
    }
}

fn expand_json(v: &Value, ctx: &Context) -> Value {
    match v {
        Value::String(s) => Value::String(expand_text(s, ctx)),
        Value::Array(items) => Value::Array(items.iter().map(|i| expand_json(i, ctx)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (expand_text(k, ctx), expand_json(v, ctx)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every string of a JSON value (keys included), to look for placeholders in.
pub fn strings_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| strings_of(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings_of(v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let mut c = Context::default();
        c.set("consumerName", "syncgate-engine")
            .set("consumerVersionBranch", "feat/x")
            .set("providerName", "say \"hi\"");
        c
    }

    #[test]
    fn urls_get_encoded_values_and_unset_ones_are_empty() {
        let url = "https://ci.test/build?branch=${pactbroker.consumerVersionBranch}&v=${pactbroker.providerVersionNumber}";
        assert_eq!(
            expand_url(url, &ctx()),
            "https://ci.test/build?branch=feat%2Fx&v="
        );
    }

    #[test]
    fn json_bodies_stay_json_and_text_bodies_are_text() {
        let body = json!({"who": "${pactbroker.providerName}", "${pactbroker.consumerName}": [1, "${pactbroker.consumerName}"]});
        let out: Value = serde_json::from_str(&expand_body(&body, &ctx())).unwrap_or_default();
        assert_eq!(
            out,
            json!({"who": "say \"hi\"", "syncgate-engine": [1, "syncgate-engine"]})
        );
        assert_eq!(
            expand_body(&json!("c=${pactbroker.consumerName}"), &ctx()),
            "c=syncgate-engine"
        );
    }

    #[test]
    fn unknown_placeholders_are_named_once() {
        assert_eq!(
            unknown_placeholders(
                "${pactbroker.pactUrl} ${pactbroker.nope} ${pactbroker.nope} ${pactbroker.}"
            ),
            ["nope", ""]
        );
        assert!(unknown_placeholders("${pactbroker.eventName} ${other.thing}").is_empty());
    }
}
