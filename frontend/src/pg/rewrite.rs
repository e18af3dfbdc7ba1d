//! Rewrites of what Postgres tools send into SQL DataFusion plans, beyond
//! those `datafusion-pg-catalog` already does.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, Ident, SelectItem, SetExpr, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use tributary_planner::stream_definition::METADATA_COLUMNS;

/// Every rewrite below, in order.
pub(crate) fn postgres_idioms(statement: &mut ast::Statement) {
    storage_options(statement);
    array_subqueries(statement);
    metadata_column_names(statement);
}

/// datafusion-pg-catalog aliases a column named beside `*` (`SELECT
/// _offset, * FROM t` becomes `_offset AS __alias__offset`) so DataFusion
/// does not see its name twice. `*` leaves out a stream's metadata
/// columns, so for them the alias only renamed the column: it goes again.
fn metadata_column_names(statement: &mut ast::Statement) {
    let ast::Statement::Query(query) = statement else {
        return;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    for item in &mut select.projection {
        let SelectItem::ExprWithAlias { expr, alias } = item else {
            continue;
        };
        let name = match expr {
            Expr::Identifier(ident) => Some(&*ident),
            Expr::CompoundIdentifier(idents) => idents.last(),
            _ => None,
        };
        if let Some(name) = name
            && METADATA_COLUMNS.contains(&name.value.as_str())
            && alias.value == format!("__alias_{name}")
        {
            *item = SelectItem::UnnamedExpr(expr.clone());
        }
    }
}

/// Whether `statement` is a query of the user's own with a subquery in a
/// SELECT list: one that reads nothing of the Postgres catalog
/// (`pg_catalog`, `pg_*`, `information_schema`). datafusion-pg-catalog's
/// rewrites replace such a subquery with NULL when it is correlated and
/// cut it to one row when not: meant for the catalog queries of psql and
/// drivers, which DataFusion could not run otherwise, but a silently wrong
/// answer to anything else. Such a statement skips them.
pub(crate) fn has_own_select_list_subqueries(statement: &ast::Statement) -> bool {
    let mut reads_catalog = false;
    let _ = ast::visit_relations(statement, |name| {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| part.to_string().to_ascii_lowercase())
            .collect();
        let catalog = parts
            .first()
            .is_some_and(|first| first == "pg_catalog" || first == "information_schema")
            || parts.last().is_some_and(|last| last.starts_with("pg_"));
        reads_catalog |= catalog;
        ControlFlow::<()>::Continue(())
    });
    if reads_catalog {
        return false;
    }
    let mut finder = SelectListSubqueries(false);
    let _ = ast::Visit::visit(statement, &mut finder);
    finder.0
}

/// Finds a subquery that is an item of a SELECT list.
struct SelectListSubqueries(bool);

impl ast::Visitor for SelectListSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &ast::Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_ref()
            && select.projection.iter().any(|item| {
                matches!(
                    item,
                    SelectItem::UnnamedExpr(Expr::Subquery(_))
                        | SelectItem::ExprWithAlias {
                            expr: Expr::Subquery(_),
                            ..
                        }
                )
            })
        {
            self.0 = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

/// psql's `\d+` prints a table's storage options with
/// `array_to_string(c.reloptions || ..., ', ')`; `pg_class` here has no
/// `reloptions` (streams have no storage options), so the call becomes
/// the empty string it would be.
fn storage_options(statement: &mut ast::Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr
            && function
                .name
                .to_string()
                .to_ascii_lowercase()
                .ends_with("array_to_string")
            && function.args.to_string().contains("reloptions")
        {
            *expr = Expr::value(ast::Value::SingleQuotedString(String::new()));
        }
        ControlFlow::<()>::Continue(())
    });
}

/// `ARRAY(SELECT x ...)` (psql's `\d` uses it) becomes
/// `(SELECT array_agg(x) FROM (SELECT x ...) AS t)`.
fn array_subqueries(statement: &mut ast::Statement) {
    let _ = visit_expressions_mut(statement, |expr| {
        if let Expr::Function(function) = expr
            && function.name.to_string().eq_ignore_ascii_case("array")
            && let FunctionArguments::Subquery(query) = &function.args
            && let Some(rewritten) = array_agg_of(query)
        {
            *expr = rewritten;
        }
        ControlFlow::<()>::Continue(())
    });
}

fn array_agg_of(query: &ast::Query) -> Option<Expr> {
    let mut inner = query.clone();
    let SetExpr::Select(select) = inner.body.as_mut() else {
        return None;
    };
    let [item] = select.projection.as_mut_slice() else {
        return None;
    };
    const ELEMENT: &str = "__array_element";
    match item {
        SelectItem::UnnamedExpr(e) => {
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias: Ident::new(ELEMENT),
            };
        }
        SelectItem::ExprWithAlias { alias, .. } => *alias = Ident::new(ELEMENT),
        _ => return None,
    }
    let sql = format!("(SELECT array_agg({ELEMENT}) FROM ({inner}) AS __array_source)");
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_of_subquery_becomes_array_agg() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT array_to_string(array(select rolname from pg_roles order by 1), ',')",
        )
        .unwrap()
        .remove(0);
        postgres_idioms(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT array_to_string((SELECT array_agg(__array_element) FROM (SELECT rolname AS __array_element FROM pg_roles ORDER BY 1) AS __array_source), ',')"
        );
    }

    #[test]
    fn only_a_users_own_select_list_subqueries_are_kept_from_the_catalog_rewrites() {
        let has = |sql: &str| {
            has_own_select_list_subqueries(
                &Parser::parse_sql(&PostgreSqlDialect {}, sql)
                    .unwrap()
                    .remove(0),
            )
        };
        assert!(has(
            "SELECT auction, (SELECT count(*) FROM bids o WHERE o.auction = s.auction) AS c FROM bids s"
        ));
        assert!(has(
            "SELECT * FROM (SELECT a, (SELECT max(b) FROM t) FROM u) AS x"
        ));
        assert!(!has("SELECT a FROM t WHERE b = (SELECT max(b) FROM t)"));
        assert!(!has(
            "SELECT c.relname, (SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid = c.relnamespace) FROM pg_catalog.pg_class c"
        ));
        assert!(!has(
            "SELECT (SELECT count(*) FROM information_schema.tables)"
        ));
    }

    #[test]
    fn metadata_columns_named_beside_a_star_keep_their_names() {
        let compatibility = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
        let rewritten = |sql: &str| {
            let mut statement = compatibility.parse(sql).unwrap().remove(0);
            postgres_idioms(&mut statement);
            statement.to_string()
        };
        assert_eq!(
            rewritten("SELECT _offset, e._key, * FROM ev AS e"),
            "SELECT _offset, e._key, * FROM ev AS e"
        );
        // Other columns beside `*` keep the alias that avoids a name twice.
        assert_eq!(
            rewritten("SELECT amount, * FROM ev"),
            "SELECT amount AS __alias_amount, * FROM ev"
        );
    }

    #[test]
    fn storage_options_are_empty() {
        let mut statement = Parser::parse_sql(
            &PostgreSqlDialect {},
            "SELECT c.relkind, pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_catalog.pg_class c",
        )
        .unwrap()
        .remove(0);
        postgres_idioms(&mut statement);
        assert_eq!(
            statement.to_string(),
            "SELECT c.relkind, '' FROM pg_catalog.pg_class c"
        );
    }
}
