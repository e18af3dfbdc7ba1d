//! Splitting `COPY` data into records and fields: Postgres's text format
//! (backslash escapes, `\N` for NULL) and csv (quotes, quoted newlines).

use tributary_planner::{CopyFormat, CopyFrom};

/// Reads records of one format.
#[derive(Debug, Clone)]
pub(crate) struct RecordReader {
    format: CopyFormat,
    delimiter: u8,
    null: Vec<u8>,
    quote: u8,
    escape: u8,
}

/// The line that ends the data in the text protocol (`\.`).
const END_MARKER: &[u8] = b"\\.";

impl RecordReader {
    /// A reader for the options of one `COPY`.
    pub(crate) fn new(copy: &CopyFrom) -> Self {
        Self {
            format: copy.format,
            delimiter: copy.delimiter,
            null: copy.null.as_bytes().to_vec(),
            quote: copy.quote,
            escape: copy.escape,
        }
    }

    /// The length of the first complete record in `data`, including its
    /// newline, or `None` if `data` holds no complete record yet. A newline
    /// inside a quoted csv field does not end the record.
    pub(crate) fn record_len(&self, data: &[u8]) -> Option<usize> {
        match self.format {
            CopyFormat::Text => data.iter().position(|b| *b == b'\n').map(|at| at + 1),
            CopyFormat::Csv => {
                let mut in_quotes = false;
                let mut i = 0;
                while i < data.len() {
                    let byte = data[i];
                    if in_quotes {
                        if byte == self.escape && self.escape != self.quote {
                            i += 1;
                        } else if byte == self.quote {
                            in_quotes = false;
                        }
                    } else if byte == self.quote {
                        in_quotes = true;
                    } else if byte == b'\n' {
                        return Some(i + 1);
                    }
                    i += 1;
                }
                None
            }
        }
    }

    /// Whether a record (without its newline) is the `\.` end marker.
    pub(crate) fn is_end_marker(record: &[u8]) -> bool {
        strip_line_end(record) == END_MARKER
    }

    /// Calls `field` with each field of one record (its newline may be
    /// included): `None` for NULL. `scratch` is reused between calls.
    pub(crate) fn fields(
        &self,
        record: &[u8],
        scratch: &mut Vec<u8>,
        mut field: impl FnMut(Option<&[u8]>) -> Result<(), String>,
    ) -> Result<(), String> {
        let record = strip_line_end(record);
        match self.format {
            CopyFormat::Text => self.text_fields(record, scratch, &mut field),
            CopyFormat::Csv => self.csv_fields(record, scratch, &mut field),
        }
    }

    fn text_fields(
        &self,
        record: &[u8],
        scratch: &mut Vec<u8>,
        field: &mut impl FnMut(Option<&[u8]>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut start = 0;
        loop {
            // Find the end of this field: the next delimiter not escaped.
            let mut end = start;
            while end < record.len() && record[end] != self.delimiter {
                end += if record[end] == b'\\' { 2 } else { 1 };
            }
            let end = end.min(record.len());
            let raw = &record[start..end];
            if raw == self.null.as_slice() {
                field(None)?;
            } else {
                unescape_text(raw, scratch)?;
                field(Some(scratch))?;
            }
            if end >= record.len() {
                return Ok(());
            }
            start = end + 1;
        }
    }

    fn csv_fields(
        &self,
        record: &[u8],
        scratch: &mut Vec<u8>,
        field: &mut impl FnMut(Option<&[u8]>) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut i = 0;
        loop {
            scratch.clear();
            let mut quoted = false;
            let mut in_quotes = false;
            let start = i;
            while i < record.len() {
                let byte = record[i];
                if in_quotes {
                    let next = record.get(i + 1).copied();
                    if byte == self.escape
                        && (next == Some(self.quote) || next == Some(self.escape))
                        && (self.escape != self.quote || next == Some(self.quote))
                    {
                        scratch.push(record[i + 1]);
                        i += 2;
                        continue;
                    }
                    if byte == self.quote {
                        in_quotes = false;
                    } else {
                        scratch.push(byte);
                    }
                } else if byte == self.quote {
                    in_quotes = true;
                    quoted = true;
                } else if byte == self.delimiter {
                    break;
                } else {
                    scratch.push(byte);
                }
                i += 1;
            }
            if in_quotes {
                return Err("unterminated CSV quoted field".into());
            }
            // An unquoted field spelled like NULL is NULL; a quoted one is
            // the text itself.
            if !quoted && &record[start..i] == self.null.as_slice() {
                field(None)?;
            } else {
                field(Some(scratch))?;
            }
            if i >= record.len() {
                return Ok(());
            }
            i += 1;
        }
    }
}

fn strip_line_end(record: &[u8]) -> &[u8] {
    let record = record.strip_suffix(b"\n").unwrap_or(record);
    record.strip_suffix(b"\r").unwrap_or(record)
}

/// Undoes the text format's backslash escapes: `\b \f \n \r \t \v`, octal
/// `\NNN`, hex `\xHH`, and `\c` for any other `c`.
fn unescape_text(raw: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        let byte = raw[i];
        i += 1;
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(&next) = raw.get(i) else {
            return Err("the data ends with a lone backslash".into());
        };
        i += 1;
        match next {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(next - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut value = 0u8;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(value);
            }
            other => out.push(other),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(sql: &str) -> RecordReader {
        match tributary_planner::parse(sql).unwrap().pop() {
            Some(tributary_planner::Statement::CopyFrom(copy)) => RecordReader::new(&copy),
            other => panic!("not a COPY: {other:?}"),
        }
    }

    fn split(reader: &RecordReader, record: &str) -> Result<Vec<Option<String>>, String> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        reader.fields(record.as_bytes(), &mut scratch, |f| {
            out.push(f.map(|b| String::from_utf8_lossy(b).into_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn text_fields_unescape_and_null() {
        let text = reader("COPY s FROM STDIN");
        assert_eq!(
            split(&text, "1\ta\\tb\\\\\t\\N\t\\x41\\101\r\n").unwrap(),
            vec![
                Some("1".into()),
                Some("a\tb\\".into()),
                None,
                Some("AA".into())
            ]
        );
        assert_eq!(split(&text, "").unwrap(), vec![Some(String::new())]);
        assert_eq!(split(&text, "a\\\tb\tc").unwrap(), some(&["a\tb", "c"]));
        assert!(split(&text, "oops\\").is_err());
        assert_eq!(text.record_len(b"a\tb\nc"), Some(4));
        assert_eq!(text.record_len(b"a\tb"), None);
        assert!(RecordReader::is_end_marker(b"\\.\n"));
    }

    #[test]
    fn csv_fields_quote_and_null() {
        let csv = reader("COPY s FROM STDIN (FORMAT csv)");
        assert_eq!(
            split(&csv, "1,\"a,\"\"b\"\"\",,\"\",x\n").unwrap(),
            vec![
                Some("1".into()),
                Some("a,\"b\"".into()),
                None,
                Some(String::new()),
                Some("x".into())
            ]
        );
        assert_eq!(csv.record_len(b"1,\"two\nlines\"\n3,4\n"), Some(14));
        assert_eq!(csv.record_len(b"1,\"open"), None);
        assert!(split(&csv, "1,\"open").is_err());
        let escaped = reader("COPY s FROM STDIN (FORMAT csv, ESCAPE '\\', NULL 'NULL')");
        assert_eq!(
            split(&escaped, "\"a\\\"b\",NULL,\"NULL\"").unwrap(),
            vec![Some("a\"b".into()), None, Some("NULL".into())]
        );
    }
}
