//! Per-publisher delivery accounting (losses, duplicates, out-of-order) and the end-to-end
//! latency histogram. Pure bookkeeping: no clock, no I/O, no allocation per message on the
//! in-order path.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Most gap ranges one tracker remembers. Past this, new gaps are still counted as lost but a
/// late arrival into them is counted as a duplicate. Worst case memory: about 64 bytes per
/// range, 4 MiB per tracker.
pub const MAX_GAP_RANGES: usize = 65_536;

/// What a subscriber saw of one publisher's sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct Tracker {
    /// One past the highest sequence number seen.
    next: u32,
    /// Sequence numbers skipped and not (yet) seen: start -> end (exclusive).
    gaps: BTreeMap<u32, u32>,
    /// Sum of the gap lengths, including gaps too many to remember.
    gap_count: u64,
    /// Distinct messages received.
    pub received: u64,
    /// Messages received a second time.
    pub duplicates: u64,
    /// Messages that arrived after a higher sequence number.
    pub out_of_order: u64,
}

impl Tracker {
    /// Records one arrival.
    pub fn record(&mut self, seq: u32) {
        if seq == self.next {
            self.next = seq.saturating_add(1);
            self.received += 1;
        } else if seq > self.next {
            if self.gaps.len() < MAX_GAP_RANGES {
                self.gaps.insert(self.next, seq);
            }
            self.gap_count += u64::from(seq - self.next);
            self.next = seq.saturating_add(1);
            self.received += 1;
        } else if self.fill_gap(seq) {
            self.gap_count -= 1;
            self.out_of_order += 1;
            self.received += 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// Removes `seq` from the gap holding it; false when no remembered gap holds it.
    fn fill_gap(&mut self, seq: u32) -> bool {
        let Some((&start, &end)) = self.gaps.range(..=seq).next_back() else {
            return false;
        };
        if seq >= end {
            return false;
        }
        self.gaps.remove(&start);
        if start < seq {
            self.gaps.insert(start, seq);
        }
        if seq + 1 < end {
            self.gaps.insert(seq + 1, end);
        }
        true
    }

    /// One past the highest sequence number seen (the end-to-end window's progress mark).
    pub fn next(&self) -> u32 {
        self.next
    }

    /// True once every message of `sent` has arrived.
    pub fn complete(&self, sent: u32) -> bool {
        self.next >= sent && self.gap_count == 0
    }

    /// Messages of `sent` that never arrived: the gaps plus the missing tail.
    pub fn lost(&self, sent: u32) -> u64 {
        self.gap_count + u64::from(sent.saturating_sub(self.next))
    }
}

/// End-to-end latency in nanoseconds, from 1 µs to 10 minutes at 3 significant figures.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
        let hist = Histogram::new_with_bounds(1_000, 600_000_000_000, 3)
            .expect("constant histogram bounds are valid");
        Self { hist }
    }

    /// Records one latency; values outside the range are clamped.
    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1_000));
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Latency) {
        // Both use the same bounds, so adding cannot fail on range.
        let _ = self.hist.add(&other.hist);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// `None` when nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.hist.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Some(Percentiles {
            p50_us: us(self.hist.value_at_quantile(0.50)),
            p99_us: us(self.hist.value_at_quantile(0.99)),
            p999_us: us(self.hist.value_at_quantile(0.999)),
            max_us: us(self.hist.max()),
            mean_us: self.hist.mean() / 1_000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_is_complete() {
        let mut t = Tracker::default();
        for s in 0..1000 {
            t.record(s);
        }
        assert!(t.complete(1000));
        assert_eq!(
            (t.received, t.lost(1000), t.duplicates, t.out_of_order),
            (1000, 0, 0, 0)
        );
    }

    #[test]
    fn gaps_tail_and_duplicates() {
        let mut t = Tracker::default();
        for s in [0, 1, 2, 5, 6, 6, 9] {
            t.record(s);
        }
        // 3, 4, 7, 8 missing inside; 10..12 missing at the tail; one duplicate 6.
        assert_eq!(t.lost(12), 6);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.received, 6);
        assert!(!t.complete(12));
        assert_eq!(t.next(), 10);
    }

    #[test]
    fn late_arrivals_fill_gaps_and_count_out_of_order() {
        let mut t = Tracker::default();
        for s in [0, 4, 2, 1, 3, 3, 5] {
            t.record(s);
        }
        assert_eq!(t.out_of_order, 3);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.lost(6), 0);
        assert!(t.complete(6));
        // A message below the mark that was never a gap is a duplicate.
        t.record(0);
        assert_eq!(t.duplicates, 2);
    }

    #[test]
    fn gap_split_in_the_middle() {
        let mut t = Tracker::default();
        t.record(10); // gap 0..10
        t.record(5); // splits into 0..5 and 6..10
        assert_eq!(t.lost(11), 9);
        t.record(0);
        t.record(9);
        assert_eq!(t.lost(11), 7);
        assert_eq!(t.out_of_order, 3);
    }

    #[test]
    fn nothing_received_loses_everything_sent() {
        let t = Tracker::default();
        assert_eq!(t.lost(42), 42);
        assert!(t.complete(0));
    }

    #[test]
    fn too_many_gaps_are_still_counted() {
        let mut t = Tracker::default();
        for i in 0..(MAX_GAP_RANGES as u32 + 10) {
            t.record(i * 2 + 1);
        }
        let sent = (MAX_GAP_RANGES as u32 + 10) * 2;
        assert_eq!(t.lost(sent), u64::from(sent / 2));
        // A late arrival into a forgotten gap is counted as a duplicate, never as negative loss.
        t.record(sent - 2);
        assert_eq!(t.lost(sent), u64::from(sent / 2));
    }

    #[test]
    fn latency_percentiles_and_merge() {
        let mut a = Latency::new();
        assert!(a.percentiles().is_none());
        for us in 1..=1000u64 {
            a.record_ns(us * 1_000);
        }
        let mut b = Latency::new();
        b.record_ns(50_000_000); // 50 ms outlier
        a.merge(&b);
        assert_eq!(a.count(), 1001);
        let p = a.percentiles().unwrap();
        assert!((p.p50_us - 500.0).abs() < 2.0, "{p:?}");
        assert!((p.p99_us - 990.0).abs() < 2.0, "{p:?}");
        assert!((p.max_us - 50_000.0).abs() < 50.0, "{p:?}");
        // Values below 1 µs are clamped up, not dropped.
        a.record_ns(3);
        assert_eq!(a.count(), 1002);
    }
}
