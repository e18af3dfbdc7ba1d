//! Keyed incremental aggregation (`GROUP BY` with aggregate functions):
//! each group keeps one DataFusion accumulator per aggregate, updated by
//! every chunk of input rows. What a chunk changed comes out as changes
//! keyed by the group: the group's old row taken back, its new row added.
//! Over a stream's rows, which are only ever added, the accumulators are
//! DataFusion's own. Over rows that change (a view with GROUP BY, or
//! another aggregation), each group takes rows back too, with accumulators
//! that can ([`retracting_accumulator`]), and a group whose rows are all
//! taken back is taken back itself.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::new_null_array;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Int64Array, RecordBatch,
    RecordBatchOptions, UInt32Array,
};
use datafusion::arrow::compute::{cast, concat, take};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float32Type, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;

use crate::error::{ExecError, Result};
use crate::job::multiset::{MultisetAccumulator, Statistic};
use crate::job::operator::{Changes, Operator};
use crate::job::window_groups::WindowGroups;

/// The aggregate functions whose accumulators take rows back in any order,
/// besides `min`, `max` and `count(DISTINCT)` ([`MultisetAccumulator`]).
const RETRACTING_FUNCTIONS: [&str; 7] = [
    "count",
    "sum",
    "avg",
    "var",
    "var_pop",
    "stddev",
    "stddev_pop",
];

/// An accumulator of `function` that can take rows back in any order, as
/// an aggregation over changing rows needs; 0A000 naming the function if
/// there is none.
pub(crate) fn retracting_accumulator(
    function: &AggregateFunctionExpr,
) -> Result<Box<dyn Accumulator>> {
    let name = function.fun().name();
    let refused = || {
        ExecError::NotSupported(format!(
            "{}({}) over rows that change (a view with GROUP BY, or another aggregation's \
             result): only count, sum, avg, min, max, var and stddev take rows back",
            name,
            if function.is_distinct() {
                "DISTINCT"
            } else {
                "..."
            }
        ))
    };
    let statistic = match name {
        "min" => Some(Statistic::Min),
        "max" => Some(Statistic::Max),
        "count" if function.is_distinct() => Some(Statistic::CountDistinct),
        _ => None,
    };
    if let Some(statistic) = statistic {
        return Ok(Box::new(MultisetAccumulator::try_new(
            statistic,
            &argument_type(function, statistic)?,
        )?));
    }
    if !RETRACTING_FUNCTIONS.contains(&name) {
        return Err(refused());
    }
    let accumulator = function
        .create_sliding_accumulator()
        .map_err(|_| refused())?;
    if !accumulator.supports_retract_batch() {
        return Err(refused());
    }
    Ok(accumulator)
}

/// The type of the values `function` aggregates for `statistic`: its
/// result's for min and max, its state's list items for count(DISTINCT).
fn argument_type(function: &AggregateFunctionExpr, statistic: Statistic) -> Result<DataType> {
    if statistic != Statistic::CountDistinct {
        return Ok(function.field().data_type().clone());
    }
    match function.state_fields()?.first().map(|f| f.data_type()) {
        Some(DataType::List(item)) if function.expressions().len() == 1 => {
            Ok(item.data_type().clone())
        }
        _ => Err(ExecError::NotSupported(format!(
            "{}(DISTINCT ...) of more than one column over rows that change",
            function.fun().name()
        ))),
    }
}

/// One aggregate function of the query, as DataFusion plans it.
#[derive(Debug)]
pub(crate) struct AggregateInput {
    /// The function, which makes the accumulators.
    pub(crate) function: Arc<AggregateFunctionExpr>,
    /// Its `FILTER (WHERE ...)`, if any.
    pub(crate) filter: Option<Arc<dyn PhysicalExpr>>,
}

/// `EMIT ON WINDOW CLOSE`: which group column says when a group's window
/// ends. A group is emitted once, final, when the watermark reaches its
/// window's end; a row for a window already closed is late and dropped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowClose {
    /// The group column holding `window_start` or `window_end`.
    pub(crate) key_position: usize,
    /// Added to that column (in microseconds) to get the window's end: 0
    /// for `window_end`, the window size for `window_start`.
    pub(crate) end_offset: i64,
}

