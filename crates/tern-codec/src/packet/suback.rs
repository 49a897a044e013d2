//! SUBACK and UNSUBACK (sections 3.9 and 3.11): one return or reason code per filter.

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::reason::allowed;
use crate::types::{PacketId, ProtocolVersion};
use crate::wire::{Reader, Sink};

/// SUBACK. `reasons` holds one code byte per filter: 0, 1, 2 (granted QoS) or a failure
/// (>= 0x80). For 3.1.1 every failure is sent as 0x80.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Suback<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    pub reasons: &'a [u8],
}

impl<'a> Suback<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = PacketId::decode(r.u16("packet identifier")?, "SUBACK")?;
        let properties = if v.is_v5() {
            Properties::decode(r, PropertyContext::Suback)?
        } else {
            Properties::default()
        };
        let reasons = r.rest();
        if reasons.is_empty() {
            return Err(DecodeError::Truncated {
                field: "SUBACK return codes",
            });
        }
        for &code in reasons {
            let ok = if v.is_v5() {
                allowed::SUBACK.contains(&code)
            } else {
                matches!(code, 0 | 1 | 2 | 0x80)
            };
            if !ok {
                return Err(DecodeError::BadReasonCode {
                    code,
                    packet: "SUBACK",
                });
            }
        }
        Ok(Self {
            packet_id,
            properties,
            reasons,
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get())?;
        if v.is_v5() {
            self.properties.encode(s)?;
            s.put(self.reasons)
        } else {
            for &c in self.reasons {
                s.put_u8(if c >= 0x80 { 0x80 } else { c })?;
            }
            Ok(())
        }
    }
}

/// UNSUBACK. 3.1.1 carries no codes; 5.0 carries one per filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unsuback<'a> {
    pub packet_id: PacketId,
    pub properties: Properties<'a>,
    pub reasons: &'a [u8],
}

impl<'a> Unsuback<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let packet_id = PacketId::decode(r.u16("packet identifier")?, "UNSUBACK")?;
        if !v.is_v5() {
            return Ok(Self {
                packet_id,
                properties: Properties::default(),
                reasons: &[],
            });
        }
        let properties = Properties::decode(r, PropertyContext::Unsuback)?;
        let reasons = r.rest();
        for &code in reasons {
            if !allowed::UNSUBACK.contains(&code) {
                return Err(DecodeError::BadReasonCode {
                    code,
                    packet: "UNSUBACK",
                });
            }
        }
        Ok(Self {
            packet_id,
            properties,
            reasons,
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u16(self.packet_id.get())?;
        if v.is_v5() {
            self.properties.encode(s)?;
            s.put(self.reasons)?;
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

    /// MQTT 3.1.1 section 3.9.3, figure 3.26: granted QoS 0, failure, granted QoS 2.
    #[test]
    fn spec_example_figure_3_26() {
        let bytes = [0x90, 5, 0, 10, 0x00, 0x80, 0x02];
        let Packet::Suback(s) = dec(&bytes, V311).unwrap() else {
            panic!()
        };
        assert_eq!(s.reasons, &[0, 0x80, 2]);
        let (out, n) = enc(&Packet::Suback(s), V311);
        assert_eq!(&out[..n], &bytes);
        assert_eq!(
            dec(&[0x90, 3, 0, 1, 3], V311),
            Err(DecodeError::BadReasonCode {
                code: 3,
                packet: "SUBACK"
            })
        );
    }

    #[test]
    fn v5_failure_codes_become_0x80_for_v311() {
        let s = Suback {
            packet_id: PacketId::new(1).unwrap(),
            properties: Properties::default(),
            reasons: &[0x87, 0x01],
        };
        let (out, n) = enc(&Packet::Suback(s), V311);
        assert_eq!(&out[..n], &[0x90, 4, 0, 1, 0x80, 0x01]);
        let (out, n) = enc(&Packet::Suback(s), V5);
        assert_eq!(&out[..n], &[0x90, 5, 0, 1, 0, 0x87, 0x01]);
    }

    #[test]
    fn unsuback_versions() {
        let u = Unsuback {
            packet_id: PacketId::new(1).unwrap(),
            properties: Properties::default(),
            reasons: &[0x00, 0x11],
        };
        let (out, n) = enc(&Packet::Unsuback(u), V5);
        assert_eq!(&out[..n], &[0xB0, 5, 0, 1, 0, 0x00, 0x11]);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Unsuback(u));
        let (out, n) = enc(&Packet::Unsuback(u), V311);
        assert_eq!(&out[..n], &[0xB0, 2, 0, 1]);
    }
}
