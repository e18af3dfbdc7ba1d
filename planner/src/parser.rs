//! Parsing: the Postgres dialect of `sqlparser`, with Tributary's own
//! statements recognised at the start of each statement.

use datafusion::sql::sqlparser::ast::{
    ColumnOption, Expr, Ident, ObjectName, SqlOption, Value, ValueWithSpan,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::connector::{ConnectorDefinition, ConnectorOptions, NexmarkKind};
use crate::error::{PlanError, Result};
use crate::statement::{
    CreateMaterializedView, CreateSink, CreateStream, Statement, StreamOptions, Subscribe,
};
use crate::stream_definition::{ColumnDefinition, Format, StreamDefinition, WatermarkDefinition};
use crate::types::arrow_type;

/// Parses one or more `;`-separated statements.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql)?;
    let mut statements = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        if parser.peek_token().token == Token::EOF {
            break;
        }
        statements.push(parse_statement(&mut parser)?);
        let next = parser.peek_token();
        if !matches!(next.token, Token::SemiColon | Token::EOF) {
            return parser
                .expected("end of statement", next)
                .map_err(Into::into);
        }
    }
    Ok(statements)
}

/// Whether the next tokens are these words (case-insensitive).
pub(crate) fn peek_words(parser: &Parser<'_>, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(i, word)| match &parser.peek_nth_token(i).token {
            Token::Word(w) => w.value.eq_ignore_ascii_case(word),
            _ => false,
        })
}

fn skip(parser: &mut Parser<'_>, n: usize) {
    for _ in 0..n {
        parser.next_token();
    }
}

