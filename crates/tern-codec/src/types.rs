//! Small validated types shared by the packets: QoS, packet identifiers, protocol versions and
//! subscription options.

use core::num::NonZeroU16;

use crate::error::DecodeError;

/// Quality of service (section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(u8)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// [MQTT-3.3.1-4] QoS 3 is an error.
    pub fn from_u8(v: u8, field: &'static str) -> Result<Self, DecodeError> {
        match v {
            0 => Ok(Self::AtMostOnce),
            1 => Ok(Self::AtLeastOnce),
            2 => Ok(Self::ExactlyOnce),
            _ => Err(DecodeError::BadQos { field }),
        }
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A non-zero packet identifier [MQTT-2.2.1-3].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(NonZeroU16);

impl PacketId {
    /// Identifier 1.
    pub const MIN: PacketId = PacketId(NonZeroU16::MIN);

    /// `None` for 0.
    pub const fn new(v: u16) -> Option<Self> {
        match NonZeroU16::new(v) {
            Some(n) => Some(Self(n)),
            None => None,
        }
    }

    /// The wire value.
    pub const fn get(self) -> u16 {
        self.0.get()
    }

    /// The next identifier, wrapping from 65535 to 1.
    pub const fn next(self) -> Self {
        match NonZeroU16::new(self.0.get().wrapping_add(1)) {
            Some(n) => Self(n),
            None => Self(NonZeroU16::MIN),
        }
    }

    pub(crate) fn decode(v: u16, packet: &'static str) -> Result<Self, DecodeError> {
        Self::new(v).ok_or(DecodeError::ZeroPacketId { packet })
    }
}

impl core::fmt::Display for PacketId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

/// The protocol level of a connection (section 3.1.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name "MQIsdp", level 3.
    V31 = 3,
    /// MQTT 3.1.1, level 4.
    V311 = 4,
    /// MQTT 5.0, level 5.
    V5 = 5,
}

impl ProtocolVersion {
    /// The protocol level byte.
    pub const fn level(self) -> u8 {
        self as u8
    }

    /// True for MQTT 5.0, where packets carry properties and reason codes.
    pub const fn is_v5(self) -> bool {
        matches!(self, Self::V5)
    }

    /// The protocol name carried in CONNECT.
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::V31 => "MQIsdp",
            _ => "MQTT",
        }
    }
}

impl core::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::V31 => "MQTT 3.1",
            Self::V311 => "MQTT 3.1.1",
            Self::V5 => "MQTT 5.0",
        })
    }
}

/// Retain handling subscription option (MQTT 5.0 section 3.8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAtSubscribe = 0,
    /// Send retained messages only if the subscription did not already exist.
    SendIfNew = 1,
    /// Do not send retained messages.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// 5.0: do not send the client's own publications back to it.
    pub no_local: bool,
    /// 5.0: keep the RETAIN flag as published instead of clearing it on live messages.
    pub retain_as_published: bool,
    /// 5.0: when to send retained messages.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// A plain subscription at `qos` with every 5.0 option at its default.
    pub const fn qos(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    pub(crate) fn decode(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        if version.is_v5() {
            if b & 0xC0 != 0 {
                // [MQTT-3.8.3-5] reserved bits set: a malformed packet.
                return Err(DecodeError::ReservedSubscriptionBits);
            }
            if b & 0x03 == 3 {
                // 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3".
                return Err(DecodeError::BadSubscriptionOptions("maximum QoS is 3"));
            }
            let retain_handling = match (b >> 4) & 0x03 {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendIfNew,
                2 => RetainHandling::DoNotSend,
                _ => return Err(DecodeError::BadSubscriptionOptions("retain handling is 3")),
            };
            Ok(Self {
                qos: QoS::from_u8(b & 0x03, "subscription options")?,
                no_local: b & 0x04 != 0,
                retain_as_published: b & 0x08 != 0,
                retain_handling,
            })
        } else {
            // [MQTT-3-8.3-4] 3.1.1: the upper six bits are reserved.
            if b & 0xFC != 0 {
                return Err(DecodeError::ReservedSubscriptionBits);
            }
            Ok(Self::qos(QoS::from_u8(b & 0x03, "requested QoS")?))
        }
    }

    pub(crate) fn encode(self, version: ProtocolVersion) -> u8 {
        let mut b = self.qos.as_u8();
        if version.is_v5() {
            if self.no_local {
                b |= 0x04;
            }
            if self.retain_as_published {
                b |= 0x08;
            }
            b |= (self.retain_handling as u8) << 4;
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_id_wraps_to_one_mqtt_2_2_1_3() {
        assert_eq!(PacketId::new(0), None);
        assert_eq!(PacketId::new(65535).unwrap().next().get(), 1);
        assert_eq!(PacketId::new(1).unwrap().next().get(), 2);
    }

    #[test]
    fn subscription_options_bits() {
        let o = SubscriptionOptions::decode(0b0010_1110, ProtocolVersion::V5).unwrap();
        assert_eq!(o.qos, QoS::ExactlyOnce);
        assert!(o.no_local && o.retain_as_published);
        assert_eq!(o.retain_handling, RetainHandling::DoNotSend);
        assert_eq!(o.encode(ProtocolVersion::V5), 0b0010_1110);
        assert!(SubscriptionOptions::decode(0b0011_0000, ProtocolVersion::V5).is_err());
        assert!(SubscriptionOptions::decode(0b0100_0000, ProtocolVersion::V5).is_err());
        assert!(SubscriptionOptions::decode(0b0000_0100, ProtocolVersion::V311).is_err());
        assert!(SubscriptionOptions::decode(0x03, ProtocolVersion::V311).is_err());
    }
}
