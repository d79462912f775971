//! The engine configuration file (`syncgate.toml`): an `[engine]` table setting the tunables
//! of [`EngineConfig`], checked with file/line/field errors, and the content hash of the
//! configuration it resolves to.
//!
//! ```toml
//! [engine]
//! batch_size = 50
//! backoff_base = "500ms"
//! breaker_cooldown = "30s"
//! ```
//!
//! Keys left out keep their defaults. The hash is taken over the resolved configuration (every
//! key, defaults included, in a canonical form), so two files that configure the same engine
//! hash the same, and a verification recorded for one applies to the other.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::bounds::LongRetryAfter;
use super::command_config::{check_tenant_key, check_time_scale, CommandLine, ConfiguredCommands};
use super::EngineConfig;
use crate::contract::diagnostic::{line_col, parse_toml, write_location, TomlDiagnostic};
use crate::sim::time::{format_duration, parse_duration};

/// The file name looked for beside the `--contracts` directory when no `--engine-config` is
/// given.
pub const DEFAULT_FILE_NAME: &str = "syncgate.toml";

/// A resolved engine configuration and where it came from.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub config: EngineConfig,
    /// `sha256:…` of [`canonical`] of `config`.
    pub hash: String,
    /// The file read, or `None` for the built-in defaults.
    pub source: Option<PathBuf>,
    /// Engine commands the file names (not part of the hash: see [`super::command_config`]).
    pub commands: ConfiguredCommands,
}

impl EngineSettings {
    /// The built-in defaults ([`EngineConfig::default`]).
    pub fn defaults() -> Self {
        let config = EngineConfig::default();
        EngineSettings {
            hash: config_hash(&config),
            config,
            source: None,
            commands: ConfiguredCommands::default(),
        }
    }

    /// Reads `path` (see the module docs).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read the engine configuration: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a configuration file; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = parse_toml(text).map_err(|d| ConfigError::from_toml(path, d))?;
        let table = file.engine.unwrap_or_default();
        let at = |(span, field, message): Bad| {
            let (line, column) = line_col(text, span.start);
            ConfigError {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(column),
                field: Some(format!("engine.{field}")),
                message,
            }
        };
        let config = table.apply(EngineConfig::default()).map_err(at)?;
        let commands = table.commands().map_err(at)?;
        Ok(EngineSettings {
            hash: config_hash(&config),
            config,
            source: Some(path.to_path_buf()),
            commands,
        })
    }

    /// `--engine-config FILE` if given, else `syncgate.toml` beside `contracts` when it
    /// exists, else the defaults.
    pub fn resolve(explicit: Option<&Path>, contracts: &Path) -> Result<Self, ConfigError> {
        if let Some(path) = explicit {
            return Self::load(path);
        }
        let beside = path_beside(contracts);
        if beside.is_file() {
            Self::load(&beside)
        } else {
            Ok(Self::defaults())
        }
    }

    /// Where the configuration came from, for reports: the file, or `defaults`.
    pub fn source_label(&self) -> String {
        self.source
            .as_ref()
            .map_or_else(|| "defaults".to_string(), |p| p.display().to_string())
    }
}

/// `syncgate.toml` in the directory that holds `contracts`.
pub fn path_beside(contracts: &Path) -> PathBuf {
    contracts
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(DEFAULT_FILE_NAME)
}

/// A malformed configuration file: where, which key, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key, e.g. `engine.batch_size`.
    pub field: Option<String>,
    pub message: String,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field.as_deref();
        write_location(f, &self.path, self.line, self.column, field)?;
        write!(f, "{}", self.message)?;
        if self.message.contains("unknown field") {
            write!(
                f,
                "\n  help: the keys of `[engine]` are listed in README.md (\"Engine configuration\")"
            )?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn from_toml(path: &Path, d: TomlDiagnostic) -> Self {
        let message = match d.suggestion {
            Some(s) => format!("{}\n  help: {s}", d.message),
            None => d.message,
        };
        ConfigError {
            path: path.to_path_buf(),
            line: d.line,
            column: d.column,
            field: d.field,
            message,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    engine: Option<EngineTable>,
}

/// A duration written as in scenarios: `250ms`, `30s`, `15m`, `2h`, `1d`.
#[derive(Clone, Copy, Debug)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration: write e.g. \"250ms\", \"30s\", \"15m\", \"2h\" or \"1d\""
            ))
        })
    }
}

