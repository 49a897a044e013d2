//! [`ClientConn`]: the MQTT client's side of one session, sans-IO (quinn-proto style).
//!
//! Owns: the CONNECT/CONNACK handshake, keep-alive (PINGREQ when idle, an error when no
//! PINGRESP comes back), packet identifiers, the outgoing QoS 1/2 window (bounded by the
//! server's Receive Maximum and [`ClientOptions::max_inflight`]) with a bounded pending queue
//! beyond it, the incoming QoS 1/2 flows (QoS 2 delivered exactly once), topic aliases both
//! ways (5.0), the server's Maximum Packet Size, Maximum QoS, Retain Available, Server Keep
//! Alive and Assigned Client Identifier, and redelivery with DUP after a reconnect.
//!
//! Must not: touch a socket, read a clock, draw random numbers. Bytes come in through
//! [`ClientConn::handle_input`], time through `now` arguments; bytes go out through
//! [`ClientConn::poll_transmit`], results through [`ClientConn::poll_event`], and the next
//! deadline through [`ClientConn::poll_timeout`].
//!
//! One `ClientConn` lives as long as the session, across transports: call
//! [`ClientConn::connect`] after each new transport is up and
//! [`ClientConn::connection_lost`] when it goes away. Unacknowledged QoS 1/2 messages are
//! kept and, if the server says the session is present, resent with DUP; if it does not,
//! they are sent again as new messages (a deliberate choice: the specification would have
//! the client discard them [MQTT-3.2.2-4]... but losing a message the application was
//! promised would be delivered "at least once" is worse than a duplicate).
//!
//! ```
//! use tern_proto::client::{ClientConn, ClientOptions, Event};
//! use tern_proto::Timestamp;
//! use tern_codec::ProtocolVersion;
//!
//! let mut c = ClientConn::new(ClientOptions::new(ProtocolVersion::V311, "dev-1"));
//! let now = Timestamp(0);
//! c.connect(now);
//! let mut out = Vec::new();
//! c.poll_transmit(&mut out);
//! assert_eq!(out[0], 0x10); // CONNECT
//! c.handle_input(now, &[0x20, 0x02, 0x00, 0x00]).unwrap(); // CONNACK, accepted
//! assert!(matches!(c.poll_event(), Some(Event::Connected { session_present: false, .. })));
//! ```

use alloc::collections::{BTreeSet, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use tern_codec::topic::{self, TopicError};
use tern_codec::{
    Ack, Connack, Connect, DecodeError, Disconnect, EncodeError, Packet, PacketId, ProtocolVersion,
    Publish, QoS, ReasonCode, Subscribe, SubscribeFilters, SubscriptionOptions, Unsubscribe,
    UnsubscribeFilters, Will, decode, frame,
};

use crate::alias::{AliasError, InboundAliases, OutboundAlias, OutboundAliases};
use crate::keepalive::KeepAlive;
use crate::owned::{Message, OwnedProperties};
use crate::pid::PacketIds;
use crate::time::Timestamp;

/// The largest packet MQTT can express: 268,435,455 bytes of body plus a 5-byte header.
pub const PROTOCOL_MAX_PACKET_SIZE: u32 = 268_435_460;

/// How the client connects and how much it is willing to hold.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub version: ProtocolVersion,
    /// May be empty: the server then assigns one (5.0 tells us which; 3.1.1 requires clean
    /// session for an empty id).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5.0), sent on every CONNECT.
    pub clean_start: bool,
    /// Seconds; 0 disables keep-alive. A 5.0 server may override it (Server Keep Alive).
    pub keep_alive_secs: u16,
    /// 5.0 Session Expiry Interval in seconds; `None` sends nothing (the session ends with
    /// the connection).
    pub session_expiry_interval: Option<u32>,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// The will message; its `properties` are the will properties (will delay interval,
    /// message expiry, content type, ...).
    pub will: Option<Message>,
    /// Other CONNECT properties (user properties, request problem information, ...).
    /// Receive Maximum, Maximum Packet Size, Topic Alias Maximum and Session Expiry are
    /// taken from the fields of this struct instead.
    pub connect_properties: OwnedProperties,
    /// Incoming QoS 2 messages we hold at once (announced as Receive Maximum in 5.0).
    /// Memory: one packet identifier each.
    pub receive_maximum: u16,
    /// The largest packet we accept (announced as Maximum Packet Size in 5.0 when below the
    /// protocol maximum). The receive buffer never holds more than this.
    pub max_packet_size: u32,
    /// Topic aliases we accept from the server (5.0 Topic Alias Maximum). Memory: one topic
    /// string each.
    pub topic_alias_maximum: u16,
    /// The most aliases we assign to outgoing topics (capped by the server's Topic Alias
    /// Maximum); 0 never uses aliases.
    pub outbound_topic_aliases: u16,
    /// Outgoing QoS 1/2 messages awaiting acknowledgement at once (Mosquitto's
    /// `max_inflight_messages`, default 20); the server's Receive Maximum lowers it further.
    pub max_inflight: u16,
    /// Messages waiting for the window or for a connection (Mosquitto's
    /// `max_queued_messages`, default 1000). Past it, `publish` returns
    /// [`UsageError::QueueFull`].
    pub max_pending: usize,
    /// Payload + topic + property bytes of the pending queue (Mosquitto's
    /// `max_queued_bytes`); worst-case memory of the queue.
    pub max_pending_bytes: usize,
    /// Milliseconds to wait for CONNACK after CONNECT.
    pub connack_timeout_ms: u64,
    /// Milliseconds to wait for PINGRESP; `None` waits one keep-alive interval.
    pub ping_timeout_ms: Option<u64>,
}

