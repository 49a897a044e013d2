//! What the broker core tells a store so that sessions, queued and in-flight QoS 1/2
//! messages and retained messages survive a restart. The core only describes changes
//! ([`StoreOp`]) and rebuilds itself from records ([`Restored`]); it never touches files.
//! tern-broker applies the operations to an embedded database and holds the PUBACK / PUBREC
//! of a batch until the operations it produced are durable.

use std::sync::Arc;

use tern_codec::{PacketId, ProtocolVersion, QoS, SubscriptionOptions};
use tern_proto::Timestamp;

use crate::message::MsgRef;
use crate::session::{OutState, SubIds};

/// A session without its messages.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRecord {
    pub client_id: Arc<str>,
    pub username: Option<Arc<str>>,
    pub version: ProtocolVersion,
    /// Session expiry interval, seconds (`u32::MAX`: never).
    pub expiry: u32,
    /// When the connection ended; `None` while connected (a restart counts as the end).
    pub disconnected_at: Option<Timestamp>,
    pub subscriptions: Vec<(Box<str>, SubscriptionOptions, Option<u32>)>,
    /// A will waiting for its delay: the message, the delay in seconds and when it is due.
    pub will: Option<(MsgRef, u32, Option<Timestamp>)>,
    /// The last packet identifier handed out, so that a restored session does not reuse one
    /// still held by the client.
    pub last_pid: u16,
    /// QoS 2 messages received and acknowledged with PUBREC, whose PUBREL has not come yet:
    /// after a restart a resent PUBLISH with one of these ids is not delivered twice.
    pub inbound_qos2: Vec<u16>,
}

/// Where a stored message is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// Queued, not sent yet.
    Queued,
    /// Sent with this packet identifier, waiting for the client.
    Inflight(PacketId, OutState),
}

/// One message for one session.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredItem {
    pub msg: MsgRef,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: SubIds,
    pub state: ItemState,
}

/// A change to persist. Operations are applied in order; a batch is committed together.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreOp {
    /// Set the retained message of its topic.
    RetainedPut(MsgRef),
    /// Clear the retained message of a topic.
    RetainedDel(Arc<str>),
    /// Create or replace a session record.
    SessionPut(SessionRecord),
    /// Delete a session and every message stored for it.
    SessionDel(Arc<str>),
    /// Store (or replace) a message of a session under its sequence number.
    ItemPut {
        client_id: Arc<str>,
        seq: u64,
        item: StoredItem,
    },
    /// A message was delivered, expired or dropped.
    ItemDel { client_id: Arc<str>, seq: u64 },
}

impl StoreOp {
    /// True for operations that must be durable before the publisher is acknowledged.
    pub fn needs_sync(&self) -> bool {
        matches!(
            self,
            StoreOp::RetainedPut(_)
                | StoreOp::RetainedDel(_)
                | StoreOp::ItemPut { .. }
                | StoreOp::SessionPut(_)
        )
    }
}

/// Everything read back from a store at start-up.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub retained: Vec<MsgRef>,
    pub sessions: Vec<SessionRecord>,
    /// (client id, sequence number, item), in sequence order per client.
    pub items: Vec<(Arc<str>, u64, StoredItem)>,
    /// Sessions' stored messages summed up instead of read into memory: they stay in the
    /// store until their session reconnects and the [`QueueLoader`] reads them. Only for a
    /// broker with a queue loader.
    pub queues: Vec<StoredQueue>,
    /// Queued messages found expired while the store was read, to be deleted from it.
    pub expired: Vec<(Arc<str>, u64)>,
}

impl Restored {
    /// `items` moved into `queues` (counted) and `expired` (queued messages expired at
    /// `now`), as a store that keeps its messages on disk reads them at start-up.
    pub fn summarized(mut self, now: Timestamp) -> Restored {
        for (c, seq, item) in std::mem::take(&mut self.items) {
            self.add_summarized(&c, seq, &item, now);
        }
        self
    }

