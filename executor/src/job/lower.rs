//! Lowering a view's query, as DataFusion plans it, into a streaming
//! dataflow: the stream it reads, then the operators its rows go through.
//! A plan node without a streaming operator yet is refused with 0A000
//! naming it, before anything is created: never a view that silently
//! gives other answers than its query.

use std::sync::Arc;

use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, TableScan};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;

use crate::error::{ExecError, Result};
use crate::format::{ScanColumns, StreamSchemas};
use crate::job::aggregate::{AggregateInput, AggregateOperator};
use crate::job::operator::{FilterOperator, Operator, ProjectOperator, WindowOperator};
use crate::window::WindowTable;
use tributary_planner::StreamDefinition;
use tributary_storage::Log;

/// A query as a dataflow over one stream.
#[derive(Debug)]
pub(crate) struct StreamingPlan {
    /// The stream read.
    pub(crate) source: String,
    /// Its definition.
    pub(crate) source_definition: StreamDefinition,
    /// The columns of the stream each batch is decoded into.
    pub(crate) source_columns: ScanColumns,
    /// What the rows go through, in order.
    pub(crate) operators: Vec<Box<dyn Operator>>,
    /// The schema of the rows that come out.
    pub(crate) output: datafusion::arrow::datatypes::SchemaRef,
    /// Whether the rows that come out are keyed changes (after an
    /// aggregation): a group's row is taken back and added again as it
    /// changes, and the view holds the last row of each key.
    pub(crate) keyed: bool,
}

/// Lowers an optimized logical plan.
pub(crate) fn lower(state: &SessionState, log: &Log, plan: &LogicalPlan) -> Result<StreamingPlan> {
    let mut streaming = match plan {
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            match WindowTable::of(provider.as_ref()) {
                Some(windows) => window_source(log, scan, windows)?,
                None => source(log, scan)?,
            }
        }
        LogicalPlan::Filter(filter) => {
            let mut below = lower(state, log, &filter.input)?;
            let predicate =
                state.create_physical_expr(filter.predicate.clone(), filter.input.schema())?;
            below
                .operators
                .push(Box::new(FilterOperator::new(predicate)));
            below
        }
        LogicalPlan::Projection(projection) => {
            let mut below = lower(state, log, &projection.input)?;
            let expressions = projection
                .expr
                .iter()
                .map(|e| state.create_physical_expr(e.clone(), projection.input.schema()))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let schema = Arc::new(projection.schema.as_arrow().clone());
            below
                .operators
                .push(Box::new(ProjectOperator::new(expressions, schema)));
            below
        }
        LogicalPlan::Aggregate(aggregate) => {
            let mut below = lower(state, log, &aggregate.input)?;
            if below.keyed {
                return Err(ExecError::NotSupported(
                    "an aggregation over the results of another aggregation in a \
                     materialized view"
                        .into(),
                ));
            }
            below
                .operators
                .push(Box::new(aggregate_operator(state, aggregate)?));
            below.keyed = true;
            below
        }
        // An alias renames; the rows are the same.
        LogicalPlan::SubqueryAlias(alias) => lower(state, log, &alias.input)?,
        other => return Err(unsupported(other)),
    };
    streaming.output = Arc::new(plan.schema().as_arrow().clone());
    Ok(streaming)
}