/// Every key the file may set. The engine's deliberate-fault switches are not among them.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineTable {
    batch_size: Option<Spanned<usize>>,
    max_attempts: Option<Spanned<u32>>,
    backoff_base: Option<Spanned<Dur>>,
    backoff_cap: Option<Spanned<Dur>>,
    client_name: Option<Spanned<String>>,
    max_window_waits: Option<Spanned<u32>>,
    bulk_threshold: Option<Spanned<usize>>,
    bulk_max_upload_bytes: Option<Spanned<usize>>,
    bulk_records_per_sec: Option<Spanned<f64>>,
    bulk_poll_interval: Option<Spanned<Dur>>,
    bulk_poll_cap: Option<Spanned<Dur>>,
    bulk_job_timeout: Option<Spanned<Dur>>,
    realtime_window: Option<Spanned<Dur>>,
    rate_per_sec: Option<Spanned<f64>>,
    burst: Option<Spanned<u32>>,
    max_concurrent: Option<Spanned<u32>>,
    breaker_threshold: Option<Spanned<u32>>,
    breaker_cooldown: Option<Spanned<Dur>>,
    run_deadline: Option<Spanned<Dur>>,
    retry_budget: Option<Spanned<u32>>,
    max_retry_after: Option<Spanned<Dur>>,
    on_long_retry_after: Option<Spanned<String>>,
    daily_budget: Option<Spanned<u64>>,
    command: Option<Spanned<CommandLine>>,
    command_timeout: Option<Spanned<Dur>>,
    time_scale: Option<Spanned<f64>>,
    tenants: Option<BTreeMap<Spanned<String>, TenantTable>>,
}

/// `[engine.tenants."partner/tenant"]`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantTable {
    command: Option<Spanned<CommandLine>>,
}

type Bad = (std::ops::Range<usize>, &'static str, String);

/// Takes a value if present, checking it with `ok` (which says what is wrong).
fn take<T: Clone>(
    slot: &mut T,
    value: &Option<Spanned<T>>,
    key: &'static str,
    ok: impl Fn(&T) -> Result<(), String>,
) -> Result<(), Bad> {
    if let Some(v) = value {
        ok(v.get_ref()).map_err(|m| (v.span(), key, m))?;
        *slot = v.get_ref().clone();
    }
    Ok(())
}

fn at_least<T: PartialOrd + fmt::Display + Copy>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| {
        if *v >= min {
            Ok(())
        } else {
            Err(format!("must be at least {min}, not {v}"))
        }
    }
}

fn positive_rate(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v > 0.0 {
        Ok(())
    } else {
        Err(format!("must be a number above 0, not {v}"))
    }
}

fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn nonzero_duration(d: &Dur) -> Result<(), String> {
    if d.0.is_zero() {
        Err("must be longer than 0s".into())
    } else {
        Ok(())
    }
}

