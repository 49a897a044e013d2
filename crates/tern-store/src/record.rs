//! The binary layout of the records tern keeps in its store: retained messages, sessions and
//! per-session messages. Hand-written rather than serde-derived because the core's types
//! (`Message`, `SessionRecord`, codec enums) carry no serde derives and must not grow them,
//! and because every byte read back is checked: a decoded record is either exactly what was
//! written or a [`RecordError`], never a panic or a half-filled value.
//!
//! Every value starts with one byte, the record layout version ([`RECORD_V1`]). Integers are
//! LEB128 varints (fixed-width where the width is part of the meaning: packet ids, options),
//! strings and byte strings are a varint length then the bytes. The layout that came before
//! ([`v0`]) is kept only to read stores written with it.
//!
//! What is not stored: `Message::origin` (a slab index of the publishing session, meaningless
//! after a restart and possibly naming another session then); messages come back with `None`.

use std::sync::Arc;

use tern_broker_core::session::{OutState, SubIds};
use tern_broker_core::{ItemState, Message, MsgRef, SessionRecord, StoredItem};
use tern_codec::{PacketId, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
use tern_proto::Timestamp;

/// The record layout written by this version of tern.
pub const RECORD_V1: u8 = 1;
/// A session record of layout 1 followed by the QoS 2 packet ids awaiting PUBREL (written
/// only when there are some, so sessions without them stay readable by older versions).
pub const RECORD_V2: u8 = 2;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("record ends early (truncated)")]
    Truncated,
    #[error("record has {0} unexpected trailing bytes")]
    Trailing(usize),
    #[error("record layout version {0} is unknown")]
    UnknownVersion(u8),
    #[error("{field} holds an invalid value {value}")]
    BadValue { field: &'static str, value: u64 },
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
}

/// Appends values to a record.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(version: u8) -> Self {
        let mut w = Self {
            buf: Vec::with_capacity(64),
        };
        w.u8(version);
        w
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn var(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return;
            }
            self.buf.push(b | 0x80);
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.var(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    pub(crate) fn opt_var(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.var(v);
            }
        }
    }
}

/// Reads values from a record, checking every length against what is left.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, RecordError> {
        let (&b, rest) = self.buf.split_first().ok_or(RecordError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, RecordError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn var(&mut self) -> Result<u64, RecordError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::BadValue {
            field: "varint",
            value: v,
        })
    }

    pub(crate) fn var_u32(&mut self, field: &'static str) -> Result<u32, RecordError> {
        let v = self.var()?;
        u32::try_from(v).map_err(|_| RecordError::BadValue { field, value: v })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.var()?;
        let n = usize::try_from(n).map_err(|_| RecordError::Truncated)?;
        self.take(n)
    }

    pub(crate) fn str(&mut self, field: &'static str) -> Result<&'a str, RecordError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| RecordError::BadUtf8(field))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, RecordError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(RecordError::BadValue {
                field,
                value: u64::from(v),
            }),
        }
    }

    pub(crate) fn opt_str(&mut self, field: &'static str) -> Result<Option<&'a str>, RecordError> {
        Ok(if self.bool(field)? {
            Some(self.str(field)?)
        } else {
            None
        })
    }

    pub(crate) fn opt_var(&mut self, field: &'static str) -> Result<Option<u64>, RecordError> {
        Ok(if self.bool(field)? {
            Some(self.var()?)
        } else {
            None
        })
    }

    pub(crate) fn end(&self) -> Result<(), RecordError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(RecordError::Trailing(self.buf.len()))
        }
    }
}

fn qos(v: u8, field: &'static str) -> Result<QoS, RecordError> {
    QoS::from_u8(v, field).map_err(|_| RecordError::BadValue {
        field,
        value: u64::from(v),
    })
}

fn version(v: u8) -> Result<ProtocolVersion, RecordError> {
    match v {
        3 => Ok(ProtocolVersion::V31),
        4 => Ok(ProtocolVersion::V311),
        5 => Ok(ProtocolVersion::V5),
        _ => Err(RecordError::BadValue {
            field: "protocol version",
            value: u64::from(v),
        }),
    }
}