fn parse_statement(parser: &mut Parser<'_>) -> Result<Statement> {
    if peek_words(parser, &["CREATE", "STREAM"]) {
        skip(parser, 2);
        return parse_create_stream(parser).map(|c| Statement::CreateStream(Box::new(c)));
    }
    if peek_words(parser, &["DROP", "STREAM"]) {
        skip(parser, 2);
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = object_name(&parser.parse_object_name(false)?)?;
        return Ok(Statement::DropStream { name, if_exists });
    }
    if peek_words(parser, &["ALTER", "STREAM"]) {
        skip(parser, 2);
        let name = object_name(&parser.parse_object_name(false)?)?;
        parser.expect_keyword_is(Keyword::SET)?;
        parser.expect_token(&Token::LParen)?;
        let options = parser.parse_comma_separated(Parser::parse_sql_option)?;
        parser.expect_token(&Token::RParen)?;
        let options = stream_options(&options, false)?.storage;
        if options.partitions.is_some() {
            return Err(PlanError::NotSupported(
                "changing the partition count with ALTER STREAM".into(),
            ));
        }
        return Ok(Statement::AlterStream { name, options });
    }
    if peek_words(parser, &["CREATE", "OR", "REPLACE", "MATERIALIZED", "VIEW"]) {
        return Err(PlanError::NotSupported(
            "CREATE OR REPLACE MATERIALIZED VIEW (a view's rows come from its query: drop it \
             and create it again, and its new job reads its input from the start)"
                .into(),
        ));
    }
    if peek_words(parser, &["CREATE", "MATERIALIZED", "VIEW"]) {
        skip(parser, 3);
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = object_name(&parser.parse_object_name(false)?)?;
        parser.expect_keyword_is(Keyword::AS)?;
        let (query, clauses) = parse_view_query(parser)?;
        return Ok(Statement::CreateMaterializedView(CreateMaterializedView {
            name,
            if_not_exists,
            query: query.to_string(),
            emit_on_window_close: clauses.emit_on_window_close,
            late_data_to: clauses.late_data_to,
        }));
    }
    if peek_words(parser, &["DROP", "MATERIALIZED", "VIEW"]) {
        skip(parser, 3);
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = object_name(&parser.parse_object_name(false)?)?;
        return Ok(Statement::DropMaterializedView { name, if_exists });
    }
    if peek_words(parser, &["SHOW", "MATERIALIZED", "VIEWS"]) {
        skip(parser, 3);
        return Ok(Statement::ShowMaterializedViews);
    }
    if peek_words(parser, &["CREATE", "SINK"]) {
        skip(parser, 2);
        let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = object_name(&parser.parse_object_name(false)?)?;
        parser.expect_keyword_is(Keyword::INTO)?;
        let target = object_name(&parser.parse_object_name(false)?)?;
        parser.expect_keyword_is(Keyword::AS)?;
        let (query, clauses) = parse_view_query(parser)?;
        return Ok(Statement::CreateSink(CreateSink {
            name,
            if_not_exists,
            target,
            query: query.to_string(),
            emit_on_window_close: clauses.emit_on_window_close,
            late_data_to: clauses.late_data_to,
        }));
    }
    if peek_words(parser, &["DROP", "SINK"]) {
        skip(parser, 2);
        let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
        let name = object_name(&parser.parse_object_name(false)?)?;
        return Ok(Statement::DropSink { name, if_exists });
    }
    if peek_words(parser, &["SHOW", "SINKS"]) {
        skip(parser, 2);
        return Ok(Statement::ShowSinks);
    }
    if peek_words(parser, &["SUBSCRIBE"]) {
        skip(parser, 1);
        return parse_subscribe(parser).map(Statement::Subscribe);
    }
    if peek_words(parser, &["COPY"])
        && parser.peek_nth_token(1).token == Token::LParen
        && matches!(&parser.peek_nth_token(2).token, Token::Word(w) if w.value.eq_ignore_ascii_case("SUBSCRIBE"))
    {
        skip(parser, 3);
        let subscribe = parse_subscribe(parser)?;
        parser.expect_token(&Token::RParen)?;
        parser.expect_keyword_is(Keyword::TO)?;
        parser.expect_keyword_is(Keyword::STDOUT)?;
        return Ok(Statement::CopySubscribe(subscribe));
    }
    if peek_words(parser, &["SHOW", "JOBS"]) {
        skip(parser, 2);
        return Ok(Statement::ShowJobs);
    }
    if peek_words(parser, &["COPY"]) {
        skip(parser, 1);
        return crate::copy::parse_copy(parser).map(Statement::CopyFrom);
    }
    if peek_words(parser, &["SHOW", "STREAMS"]) {
        skip(parser, 2);
        return Ok(Statement::ShowStreams);
    }
    if peek_words(parser, &["SHOW", "CONSUMER", "GROUPS"]) {
        skip(parser, 3);
        return Ok(Statement::ShowConsumerGroups);
    }
    if peek_words(parser, &["DESCRIBE"]) || peek_words(parser, &["DESC"]) {
        skip(parser, 1);
        let _ = peek_words(parser, &["STREAM"]) && {
            skip(parser, 1);
            true
        };
        let name = object_name(&parser.parse_object_name(false)?)?;
        return Ok(Statement::Describe { name });
    }
    Ok(Statement::Sql(Box::new(parser.parse_statement()?)))
}

/// What follows `SUBSCRIBE`: `[TO] name` or `(query)`.
fn parse_subscribe(parser: &mut Parser<'_>) -> Result<Subscribe> {
    if parser.consume_token(&Token::LParen) {
        let query = parser.parse_query()?;
        parser.expect_token(&Token::RParen)?;
        return Ok(Subscribe::Query(query.to_string()));
    }
    let _ = parser.parse_keyword(Keyword::TO);
    Ok(Subscribe::Object(object_name(
        &parser.parse_object_name(false)?,
    )?))
}

/// What follows a view's or sink's query.
#[derive(Debug, Default)]
struct ViewClauses {
    /// `EMIT ON WINDOW CLOSE`.
    emit_on_window_close: bool,
    /// `LATE DATA TO stream`.
    late_data_to: Option<String>,
}

