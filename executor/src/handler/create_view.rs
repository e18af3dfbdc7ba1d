//! `CREATE MATERIALIZED VIEW name AS query`: the query is planned and
//! lowered into a streaming job first (so a shape the job cannot run is
//! refused before anything exists), then the view's stream is created
//! with the query's columns and its job started: it reads the input's
//! history, then goes on as rows arrive.

use datafusion::logical_expr::LogicalPlan;
use tributary_planner::{
    ColumnDefinition, CreateMaterializedView, Format, PlanError, StreamDefinition, ViewDefinition,
    stream_definition::METADATA_COLUMNS, types::sql_type_of,
};
use tributary_storage::StreamConfig;

use crate::engine::Output;
use crate::error::{ExecError, Result};
use crate::handler::create_stream::{create_in_log, exists_already};
use crate::job::lower::{StreamingPlan, lower_view};
use crate::job::{OP_COLUMN, plan_query};
use crate::session::Session;

pub(crate) async fn execute(session: &Session, create: CreateMaterializedView) -> Result<Output> {
    let engine = session.engine();
    let tag = "CREATE MATERIALIZED VIEW";
    if let Some(done) = exists_already(engine, &create.name, create.if_not_exists, tag)? {
        return Ok(done);
    }
    let (dataflow, columns) = plan_job(
        session,
        &create.name,
        &create.query,
        create.emit_on_window_close,
        create.late_data_to.as_deref(),
    )
    .await?;
    let notice = backfill_notice(engine, &dataflow.source);
    let config = job_stream(
        columns,
        Some(ViewDefinition {
            query: create.query,
            emit_on_window_close: create.emit_on_window_close,
            inputs: vec![dataflow.source],
            keyed: dataflow.keyed,
            sink: None,
            late_data_to: create.late_data_to,
        }),
    );
    let output = create_in_log(engine, &create.name, config, create.if_not_exists, tag).await?;
    Ok(match notice {
        Some(notice) => output.with_notice(notice),
        None => output,
    })
}

/// What a new job over `input` tells its creator when the input has
/// history to process first: how much, and where to follow it.
pub(crate) fn backfill_notice(engine: &crate::Engine, input: &str) -> Option<String> {
    let log = engine.log();
    let partitions = log.stream(input).ok()?.config.partitions;
    let records: i64 = (0..partitions)
        .filter_map(|p| log.partition(input, p).ok())
        .map(|p| p.high_watermark() - p.log_start_offset())
        .sum();
    (records > 0).then(|| {
        format!(
            "backfilling: the {records} records {input} already holds come first, \
             then new ones as they arrive; SHOW JOBS shows how far it is"
        )
    })
}

/// Plans and lowers the query of a view or sink that writes the stream
/// `writes` (refusing what a job cannot run), and makes its `LATE DATA
/// TO` stream ready; returns the dataflow and the columns of the job's
/// stream.
pub(crate) async fn plan_job(
    session: &Session,
    writes: &str,
    query: &str,
    emit_on_window_close: bool,
    late_data_to: Option<&str>,
) -> Result<(StreamingPlan, Vec<ColumnDefinition>)> {
    let state = session.context().state();
    let engine = session.engine();
    let plan = plan_query(engine.log(), &state, query).await?;
    let dataflow = lower_view(
        &state,
        engine.log(),
        &plan,
        emit_on_window_close,
        late_data_to.is_some(),
    )?;
    let columns = query_columns(&plan)?;
    if let (Some(late), Some(schema)) = (late_data_to, &dataflow.late_schema) {
        if late == writes {
            return Err(ExecError::NotSupported(format!(
                "LATE DATA TO {late}, the stream the job itself writes"
            )));
        }
        if streams_reached_from(engine, late).contains(&dataflow.source) {
            return Err(ExecError::NotSupported(format!(
                "LATE DATA TO {late}, whose rows reach the query's input {}: the late rows \
                 would come back to it, late again, without end",
                dataflow.source
            )));
        }
        prepare_late_stream(engine, late, schema).await?;
    }
    Ok((dataflow, columns))
}

/// The settings of a stream a job writes, or that takes late rows: one
/// partition of JSON values with `columns`.
pub(crate) fn job_stream(
    columns: Vec<ColumnDefinition>,
    view: Option<ViewDefinition>,
) -> StreamConfig {
    let definition = StreamDefinition {
        columns,
        watermark: None,
        format: Format::Json,
        key: None,
        connector: None,
        view,
    };
    StreamConfig {
        partitions: 1,
        definition: Some(definition.to_json()),
        ..Default::default()
    }
}

