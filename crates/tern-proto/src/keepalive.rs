//! Keep-alive (MQTT 3.1.1 section 3.1.2.10, 5.0 section 3.1.2.10): the server closes a
//! connection that sends nothing for one and a half times the keep-alive; the client sends
//! PINGREQ when it has sent nothing for the keep-alive.

use crate::time::Timestamp;

/// Keep-alive bookkeeping for one side of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Seconds; 0 disables keep-alive.
    pub interval_secs: u16,
    /// When the peer last sent any packet.
    pub last_received: Timestamp,
    /// When we last sent any packet.
    pub last_sent: Timestamp,
}

impl KeepAlive {
    /// Starts the timers at `now`.
    pub const fn new(interval_secs: u16, now: Timestamp) -> Self {
        Self {
            interval_secs,
            last_received: now,
            last_sent: now,
        }
    }

    /// [MQTT-3.1.2-24] the server must disconnect a client silent for 1.5 x keep-alive.
    /// `None` when keep-alive is disabled.
    pub const fn server_deadline(&self) -> Option<Timestamp> {
        if self.interval_secs == 0 {
            return None;
        }
        Some(Timestamp(
            self.last_received
                .0
                .saturating_add(self.interval_secs as u64 * 1500),
        ))
    }

    /// When a client must send PINGREQ if it has sent nothing else [MQTT-3.1.2-23].
    pub const fn client_ping_due(&self) -> Option<Timestamp> {
        if self.interval_secs == 0 {
            return None;
        }
        Some(Timestamp(
            self.last_sent
                .0
                .saturating_add(self.interval_secs as u64 * 1000),
        ))
    }

    /// True when the server should close the connection at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        matches!(self.server_deadline(), Some(d) if now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_and_a_half_times_mqtt_3_1_2_24() {
        let k = KeepAlive::new(10, Timestamp(1_000));
        assert_eq!(k.server_deadline(), Some(Timestamp(16_000)));
        assert!(!k.expired(Timestamp(15_999)));
        assert!(k.expired(Timestamp(16_000)));
        assert_eq!(k.client_ping_due(), Some(Timestamp(11_000)));
        assert_eq!(KeepAlive::new(0, Timestamp(0)).server_deadline(), None);
    }
}