impl ClientOptions {
    /// Defaults like mosquitto_pub/sub: clean start, keep-alive 60 s, 20 in flight, 1000
    /// queued (at most 64 MiB), 30 s to wait for CONNACK.
    pub fn new(version: ProtocolVersion, client_id: impl Into<String>) -> Self {
        Self {
            version,
            client_id: client_id.into(),
            clean_start: true,
            keep_alive_secs: 60,
            session_expiry_interval: None,
            username: None,
            password: None,
            will: None,
            connect_properties: OwnedProperties::default(),
            receive_maximum: 65_535,
            max_packet_size: PROTOCOL_MAX_PACKET_SIZE,
            topic_alias_maximum: 10,
            outbound_topic_aliases: 10,
            max_inflight: 20,
            max_pending: 1000,
            max_pending_bytes: 64 * 1024 * 1024,
            connack_timeout_ms: 30_000,
            ping_timeout_ms: None,
        }
    }
}

/// What the server allows on this connection, from its CONNACK (defaults for 3.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    pub receive_maximum: u16,
    pub maximum_packet_size: u32,
    pub maximum_qos: QoS,
    pub retain_available: bool,
    pub topic_alias_maximum: u16,
    pub wildcard_subscription_available: bool,
    pub subscription_identifier_available: bool,
    pub shared_subscription_available: bool,
    /// The keep-alive in force: the server's Server Keep Alive or ours.
    pub keep_alive_secs: u16,
}

impl ServerLimits {
    const fn unlimited(keep_alive_secs: u16) -> Self {
        Self {
            receive_maximum: 65_535,
            maximum_packet_size: PROTOCOL_MAX_PACKET_SIZE,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
            topic_alias_maximum: 0,
            wildcard_subscription_available: true,
            subscription_identifier_available: true,
            shared_subscription_available: true,
            keep_alive_secs,
        }
    }
}

/// What happened, for the application.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// CONNACK accepted the connection.
    Connected {
        session_present: bool,
        /// CONNACK properties (5.0): assigned client id, limits, reason string...
        properties: OwnedProperties,
    },
    /// CONNACK refused the connection; the transport should be closed.
    Refused {
        reason: ReasonCode,
        properties: OwnedProperties,
    },
    /// An application message arrived (each QoS 2 message exactly once).
    Message(Message),
    /// A QoS 1 message was PUBACKed or a QoS 2 message PUBCOMPed (or refused with a 5.0
    /// reason code of 0x80 or above, or dropped because it can no longer be sent).
    Published {
        packet_id: PacketId,
        reason: ReasonCode,
    },
    /// SUBACK: one code per filter (granted QoS, or a failure).
    Subscribed {
        packet_id: PacketId,
        reasons: Vec<ReasonCode>,
    },
    /// UNSUBACK: one code per filter in 5.0, none in 3.1.1.
    Unsubscribed {
        packet_id: PacketId,
        reasons: Vec<ReasonCode>,
    },
    /// The server sent DISCONNECT (5.0); the transport should be closed.
    Disconnected {
        reason: ReasonCode,
        properties: OwnedProperties,
    },
}

/// Why the connection must end. The DISCONNECT that tells the server (5.0) is already queued
/// in [`ClientConn::poll_transmit`]; flush it, then close the transport.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The server sent bytes that are not a valid packet.
    #[error("malformed packet from the server: {0}")]
    Decode(#[from] DecodeError),
    /// The server broke a rule of the protocol.
    #[error("protocol error by the server: {0}")]
    Protocol(&'static str),
    /// A topic alias that is out of range or was never set.
    #[error("the server used an invalid topic alias")]
    TopicAliasInvalid,
    /// More unacknowledged incoming QoS 2 messages than our Receive Maximum.
    #[error("the server sent more than {0} QoS 2 messages at once")]
    ReceiveMaximumExceeded(u16),
    /// No CONNACK within [`ClientOptions::connack_timeout_ms`].
    #[error("no CONNACK from the server within {0} ms")]
    ConnackTimeout(u64),
    /// No PINGRESP within the ping timeout.
    #[error("no PINGRESP from the server within {0} ms: the connection is dead")]
    PingTimeout(u64),
}

impl ConnError {
    /// The 5.0 DISCONNECT reason code for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Decode(e) => e.reason_code(),
            Self::Protocol(_) => ReasonCode::ProtocolError,
            Self::TopicAliasInvalid => ReasonCode::TopicAliasInvalid,
            Self::ReceiveMaximumExceeded(_) => ReasonCode::ReceiveMaximumExceeded,
            Self::ConnackTimeout(_) | Self::PingTimeout(_) => ReasonCode::KeepAliveTimeout,
        }
    }
}

