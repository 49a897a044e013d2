//! PUBLISH (section 3.3): flags, topic name or topic alias, packet identifier, properties
//! and payload.

use crate::error::{DecodeError, EncodeError};
use crate::properties::{Properties, PropertyContext};
use crate::topic;
use crate::types::{PacketId, ProtocolVersion, QoS};
use crate::wire::{Reader, Sink};

/// PUBLISH.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Publish<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty only in 5.0 with a topic alias property.
    pub topic: &'a str,
    /// Present exactly when `qos` is 1 or 2 [MQTT-2.2.1-2].
    pub packet_id: Option<PacketId>,
    pub properties: Properties<'a>,
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    /// A QoS 0 message with no properties.
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Self {
        Self {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: Properties::default(),
            payload,
        }
    }

    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | (self.qos.as_u8() << 1) | u8::from(self.retain)
    }

    pub(crate) fn decode(
        first: u8,
        r: &mut Reader<'a>,
        v: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8((first >> 1) & 0x03, "PUBLISH")?;
        let dup = first & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            // [MQTT-3.3.1-2]
            return Err(DecodeError::DupOnQos0);
        }
        let topic = r.str("topic name")?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(PacketId::decode(r.u16("packet identifier")?, "PUBLISH")?)
        };
        let properties = if v.is_v5() {
            Properties::decode(r, PropertyContext::Publish)?
        } else {
            Properties::default()
        };
        if topic.is_empty() {
            if !v.is_v5() {
                return Err(DecodeError::BadTopicName(topic::TopicError::Empty));
            }
            if properties.topic_alias.is_none() {
                return Err(DecodeError::EmptyTopicWithoutAlias);
            }
        } else {
            // [MQTT-3.3.2-2] no wildcards in a topic name.
            topic::validate_name(topic).map_err(DecodeError::BadTopicName)?;
        }
        let payload = r.rest();
        Ok(Self {
            dup,
            qos,
            retain: first & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload,
        })
    }

    pub(crate) fn write_body<S: Sink>(
        &self,
        v: ProtocolVersion,
        s: &mut S,
    ) -> Result<(), EncodeError> {
        if self.topic.is_empty() && (!v.is_v5() || self.properties.topic_alias.is_none()) {
            // Only 5.0 with a topic alias may leave the topic empty (fuzz/regressions N3).
            return Err(EncodeError::Invalid(
                "PUBLISH with an empty topic needs an MQTT 5.0 topic alias",
            ));
        }
        s.put_str(self.topic, "topic name")?;
        match (self.qos, self.packet_id) {
            (QoS::AtMostOnce, None) => {}
            (QoS::AtMostOnce, Some(_)) => {
                return Err(EncodeError::Invalid(
                    "QoS 0 PUBLISH with a packet identifier",
                ));
            }
            (_, Some(id)) => s.put_u16(id.get())?,
            (_, None) => {
                return Err(EncodeError::Invalid(
                    "QoS 1 or 2 PUBLISH without a packet identifier",
                ));
            }
        }
        if v.is_v5() {
            self.properties.encode(s)?;
        }
        s.put(self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use crate::packet::test_util::{dec, enc};
    use ProtocolVersion::*;

    /// MQTT 3.1.1 section 3.3.2.3, figure 3.11: topic "a/b", packet identifier 10.
    #[test]
    fn spec_example_figure_3_11() {
        let bytes = [
            0x32, 9, // PUBLISH QoS 1, remaining length 9
            0, 3, b'a', b'/', b'b', // topic name
            0, 10, // packet identifier 10
            b'h', b'i', // payload
        ];
        let Packet::Publish(p) = dec(&bytes, V311).unwrap() else {
            panic!()
        };
        assert_eq!(p.topic, "a/b");
        assert_eq!(p.packet_id, PacketId::new(10));
        assert_eq!(p.payload, b"hi");
        let (out, n) = enc(&Packet::Publish(p), V311);
        assert_eq!(&out[..n], &bytes);
    }

    #[test]
    fn qos3_and_dup_on_qos0_mqtt_3_3_1_2_and_3_3_1_4() {
        assert_eq!(
            dec(&[0x36, 5, 0, 1, b'a', 0, 1], V311),
            Err(DecodeError::BadQos { field: "PUBLISH" })
        );
        assert_eq!(
            dec(&[0x38, 3, 0, 1, b'a'], V311),
            Err(DecodeError::DupOnQos0)
        );
    }

    #[test]
    fn wildcards_and_empty_topic_mqtt_3_3_2_2() {
        assert_eq!(
            dec(&[0x30, 3, 0, 1, b'+'], V311),
            Err(DecodeError::BadTopicName(topic::TopicError::WildcardInName))
        );
        assert_eq!(
            dec(&[0x30, 3, 0, 1, b'#'], V5).map(|_| ()),
            Err(DecodeError::Truncated {
                field: "property length"
            })
        );
        assert_eq!(
            dec(&[0x30, 4, 0, 1, b'#', 0], V5),
            Err(DecodeError::BadTopicName(topic::TopicError::WildcardInName))
        );
        assert_eq!(
            dec(&[0x30, 2, 0, 0], V311),
            Err(DecodeError::BadTopicName(topic::TopicError::Empty))
        );
        assert_eq!(
            dec(&[0x30, 3, 0, 0, 0], V5),
            Err(DecodeError::EmptyTopicWithoutAlias)
        );
        // Empty topic with a topic alias is fine in 5.0.
        let Packet::Publish(p) = dec(&[0x30, 6, 0, 0, 3, 0x23, 0, 1], V5).unwrap() else {
            panic!()
        };
        assert_eq!(p.properties.topic_alias, Some(1));
    }

    #[test]
    fn packet_id_zero_mqtt_2_2_1_3() {
        assert_eq!(
            dec(&[0x32, 5, 0, 1, b'a', 0, 0], V311),
            Err(DecodeError::ZeroPacketId { packet: "PUBLISH" })
        );
    }

    #[test]
    fn v5_properties_forwarded() {
        let users = [("k", "v")];
        let p = Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: true,
            topic: "t",
            packet_id: PacketId::new(7),
            properties: Properties {
                payload_format_indicator: Some(1),
                content_type: Some("json"),
                response_topic: Some("r"),
                correlation_data: Some(b"c"),
                user_properties: crate::properties::UserProperties::List(&users),
                ..Default::default()
            },
            payload: b"{}",
        };
        let (out, n) = enc(&Packet::Publish(p), V5);
        assert_eq!(dec(&out[..n], V5).unwrap(), Packet::Publish(p));
        assert!(
            Packet::Publish(Publish {
                packet_id: None,
                ..p
            })
            .encoded_len(V5)
            .is_err()
        );
    }
}
