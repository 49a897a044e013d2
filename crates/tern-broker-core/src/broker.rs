//! The broker: sessions by client id, the subscription tree, retained messages, wills and
//! expiry, and the router that puts each PUBLISH into the queues of the sessions that match.
//!
//! A plain struct with no I/O and no clock: the caller passes `now`, feeds it decoded packets
//! for a connection and gets back [`Out`] packets to encode. Connections that have something
//! new to send are listed in [`Broker::take_wakeups`]; their drivers then call
//! [`Broker::drain`]. Every queue is bounded (`max_queued_messages`, `max_queued_bytes`,
//! `memory_limit`); what does not fit is dropped and counted, never buffered without bound.

use std::collections::BTreeSet;

use crate::Map;
use std::sync::Arc;

use slab::Slab;
use tern_codec::{
    Ack, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode,
    RetainHandling, Subscribe, Unsubscribe, topic,
};
use tern_proto::Timestamp;

use crate::auth::{AllowAll, Authorizer, Identity, SubscribeDecision};
use crate::config::CoreConfig;
use crate::message::{Message, MsgRef};
use crate::out::{Close, ConnackInfo, Delivery, Out};
use crate::persist::{ItemState, QueueLoader, Restored, SessionRecord, StoreOp, StoredItem};
use crate::retained::Retained;
use crate::session::{
    Attached, ConnId, EXPIRY_NEVER, FlowState, Inflight, OutState, PendingWill, Queued, Session,
    SubIds,
};
use crate::stats::Stats;
use crate::trie::{Hit, Sub, SubscriptionTree};

