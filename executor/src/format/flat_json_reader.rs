//! The fast way to decode the JSON values streams usually hold: one flat
//! object per record whose fields are numbers, booleans, strings and
//! timestamps, each read once straight into its column's Arrow builder.
//! arrow-json first lays every value of the record on a tape and then
//! converts the tape column by column, which was half of a simple view's
//! work.
//!
//! It accepts a subset of what arrow-json accepts and, where it accepts,
//! decodes to the same arrays; a test compares the two on generated
//! records. Anything else makes it give up on the whole chunk and the
//! caller decodes with arrow-json, which also words the error: a column
//! type it does not know, a value of another JSON type than its column's
//! (a string for a number, `1.0` for an integer), a timestamp with an
//! offset, a key with escapes or seen twice, invalid JSON.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, StringArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use tributary_planner::types::UTC;
use tributary_storage::records::RecordRef;

use super::civil::days_from_civil;
use super::flat_json_writer::needs_escaping;

/// Columns at most: a row notes the columns it set as bits of a `u64`.
const MAX_COLUMNS: usize = 64;

/// Nesting at most inside a field no column reads.
const MAX_DEPTH: usize = 32;

/// Decodes each record's value (a missing value is `{}`) into one array per
/// field of `schema`, or `None` where the fast way does not apply.
pub(super) fn decode(schema: &SchemaRef, records: &[RecordRef<'_>]) -> Option<Vec<ArrayRef>> {
    let fields = schema.fields();
    if fields.len() > MAX_COLUMNS {
        return None;
    }
    // A key maps to the first field of its name, as in arrow-json; the
    // fast way assumes the names differ (CREATE refuses duplicates).
    let distinct = fields
        .iter()
        .enumerate()
        .all(|(i, f)| fields[..i].iter().all(|g| g.name() != f.name()));
    let text_bytes: usize = records.iter().map(|r| r.value.map_or(0, <[u8]>::len)).sum();
    // Text columns have 32-bit offsets; beyond them arrow-json words the
    // error.
    if !distinct || text_bytes > i32::MAX as usize {
        return None;
    }
    let mut columns = fields
        .iter()
        .map(|f| {
            f.is_nullable()
                .then(|| Column::new(f.data_type(), records.len(), text_bytes))?
        })
        .collect::<Option<Vec<_>>>()?;
    let keys = Keys::new(fields.iter().map(|f| f.name().as_bytes()).collect());
    let mut scratch = Scratch::default();
    for record in records {
        let value = record.value.unwrap_or(b"{}");
        // arrow-json reads only UTF-8. Checked once here (at once where
        // all is ASCII), and text columns are checked again as a whole
        // when they become strings.
        if !value.is_ascii() {
            std::str::from_utf8(value).ok()?;
        }
        let mut input = Input {
            bytes: value,
            at: 0,
        };
        let set = input.object(&keys, &mut columns, &mut scratch)?;
        input.skip_whitespace();
        if input.at != value.len() {
            return None;
        }
        for (n, column) in columns.iter_mut().enumerate() {
            if set & (1 << n) == 0 {
                column.append_null();
            }
        }
    }
    columns.into_iter().map(Column::finish).collect()
}

/// The columns' names, as the keys of an object.
struct Keys<'a> {
    names: Vec<&'a [u8]>,
    /// Each name quoted and followed by a colon, as a key usually stands
    /// (`"name":`), where the name needs no escaping in JSON: a key that
    /// starts so is that name.
    quoted: Vec<Option<Vec<u8>>>,
}

impl<'a> Keys<'a> {
    fn new(names: Vec<&'a [u8]>) -> Self {
        let quoted = names
            .iter()
            .map(|name| (!needs_escaping(name)).then(|| [&b"\""[..], name, b"\":"].concat()))
            .collect();
        Self { names, quoted }
    }
}

/// One column's builder, by its type.
enum Column {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    /// Text, as bytes until it is finished.
    Utf8(BinaryBuilder),
    /// Microseconds, without a time zone or in UTC.
    Timestamp(TimestampMicrosecondBuilder),
}

