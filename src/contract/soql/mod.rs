//! The SOQL subset the mock answers and bundle validation rules use: a parser and an
//! evaluator over records, with Salesforce's `MALFORMED_QUERY` / `INVALID_FIELD` errors;
//! and the SOSL `FIND` subset the mock's `search` resource answers (`MALFORMED_SEARCH`).
//!
//! Supported: `SELECT f1, Parent.Field, (SELECT f FROM Children …) | COUNT() FROM Obj
//! [WHERE …] [GROUP BY f, … [HAVING …]] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …]
//! [LIMIT n] [OFFSET n]`, where conditions combine `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`,
//! `IN (…)`, `NOT IN (…)`, `LIKE`, `AND`, `OR`, `NOT` and parentheses over strings, numbers,
//! `true`/`false`, `null`, dates, datetimes and the date literals `TODAY`, `YESTERDAY`,
//! `TOMORROW`, `LAST_N_DAYS:n`, `NEXT_N_DAYS:n`. Aggregate queries select `COUNT(f)`,
//! `COUNT_DISTINCT(f)`, `SUM(f)`, `AVG(f)`, `MIN(f)`, `MAX(f)` (with an optional alias) and
//! the grouped fields. Bundle validation rules reuse the condition grammar
//! ([`parse_condition`]).
//!
//! One query cannot exhaust the stack: parentheses and `NOT` nest at most [`MAX_NESTING`]
//! deep, a condition has at most [`MAX_OPERATORS`] `AND`/`OR`/`NOT` operators (the parse
//! tree, its evaluation and its drop are bounded by both), and child subqueries nest one
//! level; beyond, `MALFORMED_QUERY`.
//!
//! Layout: `lexer` turns text into tokens, `parser` builds the [`Query`] or [`Expr`]
//! within the limits above, `eval` answers a condition for one record and orders values,
//! `aggregate` groups records and computes an aggregate query's rows, `search` parses and
//! matches SOSL.

mod aggregate;
mod eval;
mod lexer;
mod parser;
mod search;

use std::time::Duration;

use crate::sim::Timestamp;

pub use aggregate::{aggregate, Group};
pub use eval::{eval, order_values};
pub use parser::{parse, parse_condition, MAX_NESTING, MAX_OPERATORS};
pub use search::{parse_search, parse_term, Scope, Search, SearchObject, Term};

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

/// What a query selects.
#[derive(Clone, Debug, PartialEq)]
pub enum Select {
    /// `COUNT()`: the number of matches only.
    Count,
    /// Fields, aggregates and child subqueries, in the order written.
    Items(Vec<Item>),
}

/// One element of a `SELECT` list.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// A field of the object or of a parent; aliased only in aggregate queries.
    Field {
        path: FieldPath,
        alias: Option<String>,
    },
    /// `SUM(Amount) total`: an aggregate over the field, named by its alias or `exprN`.
    Aggregate {
        agg: Aggregate,
        alias: Option<String>,
    },
    /// `(SELECT LastName FROM Contacts)`: the children through a child relationship, whose
    /// name is the subquery's `object`.
    Child(Box<Query>),
}

/// The aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

impl Func {
    /// The function by its SOQL name, any case.
    pub fn named(name: &str) -> Option<Func> {
        let f = match name.to_ascii_uppercase().as_str() {
            "COUNT" => Func::Count,
            "COUNT_DISTINCT" => Func::CountDistinct,
            "SUM" => Func::Sum,
            "AVG" => Func::Avg,
            "MIN" => Func::Min,
            "MAX" => Func::Max,
            _ => return None,
        };
        Some(f)
    }

    pub fn name(self) -> &'static str {
        match self {
            Func::Count => "COUNT",
            Func::CountDistinct => "COUNT_DISTINCT",
            Func::Sum => "SUM",
            Func::Avg => "AVG",
            Func::Min => "MIN",
            Func::Max => "MAX",
        }
    }
}

/// `FUNC(field)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub func: Func,
    pub field: FieldPath,
    /// 1-based column of the function name.
    pub column: usize,
}

/// What `HAVING` and `ORDER BY` compare or order: a field, or (in an aggregate query) an
/// aggregate.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Field(FieldPath),
    Aggregate(Aggregate),
}

impl Operand {
    /// The field the operand reads.
    pub fn field_mut(&mut self) -> &mut FieldPath {
        match self {
            Operand::Field(f) => f,
            Operand::Aggregate(a) => &mut a.field,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderBy {
    pub by: Operand,
    pub descending: bool,
    pub nulls_last: bool,
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub select: Select,
    pub object: String,
    pub filter: Option<Expr>,
    pub group_by: Vec<FieldPath>,
    pub having: Option<Expr<Operand>>,
    pub order: Vec<OrderBy>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl Query {
    /// Whether the query answers `AggregateResult` rows (aggregates or `GROUP BY`).
    pub fn is_aggregate(&self) -> bool {
        !self.group_by.is_empty()
            || matches!(&self.select, Select::Items(items)
                if items.iter().any(|i| matches!(i, Item::Aggregate { .. })))
    }

    /// The selected items (none for `COUNT()`).
    pub fn items(&self) -> &[Item] {
        match &self.select {
            Select::Count => &[],
            Select::Items(items) => items,
        }
    }
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

/// A boolean condition over one record (`L` = [`FieldPath`]), or over one group of an
/// aggregate query (`L` = [`Operand`], in `HAVING`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr<L = FieldPath> {
    And(Box<Expr<L>>, Box<Expr<L>>),
    Or(Box<Expr<L>>, Box<Expr<L>>),
    Not(Box<Expr<L>>),
    Cmp(L, Op, Literal),
    In(L, Vec<Literal>, bool),
    Like(L, String),
}

impl<L> Expr<L> {
    /// Every operand the condition reads.
    pub fn operands(&self) -> Vec<&L> {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.operands();
                v.extend(b.operands());
                v
            }
            Expr::Not(e) => e.operands(),
            Expr::Cmp(f, _, _) | Expr::In(f, _, _) | Expr::Like(f, _) => vec![f],
        }
    }

    /// Every operand the condition reads, to check or canonicalise.
    pub fn operands_mut(&mut self) -> Vec<&mut L> {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => {
                let mut v = a.operands_mut();
                v.extend(b.operands_mut());
                v
            }
            Expr::Not(e) => e.operands_mut(),
            Expr::Cmp(f, _, _) | Expr::In(f, _, _) | Expr::Like(f, _) => vec![f],
        }
    }
}

impl Expr {
    /// Every field the condition reads.
    pub fn fields_mut(&mut self) -> Vec<&mut FieldPath> {
        self.operands_mut()
    }
}

/// One day, for date literals (`2026-01-05` covers a day) and relative dates.
const DAY: Duration = Duration::from_secs(86_400);
