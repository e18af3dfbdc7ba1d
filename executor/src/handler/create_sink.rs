//! `CREATE SINK name INTO stream AS query [EMIT ON WINDOW CLOSE]`: a job
//! that appends its query's rows to a stream, which SQL reads and Kafka
//! clients consume like any topic. The stream is created with the query's
//! columns if absent; an existing one must be an empty JSON stream with
//! those columns. Only the sink writes it, exactly once across restarts
//! as a view's job does. A query whose rows are updated (a GROUP BY
//! without EMIT ON WINDOW CLOSE) has no rows to append and is refused.

use tributary_planner::{CreateSink, Format, StreamDefinition, ViewDefinition};

use crate::engine::Output;
use crate::error::{ExecError, Result};
use crate::handler::create_stream::create_in_log;
use crate::handler::create_view::{
    backfill_notice, job_stream, plan_job, same_columns, streams_reached_from,
};
use crate::handler::drop_object::sink_target;
use crate::session::Session;

pub(crate) async fn execute(session: &Session, create: CreateSink) -> Result<Output> {
    let engine = session.engine();
    let tag = "CREATE SINK";
    if sink_target(engine, &create.name).is_some() {
        return if create.if_not_exists {
            Ok(Output::command(tag))
        } else {
            Err(ExecError::SinkExists(create.name))
        };
    }
    let (dataflow, columns) = plan_job(
        session,
        &create.target,
        &create.query,
        create.emit_on_window_close,
        create.late_data_to.as_deref(),
    )
    .await?;
    if dataflow.keyed {
        return Err(ExecError::NotSupported(
            "a sink of a query whose rows are updated (a GROUP BY without EMIT ON WINDOW \
             CLOSE: a sink appends rows and cannot take them back; sink windows' final rows \
             with EMIT ON WINDOW CLOSE, or read the updates from a materialized view)"
                .into(),
        ));
    }
    if streams_reached_from(engine, &create.target).contains(&dataflow.source) {
        return Err(ExecError::NotSupported(format!(
            "a sink into {}, whose rows reach the query's input {}: they would come back \
             to it without end",
            create.target, dataflow.source
        )));
    }
    let notice = backfill_notice(engine, &dataflow.source);
    let with_notice = |output: Output| match notice {
        Some(notice) => output.with_notice(notice),
        None => output,
    };
    let view = ViewDefinition {
        query: create.query,
        emit_on_window_close: create.emit_on_window_close,
        inputs: vec![dataflow.source],
        keyed: false,
        sink: Some(create.name.clone()),
        late_data_to: create.late_data_to.clone(),
    };
    let Ok(existing) = engine.log().stream(&create.target) else {
        let config = job_stream(columns, Some(view));
        return create_in_log(engine, &create.target, config, false, tag)
            .await
            .map(with_notice);
    };
    let mut definition =
        StreamDefinition::from_json(&create.target, existing.config.definition.as_ref())?;
    let refuse = |why: &str| {
        Err(ExecError::NotSupported(format!(
            "a sink into {}, which {why} (a sink creates its stream, or takes an empty JSON \
             stream with the query's columns)",
            create.target
        )))
    };
    if definition.view.is_some() || definition.connector.is_some() {
        return refuse("something else writes");
    }
    if definition.format != Format::Json {
        return refuse("is not a JSON stream");
    }
    if !same_columns(&definition.columns, &columns) {
        return refuse("has other columns than the query");
    }
    for p in 0..existing.config.partitions {
        if engine.log().partition(&create.target, p)?.high_watermark() > 0 {
            return refuse("holds records already");
        }
    }
    definition.view = Some(view);
    let mut config = existing.config;
    config.definition = Some(definition.to_json());
    engine.log().alter_stream(&create.target, config).await?;
    engine.start_writer(&create.target);
    Ok(with_notice(Output::command(tag)))
}
