//! `MIN` and `MAX` over rows that can be taken back (an aggregation over a
//! view with GROUP BY). DataFusion's sliding MIN/MAX takes rows back only
//! in the order they came, as a window frame slides; a view's rows are
//! taken back in any order, so this accumulator keeps every value with its
//! count, ordered by Arrow's row format (whose bytes sort as the values do),
//! and the extreme is the first or last of them.

use std::collections::BTreeMap;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;

/// Which end of the values an [`ExtremeAccumulator`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extreme {
    /// `MIN`.
    Min,
    /// `MAX`.
    Max,
}

/// `MIN` or `MAX` of a multiset of values that rows are added to and
/// taken back from.
#[derive(Debug)]
pub(crate) struct ExtremeAccumulator {
    extreme: Extreme,
    data_type: DataType,
    converter: RowConverter,
    /// Each non-null value (in row format) and how many rows hold it.
    counts: BTreeMap<Box<[u8]>, u64>,
}

impl ExtremeAccumulator {
    /// An accumulator of values of `data_type` with no rows yet.
    pub(crate) fn try_new(extreme: Extreme, data_type: &DataType) -> Result<Self> {
        Ok(Self {
            extreme,
            data_type: data_type.clone(),
            converter: RowConverter::new(vec![SortField::new(data_type.clone())])?,
            counts: BTreeMap::new(),
        })
    }
}

impl ExtremeAccumulator {
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
}

impl Accumulator for ExtremeAccumulator {
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
        let extreme = match self.extreme {
            Extreme::Min => self.counts.keys().next(),
            Extreme::Max => self.counts.keys().next_back(),
        };
        let Some(bytes) = extreme else {
            return ScalarValue::try_from(&self.data_type);
        };
        let parser = self.converter.parser();
        let arrays = self.converter.convert_rows([parser.parse(bytes)])?;
        ScalarValue::try_from_array(&arrays[0], 0)
    }

    /// The extreme alone, as DataFusion's MIN and MAX keep it: enough to
    /// merge with other partial results, not to take rows back after.
    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
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
        let mut min = ExtremeAccumulator::try_new(Extreme::Min, &DataType::Int64).unwrap();
        let mut max = ExtremeAccumulator::try_new(Extreme::Max, &DataType::Int64).unwrap();
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
        let mut max = ExtremeAccumulator::try_new(Extreme::Max, &DataType::Float64).unwrap();
        max.update_batch(&[Arc::new(Float64Array::from(vec![-0.5, 2.25, -7.0]))])
            .unwrap();
        assert_eq!(max.evaluate().unwrap(), ScalarValue::Float64(Some(2.25)));
        let mut min = ExtremeAccumulator::try_new(Extreme::Min, &DataType::Utf8).unwrap();
        min.update_batch(&[Arc::new(StringArray::from(vec!["pear", "apple", "fig"]))])
            .unwrap();
        min.retract_batch(&[Arc::new(StringArray::from(vec!["apple"]))])
            .unwrap();
        assert_eq!(min.evaluate().unwrap(), ScalarValue::from("fig"));
    }
}
