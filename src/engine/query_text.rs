//! Text the engine puts into URLs and SOQL: percent-encoded values, SOQL datetime and
//! string literals.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a query-string value or a path segment (RFC 3986 unreserved characters
/// pass through).
pub(super) fn encode_query_value(v: &str) -> String {
    utf8_percent_encode(v, NOT_UNRESERVED).to_string()
}

/// A SOQL datetime literal, to the second (rounded down: the query may return a little more).
pub(super) fn soql_datetime(t: crate::sim::Timestamp) -> String {
    let iso = t.to_iso();
    format!("{}Z", iso.get(..19).unwrap_or(&iso))
}

/// A SOQL string literal: quotes and backslashes escaped.
pub(super) fn soql_string(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode_query_value("SELECT Id FROM A WHERE X IN ('a b')"),
            "SELECT%20Id%20FROM%20A%20WHERE%20X%20IN%20%28%27a%20b%27%29"
        );
    }

    #[test]
    fn soql_datetimes_are_to_the_second() {
        let t = crate::sim::Timestamp::parse("2026-01-05T08:30:15.250+01:00").unwrap();
        assert_eq!(soql_datetime(t), "2026-01-05T07:30:15Z");
    }

    #[test]
    fn soql_literals_escape_quotes() {
        assert_eq!(soql_string(r"O'Brien \ Co"), r"'O\'Brien \\ Co'");
    }
}
