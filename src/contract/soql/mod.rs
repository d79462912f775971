//! The SOQL subset the mock answers and bundle validation rules use: a parser and an
//! evaluator over records, with Salesforce's `MALFORMED_QUERY` / `INVALID_FIELD` errors.
//!
//! Supported: `SELECT f1, Parent.Field | COUNT() FROM Obj [WHERE …] [ORDER BY f [ASC|DESC]
//! [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]`, where conditions combine `=`, `!=`, `<>`,
//! `<`, `<=`, `>`, `>=`, `IN (…)`, `NOT IN (…)`, `LIKE`, `AND`, `OR`, `NOT` and parentheses
//! over strings, numbers, `true`/`false`, `null`, dates, datetimes and the date literals
//! `TODAY`, `YESTERDAY`, `TOMORROW`, `LAST_N_DAYS:n`, `NEXT_N_DAYS:n`. Bundle validation
//! rules reuse the condition grammar ([`parse_condition`]).
//!
//! One query cannot exhaust the stack: parentheses and `NOT` nest at most [`MAX_NESTING`]
//! deep, and a condition has at most [`MAX_OPERATORS`] `AND`/`OR`/`NOT` operators (the
//! parse tree, its evaluation and its drop are bounded by both); beyond, `MALFORMED_QUERY`.
//!
//! Layout: `lexer` turns text into tokens, `parser` builds the [`Query`] or [`Expr`]
//! within the limits above, `eval` answers a condition for one record and orders values.

mod eval;
mod lexer;
mod parser;

use std::time::Duration;

use crate::sim::Timestamp;

pub use eval::{eval, order_values};
pub use parser::{parse, parse_condition, MAX_NESTING, MAX_OPERATORS};

/// A query or condition that cannot be answered, with Salesforce's error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

fn malformed(message: impl Into<String>) -> SoqlError {
    SoqlError {
        code: "MALFORMED_QUERY",
        message: message.into(),
    }
}

/// A field reference: `Name`, or `Account.Name` through a relationship.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldPath {
    pub parts: Vec<String>,
    /// 1-based column in the query text, for error messages.
    pub column: usize,
}

impl FieldPath {
    pub fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    Count,
    Fields(Vec<FieldPath>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    pub field: FieldPath,
    pub descending: bool,
    pub nulls_last: bool,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub select: Select,
    pub object: String,
    pub filter: Option<Expr>,
    pub order: Vec<OrderBy>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    /// A date, datetime or date literal: the instants `[start, end)` it covers.
    Range(Timestamp, Timestamp),
    /// A relative date literal, resolved against "now" when evaluated.
    Relative(Relative),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relative {
    Today,
    Yesterday,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
}

/// A boolean condition over one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(FieldPath, Op, Literal),
    In(FieldPath, Vec<Literal>, bool),
    Like(FieldPath, String),
}

impl Expr {
    /// Every field the condition reads.
    pub fn fields_mut(&mut self) -> Vec<&mut FieldPath> {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.fields_mut();
                v.extend(b.fields_mut());
                v
            }
            Expr::Not(e) => e.fields_mut(),
            Expr::Cmp(f, _, _) | Expr::In(f, _, _) | Expr::Like(f, _) => vec![f],
        }
    }
}

/// One day, for date literals (`2026-01-05` covers a day) and relative dates.
const DAY: Duration = Duration::from_secs(86_400);
