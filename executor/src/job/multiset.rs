//! `MIN`, `MAX` and `COUNT(DISTINCT)` over rows that can be taken back (an
//! aggregation over a view with GROUP BY). DataFusion's sliding MIN/MAX
//! takes rows back only in the order they came, as a window frame slides,
//! and its sliding COUNT(DISTINCT) keeps counts its state does not give; a
//! view's rows are taken back in any order, and a checkpoint must hold
//! everything. This accumulator keeps every value with its count, ordered
//! by Arrow's row format (whose bytes sort as the values do): the minimum
//! is the first, the maximum the last, the distinct count how many there
//! are, and its state is all of them with their counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Accumulator;

/// What a [`MultisetAccumulator`] gives of its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Statistic {
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
    /// `COUNT(DISTINCT)`.
    CountDistinct,
}

/// `MIN`, `MAX` or `COUNT(DISTINCT)` of a multiset of values that rows are
/// added to and taken back from.
#[derive(Debug)]
pub(crate) struct MultisetAccumulator {
    statistic: Statistic,
    /// The values' type.
    data_type: DataType,
    converter: RowConverter,
    /// Each non-null value (in row format) and how many rows hold it.
    counts: BTreeMap<Box<[u8]>, u64>,
}

impl MultisetAccumulator {
    /// An accumulator of values of `data_type` with no rows yet.
    pub(crate) fn try_new(statistic: Statistic, data_type: &DataType) -> Result<Self> {
        Ok(Self {
            statistic,
            data_type: data_type.clone(),
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            counts: BTreeMap::new(),
        })
    }

    /// The non-null values of the argument column, in row format.
    fn values(&self, arguments: &[ArrayRef]) -> Result<Vec<Box<[u8]>>> {
        let column = &arguments[0];
        let rows = self
            .converter
            .convert_columns(std::slice::from_ref(column))?;
        Ok(rows
            .iter()
            .enumerate()
            .filter(|(i, _)| column.is_valid(*i))
            .map(|(_, row)| row.data().into())
            .collect())
    }

    /// The values in row format back as an array.
    fn array_of<'a>(&self, values: impl IntoIterator<Item = &'a Box<[u8]>>) -> Result<ArrayRef> {
        let parser = self.converter.parser();
        let mut arrays = self
            .converter
            .convert_rows(values.into_iter().map(|v| parser.parse(v)))?;
        Ok(arrays.remove(0))
    }
}

impl Accumulator for MultisetAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for value in self.values(values)? {
            *self.counts.entry(value).or_default() += 1;
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for value in self.values(values)? {
            if let Some(count) = self.counts.get_mut(&value) {
                *count -= 1;
                if *count == 0 {
                    self.counts.remove(&value);
                }
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let extreme = match self.statistic {
            Statistic::Min => self.counts.keys().next(),
            Statistic::Max => self.counts.keys().next_back(),
            Statistic::CountDistinct => {
                return Ok(ScalarValue::Int64(Some(self.counts.len() as i64)));
            }
        };
        let Some(bytes) = extreme else {
            return ScalarValue::try_from(&self.data_type);
        };
        ScalarValue::try_from_array(&self.array_of([bytes])?, 0)
    }

    /// Every value, and how many rows hold each: two lists.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values = self.array_of(self.counts.keys())?;
        let counts: ArrayRef =
            Arc::new(UInt64Array::from_iter_values(self.counts.values().copied()));
        Ok(vec![
            SingleRowListArrayBuilder::new(values).build_list_scalar(),
            SingleRowListArrayBuilder::new(counts).build_list_scalar(),
        ])
    }