/// A view's query and the clauses after it (`EMIT ON WINDOW CLOSE`, then
/// `LATE DATA TO stream`). The statement's tokens are taken first (once
/// each) and the clauses looked for at their end; the query is parsed from
/// the tokens before them: parsed as it comes, `FROM orders EMIT` would
/// take `EMIT` for the table's alias.
fn parse_view_query(
    parser: &mut Parser<'_>,
) -> Result<(Box<datafusion::sql::sqlparser::ast::Query>, ViewClauses)> {
    let mut depth = 0usize;
    let mut tokens = Vec::new();
    loop {
        let next = parser.peek_token();
        match next.token {
            Token::EOF => break,
            Token::SemiColon if depth == 0 => break,
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
        tokens.push(parser.next_token());
    }
    let ends_with = |tokens: &[TokenWithSpan], words: &[&str]| {
        tokens.len() > words.len()
            && tokens[tokens.len() - words.len()..]
                .iter()
                .zip(words)
                .all(|(token, word)| matches!(&token.token, Token::Word(w) if w.value.eq_ignore_ascii_case(word)))
    };
    let mut clauses = ViewClauses::default();
    if tokens.len() > 4 && ends_with(&tokens[..tokens.len() - 1], &["LATE", "DATA", "TO"]) {
        let Some(Token::Word(name)) = tokens.last().map(|t| t.token.clone()) else {
            return Err(PlanError::Syntax(
                "expected a stream name after LATE DATA TO".into(),
            ));
        };
        clauses.late_data_to = Some(if name.quote_style.is_some() {
            name.value
        } else {
            name.value.to_ascii_lowercase()
        });
        tokens.truncate(tokens.len() - 4);
    }
    let clause = ["EMIT", "ON", "WINDOW", "CLOSE"];
    if ends_with(&tokens, &clause) {
        clauses.emit_on_window_close = true;
        tokens.truncate(tokens.len() - clause.len());
    }
    let mut query_parser = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens);
    let query = query_parser.parse_query()?;
    let next = query_parser.peek_token();
    if next.token != Token::EOF {
        return query_parser
            .expected("end of the query", next)
            .map_err(Into::into);
    }
    Ok((query, clauses))
}

/// The normalized name of an identifier: lower case unless quoted, as in
/// Postgres.
pub fn normalize_ident(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

/// A one-part object name, normalized. `public.x` is accepted as `x`.
pub fn object_name(name: &ObjectName) -> Result<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) => Ok(normalize_ident(ident)),
            None => Err(PlanError::Syntax(format!("unexpected name {name}"))),
        })
        .collect::<Result<_>>()?;
    match parts.as_slice() {
        [name] => Ok(name.clone()),
        [schema, name] if schema == "public" => Ok(name.clone()),
        _ => Err(PlanError::NotSupported(format!(
            "qualified name {name} (streams live in schema public)"
        ))),
    }
}

