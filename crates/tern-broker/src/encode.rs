//! Turns the broker core's [`Out`] packets into bytes for one connection: its protocol
//! version, its outbound topic aliases, and whether it accepts reason strings.

use std::sync::Arc;

use tern_broker_core::{ConnackInfo, Delivery, Out};
use tern_codec::{
    Ack, Connack, Disconnect, Packet, Properties, ProtocolVersion, Publish, ReasonCode, Suback,
    SubscriptionIds, Unsuback,
};
use tern_proto::alias::OutboundAlias;
use tern_proto::{OutboundAliases, Timestamp};

/// Appends the encoding of `p` to `out`.
pub fn encode_packet(p: &Packet<'_>, v: ProtocolVersion, out: &mut Vec<u8>) {
    let Ok(len) = p.encoded_len(v) else {
        tracing::warn!(
            packet = p.packet_type().name(),
            "packet too large to encode; not sent"
        );
        return;
    };
    let start = out.len();
    out.resize(start + len, 0);
    if p.encode(v, &mut out[start..]).is_err() {
        out.truncate(start);
        tracing::warn!(
            packet = p.packet_type().name(),
            "packet could not be encoded; not sent"
        );
    }
}

/// Per-connection encoding state.
#[derive(Debug)]
pub struct Encoder {
    pub version: ProtocolVersion,
    pub aliases: OutboundAliases,
    /// 5.0 request problem information: reason strings may go on acks.
    pub problem_information: bool,
}

impl Encoder {
    pub fn new(version: ProtocolVersion, client_alias_max: u16, problem_information: bool) -> Self {
        Self {
            version,
            aliases: OutboundAliases::new(client_alias_max),
            problem_information,
        }
    }

    /// Encodes one [`Out`] into `buf`.
    pub fn encode(&mut self, o: &Out, now: Timestamp, buf: &mut Vec<u8>) {
        let v = self.version;
        match o {
            Out::Connack(info) => encode_connack(info, v, buf),
            Out::Publish(d) => self.encode_publish(d, now, buf),
            Out::Puback(id, r) => encode_packet(&Packet::Puback(ack(*id, *r)), v, buf),
            Out::Pubrec(id, r) => encode_packet(&Packet::Pubrec(ack(*id, *r)), v, buf),
            Out::Pubrel(id, r) => encode_packet(&Packet::Pubrel(ack(*id, *r)), v, buf),
            Out::Pubcomp(id, r) => encode_packet(&Packet::Pubcomp(ack(*id, *r)), v, buf),
            Out::Suback(id, codes) => encode_packet(
                &Packet::Suback(Suback {
                    packet_id: *id,
                    properties: Properties::default(),
                    reasons: codes,
                }),
                v,
                buf,
            ),
            Out::Unsuback(id, codes) => encode_packet(
                &Packet::Unsuback(Unsuback {
                    packet_id: *id,
                    properties: Properties::default(),
                    reasons: codes,
                }),
                v,
                buf,
            ),
            Out::Pingresp => encode_packet(&Packet::Pingresp, v, buf),
            Out::Disconnect(reason, text) => {
                if v.is_v5() {
                    encode_disconnect(*reason, *text, buf);
                }
            }
        }
    }

    fn encode_publish(&mut self, d: &Delivery, now: Timestamp, buf: &mut Vec<u8>) {
        let msg = &d.msg;
        let mut props = msg.properties(now);
        let mut topic: &str = &msg.topic;
        if self.version.is_v5() {
            props.subscription_identifiers = SubscriptionIds::List(d.sub_ids.as_slice());
            match self.aliases.assign(&msg.topic) {
                OutboundAlias::None => {}
                OutboundAlias::Set(a) => props.topic_alias = Some(a),
                OutboundAlias::Use(a) => {
                    props.topic_alias = Some(a);
                    topic = "";
                }
            }
        }
        let p = Publish {
            dup: d.dup,
            qos: d.qos,
            retain: d.retain,
            topic,
            packet_id: d.pid,
            properties: props,
            payload: &msg.payload,
        };
        encode_packet(&Packet::Publish(p), self.version, buf);
    }
}

fn ack(id: tern_codec::PacketId, reason: ReasonCode) -> Ack<'static> {
    Ack {
        packet_id: id,
        reason,
        properties: Properties::default(),
    }
}

/// CONNACK with the broker's properties (5.0) or the 3.1.1 return code.
pub fn encode_connack(info: &ConnackInfo, v: ProtocolVersion, buf: &mut Vec<u8>) {
    let props = Properties {
        assigned_client_identifier: info.assigned_client_identifier.as_deref(),
        server_keep_alive: info.server_keep_alive,
        receive_maximum: info.receive_maximum,
        maximum_packet_size: info.maximum_packet_size,
        topic_alias_maximum: info.topic_alias_maximum,
        retain_available: info.retain_available,
        maximum_qos: info.maximum_qos,
        session_expiry_interval: info.session_expiry_interval,
        response_information: info.response_information.as_deref(),
        reason_string: info.reason_string.as_deref(),
        ..Properties::default()
    };
    let c = Connack {
        session_present: info.session_present,
        reason: info.reason,
        properties: props,
    };
    encode_packet(&Packet::Connack(c), v, buf);
}

/// A 5.0 DISCONNECT with a reason (and a short reason string).
pub fn encode_disconnect(reason: ReasonCode, text: Option<&str>, buf: &mut Vec<u8>) {
    let d = Disconnect {
        reason,
        properties: Properties {
            reason_string: text,
            ..Properties::default()
        },
    };
    encode_packet(&Packet::Disconnect(d), ProtocolVersion::V5, buf);
}

/// Shares a topic string with the alias table.
pub fn topic_arc(t: &str) -> Arc<str> {
    Arc::from(t)
}
