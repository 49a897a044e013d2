//! Hand-written MQTT bytes for the security and hardening tests: packet builders that can
//! produce any packet, well formed or not (the broker's own encoder is never used), and a
//! raw client whose every read is bounded and tells a clean close from a reset and a
//! timeout. Also `/proc` readings of the broker process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A variable byte integer (section 1.5.5).
pub fn vbi(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// A two-byte length followed by the bytes (UTF-8 string or binary data).
pub fn s16(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

/// A whole packet: first byte, remaining length, body.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    out.extend(vbi(body.len()));
    out.extend_from_slice(body);
    out
}

/// A 5.0 property block (length + properties) from raw property bytes.
pub fn props(raw: &[u8]) -> Vec<u8> {
    let mut out = vbi(raw.len());
    out.extend_from_slice(raw);
    out
}

/// Property builders (raw bytes, without the block length).
pub mod prop {
    use super::{s16, vbi};
    pub fn byte(id: u8, v: u8) -> Vec<u8> {
        vec![id, v]
    }
    pub fn u16(id: u8, v: u16) -> Vec<u8> {
        let mut o = vec![id];
        o.extend(v.to_be_bytes());
        o
    }
    pub fn u32(id: u8, v: u32) -> Vec<u8> {
        let mut o = vec![id];
        o.extend(v.to_be_bytes());
        o
    }
    pub fn var(id: u8, v: usize) -> Vec<u8> {
        let mut o = vec![id];
        o.extend(vbi(v));
        o
    }
    pub fn str(id: u8, v: &[u8]) -> Vec<u8> {
        let mut o = vec![id];
        o.extend(s16(v));
        o
    }
    pub fn user(k: &[u8], v: &[u8]) -> Vec<u8> {
        let mut o = vec![0x26];
        o.extend(s16(k));
        o.extend(s16(v));
        o
    }
}

/// A will message for [`Connect`].
#[derive(Clone, Debug)]
pub struct Will {
    pub topic: Vec<u8>,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    /// Raw will properties (5.0), without the block length.
    pub props: Vec<u8>,
}

/// A CONNECT packet, every field settable (including to invalid values).
#[derive(Clone, Debug)]
pub struct Connect {
    /// 4 (3.1.1) or 5 (5.0); anything else is sent as is.
    pub level: u8,
    pub protocol_name: Vec<u8>,
    pub client_id: Vec<u8>,
    pub clean: bool,
    pub keep_alive: u16,
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub will: Option<Will>,
    /// Raw CONNECT properties (5.0), without the block length.
    pub props: Vec<u8>,
    /// Extra flag bits OR-ed into the connect flags (bit 0 is reserved).
    pub extra_flags: u8,
    /// First byte of the fixed header (0x10 unless testing reserved flags).
    pub first: u8,
}

impl Connect {
    pub fn v311(id: &str) -> Connect {
        Connect {
            level: 4,
            protocol_name: b"MQTT".to_vec(),
            client_id: id.as_bytes().to_vec(),
            clean: true,
            keep_alive: 60,
            username: None,
            password: None,
            will: None,
            props: Vec::new(),
            extra_flags: 0,
            first: 0x10,
        }
    }

    pub fn v5(id: &str) -> Connect {
        Connect {
            level: 5,
            ..Connect::v311(id)
        }
    }

    /// 3.1.1 or 5.0.
    pub fn new(v5: bool, id: &str) -> Connect {
        if v5 {
            Connect::v5(id)
        } else {
            Connect::v311(id)
        }
    }

    pub fn user(mut self, u: &str, p: &str) -> Connect {
        self.username = Some(u.as_bytes().to_vec());
        self.password = Some(p.as_bytes().to_vec());
        self
    }

    pub fn will(mut self, topic: &str, payload: &str, qos: u8, retain: bool) -> Connect {
        self.will = Some(Will {
            topic: topic.as_bytes().to_vec(),
            payload: payload.as_bytes().to_vec(),
            qos,
            retain,
            props: Vec::new(),
        });
        self
    }

    pub fn persistent(mut self) -> Connect {
        self.clean = false;
        if self.level == 5 {
            // Session expiry: one hour.
            self.props.extend(prop::u32(0x11, 3600));
        }
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let v5 = self.level == 5;
        let mut body = s16(&self.protocol_name);
        body.push(self.level);
        let mut flags = self.extra_flags;
        if self.clean {
            flags |= 0x02;
        }
        if let Some(w) = &self.will {
            flags |= 0x04 | (w.qos << 3);
            if w.retain {
                flags |= 0x20;
            }
        }
        if self.password.is_some() {
            flags |= 0x40;
        }
        if self.username.is_some() {
            flags |= 0x80;
        }
        body.push(flags);
        body.extend(self.keep_alive.to_be_bytes());
        if v5 {
            body.extend(props(&self.props));
        }
        body.extend(s16(&self.client_id));
        if let Some(w) = &self.will {
            if v5 {
                body.extend(props(&w.props));
            }
            body.extend(s16(&w.topic));
            body.extend(s16(&w.payload));
        }
        if let Some(u) = &self.username {
            body.extend(s16(u));
        }
        if let Some(p) = &self.password {
            body.extend(s16(p));
        }
        packet(self.first, &body)
    }
}

/// PUBLISH. `pid` is required for QoS 1/2; `raw_props` only for 5.0.
pub fn publish(
    v5: bool,
    topic: &[u8],
    qos: u8,
    retain: bool,
    pid: u16,
    raw_props: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut body = s16(topic);
    if qos > 0 {
        body.extend(pid.to_be_bytes());
    }
    if v5 {
        body.extend(props(raw_props));
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// SUBSCRIBE with (filter, options byte) pairs.
pub fn subscribe(v5: bool, pid: u16, filters: &[(&[u8], u8)], raw_props: &[u8]) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.extend(props(raw_props));
    }
    for (f, o) in filters {
        body.extend(s16(f));
        body.push(*o);
    }
    packet(0x82, &body)
}

/// UNSUBSCRIBE.
pub fn unsubscribe(v5: bool, pid: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    if v5 {
        body.push(0);
    }
    for f in filters {
        body.extend(s16(f));
    }
    packet(0xA2, &body)
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP (first byte given) with only a packet id.
pub fn ack(first: u8, pid: u16) -> Vec<u8> {
    packet(first, &pid.to_be_bytes())
}

/// What a bounded read saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Packet(Vec<u8>),
    /// EOF: the broker closed the connection.
    Closed,
    /// The connection was reset (also a close, without FIN).
    Reset,
    /// Nothing within the time given.
    Timeout,
}

impl Got {
    /// Closed by the broker, cleanly or by reset.
    pub fn is_close(&self) -> bool {
        matches!(self, Got::Closed | Got::Reset)
    }
}

/// A decoded PUBLISH as a client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub topic: Vec<u8>,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub pid: u16,
}

