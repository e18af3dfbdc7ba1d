//! Floats that JSON has no number for: NaN and the infinities are written
//! as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (Postgres's text
//! for them), which the reader takes back for a float column. arrow-json
//! writes them as `null`, which lost them, even in a NOT NULL column.

use datafusion::arrow::array::{Array, ArrowPrimitiveType, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::arrow::json::writer::{Encoder, NullableEncoder};

/// The JSON string for `value` if it is NaN or infinite.
pub(super) fn non_finite_text(value: f64) -> Option<&'static [u8]> {
    if value.is_nan() {
        Some(b"\"NaN\"")
    } else if value == f64::INFINITY {
        Some(b"\"Infinity\"")
    } else if value == f64::NEG_INFINITY {
        Some(b"\"-Infinity\"")
    } else {
        None
    }
}

/// An encoder for a float column that has a NaN or an infinity in it;
/// `None` for any other column (arrow-json writes those as it does).
pub(super) fn encoder(array: &dyn Array) -> Option<NullableEncoder<'_>> {
    let encoder: Box<dyn Encoder + '_> = match array.data_type() {
        DataType::Float64 => float_encoder(array.as_primitive::<Float64Type>())?,
        DataType::Float32 => float_encoder(array.as_primitive::<Float32Type>())?,
        _ => return None,
    };
    Some(NullableEncoder::new(encoder, array.nulls().cloned()))
}

fn float_encoder<T>(values: &PrimitiveArray<T>) -> Option<Box<dyn Encoder + '_>>
where
    T: ArrowPrimitiveType,
    T::Native: lexical_core::ToLexical + Into<f64>,
{
    let any_non_finite = values
        .iter()
        .flatten()
        .any(|v| !Into::<f64>::into(v).is_finite());
    any_non_finite.then(|| Box::new(FloatEncoder { values }) as Box<dyn Encoder>)
}

struct FloatEncoder<'a, T: ArrowPrimitiveType> {
    values: &'a PrimitiveArray<T>,
}

impl<T> Encoder for FloatEncoder<'_, T>
where
    T: ArrowPrimitiveType,
    T::Native: lexical_core::ToLexical + Into<f64>,
{
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.values.value(idx);
        match non_finite_text(value.into()) {
            Some(text) => out.extend_from_slice(text),
            None => {
                let mut buffer = [0u8; lexical_core::BUFFER_SIZE];
                out.extend_from_slice(lexical_core::write(value, &mut buffer));
            }
        }
    }
}
