//! Tests of `config_file`.

use super::*;

fn parse(text: &str) -> Result<EngineSettings, ConfigError> {
    EngineSettings::parse(Path::new("syncgate.toml"), text)
}

#[test]
fn every_key_is_read_and_defaults_fill_the_rest() {
    let s = parse(
        "[engine]\nbatch_size = 50\nmax_attempts = 3\nbackoff_base = \"1s\"\nbackoff_cap = \"2m\"\n\
         client_name = \"acme-sync\"\nmax_window_waits = 0\nbulk_threshold = 10\n\
         bulk_max_upload_bytes = 1000\nbulk_records_per_sec = 50.5\nbulk_poll_interval = \"1s\"\n\
         bulk_poll_cap = \"10s\"\nbulk_job_timeout = \"1h\"\nrealtime_window = \"5m\"\n\
         rate_per_sec = 5.0\nburst = 7\nmax_concurrent = 3\nbreaker_threshold = 0\n\
         breaker_cooldown = \"15m\"\nrun_deadline = \"20m\"\nretry_budget = 9\n\
         max_retry_after = \"2m\"\non_long_retry_after = \"dead-letter\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let c = &s.config;
    assert_eq!(c.batch_size, 50);
    assert_eq!(c.max_attempts, 3);
    assert_eq!(c.backoff.base, Duration::from_secs(1));
    assert_eq!(c.backoff.cap, Duration::from_secs(120));
    assert_eq!(c.client_name, "acme-sync");
    assert_eq!(c.max_window_waits, 0);
    assert_eq!(c.bulk_threshold, 10);
    assert_eq!(c.bulk_max_upload_bytes, 1000);
    assert_eq!(c.bulk_records_per_sec, 50.5);
    assert_eq!(c.bulk_poll_interval, Duration::from_secs(1));
    assert_eq!(c.bulk_poll_cap, Duration::from_secs(10));
    assert_eq!(c.bulk_job_timeout, Duration::from_secs(3600));
    assert_eq!(c.realtime_window, Duration::from_secs(300));
    assert_eq!(c.rate_per_sec, 5.0);
    assert_eq!(c.burst, 7);
    assert_eq!(c.max_concurrent, 3);
    assert_eq!(c.breaker_threshold, 0);
    assert_eq!(c.breaker_cooldown, Duration::from_secs(900));
    assert_eq!(c.limits.run_deadline, Duration::from_secs(1200));
    assert_eq!(c.limits.retry_budget, 9);
    assert_eq!(c.limits.max_retry_after, Duration::from_secs(120));
    assert_eq!(c.limits.on_long_retry_after, LongRetryAfter::DeadLetter);
    assert_ne!(s.hash, EngineSettings::defaults().hash);
}

#[test]
fn the_hash_follows_the_resolved_configuration_not_the_text() {
    let empty = parse("").unwrap_or_else(|e| panic!("{e}"));
    let spelled = parse("# the defaults, spelled out\n[engine]\nbatch_size = 200\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(empty.hash, EngineSettings::defaults().hash);
    assert_eq!(spelled.hash, empty.hash);
    let fifty = parse("[engine]\nbatch_size = 50\n").unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(fifty.hash, empty.hash);
    assert!(fifty.hash.starts_with("sha256:") && fifty.hash.len() == 71);
    // The run's bounds are part of the configuration a verification vouches for.
    for bound in [
        "run_deadline = \"1h\"",
        "retry_budget = 5",
        "max_retry_after = \"1m\"",
        "on_long_retry_after = \"dead-letter\"",
    ] {
        let other = parse(&format!("[engine]\n{bound}\n")).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(other.hash, empty.hash, "{bound}");
    }
}

#[test]
fn unknown_keys_and_bad_values_name_file_line_and_key() {
    let e = parse("[engine]\nbatch_size = 50\nbatch_sise = 10\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("syncgate.toml:3:1:"), "{e}");
    assert!(e.contains("unknown field `batch_sise`"), "{e}");
    let e = parse("[engine]\n\nbatch_size = 500\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        "syncgate.toml:3:14: `engine.batch_size`: must be from 1 to 200 (Salesforce's sObject Collections limit), not 500"
    );
    let e = parse("[engine]\nbreaker_cooldown = \"soon\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("syncgate.toml:2:"), "{e}");
    assert!(e.contains("`engine.breaker_cooldown`"), "{e}");
    assert!(e.contains("`soon` is not a duration"), "{e}");
    let e = parse("[engine]\nrate_per_sec = 0.0\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("`engine.rate_per_sec`: must be a number above 0"),
        "{e}"
    );
    let e = parse("[engine]\nbackoff_base = \"2m\"\nbackoff_cap = \"1m\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("syncgate.toml:3:"), "{e}");
    assert!(e.contains("below its base"), "{e}");
    let e = parse("[engine]\non_long_retry_after = \"wait\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        "syncgate.toml:2:23: `engine.on_long_retry_after`: must be \"dead-letter\" or \"stop\", not \"wait\""
    );
    let e = parse("[engine]\nrun_deadline = \"0s\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("`engine.run_deadline`: must be longer than 0s"),
        "{e}"
    );
    // The deliberate-fault switches of earlier versions are not settings (they are not
    // in the shipped engine at all): `tests/it/engine_command.rs` checks the file refuses one.
    let e = parse("[sync]\nbatch_size = 1\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("unknown field `sync`"), "{e}");
}

#[test]
fn the_file_is_looked_for_beside_the_contracts_directory() {
    assert_eq!(
        path_beside(Path::new("contracts")),
        PathBuf::from("syncgate.toml")
    );
    assert_eq!(
        path_beside(Path::new("/srv/team/contracts")),
        PathBuf::from("/srv/team/syncgate.toml")
    );
}

#[test]
fn engine_commands_for_every_tenant_and_per_tenant_stay_out_of_the_hash() {
    let s = parse(
        "[engine]\nbatch_size = 50\ncommand = [\"python3\", \"my engine.py\", \"$HOME\"]\n\
         command_timeout = \"5m\"\ntime_scale = 600\n\
         [engine.tenants.\"acme/prod\"]\ncommand = \"java -jar sync.jar\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.commands.default.as_deref(),
        Some("python3 'my engine.py' '$HOME'")
    );
    assert_eq!(
        s.commands.for_tenant("acme/prod"),
        Some("java -jar sync.jar")
    );
    assert_eq!(
        s.commands.for_tenant("acme/sandbox"),
        Some("python3 'my engine.py' '$HOME'")
    );
    assert_eq!(s.commands.timeout, Some(Duration::from_secs(300)));
    assert_eq!(s.commands.time_scale, Some(600.0));
    let plain = parse("[engine]\nbatch_size = 50\n").unwrap_or_else(|e| panic!("{e}"));
    let budgeted =
        parse("[engine]\nbatch_size = 50\ndaily_budget = 900\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(budgeted.config.daily_budget, Some(900));
    assert_eq!(budgeted.config.local_policy().daily_budget, 900);
    assert_ne!(budgeted.hash, plain.hash, "a budget is engine tuning");
    assert!(parse("[engine]\ndaily_budget = 0\n").is_err());
    assert_eq!(s.hash, plain.hash, "commands are not engine tuning");
    assert!(!plain.commands.any());

    let e = parse("[engine]\ncommand = []\n").unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(2), Some("engine.command")),
        "{e}"
    );
    let e = parse("[engine]\ntime_scale = 0.5\n").unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref()),
        (Some(2), Some("engine.time_scale")),
        "{e}"
    );
    let e = parse("[engine.tenants.acme]\ncommand = \"x\"\n").unwrap_err();
    assert_eq!(e.field.as_deref(), Some("engine.tenants"), "{e}");
    assert!(e.to_string().contains("partner/tenant"), "{e}");
    let e = parse("[engine.tenants.\"a/b\"]\ncomand = \"x\"\n").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
}
