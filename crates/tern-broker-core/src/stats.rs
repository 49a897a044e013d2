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
}
