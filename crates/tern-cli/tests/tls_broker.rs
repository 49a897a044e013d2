//! "Encryption: TLS listeners and a one-command PKI", checked against the real `tern` binary
//! over loopback: certificates from `tern pki` (and from the tutorial's openssl commands),
//! served by `tern broker` and used by clients nobody on the team wrote (Debian's
//! `mosquitto_sub` / `mosquitto_pub`, `openssl s_client`) plus a small rustls client here that
//! records the TLS records the broker sends.
//!
//! Every test is bounded in time, listens and connects on 127.0.0.1 only and kills what it
//! starts (guards). A missing tool fails the test with the command that installs it; nothing
//! is skipped. Refusals are checked on both sides: what the client shows, and the one plain
//! sentence the broker logs for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Broker, TERN, free_port, free_ports};

const INSTALL: &str = "install it with: apt-get install -y openssl mosquitto mosquitto-clients";

// ------------------------------------------------------------------------------------------
// Tools and processes
// ------------------------------------------------------------------------------------------

/// Fails (never skips) when a required external tool is missing.
fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "required tool `{tool}` is not installed; {INSTALL}");
}

/// What a finished command left: exit code (None when killed at the time limit), stdout,
/// stderr.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    out: String,
    err: String,
}

impl Ran {
    fn all(&self) -> String {
        format!("{}{}", self.out, self.err)
    }
}

/// Runs `program args` with stdin from `input` and a time limit; the process is killed at
/// the limit.
fn run_in(program: &str, args: &[&str], input: &[u8], limit: Duration) -> Ran {
    run_at(None, program, args, input, limit)
}

/// [`run_in`] in directory `cwd`.
fn run_at(cwd: Option<&Path>, program: &str, args: &[&str], input: &[u8], limit: Duration) -> Ran {
    if program != TERN {
        require(program);
    }
    let mut cmd = Command::new(program);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // A writer thread: a child that does not read its stdin must not block the test.
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    };
    let (out, err) = (read_all(Box::new(out)), read_all(Box::new(err)));
    let end = Instant::now() + limit;
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        code,
        out: out.join().unwrap(),
        err: err.join().unwrap(),
    }
}

fn run_cmd(program: &str, args: &[&str], limit: Duration) -> Ran {
    run_in(program, args, b"", limit)
}

/// Runs tern and asserts success.
fn tern(args: &[&str]) -> String {
    let r = run_cmd(TERN, args, Duration::from_secs(120));
    assert_eq!(r.code, Some(0), "tern {args:?} failed: {r:?}");
    r.out
}

/// A background process whose stdout lines are collected; killed on drop.
struct Bg {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<String>>,
    /// The readers of stdout and stderr, joined once the process has exited so that
    /// everything it printed is in `lines` / `err`.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Bg {
    fn spawn(program: &str, args: &[&str]) -> Bg {
        if program != TERN {
            require(program);
        }
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let out = child.stdout.take().unwrap();
        let r1 = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        let err = Arc::new(Mutex::new(String::new()));
        let e = err.clone();
        let mut stderr = child.stderr.take().unwrap();
        let r2 = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            e.lock().unwrap().push_str(&String::from_utf8_lossy(&v));
        });
        Bg {
            child,
            lines,
            err,
            readers: vec![r1, r2],
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until a stdout line satisfies `f` (bounded).
    fn wait_line(&self, within: Duration, f: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(l) = self.lines().into_iter().find(|l| f(l)) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits for the process to exit (bounded); its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                // The pipes close with the process: read what is left.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The log without its debug lines (for failure messages).
fn info_lines(log: &str) -> String {
    log.lines()
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many lines of `log` contain `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// The peer address a log line is about (`peer=127.0.0.1:PORT`).
fn peer_of(line: &str) -> Option<&str> {
    line.rsplit_once("peer=")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""))
}

/// Waits for `needle` in the broker log, then a little more so a duplicate would show, and
/// checks that each failed connection was explained exactly once: every `TLS handshake
/// failed` line names a different peer. (A client may try more than once; libmosquitto
/// sometimes reconnects. Each attempt is its own failure.) Returns the lines with `needle`.
fn failures_logged_once(b: &Broker, needle: &str) -> Vec<String> {
    assert!(
        b.wait_log(needle, Duration::from_secs(5)),
        "the broker did not log {needle:?}; log:\n{}",
        info_lines(&b.log())
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = b.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS handshake failed"))
        .collect();
    let mut peers: Vec<&str> = failures.iter().map(|l| peer_of(l).unwrap_or("?")).collect();
    let n = peers.len();
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(
        peers.len(),
        n,
        "each failed handshake should be logged once: {failures:#?}"
    );
    failures
        .iter()
        .filter(|l| l.contains(needle))
        .map(|l| (*l).to_owned())
        .collect()
}

/// [`failures_logged_once`], and every failure logged is this one.
fn assert_logged_once(b: &Broker, needle: &str) {
    let lines = failures_logged_once(b, needle);
    let all = count(&b.log(), "TLS handshake failed");
    assert_eq!(
        lines.len(),
        all,
        "every failed handshake should be explained as {needle:?}:\n{}",
        info_lines(&b.log())
    );
}

// ------------------------------------------------------------------------------------------
// Certificates
// ------------------------------------------------------------------------------------------

/// A PKI directory made with `tern pki ca` and `tern pki server` (localhost, 127.0.0.1).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let p = Pki { dir };
        tern(&["pki", "ca", "--dir", s(&p.root())]);
        tern(&[
            "pki",
            "server",
            "--dir",
            s(&p.root()),
            "--host",
            "localhost",
            "--ip",
            "127.0.0.1",
        ]);
        p
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// `tern pki client NAME`: (cert, key).
    fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        tern(&["pki", "client", name, "--dir", s(&self.root())]);
        (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        )
    }

    fn signer(&self) -> tern_pki::CaSigner {
        tern_pki::PkiDir::new(self.root()).load_ca().unwrap()
    }

    /// A client certificate issued through tern-pki's API as if `now` were the time:
    /// (cert, key) files named NAME.crt / NAME.key.
    fn client_at(&self, name: &str, now: time::OffsetDateTime, days: u32) -> (PathBuf, PathBuf) {
        let made = tern_pki::client(
            &self.signer(),
            name,
            &tern_pki::ClientOptions {
                now,
                days,
                ..tern_pki::ClientOptions::default()
            },
        )
        .unwrap();
        self.write_pair(name, &made)
    }

    /// A server certificate (localhost, 127.0.0.1) issued as if `now` were the time.
    fn server_at(&self, name: &str, now: time::OffsetDateTime, days: u32) -> (PathBuf, PathBuf) {
        let made = tern_pki::server(
            &self.signer(),
            &tern_pki::ServerOptions {
                hosts: vec!["localhost".into()],
                ips: vec!["127.0.0.1".parse().unwrap()],
                now,
                days,
                ..tern_pki::ServerOptions::default()
            },
        )
        .unwrap();
        self.write_pair(name, &made)
    }

    fn write_pair(&self, name: &str, made: &tern_pki::Issued) -> (PathBuf, PathBuf) {
        let (c, k) = (
            self.path(&format!("{name}.crt")),
            self.path(&format!("{name}.key")),
        );
        std::fs::write(&c, &made.cert_pem).unwrap();
        std::fs::write(&k, &made.key_pem).unwrap();
        (c, k)
    }

    /// A TLS listener on `port` serving `STEM.crt` / `STEM.key`, with the CA as cafile.
    fn listener(&self, port: u16, stem: &str, extra: &str) -> String {
        format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n{extra}",
            s(&self.ca()),
            s(&self.path(&format!("{stem}.crt"))),
            s(&self.path(&format!("{stem}.key"))),
        )
    }
}

/// Runs openssl in `dir` and asserts success.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let r = run_at(Some(dir), "openssl", args, b"", Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "openssl {args:?} failed: {r:?}");
    r.out
}