impl EngineTable {
    fn apply(&self, mut c: EngineConfig) -> Result<EngineConfig, Bad> {
        take(&mut c.batch_size, &self.batch_size, "batch_size", |v| {
            if (1..=200).contains(v) {
                Ok(())
            } else {
                Err(format!(
                    "must be from 1 to 200 (Salesforce's sObject Collections limit), not {v}"
                ))
            }
        })?;
        take(
            &mut c.max_attempts,
            &self.max_attempts,
            "max_attempts",
            at_least(1),
        )?;
        let mut base = Dur(c.backoff.base);
        let mut cap = Dur(c.backoff.cap);
        take(
            &mut base,
            &self.backoff_base,
            "backoff_base",
            nonzero_duration,
        )?;
        take(&mut cap, &self.backoff_cap, "backoff_cap", nonzero_duration)?;
        if base.0 > cap.0 {
            let span = self
                .backoff_cap
                .as_ref()
                .or(self.backoff_base.as_ref())
                .map_or(0..0, Spanned::span);
            return Err((
                span,
                "backoff_cap",
                format!(
                    "the backoff cap ({}) is below its base ({})",
                    format_duration(cap.0),
                    format_duration(base.0)
                ),
            ));
        }
        c.backoff.base = base.0;
        c.backoff.cap = cap.0;
        take(&mut c.client_name, &self.client_name, "client_name", |v| {
            if v.is_empty() || !v.chars().all(|ch| ch.is_ascii_graphic()) {
                Err("must be a non-empty name without spaces".into())
            } else {
                Ok(())
            }
        })?;
        take(
            &mut c.max_window_waits,
            &self.max_window_waits,
            "max_window_waits",
            any,
        )?;
        take(
            &mut c.bulk_threshold,
            &self.bulk_threshold,
            "bulk_threshold",
            any,
        )?;
        take(
            &mut c.bulk_max_upload_bytes,
            &self.bulk_max_upload_bytes,
            "bulk_max_upload_bytes",
            |v| {
                if (1..=super::bulk::MAX_UPLOAD_BYTES).contains(v) {
                    Ok(())
                } else {
                    Err(format!(
                        "must be from 1 to {} (Bulk API 2.0's upload limit), not {v}",
                        super::bulk::MAX_UPLOAD_BYTES
                    ))
                }
            },
        )?;
        take(
            &mut c.bulk_records_per_sec,
            &self.bulk_records_per_sec,
            "bulk_records_per_sec",
            positive_rate,
        )?;
        let mut poll = Dur(c.bulk_poll_interval);
        let mut poll_cap = Dur(c.bulk_poll_cap);
        take(
            &mut poll,
            &self.bulk_poll_interval,
            "bulk_poll_interval",
            nonzero_duration,
        )?;
        take(
            &mut poll_cap,
            &self.bulk_poll_cap,
            "bulk_poll_cap",
            nonzero_duration,
        )?;
        if poll.0 > poll_cap.0 {
            let span = self
                .bulk_poll_cap
                .as_ref()
                .or(self.bulk_poll_interval.as_ref())
                .map_or(0..0, Spanned::span);
            return Err((
                span,
                "bulk_poll_cap",
                format!(
                    "the poll cap ({}) is below the poll interval ({})",
                    format_duration(poll_cap.0),
                    format_duration(poll.0)
                ),
            ));
        }
        c.bulk_poll_interval = poll.0;
        c.bulk_poll_cap = poll_cap.0;
        let mut timeout = Dur(c.bulk_job_timeout);
        take(
            &mut timeout,
            &self.bulk_job_timeout,
            "bulk_job_timeout",
            nonzero_duration,
        )?;
        c.bulk_job_timeout = timeout.0;
        let mut window = Dur(c.realtime_window);
        take(&mut window, &self.realtime_window, "realtime_window", any)?;
        c.realtime_window = window.0;
        take(
            &mut c.rate_per_sec,
            &self.rate_per_sec,
            "rate_per_sec",
            positive_rate,
        )?;
        take(&mut c.burst, &self.burst, "burst", at_least(1))?;
        take(
            &mut c.max_concurrent,
            &self.max_concurrent,
            "max_concurrent",
            at_least(1),
        )?;
        take(
            &mut c.breaker_threshold,
            &self.breaker_threshold,
            "breaker_threshold",
            any,
        )?;
        let mut cooldown = Dur(c.breaker_cooldown);
        take(
            &mut cooldown,
            &self.breaker_cooldown,
            "breaker_cooldown",
            any,
        )?;
        c.breaker_cooldown = cooldown.0;
        if let Some(b) = &self.daily_budget {
            at_least(1u64)(b.get_ref()).map_err(|m| (b.span(), "daily_budget", m))?;
            c.daily_budget = Some(*b.get_ref());
        }
        let mut deadline = Dur(c.limits.run_deadline);
        take(
            &mut deadline,
            &self.run_deadline,
            "run_deadline",
            nonzero_duration,
        )?;
        c.limits.run_deadline = deadline.0;
        take(
            &mut c.limits.retry_budget,
            &self.retry_budget,
            "retry_budget",
            any,
        )?;
        let mut cap = Dur(c.limits.max_retry_after);
        take(&mut cap, &self.max_retry_after, "max_retry_after", any)?;
        c.limits.max_retry_after = cap.0;
        if let Some(v) = &self.on_long_retry_after {
            c.limits.on_long_retry_after = LongRetryAfter::parse(v.get_ref()).ok_or_else(|| {
                (
                    v.span(),
                    "on_long_retry_after",
                    format!("must be \"dead-letter\" or \"stop\", not {:?}", v.get_ref()),
                )
            })?;
        }
        Ok(c)
    }

