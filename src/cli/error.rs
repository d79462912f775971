//! The command line's one error type: what went wrong, the exit code it maps to, and the
//! printer that shows its whole cause chain. Every command returns [`CliResult`];
//! `main_impl` prints the error (if any) and exits with [`CliError::exit_code`].

use std::error::Error as StdError;
use std::fmt;

use crate::contract::pacts::PactGenError;
use crate::contract::publish::PublishError;
use crate::contract::{BundleError, RegistryError};
use crate::engine::client::ClientError;
use crate::engine::config_file::ConfigError;
use crate::engine::redrive::RedriveError;
use crate::engine::runner::RunError;
use crate::engine::EngineError;
use crate::sim::scenario::ScenarioError;
use crate::store::limiter::LimitError;
use crate::store::StoreError;
use crate::verify::preflight::PreflightError;
use crate::verify::GateError;

/// Exit codes, in one place (README, "Exit codes").
pub mod exit {
    /// Everything passed.
    pub const PASSED: i32 = 0;
    /// The gate's verdict is "fail" (or a sync stopped at its configured bounds).
    pub const FAILED: i32 = 1;
    /// Bad usage or bad input (a malformed bundle, scenario or fixture).
    pub const BAD_INPUT: i32 = 2;
    /// Something went wrong inside syncgate or under it (the store, I/O).
    pub const INTERNAL: i32 = 3;
}

/// How a command that ran to its end came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Passed,
    /// Exit 1: the verdict is "fail" (a check failed, a change breaks, records were
    /// dead-lettered); the command itself worked.
    Failed,
}

impl Outcome {
    /// `Passed` when `passed`, else `Failed`.
    pub fn of(passed: bool) -> Outcome {
        if passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Passed => exit::PASSED,
            Outcome::Failed => exit::FAILED,
        }
    }
}

/// What every command returns.
pub type CliResult = Result<Outcome, CliError>;

/// What kind of failure an error is: it decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The command stopped with a "fail" verdict of its own (a publish refused as breaking
    /// or immutable, a sync stopped by its deadline or retry budget): exit 1.
    Failed,
    /// Bad usage or bad input; the message names the file, line or field: exit 2.
    BadInput,
    /// The store, the network, the file system or syncgate itself failed: exit 3.
    Internal,
}

/// A command's failure: its kind, what the command line says about it, and the error
/// underneath (whose own causes the printer walks).
#[derive(Debug)]
pub struct CliError {
    kind: Kind,
    /// What the command line says; `None` lets `cause` speak for itself (an error passed
    /// up with `?` as it is).
    message: Option<String>,
    cause: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl CliError {
    pub fn new(kind: Kind, message: impl fmt::Display) -> CliError {
        CliError {
            kind,
            message: Some(message.to_string()),
            cause: None,
        }
    }

    pub fn bad_input(message: impl fmt::Display) -> CliError {
        CliError::new(Kind::BadInput, message)
    }

    pub fn internal(message: impl fmt::Display) -> CliError {
        CliError::new(Kind::Internal, message)
    }

    pub fn failed(message: impl fmt::Display) -> CliError {
        CliError::new(Kind::Failed, message)
    }

    /// `error` as it is, of `kind` (for the `From` conversions).
    fn wrap(kind: Kind, error: impl StdError + Send + Sync + 'static) -> CliError {
        CliError {
            kind,
            message: None,
            cause: Some(Box::new(error)),
        }
    }

    /// The same error, caused by `cause` (printed on the lines below the message).
    pub fn because(mut self, cause: impl StdError + Send + Sync + 'static) -> CliError {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The same kind of error, said as `message`, with this one as its cause.
    pub fn context(self, message: impl fmt::Display) -> CliError {
        CliError {
            kind: self.kind,
            message: Some(message.to_string()),
            cause: Some(Box::new(self)),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Failed => exit::FAILED,
            Kind::BadInput => exit::BAD_INPUT,
            Kind::Internal => exit::INTERNAL,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.message, &self.cause) {
            (Some(m), _) => f.write_str(m),
            (None, Some(c)) => c.fmt(f),
            (None, None) => Ok(()),
        }
    }
}

impl StdError for CliError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let cause = self.cause.as_deref()?;
        match self.message {
            Some(_) => Some(cause),
            // `cause` is what Display printed: its source is the next link.
            None => cause.source(),
        }
    }
}

/// `.context("…")` on a result whose error converts into a [`CliError`]: the kind comes
/// from the conversion, the message from here, the error becomes the first cause.
pub trait Context<T> {
    fn context(self, message: impl fmt::Display) -> Result<T, CliError>;
}

impl<T, E: Into<CliError>> Context<T> for Result<T, E> {
    fn context(self, message: impl fmt::Display) -> Result<T, CliError> {
        self.map_err(|e| e.into().context(message))
    }
}

/// What is printed on stderr for `error`: `error: …`, then one `  caused by: …` line per
/// cause. A cause whose text the lines above already say is skipped: library errors often
/// repeat their source in their own message (`"…: {0}"`).
pub fn render(error: &dyn StdError) -> String {
    let first = error.to_string();
    let mut out = format!("error: {first}\n");
    let mut said = first;
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !said.contains(&text) {
            out.push_str(&format!("  caused by: {text}\n"));
            said.push('\n');
            said.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// The library errors whose kind does not depend on the variant.
macro_rules! of_kind {
    ($kind:expr => $($error:ty),+ $(,)?) => {
        $(impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                CliError::wrap($kind, e)
            }
        })+
    };
}

of_kind!(Kind::BadInput => BundleError, ScenarioError, ConfigError, RegistryError, PactGenError,
    crate::broker::tokens::TokenError);
