//! A QoS 1 load generator for `bench/persistence` (not a test): raw MQTT 3.1.1 over loopback
//! with std only, so it measures tern and Mosquitto the same way.
//!
//! ```text
//! qos1_load throughput PORT MESSAGES PAYLOAD WINDOW   # online persistent subscriber
//! qos1_load offline PORT MESSAGES PAYLOAD WINDOW      # subscriber offline, then drains
//! qos1_load fill PORT MESSAGES SESSIONS WINDOW        # SESSIONS offline sessions get MESSAGES each
//! qos1_load drain PORT CLIENT_ID MESSAGES             # resumes a session, receives its messages
//! qos1_load ready PORT TIMEOUT_S                      # waits until a CONNECT gets its CONNACK
//! ```
//! Results are printed as `key=value` lines.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        p.push(b);
        if n == 0 {
            break;
        }
    }
    p.extend_from_slice(body);
    p
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.extend((s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// Reads MQTT packets from a buffered stream.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
    pos: usize,
}

impl Reader {
    fn new(s: TcpStream) -> Self {
        Self {
            s,
            buf: Vec::with_capacity(1 << 16),
            pos: 0,
        }
    }

    /// The next packet's first byte and body.
    fn next(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let avail = &self.buf[self.pos..];
            if avail.len() >= 2 {
                let mut len = 0usize;
                let mut mult = 1;
                let mut i = 1;
                let mut complete = false;
                while i < avail.len() && i <= 4 {
                    len += usize::from(avail[i] & 0x7F) * mult;
                    mult *= 128;
                    i += 1;
                    if avail[i - 1] & 0x80 == 0 {
                        complete = true;
                        break;
                    }
                }
                if complete && avail.len() >= i + len {
                    let first = avail[0];
                    let body = avail[i..i + len].to_vec();
                    self.pos += i + len;
                    return Some((first, body));
                }
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

fn connect(port: u16, id: &str, clean: bool) -> (TcpStream, Reader) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut body = Vec::new();
    string(b"MQTT", &mut body);
    body.push(4);
    body.push(if clean { 2 } else { 0 });
    body.extend(600u16.to_be_bytes());
    string(id.as_bytes(), &mut body);
    let mut w = s.try_clone().unwrap();
    w.write_all(&packet(0x10, &body)).unwrap();
    let mut r = Reader::new(s.try_clone().unwrap());
    let (first, b) = r.next().expect("CONNACK");
    assert!(first == 0x20 && b[1] == 0, "connection refused: {b:?}");
    (w, r)
}

fn subscribe(w: &mut TcpStream, r: &mut Reader, filter: &str) {
    let mut body = vec![0, 1];
    string(filter.as_bytes(), &mut body);
    body.push(1);
    w.write_all(&packet(0x82, &body)).unwrap();
    let (first, _) = r.next().expect("SUBACK");
    assert_eq!(first, 0x90);
}

fn disconnect(mut w: TcpStream) {
    let _ = w.write_all(&[0xE0, 0]);
    std::thread::sleep(Duration::from_millis(50));
}

/// Publishes `n` QoS 1 messages with at most `window` unacknowledged; returns when every
/// PUBACK has arrived.
fn publish(port: u16, topic: &str, n: u64, payload: usize, window: u64) -> Duration {
    let (mut w, mut r) = connect(port, "bench-pub", true);
    let acked = Arc::new(AtomicU64::new(0));
    let a2 = acked.clone();
    let reader = std::thread::spawn(move || {
        let mut got = 0;
        while got < n {
            match r.next() {
                Some((0x40, _)) => {
                    got += 1;
                    a2.store(got, Ordering::Release);
                }
                Some(_) => {}
                None => break,
            }
        }
    });
    let body_payload = vec![b'x'; payload];
    let start = Instant::now();
    let mut out = Vec::with_capacity(1 << 16);
    let mut sent = 0u64;
    while sent < n {
        let can = acked.load(Ordering::Acquire) + window;
        while sent < n && sent < can && out.len() < 60_000 {
            sent += 1;
            let pid = (sent % 65_535 + 1) as u16;
            let mut body = Vec::with_capacity(topic.len() + payload + 4);
            string(topic.as_bytes(), &mut body);
            body.extend(pid.to_be_bytes());
            body.extend_from_slice(&body_payload);
            out.extend(packet(0x32, &body));
        }
        if out.is_empty() {
            std::thread::yield_now();
            continue;
        }
        w.write_all(&out).unwrap();
        out.clear();
    }
    reader.join().unwrap();
    let t = start.elapsed();
    disconnect(w);
    t
}

/// Receives `n` messages as `id` (resuming its session), acknowledging each.
fn receive(port: u16, id: &str, n: u64) -> std::thread::JoinHandle<(u64, Duration)> {
    let (w, mut r) = connect(port, id, false);
    std::thread::spawn(move || {
        let mut w = w;
        let start = Instant::now();
        let mut got = 0;
        let mut acks = Vec::with_capacity(4096);
        r.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        while got < n {
            let Some((first, body)) = r.next() else { break };
            if first & 0xF0 != 0x30 {
                continue;
            }
            got += 1;
            if (first >> 1) & 3 > 0 {
                let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
                acks.extend([0x40, 2, body[2 + tlen], body[3 + tlen]]);
            }
            if acks.len() >= 4096 || got == n || r.pos == r.buf.len() {
                w.write_all(&acks).unwrap();
                acks.clear();
            }
        }
        let t = start.elapsed();
        disconnect(w);
        (got, t)
    })
}

fn setup_sessions(port: u16, prefix: &str, count: usize, filter: &str) {
    for i in 0..count {
        let (mut w, mut r) = connect(port, &format!("{prefix}{i}"), false);
        subscribe(&mut w, &mut r, filter);
        disconnect(w);
    }
}

fn arg<T: std::str::FromStr>(a: &[String], i: usize) -> T {
    a.get(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid; see the usage in the source"))
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let mode = a.get(1).map(String::as_str).unwrap_or("");
    match mode {
        "throughput" => {
            let (port, n, payload, window) = (arg(&a, 2), arg(&a, 3), arg(&a, 4), arg(&a, 5));
            setup_sessions(port, "bench-sub", 1, "bench/#");
            let sub = receive(port, "bench-sub0", n);
            let start = Instant::now();
            let pub_time = publish(port, "bench/t", n, payload, window);
            let (got, _) = sub.join().unwrap();
            let all = start.elapsed();
            println!("published={n} received={got}");
            println!("publish_secs={:.3}", pub_time.as_secs_f64());
            println!("end_to_end_secs={:.3}", all.as_secs_f64());
            println!("msgs_per_sec={:.0}", n as f64 / all.as_secs_f64());
        }
        "offline" => {
            let (port, n, payload, window) = (arg(&a, 2), arg(&a, 3), arg(&a, 4), arg(&a, 5));
            setup_sessions(port, "bench-off", 1, "bench/#");
            let pub_time = publish(port, "bench/t", n, payload, window);
            let (got, drain) = receive(port, "bench-off0", n).join().unwrap();
            println!("published={n} received={got}");
            println!(
                "publish_msgs_per_sec={:.0}",
                n as f64 / pub_time.as_secs_f64()
            );
            println!("drain_msgs_per_sec={:.0}", got as f64 / drain.as_secs_f64());
        }
        "fill" => {
            let (port, n, sessions, window): (u16, u64, usize, u64) =
                (arg(&a, 2), arg(&a, 3), arg(&a, 4), arg(&a, 5));
            setup_sessions(port, "bench-fill", sessions, "fill/#");
            let t = publish(port, "fill/t", n, 64, window);
            println!("stored={}", n * sessions as u64);
            println!("fill_secs={:.3}", t.as_secs_f64());
        }
        "drain" => {
            let (port, id, n): (u16, String, u64) = (arg(&a, 2), arg(&a, 3), arg(&a, 4));
            let (got, t) = receive(port, &id, n).join().unwrap();
            println!("received={got}");
            println!("drain_msgs_per_sec={:.0}", got as f64 / t.as_secs_f64());
        }
        "ready" => {
            let (port, timeout): (u16, u64) = (arg(&a, 2), arg(&a, 3));
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(timeout) {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                    let mut body = Vec::new();
                    string(b"MQTT", &mut body);
                    body.extend([4, 2, 0, 60]);
                    string(b"bench-probe", &mut body);
                    let mut w = s.try_clone().unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(timeout)))
                        .unwrap();
                    if w.write_all(&packet(0x10, &body)).is_ok()
                        && let Some((0x20, _)) = Reader::new(s).next()
                    {
                        println!("ready=1");
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            println!("ready=0");
            std::process::exit(1);
        }
        _ => {
            eprintln!(
                "usage: qos1_load throughput|offline|fill|drain|ready PORT ... (see the source)"
            );
            std::process::exit(2);
        }
    }
}
