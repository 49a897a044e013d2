//! CONNACK (section 3.2): session present, the 3.1.1 return code or 5.0 reason code, and the
//! server's capabilities as properties.

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::reason::{ReasonCode, allowed};
use crate::types::ProtocolVersion;
use crate::wire::{Reader, Sink};

/// CONNACK. In 3.1.1 the return code is carried as the equivalent [`ReasonCode`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Connack<'a> {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Connack<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8("connect acknowledge flags")?;
        if flags & 0xFE != 0 {
            return Err(DecodeError::BadConnackFlags);
        }
        let code = r.u8("connect reason code")?;
        let bad = DecodeError::BadReasonCode {
            code,
            packet: "CONNACK",
        };
        let reason = if v.is_v5() {
            if !allowed::CONNACK.contains(&code) {
                return Err(bad);
            }
            ReasonCode::from_u8(code).ok_or(bad)?
        } else {
            ReasonCode::from_v3_connack(code).ok_or(bad)?
        };
        let properties = if v.is_v5() {
            Properties::decode(r, PropertyContext::Connack)?
        } else {
            Properties::default()
        };
        Ok(Self {
            session_present: flags & 1 != 0,
            reason,
            properties,
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        s.put_u8(u8::from(self.session_present))?;
        if v.is_v5() {
            s.put_u8(self.reason.as_u8())?;
            self.properties.encode(s)?;
        } else {
            s.put_u8(self.reason.to_v3_connack())?;
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

    #[test]
    fn v311_return_codes_section_3_2_2_3() {
        assert_eq!(
            dec(&[0x20, 2, 0, 0], V311).unwrap(),
            Packet::Connack(Connack {
                session_present: false,
                reason: ReasonCode::Success,
                properties: Properties::default()
            })
        );
        let Packet::Connack(c) = dec(&[0x20, 2, 1, 5], V311).unwrap() else {
            panic!()
        };
        assert!(c.session_present);
        assert_eq!(c.reason, ReasonCode::NotAuthorized);
        assert_eq!(
            dec(&[0x20, 2, 0, 6], V311),
            Err(DecodeError::BadReasonCode {
                code: 6,
                packet: "CONNACK"
            })
        );
        assert_eq!(
            dec(&[0x20, 2, 2, 0], V311),
            Err(DecodeError::BadConnackFlags)
        );
        // A 5.0 reason without a 3.1.1 equivalent is sent as "server unavailable".
        let c = Connack {
            session_present: false,
            reason: ReasonCode::QuotaExceeded,
            properties: Properties::default(),
        };
        let (out, n) = enc(&Packet::Connack(c), V311);
        assert_eq!(&out[..n], &[0x20, 2, 0, 3]);
    }

    #[test]
    fn v5_with_properties() {
        let c = Connack {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                assigned_client_identifier: Some("auto-1"),
                server_keep_alive: Some(30),
                topic_alias_maximum: Some(10),
                ..Default::default()
            },
        };
        let (out, n) = enc(&Packet::Connack(c), V5);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Connack(c));
        // Reason 0x04 is not allowed in CONNACK.
        assert_eq!(
            dec(&[0x20, 3, 0, 0x04, 0], V5),
            Err(DecodeError::BadReasonCode {
                code: 4,
                packet: "CONNACK"
            })
        );
    }
}
