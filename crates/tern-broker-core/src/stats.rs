//! Counters behind `$SYS/broker/...` (Mosquitto's names), kept by the broker core and the
//! connection drivers.

/// Broker-wide counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// All control packets received / sent.
    pub messages_received: u64,
    pub messages_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    /// Messages dropped because a queue was full, a message expired in a queue, or it was too
    /// large for the receiver. Never hidden: published as `publish/messages/dropped`.
    pub publish_dropped: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Most sessions connected at once.
    pub clients_maximum: u64,
    /// Sessions that expired.
    pub clients_expired: u64,
    /// Payload bytes of PUBLISH received / sent.
    pub publish_bytes_received: u64,
    pub publish_bytes_sent: u64,
}

/// Mosquitto's `$SYS/broker/load/...`: per-minute rates of counters, averaged over 1, 5 and
/// 15 minutes with exponential decay (like Unix load averages).
#[derive(Clone, Debug)]
pub struct LoadAverages<const N: usize> {
    last: Option<(tern_proto::Timestamp, [u64; N])>,
    avg: [[f64; 3]; N],
}

impl<const N: usize> Default for LoadAverages<N> {
    fn default() -> Self {
        Self {
            last: None,
            avg: [[0.0; 3]; N],
        }
    }
}

impl<const N: usize> LoadAverages<N> {
    /// Folds in the counters' values at `now`; returns the averages (per minute).
    pub fn update(&mut self, now: tern_proto::Timestamp, counters: &[u64; N]) -> [[f64; 3]; N] {
        if let Some((then, prev)) = self.last {
            let dt = now.0.saturating_sub(then.0) as f64 / 1000.0;
            if dt > 0.0 {
                for i in 0..N {
                    let rate = counters[i].saturating_sub(prev[i]) as f64 * 60.0 / dt;
                    for (k, window) in [60.0, 300.0, 900.0].iter().enumerate() {
                        let e = (-dt / window).exp();
                        self.avg[i][k] = self.avg[i][k] * e + rate * (1.0 - e);
                    }
                }
            }
        }
        self.last = Some((now, *counters));
        self.avg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::Timestamp;

    #[test]
    fn load_average_moves_towards_the_rate() {
        let mut l = LoadAverages::<1>::default();
        assert_eq!(l.update(Timestamp(0), &[0]), [[0.0; 3]]);
        // 60 events in 60 s = 60 per minute; the 1-minute average moves 63 % of the way.
        let a = l.update(Timestamp(60_000), &[60]);
        assert!((a[0][0] - 60.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9);
        assert!(a[0][1] < a[0][0] && a[0][2] < a[0][1]);
    }
}
