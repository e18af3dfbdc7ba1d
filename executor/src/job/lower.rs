//! Lowering a view's query, as DataFusion plans it, into a streaming
//! dataflow: the stream it reads, then the operators its rows go through.
//! A plan node without a streaming operator yet is refused with 0A000
//! naming it, before anything is created: never a view that silently
//! gives other answers than its query.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::execution::SessionState;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, TableScan};
use datafusion::physical_expr::aggregate::LoweredAggregateBuilder;

use crate::error::{ExecError, Result};
use crate::format::{ScanColumns, StreamSchemas};
use crate::job::aggregate::{AggregateInput, AggregateOperator, WindowClose};
use crate::job::checkpoint;
use crate::job::operator::{Changes, FilterOperator, Operator, ProjectOperator, WindowOperator};
use crate::job::watermark::{DEFAULT_IDLE_TIMEOUT, WatermarkProbe};
use crate::window::{WINDOW_END, WINDOW_START, WindowKind, WindowTable};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use tributary_planner::StreamDefinition;
use tributary_planner::stream_definition::METADATA_COLUMNS;
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
    /// aggregation, or read from a view with GROUP BY): a group's row is
    /// taken back and added again as it changes, and the view holds the
    /// last row of each key.
    pub(crate) keyed: bool,
    /// Whether the source is a view with GROUP BY: its records are
    /// changes (`op`), each keyed by its group, and go through the
    /// operators as such.
    pub(crate) source_keyed: bool,
    /// The windows the source's rows are put into, if any.
    pub(crate) window: Option<WindowKind>,
    /// With `EMIT ON WINDOW CLOSE`: the source's watermark.
    pub(crate) watermark: Option<WatermarkProbe>,
    /// Whether an aggregation emits windows as the watermark closes them.
    pub(crate) closes_windows: bool,
    /// With `LATE DATA TO`: the columns of the late rows the window
    /// operator keeps (the stream's value columns and the windows').
    pub(crate) late_schema: Option<datafusion::arrow::datatypes::SchemaRef>,
}

impl StreamingPlan {
    /// Tells the operators that event time has reached `watermark`; what
    /// that completes goes through the operators after the one that made
    /// it.
    pub(crate) fn advance(&mut self, watermark: i64) -> Result<Option<Changes>> {
        let mut out: Option<Changes> = None;
        for operator in &mut self.operators {
            if let Some(changes) = out.take() {
                out = Some(operator.process(changes)?);
            }
            if let Some(completed) = operator.advance(watermark)? {
                if out.is_some() {
                    return Err(ExecError::Internal(
                        "two operators closed windows at once".into(),
                    ));
                }
                out = Some(completed);
            }
        }
        Ok(out)
    }

    /// How many input rows go through the operators at once: fewer than
    /// [`super::CHUNK_ROWS`] when each is copied into many windows, so a
    /// chunk's windowed rows stay about a batch.
    pub(crate) fn chunk_rows(&self) -> usize {
        self.window
            .map_or(super::CHUNK_ROWS, |w| w.input_rows_per_batch())
            .min(super::CHUNK_ROWS)
    }

    /// Rows the operators dropped as late.
    pub(crate) fn late_rows(&self) -> u64 {
        self.operators.iter().map(|o| o.late_rows()).sum()
    }

    /// The late rows kept since the last call (with `LATE DATA TO`).
    pub(crate) fn take_late(&mut self) -> Vec<RecordBatch> {
        self.operators
            .iter_mut()
            .flat_map(|o| o.take_late())
            .collect()
    }

    /// Whether the dataflow keeps state (and is rebuilt after a restart
    /// from a checkpoint and the input after it).
    pub(crate) fn stateful(&self) -> bool {
        self.keyed || self.closes_windows
    }