/// The serial of the first certificate in PEM `text`, as `openssl x509 -serial` prints it.
fn serial_of_pem(dir: &Path, text: &str) -> String {
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .unwrap_or_else(|| panic!("no certificate in:\n{text}"));
    let end = text[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    let f = dir.join(format!("served-{}.pem", rand::random::<u32>()));
    std::fs::write(&f, &text[begin..end]).unwrap();
    let out = openssl(dir, &["x509", "-noout", "-serial", "-in", s(&f)]);
    out.trim().trim_start_matches("serial=").to_owned()
}

fn serial_of_file(dir: &Path, cert: &Path) -> String {
    serial_of_pem(dir, &std::fs::read_to_string(cert).unwrap())
}

/// `openssl s_client` to 127.0.0.1:port with `extra` options; stdin is empty so it ends
/// after the handshake.
fn s_client(port: u16, extra: &[&str]) -> Ran {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec!["s_client", "-connect", &connect];
    args.extend_from_slice(extra);
    run_in("openssl", &args, b"", Duration::from_secs(20))
}

/// The serial of the certificate a new TLS handshake on `port` is served.
fn served_serial(dir: &Path, port: u16, ca: &Path) -> String {
    let r = s_client(
        port,
        &["-showcerts", "-CAfile", s(ca), "-servername", "localhost"],
    );
    serial_of_pem(dir, &r.out)
}

// ------------------------------------------------------------------------------------------
// Mosquitto's clients
// ------------------------------------------------------------------------------------------

/// `mosquitto_sub -h HOST -p PORT -t TOPIC -C 1 -W 10 EXTRA...` in the background.
fn mosq_sub(host: &str, port: u16, topic: &str, extra: &[&str]) -> Bg {
    let p = port.to_string();
    let mut args = vec!["-h", host, "-p", &p, "-t", topic, "-C", "1", "-W", "10"];
    args.extend_from_slice(extra);
    Bg::spawn("mosquitto_sub", &args)
}

/// `mosquitto_pub -h HOST -p PORT -t TOPIC -m MSG EXTRA...`.
fn mosq_pub(host: &str, port: u16, topic: &str, msg: &str, extra: &[&str]) -> Ran {
    let p = port.to_string();
    let mut args = vec!["-h", host, "-p", &p, "-t", topic, "-m", msg];
    args.extend_from_slice(extra);
    run_cmd("mosquitto_pub", &args, Duration::from_secs(20))
}

/// Publishes `msg` retained (so it also reaches a subscription made later) and waits for
/// the subscriber to print it and exit.
fn round_trip(host: &str, port: u16, topic: &str, msg: &str, sub: &[&str], publ: &[&str]) {
    let mut sub_p = mosq_sub(host, port, topic, sub);
    let mut pub_args = vec!["-r"];
    pub_args.extend_from_slice(publ);
    let p = mosq_pub(host, port, topic, msg, &pub_args);
    assert_eq!(p.code, Some(0), "mosquitto_pub over TLS failed: {p:?}");
    let code = sub_p.wait_exit(Duration::from_secs(15));
    assert_eq!(
        sub_p.lines(),
        vec![msg.to_owned()],
        "mosquitto_sub exit {code:?}, stderr: {}",
        sub_p.stderr()
    );
    assert_eq!(code, Some(0));
}

// ------------------------------------------------------------------------------------------
// A small rustls client that records every byte the broker sends
// ------------------------------------------------------------------------------------------

/// The socket under rustls: keeps a copy of everything read, to split into TLS records.
struct Recorder {
    s: TcpStream,
    got: Vec<u8>,
}

impl Read for Recorder {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = self.s.read(b)?;
        self.got.extend_from_slice(&b[..n]);
        Ok(n)
    }
}

impl Write for Recorder {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.s.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// Which TLS a [`TlsMqtt`] offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Offer {
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 only, ECDHE-ECDSA-AES128-GCM-SHA256 only (what an ESP8266 may offer).
    Tls12EcdsaAes128Gcm,
}

/// MQTT 3.1.1 over a rustls connection that trusts one CA.
struct TlsMqtt {
    conn: rustls::ClientConnection,
    sock: Recorder,
}

