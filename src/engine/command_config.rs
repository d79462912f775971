//! The engine-command keys of `syncgate.toml`: a foreign engine the gate judges instead of
//! syncgate's own (docs/engine-protocol.md), for every tenant or per tenant.
//!
//! ```toml
//! [engine]
//! command = ["python3", "engines/sync.py"]   # or one shell string: "python3 engines/sync.py"
//! command_timeout = "5m"
//! time_scale = 3600
//!
//! [engine.tenants."northwind-outfitters/production"]
//! command = ["java", "-jar", "sync.jar"]
//! ```
//!
//! None of these keys is part of the configuration hash: they say which engine is judged,
//! not how syncgate's engine is tuned (and a gate that judged a command records no
//! verification for syncgate's engine).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A command as the file writes it: one shell string, or a program and its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLine(pub String);

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Shell(String),
            Argv(Vec<String>),
        }
        let line = match Written::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "must be a shell command string or an array of strings (program, then arguments)",
            )
        })? {
            Written::Shell(s) => s,
            // The gate runs commands with `sh -c`: quote each word so an argument with a
            // space or a `$` reaches the program as written (`shell-words` quotes for sh).
            Written::Argv(words) => shell_words::join(words),
        };
        if line.trim().is_empty() {
            return Err(serde::de::Error::custom("must not be empty"));
        }
        Ok(CommandLine(line))
    }
}

/// The engine commands a configuration file names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfiguredCommands {
    /// `[engine] command`: every tenant without one of its own.
    pub default: Option<String>,
    /// `[engine.tenants."partner/tenant"] command`.
    pub per_tenant: BTreeMap<String, String>,
    /// `[engine] command_timeout`: wall-clock limit of one run of a command.
    pub timeout: Option<Duration>,
    /// `[engine] time_scale`: org seconds per wall second.
    pub time_scale: Option<f64>,
}

impl ConfiguredCommands {
    /// The command that judges `tenant` (`partner/tenant`), if any.
    pub fn for_tenant(&self, tenant: &str) -> Option<&str> {
        self.per_tenant
            .get(tenant)
            .or(self.default.as_ref())
            .map(String::as_str)
    }

    /// Whether any tenant is judged through a command.
    pub fn any(&self) -> bool {
        self.default.is_some() || !self.per_tenant.is_empty()
    }
}

/// Why a `[engine.tenants.…]` key is not `partner/tenant`.
pub(super) fn check_tenant_key(key: &str) -> Result<(), String> {
    match key.split_once('/') {
        Some((p, t)) if !p.is_empty() && !t.is_empty() && !t.contains('/') => Ok(()),
        _ => Err(format!(
            "`{key}` is not a tenant: write [engine.tenants.\"partner/tenant\"]"
        )),
    }
}

/// Why a time scale is unusable.
pub(super) fn check_time_scale(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v >= 1.0 {
        Ok(())
    } else {
        Err(format!(
            "must be a number of at least 1 (e.g. 3600), not {v}"
        ))
    }
}