fn retain_handling(v: u8) -> Result<RetainHandling, RecordError> {
    match v {
        0 => Ok(RetainHandling::SendAtSubscribe),
        1 => Ok(RetainHandling::SendIfNew),
        2 => Ok(RetainHandling::DoNotSend),
        _ => Err(RecordError::BadValue {
            field: "retain handling",
            value: u64::from(v),
        }),
    }
}

const F_PFI: u8 = 1;
const F_CONTENT_TYPE: u8 = 2;
const F_RESPONSE_TOPIC: u8 = 4;
const F_CORRELATION: u8 = 8;
const F_USER_PROPS: u8 = 16;
const F_EXPIRES: u8 = 32;

pub(crate) fn put_message(w: &mut Writer, m: &Message) {
    w.str(&m.topic);
    w.bytes(&m.payload);
    w.u8(m.qos.as_u8());
    w.u8(u8::from(m.retain));
    let mut flags = 0;
    for (set, bit) in [
        (m.payload_format_indicator.is_some(), F_PFI),
        (m.content_type.is_some(), F_CONTENT_TYPE),
        (m.response_topic.is_some(), F_RESPONSE_TOPIC),
        (m.correlation_data.is_some(), F_CORRELATION),
        (m.user_properties.is_some(), F_USER_PROPS),
        (m.expires_at.is_some(), F_EXPIRES),
    ] {
        if set {
            flags |= bit;
        }
    }
    w.u8(flags);
    if let Some(v) = m.payload_format_indicator {
        w.u8(v);
    }
    if let Some(v) = &m.content_type {
        w.str(v);
    }
    if let Some(v) = &m.response_topic {
        w.str(v);
    }
    if let Some(v) = &m.correlation_data {
        w.bytes(v);
    }
    if let Some(v) = &m.user_properties {
        w.bytes(v);
    }
    if let Some(v) = m.expires_at {
        w.var(v.0);
    }
}

pub(crate) fn get_message(r: &mut Reader<'_>) -> Result<MsgRef, RecordError> {
    let topic: Arc<str> = Arc::from(r.str("topic")?);
    let payload = Box::from(r.bytes()?);
    let qos = qos(r.u8()?, "message qos")?;
    let retain = r.bool("retain")?;
    let flags = r.u8()?;
    if flags & !63 != 0 {
        return Err(RecordError::BadValue {
            field: "message flags",
            value: u64::from(flags),
        });
    }
    let has = |bit: u8| flags & bit != 0;
    let payload_format_indicator = if has(F_PFI) { Some(r.u8()?) } else { None };
    let content_type = if has(F_CONTENT_TYPE) {
        Some(Box::from(r.str("content type")?))
    } else {
        None
    };
    let response_topic = if has(F_RESPONSE_TOPIC) {
        Some(Box::from(r.str("response topic")?))
    } else {
        None
    };
    let correlation_data = if has(F_CORRELATION) {
        Some(Box::from(r.bytes()?))
    } else {
        None
    };
    let user_properties = if has(F_USER_PROPS) {
        Some(Box::from(r.bytes()?))
    } else {
        None
    };
    let expires_at = if has(F_EXPIRES) {
        Some(Timestamp(r.var()?))
    } else {
        None
    };
    Ok(Arc::new(Message {
        topic,
        payload,
        qos,
        retain,
        payload_format_indicator,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
        expires_at,
        origin: None,
    }))
}

/// A retained message (key: its topic).
pub fn encode_retained(m: &Message) -> Vec<u8> {
    let mut w = Writer::new(RECORD_V1);
    put_message(&mut w, m);
    w.buf
}

/// Reads a retained message record.
pub fn decode_retained(b: &[u8]) -> Result<MsgRef, RecordError> {
    let mut r = Reader::new(b);
    match r.u8()? {
        RECORD_V1 => {}
        v => return Err(RecordError::UnknownVersion(v)),
    }
    let m = get_message(&mut r)?;
    r.end()?;
    Ok(m)
}

pub(crate) fn put_options(w: &mut Writer, o: &SubscriptionOptions) {
    w.u8(o.qos.as_u8());
    w.u8(u8::from(o.no_local));
    w.u8(u8::from(o.retain_as_published));
    w.u8(o.retain_handling as u8);
}