/// The operator of a `GROUP BY`: group keys and aggregate functions as
/// DataFusion's physical planner makes them.
fn aggregate_operator(state: &SessionState, aggregate: &Aggregate) -> Result<AggregateOperator> {
    let input_schema = aggregate.input.schema();
    let group_expressions = aggregate
        .group_expr
        .iter()
        .map(|e| match e {
            Expr::GroupingSet(_) => Err(ExecError::NotSupported(
                "GROUPING SETS, CUBE and ROLLUP in a materialized view".into(),
            )),
            e => Ok(state.create_physical_expr(e.clone(), input_schema)?),
        })
        .collect::<Result<Vec<_>>>()?;
    let planning = PhysicalPlanningContext::default();
    let aggregates = aggregate
        .aggr_expr
        .iter()
        .map(|e| {
            let lowered = LoweredAggregateBuilder::new(
                e,
                input_schema,
                input_schema.as_arrow(),
                state.execution_props(),
                &planning,
            )
            .build()?;
            Ok(AggregateInput {
                function: lowered.aggregate,
                filter: lowered.filter,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    AggregateOperator::new(
        group_expressions,
        aggregates,
        Arc::new(aggregate.schema.as_arrow().clone()),
    )
}

/// The scan of `TUMBLE(...)` or `HOP(...)`: the stream's rows, then the
/// operator that puts them into windows.
fn window_source(log: &Log, scan: &TableScan, windows: &WindowTable) -> Result<StreamingPlan> {
    let columns = windows.columns(scan.projection.as_deref());
    let mut streaming = stream_source(
        log,
        windows.stream().name(),
        Some(&columns.stream_projection),
    )?;
    let output = Arc::new(scan.projected_schema.as_arrow().clone());
    streaming.operators.push(Box::new(WindowOperator::new(
        windows.spec().kind,
        columns,
        output,
    )));
    Ok(streaming)
}

/// The scan of a stream: its rows, decoded into the columns the plan
/// reads, then the filters pushed into the scan.
fn source(log: &Log, scan: &TableScan) -> Result<StreamingPlan> {
    if scan.fetch.is_some() {
        return Err(ExecError::NotSupported(
            "LIMIT in a materialized view".into(),
        ));
    }
    let name = scan.table_name.table().to_string();
    log.stream(&name).map_err(|_| {
        ExecError::NotSupported(format!(
            "reading {} in a materialized view (only streams and views can be read)",
            scan.table_name
        ))
    })?;
    stream_source(log, &name, scan.projection.as_deref())
}

/// The rows of the stream `name`, decoded into the columns at
/// `projection` (indices into its table schema), or all of them.
fn stream_source(log: &Log, name: &str, projection: Option<&[usize]>) -> Result<StreamingPlan> {
    let name = name.to_string();
    let record = log.stream(&name)?;
    let definition = StreamDefinition::from_json(&name, record.config.definition.as_ref())?;
    if definition.view.as_ref().is_some_and(|v| v.keyed) {
        return Err(ExecError::NotSupported(format!(
            "reading {name}, a view with GROUP BY, in a materialized view (its rows change; \
             views over such views are not served yet)"
        )));
    }
    let schemas = StreamSchemas::new(&definition)?;
    let columns = ScanColumns::new(&definition, &schemas, projection)?;
    // Filters pushed into the scan are pushed as inexact (the stream
    // prunes by them), so DataFusion keeps them in a Filter above too.
    Ok(StreamingPlan {
        source: name,
        source_definition: definition,
        output: columns.schema.clone(),
        source_columns: columns,
        operators: Vec::new(),
        keyed: false,
    })
}

/// The 0A000 error for a plan node that has no streaming operator yet.
fn unsupported(plan: &LogicalPlan) -> ExecError {
    let what = match plan {
        LogicalPlan::Join(_) => "joins",
        LogicalPlan::Window(_) => "window functions (OVER)",
        LogicalPlan::Sort(_) => "ORDER BY",
        LogicalPlan::Limit(_) => "LIMIT",
        LogicalPlan::Distinct(_) => "DISTINCT",
        LogicalPlan::Union(_) => "UNION",
        LogicalPlan::Values(_) => "VALUES",
        LogicalPlan::EmptyRelation(_) => "a query without FROM",
        LogicalPlan::Unnest(_) => "unnest",
        LogicalPlan::RecursiveQuery(_) => "recursive queries",
        _ => "this query shape",
    };
    ExecError::NotSupported(format!(
        "{what} in a materialized view (for now: filters, projections and GROUP BY over one stream; \
         plan node {})",
        plan.display()
    ))
}
