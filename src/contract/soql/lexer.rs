//! The SOQL lexer: query text into words, strings, numbers and symbols, each with the
//! 1-based column it starts at (for `MALFORMED_QUERY` messages).

use super::{malformed, SoqlError};

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

pub(super) struct Lexed {
    pub(super) tok: Tok,
    pub(super) col: usize,
}

pub(super) fn lex(text: &str) -> Result<Vec<Lexed>, SoqlError> {
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