fn parse_create_stream(parser: &mut Parser<'_>) -> Result<CreateStream> {
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = object_name(&parser.parse_object_name(false)?)?;
    let mut columns: Vec<ColumnDefinition> = Vec::new();
    let mut watermark = None;
    if parser.consume_token(&Token::LParen) {
        loop {
            if peek_words(parser, &["WATERMARK", "FOR"]) {
                skip(parser, 2);
                let column = normalize_ident(&parser.parse_identifier()?);
                parser.expect_keyword_is(Keyword::AS)?;
                let expression = parser.parse_expr()?;
                if watermark.is_some() {
                    return Err(PlanError::NotSupported(
                        "more than one WATERMARK clause".into(),
                    ));
                }
                watermark = Some(WatermarkDefinition {
                    column,
                    expression: expression.to_string(),
                    idle_timeout_ms: None,
                });
            } else {
                let def = parser.parse_column_def()?;
                arrow_type(&def.data_type)?;
                let name = normalize_ident(&def.name);
                if columns.iter().any(|c| c.name == name) {
                    return Err(PlanError::DuplicateColumn(name));
                }
                let not_null = def
                    .options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::NotNull));
                columns.push(ColumnDefinition {
                    name,
                    sql_type: def.data_type.to_string(),
                    nullable: !not_null,
                });
            }
            if parser.consume_token(&Token::RParen) {
                break;
            }
            parser.expect_token(&Token::Comma)?;
        }
    }
    let with = if parser.parse_keyword(Keyword::WITH) {
        parser.expect_token(&Token::LParen)?;
        let options = parser.parse_comma_separated(Parser::parse_sql_option)?;
        parser.expect_token(&Token::RParen)?;
        options
    } else {
        Vec::new()
    };
    let ParsedOptions {
        storage: options,
        format,
        key,
        connector,
        idle_timeout_ms,
    } = stream_options(&with, true)?;
    let connector = connector.build()?;
    if let Some(ConnectorDefinition::Nexmark(nexmark)) = &connector {
        if !columns.is_empty() {
            return Err(PlanError::InvalidOption {
                name: "connector".into(),
                reason: "a nexmark stream's columns come from its kind; declare none".into(),
            });
        }
        if format.is_some_and(|f| f != Format::Json) {
            return Err(PlanError::InvalidOption {
                name: "format".into(),
                reason: "a nexmark stream is json".into(),
            });
        }
        columns = nexmark.kind.columns();
        watermark.get_or_insert_with(NexmarkKind::default_watermark);
    }
    let format = match (format, columns.is_empty()) {
        (Some(Format::Raw), false) => {
            return Err(PlanError::InvalidOption {
                name: "format".into(),
                reason: "a raw stream has no declared columns (it has key and value)".into(),
            });
        }
        (Some(format), false) => format,
        (None, false) => Format::Json,
        (Some(Format::Raw) | None, true) => Format::Raw,
        (Some(other), true) => {
            return Err(PlanError::InvalidOption {
                name: "format".into(),
                reason: format!("format {} needs declared columns", other.as_str()),
            });
        }
    };
    if let Some(wm) = &watermark {
        let column = columns
            .iter()
            .find(|c| c.name == wm.column)
            .ok_or_else(|| PlanError::UnknownColumn(wm.column.clone()))?;
        let data_type = crate::types::arrow_type_of(&column.sql_type)?;
        if !matches!(
            data_type,
            datafusion::arrow::datatypes::DataType::Timestamp(..)
        ) {
            return Err(PlanError::InvalidOption {
                name: "WATERMARK".into(),
                reason: format!(
                    "column {} is {}, not a timestamp",
                    column.name, column.sql_type
                ),
            });
        }
    }
    match (&mut watermark, idle_timeout_ms) {
        (Some(wm), Some(ms)) => wm.idle_timeout_ms = Some(ms),
        (None, Some(_)) => {
            return Err(PlanError::InvalidOption {
                name: "idle_timeout".into(),
                reason: "it applies to a stream with a WATERMARK".into(),
            });
        }
        _ => {}
    }
    if let Some(key) = &key
        && !columns.iter().any(|c| &c.name == key)
    {
        return Err(PlanError::UnknownColumn(key.clone()));
    }
    Ok(CreateStream {
        name,
        if_not_exists,
        definition: StreamDefinition {
            columns,
            watermark,
            format,
            key,
            connector,
            view: None,
        },
        options,
    })
}

/// The options of a `WITH (...)` / `SET (...)` list.
#[derive(Debug, Default)]
struct ParsedOptions {
    storage: StreamOptions,
    format: Option<Format>,
    key: Option<String>,
    connector: ConnectorOptions,
    /// `idle_timeout = '10 seconds'` (milliseconds).
    idle_timeout_ms: Option<u64>,
}

