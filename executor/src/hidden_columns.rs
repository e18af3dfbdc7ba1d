//! `*` leaves out a stream's metadata columns (`_partition`, `_offset`,
//! `_timestamp`, `_key`), as Postgres leaves out its system columns:
//! `SELECT * FROM orders` gives the stream's own columns, and the metadata
//! ones come only when named (`SELECT _offset, * FROM orders`). So a view
//! or sink defined with `SELECT *` has its input's columns and not the
//! input's offsets.
//!
//! DataFusion expands `*` to every column of the table, so before a
//! statement is planned each `*` over one stream, and each `t.*` where `t`
//! is a stream, gets an `EXCLUDE` of the metadata columns. A `*` over a
//! join is left whole (name the columns, or use `t.*` for each side).
//! A `NATURAL JOIN` of streams joins on the columns their own columns
//! share, as Postgres's does (DataFusion's would join on the metadata
//! columns too, and match nothing): it becomes a `JOIN ... USING` of
//! them.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, ExcludeSelectItem, Ident, JoinConstraint, JoinOperator, ObjectName, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, TableFactor, TableWithJoins, VisitMut, VisitorMut,
    WildcardAdditionalOptions,
};
use tributary_planner::stream_definition::METADATA_COLUMNS;

/// Adds an `EXCLUDE` of the metadata columns to each `*` and `t.*` of
/// `statement` that stands for a stream's columns, and turns a `NATURAL
/// JOIN` of streams into a `JOIN ... USING` of their shared columns;
/// `stream_columns` gives the own columns of a stream named without a
/// schema, `None` if it is no stream.
pub(crate) fn hide_metadata_columns(
    statement: &mut ast::Statement,
    stream_columns: impl Fn(&str) -> Option<Vec<String>>,
) {
    let _ = statement.visit(&mut Hider { stream_columns });
}

struct Hider<F> {
    stream_columns: F,
}

impl<F: Fn(&str) -> Option<Vec<String>>> VisitorMut for Hider<F> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut ast::Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for from in &mut select.from {
                self.natural_joins_of_streams(from);
            }
            let sources: Vec<Source> = select
                .from
                .iter()
                .flat_map(|from| {
                    std::iter::once(&from.relation).chain(from.joins.iter().map(|j| &j.relation))
                })
                .map(|relation| self.source(relation))
                .collect();
            let single_stream = matches!(sources.as_slice(), [Source { stream: true, .. }]);
            for item in &mut select.projection {
                match item {
                    SelectItem::Wildcard(options) if single_stream => exclude_metadata(options),
                    SelectItem::QualifiedWildcard(
                        SelectItemQualifiedWildcardKind::ObjectName(qualifier),
                        options,
                    ) if sources.iter().any(|s| s.stream && s.is_named(qualifier)) => {
                        exclude_metadata(options)
                    }
                    _ => {}
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// One relation of a FROM clause: the names it goes by, and whether its
/// columns are a stream's (a stream, or a window function over one).
struct Source {
    names: Vec<String>,
    stream: bool,
}

impl Source {
    fn is_named(&self, qualifier: &ObjectName) -> bool {
        last_part(qualifier).is_some_and(|q| self.names.iter().any(|n| n.eq_ignore_ascii_case(&q)))
    }
}

impl<F: Fn(&str) -> Option<Vec<String>>> Hider<F> {
    /// The own columns of `relation` if it is a stream named as a table.
    fn own_columns(&self, relation: &TableFactor) -> Option<Vec<String>> {
        match relation {
            TableFactor::Table {
                name, args: None, ..
            } if self.source(relation).stream => (self.stream_columns)(&last_part(name)?),
            _ => None,
        }
    }

    /// Each `NATURAL JOIN` in `from` whose sides are all streams becomes a
    /// join `USING` the columns both sides have of their own (a `CROSS
    /// JOIN` if none).
    fn natural_joins_of_streams(&self, from: &mut TableWithJoins) {
        let Some(mut left) = self.own_columns(&from.relation) else {
            return;
        };
        for join in &mut from.joins {
            let Some(right) = self.own_columns(&join.relation) else {
                return;
            };
            let shared: Vec<String> = left.iter().filter(|c| right.contains(c)).cloned().collect();
            if let Some(constraint) = constraint_mut(&mut join.join_operator)
                && matches!(constraint, JoinConstraint::Natural)
            {
                *constraint = if shared.is_empty() {
                    JoinConstraint::None
                } else {
                    JoinConstraint::Using(
                        shared
                            .iter()
                            .map(|c| ObjectName::from(vec![Ident::new(c)]))
                            .collect(),
                    )
                };
                if shared.is_empty() {
                    join.join_operator = JoinOperator::CrossJoin(JoinConstraint::None);
                }
            }
            left.extend(right.into_iter().filter(|c| !shared.contains(c)));
        }
    }

    fn source(&self, relation: &TableFactor) -> Source {
        let TableFactor::Table {
            name, alias, args, ..
        } = relation
        else {
            return Source {
                names: Vec::new(),
                stream: false,
            };
        };
        let table = last_part(name).unwrap_or_default();
        let stream = match args {
            // TUMBLE(stream, ...) and HOP(stream, ...) give the stream's
            // columns and the windows'.
            Some(_) => table.eq_ignore_ascii_case("tumble") || table.eq_ignore_ascii_case("hop"),
            None => {
                let in_public = match name.0.as_slice() {
                    [_] => true,
                    [schema, _] => schema
                        .as_ident()
                        .is_some_and(|s| s.value.eq_ignore_ascii_case("public")),
                    _ => false,
                };
                in_public && (self.stream_columns)(&table).is_some()
            }
        };
        let mut names = vec![table];
        if let Some(alias) = alias {
            names = vec![alias.name.value.clone()];
        }
        Source { names, stream }
    }
}

/// The own columns of the stream `name` in `log`, `None` if there is none.
pub(crate) fn stream_columns(log: &tributary_storage::Log, name: &str) -> Option<Vec<String>> {
    let record = log.stream(name).ok()?;
    let definition =
        tributary_planner::StreamDefinition::from_json(name, record.config.definition.as_ref())
            .ok()?;
    let schemas = crate::format::StreamSchemas::new(&definition).ok()?;
    Some(
        schemas
            .values
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
    )
}

/// The constraint of a join that has one to set (inner and outer joins).
fn constraint_mut(operator: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c) => Some(c),
        _ => None,
    }
}

