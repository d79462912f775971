//! SOSL, the subset the mock's `search` and `parameterizedSearch` answer: `FIND {term}
//! [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Obj[(f1, f2 [WHERE …] [ORDER BY …] [LIMIT n]
//! [OFFSET n])], …] [LIMIT n]`, and matching a search term against text.
//!
//! A term is words and `"quoted phrases"`; words next to each other (or joined by `AND`)
//! must all be found in a record, `OR` separates alternatives, `AND NOT`/`NOT` excludes.
//! Text is matched case-insensitively word by word (runs of letters and digits), `*` stands
//! for any run of characters and `?` for one. Errors are `MALFORMED_SEARCH`.

use super::lexer::lex;
use super::parser::Parser;
use super::{eval::like, Expr, FieldPath, Operand, OrderBy, SoqlError};

fn malformed_search(message: impl Into<String>) -> SoqlError {
    SoqlError {
        code: "MALFORMED_SEARCH",
        message: message.into(),
    }
}

/// Syntax errors of the SOQL parts (`RETURNING` field lists and conditions) are search
/// syntax errors here.
fn as_search(e: SoqlError) -> SoqlError {
    if e.code == "MALFORMED_QUERY" {
        malformed_search(e.message)
    } else {
        e
    }
}

/// Which fields a term is looked for in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every text field (`IN ALL FIELDS`, the default; also `SIDEBAR FIELDS`).
    All,
    /// Name fields: `Name`, `FirstName`, `LastName`.
    Name,
    /// E-mail fields.
    Email,
    /// Phone fields.
    Phone,
}

impl Scope {
    /// The scope by its SOSL (or `parameterizedSearch` `in=`) name, any case.
    pub fn named(name: &str) -> Option<Scope> {
        match name.to_ascii_uppercase().as_str() {
            "ALL" | "SIDEBAR" => Some(Scope::All),
            "NAME" => Some(Scope::Name),
            "EMAIL" => Some(Scope::Email),
            "PHONE" => Some(Scope::Phone),
            _ => None,
        }
    }
}

/// One object of `RETURNING`: what to answer for its matches.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchObject {
    pub object: String,
    /// The fields to answer (only `Id` when none are given).
    pub fields: Vec<FieldPath>,
    pub filter: Option<Expr>,
    pub order: Vec<OrderBy>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

impl SearchObject {
    /// An object answered with `fields`, unfiltered.
    pub fn new(object: &str, fields: Vec<FieldPath>) -> SearchObject {
        SearchObject {
            object: object.to_string(),
            fields,
            filter: None,
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// A parsed `FIND`.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub term: Term,
    pub scope: Scope,
    /// The objects to search; empty means every searchable object, answered with `Id`.
    pub returning: Vec<SearchObject>,
    /// Most records in the whole answer.
    pub limit: Option<usize>,
}

/// Consecutive words that must be found together (one word for a plain word), lower-case,
/// wildcards kept.
#[derive(Clone, Debug, PartialEq)]
struct Phrase {
    words: Vec<String>,
    negated: bool,
}

/// A search term: alternatives (`OR`), each phrases that must all be found (or, negated,
/// not found).
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    alternatives: Vec<Vec<Phrase>>,
}

/// Lower-case runs of letters and digits (and, in terms, the wildcards `*` and `?`).
fn words(text: &str, wildcards: bool) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || (wildcards && (c == '*' || c == '?'))))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Parses a search term (what `FIND {…}` encloses, or `parameterizedSearch`'s `q`).
pub fn parse_term(text: &str) -> Result<Term, SoqlError> {
    // Split into words and quoted phrases first.
    let mut pieces: Vec<(String, bool)> = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut phrase = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => phrase.push(ch),
                    None => {
                        return Err(malformed_search(format!(
                        "unterminated quoted phrase in the search term {text:?}: close it with \""
                    )))
                    }
                }
            }
            pieces.push((phrase, true));
        } else if c == '(' || c == ')' {
            return Err(malformed_search(format!(
                "the search term {text:?} groups with parentheses, which the mock does not answer: write alternatives with OR, e.g. {{alder OR birch}}"
            )));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '"' || ch == '(' || ch == ')' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            pieces.push((word, false));
        }
    }
    let mut alternatives: Vec<Vec<Phrase>> = vec![Vec::new()];
    let mut negate = false;
    let mut letters = 0;
    for (piece, quoted) in pieces {
        if !quoted {
            match piece.to_ascii_uppercase().as_str() {
                "OR" => {
                    alternatives.push(Vec::new());
                    negate = false;
                    continue;
                }
                "AND" => continue,
                "NOT" => {
                    negate = true;
                    continue;
                }
                _ => {}
            }
        }
        let words = words(&piece, true);
        if words.is_empty() {
            continue;
        }
        letters += words
            .iter()
            .flat_map(|w| w.chars())
            .filter(|c| c.is_alphanumeric())
            .count();
        if let Some(last) = alternatives.last_mut() {
            last.push(Phrase {
                words,
                negated: negate,
            });
        }
        negate = false;
    }
    if alternatives
        .iter()
        .any(|a| a.is_empty() || a.iter().all(|p| p.negated))
    {
        return Err(malformed_search(format!(
            "No search term found in {text:?}: each alternative needs a word or phrase to look for"
        )));
    }
    if letters < 2 {
        return Err(malformed_search(format!(
            "search term must be longer than one character: {text:?}"
        )));
    }
    Ok(Term { alternatives })
}