impl TlsMqtt {
    fn connect(port: u16, ca: &Path, offer: Offer) -> Result<TlsMqtt, String> {
        use rustls::crypto::ring::{cipher_suite, default_provider};
        let mut roots = rustls::RootCertStore::empty();
        for c in tern_pki::load_certs(&std::fs::read(ca).unwrap()).unwrap() {
            roots.add(c).unwrap();
        }
        let (suites, versions): (Vec<_>, &[&rustls::SupportedProtocolVersion]) = match offer {
            Offer::Tls13 => (default_provider().cipher_suites, &[&rustls::version::TLS13]),
            Offer::Tls12EcdsaAes128Gcm => (
                vec![cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
                &[&rustls::version::TLS12],
            ),
        };
        let provider = rustls::crypto::CryptoProvider {
            cipher_suites: suites,
            ..default_provider()
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sock = Recorder { s, got: Vec::new() };
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        let mut c = TlsMqtt { conn, sock };
        c.send(&connect_v311("tls-recorder"));
        let ack = c.recv().ok_or("no CONNACK")?;
        if ack != [0x20, 2, 0, 0] {
            return Err(format!("CONNACK {ack:02x?}"));
        }
        Ok(c)
    }

    fn send(&mut self, bytes: &[u8]) {
        let mut st = rustls::Stream::new(&mut self.conn, &mut self.sock);
        st.write_all(bytes).unwrap();
        st.flush().unwrap();
    }

    /// One whole MQTT packet; `None` on EOF, error or the 5 s read timeout.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut st = rustls::Stream::new(&mut self.conn, &mut self.sock);
        let mut first = [0u8; 1];
        st.read_exact(&mut first).ok()?;
        let mut out = vec![first[0]];
        let (mut len, mut mult) = (0usize, 1usize);
        loop {
            let mut b = [0u8; 1];
            st.read_exact(&mut b).ok()?;
            out.push(b[0]);
            len += usize::from(b[0] & 0x7f) * mult;
            mult *= 128;
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        st.read_exact(&mut body).ok()?;
        out.extend(body);
        Some(out)
    }

    /// Subscribes at QoS 0 and checks the SUBACK.
    fn subscribe(&mut self, topic: &str) {
        let mut p = vec![0, 1];
        p.extend(str16(topic));
        p.push(0);
        self.send(&packet(0x82, &p));
        let ack = self.recv().expect("SUBACK");
        assert_eq!(ack, [0x90, 3, 0, 1, 0], "SUBACK");
    }

    /// The next PUBLISH: (topic, payload).
    fn next_publish(&mut self) -> Option<(String, Vec<u8>)> {
        loop {
            let p = self.recv()?;
            if p[0] >> 4 != 3 {
                continue;
            }
            let mut i = 1;
            while p[i] & 0x80 != 0 {
                i += 1;
            }
            i += 1;
            let tl = usize::from(u16::from_be_bytes([p[i], p[i + 1]]));
            let topic = String::from_utf8_lossy(&p[i + 2..i + 2 + tl]).into_owned();
            let mut rest = i + 2 + tl;
            if (p[0] >> 1) & 3 > 0 {
                rest += 2;
            }
            return Some((topic, p[rest..].to_vec()));
        }
    }

    /// The TLS records the broker sent so far: (content type, length of the record body).
    fn records(&self) -> Vec<(u8, usize)> {
        let mut out = Vec::new();
        let g = &self.sock.got;
        let mut i = 0;
        while i + 5 <= g.len() {
            let len = usize::from(u16::from_be_bytes([g[i + 3], g[i + 4]]));
            out.push((g[i], len));
            i += 5 + len;
        }
        out
    }
}

fn str16(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn connect_v311(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend(str16(id));
    packet(0x10, &body)
}

/// Splits a printed shell command into words (single and double quotes, no escapes).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for ch in line.chars() {
        match quote {
            Some(q) if ch == q => quote = None,
            Some(_) => cur.push(ch),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                in_word = true;
            }
            None if ch.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(ch);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

fn anon_tls(pki: &Pki, port: u16, extra: &str) -> String {
    format!(
        "allow_anonymous true\n{}",
        pki.listener(port, "server", extra)
    )
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

// ==========================================================================================
// 1. Mosquitto's clients (paho-mqtt: tests/python/test_tls.py) with tern's PKI
// ==========================================================================================

#[test]
fn mosquitto_clients_with_cafile_over_tls_v311_and_v5() {
    let pki = Pki::new();
    let port = free_port();
    let b = Broker::with_config(&anon_tls(&pki, port, ""));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    round_trip(
        "localhost",
        port,
        "tls/v311",
        "Hello MQTT",
        &["--cafile", ca],
        &["--cafile", ca],
    );
    round_trip(
        "127.0.0.1",
        port,
        "tls/v5",
        "Hello MQTT 5",
        &["--cafile", ca, "-V", "mqttv5"],
        &["--cafile", ca, "-V", "mqttv5"],
    );
    let log = b.log();
    assert!(
        !log.contains("tern: warning"),
        "tern's own certificate needs no warning:\n{log}"
    );
    assert!(!log.contains("TLS handshake failed"), "{log}");
}

// ==========================================================================================
// 2. The tutorial's openssl-made certificates
// ==========================================================================================

/// The tutorial's six openssl commands, exactly, made non-interactive with -subj. The server
/// certificate's CN is `cn` (the tutorial's `-h myhostname.com`).
fn tutorial_pki(dir: &Path, cn: &str) {
    openssl(dir, &["genrsa", "-out", "ca.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "3650",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/C=BH/ST=Manama/L=Manama/O=Grasspalm/OU=Grasspalm-IOT/CN=gb.grasspalm.com/emailAddress=info@grasspalm.com",
        ],
    );
    openssl(dir, &["genrsa", "-out", "server.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-out",
            "server.csr",
            "-key",
            "server.key",
            "-subj",
            &format!("/C=BH/O=Grasspalm/CN={cn}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
        ],
    );
}

#[test]
fn tutorial_certificate_is_served_with_one_sentence_and_the_reissue_command() {
    let d = tempfile::tempdir().unwrap();
    tutorial_pki(d.path(), "localhost");
    let port = free_port();
    // The tutorial's mosquitto.conf lines.
    let b = Broker::with_config(&format!(
        "listener {port} 127.0.0.1\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\nallow_anonymous true\n",
        d.path().display()
    ));
    let log = b.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("tern: warning:"))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "tern: warning: server.crt is an X.509 v1 certificate with no subjectAltName, so strict TLS clients will refuse it; reissue it with: tern pki server --host localhost"
        ],
        "one plain sentence at start-up; log:\n{log}"
    );
    // libmosquitto falls back to the CN: the tutorial's test commands work.
    let ca = format!("{}/ca.crt", d.path().display());
    round_trip(
        "localhost",
        port,
        "test",
        "Hello MQTT",
        &["--cafile", &ca],
        &["--cafile", &ca],
    );
}

#[test]
fn tutorial_certificate_pinned_by_sha1_with_tern_sub() {
    let d = tempfile::tempdir().unwrap();
    tutorial_pki(d.path(), "localhost");
    let port = free_port();
    let _b = Broker::with_config(&format!(
        "listener {port} 127.0.0.1\ncafile {0}/ca.crt\ncertfile {0}/server.crt\nkeyfile {0}/server.key\nallow_anonymous true\n",
        d.path().display()
    ));
    // The tutorial's fingerprint command.
    let fp = openssl(
        d.path(),
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha1",
            "-inform",
            "pem",
            "-in",
            "server.crt",
        ],
    );
    let sha1 = fp.trim().split_once('=').unwrap().1.to_owned();
    assert_eq!(sha1.len(), 59, "{fp}");
    let p = port.to_string();
    let mut sub = Bg::spawn(
        TERN,
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "--fingerprint",
            &sha1,
            "-t",
            "pin/t",
            "-C",
            "1",
            "-W",
            "10",
        ],
    );
    let ca = format!("{}/ca.crt", d.path().display());
    let r = mosq_pub(
        "localhost",
        port,
        "pin/t",
        "pinned",
        &["--cafile", &ca, "-r"],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let code = sub.wait_exit(Duration::from_secs(15));
    assert_eq!(sub.lines(), vec!["pinned"], "stderr: {}", sub.stderr());
    assert_eq!(code, Some(0));
    // A wrong pin is refused.
    let wrong = sha1.replace(|c: char| c.is_ascii_hexdigit(), "0");
    let r = run_cmd(
        TERN,
        &[
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &p,
            "--fingerprint",
            &wrong,
            "-t",
            "pin/t",
            "-C",
            "1",
            "-W",
            "5",
        ],
        Duration::from_secs(15),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.out.is_empty(), "{r:?}");
}

// ==========================================================================================
// 3. TLS 1.2 with an ESP8266-like cipher list; tls_max_fragment_size
// ==========================================================================================

#[test]
fn tls12_esp8266_ciphers_with_rsa_and_ecdsa_certificates() {
    let pki = Pki::new();
    tern(&[
        "pki",
        "server",
        "--dir",
        s(&pki.root()),
        "--host",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--key",
        "rsa-2048",
        "--name",
        "rsa",
    ]);
    let [rsa, ec] = free_ports();
    let _b = Broker::with_config(&format!(
        "allow_anonymous true\n{}{}",
        pki.listener(rsa, "rsa", ""),
        pki.listener(ec, "server", "")
    ));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    for (port, cipher, key) in [
        (
            rsa,
            "ECDHE-RSA-AES128-GCM-SHA256",
            "Server public key is 2048 bit",
        ),
        (
            rsa,
            "ECDHE-RSA-CHACHA20-POLY1305",
            "Server public key is 2048 bit",
        ),
        (
            ec,
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "Server public key is 256 bit",
        ),
    ] {
        let r = s_client(
            port,
            &[
                "-tls1_2",
                "-cipher",
                cipher,
                "-CAfile",
                ca,
                "-verify_return_error",
                "-servername",
                "localhost",
            ],
        );
        let out = r.all();
        assert!(
            out.contains(&format!("New, TLSv1.2, Cipher is {cipher}")),
            "{cipher}: {out}"
        );
        assert!(out.contains("    Protocol  : TLSv1.2"), "{out}");
        assert!(out.contains(&format!("    Cipher    : {cipher}")), "{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(out.contains(key), "{out}");
        // And MQTT over exactly that: mosquitto's clients limited the same way.
        let tls = [
            "--cafile",
            ca,
            "--tls-version",
            "tlsv1.2",
            "--ciphers",
            cipher,
        ];
        round_trip(
            "localhost",
            port,
            &format!("esp/{port}/{cipher}"),
            cipher,
            &tls,
            &tls,
        );
    }
}

#[test]
fn tls_max_fragment_size_1024_bounds_every_record_the_broker_sends() {
    let pki = Pki::new();
    let [small, full, plain] = free_ports();
    let _b = Broker::with_config(&format!(
        "allow_anonymous true\nlistener {plain} 127.0.0.1\n{}{}",
        pki.listener(small, "server", "tls_max_fragment_size 1024\n"),
        pki.listener(full, "server", "")
    ));
    // A 10 KB retained message.
    let payload: String = (0..10_240)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let r = mosq_pub("127.0.0.1", plain, "big/retained", &payload, &["-r"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let ca = pki.ca();
    // Plaintext = record body minus the AEAD overhead: TLS 1.2 AES-GCM adds an 8-byte
    // explicit nonce and a 16-byte tag, TLS 1.3 a 16-byte tag and the inner content type.
    for (offer, overhead) in [(Offer::Tls12EcdsaAes128Gcm, 24), (Offer::Tls13, 17)] {
        let mut c = TlsMqtt::connect(small, &ca, offer).unwrap();
        c.subscribe("big/retained");
        let (topic, got) = c.next_publish().expect("the retained 10 KB message");
        assert_eq!(topic, "big/retained");
        assert_eq!(got, payload.as_bytes(), "{offer:?}");
        let records = c.records();
        let plain_sizes: Vec<usize> = records
            .iter()
            .map(|&(t, len)| if t == 23 { len - overhead } else { len })
            .collect();
        let app = records.iter().filter(|r| r.0 == 23).count();
        assert!(
            plain_sizes.iter().all(|&n| n <= 1024),
            "{offer:?}: records larger than 1024 bytes of plaintext: {records:?}"
        );
        assert!(app >= 10, "{offer:?}: 10 KB in {app} records: {records:?}");
    }
    // The same message without the option comes in larger records: the measurement sees
    // record sizes.
    let mut c = TlsMqtt::connect(full, &ca, Offer::Tls12EcdsaAes128Gcm).unwrap();
    c.subscribe("big/retained");
    assert_eq!(c.next_publish().unwrap().1, payload.as_bytes());
    let records = c.records();
    assert!(
        records.iter().any(|&(t, len)| t == 23 && len - 24 > 1024),
        "without tls_max_fragment_size: {records:?}"
    );
}

// ==========================================================================================
// 4. Refusals: what the client sees, and one plain sentence in the broker log
// ==========================================================================================

#[test]
fn refused_client_with_another_ca() {
    let pki = Pki::new();
    let other = tempfile::tempdir().unwrap();
    tern(&["pki", "ca", "--dir", s(other.path()), "--cn", "Other CA"]);
    let port = free_port();
    let b = Broker::with_config(&anon_tls(&pki, port, ""));
    let other_ca = other.path().join("ca.crt");
    let r = mosq_pub("localhost", port, "t", "x", &["--cafile", s(&other_ca)]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.err.contains("TLS error"), "{r:?}");
    assert_logged_once(
        &b,
        "TLS handshake failed: the client does not trust the broker's certificate (unknown CA): give the client the CA that signed it (ca.crt)",
    );
}

#[test]
fn refused_expired_server_certificate() {
    let pki = Pki::new();
    // Valid for 825 days from 900 days ago: expired 75 days ago.
    pki.server_at("expired", now() - days(900), 825);
    let port = free_port();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\n{}",
        pki.listener(port, "expired", "")
    ));
    // The broker says so at start-up...
    let log = b.log();
    assert!(
        log.contains("tern: warning: expired.crt expired on ")
            && log.contains("so every TLS client will refuse it; reissue it with: tern pki server --host localhost --ip 127.0.0.1"),
        "{log}"
    );
    // ...the client sees the expiry...
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    let r = s_client(
        port,
        &[
            "-CAfile",
            ca,
            "-verify_return_error",
            "-servername",
            "localhost",
        ],
    );
    assert!(r.all().contains("certificate has expired"), "{r:?}");
    // ...and the broker logs the client's alert in plain words, once.
    let needle = "TLS handshake failed: the client says the broker's certificate has expired (or the client's clock is wrong)";
    assert_logged_once(&b, needle);
    // tern's own client says it in plain words too.
    let r = run_cmd(
        TERN,
        &[
            "pub",
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            ca,
            "-t",
            "t",
            "-m",
            "x",
        ],
        Duration::from_secs(20),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.err.contains("expired"), "{r:?}");
}

/// A listener that requires client certificates; the broker and the port.
fn mtls_broker(pki: &Pki, extra: &str) -> (Broker, u16) {
    let port = free_port();
    let b = Broker::with_config(&anon_tls(
        pki,
        port,
        &format!("require_certificate true\n{extra}"),
    ));
    (b, port)
}

fn client_tls(pki: &Pki, cert: &Path, key: &Path) -> Vec<String> {
    vec![
        "--cafile".into(),
        s(&pki.ca()).into(),
        "--cert".into(),
        s(cert).into(),
        "--key".into(),
        s(key).into(),
    ]
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The explanation of the refusal in the log, and that it is plain words: no Rust debug
/// formatting, no unfilled placeholder.
fn assert_plain_words(b: &Broker, prefix: &str) -> String {
    let lines = failures_logged_once(b, prefix);
    for line in &lines {
        for debug in ["Context {", "UnixTime(", "Some("] {
            assert!(
                !line.contains(debug),
                "the explanation should be plain words, not {debug:?}: {line}"
            );
        }
    }
    lines[0].clone()
}

#[test]
fn refused_expired_client_certificate() {
    let pki = Pki::new();
    let (c, k) = pki.client_at("old-device", now() - days(900), 825);
    let (b, port) = mtls_broker(&pki, "");
    let r = mosq_pub(
        "localhost",
        port,
        "t",
        "x",
        &as_strs(&client_tls(&pki, &c, &k)),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    let line = assert_plain_words(
        &b,
        "TLS handshake failed: the client certificate expired on",
    );
    assert!(
        line.contains("issue a new one with `tern pki client <device name>`")
            && line.contains("UTC (the broker's clock says"),
        "{line}"
    );
}

#[test]
fn refused_not_yet_valid_client_certificate() {
    let pki = Pki::new();
    // Issued "30 days from now": notBefore is 29 days ahead.
    let (c, k) = pki.client_at("early-device", now() + days(30), 825);
    let (b, port) = mtls_broker(&pki, "");
    let r = mosq_pub(
        "localhost",
        port,
        "t",
        "x",
        &as_strs(&client_tls(&pki, &c, &k)),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    let line = assert_plain_words(
        &b,
        "TLS handshake failed: the client certificate is not valid until",
    );
    assert!(line.contains("check the clocks"), "{line}");
}

#[test]
fn valid_client_certificate_is_accepted() {
    let pki = Pki::new();
    let (c, k) = pki.client("good-device");
    let (b, port) = mtls_broker(&pki, "");
    let tls = client_tls(&pki, &c, &k);
    round_trip(
        "localhost",
        port,
        "mtls/t",
        "hello",
        &as_strs(&tls),
        &as_strs(&tls),
    );
    assert!(!b.log().contains("TLS handshake failed"), "{}", b.log());
}

/// A broker serving a certificate for broker.example.com only; (broker, port).
fn wrong_name_broker(pki: &Pki) -> (Broker, u16) {
    tern(&[
        "pki",
        "server",
        "--dir",
        s(&pki.root()),
        "--host",
        "broker.example.com",
        "--name",
        "named",
    ]);
    let port = free_port();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\n{}",
        pki.listener(port, "named", "")
    ));
    (b, port)
}

const WRONG_NAME: &str = "TLS handshake failed: the client refused the broker's certificate (wrong host name, no subjectAltName or not trusted); check it with tern doctor";

#[test]
fn refused_wrong_host_name_openssl_and_tern_clients() {
    let pki = Pki::new();
    let (b, port) = wrong_name_broker(&pki);
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    // OpenSSL's own host name check: "localhost" is not in the certificate's names.
    let r = s_client(
        port,
        &[
            "-CAfile",
            ca,
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
        ],
    );
    assert!(r.all().contains("hostname mismatch"), "{r:?}");
    assert_logged_once(&b, WRONG_NAME);
    // tern's client names the mismatch and the fix.
    let r = run_cmd(
        TERN,
        &[
            "pub",
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            ca,
            "-t",
            "t",
            "-m",
            "x",
        ],
        Duration::from_secs(20),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        r.err
            .contains("the broker's certificate is for 'broker.example.com', not 'localhost'"),
        "{r:?}"
    );
}

/// libmosquitto checks the host name in its own verify callback and ends the handshake
/// with an internal_error alert: the broker should still point at the certificate.
#[test]
fn refused_wrong_host_name_mosquitto_client() {
    let pki = Pki::new();
    let (b, port) = wrong_name_broker(&pki);
    let r = mosq_pub("localhost", port, "t", "x", &["--cafile", s(&pki.ca())]);
    assert_ne!(r.code, Some(0), "{r:?}");
    for line in failures_logged_once(&b, "TLS handshake failed") {
        assert!(
            line.contains("certificate") && !line.contains("InternalError"),
            "a plain-words explanation pointing at the broker's certificate (host name, CA) was expected: {line}"
        );
    }
}

#[test]
fn refused_missing_client_certificate() {
    let pki = Pki::new();
    let (b, port) = mtls_broker(&pki, "");
    let r = mosq_pub("localhost", port, "t", "x", &["--cafile", s(&pki.ca())]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert_logged_once(
        &b,
        "TLS handshake failed: the client sent no certificate, but require_certificate is true",
    );
}

#[test]
fn refused_revoked_client_certificate() {
    let pki = Pki::new();
    let (gc, gk) = pki.client("kept-device");
    let (rc, rk) = pki.client("stolen-device");
    let out = tern(&["pki", "revoke", "stolen-device", "--dir", s(&pki.root())]);
    assert!(pki.path("ca.crl").exists(), "{out}");
    let (b, port) = mtls_broker(&pki, &format!("crlfile {}\n", s(&pki.path("ca.crl"))));
    let good = client_tls(&pki, &gc, &gk);
    round_trip(
        "localhost",
        port,
        "crl/t",
        "still here",
        &as_strs(&good),
        &as_strs(&good),
    );
    let r = mosq_pub(
        "localhost",
        port,
        "t",
        "x",
        &as_strs(&client_tls(&pki, &rc, &rk)),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert_logged_once(
        &b,
        "TLS handshake failed: the client certificate is revoked (crlfile)",
    );
}

#[test]
fn refused_plain_mqtt_on_the_tls_port() {
    let pki = Pki::new();
    let port = free_port();
    let b = Broker::with_config(&anon_tls(&pki, port, ""));
    let needle = "TLS handshake failed: the client sent plain MQTT to a TLS port; connect to the plain port, or enable TLS in the client (e.g. --cafile ca.crt)";
    let r = mosq_pub("localhost", port, "t", "x", &[]);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert_logged_once(&b, needle);
    // One connection sending a plain CONNECT: closed without a CONNACK, one line for it.
    let mut raw = common::Raw::connect(port);
    let me = raw.s.local_addr().unwrap().to_string();
    raw.send(&connect_v311("plain-on-tls"));
    assert!(raw.closed(), "the broker should close the connection");
    assert!(
        b.wait_log(&format!("peer={me}"), Duration::from_secs(5)),
        "{}",
        info_lines(&b.log())
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = b.log();
    let mine: Vec<&str> = log
        .lines()
        .filter(|l| peer_of(l) == Some(me.as_str()) && l.contains(" INFO "))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:#?}");
    assert!(mine[0].contains(needle), "{}", mine[0]);
}

#[test]
fn refused_tls12_client_on_a_tls13_listener() {
    let pki = Pki::new();
    let port = free_port();
    let b = Broker::with_config(&anon_tls(&pki, port, "tls_version tlsv1.3\n"));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    let r = s_client(
        port,
        &["-tls1_2", "-CAfile", ca, "-servername", "localhost"],
    );
    assert!(
        r.all().contains("alert protocol version") && !r.all().contains("New, TLSv1.2"),
        "{r:?}"
    );
    assert_logged_once(
        &b,
        "TLS handshake failed: protocol version mismatch: the client offers only TLS versions this listener does not accept (tls_version)",
    );
    // TLS 1.3 clients are served.
    let tls = ["--cafile", ca, "--tls-version", "tlsv1.3"];
    round_trip("localhost", port, "v13/t", "ok", &tls, &tls);
}

/// TLS 1.2 with a cipher the listener does not offer: `ciphers` limits TLS 1.2 to one
/// ECDSA suite and the client asks for another; and a listener whose `ciphers` lists only an
/// RSA suite while its certificate has an ECDSA key can serve no TLS 1.2 client at all, which
/// start-up warns about at the ciphers line (the matching one-suite listener gets no warning).
#[test]
fn refused_tls12_client_whose_ciphers_the_listener_does_not_offer() {
    let pki = Pki::new();
    let [one_suite, rsa_only] = free_ports();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\n{}{}",
        pki.listener(
            one_suite,
            "server",
            "ciphers ECDHE-ECDSA-AES128-GCM-SHA256\n"
        ),
        pki.listener(rsa_only, "server", "ciphers ECDHE-RSA-AES128-GCM-SHA256\n"),
    ));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    // allow_anonymous, then five lines per listener: rsa_only's ciphers is line 11.
    let warning = format!(
        "tern: warning: {}:11: ciphers offers no TLS 1.2 suite for the ECDSA key of the certificate {}, so no TLS 1.2 client can connect; add ECDHE-ECDSA suites to ciphers (e.g. ECDHE-ECDSA-AES128-GCM-SHA256), remove the ciphers line, or serve a certificate whose key type matches the suites",
        s(&b.path("tern.conf")),
        s(&pki.path("server.crt"))
    );
    assert_eq!(
        count(&b.log(), &warning),
        1,
        "one start-up warning, for the RSA-only listener:\n{}",
        b.log()
    );
    assert_eq!(
        count(&b.log(), "ciphers offers no TLS 1.2 suite"),
        1,
        "no warning for the listener whose suite matches its key:\n{}",
        b.log()
    );
    let needle = "TLS handshake failed: no cipher suite in common with the client (check ciphers / ciphers_tls1.3";
    for (port, cipher) in [
        (one_suite, "ECDHE-ECDSA-AES256-GCM-SHA384"),
        (rsa_only, "ECDHE-RSA-AES128-GCM-SHA256"),
    ] {
        let r = s_client(
            port,
            &[
                "-tls1_2",
                "-cipher",
                cipher,
                "-CAfile",
                ca,
                "-servername",
                "localhost",
            ],
        );
        assert!(
            r.all().contains("alert handshake failure") && !r.all().contains("New, TLSv1.2"),
            "{cipher} on port {port}: {r:?}"
        );
    }
    assert_logged_once(&b, needle);
    assert_eq!(
        count(&b.log(), needle),
        2,
        "one line per refused client:\n{}",
        info_lines(&b.log())
    );
    // The suite the listener offers works.
    let r = s_client(
        one_suite,
        &[
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "-CAfile",
            ca,
            "-verify_return_error",
            "-servername",
            "localhost",
        ],
    );
    assert!(
        r.all()
            .contains("New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"),
        "{r:?}"
    );
}

/// A client certificate from another CA on a listener that requires certificates from its
/// own CA.
#[test]
fn refused_client_certificate_from_another_ca() {
    let pki = Pki::new();
    let other = tempfile::tempdir().unwrap();
    tern(&["pki", "ca", "--dir", s(other.path()), "--cn", "Other CA"]);
    tern(&["pki", "client", "stranger", "--dir", s(other.path())]);
    let (b, port) = mtls_broker(&pki, "");
    let r = mosq_pub(
        "localhost",
        port,
        "t",
        "x",
        &as_strs(&client_tls(
            &pki,
            &other.path().join("stranger.crt"),
            &other.path().join("stranger.key"),
        )),
    );
    assert_ne!(r.code, Some(0), "{r:?}");
    assert_logged_once(
        &b,
        "TLS handshake failed: the client certificate is not signed by a CA this listener trusts (unknown CA; cafile/capath): issue it with the broker's CA (`tern pki client <device name>`) or add the CA that signed it to cafile",
    );
}

/// `tern broker -c` with a cipher name tern does not know: start-up stops at the line, with
/// the names it knows.
#[test]
fn unknown_cipher_names_are_startup_errors_at_their_line() {
    let pki = Pki::new();
    for (option, name, available) in [
        (
            "ciphers",
            "AES128-SHA",
            "ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-ECDSA-CHACHA20-POLY1305, ECDHE-RSA-AES256-GCM-SHA384, ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-CHACHA20-POLY1305",
        ),
        (
            "ciphers_tls1.3",
            "TLS_AES_128_CCM_SHA256",
            "TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256",
        ),
    ] {
        let port = free_port();
        let conf = pki.dir.path().join("ciphers.conf");
        // The option is on line 6.
        std::fs::write(
            &conf,
            format!(
                "allow_anonymous true\n{}\n{option} {name}\n",
                pki.listener(port, "server", "").trim_end()
            ),
        )
        .unwrap();
        let r = run_cmd(TERN, &["broker", "-c", s(&conf)], Duration::from_secs(5));
        assert!(
            matches!(r.code, Some(c) if c != 0),
            "the broker should exit non-zero before listening: {r:?}"
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} is open"
        );
        let want = format!(
            "{}:6: unknown cipher '{name}' in {option}; the ciphers tern offers are: {available}",
            s(&conf)
        );
        assert!(r.err.contains(&want), "expected {want:?} in:\n{}", r.err);
    }
}

/// Key formats and sizes made with openssl, each served by its own listener: a PKCS#1
/// ("BEGIN RSA PRIVATE KEY") RSA-2048 key, an RSA-4096 key and an ECDSA P-384 key (SEC1),
/// with certificates signed by tern's CA. mosquitto's clients publish and receive over each.
#[test]
fn pkcs1_rsa_4096_and_p384_keys_are_served() {
    let pki = Pki::new();
    let dir = pki.root();
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    // `genkey` writes STEM.key.
    let make = |stem: &str, genkey: &[&str]| {
        let key = format!("{stem}.key");
        openssl(&dir, genkey);
        let csr = format!("{stem}.csr");
        let crt = format!("{stem}.crt");
        openssl(
            &dir,
            &[
                "req",
                "-new",
                "-key",
                &key,
                "-out",
                &csr,
                "-subj",
                "/CN=localhost",
            ],
        );
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "365",
                "-extfile",
                "server.ext",
            ],
        );
    };
    make(
        "pkcs1",
        &["genrsa", "-traditional", "-out", "pkcs1.key", "2048"],
    );
    make("rsa4096", &["genrsa", "-out", "rsa4096.key", "4096"]);
    make(
        "p384",
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "p384.key",
        ],
    );
    let first_line = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(first_line("pkcs1.key"), "-----BEGIN RSA PRIVATE KEY-----");
    assert_eq!(first_line("p384.key"), "-----BEGIN EC PRIVATE KEY-----");
    let ports: [u16; 3] = free_ports();
    let stems = ["pkcs1", "rsa4096", "p384"];
    let b = Broker::with_config(&format!(
        "allow_anonymous true\n{}{}{}",
        pki.listener(ports[0], stems[0], ""),
        pki.listener(ports[1], stems[1], ""),
        pki.listener(ports[2], stems[2], ""),
    ));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    for ((port, stem), bits) in ports.iter().zip(stems).zip([2048, 4096, 384]) {
        let r = s_client(
            *port,
            &[
                "-CAfile",
                ca,
                "-verify_return_error",
                "-servername",
                "localhost",
            ],
        );
        assert!(
            r.all()
                .contains(&format!("Server public key is {bits} bit"))
                && r.all().contains("Verify return code: 0 (ok)"),
            "{stem}: {r:?}"
        );
        let tls = ["--cafile", ca];
        round_trip(
            "localhost",
            *port,
            &format!("keys/{stem}"),
            stem,
            &tls,
            &tls,
        );
    }
    let log = b.log();
    assert!(
        !log.contains("TLS handshake failed"),
        "{}",
        info_lines(&log)
    );
    assert!(!log.contains("tern: warning"), "{}", info_lines(&log));
}

