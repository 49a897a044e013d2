//! Decode and encode errors, grouped by fault, and the one mapping from a decode error to the
//! reason code that goes on the wire (MQTT 5.0) or to a plain disconnect (MQTT 3.1.1).

use crate::reason::ReasonCode;
use crate::topic::TopicError;

/// Why bytes from a peer could not be decoded. Every variant is the peer's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// [MQTT-1.5.5-1] a variable byte integer longer than 4 bytes or not minimally encoded.
    #[error("malformed variable byte integer in {field}")]
    BadVarInt { field: &'static str },
    /// The packet is bigger than the receiver's maximum packet size.
    #[error("packet of {len} bytes exceeds the maximum of {max}")]
    PacketTooLarge { len: u32, max: u32 },
    /// Packet type 0, or 15 (AUTH) before MQTT 5.0.
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// [MQTT-2.1.3-1] the fixed header's reserved flag bits are wrong for this packet type.
    #[error("reserved flag bits of {packet} are not {expected:#06b}")]
    BadFixedHeaderFlags { packet: &'static str, expected: u8 },
    /// [MQTT-3.3.1-4] QoS 3 in a PUBLISH, a will or a subscription.
    #[error("QoS 3 is not a valid QoS in {field}")]
    BadQos { field: &'static str },
    /// [MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH.
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQos0,
    /// A field runs past the end of the packet's remaining length.
    #[error("packet ends inside {field}")]
    Truncated { field: &'static str },
    /// Bytes left over after the last field of a packet.
    #[error("{0} unexpected bytes after the end of the packet")]
    TrailingBytes(u32),
    /// [MQTT-1.5.4-1], [MQTT-1.5.4-2] invalid UTF-8 or U+0000 in a string.
    #[error("{field} is not valid UTF-8 or contains U+0000")]
    BadString { field: &'static str },
    /// A topic name in PUBLISH or a will that breaks the rules of section 4.7.
    #[error("invalid topic name: {0}")]
    BadTopicName(TopicError),
    /// A topic filter in SUBSCRIBE or UNSUBSCRIBE that breaks the rules of section 4.7.
    #[error("invalid topic filter: {0}")]
    BadTopicFilter(TopicError),
    /// [MQTT-2.2.1-3] packet identifier 0 where a non-zero one is required.
    #[error("packet identifier 0 in {packet}")]
    ZeroPacketId { packet: &'static str },
    /// [MQTT-3.1.2-1] the protocol name is neither "MQTT" nor "MQIsdp".
    #[error("unknown protocol name")]
    BadProtocolName,
    /// [MQTT-3.1.2-2] a protocol level other than 3 (with "MQIsdp"), 4 or 5.
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// [MQTT-3.1.2-3], [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15], [MQTT-3.1.2-22].
    #[error("invalid CONNECT flags: {0}")]
    BadConnectFlags(&'static str),
    /// [MQTT-3.2.2-1] reserved bits of the CONNACK acknowledge flags.
    #[error("reserved CONNACK flag bits are set")]
    BadConnackFlags,
    /// A property identifier that does not exist.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u8),
    /// A property that exists but may not appear in this packet.
    #[error("property {id:#04x} is not allowed in {packet}")]
    PropertyNotAllowed { id: u8, packet: &'static str },
    /// A property that may appear at most once, given twice.
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property value outside its allowed range (e.g. receive maximum 0).
    #[error("property {0:#04x} has a value the specification does not allow")]
    BadPropertyValue(u8),
    /// [MQTT-3.8.3-3], [MQTT-3.10.3-2] SUBSCRIBE or UNSUBSCRIBE without any topic filter.
    #[error("{packet} carries no topic filter")]
    NoTopicFilter { packet: &'static str },
    /// [MQTT-3.8.3-4] / MQTT 5.0 3.8.3.1: reserved subscription option bits, retain handling 3,
    /// or no-local on a shared subscription.
    #[error("invalid subscription options: {0}")]
    BadSubscriptionOptions(&'static str),
    /// [MQTT-3.8.3-5] reserved bits of a subscription options byte are set: malformed.
    #[error("reserved bits of the subscription options are set")]
    ReservedSubscriptionBits,
    /// A reason or return code that is not allowed in this packet.
    #[error("reason code {code:#04x} is not valid in {packet}")]
    BadReasonCode { code: u8, packet: &'static str },
    /// [MQTT-3.3.2-1] / MQTT 5.0 3.3.2.3.4: empty topic name without a topic alias.
    #[error("PUBLISH has an empty topic name and no topic alias")]
    EmptyTopicWithoutAlias,
}

impl DecodeError {
    /// The MQTT 5.0 reason code for a DISCONNECT (or CONNACK, before the session exists)
    /// caused by this error. An MQTT 3.1.1 peer is simply disconnected.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::UnsupportedProtocolLevel(_) | Self::BadProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
            Self::BadTopicName(_) => ReasonCode::TopicNameInvalid,
            Self::BadTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            Self::DuplicateProperty(_)
            | Self::BadPropertyValue(_)
            | Self::NoTopicFilter { .. }
            | Self::ZeroPacketId { .. }
            | Self::EmptyTopicWithoutAlias => ReasonCode::ProtocolError,
            Self::BadSubscriptionOptions(_) => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet could not be encoded. Every variant is the caller's fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; `needed` is the whole packet's size.
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    /// The packet would be larger than the 268,435,455 bytes a remaining length can hold.
    #[error("packet too large to encode")]
    PacketTooLarge,
    /// A string or binary field longer than 65,535 bytes.
    #[error("{field} is longer than 65535 bytes")]
    FieldTooLong { field: &'static str },
    /// A field combination the protocol cannot express (e.g. QoS 1 PUBLISH without an id).
    #[error("invalid packet: {0}")]
    Invalid(&'static str),
}
