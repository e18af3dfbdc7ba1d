//! `convert_from(bytes, 'UTF8')`: a raw stream's bytes as text, as in
//! Postgres. Only UTF-8 is supported; invalid UTF-8 is an error (22021 in
//! Postgres; here the message names the problem).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, not_impl_err};
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};

pub(super) fn udf() -> ScalarUDF {
    create_udf(
        "convert_from",
        vec![DataType::Binary, DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let (Some(bytes), Some(encodings)) = (arrays.first(), arrays.get(1)) else {
                return exec_err!("convert_from takes (bytes, encoding)");
            };
            let bytes = cast(bytes, &DataType::Binary)?;
            let bytes = bytes.as_binary::<i32>();
            let encodings = cast(encodings, &DataType::Utf8)?;
            let encodings = encodings.as_string::<i32>();
            let mut out = Vec::with_capacity(bytes.len());
            for i in 0..bytes.len() {
                if !encodings.is_null(i) {
                    let encoding = encodings
                        .value(i)
                        .to_ascii_lowercase()
                        .replace(['-', '_'], "");
                    if encoding != "utf8" {
                        return not_impl_err!(
                            "convert_from with encoding {} (only UTF8)",
                            encodings.value(i)
                        );
                    }
                }
                if bytes.is_null(i) || encodings.is_null(i) {
                    out.push(None);
                    continue;
                }
                match std::str::from_utf8(bytes.value(i)) {
                    Ok(text) => out.push(Some(text.to_string())),
                    Err(e) => return exec_err!("invalid byte sequence for encoding \"UTF8\": {e}"),
                }
            }
            Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
        }),
    )
}
