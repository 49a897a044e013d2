//! The `conn` scenario: open many idle MQTT connections and hold them (connections per second
//! while opening, broker memory per connection), or, with `--tls-handshakes`, open and drop
//! connections for a while (full handshakes per second, session resumption off).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::net::{self, Conn, Target};

/// Buffer sizes of an idle connection: it reads nothing but CONNACK.
const IDLE_BUF: usize = 256;

/// What to run.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    /// Connections to open (idle mode).
    pub count: usize,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// How long to hold the open connections (idle mode).
    pub hold: Duration,
    /// Open and drop connections for `duration` instead.
    pub handshakes: bool,
    pub duration: Duration,
}

/// What it measured.
#[derive(Debug, Default)]
pub struct ConnResult {
    pub requested: usize,
    pub connected: usize,
    pub failed: usize,
    /// Time to open them all (idle) or the churn time (handshakes).
    pub open_s: f64,
    pub first_error: Option<String>,
}

/// Idle mode. `after_open` runs once the connections are open and have settled, while they
/// are held (broker memory is read there); `on_end` before they are dropped.
pub async fn run_idle(
    spec: &ConnSpec,
    target: &Target,
    id_prefix: &str,
    after_open: impl FnOnce(),
    on_end: impl FnOnce(),
) -> ConnResult {
    if target.tls.is_none() {
        return run_idle_plain(spec, target, id_prefix, after_open, on_end).await;
    }
    let sem = Rc::new(Semaphore::new(spec.concurrency.max(1)));
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(spec.count);
    for i in 0..spec.count {
        let (sem, target) = (sem.clone(), target.clone());
        let id = format!("{id_prefix}-c{i}");
        handles.push(tokio::task::spawn_local(async move {
            let _permit = sem.acquire().await?;
            net::connect(&target, &id, IDLE_BUF, IDLE_BUF).await
        }));
    }
    let mut r = ConnResult {
        requested: spec.count,
        ..ConnResult::default()
    };
    let mut held: Vec<Conn> = Vec::with_capacity(spec.count);
    for h in handles {
        match h.await {
            Ok(Ok(c)) => held.push(c),
            Ok(Err(e)) => fail(&mut r, format!("{e:#}")),
            Err(e) => fail(&mut r, format!("connect task: {e}")),
        }
    }
    hold(spec, t0, held, r, after_open, on_end).await
}

/// After opening: records the time and count, lets the broker settle, then holds the
/// connections for `spec.hold` between `after_open` and `on_end`.
async fn hold<C>(
    spec: &ConnSpec,
    t0: Instant,
    held: Vec<C>,
    mut r: ConnResult,
    after_open: impl FnOnce(),
    on_end: impl FnOnce(),
) -> ConnResult {
    r.open_s = t0.elapsed().as_secs_f64();
    r.connected = held.len();
    // Let the broker finish its per-connection work before reading its memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    after_open();
    tokio::time::sleep(spec.hold).await;
    on_end();
    drop(held);
    r
}

/// Idle mode over plain TCP, with a generator cheap enough that the broker, not the
/// generator, limits the rate: one thread, blocking sockets, no event loop. It connects and
/// writes CONNECT for connection `i` and then reads the CONNACK of connection
/// `i - concurrency`, so `concurrency` connections are being opened at once and a read only
/// waits when the broker is behind. Five system calls per connection (socket, connect,
/// setsockopt for the read time limit, write, read); the tokio path costs about three times
/// the CPU per connection (task, registration, readiness wake-ups).
async fn run_idle_plain(
    spec: &ConnSpec,
    target: &Target,
    id_prefix: &str,
    after_open: impl FnOnce(),
    on_end: impl FnOnce(),
) -> ConnResult {
    let (addr, version, keep_alive) = (target.addr, target.version, target.keep_alive);
    let (count, window) = (spec.count, spec.concurrency.max(1));
    let prefix = id_prefix.to_owned();
    let t0 = Instant::now();
    let opened = tokio::task::spawn_blocking(move || {
        open_plain(addr, version, keep_alive, &prefix, count, window)
    })
    .await;
    let (held, mut r) = match opened {
        Ok(done) => done,
        Err(e) => {
            let mut r = ConnResult::default();
            fail(&mut r, format!("connect thread: {e}"));
            (Vec::new(), r)
        }
    };
    r.requested = spec.count;
    hold(spec, t0, held, r, after_open, on_end).await
}

