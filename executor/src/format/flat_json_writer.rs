//! The fast way to write rows of numbers, booleans, strings and timestamps
//! as JSON objects: each row written straight where the caller wants it,
//! byte for byte as arrow-json's line writer (with [`FastTimestamps`])
//! writes it, without the writer's whole-batch buffer and a second copy
//! per row. Other column types, and timestamps outside the years 0 to
//! 9999, are left to arrow-json.
//!
//! [`FastTimestamps`]: super::json_timestamps::FastTimestamps

use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::{max, min};
use datafusion::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType,
};

use super::json_timestamps::{LastSecondText, micros_text};

/// Writes the rows of one batch.
pub(super) struct FlatWriter<'a> {
    fields: Vec<FieldWriter<'a>>,
    /// The second of the last timestamp written.
    last_second: LastSecondText,
}

struct FieldWriter<'a> {
    /// `,"name":`: a comma, then the key as arrow-json writes it.
    key: Vec<u8>,
    /// The same at the start of a fixed-size block, if it fits one.
    short_key: Option<[u8; SHORT]>,
    nulls: Option<&'a NullBuffer>,
    values: Values<'a>,
}

/// One column's values, by type.
enum Values<'a> {
    Boolean(&'a BooleanArray),
    Int16(&'a [i16]),
    Int32(&'a [i32]),
    Int64(&'a [i64]),
    Float32(&'a [f32]),
    Float64(&'a [f64]),
    Utf8(&'a StringArray),
    /// Microseconds, no time zone, every one in the years 0 to 9999.
    Timestamp(&'a [i64]),
}

impl<'a> FlatWriter<'a> {
    /// A writer for `batch`, if every column is of a type it writes.
    pub(super) fn new(batch: &'a RecordBatch) -> Option<Self> {
        let fields = batch
            .schema_ref()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, array)| {
                let values = match array.data_type() {
                    DataType::Boolean => Values::Boolean(array.as_boolean()),
                    DataType::Int16 => Values::Int16(array.as_primitive::<Int16Type>().values()),
                    DataType::Int32 => Values::Int32(array.as_primitive::<Int32Type>().values()),
                    DataType::Int64 => Values::Int64(array.as_primitive::<Int64Type>().values()),
                    DataType::Float32 => {
                        Values::Float32(array.as_primitive::<Float32Type>().values())
                    }
                    DataType::Float64 => {
                        Values::Float64(array.as_primitive::<Float64Type>().values())
                    }
                    DataType::Utf8 => Values::Utf8(array.as_string::<i32>()),
                    DataType::Timestamp(TimeUnit::Microsecond, None) => {
                        let times = array.as_primitive::<TimestampMicrosecondType>();
                        // Both ends written the fast way: all between are.
                        for end in [min(times), max(times)].into_iter().flatten() {
                            micros_text(end, &mut LastSecondText::default())?;
                        }
                        Values::Timestamp(times.values())
                    }
                    _ => return None,
                };
                let mut key = vec![b','];
                serde_json::to_writer(&mut key, field.name()).ok()?;
                key.push(b':');
                let short_key = (key.len() <= SHORT).then(|| {
                    let mut block = [0; SHORT];
                    block[..key.len()].copy_from_slice(&key);
                    block
                });
                Some(FieldWriter {
                    key,
                    short_key,
                    nulls: array.nulls(),
                    values,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            fields,
            last_second: LastSecondText::default(),
        })
    }

    /// Appends row `row` as one JSON object to `out`; NULL fields are left
    /// out.
    pub(super) fn write_row(&mut self, row: usize, out: &mut BytesMut) {
        let mut buffer = [0u8; lexical_core::BUFFER_SIZE];
        let start = out.len();
        for field in &self.fields {
            if field.nulls.is_some_and(|nulls| nulls.is_null(row)) {
                continue;
            }
            match &field.short_key {
                Some(key) => put_short(out, key, field.key.len()),
                None => out.put_slice(&field.key),
            }
            match &field.values {
                Values::Boolean(values) => {
                    out.put_slice(if values.value(row) { b"true" } else { b"false" })
                }
                Values::Int16(values) => {
                    let len = lexical_core::write(values[row], &mut buffer).len();
                    put_short(out, &buffer, len);
                }
                Values::Int32(values) => {
                    let len = lexical_core::write(values[row], &mut buffer).len();
                    put_short(out, &buffer, len);
                }
                Values::Int64(values) => {
                    let len = lexical_core::write(values[row], &mut buffer).len();
                    put_short(out, &buffer, len);
                }
                Values::Float32(values) => write_float(values[row], &mut buffer, out),
                Values::Float64(values) => write_float(values[row], &mut buffer, out),
                Values::Utf8(values) => write_string(values.value(row), out),
                Values::Timestamp(values) => {
                    if let Some((text, len)) = micros_text(values[row], &mut self.last_second) {
                        put_short(out, &text, len);
                    }
                }
            }
        }
        // The first key's comma opens the object.
        match out.get_mut(start) {
            Some(comma) => *comma = b'{',
            None => out.put_u8(b'{'),
        }
        out.put_u8(b'}');
    }
}

/// The fixed-size block that short keys are copied in.
const SHORT: usize = 32;

/// Appends the first `len` bytes of `block` to `out` by copying the whole
/// block, a fixed size, which compiles to a few moves where a copy of
/// `len` bytes would call `memcpy`; what is past `len` is cut off again.
fn put_short<const N: usize>(out: &mut BytesMut, block: &[u8; N], len: usize) {
    out.put_slice(block);
    out.truncate(out.len() - (N - len));
}

/// Writes `text` as a JSON string, as serde_json does: at once when no
/// byte needs escaping (the usual case), else through serde_json.
fn write_string(text: &str, out: &mut BytesMut) {
    if needs_escaping(text.as_bytes()) {
        let _ = serde_json::to_writer((&mut *out).writer(), text);
    } else {
        out.reserve(text.len() + 2);
        out.put_u8(b'"');
        out.put_slice(text.as_bytes());
        out.put_u8(b'"');
    }
}

/// Whether some byte of `bytes` is one JSON escapes: a quote, a
/// backslash or a control character. Each block is checked whole, without
/// a branch per byte, which the compiler vectorizes.
pub(super) fn needs_escaping(bytes: &[u8]) -> bool {
    bytes.chunks(256).any(|block| {
        block.iter().fold(0u8, |found, &b| {
            found | u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\')
        }) != 0
    })
}

/// A float as JSON: a number, or a string for NaN and the infinities
/// ([`super::json_floats`]).
fn write_float<F: lexical_core::ToLexical + Into<f64> + Copy>(
    value: F,
    buffer: &mut [u8; lexical_core::BUFFER_SIZE],
    out: &mut BytesMut,
) {
    match super::json_floats::non_finite_text(value.into()) {
        None => {
            let len = lexical_core::write(value, buffer).len();
            put_short(out, buffer, len);
        }
        Some(text) => out.put_slice(text),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::format::test_support::Random;

    const TEXTS: &[&str] = &[
        "",
        "abc",
        "a\"b",
        "back\\slash",
        "é😀",
        "tab\tnew\nline",
        "\u{1}\u{1f}",
        "</script>",
    ];

    /// `rows` values made by `make`, some NULL.
    fn values<T>(
        random: &mut Random,
        rows: usize,
        mut make: impl FnMut(&mut Random) -> T,
    ) -> Vec<Option<T>> {
        (0..rows)
            .map(|_| {
                let value = make(random);
                random.maybe(value)
            })
            .collect()
    }

    fn batch(random: &mut Random, rows: usize) -> RecordBatch {
        let floats = [0.0, -0.0, 1.5, 1e300, 5e-324, f64::NAN, f64::INFINITY, 0.1];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(values(random, rows, |r| {
                r.next().is_multiple_of(2)
            }))),
            Arc::new(Int16Array::from(values(random, rows, |r| r.next() as i16))),
            Arc::new(Int32Array::from(values(random, rows, |r| r.next() as i32))),
            Arc::new(Int64Array::from(values(random, rows, |r| r.next() as i64))),
            Arc::new(Float32Array::from(values(random, rows, |r| {
                f32::from_bits(r.next() as u32)
            }))),
            Arc::new(Float64Array::from(values(random, rows, |r| {
                match r.next() % 3 {
                    0 => floats[(r.next() % floats.len() as u64) as usize],
                    1 => (r.next() as i64) as f64 / 1000.0,
                    _ => f64::from_bits(r.next()),
                }
            }))),
            Arc::new(StringArray::from(values(random, rows, |r| {
                TEXTS[(r.next() % TEXTS.len() as u64) as usize]
            }))),
            // Years 0 to 9999, in microseconds.
            Arc::new(TimestampMicrosecondArray::from(values(random, rows, |r| {
                (r.next() % 315_537_897_600_000_000) as i64 - 62_167_219_200_000_000
            }))),
        ];
        // A key that fills a short key's block, and one too long for it.
        let names = [
            "a_boolean_whose_name_is_too_long_for_a_block",
            "i16",
            "i32",
            "i64",
            "f32",
            "f64",
            "s\"q",
            "a_timestamp_named_in_28_byte",
        ];
        let fields: Vec<Field> = names
            .iter()
            .zip(&columns)
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn writes_what_arrow_json_writes() {
        let mut random = Random(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let rows = (random.next() % 50) as usize;
            let batch = batch(&mut random, rows);
            let expected = super::super::json::encode_with_arrow_json(&batch).unwrap();
            // What stream inserts write, sliced from one buffer.
            assert_eq!(super::super::json::encode(&batch).unwrap(), expected);
            let mut writer = FlatWriter::new(&batch).expect("plain columns");
            for (row, expected) in expected.iter().enumerate() {
                let mut out = BytesMut::new();
                writer.write_row(row, &mut out);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(expected)
                );
            }
        }
    }

    #[test]
    fn leaves_far_timestamps_and_other_types_to_arrow_json() {
        let far = TimestampMicrosecondArray::from(vec![Some(0), Some(i64::MAX)]);
        let batch = RecordBatch::try_from_iter([("ts", Arc::new(far) as ArrayRef)]).unwrap();
        assert!(FlatWriter::new(&batch).is_none());
        let dates = datafusion::arrow::array::Date32Array::from(vec![1]);
        let batch = RecordBatch::try_from_iter([("d", Arc::new(dates) as ArrayRef)]).unwrap();
        assert!(FlatWriter::new(&batch).is_none());
    }

    #[test]
    fn writes_each_character_as_serde_json_does_wherever_it_stands() {
        // Every character below 0x80 and a few beyond, at places in and
        // across the blocks of 256 bytes that are checked whole.
        let characters = (0u8..0x80)
            .map(char::from)
            .chain(['\u{7f}', 'é', '\u{2028}', '😀']);
        for character in characters {
            for at in [0, 1, 31, 32, 33, 255, 256, 257, 300] {
                let mut text = "x".repeat(at);
                text.push(character);
                text.push_str("tail");
                let mut fast = BytesMut::new();
                write_string(&text, &mut fast);
                assert_eq!(
                    fast,
                    serde_json::to_vec(&text).unwrap(),
                    "{character:?} at {at}"
                );
            }
        }
    }
}