/// Reads `WITH (...)` / `SET (...)` options; `creating` admits those only
/// `CREATE STREAM` takes.
fn stream_options(options: &[SqlOption], creating: bool) -> Result<ParsedOptions> {
    let mut parsed = ParsedOptions::default();
    let out = &mut parsed.storage;
    for option in options {
        let SqlOption::KeyValue { key: name, value } = option else {
            return Err(PlanError::Syntax(format!(
                "expected name = value, found {option}"
            )));
        };
        let name = normalize_ident(name);
        let bad = |reason: &str| PlanError::InvalidOption {
            name: name.clone(),
            reason: reason.to_string(),
        };
        match name.as_str() {
            "partitions" => {
                let n = integer(value).ok_or_else(|| bad("expected a whole number"))?;
                out.partitions = Some(
                    u32::try_from(n)
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| bad("must be between 1 and 10000"))?,
                );
            }
            "retention" => {
                let text =
                    text(value).ok_or_else(|| bad("expected a duration such as '7 days'"))?;
                out.retention_ms = Some(parse_duration_ms(&text).map_err(|r| bad(&r))?);
            }
            "retention_bytes" => {
                out.retention_bytes =
                    Some(integer(value).ok_or_else(|| bad("expected a whole number of bytes"))?);
            }
            "segment_bytes" => {
                let n = integer(value)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("expected a positive number of bytes"))?;
                out.segment_bytes = Some(n);
            }
            "format" if creating => {
                let text = text(value).ok_or_else(|| bad("expected 'json', 'csv' or 'raw'"))?;
                parsed.format = Some(Format::parse(&text)?);
            }
            "key" if creating => {
                parsed.key = Some(match value {
                    Expr::Identifier(ident) => normalize_ident(ident),
                    other => text(other).ok_or_else(|| bad("expected a column name"))?,
                });
            }
            "connector" if creating => {
                parsed.connector.connector =
                    Some(text(value).ok_or_else(|| bad("expected a connector name"))?);
            }
            "kind" if creating => {
                parsed.connector.kind =
                    Some(text(value).ok_or_else(|| bad("expected an event kind"))?);
            }
            "rate" if creating => {
                parsed.connector.rate_per_sec =
                    Some(integer(value).ok_or_else(|| bad("expected events per second"))?);
            }
            "idle_timeout" if creating => {
                let text =
                    text(value).ok_or_else(|| bad("expected a duration such as '10 seconds'"))?;
                parsed.idle_timeout_ms = Some(parse_duration_ms(&text).map_err(|r| bad(&r))?);
            }
            "events" if creating => {
                parsed.connector.events_max =
                    Some(integer(value).ok_or_else(|| bad("expected a number of events"))?);
            }
            _ => return Err(bad("unknown option")),
        }
    }
    Ok(parsed)
}

fn literal(value: &Expr) -> Option<&Value> {
    match value {
        Expr::Value(ValueWithSpan { value, .. }) => Some(value),
        _ => None,
    }
}

