//! A bundle that could not be loaded: the file, line, column and dotted key involved, what
//! is wrong and how to fix it.

use std::fmt;
use std::path::{Path, PathBuf};

use super::FieldType;
use crate::contract::diagnostic::{write_location, TomlDiagnostic};

/// A bundle that could not be loaded, with the file, position and field involved.
#[derive(Debug, thiserror::Error)]
pub struct BundleError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending key, e.g. `objects.Account.fields.Name.type`.
    pub field: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.field.as_deref();
        write_location(f, &self.path, self.line, self.column, field)?;
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl BundleError {
    pub(super) fn at(path: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        BundleError {
            path: path.to_path_buf(),
            line: None,
            column: None,
            field: Some(field.into()),
            message: message.into(),
            help: None,
        }
    }

    pub(super) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(super) fn from_toml(path: &Path, d: TomlDiagnostic) -> Self {
        let help = if let Some(s) = d.suggestion {
            Some(s)
        } else if d.message.contains("unknown variant") && d.message.contains("string") {
            Some(format!("field types are: {}", FieldType::ALL.join(", ")))
        } else if d.message.contains("unknown field") {
            Some("see contracts/README.md for the keys a bundle may hold".to_string())
        } else {
            None
        };
        BundleError {
            path: path.to_path_buf(),
            line: d.line,
            column: d.column,
            field: d.field,
            message: d.message,
            help,
        }
    }
}
