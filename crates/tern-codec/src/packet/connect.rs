//! CONNECT (section 3.1): protocol name and level, connect flags, keep-alive, properties,
//! client identifier, will, user name and password.

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::topic;
use crate::types::{ProtocolVersion, QoS};
use crate::wire::{Reader, Sink};

/// A will message carried in CONNECT (section 3.1.2.5, 3.1.3.2-3.1.3.4).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
    /// 5.0 will properties (will delay interval, message expiry, content type, ...).
    pub properties: Properties<'a>,
}

/// CONNECT.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Connect<'a> {
    pub protocol: ProtocolVersion,
    /// Clean session (3.1.1) / clean start (5.0).
    pub clean_start: bool,
    /// Seconds; 0 disables keep-alive.
    pub keep_alive: u16,
    pub properties: Properties<'a>,
    /// May be empty: the server then assigns one (or refuses, section 3.1.3.1).
    pub client_id: &'a str,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

impl<'a> Connect<'a> {
    /// A CONNECT with defaults: clean start, keep-alive 60 s, no will, no credentials.
    pub fn new(protocol: ProtocolVersion, client_id: &'a str) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive: 60,
            properties: Properties::default(),
            client_id,
            will: None,
            username: None,
            password: None,
        }
    }

    pub(crate) fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let name = r.binary("protocol name")?;
        let level = r.u8("protocol level")?;
        let protocol = match (name, level) {
            (b"MQTT", 4) => ProtocolVersion::V311,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQIsdp", 3) => ProtocolVersion::V31,
            (b"MQTT" | b"MQIsdp", other) => {
                return Err(DecodeError::UnsupportedProtocolLevel(other));
            }
            _ => return Err(DecodeError::BadProtocolName),
        };
        let flags = r.u8("connect flags")?;
        // [MQTT-3.1.2-3] the reserved flag must be 0.
        if flags & 0x01 != 0 {
            return Err(DecodeError::BadConnectFlags("reserved bit 0 is set"));
        }
        let clean_start = flags & 0x02 != 0;
        let will_flag = flags & 0x04 != 0;
        let will_qos = QoS::from_u8((flags >> 3) & 0x03, "will QoS")?;
        let will_retain = flags & 0x20 != 0;
        let has_password = flags & 0x40 != 0;
        let has_username = flags & 0x80 != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            // [MQTT-3.1.2-11], [MQTT-3.1.2-13], [MQTT-3.1.2-15]
            return Err(DecodeError::BadConnectFlags(
                "will QoS or retain set without a will",
            ));
        }
        if has_password && !has_username && !protocol.is_v5() {
            // [MQTT-3.1.2-22] 3.1.1: no password without a user name.
            return Err(DecodeError::BadConnectFlags(
                "password flag set without user name flag",
            ));
        }
        let keep_alive = r.u16("keep alive")?;
        let properties = if protocol.is_v5() {
            Properties::decode(r, PropertyContext::Connect)?
        } else {
            Properties::default()
        };
        let client_id = r.str("client identifier")?;
        let will = if will_flag {
            let properties = if protocol.is_v5() {
                Properties::decode(r, PropertyContext::Will)?
            } else {
                Properties::default()
            };
            let topic = r.str("will topic")?;
            topic::validate_name(topic).map_err(DecodeError::BadTopicName)?;
            let payload = r.binary("will payload")?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(r.str("user name")?)
        } else {
            None
        };
        let password = if has_password {
            Some(r.binary("password")?)
        } else {
            None
        };
        Ok(Self {
            protocol,
            clean_start,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    pub(crate) fn write_body<S: Sink>(&self, s: &mut S) -> Result<(), EncodeError> {
        let v = self.protocol;
        s.put_str(v.protocol_name(), "protocol name")?;
        s.put_u8(v.level())?;
        let mut flags = 0u8;
        if self.clean_start {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos.as_u8() << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            if self.username.is_none() && !v.is_v5() {
                return Err(EncodeError::Invalid(
                    "a password needs a user name before MQTT 5.0",
                ));
            }
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        s.put_u8(flags)?;
        s.put_u16(self.keep_alive)?;
        if v.is_v5() {
            self.properties.encode(s)?;
        }
        s.put_str(self.client_id, "client identifier")?;
        if let Some(w) = &self.will {
            if v.is_v5() {
                w.properties.encode(s)?;
            }
            s.put_str(w.topic, "will topic")?;
            s.put_binary(w.payload, "will payload")?;
        }
        if let Some(u) = self.username {
            s.put_str(u, "user name")?;
        }
        if let Some(p) = self.password {
            s.put_binary(p, "password")?;
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

    /// MQTT 3.1.1 section 3.1.2.10, figure 3.6 variable header example, completed with a
    /// payload: protocol "MQTT" level 4, flags 0xCE (user name, password, will QoS 1, will,
    /// clean session), keep-alive 10.
    const V311_EXAMPLE: &[u8] = &[
        0x10, 29, // CONNECT, remaining length 29
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x04, // level 4
        0xCE, // flags
        0x00, 0x0A, // keep alive 10
        0x00, 0x02, b'c', b'1', // client id "c1"
        0x00, 0x01, b'w', // will topic "w"
        0x00, 0x03, b'b', b'y', b'e', // will payload "bye"
        0x00, 0x01, b'u', // user name "u"
        0x00, 0x02, b'p', b'w', // password "pw"
    ];

    #[test]
    fn spec_example_v311() {
        let Packet::Connect(c) = dec(V311_EXAMPLE, V311).unwrap() else {
            panic!()
        };
        assert_eq!(c.protocol, V311);
        assert!(c.clean_start);
        assert_eq!(c.keep_alive, 10);
        assert_eq!(c.client_id, "c1");
        let w = c.will.unwrap();
        assert_eq!(
            (w.topic, w.payload, w.qos, w.retain),
            ("w", &b"bye"[..], QoS::AtLeastOnce, false)
        );
        assert_eq!(c.username, Some("u"));
        assert_eq!(c.password, Some(&b"pw"[..]));
        let (out, n) = enc(&Packet::Connect(c), V311);
        assert_eq!(&out[..n], V311_EXAMPLE);
    }

    #[test]
    fn v5_with_properties() {
        let bytes: &[u8] = &[
            0x10, 20, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00,
            0x3C, // clean, ka 60
            5, 0x11, 0x00, 0x00, 0x0E, 0x10, // session expiry 3600
            0x00, 0x02, b'i', b'd', // client id
        ];
        let Packet::Connect(c) = dec(bytes, V5).unwrap() else {
            panic!()
        };
        assert_eq!(c.protocol, V5);
        assert_eq!(c.properties.session_expiry_interval, Some(3600));
        let (out, n) = enc(&Packet::Connect(c), V5);
        assert_eq!(&out[..n], bytes);
    }

    #[test]
    fn mqtt31_mqisdp() {
        let c = Connect::new(V31, "old");
        let (out, n) = enc(&Packet::Connect(c), V31);
        assert_eq!(&out[2..10], &[0, 6, b'M', b'Q', b'I', b's', b'd', b'p']);
        assert_eq!(dec(&out[..n], V311).unwrap(), Packet::Connect(c));
    }

    #[test]
    fn protocol_name_and_level_mqtt_3_1_2_1_and_3_1_2_2() {
        let bad_name = [0x10, 10, 0, 4, b'M', b'Q', b'T', b'X', 4, 2, 0, 60, 0, 0];
        assert_eq!(dec(&bad_name, V311), Err(DecodeError::BadProtocolName));
        let bad_level = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 0];
        assert_eq!(
            dec(&bad_level, V311),
            Err(DecodeError::UnsupportedProtocolLevel(6))
        );
        assert_eq!(
            DecodeError::UnsupportedProtocolLevel(6).reason_code(),
            crate::ReasonCode::UnsupportedProtocolVersion
        );
    }

    #[test]
    fn connect_flags_mqtt_3_1_2_3_and_3_1_2_22() {
        let mk = |flags: u8| {
            [
                0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60, 0, 0,
            ]
        };
        assert_eq!(
            dec(&mk(0x03), V311),
            Err(DecodeError::BadConnectFlags("reserved bit 0 is set"))
        );
        assert_eq!(
            dec(&mk(0x0A), V311),
            Err(DecodeError::BadConnectFlags(
                "will QoS or retain set without a will"
            ))
        );
        assert_eq!(
            dec(&mk(0x22), V311),
            Err(DecodeError::BadConnectFlags(
                "will QoS or retain set without a will"
            ))
        );
        assert_eq!(
            dec(&mk(0x1E), V311),
            Err(DecodeError::BadQos { field: "will QoS" })
        );
        assert_eq!(
            dec(&mk(0x42), V311),
            Err(DecodeError::BadConnectFlags(
                "password flag set without user name flag"
            ))
        );
    }

    #[test]
    fn will_topic_must_be_a_valid_name() {
        // will flag, will topic "a/#"
        let b = [
            0x10, 19, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 0, 0, 3, b'a', b'/', b'#',
            0, 0,
        ];
        assert_eq!(
            dec(&b, V311),
            Err(DecodeError::BadTopicName(topic::TopicError::WildcardInName))
        );
    }

    #[test]
    fn bad_utf8_client_id_mqtt_1_5_4_1() {
        let b = [
            0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 2, 0xC3, 0x28,
        ];
        assert_eq!(
            dec(&b, V311),
            Err(DecodeError::BadString {
                field: "client identifier"
            })
        );
        let b = [
            0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 2, b'a', 0,
        ];
        assert_eq!(
            dec(&b, V311),
            Err(DecodeError::BadString {
                field: "client identifier"
            })
        );
    }

    #[test]
    fn truncated_and_trailing() {
        let b = [0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60];
        assert_eq!(
            dec(&b, V311),
            Err(DecodeError::Truncated {
                field: "client identifier"
            })
        );
        let b = [0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0, 9];
        assert_eq!(dec(&b, V311), Err(DecodeError::TrailingBytes(1)));
    }
}