/// `capath` as Mosquitto users prepare it: the CA certificate and the hash-named link
/// `openssl rehash` makes, next to files that are not certificates (the CA key, a CRL, a
/// note). A client certificate signed by that CA connects; the other files are skipped with
/// one warning. A CA added to the directory later is trusted without a signal.
#[test]
fn capath_made_with_openssl_rehash_trusts_its_ca_and_picks_up_new_ones() {
    let pki = Pki::new();
    let (c, k) = pki.client("capath-device");
    let capath = pki.dir.path().join("certs");
    std::fs::create_dir(&capath).unwrap();
    std::fs::copy(pki.ca(), capath.join("ca.crt")).unwrap();
    openssl(&capath, &["rehash", "."]);
    let links: Vec<String> = std::fs::read_dir(&capath)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".0"))
        .collect();
    assert_eq!(links.len(), 1, "openssl rehash made no link: {links:?}");
    std::fs::copy(pki.path("ca.key"), capath.join("ca.key")).unwrap();
    std::fs::write(capath.join("README"), "CA certificates for the broker\n").unwrap();
    let port = free_port();
    let b = Broker::with_config(&format!(
        "allow_anonymous true\nlistener {port} 127.0.0.1\ncapath {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        s(&capath),
        s(&pki.path("server.crt")),
        s(&pki.path("server.key")),
    ));
    let warning = format!(
        "tern: warning: capath {}: skipped 2 files that hold no certificate (README, ca.key); only the certificates in it are trusted",
        s(&capath)
    );
    assert_eq!(
        count(&b.log(), &warning),
        1,
        "one warning for the skipped files:\n{}",
        info_lines(&b.log())
    );
    let tls = client_tls(&pki, &c, &k);
    round_trip(
        "localhost",
        port,
        "capath/t",
        "signed by the capath CA",
        &as_strs(&tls),
        &as_strs(&tls),
    );
    // A client of another CA is refused...
    let other = tempfile::tempdir().unwrap();
    tern(&["pki", "ca", "--dir", s(other.path()), "--cn", "Second CA"]);
    tern(&["pki", "client", "second-device", "--dir", s(other.path())]);
    let second = client_tls(
        &pki,
        &other.path().join("second-device.crt"),
        &other.path().join("second-device.key"),
    );
    let r = mosq_pub("localhost", port, "capath/t", "x", &as_strs(&second));
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(
        b.wait_log(
            "not signed by a CA this listener trusts",
            Duration::from_secs(5)
        ),
        "{}",
        info_lines(&b.log())
    );
    // ...until its CA is put in the directory (no SIGHUP).
    std::fs::copy(other.path().join("ca.crt"), capath.join("second-ca.crt")).unwrap();
    let start = Instant::now();
    let accepted = loop {
        let r = mosq_pub("localhost", port, "capath/t", "second", &as_strs(&second));
        if r.code == Some(0) {
            break true;
        }
        if start.elapsed() > Duration::from_secs(8) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        accepted,
        "a CA added to capath was not trusted within 8 s; log:\n{}",
        info_lines(&b.log())
    );
    // The reload names capath and does not repeat the warning about the same skipped files...
    assert!(
        b.log().contains(&format!(
            "TLS files reloaded for listener 127.0.0.1:{port}: capath {}; new connections use them",
            s(&capath)
        )),
        "{}",
        info_lines(&b.log())
    );
    assert_eq!(
        count(&b.log(), "that hold no certificate"),
        1,
        "the same skipped files were warned about again:\n{}",
        info_lines(&b.log())
    );
    // ...but warns when another file that is not a certificate appears.
    std::fs::write(capath.join("NOTES"), "more notes\n").unwrap();
    let again = format!(
        "capath {}: skipped 3 files that hold no certificate (NOTES, README, ca.key); only the certificates in it are trusted",
        s(&capath)
    );
    assert!(
        b.wait_log(&again, Duration::from_secs(8)),
        "{}",
        info_lines(&b.log())
    );
}