pub(crate) fn get_options(r: &mut Reader<'_>) -> Result<SubscriptionOptions, RecordError> {
    Ok(SubscriptionOptions {
        qos: qos(r.u8()?, "subscription qos")?,
        no_local: r.bool("no local")?,
        retain_as_published: r.bool("retain as published")?,
        retain_handling: retain_handling(r.u8()?)?,
    })
}

/// A session record (key: its client id, which is not repeated in the value).
pub fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let layout = if s.inbound_qos2.is_empty() {
        RECORD_V1
    } else {
        RECORD_V2
    };
    let mut w = Writer::new(layout);
    w.opt_str(s.username.as_deref());
    w.u8(s.version.level());
    w.var(u64::from(s.expiry));
    w.opt_var(s.disconnected_at.map(|t| t.0));
    w.var(s.subscriptions.len() as u64);
    for (filter, options, id) in &s.subscriptions {
        w.str(filter);
        put_options(&mut w, options);
        w.opt_var(id.map(u64::from));
    }
    match &s.will {
        None => w.u8(0),
        Some((msg, delay, due)) => {
            w.u8(1);
            put_message(&mut w, msg);
            w.var(u64::from(*delay));
            w.opt_var(due.map(|t| t.0));
        }
    }
    w.u16(s.last_pid);
    if layout == RECORD_V2 {
        w.var(s.inbound_qos2.len() as u64);
        for pid in &s.inbound_qos2 {
            w.u16(*pid);
        }
    }
    w.buf
}

/// Reads a session record stored under `client_id`.
pub fn decode_session(client_id: &str, b: &[u8]) -> Result<SessionRecord, RecordError> {
    let mut r = Reader::new(b);
    let layout = match r.u8()? {
        v @ (RECORD_V1 | RECORD_V2) => v,
        v => return Err(RecordError::UnknownVersion(v)),
    };
    let username = r.opt_str("username")?.map(Arc::from);
    let version = version(r.u8()?)?;
    let expiry = r.var_u32("session expiry")?;
    let disconnected_at = r.opt_var("disconnected at")?.map(Timestamp);
    let n = r.var()?;
    let mut subscriptions = Vec::new();
    for _ in 0..n {
        let filter = Box::from(r.str("topic filter")?);
        let options = get_options(&mut r)?;
        let id = match r.opt_var("subscription identifier")? {
            None => None,
            Some(v) => Some(u32::try_from(v).map_err(|_| RecordError::BadValue {
                field: "subscription identifier",
                value: v,
            })?),
        };
        subscriptions.push((filter, options, id));
    }
    let will = if r.bool("will")? {
        let msg = get_message(&mut r)?;
        let delay = r.var_u32("will delay")?;
        let due = r.opt_var("will due")?.map(Timestamp);
        Some((msg, delay, due))
    } else {
        None
    };
    let last_pid = r.u16()?;
    let mut inbound_qos2 = Vec::new();
    if layout == RECORD_V2 {
        let n = r.var()?;
        for _ in 0..n {
            let pid = r.u16()?;
            if pid == 0 {
                return Err(RecordError::BadValue {
                    field: "QoS 2 packet id",
                    value: 0,
                });
            }
            inbound_qos2.push(pid);
        }
    }
    r.end()?;
    Ok(SessionRecord {
        client_id: Arc::from(client_id),
        username,
        version,
        expiry,
        disconnected_at,
        subscriptions,
        will,
        last_pid,
        inbound_qos2,
    })
}

fn out_state(v: u8) -> Result<OutState, RecordError> {
    match v {
        0 => Ok(OutState::AwaitPuback),
        1 => Ok(OutState::AwaitPubrec),
        2 => Ok(OutState::AwaitPubcomp),
        _ => Err(RecordError::BadValue {
            field: "inflight state",
            value: u64::from(v),
        }),
    }
}

fn out_state_byte(s: OutState) -> u8 {
    match s {
        OutState::AwaitPuback => 0,
        OutState::AwaitPubrec => 1,
        OutState::AwaitPubcomp => 2,
    }
}

pub(crate) fn put_sub_ids(w: &mut Writer, ids: &SubIds) {
    let s = ids.as_slice();
    w.var(s.len() as u64);
    for id in s {
        w.var(u64::from(*id));
    }
}