    /// Counts one stored message of `client_id` in `queues`, or lists it in `expired`;
    /// messages come in client id and sequence order.
    pub fn add_summarized(
        &mut self,
        client_id: &Arc<str>,
        seq: u64,
        item: &StoredItem,
        now: Timestamp,
    ) {
        if item.state == ItemState::Queued && item.msg.expired(now) {
            self.expired.push((client_id.clone(), seq));
        } else {
            StoredQueue::add(&mut self.queues, client_id, seq, item.msg.cost());
        }
    }
}

/// One session's messages left in the store at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredQueue {
    pub client_id: Arc<str>,
    /// How many messages, and their cost as [`crate::Message::cost`] counts it.
    pub count: usize,
    pub bytes: usize,
    /// The highest sequence number among them.
    pub last_seq: u64,
}

impl StoredQueue {
    /// Adds one message of `client_id` to the summaries, which are in client id order.
    fn add(queues: &mut Vec<StoredQueue>, client_id: &Arc<str>, seq: u64, cost: usize) {
        match queues.last_mut() {
            Some(q) if q.client_id == *client_id => {
                q.count += 1;
                q.bytes += cost;
                q.last_seq = q.last_seq.max(seq);
            }
            _ => queues.push(StoredQueue {
                client_id: client_id.clone(),
                count: 1,
                bytes: cost,
                last_seq: seq,
            }),
        }
    }
}

/// Reads the stored messages of one session back (when an offline session whose messages
/// were kept only in the store reconnects). The store must include every operation already
/// handed to it.
pub trait QueueLoader: Send + Sync + std::fmt::Debug {
    fn load(&self, client_id: &str) -> Vec<(u64, StoredItem)>;
}

/// An in-memory store: applies operations the way a database must, and reads them back.
/// The reference for store implementations and the store of the core's own tests.
#[derive(Debug, Default)]
pub struct MemStore {
    inner: std::sync::Mutex<MemInner>,
}

#[derive(Debug, Default)]
struct MemInner {
    retained: std::collections::BTreeMap<Arc<str>, MsgRef>,
    sessions: std::collections::BTreeMap<Arc<str>, SessionRecord>,
    items: std::collections::BTreeMap<(Arc<str>, u64), StoredItem>,
}

impl MemStore {
    /// Applies operations in order.
    pub fn apply(&self, ops: &[StoreOp]) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for op in ops {
            match op {
                StoreOp::RetainedPut(msg) => {
                    m.retained.insert(msg.topic.clone(), msg.clone());
                }
                StoreOp::RetainedDel(t) => {
                    m.retained.remove(t);
                }
                StoreOp::SessionPut(r) => {
                    m.sessions.insert(r.client_id.clone(), r.clone());
                }
                StoreOp::SessionDel(c) => {
                    m.sessions.remove(c);
                    m.items.retain(|(id, _), _| id != c);
                }
                StoreOp::ItemPut {
                    client_id,
                    seq,
                    item,
                } => {
                    m.items.insert((client_id.clone(), *seq), item.clone());
                }
                StoreOp::ItemDel { client_id, seq } => {
                    m.items.remove(&(client_id.clone(), *seq));
                }
            }
        }
    }

    /// Everything stored, as read at start-up.
    pub fn restored(&self) -> Restored {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Restored {
            retained: m.retained.values().cloned().collect(),
            sessions: m.sessions.values().cloned().collect(),
            items: m
                .items
                .iter()
                .map(|((c, s), i)| (c.clone(), *s, i.clone()))
                .collect(),
            ..Restored::default()
        }
    }

    /// Everything stored, with the messages summed up per session as a store that keeps
    /// them on disk reads them at start-up; queued messages expired at `now` are listed in
    /// `expired`.
    pub fn restored_summary(&self, now: Timestamp) -> Restored {
        self.restored().summarized(now)
    }

    /// Number of stored messages (tests).
    pub fn item_count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len()
    }
}

impl QueueLoader for MemStore {
    fn load(&self, client_id: &str) -> Vec<(u64, StoredItem)> {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.items
            .iter()
            .filter(|((c, _), _)| &**c == client_id)
            .map(|((_, s), i)| (*s, i.clone()))
            .collect()
    }
}
