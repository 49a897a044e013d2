//! The limits and switches the broker core obeys, named after Mosquitto's options. Every limit
//! is finite: where Mosquitto uses 0 for "unlimited", tern-conf maps it to the cap below.

/// Broker-wide settings (mosquitto.conf general options).
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// `max_inflight_messages`: outgoing QoS 1/2 messages in flight per client (also the
    /// receive maximum announced to 5.0 clients). Worst case memory: this many message
    /// references per session.
    pub max_inflight_messages: u16,
    /// `max_queued_messages`: messages queued per session beyond the inflight window.
    pub max_queued_messages: usize,
    /// `max_queued_bytes`: payload + topic bytes queued per session.
    pub max_queued_bytes: usize,
    /// `message_size_limit`: largest payload accepted; larger ones are dropped.
    pub message_size_limit: usize,
    /// `max_packet_size`: largest packet accepted from a client (announced to 5.0 clients).
    pub max_packet_size: u32,
    /// `max_keepalive`: the largest keep-alive a client may ask for.
    pub max_keepalive: u16,
    /// `max_qos`: the largest QoS the broker supports (0-2).
    pub max_qos: tern_codec::QoS,
    /// `retain_available`.
    pub retain_available: bool,
    /// `max_topic_alias`: topic aliases a 5.0 client may use towards the broker.
    pub max_topic_alias: u16,
    /// `allow_zero_length_clientid`.
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix`.
    pub auto_id_prefix: String,
    /// `persistent_client_expiration` in seconds: the longest an offline session with no
    /// expiry of its own (3.1.1 clean session 0) is kept. `None`: never expires.
    pub persistent_client_expiration: Option<u64>,
    /// `queue_qos0_messages`: queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_messages: bool,
    /// `upgrade_outgoing_qos`: deliver at the subscription's QoS rather than the minimum.
    pub upgrade_outgoing_qos: bool,
    /// `sys_interval` in seconds; 0 disables `$SYS`.
    pub sys_interval: u64,
    /// `memory_limit`: bytes of queued messages across all sessions beyond which new
    /// publishes are refused (5.0: quota exceeded).
    pub memory_limit: usize,
    /// Version string published on `$SYS/broker/version`.
    pub version: String,
    /// `persistence`: describe changes to sessions, queued messages and retained messages
    /// as store operations (see [`crate::persist`]).
    pub persistence: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            message_size_limit: 256 * 1024 * 1024,
            max_packet_size: 16 * 1024 * 1024,
            max_keepalive: 65_535,
            max_qos: tern_codec::QoS::ExactlyOnce,
            retain_available: true,
            max_topic_alias: 10,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
            persistent_client_expiration: None,
            queue_qos0_messages: false,
            upgrade_outgoing_qos: false,
            sys_interval: 10,
            memory_limit: 1024 * 1024 * 1024,
            version: concat!("tern ", env!("CARGO_PKG_VERSION")).to_owned(),
            persistence: false,
        }
    }
}
