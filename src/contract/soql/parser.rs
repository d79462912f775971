//! The SOQL parser: tokens into a [`Query`] or a condition [`Expr`], with nesting and
//! operator counts bounded so no query can exhaust the stack.

use super::lexer::{lex, Lexed, Tok};
use super::{
    malformed, Expr, FieldPath, Literal, Op, OrderBy, Query, Relative, Select, SoqlError, DAY,
};
use crate::sim::Timestamp;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
