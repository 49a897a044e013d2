//! A session (section 4.1): what the broker keeps for one client id across connections —
//! subscriptions, queued and in-flight messages, QoS 2 receive state, the will — and the
//! part that exists only while a connection is attached.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::sync::Arc;

use tern_codec::{PacketId, ProtocolVersion, QoS, ReasonCode, SubscriptionOptions};
use tern_proto::{PacketIds, Timestamp};

use crate::message::MsgRef;

/// Identifies one network connection for its whole life: a serial number (high 32 bits) and
/// the key of the session it attaches to (low 32 bits), so the broker finds the session
/// without a map. Not reused until 2^32 more connections have attached to the same slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(core::num::NonZeroU64);

impl ConnId {
    pub(crate) fn new(serial: core::num::NonZeroU32, session_key: usize) -> Self {
        // Session keys are slab indexes, far below 2^32 (one per client).
        let v = (u64::from(serial.get()) << 32) | (session_key as u64 & 0xFFFF_FFFF);
        // Never zero: the serial in the high half is not.
        Self(core::num::NonZeroU64::new(v).unwrap_or(core::num::NonZeroU64::MAX))
    }

    pub(crate) fn session_key(self) -> usize {
        (self.0.get() & 0xFFFF_FFFF) as usize
    }
}

/// The subscription identifiers a delivery carries (5.0 section 3.3.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SubIds {
    #[default]
    None,
    One(u32),
    Many(Arc<[u32]>),
}

impl SubIds {
    /// As a slice.
    pub fn as_slice(&self) -> &[u32] {
        match self {
            Self::None => &[],
            Self::One(v) => std::slice::from_ref(v),
            Self::Many(v) => v,
        }
    }

    /// Adds an identifier (used when overlapping subscriptions are merged).
    pub fn push(&mut self, id: u32) {
        *self = match std::mem::take(self) {
            Self::None => Self::One(id),
            Self::One(a) if a == id => Self::One(a),
            Self::One(a) => Self::Many(Arc::from([a, id])),
            Self::Many(v) if v.contains(&id) => Self::Many(v),
            Self::Many(v) => {
                let mut all = v.to_vec();
                all.push(id);
                Self::Many(Arc::from(all))
            }
        }
    }
}

/// A message waiting to be sent to this session.
#[derive(Clone, Debug)]
pub struct Queued {
    pub msg: MsgRef,
    /// QoS to deliver at (the minimum of published and granted, section 3.8.4).
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    pub sub_ids: SubIds,
    /// Sequence number in the store (0: not stored).
    pub seq: u64,
}

/// Where an outgoing QoS 1/2 message is in its flow (section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 sent, waiting for PUBACK.
    AwaitPuback,
    /// QoS 2 sent, waiting for PUBREC.
    AwaitPubrec,
    /// PUBREL sent, waiting for PUBCOMP.
    AwaitPubcomp,
}

/// An outgoing QoS 1/2 message not yet acknowledged.
#[derive(Clone, Debug)]
pub struct Inflight {
    pub pid: PacketId,
    pub item: Queued,
    pub state: OutState,
}

/// A will waiting for its connection to end (section 3.1.2.5).
#[derive(Clone, Debug)]
pub struct PendingWill {
    pub msg: MsgRef,
    /// 5.0 will delay interval, seconds.
    pub delay: u32,
}

/// State that exists only while a connection is attached.
#[derive(Clone, Debug)]
pub struct Attached {
    pub id: ConnId,
    /// The client's receive maximum: our outgoing window (with `max_inflight_messages`).
    pub receive_maximum: u16,
    /// The client's maximum packet size; larger messages are not sent to it [MQTT-3.1.2-24].
    pub max_packet_size: u32,
    /// Set when the broker has decided to close this connection (takeover, shutdown).
    pub closing: Option<ReasonCode>,
    /// The listener's `max_qos`.
    pub max_qos: QoS,
}

/// Session expiry: seconds after disconnection, or never.
pub const EXPIRY_NEVER: u32 = u32::MAX;

/// One session.
#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    pub username: Option<Arc<str>>,
    /// Access decisions for this client (its listener's ACL).
    pub authz: Arc<dyn crate::auth::Authorizer>,
    /// The password file that accepted this client, if one did.
    pub authn: Option<Arc<dyn crate::auth::Authenticator>>,
    pub version: ProtocolVersion,
    pub conn: Option<Attached>,
    /// Session expiry interval in seconds ([`EXPIRY_NEVER`] for 3.1.1 persistent sessions).
    pub expiry: u32,
    pub disconnected_at: Option<Timestamp>,
    /// Filter -> (options as granted, subscription identifier).
    /// A B-tree, not a hash map: no per-map hasher state, so a session with few
    /// subscriptions (the common case) stays small.
    pub subscriptions: BTreeMap<Box<str>, (SubscriptionOptions, Option<u32>)>,
    pub pids: PacketIds,
    pub will: Option<PendingWill>,
    /// A wake-up for this session's connection is already pending.
    pub wake_pending: bool,
    /// The session has a record in the store.
    pub in_store: bool,
    /// Next sequence number for a stored message.
    pub next_seq: u64,
    /// Messages on their way: allocated the first time there are any, so that an idle
    /// session (the common case, thousands per broker) stays small. See [`FlowState`].
    pub(crate) flow: Option<Box<FlowState>>,
}