pub(crate) fn get_sub_ids(r: &mut Reader<'_>) -> Result<SubIds, RecordError> {
    let n = r.var()?;
    let mut ids = SubIds::None;
    let mut list = Vec::new();
    for _ in 0..n {
        list.push(r.var_u32("subscription identifier")?);
    }
    match list.as_slice() {
        [] => {}
        [one] => ids = SubIds::One(*one),
        _ => ids = SubIds::Many(Arc::from(list)),
    }
    Ok(ids)
}

/// A message of a session (key: client id and sequence number).
pub fn encode_item(i: &StoredItem) -> Vec<u8> {
    let mut w = Writer::new(RECORD_V1);
    put_message(&mut w, &i.msg);
    w.u8(i.qos.as_u8());
    w.u8(u8::from(i.retain));
    put_sub_ids(&mut w, &i.sub_ids);
    match i.state {
        ItemState::Queued => w.u8(0),
        ItemState::Inflight(pid, state) => {
            w.u8(1);
            w.u16(pid.get());
            w.u8(out_state_byte(state));
        }
    }
    w.buf
}

/// Reads a session's message record.
pub fn decode_item(b: &[u8]) -> Result<StoredItem, RecordError> {
    let mut r = Reader::new(b);
    match r.u8()? {
        RECORD_V1 => {}
        v => return Err(RecordError::UnknownVersion(v)),
    }
    let msg = get_message(&mut r)?;
    let q = qos(r.u8()?, "delivery qos")?;
    let retain = r.bool("retain")?;
    let sub_ids = get_sub_ids(&mut r)?;
    let state = match r.u8()? {
        0 => ItemState::Queued,
        1 => {
            let v = r.u16()?;
            let pid = PacketId::new(v).ok_or(RecordError::BadValue {
                field: "packet identifier",
                value: 0,
            })?;
            ItemState::Inflight(pid, out_state(r.u8()?)?)
        }
        v => {
            return Err(RecordError::BadValue {
                field: "item state",
                value: u64::from(v),
            });
        }
    };
    r.end()?;
    Ok(StoredItem {
        msg,
        qos: q,
        retain,
        sub_ids,
        state,
    })
}

/// The layout of schema version 0 (the first prototype store): the same fields without the
/// leading layout byte, sessions without `last_pid`, items without subscription identifiers.
/// Read only by the migration; nothing writes it any more except the tests' fixture.
pub mod v0 {
    use super::*;

    fn get_message(r: &mut Reader<'_>) -> Result<MsgRef, RecordError> {
        super::get_message(r)
    }

    /// Reads a version 0 retained message.
    pub fn decode_retained(b: &[u8]) -> Result<MsgRef, RecordError> {
        let mut r = Reader::new(b);
        let m = get_message(&mut r)?;
        r.end()?;
        Ok(m)
    }

    /// Reads a version 0 session.
    pub fn decode_session(client_id: &str, b: &[u8]) -> Result<SessionRecord, RecordError> {
        let mut r = Reader::new(b);
        let username = r.opt_str("username")?.map(Arc::from);
        let version = version(r.u8()?)?;
        let expiry = r.var_u32("session expiry")?;
        let disconnected_at = r.opt_var("disconnected at")?.map(Timestamp);
        let n = r.var()?;
        let mut subscriptions = Vec::new();
        for _ in 0..n {
            let filter = Box::from(r.str("topic filter")?);
            let options = get_options(&mut r)?;
            subscriptions.push((filter, options, None));
        }
        let will = if r.bool("will")? {
            let msg = get_message(&mut r)?;
            let delay = r.var_u32("will delay")?;
            Some((msg, delay, r.opt_var("will due")?.map(Timestamp)))
        } else {
            None
        };
        r.end()?;
        Ok(SessionRecord {
            client_id: Arc::from(client_id),
            username,
            version,
            expiry,
            disconnected_at,
            subscriptions,
            will,
            // Unknown in version 0: the restored session starts at packet id 1, as then.
            last_pid: 0,
            inbound_qos2: Vec::new(),
        })
    }

