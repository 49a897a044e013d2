//! PUBACK, PUBREC, PUBREL and PUBCOMP (sections 3.4-3.7): a packet identifier and, in 5.0, a
//! reason code and properties that may be left out when they are the defaults.

use super::PacketType;
use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::reason::{ReasonCode, allowed};
use crate::types::{PacketId, ProtocolVersion};
use crate::wire::{Reader, Sink};

/// The body shared by the four QoS acknowledgement packets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ack<'a> {
    pub packet_id: PacketId,
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Ack<'a> {
    /// A success acknowledgement.
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode(
        t: PacketType,
        r: &mut Reader<'a>,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = PacketId::decode(r.u16("packet identifier")?, t.name())?;
        if !v.is_v5() || r.is_empty() {
            return Ok(Self::new(packet_id));
        }
        let code = r.u8("reason code")?;
        let set = match t {
            PacketType::Puback | PacketType::Pubrec => allowed::PUBACK,
            _ => allowed::PUBREL,
        };
        let bad = DecodeError::BadReasonCode {
            code,
            packet: t.name(),
        };
        if !set.contains(&code) {
            return Err(bad);
        }
        let reason = ReasonCode::from_u8(code).ok_or(bad)?;
        // 3.4.2.2: the property length may be left out when there are no properties.
        let properties = if r.is_empty() {
            Properties::default()
        } else {
            Properties::decode(r, PropertyContext::PubAck)?
        };
        Ok(Self {
            packet_id,
            reason,
            properties,
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get())?;
        if !v.is_v5() {
            return Ok(());
        }
        let props = !self.properties.is_empty();
        if self.reason != ReasonCode::Success || props {
            s.put_u8(self.reason.as_u8())?;
        }
        if props {
            self.properties.encode(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::packet::test_util::{dec, enc};
    use ProtocolVersion::*;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    #[test]
    fn short_forms_section_3_4_2_1() {
        assert_eq!(
            dec(&[0x40, 2, 0, 5], V5).unwrap(),
            Packet::Puback(Ack::new(id(5)))
        );
        assert_eq!(
            dec(&[0x50, 3, 0, 5, 0x10], V5).unwrap(),
            Packet::Pubrec(Ack {
                reason: ReasonCode::NoMatchingSubscribers,
                ..Ack::new(id(5))
            })
        );
        let (out, n) = enc(&Packet::Pubcomp(Ack::new(id(9))), V5);
        assert_eq!(&out[..n], &[0x70, 2, 0, 9]);
        let (out, n) = enc(
            &Packet::Pubrel(Ack {
                reason: ReasonCode::PacketIdentifierNotFound,
                ..Ack::new(id(9))
            }),
            V5,
        );
        assert_eq!(&out[..n], &[0x62, 3, 0, 9, 0x92]);
        // 3.1.1 carries only the identifier.
        let (out, n) = enc(
            &Packet::Puback(Ack {
                reason: ReasonCode::QuotaExceeded,
                ..Ack::new(id(1))
            }),
            V311,
        );
        assert_eq!(&out[..n], &[0x40, 2, 0, 1]);
        assert_eq!(
            dec(&[0x40, 3, 0, 1, 0], V311),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn bad_reason_and_zero_id() {
        assert_eq!(
            dec(&[0x62, 3, 0, 1, 0x10], V5),
            Err(DecodeError::BadReasonCode {
                code: 0x10,
                packet: "PUBREL"
            })
        );
        assert_eq!(
            dec(&[0x40, 2, 0, 0], V311),
            Err(DecodeError::ZeroPacketId { packet: "PUBACK" })
        );
    }

    #[test]
    fn with_reason_string() {
        let a = Ack {
            packet_id: id(3),
            reason: ReasonCode::NotAuthorized,
            properties: Properties {
                reason_string: Some("denied by ACL"),
                ..Default::default()
            },
        };
        let (out, n) = enc(&Packet::Puback(a), V5);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Puback(a));
    }
}
