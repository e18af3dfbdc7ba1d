//! What the format tests share: records to decode, and a small random
//! generator.

use tributary_storage::records::RecordRef;

/// Records at offsets 0, 1, ... holding `values`.
pub(super) fn records<'a>(
    values: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Vec<RecordRef<'a>> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, value)| RecordRef {
            offset: i as i64,
            timestamp: 0,
            key: None,
            value,
        })
        .collect()
}

/// A small deterministic generator (xorshift64*), so that a failure
/// reproduces.
pub(super) struct Random(pub(super) u64);

impl Random {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n`.
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }

    /// `Some(value)` most of the time, NULL now and then.
    pub(super) fn maybe<T>(&mut self, value: T) -> Option<T> {
        (!self.next().is_multiple_of(7)).then_some(value)
    }
}