impl Column {
    /// A builder for `rows` values of `data_type`, if it is one the fast
    /// way decodes; `text_bytes` bounds what strings take.
    fn new(data_type: &DataType, rows: usize, text_bytes: usize) -> Option<Self> {
        Some(match data_type {
            DataType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Int16 => Self::Int16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => Self::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => Self::Float32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            DataType::Utf8 => Self::Utf8(BinaryBuilder::with_capacity(rows, text_bytes)),
            DataType::Timestamp(TimeUnit::Microsecond, zone)
                if zone.as_deref().is_none_or(|z| z == UTC || z == "UTC") =>
            {
                Self::Timestamp(
                    TimestampMicrosecondBuilder::with_capacity(rows)
                        .with_data_type(data_type.clone()),
                )
            }
            _ => return None,
        })
    }

    fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
        }
    }

    /// The array; `None` if text is not UTF-8.
    fn finish(self) -> Option<ArrayRef> {
        Some(match self {
            Self::Boolean(mut b) => Arc::new(b.finish()),
            Self::Int16(mut b) => Arc::new(b.finish()),
            Self::Int32(mut b) => Arc::new(b.finish()),
            Self::Int64(mut b) => Arc::new(b.finish()),
            Self::Float32(mut b) => Arc::new(b.finish()),
            Self::Float64(mut b) => Arc::new(b.finish()),
            Self::Utf8(mut b) => Arc::new(StringArray::try_from_binary(b.finish()).ok()?),
            Self::Timestamp(mut b) => Arc::new(b.finish()),
        })
    }
}

/// What decoding keeps from one record to the next.
#[derive(Debug, Default)]
struct Scratch {
    /// A string with escapes, unescaped.
    text: Vec<u8>,
    /// The last timestamp's second.
    last_second: LastSecond,
}

