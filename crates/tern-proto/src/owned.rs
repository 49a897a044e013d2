//! Owned copies of what the codec hands out as borrowed views: [`OwnedProperties`] and
//! [`Message`]. The codec borrows from the receive buffer, which is reused as soon as the
//! packet is handled; anything that outlives that (an event for the application, a message
//! waiting for its acknowledgement) is kept in these types. Converting back to a view for
//! encoding goes through [`OwnedProperties::with_view`], which borrows without copying
//! strings.

use alloc::string::String;
use alloc::vec::Vec;

use tern_codec::{PacketId, Properties, QoS, SubscriptionIds, UserProperties};

/// Every MQTT 5.0 property, owned. Field meanings are those of [`tern_codec::Properties`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedProperties {
    pub payload_format_indicator: Option<u8>,
    pub message_expiry_interval: Option<u32>,
    pub content_type: Option<String>,
    pub response_topic: Option<String>,
    pub correlation_data: Option<Vec<u8>>,
    /// In the order received; a PUBLISH may carry several.
    pub subscription_identifiers: Vec<u32>,
    pub session_expiry_interval: Option<u32>,
    pub assigned_client_identifier: Option<String>,
    pub server_keep_alive: Option<u16>,
    pub authentication_method: Option<String>,
    pub authentication_data: Option<Vec<u8>>,
    pub request_problem_information: Option<u8>,
    pub will_delay_interval: Option<u32>,
    pub request_response_information: Option<u8>,
    pub response_information: Option<String>,
    pub server_reference: Option<String>,
    pub reason_string: Option<String>,
    pub receive_maximum: Option<u16>,
    pub topic_alias_maximum: Option<u16>,
    /// The alias the sender used, as received (informational: the topic is already resolved).
    pub topic_alias: Option<u16>,
    pub maximum_qos: Option<u8>,
    pub retain_available: Option<u8>,
    /// `(name, value)` pairs in order; names may repeat.
    pub user_properties: Vec<(String, String)>,
    pub maximum_packet_size: Option<u32>,
    pub wildcard_subscription_available: Option<u8>,
    pub subscription_identifier_available: Option<u8>,
    pub shared_subscription_available: Option<u8>,
}

fn s(v: Option<&str>) -> Option<String> {
    v.map(String::from)
}

fn b(v: Option<&[u8]>) -> Option<Vec<u8>> {
    v.map(<[u8]>::to_vec)
}

impl OwnedProperties {
    /// Copies a decoded property block.
    pub fn from_view(p: &Properties<'_>) -> Self {
        Self {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: s(p.content_type),
            response_topic: s(p.response_topic),
            correlation_data: b(p.correlation_data),
            subscription_identifiers: p.subscription_identifiers.iter().collect(),
            session_expiry_interval: p.session_expiry_interval,
            assigned_client_identifier: s(p.assigned_client_identifier),
            server_keep_alive: p.server_keep_alive,
            authentication_method: s(p.authentication_method),
            authentication_data: b(p.authentication_data),
            request_problem_information: p.request_problem_information,
            will_delay_interval: p.will_delay_interval,
            request_response_information: p.request_response_information,
            response_information: s(p.response_information),
            server_reference: s(p.server_reference),
            reason_string: s(p.reason_string),
            receive_maximum: p.receive_maximum,
            topic_alias_maximum: p.topic_alias_maximum,
            topic_alias: p.topic_alias,
            maximum_qos: p.maximum_qos,
            retain_available: p.retain_available,
            user_properties: p
                .user_properties
                .iter()
                .map(|(k, v)| (String::from(k), String::from(v)))
                .collect(),
            maximum_packet_size: p.maximum_packet_size,
            wildcard_subscription_available: p.wildcard_subscription_available,
            subscription_identifier_available: p.subscription_identifier_available,
            shared_subscription_available: p.shared_subscription_available,
        }
    }

