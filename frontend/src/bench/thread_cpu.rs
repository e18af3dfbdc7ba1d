//! CPU time per thread, read from Linux's `/proc`, so a benchmark whose
//! client runs in the same process as the server can say how the cores were
//! shared between the two. Where `/proc` cannot be read it measures nothing
//! (every time is zero) and the benchmark prints no split.

use std::collections::HashMap;
use std::time::Duration;

/// Linux reports thread times in clock ticks of `USER_HZ`, which its ABI
/// fixes at 100 a second on every architecture Tributary builds for.
const TICKS_PER_SECOND: u64 = 100;

/// The CPU time each live thread of this process has used so far, by
/// thread id, with the thread's name.
pub(super) struct ThreadTimes(HashMap<String, (String, Used)>);

/// A thread's CPU time: in its own code, and in the kernel on its behalf.
#[derive(Debug, Clone, Copy, Default)]
struct Used {
    user: Duration,
    system: Duration,
}

impl ThreadTimes {
    /// Reads every thread of this process.
    pub(super) fn now() -> Self {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Self(HashMap::new());
        };
        let times = tasks
            .flatten()
            .filter_map(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                let id = task.file_name().to_string_lossy().into_owned();
                Some((id, parse_stat(&stat)?))
            })
            .collect();
        Self(times)
    }

    /// CPU time used since `earlier` by the threads whose name `is_client`
    /// accepts, and by all the others. A thread that was not there before
    /// counts from zero; one that has ended since is not counted.
    pub(super) fn since(
        &self,
        earlier: &ThreadTimes,
        is_client: impl Fn(&str) -> bool,
    ) -> (Duration, Duration) {
        let (mut client, mut others) = (Duration::ZERO, Duration::ZERO);
        for (id, (name, used)) in &self.0 {
            let before = earlier.0.get(id).map_or(Used::default(), |(_, t)| *t);
            let delta = (used.user + used.system).saturating_sub(before.user + before.system);
            if is_client(name) {
                client += delta;
            } else {
                others += delta;
            }
        }
        (client, others)
    }

    /// CPU time every thread used in the kernel since `earlier`: system
    /// calls, page faults, copies into the page cache.
    pub(super) fn kernel_since(&self, earlier: &ThreadTimes) -> Duration {
        self.0
            .iter()
            .map(|(id, (_, used))| {
                let before = earlier.0.get(id).map_or(Duration::ZERO, |(_, t)| t.system);
                used.system.saturating_sub(before)
            })
            .sum()
    }
}

/// The CPU time the calling thread has used so far (zero where `/proc`
/// cannot be read).
pub(super) fn this_thread() -> Duration {
    std::fs::read_to_string("/proc/thread-self/stat")
        .ok()
        .and_then(|stat| parse_stat(&stat))
        .map_or(Duration::ZERO, |(_, used)| used.user + used.system)
}

/// A thread's name and user and system time from its `stat` line. The name
/// is in parentheses and may hold spaces and parentheses itself, so the
/// fields are counted from the last `)`: utime and stime are the 12th and
/// 13th after it.
fn parse_stat(stat: &str) -> Option<(String, Used)> {
    let name = stat.get(stat.find('(')? + 1..stat.rfind(')')?)?.to_string();
    let mut fields = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let time = |ticks: u64| Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    Some((
        name,
        Used {
            user: time(utime),
            system: time(stime),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_from_the_last_parenthesis() {
        let line = "4353 (rdk:broker (0)) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 9";
        let (name, used) = parse_stat(line).unwrap();
        assert_eq!(name, "rdk:broker (0)");
        assert_eq!(used.user, Duration::from_millis(2500));
        assert_eq!(used.system, Duration::from_millis(310));
        assert!(parse_stat("4353 (x) S 1 2").is_none());
    }

    #[test]
    fn a_busy_thread_is_seen_using_cpu() {
        if std::fs::metadata("/proc/thread-self/stat").is_err() {
            return;
        }
        let before = ThreadTimes::now();
        let start = this_thread();
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        let mut spins = 0u64;
        while std::time::Instant::now() < deadline {
            spins = std::hint::black_box(spins + 1);
        }
        assert!(this_thread() > start);
        let (all, none) = ThreadTimes::now().since(&before, |_| true);
        assert!(all > Duration::ZERO);
        assert_eq!(none, Duration::ZERO);
    }
}
