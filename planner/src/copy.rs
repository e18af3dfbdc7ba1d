//! `COPY name [(columns)] FROM STDIN [WITH (...)]`: the options Postgres
//! accepts for the text and csv formats, in the current syntax
//! (`WITH (FORMAT csv, HEADER)`) and the older one (`CSV HEADER`) that psql's
//! `\copy` passes through.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::error::{PlanError, Result};
use crate::parser::{normalize_ident, object_name, peek_words};

/// The data format of a `COPY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Postgres's text format: tab-separated, `\N` for NULL, backslash escapes.
    Text,
    /// Comma-separated values with double quotes.
    Csv,
}

/// `COPY ... FROM STDIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFrom {
    /// The stream written to.
    pub stream: String,
    /// The columns the data holds, in order; empty means all value columns.
    pub columns: Vec<String>,
    /// Text or csv.
    pub format: CopyFormat,
    /// The first line is a header and is skipped.
    pub header: bool,
    /// Separates fields.
    pub delimiter: u8,
    /// The spelling of NULL (unquoted, for csv).
    pub null: String,
    /// csv: quotes fields.
    pub quote: u8,
    /// csv: escapes the quote character inside a quoted field.
    pub escape: u8,
}

impl CopyFrom {
    fn defaults(stream: String, columns: Vec<String>, format: CopyFormat) -> Self {
        let (delimiter, null) = match format {
            CopyFormat::Text => (b'\t', "\\N"),
            CopyFormat::Csv => (b',', ""),
        };
        Self {
            stream,
            columns,
            format,
            header: false,
            delimiter,
            null: null.into(),
            quote: b'"',
            escape: b'"',
        }
    }
}

/// One option as written: a name and maybe a value.
struct CopyOption {
    name: String,
    value: Option<String>,
}

/// Parses what follows the `COPY` keyword.
pub(crate) fn parse_copy(parser: &mut Parser<'_>) -> Result<CopyFrom> {
    if parser.peek_token().token == Token::LParen {
        return Err(PlanError::NotSupported("COPY (query) TO".into()));
    }
    let stream = object_name(&parser.parse_object_name(false)?)?;
    let mut columns = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            columns.push(normalize_ident(&parser.parse_identifier()?));
            if parser.consume_token(&Token::RParen) {
                break;
            }
            parser.expect_token(&Token::Comma)?;
        }
    }
    if parser.parse_keyword(Keyword::TO) {
        return Err(PlanError::NotSupported("COPY TO".into()));
    }
    parser.expect_keyword_is(Keyword::FROM)?;
    if !peek_words(parser, &["STDIN"]) {
        return Err(PlanError::NotSupported(format!(
            "COPY FROM {} (only STDIN: the data comes from the client, e.g. psql's \\copy)",
            parser.peek_token().token
        )));
    }
    parser.next_token();
    // `WITH` is optional in both syntaxes.
    let _ = parser.parse_keyword(Keyword::WITH);
    let options = if parser.consume_token(&Token::LParen) {
        parenthesized_options(parser)?
    } else {
        legacy_options(parser)?
    };
    apply(stream, columns, options)
}

/// `(FORMAT csv, HEADER true, DELIMITER ';', ...)`, after the `(`.
fn parenthesized_options(parser: &mut Parser<'_>) -> Result<Vec<CopyOption>> {
    let mut options = Vec::new();
    loop {
        let name = word(parser)?;
        let value = match parser.peek_token().token {
            Token::Comma | Token::RParen => None,
            _ => Some(value(parser)?),
        };
        options.push(CopyOption { name, value });
        if parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        parser.expect_token(&Token::Comma)?;
    }
}

/// `[BINARY] [DELIMITER [AS] 'c'] [NULL [AS] 's'] [CSV [HEADER] [QUOTE [AS]
/// 'c'] [ESCAPE [AS] 'c']]`: the syntax before Postgres 9.0.
fn legacy_options(parser: &mut Parser<'_>) -> Result<Vec<CopyOption>> {
    let mut options = Vec::new();
    while let Token::Word(w) = parser.peek_token().token {
        let name = w.value.to_ascii_lowercase();
        parser.next_token();
        let option = match name.as_str() {
            "binary" => CopyOption {
                name: "format".into(),
                value: Some("binary".into()),
            },
            "csv" => CopyOption {
                name: "format".into(),
                value: Some("csv".into()),
            },
            "header" => CopyOption { name, value: None },
            "delimiter" | "null" | "quote" | "escape" => {
                let _ = parser.parse_keyword(Keyword::AS);
                CopyOption {
                    name,
                    value: Some(value(parser)?),
                }
            }
            _ => return Err(PlanError::Syntax(format!("unknown COPY option {name}"))),
        };
        options.push(option);
    }
    Ok(options)
}