    /// The state of its stateful operators, for a checkpoint: the one
    /// operator's state as it gives it or, with more than one (an
    /// aggregation over another in one query), a row per operator, in
    /// order, each state an Arrow IPC file in [`OPERATOR_STATES`].
    pub(crate) fn snapshot(&mut self) -> Result<Option<RecordBatch>> {
        let mut states = Vec::new();
        for operator in self.operators.iter_mut().filter(|o| o.keeps_state()) {
            states.push(operator.snapshot()?);
        }
        if states.len() <= 1 {
            return Ok(states.pop().flatten());
        }
        let encoded = states
            .iter()
            .map(|state| state.as_ref().map(checkpoint::encode_state).transpose())
            .collect::<Result<Vec<_>>>()?;
        let column = BinaryArray::from_iter(encoded.iter().map(|state| state.as_deref()));
        let schema = Schema::new(vec![Field::new(OPERATOR_STATES, DataType::Binary, true)]);
        Ok(Some(RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(column)],
        )?))
    }

    /// Gives a checkpoint's state ([`Self::snapshot`]) back to the
    /// operators.
    pub(crate) fn restore(&mut self, state: &RecordBatch) -> Result<()> {
        let mut stateful: Vec<_> = self
            .operators
            .iter_mut()
            .filter(|o| o.keeps_state())
            .collect();
        let Some(column) = state.column_by_name(OPERATOR_STATES) else {
            for operator in stateful {
                operator.restore(state)?;
            }
            return Ok(());
        };
        let states = column.as_binary_opt::<i32>().ok_or_else(|| {
            ExecError::Internal(format!("checkpoint state: {OPERATOR_STATES} is not binary"))
        })?;
        if states.len() != stateful.len() {
            return Err(ExecError::Internal(format!(
                "checkpoint state: {} operator states for {} operators",
                states.len(),
                stateful.len()
            )));
        }
        for (operator, encoded) in stateful.iter_mut().zip(states.iter()) {
            let decoded = encoded
                .map(|bytes| checkpoint::decode_state(Bytes::copy_from_slice(bytes)))
                .transpose()?
                .flatten();
            if let Some(decoded) = decoded {
                operator.restore(&decoded)?;
            }
        }
        Ok(())
    }
}

/// The column of a checkpoint's state that holds one state per stateful
/// operator, when a dataflow has more than one.
const OPERATOR_STATES: &str = "operator_states";

/// Lowers a view's optimized logical plan; with `emit_on_window_close`,
/// its windows are emitted once, final, as the watermark closes them, and
/// with `keep_late_rows` the rows too late for them are kept for the job
/// to write (`LATE DATA TO`).
pub(crate) fn lower_view(
    state: &SessionState,
    log: &Log,
    plan: &LogicalPlan,
    emit_on_window_close: bool,
    keep_late_rows: bool,
) -> Result<StreamingPlan> {
    if keep_late_rows && !emit_on_window_close {
        return Err(ExecError::NotSupported(
            "LATE DATA TO without EMIT ON WINDOW CLOSE (rows are late only for windows \
             that have closed)"
                .into(),
        ));
    }
    let lowering = Lowering {
        state,
        log,
        emit_on_window_close,
        keep_late_rows,
    };
    let streaming = lowering.lower(plan)?;
    if emit_on_window_close && !streaming.closes_windows {
        return Err(ExecError::NotSupported(
            "EMIT ON WINDOW CLOSE without an aggregation that groups by window_start or \
             window_end of TUMBLE or HOP"
                .into(),
        ));
    }
    Ok(streaming)
}

/// What lowering needs at every node.
struct Lowering<'a> {
    state: &'a SessionState,
    log: &'a Log,
    emit_on_window_close: bool,
    keep_late_rows: bool,
}

