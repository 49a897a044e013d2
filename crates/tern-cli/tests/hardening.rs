//! Hardening of the real `tern broker` (issue "Access control and hardening"): connection
//! caps, the CONNECT timeout, the TLS handshake budget under a storm, per-client caps,
//! packet size checked before buffering, `memory_limit`, a soak with slow subscribers, a
//! corpus of malformed packets in each connection state, and edge-case client ids, user
//! names and topics.
//!
//! Every client is on loopback; every loop is bounded in count and time; every process is
//! killed when dropped. Where tern and the specification disagree the test keeps the
//! expected behaviour and the difference is listed in tests/FINDINGS-security.md.
//! Normative ids are MQTT 5.0's unless a comment says 3.1.1; numbers without brackets are
//! section numbers of the 5.0 specification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod clients;
mod common;
mod wire;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use wire::*;

const S: Duration = Duration::from_secs(5);

fn anon(extra: &str) -> Broker {
    Broker::with_config(&format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\n{extra}"
    ))
}

/// No panic in the log and the process still runs.
fn assert_healthy(b: &mut Broker) {
    assert!(b.alive(), "the broker exited:\n{}", b.log());
    let log = b.log();
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");
}

/// The latest value of a `$SYS` topic (retained), read by a fresh client.
fn sys_value(port: u16, topic: &str) -> Option<String> {
    let mut c = Client::connected(port, &Connect::v311("sys-reader"));
    c.sub(topic, 0);
    c.next_msg(Duration::from_secs(3))
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
}