impl Phrase {
    fn found_in(&self, words: &[String]) -> bool {
        let n = self.words.len();
        n <= words.len()
            && words.windows(n).any(|window| {
                window.iter().zip(&self.words).all(|(w, pattern)| {
                    if pattern.contains(['*', '?']) {
                        like(w, &pattern.replace('*', "%").replace('?', "_"))
                    } else {
                        w == pattern
                    }
                })
            })
    }
}

impl Term {
    /// Whether a record whose searched fields hold `values` matches: its words (and, for
    /// values like phone numbers, their digits run together) contain every phrase of an
    /// alternative, and no phrase it excludes.
    pub fn matches(&self, values: &[&str]) -> bool {
        let fields: Vec<Vec<String>> = values
            .iter()
            .map(|v| {
                let mut w = words(v, false);
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                if w.len() > 1 && digits.len() > 1 {
                    w.push(digits);
                }
                w
            })
            .collect();
        let found = |p: &Phrase| fields.iter().any(|f| p.found_in(f));
        self.alternatives.iter().any(|alt| {
            alt.iter()
                .all(|p| if p.negated { !found(p) } else { found(p) })
        })
    }
}

/// Parses a SOSL `FIND` statement.
pub fn parse_search(text: &str) -> Result<Search, SoqlError> {
    let trimmed = text.trim_start();
    let lead = text.len() - trimmed.len();
    let starts_find = trimmed
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("FIND"))
        && trimmed[4..].starts_with(|c: char| c.is_whitespace() || c == '{');
    if !starts_find {
        return Err(malformed_search(format!(
            "the search must start with FIND {{term}}, not {:?}",
            trimmed.chars().take(20).collect::<String>()
        )));
    }
    let after = lead + 4;
    let open = text[after..]
        .find(|c: char| !c.is_whitespace())
        .map(|i| after + i)
        .filter(|i| text[*i..].starts_with('{'));
    let braces_missing =
        || malformed_search("No search term found. The search term must be enclosed in braces.");
    let open = open.ok_or_else(braces_missing)?;
    // The term runs to the first `}` not escaped by a backslash.
    let mut term = String::new();
    let mut close = None;
    let mut escaped = false;
    for (i, c) in text[open + 1..].char_indices() {
        if escaped {
            term.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '}' {
            close = Some(open + 1 + i);
            break;
        } else {
            term.push(c);
        }
    }
    let close = close.ok_or_else(braces_missing)?;
    let term = parse_term(&term)?;
    // Lex the rest in place (the term blanked) so columns in errors match the text.
    let rest: String = text
        .char_indices()
        .map(|(i, c)| if i >= open && i <= close { ' ' } else { c })
        .collect();
    let toks = lex(&rest).map_err(as_search)?;
    let mut p = Parser::new(toks);
    p.expect_kw("FIND").map_err(as_search)?;
    clauses(&mut p, term).map_err(as_search)
}

fn clauses(p: &mut Parser, term: Term) -> Result<Search, SoqlError> {
    let mut scope = Scope::All;
    if p.eat_kw("IN") {
        let column = p.col();
        let named = p.field()?;
        scope = Scope::named(&named.dotted()).ok_or_else(|| {
            malformed_search(format!(
                "unknown search group {} at column {column}: write IN ALL FIELDS, IN NAME FIELDS, IN EMAIL FIELDS or IN PHONE FIELDS",
                named.dotted()
            ))
        })?;
        p.expect_kw("FIELDS")?;
    }
    let mut returning = Vec::new();
    if p.eat_kw("RETURNING") {
        loop {
            returning.push(returning_object(p)?);
            if !p.eat_sym(",") {
                break;
            }
        }
    }
    let limit = if p.eat_kw("LIMIT") {
        Some(p.number()?)
    } else {
        None
    };
    if p.peek().is_some() {
        return Err(p.unexpected("expecting RETURNING, LIMIT or the end of the search"));
    }
    Ok(Search {
        term,
        scope,
        returning,
        limit,
    })
}