/// The blocking half of [`run_idle_plain`]: the open connections and the failures.
fn open_plain(
    addr: std::net::SocketAddr,
    version: tern_codec::ProtocolVersion,
    keep_alive: u16,
    prefix: &str,
    count: usize,
    window: usize,
) -> (Vec<std::net::TcpStream>, ConnResult) {
    use std::io::Write as _;
    let mut r = ConnResult::default();
    let mut held = Vec::with_capacity(count);
    let mut pending = std::collections::VecDeque::with_capacity(window);
    let mut packet = Vec::with_capacity(64);
    let mut id = String::with_capacity(prefix.len() + 24);
    for i in 0..count {
        id.clear();
        id.push_str(prefix);
        id.push_str("-c");
        id.push_str(&i.to_string());
        let mut c = tern_codec::Connect::new(version, &id);
        c.keep_alive = keep_alive;
        if version.is_v5() {
            c.properties.maximum_packet_size = Some(IDLE_BUF as u32);
        }
        packet.clear();
        let opened =
            net::push(&mut packet, version, &tern_codec::Packet::Connect(c)).and_then(|()| {
                let mut s = std::net::TcpStream::connect(addr)
                    .map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
                s.set_read_timeout(Some(net::CONNECT_TIMEOUT))?;
                s.write_all(&packet)?;
                Ok(s)
            });
        match opened {
            Ok(s) => pending.push_back(s),
            Err(e) => fail(&mut r, format!("{e:#}")),
        }
        if pending.len() >= window
            && let Some(s) = pending.pop_front()
        {
            finish_plain(s, version, &mut held, &mut r);
        }
    }
    while let Some(s) = pending.pop_front() {
        finish_plain(s, version, &mut held, &mut r);
    }
    (held, r)
}

/// Reads one connection's CONNACK: kept when the broker accepted it.
fn finish_plain(
    mut s: std::net::TcpStream,
    version: tern_codec::ProtocolVersion,
    held: &mut Vec<std::net::TcpStream>,
    r: &mut ConnResult,
) {
    match read_connack(&mut s, version) {
        Ok(()) => held.push(s),
        Err(e) => fail(r, format!("{e:#}")),
    }
}

fn read_connack(
    s: &mut std::net::TcpStream,
    version: tern_codec::ProtocolVersion,
) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut buf = [0u8; IDLE_BUF];
    let mut end = 0;
    loop {
        let n = s.read(&mut buf[end..]).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                anyhow::anyhow!("no CONNACK within {} s", net::CONNECT_TIMEOUT.as_secs())
            }
            _ => anyhow::anyhow!("reading CONNACK: {e}"),
        })?;
        if n == 0 {
            anyhow::bail!("the broker closed the connection before CONNACK");
        }
        end += n;
        let Some(f) = tern_codec::frame(&buf[..end], IDLE_BUF as u32)
            .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?
        else {
            continue;
        };
        if end < f.total_len() {
            if end == buf.len() {
                anyhow::bail!("a packet from the broker is larger than the read buffer");
            }
            continue;
        }
        let body = &buf[f.header_len..f.total_len()];
        return match tern_codec::decode_body(f.first_byte, body, version)
            .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?
        {
            tern_codec::Packet::Connack(ack) if ack.reason.is_success() => Ok(()),
            tern_codec::Packet::Connack(ack) => anyhow::bail!(
                "the broker refused the connection: {}",
                ack.reason.description()
            ),
            other => anyhow::bail!("expected CONNACK, got {}", other.packet_type().name()),
        };
    }
}

/// Handshake mode: `concurrency` workers connect (TCP, TLS, CONNECT/CONNACK) and drop the
/// connection with a reset, over and over, until `duration` is up.
pub async fn run_handshakes(spec: &ConnSpec, target: &Target, id_prefix: &str) -> ConnResult {
    let mut target = target.clone();
    target.abortive_close = true;
    let ok = Rc::new(Cell::new(0usize));
    let failed = Rc::new(Cell::new(0usize));
    let first_error: Rc<Cell<Option<String>>> = Rc::new(Cell::new(None));
    let t0 = Instant::now();
    let end = t0 + spec.duration;
    let mut workers = Vec::new();
    for w in 0..spec.concurrency.max(1) {
        let (ok, failed, first_error, target) = (
            ok.clone(),
            failed.clone(),
            first_error.clone(),
            target.clone(),
        );
        let prefix = format!("{id_prefix}-h{w}");
        workers.push(tokio::task::spawn_local(async move {
            let mut k = 0u64;
            let mut id = String::with_capacity(prefix.len() + 24);
            while Instant::now() < end {
                id.clear();
                id.push_str(&prefix);
                id.push('-');
                id.push_str(&k.to_string());
                k += 1;
                match net::connect(&target, &id, IDLE_BUF, IDLE_BUF).await {
                    Ok(conn) => {
                        ok.set(ok.get() + 1);
                        drop(conn);
                    }
                    Err(e) => {
                        failed.set(failed.get() + 1);
                        let prev = first_error.take();
                        first_error.set(prev.or(Some(format!("{e:#}"))));
                        // A refusing broker is not hammered in a tight loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    ConnResult {
        requested: ok.get() + failed.get(),
        connected: ok.get(),
        failed: failed.get(),
        open_s: t0.elapsed().as_secs_f64(),
        first_error: first_error.take(),
    }
}

fn fail(r: &mut ConnResult, e: String) {
    r.failed += 1;
    if r.first_error.is_none() {
        r.first_error = Some(e);
    }
}