/// A raw MQTT connection to the broker on 127.0.0.1.
#[derive(Debug)]
pub struct Client {
    pub s: TcpStream,
    pub v5: bool,
}

impl Client {
    /// A TCP connection (no CONNECT sent yet).
    pub fn tcp(port: u16, v5: bool) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        Client { s, v5 }
    }

    /// A TCP connection whose receive buffer is `rcvbuf` bytes (SO_RCVBUF, set before
    /// connecting so the advertised window is small): a client on a slow link.
    pub fn tcp_small_rcvbuf(port: u16, v5: bool, rcvbuf: usize) -> Client {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_recv_buffer_size(rcvbuf).unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        sock.connect(&addr.into()).unwrap();
        let s: TcpStream = sock.into();
        s.set_nodelay(true).unwrap();
        Client { s, v5 }
    }

    /// Connects and sends `c`; returns the client and what came back.
    pub fn open(port: u16, c: &Connect) -> (Client, Got) {
        let mut cl = Client::tcp(port, c.level == 5);
        cl.send(&c.bytes());
        let got = cl.recv_within(Duration::from_secs(5));
        (cl, got)
    }

    /// Connects with `c` and panics unless the CONNACK says success.
    pub fn connected(port: u16, c: &Connect) -> Client {
        let (cl, got) = Client::open(port, c);
        match &got {
            Got::Packet(p) if p[0] == 0x20 && p[3] == 0 => cl,
            other => panic!(
                "CONNECT {:?} expected success, got {other:?}",
                String::from_utf8_lossy(&c.client_id)
            ),
        }
    }

    /// Writes bytes; a write error (the broker closed) is ignored: the next read tells.
    pub fn send(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b);
    }

    /// Half-closes the sending side (EOF for the broker).
    pub fn shutdown_write(&mut self) {
        let _ = self.s.shutdown(Shutdown::Write);
    }

    /// Reads one whole packet, or says why not, within `d`.
    pub fn recv_within(&mut self, d: Duration) -> Got {
        let end = Instant::now() + d;
        let mut first = [0u8; 1];
        match self.read_exact_until(&mut first, end) {
            Ok(()) => {}
            Err(g) => return g,
        }
        let mut out = vec![first[0]];
        let mut len = 0usize;
        let mut mult = 1usize;
        for _ in 0..4 {
            let mut b = [0u8; 1];
            if let Err(g) = self.read_exact_until(&mut b, end + Duration::from_secs(2)) {
                return g;
            }
            out.push(b[0]);
            len += usize::from(b[0] & 0x7F) * mult;
            mult *= 128;
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        if let Err(g) = self.read_exact_until(&mut body, end + Duration::from_secs(5)) {
            return g;
        }
        out.extend(body);
        Got::Packet(out)
    }

    fn read_exact_until(&mut self, buf: &mut [u8], end: Instant) -> Result<(), Got> {
        let mut off = 0;
        while off < buf.len() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Got::Timeout);
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            match self.s.read(&mut buf[off..]) {
                Ok(0) => return Err(Got::Closed),
                Ok(n) => off += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(Got::Timeout);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Got::Reset),
            }
        }
        Ok(())
    }

    /// One packet within 5 s, or a panic saying what came instead.
    pub fn recv(&mut self) -> Vec<u8> {
        match self.recv_within(Duration::from_secs(5)) {
            Got::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// Waits (bounded by `d`) for the broker to close, skipping up to 1,000 packets.
    /// Returns the packets seen before the close, or `None` if it did not close in time.
    pub fn wait_close(&mut self, d: Duration) -> Option<Vec<Vec<u8>>> {
        let end = Instant::now() + d;
        let mut seen = Vec::new();
        for _ in 0..1000 {
            match self.recv_within(end.saturating_duration_since(Instant::now())) {
                Got::Packet(p) => seen.push(p),
                Got::Closed | Got::Reset => return Some(seen),
                Got::Timeout => return None,
            }
        }
        None
    }

    /// SUBSCRIBE to one filter at `qos`; returns the SUBACK's return codes.
    pub fn sub(&mut self, filter: &str, qos: u8) -> Vec<u8> {
        self.send(&subscribe(self.v5, 1, &[(filter.as_bytes(), qos)], &[]));
        let p = self.recv_skipping_publish();
        assert_eq!(p[0], 0x90, "expected SUBACK, got {p:?}");
        suback_codes(self.v5, &p)
    }

    /// Receives packets until one that is not a PUBLISH (QoS 1/2 PUBLISHes are acknowledged).
    pub fn recv_skipping_publish(&mut self) -> Vec<u8> {
        for _ in 0..10_000 {
            let p = self.recv();
            if p[0] >> 4 == 3 {
                self.ack_publish(&p);
                continue;
            }
            return p;
        }
        panic!("only PUBLISH packets");
    }

    /// Acknowledges a received QoS 1 (PUBACK) or QoS 2 (PUBREC; the PUBREL that follows is
    /// answered by [`Client::next_msg`]).
    pub fn ack_publish(&mut self, p: &[u8]) {
        let m = parse_publish(self.v5, p);
        match m.qos {
            1 => self.send(&ack(0x40, m.pid)),
            2 => self.send(&ack(0x50, m.pid)),
            _ => {}
        }
    }

    /// The next application message within `d` (acknowledged; PUBREL answered), or `None`.
    /// Other packets are skipped.
    pub fn next_msg(&mut self, d: Duration) -> Option<Msg> {
        let end = Instant::now() + d;
        for _ in 0..10_000 {
            match self.recv_within(end.saturating_duration_since(Instant::now())) {
                Got::Packet(p) if p[0] >> 4 == 3 => {
                    self.ack_publish(&p);
                    return Some(parse_publish(self.v5, &p));
                }
                Got::Packet(p) if p[0] == 0x62 => {
                    let pid = u16::from_be_bytes([p[2], p[3]]);
                    self.send(&ack(0x70, pid));
                }
                Got::Packet(_) => {}
                _ => return None,
            }
        }
        None
    }

    /// Every message arriving within `d` (stops early after `max`).
    pub fn msgs_for(&mut self, d: Duration, max: usize) -> Vec<Msg> {
        let end = Instant::now() + d;
        let mut out = Vec::new();
        while out.len() < max {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.next_msg(left) {
                Some(m) => out.push(m),
                None => break,
            }
        }
        out
    }

    /// Waits (up to 10 s) until `n` messages arrived, then collects any more that arrive
    /// within `quiet`: the expected ones are not missed on a slow machine, and extra ones
    /// are still seen.
    pub fn expect_msgs(&mut self, n: usize, quiet: Duration) -> Vec<Msg> {
        let mut out = self.msgs_for(Duration::from_secs(10), n);
        out.extend(self.msgs_for(quiet, 1000));
        out
    }

    /// PUBLISH at QoS 0 (no answer expected).
    pub fn pub0(&mut self, topic: &str, payload: &[u8]) {
        self.send(&publish(
            self.v5,
            topic.as_bytes(),
            0,
            false,
            0,
            &[],
            payload,
        ));
    }

    /// PUBLISH at QoS 1 and return the PUBACK's reason code (0 for 3.1.1).
    pub fn pub1(&mut self, topic: &str, payload: &[u8], retain: bool, pid: u16) -> u8 {
        self.send(&publish(
            self.v5,
            topic.as_bytes(),
            1,
            retain,
            pid,
            &[],
            payload,
        ));
        let p = self.recv_skipping_publish();
        assert_eq!(p[0], 0x40, "expected PUBACK, got {p:?}");
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), pid, "{p:?}");
        if p.len() > 4 { p[4] } else { 0 }
    }

    /// PINGREQ answered with PINGRESP within `d` (skipping messages).
    pub fn ping(&mut self, d: Duration) -> bool {
        self.send(&[0xC0, 0]);
        let end = Instant::now() + d;
        for _ in 0..10_000 {
            match self.recv_within(end.saturating_duration_since(Instant::now())) {
                Got::Packet(p) if p == [0xD0, 0] => return true,
                Got::Packet(p) => self.ack_publish_if_publish(&p),
                _ => return false,
            }
        }
        false
    }

    fn ack_publish_if_publish(&mut self, p: &[u8]) {
        if p[0] >> 4 == 3 {
            self.ack_publish(p);
        }
    }
}