/// `Obj` or `Obj(fields [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n])`.
fn returning_object(p: &mut Parser) -> Result<SearchObject, SoqlError> {
    let name = p.field()?;
    if name.parts.len() != 1 {
        return Err(malformed_search(format!(
            "expecting an object name at column {}, not {}",
            name.column,
            name.dotted()
        )));
    }
    let mut spec = SearchObject::new(&name.dotted(), Vec::new());
    if !p.eat_sym("(") {
        return Ok(spec);
    }
    spec.fields = p.fields()?;
    if p.eat_kw("WHERE") {
        spec.filter = Some(p.or(Parser::field)?);
    }
    spec.order = p.order_by()?;
    if let Some(a) = spec.order.iter().find_map(|o| match &o.by {
        Operand::Aggregate(a) => Some(a),
        Operand::Field(_) => None,
    }) {
        return Err(malformed_search(format!(
            "a search orders by fields, not by {}() (column {})",
            a.func.name(),
            a.column
        )));
    }
    if p.eat_kw("LIMIT") {
        spec.limit = Some(p.number()?);
    }
    if p.eat_kw("OFFSET") {
        spec.offset = Some(p.number()?);
    }
    if !p.eat_sym(")") {
        return Err(p.unexpected("expecting ')' to close the field list"));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_find_with_returning() {
        let s = parse_search(
            "find {Alder*} IN NAME FIELDS RETURNING Account(Id, Name WHERE Industry = 'Retail' ORDER BY Name DESC LIMIT 5), Contact LIMIT 20",
        )
        .unwrap();
        assert_eq!(s.scope, Scope::Name);
        assert_eq!(s.limit, Some(20));
        assert_eq!(s.returning.len(), 2);
        assert_eq!(s.returning[0].object, "Account");
        assert_eq!(s.returning[0].fields.len(), 2);
        assert!(s.returning[0].filter.is_some());
        assert_eq!(s.returning[0].limit, Some(5));
        assert_eq!(s.returning[1].object, "Contact");
        assert!(s.returning[1].fields.is_empty());
        assert!(parse_search("FIND{a\\}b}").is_ok());
        // Multi-byte text where FIND would be is refused, not sliced mid-character.
        assert!(parse_search("FINé {alder}").is_err());
        assert!(parse_search("éééé").is_err());
    }

    #[test]
    fn malformed_searches_say_why() {
        for bad in [
            "",
            "SELECT Id FROM Account",
            "FIND Alder",
            "FIND {Alder",
            "FIND {Alder} RETURNING",
            "FIND {Alder} RETURNING Account(Id",
            "FIND {Alder} RETURNING Account(Id WHERE)",
            "FIND {Alder} IN EVERY FIELDS",
            "FIND {Alder} LIMIT x",
            "FIND {Alder} extra",
            "FIND {a}",
            "FIND {\"alder}",
            "FIND {(a OR b) AND c}",
            "FIND {NOT alder}",
        ] {
            let e = parse_search(bad).unwrap_err();
            assert_eq!(e.code, "MALFORMED_SEARCH", "{bad}: {e}");
        }
        let e = parse_search("FIND {Alder} RETURNING Account(Id,)").unwrap_err();
        assert!(e.message.contains("column 35"), "{}", e.message);
    }

    #[test]
    fn terms_match_words_case_insensitively_with_wildcards() {
        let t = |s: &str| parse_term(s).unwrap();
        let rec = ["Alder Outfitters", "anna@alder.example", "(555) 010-2000"];
        assert!(t("alder").matches(&rec));
        assert!(t("OUTFIT*").matches(&rec));
        assert!(t("Ald?r").matches(&rec));
        assert!(t("out*ers").matches(&rec));
        assert!(!t("al*rs").matches(&rec));
        assert!(!t("outfit").matches(&rec));
        assert!(t("alder outfitters").matches(&rec));
        assert!(t("\"alder outfitters\"").matches(&rec));
        assert!(!t("\"outfitters alder\"").matches(&rec));
        assert!(t("anna@alder.example").matches(&rec));
        assert!(t("5550102000").matches(&rec));
        assert!(t("birch OR anna").matches(&rec));
        assert!(!t("birch AND anna").matches(&rec));
        assert!(!t("alder AND NOT anna").matches(&rec));
        assert!(t("alder AND NOT birch").matches(&rec));
    }
}