impl Lowering<'_> {
    /// Lowers an optimized logical plan.
    fn lower(&self, plan: &LogicalPlan) -> Result<StreamingPlan> {
        let (state, log) = (self.state, self.log);
        let mut streaming = match plan {
            LogicalPlan::TableScan(scan) => {
                let provider = source_as_provider(&scan.source)?;
                match WindowTable::of(provider.as_ref()) {
                    Some(windows) => self.window_source(scan, windows)?,
                    None => source(log, scan)?,
                }
            }
            LogicalPlan::Filter(filter) => {
                let mut below = self.lower(&filter.input)?;
                let predicate =
                    state.create_physical_expr(filter.predicate.clone(), filter.input.schema())?;
                below
                    .operators
                    .push(Box::new(FilterOperator::new(predicate)));
                below
            }
            LogicalPlan::Projection(projection) => {
                let mut below = self.lower(&projection.input)?;
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
                let mut below = self.lower(&aggregate.input)?;
                let close = if self.emit_on_window_close {
                    Some(window_close(aggregate, below.window)?)
                } else {
                    None
                };
                // Over changes (a keyed view's, or another aggregation's),
                // the aggregation takes rows back too.
                let retracting = below.keyed;
                below.operators.push(Box::new(aggregate_operator(
                    state, aggregate, close, retracting,
                )?));
                below.keyed = close.is_none();
                below.closes_windows = close.is_some();
                below
            }
            // An alias renames; the rows are the same.
            LogicalPlan::SubqueryAlias(alias) => self.lower(&alias.input)?,
            other => return Err(unsupported(other)),
        };
        streaming.output = Arc::new(plan.schema().as_arrow().clone());
        Ok(streaming)
    }

    /// The scan of `TUMBLE(...)` or `HOP(...)`: the stream's rows, then the
    /// operator that puts them into windows. With `EMIT ON WINDOW CLOSE` the
    /// window's time column must be the stream's watermark column, whose
    /// watermark then closes the windows.
    fn window_source(&self, scan: &TableScan, windows: &WindowTable) -> Result<StreamingPlan> {
        // With LATE DATA TO the window operator reads every column, so that
        // a late row is kept whole; a projection then narrows the rows to
        // the scan's columns.
        let table_width = windows.schema().fields().len();
        let all: Vec<usize> = (0..table_width).collect();
        let columns = if self.keep_late_rows {
            windows.columns(Some(&all))
        } else {
            windows.columns(scan.projection.as_deref())
        };
        let spec = windows.spec();
        let mut streaming = stream_source(
            self.log,
            windows.stream().name(),
            Some(&columns.stream_projection),
        )?;
        if streaming.source_keyed {
            return Err(ExecError::NotSupported(format!(
                "windows over {}, a view with GROUP BY (its rows change; window a stream)",
                windows.stream().name()
            )));
        }
        if self.emit_on_window_close {
            let watermark = streaming
                .source_definition
                .watermark
                .clone()
                .ok_or_else(|| {
                    ExecError::NotSupported(format!(
                        "EMIT ON WINDOW CLOSE over {}, which has no WATERMARK",
                        windows.stream().name()
                    ))
                })?;
            if watermark.column != spec.time_column {
                return Err(ExecError::NotSupported(format!(
                    "EMIT ON WINDOW CLOSE with windows over {}: the windows must be over the \
                 stream's WATERMARK column {}",
                    spec.time_column, watermark.column
                )));
            }
            let time_field = streaming
                .source_columns
                .schema
                .field(columns.time_position)
                .clone();
            let schema = Arc::new(Schema::new(vec![time_field]));
            let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
            let expression = self
                .state
                .create_logical_expr(&watermark.expression, &df_schema)?;
            streaming.watermark = Some(WatermarkProbe {
                expression: self.state.create_physical_expr(expression, &df_schema)?,
                schema,
                time_position: columns.time_position,
                idle_timeout: watermark
                    .idle_timeout_ms
                    .map_or(DEFAULT_IDLE_TIMEOUT, std::time::Duration::from_millis),
            });
        }
        let output = Arc::new(scan.projected_schema.as_arrow().clone());
        streaming.window = Some(spec.kind);
        if !self.keep_late_rows {
            streaming
                .operators
                .push(Box::new(WindowOperator::new(spec.kind, columns, output)));
            return Ok(streaming);
        }
        let whole = windows.schema();
        let values: Vec<usize> = (METADATA_COLUMNS.len()..table_width).collect();
        let operator =
            WindowOperator::new(spec.kind, columns, whole.clone()).keep_late_rows(values.clone());
        streaming.late_schema = Some(Arc::new(whole.project(&values)?));
        streaming.operators.push(Box::new(operator));
        let narrowing = scan
            .projection
            .clone()
            .unwrap_or_else(|| all.clone())
            .into_iter()
            .map(|i| Arc::new(Column::new(whole.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
            .collect();
        streaming
            .operators
            .push(Box::new(ProjectOperator::new(narrowing, output)));
        Ok(streaming)
    }
}

/// How an `EMIT ON WINDOW CLOSE` aggregation knows its groups' window
/// ends: a group column that is `window_end` or `window_start`.
fn window_close(aggregate: &Aggregate, window: Option<WindowKind>) -> Result<WindowClose> {
    let kind = window.ok_or_else(|| {
        ExecError::NotSupported(
            "EMIT ON WINDOW CLOSE over rows without windows (use TUMBLE or HOP)".into(),
        )
    })?;
    for (key_position, expression) in aggregate.group_expr.iter().enumerate() {
        if let Expr::Column(column) = expression {
            match column.name.as_str() {
                WINDOW_END => {
                    return Ok(WindowClose {
                        key_position,
                        end_offset: 0,
                    });
                }
                WINDOW_START => {
                    return Ok(WindowClose {
                        key_position,
                        end_offset: kind.size(),
                    });
                }
                _ => {}
            }
        }
    }
    Err(ExecError::NotSupported(
        "EMIT ON WINDOW CLOSE without GROUP BY window_start or window_end".into(),
    ))
}

/// The operator of a `GROUP BY`: group keys and aggregate functions as
/// DataFusion's physical planner makes them.
fn aggregate_operator(
    state: &SessionState,
    aggregate: &Aggregate,
    close: Option<WindowClose>,
    retracting: bool,
) -> Result<AggregateOperator> {
    let input_schema = aggregate.input.schema();
    let group_expressions = aggregate
        .group_expr
        .iter()
        .map(|e| match e {
            Expr::GroupingSet(_) => Err(ExecError::NotSupported(
                "GROUPING SETS, CUBE and ROLLUP in a materialized view, sink or SUBSCRIBE".into(),
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
        close,
        retracting,
    )
}

/// The scan of a stream: its rows, decoded into the columns the plan
/// reads, then the filters pushed into the scan.
fn source(log: &Log, scan: &TableScan) -> Result<StreamingPlan> {
    if scan.fetch.is_some() {
        return Err(ExecError::NotSupported(
            "LIMIT in a materialized view, sink or SUBSCRIBE".into(),
        ));
    }
    let name = scan.table_name.table().to_string();
    log.stream(&name).map_err(|_| {
        ExecError::NotSupported(format!(
            "reading {} in a materialized view, sink or SUBSCRIBE (only streams and views can \
             be read)",
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
    let source_keyed = definition.view.as_ref().is_some_and(|v| v.keyed);
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
        keyed: source_keyed,
        source_keyed,
        window: None,
        watermark: None,
        closes_windows: false,
        late_schema: None,
    })
}

/// Refuses `plan` (not yet optimized, as the optimizer turns subqueries
/// into joins and the refusal would name those) if an expression in it is
/// one a job cannot run: a subquery (`(SELECT ...)`, `IN (SELECT ...)`,
/// `EXISTS`; a subquery in FROM is a query's input, and runs), or an
/// aggregate with an ORDER BY of its own (`string_agg(x, ',' ORDER BY
/// x)`), which needs its rows in that order where a job takes them as
/// they arrive.
pub(crate) fn refuse_unsupported_expressions(plan: &LogicalPlan) -> Result<()> {
    let mut refusal = None;
    plan.apply(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                refusal = match e {
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_) => Some(
                        "subqueries in expressions ((SELECT ...), IN (SELECT ...), EXISTS)"
                            .to_string(),
                    ),
                    Expr::AggregateFunction(call) if !call.params.order_by.is_empty() => {
                        Some(format!("{}(... ORDER BY ...)", call.func.name()))
                    }
                    _ => None,
                };
                Ok(if refusal.is_some() {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })
        })
    })?;
    match refusal {
        None => Ok(()),
        Some(what) => Err(ExecError::NotSupported(format!(
            "{what} in a materialized view, sink or SUBSCRIBE"
        ))),
    }
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
        LogicalPlan::EmptyRelation(_) => {
            "a query that reads no stream (no FROM, or a WHERE that is always false)"
        }
        LogicalPlan::Unnest(_) => "unnest",
        LogicalPlan::RecursiveQuery(_) => "recursive queries",
        _ => "this query shape",
    };
    ExecError::NotSupported(format!(
        "{what} in a materialized view, sink or SUBSCRIBE (for now: filters, projections and \
         GROUP BY over one stream; plan node {})",
        plan.display()
    ))
}