/// `tern pki revoke` while the broker runs: new connections with the revoked certificate are
/// refused within seconds, without a signal; a client already connected with it stays.
#[test]
fn revocation_applies_to_new_connections_without_a_signal() {
    let pki = Pki::new();
    let (gc, gk) = pki.client("kept-device");
    let (vc, vk) = pki.client("lost-device");
    // A CRL to start with (revoking a third certificate).
    pki.client("old-device");
    tern(&["pki", "revoke", "old-device", "--dir", s(&pki.root())]);
    let crl = pki.path("ca.crl");
    let (b, port) = mtls_broker(&pki, &format!("crlfile {}\n", s(&crl)));
    let lost = client_tls(&pki, &vc, &vk);
    let kept = client_tls(&pki, &gc, &gk);
    // lost-device connects and subscribes before the revocation: it receives a retained
    // message.
    let r = mosq_pub("localhost", port, "crl/live", "before", &{
        let mut v = as_strs(&kept);
        v.push("-r");
        v
    });
    assert_eq!(r.code, Some(0), "{r:?}");
    let p = port.to_string();
    let mut sub = Bg::spawn(
        "mosquitto_sub",
        &[
            &[
                "-h",
                "localhost",
                "-p",
                &p,
                "-t",
                "crl/live",
                "-C",
                "2",
                "-W",
                "30",
            ][..],
            &as_strs(&lost),
        ]
        .concat(),
    );
    assert!(
        sub.wait_line(Duration::from_secs(10), |l| l == "before")
            .is_some(),
        "lost-device did not subscribe: {:?} {}",
        sub.lines(),
        sub.stderr()
    );
    let before = std::fs::read(&crl).unwrap();
    tern(&["pki", "revoke", "lost-device", "--dir", s(&pki.root())]);
    assert_ne!(
        std::fs::read(&crl).unwrap(),
        before,
        "ca.crl was not rewritten"
    );
    let start = Instant::now();
    let refused = loop {
        let r = mosq_pub("localhost", port, "crl/t", "x", &as_strs(&lost));
        if r.code != Some(0) {
            break true;
        }
        if start.elapsed() > Duration::from_secs(8) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        refused,
        "lost-device could still connect 8 s after its revocation; log:\n{}",
        info_lines(&b.log())
    );
    failures_logged_once(
        &b,
        "TLS handshake failed: the client certificate is revoked (crlfile)",
    );
    let reloaded = format!(
        "TLS files reloaded for listener 127.0.0.1:{port}: crlfile {}; new connections use them",
        s(&crl)
    );
    assert!(b.log().contains(&reloaded), "{}", info_lines(&b.log()));
    // The connection made before stays: it receives what kept-device publishes.
    let r = mosq_pub(
        "localhost",
        port,
        "crl/live",
        "still connected",
        &as_strs(&kept),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    let code = sub.wait_exit(Duration::from_secs(15));
    assert_eq!(
        sub.lines(),
        vec!["before".to_owned(), "still connected".to_owned()],
        "lost-device's connection from before the revocation; exit {code:?}, stderr {}",
        sub.stderr()
    );
    assert!(
        !b.log().contains("configuration reloaded"),
        "no SIGHUP was sent"
    );
}

// ==========================================================================================
// 5. The client certificate as the user name
// ==========================================================================================

/// Subscribes with `tls` and reports whether the broker granted the subscription and the
/// retained message on `topic` arrived.
fn can_read(port: u16, topic: &str, tls: &[&str]) -> (bool, Bg) {
    let mut sub = mosq_sub("localhost", port, topic, tls);
    sub.wait_exit(Duration::from_secs(15));
    let got = !sub.lines().is_empty();
    (got, sub)
}

#[test]
fn use_identity_as_username_gives_the_cn_to_the_acl() {
    let pki = Pki::new();
    let (c1, k1) = pki.client("sensor-1");
    let (c2, k2) = pki.client("sensor-2");
    let acl = pki.dir.path().join("acl");
    std::fs::write(&acl, "user sensor-1\ntopic readwrite secret/#\n").unwrap();
    let port = free_port();
    let _b = Broker::with_config(&format!(
        "allow_anonymous false\nacl_file {}\n{}",
        s(&acl),
        pki.listener(
            port,
            "server",
            "require_certificate true\nuse_identity_as_username true\n"
        )
    ));
    let t1 = client_tls(&pki, &c1, &k1);
    let t2 = client_tls(&pki, &c2, &k2);
    // sensor-1 (CN) may read and write secret/#.
    round_trip(
        "localhost",
        port,
        "secret/a",
        "for sensor-1",
        &as_strs(&t1),
        &as_strs(&t1),
    );
    // sensor-2 may not read it...
    let (got, sub) = can_read(port, "secret/a", &as_strs(&t2));
    assert!(!got, "sensor-2 read secret/a: {:?}", sub.lines());
    assert!(
        sub.stderr()
            .contains("All subscription requests were denied"),
        "{}",
        sub.stderr()
    );
    // ...even when it claims sensor-1's name in CONNECT: the certificate decides.
    let mut claim = as_strs(&t2);
    claim.extend(["-u", "sensor-1"]);
    let (got, sub) = can_read(port, "secret/a", &claim);
    assert!(
        !got,
        "sensor-2 as -u sensor-1 read secret/a: {:?}",
        sub.lines()
    );
    // ...nor write it: sensor-1 keeps seeing its own retained message.
    let r = mosq_pub("localhost", port, "secret/a", "from sensor-2", &{
        let mut v = as_strs(&t2);
        v.push("-r");
        v
    });
    assert_eq!(r.code, Some(0), "{r:?}");
    let (got, sub) = can_read(port, "secret/a", &as_strs(&t1));
    assert!(got);
    assert_eq!(sub.lines(), vec!["for sensor-1"]);
}

#[test]
fn use_subject_as_username_gives_the_rfc2253_subject_to_the_acl() {
    let pki = Pki::new();
    let dir = pki.root();
    // A client certificate with a multi-part subject, signed by tern's CA with openssl.
    openssl(&dir, &["genrsa", "-out", "dev-9.key", "2048"]);
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-key",
            "dev-9.key",
            "-out",
            "dev-9.csr",
            "-subj",
            "/C=BH/O=Grasspalm/CN=dev-9",
        ],
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "dev-9.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "dev-9.crt",
            "-days",
            "30",
            "-extfile",
            "client.ext",
        ],
    );
    let subject = openssl(
        &dir,
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            "dev-9.crt",
        ],
    );
    assert_eq!(subject.trim(), "subject=CN=dev-9,O=Grasspalm,C=BH");
    let (c2, k2) = pki.client("dev-10");
    let acl = pki.dir.path().join("acl");
    std::fs::write(
        &acl,
        "user CN=dev-9,O=Grasspalm,C=BH\ntopic readwrite subject/#\n",
    )
    .unwrap();
    let port = free_port();
    let _b = Broker::with_config(&format!(
        "allow_anonymous false\nacl_file {}\n{}",
        s(&acl),
        pki.listener(
            port,
            "server",
            "require_certificate true\nuse_subject_as_username true\n"
        )
    ));
    let t9 = client_tls(&pki, &dir.join("dev-9.crt"), &dir.join("dev-9.key"));
    round_trip(
        "localhost",
        port,
        "subject/a",
        "for dev-9",
        &as_strs(&t9),
        &as_strs(&t9),
    );
    let (got, sub) = can_read(port, "subject/a", &as_strs(&client_tls(&pki, &c2, &k2)));
    assert!(!got, "dev-10 read subject/a: {:?}", sub.lines());
    assert!(
        sub.stderr()
            .contains("All subscription requests were denied"),
        "{}",
        sub.stderr()
    );
}