    /// Calls `f` with a borrowed view of these properties (for encoding). Only the list of
    /// user-property references is allocated.
    pub fn with_view<R>(&self, f: impl FnOnce(Properties<'_>) -> R) -> R {
        let users: Vec<(&str, &str)> = self
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        f(Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            subscription_identifiers: SubscriptionIds::List(&self.subscription_identifiers),
            session_expiry_interval: self.session_expiry_interval,
            assigned_client_identifier: self.assigned_client_identifier.as_deref(),
            server_keep_alive: self.server_keep_alive,
            authentication_method: self.authentication_method.as_deref(),
            authentication_data: self.authentication_data.as_deref(),
            request_problem_information: self.request_problem_information,
            will_delay_interval: self.will_delay_interval,
            request_response_information: self.request_response_information,
            response_information: self.response_information.as_deref(),
            server_reference: self.server_reference.as_deref(),
            reason_string: self.reason_string.as_deref(),
            receive_maximum: self.receive_maximum,
            topic_alias_maximum: self.topic_alias_maximum,
            topic_alias: self.topic_alias,
            maximum_qos: self.maximum_qos,
            retain_available: self.retain_available,
            user_properties: UserProperties::List(&users),
            maximum_packet_size: self.maximum_packet_size,
            wildcard_subscription_available: self.wildcard_subscription_available,
            subscription_identifier_available: self.subscription_identifier_available,
            shared_subscription_available: self.shared_subscription_available,
        })
    }

    /// True when no property is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Approximate heap bytes held, for queue accounting.
    pub fn heap_size(&self) -> usize {
        let o = |v: &Option<String>| v.as_ref().map_or(0, String::len);
        o(&self.content_type)
            + o(&self.response_topic)
            + self.correlation_data.as_ref().map_or(0, Vec::len)
            + self.subscription_identifiers.len() * 4
            + self
                .user_properties
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

/// An application message, owned: what the client receives and what it queues for sending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The topic name, with any topic alias already resolved.
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: QoS,
    pub retain: bool,
    /// Set by the sender on a redelivery (received messages only).
    pub dup: bool,
    /// The packet identifier it arrived with (received QoS 1/2 messages only); `%m` in
    /// `tern sub -F`.
    pub packet_id: Option<PacketId>,
    /// PUBLISH properties (5.0): payload format, expiry, content type, response topic,
    /// correlation data, user properties, subscription identifiers.
    pub properties: OwnedProperties,
}

impl Message {
    /// A QoS 0, non-retained message with no properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            ..Self::default()
        }
    }

    /// The same message at `qos`.
    pub fn with_qos(mut self, qos: QoS) -> Self {
        self.qos = qos;
        self
    }

    /// The same message with the retain flag set to `retain`.
    pub fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Approximate heap bytes held, for queue accounting.
    pub fn heap_size(&self) -> usize {
        self.topic.len() + self.payload.len() + self.properties.heap_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use tern_codec::{Packet, ProtocolVersion, Publish, decode};

    #[test]
    fn view_round_trip_keeps_user_property_order() {
        let mut p = OwnedProperties {
            content_type: Some("text/plain".into()),
            correlation_data: Some(b"\x00\x01".to_vec()),
            message_expiry_interval: Some(30),
            subscription_identifiers: alloc::vec![3],
            ..Default::default()
        };
        p.user_properties.push(("b".to_string(), "1".to_string()));
        p.user_properties.push(("a".to_string(), "2".to_string()));
        p.user_properties.push(("b".to_string(), "3".to_string()));
        let mut buf = [0u8; 128];
        let n = p
            .with_view(|props| {
                Packet::Publish(Publish {
                    properties: props,
                    ..Publish::new("t", b"x")
                })
                .encode(ProtocolVersion::V5, &mut buf)
            })
            .unwrap();
        let (pkt, _) = decode(&buf[..n], ProtocolVersion::V5, 1024)
            .unwrap()
            .unwrap();
        let Packet::Publish(decoded) = pkt else {
            panic!("not a publish")
        };
        assert_eq!(OwnedProperties::from_view(&decoded.properties), p);
    }
}