/// One record's value, read from `at` on.
struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Input<'a> {
    /// Reads one object, appending each field a column reads to it; returns
    /// the columns set, as bits.
    fn object(
        &mut self,
        keys: &Keys<'_>,
        columns: &mut [Column],
        scratch: &mut Scratch,
    ) -> Option<u64> {
        self.skip_whitespace();
        self.expect(b'{')?;
        self.skip_whitespace();
        let mut set = 0u64;
        if self.eat(b'}') {
            return Some(set);
        }
        // Fields usually come in the columns' order: try the next first.
        let mut next = 0;
        loop {
            self.skip_whitespace();
            let column = match keys.quoted.get(next) {
                Some(Some(quoted)) if starts_with(&self.bytes[self.at..], quoted) => {
                    self.at += quoted.len();
                    Some(next)
                }
                _ => self.key(keys)?,
            };
            self.skip_whitespace();
            match column {
                Some(n) => {
                    if set & (1 << n) != 0 {
                        return None;
                    }
                    set |= 1 << n;
                    self.value_into(&mut columns[n], scratch)?;
                    next = n + 1;
                }
                None => self.skip_value(0)?,
            }
            self.skip_whitespace();
            match self.next_byte()? {
                b',' => {}
                b'}' => return Some(set),
                _ => return None,
            }
        }
    }

    /// Reads a key and the colon after it: the column of that name, if
    /// there is one.
    fn key(&mut self, keys: &Keys<'_>) -> Option<Option<usize>> {
        let (key, escaped) = self.string()?;
        if escaped {
            return None;
        }
        self.skip_whitespace();
        self.expect(b':')?;
        Some(keys.names.iter().position(|name| *name == key))
    }

    /// Reads one value into `column`.
    fn value_into(&mut self, column: &mut Column, scratch: &mut Scratch) -> Option<()> {
        if self.bytes.get(self.at) == Some(&b'n') {
            self.literal(b"null")?;
            column.append_null();
            return Some(());
        }
        match column {
            Column::Boolean(b) => {
                let value = self.bytes.get(self.at) == Some(&b't');
                self.literal(if value { b"true" } else { b"false" })?;
                b.append_value(value);
            }
            Column::Int16(b) => b.append_value(i16::try_from(self.integer()?).ok()?),
            Column::Int32(b) => b.append_value(i32::try_from(self.integer()?).ok()?),
            Column::Int64(b) => b.append_value(self.integer()?),
            Column::Float32(b) => b.append_value(finite(self.number()?.parse::<f32>().ok()?)?),
            Column::Float64(b) => b.append_value(finite(self.number()?.parse::<f64>().ok()?)?),
            Column::Utf8(b) => {
                let (raw, escaped) = self.string()?;
                if escaped {
                    scratch.text.clear();
                    unescape(raw, &mut scratch.text)?;
                    b.append_value(&scratch.text);
                } else {
                    b.append_value(raw);
                }
            }
            Column::Timestamp(b) => {
                let micros = if self.bytes.get(self.at) == Some(&b'"') {
                    let (raw, escaped) = self.string()?;
                    if escaped {
                        return None;
                    }
                    timestamp_micros(raw, &mut scratch.last_second)?
                } else {
                    self.integer()?
                };
                b.append_value(micros);
            }
        }
        Some(())
    }

    /// A JSON integer (no fraction, no exponent) that fits an `i64`.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.eat(b'-');
        let magnitude = match self.next_byte()? {
            b'0' => 0,
            first @ b'1'..=b'9' => {
                let mut magnitude = u64::from(first - b'0');
                while let Some(&digit @ b'0'..=b'9') = self.bytes.get(self.at) {
                    magnitude = magnitude
                        .checked_mul(10)?
                        .checked_add(u64::from(digit - b'0'))?;
                    self.at += 1;
                }
                magnitude
            }
            _ => return None,
        };
        if self.number_goes_on() {
            return None;
        }
        if negative {
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(magnitude).ok()
        }
    }

    /// Whether a byte follows that arrow-json would read as part of the
    /// number before it (so `01`, `1-2` or `1.5` where an integer is
    /// wanted are not ours).
    fn number_goes_on(&self) -> bool {
        self.bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
    }

    /// The text of one JSON number, checked against JSON's grammar.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.eat(b'-');
        match self.next_byte()? {
            b'0' => {}
            b'1'..=b'9' => self.skip_digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.digits()?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits()?;
        }
        if self.number_goes_on() {
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.at]).ok()
    }

    /// One or more digits.
    fn digits(&mut self) -> Option<()> {
        if !self.bytes.get(self.at)?.is_ascii_digit() {
            return None;
        }
        self.skip_digits();
        Some(())
    }

    fn skip_digits(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    /// A string's bytes between its quotes, and whether they hold escapes
    /// (checked to be valid ones).
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            let found = quote_or_backslash(&self.bytes[self.at..])?;
            self.at += found + 1;
            if self.bytes[self.at - 1] == b'"' {
                return Some((&self.bytes[start..self.at - 1], escaped));
            }
            escaped = true;
            match self.next_byte()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                b'u' => {
                    let hex = self.bytes.get(self.at..self.at + 4)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 4;
                }
                _ => return None,
            }
        }
    }

    /// Steps over a string, checking that its surrogates pair, as arrow-json
    /// does.
    fn skip_string(&mut self) -> Option<()> {
        let (raw, escaped) = self.string()?;
        if escaped {
            unescape(raw, &mut Vec::new())?;
        }
        Some(())
    }

    /// Steps over one value of any kind, checking its grammar.
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        match *self.bytes.get(self.at)? {
            b'"' => self.skip_string()?,
            b'n' => self.literal(b"null")?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'[' | b'{' if depth < MAX_DEPTH => {
                let object = self.next_byte()? == b'{';
                let close = if object { b'}' } else { b']' };
                self.skip_whitespace();
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    self.skip_whitespace();
                    if object {
                        self.skip_string()?;
                        self.skip_whitespace();
                        self.expect(b':')?;
                        self.skip_whitespace();
                    }
                    self.skip_value(depth + 1)?;
                    self.skip_whitespace();
                    match self.next_byte()? {
                        b',' => {}
                        b if b == close => break,
                        _ => return None,
                    }
                }
            }
            _ => {
                self.number()?;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(())
    }

    fn skip_whitespace(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.at += 1;
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// Steps over `b` if it is next.
    fn eat(&mut self, b: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&b);
        if next {
            self.at += 1;
        }
        next
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }
}

/// Whether `bytes` starts with `prefix`, compared in line: keys are
/// short, and a call to `memcmp` costs more than comparing them. From 8
/// bytes on they are compared a word at a time, the last word overlapping
/// the one before.
fn starts_with(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = prefix.len();
    let Some(bytes) = bytes.get(..n) else {
        return false;
    };
    if n < 8 {
        return bytes
            .iter()
            .zip(prefix)
            .fold(true, |same, (a, b)| same & (a == b));
    }
    // Whole words; the last one overlaps the one before.
    let mut at = 0;
    while at + 8 < n {
        if word(bytes, at) != word(prefix, at) {
            return false;
        }
        at += 8;
    }
    word(bytes, n - 8) == word(prefix, n - 8)
}