/// The state of one group.
#[derive(Debug)]
struct Group {
    /// One per aggregate, in the query's order.
    accumulators: Vec<Box<dyn Accumulator>>,
    /// The aggregate values of the row last added for this group.
    emitted: Option<Vec<ScalarValue>>,
    /// Input rows added less rows taken back: the group is gone at 0.
    rows: i64,
}

/// `GROUP BY` keys and aggregates over changes.
#[derive(Debug)]
pub(crate) struct AggregateOperator {
    group_expressions: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<AggregateInput>,
    /// Group columns then aggregate columns.
    output: SchemaRef,
    /// The group columns alone: the key of each output row.
    key_schema: SchemaRef,
    /// Turns group values into comparable bytes, the groups' map keys.
    converter: RowConverter,
    groups: HashMap<Box<[u8]>, Group>,
    /// With `EMIT ON WINDOW CLOSE`: how windows close, the keys of open
    /// groups by their window's end, and the watermark so far.
    close: Option<WindowClose>,
    closing: BTreeMap<i64, Vec<Box<[u8]>>>,
    watermark: Option<i64>,
    /// Rows dropped because their window had closed.
    late_rows: u64,
    /// The input takes rows back: accumulators that can follow
    /// ([`retracting_accumulator`]), whose states checkpoints hold as the
    /// accumulators give them, and groups that go when their rows do.
    retracting: bool,
    /// With `EMIT ON WINDOW CLOSE` and aggregates that all have groups
    /// accumulators: the open windows, vectorized (then `groups` and
    /// `closing` stay empty).
    windows: Option<WindowGroups>,
}

