//! MQTT 5.0 properties (section 2.2.2): one struct for every packet, with a table saying which
//! property may appear where, duplicate detection, and range checks. Repeatable properties
//! (user properties, subscription identifiers) are kept as borrowed views so that nothing
//! allocates; a decoded view forwards the peer's bytes unchanged.

use crate::error::{DecodeError, EncodeError};
use crate::wire::{Reader, Sink, decode_vbi};

/// Property identifiers (section 2.2.2.2, table 2-4).
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Which packet (or the will part of CONNECT) a property block belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyContext {
    Connect,
    Will,
    Connack,
    Publish,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    PubAck,
    Subscribe,
    Suback,
    Unsubscribe,
    Unsuback,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn name(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Will => "will properties",
            Self::Connack => "CONNACK",
            Self::Publish => "PUBLISH",
            Self::PubAck => "PUBACK/PUBREC/PUBREL/PUBCOMP",
            Self::Subscribe => "SUBSCRIBE",
            Self::Suback => "SUBACK",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Unsuback => "UNSUBACK",
            Self::Disconnect => "DISCONNECT",
            Self::Auth => "AUTH",
        }
    }

    /// Table 2-4, read by column: may property `pid` appear here?
    const fn allows(self, pid: u8) -> bool {
        use PropertyContext::*;
        use id::*;
        match pid {
            PAYLOAD_FORMAT_INDICATOR
            | MESSAGE_EXPIRY_INTERVAL
            | CONTENT_TYPE
            | RESPONSE_TOPIC
            | CORRELATION_DATA => matches!(self, Publish | Will),
            SUBSCRIPTION_IDENTIFIER => matches!(self, Publish | Subscribe),
            SESSION_EXPIRY_INTERVAL => matches!(self, Connect | Connack | Disconnect),
            ASSIGNED_CLIENT_IDENTIFIER
            | SERVER_KEEP_ALIVE
            | RESPONSE_INFORMATION
            | MAXIMUM_QOS
            | RETAIN_AVAILABLE
            | WILDCARD_SUBSCRIPTION_AVAILABLE
            | SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | SHARED_SUBSCRIPTION_AVAILABLE => {
                matches!(self, Connack)
            }
            AUTHENTICATION_METHOD | AUTHENTICATION_DATA => matches!(self, Connect | Connack | Auth),
            REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => matches!(self, Connect),
            WILL_DELAY_INTERVAL => matches!(self, Will),
            SERVER_REFERENCE => matches!(self, Connack | Disconnect),
            REASON_STRING => !matches!(self, Connect | Will | Publish | Subscribe | Unsubscribe),
            RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => {
                matches!(self, Connect | Connack)
            }
            TOPIC_ALIAS => matches!(self, Publish),
            USER_PROPERTY => true,
            _ => false,
        }
    }
}

/// A view of user properties (0x26): either entries inside a decoded property block, or a
/// caller's list. Both iterate as `(name, value)` pairs in order.
#[derive(Clone, Copy, Debug)]
pub enum UserProperties<'a> {
    /// A validated property block (from the decoder); only its user properties are yielded.
    Block(&'a [u8]),
    /// A caller-supplied list.
    List(&'a [(&'a str, &'a str)]),
}

impl Default for UserProperties<'_> {
    fn default() -> Self {
        Self::List(&[])
    }
}

impl<'a> UserProperties<'a> {
    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (block, list): (&'a [u8], &'a [(&'a str, &'a str)]) = match *self {
            Self::Block(b) => (b, &[]),
            Self::List(l) => (&[], l),
        };
        BlockIter {
            r: Reader::new(block),
        }
        .filter_map(|(pid, v)| match (pid, v) {
            (id::USER_PROPERTY, Value::Pair(k, v)) => Some((k, v)),
            _ => None,
        })
        .chain(list.iter().copied())
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for UserProperties<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// A view of subscription identifiers (0x0B), which a PUBLISH may carry several of.
#[derive(Clone, Copy, Debug)]
pub enum SubscriptionIds<'a> {
    /// A validated property block (from the decoder).
    Block(&'a [u8]),
    /// A caller-supplied list; each value must be 1..=268,435,455.
    List(&'a [u32]),
}

impl Default for SubscriptionIds<'_> {
    fn default() -> Self {
        Self::List(&[])
    }
}

impl<'a> SubscriptionIds<'a> {
    /// The identifiers in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (block, list): (&'a [u8], &'a [u32]) = match *self {
            Self::Block(b) => (b, &[]),
            Self::List(l) => (&[], l),
        };
        BlockIter {
            r: Reader::new(block),
        }
        .filter_map(|(pid, v)| match (pid, v) {
            (id::SUBSCRIPTION_IDENTIFIER, Value::Int(n)) => Some(n),
            _ => None,
        })
        .chain(list.iter().copied())
    }

    /// The first identifier (SUBSCRIBE carries at most one).
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }
}