/// Where the first `"` or `\` of `bytes` is. Most strings of a record are
/// short: their first bytes are looked at a word at a time, and only a
/// long string is handed to `memchr`, whose vector search costs more to
/// start.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    // Bytes equal to `b` get their high bit set; the lowest such bit
    // is exact (only bits above a match can be set wrongly).
    let matches = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut at = 0;
    while at < 32
        && let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>)
    {
        let word = u64::from_le_bytes(*chunk);
        let found = matches(word, b'"') | matches(word, b'\\');
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', &bytes[at..]).map(|i| at + i)
}

/// The 8 bytes of `text` from `at` on, as one word.
#[inline]
fn word(text: &[u8], at: usize) -> u64 {
    text[at..]
        .first_chunk::<8>()
        .map_or(0, |w| u64::from_le_bytes(*w))
}

fn finite<F: Into<f64> + Copy>(value: F) -> Option<F> {
    value.into().is_finite().then_some(value)
}

/// Appends the string `raw` (escapes already checked) stands for to `out`;
/// `None` for a `\u` escape that is half a surrogate pair.
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'\\', rest) {
        out.extend_from_slice(&rest[..at]);
        let escape = rest[at + 1];
        rest = &rest[at + 2..];
        let byte = match escape {
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let high = hex4(rest)?;
                rest = &rest[4..];
                let c = match char::from_u32(u32::from(high)) {
                    Some(c) => c,
                    None => {
                        let low = rest.strip_prefix(b"\\u").and_then(hex4)?;
                        rest = &rest[6..];
                        if !(0xD800..=0xDBFF).contains(&high) || !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        let high_bits = u32::from(high) - 0xD800;
                        char::from_u32(0x1_0000 + (high_bits << 10) + (u32::from(low) - 0xDC00))?
                    }
                };
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            // `"`, `\` and `/` stand for themselves.
            other => other,
        };
        out.push(byte);
    }
    out.extend_from_slice(rest);
    Some(())
}

fn hex4(bytes: &[u8]) -> Option<u16> {
    u16::from_str_radix(std::str::from_utf8(bytes.get(..4)?).ok()?, 16).ok()
}

/// The date and time of day of the last timestamp read, and its seconds
/// since the epoch: a stream's records mostly come in time order, many to a
/// second, so that part of the text is parsed once per second rather than
/// once per record.
#[derive(Debug, Default)]
struct LastSecond {
    /// `YYYY-MM-DD[T ]HH:MM:SS`, as it was written.
    text: [u8; 19],
    /// What `text` stands for; `None` before the first timestamp.
    seconds: Option<i64>,
}

/// Microseconds since the epoch of `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z]`
/// (one to nine fraction digits; a `Z` or none, both UTC), as arrow-json
/// reads it; `None` for any other form or an impossible date or time.
fn timestamp_micros(text: &[u8], last: &mut LastSecond) -> Option<i64> {
    let text = text.strip_suffix(b"Z").unwrap_or(text);
    let (date_time, fraction) = text.split_at_checked(19)?;
    let seconds = match last.seconds {
        Some(seconds) if starts_with(date_time, &last.text) => seconds,
        _ => {
            let seconds = seconds_since_epoch(date_time)?;
            last.text.copy_from_slice(date_time);
            last.seconds = Some(seconds);
            seconds
        }
    };
    let micros_of_second = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            // Nanoseconds, then truncated to microseconds as chrono does.
            i64::from(decimal(digits)? * 10u32.pow(9 - digits.len() as u32) / 1_000)
        }
        _ => return None,
    };
    Some(seconds * 1_000_000 + micros_of_second)
}

/// Seconds since the epoch of `YYYY-MM-DD[T ]HH:MM:SS` (19 bytes), if it
/// is a possible date and time.
fn seconds_since_epoch(text: &[u8]) -> Option<i64> {
    if text.len() != 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b'T' | b' ')
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let number = |from: usize, to: usize| decimal(&text[from..to]);
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(
        days_from_civil(year as i64, month, day) * 86_400
            + i64::from(hour * 3_600 + minute * 60 + second),
    )
}