fn integer(value: &Expr) -> Option<u64> {
    match literal(value)? {
        Value::Number(n, _) => n.parse().ok(),
        Value::SingleQuotedString(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: &Expr) -> Option<String> {
    match value {
        Expr::Identifier(ident) => Some(ident.value.clone()),
        _ => match literal(value)? {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
    }
}

/// Parses `'7 days'`, `'12 hours'`, `'30 s'`, `'500 ms'` into milliseconds.
pub fn parse_duration_ms(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let unit_ms: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "millisecond" | "milliseconds" => 1,
        "s" | "sec" | "second" | "seconds" => 1_000,
        "m" | "min" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        "d" | "day" | "days" => 86_400_000,
        "w" | "week" | "weeks" => 604_800_000,
        other => return Err(format!("unknown unit {other:?}")),
    };
    number
        .checked_mul(unit_ms)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_stream_from_the_design() {
        let sql = "CREATE STREAM orders (
            order_id BIGINT, customer TEXT, amount DOUBLE PRECISION, ts TIMESTAMP NOT NULL,
            WATERMARK FOR ts AS ts - INTERVAL '5 seconds'
        ) WITH (partitions = 3, format = 'json', key = 'customer', retention = '7 days');";
        let statements = parse(sql).unwrap();
        let [Statement::CreateStream(create)] = statements.as_slice() else {
            panic!("{statements:?}");
        };
        assert_eq!(create.name, "orders");
        assert_eq!(create.definition.columns.len(), 4);
        assert!(!create.definition.columns[3].nullable);
        assert_eq!(create.definition.columns[2].sql_type, "DOUBLE PRECISION");
        assert_eq!(
            create.definition.watermark,
            Some(WatermarkDefinition {
                column: "ts".into(),
                expression: "ts - INTERVAL '5 seconds'".into(),
                idle_timeout_ms: None,
            })
        );
        assert_eq!(create.definition.key.as_deref(), Some("customer"));
        assert_eq!(create.options.partitions, Some(3));
        assert_eq!(create.options.retention_ms, Some(7 * 86_400_000));
    }

    #[test]
    fn nexmark_streams_take_their_columns_from_the_kind() {
        let statements = parse(
            "CREATE STREAM bids WITH (connector = 'nexmark', kind = 'bid', rate = 5000, \
             events = 100, partitions = 2, key = 'auction'); \
             CREATE STREAM people (WATERMARK FOR date_time AS date_time) \
             WITH (connector = 'nexmark', kind = 'person')",
        )
        .unwrap();
        let [
            Statement::CreateStream(bids),
            Statement::CreateStream(people),
        ] = statements.as_slice()
        else {
            panic!("{statements:?}");
        };
        let names: Vec<&str> = bids
            .definition
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "auction",
                "bidder",
                "price",
                "channel",
                "url",
                "date_time",
                "extra"
            ]
        );
        assert_eq!(bids.definition.format, Format::Json);
        assert_eq!(
            bids.definition.watermark,
            Some(NexmarkKind::default_watermark())
        );
        assert_eq!(
            bids.definition.connector,
            Some(ConnectorDefinition::Nexmark(crate::NexmarkOptions {
                kind: NexmarkKind::Bid,
                rate_per_sec: 5000,
                events_max: Some(100),
                base_time_ms: None,
            }))
        );
        assert_eq!(bids.options.partitions, Some(2));
        assert_eq!(
            people
                .definition
                .watermark
                .as_ref()
                .map(|w| w.expression.as_str()),
            Some("date_time")
        );
        // The definition survives its JSON form.
        let json = bids.definition.to_json();
        assert_eq!(
            StreamDefinition::from_json("bids", Some(&json)).unwrap(),
            bids.definition
        );

        let err = |sql: &str| parse(sql).unwrap_err().to_string();
        assert!(
            err("CREATE STREAM b (a INT) WITH (connector = 'nexmark', kind = 'bid')")
                .contains("declare none")
        );
        assert!(
            err("CREATE STREAM b WITH (connector = 'nexmark', kind = 'bids')").contains("kind")
        );
        assert!(err("CREATE STREAM b WITH (connector = 'nexmark')").contains("kind"));
        assert!(
            err("CREATE STREAM b WITH (connector = 'nexmark', kind = 'bid', format = 'csv')")
                .contains("json")
        );
        assert!(
            err("CREATE STREAM b WITH (connector = 'nexmark', kind = 'bid', key = 'nope')")
                .contains("\"nope\"")
        );
        assert!(err("CREATE STREAM b (a INT) WITH (rate = 5)").contains("connector"));
        assert!(err("ALTER STREAM b SET (rate = 5)").contains("unknown option"));
    }

    #[test]
    fn sinks_subscriptions_and_late_data() {
        let statements = parse(
            "CREATE SINK s INTO Out AS SELECT window_start, count(*) FROM \
             TUMBLE(orders, ts, INTERVAL '1 minute') GROUP BY window_start \
             EMIT ON WINDOW CLOSE LATE DATA TO Late; DROP SINK IF EXISTS s; SHOW SINKS; \
             SUBSCRIBE TO v; SUBSCRIBE v; SUBSCRIBE (SELECT a FROM t); \
             COPY (SUBSCRIBE TO v) TO STDOUT",
        )
        .unwrap();
        let Statement::CreateSink(sink) = &statements[0] else {
            panic!("{:?}", statements[0]);
        };
        assert_eq!(
            (
                sink.name.as_str(),
                sink.target.as_str(),
                sink.late_data_to.as_deref()
            ),
            ("s", "out", Some("late"))
        );
        assert!(sink.emit_on_window_close && sink.query.ends_with("GROUP BY window_start"));
        assert_eq!(
            statements[1],
            Statement::DropSink {
                name: "s".into(),
                if_exists: true
            }
        );
        assert_eq!(statements[2], Statement::ShowSinks);
        assert_eq!(
            statements[3],
            Statement::Subscribe(Subscribe::Object("v".into()))
        );
        assert_eq!(
            statements[4],
            Statement::Subscribe(Subscribe::Object("v".into()))
        );
        assert_eq!(
            statements[5],
            Statement::Subscribe(Subscribe::Query("SELECT a FROM t".into()))
        );
        assert_eq!(
            statements[6],
            Statement::CopySubscribe(Subscribe::Object("v".into()))
        );
    }

    #[test]
    fn materialized_views() {
        let statements = parse(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS Big AS SELECT * FROM orders WHERE amount > 10; \
             CREATE MATERIALIZED VIEW w AS SELECT window_start, count(*) FROM \
             TUMBLE(orders, ts, INTERVAL '1 minute') GROUP BY window_start EMIT ON WINDOW CLOSE; \
             SHOW MATERIALIZED VIEWS; DROP MATERIALIZED VIEW IF EXISTS big; SHOW JOBS",
        )
        .unwrap();
        assert_eq!(
            statements[0],
            Statement::CreateMaterializedView(CreateMaterializedView {
                name: "big".into(),
                if_not_exists: true,
                query: "SELECT * FROM orders WHERE amount > 10".into(),
                emit_on_window_close: false,
                late_data_to: None,
            })
        );
        assert!(matches!(
            &statements[1],
            Statement::CreateMaterializedView(v) if v.emit_on_window_close && v.query.contains("TUMBLE")
        ));
        assert_eq!(statements[2], Statement::ShowMaterializedViews);
        assert_eq!(
            statements[3],
            Statement::DropMaterializedView {
                name: "big".into(),
                if_exists: true
            }
        );
        assert_eq!(statements[4], Statement::ShowJobs);
        assert!(parse("CREATE MATERIALIZED VIEW v SELECT 1").is_err());
        // Right after a table, EMIT is the clause, not the table's alias.
        let statements = parse(
            "CREATE MATERIALIZED VIEW v AS SELECT * FROM (SELECT 1) s, orders EMIT ON WINDOW CLOSE;",
        )
        .unwrap();
        let [Statement::CreateMaterializedView(view)] = statements.as_slice() else {
            panic!("{statements:?}");
        };
        assert!(view.emit_on_window_close);
        assert_eq!(view.query, "SELECT * FROM (SELECT 1) s, orders");
    }

    #[test]
    fn other_statements() {
        let statements = parse(
            "SHOW STREAMS; describe Orders; DROP STREAM IF EXISTS \"Mixed\"; \
             ALTER STREAM s SET (retention = '1 hour'); SELECT 1",
        )
        .unwrap();
        assert_eq!(statements.len(), 5);
        assert_eq!(statements[0], Statement::ShowStreams);
        assert_eq!(
            statements[1],
            Statement::Describe {
                name: "orders".into()
            }
        );
        assert_eq!(
            statements[2],
            Statement::DropStream {
                name: "Mixed".into(),
                if_exists: true
            }
        );
        assert!(
            matches!(&statements[3], Statement::AlterStream { options, .. } if options.retention_ms == Some(3_600_000))
        );
        assert!(matches!(statements[4], Statement::Sql(_)));
        let raw = parse("CREATE STREAM r").unwrap();
        assert!(matches!(&raw[0], Statement::CreateStream(c) if c.definition.is_raw()));
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |sql: &str| parse(sql).unwrap_err().to_string();
        assert!(err("CREATE STREAM s (a INT, a TEXT)").contains("\"a\" specified more than once"));
        assert!(err("CREATE STREAM s (a GEOMETRY)").contains("GEOMETRY"));
        assert!(err("CREATE STREAM s (a INT) WITH (partitions = 0)").contains("partitions"));
        assert!(err("CREATE STREAM s (a INT) WITH (colour = 'red')").contains("colour"));
        assert!(
            err("CREATE STREAM s (a INT, WATERMARK FOR b AS b)").contains("\"b\" does not exist")
        );
        assert!(err("CREATE STREAM s (a INT, WATERMARK FOR a AS a)").contains("not a timestamp"));
        assert!(err("CREATE STREAM s (a INT) WITH (key = 'zz')").contains("\"zz\""));
        assert!(err("SELEC 1").starts_with("syntax error"));
        assert!(err("SELECT 1 SELECT 2").starts_with("syntax error"));
        assert_eq!(parse_duration_ms("30 s"), Ok(30_000));
        assert!(parse_duration_ms("3 fortnights").is_err());
    }
}
