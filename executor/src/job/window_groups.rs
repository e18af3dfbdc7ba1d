//! The open windows of an `EMIT ON WINDOW CLOSE` aggregation, vectorized:
//! each window keeps one DataFusion `GroupsAccumulator` per aggregate for
//! all of its groups, so a chunk costs one `update_batch` per window and
//! aggregate rather than one per group. A window's groups come out
//! together, final, when the watermark closes it
//! (`evaluate(EmitTo::All)`), which is why the windows are kept apart:
//! a groups accumulator can only give back all of its groups, or the first
//! ones. Used when every aggregate has a groups accumulator (COUNT, SUM,
//! AVG, MIN, MAX, ...); otherwise the aggregation keeps an accumulator per
//! group.

use std::collections::{BTreeMap, HashMap};

use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};

use crate::error::Result;
use crate::job::aggregate::AggregateInput;

/// One open window's groups.
struct Window {
    /// Each group's key (Arrow row format), by group index.
    keys: Vec<Box<[u8]>>,
    /// The group index of each key.
    index: HashMap<Box<[u8]>, usize>,
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
    fn new(aggregates: &[AggregateInput]) -> Result<Self> {
        Ok(Self {
            keys: Vec::new(),
            index: HashMap::new(),
            accumulators: aggregates
                .iter()
                .map(|a| a.function.create_groups_accumulator())
                .collect::<datafusion::error::Result<_>>()?,
        })
    }

    /// The group index of each key, new groups added.
    fn group_indices<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) -> Vec<usize> {
        keys.map(|key| match self.index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.keys.len();
                self.keys.push(key.into());
                self.index.insert(key.into(), i);
                i
            }
        })
        .collect()
    }
}

/// What a closed window gives: its groups' keys (row format) and each
/// aggregate's values, in the same order.
pub(crate) type ClosedWindow = (Vec<Box<[u8]>>, Vec<ArrayRef>);

/// An open window in a checkpoint: its end, its groups' keys, and per
/// aggregate its state columns (a row a group).
pub(crate) type WindowState = (i64, Vec<Box<[u8]>>, Vec<Vec<ArrayRef>>);

/// The open windows by their end (microseconds).
#[derive(Debug, Default)]
pub(crate) struct WindowGroups {
    windows: BTreeMap<i64, Window>,
}

impl WindowGroups {
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
                slot.insert(Window::new(aggregates)?)
            }
        })
    }

    /// Adds the chunk's rows at `rows`, all of the window ending at `end`,
    /// with `key_of` giving each row's group key.
    pub(crate) fn update<'k>(
        &mut self,
        aggregates: &[AggregateInput],
        end: i64,
        rows: &[u32],
        key_of: impl Fn(usize) -> &'k [u8],
        arguments: &[Vec<ArrayRef>],
        filters: &[Option<BooleanArray>],
    ) -> Result<()> {
        let window = self.window(aggregates, end)?;
        let group_indices = window.group_indices(rows.iter().map(|&i| key_of(i as usize)));
        let taken = UInt32Array::from(rows.to_vec());
        let groups = window.keys.len();
        for ((accumulator, arguments), filter) in
            window.accumulators.iter_mut().zip(arguments).zip(filters)
        {
            let values = arguments
                .iter()
                .map(|column| take(column.as_ref(), &taken, None))
                .collect::<Result<Vec<_>, _>>()?;
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
                let values = window
                    .accumulators
                    .iter_mut()
                    .map(|a| a.evaluate(EmitTo::All))
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                Ok((window.keys, values))
            })
            .collect()
    }

    /// Every open group's key, window end and each aggregate's state
    /// columns, for a checkpoint. The accumulators are rebuilt from that
    /// state (taking it empties them), so the job goes on with what a
    /// restore would give.
    pub(crate) fn snapshot(&mut self, aggregates: &[AggregateInput]) -> Result<Vec<WindowState>> {
        let mut out = Vec::with_capacity(self.windows.len());
        for (&end, window) in &mut self.windows {
            let groups = window.keys.len();
            let all: Vec<usize> = (0..groups).collect();
            let mut states = Vec::with_capacity(aggregates.len());
            for (accumulator, aggregate) in window.accumulators.iter_mut().zip(aggregates) {
                let state = accumulator.state(EmitTo::All)?;
                let mut fresh = aggregate.function.create_groups_accumulator()?;
                fresh.merge_batch(&state, &all, groups)?;
                *accumulator = fresh;
                states.push(state);
            }
            out.push((end, window.keys.clone(), states));
        }
        Ok(out)
    }

    /// Gives a group back from a checkpoint: its key, its window's end,
    /// and per aggregate its state columns (each of one row).
    pub(crate) fn restore_group(
        &mut self,
        aggregates: &[AggregateInput],
        end: i64,
        key: &[u8],
        states: &[Vec<ArrayRef>],
    ) -> Result<()> {
        let window = self.window(aggregates, end)?;
        let indices = window.group_indices(std::iter::once(key));
        let groups = window.keys.len();
        for (accumulator, state) in window.accumulators.iter_mut().zip(states) {
            accumulator.merge_batch(state, &indices, groups)?;
        }
        Ok(())
    }

    /// Forgets every window (before a restore).
    pub(crate) fn clear(&mut self) {
        self.windows.clear();
    }
}
