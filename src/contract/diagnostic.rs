//! Diagnostics for the TOML files users write (bundles, `syncgate.toml`): where the error is
//! (line and column from the parser's span), which key (the dotted path the deserializer
//! was at, not a guess from the text), and, for a misspelt key or value, the nearest valid
//! one; and the `path:line:column:` prefix (with the key) every such diagnostic starts with.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a TOML text does not deserialize, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlDiagnostic {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key, e.g. `objects.Account.fields.Name.max_lenght`.
    pub field: Option<String>,
    pub message: String,
    /// `did you mean `max_length`?` for a misspelt key or variant.
    pub suggestion: Option<String>,
}

/// Deserializes `text`, or says where and why it does not.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> Result<T, TomlDiagnostic> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (line, column) = inner.span().map_or((None, None), |s| {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        });
        let message = match inner.message().trim() {
            "" => "invalid TOML".to_string(),
            m => m.to_string(),
        };
        let unknown = quoted_after(&message, "unknown field `")
            .or_else(|| quoted_after(&message, "unknown variant `"));
        let mut field: Vec<String> = path
            .split('.')
            // `?` is an unnamed step; `$__…` the private field of `toml::Spanned`.
            .filter(|s| !s.is_empty() && *s != "?" && !s.starts_with("$__"))
            .map(str::to_string)
            .collect();
        if let Some(u) = unknown.filter(|_| message.starts_with("unknown field")) {
            if field.last().map(String::as_str) != Some(u) {
                field.push(u.to_string());
            }
        }
        let field = if field.is_empty() {
            inner.span().and_then(|s| key_path_at(text, s.start))
        } else {
            Some(field.join("."))
        };
        let suggestion = unknown
            .and_then(|u| nearest(u, &expected(&message)))
            .map(|s| format!("did you mean `{s}`?"));
        TomlDiagnostic {
            line,
            column,
            field,
            message,
            suggestion,
        }
    })
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('`')?])
}

/// The names serde lists after "expected" (`expected one of `a`, `b`` or `expected `a` or `b``).
fn expected(message: &str) -> Vec<&str> {
    let Some(at) = message.find("expected") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The candidate closest to `wrong`, if it is close enough to be a typo.
fn nearest<'c>(wrong: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(wrong, c), *c))
        .filter(|(d, c)| *d <= (c.len().max(wrong.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

/// The dotted key a TOML syntax error at byte `offset` is about, read from the text (used
/// when the deserializer had no path yet): the nearest `[table]` header above, the line's
/// key, and the inline-table key before the offset. `None` when the line holds no key.
pub fn key_path_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('#') || key.starts_with('[') {
        return None;
    }
    let mut path: Vec<String> = header.into_iter().collect();
    path.push(key.to_string());
    // Inside an inline table: the key of the `k = v` pair the offset falls in.
    let before = &line[..offset - line_start];
    if let Some(brace) = before.find('{') {
        let inner = &before[brace + 1..];
        if let Some(eq) = inner.rfind('=') {
            let name = inner[..eq]
                .rsplit([',', '{'])
                .next()
                .map(|k| k.trim().trim_matches('"'))
                .unwrap_or("");
            if !name.is_empty() {
                path.push(name.to_string());
            }
        }
    }
    Some(path.join("."))
}

/// Writes where in a file a problem is, as every file diagnostic starts: `path:line:column: `
/// and the dotted key in backticks (line, column and key when known), e.g.
/// ``bundle.toml:12:5: `objects.Account.fields.Name.type`: ``.
pub fn write_location(
    f: &mut fmt::Formatter<'_>,
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
) -> fmt::Result {
    write!(f, "{}", path.display())?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
        if let Some(col) = column {
            write!(f, ":{col}")?;
        }
    }
    write!(f, ": ")?;
    if let Some(field) = field {
        write!(f, "`{field}`: ")?;
    }
    Ok(())
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Field {
        #[serde(rename = "type")]
        ty: String,
        from: Option<String>,
        max_length: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct File {
        objects: BTreeMap<String, BTreeMap<String, BTreeMap<String, Field>>>,
    }

    #[test]
    fn a_misspelt_key_in_an_inline_table_is_named_with_its_path_and_the_nearest_key() {
        let text = "[objects.Account.fields]\nExt__c = { type = \"string\", from = \"id\", max_lenght = 10 }\n";
        let d = parse_toml::<File>(text).unwrap_err();
        assert_eq!(
            d.field.as_deref(),
            Some("objects.Account.fields.Ext__c.max_lenght"),
            "{d:?}"
        );
        assert_eq!(d.line, Some(2), "{d:?}");
        assert_eq!(d.suggestion.as_deref(), Some("did you mean `max_length`?"));
    }

    #[test]
    fn nothing_close_suggests_nothing_and_syntax_errors_fall_back_to_the_text() {
        let text = "[objects.Account.fields]\nExt__c = { type = \"string\", colour = 1 }\n";
        let d = parse_toml::<File>(text).unwrap_err();
        assert_eq!(d.suggestion, None, "{d:?}");
        let d = parse_toml::<File>("[objects.Account.fields]\nExt__c = { type = }\n").unwrap_err();
        assert_eq!(d.line, Some(2), "{d:?}");
        assert_eq!(
            nearest("hard_delet", &["hard_delete", "archive"]),
            Some("hard_delete")
        );
        assert_eq!(
            expected("unknown field `x`, expected `a` or `b`"),
            vec!["a", "b"]
        );
    }

    #[test]
    fn key_path_names_header_key_and_inline_key() {
        let text =
            "version = 1\n[objects.Account.fields]\nName = { type = \"strin\", required = true }\n";
        let at = text.find("\"strin").unwrap_or(0);
        assert_eq!(
            key_path_at(text, at).as_deref(),
            Some("objects.Account.fields.Name.type")
        );
        assert_eq!(key_path_at(text, 10).as_deref(), Some("version"));
        let at = text.find("true").unwrap_or(0);
        assert_eq!(
            key_path_at(text, at).as_deref(),
            Some("objects.Account.fields.Name.required")
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
