//! Reads a process's CPU time and memory from Linux's `/proc` (`stat`: utime + stime;
//! `status`: VmRSS, VmHWM). Parsing is separate from reading so it is tested on fixed text.

use std::path::PathBuf;

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`). Linux fixes it at 100 on
/// every architecture tern builds for; reading `sysconf` would need `unsafe` or libc.
pub const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// User + system CPU time in seconds, all threads.
    pub cpu_s: f64,
    /// Resident set size in KiB.
    pub rss_kb: u64,
    /// Peak resident set size in KiB since the process started.
    pub hwm_kb: u64,
}

/// Which process: a pid, or this one.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    Pid(u32),
    SelfProcess,
}

impl Target {
    fn dir(self) -> PathBuf {
        match self {
            Target::Pid(p) => PathBuf::from(format!("/proc/{p}")),
            Target::SelfProcess => PathBuf::from("/proc/self"),
        }
    }

    /// `None` when the process is gone or `/proc` is not Linux's.
    pub fn sample(self) -> Option<Sample> {
        let dir = self.dir();
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let status = std::fs::read_to_string(dir.join("status")).ok()?;
        let ticks = parse_stat_ticks(&stat)?;
        let (rss_kb, hwm_kb) = parse_status_mem(&status)?;
        Some(Sample {
            cpu_s: ticks as f64 / TICKS_PER_SEC,
            rss_kb,
            hwm_kb,
        })
    }
}

/// utime + stime (fields 14 and 15) from `/proc/PID/stat`. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from the last ')'.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // rest starts at field 3 (state); utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// (VmRSS, VmHWM) in KiB from `/proc/PID/status`.
pub fn parse_status_mem(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The soft limit on open files from `/proc/self/limits`, if readable.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Tracks a process over a run: the first sample, the last, and the largest RSS seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct Watch {
    pub first: Option<Sample>,
    pub last: Option<Sample>,
    pub peak_rss_kb: u64,
}

impl Watch {
    /// Takes a sample and folds it in.
    pub fn tick(&mut self, target: Target) {
        if let Some(s) = target.sample() {
            self.add(s);
        }
    }

    pub fn add(&mut self, s: Sample) {
        if self.first.is_none() {
            self.first = Some(s);
        }
        self.last = Some(s);
        self.peak_rss_kb = self.peak_rss_kb.max(s.rss_kb);
    }

    /// CPU seconds between the first and last samples.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(self.last?.cpu_s - self.first?.cpu_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) broker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                        250 75 0 0 20 0 3 0 123456 12345678 2345 18446744073709551615 1 1 0 0 0 0 0 4096 17408 0 0 0 17 1 0 0 0 0 0";

    const STATUS: &str = "Name:\tmosquitto\nUmask:\t0022\nState:\tS (sleeping)\n\
                          VmPeak:\t   20000 kB\nVmSize:\t   19000 kB\nVmHWM:\t    9876 kB\n\
                          VmRSS:\t    5432 kB\nThreads:\t1\n";

    #[test]
    fn stat_fields_after_the_command_name() {
        assert_eq!(parse_stat_ticks(STAT), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_memory_lines() {
        assert_eq!(parse_status_mem(STATUS), Some((5432, 9876)));
        assert_eq!(parse_status_mem("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let s = Target::SelfProcess.sample().expect("/proc/self on Linux");
        assert!(s.rss_kb > 0 && s.hwm_kb >= s.rss_kb);
        assert!(open_files_limit().unwrap_or(0) > 0);
    }

    #[test]
    fn watch_keeps_first_last_and_peak() {
        let mut w = Watch::default();
        assert_eq!(w.cpu_s(), None);
        for (cpu, rss) in [(1.0, 100), (1.5, 300), (2.5, 200)] {
            w.add(Sample {
                cpu_s: cpu,
                rss_kb: rss,
                hwm_kb: 300,
            });
        }
        assert_eq!(w.cpu_s(), Some(1.5));
        assert_eq!(w.peak_rss_kb, 300);
    }
}
