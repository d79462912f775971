//! `application/x-www-form-urlencoded` text: query strings, form bodies and percent-encoded
//! path segments, decoded.

/// A percent-encoded path segment, decoded (invalid UTF-8 replaced, a stray `%` kept).
pub(super) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `application/x-www-form-urlencoded` pairs (also query strings).
pub(super) fn form_pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms_and_paths() {
        assert_eq!(
            form_pairs("q=SELECT+Id+FROM+Account&x=%27a%27&flag"),
            vec![
                ("q".to_string(), "SELECT Id FROM Account".to_string()),
                ("x".to_string(), "'a'".to_string()),
                ("flag".to_string(), String::new()),
            ]
        );
        assert_eq!(percent_decode("A%2F1%"), "A/1%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
