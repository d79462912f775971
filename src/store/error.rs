//! What a store operation fails with, and the printer that walks an error's causes.

/// The typed cause under a [`StoreError::Backend`]: a driver's error, an I/O error, JSON the
/// store cannot read back.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database, its driver or what it holds failed. `source` is the cause when there is
    /// one: the refused connection under "cannot connect to PostgreSQL at 127.0.0.1:5432".
    // The message also carries the causes' text, because most callers print errors with
    // `{}` alone; `cause_chain` skips text already shown, so walking `source()` with it
    // prints each cause once.
    #[error("the store is unreachable or failed: {context}{}", caused_by(.source.as_deref()))]
    Backend {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The store URL names no store this build can open (bad input, not a failure).
    #[error("{0}")]
    BadUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// A backend failure caused by `source` (kept, so a printer can walk down to it).
    pub fn backend(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A backend failure with no error under it: a database newer than this build, a stored
    /// value this build does not know, a feature the backend lacks.
    pub fn failed(context: impl Into<String>) -> Self {
        StoreError::Backend {
            context: context.into(),
            source: None,
        }
    }
}

/// `: ` and the cause chain under a backend error, or nothing.
fn caused_by(source: Option<&(dyn std::error::Error + Send + Sync + 'static)>) -> String {
    source.map_or_else(String::new, |s| format!(": {}", cause_chain(s)))
}

/// An error with every cause under it (`error connecting to server: Connection refused`), so
/// a refused connection, a TLS failure and a timeout read differently. The engine's client
/// uses it for transport errors too.
pub fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend error keeps its cause: `source()` reaches the I/O error, and printing the
    /// chain shows each cause once.
    #[test]
    fn a_backend_error_keeps_its_cause() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = StoreError::backend("cannot connect to PostgreSQL at 127.0.0.1:1", refused);
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("Connection refused"));
        assert_eq!(
            cause_chain(&e),
            "the store is unreachable or failed: cannot connect to PostgreSQL at 127.0.0.1:1: Connection refused"
        );
        let plain = StoreError::failed("the database is newer");
        assert!(std::error::Error::source(&plain).is_none());
        assert_eq!(
            plain.to_string(),
            "the store is unreachable or failed: the database is newer"
        );
    }
}
