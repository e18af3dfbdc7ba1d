//! Functions a job cannot run: those whose value depends on when the query
//! runs (`now()`, `current_date`) and those that give another value at
//! each call (`random()`, `uuid()`). DataFusion's optimizer folds the first
//! kind into a constant taken when the query is planned, which a job does
//! once when it starts (and again after each restart), so a view filtering
//! on `now()` would silently keep the time its job started. The second
//! kind would make a restarted job recompute rows its output already holds
//! with other values. Both are refused when the view, sink or
//! subscription is created, before the optimizer sees them.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};

use crate::error::{ExecError, Result};

/// Refuses `plan` (not yet optimized) if it calls a function whose value
/// is not fixed by its arguments, naming the first one found.
pub(crate) fn refuse_changing_functions(plan: &LogicalPlan) -> Result<()> {
    let mut found = None;
    plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(call) = e {
                    let volatility = call.func.signature().volatility;
                    if volatility != Volatility::Immutable {
                        found = Some((call.func.name().to_string(), volatility));
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    })?;
    match found {
        None => Ok(()),
        Some((name, volatility)) => Err(ExecError::NotSupported(refusal(&name, volatility))),
    }
}

/// What cannot run in a job and why, worded to be followed by "is not
/// supported".
fn refusal(name: &str, volatility: Volatility) -> String {
    let why = if volatility == Volatility::Volatile {
        "it gives another value at each call, and a job recomputes rows after a restart"
    } else {
        "its value depends on when the query runs, and a job computes each row once, \
         as it arrives: compare with an event-time column instead"
    };
    format!("{name}() in a materialized view, sink or SUBSCRIBE ({why})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ExecError;
    use datafusion::prelude::SessionContext;

    async fn check(sql: &str) -> Result<()> {
        let context = SessionContext::new();
        context
            .sql("CREATE TABLE t (ts TIMESTAMP, n BIGINT)")
            .await
            .unwrap();
        let plan = context.state().create_logical_plan(sql).await.unwrap();
        refuse_changing_functions(&plan)
    }

    #[tokio::test]
    async fn time_and_random_functions_are_refused_by_name() {
        for (sql, name, why) in [
            (
                "SELECT n FROM t WHERE ts > now() - INTERVAL '1 hour'",
                "now()",
                "when the query runs",
            ),
            (
                "SELECT n, current_date AS d FROM t",
                "current_date()",
                "when the query runs",
            ),
            (
                "SELECT n FROM t WHERE n IN (SELECT n FROM t WHERE random() < 0.5)",
                "random()",
                "another value at each call",
            ),
        ] {
            match check(sql).await {
                Err(ExecError::NotSupported(message)) => {
                    assert!(message.starts_with(name), "{sql}: {message}");
                    assert!(message.contains(why), "{sql}: {message}");
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn functions_of_their_arguments_alone_pass() {
        check("SELECT upper(CAST(n AS TEXT)), date_trunc('hour', ts) FROM t WHERE abs(n) > 2")
            .await
            .unwrap();
    }
}
