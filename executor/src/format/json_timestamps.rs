//! Timestamps written into JSON without `core::fmt`: arrow-json writes a
//! timestamp through chrono's `Debug` (`2026-12-03T01:24:11.032222`), one
//! formatted piece at a time, which was the costliest part of encoding a
//! view's changes. [`FastTimestamps`] writes the same text digit by digit.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, PrimitiveArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, TimeUnit, TimestampMicrosecondType};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{Encoder, EncoderFactory, EncoderOptions, NullableEncoder};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::civil::civil_from_days;

/// Encodes `TIMESTAMP` (microseconds, no time zone) columns as arrow-json
/// does, faster, and floats with NaN or infinities in them as strings
/// ([`super::json_floats`]); other columns are left to arrow-json.
#[derive(Debug)]
pub(super) struct FastTimestamps;

impl EncoderFactory for FastTimestamps {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if array.data_type() != &DataType::Timestamp(TimeUnit::Microsecond, None) {
            return Ok(super::json_floats::encoder(array));
        }
        let values = array.as_primitive::<TimestampMicrosecondType>();
        let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
        Ok(Some(NullableEncoder::new(
            Box::new(MicrosEncoder {
                values,
                formatter,
                last: LastSecondText::default(),
            }),
            array.nulls().cloned(),
        )))
    }
}

struct MicrosEncoder<'a> {
    values: &'a PrimitiveArray<TimestampMicrosecondType>,
    /// arrow-json's own way, for what the fast way does not cover.
    formatter: ArrayFormatter<'a>,
    last: LastSecondText,
}

impl Encoder for MicrosEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        if let Some((text, len)) = micros_text(self.values.value(idx), &mut self.last) {
            out.extend_from_slice(&text[..len]);
        } else {
            // Years chrono signs and widens, or beyond its range.
            let _ = write!(out, "\"{}\"", self.formatter.value(idx));
        }
    }
}

/// The text of the last second written, by its seconds since the epoch:
/// a view's rows mostly come in time order, many to a second, so the date
/// and time of day are worked out once per second rather than once per
/// row.
#[derive(Debug, Clone)]
pub(super) struct LastSecondText {
    seconds: i64,
    /// `"YYYY-MM-DDTHH:MM:SS`, opening quote included.
    text: [u8; 20],
}

impl Default for LastSecondText {
    fn default() -> Self {
        Self {
            // No timestamp in microseconds falls in this second.
            seconds: i64::MIN,
            text: [0; 20],
        }
    }
}

/// The `TIMESTAMP` of `micros` quoted, as arrow-json writes it: the text
/// at the start of the array, and its length; `None` outside the years 0
/// to 9999. `last` is the second written before, and becomes this one.
pub(super) fn micros_text(micros: i64, last: &mut LastSecondText) -> Option<([u8; 28], usize)> {
    let seconds = micros.div_euclid(1_000_000);
    if seconds != last.seconds {
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        if !(0..=9999).contains(&year) {
            return None;
        }
        let second_of_day = seconds.rem_euclid(86_400) as u32;
        // As chrono's `Debug` writes it: `YYYY-MM-DDTHH:MM:SS`.
        let text = &mut last.text;
        *text = *b"\"0000-00-00T00:00:00";
        put_digits(&mut text[1..5], year as u32);
        put_digits(&mut text[6..8], month);
        put_digits(&mut text[9..11], day);
        put_digits(&mut text[12..14], second_of_day / 3_600);
        put_digits(&mut text[15..17], second_of_day / 60 % 60);
        put_digits(&mut text[18..20], second_of_day % 60);
        last.seconds = seconds;
    }
    // Then the fraction in 3 or 6 digits, or none when it is 0.
    let mut text = *b"\"0000-00-00T00:00:00.000000\"";
    text[..20].copy_from_slice(&last.text);
    let fraction = micros.rem_euclid(1_000_000) as u32;
    let len = if fraction == 0 {
        20
    } else if fraction.is_multiple_of(1_000) {
        put_digits(&mut text[21..24], fraction / 1_000);
        24
    } else {
        put_digits(&mut text[21..27], fraction);
        27
    };
    text[len] = b'"';
    Some((text, len + 1))
}

/// Writes the last `slot.len()` decimal digits of `value` into `slot`.
fn put_digits(slot: &mut [u8], mut value: u32) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::json::writer::{LineDelimited, WriterBuilder};

    use super::*;

    fn encode(batch: &RecordBatch, fast: bool) -> String {
        let mut builder = WriterBuilder::new();
        if fast {
            builder = builder.with_encoder_factory(Arc::new(FastTimestamps));
        }
        let mut writer = builder.build::<_, LineDelimited>(Vec::new());
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        String::from_utf8(writer.into_inner()).unwrap()
    }

    #[test]
    fn timestamps_read_as_arrow_json_writes_them() {
        let micros = [
            Some(0),
            Some(1_796_261_048_195_232),
            Some(1_796_261_048_195_000),
            Some(1_796_261_048_000_000),
            Some(-1),
            Some(-62_135_596_800_000_000), // 0001-01-01
            Some(-62_167_219_200_000_001), // just before year 0
            Some(253_402_300_800_000_000), // 10000-01-01
            Some(951_782_400_123_456),     // 2000-02-29
            None,
            Some(i64::MAX),
            // Runs within one second, as the last second is reused.
            Some(1_796_261_048_195_232),
            Some(1_796_261_048_000_000),
            Some(1_796_261_048_999_999),
            Some(1_796_261_049_000_000),
            Some(1_796_261_049_000_001),
            Some(-1_000_000),
            Some(-999_999),
            Some(-1),
            Some(0),
        ];
        let schema = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(TimestampMicrosecondArray::from(micros.to_vec()))],
        )
        .unwrap();
        let fast = encode(&batch, true);
        assert_eq!(fast, encode(&batch, false));
        assert!(
            fast.contains(r#"{"at":"2026-12-03T01:24:08.195232"}"#),
            "{fast}"
        );
    }
}
