//! `col_description` and `obj_description`, which psql's `\d+` calls and
//! `datafusion-pg-catalog` does not provide. Tributary keeps no comments,
//! so both are NULL, as Postgres answers for an object nobody commented.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

/// Registers both functions in `ctx`.
pub(crate) fn register(ctx: &SessionContext) {
    for (name, second) in [
        ("col_description", DataType::Int64),
        ("obj_description", DataType::Utf8),
    ] {
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64, second],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ));
    }
}
