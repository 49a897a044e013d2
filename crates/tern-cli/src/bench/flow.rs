//! The message scenarios (`pairs`, `fan-in`, `fan-out`): who publishes where, the publisher and
//! subscriber connection loops, the end-to-end window, and the drain that ends a run.
//!
//! Everything runs on one current-thread runtime, one task per connection. Each loop reads
//! and writes in one `select!`; a publisher encodes as many PUBLISH packets as its window, its
//! MQTT inflight limit and its pace allow into one buffer and writes them with one call.
//! After set-up nothing here allocates per message: payloads are stamped in place, packets
//! are encoded into reused buffers and decoded as borrowed views.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tern_codec::{Ack, Packet, PacketId, ProtocolVersion, Publish, QoS, decode_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, Semaphore, watch};

use super::net::{self, Conn, Target};
use super::stamp::{self, Stamp};
use super::stats::{Latency, Tracker};

/// Bytes of PUBLISH packets a publisher gathers before writing them with one call.
const BATCH_BYTES: usize = 32 * 1024;
/// A publisher whose window made no progress for this long assumes the messages in flight
/// are lost and moves on (counted in `window_stalls`).
const STALL: Duration = Duration::from_secs(1);
/// After the publishers finish, the drain also ends when nothing arrived for this long.
const SETTLE: Duration = Duration::from_secs(1);
/// Connections opened at once during set-up.
const CONNECT_CONCURRENCY: usize = 64;