    /// The engine-command keys ([`super::command_config`]).
    fn commands(&self) -> Result<ConfiguredCommands, Bad> {
        let mut out = ConfiguredCommands {
            default: self.command.as_ref().map(|c| c.get_ref().0.clone()),
            ..ConfiguredCommands::default()
        };
        if let Some(t) = &self.command_timeout {
            nonzero_duration(t.get_ref()).map_err(|m| (t.span(), "command_timeout", m))?;
            out.timeout = Some(t.get_ref().0);
        }
        if let Some(s) = &self.time_scale {
            check_time_scale(s.get_ref()).map_err(|m| (s.span(), "time_scale", m))?;
            out.time_scale = Some(*s.get_ref());
        }
        for (key, table) in self.tenants.iter().flatten() {
            check_tenant_key(key.get_ref()).map_err(|m| (key.span(), "tenants", m))?;
            let Some(command) = &table.command else {
                return Err((
                    key.span(),
                    "tenants",
                    format!("`{}` sets no `command`", key.get_ref()),
                ));
            };
            out.per_tenant
                .insert(key.get_ref().clone(), command.get_ref().0.clone());
        }
        Ok(out)
    }
}

/// The configuration's tunables, one `key = value` line each in key order (durations in
/// milliseconds): what the hash is taken over. The deliberate-fault switches are not part of
/// it (a configuration file cannot set them).
pub fn canonical(c: &EngineConfig) -> String {
    let ms = |d: Duration| format!("{}", d.as_millis());
    let fields: BTreeMap<&str, String> = [
        ("batch_size", c.batch_size.to_string()),
        ("max_attempts", c.max_attempts.to_string()),
        ("backoff_base_ms", ms(c.backoff.base)),
        ("backoff_cap_ms", ms(c.backoff.cap)),
        ("client_name", format!("{:?}", c.client_name)),
        ("max_window_waits", c.max_window_waits.to_string()),
        ("bulk_threshold", c.bulk_threshold.to_string()),
        ("bulk_max_upload_bytes", c.bulk_max_upload_bytes.to_string()),
        (
            "bulk_records_per_sec",
            format!("{:?}", c.bulk_records_per_sec),
        ),
        ("bulk_poll_interval_ms", ms(c.bulk_poll_interval)),
        ("bulk_poll_cap_ms", ms(c.bulk_poll_cap)),
        ("bulk_job_timeout_ms", ms(c.bulk_job_timeout)),
        ("realtime_window_ms", ms(c.realtime_window)),
        ("rate_per_sec", format!("{:?}", c.rate_per_sec)),
        ("burst", c.burst.to_string()),
        ("max_concurrent", c.max_concurrent.to_string()),
        ("breaker_threshold", c.breaker_threshold.to_string()),
        ("breaker_cooldown_ms", ms(c.breaker_cooldown)),
        ("run_deadline_ms", ms(c.limits.run_deadline)),
        ("retry_budget", c.limits.retry_budget.to_string()),
        ("max_retry_after_ms", ms(c.limits.max_retry_after)),
        (
            "on_long_retry_after",
            format!("{:?}", c.limits.on_long_retry_after.label()),
        ),
    ]
    .into_iter()
    .collect();
    // Keys added since the first release enter the canonical form only when set, so a
    // configuration that does not use them keeps the hash it was verified under.
    let mut fields = fields;
    if let Some(b) = c.daily_budget {
        fields.insert("daily_budget", b.to_string());
    }
    let mut out = String::from("[engine]\n");
    for (k, v) in fields {
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

/// `sha256:…` of [`canonical`].
pub fn config_hash(c: &EngineConfig) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(canonical(c).as_bytes()))
    )
}

#[cfg(test)]
mod tests;
