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

use std::cmp::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::sim::Timestamp;

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

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

struct Lexed {
    tok: Tok,
    col: usize,
}

fn lex(text: &str) -> Result<Vec<Lexed>, SoqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(malformed(format!("unterminated string at column {col}"))),
                    Some('\\') => {
                        let esc = chars.get(i + 1).copied().unwrap_or('\\');
                        s.push(match esc {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Lexed {
                tok: Tok::Str(s),
                col,
            });
            continue;
        }
        let starts_number =
            c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if starts_number {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | ':' | '+' | '-'))
            {
                i += 1;
            }
            out.push(Lexed {
                tok: Tok::Num(chars[start..i].iter().collect()),
                col,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.')) {
                i += 1;
            }
            // `LAST_N_DAYS:7`
            if chars.get(i) == Some(&':') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            out.push(Lexed {
                tok: Tok::Word(chars[start..i].iter().collect()),
                col,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "!=" => Some("!="),
            "<>" => Some("<>"),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push(Lexed {
                tok: Tok::Sym(s),
                col,
            });
            i += 2;
            continue;
        }
        let one = match c {
            '(' => "(",
            ')' => ")",
            ',' => ",",
            '=' => "=",
            '<' => "<",
            '>' => ">",
            _ => {
                return Err(malformed(format!(
                    "unexpected character '{c}' at column {col}"
                )))
            }
        };
        out.push(Lexed {
            tok: Tok::Sym(one),
            col,
        });
        i += 1;
    }
    Ok(out)
}

/// Deepest nesting of parentheses and `NOT` a condition may have.
pub const MAX_NESTING: usize = 100;
/// Most `AND`, `OR` and `NOT` operators in one condition.
pub const MAX_OPERATORS: usize = 1000;

struct Parser {
    toks: Vec<Lexed>,
    pos: usize,
    /// Open parentheses and `NOT`s around the current position.
    depth: usize,
    /// `AND`, `OR` and `NOT` operators so far.
    operators: usize,
}