/// Which message scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// N publisher/subscriber pairs, one topic each.
    Pairs,
    /// N publishers, one wildcard subscriber.
    FanIn,
    /// One publisher, N subscribers of its topic.
    FanOut,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct FlowSpec {
    pub shape: Shape,
    /// Pairs, publishers (fan-in) or subscribers (fan-out).
    pub count: usize,
    pub qos: QoS,
    pub payload: usize,
    /// Stop publishing after this long.
    pub duration: Duration,
    /// Stop each publisher after this many messages.
    pub messages: Option<u32>,
    /// Messages per second per publisher; 0 = unpaced.
    pub rate: f64,
    /// Messages in flight end to end per publisher (and the MQTT inflight limit at QoS 1/2).
    pub window: u32,
    /// Longest wait for stragglers after publishing stops.
    pub drain: Duration,
    /// Topic prefix, unique per run.
    pub prefix: String,
    /// Subscribers connect with a session the broker keeps (and may persist).
    pub persistent_subscribers: bool,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct FlowResult {
    pub publishers: usize,
    pub subscribers: usize,
    pub connect_s: f64,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Payloads without a stamp of this run (another client's messages).
    pub foreign: u64,
    /// QoS 1/2 messages never acknowledged by the broker before the drain ended.
    pub unacked: u64,
    /// QoS 1/2 acknowledgements with an error reason code (5.0).
    pub rejected: u64,
    pub window_stalls: u64,
    pub publish_s: f64,
    pub elapsed_s: f64,
    pub latency: Latency,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Shape {
    fn publishers(self, n: usize) -> usize {
        if self == Shape::FanOut { 1 } else { n }
    }

    fn subscribers(self, n: usize) -> usize {
        if self == Shape::FanIn { 1 } else { n }
    }

    fn topic(self, prefix: &str, publisher: usize) -> String {
        match self {
            Shape::Pairs => format!("{prefix}/p/{publisher}"),
            Shape::FanIn => format!("{prefix}/in/{publisher}"),
            Shape::FanOut => format!("{prefix}/out"),
        }
    }

    fn filter(self, prefix: &str, subscriber: usize) -> String {
        match self {
            Shape::Pairs => format!("{prefix}/p/{subscriber}"),
            Shape::FanIn => format!("{prefix}/in/+"),
            Shape::FanOut => format!("{prefix}/out"),
        }
    }

    /// The publishers a subscriber hears, as a range of ids, and its slot among each one's
    /// subscribers.
    fn hears(self, subscriber: usize, publishers: usize) -> (std::ops::Range<usize>, usize) {
        match self {
            Shape::Pairs => (subscriber..subscriber + 1, 0),
            Shape::FanIn => (0..publishers, 0),
            Shape::FanOut => (0..1, subscriber),
        }
    }
}

/// State the tasks of one run share (one thread, so `Cell`s).
#[derive(Debug)]
struct Shared {
    /// Clock base of the payload stamps.
    base: Instant,
    /// `marks[publisher][slot]`: one past the highest sequence number each of the
    /// publisher's subscribers has seen. The end-to-end window is measured against the least.
    marks: Vec<Vec<Cell<u32>>>,
    /// Messages each publisher has sent so far.
    sent: Vec<Cell<u32>>,
    /// Woken whenever a subscriber has read a batch.
    progress: Notify,
    /// When a subscriber last received anything.
    last_rx: Cell<Option<Instant>>,
}

fn since(base: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

/// Packet identifiers in use by one publisher, 1..=65535.
#[derive(Debug)]
struct IdPool {
    used: Vec<u64>,
    next: PacketId,
}

impl IdPool {
    fn new() -> Self {
        Self {
            used: vec![0; 1024],
            next: PacketId::MIN,
        }
    }

    fn bit(id: PacketId) -> (usize, u64) {
        let v = usize::from(id.get());
        (v / 64, 1u64 << (v % 64))
    }

    /// The next identifier if it is free.
    fn take(&mut self) -> Option<PacketId> {
        let id = self.next;
        let (w, b) = Self::bit(id);
        if self.used[w] & b != 0 {
            return None;
        }
        self.used[w] |= b;
        self.next = id.next();
        Some(id)
    }

    /// Frees an identifier; false when it was not in use (a stray acknowledgement).
    fn free(&mut self, id: PacketId) -> bool {
        let (w, b) = Self::bit(id);
        let was = self.used[w] & b != 0;
        self.used[w] &= !b;
        was
    }
}

/// What one subscriber saw.
#[derive(Debug)]
struct SubStats {
    /// First publisher id heard; `trackers[i]` is publisher `lo + i`.
    lo: usize,
    slot: usize,
    trackers: Vec<Tracker>,
    latency: Latency,
    foreign: u64,
}

#[derive(Debug, Default)]
struct PubOutcome {
    unacked: u64,
    rejected: u64,
    stalls: u64,
    publish_end: Option<Instant>,
}

/// Opens `n` connections, at most [`CONNECT_CONCURRENCY`] at a time.
async fn connect_many(
    target: &Target,
    ids: Vec<String>,
    in_cap: usize,
    out_cap: usize,
) -> anyhow::Result<Vec<Conn>> {
    let sem = Rc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut handles = Vec::with_capacity(ids.len());
    for id in ids {
        let sem = sem.clone();
        let target = target.clone();
        handles.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await?;
            net::connect(&target, &id, in_cap, out_cap)
                .await
                .with_context(|| format!("client {id}"))
        }));
    }
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.context("connect task")??);
    }
    Ok(out)
}

