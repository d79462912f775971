//! Tests of `bulk`.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn status_polls_follow_the_progress_the_job_reports() {
    let config = crate::engine::EngineConfig::default();
    let secs = Duration::from_secs;
    let mut interval = config.bulk_poll_interval;
    // 18,000 of 25,000 done 2 s after closing: the rest takes 0.78 s at that rate.
    let w = next_poll(25_000, 18_000, secs(2), &mut interval, &config);
    assert_eq!(w.as_millis(), 777);
    assert_eq!(interval, config.bulk_poll_interval, "no doubling");
    // Nothing reported yet: what is left of 25 s at 1,000 records a second.
    assert_eq!(
        next_poll(25_000, 0, secs(2), &mut interval, &config),
        secs(23)
    );
    // Past that guess with still no progress: 2 s, 4 s, 8 s, … up to the cap.
    let waits: Vec<u64> = (0..6)
        .map(|_| next_poll(100, 0, secs(60), &mut interval, &config).as_secs())
        .collect();
    assert_eq!(waits, vec![2, 4, 8, 16, 30, 30]);
    // Nearly done: never less than the floor; a slow job: never more than the cap.
    let mut interval = config.bulk_poll_interval;
    assert_eq!(
        next_poll(
            1_000,
            999,
            Duration::from_millis(10),
            &mut interval,
            &config
        ),
        MIN_POLL_WAIT
    );
    assert_eq!(
        next_poll(1_000_000, 1, secs(60), &mut interval, &config),
        config.bulk_poll_cap
    );
}

#[test]
fn cells_write_nulls_as_na_and_relationships_as_dotted_columns() {
    let p = json!({"Ext__c": "A-1", "Name": "Acme, \"Inc\"", "Phone": null, "Website": "",
                   "Active__c": true, "Amount": 12.5, "Account": {"Cust__c": "C-9"}});
    let ups = encode_uploads("Ext__c", &[p.as_object().unwrap()], MAX_UPLOAD_BYTES).unwrap();
    assert_eq!(ups.len(), 1);
    assert_eq!(
        ups[0].1,
        "Ext__c,Account.Cust__c,Active__c,Amount,Name,Phone,Website\n\
         A-1,C-9,true,12.5,\"Acme, \"\"Inc\"\"\",#N/A,#N/A\n"
    );
}

#[test]
fn absent_columns_are_empty_cells() {
    let a = json!({"Ext__c": "1", "Name": "A"});
    let b = json!({"Ext__c": "2", "Phone": "555"});
    let ups = encode_uploads(
        "Ext__c",
        &[a.as_object().unwrap(), b.as_object().unwrap()],
        MAX_UPLOAD_BYTES,
    )
    .unwrap();
    assert_eq!(ups[0].1, "Ext__c,Name,Phone\n1,A,\n2,,555\n");
}

#[test]
fn uploads_split_at_the_size_limit_with_the_header_repeated() {
    let ps: Vec<Value> = (0..10)
        .map(|i| json!({"Ext__c": format!("K{i}"), "Name": "xxxxxxxx"}))
        .collect();
    let refs: Vec<&Map<String, Value>> = ps.iter().map(|p| p.as_object().unwrap()).collect();
    // Header "Ext__c,Name\n" is 12 bytes, each row "K0,xxxxxxxx\n" 12 bytes.
    let ups = encode_uploads("Ext__c", &refs, 12 + 3 * 12).unwrap();
    let ranges: Vec<_> = ups.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(ranges, vec![0..3, 3..6, 6..9, 9..10]);
    for (_, text) in &ups {
        assert!(text.starts_with("Ext__c,Name\n"));
        assert!(text.len() <= 48);
    }
    let alone = encode_uploads("Ext__c", &refs, 20).unwrap();
    assert_eq!(
        alone.len(),
        10,
        "a row over the limit goes in an upload of its own"
    );
}

#[test]
fn sf_errors_split_into_code_and_message() {
    assert_eq!(
        parse_sf_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST:bad value for restricted picklist field: Zeppelins:Industry --"),
        (
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST".to_string(),
            "bad value for restricted picklist field: Zeppelins".to_string()
        )
    );
    assert_eq!(
        parse_sf_error("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"),
        (
            "REQUIRED_FIELD_MISSING".to_string(),
            "Required fields are missing: [Name]".to_string()
        )
    );
    assert_eq!(parse_sf_error("").0, "UNKNOWN_ERROR");
}

#[test]
fn job_info_reads_state_and_counts() {
    let info = JobInfo::parse(
        r#"{"id":"7500000000001","state":"Failed","numberRecordsProcessed":3,"numberRecordsFailed":1,"errorMessage":"boom"}"#,
    )
    .unwrap();
    assert_eq!(info.state, "Failed");
    assert_eq!((info.processed, info.failed), (3, 1));
    assert_eq!(info.error_message.as_deref(), Some("boom"));
    assert_eq!(JobInfo::parse("not json"), None);
}