/// The columns of a job's stream: the query's, each with its SQL type.
/// Names that the stream's own columns (metadata, `op`) take are refused.
pub(crate) fn query_columns(plan: &LogicalPlan) -> Result<Vec<ColumnDefinition>> {
    let mut columns: Vec<ColumnDefinition> = Vec::new();
    for field in plan.schema().fields() {
        let name = field.name();
        if METADATA_COLUMNS.contains(&name.as_str()) || name == OP_COLUMN {
            return Err(ExecError::NotSupported(format!(
                "a view column named {name} (the view's stream has its own; select the \
                 columns by name, or rename it with AS)"
            )));
        }
        if columns.iter().any(|c| &c.name == name) {
            return Err(PlanError::DuplicateColumn(name.clone()).into());
        }
        let sql_type = sql_type_of(field.data_type()).map_err(|_| {
            ExecError::NotSupported(format!(
                "column {name} of type {} in a materialized view",
                field.data_type()
            ))
        })?;
        columns.push(ColumnDefinition {
            name: name.clone(),
            sql_type,
            nullable: true,
        });
    }
    Ok(columns)
}

/// Whether two streams' columns have the same names and types, in order.
pub(crate) fn same_columns(a: &[ColumnDefinition], b: &[ColumnDefinition]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.name == b.name && a.sql_type.eq_ignore_ascii_case(&b.sql_type))
}

/// The columns of a `LATE DATA TO` stream for late rows of `schema`: the
/// rows' own, then [`LATE_COLUMNS`].
fn late_columns(schema: &datafusion::arrow::datatypes::SchemaRef) -> Result<Vec<ColumnDefinition>> {
    let mut columns = Vec::new();
    for field in schema.fields() {
        let sql_type = sql_type_of(field.data_type()).map_err(|_| {
            ExecError::NotSupported(format!(
                "late rows with a column {} of type {}",
                field.name(),
                field.data_type()
            ))
        })?;
        columns.push(ColumnDefinition {
            name: field.name().clone(),
            sql_type,
            nullable: true,
        });
    }
    for (column, sql_type) in LATE_COLUMNS {
        if columns.iter().any(|c| c.name == column) {
            return Err(PlanError::DuplicateColumn(column.into()).into());
        }
        columns.push(ColumnDefinition {
            name: column.into(),
            sql_type: sql_type.into(),
            nullable: true,
        });
    }
    Ok(columns)
}

/// The streams that rows appended to `stream` reach: `stream` itself, and
/// every stream a job reading one of them writes (a view's own, a sink's,
/// a `LATE DATA TO` stream), and so on. A new job that writes into one
/// that reaches its own input would feed itself without end.
pub(crate) fn streams_reached_from(engine: &crate::engine::Engine, stream: &str) -> Vec<String> {
    let mut edges: Vec<(String, String)> = Vec::new();
    for record in engine.log().streams() {
        let Ok(definition) =
            StreamDefinition::from_json(&record.name, record.config.definition.as_ref())
        else {
            continue;
        };
        let Some(view) = definition.view else {
            continue;
        };
        for input in &view.inputs {
            edges.push((input.clone(), record.name.clone()));
            if let Some(late) = &view.late_data_to {
                edges.push((input.clone(), late.clone()));
            }
        }
    }
    let mut reached = vec![stream.to_string()];
    let mut at = 0;
    while let Some(from) = reached.get(at).cloned() {
        at += 1;
        for (_, to) in edges.iter().filter(|(input, _)| *input == from) {
            if !reached.contains(to) {
                reached.push(to.clone());
            }
        }
    }
    reached
}

/// The columns a `LATE DATA TO` stream gets besides the late rows' own.
pub(crate) const LATE_COLUMNS: [(&str, &str); 2] = [("reason", "TEXT"), ("watermark", "TIMESTAMP")];

/// Makes `name` ready to take a job's late rows (of `schema`): an existing
/// JSON stream that only clients write, with the late rows' columns, or a
/// new one with them.
pub(crate) async fn prepare_late_stream(
    engine: &crate::engine::Engine,
    name: &str,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<()> {
    let columns = late_columns(schema)?;
    if let Ok(existing) = engine.log().stream(name) {
        let definition = StreamDefinition::from_json(name, existing.config.definition.as_ref())?;
        if definition.view.is_some()
            || definition.connector.is_some()
            || definition.format != Format::Json
        {
            return Err(ExecError::NotSupported(format!(
                "LATE DATA TO {name}, which is not a JSON stream that clients write"
            )));
        }
        if !same_columns(&definition.columns, &columns) {
            let wanted: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.sql_type))
                .collect();
            return Err(ExecError::NotSupported(format!(
                "LATE DATA TO {name}, which has other columns than the late rows ({}); \
                 name a new stream and it is created with them",
                wanted.join(", ")
            )));
        }
        return Ok(());
    }
    let config = job_stream(columns, None);
    match engine.log().create_stream(name, config).await {
        Ok(_) | Err(tributary_storage::Error::StreamExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
