//! Shared helpers for tests that run the real `tern` binary: start a broker on a free
//! loopback port and wait for its start-up line, write config files, speak raw MQTT bytes.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const TERN: &str = env!("CARGO_BIN_EXE_tern");

/// A running `tern broker`, killed when dropped.
pub struct Broker {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Broker {
    /// `tern broker -p 0` (local-only mode on an ephemeral loopback port).
    pub fn start() -> Broker {
        Self::start_args(&["-p", "0"], None)
    }

    /// `tern broker -c FILE` with `config` written to a temp file. `{dir}` in the text is
    /// replaced by the test's temp directory, `{port}` (and `{port2}`) by free loopback
    /// ports. The first IPv4 listener printed is `port`.
    pub fn with_config(config: &str) -> Broker {
        Self::start_args(&[], Some(config))
    }

    pub fn start_args(args: &[&str], config: Option<&str>) -> Broker {
        Self::start_args_env(args, config, &[])
    }

    /// As [`Broker::start_args`], with environment variables set for the broker (e.g.
    /// `RUST_LOG=info` where debug logging of every packet would distort a measurement).
    pub fn start_args_env(args: &[&str], config: Option<&str>, env: &[(&str, &str)]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("broker.log");
        let mut cmd = Command::new(TERN);
        cmd.arg("broker").args(args);
        if let Some(text) = config {
            let path = dir.path().join("tern.conf");
            let text = text
                .replace("{dir}", dir.path().to_str().unwrap())
                .replace("{port}", &free_port().to_string())
                .replace("{port2}", &free_port().to_string());
            std::fs::write(&path, text).unwrap();
            cmd.arg("-c").arg(&path);
        }
        let log_file = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .env("RUST_LOG", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start tern broker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        let port = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(p) = parse_port(&line) {
                        break p;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!(
                        "tern broker did not report a listener within 15 s.\nstdout: {seen:?}\nlog:\n{log}"
                    );
                }
            }
        };
        // Keep draining stdout so the broker never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Broker {
            child,
            port,
            dir,
            log,
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` (bounded).
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Sends a signal (by name, e.g. "TERM", "HUP") with the `kill` command.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for exit (bounded) and returns the exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// "tern: listening on 127.0.0.1:PORT (...)" -> PORT (IPv4 listeners only).
fn parse_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("tern: listening on 127.0.0.1:")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Runs a command with a time limit; returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e}. Install the test dependencies with scripts/test (Debian: apt-get install mosquitto mosquitto-clients)")
    });
    let end = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() || Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw TCP MQTT connection for byte-level tests.
pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw { s }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads one whole packet (fixed header included); `None` on EOF or timeout.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut first = [0u8; 1];
        if self.s.read_exact(&mut first).is_err() {
            return None;
        }
        let mut out = vec![first[0]];
        let mut len: usize = 0;
        let mut mult = 1;
        loop {
            let mut b = [0u8; 1];
            self.s.read_exact(&mut b).ok()?;
            out.push(b[0]);
            len += usize::from(b[0] & 0x7F) * mult;
            mult *= 128;
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body).ok()?;
        out.extend(body);
        Some(out)
    }

    /// True when the broker has closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0)) || matches!(self.s.read(&mut b), Ok(0))
    }

    /// CONNECT for 3.1.1 with a client id, clean session, keep-alive 60.
    pub fn connect_v311(&mut self, id: &str) -> Vec<u8> {
        let mut p = vec![0x10, 0];
        p.extend([0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60]);
        p.extend((id.len() as u16).to_be_bytes());
        p.extend(id.as_bytes());
        p[1] = (p.len() - 2) as u8;
        self.send(&p);
        self.recv().expect("CONNACK")
    }

    /// CONNECT for 5.0 with a client id, clean start, keep-alive 60, no properties.
    pub fn connect_v5(&mut self, id: &str) -> Vec<u8> {
        let mut p = vec![0x10, 0];
        p.extend([0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0]);
        p.extend((id.len() as u16).to_be_bytes());
        p.extend(id.as_bytes());
        p[1] = (p.len() - 2) as u8;
        self.send(&p);
        self.recv().expect("CONNACK")
    }
}

/// A path's text, or a clear panic.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}