of_kind!(Kind::Internal => std::io::Error, serde_json::Error, ClientError, LimitError,
    crate::mock::tls::TlsError);

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let kind = match e {
            StoreError::BadUrl(_) => Kind::BadInput,
            _ => Kind::Internal,
        };
        CliError::wrap(kind, e)
    }
}

/// A gate that could not start its mock org or use the store failed inside; anything else
/// it refuses is the input's fault (a bundle, a scenario, a fixture, a flag).
fn gate_kind(e: &GateError) -> Kind {
    match e {
        GateError::Mock(_) | GateError::Store(_) => Kind::Internal,
        _ => Kind::BadInput,
    }
}

impl From<crate::verify::registry::RegistryReadError> for CliError {
    fn from(e: crate::verify::registry::RegistryReadError) -> Self {
        use crate::verify::registry::RegistryReadError;
        let kind = match &e {
            RegistryReadError::Store(StoreError::BadUrl(_)) => Kind::BadInput,
            _ => Kind::Internal,
        };
        CliError::wrap(kind, e)
    }
}

impl From<GateError> for CliError {
    fn from(e: GateError) -> Self {
        CliError::wrap(gate_kind(&e), e)
    }
}

impl From<PreflightError> for CliError {
    fn from(e: PreflightError) -> Self {
        let kind = match &e {
            PreflightError::Gate(g) => gate_kind(g),
            _ => Kind::BadInput,
        };
        CliError::wrap(kind, e)
    }
}

impl From<PublishError> for CliError {
    fn from(e: PublishError) -> Self {
        let kind = match e {
            // The registry refused the bundle: the verdict of `publish` is "no".
            PublishError::Immutable { .. } | PublishError::Breaking { .. } => Kind::Failed,
            _ => Kind::Internal,
        };
        CliError::wrap(kind, e)
    }
}

impl From<RunError> for CliError {
    fn from(e: RunError) -> Self {
        let kind = match e {
            RunError::Source(_) => Kind::BadInput,
            // A run that reached its deadline or retry budget ended as configured: it
            // failed (exit 1), the tool did not.
            RunError::Engine(EngineError::Bounded(_)) => Kind::Failed,
            _ => Kind::Internal,
        };
        CliError::wrap(kind, e)
    }
}

impl From<RedriveError> for CliError {
    fn from(e: RedriveError) -> Self {
        let kind = match e {
            RedriveError::BadRate(_) => Kind::BadInput,
            _ => Kind::Internal,
        };
        CliError::wrap(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library error that names its cause in its own message, as many of ours do.
    #[derive(Debug, thiserror::Error)]
    #[error("the store is unreachable: {0}")]
    struct Repeats(#[source] std::io::Error);

    fn refused() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused")
    }

    #[test]
    fn each_kind_has_its_documented_exit_code() {
        assert_eq!(Outcome::Passed.exit_code(), 0);
        assert_eq!(Outcome::of(false).exit_code(), 1);
        assert_eq!(CliError::failed("no").exit_code(), 1);
        assert_eq!(CliError::bad_input("bad").exit_code(), 2);
        assert_eq!(CliError::internal("broken").exit_code(), 3);
    }

    #[test]
    fn library_errors_map_to_the_codes_the_readme_documents() {
        let code = |e: CliError| e.exit_code();
        assert_eq!(code(StoreError::failed("down").into()), 3);
        assert_eq!(code(StoreError::BadUrl("mysql://".into()).into()), 2);
        assert_eq!(code(GateError::Usage("--shard 3/2".into()).into()), 2);
        assert_eq!(code(GateError::Store("locked".into()).into()), 3);
        assert_eq!(code(GateError::Mock(refused()).into()), 3);
        assert_eq!(
            code(PreflightError::Gate(GateError::Store("locked".into())).into()),
            3
        );
        assert_eq!(code(PreflightError::Field("no spec".into()).into()), 2);
        assert_eq!(code(RunError::Source("no table".into()).into()), 2);
        assert_eq!(code(RunError::Changes("stream gone".into()).into()), 3);
        assert_eq!(code(RedriveError::BadRate("--rate 0".into()).into()), 2);
        assert_eq!(code(refused().into()), 3);
        let breaking = PublishError::Breaking {
            partner: "p".into(),
            tenant: "t".into(),
            version: "2.0.0".into(),
            previous: "1.0.0".into(),
            suggested: "3.0.0".into(),
            count: 1,
            explanation: String::new(),
        };
        assert_eq!(code(breaking.into()), 1);
        // Context keeps the kind of what it wraps.
        let opened: Result<(), StoreError> = Err(StoreError::failed("down"));
        assert_eq!(
            opened
                .context("cannot open the store")
                .unwrap_err()
                .exit_code(),
            3
        );
    }

    #[test]
    fn the_printer_walks_the_cause_chain_once_per_cause() {
        let e = CliError::internal("cannot open the store").because(Repeats(refused()));
        // The io error is said by `Repeats` already: no line of its own.
        insta::assert_snapshot!(render(&e), @r"
        error: cannot open the store
          caused by: the store is unreachable: Connection refused
        ");
        let wrapped =
            CliError::from(std::io::Error::other(Repeats(refused()))).context("--report out.json");
        insta::assert_snapshot!(render(&wrapped), @r"
        error: --report out.json
          caused by: the store is unreachable: Connection refused
        ");
        // An error passed up as it is prints as itself, then its own causes.
        let bare = CliError::wrap(Kind::Internal, Plain(refused()));
        assert_eq!(bare.to_string(), "the sync stopped");
        insta::assert_snapshot!(render(&bare), @r"
        error: the sync stopped
          caused by: Connection refused
        ");
        assert_eq!(
            render(&CliError::bad_input("--rate 0")),
            "error: --rate 0\n"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the sync stopped")]
    struct Plain(#[source] std::io::Error);
}