impl PartialEq for SubscriptionIds<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// Every MQTT 5.0 property. Fields that a packet does not allow are `None` after decoding;
/// the encoder writes whatever is set (callers set only what the packet allows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Properties<'a> {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<&'a str>,
    pub response_topic: Option<&'a str>,
    pub correlation_data: Option<&'a [u8]>,
    pub subscription_identifiers: SubscriptionIds<'a>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<&'a str>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<&'a str>,
    pub authentication_data: Option<&'a [u8]>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<&'a str>,
    pub server_reference: Option<&'a str>,
    pub reason_string: Option<&'a str>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    pub user_properties: UserProperties<'a>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

#[derive(Clone, Copy, Debug)]
enum Value<'a> {
    Byte(u8),
    Short(u16),
    Int(u32),
    Str(&'a str),
    Bin(&'a [u8]),
    Pair(&'a str, &'a str),
}

/// The data type of each property (table 2-4).
fn read_value<'a>(r: &mut Reader<'a>, pid: u8) -> Result<Value<'a>, DecodeError> {
    use id::*;
    const F: &str = "property";
    Ok(match pid {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Value::Byte(r.u8(F)?),
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
            Value::Short(r.u16(F)?)
        }
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => Value::Int(r.u32(F)?),
        SUBSCRIPTION_IDENTIFIER => Value::Int(r.vbi("subscription identifier")?),
        CONTENT_TYPE => Value::Str(r.str("content type")?),
        RESPONSE_TOPIC => Value::Str(r.str("response topic")?),
        ASSIGNED_CLIENT_IDENTIFIER => Value::Str(r.str("assigned client identifier")?),
        AUTHENTICATION_METHOD => Value::Str(r.str("authentication method")?),
        RESPONSE_INFORMATION => Value::Str(r.str("response information")?),
        SERVER_REFERENCE => Value::Str(r.str("server reference")?),
        REASON_STRING => Value::Str(r.str("reason string")?),
        CORRELATION_DATA | AUTHENTICATION_DATA => Value::Bin(r.binary(F)?),
        USER_PROPERTY => Value::Pair(r.str("user property name")?, r.str("user property value")?),
        other => return Err(DecodeError::UnknownProperty(other)),
    })
}

/// Iterates a property block that has already been validated by [`Properties::decode`].
struct BlockIter<'a> {
    r: Reader<'a>,
}

impl<'a> Iterator for BlockIter<'a> {
    type Item = (u8, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.r.is_empty() {
            return None;
        }
        let pid = self.r.u8("property identifier").ok()?;
        let v = read_value(&mut self.r, pid).ok()?;
        Some((pid, v))
    }
}

impl<'a> Properties<'a> {
    /// Reads the property length and block at the reader's position (section 2.2.2.1).
    pub(crate) fn decode(r: &mut Reader<'a>, ctx: PropertyContext) -> Result<Self, DecodeError> {
        let len = r.vbi("property length")?;
        let block = r.bytes(len as usize, "properties")?;
        Self::decode_block(block, ctx)
    }