/// Runs one message scenario end to end. `on_start` and `on_end` bracket the measured part
/// (for CPU and memory sampling).
pub async fn run(
    spec: &FlowSpec,
    target: &Target,
    id_prefix: &str,
    on_start: impl FnOnce(),
    on_end: impl FnOnce(),
) -> anyhow::Result<FlowResult> {
    let n_pub = spec.shape.publishers(spec.count);
    let n_sub = spec.shape.subscribers(spec.count);
    let packet = spec.payload + 256 + spec.prefix.len();
    let in_cap = (packet * 4).max(64 * 1024);
    let out_cap = BATCH_BYTES + packet * 2 + 4096;

    // Subscribers first, so nothing published is missed.
    let t0 = Instant::now();
    let sub_ids = (0..n_sub).map(|i| format!("{id_prefix}-s{i}")).collect();
    let sub_target = Target {
        clean_start: !spec.persistent_subscribers,
        ..target.clone()
    };
    let mut subs = connect_many(&sub_target, sub_ids, in_cap, 4096).await?;
    for (i, conn) in subs.iter_mut().enumerate() {
        net::subscribe(conn, &spec.shape.filter(&spec.prefix, i), spec.qos).await?;
    }
    let pub_ids = (0..n_pub).map(|i| format!("{id_prefix}-p{i}")).collect();
    let pubs = connect_many(target, pub_ids, 4096, out_cap).await?;
    let connect_s = t0.elapsed().as_secs_f64();

    let mut marks: Vec<Vec<Cell<u32>>> = (0..n_pub).map(|_| Vec::new()).collect();
    let mut stats = Vec::with_capacity(n_sub);
    for s in 0..n_sub {
        let (range, slot) = spec.shape.hears(s, n_pub);
        for m in &mut marks[range.clone()] {
            while m.len() <= slot {
                m.push(Cell::new(0));
            }
        }
        stats.push(Rc::new(RefCell::new(SubStats {
            lo: range.start,
            slot,
            trackers: vec![Tracker::default(); range.len()],
            latency: Latency::new(),
            foreign: 0,
        })));
    }
    let shared = Rc::new(Shared {
        base: Instant::now(),
        marks,
        sent: (0..n_pub).map(|_| Cell::new(0)).collect(),
        progress: Notify::new(),
        last_rx: Cell::new(None),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sub_tasks = Vec::with_capacity(n_sub);
    for (conn, st) in subs.into_iter().zip(&stats) {
        let (st, shared, stop) = (st.clone(), shared.clone(), stop_rx.clone());
        sub_tasks.push(tokio::task::spawn_local(subscriber(conn, st, shared, stop)));
    }

    on_start();
    let start = Instant::now();
    let end = start + spec.duration;
    let mut pub_tasks = Vec::with_capacity(n_pub);
    for (i, conn) in pubs.into_iter().enumerate() {
        let job = PubJob {
            id: i,
            topic: spec.shape.topic(&spec.prefix, i),
            spec: spec.clone(),
            start,
            end,
        };
        pub_tasks.push(tokio::task::spawn_local(publisher(
            conn,
            job,
            shared.clone(),
        )));
    }

    let mut r = FlowResult {
        publishers: n_pub,
        subscribers: n_sub,
        connect_s,
        ..FlowResult::default()
    };
    let note = |r: &mut FlowResult, e: anyhow::Error| {
        r.errors += 1;
        if r.first_error.is_none() {
            r.first_error = Some(format!("{e:#}"));
        }
    };
    let mut publish_end = start;
    for h in pub_tasks {
        match h.await {
            Ok(Ok(o)) => {
                r.unacked += o.unacked;
                r.rejected += o.rejected;
                r.window_stalls += o.stalls;
                if let Some(t) = o.publish_end {
                    publish_end = publish_end.max(t);
                }
            }
            Ok(Err(e)) => note(&mut r, e),
            Err(e) => note(&mut r, anyhow::anyhow!("publisher task: {e}")),
        }
    }
    let pubs_done = Instant::now();
    if publish_end == start {
        publish_end = pubs_done;
    }

    // Drain: until every subscriber has everything, nothing arrived for SETTLE, or the
    // drain time is up.
    let drain_end = pubs_done + spec.drain;
    loop {
        let now = Instant::now();
        let complete = stats.iter().all(|st| {
            let st = st.borrow();
            st.trackers
                .iter()
                .enumerate()
                .all(|(k, t)| t.complete(shared.sent[st.lo + k].get()))
        });
        let quiet = shared
            .last_rx
            .get()
            .is_none_or(|t| now.saturating_duration_since(t) >= SETTLE);
        if complete || now >= drain_end || (quiet && now - pubs_done >= SETTLE) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    on_end();
    let _ = stop_tx.send(true);
    for h in sub_tasks {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => note(&mut r, e),
            Err(e) => note(&mut r, anyhow::anyhow!("subscriber task: {e}")),
        }
    }

    r.sent = shared.sent.iter().map(|c| u64::from(c.get())).sum();
    for st in &stats {
        let st = st.borrow();
        for (k, t) in st.trackers.iter().enumerate() {
            let sent = shared.sent[st.lo + k].get();
            r.expected += u64::from(sent);
            r.received += t.received;
            r.lost += t.lost(sent);
            r.duplicates += t.duplicates;
            r.out_of_order += t.out_of_order;
        }
        r.foreign += st.foreign;
        r.latency.merge(&st.latency);
    }
    r.publish_s = publish_end.saturating_duration_since(start).as_secs_f64();
    let last = shared.last_rx.get().unwrap_or(publish_end).max(publish_end);
    r.elapsed_s = last.saturating_duration_since(start).as_secs_f64();
    Ok(r)
}

#[derive(Debug)]
struct PubJob {
    id: usize,
    topic: String,
    spec: FlowSpec,
    start: Instant,
    end: Instant,
}

/// Why a publisher is not sending right now.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Blocked {
    No,
    /// Paced: the next message is due then.
    Pace(Instant),
    /// The end-to-end window is full: wait for subscribers.
    Window,
    /// The MQTT inflight limit is reached: wait for acknowledgements.
    Acks,
}

async fn publisher(mut conn: Conn, job: PubJob, shared: Rc<Shared>) -> anyhow::Result<PubOutcome> {
    let spec = &job.spec;
    let v = conn.version;
    let id = job.id;
    let id32 = u32::try_from(id).unwrap_or(u32::MAX);
    let limit = spec.messages.unwrap_or(u32::MAX);
    let qos = spec.qos;
    let max_inflight = if qos == QoS::AtMostOnce {
        0
    } else {
        spec.window.min(u32::from(conn.server_receive_max))
    };
    let mut payload = stamp::new_payload(spec.payload);
    let mut ids = IdPool::new();
    let mut out = PubOutcome::default();
    let mut seq: u32 = 0;
    let mut inflight: u32 = 0;
    // The least subscriber mark last computed, and a floor raised by stalls.
    let mut mark: u32 = 0;
    let mut window_since: Option<Instant> = None;
    let mut stopped = false;
    let mut drain_deadline = job.end;

    loop {
        // Acknowledgements.
        while let Some((first, body)) = conn.next_frame()? {
            let next = body.end;
            let p = decode_body(first, &conn.inbuf[body], v)
                .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?;
            match p {
                Packet::Puback(a) | Packet::Pubcomp(a) => {
                    if ids.free(a.packet_id) {
                        inflight = inflight.saturating_sub(1);
                    }
                    if !a.reason.is_success() {
                        out.rejected += 1;
                    }
                }
                Packet::Pubrec(a) if !a.reason.is_success() => {
                    if ids.free(a.packet_id) {
                        inflight = inflight.saturating_sub(1);
                    }
                    out.rejected += 1;
                }
                Packet::Pubrec(a) => {
                    net::push(&mut conn.out, v, &Packet::Pubrel(Ack::new(a.packet_id)))?;
                }
                Packet::Disconnect(d) => {
                    bail!(
                        "the broker disconnected a publisher: {}",
                        d.reason.description()
                    )
                }
                _ => {}
            }
            conn.start = next;
        }
        conn.compact();

        let mut now = Instant::now();
        if !stopped && (seq >= limit || now >= job.end) {
            stopped = true;
            out.publish_end = Some(now);
            drain_deadline = now + spec.drain;
        }
        let mut blocked = Blocked::No;
        if !stopped && conn.pos == conn.out.len() {
            conn.out.clear();
            conn.pos = 0;
            while seq < limit && conn.out.len() < BATCH_BYTES {
                if spec.rate > 0.0 {
                    let due = job.start + Duration::from_secs_f64(f64::from(seq) / spec.rate);
                    if due > now {
                        blocked = Blocked::Pace(due);
                        break;
                    }
                }
                if seq.saturating_sub(mark) >= spec.window {
                    let least = shared.marks[id].iter().map(Cell::get).min().unwrap_or(seq);
                    mark = mark.max(least);
                    if seq.saturating_sub(mark) >= spec.window {
                        let since = *window_since.get_or_insert(now);
                        if now - since < STALL {
                            blocked = Blocked::Window;
                            break;
                        }
                        // Nothing moved for STALL: count what is in flight as lost and go on.
                        out.stalls += 1;
                        mark = seq;
                    }
                }
                window_since = None;
                let packet_id = if qos == QoS::AtMostOnce {
                    None
                } else {
                    if inflight >= max_inflight {
                        blocked = Blocked::Acks;
                        break;
                    }
                    let Some(pid) = ids.take() else {
                        blocked = Blocked::Acks;
                        break;
                    };
                    inflight += 1;
                    Some(pid)
                };
                stamp::write(
                    &mut payload,
                    Stamp {
                        sent_ns: since(shared.base, now),
                        seq,
                        publisher: id32,
                    },
                );
                let p = Publish {
                    qos,
                    packet_id,
                    ..Publish::new(&job.topic, &payload)
                };
                net::push(&mut conn.out, v, &Packet::Publish(p))?;
                seq += 1;
                now = Instant::now();
            }
            shared.sent[id].set(seq);
            if seq >= limit && conn.out.is_empty() {
                continue;
            }
        }
        if stopped && conn.pos == conn.out.len() && (inflight == 0 || now >= drain_deadline) {
            out.unacked = u64::from(inflight);
            return Ok(out);
        }

        // Wake up for the next due message, the end of the run, or the drain deadline.
        let wake_at = match blocked {
            Blocked::Pace(t) => t.min(job.end),
            Blocked::Window => (now + STALL).min(job.end),
            _ if stopped => drain_deadline,
            _ => job.end,
        };
        let progress = shared.progress.notified();
        if conn.end == conn.inbuf.len() {
            bail!("a packet from the broker is larger than the read buffer");
        }
        tokio::select! {
            biased;
            r = conn.rd.read(&mut conn.inbuf[conn.end..]) => {
                let n = r.context("reading from the broker")?;
                if n == 0 {
                    bail!("the broker closed a publisher's connection");
                }
                conn.end += n;
            }
            r = conn.wr.write(&conn.out[conn.pos..]), if conn.pos < conn.out.len() => {
                let n = r.context("writing to the broker")?;
                if n == 0 {
                    bail!("the broker stopped reading");
                }
                conn.pos += n;
                if conn.pos == conn.out.len() {
                    conn.out.clear();
                    conn.pos = 0;
                }
            }
            () = progress, if blocked == Blocked::Window => {}
            () = tokio::time::sleep_until(wake_at.into()), if blocked != Blocked::No || conn.pos == conn.out.len() => {}
        }
    }
}

async fn subscriber(
    mut conn: Conn,
    stats: Rc<RefCell<SubStats>>,
    shared: Rc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let v = conn.version;
    loop {
        let now = Instant::now();
        let now_ns = since(shared.base, now);
        let mut got = false;
        {
            let mut st = stats.borrow_mut();
            let st = &mut *st;
            while let Some((first, body)) = conn.next_frame()? {
                let next = body.end;
                let p = decode_body(first, &conn.inbuf[body], v)
                    .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?;
                match p {
                    Packet::Publish(p) => {
                        got = true;
                        record(st, &shared, p.payload, now_ns);
                        match (p.qos, p.packet_id) {
                            (QoS::AtLeastOnce, Some(id)) => {
                                net::push(&mut conn.out, v, &Packet::Puback(Ack::new(id)))?;
                            }
                            (QoS::ExactlyOnce, Some(id)) => {
                                net::push(&mut conn.out, v, &Packet::Pubrec(Ack::new(id)))?;
                            }
                            _ => {}
                        }
                    }
                    Packet::Pubrel(a) => {
                        net::push(&mut conn.out, v, &Packet::Pubcomp(Ack::new(a.packet_id)))?;
                    }
                    Packet::Disconnect(d) => {
                        bail!(
                            "the broker disconnected a subscriber: {}",
                            d.reason.description()
                        )
                    }
                    _ => {}
                }
                conn.start = next;
            }
        }
        conn.compact();
        if got {
            shared.last_rx.set(Some(now));
            shared.progress.notify_waiters();
        }
        if conn.end == conn.inbuf.len() {
            bail!("a packet from the broker is larger than the read buffer");
        }
        tokio::select! {
            biased;
            r = conn.rd.read(&mut conn.inbuf[conn.end..]) => {
                let n = r.context("reading from the broker")?;
                if n == 0 {
                    bail!("the broker closed a subscriber's connection");
                }
                conn.end += n;
            }
            r = conn.wr.write(&conn.out[conn.pos..]), if conn.pos < conn.out.len() => {
                let n = r.context("writing to the broker")?;
                if n == 0 {
                    bail!("the broker stopped reading");
                }
                conn.pos += n;
                if conn.pos == conn.out.len() {
                    conn.out.clear();
                    conn.pos = 0;
                }
            }
            _ = stop.changed() => break,
        }
    }
    conn.close().await;
    Ok(())
}

/// Accounts one received payload.
fn record(st: &mut SubStats, shared: &Shared, payload: &[u8], now_ns: u64) {
    let Some(s) = stamp::read(payload) else {
        st.foreign += 1;
        return;
    };
    let Some(k) = usize::try_from(s.publisher)
        .ok()
        .and_then(|p| p.checked_sub(st.lo))
        .filter(|&k| k < st.trackers.len())
    else {
        st.foreign += 1;
        return;
    };
    let t = &mut st.trackers[k];
    let before = t.received;
    t.record(s.seq);
    if t.received > before {
        st.latency.record_ns(now_ns.saturating_sub(s.sent_ns));
    }
    shared.marks[st.lo + k][st.slot].set(t.next());
}

/// Versions as `tern bench` names them.
pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V5 => "5",
        _ => "3.1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_wrap_and_skip_none_in_use() {
        let mut p = IdPool::new();
        let first = p.take().unwrap();
        assert_eq!(first.get(), 1);
        for _ in 1..65535 {
            p.take().unwrap();
        }
        // All 65535 are in use: the pool wraps to 1, which is taken.
        assert_eq!(p.take(), None);
        assert!(p.free(first));
        assert!(!p.free(first));
        assert_eq!(p.take(), Some(first));
    }

    #[test]
    fn topology_of_each_shape() {
        assert_eq!(Shape::Pairs.hears(3, 4), (3..4, 0));
        assert_eq!(Shape::FanIn.hears(0, 50), (0..50, 0));
        assert_eq!(Shape::FanOut.hears(7, 1), (0..1, 7));
        assert_eq!(
            (Shape::FanIn.publishers(50), Shape::FanIn.subscribers(50)),
            (50, 1)
        );
        assert_eq!(
            (Shape::FanOut.publishers(50), Shape::FanOut.subscribers(50)),
            (1, 50)
        );
        assert_eq!(Shape::FanIn.filter("x", 0), "x/in/+");
        assert_eq!(Shape::FanIn.topic("x", 2), "x/in/2");
    }

    #[test]
    fn record_counts_latency_once_and_foreign_payloads() {
        let shared = Shared {
            base: Instant::now(),
            marks: vec![vec![Cell::new(0)], vec![Cell::new(0)]],
            sent: vec![Cell::new(0), Cell::new(0)],
            progress: Notify::new(),
            last_rx: Cell::new(None),
        };
        let mut st = SubStats {
            lo: 1,
            slot: 0,
            trackers: vec![Tracker::default()],
            latency: Latency::new(),
            foreign: 0,
        };
        let mut p = stamp::new_payload(32);
        for seq in [0, 1, 1, 3] {
            stamp::write(
                &mut p,
                Stamp {
                    sent_ns: 1_000,
                    seq,
                    publisher: 1,
                },
            );
            record(&mut st, &shared, &p, 11_000);
        }
        record(&mut st, &shared, b"short", 0);
        stamp::write(
            &mut p,
            Stamp {
                sent_ns: 0,
                seq: 0,
                publisher: 0,
            },
        );
        record(&mut st, &shared, &p, 0);
        assert_eq!(st.foreign, 2);
        assert_eq!(st.trackers[0].duplicates, 1);
        assert_eq!(st.trackers[0].lost(4), 1);
        assert_eq!(st.latency.count(), 3);
        assert_eq!(shared.marks[1][0].get(), 4);
        assert_eq!(shared.marks[0][0].get(), 0);
    }
}