fn word(parser: &mut Parser<'_>) -> Result<String> {
    let token = parser.next_token();
    match token.token {
        Token::Word(w) => Ok(w.value.to_ascii_lowercase()),
        other => Err(PlanError::Syntax(format!(
            "expected a COPY option, found {other}"
        ))),
    }
}

fn value(parser: &mut Parser<'_>) -> Result<String> {
    let token = parser.next_token();
    match token.token {
        Token::Word(w) => Ok(w.value),
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        other => Err(PlanError::Syntax(format!(
            "expected a COPY option value, found {other}"
        ))),
    }
}

fn apply(stream: String, columns: Vec<String>, options: Vec<CopyOption>) -> Result<CopyFrom> {
    let invalid = |name: &str, reason: String| PlanError::InvalidOption {
        name: name.into(),
        reason,
    };
    let format = match options.iter().rev().find(|o| o.name == "format") {
        None => CopyFormat::Text,
        Some(o) => match o.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("text") => CopyFormat::Text,
            Some("csv") => CopyFormat::Csv,
            Some("binary") => return Err(PlanError::NotSupported("COPY format binary".into())),
            other => {
                return Err(invalid(
                    "format",
                    format!("expected text or csv, found {}", other.unwrap_or("nothing")),
                ));
            }
        },
    };
    let mut copy = CopyFrom::defaults(stream, columns, format);
    for option in options {
        let single_byte = |value: Option<String>| match value.as_deref().map(str::as_bytes) {
            Some([byte]) if byte.is_ascii() => Ok(*byte),
            _ => Err(invalid(
                &option.name,
                "must be a single one-byte character".into(),
            )),
        };
        match option.name.as_str() {
            "format" => {}
            "header" => {
                copy.header = match option.value.as_deref().map(str::to_ascii_lowercase) {
                    None => true,
                    Some(v) if ["true", "on", "1"].contains(&v.as_str()) => true,
                    Some(v) if ["false", "off", "0"].contains(&v.as_str()) => false,
                    Some(v) => {
                        return Err(invalid("header", format!("expected a boolean, found {v}")));
                    }
                }
            }
            "delimiter" => copy.delimiter = single_byte(option.value.clone())?,
            "null" => {
                copy.null = option
                    .value
                    .clone()
                    .ok_or_else(|| invalid("null", "needs a value".into()))?;
            }
            "quote" | "escape" if format == CopyFormat::Text => {
                return Err(PlanError::NotSupported(format!(
                    "COPY option {} outside the csv format",
                    option.name
                )));
            }
            "quote" => copy.quote = single_byte(option.value.clone())?,
            "escape" => copy.escape = single_byte(option.value.clone())?,
            other => return Err(invalid(other, "unknown COPY option".into())),
        }
    }
    if copy.delimiter == b'\n' || copy.delimiter == b'\r' {
        return Err(invalid(
            "delimiter",
            "cannot be newline or carriage return".into(),
        ));
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::Statement;

    fn copy(sql: &str) -> Result<CopyFrom> {
        match crate::parse(sql)?.pop() {
            Some(Statement::CopyFrom(copy)) => Ok(copy),
            other => panic!("not a COPY: {other:?}"),
        }
    }

    #[test]
    fn text_is_the_default() {
        let c = copy("COPY s FROM STDIN").unwrap();
        assert_eq!(
            (c.format, c.delimiter, c.null.as_str()),
            (CopyFormat::Text, b'\t', "\\N")
        );
        assert!(c.columns.is_empty() && !c.header);
    }

    #[test]
    fn current_and_legacy_csv_syntax_agree() {
        let current =
            copy("copy S (a, \"B\") from stdin with (format csv, header, delimiter ';')").unwrap();
        let legacy = copy("COPY s (a, \"B\") FROM STDIN WITH DELIMITER AS ';' CSV HEADER").unwrap();
        assert_eq!(current, legacy);
        assert_eq!(current.stream, "s");
        assert_eq!(current.columns, ["a", "B"]);
        assert_eq!(
            (current.format, current.header, current.delimiter),
            (CopyFormat::Csv, true, b';')
        );
    }

    #[test]
    fn unsupported_forms_say_so() {
        assert!(matches!(
            copy("COPY s TO STDOUT"),
            Err(PlanError::NotSupported(_))
        ));
        assert!(matches!(
            copy("COPY s FROM '/etc/passwd'"),
            Err(PlanError::NotSupported(_))
        ));
        assert!(matches!(
            copy("COPY s FROM STDIN (FORMAT binary)"),
            Err(PlanError::NotSupported(_))
        ));
        assert!(matches!(
            copy("COPY s FROM STDIN (HEADER maybe)"),
            Err(PlanError::InvalidOption { .. })
        ));
        assert!(matches!(
            copy("COPY s FROM STDIN (DELIMITER 'ab')"),
            Err(PlanError::InvalidOption { .. })
        ));
    }
}
