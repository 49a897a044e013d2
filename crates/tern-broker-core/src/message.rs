//! An application message as the broker keeps it: owned, shared by every session it is
//! delivered to (`Arc`), with the 5.0 properties that are forwarded unchanged.

use std::sync::Arc;

use tern_codec::{Properties, Publish, QoS, UserProperties};
use tern_proto::Timestamp;

/// A message in the broker. Cloning the [`MsgRef`] is how fan-out shares it.
#[derive(Debug, PartialEq)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Box<[u8]>,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    pub payload_format_indicator: Option<u8>,
    pub content_type: Option<Box<str>>,
    pub response_topic: Option<Box<str>>,
    pub correlation_data: Option<Box<[u8]>>,
    /// The publisher's property block; only its user properties are read from it.
    pub user_properties: Option<Box<[u8]>>,
    /// When the message stops being deliverable (5.0 message expiry interval).
    pub expires_at: Option<Timestamp>,
    /// The session that published it, for no-local; `None` for wills and `$SYS`.
    pub origin: Option<usize>,
}

/// A shared message.
pub type MsgRef = Arc<Message>;

impl Message {
    /// Builds a message from a decoded PUBLISH; `topic` is the alias-resolved topic.
    pub fn from_publish(
        p: &Publish<'_>,
        topic: Arc<str>,
        now: Timestamp,
        origin: Option<usize>,
    ) -> Self {
        Self::from_parts(
            topic,
            p.payload,
            p.qos,
            p.retain,
            &p.properties,
            now,
            origin,
        )
    }

    /// Builds a message from its parts (PUBLISH or will).
    pub fn from_parts(
        topic: Arc<str>,
        payload: &[u8],
        qos: QoS,
        retain: bool,
        props: &Properties<'_>,
        now: Timestamp,
        origin: Option<usize>,
    ) -> Self {
        let user_properties = match props.user_properties {
            UserProperties::Block(b) => Some(Box::from(b)),
            UserProperties::List([]) => None,
            UserProperties::List(l) => Some(encode_user_properties(l)),
        };
        Self {
            topic,
            payload: Box::from(payload),
            qos,
            retain,
            payload_format_indicator: props.payload_format_indicator,
            content_type: props.content_type.map(Box::from),
            response_topic: props.response_topic.map(Box::from),
            correlation_data: props.correlation_data.map(Box::from),
            user_properties,
            expires_at: props
                .message_expiry_interval
                .map(|s| now.plus_secs(u64::from(s))),
            origin,
        }
    }

    /// A plain message (used for `$SYS`).
    pub fn simple(topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Self {
        Self {
            topic: Arc::from(topic),
            payload: Box::from(payload),
            qos,
            retain,
            payload_format_indicator: None,
            content_type: None,
            response_topic: None,
            correlation_data: None,
            user_properties: None,
            expires_at: None,
            origin: None,
        }
    }

    /// True once the message expiry interval has passed.
    pub fn expired(&self, now: Timestamp) -> bool {
        matches!(self.expires_at, Some(t) if now >= t)
    }

    /// Seconds of life left, for the outgoing message expiry interval [MQTT-3.3.2-6].
    pub fn remaining_expiry(&self, now: Timestamp) -> Option<u32> {
        self.expires_at
            .map(|t| u32::try_from(t.0.saturating_sub(now.0).div_ceil(1000)).unwrap_or(u32::MAX))
    }

    /// Bytes this message costs in a queue (for `max_queued_bytes` and `memory_limit`).
    pub fn cost(&self) -> usize {
        self.payload.len() + self.topic.len() + 64
    }

    /// The forwarded 5.0 properties, with the expiry counted down to `now`.
    pub fn properties(&self, now: Timestamp) -> Properties<'_> {
        Properties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.remaining_expiry(now),
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            user_properties: match &self.user_properties {
                Some(b) => UserProperties::Block(b),
                None => UserProperties::default(),
            },
            ..Properties::default()
        }
    }
}

/// Encodes a caller's user property list as a property block (0x26 entries).
fn encode_user_properties(list: &[(&str, &str)]) -> Box<[u8]> {
    let mut out = Vec::new();
    for (k, v) in list {
        out.push(0x26);
        for s in [k, v] {
            let b = s.as_bytes();
            let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&b[..usize::from(len)]);
        }
    }
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_down_mqtt_3_3_2_6() {
        let props = Properties {
            message_expiry_interval: Some(10),
            ..Default::default()
        };
        let m = Message::from_parts(
            "t".into(),
            b"x",
            QoS::AtLeastOnce,
            false,
            &props,
            Timestamp(1_000),
            None,
        );
        assert_eq!(m.remaining_expiry(Timestamp(1_000)), Some(10));
        assert_eq!(m.remaining_expiry(Timestamp(4_500)), Some(7));
        assert!(!m.expired(Timestamp(10_999)));
        assert!(m.expired(Timestamp(11_000)));
    }

    #[test]
    fn user_properties_from_list_round_trip() {
        let list = [("a", "1"), ("b", "2")];
        let props = Properties {
            user_properties: UserProperties::List(&list),
            ..Default::default()
        };
        let m = Message::from_parts(
            "t".into(),
            b"",
            QoS::AtMostOnce,
            false,
            &props,
            Timestamp(0),
            None,
        );
        assert!(
            m.properties(Timestamp(0))
                .user_properties
                .iter()
                .eq(list.iter().copied())
        );
    }
}