    fn decode_block(block: &'a [u8], ctx: PropertyContext) -> Result<Self, DecodeError> {
        use id::*;
        let mut p = Properties::default();
        let mut seen: u64 = 0;
        let mut br = Reader::new(block);
        let mut has_user = false;
        let mut has_sub_id = false;
        while !br.is_empty() {
            // The identifier is a variable byte integer; every defined one fits in one byte,
            // so a longer encoding is an unknown identifier.
            let raw_id = match decode_vbi(br.peek(), "property identifier")? {
                Some((v, 1)) => v as u8,
                Some(_) => return Err(DecodeError::UnknownProperty(0x80)),
                None => {
                    return Err(DecodeError::Truncated {
                        field: "property identifier",
                    });
                }
            };
            br.bytes(1, "property identifier")?;
            let value = read_value(&mut br, raw_id)?;
            if !ctx.allows(raw_id) {
                return Err(DecodeError::PropertyNotAllowed {
                    id: raw_id,
                    packet: ctx.name(),
                });
            }
            let bit = 1u64 << raw_id;
            let repeatable = raw_id == USER_PROPERTY
                || (raw_id == SUBSCRIPTION_IDENTIFIER && ctx == PropertyContext::Publish);
            if seen & bit != 0 && !repeatable {
                return Err(DecodeError::DuplicateProperty(raw_id));
            }
            seen |= bit;
            let bad = || DecodeError::BadPropertyValue(raw_id);
            let flag = |b: u8| if b <= 1 { Ok(b) } else { Err(bad()) };
            match (raw_id, value) {
                (PAYLOAD_FORMAT_INDICATOR, Value::Byte(b)) => {
                    p.payload_format_indicator = Some(flag(b)?)
                }
                (REQUEST_PROBLEM_INFORMATION, Value::Byte(b)) => {
                    p.request_problem_information = Some(flag(b)?)
                }
                (REQUEST_RESPONSE_INFORMATION, Value::Byte(b)) => {
                    p.request_response_information = Some(flag(b)?)
                }
                (MAXIMUM_QOS, Value::Byte(b)) => p.maximum_qos = Some(flag(b)?),
                (RETAIN_AVAILABLE, Value::Byte(b)) => p.retain_available = Some(flag(b)?),
                (WILDCARD_SUBSCRIPTION_AVAILABLE, Value::Byte(b)) => {
                    p.wildcard_subscription_available = Some(flag(b)?)
                }
                (SUBSCRIPTION_IDENTIFIER_AVAILABLE, Value::Byte(b)) => {
                    p.subscription_identifier_available = Some(flag(b)?)
                }
                (SHARED_SUBSCRIPTION_AVAILABLE, Value::Byte(b)) => {
                    p.shared_subscription_available = Some(flag(b)?)
                }
                (SERVER_KEEP_ALIVE, Value::Short(v)) => p.server_keep_alive = Some(v),
                (RECEIVE_MAXIMUM, Value::Short(v)) => {
                    // [MQTT-3.1.2-?] / 3.2.2.3.3: receive maximum 0 is a protocol error.
                    p.receive_maximum = Some(if v == 0 { return Err(bad()) } else { v })
                }
                (TOPIC_ALIAS_MAXIMUM, Value::Short(v)) => p.topic_alias_maximum = Some(v),
                (TOPIC_ALIAS, Value::Short(v)) => {
                    // 3.3.2.3.4: topic alias 0 is not permitted.
                    p.topic_alias = Some(if v == 0 { return Err(bad()) } else { v })
                }
                (MESSAGE_EXPIRY_INTERVAL, Value::Int(v)) => p.message_expiry_interval = Some(v),
                (SESSION_EXPIRY_INTERVAL, Value::Int(v)) => p.session_expiry_interval = Some(v),
                (WILL_DELAY_INTERVAL, Value::Int(v)) => p.will_delay_interval = Some(v),
                (MAXIMUM_PACKET_SIZE, Value::Int(v)) => {
                    p.maximum_packet_size = Some(if v == 0 { return Err(bad()) } else { v })
                }
                (SUBSCRIPTION_IDENTIFIER, Value::Int(v)) => {
                    // 3.3.2.3.8 / 3.8.2.1.2: a subscription identifier of 0 is a protocol error.
                    if v == 0 {
                        return Err(bad());
                    }
                    has_sub_id = true;
                }
                (CONTENT_TYPE, Value::Str(s)) => p.content_type = Some(s),
                (RESPONSE_TOPIC, Value::Str(s)) => {
                    // [MQTT-3.3.2-14] the response topic is a topic name: no wildcards.
                    crate::topic::validate_name(s).map_err(|_| bad())?;
                    p.response_topic = Some(s)
                }
                (ASSIGNED_CLIENT_IDENTIFIER, Value::Str(s)) => {
                    p.assigned_client_identifier = Some(s)
                }
                (AUTHENTICATION_METHOD, Value::Str(s)) => p.authentication_method = Some(s),
                (RESPONSE_INFORMATION, Value::Str(s)) => p.response_information = Some(s),
                (SERVER_REFERENCE, Value::Str(s)) => p.server_reference = Some(s),
                (REASON_STRING, Value::Str(s)) => p.reason_string = Some(s),
                (CORRELATION_DATA, Value::Bin(b)) => p.correlation_data = Some(b),
                (AUTHENTICATION_DATA, Value::Bin(b)) => p.authentication_data = Some(b),
                (USER_PROPERTY, Value::Pair(..)) => has_user = true,
                (other, _) => return Err(DecodeError::UnknownProperty(other)),
            }
        }
        if has_user {
            p.user_properties = UserProperties::Block(block);
        }
        if has_sub_id {
            p.subscription_identifiers = SubscriptionIds::Block(block);
        }
        // [MQTT-3.1.2-?] 3.1.2.11.10: authentication data without a method is a protocol error.
        if p.authentication_data.is_some() && p.authentication_method.is_none() {
            return Err(DecodeError::BadPropertyValue(AUTHENTICATION_DATA));
        }
        Ok(p)
    }