/// The last part of a name (`orders` of `public.orders`).
fn last_part(name: &ObjectName) -> Option<String> {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
}

/// Adds the metadata columns to `options`' `EXCLUDE` (keeping what the
/// query excludes itself).
fn exclude_metadata(options: &mut WildcardAdditionalOptions) {
    let mut excluded: Vec<ObjectName> = match options.opt_exclude.take() {
        Some(ExcludeSelectItem::Single(name)) => vec![name],
        Some(ExcludeSelectItem::Multiple(names)) => names,
        None => Vec::new(),
    };
    for column in METADATA_COLUMNS {
        let already = excluded
            .iter()
            .any(|name| last_part(name).is_some_and(|n| n.eq_ignore_ascii_case(column)));
        if !already {
            excluded.push(ObjectName::from(vec![Ident::new(column)]));
        }
    }
    options.opt_exclude = Some(ExcludeSelectItem::Multiple(excluded));
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn hidden(sql: &str) -> String {
        let mut statement = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        hide_metadata_columns(&mut statement, |name| match name {
            "orders" => Some(vec!["id".into(), "amount".into(), "ts".into()]),
            "bids" => Some(vec!["id".into(), "price".into(), "ts".into()]),
            "other" | "items" => None,
            _ => None,
        });
        statement.to_string()
    }

    const EXCLUDED: &str = "EXCLUDE (_partition, _offset, _timestamp, _key)";

    #[test]
    fn a_star_over_a_stream_leaves_out_its_metadata_columns() {
        assert_eq!(
            hidden("SELECT * FROM orders WHERE amount > 1"),
            format!("SELECT * {EXCLUDED} FROM orders WHERE amount > 1")
        );
        assert_eq!(
            hidden("SELECT _offset, * FROM public.orders"),
            format!("SELECT _offset, * {EXCLUDED} FROM public.orders")
        );
        assert_eq!(
            hidden("SELECT o.* FROM orders AS o"),
            format!("SELECT o.* {EXCLUDED} FROM orders AS o")
        );
        assert_eq!(
            hidden("SELECT * FROM TUMBLE(bids, ts, INTERVAL '1 second')"),
            format!("SELECT * {EXCLUDED} FROM TUMBLE(bids, ts, INTERVAL '1 second')")
        );
    }

    #[test]
    fn nested_queries_and_joins() {
        assert_eq!(
            hidden("SELECT * FROM (SELECT * FROM orders) AS t"),
            format!("SELECT * FROM (SELECT * {EXCLUDED} FROM orders) AS t")
        );
        assert_eq!(
            hidden("SELECT o.*, b.* FROM orders AS o JOIN bids AS b ON o.id = b.id"),
            format!(
                "SELECT o.* {EXCLUDED}, b.* {EXCLUDED} FROM orders AS o JOIN bids AS b ON o.id = b.id"
            )
        );
        // A star over a join, or over what is not a stream, is left whole.
        for sql in [
            "SELECT * FROM orders AS o JOIN bids AS b ON o.id = b.id",
            "SELECT * FROM pg_catalog.pg_class",
            "SELECT * FROM other",
            "SELECT * FROM tributary.orders",
            "SELECT count(*) FROM orders",
        ] {
            assert_eq!(hidden(sql), sql);
        }
    }

    #[test]
    fn a_natural_join_of_streams_joins_on_their_own_shared_columns() {
        assert_eq!(
            hidden("SELECT count(*) FROM orders NATURAL JOIN bids"),
            "SELECT count(*) FROM orders JOIN bids USING(id, ts)"
        );
        assert_eq!(
            hidden("SELECT count(*) FROM orders AS a NATURAL LEFT JOIN orders AS b"),
            "SELECT count(*) FROM orders AS a LEFT JOIN orders AS b USING(id, amount, ts)"
        );
        // Not every side a stream: left to DataFusion.
        assert_eq!(
            hidden("SELECT count(*) FROM orders NATURAL JOIN other"),
            "SELECT count(*) FROM orders NATURAL JOIN other"
        );
    }

    #[test]
    fn what_the_query_excludes_itself_is_kept() {
        assert_eq!(
            hidden("SELECT * EXCLUDE (amount, _key) FROM orders"),
            "SELECT * EXCLUDE (amount, _key, _partition, _offset, _timestamp) FROM orders"
        );
    }
}
