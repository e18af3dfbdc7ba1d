//! A workaround for arrow-json 59, which joins a `\uD8xx\uDCxx` escape
//! pair with `|` where `+` belongs: above U+1FFFF (CJK Extension B and
//! beyond) about half the characters read as some other character.
//! Before arrow-json reads a value, such pairs are written out as the
//! UTF-8 character they stand for, which is the same JSON.

use std::borrow::Cow;

/// `value` with each escape pair arrow-json would misread replaced by its
/// character; borrowed as is when there is none (nearly always).
pub(super) fn join_for_arrow_json(value: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memmem::find(value, b"\\u").is_none() {
        return Cow::Borrowed(value);
    }
    let mut joined: Option<Vec<u8>> = None;
    // Where the bytes not yet copied into `joined` start.
    let mut copied_to = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', &value[at..]) {
        let escape = at + found;
        match misread_pair(&value[escape..]) {
            Some(c) => {
                let out = joined.get_or_insert_with(|| Vec::with_capacity(value.len()));
                out.extend_from_slice(&value[copied_to..escape]);
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                at = escape + 12;
                copied_to = at;
            }
            // Any other escape is two bytes long at least; `\\` must not
            // be taken for the start of the next one.
            None => at = (escape + 2).min(value.len()),
        }
    }
    match joined {
        Some(mut out) => {
            out.extend_from_slice(&value[copied_to..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(value),
    }
}

/// The character of the pair `\uHHHH\uLLLL` at the start of `text`, if
/// arrow-json would misread it.
fn misread_pair(text: &[u8]) -> Option<char> {
    let unit = |at: usize| -> Option<u32> {
        if text.get(at..at + 2)? != b"\\u" {
            return None;
        }
        let hex = std::str::from_utf8(text.get(at + 2..at + 6)?).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    };
    let (high, low) = (unit(0)?, unit(6)?);
    if !(0xD800..=0xDBFF).contains(&high) || !(0xDC00..=0xDFFF).contains(&low) {
        return None;
    }
    let high_bits = high - 0xD800;
    // Where `|` and `+` agree, arrow-json reads the pair right.
    if high_bits & 0x40 == 0 {
        return None;
    }
    char::from_u32(0x1_0000 + (high_bits << 10) + (low - 0xDC00))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_arrow_json_misreads_are_written_out() {
        let cases: [(&[u8], &str); 7] = [
            (br#"{"s":"a\ud840\udc00b"}"#, r#"{"s":"a𠀀b"}"#),
            // An escaped backslash, then a pair.
            (br#"{"s":"\\\ud840\udc00"}"#, r#"{"s":"\\𠀀"}"#),
            // Read right by arrow-json, or not pairs: left alone.
            (br#"{"s":"\ud83d\ude00"}"#, r#"{"s":"\ud83d\ude00"}"#),
            (br#"{"s":"\\ud840\\udc00"}"#, r#"{"s":"\\ud840\\udc00"}"#),
            (br#"{"s":"\ud840"}"#, r#"{"s":"\ud840"}"#),
            (br#"{"s":"\ud840\u0041"}"#, r#"{"s":"\ud840\u0041"}"#),
            (br#"{"s":"\"#, r#"{"s":"\"#),
        ];
        for (value, expected) in cases {
            let joined = join_for_arrow_json(value);
            assert_eq!(joined.as_ref(), expected.as_bytes());
            assert_eq!(
                matches!(joined, Cow::Owned(_)),
                value != expected.as_bytes()
            );
        }
    }
}
