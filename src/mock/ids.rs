//! Salesforce record IDs: 15 case-sensitive characters plus the 3-character case-safe suffix.

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SUFFIX: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The key prefix Salesforce uses for a standard object's IDs.
pub fn key_prefix(object: &str) -> &'static str {
    match object {
        "Account" => "001",
        "Contact" => "003",
        "Opportunity" => "006",
        "Lead" => "00Q",
        "Case" => "500",
        "User" => "005",
        "Organization" => "00D",
        "Product2" => "01t",
        _ => "a0B",
    }
}

/// The 18-character ID for record number `n` of `object` (deterministic: the org numbers
/// its records, so the same run yields the same IDs).
pub fn record_id(object: &str, n: u64) -> String {
    numbered(key_prefix(object), n)
}

/// The 18-character ID number `n` under a 3-character key prefix (`750` ingest jobs,
/// `01g` query locators).
pub fn numbered(prefix: &str, n: u64) -> String {
    with_suffix(&format!("{prefix}8d0{}", base62(n, 9)))
}

fn base62(mut n: u64, width: usize) -> String {
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).expect("ascii")
}

/// Appends the case-safe suffix to a 15-character ID.
pub fn with_suffix(id15: &str) -> String {
    let bytes = id15.as_bytes();
    let mut out = id15.to_string();
    for chunk in bytes.chunks(5) {
        let mut bits = 0usize;
        for (i, b) in chunk.iter().enumerate() {
            if b.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        out.push(SUFFIX[bits] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_length_and_checksum() {
        let id = record_id("Account", 1);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("001"));
        assert_eq!(record_id("Opportunity", 1).get(0..3), Some("006"));
        assert_ne!(record_id("Account", 1), record_id("Account", 2));
    }

    #[test]
    fn suffix_matches_salesforce_algorithm() {
        // Known pair from Salesforce documentation examples.
        assert_eq!(with_suffix("001A0000006Vm9r"), "001A0000006Vm9rIAC");
    }
}
