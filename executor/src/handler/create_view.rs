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
use crate::job::{OP_COLUMN, lower::lower_view, plan_query};
use crate::session::Session;

pub(crate) async fn execute(session: &Session, create: CreateMaterializedView) -> Result<Output> {
    let engine = session.engine();
    let tag = "CREATE MATERIALIZED VIEW";
    if let Some(done) = exists_already(engine, &create.name, create.if_not_exists, tag)? {
        return Ok(done);
    }
    let state = session.context().state();
    let plan = plan_query(&state, &create.query).await?;
    let dataflow = lower_view(&state, engine.log(), &plan, create.emit_on_window_close)?;
    let columns = query_columns(&plan)?;
    let definition = StreamDefinition {
        columns,
        watermark: None,
        format: Format::Json,
        key: None,
        connector: None,
        view: Some(ViewDefinition {
            query: create.query,
            emit_on_window_close: create.emit_on_window_close,
            inputs: vec![dataflow.source],
            keyed: dataflow.keyed,
            sink: None,
        }),
    };
    let config = StreamConfig {
        partitions: 1,
        definition: Some(definition.to_json()),
        ..Default::default()
    };
    create_in_log(engine, &create.name, config, create.if_not_exists, tag).await
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