/// The part of a session that only messages in flight need.
#[derive(Debug)]
pub struct FlowState {
    pub queue: VecDeque<Queued>,
    pub queued_bytes: usize,
    pub inflight: VecDeque<Inflight>,
    /// QoS 2 messages received and PUBREC'd, awaiting PUBREL (bounded by our receive maximum).
    pub inbound_qos2: BTreeSet<u16>,
    /// When the will fires, if the connection has ended and the will is delayed.
    pub will_due: Option<Timestamp>,
    /// Messages held only in the store while the session is offline (count and bytes).
    pub spilled: usize,
    pub spilled_bytes: usize,
}

impl FlowState {
    pub(crate) const EMPTY: FlowState = FlowState {
        queue: VecDeque::new(),
        queued_bytes: 0,
        inflight: VecDeque::new(),
        inbound_qos2: BTreeSet::new(),
        will_due: None,
        spilled: 0,
        spilled_bytes: 0,
    };

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
            && self.inflight.is_empty()
            && self.inbound_qos2.is_empty()
            && self.will_due.is_none()
            && self.spilled == 0
    }
}

/// What [`Session::flow`] returns for a session that has never had a message in flight.
static NO_FLOW: FlowState = FlowState::EMPTY;

impl Session {
    pub fn new(client_id: Arc<str>, version: ProtocolVersion) -> Self {
        Self {
            client_id,
            username: None,
            authz: Arc::new(crate::auth::AllowAll),
            authn: None,
            version,
            conn: None,
            expiry: 0,
            disconnected_at: None,
            subscriptions: BTreeMap::new(),
            pids: PacketIds::default(),
            will: None,
            wake_pending: false,
            in_store: false,
            next_seq: 1,
            flow: None,
        }
    }

    /// Messages in flight (empty for a session that has never had any).
    pub fn flow(&self) -> &FlowState {
        self.flow.as_deref().unwrap_or(&NO_FLOW)
    }

    /// Messages in flight, for changing them (allocated on first use).
    pub fn flow_mut(&mut self) -> &mut FlowState {
        self.flow.get_or_insert_with(|| Box::new(FlowState::EMPTY))
    }

    /// Messages in flight, for changing them, if the session has any part allocated.
    pub fn flow_if_any(&mut self) -> Option<&mut FlowState> {
        self.flow.as_deref_mut()
    }

    /// Gives the in-flight part back when nothing is in it (a connection ended, the
    /// session is idle), so that idle sessions stay small.
    pub fn release_flow(&mut self) {
        if self.flow.as_deref().is_some_and(FlowState::is_empty) {
            self.flow = None;
        }
    }

    /// True when a packet id is used by an outgoing message.
    pub fn pid_in_use(&self, pid: PacketId) -> bool {
        self.flow().inflight.iter().any(|i| i.pid == pid)
    }

    /// When an offline session ends, given `persistent_client_expiration` for "never".
    pub fn expires_at(&self, cap: Option<u64>) -> Option<Timestamp> {
        let at = self.disconnected_at?;
        if self.expiry == EXPIRY_NEVER {
            return cap.map(|c| at.plus_secs(c));
        }
        let secs = u64::from(self.expiry);
        Some(at.plus_secs(cap.map_or(secs, |c| secs.min(c))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ids_merge_without_duplicates() {
        let mut s = SubIds::None;
        s.push(1);
        s.push(1);
        assert_eq!(s.as_slice(), &[1]);
        s.push(2);
        s.push(2);
        s.push(3);
        assert_eq!(s.as_slice(), &[1, 2, 3]);
    }

    #[test]
    fn expiry_with_cap() {
        let mut s = Session::new("c".into(), ProtocolVersion::V5);
        assert_eq!(s.expires_at(None), None);
        s.disconnected_at = Some(Timestamp(0));
        s.expiry = 10;
        assert_eq!(s.expires_at(None), Some(Timestamp(10_000)));
        assert_eq!(s.expires_at(Some(5)), Some(Timestamp(5_000)));
        s.expiry = EXPIRY_NEVER;
        assert_eq!(s.expires_at(None), None);
        assert_eq!(s.expires_at(Some(60)), Some(Timestamp(60_000)));
    }
}
