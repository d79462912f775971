//! The SOQL parser: tokens into a [`Query`] or a condition [`Expr`], with nesting and
//! operator counts bounded so no query can exhaust the stack, and the rules of aggregate
//! queries and child subqueries checked (`MALFORMED_QUERY`).

use super::aggregate::column_names;
use super::lexer::{lex, Lexed, Tok};
use super::{
    malformed, Aggregate, Expr, FieldPath, Func, Item, Literal, Op, Operand, OrderBy, Query,
    Relative, Select, SoqlError, DAY,
};
use crate::sim::Timestamp;

/// Deepest nesting of parentheses and `NOT` a condition may have.
pub const MAX_NESTING: usize = 100;
/// Most `AND`, `OR` and `NOT` operators in one condition.
pub const MAX_OPERATORS: usize = 1000;

/// Parses what a condition compares: a field (`WHERE`), or a field or aggregate (`HAVING`).
pub(super) type OperandParser<L> = fn(&mut Parser) -> Result<L, SoqlError>;

pub(super) struct Parser {
    toks: Vec<Lexed>,
    pos: usize,
    /// Open parentheses and `NOT`s around the current position.
    depth: usize,
    /// `AND`, `OR` and `NOT` operators so far.
    operators: usize,
}

impl Parser {
    pub(super) fn new(toks: Vec<Lexed>) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            operators: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|l| &l.tok)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|l| &l.tok)
    }

    pub(super) fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|l| l.col)
            .or_else(|| self.toks.last().map(|l| l.col + 1))
            .unwrap_or(1)
    }

    pub(super) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    pub(super) fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("expecting '{kw}'")))
        }
    }

    pub(super) fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    pub(super) fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn unexpected(&self, what: &str) -> SoqlError {
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

    pub(super) fn field(&mut self) -> Result<FieldPath, SoqlError> {
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

    /// A field list: `f1, f2, …`.
    pub(super) fn fields(&mut self) -> Result<Vec<FieldPath>, SoqlError> {
        let mut fields = vec![self.field()?];
        while self.eat_sym(",") {
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    /// Whether the next tokens are `NAME (`, a function call.
    fn at_call(&self) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if !is_reserved(w))
            && matches!(self.peek_at(1), Some(Tok::Sym("(")))
    }

    /// `FUNC(field)`.
    fn aggregate(&mut self) -> Result<Aggregate, SoqlError> {
        let column = self.col();
        let name = match self.peek() {
            Some(Tok::Word(w)) => w.clone(),
            _ => return Err(self.unexpected("expecting an aggregate function")),
        };
        let Some(func) = Func::named(&name) else {
            return Err(malformed(format!(
                "unknown function {name} at column {column}: the mock answers COUNT, COUNT_DISTINCT, SUM, AVG, MIN and MAX"
            )));
        };
        self.pos += 2;
        if func == Func::Count && self.is_sym(")") {
            return Err(malformed(format!(
                "COUNT() at column {column} must be the only element of the SELECT list; count a field, e.g. COUNT(Id), to select it with others"
            )));
        }
        let field = self.field()?;
        if !self.eat_sym(")") {
            return Err(self.unexpected("expecting ')'"));
        }
        Ok(Aggregate {
            func,
            field,
            column,
        })
    }

    /// A field or, in `HAVING` and `ORDER BY`, an aggregate.
    pub(super) fn operand(&mut self) -> Result<Operand, SoqlError> {
        if self.at_call() {
            Ok(Operand::Aggregate(self.aggregate()?))
        } else {
            Ok(Operand::Field(self.field()?))
        }
    }

    /// An alias after a select item: a plain word that is not a keyword.
    fn alias(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Word(w)) if !is_reserved(w) && !w.contains('.') => {
                let alias = w.clone();
                self.pos += 1;
                Some(alias)
            }
            _ => None,
        }
    }

    pub(super) fn number(&mut self) -> Result<usize, SoqlError> {
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                n.parse()
                    .map_err(|_| malformed(format!("'{n}' is not a whole number")))
            }
            _ => Err(self.unexpected("expecting a number")),
        }
    }

    /// `SELECT … FROM …` up to its end, or (`nested`) up to the `)` closing a subquery,
    /// which is left for the caller.
    fn query(&mut self, nested: bool) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let select = self.select_list(nested)?;
        self.expect_kw("FROM")?;
        let object = match self.peek().cloned() {
            Some(Tok::Word(w)) if !is_reserved(&w) && !w.contains('.') => {
                self.pos += 1;
                w
            }
            _ => return Err(self.unexpected("expecting an object name")),
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.or(Parser::field)?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_kw("GROUP") {
            self.expect_kw("BY")?;
            group_by = self.fields()?;
        }
        let having = if self.eat_kw("HAVING") {
            Some(self.or(Parser::operand)?)
        } else {
            None
        };
        let order = self.order_by()?;
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
        if nested {
            if !self.is_sym(")") {
                return Err(self.unexpected("expecting ')' to close the subquery"));
            }
        } else if self.peek().is_some() {
            return Err(self.unexpected("expecting end of query"));
        }
        let q = Query {
            select,
            object,
            filter,
            group_by,
            having,
            order,
            limit,
            offset,
        };
        check_shape(&q, nested)?;
        Ok(q)
    }

    /// `COUNT()` alone, or items.
    fn select_list(&mut self, nested: bool) -> Result<Select, SoqlError> {
        if self.is_kw("COUNT")
            && matches!(self.peek_at(1), Some(Tok::Sym("(")))
            && matches!(self.peek_at(2), Some(Tok::Sym(")")))
        {
            let column = self.col();
            self.pos += 3;
            if !nested && self.is_kw("FROM") {
                return Ok(Select::Count);
            }
            return Err(malformed(format!(
                "COUNT() at column {column} must be the only element of the SELECT list of a query (not a subquery), without an alias"
            )));
        }
        let mut items = vec![self.item(nested)?];
        while self.eat_sym(",") {
            items.push(self.item(nested)?);
        }
        Ok(Select::Items(items))
    }

    fn item(&mut self, nested: bool) -> Result<Item, SoqlError> {
        if self.is_sym("(") {
            if nested {
                return Err(self.unexpected(
                    "the mock answers one level of child subqueries, not a subquery in a subquery",
                ));
            }
            self.pos += 1;
            let sub = self.query(true)?;
            // `query(true)` stops at the closing parenthesis.
            self.pos += 1;
            return Ok(Item::Child(Box::new(sub)));
        }
        if self.at_call() {
            let agg = self.aggregate()?;
            let alias = self.alias();
            return Ok(Item::Aggregate { agg, alias });
        }
        let path = self.field()?;
        let alias = self.alias();
        Ok(Item::Field { path, alias })
    }

    /// `ORDER BY x [ASC|DESC] [NULLS FIRST|LAST], …`, or nothing.
    pub(super) fn order_by(&mut self) -> Result<Vec<OrderBy>, SoqlError> {
        let mut order = Vec::new();
        if !self.eat_kw("ORDER") {
            return Ok(order);
        }
        self.expect_kw("BY")?;
        loop {
            let by = self.operand()?;
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
                by,
                descending,
                nulls_last,
            });
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(order)
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

    pub(super) fn or<L>(&mut self, operand: OperandParser<L>) -> Result<Expr<L>, SoqlError> {
        let mut left = self.and(operand)?;
        while self.eat_kw("OR") {
            self.operator()?;
            let right = self.and(operand)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and<L>(&mut self, operand: OperandParser<L>) -> Result<Expr<L>, SoqlError> {
        let mut left = self.unary(operand)?;
        while self.eat_kw("AND") {
            self.operator()?;
            let right = self.unary(operand)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary<L>(&mut self, operand: OperandParser<L>) -> Result<Expr<L>, SoqlError> {
        if self.eat_kw("NOT") {
            self.operator()?;
            self.nest()?;
            let e = Expr::Not(Box::new(self.unary(operand)?));
            self.depth -= 1;
            return Ok(e);
        }
        if self.eat_sym("(") {
            self.nest()?;
            let e = self.or(operand)?;
            if !self.eat_sym(")") {
                return Err(self.unexpected("expecting ')'"));
            }
            self.depth -= 1;
            return Ok(e);
        }
        let field = operand(self)?;
        if self.eat_kw("LIKE") {
            return match self.literal()? {
                Literal::Text(p) => Ok(Expr::Like(field, p)),
                _ => Err(malformed("LIKE needs a string pattern")),
            };
        }
        let negated = if self.is_kw("NOT")
            && matches!(self.peek_at(1), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN"))
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
        "OFFSET", "NULL", "TRUE", "FALSE", "ASC", "DESC", "NULLS", "GROUP", "HAVING",
    ]
    .iter()
    .any(|k| k.eq_ignore_ascii_case(w))
}

/// Whether two written field paths name the same field (names are case-insensitive).
pub(super) fn same_path(a: &FieldPath, b: &FieldPath) -> bool {
    a.parts.len() == b.parts.len()
        && a.parts
            .iter()
            .zip(&b.parts)
            .all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// The rules of aggregate queries and subqueries that need the whole query: in an aggregate
/// query every selected, ordered or `HAVING` field is grouped, no grouped field is
/// aggregated, and names are unique; only aggregate queries take aliases, `HAVING` and
/// aggregates; a subquery selects plain fields.
fn check_shape(q: &Query, nested: bool) -> Result<(), SoqlError> {
    let grouped = |f: &FieldPath| q.group_by.iter().any(|g| same_path(g, f));
    if matches!(q.select, Select::Count) && !q.group_by.is_empty() {
        return Err(malformed(
            "COUNT() cannot be used with GROUP BY: count a field instead, e.g. COUNT(Id)",
        ));
    }
    let aggregate = q.is_aggregate();
    if nested && (aggregate || q.having.is_some()) {
        return Err(malformed(format!(
            "the subquery on {} cannot aggregate: aggregate functions, GROUP BY and HAVING are for the outer query",
            q.object
        )));
    }
    if !aggregate {
        for item in q.items() {
            if let Item::Field {
                path,
                alias: Some(alias),
            } = item
            {
                return Err(malformed(format!(
                    "unexpected token: '{alias}' after {} at column {}: only aggregate queries give aliases",
                    path.dotted(),
                    path.column
                )));
            }
        }
        if q.having.is_some() {
            return Err(malformed(
                "HAVING needs GROUP BY or an aggregate function in the SELECT list",
            ));
        }
        if let Some(a) = q.order.iter().find_map(|o| match &o.by {
            Operand::Aggregate(a) => Some(a),
            Operand::Field(_) => None,
        }) {
            return Err(malformed(format!(
                "ORDER BY {}({}) at column {} needs an aggregate query (GROUP BY or aggregate functions)",
                a.func.name(),
                a.field.dotted(),
                a.column
            )));
        }
        return Ok(());
    }
    for item in q.items() {
        match item {
            Item::Child(sub) => {
                return Err(malformed(format!(
                    "the subquery on {} cannot be used in an aggregate query",
                    sub.object
                )))
            }
            Item::Field { path, .. } if !grouped(path) => {
                return Err(malformed(format!(
                    "Field must be grouped or aggregated: {}",
                    path.dotted()
                )));
            }
            Item::Aggregate { agg, .. } if grouped(&agg.field) => {
                return Err(malformed(format!(
                    "Grouped field should not be aggregated: {}",
                    agg.field.dotted()
                )));
            }
            _ => {}
        }
    }
    let mut names: Vec<&str> = Vec::new();
    for name in column_names(q.items()).iter().flatten() {
        if names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(malformed(format!("duplicate alias: {name}")));
        }
        names.push(name);
    }
    for o in &q.order {
        if let Operand::Field(f) = &o.by {
            if !grouped(f) {
                return Err(malformed(format!(
                    "Ordered field must be grouped or aggregated: {}",
                    f.dotted()
                )));
            }
        }
    }
    if let Some(having) = &q.having {
        for operand in having.operands() {
            if let Operand::Field(f) = operand {
                if !grouped(f) {
                    return Err(malformed(format!(
                        "Having field must be grouped or aggregated: {}",
                        f.dotted()
                    )));
                }
            }
        }
    }
    Ok(())
}

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
    Parser::new(toks).query(false)
}

/// Parses a condition (the grammar of a `WHERE` clause).
pub fn parse_condition(text: &str) -> Result<Expr, SoqlError> {
    let toks = lex(text)?;
    let mut p = Parser::new(toks);
    let e = p.or(Parser::field)?;
    if p.peek().is_some() {
        return Err(p.unexpected("expecting end of condition"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests;