/// The return / reason code of a CONNACK (byte 3).
pub fn connack_code(p: &[u8]) -> u8 {
    assert_eq!(p[0], 0x20, "not a CONNACK: {p:?}");
    p[3]
}

/// The return codes of a SUBACK.
pub fn suback_codes(v5: bool, p: &[u8]) -> Vec<u8> {
    let (_, n) = read_vbi(&p[1..]);
    let mut i = 1 + n + 2;
    if v5 {
        let (plen, m) = read_vbi(&p[i..]);
        i += m + plen;
    }
    p[i..].to_vec()
}

fn read_vbi(b: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut mult = 1usize;
    for (i, x) in b.iter().enumerate().take(4) {
        v += usize::from(x & 0x7F) * mult;
        mult *= 128;
        if x & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, 4)
}

/// Decodes a PUBLISH (topic alias and properties skipped).
pub fn parse_publish(v5: bool, p: &[u8]) -> Msg {
    let qos = (p[0] >> 1) & 3;
    let retain = p[0] & 1 == 1;
    let (_, n) = read_vbi(&p[1..]);
    let mut i = 1 + n;
    let tl = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
    let topic = p[i + 2..i + 2 + tl].to_vec();
    i += 2 + tl;
    let mut pid = 0;
    if qos > 0 {
        pid = u16::from_be_bytes([p[i], p[i + 1]]);
        i += 2;
    }
    if v5 {
        let (plen, m) = read_vbi(&p[i..]);
        i += m + plen;
    }
    Msg {
        topic,
        payload: p[i..].to_vec(),
        qos,
        retain,
        pid,
    }
}

/// The reason code of a 5.0 DISCONNECT (0 when it has no body).
pub fn disconnect_reason(p: &[u8]) -> Option<u8> {
    if p[0] != 0xE0 {
        return None;
    }
    Some(if p.len() > 2 { p[2] } else { 0 })
}

/// VmRSS of a process in KiB (from /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Short hex of bytes for messages.
pub fn hex(b: &[u8]) -> String {
    let mut s: String = b
        .iter()
        .take(48)
        .map(|x| format!("{x:02x} "))
        .collect::<String>()
        .trim_end()
        .to_owned();
    if b.len() > 48 {
        s.push_str(&format!(" ... ({} bytes)", b.len()));
    }
    s
}