/// Waits (bounded) until `$SYS/broker/publish/messages/dropped` is at least `min`; returns
/// the last value seen.
fn dropped_at_least(port: u16, min: u64) -> u64 {
    let end = Instant::now() + Duration::from_secs(6);
    let mut last = 0;
    while Instant::now() < end {
        if let Some(v) = sys_value(port, "$SYS/broker/publish/messages/dropped") {
            last = v.parse().unwrap_or(0);
            if last >= min {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    last
}

/// Two clients that check the broker still routes messages.
struct Sentinel {
    sub: Client,
    pubr: Client,
    n: u32,
}

impl Sentinel {
    fn new(port: u16) -> Sentinel {
        let mut sub = Client::connected(port, &Connect::v311("sentinel-sub"));
        assert_eq!(sub.sub("sentinel/t", 0), [0]);
        let pubr = Client::connected(port, &Connect::v311("sentinel-pub"));
        Sentinel { sub, pubr, n: 0 }
    }

    /// A message published now arrives within 3 s.
    fn ok(&mut self) -> bool {
        self.n += 1;
        let payload = self.n.to_string();
        self.pubr.pub0("sentinel/t", payload.as_bytes());
        matches!(self.sub.next_msg(Duration::from_secs(3)), Some(m) if m.payload == payload.as_bytes())
    }
}

// ----- connection caps ---------------------------------------------------------------------

/// A client over a connection cap: its TCP connection waits in the kernel's backlog (tern
/// takes the cap before accept), so it gets no CONNACK until a slot frees, then it does.
fn waits_then_connects(port: u16, id: &str, free: impl FnOnce()) {
    let mut c = Client::tcp(port, false);
    c.send(&Connect::v311(id).bytes());
    assert_eq!(
        c.recv_within(Duration::from_millis(1500)),
        Got::Timeout,
        "{id}: over the cap, no CONNACK expected yet"
    );
    free();
    assert_eq!(
        c.recv_within(S),
        Got::Packet(vec![0x20, 2, 0, 0]),
        "{id}: CONNACK once a slot is free"
    );
}

/// Over the global cap a connection is accepted and closed at once, as Mosquitto does (so
/// the client can retry with its backoff instead of hanging); once a slot is free a new
/// connection is served.
fn refused_then_connects(port: u16, id: &str, free: impl FnOnce()) {
    let mut c = Client::tcp(port, false);
    c.send(&Connect::v311(id).bytes());
    let got = c.recv_within(Duration::from_millis(1500));
    assert!(
        matches!(got, Got::Reset | Got::Closed),
        "{id}: over the cap, closed at once: {got:?}"
    );
    free();
    let deadline = Instant::now() + S;
    loop {
        let (_c, got) = Client::open(port, &Connect::v311(id));
        if got == Got::Packet(vec![0x20, 2, 0, 0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: no CONNACK after a slot was freed: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `global_max_connections 2` (one listener): a third client is refused at once while the
/// two are connected, and served after one of them leaves; the connected ones keep working.
#[test]
fn global_max_connections_third_client_refused_until_a_slot_is_free() {
    let b = anon("global_max_connections 2\n");
    let mut c1 = Client::connected(b.port, &Connect::v311("g1"));
    let mut c2 = Client::connected(b.port, &Connect::v311("g2"));
    refused_then_connects(b.port, "g3", || {
        c1.send(&[0xE0, 0]);
    });
    assert!(c2.ping(S));
}

/// `global_max_connections 3` across two listeners: three clients on the first listener
/// are served (the cap counts connections, wherever they are), a fourth on the second
/// listener is refused until one of them leaves, and the connected ones keep working.
#[test]
fn global_max_connections_counts_connections_on_all_listeners() {
    let [p1, p2] = free_ports();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\nglobal_max_connections 3\nlistener {p1} 127.0.0.1\nlistener {p2} 127.0.0.1\n"
    ));
    let mut c1 = Client::connected(p1, &Connect::v311("g1"));
    let mut c2 = Client::connected(p1, &Connect::v311("g2"));
    let (mut c3, got) = Client::open(p1, &Connect::v311("g3"));
    assert_eq!(
        got,
        Got::Packet(vec![0x20, 2, 0, 0]),
        "3rd connection with global_max_connections 3 (2 open, both on listener 1)"
    );
    refused_then_connects(p2, "g4", || {
        c1.send(&[0xE0, 0]);
    });
    assert!(c2.ping(S) && c3.ping(S));
    drop(b);
}

/// `max_connections 2` on one listener: a third client there waits until one leaves; the
/// other listener (no cap) keeps accepting.
#[test]
fn listener_max_connections_leaves_other_listeners_alone() {
    let [p1, p2] = free_ports();
    let _b = Broker::with_config(&format!(
        "allow_anonymous true\nlistener {p1} 127.0.0.1\nmax_connections 2\nlistener {p2} 127.0.0.1\n"
    ));
    let mut a = Client::connected(p1, &Connect::v311("l1"));
    let mut b2 = Client::connected(p1, &Connect::v311("l2"));
    let others: Vec<Client> = (0..5)
        .map(|i| Client::connected(p2, &Connect::v311(&format!("o{i}"))))
        .collect();
    waits_then_connects(p1, "l3", || {
        a.send(&[0xE0, 0]);
    });
    assert!(b2.ping(S));
    assert_eq!(others.len(), 5);
}

/// `connect_timeout 2`: a connection that sends a partial CONNECT and then nothing, or
/// trickles it one byte every 300 ms, is closed about 2 s after it was accepted (the
/// deadline does not move with each byte); one that half-closes is dropped at once; a
/// client that completed CONNECT is not affected.
#[test]
fn connect_timeout_closes_partial_and_trickled_connects() {
    let b = anon("connect_timeout 2\n");
    let full = Connect::v311("trickle-client-with-a-long-id").bytes();
    let start = Instant::now();
    let mut partial = Client::tcp(b.port, false);
    partial.send(&full[..5]);
    let mut eof = Client::tcp(b.port, false);
    eof.send(&full[..5]);
    eof.shutdown_write();
    let mut ok = Client::connected(b.port, &Connect::v311("patient"));
    assert!(eof.wait_close(Duration::from_secs(1)).is_some(), "EOF");
    let mut trickle = Client::tcp(b.port, false);
    let t0 = Instant::now();
    let mut closed_at = None;
    for (i, byte) in full.iter().enumerate().take(full.len() - 1) {
        trickle.send(&[*byte]);
        if let Got::Closed | Got::Reset = trickle.recv_within(Duration::from_millis(300)) {
            closed_at = Some((i, t0.elapsed()));
            break;
        }
    }
    let (i, at) = closed_at.expect("the trickling connection must be closed");
    assert!(
        at >= Duration::from_millis(1500) && at < Duration::from_secs(4),
        "trickle closed after {at:?} ({i} bytes sent of {})",
        full.len()
    );
    assert!(partial.wait_close(S).is_some(), "partial CONNECT");
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(ok.ping(S), "a connected client is unaffected");
    assert!(b.log().contains("no CONNECT within the connect timeout"));
}

/// `max_connections_per_address 3`: three TCP connections from 127.0.0.1 are served, the
/// fourth is closed at once without a CONNACK (and logged); ::1 is another address and is
/// served; when one of the three leaves, 127.0.0.1 may connect again.
#[test]
fn max_connections_per_address() {
    let [p4, p6] = free_ports();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\nmax_connections_per_address 3\nlistener {p4} 127.0.0.1\nlistener {p6} ::1\n"
    ));
    let mut conns: Vec<Client> = (0..3)
        .map(|i| Client::connected(p4, &Connect::v311(&format!("pa{i}"))))
        .collect();
    let (mut fourth, got) = Client::open(p4, &Connect::v311("pa3"));
    assert!(got.is_close(), "4th from 127.0.0.1: {got:?}");
    drop(fourth.wait_close(Duration::from_secs(1)));
    assert!(
        b.wait_log("too many connections from this address", S),
        "{}",
        b.log()
    );
    let s6 = TcpStream::connect(("::1", p6)).expect("IPv6 loopback");
    let mut v6 = Client { s: s6, v5: false };
    v6.send(&Connect::v311("v6").bytes());
    assert_eq!(v6.recv(), [0x20, 2, 0, 0], "::1 is another address");
    conns.remove(0).send(&[0xE0, 0]);
    let end = Instant::now() + S;
    let mut again = None;
    while Instant::now() < end {
        let (c, got) = Client::open(p4, &Connect::v311("pa-again"));
        if got == Got::Packet(vec![0x20, 2, 0, 0]) {
            again = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(again.is_some(), "a freed slot is given back");
    for c in &mut conns {
        assert!(c.ping(S));
    }
}

// ----- TLS handshake storm -----------------------------------------------------------------

fn tls_config(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One TLS client: handshake, CONNECT, CONNACK, close. Ok(when the handshake finished).
fn tls_attempt(cfg: Arc<rustls::ClientConfig>, port: u16, id: &str) -> Result<Instant, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(8))).unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let done = Instant::now();
    s.write_all(&Connect::v311(id).bytes())
        .map_err(|e| e.to_string())?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).map_err(|e| e.to_string())?;
    if ack != [0x20, 2, 0, 0] {
        return Err(format!("CONNACK {ack:?}"));
    }
    Ok(done)
}

/// `tls_handshake_rate 20`: 200 TLS connections attempted at once. Established clients (a
/// raw one on the plain port and Debian's mosquitto_sub over TLS) keep receiving a QoS 1
/// message every 50 ms throughout (none lost, no gap over 1 s); handshakes complete at no
/// more than the configured rate (plus the one-second burst), and those that would wait
/// longer than half the connect timeout are refused at once rather than queued.
#[test]
fn tls_handshake_storm_does_not_starve_established_connections() {
    const RATE: usize = 20;
    const STORM: usize = 200;
    const MSGS: usize = 120;
    let pki = tempfile::tempdir().unwrap();
    for sub in ["ca", "server"] {
        let (code, out, err) = run(
            std::process::Command::new(TERN)
                .args(["pki", sub, "--dir"])
                .arg(pki.path()),
            Duration::from_secs(60),
        );
        assert_eq!(code, Some(0), "tern pki {sub}: {out}{err}");
    }
    let ca = pki.path().join("ca.crt");
    let [plain, tls] = free_ports();
    let mut b = Broker::with_config(&format!(
        "allow_anonymous true\ntls_handshake_rate {RATE}\nconnect_timeout 4\nmax_connections_per_address 1000\n\
         listener {plain} 127.0.0.1\nlistener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        pki.path().join("server.crt").display(),
        pki.path().join("server.key").display()
    ));
    // Established before the storm.
    let mut raw = Client::connected(plain, &Connect::v311("steady"));
    assert_eq!(raw.sub("live/t", 1), [1]);
    let mut tls_sub = clients::Sub::start(
        tls,
        &[
            "--cafile",
            ca.to_str().unwrap(),
            "-i",
            "steady-tls",
            "-q",
            "1",
            "-t",
            "live/t",
            "-F",
            "MSG|%U|%p",
        ],
    );
    let raw_times = Arc::new(Mutex::new(Vec::<(Instant, Vec<u8>)>::new()));
    let reader = {
        let times = raw_times.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(20);
            while times.lock().unwrap().len() < MSGS && Instant::now() < end {
                match raw.next_msg(Duration::from_secs(3)) {
                    Some(m) => times.lock().unwrap().push((Instant::now(), m.payload)),
                    None => break,
                }
            }
            raw
        })
    };
    let publisher = std::thread::spawn(move || {
        let mut p = Client::connected(plain, &Connect::v311("ticker"));
        for i in 0..MSGS {
            let t = Instant::now();
            p.pub1(
                "live/t",
                i.to_string().as_bytes(),
                false,
                (i % 60_000 + 1) as u16,
            );
            std::thread::sleep(Duration::from_millis(50).saturating_sub(t.elapsed()));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let cfg = tls_config(&ca);
    let storm_start = Instant::now();
    let attempts: Vec<_> = (0..STORM)
        .map(|i| {
            let cfg = cfg.clone();
            std::thread::spawn(move || tls_attempt(cfg, tls, &format!("storm-{i}")))
        })
        .collect();
    let results: Vec<Result<Instant, String>> =
        attempts.into_iter().map(|h| h.join().unwrap()).collect();
    publisher.join().unwrap();
    let _raw = reader.join().unwrap();

    let ok: Vec<Duration> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|t| t.duration_since(storm_start)))
        .collect();
    let failed = results.iter().filter(|r| r.is_err()).count();
    eprintln!(
        "storm: {} handshakes done, {failed} refused or failed, done at {ok:?}",
        ok.len()
    );
    assert!(
        ok.len() >= RATE,
        "at least a burst of handshakes completes: {}",
        ok.len()
    );
    assert!(
        failed > 0,
        "200 at once with rate {RATE}: some must be refused"
    );
    for step in 1..=16 {
        let t = Duration::from_millis(500 * step);
        let done = ok.iter().filter(|d| **d <= t).count();
        let allowed = (RATE as f64 * (t.as_secs_f64() + 1.0)) as usize + 5;
        assert!(
            done <= allowed,
            "{done} handshakes done within {t:?}, rate {RATE}/s allows {allowed}"
        );
    }
    assert!(b.log().contains("refused: more TLS handshakes are waiting"));

    // Delivery continued during the storm.
    let times = raw_times.lock().unwrap();
    let payloads: Vec<String> = times
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect();
    let want: Vec<String> = (0..MSGS).map(|i| i.to_string()).collect();
    assert_eq!(payloads, want, "raw subscriber: every message, in order");
    let gap = times
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .max()
        .unwrap();
    assert!(
        gap < Duration::from_secs(1),
        "raw subscriber: longest gap {gap:?}"
    );
    let lines = tls_sub.wait_messages(MSGS, Duration::from_secs(10));
    let stamps: Vec<f64> = lines
        .iter()
        .map(|l| l.split('|').next().unwrap().parse::<f64>().unwrap())
        .collect();
    let tls_payloads: Vec<String> = lines
        .iter()
        .map(|l| l.split('|').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(
        tls_payloads, want,
        "TLS subscriber: every message, in order"
    );
    let tls_gap = stamps.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(tls_gap < 1.0, "TLS subscriber: longest gap {tls_gap} s");
    assert_healthy(&mut b);
}

// ----- per-client caps ---------------------------------------------------------------------

/// A connected subscriber that never acknowledges: at most `max_inflight_messages` (3) QoS 1
/// messages are in flight to it, at most `max_queued_messages` (5) more wait; the rest are
/// dropped and counted in `$SYS/broker/publish/messages/dropped`.
#[test]
fn inflight_and_queued_message_caps_for_a_slow_connected_client() {
    let b = anon("max_inflight_messages 3\nmax_queued_messages 5\nsys_interval 1\n");
    let mut slow = Client::connected(b.port, &Connect::v5("slow"));
    assert_eq!(slow.sub("cap/t", 1), [1]);
    let mut p = Client::connected(b.port, &Connect::v311("cap-pub"));
    for i in 0..20u16 {
        p.pub1("cap/t", i.to_string().as_bytes(), false, i + 1);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut got = Vec::new();
    let mut pids = Vec::new();
    for _ in 0..3 {
        match slow.recv_within(S) {
            Got::Packet(pk) if pk[0] >> 4 == 3 => {
                let m = parse_publish(true, &pk);
                pids.push(m.pid);
                got.push(String::from_utf8_lossy(&m.payload).into_owned());
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    assert_eq!(
        slow.recv_within(Duration::from_millis(700)),
        Got::Timeout,
        "window of 3 full"
    );
    for pid in pids {
        slow.send(&ack(0x40, pid));
    }
    for m in slow.expect_msgs(5, Duration::from_millis(800)) {
        got.push(String::from_utf8_lossy(&m.payload).into_owned());
    }
    assert!(
        (5..=8).contains(&got.len()),
        "3 in flight + at most 5 queued, got {got:?}"
    );
    let want: Vec<String> = (0..got.len()).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "the oldest are kept, in order");
    let dropped = dropped_at_least(b.port, (20 - got.len()) as u64);
    assert_eq!(dropped, (20 - got.len()) as u64, "dropped counter");
}

/// `max_queued_bytes 2000` for an offline session: a queued message costs its payload +
/// topic + 64 bytes (tern-broker-core message.rs), so three 436-byte messages on `qb/t`
/// (504 each, 1,512) fit and a fourth (2,016) does not; the session gets exactly three.
#[test]
fn max_queued_bytes_caps_an_offline_session() {
    let b = anon("max_queued_bytes 2000\nmax_queued_messages 1000\n");
    let mut s = Client::connected(b.port, &Connect::v311("qb").persistent());
    assert_eq!(s.sub("qb/t", 1), [1]);
    s.send(&[0xE0, 0]);
    assert!(s.wait_close(S).is_some());
    let mut p = Client::connected(b.port, &Connect::v311("qb-pub"));
    for i in 0..10u16 {
        let mut payload = vec![b'x'; 436];
        payload[0] = b'0' + i as u8;
        p.pub1("qb/t", &payload, false, i + 1);
    }
    let mut s = Client::connected(b.port, &Connect::v311("qb").persistent());
    let got = s.expect_msgs(3, Duration::from_millis(800));
    let firsts: Vec<u8> = got.iter().map(|m| m.payload[0]).collect();
    assert_eq!(firsts, b"012", "exactly the first three fit in 2000 bytes");
}

// ----- packet size, memory ------------------------------------------------------------------

/// A declared remaining length of 268,435,455 bytes (the protocol maximum) is refused as
/// soon as the fixed header arrives, without the body being sent: 5.0 gets DISCONNECT 0x95
/// (3.2.2.3.6: over the Maximum Packet Size the server announced, [MQTT-3.2.2-15]), 3.1.1
/// and a not-yet-connected client are closed. 100 such connections do not grow the broker's memory.
#[test]
fn huge_declared_remaining_length_refused_before_buffering() {
    let mut b = anon("max_connections_per_address 1000\n");
    let pid = b.child.id();
    let before = rss_kib(pid);
    let header = |first: u8| vec![first, 0xFF, 0xFF, 0xFF, 0x7F];
    let mut c5 = Client::connected(b.port, &Connect::v5("huge5"));
    let t = Instant::now();
    c5.send(&header(0x30));
    let got = c5.recv_within(Duration::from_secs(2));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    match got {
        Got::Packet(p) => assert_eq!(disconnect_reason(&p), Some(0x95), "{p:?}"),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    let mut c4 = Client::connected(b.port, &Connect::v311("huge4"));
    let t = Instant::now();
    c4.send(&header(0x30));
    assert!(
        c4.wait_close(Duration::from_secs(1))
            .is_some_and(|p| p.is_empty())
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    let mut many = Vec::new();
    for i in 0..100 {
        let mut c = Client::tcp(b.port, i % 2 == 0);
        c.send(&header(0x10)); // a CONNECT "of 256 MiB"
        many.push(c);
    }
    for c in &mut many {
        assert!(
            c.wait_close(Duration::from_secs(1)).is_some(),
            "closed at once, not after the connect timeout"
        );
    }
    let after = rss_kib(pid);
    assert!(
        after < before + 20 * 1024,
        "RSS {before} KiB -> {after} KiB after 102 declared 256 MiB packets"
    );
    assert_healthy(&mut b);
}

/// `memory_limit 1M`: while an offline session holds about 1 MiB of queued messages, new
/// publishes are refused: 5.0 PUBACK 0x97 (quota exceeded), 3.1.1 acknowledged and dropped,
/// both counted as dropped; the process does not grow with what is offered (24 MB more);
/// once the session drains its queue, publishes are accepted again.
#[test]
fn memory_limit_refuses_new_publishes_with_0x97() {
    const PAYLOAD: usize = 8 * 1024;
    let mut b = anon("memory_limit 1M\nsys_interval 1\n");
    let pid = b.child.id();
    let mut s = Client::connected(b.port, &Connect::v5("ml-sub").persistent());
    assert_eq!(s.sub("ml/t", 1), [1]);
    s.send(&[0xE0, 0]);
    assert!(s.wait_close(S).is_some());
    let mut p = Client::connected(b.port, &Connect::v5("ml-pub"));
    let payload = vec![b'm'; PAYLOAD];
    let mut codes = Vec::new();
    // Pipelined in batches of 50 PUBLISH, then their 50 PUBACKs.
    let mut rss_after_limit = None;
    for batch in 0..60u16 {
        for i in 0..50u16 {
            let pid = batch * 50 + i + 1;
            p.send(&publish(true, b"ml/t", 1, false, pid, &[], &payload));
        }
        for _ in 0..50 {
            let a = p.recv();
            assert_eq!(a[0], 0x40, "{a:?}");
            codes.push(if a.len() > 4 { a[4] } else { 0 });
        }
        if rss_after_limit.is_none() && codes.contains(&0x97) {
            rss_after_limit = Some(rss_kib(pid));
        }
    }
    let first = codes
        .iter()
        .position(|&c| c == 0x97)
        .expect("0x97 at some point");
    // 1 MiB / (8192 + 4 + 64) bytes per queued message = 126.9: the 128th is refused.
    assert!(
        (100..=160).contains(&first),
        "first refusal at publish #{first}"
    );
    assert!(
        codes[..first].iter().all(|&c| c == 0),
        "{:?}",
        &codes[..first]
    );
    assert!(codes[first..].iter().all(|&c| c == 0x97));
    let grown = rss_kib(pid).saturating_sub(rss_after_limit.unwrap());
    assert!(
        grown < 8 * 1024,
        "RSS grew {grown} KiB while {} refused publishes of 8 KiB were offered",
        codes.len() - first
    );
    // 3.1.1: acknowledged, dropped.
    let mut p4 = Client::connected(b.port, &Connect::v311("ml-pub4"));
    assert_eq!(p4.pub1("ml/t", b"v311", false, 1), 0);
    let dropped = dropped_at_least(b.port, (codes.len() - first + 1) as u64);
    assert!(
        dropped > (codes.len() - first) as u64,
        "dropped = {dropped}"
    );
    // The session drains: exactly the accepted messages, then the limit is lifted.
    let mut s = Client::connected(b.port, &Connect::v5("ml-sub").persistent());
    let got = s.expect_msgs(first, Duration::from_millis(800));
    assert_eq!(got.len(), first, "queued messages delivered");
    assert!(got.iter().all(|m| m.payload.len() == PAYLOAD));
    drop(s);
    assert_eq!(p.pub1("ml/t", b"again", false, 1), 0, "accepted again");
    assert_healthy(&mut b);
}

// ----- soak ---------------------------------------------------------------------------------

/// 200 subscribers that never read their sockets (4 KiB receive buffers, like clients on a
/// slow link, so that the broker finds their sockets full at once instead of after the
/// kernel has taken megabytes per socket) while a publisher floods QoS 0 and QoS 1 for
/// 20 s. Limits: max_queued_messages 100, max_queued_bytes 64 KiB, max_inflight_messages
/// 20, payload 512 bytes. The broker logs at info, as in production.
///
/// Bound on the broker's RSS: what it had with the 200 clients connected, plus per slow
/// subscriber its queue (max_queued_bytes, 64 KiB, if no message were shared) and its write
/// buffer, which holds at most one drain of (max_queued_messages + max_inflight_messages)
/// encoded messages (120 x ~530 bytes, 64 KiB; twice that for Vec growth), so 192 KiB x 200
/// = 37.5 MiB, plus 32 MiB for the allocator and the publisher's buffers: 70 MiB over the
/// baseline. RSS must also stop growing: it rises in steps while buffers warm up (seen
/// reaching its plateau within 9 s, and staying there through a 40 s run), so the peak of
/// the second half may exceed the first half's by at most 8 MiB; the flood offers ~15 MB/s
/// of payload, so keeping it for even one subscriber would add far more.
///
/// Dropped messages are counted in `$SYS/broker/publish/messages/dropped`. Other clients
/// keep being served: a QoS 1 publisher on another topic, sending every 100 ms once the
/// previous PUBACK came, gets each PUBACK within 2 s and so sends at least 60 messages in
/// the 20 s (a third of the nominal 200); its subscriber gets every one with no gap over
/// 2 s.
#[test]
fn soak_slow_subscribers_bounded_memory_and_drops_counted() {
    const SUBS: usize = 200;
    const PAYLOAD: usize = 512;
    const RUN: Duration = Duration::from_secs(20);
    // At the info level a production broker runs at: debug logs two lines per packet
    // (47 MB in 10 s when tried), which would measure the logger, not the broker.
    let mut b = Broker::start_with_log(
        &[],
        Some(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100\nmax_queued_bytes 64k\nmax_inflight_messages 20\nsys_interval 1\nmax_connections_per_address 1000\n",
        ),
        Some("info"),
    );
    let port = b.port;
    let pid = b.child.id();
    let mut slow = Vec::with_capacity(SUBS);
    for i in 0..SUBS {
        let mut c = Client::tcp_small_rcvbuf(port, false, 4096);
        c.send(&Connect::v311(&format!("slow-{i}")).bytes());
        assert_eq!(c.recv(), [0x20, 2, 0, 0]);
        assert_eq!(c.sub("soak/#", 1), [1]);
        slow.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let base = rss_kib(pid);
    let stop = Arc::new(AtomicBool::new(false));

    // A client on another topic: receives, and a publisher that waits for each PUBACK.
    let mut live_sub = Client::connected(port, &Connect::v311("live-sub"));
    assert_eq!(live_sub.sub("live/t", 1), [1]);
    let live_rx = std::thread::spawn(move || {
        let mut times = Vec::new();
        let end = Instant::now() + RUN + Duration::from_secs(10);
        while Instant::now() < end {
            match live_sub.next_msg(end.saturating_duration_since(Instant::now())) {
                Some(m) if m.payload == b"end" => break,
                Some(_) => times.push(Instant::now()),
                None => break,
            }
        }
        times
    });
    let live_tx = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut p = Client::connected(port, &Connect::v311("live-pub"));
            let mut sent = 0usize;
            let mut acks = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let pid = (sent % 60_000 + 1) as u16;
                let payload = sent.to_string();
                p.send(&publish(
                    false,
                    b"live/t",
                    1,
                    false,
                    pid,
                    &[],
                    payload.as_bytes(),
                ));
                // Bounded: a PUBACK that takes over 10 s ends the live client's run.
                let got = p.recv_within(Duration::from_secs(10));
                acks.push(t.elapsed());
                sent += 1;
                if !matches!(&got, Got::Packet(a) if a[0] == 0x40) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
            }
            p.send(&publish(false, b"live/t", 1, false, 65_000, &[], b"end"));
            (sent, acks)
        })
    };

    // The flood: alternating QoS 0 and QoS 1, PUBACKs drained by a second thread.
    let flood_sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let stop = stop.clone();
        let sent = flood_sent.clone();
        std::thread::spawn(move || {
            let mut p = Client::connected(port, &Connect::v311("flood"));
            let mut rd = p.s.try_clone().unwrap();
            let drain = std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                rd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                while let Ok(n) = rd.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
            });
            // Built once, written again and again: the writer always keeps ahead of the
            // broker. (Inbound QoS 1 packet ids may be reused once acknowledged; the broker
            // does not track them.)
            let payload = vec![b'f'; PAYLOAD];
            let mut batch = Vec::with_capacity(256 * (PAYLOAD + 16));
            for i in 0..256u16 {
                if i % 2 == 0 {
                    batch.extend(publish(false, b"soak/a", 0, false, 0, &[], &payload));
                } else {
                    batch.extend(publish(false, b"soak/b", 1, false, i, &[], &payload));
                }
            }
            while !stop.load(Ordering::Relaxed) {
                if p.s.write_all(&batch).is_err() {
                    break;
                }
                sent.fetch_add(256, Ordering::Relaxed);
            }
            p.send(&[0xE0, 0]);
            drop(p);
            let _ = drain.join();
        })
    };

    let start = Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < RUN {
        samples.push((start.elapsed(), rss_kib(pid)));
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let (live_sent, acks) = live_tx.join().unwrap();
    let worst_ack = acks.iter().max().copied().unwrap_or_default();
    let live_times = live_rx.join().unwrap();
    let flood_total = flood_sent.load(Ordering::Relaxed);

    let bound = base + (SUBS as u64 * 192) + 32 * 1024;
    let peak = samples.iter().map(|s| s.1).max().unwrap();
    let half = RUN / 2;
    let first_peak = samples
        .iter()
        .filter(|s| s.0 < half)
        .map(|s| s.1)
        .max()
        .unwrap();
    let second_peak = samples
        .iter()
        .filter(|s| s.0 >= half)
        .map(|s| s.1)
        .max()
        .unwrap();
    let report = format!(
        "baseline {base} KiB, peak {peak} KiB, bound {bound} KiB, first half peak {first_peak}, second half peak {second_peak}, flood {flood_total} messages, samples {samples:?}"
    );
    assert!(flood_total > 1000, "the flood ran: {report}");
    assert!(peak <= bound, "RSS over the bound: {report}");
    assert!(
        second_peak <= first_peak + 8 * 1024,
        "RSS still growing in the second half: {report}"
    );
    let dropped = dropped_at_least(port, flood_total);
    assert!(
        dropped >= flood_total,
        "dropped {dropped} for {flood_total} flood messages to {SUBS} full queues"
    );
    let t = Instant::now();
    let mut late = Client::connected(port, &Connect::v311("after-soak"));
    assert!(late.ping(S) && t.elapsed() < Duration::from_secs(2));
    drop(slow);
    assert_healthy(&mut b);
    // Last, so that the memory and drop checks above are reported on their own (the
    // live-client checks fail: tests/FINDINGS-security.md, "a flooding publisher").
    let gap = live_times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    let live = format!(
        "live client: {live_sent} QoS 1 messages published in {RUN:?} (one every 100 ms when served), {} received, longest gap {gap:?}, PUBACK times {acks:?}",
        live_times.len()
    );
    let sys: Vec<String> = [
        "publish/messages/sent",
        "messages/inflight",
        "store/messages/count",
        "store/messages/bytes",
    ]
    .iter()
    .map(|t| format!("{t}={:?}", sys_value(port, &format!("$SYS/broker/{t}"))))
    .collect();
    eprintln!("soak: {report}\n{live}\n{sys:?}");
    assert_eq!(
        live_times.len(),
        live_sent,
        "every live message arrived: {live}"
    );
    // Generous for a debug build on a shared machine: a third of the nominal rate.
    assert!(live_sent >= 60, "the live publisher was served: {live}");
    assert!(gap < Duration::from_secs(2), "{live}");
    assert!(worst_ack < Duration::from_secs(2), "{live}");
}

// ----- bad input corpus -----------------------------------------------------------------------

/// What a malformed input must produce.
#[derive(Clone, Debug)]
enum Expect {
    /// 5.0: DISCONNECT with one of these reasons, then close. 3.1.1: closed, nothing sent.
    Reason(&'static [u8]),
    /// 5.0: DISCONNECT with one of these reasons or a plain close. 3.1.1: closed.
    ReasonOrClose(&'static [u8]),
    /// Before CONNACK: closed; one CONNACK with a failure code (>= 0x80 in 5.0, 1..=5 in
    /// 3.1.1) may come first ([MQTT-3.1.4-1], 4.13).
    Refused,
    /// Closed without any packet.
    Close,
    /// This reply, and the connection stays open.
    Reply(Vec<u8>),
    /// No reply; the connection stays open (PINGREQ answered).
    Open,
    /// 5.0: whatever comes first, the last packet is DISCONNECT with this reason.
    EndsWith(u8),
}

#[derive(Clone, Debug)]
struct Case {
    name: String,
    v5: bool,
    /// Send a valid CONNECT first.
    connected: bool,
    bytes: Vec<u8>,
    expect: Expect,
}

fn after(v5: bool, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        v5,
        connected: true,
        bytes,
        expect,
    }
}

fn before(v5: bool, name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        v5,
        connected: false,
        bytes,
        expect,
    }
}

/// Both versions, connected.
fn both(name: &str, f: impl Fn(bool) -> Vec<u8>, expect: Expect) -> Vec<Case> {
    [false, true]
        .into_iter()
        .map(|v5| after(v5, name, f(v5), expect.clone()))
        .collect()
}

/// Checks one case; `Ok` describes what the broker did (printed by `run_corpus`).
fn check_case(cl: &mut Client, c: &Case) -> Result<String, String> {
    let show = |ps: &[Vec<u8>]| ps.iter().map(|p| hex(p)).collect::<Vec<_>>().join(" | ");
    let closed = |ps: &[Vec<u8>]| {
        if ps.is_empty() {
            "closed".to_owned()
        } else {
            format!("sent [{}], closed", show(ps))
        }
    };
    let wait = Duration::from_secs(4);
    match &c.expect {
        Expect::Reason(rs) | Expect::ReasonOrClose(rs) => {
            let ps = cl.wait_close(wait).ok_or("still open after 4 s")?;
            let plain_close_ok = matches!(c.expect, Expect::ReasonOrClose(_)) || !c.v5;
            match ps.as_slice() {
                [] if plain_close_ok => Ok(closed(&ps)),
                [p] if c.v5 && disconnect_reason(p).is_some_and(|r| rs.contains(&r)) => {
                    Ok(closed(&ps))
                }
                _ if !c.v5 => Err(format!("3.1.1 must just be closed, got {}", show(&ps))),
                _ => Err(format!(
                    "expected DISCONNECT {rs:02x?} then close, got [{}] then close",
                    show(&ps)
                )),
            }
        }
        Expect::Refused => {
            let ps = cl.wait_close(wait).ok_or("still open after 4 s")?;
            let ok_code = |r: u8| {
                if c.v5 {
                    r >= 0x80
                } else {
                    (1..=5).contains(&r)
                }
            };
            match ps.as_slice() {
                [] => Ok(closed(&ps)),
                [p] if p[0] == 0x20 && ok_code(p[3]) => Ok(closed(&ps)),
                _ => Err(format!("expected a refusal, got [{}]", show(&ps))),
            }
        }
        Expect::Close => {
            let ps = cl.wait_close(wait).ok_or("still open after 4 s")?;
            if ps.is_empty() {
                Ok(closed(&ps))
            } else {
                Err(format!("expected a plain close, got [{}]", show(&ps)))
            }
        }
        Expect::Reply(want) => match cl.recv_within(Duration::from_secs(3)) {
            Got::Packet(p) if &p == want => {
                if cl.ping(Duration::from_secs(3)) {
                    Ok(format!("replied {}, still open", hex(&p)))
                } else {
                    Err("replied correctly but then closed".into())
                }
            }
            other => Err(format!("expected {}, got {other:?}", hex(want))),
        },
        Expect::Open => {
            if cl.ping(Duration::from_secs(3)) {
                Ok("no reply, still open".to_owned())
            } else {
                Err("expected to stay open (PINGRESP)".into())
            }
        }
        Expect::EndsWith(r) => {
            let ps = cl.wait_close(wait).ok_or("still open after 4 s")?;
            match ps.last() {
                Some(p) if disconnect_reason(p) == Some(*r) => {
                    Ok(format!("{} packets, then {}, closed", ps.len() - 1, hex(p)))
                }
                _ => Err(format!(
                    "expected a final DISCONNECT {r:#04x}, got [{}]",
                    show(&ps)
                )),
            }
        }
    }
}

/// Runs every case on its own connection; after each one the broker must still route a
/// message between two other clients. Reports every case that went wrong, then checks the
/// log for panics.
fn run_corpus(cases: Vec<Case>) {
    let mut b = anon("connect_timeout 2\nmax_connections_per_address 1000\n");
    let mut sentinel = Sentinel::new(b.port);
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let mut cl = Client::tcp(b.port, c.v5);
        if c.connected {
            cl.send(&Connect::new(c.v5, &format!("corpus-{i}")).bytes());
            match cl.recv_within(S) {
                Got::Packet(p) if p[0] == 0x20 && p[3] == 0 => {}
                other => {
                    failures.push(format!("{}: the valid CONNECT failed: {other:?}", c.name));
                    continue;
                }
            }
        }
        cl.send(&c.bytes);
        let label = format!(
            "{} [{}, {}]",
            c.name,
            if c.v5 { "5.0" } else { "3.1.1" },
            if c.connected {
                "after CONNECT"
            } else {
                "before CONNECT"
            },
        );
        match check_case(&mut cl, c) {
            Ok(what) => eprintln!("ok: {label}: {what}"),
            Err(e) => failures.push(format!("{label}: sent {}: {e}", hex(&c.bytes))),
        }
        if !sentinel.ok() {
            failures.push(format!(
                "after {}: the broker stopped routing for other clients",
                c.name
            ));
            break;
        }
    }
    assert_healthy(&mut b);
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

const BAD_UTF8: &[u8] = &[b'a', 0xC3, 0x28];
const NUL: &[u8] = &[b'a', 0x00, b'b'];
/// U+D800 encoded in UTF-8 form: not allowed [MQTT-1.5.4-1].
const SURROGATE: &[u8] = &[b'a', 0xED, 0xA0, 0x80];

/// Before CONNECT: any other packet first [MQTT-3.1.0-1], a CONNECT with wrong fixed-header
/// flags [MQTT-2.1.3-1] or reserved flag [MQTT-3.1.2-3], inconsistent will flags
/// [MQTT-3.1.2-11] [MQTT-3.1.2-13] (3.1.2.6: will QoS 3), a password without a user name in
/// 3.1.1 [MQTT-3.1.2-22], bad UTF-8 or U+0000 in the client id, user name, will topic or
/// a user property [MQTT-1.5.4-1] [MQTT-1.5.4-2], a wildcard in the will topic (3.1.3.3,
/// [MQTT-3.3.2-2]), bad 5.0 properties (receive maximum 0 (3.1.2.11.3), maximum packet size
/// 0 (3.1.2.11.4), duplicates, properties not allowed in CONNECT or in the will, unknown
/// ones, request problem/response information 2, authentication data without a method
/// (3.1.2.11.10)), trailing bytes, a huge or 5-byte remaining length. Every one is closed
/// (a CONNACK with a failure code may come first, [MQTT-3.1.4-1]).
#[test]
fn corpus_before_connect() {
    let mut cases = Vec::new();
    for (name, bytes) in [
        (
            "PUBLISH first",
            publish(false, b"t", 0, false, 0, &[], b"x"),
        ),
        ("PUBACK first", ack(0x40, 1)),
        ("PUBREC first", ack(0x50, 1)),
        ("PUBREL first", ack(0x62, 1)),
        ("PUBCOMP first", ack(0x70, 1)),
        ("SUBSCRIBE first", subscribe(false, 1, &[(b"t", 0)], &[])),
        ("UNSUBSCRIBE first", unsubscribe(false, 1, &[b"t"])),
        ("PINGREQ first", vec![0xC0, 0]),
        ("DISCONNECT first", vec![0xE0, 0]),
        ("AUTH first", vec![0xF0, 0]),
        ("CONNACK first", vec![0x20, 2, 0, 0]),
        ("SUBACK first", vec![0x90, 3, 0, 1, 0]),
        ("UNSUBACK first", vec![0xB0, 2, 0, 1]),
        ("PINGRESP first", vec![0xD0, 0]),
        ("reserved packet type 0 first", vec![0x00, 0]),
        (
            "remaining length 268435455 (no body)",
            vec![0x10, 0xFF, 0xFF, 0xFF, 0x7F],
        ),
        (
            "remaining length in 5 bytes",
            vec![0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
    ] {
        cases.push(before(false, name, bytes, Expect::Close));
    }
    let mut extra = Vec::new();
    for v5 in [false, true] {
        let c = || Connect::new(v5, "corpus");
        let mut add = |name: &str, conn: Connect| {
            cases.push(before(v5, name, conn.bytes(), Expect::Refused));
        };
        for first in [0x11u8, 0x12, 0x14, 0x18, 0x1F] {
            add(
                &format!("CONNECT fixed header {first:#04x} [MQTT-2.1.3-1]"),
                Connect { first, ..c() },
            );
        }
        add(
            "CONNECT reserved flag bit 0 [MQTT-3.1.2-3]",
            Connect {
                extra_flags: 0x01,
                ..c()
            },
        );
        add(
            "will QoS 1 without will flag [MQTT-3.1.2-11]",
            Connect {
                extra_flags: 0x08,
                ..c()
            },
        );
        add(
            "will retain without will flag [MQTT-3.1.2-13]",
            Connect {
                extra_flags: 0x20,
                ..c()
            },
        );
        add("will QoS 3 (3.1.2.6)", c().will("w/t", "x", 3, false));
        add(
            "protocol name MQTX [MQTT-3.1.2-1]",
            Connect {
                protocol_name: b"MQTX".to_vec(),
                ..c()
            },
        );
        for (what, bad) in [
            ("bad UTF-8", BAD_UTF8),
            ("U+0000", NUL),
            ("UTF-16 surrogate", SURROGATE),
        ] {
            add(
                &format!("client id with {what} [MQTT-1.5.4]"),
                Connect {
                    client_id: bad.to_vec(),
                    ..c()
                },
            );
            add(
                &format!("user name with {what} [MQTT-1.5.4]"),
                Connect {
                    username: Some(bad.to_vec()),
                    ..c()
                },
            );
            let mut w = c().will("w/t", "x", 0, false);
            w.will.as_mut().unwrap().topic = bad.to_vec();
            add(&format!("will topic with {what} [MQTT-1.5.4]"), w);
            if v5 {
                add(
                    &format!("CONNECT user property key with {what} [MQTT-1.5.4]"),
                    Connect {
                        props: prop::user(bad, b"v"),
                        ..c()
                    },
                );
                add(
                    &format!("CONNECT user property value with {what} [MQTT-1.5.4]"),
                    Connect {
                        props: prop::user(b"k", bad),
                        ..c()
                    },
                );
                let mut w = c().will("w/t", "x", 0, false);
                w.will.as_mut().unwrap().props = prop::user(bad, b"v");
                add(&format!("will user property with {what} [MQTT-1.5.4]"), w);
            }
        }
        add(
            "will topic with a wildcard [MQTT-3.3.2-2]",
            c().will("w/#", "x", 0, false),
        );
        // Two extra bytes inside the declared length.
        let mut trailing = Connect::new(v5, "x").bytes();
        trailing.extend([0, 0]);
        trailing[1] += 2;
        extra.push(before(
            v5,
            "trailing bytes after the CONNECT payload",
            trailing,
            Expect::Refused,
        ));
        if !v5 {
            add(
                "3.1.1 password without user name [MQTT-3.1.2-22]",
                Connect {
                    password: Some(b"pw".to_vec()),
                    ..c()
                },
            );
            continue;
        }
        for (name, props) in [
            ("receive maximum 0 (3.1.2.11.3)", prop::u16(0x21, 0)),
            ("maximum packet size 0 (3.1.2.11.4)", prop::u32(0x27, 0)),
            (
                "session expiry twice (2.2.2.2)",
                [prop::u32(0x11, 1), prop::u32(0x11, 1)].concat(),
            ),
            (
                "receive maximum twice (3.1.2.11.3)",
                [prop::u16(0x21, 5), prop::u16(0x21, 5)].concat(),
            ),
            ("topic alias in CONNECT (2.2.2.2)", prop::u16(0x23, 1)),
            (
                "subscription identifier in CONNECT (2.2.2.2)",
                prop::var(0x0B, 1),
            ),
            ("unknown property 0x7F (2.2.2.2)", vec![0x7F, 0]),
            (
                "request problem information 2 (3.1.2.11.7)",
                prop::byte(0x17, 2),
            ),
            (
                "request response information 2 (3.1.2.11.6)",
                prop::byte(0x19, 2),
            ),
            (
                "authentication data without method (3.1.2.11.10)",
                prop::str(0x16, b"data"),
            ),
            ("property value cut short", vec![0x11, 0, 0]),
        ] {
            add(
                &format!("CONNECT property: {name}"),
                Connect { props, ..c() },
            );
        }
        for (name, props) in [
            (
                "session expiry in will properties (3.1.3.2)",
                prop::u32(0x11, 1),
            ),
            (
                "will delay twice (3.1.3.2.2)",
                [prop::u32(0x18, 1), prop::u32(0x18, 1)].concat(),
            ),
        ] {
            let mut w = c().will("w/t", "x", 0, false);
            w.will.as_mut().unwrap().props = props;
            add(&format!("will property: {name}"), w);
        }
    }
    cases.extend(extra);
    run_corpus(cases);
}

/// After CONNECT, reserved fixed-header flags of every packet type [MQTT-2.1.3-1] (3.1.1
/// [MQTT-2.2.2-2]), QoS 3 [MQTT-3.3.1-4], DUP on QoS 0 [MQTT-3.3.1-2], reserved packet type
/// 0 and AUTH in 3.1.1: 5.0 DISCONNECT 0x81 (Malformed Packet, 4.13.1), 3.1.1 closed.
#[test]
fn corpus_fixed_header_flags() {
    const MAL: &[u8] = &[0x81];
    // A server-only packet with wrong flags may be reported as either.
    const MAL_OR_PROTO: &[u8] = &[0x81, 0x82];
    let mut cases = Vec::new();
    let connect_body = |v5: bool| Connect::new(v5, "again").bytes()[2..].to_vec();
    for first in [0x11u8, 0x1F] {
        cases.extend(both(
            &format!("CONNECT {first:#04x}"),
            |v5| packet(first, &connect_body(v5)),
            Expect::Reason(MAL_OR_PROTO),
        ));
    }
    for (first, body, name, r) in [
        (0x21u8, vec![0u8, 0], "CONNACK", MAL_OR_PROTO),
        (
            0x36,
            [&s16(b"t")[..], &[0, 1, 0]].concat(),
            "PUBLISH QoS 3 [MQTT-3.3.1-4]",
            MAL,
        ),
        (
            0x37,
            [&s16(b"t")[..], &[0, 1, 0]].concat(),
            "PUBLISH QoS 3 retain",
            MAL,
        ),
        (
            0x38,
            [&s16(b"t")[..], &[0]].concat(),
            "PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]",
            MAL,
        ),
        (0x41, vec![0, 1], "PUBACK", MAL),
        (0x48, vec![0, 1], "PUBACK", MAL),
        (0x51, vec![0, 1], "PUBREC", MAL),
        (0x60, vec![0, 1], "PUBREL [MQTT-3.6.1-1]", MAL),
        (0x63, vec![0, 1], "PUBREL", MAL),
        (0x6A, vec![0, 1], "PUBREL", MAL),
        (0x71, vec![0, 1], "PUBCOMP", MAL),
        (
            0x80,
            [&[0u8, 1][..], &s16(b"t"), &[0]].concat(),
            "SUBSCRIBE [MQTT-3.8.1-1]",
            MAL,
        ),
        (
            0x83,
            [&[0u8, 1][..], &s16(b"t"), &[0]].concat(),
            "SUBSCRIBE",
            MAL,
        ),
        (0x91, vec![0, 1, 0], "SUBACK", MAL_OR_PROTO),
        (
            0xA0,
            [&[0u8, 1][..], &s16(b"t")].concat(),
            "UNSUBSCRIBE [MQTT-3.10.1-1]",
            MAL,
        ),
        (
            0xA3,
            [&[0u8, 1][..], &s16(b"t")].concat(),
            "UNSUBSCRIBE",
            MAL,
        ),
        (0xB1, vec![0, 1], "UNSUBACK", MAL_OR_PROTO),
        (0xC1, vec![], "PINGREQ", MAL),
        (0xC8, vec![], "PINGREQ", MAL),
        (0xD1, vec![], "PINGRESP", MAL_OR_PROTO),
        (0xE1, vec![], "DISCONNECT", MAL),
        (0x00, vec![], "reserved type 0", MAL),
        (0x01, vec![], "reserved type 0 with flags", MAL),
    ] {
        for v5 in [false, true] {
            // 5.0 PUBLISH bodies need a property length.
            let body = if v5 && first >> 4 == 3 {
                let mut b = body.clone();
                b.insert(b.len() - 1, 0);
                b
            } else if v5 && (first >> 4 == 8 || first >> 4 == 10) {
                let mut b = body.clone();
                b.insert(2, 0);
                b
            } else {
                body.clone()
            };
            cases.push(after(
                v5,
                format!("{name} with first byte {first:#04x}"),
                packet(first, &body),
                Expect::Reason(r),
            ));
        }
    }
    cases.push(after(true, "AUTH 0xF1", vec![0xF1, 0], Expect::Reason(MAL)));
    cases.push(after(true, "AUTH 0xF8", vec![0xF8, 0], Expect::Reason(MAL)));
    cases.push(after(
        false,
        "AUTH (reserved in 3.1.1)",
        vec![0xF0, 0],
        Expect::Close,
    ));
    run_corpus(cases);
}

/// Bad UTF-8, U+0000 and UTF-16 surrogates in every string after CONNECT: topic, filters
/// (SUBSCRIBE, UNSUBSCRIBE), 5.0 user properties (key and value, in PUBLISH, SUBSCRIBE,
/// UNSUBSCRIBE, PUBACK), content type, response topic, reason strings
/// [MQTT-1.5.4-1] [MQTT-1.5.4-2]: 5.0 DISCONNECT 0x81, 3.1.1 closed [MQTT-1.5.3-1]
/// [MQTT-1.5.3-2]. A client DISCONNECT carrying a bad reason string may simply be closed.
#[test]
fn corpus_bad_strings() {
    const MAL: &[u8] = &[0x81];
    let mut cases = Vec::new();
    for (what, bad) in [
        ("bad UTF-8", BAD_UTF8),
        ("U+0000", NUL),
        ("UTF-16 surrogate", SURROGATE),
    ] {
        cases.extend(both(
            &format!("PUBLISH topic with {what}"),
            |v5| publish(v5, bad, 0, false, 0, &[], b"x"),
            Expect::Reason(MAL),
        ));
        cases.extend(both(
            &format!("SUBSCRIBE filter with {what}"),
            |v5| subscribe(v5, 1, &[(bad, 0)], &[]),
            Expect::Reason(MAL),
        ));
        cases.extend(both(
            &format!("UNSUBSCRIBE filter with {what}"),
            |v5| unsubscribe(v5, 1, &[bad]),
            Expect::Reason(MAL),
        ));
        let v5_cases: Vec<(String, Vec<u8>)> = vec![
            (
                format!("PUBLISH user property key with {what}"),
                publish(true, b"t", 0, false, 0, &prop::user(bad, b"v"), b"x"),
            ),
            (
                format!("PUBLISH user property value with {what}"),
                publish(true, b"t", 0, false, 0, &prop::user(b"k", bad), b"x"),
            ),
            (
                format!("PUBLISH content type with {what}"),
                publish(true, b"t", 0, false, 0, &prop::str(0x03, bad), b"x"),
            ),
            (
                format!("PUBLISH response topic with {what}"),
                publish(true, b"t", 0, false, 0, &prop::str(0x08, bad), b"x"),
            ),
            (
                format!("SUBSCRIBE user property with {what}"),
                subscribe(true, 1, &[(b"t", 0)], &prop::user(bad, b"v")),
            ),
            (
                format!("UNSUBSCRIBE user property with {what}"),
                packet(
                    0xA2,
                    &[&[0u8, 1][..], &props(&prop::user(b"k", bad)), &s16(b"t")].concat(),
                ),
            ),
            (
                format!("PUBACK reason string with {what}"),
                packet(
                    0x40,
                    &[&[0u8, 1, 0][..], &props(&prop::str(0x1F, bad))].concat(),
                ),
            ),
        ];
        for (name, bytes) in v5_cases {
            cases.push(after(true, name, bytes, Expect::Reason(MAL)));
        }
        cases.push(after(
            true,
            format!("DISCONNECT reason string with {what}"),
            packet(0xE0, &[&[0u8][..], &props(&prop::str(0x1F, bad))].concat()),
            Expect::ReasonOrClose(MAL),
        ));
    }
    run_corpus(cases);
}

/// 5.0 properties after CONNECT: a property given twice that may appear once (2.2.2.2:
/// Protocol Error, 0x82); a property not allowed in the packet, an unknown identifier, a
/// property block running past the packet (2.2.2.2: Malformed Packet, 0x81); topic alias 0
/// (3.3.2.3.4) and subscription identifier 0 (3.8.2.1.2) (0x82); session expiry in
/// DISCONNECT after 0 at CONNECT [MQTT-3.14.2-2] (0x82). Two user properties are allowed
/// (3.3.2.3.7: it may appear multiple times): PUBACK 0x10 (no subscribers).
#[test]
fn corpus_properties() {
    const MAL: &[u8] = &[0x81];
    const PROTO: &[u8] = &[0x82];
    let pubp = |p: Vec<u8>| publish(true, b"corpus/t", 1, false, 1, &p, b"x");
    let mut cases = Vec::new();
    for (name, bytes, expect) in [
        (
            "PUBLISH payload format indicator twice",
            pubp([prop::byte(0x01, 0), prop::byte(0x01, 0)].concat()),
            Expect::Reason(PROTO),
        ),
        (
            "PUBLISH content type twice",
            pubp([prop::str(0x03, b"a"), prop::str(0x03, b"a")].concat()),
            Expect::Reason(PROTO),
        ),
        (
            "PUBLISH response topic twice",
            pubp([prop::str(0x08, b"r"), prop::str(0x08, b"r")].concat()),
            Expect::Reason(PROTO),
        ),
        (
            "PUBLISH correlation data twice",
            pubp([prop::str(0x09, b"c"), prop::str(0x09, b"c")].concat()),
            Expect::Reason(PROTO),
        ),
        (
            "PUBLISH topic alias twice",
            pubp([prop::u16(0x23, 1), prop::u16(0x23, 1)].concat()),
            Expect::Reason(PROTO),
        ),
        (
            "SUBSCRIBE subscription identifier twice",
            subscribe(
                true,
                1,
                &[(b"t", 0)],
                &[prop::var(0x0B, 1), prop::var(0x0B, 2)].concat(),
            ),
            Expect::Reason(PROTO),
        ),
        (
            "PUBACK reason string twice",
            packet(
                0x40,
                &[
                    &[0u8, 1, 0][..],
                    &props(&[prop::str(0x1F, b"a"), prop::str(0x1F, b"a")].concat()),
                ]
                .concat(),
            ),
            Expect::Reason(PROTO),
        ),
        (
            "two user properties (allowed)",
            pubp([prop::user(b"k", b"1"), prop::user(b"k", b"2")].concat()),
            Expect::Reply(vec![0x40, 3, 0, 1, 0x10]),
        ),
        (
            "receive maximum in PUBLISH",
            pubp(prop::u16(0x21, 1)),
            Expect::Reason(MAL),
        ),
        (
            "server keep alive in PUBLISH",
            pubp(prop::u16(0x13, 1)),
            Expect::Reason(MAL),
        ),
        (
            "assigned client identifier in PUBLISH",
            pubp(prop::str(0x12, b"x")),
            Expect::Reason(MAL),
        ),
        (
            "session expiry in PUBLISH",
            pubp(prop::u32(0x11, 1)),
            Expect::Reason(MAL),
        ),
        (
            "topic alias in SUBSCRIBE",
            subscribe(true, 1, &[(b"t", 0)], &prop::u16(0x23, 1)),
            Expect::Reason(MAL),
        ),
        (
            "subscription identifier in UNSUBSCRIBE",
            packet(
                0xA2,
                &[&[0u8, 1][..], &props(&prop::var(0x0B, 1)), &s16(b"t")].concat(),
            ),
            Expect::Reason(MAL),
        ),
        (
            "maximum QoS in PUBACK",
            packet(
                0x40,
                &[&[0u8, 1, 0][..], &props(&prop::byte(0x24, 1))].concat(),
            ),
            Expect::Reason(MAL),
        ),
        (
            "will delay interval in DISCONNECT",
            packet(0xE0, &[&[0u8][..], &props(&prop::u32(0x18, 1))].concat()),
            Expect::ReasonOrClose(MAL),
        ),
        (
            "unknown property 0x7F",
            pubp(vec![0x7F, 0]),
            Expect::Reason(MAL),
        ),
        (
            "property identifier 0x00",
            pubp(vec![0x00, 0]),
            Expect::Reason(MAL),
        ),
        (
            "property block longer than the packet",
            packet(0x30, &[&s16(b"t")[..], &[20, 0x01, 0]].concat()),
            Expect::Reason(MAL),
        ),
        (
            "property value cut short",
            packet(0x30, &[&s16(b"t")[..], &[3, 0x02, 0, 0]].concat()),
            Expect::Reason(MAL),
        ),
        (
            "topic alias 0 (3.3.2.3.4)",
            publish(true, b"t", 0, false, 0, &prop::u16(0x23, 0), b"x"),
            Expect::Reason(PROTO),
        ),
        (
            "subscription identifier 0 (3.8.2.1.2)",
            subscribe(true, 1, &[(b"t", 0)], &prop::var(0x0B, 0)),
            Expect::Reason(PROTO),
        ),
        (
            "DISCONNECT session expiry after 0 at CONNECT [MQTT-3.14.2-2]",
            packet(0xE0, &[&[0u8][..], &props(&prop::u32(0x11, 60))].concat()),
            Expect::Reason(PROTO),
        ),
    ] {
        cases.push(after(true, name, bytes, expect));
    }
    run_corpus(cases);
}

/// Topic filters that break section 4.7 ([MQTT-4.7.1-1] `#` last and alone in its level,
/// [MQTT-4.7.1-2] `+` alone in its level, [MQTT-4.7.3-1] not empty) and 5.0 shared
/// subscriptions without a share name or filter, or with a wildcard in the share name
/// [MQTT-4.8.2-1] [MQTT-4.8.2-2]: 3.1.1 closed; 5.0 DISCONNECT 0x81 (Malformed Packet) or
/// 0x8F (Topic Filter invalid). Valid but unusual filters are granted.
#[test]
fn corpus_topic_filters() {
    const BAD_FILTER: &[u8] = &[0x81, 0x8F];
    let mut cases = Vec::new();
    for f in [
        "a/#/b", "a#", "#a", "+a", "a+", "a/b#", "a/+b/c", "", "##", "++",
    ] {
        cases.extend(both(
            &format!("SUBSCRIBE {f:?}"),
            |v5| subscribe(v5, 1, &[(f.as_bytes(), 0)], &[]),
            Expect::Reason(BAD_FILTER),
        ));
        cases.extend(both(
            &format!("UNSUBSCRIBE {f:?}"),
            |v5| unsubscribe(v5, 1, &[f.as_bytes()]),
            Expect::Reason(BAD_FILTER),
        ));
    }
    for f in [
        "$share/g",
        "$share//t",
        "$share/g+/t",
        "$share/g#/t",
        "$share/g/",
    ] {
        cases.push(after(
            true,
            format!("SUBSCRIBE {f:?}"),
            subscribe(true, 1, &[(f.as_bytes(), 0)], &[]),
            Expect::Reason(BAD_FILTER),
        ));
    }
    for f in ["/", "//", "+/+", "+/#", "#", "$SYS/#", "a/ /b"] {
        cases.push(after(
            false,
            format!("SUBSCRIBE valid {f:?}"),
            subscribe(false, 1, &[(f.as_bytes(), 1)], &[]),
            Expect::Reply(vec![0x90, 3, 0, 1, 1]),
        ));
    }
    cases.push(after(
        true,
        "SUBSCRIBE valid \"$share/g/#\"",
        subscribe(true, 1, &[(b"$share/g/#", 1)], &[]),
        Expect::Reply(vec![0x90, 4, 0, 1, 0, 1]),
    ));
    cases.extend(both(
        "PUBLISH topic with a wildcard [MQTT-3.3.2-2]",
        |v5| publish(v5, b"a/+/b", 0, false, 0, &[], b"x"),
        Expect::Reason(&[0x90]),
    ));
    cases.push(after(
        false,
        "PUBLISH empty topic [MQTT-4.7.3-1]",
        publish(false, b"", 0, false, 0, &[], b"x"),
        Expect::Close,
    ));
    run_corpus(cases);
}

/// Protocol violations after CONNECT: a second CONNECT [MQTT-3.1.0-2]; packets only a server
/// sends (CONNACK, SUBACK, UNSUBACK, PINGRESP); AUTH when no method was agreed
/// [MQTT-4.12.0-7] (4.12: 0x82); more unacknowledged QoS 2 PUBLISH than the receive
/// maximum [MQTT-3.3.4-7] (3.3.4: 0x93); packet identifier 0 [MQTT-2.2.1-3]; SUBSCRIBE /
/// UNSUBSCRIBE without filters [MQTT-3.8.3-2] [MQTT-3.10.3-2]; subscription options with
/// reserved bits [MQTT-3.8.3-5] (Malformed), QoS 3 or retain handling 3 (3.8.3.1: Protocol
/// Error) and no-local on a shared subscription [MQTT-3.8.3-4]; remaining length too big
/// (0x95), not minimal [MQTT-1.5.5-1] or too short for the fields (0x81). PUBREL and PUBREC
/// for unknown ids get PUBCOMP / PUBREL 0x92 in 5.0 (3.7.2.1, 3.6.2.1) and the connection
/// stays; PUBACK / PUBCOMP for unknown ids are ignored.
#[test]
fn corpus_protocol_violations() {
    const MAL: &[u8] = &[0x81];
    const PROTO: &[u8] = &[0x82];
    const ZERO_ID: &[u8] = &[0x81, 0x82];
    let mut cases = Vec::new();
    cases.extend(both(
        "second CONNECT",
        |v5| Connect::new(v5, "twice").bytes(),
        Expect::Reason(PROTO),
    ));
    // Well formed for each version (5.0 bodies carry a property length).
    for (name, v311, v5) in [
        (
            "CONNACK from a client",
            vec![0x20, 2, 0, 0],
            vec![0x20, 3, 0, 0, 0],
        ),
        (
            "SUBACK from a client",
            vec![0x90, 3, 0, 1, 0],
            vec![0x90, 4, 0, 1, 0, 0],
        ),
        (
            "UNSUBACK from a client",
            vec![0xB0, 2, 0, 1],
            vec![0xB0, 4, 0, 1, 0, 0],
        ),
        ("PINGRESP from a client", vec![0xD0, 0], vec![0xD0, 0]),
    ] {
        cases.extend(both(
            name,
            |is5| if is5 { v5.clone() } else { v311.clone() },
            Expect::Reason(PROTO),
        ));
    }
    cases.push(after(
        true,
        "AUTH, no method at CONNECT",
        vec![0xF0, 0],
        Expect::Reason(PROTO),
    ));
    cases.push(after(
        true,
        "AUTH with a method, none at CONNECT",
        packet(
            0xF0,
            &[&[0x18u8][..], &props(&prop::str(0x15, b"SCRAM-SHA-1"))].concat(),
        ),
        Expect::Reason(PROTO),
    ));
    let qos2_burst: Vec<u8> = (1..=21u16)
        .flat_map(|i| publish(true, b"corpus/q2", 2, false, i, &[], b"x"))
        .collect();
    cases.push(after(
        true,
        "21 unacknowledged QoS 2 PUBLISH, receive maximum 20",
        qos2_burst,
        Expect::EndsWith(0x93),
    ));
    cases.extend(both(
        "PUBLISH QoS 1 with packet id 0",
        |v5| publish(v5, b"t", 1, false, 0, &[], b"x"),
        Expect::Reason(ZERO_ID),
    ));
    cases.extend(both(
        "SUBSCRIBE with packet id 0",
        |v5| subscribe(v5, 0, &[(b"t", 0)], &[]),
        Expect::Reason(ZERO_ID),
    ));
    cases.extend(both(
        "SUBSCRIBE without filters",
        |v5| packet(0x82, if v5 { &[0, 1, 0] } else { &[0, 1] }),
        Expect::Reason(PROTO),
    ));
    cases.extend(both(
        "UNSUBSCRIBE without filters",
        |v5| packet(0xA2, if v5 { &[0, 1, 0] } else { &[0, 1] }),
        Expect::Reason(PROTO),
    ));
    cases.push(after(
        true,
        "subscription options 0x30: retain handling 3 (3.8.3.1)",
        subscribe(true, 1, &[(b"t", 0x30)], &[]),
        Expect::Reason(PROTO),
    ));
    for opts in [0x03u8, 0x04, 0x40] {
        cases.push(after(
            false,
            format!("3.1.1 requested QoS byte {opts:#04x} [MQTT-3.8.3-4]"),
            subscribe(false, 1, &[(b"t", opts)], &[]),
            Expect::Close,
        ));
    }
    cases.push(after(
        true,
        "no-local on a shared subscription [MQTT-3.8.3-4]",
        subscribe(true, 1, &[(b"$share/g/t", 0x04)], &[]),
        Expect::Reason(PROTO),
    ));
    cases.extend(both(
        "remaining length 268435455 after CONNECT",
        |_| vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
        Expect::Reason(&[0x95]),
    ));
    cases.extend(both(
        "remaining length in 5 bytes [MQTT-1.5.5-1]",
        |_| vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        Expect::Reason(MAL),
    ));
    cases.extend(both(
        "remaining length not minimal (0x80 0x00) [MQTT-1.5.5-1]",
        |_| vec![0xC0, 0x80, 0x00],
        Expect::Reason(MAL),
    ));
    cases.extend(both(
        "PUBLISH topic length past the packet",
        |_| vec![0x30, 2, 0, 5],
        Expect::Reason(MAL),
    ));
    cases.extend(both(
        "PUBLISH QoS 1 without room for the packet id",
        |_| vec![0x32, 3, 0, 1, b't'],
        Expect::Reason(MAL),
    ));
    cases.extend(both(
        "PUBACK of 1 byte",
        |_| vec![0x40, 1, 0],
        Expect::Reason(MAL),
    ));
    cases.extend(both(
        "SUBSCRIBE filter without its options byte",
        |v5| {
            packet(
                0x82,
                &[&[0u8, 1][..], if v5 { &[0] } else { &[] }, &s16(b"a")].concat(),
            )
        },
        Expect::Reason(MAL),
    ));
    cases.push(after(
        true,
        "PUBREL for an unknown id",
        ack(0x62, 9),
        Expect::Reply(vec![0x70, 3, 0, 9, 0x92]),
    ));
    cases.push(after(
        false,
        "PUBREL for an unknown id",
        ack(0x62, 9),
        Expect::Reply(vec![0x70, 2, 0, 9]),
    ));
    cases.push(after(
        true,
        "PUBREC for an unknown id",
        ack(0x50, 9),
        Expect::Reply(vec![0x62, 3, 0, 9, 0x92]),
    ));
    cases.extend(both(
        "PUBACK for an unknown id",
        |_| ack(0x40, 9),
        Expect::Open,
    ));
    cases.extend(both(
        "PUBCOMP for an unknown id",
        |_| ack(0x70, 9),
        Expect::Open,
    ));
    run_corpus(cases);
}

/// 5.0 subscription options (3.8.3.1): reserved bits 6-7 set make the SUBSCRIBE malformed
/// [MQTT-3.8.3-5] (DISCONNECT 0x81, Malformed Packet); a Maximum QoS of 3 is a Protocol
/// Error (DISCONNECT 0x82) ("It is a Protocol Error if the Maximum QoS field has the value
/// 3"). 4.13.1 says which reason goes with which kind of fault.
#[test]
fn corpus_subscription_options_reason_codes() {
    const MAL: &[u8] = &[0x81];
    const PROTO: &[u8] = &[0x82];
    let mut cases = Vec::new();
    for (opts, name, r) in [
        (0x40u8, "reserved bit 6 [MQTT-3.8.3-5]", MAL),
        (0x80, "reserved bit 7 [MQTT-3.8.3-5]", MAL),
        (0xC1, "reserved bits 6 and 7 [MQTT-3.8.3-5]", MAL),
        (0x03, "Maximum QoS 3 (3.8.3.1)", PROTO),
    ] {
        cases.push(after(
            true,
            format!("subscription options {opts:#04x}: {name}"),
            subscribe(true, 1, &[(b"t", opts)], &[]),
            Expect::Reason(r),
        ));
    }
    run_corpus(cases);
}

/// Truncated packets: before CONNECT the connection is closed after `connect_timeout` (2 s)
/// or at once on EOF; after CONNECT (keep-alive 1 s) a packet cut short is closed after
/// 1.5 x keep-alive (5.0 [MQTT-3.1.2-22], 3.1.1 [MQTT-3.1.2-24]; 5.0: DISCONNECT 0x8D) or at once on EOF. Other
/// clients are served meanwhile.
#[test]
fn corpus_truncated_packets() {
    let mut b = anon("connect_timeout 2\n");
    let mut sentinel = Sentinel::new(b.port);
    let connect = Connect::v5("cut").bytes();
    let mut silent = Client::tcp(b.port, true);
    silent.send(&connect[..connect.len() - 3]);
    let mut eof = Client::tcp(b.port, true);
    eof.send(&connect[..connect.len() - 3]);
    eof.shutdown_write();
    let t0 = Instant::now();
    assert_eq!(eof.wait_close(Duration::from_secs(1)), Some(vec![]), "EOF");
    let mut live = Vec::new();
    for v5 in [false, true] {
        let mut c = Connect::new(v5, &format!("cut-{v5}"));
        c.keep_alive = 1;
        let mut cl = Client::connected(b.port, &c);
        cl.send(&[0x30, 10, 0, 1, b't']); // 3 of 10 bytes
        live.push((v5, cl, Instant::now()));
        let mut cl = Client::connected(b.port, &Connect::new(v5, &format!("cut-eof-{v5}")));
        cl.send(&[0x30, 10, 0, 1, b't']);
        cl.shutdown_write();
        assert!(
            cl.wait_close(Duration::from_secs(1)).is_some(),
            "EOF v5={v5}"
        );
    }
    assert!(sentinel.ok());
    let got = silent.wait_close(Duration::from_secs(4));
    let at = t0.elapsed();
    assert_eq!(got, Some(vec![]), "partial CONNECT, silence");
    assert!(
        at >= Duration::from_millis(1500) && at < Duration::from_secs(4),
        "closed after {at:?}, connect_timeout 2"
    );
    for (v5, mut cl, since) in live {
        let got = cl.wait_close(Duration::from_secs(4)).expect("closed");
        let at = since.elapsed();
        assert!(
            at < Duration::from_secs(3),
            "keep-alive 1 s, closed after {at:?}"
        );
        if v5 {
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(disconnect_reason(&got[0]), Some(0x8D));
        } else {
            assert!(got.is_empty(), "{got:?}");
        }
    }
    assert!(sentinel.ok());
    assert_healthy(&mut b);
}

// ----- client ids, user names, topics at the edges ------------------------------------------

/// Client ids: empty with clean start gets an assigned id (3.1.1 [MQTT-3.1.3-6]; 5.0
/// Assigned Client Identifier [MQTT-3.2.2-16]); empty without clean session is refused
/// with code 2 [MQTT-3.1.3-8]; 65,535 bytes (the longest string), 65,535 `/` and
/// 1,000 x `+#` are accepted (a server MAY allow more than 23 bytes and any characters
/// [MQTT-3.1.3-5]) and work; a leading U+FEFF is kept, not stripped [MQTT-1.5.4-3]; not
/// UTF-8 is refused [MQTT-1.5.4-1].
#[test]
fn client_ids_at_the_edges() {
    let mut b = anon("");
    let port = b.port;
    let (_c, got) = Client::open(port, &Connect::v311(""));
    assert_eq!(
        got,
        Got::Packet(vec![0x20, 2, 0, 0]),
        "3.1.1 empty id, clean"
    );
    let (mut c, got) = Client::open(port, &Connect::v311("").persistent());
    assert_eq!(
        got,
        Got::Packet(vec![0x20, 2, 0, 2]),
        "3.1.1 empty id, not clean"
    );
    assert!(c.wait_close(S).is_some());
    let (_c, got) = Client::open(port, &Connect::v5(""));
    match got {
        Got::Packet(p) => {
            assert_eq!(connack_code(&p), 0);
            assert!(
                p.windows(5).any(|w| w == b"auto-"),
                "Assigned Client Identifier auto-...: {p:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let long = "x".repeat(65_535);
    let slashes = "/".repeat(65_535);
    let wild = "+#".repeat(1000);
    for v5 in [false, true] {
        for id in [&long, &slashes, &wild] {
            let mut c = Client::connected(port, &Connect::new(v5, id));
            assert_eq!(c.sub("edge/id", 1), [1]);
            c.pub1("edge/id", b"mine", false, 2);
            assert!(c.ping(S), "id of {} bytes", id.len());
            // The same id again takes the session over.
            let mut again = Client::connected(port, &Connect::new(v5, id));
            assert!(
                c.wait_close(S).is_some(),
                "takeover of a {}-byte id",
                id.len()
            );
            assert!(again.ping(S));
        }
    }
    // U+FEFF is part of the id: "x" and "\u{FEFF}x" are two sessions.
    let mut plain = Client::connected(port, &Connect::v311("bom"));
    let mut bom = Client::connected(port, &Connect::v311("\u{FEFF}bom"));
    assert!(plain.ping(S) && bom.ping(S), "not taken over");
    let (mut c, got) = Client::open(
        port,
        &Connect {
            client_id: vec![0xFF, 0xFE],
            ..Connect::v5("")
        },
    );
    assert!(
        got.is_close() || matches!(&got, Got::Packet(p) if p[0] == 0x20 && p[3] >= 0x80),
        "non-UTF-8 id: {got:?}"
    );
    drop(c.wait_close(S));
    assert_healthy(&mut b);
}

/// User names: empty, 65,535 bytes, all `/`, all `+#`: accepted where anonymous access is
/// allowed and no password file is set, refused with 3.1.1 code 4 / 5.0 0x86 by a password
/// file that does not list them; not UTF-8: refused [MQTT-1.5.4-1]. Passwords are binary
/// data (3.1.3.5): a non-UTF-8 password is not a malformed packet.
#[test]
fn usernames_at_the_edges() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(
        &pw,
        "alice:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n",
    )
    .unwrap();
    let mut open = anon("");
    let mut secure = Broker::with_config(&format!(
        "listener {{port}} 127.0.0.1\npassword_file {}\n",
        pw.display()
    ));
    let names = [
        String::new(),
        "u".repeat(65_535),
        "/".repeat(65_535),
        "+#".repeat(1000),
    ];
    for v5 in [false, true] {
        for (i, name) in names.iter().enumerate() {
            let c = Connect::new(v5, &format!("user-{i}")).user(name, "pw");
            let (_cl, got) = Client::open(open.port, &c);
            assert_eq!(
                connack_of(&got),
                Some(0),
                "open broker, user name of {} bytes: {got:?}",
                name.len()
            );
            let (mut cl, got) = Client::open(secure.port, &c);
            match got {
                Got::Packet(p) => assert_eq!(connack_code(&p), if v5 { 0x86 } else { 4 }),
                other => panic!("secure broker, {} bytes: {other:?}", name.len()),
            }
            assert!(cl.wait_close(S).is_some());
        }
        let mut c = Connect::new(v5, "binary-pw").user("alice", "x");
        c.password = Some(vec![0xFF, 0x00, 0xFE]);
        let (mut cl, got) = Client::open(secure.port, &c);
        match got {
            Got::Packet(p) => assert_eq!(connack_code(&p), if v5 { 0x86 } else { 4 }),
            other => panic!("binary password: {other:?}"),
        }
        assert!(cl.wait_close(S).is_some());
        let c = Connect {
            username: Some(vec![0xC3, 0x28]),
            password: Some(b"pw".to_vec()),
            ..Connect::new(v5, "bad-user")
        };
        for port in [open.port, secure.port] {
            let (mut cl, got) = Client::open(port, &c);
            let refused =
                got.is_close() || matches!(&got, Got::Packet(p) if p[0] == 0x20 && p[3] != 0);
            assert!(refused, "non-UTF-8 user name: {got:?}");
            drop(cl.wait_close(S));
        }
    }
    assert_healthy(&mut open);
    assert_healthy(&mut secure);
}

/// The code of a CONNACK, if that is what came.
fn connack_of(g: &Got) -> Option<u8> {
    match g {
        Got::Packet(p) if p[0] == 0x20 && p.len() >= 4 => Some(p[3]),
        _ => None,
    }
}

/// Topics: 65,535 bytes (the longest string), spaces and non-ASCII characters are valid
/// topic names: published (also retained), routed to `#` and to an exact subscription, and
/// cleared; `+` or `#` in a topic name is refused (5.0 DISCONNECT 0x90, 3.1.1 closed)
/// [MQTT-3.3.2-2].
#[test]
fn long_and_unusual_topics() {
    let mut b = anon("");
    let port = b.port;
    let long = "t".repeat(65_535);
    let odd = "ä ö/😀 x/ /".to_owned();
    for v5 in [false, true] {
        let mut all = Client::connected(port, &Connect::new(v5, &format!("all-{v5}")));
        assert_eq!(all.sub("#", 1), [1]);
        let mut exact = Client::connected(port, &Connect::new(v5, &format!("exact-{v5}")));
        assert_eq!(exact.sub(&long, 1), [1]);
        let mut p = Client::connected(port, &Connect::new(v5, &format!("pub-{v5}")));
        for (i, t) in [&long, &odd].iter().enumerate() {
            p.pub1(t, b"payload", true, i as u16 + 1);
            let m = all.next_msg(S).expect("routed to #");
            assert_eq!(m.topic, t.as_bytes(), "topic of {} bytes", t.len());
        }
        let m = exact.next_msg(S).expect("routed to the exact filter");
        assert_eq!(m.topic, long.as_bytes());
        let mut late = Client::connected(port, &Connect::new(v5, &format!("late-{v5}")));
        assert_eq!(late.sub("#", 1), [1]);
        let mut got = late.expect_msgs(2, Duration::from_millis(500));
        got.sort_by_key(|m| m.topic.len());
        assert!(got.iter().all(|m| m.retain));
        let lens: Vec<usize> = got.iter().map(|m| m.topic.len()).collect();
        assert_eq!(lens, [odd.len(), long.len()], "retained");
        for (i, t) in [&long, &odd].iter().enumerate() {
            p.pub1(t, b"", true, i as u16 + 10);
        }
        let mut later = Client::connected(port, &Connect::new(v5, &format!("later-{v5}")));
        assert_eq!(later.sub("#", 1), [1]);
        assert!(
            later.next_msg(Duration::from_millis(500)).is_none(),
            "cleared"
        );
        for t in ["a/+", "a/#", "+", "#"] {
            let (mut bad, got) = Client::open(port, &Connect::new(v5, &format!("w-{v5}")));
            assert!(matches!(got, Got::Packet(_)));
            bad.send(&publish(v5, t.as_bytes(), 0, false, 0, &[], b"x"));
            let seen = bad.wait_close(S).expect("closed");
            if v5 {
                assert_eq!(seen.len(), 1);
                assert_eq!(disconnect_reason(&seen[0]), Some(0x90), "{t}");
            } else {
                assert!(seen.is_empty());
            }
        }
    }
    assert_healthy(&mut b);
}

/// (what, set-up sent first by another client, the step, first bytes of the answers).
type DeepStep<'a> = (&'a str, Option<&'a [u8]>, Vec<u8>, &'a [u8]);

/// A topic of 65,535 `/` is a valid topic name of 65,536 empty levels (4.7.1.1: "adjacent
/// Topic Level Separators indicate a zero-length topic level"), and `+/` x 32,767 + `#` a
/// valid filter of 32,768 levels. Subscribing to them, publishing to the topic, keeping it
/// retained and unsubscribing must each get their normal answer, with the broker still
/// running (a peer's input must never take the broker down). Each step runs on a fresh
/// broker after the state it needs has been set up by another client.
#[test]
fn deep_topics_and_filters_do_not_crash_the_broker() {
    let slashes = "/".repeat(65_535);
    let deep = format!("{}#", "+/".repeat(32_767));
    let sub_deep = subscribe(false, 1, &[(deep.as_bytes(), 1)], &[]);
    let sub_slashes = subscribe(false, 1, &[(slashes.as_bytes(), 1)], &[]);
    let pub_slashes = publish(false, slashes.as_bytes(), 1, false, 2, &[], b"x");
    let retain_slashes = publish(false, slashes.as_bytes(), 1, true, 2, &[], b"kept");
    let steps: Vec<DeepStep<'_>> = vec![
        (
            "SUBSCRIBE to a 32,768-level filter",
            None,
            sub_deep.clone(),
            &[0x90],
        ),
        (
            "PUBLISH to a 65,536-level topic, with a 32,768-level subscription",
            Some(&sub_deep),
            pub_slashes.clone(),
            &[0x40],
        ),
        (
            "UNSUBSCRIBE from a 32,768-level filter",
            None,
            [sub_deep.clone(), unsubscribe(false, 3, &[deep.as_bytes()])].concat(),
            &[0x90, 0xB0],
        ),
        (
            "SUBSCRIBE to a 65,536-level filter",
            None,
            sub_slashes.clone(),
            &[0x90],
        ),
        (
            "PUBLISH to a 65,536-level topic, with that exact subscription",
            Some(&sub_slashes),
            pub_slashes.clone(),
            &[0x40],
        ),
        (
            "UNSUBSCRIBE from a 65,536-level filter",
            None,
            [
                sub_slashes.clone(),
                unsubscribe(false, 3, &[slashes.as_bytes()]),
            ]
            .concat(),
            &[0x90, 0xB0],
        ),
        (
            "retained PUBLISH to a 65,536-level topic",
            None,
            retain_slashes.clone(),
            &[0x40],
        ),
        (
            "SUBSCRIBE to # with a 65,536-level retained topic stored",
            Some(&retain_slashes),
            subscribe(false, 9, &[(b"#", 1)], &[]),
            &[0x90],
        ),
    ];
    let mut failures = Vec::new();
    for (what, setup, step, want) in &steps {
        let mut b = anon("");
        let mut keep = None;
        if let Some(setup) = setup {
            let mut other = Client::connected(b.port, &Connect::v311("setup"));
            other.send(setup);
            let got = other.recv_within(S);
            assert!(matches!(got, Got::Packet(_)), "set-up for {what}: {got:?}");
            keep = Some(other); // its subscription stays
        }
        let mut c = Client::connected(b.port, &Connect::v311("deep"));
        c.send(step);
        let mut answers: Vec<String> = Vec::new();
        let mut firsts = Vec::new();
        for _ in 0..want.len() {
            match c.recv_within(Duration::from_secs(3)) {
                Got::Packet(p) => {
                    firsts.push(p[0]);
                    answers.push(hex(&p));
                }
                other => {
                    answers.push(format!("{other:?}"));
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let alive = b.alive();
        if !alive || firsts != *want {
            let log = b.log();
            let tail: Vec<&str> = log.lines().rev().take(2).collect();
            failures.push(format!(
                "{what}: expected packets starting {want:02x?} and a running broker; got {answers:?}; broker {}; log ends {tail:?}",
                if alive { "running" } else { "DEAD" }
            ));
        }
        drop(keep);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
