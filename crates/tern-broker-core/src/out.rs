//! What the broker core asks a connection driver to send. The driver encodes these for the
//! connection's protocol version (and topic aliases) outside the broker lock.

use std::sync::Arc;

use tern_codec::{PacketId, QoS, ReasonCode};

use crate::message::MsgRef;
use crate::session::SubIds;

/// CONNACK properties the broker decided (5.0; ignored for 3.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnackInfo {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub assigned_client_identifier: Option<Arc<str>>,
    pub server_keep_alive: Option<u16>,
    pub receive_maximum: Option<u16>,
    pub maximum_packet_size: Option<u32>,
    pub topic_alias_maximum: Option<u16>,
    pub retain_available: Option<u8>,
    pub maximum_qos: Option<u8>,
    pub session_expiry_interval: Option<u32>,
    pub response_information: Option<String>,
    pub reason_string: Option<String>,
}

impl ConnackInfo {
    /// A CONNACK with `reason` and no properties.
    pub fn new(reason: ReasonCode) -> Self {
        Self {
            session_present: false,
            reason,
            assigned_client_identifier: None,
            server_keep_alive: None,
            receive_maximum: None,
            maximum_packet_size: None,
            topic_alias_maximum: None,
            retain_available: None,
            maximum_qos: None,
            session_expiry_interval: None,
            response_information: None,
            reason_string: None,
        }
    }
}

/// One message to deliver.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub pid: Option<PacketId>,
    pub msg: MsgRef,
    pub qos: QoS,
    pub retain: bool,
    pub dup: bool,
    pub sub_ids: SubIds,
}

/// A packet to send.
#[derive(Clone, Debug)]
pub enum Out {
    Connack(Box<ConnackInfo>),
    Publish(Delivery),
    Puback(PacketId, ReasonCode),
    Pubrec(PacketId, ReasonCode),
    Pubrel(PacketId, ReasonCode),
    Pubcomp(PacketId, ReasonCode),
    Suback(PacketId, Vec<u8>),
    Unsuback(PacketId, Vec<u8>),
    Pingresp,
    /// 5.0 only; a 3.1.1 connection is just closed.
    Disconnect(ReasonCode, Option<&'static str>),
}

/// The broker has decided to close the connection: send DISCONNECT with `reason` (5.0) and
/// close. The will is published unless the client disconnected normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("closing the connection: {reason}{}", .text.map(|t| format!(" ({t})")).unwrap_or_default())]
pub struct Close {
    pub reason: ReasonCode,
    /// A short reason string, sent to 5.0 clients that did not disable problem information.
    pub text: Option<&'static str>,
}

impl Close {
    pub const fn new(reason: ReasonCode, text: &'static str) -> Self {
        Self {
            reason,
            text: Some(text),
        }
    }
}