/// The value of a run of at most nine decimal digits; `None` if a byte is
/// not a digit.
fn decimal(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Field, Int64Type, Schema};

    use super::*;
    use crate::format::test_support::{Random, records};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i16", DataType::Int16, true),
            Field::new("i32", DataType::Int32, true),
            // Longer names, so that keys are also compared by words.
            Field::new("integer_of_64_bits", DataType::Int64, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("some_text", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                true,
            ),
        ]))
    }

    const BOOLEANS: &[&str] = &["true", "false", "null", "1", "\"true\"", "tru"];
    const INTEGERS: &[&str] = &[
        "0",
        "-0",
        "42",
        "-17",
        "32767",
        "32768",
        "-32769",
        "2147483648",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.0",
        "1e3",
        "01",
        "\"5\"",
        "null",
        "true",
        "-",
        "1-2",
    ];
    const FLOATS: &[&str] = &[
        "0",
        "-0.0",
        "1.5",
        "1e10",
        "-2.5E-3",
        "1e400",
        "3.4028236e38",
        "0.1",
        "123456789012345678901",
        "\"1.5\"",
        ".5",
        "1.",
        "1e",
        "null",
        "2.2250738585072011e-308",
        "0.30000000000000004",
    ];
    /// The first nine are strings the fast way reads.
    const STRINGS: &[&str] = &[
        "\"\"",
        "\"abc\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\ud83d\\ude00\"",
        "\"é😀\"",
        "\"tab\\t\\n\\r\\b\\f\"",
        "\"\\/\\\\\"",
        "\"raw\ttab\"",
        "\"\\ud83d\"",
        "\"\\ud840\\udc00\"",
        "\"\\udc00x\"",
        "\"\\q\"",
        "\"\\u12\"",
        "1",
        "null",
    ];
    const UNKNOWN: &[&str] = &[
        "{\"x\": [1, {\"y\": null}], \"z\": \"\"}",
        "[]",
        "[1,2",
        "{}",
        "\"\\ud800\"",
        "-1.5e-7",
        "[true, false, null, \"\\u0041\"]",
        "{\"\\ud800\": 1}",
        "nul",
    ];

    /// A timestamp's text: in a form the fast way reads, when `clean`, or
    /// in many forms, right and wrong.
    fn timestamp(random: &mut Random, clean: bool) -> String {
        if !clean && random.below(6) == 0 {
            return random
                .pick(&[
                    "1700000000000000",
                    "-5",
                    "1.5",
                    "null",
                    "\"2026-12-03\"",
                    "true",
                ])
                .to_string();
        }
        let fraction = match random.below(if clean { 10 } else { 11 }) {
            0 => String::new(),
            digits => format!(".{}", &format!("{:010}", random.next())[..digits]),
        };
        let (months, days, hours, seconds) = if clean {
            (12, 28, 24, 60)
        } else {
            (13, 31, 25, 61)
        };
        format!(
            "\"{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}{fraction}{}\"",
            random.below(10_000),
            random.below(months) + 1,
            random.below(days) + 1,
            random.pick(if clean { &["T", " "] } else { &["T", " ", "t"] }),
            random.below(hours),
            random.below(60),
            random.below(seconds),
            random.pick(if clean {
                &["", "Z"]
            } else {
                &["", "", "Z", "+01:00", "z"]
            }),
        )
    }

    fn value(random: &mut Random, column: usize, clean: bool) -> String {
        let odd = !clean && random.below(2) == 0;
        match column {
            0 if odd => random.pick(BOOLEANS).to_string(),
            0 => random.pick(&BOOLEANS[..3]).to_string(),
            1..=3 if odd => random.pick(INTEGERS).to_string(),
            1..=3 => (random.next() as i16 as i64 >> random.below(16)).to_string(),
            4 | 5 if odd => random.pick(FLOATS).to_string(),
            4 | 5 => match random.below(3) {
                0 => format!("{:e}", random.next() as i64 as f64 / 3.0),
                1 => format!("{}", random.next() as f32 / 7.0),
                _ => random
                    .pick(&["0", "-0.0", "0.1", "1e10", "null"])
                    .to_string(),
            },
            6 if odd => random.pick(STRINGS).to_string(),
            6 => random.pick(&STRINGS[..9]).to_string(),
            _ => timestamp(random, clean),
        }
    }

    /// One record's value: the columns in any order, some missing, some
    /// unknown; unless `clean`, now and then a duplicate, odd spacing or a
    /// broken object.
    fn record(random: &mut Random, names: &[&str], clean: bool) -> String {
        match random.below(if clean { 100 } else { 40 }) {
            0 if !clean => {
                return random
                    .pick(&["[]", "", "{} {}", "{\"b\":true,}", "{", "1"])
                    .into();
            }
            1 => return " {} ".into(),
            _ => {}
        }
        let space = |random: &mut Random| random.pick(&["", "", "", " ", "\n\t "]).to_string();
        let mut fields = Vec::new();
        for (n, name) in names.iter().enumerate() {
            if random.below(8) != 0 {
                fields.push(format!(
                    "\"{name}\"{}:{}{}",
                    space(random),
                    space(random),
                    value(random, n, clean)
                ));
            }
        }
        if random.below(4) == 0 {
            let unknown = if clean { &UNKNOWN[..1] } else { UNKNOWN };
            // Another key, or one that starts as a column's name does.
            let key = match random.below(3) {
                0 => format!("{}x", random.pick(names)),
                _ => "other".to_string(),
            };
            fields.push(format!("\"{key}\":{}", random.pick(unknown)));
        }
        if !clean && random.below(20) == 0 {
            let n = random.below(names.len());
            fields.push(format!("\"{}\":{}", names[n], value(random, n, clean)));
        }
        if random.below(3) == 0 {
            let n = random.below(fields.len() + 1);
            let m = random.below(fields.len() + 1);
            if n < fields.len() && m < fields.len() {
                fields.swap(n, m);
            }
        }
        let separator = format!("{},{}", space(random), space(random));
        format!(
            "{}{{{}}}{}",
            space(random),
            fields.join(&separator),
            space(random)
        )
    }

    fn text(values: &[Option<Vec<u8>>]) -> String {
        let texts: Vec<_> = values
            .iter()
            .map(|v| v.as_deref().map(String::from_utf8_lossy))
            .collect();
        format!("{texts:?}")
    }

    #[test]
    fn decodes_as_arrow_json_does_wherever_it_decodes() {
        let schema = schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let (mut fast, mut chunks) = (0, 0);
        for chunk in 0..20_000u32 {
            // Every other chunk holds only what the fast way must read.
            let clean = chunk.is_multiple_of(2);
            let values: Vec<Option<Vec<u8>>> = (0..random.below(4) + 1)
                .map(|_| match random.below(30) {
                    0 => None,
                    _ => Some(record(&mut random, &names, clean).into_bytes()),
                })
                .collect();
            let records = records(values.iter().map(Option::as_deref));
            let reference = super::super::json::decode_wire(&schema, &records);
            chunks += 1;
            let Some(arrays) = decode(&schema, &records) else {
                assert!(!clean, "the fast way gave up on {}", text(&values));
                continue;
            };
            fast += 1;
            let reference = reference.unwrap_or_else(|e| {
                panic!(
                    "arrow-json refuses what the fast way read ({e}): {}",
                    text(&values)
                )
            });
            for ((array, expected), field) in arrays.iter().zip(&reference).zip(schema.fields()) {
                assert_eq!(
                    array.to_data(),
                    expected.to_data(),
                    "column {} of {}",
                    field.name(),
                    text(&values)
                );
            }
        }
        // Some chunks with odd values are read fast too.
        assert!(fast * 2 > chunks, "{fast} of {chunks} chunks decoded fast");
    }

    #[test]
    fn decodes_what_the_encoder_writes() {
        let schema = schema();
        let text = concat!(
            r#"{"b":true,"i16":-3,"i32":70000,"integer_of_64_bits":-9223372036854775808,"#,
            r#""f32":1.5,"f64":-2.5e-3,"some_text":"a\"b\u00e9\ud83d\ude00","#,
            r#""ts":"2026-12-03T01:24:11.032222","#,
            r#""tz":"1969-12-31T23:59:59.5Z"}"#
        );
        let records = records([Some(text.as_bytes()), None]);
        let arrays = decode(&schema, &records).expect("the fast way reads it");
        let reference = super::super::json::decode_wire(&schema, &records).unwrap();
        for (array, expected) in arrays.iter().zip(&reference) {
            assert_eq!(array.to_data(), expected.to_data());
            assert!(array.is_null(1));
        }
    }

    #[test]
    fn timestamps_of_one_second_read_as_arrow_json_reads_them() {
        // Runs of one second in its forms, with the impossible ones between
        // them, each chunk in turn and all at once.
        let texts = [
            "2026-12-03 17:20:59.123",
            "2026-12-03 17:20:59",
            "2026-12-03 17:20:59.9Z",
            "2026-12-03T17:20:59.000001",
            "2026-12-03 17:20:59.123",
            "2026-12-03 17:20:58.25",
            "2026-12-03 17:21:00.5",
            "2026-02-30 17:20:59",
            "2026-02-30 17:20:59",
            "2026-12-03 17:20:59+01:00",
            "2026-12-03 17:20:5",
            "2026-12-03 17:20:59.",
            "2024-02-29 00:00:00.25",
            "2026-12-03 17:20:59.1234567891",
        ];
        let schema = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let values: Vec<String> = texts.iter().map(|t| format!(r#"{{"at":"{t}"}}"#)).collect();
        let chunks = values.iter().map(std::slice::from_ref);
        for chunk in chunks.chain([&values[..4], &values[..7], &values[..]]) {
            let records = records(chunk.iter().map(|v| Some(v.as_bytes())));
            let reference = super::super::json::decode_wire(&schema, &records);
            match decode(&schema, &records) {
                Some(arrays) => assert_eq!(
                    arrays[0].to_data(),
                    reference.expect("arrow-json reads it")[0].to_data(),
                    "{chunk:?}"
                ),
                // The fast way may give up (then arrow-json decodes, or
                // words the error), but not on the plain forms.
                None => assert!(chunk.len() < 4 || chunk.len() > 7, "gave up on {chunk:?}"),
            }
        }
    }

    #[test]
    fn quotes_and_backslashes_are_found_wherever_they_stand() {
        for len in 0..80 {
            for at in 0..=len {
                for stop in [b'"', b'\\'] {
                    // Bytes next to the ones looked for, and one of each
                    // after the first.
                    let mut bytes: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b'[', b']', 0x80][i % 5])
                        .collect();
                    if at < len {
                        bytes[at] = stop;
                        bytes.extend_from_slice(b"\\\"");
                    }
                    let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\');
                    assert_eq!(quote_or_backslash(&bytes), expected, "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn keys_are_told_apart_at_every_byte() {
        let name = "a_column_name_of_23_byte";
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new(name, DataType::Int64, true),
        ]));
        for at in 0..name.len() {
            let mut other = name.as_bytes().to_vec();
            other[at] = b'X';
            let other = String::from_utf8(other).unwrap();
            let value = format!(r#"{{"n":1,"{other}":2,"{name}":3}}"#);
            let records = records([Some(value.as_bytes())]);
            let arrays = decode(&schema, &records).expect("the fast way reads it");
            let read = arrays[1].as_primitive::<Int64Type>();
            assert_eq!(read.value(0), 3, "{other}");
        }
    }

    #[test]
    fn surrogate_pairs_read_the_same_both_ways() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        for (value, expected) in [
            (&br#"{"s":"\ud840\udc00"}"#[..], "\u{20000}"),
            (br#"{"s":"\ud83d\ude00"}"#, "😀"),
        ] {
            let records = records([Some(value)]);
            let fast = decode(&schema, &records).unwrap();
            let slow = super::super::json::decode_wire(&schema, &records).unwrap();
            for arrays in [fast, slow] {
                let strings = arrays[0].as_any().downcast_ref::<StringArray>().unwrap();
                assert_eq!(strings.value(0), expected);
            }
        }
    }

    #[test]
    fn leaves_other_column_types_and_required_columns_to_arrow_json() {
        let records = records([Some(&br#"{"d":"2026-12-03"}"#[..])]);
        let date = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(decode(&date, &records).is_none());
        let required = Arc::new(Schema::new(vec![Field::new("d", DataType::Utf8, false)]));
        assert!(decode(&required, &records).is_none());
        let twice = Arc::new(Schema::new(vec![
            Field::new("d", DataType::Utf8, true),
            Field::new("d", DataType::Utf8, true),
        ]));
        assert!(decode(&twice, &records).is_none());
    }
}
