//! Rewrites of what Postgres tools send into SQL DataFusion plans, beyond
//! those `datafusion-pg-catalog` already does.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArguments, Ident, SelectItem, SetExpr, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Every rewrite below, in order.
pub(crate) fn postgres_idioms(statement: &mut ast::Statement) {
    storage_options(statement);
    array_subqueries(statement);
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