// ==========================================================================================
// 6. Reload: SIGHUP and on-disk changes, existing clients untouched, bad files refused
// ==========================================================================================

/// A broker with one TLS listener and a subscriber connected over TLS on `reload/t`.
fn reload_setup(pki: &Pki) -> (Broker, u16, TlsMqtt, String) {
    let port = free_port();
    let b = Broker::with_config(&anon_tls(pki, port, ""));
    let old = serial_of_file(pki.dir.path(), &pki.path("server.crt"));
    assert_eq!(served_serial(pki.dir.path(), port, &pki.ca()), old);
    let mut c = TlsMqtt::connect(port, &pki.ca(), Offer::Tls13).unwrap();
    c.subscribe("reload/t");
    (b, port, c, old)
}

/// The existing subscriber still receives what a new TLS client publishes.
fn still_receives(c: &mut TlsMqtt, port: u16, pki: &Pki, msg: &str) {
    let r = mosq_pub(
        "localhost",
        port,
        "reload/t",
        msg,
        &["--cafile", s(&pki.ca())],
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(
        c.next_publish(),
        Some(("reload/t".to_owned(), msg.as_bytes().to_vec())),
        "the subscriber connected before the reload"
    );
}

fn reissue_server(pki: &Pki) -> String {
    tern(&[
        "pki",
        "server",
        "--dir",
        s(&pki.root()),
        "--host",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    serial_of_file(pki.dir.path(), &pki.path("server.crt"))
}

#[test]
fn sighup_serves_the_new_certificate_and_keeps_connected_clients() {
    let pki = Pki::new();
    let (b, port, mut c, old) = reload_setup(&pki);
    // A new pair from the same CA, put in place with the old modification times (each file
    // renamed over the old one after setting its time) so that the file watcher sees no
    // change and only the signal can make the broker notice.
    let fresh = pki.dir.path().join("fresh");
    tern(&[
        "pki",
        "server",
        "--dir",
        s(&fresh),
        "--ca-cert",
        s(&pki.ca()),
        "--ca-key",
        s(&pki.path("ca.key")),
        "--host",
        "localhost",
        "--ip",
        "127.0.0.1",
    ]);
    let new = serial_of_file(pki.dir.path(), &fresh.join("server.crt"));
    assert_ne!(new, old);
    for f in ["server.key", "server.crt"] {
        let then = std::fs::metadata(pki.path(f)).unwrap().modified().unwrap();
        let tmp = pki.path(&format!(".{f}.new"));
        std::fs::copy(fresh.join(f), &tmp).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(then)
            .unwrap();
        std::fs::rename(&tmp, pki.path(f)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        served_serial(pki.dir.path(), port, &pki.ca()),
        old,
        "nothing reloads before the signal when the files' times did not change"
    );
    b.signal("HUP");
    assert!(
        b.wait_log("configuration reloaded", Duration::from_secs(5)),
        "{}",
        b.log()
    );
    let reloaded = format!(
        "TLS files reloaded for listener 127.0.0.1:{port} (none had changed on disk): certfile {}, keyfile {}, cafile {}; new connections use them",
        s(&pki.path("server.crt")),
        s(&pki.path("server.key")),
        s(&pki.ca())
    );
    assert!(b.log().contains(&reloaded), "{}", b.log());
    assert_eq!(served_serial(pki.dir.path(), port, &pki.ca()), new);
    still_receives(&mut c, port, &pki, "after SIGHUP");
}

#[test]
fn changed_files_are_picked_up_without_a_signal() {
    let pki = Pki::new();
    let (b, port, mut c, old) = reload_setup(&pki);
    let new = reissue_server(&pki);
    assert_ne!(new, old);
    let start = Instant::now();
    let mut served = old.clone();
    while start.elapsed() < Duration::from_secs(6) {
        served = served_serial(pki.dir.path(), port, &pki.ca());
        if served == new {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(served, new, "not picked up within 6 s; log:\n{}", b.log());
    // The watcher may see the new certificate and the new key in one turn or in two.
    let prefix = format!("TLS files reloaded for listener 127.0.0.1:{port}: ");
    let certfile = format!("certfile {}", s(&pki.path("server.crt")));
    let keyfile = format!("keyfile {}", s(&pki.path("server.key")));
    let log = b.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&prefix)).collect();
    assert!(
        lines.iter().any(|l| l.contains(&certfile)) && lines.iter().any(|l| l.contains(&keyfile)),
        "the reload should name the certificate and the key:\n{log}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("cafile")),
        "the CA file did not change:\n{log}"
    );
    still_receives(&mut c, port, &pki, "after the files changed");
}

#[test]
fn bad_new_key_keeps_the_old_certificate_and_says_why() {
    let pki = Pki::new();
    let (b, port, mut c, old) = reload_setup(&pki);
    let key = pki.path("server.key");
    std::fs::write(&key, "this is not a key\n").unwrap();
    b.signal("HUP");
    let why = format!("{}: no PEM data found (expected a private key)", s(&key));
    assert!(b.wait_log(&why, Duration::from_secs(5)), "{}", b.log());
    // Also after the file watcher had its turn.
    std::thread::sleep(Duration::from_millis(2500));
    let log = b.log();
    for line in log.lines().filter(|l| l.contains(&why)) {
        assert!(
            line.contains("not reloaded") && line.contains("stay"),
            "the log should say the old files stay in service: {line}"
        );
    }
    assert!(!log.contains("TLS files reloaded"), "{log}");
    assert_eq!(served_serial(pki.dir.path(), port, &pki.ca()), old);
    still_receives(&mut c, port, &pki, "old certificate still in service");
}

/// A changed TLS option (here `tls_version tlsv1.3`) is not applied by SIGHUP: the log says
/// a restart is needed, and TLS 1.2 clients are still served. A reload without changes says
/// nothing of the kind.
#[test]
fn sighup_with_changed_tls_options_warns_that_a_restart_is_needed() {
    let pki = Pki::new();
    let (b, port, _c, _) = reload_setup(&pki);
    let warning = "the TLS options of this listener changed: restart the broker";
    b.signal("HUP");
    assert!(
        b.wait_log("configuration reloaded", Duration::from_secs(5)),
        "{}",
        b.log()
    );
    assert!(!b.log().contains(warning), "nothing changed: {}", b.log());
    let conf = b.path("tern.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{text}tls_version tlsv1.3\n")).unwrap();
    b.signal("HUP");
    assert!(b.wait_log(warning, Duration::from_secs(5)), "{}", b.log());
    assert!(
        TlsMqtt::connect(port, &pki.ca(), Offer::Tls12EcdsaAes128Gcm).is_ok(),
        "TLS 1.2 is still offered until a restart"
    );
}

/// A key that parses but belongs to another certificate is as bad as one that does not
/// parse: the pair in service must stay.
#[test]
fn mismatched_new_key_keeps_the_old_certificate_and_says_why() {
    let pki = Pki::new();
    let (b, port, mut c, old) = reload_setup(&pki);
    let (_, other_key) = pki.client("someone-else");
    std::fs::copy(&other_key, pki.path("server.key")).unwrap();
    b.signal("HUP");
    assert!(
        b.wait_log("does not belong to the certificate", Duration::from_secs(5)),
        "{}",
        b.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    // New handshakes still complete with the old certificate.
    let r = s_client(
        port,
        &[
            "-CAfile",
            s(&pki.ca()),
            "-verify_return_error",
            "-servername",
            "localhost",
        ],
    );
    assert!(
        r.all().contains("Verify return code: 0 (ok)") && !r.all().contains("bad signature"),
        "a new handshake after the reload failed: {}\nbroker log:\n{}",
        r.err.trim(),
        info_lines(&b.log())
    );
    assert_eq!(served_serial(pki.dir.path(), port, &pki.ca()), old);
    let log = b.log();
    assert!(
        !log.contains("TLS files reloaded"),
        "a mismatched pair was put in service:\n{log}"
    );
    still_receives(&mut c, port, &pki, "old pair still in service");
}

// ==========================================================================================
// 7. A key the broker cannot use stops start-up
// ==========================================================================================

/// Starts the broker with the TLS listener's keyfile set to `key`: it must exit non-zero
/// before listening. Returns its stderr.
fn start_with_key(pki: &Pki, key: &Path) -> String {
    let port = free_port();
    let conf = pki.dir.path().join("bad-key.conf");
    std::fs::write(
        &conf,
        format!(
            "allow_anonymous true\nlistener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            s(&pki.ca()),
            s(&pki.path("server.crt")),
            s(key)
        ),
    )
    .unwrap();
    // A start-up error is immediate; a broker still running after 5 s is killed and fails
    // the test.
    let r = run_cmd(TERN, &["broker", "-c", s(&conf)], Duration::from_secs(5));
    assert!(
        matches!(r.code, Some(c) if c != 0),
        "the broker should exit non-zero before listening: {r:?}"
    );
    assert!(!r.out.contains("listening"), "{r:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} is open"
    );
    assert!(r.err.contains(s(key)), "the error names the file: {r:?}");
    // ... at the line that named it (certfile is line 4, keyfile line 5), not the
    // listener's line.
    assert!(
        r.err.contains("bad-key.conf:4:") || r.err.contains("bad-key.conf:5:"),
        "the error names the file option's line: {r:?}"
    );
    r.err
}

#[test]
fn keyfile_that_is_a_directory_is_a_startup_error() {
    let pki = Pki::new();
    let err = start_with_key(&pki, &pki.root());
    assert!(
        err.contains("is a directory") || err.contains("Is a directory"),
        "{err}"
    );
    // What to do: point keyfile at the key file. chmod/chown cannot fix a directory.
    assert!(
        !err.contains("chmod") && (err.contains("keyfile") || err.contains("tern pki server")),
        "the advice should fit the problem: {err}"
    );
}

#[test]
fn keyfile_that_does_not_exist_is_a_startup_error() {
    let pki = Pki::new();
    let err = start_with_key(&pki, &pki.path("missing.key"));
    assert!(err.contains("No such file"), "{err}");
    assert!(err.contains("bad-key.conf:5:"), "keyfile's line: {err}");
    // What to do: fix the path or make a key. chmod/chown cannot fix a missing file.
    assert!(
        !err.contains("chmod") && (err.contains("keyfile") || err.contains("tern pki server")),
        "the advice should fit the problem: {err}"
    );
}

#[test]
fn keyfile_that_is_not_a_key_is_a_startup_error() {
    let pki = Pki::new();
    let text = pki.dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let err = start_with_key(&pki, &text);
    assert!(
        err.contains("no PEM data found (expected a private key)"),
        "{err}"
    );
    let err = start_with_key(&pki, &pki.ca());
    assert!(
        err.contains("the file holds a certificate, not a private key; pass the key file (e.g. server.key) instead"),
        "{err}"
    );
}

/// `tern pki` makes its directory 0700. A broker running as another user cannot enter it:
/// the key is there, so "does not exist" would send the user looking for the wrong problem.
/// The error names the file, the user the broker runs as, and the fix for the directory.
#[test]
fn keyfile_in_a_directory_the_broker_user_cannot_enter_is_a_permission_error() {
    require("setpriv");
    let drop_to_nobody = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];
    let who = run_cmd(
        "setpriv",
        &[&drop_to_nobody[..], &["id", "-un"]].concat(),
        Duration::from_secs(10),
    );
    assert_eq!(
        (who.code, who.out.trim()),
        (Some(0), "nobody"),
        "this test runs the broker as user nobody with `setpriv --reuid=nobody --regid=nogroup`, which failed (the tests must run as root, and the system needs a user nobody and a group nogroup): {who:?}"
    );
    let pki = Pki::new();
    let mode = std::fs::metadata(pki.root()).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o700, "tern pki's directory");
    // Everything but the key where nobody can read it: the config and the certificate.
    let open_dir = pki.dir.path();
    std::fs::set_permissions(open_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cert = open_dir.join("server.crt");
    std::fs::copy(pki.path("server.crt"), &cert).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = pki.path("server.key");
    let port = free_port();
    let conf = open_dir.join("nobody.conf");
    std::fs::write(
        &conf,
        format!(
            "allow_anonymous true\nlistener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            s(&cert),
            s(&key)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run_cmd(
        "setpriv",
        &[&drop_to_nobody[..], &[TERN, "broker", "-c", s(&conf)]].concat(),
        Duration::from_secs(5),
    );
    assert!(
        matches!(r.code, Some(c) if c != 0),
        "the broker should exit non-zero before listening: {r:?}"
    );
    let err = r.err;
    assert!(
        !err.contains("does not exist") && !err.contains("No such file"),
        "the key exists; the problem is permission: {err}"
    );
    assert!(
        err.contains(&format!("cannot read the key file {}", s(&key)))
            && err.contains("Permission denied")
            && err.contains("the broker runs as user 'nobody'"),
        "the error names the file, the reason and the user: {err}"
    );
    let dir = pki.root();
    assert!(
        err.contains(&format!(
            "The directory {} cannot be entered by that user",
            s(&dir)
        )) && err.contains(&format!("`chown -R nobody {}`", s(&dir))),
        "the fix is for the directory, not the file: {err}"
    );
}

/// A valid key that belongs to another certificate: Mosquitto refuses to start ("Unable to
/// load server key file ... key values mismatch"); every handshake would fail.
#[test]
fn keyfile_of_another_certificate_is_a_startup_error() {
    let pki = Pki::new();
    let (_, other_key) = pki.client("someone-else");
    let err = start_with_key(&pki, &other_key);
    assert!(err.contains("does not belong"), "{err}");
}

// ==========================================================================================
// 8. tern quickstart
// ==========================================================================================

/// Runs `tern quickstart` until it listens; the process and its stdout lines.
fn quickstart(dir: &Path, port: u16, tls_port: u16) -> (Bg, Vec<String>) {
    let q = Bg::spawn(
        TERN,
        &[
            "quickstart",
            "--dir",
            s(dir),
            "--port",
            &port.to_string(),
            "--tls-port",
            &tls_port.to_string(),
        ],
    );
    let listening = format!("tern: listening on 127.0.0.1:{tls_port}");
    assert!(
        q.wait_line(Duration::from_secs(60), |l| l.starts_with(&listening))
            .is_some(),
        "quickstart did not listen: {:?} {}",
        q.lines(),
        q.stderr()
    );
    // The banner follows the listener lines.
    assert!(
        q.wait_line(Duration::from_secs(10), |l| l
            .starts_with("  mosquitto_pub"))
            .is_some(),
        "{:?}",
        q.lines()
    );
    let lines = q.lines();
    (q, lines)
}

fn fingerprint_line<'a>(lines: &'a [String], kind: &str) -> &'a str {
    let prefix = format!("tern: server certificate {kind} Fingerprint=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:#?}"))
}

#[test]
fn quickstart_makes_a_pki_prints_fingerprints_and_working_commands() {
    let d = tempfile::tempdir().unwrap();
    let [port, tls_port] = free_ports();
    let (q, lines) = quickstart(d.path(), port, tls_port);
    let pki = d.path().join("pki");
    for f in ["ca.crt", "server.crt", "server.key"] {
        assert!(pki.join(f).is_file(), "{f} missing");
    }
    let ca = pki.join("ca.crt");
    assert!(
        lines.contains(&format!(
            "tern: CA certificate (copy it to your clients): {}",
            ca.display()
        )),
        "{lines:#?}"
    );
    // The fingerprints are openssl's.
    for kind in ["sha1", "sha256"] {
        let want = openssl(
            &pki,
            &[
                "x509",
                "-noout",
                "-fingerprint",
                &format!("-{kind}"),
                "-in",
                "server.crt",
            ],
        );
        let want = want.trim().split_once('=').unwrap().1;
        assert_eq!(fingerprint_line(&lines, kind), want, "{kind}");
    }
    // The printed mosquitto_sub command works over TLS as printed (plus a message count and
    // a time limit), with the printed tern pub command.
    let sub_line = lines
        .iter()
        .find(|l| l.starts_with("  mosquitto_sub"))
        .unwrap();
    assert!(
        sub_line.contains(&format!("-p {tls_port} --cafile {}", ca.display())),
        "{sub_line}"
    );
    let words = shell_words(sub_line);
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    args.extend(["-C", "1", "-W", "10"]);
    let mut sub = Bg::spawn("mosquitto_sub", &args);
    let pub_line = lines.iter().find(|l| l.starts_with("  tern pub")).unwrap();
    let words = shell_words(pub_line);
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    // Not retained: publish until the subscriber (connecting meanwhile) has one.
    let end = Instant::now() + Duration::from_secs(10);
    while sub.lines().is_empty() && Instant::now() < end {
        let r = run_cmd(TERN, &args, Duration::from_secs(20));
        assert_eq!(r.code, Some(0), "{pub_line}: {r:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let code = sub.wait_exit(Duration::from_secs(15));
    assert_eq!(
        sub.lines(),
        vec!["test/hello Hello MQTT"],
        "{sub_line}: {}",
        sub.stderr()
    );
    assert_eq!(code, Some(0));
    let sha1 = fingerprint_line(&lines, "sha1").to_owned();
    drop(q);

    // A second run reuses the files.
    let (_q, lines) = quickstart(d.path(), port, tls_port);
    assert!(
        lines.contains(&format!(
            "tern: using the CA and server certificate in {}",
            pki.display()
        )),
        "{lines:#?}"
    );
    assert_eq!(fingerprint_line(&lines, "sha1"), sha1);
}

/// The printed command line starting with `prefix`, split into words.
fn printed_command(lines: &[String], prefix: &str) -> Vec<String> {
    let line = lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {lines:#?}"));
    shell_words(line)
}

#[test]
fn quickstart_plain_port_and_printed_tern_sub_and_pub_commands_work() {
    let d = tempfile::tempdir().unwrap();
    let [port, tls_port] = free_ports();
    let (q, lines) = quickstart(d.path(), port, tls_port);

    // The plain port it announces answers an MQTT CONNECT with CONNACK 0.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("tern: listening on 127.0.0.1:{port}"))),
        "{lines:#?}"
    );
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(&connect_v311("qs-plain")).unwrap();
    let mut ack = [0u8; 4];
    plain.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK on the plain port");
    drop(plain);

    // The printed plain mosquitto_pub line is accepted there.
    let words = printed_command(&lines, "  mosquitto_pub ");
    assert!(words.contains(&port.to_string()), "{words:?}");
    let mpub_args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let r = run_cmd("mosquitto_pub", &mpub_args, Duration::from_secs(20));
    assert_eq!(r.code, Some(0), "{mpub_args:?}: {r:?}");

    // The printed `tern sub` line, as printed plus a message count and a time limit.
    let words = printed_command(&lines, "  tern sub ");
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    args.extend(["-C", "1", "-W", "20"]);
    let mut sub = Bg::spawn(TERN, &args);
    // The printed `tern pub` line, over TLS; not retained, so publish until it arrives.
    let words = printed_command(&lines, "  tern pub ");
    let pub_args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let end = Instant::now() + Duration::from_secs(15);
    while sub.lines().is_empty() && Instant::now() < end {
        let r = run_cmd(TERN, &pub_args, Duration::from_secs(20));
        assert_eq!(r.code, Some(0), "{pub_args:?}: {r:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let code = sub.wait_exit(Duration::from_secs(25));
    assert_eq!(
        sub.lines(),
        vec!["test/hello Hello MQTT"],
        "tern sub {args:?}: {}",
        sub.stderr()
    );
    assert_eq!(code, Some(0), "{}", sub.stderr());
    drop(q);
}

// ==========================================================================================
// 9. tern doctor against tern's own listeners
// ==========================================================================================

#[test]
fn doctor_on_terns_tls_listener_and_on_its_plain_port() {
    let pki = Pki::new();
    let [tls, plain] = free_ports();
    let _b = Broker::with_config(&format!(
        "{}listener {plain} 127.0.0.1\n",
        anon_tls(&pki, tls, "")
    ));
    let ca_path = pki.ca();
    let ca = s(&ca_path);
    let r = run_cmd(
        TERN,
        &["doctor", &format!("127.0.0.1:{tls}"), "--cafile", ca],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.out.contains("verdict: OK, a strict TLS client (rustls, ESP32, Python, Go, mosquitto_sub) would connect to \"127.0.0.1\""),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("MQTT: CONNECT accepted (CONNACK 0)"),
        "{}",
        r.out
    );
    assert!(
        r.out.contains("most important: nothing to change"),
        "{}",
        r.out
    );
    let r = run_cmd(
        TERN,
        &["doctor", &format!("127.0.0.1:{plain}"), "--cafile", ca],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.out.contains(&format!(
            "most important: 127.0.0.1:{plain} is a plain MQTT (non-TLS) port, not a TLS one"
        )),
        "{}",
        r.out
    );
}
