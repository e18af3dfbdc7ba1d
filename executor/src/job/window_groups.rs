//! The open windows of an `EMIT ON WINDOW CLOSE` aggregation, vectorized
//! as DataFusion's hash aggregation is: each window interns its groups'
//! keys with a [`GroupValues`] (the batch engine's own, specialized by key
//! type) and keeps one `GroupsAccumulator` per aggregate for all of its
//! groups, so a chunk costs one `intern` and one `update_batch` per window
//! and aggregate rather than a lookup and an accumulator call per row. A
//! window's groups come out together, final, when the watermark closes it
//! (`emit(EmitTo::All)`), which is why the windows are kept apart: group
//! values and groups accumulators can only give back all of their groups,
//! or the first ones. Used when every aggregate has a groups accumulator
//! (COUNT, SUM, AVG, MIN, MAX, ...); otherwise the aggregation keeps an
//! accumulator per group.

use std::collections::BTreeMap;

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::error::Result;
use crate::job::aggregate::AggregateInput;

/// One open window's groups.
struct Window {
    /// The groups' keys, interned: a group's index is its place here.
    keys: Box<dyn GroupValues>,
    /// One per aggregate, over all the window's groups.
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("groups", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Window {
    fn new(key_schema: &SchemaRef, aggregates: &[AggregateInput]) -> Result<Self> {
        Ok(Self {
            keys: new_group_values(key_schema.clone(), &GroupOrdering::None)?,
            accumulators: aggregates
                .iter()
                .map(|a| a.function.create_groups_accumulator())
                .collect::<datafusion::error::Result<_>>()?,
        })
    }

    /// The group index of each row of `keys`, new groups added.
    fn group_indices(&mut self, keys: &[ArrayRef]) -> Result<Vec<usize>> {
        let mut indices = Vec::with_capacity(keys.first().map_or(0, |k| k.len()));
        self.keys.intern(keys, &mut indices)?;
        Ok(indices)
    }

    /// Merges groups' states into this window, keyed by `keys`.
    fn restore(&mut self, keys: &[ArrayRef], states: &[Vec<ArrayRef>]) -> Result<()> {
        let indices = self.group_indices(keys)?;
        let groups = self.keys.len();
        for (accumulator, state) in self.accumulators.iter_mut().zip(states) {
            accumulator.merge_batch(state, &indices, groups)?;
        }
        Ok(())
    }
}

/// What a closed window gives: its groups' key columns and each
/// aggregate's values, in the same order.
pub(crate) type ClosedWindow = (Vec<ArrayRef>, Vec<ArrayRef>);

/// An open window in a checkpoint: its end, its groups' key columns, and
/// per aggregate its state columns (a row a group).
pub(crate) type WindowState = (i64, Vec<ArrayRef>, Vec<Vec<ArrayRef>>);

/// The open windows by their end (microseconds).
#[derive(Debug)]
pub(crate) struct WindowGroups {
    /// The group columns, which every window interns.
    key_schema: SchemaRef,
    windows: BTreeMap<i64, Window>,
}

impl WindowGroups {
    /// No window open yet; groups are keyed by columns of `key_schema`.
    pub(crate) fn new(key_schema: SchemaRef) -> Self {
        Self {
            key_schema,
            windows: BTreeMap::new(),
        }
    }

    /// Whether every aggregate of `aggregates` has a groups accumulator.
    pub(crate) fn supported(aggregates: &[AggregateInput]) -> bool {
        aggregates
            .iter()
            .all(|a| a.function.groups_accumulator_supported())
    }

    /// The window ending at `end`, opened if it is not yet.
    fn window(&mut self, aggregates: &[AggregateInput], end: i64) -> Result<&mut Window> {
        Ok(match self.windows.entry(end) {
            std::collections::btree_map::Entry::Occupied(window) => window.into_mut(),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Window::new(&self.key_schema, aggregates)?)
            }
        })
    }

    /// Adds the chunk's rows at `rows`, all of the window ending at `end`:
    /// `key_columns` are the chunk's group columns.
    pub(crate) fn update(
        &mut self,
        aggregates: &[AggregateInput],
        end: i64,
        rows: &[u32],
        key_columns: &[ArrayRef],
        arguments: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
    ) -> Result<()> {
        let taken = UInt32Array::from(rows.to_vec());
        let take_rows = |columns: &[ArrayRef]| {
            columns
                .iter()
                .map(|column| take(column.as_ref(), &taken, None))
                .collect::<Result<Vec<_>, _>>()
        };
        let window = self.window(aggregates, end)?;
        let group_indices = window.group_indices(&take_rows(key_columns)?)?;
        let groups = window.keys.len();
        for ((accumulator, arguments), filter) in
            window.accumulators.iter_mut().zip(arguments).zip(filters)
        {
            let values = take_rows(arguments)?;
            let filter = filter.as_ref().map(|f| take(f, &taken, None)).transpose()?;
            let filter = filter.as_ref().map(|f| f.as_boolean());
            accumulator.update_batch(&values, &group_indices, filter, groups)?;
        }
        Ok(())
    }

    /// Takes out every window ending at or before `watermark`, oldest
    /// first, with its groups' final values.
    pub(crate) fn close(&mut self, watermark: i64) -> Result<Vec<ClosedWindow>> {
        let open = self.windows.split_off(&watermark.saturating_add(1));
        let closed = std::mem::replace(&mut self.windows, open);
        closed
            .into_values()
            .map(|mut window| {
                let keys = window.keys.emit(EmitTo::All)?;
                let values = window
                    .accumulators
                    .iter_mut()
                    .map(|a| a.evaluate(EmitTo::All))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                Ok((keys, values))
            })
            .collect()
    }

    /// Every open window's end, its groups' key columns and each
    /// aggregate's state columns, for a checkpoint. Taking them empties
    /// the window, so it is rebuilt from them: the job goes on with what a
    /// restore would give.
    pub(crate) fn snapshot(&mut self, aggregates: &[AggregateInput]) -> Result<Vec<WindowState>> {
        let mut out = Vec::with_capacity(self.windows.len());
        for (&end, window) in &mut self.windows {
            let keys = window.keys.emit(EmitTo::All)?;
            let states = window
                .accumulators
                .iter_mut()
                .map(|a| a.state(EmitTo::All))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            *window = Window::new(&self.key_schema, aggregates)?;
            window.restore(&keys, &states)?;
            out.push((end, keys, states));
        }
        Ok(out)
    }

    /// Gives back the groups of the window ending at `end` from a
    /// checkpoint: their key columns, and per aggregate their state
    /// columns (a row a group).
    pub(crate) fn restore_window(
        &mut self,
        aggregates: &[AggregateInput],
        end: i64,
        keys: &[ArrayRef],
        states: &[Vec<ArrayRef>],
    ) -> Result<()> {
        self.window(aggregates, end)?.restore(keys, states)
    }

    /// Forgets every window (before a restore).
    pub(crate) fn clear(&mut self) {
        self.windows.clear();
    }
}