impl Parser {
    fn new(toks: Vec<Lexed>) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            operators: 0,
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|l| &l.tok)
    }

    fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|l| l.col)
            .or_else(|| self.toks.last().map(|l| l.col + 1))
            .unwrap_or(1)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting '{kw}'")))
        }
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, what: &str) -> SoqlError {
        let found = match self.peek() {
            None => "end of query".to_string(),
            Some(Tok::Word(w) | Tok::Num(w)) => format!("'{w}'"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Sym(s)) => format!("'{s}'"),
        };
        malformed(format!(
            "unexpected token: {found} at column {}, {what}",
            self.col()
        ))
    }

    fn field(&mut self) -> Result<FieldPath, SoqlError> {
        let column = self.col();
        match self.peek().cloned() {
            Some(Tok::Word(w)) if !is_reserved(&w) => {
                self.pos += 1;
                Ok(FieldPath {
                    parts: w.split('.').map(str::to_string).collect(),
                    column,
                })
            }
            _ => Err(self.unexpected("expecting a field name")),
        }
    }

    fn number(&mut self) -> Result<usize, SoqlError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                n.parse()
                    .map_err(|_| malformed(format!("'{n}' is not a whole number")))
            }
            _ => Err(self.unexpected("expecting a number")),
        }
    }

    fn query(&mut self) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let select = if self.is_kw("COUNT")
            && matches!(
                self.toks.get(self.pos + 1).map(|l| &l.tok),
                Some(Tok::Sym("("))
            ) {
            self.pos += 1;
            self.eat_sym("(");
            if !self.eat_sym(")") {
                return Err(self.unexpected("COUNT() takes no field in this mock"));
            }
            Select::Count
        } else {
            let mut fields = vec![self.field()?];
            while self.eat_sym(",") {
                fields.push(self.field()?);
            }
            Select::Fields(fields)
        };
        self.expect_kw("FROM")?;
        let object = match self.peek().cloned() {
            Some(Tok::Word(w)) if !is_reserved(&w) && !w.contains('.') => {
                self.pos += 1;
                w
            }
            _ => return Err(self.unexpected("expecting an object name")),
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.or()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                let field = self.field()?;
                let descending = if self.eat_kw("DESC") {
                    true
                } else {
                    self.eat_kw("ASC");
                    false
                };
                let nulls_last = if self.eat_kw("NULLS") {
                    if self.eat_kw("LAST") {
                        true
                    } else {
                        self.expect_kw("FIRST")?;
                        false
                    }
                } else {
                    descending
                };
                order.push(OrderBy {
                    field,
                    descending,
                    nulls_last,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.number()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.number()?)
        } else {
            None
        };
        if self.peek().is_some() {
            return Err(self.unexpected("expecting end of query"));
        }
        Ok(Query {
            select,
            object,
            filter,
            order,
            limit,
            offset,
        })
    }

    /// Counts one `AND`/`OR`/`NOT` at the current position against [`MAX_OPERATORS`].
    fn operator(&mut self) -> Result<(), SoqlError> {
        self.operators += 1;
        if self.operators > MAX_OPERATORS {
            return Err(malformed(format!(
                "the condition has more than {MAX_OPERATORS} AND/OR/NOT operators (at column {})",
                self.col()
            )));
        }
        Ok(())
    }

    /// Enters a parenthesis or `NOT`, within [`MAX_NESTING`].
    fn nest(&mut self) -> Result<(), SoqlError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(malformed(format!(
                "the condition nests parentheses and NOT more than {MAX_NESTING} levels deep (at column {})",
                self.col()
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.and()?;
        while self.eat_kw("OR") {
            self.operator()?;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SoqlError> {
        let mut left = self.unary()?;
        while self.eat_kw("AND") {
            self.operator()?;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_kw("NOT") {
            self.operator()?;
            self.nest()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.eat_sym("(") {
            self.nest()?;
            let e = self.or()?;
            if !self.eat_sym(")") {
                return Err(self.unexpected("expecting ')'"));
            }
            self.depth -= 1;
            return Ok(e);
        }
        let field = self.field()?;
        if self.eat_kw("LIKE") {
            return match self.literal()? {
                Literal::Text(p) => Ok(Expr::Like(field, p)),
                _ => Err(malformed("LIKE needs a string pattern")),
            };
        }
        let negated = if self.is_kw("NOT")
            && matches!(self.toks.get(self.pos + 1).map(|l| &l.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN"))
        {
            self.pos += 1;
            true
        } else {
            false
        };
        if self.eat_kw("IN") {
            if !self.eat_sym("(") {
                return Err(self.unexpected("expecting '('"));
            }
            let mut values = vec![self.literal()?];
            while self.eat_sym(",") {
                values.push(self.literal()?);
            }
            if !self.eat_sym(")") {
                return Err(self.unexpected("expecting ')'"));
            }
            return Ok(Expr::In(field, values, negated));
        }
        let op = match self.peek() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=")) | Some(Tok::Sym("<>")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            _ => return Err(self.unexpected("expecting a comparison operator")),
        };
        self.pos += 1;
        let value = self.literal()?;
        Ok(Expr::Cmp(field, op, value))
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let lit = match self.peek().cloned() {
            Some(Tok::Str(s)) => Literal::Text(s),
            Some(Tok::Num(n)) => parse_number_or_date(&n)
                .ok_or_else(|| malformed(format!("'{n}' is not a number, date or datetime")))?,
            Some(Tok::Word(w)) => {
                let up = w.to_ascii_uppercase();
                match up.as_str() {
                    "NULL" => Literal::Null,
                    "TRUE" => Literal::Bool(true),
                    "FALSE" => Literal::Bool(false),
                    "TODAY" => Literal::Relative(Relative::Today),
                    "YESTERDAY" => Literal::Relative(Relative::Yesterday),
                    "TOMORROW" => Literal::Relative(Relative::Tomorrow),
                    _ => {
                        let n_days = |prefix: &str| {
                            up.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok())
                        };
                        if let Some(n) = n_days("LAST_N_DAYS:") {
                            Literal::Relative(Relative::LastNDays(n))
                        } else if let Some(n) = n_days("NEXT_N_DAYS:") {
                            Literal::Relative(Relative::NextNDays(n))
                        } else {
                            return Err(self.unexpected("expecting a value"));
                        }
                    }
                }
            }
            _ => return Err(self.unexpected("expecting a value")),
        };
        self.pos += 1;
        Ok(lit)
    }
}

fn is_reserved(w: &str) -> bool {
    [
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT",
        "OFFSET", "NULL", "TRUE", "FALSE", "ASC", "DESC", "NULLS",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

const DAY: Duration = Duration::from_secs(86_400);

fn parse_number_or_date(n: &str) -> Option<Literal> {
    if let Ok(f) = n.parse::<f64>() {
        return Some(Literal::Number(f));
    }
    let t = Timestamp::parse(n)?;
    if n.len() == 10 {
        Some(Literal::Range(t, t.plus(DAY)))
    } else {
        Some(Literal::Range(t, Timestamp::from_millis(t.as_millis() + 1)))
    }
}

/// Parses a full query.
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    let toks = lex(text)?;
    Parser::new(toks).query()
}

/// Parses a condition (the grammar of a `WHERE` clause).
pub fn parse_condition(text: &str) -> Result<Expr, SoqlError> {
    let toks = lex(text)?;
    let mut p = Parser::new(toks);
    let e = p.or()?;
    if p.peek().is_some() {
        return Err(p.unexpected("expecting end of condition"));
    }
    Ok(e)
}

impl Relative {
    fn range(self, now: Timestamp) -> (Timestamp, Timestamp) {
        let today = now.day_start();
        let day_ms = DAY.as_millis() as i64;
        let at = |days: i64| Timestamp::from_millis(today.as_millis() + days * day_ms);
        match self {
            Relative::Today => (at(0), at(1)),
            Relative::Yesterday => (at(-1), at(0)),
            Relative::Tomorrow => (at(1), at(2)),
            Relative::LastNDays(n) => (at(-(n as i64)), at(1)),
            Relative::NextNDays(n) => (at(1), at(n as i64 + 1)),
        }
    }
}

/// Evaluates `expr` for one record; `get` reads a (checked) field path.
pub fn eval(expr: &Expr, now: Timestamp, get: &dyn Fn(&FieldPath) -> Value) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, now, get) && eval(b, now, get),
        Expr::Or(a, b) => eval(a, now, get) || eval(b, now, get),
        Expr::Not(e) => !eval(e, now, get),
        Expr::Cmp(f, op, lit) => compare(&get(f), *op, lit, now),
        Expr::In(f, values, negated) => {
            let v = get(f);
            let found = values.iter().any(|l| compare(&v, Op::Eq, l, now));
            found != *negated
        }
        Expr::Like(f, pattern) => match get(f) {
            Value::String(s) => like(&s.to_lowercase(), &pattern.to_lowercase()),
            _ => false,
        },
    }
}

/// Compares text case-insensitively without allocating.
fn cmp_ci(a: &str, b: &str) -> Ordering {
    a.chars()
        .flat_map(char::to_lowercase)
        .cmp(b.chars().flat_map(char::to_lowercase))
}

fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // dp[j]: pattern[..i] matches s[..j]
    let mut dp = vec![false; s.len() + 1];
    dp[0] = true;
    for pc in &p {
        let mut next = vec![false; s.len() + 1];
        match pc {
            '%' => {
                let mut any = false;
                for j in 0..=s.len() {
                    any |= dp[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 1..=s.len() {
                    next[j] = dp[j - 1] && (*c == '_' || s[j - 1] == *c);
                }
            }
        }
        dp = next;
    }
    dp[s.len()]
}

fn as_instant(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(Timestamp::parse)
}

fn compare(v: &Value, op: Op, lit: &Literal, now: Timestamp) -> bool {
    let range = match lit {
        Literal::Range(a, b) => Some((*a, *b)),
        Literal::Relative(r) => Some(r.range(now)),
        _ => None,
    };
    if let Some((start, end)) = range {
        let Some(t) = as_instant(v) else {
            return op == Op::Ne;
        };
        return match op {
            Op::Eq => t >= start && t < end,
            Op::Ne => !(t >= start && t < end),
            Op::Lt => t < start,
            Op::Le => t < end,
            Op::Gt => t >= end,
            Op::Ge => t >= start,
        };
    }
    let ord = match (v, lit) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::Bool(a), Literal::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(a), Literal::Number(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::String(a), Literal::Text(b)) => Some(cmp_ci(a, b)),
        (Value::String(a), Literal::Number(b)) => {
            a.parse::<f64>().ok().and_then(|a| a.partial_cmp(b))
        }
        _ => None,
    };
    match (op, ord) {
        (Op::Eq, Some(o)) => o == Ordering::Equal,
        (Op::Ne, Some(o)) => o != Ordering::Equal,
        (Op::Ne, None) => !(v.is_null() && matches!(lit, Literal::Null)),
        (Op::Lt, Some(o)) => o == Ordering::Less,
        (Op::Le, Some(o)) => o != Ordering::Greater,
        (Op::Gt, Some(o)) => o == Ordering::Greater,
        (Op::Ge, Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

/// Orders two values as `ORDER BY` does (text case-insensitively; nulls placed by the caller).
pub fn order_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => match (Timestamp::parse(x), Timestamp::parse(y)) {
            (Some(p), Some(q)) if x.len() >= 10 && y.len() >= 10 => p.cmp(&q),
            _ => cmp_ci(x, y),
        },
        _ => Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-05T08:00:00Z").unwrap()
    }

    fn matches(cond: &str, rec: Value) -> bool {
        let e = parse_condition(cond).unwrap();
        eval(&e, now(), &|f: &FieldPath| {
            rec.pointer(&format!("/{}", f.parts.join("/")))
                .cloned()
                .unwrap_or(Value::Null)
        })
    }

    #[test]
    fn parses_the_subset() {
        let q = parse("SELECT Id, Name, Account.Name FROM Contact WHERE (Name LIKE 'A%' OR Name = null) AND NOT Amount__c > 3 ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5").unwrap();
        assert_eq!(q.object, "Contact");
        assert_eq!(q.limit, Some(10));
        assert_eq!(q.offset, Some(5));
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].descending && q.order[0].nulls_last);
        let Select::Fields(f) = &q.select else {
            panic!("fields")
        };
        assert_eq!(f[2].parts, vec!["Account", "Name"]);
        assert_eq!(f[2].column, 18);
        assert_eq!(
            parse("select count() from Account").unwrap().select,
            Select::Count
        );
    }

    #[test]
    fn malformed_queries_say_where() {
        for bad in [
            "SELECT FROM Account",
            "SELECT Id Account",
            "SELECT Id FROM Account WHERE",
            "SELECT Id FROM Account WHERE Name = 'x",
            "SELECT Id FROM Account LIMIT many",
            "SELECT Id FROM Account WHERE Name ~ 'x'",
            "SELECT Id FROM Account extra",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, "MALFORMED_QUERY", "{bad}");
        }
        let e = parse("SELECT Id FROM Account WHERE Name = = 1").unwrap_err();
        assert!(e.message.contains("column 37"), "{}", e.message);
    }

    #[test]
    fn evaluates_conditions() {
        let rec = json!({"Name": "Alder Outfitters", "Amount": 12.5, "Active": true, "Tier": null,
            "CreatedDate": "2026-01-03T10:00:00.000+0000", "Account": {"Name": "Parent"}});
        assert!(matches("Name = 'alder outfitters'", rec.clone()));
        assert!(matches("Name LIKE 'Alder%'", rec.clone()));
        assert!(!matches("Name LIKE 'Out%'", rec.clone()));
        assert!(matches("Name LIKE '%fit_ers'", rec.clone()));
        assert!(matches("Amount > 12 AND Amount <= 12.5", rec.clone()));
        assert!(matches("Tier = null AND Active = true", rec.clone()));
        assert!(matches("Tier != 'Gold'", rec.clone()));
        assert!(!matches("Tier = 'Gold'", rec.clone()));
        assert!(matches(
            "Name NOT IN ('a', 'b') OR Amount IN (1)",
            rec.clone()
        ));
        assert!(matches("CreatedDate = LAST_N_DAYS:3", rec.clone()));
        assert!(!matches("CreatedDate = LAST_N_DAYS:1", rec.clone()));
        assert!(matches("CreatedDate < TODAY", rec.clone()));
        assert!(matches("CreatedDate = 2026-01-03", rec.clone()));
        assert!(matches("CreatedDate > 2026-01-03T09:00:00Z", rec.clone()));
        assert!(matches("Account.Name = 'Parent'", rec.clone()));
        assert!(matches("NOT (Amount < 0 OR Active = false)", rec));
    }
}
