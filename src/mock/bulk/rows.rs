//! The rows Bulk API 2.0 ingest jobs processed, for the judges. A row processed twice (an
//! upload sent again after its answer was lost, a finished job sent again) leaves the org's
//! records looking right, since an upsert of the same values changes nothing; it shows here.

use std::sync::Arc;

use sha2::{Digest, Sha256};

/// One row a finished (`JobComplete`) job processed: written, or rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedRow {
    /// Shared by every row of the job (a million rows need not carry a million copies).
    pub object: Arc<str>,
    pub job: Arc<str>,
    /// The row's external-ID value (an upsert) or record ID (an update or delete).
    pub key: String,
    /// The whole row, as `column=value` pairs in header order, by its digest: two rows
    /// are the same send when these are equal.
    pub cells: CellsDigest,
    /// `None`: written (in `successfulResults`); else the error it was rejected with (in
    /// `failedResults`): its code and message.
    pub rejected: Option<(String, String)>,
}

/// The first 128 bits of the SHA-256 of a row's `column=value` pairs: equal rows, equal
/// digests; unequal ones collide with a chance no run comes near. Kept instead of the text,
/// which was most of what the judges held per Bulk row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellsDigest([u8; 16]);

impl CellsDigest {
    /// The digest of `pairs` (`column=value`, in header order).
    pub fn of<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut h = Sha256::new();
        for (column, value) in pairs {
            // Lengths first: `a=b,c` and `a=b`,`c` must not read the same.
            h.update((column.len() as u64).to_le_bytes());
            h.update(column.as_bytes());
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        }
        let full = h.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        CellsDigest(out)
    }
}

impl super::Jobs {
    /// Every row finished jobs processed, job by job in creation order: the written ones,
    /// then the rejected ones.
    pub fn processed_rows(&self) -> Vec<ProcessedRow> {
        let mut out = Vec::new();
        for job in self
            .jobs
            .iter()
            .filter(|j| j.state == super::JobState::JobComplete)
        {
            let key_col = job
                .external_id
                .as_deref()
                .and_then(|ext| job.header.iter().position(|h| h.eq_ignore_ascii_case(ext)))
                .or_else(|| job.header.iter().position(|h| h.eq_ignore_ascii_case("Id")));
            let (object, id): (Arc<str>, Arc<str>) =
                (job.object.as_str().into(), job.id.as_str().into());
            let rows = job.succeeded.iter().map(|(_, _, row)| (row, None)).chain(
                job.failed
                    .iter()
                    .map(|(_, error, row)| (row, Some(split_error(error)))),
            );
            for (row, rejected) in rows {
                out.push(ProcessedRow {
                    object: object.clone(),
                    job: id.clone(),
                    key: key_col
                        .and_then(|c| row.get(c))
                        .cloned()
                        .unwrap_or_default(),
                    cells: CellsDigest::of(
                        job.header
                            .iter()
                            .map(String::as_str)
                            .zip(row.iter().map(String::as_str)),
                    ),
                    rejected,
                });
            }
        }
        out
    }
}

/// `CODE:message:fields --` (the `sf__Error` cell) as its code and the rest.
fn split_error(error: &str) -> (String, String) {
    match error.split_once(':') {
        Some((code, rest)) => (code.to_string(), rest.trim_end_matches(" --").to_string()),
        None => (error.to_string(), String::new()),
    }
}