    /// Adds the values and counts of states ([`Self::state`]).
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return Err(DataFusionError::Internal(format!(
                "a multiset's state is two lists, not {} columns",
                states.len()
            )));
        };
        let (values, counts) = (values.as_list::<i32>(), counts.as_list::<i32>());
        for (values, counts) in values.iter().zip(counts.iter()) {
            let (Some(values), Some(counts)) = (values, counts) else {
                continue;
            };
            let counts = counts.as_primitive::<UInt64Type>();
            for (value, count) in self
                .values(&[values])?
                .into_iter()
                .zip(counts.values().iter())
            {
                *self.counts.entry(value).or_default() += *count;
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .counts
                .keys()
                .map(|k| k.len() + size_of::<u64>() + size_of::<Box<[u8]>>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

    use super::*;

    fn ints(values: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![Arc::new(Int64Array::from(values.to_vec()))]
    }

    #[test]
    fn rows_taken_back_in_any_order_move_the_extremes() {
        let mut min = MultisetAccumulator::try_new(Statistic::Min, &DataType::Int64).unwrap();
        let mut max = MultisetAccumulator::try_new(Statistic::Max, &DataType::Int64).unwrap();
        for accumulator in [&mut min, &mut max] {
            accumulator
                .update_batch(&ints(&[Some(5), Some(-3), None, Some(9), Some(-3)]))
                .unwrap();
        }
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(Some(-3)));
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(9)));

        // The largest value first, then one of the two smallest: the other
        // still holds the minimum.
        for accumulator in [&mut min, &mut max] {
            accumulator
                .retract_batch(&ints(&[Some(9), Some(-3)]))
                .unwrap();
        }
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(Some(-3)));
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(Some(5)));

        for accumulator in [&mut min, &mut max] {
            accumulator
                .retract_batch(&ints(&[Some(-3), Some(5), None]))
                .unwrap();
        }
        assert_eq!(min.evaluate().unwrap(), ScalarValue::Int64(None));
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Int64(None));
    }

    #[test]
    fn floats_and_text_order_as_sql_does() {
        let mut max = MultisetAccumulator::try_new(Statistic::Max, &DataType::Float64).unwrap();
        max.update_batch(&[Arc::new(Float64Array::from(vec![-0.5, 2.25, -7.0]))])
            .unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Float64(Some(2.25)));
        let mut min = MultisetAccumulator::try_new(Statistic::Min, &DataType::Utf8).unwrap();
        min.update_batch(&[Arc::new(StringArray::from(vec!["pear", "apple", "fig"]))])
            .unwrap();
        min.retract_batch(&[Arc::new(StringArray::from(vec!["apple"]))])
            .unwrap();
        assert_eq!(min.evaluate().unwrap(), ScalarValue::from("fig"));
    }

    #[test]
    fn distinct_values_are_counted_as_rows_come_and_go() {
        let mut distinct =
            MultisetAccumulator::try_new(Statistic::CountDistinct, &DataType::Utf8).unwrap();
        distinct
            .update_batch(&[Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                None,
                Some("a"),
            ]))])
            .unwrap();
        assert_eq!(distinct.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
        // One of the two "a" rows goes: "a" is still there.
        distinct
            .retract_batch(&[Arc::new(StringArray::from(vec!["a"]))])
            .unwrap();
        assert_eq!(distinct.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
        distinct
            .retract_batch(&[Arc::new(StringArray::from(vec!["a"]))])
            .unwrap();
        assert_eq!(distinct.evaluate().unwrap(), ScalarValue::Int64(Some(1)));
    }

    /// What a checkpoint keeps: a fresh accumulator merged with the state
    /// takes the same rows back as the one it came from.
    #[test]
    fn the_state_holds_every_value_with_its_count() {
        for statistic in [Statistic::Min, Statistic::Max, Statistic::CountDistinct] {
            let mut before = MultisetAccumulator::try_new(statistic, &DataType::Int64).unwrap();
            before
                .update_batch(&ints(&[Some(4), Some(1), Some(4), Some(9), None]))
                .unwrap();
            let state: Vec<ArrayRef> = before
                .state()
                .unwrap()
                .iter()
                .map(|s| s.to_array().unwrap())
                .collect();
            let mut after = MultisetAccumulator::try_new(statistic, &DataType::Int64).unwrap();
            after.merge_batch(&state).unwrap();
            assert_eq!(after.counts, before.counts, "{statistic:?}");
            // Both 1 and 9 go, and one 4: a 4 is left.
            for accumulator in [&mut before, &mut after] {
                accumulator
                    .retract_batch(&ints(&[Some(1), Some(9), Some(4)]))
                    .unwrap();
            }
            let expected = match statistic {
                Statistic::CountDistinct => ScalarValue::Int64(Some(1)),
                _ => ScalarValue::Int64(Some(4)),
            };
            assert_eq!(after.evaluate().unwrap(), expected, "{statistic:?}");
            assert_eq!(before.evaluate().unwrap(), expected, "{statistic:?}");
        }
        // A state with no values merges to nothing.
        let mut empty = MultisetAccumulator::try_new(Statistic::Max, &DataType::Utf8).unwrap();
        let state: Vec<ArrayRef> = empty
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        empty.merge_batch(&state).unwrap();
        assert_eq!(empty.evaluate().unwrap(), ScalarValue::Utf8(None));
    }
}
