//! Tests of `bulk`.

use std::time::Duration;

use serde_json::json;

use super::*;

#[test]
fn later_polls_follow_the_progress_the_job_reports() {
    let config = crate::engine::EngineConfig::default();
    let secs = Duration::from_secs;
    let mut interval = config.bulk_poll_interval;
    // 18,000 of 25,000 done 2 s after closing: the rest takes 0.78 s at that rate.
    let w = next_poll(25_000, 18_000, secs(2), secs(3), &mut interval, &config);
    assert_eq!(w.as_millis(), 777);
    assert_eq!(interval, config.bulk_poll_interval, "no doubling");
    // Nothing reported yet: what is left of the expected time.
    assert_eq!(
        next_poll(25_000, 0, secs(2), secs(25), &mut interval, &config),
        secs(23)
    );
    // Past the expected time with still no progress: 2 s, 4 s, 8 s, … up to the cap.
    let waits: Vec<u64> = (0..6)
        .map(|_| next_poll(100, 0, secs(60), secs(3), &mut interval, &config).as_secs())
        .collect();
    assert_eq!(waits, vec![2, 4, 8, 16, 30, 30]);
    // Nearly done: never less than the floor; a slow job: never more than the cap.
    let mut interval = config.bulk_poll_interval;
    let ms = Duration::from_millis;
    assert_eq!(
        next_poll(1_000, 999, ms(10), secs(1), &mut interval, &config),
        MIN_POLL_WAIT
    );
    assert_eq!(
        next_poll(1_000_000, 1, secs(60), secs(1), &mut interval, &config),
        config.bulk_poll_cap
    );
}

#[test]
fn the_first_poll_comes_when_a_job_of_its_size_should_be_done() {
    let config = crate::engine::EngineConfig::default();
    let pace = Pace::new(&config);
    let ms = |d: Duration| d.as_millis();
    // The priors: 100 µs a record (10,000 a second), two internal batches of 10,000 at
    // once, 0.5 s in the queue.
    assert_eq!(ms(pace.expected("Account", 3)), 500);
    // One batch: 10,000 records take 1 s; 12,000 are two batches side by side, as long as
    // the longer one.
    assert_eq!(ms(pace.expected("Account", 10_000)), 1_500);
    assert_eq!(ms(pace.expected("Account", 12_000)), 1_500);
    // Five batches two at a time: 4.2 s of processing in 2.1 s.
    assert_eq!(ms(pace.expected("Account", 42_000)), 2_600);
    // The first poll waits 25% longer (10% once the object's own pace is known); never
    // past the cap.
    assert_eq!(ms(pace.first_wait("Account", 42_000, &config)), 3_250);
    assert_eq!(
        pace.first_wait("Account", 10_000_000, &config),
        config.bulk_poll_cap
    );
    // A configured rate is the prior.
    let slow = crate::engine::EngineConfig {
        bulk_records_per_sec: 1_000.0,
        ..config.clone()
    };
    assert_eq!(ms(Pace::new(&slow).expected("Account", 42_000)), 21_500);
}

#[test]
fn the_pace_learns_what_the_org_reports_of_a_completed_job() {
    let config = crate::engine::EngineConfig::default();
    let ms = Duration::from_millis;
    let mut pace = Pace::new(&config);
    // 42,000 Accounts: in progress 200 ms after close, complete after 2,700 ms, 4,620 ms
    // of batch time in all: 110 µs a record, 1.85 batches at once.
    pace.learn(
        "Account",
        Observed {
            records: 42_000,
            took: ms(2_700),
            queue: Some(ms(200)),
            processing: Some(ms(4_620)),
        },
    );
    // 0.2 s + 42,000 × 110 µs / 1.848 = 2.7 s: the same job again is expected as it went.
    let near = |d: Duration, want: u128| d.as_millis().abs_diff(want) <= 2;
    assert!(near(pace.expected("Account", 42_000), 2_700));
    // Another object takes the run's pace until it has its own: 12,200 Opportunities
    // are one full batch long (1.1 s) plus the queue.
    assert!(near(pace.expected("Opportunity", 12_200), 1_300));
    // Without the org's processing time, the elapsed time at the parallelism believed.
    pace.learn(
        "Opportunity",
        Observed {
            records: 12_200,
            took: ms(1_700),
            queue: None,
            processing: None,
        },
    );
    // The queue is the run's (0.2 s); the longer of its two batches ran 1.5 s: 150 µs a
    // record, and the same job again is expected as it went.
    assert!(near(pace.expected("Opportunity", 12_200), 1_700));
    // Accounts keep theirs.
    assert!(near(pace.expected("Account", 42_000), 2_700));
    // Its own pace known, an object's first poll has the smaller margin; another's not.
    let own = pace.first_wait("Account", 42_000, &config).as_millis();
    assert!(own.abs_diff(2_970) <= 2, "{own}");
    let other = pace.first_wait("Contact", 12_200, &config).as_millis();
    assert!(other.abs_diff(2_125) <= 2, "{other}");
    // Complete at the first poll (no `InProgress` seen): the queue is what the batches'
    // time leaves of the job's, at the parallelism believed so far. 25,000 Accounts took
    // 1,700 ms with 3,000 ms of batches, two at a time: 200 ms in the queue.
    let mut fresh = Pace::new(&config);
    fresh.learn(
        "Account",
        Observed {
            records: 25_000,
            took: ms(1_700),
            queue: None,
            processing: Some(ms(3_000)),
        },
    );
    // 0.2 s + 3,000 records' worth (one full batch of 10,000 at 120 µs) is 1.4 s.
    assert!(near(fresh.expected("Opportunity", 3_000), 560));
    assert!(near(fresh.expected("Account", 10_000), 1_400));
    // Nothing to learn from an empty or instant job.
    let before = pace.expected("Account", 42_000);
    pace.learn("Account", Observed::default());
    assert_eq!(pace.expected("Account", 42_000), before);
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