    /// Writes every property that is set, in identifier order.
    fn write_block<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        use id::*;
        macro_rules! put {
            ($pid:expr, $field:expr, $method:ident $(, $name:expr)?) => {
                if let Some(v) = $field {
                    s.put_u8($pid)?;
                    s.$method(v $(, $name)?)?;
                }
            };
        }
        put!(
            PAYLOAD_FORMAT_INDICATOR,
            self.payload_format_indicator,
            put_u8
        );
        put!(
            MESSAGE_EXPIRY_INTERVAL,
            self.message_expiry_interval,
            put_u32
        );
        put!(CONTENT_TYPE, self.content_type, put_str, "content type");
        put!(
            RESPONSE_TOPIC,
            self.response_topic,
            put_str,
            "response topic"
        );
        put!(
            CORRELATION_DATA,
            self.correlation_data,
            put_binary,
            "correlation data"
        );
        for sid in self.subscription_identifiers.iter() {
            if sid == 0 {
                return Err(EncodeError::Invalid("subscription identifier 0"));
            }
            s.put_u8(SUBSCRIPTION_IDENTIFIER)?;
            s.put_vbi(sid)?;
        }
        put!(
            SESSION_EXPIRY_INTERVAL,
            self.session_expiry_interval,
            put_u32
        );
        put!(
            ASSIGNED_CLIENT_IDENTIFIER,
            self.assigned_client_identifier,
            put_str,
            "assigned client identifier"
        );
        put!(SERVER_KEEP_ALIVE, self.server_keep_alive, put_u16);
        put!(
            AUTHENTICATION_METHOD,
            self.authentication_method,
            put_str,
            "authentication method"
        );
        put!(
            AUTHENTICATION_DATA,
            self.authentication_data,
            put_binary,
            "authentication data"
        );
        put!(
            REQUEST_PROBLEM_INFORMATION,
            self.request_problem_information,
            put_u8
        );
        put!(WILL_DELAY_INTERVAL, self.will_delay_interval, put_u32);
        put!(
            REQUEST_RESPONSE_INFORMATION,
            self.request_response_information,
            put_u8
        );
        put!(
            RESPONSE_INFORMATION,
            self.response_information,
            put_str,
            "response information"
        );
        put!(
            SERVER_REFERENCE,
            self.server_reference,
            put_str,
            "server reference"
        );
        put!(REASON_STRING, self.reason_string, put_str, "reason string");
        put!(RECEIVE_MAXIMUM, self.receive_maximum, put_u16);
        put!(TOPIC_ALIAS_MAXIMUM, self.topic_alias_maximum, put_u16);
        put!(TOPIC_ALIAS, self.topic_alias, put_u16);
        put!(MAXIMUM_QOS, self.maximum_qos, put_u8);
        put!(RETAIN_AVAILABLE, self.retain_available, put_u8);
        for (k, v) in self.user_properties.iter() {
            s.put_u8(USER_PROPERTY)?;
            s.put_str(k, "user property name")?;
            s.put_str(v, "user property value")?;
        }
        put!(MAXIMUM_PACKET_SIZE, self.maximum_packet_size, put_u32);
        put!(
            WILDCARD_SUBSCRIPTION_AVAILABLE,
            self.wildcard_subscription_available,
            put_u8
        );
        put!(
            SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            self.subscription_identifier_available,
            put_u8
        );
        put!(
            SHARED_SUBSCRIPTION_AVAILABLE,
            self.shared_subscription_available,
            put_u8
        );
        Ok(())
    }

    /// The size of the property block without its length prefix.
    pub fn block_len(&self) -> Result<usize, EncodeError> {
        let mut c = crate::wire::Counter::default();
        self.write_block(&mut c)?;
        Ok(c.0)
    }

    /// Writes the property length and block (section 2.2.2.1).
    pub(crate) fn encode<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let len = self.block_len()?;
        s.put_vbi(u32::try_from(len).map_err(|_| EncodeError::PacketTooLarge)?)?;
        self.write_block(s)
    }

    /// True when no property is set (so short forms of acks may be used).
    pub fn is_empty(&self) -> bool {
        matches!(self.block_len(), Ok(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::SliceWriter;

    fn decode(bytes: &[u8], ctx: PropertyContext) -> Result<Properties<'_>, DecodeError> {
        Properties::decode(&mut Reader::new(bytes), ctx)
    }

    #[test]
    fn duplicate_property_is_protocol_error() {
        // Two session expiry intervals in CONNECT.
        let b = [10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
        assert_eq!(
            decode(&b, PropertyContext::Connect),
            Err(DecodeError::DuplicateProperty(0x11))
        );
    }

    #[test]
    fn property_on_wrong_packet() {
        // Topic alias (0x23) in CONNECT.
        let b = [3, 0x23, 0, 1];
        assert_eq!(
            decode(&b, PropertyContext::Connect),
            Err(DecodeError::PropertyNotAllowed {
                id: 0x23,
                packet: "CONNECT"
            })
        );
    }

    #[test]
    fn unknown_property() {
        assert_eq!(
            decode(&[2, 0x05, 0], PropertyContext::Publish),
            Err(DecodeError::UnknownProperty(5))
        );
    }

    #[test]
    fn repeated_user_properties_and_sub_ids_are_kept_in_order() {
        let b = [
            19, 0x26, 0, 1, b'a', 0, 1, b'1', 0x0B, 5, 0x26, 0, 1, b'b', 0, 1, b'2', 0x0B, 0x80,
            0x01,
        ];
        let p = decode(&b, PropertyContext::Publish).unwrap();
        let pairs: [(&str, &str); 2] = [("a", "1"), ("b", "2")];
        assert!(p.user_properties.iter().eq(pairs.iter().copied()));
        assert!(p.subscription_identifiers.iter().eq([5u32, 128]));
        // Only one subscription identifier in SUBSCRIBE.
        let b = [4, 0x0B, 1, 0x0B, 2];
        assert_eq!(
            decode(&b, PropertyContext::Subscribe),
            Err(DecodeError::DuplicateProperty(0x0B))
        );
    }

    #[test]
    fn out_of_range_values() {
        assert_eq!(
            decode(&[3, 0x21, 0, 0], PropertyContext::Connect),
            Err(DecodeError::BadPropertyValue(0x21))
        );
        assert_eq!(
            decode(&[2, 0x01, 2], PropertyContext::Publish),
            Err(DecodeError::BadPropertyValue(0x01))
        );
        assert_eq!(
            decode(&[3, 0x23, 0, 0], PropertyContext::Publish),
            Err(DecodeError::BadPropertyValue(0x23))
        );
        assert_eq!(
            decode(&[2, 0x0B, 0], PropertyContext::Publish),
            Err(DecodeError::BadPropertyValue(0x0B))
        );
        assert_eq!(
            decode(&[5, 0x27, 0, 0, 0, 0], PropertyContext::Connect),
            Err(DecodeError::BadPropertyValue(0x27))
        );
    }

    #[test]
    fn truncated_block() {
        assert_eq!(
            decode(&[5, 0x11, 0, 0], PropertyContext::Connect),
            Err(DecodeError::Truncated {
                field: "properties"
            })
        );
        assert_eq!(
            decode(&[2, 0x11, 0], PropertyContext::Connect),
            Err(DecodeError::Truncated { field: "property" })
        );
    }

    #[test]
    fn encode_round_trip() {
        let users = [("k", "v")];
        let p = Properties {
            message_expiry_interval: Some(60),
            content_type: Some("text/plain"),
            user_properties: UserProperties::List(&users),
            subscription_identifiers: SubscriptionIds::List(&[7]),
            ..Default::default()
        };
        let mut out = [0u8; 64];
        let mut w = SliceWriter {
            buf: &mut out,
            pos: 0,
        };
        p.encode(&mut w).unwrap();
        let n = w.pos;
        let q = decode(&out[..n], PropertyContext::Publish).unwrap();
        assert_eq!(p, q);
    }
}
