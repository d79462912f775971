//! The rows Bulk API 2.0 ingest jobs processed, for the judges. A row processed twice (an
//! upload sent again after its answer was lost, a finished job sent again) leaves the org's
//! records looking right, since an upsert of the same values changes nothing; it shows here.

/// One row a finished (`JobComplete`) job processed successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessedRow {
    pub object: String,
    pub job: String,
    /// The row's external-ID value (an upsert) or record ID (an update or delete).
    pub key: String,
    /// The whole row as `column=value` pairs in header order (two rows are the same send
    /// when these are equal).
    pub cells: String,
}

impl super::Jobs {
    /// Every row finished jobs processed successfully, job by job in creation order.
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
            for (_, _, row) in &job.succeeded {
                let cells: Vec<String> = job
                    .header
                    .iter()
                    .zip(row)
                    .map(|(h, v)| format!("{h}={v}"))
                    .collect();
                out.push(ProcessedRow {
                    object: job.object.clone(),
                    job: job.id.clone(),
                    key: key_col
                        .and_then(|c| row.get(c))
                        .cloned()
                        .unwrap_or_default(),
                    cells: cells.join(","),
                });
            }
        }
        out
    }
}
