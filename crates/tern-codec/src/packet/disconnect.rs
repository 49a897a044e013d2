//! DISCONNECT (section 3.14) and AUTH (section 3.15, 5.0 only).

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::reason::{ReasonCode, allowed};
use crate::types::ProtocolVersion;
use crate::wire::{Reader, Sink};

/// DISCONNECT. 3.1.1 carries nothing; 5.0 a reason and properties.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disconnect<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    /// A normal disconnection, or one with `reason`.
    pub fn new(reason: ReasonCode) -> Self {
        Self {
            reason,
            properties: Properties::default(),
        }
    }

    pub(crate) fn decode(r: &mut Reader<'a>, v: ProtocolVersion) -> Result<Self, DecodeError> {
        if !v.is_v5() || r.is_empty() {
            return Ok(Self::new(ReasonCode::Success));
        }
        let code = r.u8("reason code")?;
        let bad = DecodeError::BadReasonCode {
            code,
            packet: "DISCONNECT",
        };
        if !allowed::DISCONNECT.contains(&code) {
            return Err(bad);
        }
        let reason = ReasonCode::from_u8(code).ok_or(bad)?;
        let properties = if r.is_empty() {
            Properties::default()
        } else {
            Properties::decode(r, PropertyContext::Disconnect)?
        };
        Ok(Self { reason, properties })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if !v.is_v5() {
            return Ok(());
        }
        // With a reason, the property length is always written (`e0 02 8e 00`, not
        // `e0 01 8e`): both are valid (3.14.2.2.1), and some clients only decode the former.
        if self.reason != ReasonCode::Success || !self.properties.is_empty() {
            s.put_u8(self.reason.as_u8())?;
            self.properties.encode(s)?;
        }
        Ok(())
    }
}

/// AUTH (5.0 only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Auth<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Auth<'a> {
    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        if r.is_empty() {
            return Ok(Self {
                reason: ReasonCode::Success,
                properties: Properties::default(),
            });
        }
        let code = r.u8("reason code")?;
        let bad = DecodeError::BadReasonCode {
            code,
            packet: "AUTH",
        };
        if !allowed::AUTH.contains(&code) {
            return Err(bad);
        }
        let reason = ReasonCode::from_u8(code).ok_or(bad)?;
        let properties = if r.is_empty() {
            Properties::default()
        } else {
            Properties::decode(r, PropertyContext::Auth)?
        };
        Ok(Self { reason, properties })
    }

    pub(crate) fn write_body<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
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

    #[test]
    fn normal_and_with_reason() {
        assert_eq!(
            dec(&[0xE0, 0], V311).unwrap(),
            Packet::Disconnect(Disconnect::new(ReasonCode::Success))
        );
        assert_eq!(
            dec(&[0xE0, 1, 0x00], V311),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            dec(&[0xE0, 1, 0x04], V5).unwrap(),
            Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWill))
        );
        let d = Disconnect {
            reason: ReasonCode::SessionTakenOver,
            properties: Properties {
                reason_string: Some("another connection"),
                ..Default::default()
            },
        };
        let (out, n) = enc(&Packet::Disconnect(d), V5);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Disconnect(d));
        let (out, n) = enc(&Packet::Disconnect(d), V311);
        assert_eq!(&out[..n], &[0xE0, 0]);
        assert_eq!(
            dec(&[0xE0, 1, 0x01], V5),
            Err(DecodeError::BadReasonCode {
                code: 1,
                packet: "DISCONNECT"
            })
        );
    }

    #[test]
    fn auth_v5_only() {
        let a = Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("SCRAM-SHA-1"),
                ..Default::default()
            },
        };
        let (out, n) = enc(&Packet::Auth(a), V5);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Auth(a));
        assert!(Packet::Auth(a).encoded_len(V311).is_err());
        // Session expiry is not allowed in AUTH.
        assert_eq!(
            dec(&[0xF0, 7, 0x18, 5, 0x11, 0, 0, 0, 1], V5),
            Err(DecodeError::PropertyNotAllowed {
                id: 0x11,
                packet: "AUTH"
            })
        );
    }
}