    /// Reads a version 0 item (always queued: version 0 did not store in-flight state).
    pub fn decode_item(b: &[u8]) -> Result<StoredItem, RecordError> {
        let mut r = Reader::new(b);
        let msg = get_message(&mut r)?;
        let q = qos(r.u8()?, "delivery qos")?;
        let retain = r.bool("retain")?;
        r.end()?;
        Ok(StoredItem {
            msg,
            qos: q,
            retain,
            sub_ids: SubIds::None,
            state: ItemState::Queued,
        })
    }

    /// Writes a version 0 retained message (test fixtures).
    pub fn encode_retained(m: &Message) -> Vec<u8> {
        let mut w = Writer::default();
        put_message(&mut w, m);
        w.buf
    }

    /// Writes a version 0 session (test fixtures).
    pub fn encode_session(s: &SessionRecord) -> Vec<u8> {
        let mut w = Writer::default();
        w.opt_str(s.username.as_deref());
        w.u8(s.version.level());
        w.var(u64::from(s.expiry));
        w.opt_var(s.disconnected_at.map(|t| t.0));
        w.var(s.subscriptions.len() as u64);
        for (filter, options, _) in &s.subscriptions {
            w.str(filter);
            put_options(&mut w, options);
        }
        match &s.will {
            None => w.u8(0),
            Some((msg, delay, due)) => {
                w.u8(1);
                put_message(&mut w, msg);
                w.var(u64::from(*delay));
                w.opt_var(due.map(|t| t.0));
            }
        }
        w.buf
    }

    /// Writes a version 0 item (test fixtures).
    pub fn encode_item(i: &StoredItem) -> Vec<u8> {
        let mut w = Writer::default();
        put_message(&mut w, &i.msg);
        w.u8(i.qos.as_u8());
        w.u8(u8::from(i.retain));
        w.buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn msg() -> Message {
        Message {
            topic: Arc::from("a/b"),
            payload: Box::from(&b"payload"[..]),
            qos: QoS::ExactlyOnce,
            retain: true,
            payload_format_indicator: Some(1),
            content_type: Some(Box::from("text/plain")),
            response_topic: Some(Box::from("r/t")),
            correlation_data: Some(Box::from(&[0u8, 1, 2][..])),
            user_properties: Some(Box::from(&[0x26u8, 0, 1, b'k', 0, 1, b'v'][..])),
            expires_at: Some(Timestamp(123_456)),
            origin: None,
        }
    }

    #[test]
    fn retained_round_trip_and_every_truncation_is_an_error() {
        let b = encode_retained(&msg());
        assert_eq!(*decode_retained(&b).unwrap(), msg());
        for n in 0..b.len() {
            assert!(decode_retained(&b[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode_retained(&longer), Err(RecordError::Trailing(1)));
    }

    #[test]
    fn session_with_qos2_ids_uses_layout_2_and_round_trips() {
        let mut s = SessionRecord {
            client_id: Arc::from("c"),
            username: None,
            version: ProtocolVersion::V5,
            expiry: 60,
            disconnected_at: None,
            subscriptions: Vec::new(),
            will: None,
            last_pid: 9,
            inbound_qos2: Vec::new(),
        };
        let b = encode_session(&s);
        assert_eq!(
            b[0], RECORD_V1,
            "no QoS 2 ids: the layout older versions read"
        );
        assert_eq!(decode_session("c", &b).unwrap(), s);
        s.inbound_qos2 = vec![3, 65_535];
        let b = encode_session(&s);
        assert_eq!(b[0], RECORD_V2);
        assert_eq!(decode_session("c", &b).unwrap(), s);
        for n in 0..b.len() {
            assert!(decode_session("c", &b[..n]).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn unknown_layout_version_is_refused() {
        let mut b = encode_retained(&msg());
        b[0] = 9;
        assert_eq!(decode_retained(&b), Err(RecordError::UnknownVersion(9)));
    }

    #[test]
    fn item_round_trip_with_inflight_state() {
        let i = StoredItem {
            msg: Arc::new(msg()),
            qos: QoS::AtLeastOnce,
            retain: false,
            sub_ids: SubIds::Many(Arc::from([3u32, 70_000])),
            state: ItemState::Inflight(PacketId::new(7).unwrap(), OutState::AwaitPubcomp),
        };
        assert_eq!(decode_item(&encode_item(&i)).unwrap(), i);
    }
}