/// Why a request was refused; nothing was sent and the connection is unaffected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    #[error("invalid topic name '{topic}': {error}")]
    BadTopicName { topic: String, error: TopicError },
    #[error("invalid topic filter '{filter}': {error}")]
    BadTopicFilter { filter: String, error: TopicError },
    #[error("a subscribe or unsubscribe request needs at least one topic filter")]
    NoTopicFilter,
    /// The pending queue is full ([`ClientOptions::max_pending`] or `max_pending_bytes`).
    #[error(
        "the outgoing queue is full ({messages} messages, {bytes} bytes); wait for acknowledgements"
    )]
    QueueFull { messages: usize, bytes: usize },
    /// All 65,535 packet identifiers are in use.
    #[error("no free packet identifier")]
    NoPacketId,
    #[error("the server accepts at most QoS {max}")]
    QosNotSupported { max: u8 },
    #[error("the server does not support retained messages")]
    RetainNotSupported,
    #[error("the packet is {len} bytes but the server accepts at most {max}")]
    PacketTooLarge { len: usize, max: u32 },
    #[error("cannot encode the packet: {0}")]
    Encode(#[from] EncodeError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No transport, or the transport is finished with (after DISCONNECT or a refusal).
    Disconnected,
    /// CONNECT sent, waiting for CONNACK.
    Connecting {
        since: Timestamp,
    },
    Connected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutState {
    /// Waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    AwaitAck,
    /// QoS 2: PUBREL sent, waiting for PUBCOMP.
    AwaitComp,
}

#[derive(Debug)]
struct Inflight {
    pid: PacketId,
    msg: Message,
    state: OutState,
}

#[derive(Debug)]
struct Queued {
    pid: Option<PacketId>,
    msg: Message,
}

#[derive(Debug)]
enum RequestKind {
    Subscribe(Vec<(String, SubscriptionOptions)>),
    Unsubscribe(Vec<String>),
}

#[derive(Debug)]
struct Request {
    pid: PacketId,
    kind: RequestKind,
    properties: OwnedProperties,
    sent: bool,
}

/// The client side of an MQTT session. See the [module docs](self).
///
/// Memory bounds: receive buffer <= `max_packet_size`; in flight <= `max_inflight`
/// messages; pending <= `max_pending` messages and `max_pending_bytes` bytes; incoming QoS 2
/// identifiers <= `receive_maximum`; aliases <= `topic_alias_maximum` + `outbound_topic_aliases`
/// topics. Events and transmit bytes accumulate only until polled.
#[derive(Debug)]
pub struct ClientConn {
    opts: ClientOptions,
    state: State,
    rx: Vec<u8>,
    tx: Vec<u8>,
    events: VecDeque<Event>,
    keep_alive: KeepAlive,
    ping_sent: Option<Timestamp>,
    limits: ServerLimits,
    in_aliases: InboundAliases,
    out_aliases: OutboundAliases,
    pids: PacketIds,
    used_pids: BTreeSet<u16>,
    inflight: VecDeque<Inflight>,
    pending: VecDeque<Queued>,
    pending_bytes: usize,
    inbound_qos2: BTreeSet<u16>,
    requests: VecDeque<Request>,
}

/// Appends `p` encoded for `v` to `out`.
fn encode_into(out: &mut Vec<u8>, v: ProtocolVersion, p: &Packet<'_>) -> Result<(), EncodeError> {
    let n = p.encoded_len(v)?;
    let start = out.len();
    out.resize(start + n, 0);
    match p.encode(v, &mut out[start..]) {
        Ok(_) => Ok(()),
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

impl ClientConn {
    /// A session that has not connected yet.
    pub fn new(opts: ClientOptions) -> Self {
        let ka = opts.keep_alive_secs;
        Self {
            in_aliases: InboundAliases::new(0),
            out_aliases: OutboundAliases::new(0),
            opts,
            state: State::Disconnected,
            rx: Vec::new(),
            tx: Vec::new(),
            events: VecDeque::new(),
            keep_alive: KeepAlive::new(ka, Timestamp(0)),
            ping_sent: None,
            limits: ServerLimits::unlimited(ka),
            pids: PacketIds::default(),
            used_pids: BTreeSet::new(),
            inflight: VecDeque::new(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            inbound_qos2: BTreeSet::new(),
            requests: VecDeque::new(),
        }
    }

    /// The options in force (the client id is replaced by an assigned one after CONNACK).
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// The protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.opts.version
    }

    /// The client identifier: the configured one, or the one the server assigned.
    pub fn client_id(&self) -> &str {
        &self.opts.client_id
    }

    /// True between an accepted CONNACK and the end of the transport.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The server's limits from the last CONNACK.
    pub fn server_limits(&self) -> ServerLimits {
        self.limits
    }

    /// Outgoing QoS 1/2 messages sent and not yet fully acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Messages waiting for the window or a connection.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Subscribe and unsubscribe requests not yet acknowledged.
    pub fn requests_len(&self) -> usize {
        self.requests.len()
    }

    /// Starts the handshake on a new transport: queues CONNECT. Per-connection state (receive
    /// buffer, aliases, server limits) starts afresh; the session state is kept.
    pub fn connect(&mut self, now: Timestamp) {
        self.rx.clear();
        self.tx.clear();
        self.ping_sent = None;
        self.in_aliases = InboundAliases::new(0);
        self.out_aliases = OutboundAliases::new(0);
        self.limits = ServerLimits::unlimited(self.opts.keep_alive_secs);
        self.keep_alive = KeepAlive::new(self.opts.keep_alive_secs, now);
        let v = self.opts.version;
        let mut props = self.opts.connect_properties.clone();
        if v.is_v5() {
            props.session_expiry_interval = self.opts.session_expiry_interval;
            props.receive_maximum =
                (self.opts.receive_maximum != 65_535).then_some(self.opts.receive_maximum.max(1));
            props.maximum_packet_size = (self.opts.max_packet_size < PROTOCOL_MAX_PACKET_SIZE)
                .then_some(self.opts.max_packet_size);
            props.topic_alias_maximum =
                (self.opts.topic_alias_maximum > 0).then_some(self.opts.topic_alias_maximum);
        }
        let will = self.opts.will.clone();
        let result = props.with_view(|properties| {
            let build = |will: Option<Will<'_>>| {
                let c = Connect {
                    protocol: v,
                    clean_start: self.opts.clean_start,
                    keep_alive: self.opts.keep_alive_secs,
                    properties,
                    client_id: &self.opts.client_id,
                    will,
                    username: self.opts.username.as_deref(),
                    password: self.opts.password.as_deref(),
                };
                let mut out = Vec::new();
                encode_into(&mut out, v, &Packet::Connect(c)).map(|()| out)
            };
            match &will {
                None => build(None),
                Some(w) => w.properties.with_view(|wp| {
                    build(Some(Will {
                        topic: &w.topic,
                        payload: &w.payload,
                        qos: w.qos,
                        retain: w.retain,
                        properties: wp,
                    }))
                }),
            }
        });
        // Options are validated by the caller (tern-client); an unencodable CONNECT is left
        // for the CONNACK timeout to report rather than panicking.
        if let Ok(bytes) = result {
            self.tx.extend_from_slice(&bytes);
        }
        self.state = State::Connecting { since: now };
    }

    /// The transport is gone. Keeps the session (in-flight and pending messages, incoming
    /// QoS 2 state, unacknowledged requests) for the next [`connect`](Self::connect).
    pub fn connection_lost(&mut self) {
        self.state = State::Disconnected;
        self.rx.clear();
        self.tx.clear();
        self.ping_sent = None;
    }

    /// Queues DISCONNECT (with `reason` in 5.0; `DisconnectWithWill` asks the server to send
    /// the will). After flushing [`poll_transmit`](Self::poll_transmit), close the transport.
    pub fn disconnect(&mut self, reason: ReasonCode, properties: &OwnedProperties) {
        if self.state != State::Disconnected {
            let v = self.opts.version;
            let _ = properties.with_view(|p| {
                encode_into(
                    &mut self.tx,
                    v,
                    &Packet::Disconnect(Disconnect {
                        reason,
                        properties: p,
                    }),
                )
            });
        }
        self.state = State::Disconnected;
    }

    /// Appends the bytes to send to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.tx.len();
        out.append(&mut self.tx);
        n
    }

    /// True when bytes are waiting in [`poll_transmit`](Self::poll_transmit).
    pub fn wants_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Disconnected => None,
            State::Connecting { since } => Some(Timestamp(
                since.0.saturating_add(self.opts.connack_timeout_ms),
            )),
            State::Connected => {
                if let Some(sent) = self.ping_sent {
                    return Some(Timestamp(sent.0.saturating_add(self.ping_timeout_ms())));
                }
                self.ping_due()
            }
        }
    }

    fn ping_timeout_ms(&self) -> u64 {
        self.opts
            .ping_timeout_ms
            .unwrap_or(u64::from(self.keep_alive.interval_secs.max(1)) * 1000)
    }

    /// PINGREQ is due once we have sent nothing, or received nothing, for the keep-alive
    /// [MQTT-3.1.2-23]; the second half finds a dead server even while we publish QoS 0.
    fn ping_due(&self) -> Option<Timestamp> {
        if self.keep_alive.interval_secs == 0 {
            return None;
        }
        let since = self.keep_alive.last_sent.min(self.keep_alive.last_received);
        Some(since.plus_secs(u64::from(self.keep_alive.interval_secs)))
    }

    /// Advances timers: sends PINGREQ when due; fails when CONNACK or PINGRESP is late.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Result<(), ConnError> {
        match self.state {
            State::Disconnected => Ok(()),
            State::Connecting { since } => {
                if now.0 >= since.0.saturating_add(self.opts.connack_timeout_ms) {
                    self.state = State::Disconnected;
                    return Err(ConnError::ConnackTimeout(self.opts.connack_timeout_ms));
                }
                Ok(())
            }
            State::Connected => {
                if let Some(sent) = self.ping_sent {
                    let t = self.ping_timeout_ms();
                    if now.0 >= sent.0.saturating_add(t) {
                        return Err(self.fail(ConnError::PingTimeout(t)));
                    }
                    return Ok(());
                }
                if matches!(self.ping_due(), Some(due) if now >= due) {
                    self.send(now, &Packet::Pingreq);
                    self.ping_sent = Some(now);
                }
                Ok(())
            }
        }
    }

    /// Feeds bytes read from the transport. Complete packets are handled at once; a partial
    /// packet is kept (at most `max_packet_size` bytes). Returns the bytes taken, always
    /// `bytes.len()` on success.
    pub fn handle_input(&mut self, now: Timestamp, bytes: &[u8]) -> Result<usize, ConnError> {
        if self.state == State::Disconnected {
            return Ok(bytes.len());
        }
        if self.rx.is_empty() {
            let used = self.process(now, bytes)?;
            if self.state != State::Disconnected {
                self.rx.extend_from_slice(&bytes[used..]);
            }
        } else {
            self.rx.extend_from_slice(bytes);
            let rx = core::mem::take(&mut self.rx);
            let result = self.process(now, &rx);
            let mut rx = rx;
            match result {
                Ok(used) => {
                    rx.drain(..used);
                    if self.state != State::Disconnected {
                        self.rx = rx;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(bytes.len())
    }

    /// Handles every complete packet in `buf`; returns the bytes used.
    fn process(&mut self, now: Timestamp, buf: &[u8]) -> Result<usize, ConnError> {
        let mut used = 0;
        let v = self.opts.version;
        let max = self.opts.max_packet_size;
        while used < buf.len() && self.state != State::Disconnected {
            let rest = &buf[used..];
            // Check the declared length before keeping any of it (ARCHITECTURE convention 3).
            if let Err(e) = frame(rest, max) {
                return Err(self.fail(e.into()));
            }
            match decode(rest, v, max) {
                Ok(None) => break,
                Ok(Some((packet, n))) => {
                    used += n;
                    self.keep_alive.last_received = now;
                    self.handle_packet(now, packet)?;
                }
                Err(e) => return Err(self.fail(e.into())),
            }
        }
        Ok(used)
    }

    /// Queues DISCONNECT with the error's reason (5.0) and ends the connection.
    fn fail(&mut self, e: ConnError) -> ConnError {
        if self.opts.version.is_v5() && matches!(self.state, State::Connected) {
            let _ = encode_into(
                &mut self.tx,
                self.opts.version,
                &Packet::Disconnect(Disconnect::new(e.reason_code())),
            );
        }
        self.state = State::Disconnected;
        e
    }

    fn send(&mut self, now: Timestamp, p: &Packet<'_>) {
        // Packets built here are valid by construction; an encode failure would be a bug in
        // this module and is dropped rather than panicking.
        if encode_into(&mut self.tx, self.opts.version, p).is_ok() {
            self.keep_alive.last_sent = now;
        }
    }

    fn handle_packet(&mut self, now: Timestamp, packet: Packet<'_>) -> Result<(), ConnError> {
        let connected = self.state == State::Connected;
        match packet {
            Packet::Connack(c) => {
                if connected {
                    return Err(self.fail(ConnError::Protocol("a second CONNACK")));
                }
                self.on_connack(now, c);
            }
            _ if !connected => {
                return Err(self.fail(ConnError::Protocol("a packet before CONNACK")));
            }
            Packet::Publish(p) => self.on_publish(now, p)?,
            Packet::Puback(a) => self.on_puback(now, a, QoS::AtLeastOnce),
            Packet::Pubrec(a) => self.on_pubrec(now, a),
            Packet::Pubcomp(a) => self.on_puback(now, a, QoS::ExactlyOnce),
            Packet::Pubrel(a) => {
                let known = self.inbound_qos2.remove(&a.packet_id.get());
                let reason = if known || !self.opts.version.is_v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.send(
                    now,
                    &Packet::Pubcomp(Ack {
                        reason,
                        ..Ack::new(a.packet_id)
                    }),
                );
            }
            Packet::Suback(s) => {
                let reasons = s
                    .reasons
                    .iter()
                    .map(|&c| ReasonCode::from_u8(c).unwrap_or(ReasonCode::UnspecifiedError))
                    .collect();
                if self.take_request(s.packet_id, true) {
                    self.events.push_back(Event::Subscribed {
                        packet_id: s.packet_id,
                        reasons,
                    });
                }
            }
            Packet::Unsuback(u) => {
                let reasons = u
                    .reasons
                    .iter()
                    .map(|&c| ReasonCode::from_u8(c).unwrap_or(ReasonCode::UnspecifiedError))
                    .collect();
                if self.take_request(u.packet_id, false) {
                    self.events.push_back(Event::Unsubscribed {
                        packet_id: u.packet_id,
                        reasons,
                    });
                }
            }
            Packet::Pingresp => self.ping_sent = None,
            Packet::Disconnect(d) => {
                self.state = State::Disconnected;
                self.events.push_back(Event::Disconnected {
                    reason: d.reason,
                    properties: OwnedProperties::from_view(&d.properties),
                });
            }
            Packet::Auth(_) => {
                return Err(self.fail(ConnError::Protocol(
                    "AUTH, but enhanced authentication was not requested",
                )));
            }
            Packet::Connect(_)
            | Packet::Subscribe(_)
            | Packet::Unsubscribe(_)
            | Packet::Pingreq => {
                return Err(self.fail(ConnError::Protocol(
                    "a packet only a client may send (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ)",
                )));
            }
        }
        Ok(())
    }

    fn on_connack(&mut self, now: Timestamp, c: Connack<'_>) {
        let properties = OwnedProperties::from_view(&c.properties);
        if !c.reason.is_success() {
            self.state = State::Disconnected;
            self.events.push_back(Event::Refused {
                reason: c.reason,
                properties,
            });
            return;
        }
        self.state = State::Connected;
        let p = &c.properties;
        if let Some(id) = p.assigned_client_identifier {
            self.opts.client_id = String::from(id);
        }
        let ka = p.server_keep_alive.unwrap_or(self.opts.keep_alive_secs);
        self.keep_alive = KeepAlive::new(ka, now);
        self.limits = ServerLimits {
            receive_maximum: p.receive_maximum.unwrap_or(65_535),
            maximum_packet_size: p.maximum_packet_size.unwrap_or(PROTOCOL_MAX_PACKET_SIZE),
            maximum_qos: match p.maximum_qos {
                Some(0) => QoS::AtMostOnce,
                Some(1) => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
            retain_available: p.retain_available != Some(0),
            topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            wildcard_subscription_available: p.wildcard_subscription_available != Some(0),
            subscription_identifier_available: p.subscription_identifier_available != Some(0),
            shared_subscription_available: p.shared_subscription_available != Some(0),
            keep_alive_secs: ka,
        };
        if self.opts.version.is_v5() {
            self.in_aliases = InboundAliases::new(self.opts.topic_alias_maximum);
            self.out_aliases = OutboundAliases::new(
                self.limits
                    .topic_alias_maximum
                    .min(self.opts.outbound_topic_aliases),
            );
        }
        let session_present = c.session_present;
        self.events.push_back(Event::Connected {
            session_present: c.session_present,
            properties,
        });
        if session_present {
            // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (with DUP) and PUBREL, in order.
            let inflight = core::mem::take(&mut self.inflight);
            for mut f in inflight {
                match f.state {
                    OutState::AwaitAck => {
                        f.msg.dup = true;
                        if let Err(reason) = self.send_publish(now, Some(f.pid), &f.msg) {
                            self.finish_pid(f.pid, reason);
                            continue;
                        }
                    }
                    OutState::AwaitComp => {
                        self.send(now, &Packet::Pubrel(Ack::new(f.pid)));
                    }
                }
                self.inflight.push_back(f);
            }
        } else {
            // A new session: the server holds nothing for us. Messages it had received
            // (PUBREC seen) count as delivered; the rest go out again as new messages.
            self.inbound_qos2.clear();
            let inflight = core::mem::take(&mut self.inflight);
            for f in inflight.into_iter().rev() {
                match f.state {
                    OutState::AwaitComp => {
                        self.finish_pid(f.pid, ReasonCode::Success);
                    }
                    OutState::AwaitAck => {
                        let mut msg = f.msg;
                        msg.dup = false;
                        self.pending_bytes += msg.heap_size();
                        self.pending.push_front(Queued {
                            pid: Some(f.pid),
                            msg,
                        });
                    }
                }
            }
        }
        // Requests never acknowledged go (again) now, with their original identifiers.
        for i in 0..self.requests.len() {
            self.send_request(now, i);
        }
        self.drain_pending(now);
    }

    fn on_publish(&mut self, now: Timestamp, p: Publish<'_>) -> Result<(), ConnError> {
        let topic: String = if self.opts.version.is_v5() {
            match self.in_aliases.resolve(p.topic, p.properties.topic_alias) {
                Ok(Some(t)) => String::from(&*t),
                Ok(None) => String::from(p.topic),
                Err(AliasError::OutOfRange) => return Err(self.fail(ConnError::TopicAliasInvalid)),
                Err(AliasError::Unknown) => {
                    return Err(self.fail(ConnError::Protocol(
                        "an empty topic with a topic alias that was never set",
                    )));
                }
            }
        } else {
            String::from(p.topic)
        };
        let msg = Message {
            topic,
            payload: p.payload.to_vec(),
            qos: p.qos,
            retain: p.retain,
            dup: p.dup,
            packet_id: p.packet_id,
            properties: OwnedProperties::from_view(&p.properties),
        };
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(pid)) => {
                self.events.push_back(Event::Message(msg));
                self.send(now, &Packet::Puback(Ack::new(pid)));
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                // [MQTT-4.3.3-2] deliver once; a DUP for an identifier we hold is not
                // delivered again, only acknowledged again.
                if !self.inbound_qos2.contains(&pid.get()) {
                    if self.inbound_qos2.len() >= usize::from(self.opts.receive_maximum.max(1)) {
                        return Err(
                            self.fail(ConnError::ReceiveMaximumExceeded(self.opts.receive_maximum))
                        );
                    }
                    self.inbound_qos2.insert(pid.get());
                    self.events.push_back(Event::Message(msg));
                }
                self.send(now, &Packet::Pubrec(Ack::new(pid)));
            }
            _ => self.events.push_back(Event::Message(msg)),
        }
        Ok(())
    }

    fn on_puback(&mut self, now: Timestamp, a: Ack<'_>, expect: QoS) {
        let Some(i) = self.inflight.iter().position(|f| f.pid == a.packet_id) else {
            // Unknown identifier: a late duplicate acknowledgement. Ignored, like Mosquitto.
            return;
        };
        let f = &self.inflight[i];
        let matches = match expect {
            QoS::AtLeastOnce => f.msg.qos == QoS::AtLeastOnce && f.state == OutState::AwaitAck,
            _ => f.state == OutState::AwaitComp,
        };
        if !matches {
            return;
        }
        self.inflight.remove(i);
        self.finish_pid(a.packet_id, a.reason);
        self.drain_pending(now);
    }

    fn on_pubrec(&mut self, now: Timestamp, a: Ack<'_>) {
        let Some(i) = self.inflight.iter().position(|f| f.pid == a.packet_id) else {
            // [MQTT-4.3.3] answer a PUBREC we do not know with PUBREL anyway (5.0: 0x92).
            let reason = if self.opts.version.is_v5() {
                ReasonCode::PacketIdentifierNotFound
            } else {
                ReasonCode::Success
            };
            self.send(
                now,
                &Packet::Pubrel(Ack {
                    reason,
                    ..Ack::new(a.packet_id)
                }),
            );
            return;
        };
        if self.inflight[i].msg.qos != QoS::ExactlyOnce {
            return;
        }
        if !a.reason.is_success() {
            // 5.0: the server refused the message; the flow ends here [MQTT-4.3.3-?].
            self.inflight.remove(i);
            self.finish_pid(a.packet_id, a.reason);
            self.drain_pending(now);
            return;
        }
        self.inflight[i].state = OutState::AwaitComp;
        self.send(now, &Packet::Pubrel(Ack::new(a.packet_id)));
    }

    fn finish_pid(&mut self, pid: PacketId, reason: ReasonCode) {
        self.used_pids.remove(&pid.get());
        self.events.push_back(Event::Published {
            packet_id: pid,
            reason,
        });
    }

    fn take_request(&mut self, pid: PacketId, subscribe: bool) -> bool {
        let Some(i) = self
            .requests
            .iter()
            .position(|r| r.pid == pid && matches!(r.kind, RequestKind::Subscribe(_)) == subscribe)
        else {
            return false;
        };
        self.requests.remove(i);
        self.used_pids.remove(&pid.get());
        true
    }

    fn allocate_pid(&mut self) -> Result<PacketId, UsageError> {
        let used = &self.used_pids;
        let pid = self
            .pids
            .allocate(|id| used.contains(&id.get()))
            .ok_or(UsageError::NoPacketId)?;
        self.used_pids.insert(pid.get());
        Ok(pid)
    }

    fn window(&self) -> usize {
        usize::from(
            self.limits
                .receive_maximum
                .min(self.opts.max_inflight.max(1)),
        )
    }

    /// Checks what the server allows (only known once connected).
    fn check_publish(&self, msg: &Message) -> Result<(), UsageError> {
        if msg.qos > self.limits.maximum_qos {
            return Err(UsageError::QosNotSupported {
                max: self.limits.maximum_qos.as_u8(),
            });
        }
        if msg.retain && !self.limits.retain_available {
            return Err(UsageError::RetainNotSupported);
        }
        Ok(())
    }

    /// Encodes a PUBLISH (with a topic alias when one is available) and queues it.
    fn send_publish(
        &mut self,
        now: Timestamp,
        pid: Option<PacketId>,
        msg: &Message,
    ) -> Result<(), ReasonCode> {
        let v = self.opts.version;
        let max = self.limits.maximum_packet_size;
        let alias = if v.is_v5() && !msg.topic.is_empty() {
            let t: Arc<str> = Arc::from(msg.topic.as_str());
            self.out_aliases.assign(&t)
        } else {
            OutboundAlias::None
        };
        let (topic, alias_prop) = match alias {
            OutboundAlias::None => (msg.topic.as_str(), None),
            OutboundAlias::Set(a) => (msg.topic.as_str(), Some(a)),
            OutboundAlias::Use(a) => ("", Some(a)),
        };
        let mut buf = Vec::new();
        let r = msg.properties.with_view(|mut props| {
            props.topic_alias = alias_prop;
            let p = Packet::Publish(Publish {
                dup: msg.dup && msg.qos != QoS::AtMostOnce,
                qos: msg.qos,
                retain: msg.retain,
                topic,
                packet_id: pid,
                properties: props,
                payload: &msg.payload,
            });
            match p.encoded_len(v) {
                Ok(len) if len > max as usize => Err(ReasonCode::PacketTooLarge),
                Ok(_) => encode_into(&mut buf, v, &p).map_err(|_| ReasonCode::MalformedPacket),
                Err(_) => Err(ReasonCode::PacketTooLarge),
            }
        });
        r?;
        self.tx.extend_from_slice(&buf);
        self.keep_alive.last_sent = now;
        Ok(())
    }

    /// Moves pending messages into the window while there is room.
    fn drain_pending(&mut self, now: Timestamp) {
        if self.state != State::Connected {
            return;
        }
        while let Some(front) = self.pending.front() {
            if front.msg.qos != QoS::AtMostOnce && self.inflight.len() >= self.window() {
                break;
            }
            let Some(q) = self.pending.pop_front() else {
                break;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(q.msg.heap_size());
            let refused = self.check_publish(&q.msg).err().map(|e| match e {
                UsageError::RetainNotSupported => ReasonCode::RetainNotSupported,
                _ => ReasonCode::QosNotSupported,
            });
            let result = match refused {
                Some(r) => Err(r),
                None => self.send_publish(now, q.pid, &q.msg),
            };
            match (result, q.pid) {
                (Ok(()), Some(pid)) => self.inflight.push_back(Inflight {
                    pid,
                    msg: q.msg,
                    state: OutState::AwaitAck,
                }),
                (Ok(()), None) | (Err(_), None) => {}
                (Err(reason), Some(pid)) => self.finish_pid(pid, reason),
            }
        }
    }

    /// Publishes `msg`: sent now when connected and the window has room, otherwise queued
    /// (also while disconnected). Returns the packet identifier for QoS 1/2; watch for
    /// [`Event::Published`] with it.
    pub fn publish(
        &mut self,
        now: Timestamp,
        mut msg: Message,
    ) -> Result<Option<PacketId>, UsageError> {
        topic::validate_name(&msg.topic).map_err(|error| UsageError::BadTopicName {
            topic: msg.topic.clone(),
            error,
        })?;
        msg.dup = false;
        msg.properties.topic_alias = None;
        let connected = self.state == State::Connected;
        if connected {
            self.check_publish(&msg)?;
            // Size check against the server's limit, with the full topic (worst case).
            let len = msg.properties.with_view(|props| {
                Packet::Publish(Publish {
                    dup: false,
                    qos: msg.qos,
                    retain: msg.retain,
                    topic: &msg.topic,
                    packet_id: (msg.qos != QoS::AtMostOnce).then_some(PacketId::MIN),
                    properties: props,
                    payload: &msg.payload,
                })
                .encoded_len(self.opts.version)
            })?;
            if len > self.limits.maximum_packet_size as usize {
                return Err(UsageError::PacketTooLarge {
                    len,
                    max: self.limits.maximum_packet_size,
                });
            }
        }
        let direct = connected
            && self.pending.is_empty()
            && (msg.qos == QoS::AtMostOnce || self.inflight.len() < self.window());
        if !direct {
            let size = msg.heap_size();
            if self.pending.len() >= self.opts.max_pending
                || self.pending_bytes + size > self.opts.max_pending_bytes
            {
                return Err(UsageError::QueueFull {
                    messages: self.pending.len(),
                    bytes: self.pending_bytes,
                });
            }
        }
        let pid = if msg.qos == QoS::AtMostOnce {
            None
        } else {
            Some(self.allocate_pid()?)
        };
        if direct {
            match self.send_publish(now, pid, &msg) {
                Ok(()) => {
                    if let Some(pid) = pid {
                        self.inflight.push_back(Inflight {
                            pid,
                            msg,
                            state: OutState::AwaitAck,
                        });
                    }
                }
                Err(_) => {
                    if let Some(pid) = pid {
                        self.used_pids.remove(&pid.get());
                    }
                    return Err(UsageError::PacketTooLarge {
                        len: msg.heap_size(),
                        max: self.limits.maximum_packet_size,
                    });
                }
            }
        } else {
            self.pending_bytes += msg.heap_size();
            self.pending.push_back(Queued { pid, msg });
        }
        Ok(pid)
    }

    /// Subscribes to `filters`. Sent now when connected, otherwise on the next CONNACK; watch
    /// for [`Event::Subscribed`] with the returned identifier. `properties` may carry a
    /// subscription identifier and user properties (5.0).
    pub fn subscribe(
        &mut self,
        now: Timestamp,
        filters: &[(&str, SubscriptionOptions)],
        properties: &OwnedProperties,
    ) -> Result<PacketId, UsageError> {
        if filters.is_empty() {
            return Err(UsageError::NoTopicFilter);
        }
        for (f, _) in filters {
            topic::validate_filter(f).map_err(|error| UsageError::BadTopicFilter {
                filter: String::from(*f),
                error,
            })?;
        }
        let kind = RequestKind::Subscribe(
            filters
                .iter()
                .map(|(f, o)| (String::from(*f), *o))
                .collect(),
        );
        self.add_request(now, kind, properties)
    }

    /// Unsubscribes from `filters`; watch for [`Event::Unsubscribed`].
    pub fn unsubscribe(
        &mut self,
        now: Timestamp,
        filters: &[&str],
        properties: &OwnedProperties,
    ) -> Result<PacketId, UsageError> {
        if filters.is_empty() {
            return Err(UsageError::NoTopicFilter);
        }
        for f in filters {
            topic::validate_filter(f).map_err(|error| UsageError::BadTopicFilter {
                filter: String::from(*f),
                error,
            })?;
        }
        let kind = RequestKind::Unsubscribe(filters.iter().map(|f| String::from(*f)).collect());
        self.add_request(now, kind, properties)
    }

    fn add_request(
        &mut self,
        now: Timestamp,
        kind: RequestKind,
        properties: &OwnedProperties,
    ) -> Result<PacketId, UsageError> {
        // Bounded like the pending queue.
        if self.requests.len() >= self.opts.max_pending {
            return Err(UsageError::QueueFull {
                messages: self.requests.len(),
                bytes: 0,
            });
        }
        let pid = self.allocate_pid()?;
        self.requests.push_back(Request {
            pid,
            kind,
            properties: properties.clone(),
            sent: false,
        });
        if self.state == State::Connected {
            let i = self.requests.len() - 1;
            self.send_request(now, i);
        }
        Ok(pid)
    }

    fn send_request(&mut self, now: Timestamp, i: usize) {
        let v = self.opts.version;
        let Some(r) = self.requests.get(i) else {
            return;
        };
        let mut buf = Vec::new();
        let result = r.properties.with_view(|props| match &r.kind {
            RequestKind::Subscribe(list) => {
                let l: Vec<(&str, SubscriptionOptions)> =
                    list.iter().map(|(f, o)| (f.as_str(), *o)).collect();
                encode_into(
                    &mut buf,
                    v,
                    &Packet::Subscribe(Subscribe {
                        packet_id: r.pid,
                        properties: props,
                        filters: SubscribeFilters::List(&l),
                    }),
                )
            }
            RequestKind::Unsubscribe(list) => {
                let l: Vec<&str> = list.iter().map(String::as_str).collect();
                encode_into(
                    &mut buf,
                    v,
                    &Packet::Unsubscribe(Unsubscribe {
                        packet_id: r.pid,
                        properties: props,
                        filters: UnsubscribeFilters::List(&l),
                    }),
                )
            }
        });
        if result.is_ok() {
            self.tx.extend_from_slice(&buf);
            self.keep_alive.last_sent = now;
            if let Some(r) = self.requests.get_mut(i) {
                r.sent = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
