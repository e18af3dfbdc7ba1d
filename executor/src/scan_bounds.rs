//! Which partitions and offsets a scan needs, read off the query's filters
//! on `_partition` and `_offset`, so the rest is never read or decoded.

use std::collections::BTreeSet;

use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;

/// The part of a stream a scan reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanBounds {
    /// Partitions to read; `None` means all.
    pub partitions: Option<BTreeSet<u32>>,
    /// First offset to read (inclusive).
    pub offset_start: i64,
    /// Offset to stop before (exclusive); `None` means the high watermark.
    pub offset_end: Option<i64>,
}

/// Whether a filter can narrow a scan (it is still applied above the scan).
pub fn is_prunable(filter: &Expr) -> bool {
    let mut bounds = ScanBounds::default();
    apply(&mut bounds, filter)
}

impl ScanBounds {
    /// Narrows the bounds by every filter it understands.
    pub fn from_filters(filters: &[Expr]) -> Self {
        let mut bounds = Self::default();
        for filter in filters {
            apply(&mut bounds, filter);
        }
        bounds
    }

    /// Whether the scan reads this partition.
    pub fn includes_partition(&self, partition: u32) -> bool {
        self.partitions
            .as_ref()
            .is_none_or(|set| set.contains(&partition))
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        Expr::Cast(cast) => column_name(&cast.expr),
        Expr::TryCast(cast) => column_name(&cast.expr),
        _ => None,
    }
}

fn integer(expr: &Expr) -> Option<i64> {
    let Expr::Literal(value, _) = expr else {
        return None;
    };
    match value {
        ScalarValue::Int8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::Int64(Some(v)) => Some(*v),
        ScalarValue::UInt8(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt16(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt32(Some(v)) => Some(i64::from(*v)),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).ok(),
        _ => None,
    }
}

fn flip(op: Operator) -> Operator {
    match op {
        Operator::Lt => Operator::Gt,
        Operator::LtEq => Operator::GtEq,
        Operator::Gt => Operator::Lt,
        Operator::GtEq => Operator::LtEq,
        other => other,
    }
}

/// Applies one conjunct; returns whether it was understood.
fn apply(bounds: &mut ScanBounds, filter: &Expr) -> bool {
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            let l = apply(bounds, left);
            let r = apply(bounds, right);
            l || r
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (column, value, op) = match (
                column_name(left),
                integer(right),
                column_name(right),
                integer(left),
            ) {
                (Some(c), Some(v), _, _) => (c, v, *op),
                (_, _, Some(c), Some(v)) => (c, v, flip(*op)),
                _ => return false,
            };
            match column {
                "_offset" => offset_bound(bounds, op, value),
                "_partition" if op == Operator::Eq => {
                    restrict_partitions(bounds, u32::try_from(value).ok().into_iter().collect());
                    true
                }
                _ => false,
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if column_name(expr) == Some("_offset") => match (integer(low), integer(high)) {
            (Some(low), Some(high)) => {
                offset_bound(bounds, Operator::GtEq, low);
                offset_bound(bounds, Operator::LtEq, high);
                true
            }
            _ => false,
        },
        Expr::InList(list) if !list.negated && column_name(&list.expr) == Some("_partition") => {
            let values: Option<BTreeSet<u32>> = list
                .list
                .iter()
                .map(|e| integer(e).and_then(|v| u32::try_from(v).ok()))
                .collect();
            match values {
                Some(values) => {
                    restrict_partitions(bounds, values);
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

fn restrict_partitions(bounds: &mut ScanBounds, values: BTreeSet<u32>) {
    bounds.partitions = Some(match bounds.partitions.take() {
        Some(existing) => existing.intersection(&values).copied().collect(),
        None => values,
    });
}

fn offset_bound(bounds: &mut ScanBounds, op: Operator, value: i64) -> bool {
    let mut end = |e: i64| bounds.offset_end = Some(bounds.offset_end.map_or(e, |cur| cur.min(e)));
    match op {
        Operator::Eq => {
            end(value.saturating_add(1));
            bounds.offset_start = bounds.offset_start.max(value);
        }
        Operator::Lt => end(value),
        Operator::LtEq => end(value.saturating_add(1)),
        Operator::Gt => bounds.offset_start = bounds.offset_start.max(value.saturating_add(1)),
        Operator::GtEq => bounds.offset_start = bounds.offset_start.max(value),
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    #[test]
    fn filters_narrow_partitions_and_offsets() {
        let bounds = ScanBounds::from_filters(&[
            col("_partition").eq(lit(1i32)),
            col("_offset")
                .gt_eq(lit(10i64))
                .and(col("_offset").lt(lit(20i64))),
            col("amount").gt(lit(5)),
        ]);
        assert_eq!(bounds.partitions, Some([1].into_iter().collect()));
        assert_eq!(bounds.offset_start, 10);
        assert_eq!(bounds.offset_end, Some(20));
        assert!(!bounds.includes_partition(0));
        assert!(is_prunable(&lit(5i64).lt(col("_offset"))));
        assert!(!is_prunable(&col("amount").gt(lit(5))));
        let listed =
            ScanBounds::from_filters(&[col("_partition").in_list(vec![lit(0), lit(2)], false)]);
        assert_eq!(listed.partitions, Some([0, 2].into_iter().collect()));
    }
}