impl AggregateOperator {
    /// An aggregation with no groups yet. `output` is the aggregate's
    /// schema: one column per group expression, then one per aggregate.
    /// With `retracting`, the input's rows can be taken back: every
    /// aggregate must have a [`retracting_accumulator`] (0A000 otherwise),
    /// and windows cannot close.
    pub(crate) fn new(
        group_expressions: Vec<Arc<dyn PhysicalExpr>>,
        aggregates: Vec<AggregateInput>,
        output: SchemaRef,
        close: Option<WindowClose>,
        retracting: bool,
    ) -> Result<Self> {
        if retracting {
            if close.is_some() {
                return Err(ExecError::NotSupported(
                    "EMIT ON WINDOW CLOSE over rows that change (a view with GROUP BY, or \
                     another aggregation's result)"
                        .into(),
                ));
            }
            for aggregate in &aggregates {
                retracting_accumulator(&aggregate.function)?;
            }
        }
        let key_indices: Vec<usize> = (0..group_expressions.len()).collect();
        let key_schema = Arc::new(output.project(&key_indices)?);
        let converter = RowConverter::new(
            key_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        Ok(Self {
            group_expressions,
            output,
            key_schema: key_schema.clone(),
            converter,
            groups: HashMap::new(),
            close,
            closing: BTreeMap::new(),
            watermark: None,
            late_rows: 0,
            retracting,
            windows: (close.is_some() && WindowGroups::supported(&aggregates))
                .then(|| WindowGroups::new(key_schema.clone())),
            aggregates,
        })
    }

    /// The rows of every window the watermark has closed (vectorized
    /// windows), final.
    fn emit_closed_windows(&mut self, watermark: i64) -> Result<Option<Changes>> {
        let Some(windows) = &mut self.windows else {
            return Ok(None);
        };
        let (window_keys, window_values): (Vec<_>, Vec<_>) =
            windows.close(watermark)?.into_iter().unzip();
        let rows: usize = window_keys
            .iter()
            .map(|keys| keys.first().map_or(0, |k| k.len()))
            .sum();
        if rows == 0 {
            return Ok(None);
        }
        let mut columns = (0..self.key_schema.fields().len())
            .map(|i| {
                let parts: Vec<&dyn Array> = window_keys.iter().map(|k| k[i].as_ref()).collect();
                concat(&parts)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let value_fields = self.output.fields().iter().skip(columns.len());
        for (i, field) in value_fields.enumerate() {
            let parts: Vec<&dyn Array> = window_values.iter().map(|v| v[i].as_ref()).collect();
            columns.push(cast(&concat(&parts)?, field.data_type())?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let rows = RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?;
        Ok(Some(Changes::added(rows)))
    }

    /// [`Operator::snapshot`] of vectorized windows: the same columns as
    /// for groups with their own accumulators (nothing emitted yet).
    fn snapshot_windows(&mut self) -> Result<RecordBatch> {
        let Some(windows) = &mut self.windows else {
            return Err(ExecError::Internal("no vectorized windows".into()));
        };
        let state_fields = self
            .aggregates
            .iter()
            .map(|a| a.function.state_fields())
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let snapshot = windows.snapshot(&self.aggregates)?;
        let key_rows = snapshot
            .iter()
            .map(|(_, window_keys, _)| self.converter.convert_columns(window_keys))
            .collect::<Result<Vec<_>, _>>()?;
        let mut keys: Vec<&[u8]> = Vec::new();
        let mut ends = Vec::new();
        for ((end, _, _), window_rows) in snapshot.iter().zip(&key_rows) {
            keys.extend(window_rows.iter().map(|row| row.data()));
            ends.extend(std::iter::repeat_n(Some(*end), window_rows.num_rows()));
        }
        let rows = keys.len();
        let mut states = Vec::with_capacity(state_fields.len());
        for (i, aggregate_fields) in state_fields.iter().enumerate() {
            let mut columns = Vec::with_capacity(aggregate_fields.len());
            for (j, field) in aggregate_fields.iter().enumerate() {
                let parts: Vec<&dyn Array> = snapshot
                    .iter()
                    .map(|(_, _, states)| states[i][j].as_ref())
                    .collect();
                columns.push(if parts.is_empty() {
                    datafusion::arrow::array::new_empty_array(field.data_type())
                } else {
                    cast(&concat(&parts)?, field.data_type())?
                });
            }
            states.push(columns);
        }
        let values = self
            .value_fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), rows))
            .collect();
        SnapshotRows {
            keys,
            ends,
            emitted: vec![false; rows],
            rows: vec![1; rows],
            states,
            values,
        }
        .into_batch(&state_fields, &self.value_fields(), self.watermark)
    }

    /// The output's aggregate columns (after the group columns).
    fn value_fields(&self) -> Vec<FieldRef> {
        self.output
            .fields()
            .iter()
            .skip(self.key_schema.fields().len())
            .cloned()
            .collect()
    }

    /// A new group's accumulators, one per aggregate.
    fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.aggregates
            .iter()
            .map(|a| new_accumulator(a, self.retracting))
            .collect()
    }

    /// The fields of each aggregate's state in a checkpoint: DataFusion's
    /// state fields, or for accumulators that take rows back (whose state
    /// holds more, as a sliding sum's count or a multiset), the types of
    /// the state such an accumulator gives.
    fn group_state_fields(&self) -> Result<Vec<Vec<FieldRef>>> {
        self.aggregates
            .iter()
            .map(|a| {
                if !self.retracting {
                    return Ok(a.function.state_fields()?);
                }
                Ok(retracting_accumulator(&a.function)?
                    .state()?
                    .iter()
                    .enumerate()
                    .map(|(j, value)| {
                        Arc::new(Field::new(format!("state_{j}"), value.data_type(), true))
                    })
                    .collect())
            })
            .collect()
    }

    /// The window end of each row, by its window column (with
    /// `EMIT ON WINDOW CLOSE`).
    fn window_ends(&self, close: WindowClose, key_columns: &[ArrayRef]) -> Result<Vec<i64>> {
        let column = cast(
            &key_columns[close.key_position],
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        Ok(column
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .map(|v| v.unwrap_or(i64::MIN).saturating_add(close.end_offset))
            .collect())
    }

    /// The output rows for groups: their key columns (from `key_rows`
    /// of `key_columns`) and each aggregate's values.
    fn output_batch(
        &self,
        key_arrays: Vec<ArrayRef>,
        values: Vec<Vec<ScalarValue>>,
        rows: usize,
    ) -> Result<(RecordBatch, RecordBatch)> {
        let mut columns = key_arrays.clone();
        for (column, field) in values
            .into_iter()
            .zip(self.output.fields().iter().skip(key_arrays.len()))
        {
            let array = if column.is_empty() {
                datafusion::arrow::array::new_empty_array(field.data_type())
            } else {
                ScalarValue::iter_to_array(column)?
            };
            columns.push(cast(&array, field.data_type())?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok((
            RecordBatch::try_new_with_options(self.output.clone(), columns, &options)?,
            RecordBatch::try_new_with_options(self.key_schema.clone(), key_arrays, &options)?,
        ))
    }

    /// Adds the rows at `indices` of `arguments` (and `filters`) to a
    /// group's accumulators (a new group's, ending at `window_end` if it is
    /// a window's), or with `taken_back` takes them back; returns the group.
    fn update_group(
        &mut self,
        key: &[u8],
        window_end: Option<i64>,
        indices: &UInt32Array,
        arguments: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
        taken_back: bool,
    ) -> Result<&mut Group> {
        if !self.groups.contains_key(key) {
            if let Some(end) = window_end {
                self.closing.entry(end).or_default().push(key.into());
            }
            let accumulators = self.accumulators()?;
            self.groups.insert(
                key.into(),
                Group {
                    accumulators,
                    emitted: None,
                    rows: 0,
                },
            );
        }
        let group = self
            .groups
            .get_mut(key)
            .ok_or_else(|| ExecError::Internal("a group vanished".into()))?;
        let count = indices.len() as i64;
        group.rows += if taken_back { -count } else { count };
        for ((accumulator, arguments), filter) in
            group.accumulators.iter_mut().zip(arguments).zip(filters)
        {
            let rows = match filter {
                None => indices.clone(),
                Some(filter) => indices
                    .iter()
                    .flatten()
                    .filter(|&i| filter.is_valid(i as usize) && filter.value(i as usize))
                    .collect(),
            };
            if rows.is_empty() {
                continue;
            }
            let values = arguments
                .iter()
                .map(|column| take(column.as_ref(), &rows, None))
                .collect::<Result<Vec<_>, _>>()?;
            if taken_back {
                accumulator.retract_batch(&values)?;
            } else {
                accumulator.update_batch(&values)?;
            }
        }
        Ok(group)
    }
}

/// A group's new aggregate values, and the ones it had emitted before if
/// they differ (`None` before its first row); `Some(values) == before`
/// means nothing changed.
fn reevaluate(group: &mut Group) -> Result<(Vec<ScalarValue>, Option<Vec<ScalarValue>>)> {
    let values = group
        .accumulators
        .iter_mut()
        .map(|a| a.evaluate())
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    if group.emitted.as_ref() == Some(&values) {
        // Unchanged: nothing to say.
        return Ok((values, group.emitted.clone()));
    }
    let before = group.emitted.replace(values.clone());
    Ok((values, before))
}

impl Operator for AggregateOperator {
    fn process(&mut self, changes: Changes) -> Result<Changes> {
        if changes.retract.is_some() && !self.retracting {
            return Err(ExecError::Internal(
                "an aggregation planned for added rows got rows taken back".into(),
            ));
        }
        let taken_back = |i: usize| {
            changes
                .retract
                .as_ref()
                .is_some_and(|r| r.is_valid(i) && r.value(i))
        };
        let batch = &changes.rows;
        let n = batch.num_rows();
        let key_columns = self
            .group_expressions
            .iter()
            .map(|e| Ok(one_zero_and_nan(e.evaluate(batch)?.into_array(n)?)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let window_ends = match self.close {
            Some(close) => Some(self.window_ends(close, &key_columns)?),
            None => None,
        };
        let arguments = self
            .aggregates
            .iter()
            .map(|a| {
                a.function
                    .expressions()
                    .iter()
                    .map(|e| e.evaluate(batch)?.into_array(n))
                    .collect::<datafusion::error::Result<Vec<_>>>()
            })
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let filters = self
            .aggregates
            .iter()
            .map(|a| {
                a.filter
                    .as_ref()
                    .map(|f| -> Result<BooleanArray> {
                        let values = f.evaluate(batch)?.into_array(n)?;
                        values.as_boolean_opt().cloned().ok_or_else(|| {
                            ExecError::Internal("an aggregate FILTER is not boolean".into())
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        if let (Some(ends), Some(windows)) = (&window_ends, &mut self.windows) {
            // Each window's rows at once, into its groups accumulators.
            let mut by_window: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for (i, &end) in ends.iter().enumerate() {
                if self.watermark.is_some_and(|watermark| end <= watermark) {
                    self.late_rows += 1;
                } else {
                    by_window.entry(end).or_default().push(i as u32);
                }
            }
            for (end, rows) in by_window {
                windows.update(
                    &self.aggregates,
                    end,
                    &rows,
                    &key_columns,
                    &arguments,
                    &filters,
                )?;
            }
            let (rows, _) = self.output_batch(
                key_columns.iter().map(|c| c.slice(0, 0)).collect(),
                vec![Vec::new(); self.aggregates.len()],
                0,
            )?;
            return Ok(Changes::added(rows));
        }
        // A query without GROUP BY has one group, with the empty key.
        let keys = if key_columns.is_empty() {
            None
        } else {
            Some(self.converter.convert_columns(&key_columns)?)
        };
        let key_of = |i: usize| -> &[u8] { keys.as_ref().map_or(&[], |k| k.row(i).data()) };
        // The chunk's rows by group, groups in order of first appearance:
        // a group's first row, its rows added and its rows taken back.
        let mut chunk_groups: Vec<(usize, Vec<u32>, Vec<u32>)> = Vec::new();
        let mut slots: HashMap<&[u8], usize> = HashMap::new();
        for i in 0..n {
            if let (Some(ends), Some(watermark)) = (&window_ends, self.watermark)
                && ends[i] <= watermark
            {
                self.late_rows += 1;
                continue;
            }
            let slot = match slots.entry(key_of(i)) {
                Entry::Occupied(slot) => *slot.get(),
                Entry::Vacant(slot) => {
                    slot.insert(chunk_groups.len());
                    chunk_groups.push((i, Vec::new(), Vec::new()));
                    chunk_groups.len() - 1
                }
            };
            let (_, added, removed) = &mut chunk_groups[slot];
            if taken_back(i) {
                removed.push(i as u32);
            } else {
                added.push(i as u32);
            }
        }
        if let Some(ends) = window_ends {
            // Groups of open windows are only updated; they come out when
            // their window closes.
            for (first, added, _) in chunk_groups {
                let indices = UInt32Array::from(added);
                self.update_group(
                    key_of(first),
                    Some(ends[first]),
                    &indices,
                    &arguments,
                    &filters,
                    false,
                )?;
            }
            let (rows, _) = self.output_batch(
                key_columns.iter().map(|c| c.slice(0, 0)).collect(),
                vec![Vec::new(); self.aggregates.len()],
                0,
            )?;
            return Ok(Changes::added(rows));
        }
        // Each changed group's old row (taken back) and new row (added).
        let mut key_rows = Vec::new();
        let mut retract = Vec::new();
        let mut values: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.aggregates.len()];
        for (first, added, removed) in chunk_groups {
            let key = key_of(first);
            for (indices, taken_back) in [(added, false), (removed, true)] {
                if !indices.is_empty() {
                    let indices = UInt32Array::from(indices);
                    self.update_group(key, None, &indices, &arguments, &filters, taken_back)?;
                }
            }
            let group = self
                .groups
                .get_mut(key)
                .ok_or_else(|| ExecError::Internal("a group vanished".into()))?;
            // A group whose rows were all taken back is taken back itself;
            // without GROUP BY, the one group stays, as SQL always has its
            // row (a count of 0).
            let (after, before) = if group.rows <= 0 && !key.is_empty() {
                let before = group.emitted.take();
                self.groups.remove(key);
                (None, before)
            } else {
                let (after, before) = reevaluate(group)?;
                if before.as_ref() == Some(&after) {
                    continue;
                }
                (Some(after), before)
            };
            for (row, taken_back) in before
                .into_iter()
                .map(|b| (b, true))
                .chain(after.map(|a| (a, false)))
            {
                key_rows.push(first);
                retract.push(taken_back);
                for (column, value) in values.iter_mut().zip(row) {
                    column.push(value);
                }
            }
        }
        let picked = UInt32Array::from_iter_values(key_rows.iter().map(|&i| i as u32));
        let key_arrays = key_columns
            .iter()
            .map(|column| take(column.as_ref(), &picked, None))
            .collect::<Result<Vec<_>, _>>()?;
        let (rows, keys) = self.output_batch(key_arrays, values, key_rows.len())?;
        Ok(Changes {
            rows,
            retract: Some(BooleanArray::from(retract)),
            keys: Some(keys),
        })
    }

    /// Emits the groups of every window the watermark has closed, final,
    /// and forgets them.
    fn advance(&mut self, watermark: i64) -> Result<Option<Changes>> {
        if self.close.is_none() || self.watermark.is_some_and(|w| w >= watermark) {
            return Ok(None);
        }
        self.watermark = Some(watermark);
        if self.windows.is_some() {
            return self.emit_closed_windows(watermark);
        }
        let open = self.closing.split_off(&watermark.saturating_add(1));
        let closed = std::mem::replace(&mut self.closing, open);
        let mut keys = Vec::new();
        let mut values: Vec<Vec<ScalarValue>> = vec![Vec::new(); self.aggregates.len()];
        for key in closed.into_values().flatten() {
            let Some(mut group) = self.groups.remove(&key) else {
                continue;
            };
            for (column, accumulator) in values.iter_mut().zip(&mut group.accumulators) {
                column.push(accumulator.evaluate()?);
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        let key_arrays = if self.key_schema.fields().is_empty() {
            Vec::new()
        } else {
            let parser = self.converter.parser();
            self.converter
                .convert_rows(keys.iter().map(|k| parser.parse(k)))?
        };
        let (rows, _) = self.output_batch(key_arrays, values, keys.len())?;
        Ok(Some(Changes::added(rows)))
    }

    fn late_rows(&self) -> u64 {
        self.late_rows
    }

    fn keeps_state(&self) -> bool {
        true
    }

    /// One row per group: its key, window end, whether a row of it was
    /// emitted, each accumulator's state, and the values last emitted;
    /// the watermark in the schema's metadata. Each group's accumulators
    /// are then rebuilt from that state, so that the state the job goes on
    /// with is the one a restore would give.
    fn snapshot(&mut self) -> Result<Option<RecordBatch>> {
        if self.windows.is_some() {
            return self.snapshot_windows().map(Some);
        }
        let state_fields = self.group_state_fields()?;
        let value_fields = self.value_fields();
        let window_ends: HashMap<&[u8], i64> = self
            .closing
            .iter()
            .flat_map(|(end, keys)| keys.iter().map(move |k| (k.as_ref(), *end)))
            .collect();
        let mut keys: Vec<&[u8]> = Vec::with_capacity(self.groups.len());
        let mut ends = Vec::with_capacity(self.groups.len());
        let mut emitted = Vec::with_capacity(self.groups.len());
        let mut group_rows = Vec::with_capacity(self.groups.len());
        let mut states: Vec<Vec<Vec<ScalarValue>>> = state_fields
            .iter()
            .map(|f| vec![Vec::new(); f.len()])
            .collect();
        let mut values: Vec<Vec<ScalarValue>> = vec![Vec::new(); value_fields.len()];
        let mut refreshed = Vec::with_capacity(self.groups.len());
        for (key, group) in &mut self.groups {
            keys.push(key);
            ends.push(window_ends.get(key.as_ref()).copied());
            emitted.push(group.emitted.is_some());
            group_rows.push(group.rows);
            let mut accumulators = Vec::with_capacity(group.accumulators.len());
            for ((accumulator, columns), aggregate) in group
                .accumulators
                .iter_mut()
                .zip(&mut states)
                .zip(&self.aggregates)
            {
                let state = accumulator.state()?;
                let arrays = state
                    .iter()
                    .map(|v| v.to_array())
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                let mut fresh = new_accumulator(aggregate, self.retracting)?;
                fresh.merge_batch(&arrays)?;
                accumulators.push(fresh);
                for (column, value) in columns.iter_mut().zip(state) {
                    column.push(value);
                }
            }
            refreshed.push(accumulators);
            for (i, (column, field)) in values.iter_mut().zip(&value_fields).enumerate() {
                let value = match &group.emitted {
                    Some(emitted) => emitted[i].cast_to(field.data_type())?,
                    None => ScalarValue::try_from(field.data_type())?,
                };
                column.push(value);
            }
        }
        let rows = SnapshotRows {
            ends,
            emitted,
            rows: group_rows,
            states: states
                .into_iter()
                .zip(&state_fields)
                .map(|(columns, fields)| {
                    columns
                        .into_iter()
                        .zip(fields)
                        .map(|(column, field)| scalars_to_array(column, field.data_type()))
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<_>>()?,
            values: values
                .into_iter()
                .zip(&value_fields)
                .map(|(column, field)| scalars_to_array(column, field.data_type()))
                .collect::<Result<_>>()?,
            keys,
        };
        let batch = rows.into_batch(&state_fields, &value_fields, self.watermark)?;
        for (group, accumulators) in self.groups.values_mut().zip(refreshed) {
            group.accumulators = accumulators;
        }
        Ok(Some(batch))
    }

    fn restore(&mut self, state: &RecordBatch) -> Result<()> {
        let bad = |what: &str| ExecError::Internal(format!("checkpoint state: {what}"));
        let keys = state
            .column_by_name("key")
            .and_then(|c| c.as_binary_opt::<i32>())
            .ok_or_else(|| bad("no key column"))?;
        let ends = state
            .column_by_name("window_end")
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| bad("no window_end column"))?;
        let emitted = state
            .column_by_name("emitted")
            .and_then(|c| c.as_boolean_opt())
            .ok_or_else(|| bad("no emitted column"))?;
        let state_counts: Vec<usize> = self.group_state_fields()?.iter().map(Vec::len).collect();
        let values_at = 3 + state_counts.iter().sum::<usize>();
        let values_end = values_at + self.aggregates.len();
        // Each group's rows (added less taken back); checkpoints written
        // before it was kept hold only groups that never lost rows.
        let group_rows = state
            .column_by_name("rows")
            .map(|c| {
                c.as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| bad("a rows column that is not BIGINT"))
            })
            .transpose()?;
        if state.num_columns() != values_end + usize::from(group_rows.is_some()) {
            return Err(bad("its columns do not fit the view's aggregates"));
        }
        self.groups.clear();
        self.closing.clear();
        self.watermark = state
            .schema()
            .metadata()
            .get("watermark")
            .and_then(|w| w.parse().ok());
        if let Some(windows) = &mut self.windows {
            windows.clear();
            // Each window's groups at once: their keys back to columns,
            // their states merged into the window's accumulators.
            let mut by_window: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            for row in 0..state.num_rows() {
                if ends.is_null(row) {
                    return Err(bad("a window's group without its window's end"));
                }
                by_window
                    .entry(ends.value(row))
                    .or_default()
                    .push(row as u32);
            }
            let parser = self.converter.parser();
            let key_columns = self
                .converter
                .convert_rows(keys.iter().map(|k| parser.parse(k.unwrap_or_default())))?;
            for (end, rows) in by_window {
                let rows = UInt32Array::from(rows);
                let take_rows = |columns: &[ArrayRef]| {
                    columns
                        .iter()
                        .map(|c| take(c.as_ref(), &rows, None))
                        .collect::<Result<Vec<_>, _>>()
                };
                let mut column = 3;
                let mut states = Vec::with_capacity(self.aggregates.len());
                for count in &state_counts {
                    states.push(take_rows(&state.columns()[column..column + count])?);
                    column += count;
                }
                windows.restore_window(
                    &self.aggregates,
                    end,
                    &take_rows(&key_columns)?,
                    &states,
                )?;
            }
            return Ok(());
        }
        for row in 0..state.num_rows() {
            let mut column = 3;
            let mut accumulators = Vec::with_capacity(self.aggregates.len());
            for (aggregate, count) in self.aggregates.iter().zip(&state_counts) {
                let arrays: Vec<ArrayRef> = (column..column + count)
                    .map(|c| state.column(c).slice(row, 1))
                    .collect();
                let mut accumulator = new_accumulator(aggregate, self.retracting)?;
                accumulator.merge_batch(&arrays)?;
                accumulators.push(accumulator);
                column += count;
            }
            let emitted_values = if emitted.value(row) {
                Some(
                    (values_at..values_end)
                        .map(|c| ScalarValue::try_from_array(state.column(c), row))
                        .collect::<datafusion::error::Result<Vec<_>>>()?,
                )
            } else {
                None
            };
            let key: Box<[u8]> = keys.value(row).into();
            if !ends.is_null(row) {
                self.closing
                    .entry(ends.value(row))
                    .or_default()
                    .push(key.clone());
            }
            self.groups.insert(
                key,
                Group {
                    accumulators,
                    emitted: emitted_values,
                    rows: group_rows.map_or(1, |rows| rows.value(row)),
                },
            );
        }
        Ok(())
    }
}

/// The groups of an aggregation as a checkpoint holds them, a row each.
struct SnapshotRows<'a> {
    /// The group's key (Arrow row format).
    keys: Vec<&'a [u8]>,
    /// The end of the group's window, if it is a window's.
    ends: Vec<Option<i64>>,
    /// Whether a row of the group was emitted.
    emitted: Vec<bool>,
    /// The group's rows: added less taken back.
    rows: Vec<i64>,
    /// Per aggregate, its state columns.
    states: Vec<Vec<ArrayRef>>,
    /// Per aggregate, the values last emitted.
    values: Vec<ArrayRef>,
}

impl SnapshotRows<'_> {
    /// The state batch: `key`, `window_end`, `emitted`, `state_{i}_{j}`,
    /// `value_{i}`, `rows`, with the watermark in the schema's metadata.
    fn into_batch(
        self,
        state_fields: &[Vec<FieldRef>],
        value_fields: &[FieldRef],
        watermark: Option<i64>,
    ) -> Result<RecordBatch> {
        let rows = self.keys.len();
        let mut fields = vec![
            Field::new("key", DataType::Binary, false),
            Field::new("window_end", DataType::Int64, true),
            Field::new("emitted", DataType::Boolean, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::from_iter_values(self.keys)),
            Arc::new(Int64Array::from(self.ends)),
            Arc::new(BooleanArray::from(self.emitted)),
        ];
        for (i, (aggregate_fields, aggregate_states)) in
            state_fields.iter().zip(self.states).enumerate()
        {
            for (j, (field, column)) in aggregate_fields.iter().zip(aggregate_states).enumerate() {
                fields.push(Field::new(
                    format!("state_{i}_{j}"),
                    field.data_type().clone(),
                    true,
                ));
                columns.push(column);
            }
        }
        for (i, (field, column)) in value_fields.iter().zip(self.values).enumerate() {
            fields.push(Field::new(
                format!("value_{i}"),
                field.data_type().clone(),
                true,
            ));
            columns.push(column);
        }
        fields.push(Field::new("rows", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(self.rows)));
        let mut metadata = HashMap::new();
        if let Some(watermark) = watermark {
            metadata.insert("watermark".to_string(), watermark.to_string());
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            schema, columns, &options,
        )?)
    }
}

/// A new accumulator of `aggregate`: one that can take rows back with
/// `retracting`.
fn new_accumulator(aggregate: &AggregateInput, retracting: bool) -> Result<Box<dyn Accumulator>> {
    if retracting {
        retracting_accumulator(&aggregate.function)
    } else {
        Ok(aggregate.function.create_accumulator()?)
    }
}

/// `values` as an array of `data_type` (empty when there are none).
fn scalars_to_array(values: Vec<ScalarValue>, data_type: &DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(datafusion::arrow::array::new_empty_array(data_type));
    }
    let array = ScalarValue::iter_to_array(values)?;
    Ok(cast(&array, data_type)?)
}

/// A float group key with one zero and one NaN: `-0.0` becomes `0.0` and
/// every NaN the same NaN, so they group as the batch engine (and
/// Postgres) group them; their bits differ, and a key compares by bits.
fn one_zero_and_nan(column: ArrayRef) -> ArrayRef {
    match column.data_type() {
        DataType::Float64 => Arc::new(
            column
                .as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(|v| {
                    if v == 0.0 {
                        0.0
                    } else if v.is_nan() {
                        f64::NAN
                    } else {
                        v
                    }
                }),
        ),
        DataType::Float32 => Arc::new(
            column
                .as_primitive::<Float32Type>()
                .unary::<_, Float32Type>(|v| {
                    if v == 0.0 {
                        0.0
                    } else if v.is_nan() {
                        f32::NAN
                    } else {
                        v
                    }
                }),
        ),
        _ => column,
    }
}
