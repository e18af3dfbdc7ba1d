//! The share of the machine's time that its host gave to others (Linux
//! `/proc/stat`, "steal"). On a virtual machine, per-core figures are only
//! comparable between runs the host left alone, so the benchmarks print it
//! beside them.

/// The machine's CPU time so far, in clock ticks: all of it, and the part
/// stolen.
#[derive(Debug, Clone, Copy)]
pub(super) struct MachineTicks {
    total: u64,
    stolen: u64,
}

impl MachineTicks {
    /// Reads `/proc/stat`; `None` where it cannot be read.
    pub(super) fn now() -> Option<Self> {
        parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The percentage of the machine's time stolen since `earlier`; `None`
    /// when no time has passed.
    pub(super) fn stolen_since(&self, earlier: &Self) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let stolen = self.stolen.saturating_sub(earlier.stolen);
        (total > 0).then(|| 100.0 * stolen as f64 / total as f64)
    }
}

/// The first line of `/proc/stat`: `cpu`, then user, nice, system, idle,
/// iowait, irq, softirq and steal ticks (and guest ticks, already counted
/// in user).
fn parse(stat: &str) -> Option<MachineTicks> {
    let mut fields = stat.lines().next()?.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    Some(MachineTicks {
        total: ticks.iter().sum(),
        stolen: *ticks.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_the_eighth_count_of_the_cpu_line() {
        let before = parse("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n").unwrap();
        let after = parse("cpu  150 0 50 900 10 0 0 90 0 0\n").unwrap();
        assert_eq!(after.stolen_since(&before), Some(25.0));
        assert_eq!(after.stolen_since(&after), None);
        assert!(parse("cpu  1 2 3\n").is_none());
        assert!(parse("intr 1 2 3 4 5 6 7 8\n").is_none());
    }
}