/// Settings that can differ per listener (mosquitto.conf listener options and, with
/// `per_listener_settings`, the security options).
#[derive(Clone, Debug)]
pub struct ListenerLimits {
    /// `max_qos`.
    pub max_qos: QoS,
    /// `max_topic_alias`: aliases a client may use towards the broker.
    pub max_topic_alias: u16,
    /// `max_topic_alias_broker`: aliases the broker may use towards a client.
    pub max_topic_alias_broker: u16,
    /// `allow_zero_length_clientid`.
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix`.
    pub auto_id_prefix: String,
    /// `acl_file` decisions for clients of this listener.
    pub authorizer: Arc<dyn Authorizer>,
}

impl ListenerLimits {
    /// The broker-wide values of `cfg`, allowing everything.
    pub fn from_core(cfg: &CoreConfig) -> Self {
        Self {
            max_qos: cfg.max_qos,
            max_topic_alias: cfg.max_topic_alias,
            max_topic_alias_broker: 0,
            allow_zero_length_clientid: cfg.allow_zero_length_clientid,
            auto_id_prefix: cfg.auto_id_prefix.clone(),
            authorizer: Arc::new(AllowAll),
        }
    }
}

/// The most topic levels a topic or filter may have, as in Mosquitto (TOPIC_HIERARCHY_LIMIT):
/// deeper ones are refused, which also bounds the work (and recursion) per message.
pub const MAX_TOPIC_LEVELS: usize = 200;

fn too_deep(topic: &str) -> bool {
    topic.bytes().filter(|&b| b == b'/').count() >= MAX_TOPIC_LEVELS
}

/// May session `s` publish its will `msg` now? The same check as for a client's PUBLISH
/// (retained or not).
fn will_allowed(s: &Session, msg: &Message) -> bool {
    let who = Identity {
        username: s.username.as_deref(),
        client_id: &s.client_id,
    };
    s.authz.can_write(who, &msg.topic)
}

/// What the connection driver knows when a CONNECT arrives.
#[derive(Clone, Copy, Debug)]
pub struct ConnectRequest<'a> {
    /// The listener's settings.
    pub limits: &'a ListenerLimits,
    pub connect: &'a Connect<'a>,
    /// The user name for authorisation: from CONNECT, or the certificate identity with
    /// `use_identity_as_username`. Authentication has already succeeded.
    pub username: Option<&'a str>,
    /// Replaces the client id (`use_username_as_clientid`).
    pub client_id_override: Option<&'a str>,
    /// The password file that accepted the user name and password (None: anonymous or a
    /// certificate identity). Kept so that a reload can disconnect users it no longer has.
    pub authenticator: Option<&'a Arc<dyn crate::auth::Authenticator>>,
}

/// A connection the broker accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub conn: ConnId,
    pub client_id: Arc<str>,
    pub version: ProtocolVersion,
    /// The keep-alive in force (the client's, or the server keep-alive sent to a 5.0 client).
    pub keep_alive: u16,
    /// Topic aliases the client accepts from us (its Topic Alias Maximum).
    pub client_topic_alias_max: u16,
    /// The largest packet the client accepts.
    pub client_max_packet_size: u32,
    /// 5.0 request problem information (reason strings allowed on more than CONNACK and
    /// DISCONNECT).
    pub problem_information: bool,
}

/// What [`Broker::handle`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// The client sent DISCONNECT; the session was updated. Close the socket without a will.
    Disconnected,
}

/// What [`Broker::drain`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Nothing more to send right now.
    Idle,
    /// The budget ran out: call again.
    More,
    /// The broker closed this connection (session taken over, shutdown): send DISCONNECT
    /// with this reason (5.0) and close. Do not publish a will; the broker already did.
    Closed(ReasonCode),
}

/// A delivery target after overlapping subscriptions are merged.
#[derive(Clone, Debug)]
struct Target {
    session: usize,
    qos: QoS,
    retain_as_published: bool,
    sub_ids: SubIds,
}

/// The broker core.
#[derive(Debug)]
pub struct Broker {
    cfg: CoreConfig,
    sessions: Slab<Session>,
    by_client_id: Map<Arc<str>, usize>,
    /// Sessions with a connection attached.
    connected: usize,
    /// Connections the broker detached (takeover); their drivers learn it from `drain`.
    closed: Map<ConnId, ReasonCode>,
    subs: SubscriptionTree,
    retained: Retained,
    /// (when, session key): delayed wills and session expiry, checked by `tick`.
    deadlines: BTreeSet<(Timestamp, usize)>,
    next_conn: core::num::NonZeroU32,
    id_seed: u64,
    wakeups: Vec<ConnId>,
    stats: Stats,
    total_queued_bytes: usize,
    started: Timestamp,
    next_sys: Option<Timestamp>,
    hits: Vec<Hit>,
    targets: Vec<Target>,
    /// Store operations not yet taken by the driver (persistence on).
    ops: Vec<StoreOp>,
    loader: Option<Arc<dyn QueueLoader>>,
    load: crate::stats::LoadAverages<9>,
    /// Access decisions for sessions read from the store, until they reconnect (their
    /// listener is not recorded).
    restored_authz: Arc<dyn Authorizer>,
}

impl Broker {
    /// A broker with no sessions. `id_seed` makes assigned client ids unpredictable; pass
    /// random bits.
    pub fn new(cfg: CoreConfig, now: Timestamp, id_seed: u64) -> Self {
        let next_sys = (cfg.sys_interval > 0).then_some(now);
        Self {
            cfg,
            sessions: Slab::new(),
            by_client_id: Map::default(),
            connected: 0,
            closed: Map::default(),
            subs: SubscriptionTree::default(),
            retained: Retained::default(),
            deadlines: BTreeSet::new(),
            next_conn: core::num::NonZeroU32::MIN,
            id_seed,
            wakeups: Vec::new(),
            stats: Stats::default(),
            total_queued_bytes: 0,
            started: now,
            next_sys,
            hits: Vec::new(),
            targets: Vec::new(),
            ops: Vec::new(),
            loader: None,
            load: crate::stats::LoadAverages::default(),
            restored_authz: Arc::new(AllowAll),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Replaces the settings that can change without a restart (SIGHUP).
    pub fn set_config(&mut self, cfg: CoreConfig) {
        if cfg.sys_interval != self.cfg.sys_interval {
            self.next_sys = (cfg.sys_interval > 0).then_some(self.started);
        }
        self.cfg = cfg;
    }

    /// Installs new access-control decisions for every session of a listener (SIGHUP): from
    /// the next packet on, clients are checked against `authz`.
    pub fn replace_authorizer(&mut self, old: &Arc<dyn Authorizer>, new: &Arc<dyn Authorizer>) {
        for (_, s) in self.sessions.iter_mut() {
            if Arc::ptr_eq(&s.authz, old) {
                s.authz = new.clone();
            }
        }
        if Arc::ptr_eq(&self.restored_authz, old) {
            self.restored_authz = new.clone();
        }
    }

    /// The access decisions for sessions that [`Broker::restore`] reads from the store
    /// (checked when their wills are published); call before `restore`. A later
    /// [`Broker::replace_authorizer`] also replaces it for them. Default: allow everything.
    pub fn set_restored_authorizer(&mut self, authz: Arc<dyn Authorizer>) {
        self.restored_authz = authz;
    }

    /// Installs a re-read password file (SIGHUP): sessions accepted by `old` now belong to
    /// `new`, and connected clients whose user name `new` no longer has (or every client of
    /// `old`, when the listener has no password file any more) are disconnected with 0x87,
    /// as Mosquitto does. Returns the connections to wake so that they close.
    pub fn replace_authenticator(
        &mut self,
        old: &Arc<dyn crate::auth::Authenticator>,
        new: Option<&Arc<dyn crate::auth::Authenticator>>,
    ) -> Vec<ConnId> {
        let mut closed = Vec::new();
        for (_, s) in self.sessions.iter_mut() {
            if !s.authn.as_ref().is_some_and(|a| Arc::ptr_eq(a, old)) {
                continue;
            }
            s.authn = new.cloned();
            let known = match (new, s.username.as_deref()) {
                (Some(n), Some(u)) => n.user_exists(u),
                _ => false,
            };
            if !known && let Some(a) = s.conn.as_mut() {
                a.closing = Some(ReasonCode::NotAuthorized);
                closed.push(a.id);
            }
        }
        closed
    }

    /// Counters, for the drivers to add bytes and packets to.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The session `conn` is attached to, while it is.
    fn key_of(&self, conn: ConnId) -> Option<usize> {
        let key = conn.session_key();
        let s = self.sessions.get(key)?;
        s.conn.as_ref().is_some_and(|a| a.id == conn).then_some(key)
    }

    /// Connected clients.
    pub fn connected_count(&self) -> usize {
        self.connected
    }

    /// All sessions, connected or not.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.subs.len()
    }

    /// Bytes queued across all sessions.
    pub fn queued_bytes(&self) -> usize {
        self.total_queued_bytes
    }

    /// Connections with something new to send; the caller wakes their drivers.
    pub fn take_wakeups(&mut self, into: &mut Vec<ConnId>) {
        into.append(&mut self.wakeups);
    }

    fn wake(&mut self, key: usize) {
        if let Some(s) = self.sessions.get_mut(key)
            && let Some(a) = &s.conn
            && !s.wake_pending
        {
            s.wake_pending = true;
            self.wakeups.push(a.id);
        }
    }

    // ----- CONNECT -------------------------------------------------------------------------

    /// Handles an authenticated CONNECT: writes the CONNACK (and redeliveries) to `out`.
    /// `Err` means refused: the CONNACK in `out` says why; close after sending it.
    pub fn connect(
        &mut self,
        now: Timestamp,
        req: ConnectRequest<'_>,
        out: &mut Vec<Out>,
    ) -> Result<Accepted, ReasonCode> {
        let c = req.connect;
        let v = c.protocol;
        let refuse = |out: &mut Vec<Out>, reason: ReasonCode, text: &str| {
            let mut info = ConnackInfo::new(reason);
            if v.is_v5() {
                info.reason_string = Some(text.to_owned());
            }
            out.push(Out::Connack(Box::new(info)));
            Err(reason)
        };
        if c.properties.authentication_method.is_some() {
            // 5.0 section 4.12: no enhanced authentication method is supported.
            return refuse(
                out,
                ReasonCode::BadAuthenticationMethod,
                "no authentication method is supported",
            );
        }
        // Client identifier (section 3.1.3.1).
        let mut assigned = None;
        let client_id: Arc<str> = match req.client_id_override {
            Some(id) => Arc::from(id),
            None if c.client_id.is_empty() => {
                if v == ProtocolVersion::V31 || (!v.is_v5() && !c.clean_start) {
                    // [MQTT-3.1.3-8] 3.1.1: an empty id needs clean session.
                    return refuse(
                        out,
                        ReasonCode::ClientIdentifierNotValid,
                        "an empty client id needs clean start",
                    );
                }
                if !req.limits.allow_zero_length_clientid {
                    return refuse(
                        out,
                        ReasonCode::ClientIdentifierNotValid,
                        "empty client ids are not allowed",
                    );
                }
                let id: Arc<str> = Arc::from(self.new_client_id(&req.limits.auto_id_prefix));
                assigned = Some(id.clone());
                id
            }
            None => {
                if v == ProtocolVersion::V31 && c.client_id.len() > 23 {
                    return refuse(
                        out,
                        ReasonCode::ClientIdentifierNotValid,
                        "MQTT 3.1 client ids are at most 23 bytes",
                    );
                }
                Arc::from(c.client_id)
            }
        };
        // Keep-alive (3.1.2.10 / 3.2.2.3.14).
        let mut keep_alive = c.keep_alive;
        let mut server_keep_alive = None;
        if keep_alive > self.cfg.max_keepalive
            || (keep_alive == 0 && self.cfg.max_keepalive < u16::MAX)
        {
            if v.is_v5() {
                keep_alive = self.cfg.max_keepalive;
                server_keep_alive = Some(keep_alive);
            } else if keep_alive > self.cfg.max_keepalive {
                // Mosquitto refuses a 3.1.1 keep-alive above max_keepalive.
                return refuse(
                    out,
                    ReasonCode::ClientIdentifierNotValid,
                    "keep-alive above max_keepalive",
                );
            }
        }
        let expiry = if v.is_v5() {
            c.properties.session_expiry_interval.unwrap_or(0)
        } else if c.clean_start {
            0
        } else {
            EXPIRY_NEVER
        };

        // An existing session: take over its connection, then resume or discard it.
        let mut session_present = false;
        if let Some(&key) = self.by_client_id.get(&client_id) {
            if let Some(old) = self.sessions[key].conn.as_ref().map(|a| a.id) {
                // [MQTT-3.1.4-3] the existing connection is closed (5.0: reason 0x8E).
                self.closed.insert(old, ReasonCode::SessionTakenOver);
                self.wakeups.push(old);
                let delay_cancelled = !c.clean_start;
                self.detach(now, key, true, delay_cancelled);
            }
            if c.clean_start || !self.sessions.contains(key) {
                if self.sessions.contains(key) {
                    self.remove_session(key);
                }
            } else {
                session_present = true;
            }
        }
        let key = match self.by_client_id.get(&client_id) {
            Some(&k) => k,
            None => {
                let k = self.sessions.insert(Session::new(client_id.clone(), v));
                self.by_client_id.insert(client_id.clone(), k);
                k
            }
        };
        self.next_conn = self
            .next_conn
            .checked_add(1)
            .unwrap_or(core::num::NonZeroU32::MIN);
        let conn = ConnId::new(self.next_conn, key);
        let receive_maximum = c.properties.receive_maximum.unwrap_or(u16::MAX);
        let client_max_packet_size = c.properties.maximum_packet_size.unwrap_or(u32::MAX);
        if let Some(w) = &c.will {
            if too_deep(w.topic) {
                return refuse(
                    out,
                    ReasonCode::TopicNameInvalid,
                    "the will topic has more than 200 levels",
                );
            }
            if w.qos > req.limits.max_qos {
                // [MQTT-3.2.2-12] a will QoS above the server's maximum is refused (0x9B).
                return refuse(
                    out,
                    ReasonCode::QosNotSupported,
                    "the will's QoS is above the server's maximum QoS",
                );
            }
            if w.retain && !self.cfg.retain_available {
                // [MQTT-3.2.2-13] a retained will without retain support is refused (0x9A).
                return refuse(
                    out,
                    ReasonCode::RetainNotSupported,
                    "retained messages are not available on this server",
                );
            }
            // Mosquitto 2 checks the will against the ACL at CONNECT: refuse rather than
            // silently drop it later.
            let who = Identity {
                username: req.username,
                client_id: &client_id,
            };
            if !req.limits.authorizer.can_write(who, w.topic) {
                return refuse(
                    out,
                    ReasonCode::NotAuthorized,
                    "the will topic is not allowed by the ACL",
                );
            }
        }
        let will = c.will.map(|w| PendingWill {
            msg: Arc::new(Message::from_parts(
                Arc::from(w.topic),
                w.payload,
                w.qos,
                w.retain,
                &w.properties,
                now,
                None,
            )),
            delay: w.properties.will_delay_interval.unwrap_or(0),
        });
        {
            let s = &mut self.sessions[key];
            s.version = v;
            s.username = req.username.map(Arc::from);
            s.expiry = expiry;
            s.disconnected_at = None;
            s.will = will;
            if let Some(f) = s.flow_if_any() {
                f.will_due = None;
            }
            s.wake_pending = false;
            s.authz = req.limits.authorizer.clone();
            s.authn = req.authenticator.cloned();
            s.conn = Some(Attached {
                id: conn,
                receive_maximum,
                max_packet_size: client_max_packet_size,
                closing: None,
                max_qos: req.limits.max_qos,
            });
        }
        self.connected += 1;
        if session_present {
            self.unspill(key);
        }
        self.save_session(key);
        self.stats.connections_total += 1;
        self.stats.clients_maximum = self.stats.clients_maximum.max(self.connected as u64);

        let mut info = ConnackInfo::new(ReasonCode::Success);
        info.session_present = session_present;
        if v.is_v5() {
            info.assigned_client_identifier = assigned;
            info.server_keep_alive = server_keep_alive;
            info.receive_maximum = Some(self.cfg.max_inflight_messages.max(1));
            info.maximum_packet_size = Some(self.cfg.max_packet_size);
            info.topic_alias_maximum = Some(req.limits.max_topic_alias).filter(|&m| m > 0);
            info.retain_available = (!self.cfg.retain_available).then_some(0);
            // [MQTT-3.2.2-9] announce the listener's maximum QoS when it is below 2.
            info.maximum_qos =
                (req.limits.max_qos != QoS::ExactlyOnce).then_some(req.limits.max_qos.as_u8());
            if c.properties.request_response_information == Some(1) {
                info.response_information = Some(format!("tern/response/{client_id}"));
            }
        }
        out.push(Out::Connack(Box::new(info)));

        // [MQTT-4.4.0-1] resend unacknowledged PUBLISH (DUP) and PUBREL on a resumed session.
        if session_present {
            let s = &self.sessions[key];
            for i in &s.flow().inflight {
                match i.state {
                    OutState::AwaitPubcomp => out.push(Out::Pubrel(i.pid, ReasonCode::Success)),
                    _ => out.push(Out::Publish(Delivery {
                        pid: Some(i.pid),
                        msg: i.item.msg.clone(),
                        qos: i.item.qos,
                        retain: i.item.retain,
                        dup: true,
                        sub_ids: i.item.sub_ids.clone(),
                    })),
                }
            }
        }
        if !self.sessions[key].flow().queue.is_empty() {
            self.wake(key);
        }
        Ok(Accepted {
            conn,
            client_id,
            version: v,
            keep_alive,
            client_topic_alias_max: c
                .properties
                .topic_alias_maximum
                .unwrap_or(0)
                .min(req.limits.max_topic_alias_broker),
            client_max_packet_size,
            problem_information: c.properties.request_problem_information != Some(0),
        })
    }

    fn new_client_id(&mut self, prefix: &str) -> String {
        // A counter mixed with the caller's random seed (splitmix64): unique and not guessable
        // from outside, without an RNG in this crate.
        self.id_seed = self.id_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.id_seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        format!("{prefix}{z:016x}")
    }

    // ----- packets after CONNECT ----------------------------------------------------------

    /// Handles one packet from a connected client. `topic` is the alias-resolved topic for a
    /// PUBLISH (the driver owns the alias table). Packets to send go to `out`.
    pub fn handle(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        packet: &Packet<'_>,
        topic: Option<Arc<str>>,
        out: &mut Vec<Out>,
    ) -> Result<Flow, Close> {
        let Some(key) = self.key_of(conn) else {
            return Ok(Flow::Disconnected);
        };
        let v = self.sessions[key].version;
        match packet {
            Packet::Publish(p) => {
                let topic = topic.unwrap_or_else(|| Arc::from(p.topic));
                self.on_publish(now, key, v, p, topic, out)?;
            }
            Packet::Puback(a) => {
                self.on_ack(key, a, OutState::AwaitPuback);
            }
            Packet::Pubrec(a) => {
                if self.on_ack(key, a, OutState::AwaitPubrec) {
                    out.push(Out::Pubrel(a.packet_id, ReasonCode::Success));
                } else if a.reason.is_success() {
                    out.push(Out::Pubrel(
                        a.packet_id,
                        ReasonCode::PacketIdentifierNotFound,
                    ));
                }
            }
            Packet::Pubrel(a) => {
                let found = self.sessions[key]
                    .flow_if_any()
                    .is_some_and(|f| f.inbound_qos2.remove(&a.packet_id.get()));
                if found && self.sessions[key].in_store {
                    // The exactly-once state is part of the stored session.
                    self.save_session(key);
                }
                let reason = if found || !v.is_v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                out.push(Out::Pubcomp(a.packet_id, reason));
            }
            Packet::Pubcomp(a) => {
                self.on_ack(key, a, OutState::AwaitPubcomp);
            }
            Packet::Subscribe(s) => self.on_subscribe(now, key, s, out),
            Packet::Unsubscribe(u) => self.on_unsubscribe(key, v, u, out),
            Packet::Pingreq => out.push(Out::Pingresp),
            Packet::Disconnect(d) => return self.on_disconnect(now, key, d),
            Packet::Auth(_) => {
                // No method was agreed at CONNECT, so AUTH is a protocol error (4.12).
                return Err(Close::new(
                    ReasonCode::ProtocolError,
                    "AUTH without an authentication method",
                ));
            }
            Packet::Connect(_) => {
                // [MQTT-3.1.0-2] a second CONNECT is a protocol error.
                return Err(Close::new(
                    ReasonCode::ProtocolError,
                    "second CONNECT on a connection",
                ));
            }
            Packet::Connack(_) | Packet::Suback(_) | Packet::Unsuback(_) | Packet::Pingresp => {
                return Err(Close::new(
                    ReasonCode::ProtocolError,
                    "packet type only a server may send",
                ));
            }
        }
        Ok(Flow::Continue)
    }

    fn on_publish(
        &mut self,
        now: Timestamp,
        key: usize,
        v: ProtocolVersion,
        p: &Publish<'_>,
        topic: Arc<str>,
        out: &mut Vec<Out>,
    ) -> Result<(), Close> {
        self.stats.publish_received += 1;
        self.stats.publish_bytes_received += p.payload.len() as u64;
        let max_qos = self.sessions[key]
            .conn
            .as_ref()
            .map_or(self.cfg.max_qos, |a| a.max_qos);
        if p.qos > max_qos {
            // [MQTT-3.2.2-11] 5.0: QoS not supported (0x9B).
            return Err(Close::new(
                ReasonCode::QosNotSupported,
                "QoS above the server's maximum",
            ));
        }
        if p.retain && !self.cfg.retain_available {
            // [MQTT-3.2.2-14] retain not supported (0x9A).
            return Err(Close::new(
                ReasonCode::RetainNotSupported,
                "retained messages are not available",
            ));
        }
        if p.properties
            .subscription_identifiers
            .iter()
            .next()
            .is_some()
        {
            // [MQTT-3.3.4-6] a client must not send a subscription identifier.
            return Err(Close::new(
                ReasonCode::ProtocolError,
                "PUBLISH from a client with a subscription identifier",
            ));
        }
        let pid = p.packet_id;
        let ack = |out: &mut Vec<Out>, reason: ReasonCode| match (p.qos, pid) {
            (QoS::AtLeastOnce, Some(id)) => out.push(Out::Puback(id, reason)),
            (QoS::ExactlyOnce, Some(id)) => out.push(Out::Pubrec(id, reason)),
            _ => {}
        };
        if p.qos == QoS::ExactlyOnce
            && let Some(id) = pid
        {
            let s = self.sessions[key].flow();
            if s.inbound_qos2.contains(&id.get()) {
                // A resend of a message already received: acknowledge, do not route again
                // (4.3.3, method B).
                ack(out, ReasonCode::Success);
                return Ok(());
            }
            if s.inbound_qos2.len() >= usize::from(self.cfg.max_inflight_messages.max(1)) {
                // [MQTT-3.3.4-7] more unacknowledged QoS 2 than our receive maximum.
                return Err(Close::new(
                    ReasonCode::ReceiveMaximumExceeded,
                    "receive maximum exceeded",
                ));
            }
        }
        if too_deep(&topic) {
            // Deeper than Mosquitto's limit: refused (5.0: topic name invalid), not routed.
            self.stats.publish_dropped += 1;
            let r = if v.is_v5() {
                ReasonCode::TopicNameInvalid
            } else {
                ReasonCode::Success
            };
            ack(out, r);
            return Ok(());
        }
        if p.payload.len() > self.cfg.message_size_limit {
            // Mosquitto: dropped, but the QoS flow completes; 5.0 gets 0x83.
            self.stats.publish_dropped += 1;
            let r = if v.is_v5() {
                ReasonCode::ImplementationSpecificError
            } else {
                ReasonCode::Success
            };
            ack(out, r);
            return Ok(());
        }
        let (client_id, username, authz) = {
            let s = &self.sessions[key];
            (s.client_id.clone(), s.username.clone(), s.authz.clone())
        };
        let who = Identity {
            username: username.as_deref(),
            client_id: &client_id,
        };
        if !authz.can_write(who, &topic) {
            // Mosquitto 2: 3.1.1 publishers get a normal acknowledgement; 5.0 gets 0x87.
            let r = if v.is_v5() {
                ReasonCode::NotAuthorized
            } else {
                ReasonCode::Success
            };
            ack(out, r);
            return Ok(());
        }
        if self.total_queued_bytes > self.cfg.memory_limit {
            self.stats.publish_dropped += 1;
            let r = if v.is_v5() {
                ReasonCode::QuotaExceeded
            } else {
                ReasonCode::Success
            };
            ack(out, r);
            return Ok(());
        }
        let msg = Arc::new(Message::from_publish(p, topic, now, Some(key)));
        if p.retain {
            // [MQTT-3.3.1-5]..[MQTT-3.3.1-7] store, replace or (empty payload) clear.
            self.set_retained(msg.clone());
        }
        let matched = self.route(now, &msg);
        if p.qos == QoS::ExactlyOnce
            && let Some(id) = pid
        {
            self.sessions[key].flow_mut().inbound_qos2.insert(id.get());
            // Stored with the session (in the batch the PUBREC waits for), so that a resend
            // after a restart is recognised [MQTT-4.3.3-2].
            self.save_session(key);
        }
        let r = if matched == 0 && v.is_v5() {
            ReasonCode::NoMatchingSubscribers
        } else {
            ReasonCode::Success
        };
        ack(out, r);
        Ok(())
    }

    /// Removes the in-flight message `a` acknowledges if it is in `expect`. For PUBREC with
    /// success, moves it to awaiting PUBCOMP instead. Returns true if it was found.
    fn on_ack(&mut self, key: usize, a: &Ack<'_>, expect: OutState) -> bool {
        let s = &mut self.sessions[key];
        let in_store = s.in_store;
        let client_id = s.client_id.clone();
        let Some(flow) = s.flow_if_any() else {
            return false;
        };
        let Some(i) = flow
            .inflight
            .iter()
            .position(|f| f.pid == a.packet_id && f.state == expect)
        else {
            return false;
        };
        let stored = in_store && flow.inflight[i].item.seq != 0;
        if expect == OutState::AwaitPubrec && a.reason.is_success() {
            flow.inflight[i].state = OutState::AwaitPubcomp;
            if stored {
                let f = &flow.inflight[i];
                let op = StoreOp::ItemPut {
                    client_id,
                    seq: f.item.seq,
                    item: stored_item(&f.item, ItemState::Inflight(f.pid, f.state)),
                };
                self.ops.push(op);
            }
        } else if let Some(f) = flow.inflight.remove(i) {
            let more = !flow.queue.is_empty();
            if stored {
                self.ops.push(StoreOp::ItemDel {
                    client_id,
                    seq: f.item.seq,
                });
            }
            if more {
                self.wake(key);
            }
        }
        true
    }

    fn on_subscribe(
        &mut self,
        now: Timestamp,
        key: usize,
        sub: &Subscribe<'_>,
        out: &mut Vec<Out>,
    ) {
        let sub_id = sub.properties.subscription_identifiers.first();
        let mut codes = Vec::with_capacity(sub.filters.len());
        let (client_id, username, authz, max_qos) = {
            let s = &self.sessions[key];
            let max_qos = s.conn.as_ref().map_or(self.cfg.max_qos, |a| a.max_qos);
            (
                s.client_id.clone(),
                s.username.clone(),
                s.authz.clone(),
                max_qos,
            )
        };
        let who = Identity {
            username: username.as_deref(),
            client_id: &client_id,
        };
        let mut retained = Vec::new();
        for (filter, opts) in sub.filters.iter() {
            let shared = topic::split_shared(filter);
            let inner = shared.map_or(filter, |(_, f)| f);
            if too_deep(inner) {
                codes.push(ReasonCode::TopicFilterInvalid.as_u8());
                continue;
            }
            if authz.check_subscribe(who, inner) == SubscribeDecision::Denied {
                codes.push(ReasonCode::NotAuthorized.as_u8());
                continue;
            }
            let granted = opts.qos.min(max_qos);
            let mut options = opts;
            options.qos = granted;
            let existed = self.sessions[key]
                .subscriptions
                .insert(Box::from(filter), (options, sub_id))
                .is_some();
            self.subs.subscribe(
                filter,
                Sub {
                    session: key,
                    options,
                    id: sub_id,
                },
            );
            codes.push(granted.as_u8());
            // Retained messages (section 3.3.1.3): never for shared subscriptions.
            let send = match opts.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
            if send && shared.is_none() {
                retained.clear();
                self.retained.matching(filter, now, &mut retained);
                for m in &retained {
                    if !authz.can_read(who, &m.topic) {
                        continue;
                    }
                    let mut ids = SubIds::None;
                    if let Some(id) = sub_id {
                        ids.push(id);
                    }
                    // [MQTT-3.3.1-8] retained messages sent on subscribe keep RETAIN set.
                    self.enqueue(
                        key,
                        Queued {
                            msg: m.clone(),
                            qos: m.qos.min(granted),
                            retain: true,
                            sub_ids: ids,
                            seq: 0,
                        },
                    );
                }
            }
        }
        self.save_session(key);
        out.push(Out::Suback(sub.packet_id, codes));
    }

    fn on_unsubscribe(
        &mut self,
        key: usize,
        v: ProtocolVersion,
        u: &Unsubscribe<'_>,
        out: &mut Vec<Out>,
    ) {
        let mut codes = Vec::new();
        for filter in u.filters.iter() {
            // A filter deeper than the limit was never subscribed (and is not walked).
            let existed =
                !too_deep(filter) && self.sessions[key].subscriptions.remove(filter).is_some();
            if existed {
                self.subs.unsubscribe(filter, key);
            }
            if v.is_v5() {
                codes.push(if existed {
                    0x00
                } else {
                    ReasonCode::NoSubscriptionExisted.as_u8()
                });
            }
        }
        self.save_session(key);
        out.push(Out::Unsuback(u.packet_id, codes));
    }

    fn on_disconnect(
        &mut self,
        now: Timestamp,
        key: usize,
        d: &Disconnect<'_>,
    ) -> Result<Flow, Close> {
        let s = &mut self.sessions[key];
        if let Some(e) = d.properties.session_expiry_interval {
            if s.expiry == 0 && e != 0 {
                // [MQTT-3.14.2-2]
                return Err(Close::new(
                    ReasonCode::ProtocolError,
                    "session expiry set in DISCONNECT after 0 in CONNECT",
                ));
            }
            s.expiry = e;
        }
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 5.0 reason 0x04 keeps it.
        let with_will = d.reason == ReasonCode::DisconnectWithWill;
        self.detach(now, key, with_will, false);
        Ok(Flow::Disconnected)
    }

    // ----- disconnection, expiry -----------------------------------------------------------

    /// The network connection ended without DISCONNECT (closed, error, keep-alive timeout,
    /// protocol violation): publish or schedule the will and start session expiry.
    /// Harmless for a connection the broker already detached.
    pub fn connection_lost(&mut self, now: Timestamp, conn: ConnId) {
        self.closed.remove(&conn);
        if let Some(key) = self.key_of(conn) {
            self.detach(now, key, true, false);
        }
    }

    /// Detaches the connection of session `key`. `will`: publish (or schedule) the will.
    /// `delay_cancelled`: a new connection resumes the session, so a delayed will is dropped.
    fn detach(&mut self, now: Timestamp, key: usize, will: bool, delay_cancelled: bool) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        if s.conn.take().is_some() {
            self.connected -= 1;
        }
        s.wake_pending = false;
        s.disconnected_at = Some(now);
        let pending = s.will.take();
        if will && let Some(w) = pending {
            if w.delay == 0 || s.expiry == 0 {
                let allowed = will_allowed(s, &w.msg);
                self.publish_will(now, w.msg, allowed);
            } else if !delay_cancelled {
                // 3.1.3.2.2: published after the delay or when the session ends, if sooner.
                let due = now.plus_secs(u64::from(w.delay.min(s.expiry)));
                s.will = Some(w);
                s.flow_mut().will_due = Some(due);
                self.deadlines.insert((due, key));
            }
        }
        let s = &self.sessions[key];
        if s.expiry == 0 {
            self.remove_session(key);
            return;
        }
        if let Some(at) = s.expires_at(self.cfg.persistent_client_expiration) {
            self.deadlines.insert((at, key));
        }
        self.save_session(key);
        self.spill(key);
        if let Some(s) = self.sessions.get_mut(key) {
            s.release_flow();
        }
    }

    /// True when this session's state is kept in the store.
    fn stored(&self, key: usize) -> bool {
        self.cfg.persistence && self.sessions.get(key).is_some_and(|s| s.expiry != 0)
    }

    /// The store record of a session.
    fn record(&self, key: usize) -> SessionRecord {
        let s = &self.sessions[key];
        SessionRecord {
            client_id: s.client_id.clone(),
            username: s.username.clone(),
            version: s.version,
            expiry: s.expiry,
            disconnected_at: s.disconnected_at,
            subscriptions: s
                .subscriptions
                .iter()
                .map(|(f, (o, id))| (f.clone(), *o, *id))
                .collect(),
            will: s
                .will
                .as_ref()
                .map(|w| (w.msg.clone(), w.delay, s.flow().will_due)),
            last_pid: s.pids.last().map_or(0, PacketId::get),
            inbound_qos2: s.flow().inbound_qos2.iter().copied().collect(),
        }
    }

    /// Records the session in the store (or removes it once it stops being persistent).
    fn save_session(&mut self, key: usize) {
        if !self.cfg.persistence || !self.sessions.contains(key) {
            return;
        }
        if self.stored(key) {
            let r = self.record(key);
            self.sessions[key].in_store = true;
            self.ops.push(StoreOp::SessionPut(r));
        } else if self.sessions[key].in_store {
            self.sessions[key].in_store = false;
            self.ops
                .push(StoreOp::SessionDel(self.sessions[key].client_id.clone()));
        }
    }

    /// An offline stored session keeps its QoS 1/2 messages only in the store (bounded
    /// memory): they are read back by the [`QueueLoader`] when it reconnects.
    fn spill(&mut self, key: usize) {
        if self.loader.is_none() || !self.stored(key) {
            return;
        }
        let Some(s) = self.sessions[key].flow_if_any() else {
            return;
        };
        let mut kept = std::collections::VecDeque::new();
        for q in s.queue.drain(..) {
            let cost = q.msg.cost();
            if q.seq == 0 {
                kept.push_back(q);
                continue;
            }
            s.queued_bytes -= cost;
            self.total_queued_bytes = self.total_queued_bytes.saturating_sub(cost);
            s.spilled += 1;
            s.spilled_bytes += cost;
        }
        s.queue = kept;
        for f in s.inflight.drain(..) {
            if f.item.seq != 0 {
                s.spilled += 1;
                s.spilled_bytes += f.item.msg.cost();
            }
        }
    }

    /// Reads a reconnecting session's stored messages back into memory.
    fn unspill(&mut self, key: usize) {
        let Some(loader) = self.loader.clone() else {
            return;
        };
        if self.sessions[key].flow().spilled == 0 {
            return;
        }
        let items = loader.load(&self.sessions[key].client_id);
        let next_seq = items.iter().map(|(seq, _)| seq + 1).max().unwrap_or(0);
        let session = &mut self.sessions[key];
        session.next_seq = session.next_seq.max(next_seq);
        let s = session.flow_mut();
        s.spilled = 0;
        s.spilled_bytes = 0;
        let mut queued = std::collections::VecDeque::new();
        for (seq, it) in items {
            let q = Queued {
                msg: it.msg,
                qos: it.qos,
                retain: it.retain,
                sub_ids: it.sub_ids,
                seq,
            };
            match it.state {
                ItemState::Inflight(pid, state) => s.inflight.push_back(Inflight {
                    pid,
                    item: q,
                    state,
                }),
                ItemState::Queued => {
                    let cost = q.msg.cost();
                    s.queued_bytes += cost;
                    self.total_queued_bytes += cost;
                    queued.push_back(q);
                }
            }
        }
        // Messages queued in memory while offline (QoS 0 with queue_qos0_messages) follow.
        queued.append(&mut s.queue);
        s.queue = queued;
    }

    /// Store operations produced since the last call (persistence on).
    pub fn take_store_ops(&mut self, into: &mut Vec<StoreOp>) {
        into.append(&mut self.ops);
    }

    /// Installs the store reader used when an offline session reconnects.
    pub fn set_queue_loader(&mut self, loader: Arc<dyn QueueLoader>) {
        self.loader = Some(loader);
    }

    /// Rebuilds sessions, subscriptions, queued messages and retained messages read from a
    /// store at start-up. Expired messages and sessions are dropped (and deleted from the
    /// store). Sessions that were connected when the broker stopped count as disconnected
    /// at `now`.
    pub fn restore(&mut self, now: Timestamp, r: Restored) {
        // With a loader, stored messages stay in the store: only their counts are kept.
        let r = if self.loader.is_some() {
            r.summarized(now)
        } else {
            r
        };
        for m in r.retained {
            if m.expired(now) {
                self.ops.push(StoreOp::RetainedDel(m.topic.clone()));
            } else {
                self.retained.set(m);
            }
        }
        for rec in r.sessions {
            let mut s = Session::new(rec.client_id.clone(), rec.version);
            s.username = rec.username;
            s.authz = self.restored_authz.clone();
            s.expiry = rec.expiry;
            s.disconnected_at = Some(rec.disconnected_at.unwrap_or(now));
            s.in_store = true;
            if let Some(pid) = PacketId::new(rec.last_pid) {
                s.pids = tern_proto::PacketIds::starting_after(pid);
            }
            if !rec.inbound_qos2.is_empty() {
                s.flow_mut().inbound_qos2 = rec.inbound_qos2.iter().copied().collect();
            }
            if let Some((msg, delay, due)) = rec.will {
                s.will = Some(PendingWill { msg, delay });
                if due.is_some() {
                    s.flow_mut().will_due = due;
                }
            }
            if s.expires_at(self.cfg.persistent_client_expiration)
                .is_some_and(|e| e <= now)
            {
                if let Some(w) = s.will.take() {
                    let allowed = will_allowed(&s, &w.msg);
                    self.publish_will(now, w.msg, allowed);
                }
                self.stats.clients_expired += 1;
                self.ops.push(StoreOp::SessionDel(rec.client_id));
                continue;
            }
            let key = self.sessions.insert(s);
            self.by_client_id.insert(rec.client_id, key);
            for (filter, options, id) in rec.subscriptions {
                self.subs.subscribe(
                    &filter,
                    Sub {
                        session: key,
                        options,
                        id,
                    },
                );
                self.sessions[key]
                    .subscriptions
                    .insert(filter, (options, id));
            }
            let s = &self.sessions[key];
            if let Some(at) = s.expires_at(self.cfg.persistent_client_expiration) {
                self.deadlines.insert((at, key));
            }
            if let Some(due) = s.flow().will_due {
                self.deadlines.insert((due, key));
            }
        }
        for (client_id, seq, item) in r.items {
            let Some(&key) = self.by_client_id.get(&client_id) else {
                self.ops.push(StoreOp::ItemDel { client_id, seq });
                continue;
            };
            if item.msg.expired(now) && item.state == ItemState::Queued {
                self.ops.push(StoreOp::ItemDel { client_id, seq });
                continue;
            }
            let session = &mut self.sessions[key];
            session.next_seq = session.next_seq.max(seq + 1);
            let s = session.flow_mut();
            let cost = item.msg.cost();
            let q = Queued {
                msg: item.msg,
                qos: item.qos,
                retain: item.retain,
                sub_ids: item.sub_ids,
                seq,
            };
            match item.state {
                ItemState::Inflight(pid, state) => s.inflight.push_back(Inflight {
                    pid,
                    item: q,
                    state,
                }),
                ItemState::Queued => {
                    s.queued_bytes += cost;
                    self.total_queued_bytes += cost;
                    s.queue.push_back(q);
                }
            }
        }
        for (client_id, seq) in r.expired {
            self.ops.push(StoreOp::ItemDel { client_id, seq });
        }
        for q in r.queues {
            let Some(&key) = self.by_client_id.get(&q.client_id) else {
                // Messages of a session that is gone (expired above, or never stored).
                self.ops.push(StoreOp::SessionDel(q.client_id));
                continue;
            };
            let session = &mut self.sessions[key];
            session.next_seq = session.next_seq.max(q.last_seq + 1);
            let s = session.flow_mut();
            s.spilled += q.count;
            s.spilled_bytes += q.bytes;
        }
    }

    /// Publishes a will. `allowed`: [`will_allowed`], checked when the will goes out rather
    /// than trusting CONNECT, because a reload may have taken the right away since, and a
    /// will restored from the store was never checked by this process. A denied will is
    /// dropped, as a denied PUBLISH is.
    fn publish_will(&mut self, now: Timestamp, msg: MsgRef, allowed: bool) {
        if !allowed {
            self.stats.publish_dropped += 1;
            tracing::info!(
                topic = %msg.topic,
                "will not published: its topic is no longer allowed by the ACL"
            );
            return;
        }
        if msg.retain {
            self.set_retained(msg.clone());
        }
        self.route(now, &msg);
    }

    /// Sets or clears a retained message and records it for the store.
    fn set_retained(&mut self, msg: MsgRef) {
        if self.cfg.persistence {
            self.ops.push(if msg.payload.is_empty() {
                StoreOp::RetainedDel(msg.topic.clone())
            } else {
                StoreOp::RetainedPut(msg.clone())
            });
        }
        self.retained.set(msg);
    }

    fn remove_session(&mut self, key: usize) {
        if !self.sessions.contains(key) {
            return;
        }
        let s = self.sessions.remove(key);
        if s.in_store {
            self.ops.push(StoreOp::SessionDel(s.client_id.clone()));
        }
        for filter in s.subscriptions.keys() {
            self.subs.unsubscribe(filter, key);
        }
        let bytes: usize = s.flow().queue.iter().map(|q| q.msg.cost()).sum();
        self.total_queued_bytes = self.total_queued_bytes.saturating_sub(bytes);
        if self.by_client_id.get(&s.client_id) == Some(&key) {
            self.by_client_id.remove(&s.client_id);
        }
        if s.conn.is_some() {
            self.connected -= 1;
        }
    }

    /// Runs what is due at `now`: delayed wills, session expiry, `$SYS`. Returns when it
    /// next needs to run.
    pub fn tick(&mut self, now: Timestamp) -> Option<Timestamp> {
        while let Some(&(at, key)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(s) = self.sessions.get_mut(key) else {
                continue;
            };
            if s.conn.is_some() {
                continue;
            }
            if let Some(f) = s.flow_if_any()
                && let Some(due) = f.will_due
                && due <= now
            {
                f.will_due = None;
                if let Some(w) = s.will.take() {
                    let allowed = will_allowed(s, &w.msg);
                    self.publish_will(now, w.msg, allowed);
                }
                self.save_session(key);
            }
            let s = &self.sessions[key];
            if let Some(exp) = s.expires_at(self.cfg.persistent_client_expiration)
                && exp <= now
            {
                // Session end: a still-delayed will goes out now (3.1.3.2.2).
                if let Some(w) = self.sessions[key].will.take() {
                    let allowed = will_allowed(&self.sessions[key], &w.msg);
                    self.publish_will(now, w.msg, allowed);
                }
                self.stats.clients_expired += 1;
                self.remove_session(key);
            }
        }
        if let Some(at) = self.next_sys
            && at <= now
        {
            self.publish_sys(now);
            self.next_sys = Some(now.plus_secs(self.cfg.sys_interval.max(1)));
        }
        let next = self.deadlines.first().map(|d| d.0);
        match (next, self.next_sys) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Publishes the `$SYS/broker/...` topics (retained, as Mosquitto does).
    pub fn publish_sys(&mut self, now: Timestamp) {
        let st = self.stats.clone();
        let connected = self.connected as u64;
        let total = self.sessions.len() as u64;
        let disconnected = total - connected.min(total);
        let stored = self.queued_messages() + self.inflight_messages() + self.retained.len();
        let mut values: Vec<(String, String)> = vec![
            ("version".into(), self.cfg.version.clone()),
            (
                "uptime".into(),
                format!("{} seconds", now.secs_since(self.started)),
            ),
            ("clients/connected".into(), connected.to_string()),
            ("clients/active".into(), connected.to_string()),
            ("clients/disconnected".into(), disconnected.to_string()),
            ("clients/inactive".into(), disconnected.to_string()),
            ("clients/total".into(), total.to_string()),
            ("clients/maximum".into(), st.clients_maximum.to_string()),
            ("clients/expired".into(), st.clients_expired.to_string()),
            ("messages/received".into(), st.messages_received.to_string()),
            ("messages/sent".into(), st.messages_sent.to_string()),
            ("messages/stored".into(), stored.to_string()),
            (
                "messages/inflight".into(),
                self.inflight_messages().to_string(),
            ),
            (
                "publish/messages/received".into(),
                st.publish_received.to_string(),
            ),
            ("publish/messages/sent".into(), st.publish_sent.to_string()),
            (
                "publish/messages/dropped".into(),
                st.publish_dropped.to_string(),
            ),
            (
                "publish/bytes/received".into(),
                st.publish_bytes_received.to_string(),
            ),
            (
                "publish/bytes/sent".into(),
                st.publish_bytes_sent.to_string(),
            ),
            ("bytes/received".into(), st.bytes_received.to_string()),
            ("bytes/sent".into(), st.bytes_sent.to_string()),
            (
                "retained messages/count".into(),
                self.retained.len().to_string(),
            ),
            ("subscriptions/count".into(), self.subs.len().to_string()),
            (
                "shared_subscriptions/count".into(),
                self.subs.shared_len().to_string(),
            ),
            ("store/messages/count".into(), stored.to_string()),
            (
                "store/messages/bytes".into(),
                (self.total_queued_bytes + self.retained.bytes()).to_string(),
            ),
        ];
        let counters = [
            ("bytes/received", st.bytes_received),
            ("bytes/sent", st.bytes_sent),
            ("connections", st.connections_total),
            ("messages/received", st.messages_received),
            ("messages/sent", st.messages_sent),
            ("publish/dropped", st.publish_dropped),
            ("publish/received", st.publish_received),
            ("publish/sent", st.publish_sent),
            ("sockets", st.connections_total),
        ];
        let loads = self.load.update(now, &counters.map(|(_, v)| v));
        for ((name, _), avgs) in counters.iter().zip(loads) {
            for (window, v) in ["1min", "5min", "15min"].iter().zip(avgs) {
                values.push((format!("load/{name}/{window}"), format!("{v:.2}")));
            }
        }
        for (t, v) in values {
            let topic = format!("$SYS/broker/{t}");
            let msg = Arc::new(Message::simple(&topic, v.as_bytes(), QoS::AtMostOnce, true));
            self.retained.set(msg.clone());
            self.route(now, &msg);
        }
    }

    fn queued_messages(&self) -> usize {
        self.sessions
            .iter()
            .map(|(_, s)| s.flow().queue.len())
            .sum()
    }

    fn inflight_messages(&self) -> usize {
        self.sessions
            .iter()
            .map(|(_, s)| s.flow().inflight.len())
            .sum()
    }

    /// Closes every connection (shutdown): each driver learns it from `drain` and sends
    /// DISCONNECT 0x8B to 5.0 clients. Wills are not published for a server shutdown of
    /// this kind only if the clients reconnect; here they are published as Mosquitto does.
    pub fn shutdown_all(&mut self) -> Vec<ConnId> {
        let mut ids = Vec::with_capacity(self.connected);
        for (_, s) in self.sessions.iter_mut() {
            if let Some(a) = s.conn.as_mut() {
                a.closing = Some(ReasonCode::ServerShuttingDown);
                ids.push(a.id);
            }
        }
        ids
    }

    // ----- routing and delivery -----------------------------------------------------------

    /// Delivers `msg` to every matching session. Returns how many sessions it went to.
    pub fn route(&mut self, now: Timestamp, msg: &MsgRef) -> usize {
        let _ = now;
        let mut hits = std::mem::take(&mut self.hits);
        hits.clear();
        self.subs.matches(&msg.topic, &mut hits);
        let mut targets = std::mem::take(&mut self.targets);
        targets.clear();
        for h in &hits {
            let sub = match *h {
                Hit::Sub(s) => s,
                Hit::Group(g) => {
                    let sessions = &self.sessions;
                    match self
                        .subs
                        .pick_shared(g, |k| sessions.get(k).is_some_and(|s| s.conn.is_some()))
                    {
                        Some(s) => s,
                        None => continue,
                    }
                }
            };
            // 5.0 no-local: not back to the publishing session.
            if sub.options.no_local && msg.origin == Some(sub.session) {
                continue;
            }
            let mut ids = SubIds::None;
            if let Some(id) = sub.id {
                ids.push(id);
            }
            targets.push(Target {
                session: sub.session,
                qos: sub.options.qos,
                retain_as_published: sub.options.retain_as_published,
                sub_ids: ids,
            });
        }
        if targets.len() > 1 {
            // [MQTT-3.3.4-2] overlapping subscriptions: one copy at the highest QoS, with every
            // matching subscription identifier [MQTT-3.3.4-3].
            targets.sort_by_key(|t| t.session);
            targets.dedup_by(|later, first| {
                if later.session != first.session {
                    return false;
                }
                first.qos = first.qos.max(later.qos);
                first.retain_as_published |= later.retain_as_published;
                for &id in later.sub_ids.as_slice() {
                    first.sub_ids.push(id);
                }
                true
            });
        }
        let n = targets.len();
        for t in targets.drain(..) {
            let Some(s) = self.sessions.get(t.session) else {
                continue;
            };
            if !s.authz.can_read(
                Identity {
                    username: s.username.as_deref(),
                    client_id: &s.client_id,
                },
                &msg.topic,
            ) {
                continue;
            }
            let qos = if self.cfg.upgrade_outgoing_qos {
                t.qos
            } else {
                msg.qos.min(t.qos)
            };
            // [MQTT-3.3.1-12] live messages keep RETAIN only with retain-as-published;
            // 3.1.1 always clears it [MQTT-3.3.1-9].
            let retain = msg.retain && t.retain_as_published && s.version.is_v5();
            self.enqueue(
                t.session,
                Queued {
                    msg: msg.clone(),
                    qos,
                    retain,
                    sub_ids: t.sub_ids,
                    seq: 0,
                },
            );
        }
        self.targets = targets;
        self.hits = hits;
        n
    }

    /// Puts a message in a session's queue, or drops and counts it when the queue is full.
    fn enqueue(&mut self, key: usize, q: Queued) {
        let Some(s) = self.sessions.get_mut(key) else {
            return;
        };
        if s.conn.is_none() && q.qos == QoS::AtMostOnce && !self.cfg.queue_qos0_messages {
            // Offline sessions keep only QoS 1/2 unless queue_qos0_messages.
            return;
        }
        let cost = q.msg.cost();
        let f = s.flow.get_or_insert_with(|| Box::new(FlowState::EMPTY));
        if f.queue.len() + f.spilled >= self.cfg.max_queued_messages
            || f.queued_bytes + f.spilled_bytes + cost > self.cfg.max_queued_bytes
        {
            self.stats.publish_dropped += 1;
            return;
        }
        let mut q = q;
        if self.cfg.persistence && s.expiry != 0 && q.qos != QoS::AtMostOnce {
            q.seq = s.next_seq;
            s.next_seq += 1;
            s.in_store = true;
            self.ops.push(StoreOp::ItemPut {
                client_id: s.client_id.clone(),
                seq: q.seq,
                item: stored_item(&q, ItemState::Queued),
            });
            if s.conn.is_none() && self.loader.is_some() {
                // Offline: kept in the store only.
                f.spilled += 1;
                f.spilled_bytes += cost;
                return;
            }
        }
        f.queued_bytes += cost;
        self.total_queued_bytes += cost;
        f.queue.push_back(q);
        self.wake(key);
    }

    /// Moves up to `budget` queued messages of `conn`'s session onto the wire, within the
    /// inflight window (min of the client's receive maximum and `max_inflight_messages`).
    pub fn drain(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        budget: usize,
        out: &mut Vec<Out>,
    ) -> Drain {
        if let Some(reason) = self.closed.remove(&conn) {
            return Drain::Closed(reason);
        }
        let Some(key) = self.key_of(conn) else {
            return Drain::Closed(ReasonCode::UnspecifiedError);
        };
        let window_cfg = usize::from(self.cfg.max_inflight_messages.max(1));
        let s = &mut self.sessions[key];
        s.wake_pending = false;
        let Some(att) = s.conn.as_ref() else {
            return Drain::Closed(ReasonCode::UnspecifiedError);
        };
        if let Some(reason) = att.closing {
            return Drain::Closed(reason);
        }
        let window = window_cfg.min(usize::from(att.receive_maximum));
        let max_packet = att.max_packet_size;
        let Some(f) = s.flow.as_deref_mut() else {
            // Nothing was ever queued.
            return Drain::Idle;
        };
        let mut sent = 0;
        while sent < budget {
            let Some(front) = f.queue.front() else {
                break;
            };
            if front.qos != QoS::AtMostOnce && f.inflight.len() >= window {
                break;
            }
            let Some(q) = f.queue.pop_front() else {
                break;
            };
            let cost = q.msg.cost();
            f.queued_bytes -= cost;
            self.total_queued_bytes = self.total_queued_bytes.saturating_sub(cost);
            let expired = q.msg.expired(now);
            // Read rights are checked again at delivery: an ACL reloaded since the message was
            // queued applies to it too.
            let allowed = s.authz.can_read(
                Identity {
                    username: s.username.as_deref(),
                    client_id: &s.client_id,
                },
                &q.msg.topic,
            );
            if expired
                || !allowed
                || (max_packet != u32::MAX && publish_size(&q, now) > max_packet as usize)
            {
                // [MQTT-3.3.2-5] an expired message is not sent; [MQTT-3.1.2-25] one too big
                // for the client is discarded as if sent.
                self.stats.publish_dropped += 1;
                if q.seq != 0 {
                    self.ops.push(StoreOp::ItemDel {
                        client_id: s.client_id.clone(),
                        seq: q.seq,
                    });
                }
                continue;
            }
            let pid = if q.qos == QoS::AtMostOnce {
                None
            } else {
                let inflight = &f.inflight;
                let Some(pid) = s.pids.allocate(|id| inflight.iter().any(|i| i.pid == id)) else {
                    f.queued_bytes += cost;
                    self.total_queued_bytes += cost;
                    f.queue.push_front(q);
                    break;
                };
                let state = if q.qos == QoS::AtLeastOnce {
                    OutState::AwaitPuback
                } else {
                    OutState::AwaitPubrec
                };
                if q.seq != 0 {
                    self.ops.push(StoreOp::ItemPut {
                        client_id: s.client_id.clone(),
                        seq: q.seq,
                        item: stored_item(&q, ItemState::Inflight(pid, state)),
                    });
                }
                f.inflight.push_back(Inflight {
                    pid,
                    item: q.clone(),
                    state,
                });
                Some(pid)
            };
            self.stats.publish_sent += 1;
            self.stats.publish_bytes_sent += q.msg.payload.len() as u64;
            out.push(Out::Publish(Delivery {
                pid,
                msg: q.msg,
                qos: q.qos,
                retain: q.retain,
                dup: false,
                sub_ids: q.sub_ids,
            }));
            sent += 1;
        }
        let more = f
            .queue
            .front()
            .is_some_and(|q| q.qos == QoS::AtMostOnce || f.inflight.len() < window);
        if more { Drain::More } else { Drain::Idle }
    }

    /// True when `conn`'s session has queued messages the window would let through.
    pub fn has_pending(&self, conn: ConnId) -> bool {
        self.key_of(conn)
            .is_some_and(|k| !self.sessions[k].flow().queue.is_empty())
    }

    /// The retained message of a topic (tests, `tern` tools).
    pub fn retained(&mut self, topic: &str, now: Timestamp) -> Option<MsgRef> {
        let mut v = Vec::new();
        self.retained.matching(topic, now, &mut v);
        v.pop()
    }

    /// Every retained message.
    pub fn retained_all(&self) -> Vec<MsgRef> {
        self.retained.all()
    }

    /// A session by client id.
    pub fn session(&self, client_id: &str) -> Option<&Session> {
        self.by_client_id
            .get(client_id)
            .and_then(|&k| self.sessions.get(k))
    }
}

/// A queued message as the store keeps it.
fn stored_item(q: &Queued, state: ItemState) -> StoredItem {
    StoredItem {
        msg: q.msg.clone(),
        qos: q.qos,
        retain: q.retain,
        sub_ids: q.sub_ids.clone(),
        state,
    }
}

/// The size of the PUBLISH that would carry `q` (without a topic alias: an upper bound).
fn publish_size(q: &Queued, now: Timestamp) -> usize {
    let mut props = q.msg.properties(now);
    props.subscription_identifiers = tern_codec::SubscriptionIds::List(q.sub_ids.as_slice());
    let p = Publish {
        dup: false,
        qos: q.qos,
        retain: q.retain,
        topic: &q.msg.topic,
        packet_id: (q.qos != QoS::AtMostOnce).then_some(PacketId::MIN),
        properties: props,
        payload: &q.msg.payload,
    };
    Packet::Publish(p)
        .encoded_len(ProtocolVersion::V5)
        .unwrap_or(usize::MAX)
}
