//! Helpers for tests that drive the real `tern broker` with clients nobody on the team
//! wrote: Debian's `mosquitto_sub` / `mosquitto_pub` (run as processes) and the `rumqttc`
//! crate (3.1.1 and 5.0). Every wait is bounded; processes are killed when dropped. A
//! missing mosquitto tool fails the test (never skips it).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub use rumqttc::v5::mqttbytes::v5 as p5;

/// The format `Sub` asks mosquitto_sub to print messages in.
pub const FMT: &str = "MSG|%t|%q|%r|%p";

/// `mosquitto_pub` or `mosquitto_sub` aimed at the broker on 127.0.0.1:`port`.
pub fn mosq(tool: &str, port: u16) -> Command {
    let mut c = Command::new(tool);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

/// Runs `mosquitto_pub` with `args` (bounded, 10 s); panics unless it exits 0.
pub fn mpub(port: u16, args: &[&str]) -> String {
    let (code, out, err) = crate::common::run(
        mosq("mosquitto_pub", port).args(args),
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(0), "mosquitto_pub {args:?}: {out}{err}");
    out
}

/// A `mosquitto_sub` running in the background with `-d`, its output collected line by line.
#[derive(Debug)]
pub struct Sub {
    pub child: Child,
    rx: Receiver<String>,
    pub lines: Vec<String>,
}

impl Sub {
    /// Starts `mosquitto_sub -d ARGS` and waits (bounded) until every subscription is
    /// acknowledged (`Subscribed (mid: N): CODES`) or the process ends.
    pub fn start(port: u16, args: &[&str]) -> Sub {
        // mosquitto_sub block-buffers its debug lines on a pipe: stdbuf makes them line
        // buffered so the SUBACK can be waited for.
        let mut cmd = Command::new("stdbuf");
        cmd.args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-d",
        ])
        .args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run stdbuf mosquitto_sub: {e}. Install Debian's coreutils and mosquitto-clients (scripts/test does)")
            });
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut s = Sub {
            child,
            rx,
            lines: Vec::new(),
        };
        let ok = s.wait_line(
            |l| {
                l.starts_with("Subscribed (mid:")
                    || l.starts_with("Connection error")
                    || l.starts_with("stdbuf:")
            },
            Duration::from_secs(10),
        );
        assert!(
            ok.is_some(),
            "mosquitto_sub {args:?} did not subscribe: {:?}",
            s.lines
        );
        if let Some(l) = ok.filter(|l| l.starts_with("stdbuf:")) {
            panic!("{l}. Install Debian's mosquitto-clients (scripts/test does)");
        }
        s
    }

    fn pump(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(l) => {
                self.lines.push(l);
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for a line matching `pred` (bounded); returns it.
    pub fn wait_line(&mut self, pred: impl Fn(&str) -> bool, within: Duration) -> Option<String> {
        let end = Instant::now() + within;
        let mut seen = 0;
        loop {
            if let Some(l) = self.lines[seen..].iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            seen = self.lines.len();
            if !self.pump(end) {
                return None;
            }
        }
    }

    /// The granted codes of the first SUBACK, e.g. "1" or "0, 128".
    pub fn granted(&mut self) -> String {
        let l = self
            .wait_line(
                |l| l.starts_with("Subscribed (mid:"),
                Duration::from_secs(1),
            )
            .unwrap_or_else(|| panic!("no SUBACK in {:?}", self.lines));
        l.split_once("): ").unwrap().1.to_owned()
    }

    /// Message lines (printed with a format starting with "MSG|"), without the prefix.
    pub fn messages(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("MSG|"))
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `n` messages arrived (bounded); returns them.
    pub fn wait_messages(&mut self, n: usize, within: Duration) -> Vec<String> {
        let end = Instant::now() + within;
        while self.messages().len() < n {
            if !self.pump(end) {
                panic!(
                    "expected {n} messages within {within:?}, got {:?}\nall output: {:?}",
                    self.messages(),
                    self.lines
                );
            }
        }
        self.messages()
    }

    /// True when no further message arrives for `d`.
    pub fn quiet_for(&mut self, d: Duration) -> bool {
        let n = self.messages().len();
        let end = Instant::now() + d;
        while self.pump(end) {}
        self.messages().len() == n
    }

    /// Waits for the process to end (bounded); its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                // Collect what is left of its output.
                while self.pump(Instant::now() + Duration::from_millis(100)) {}
                return s.code();
            }
            self.pump(Instant::now() + Duration::from_millis(20));
        }
        None
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----- rumqttc 3.1.1 ----------------------------------------------------------------------

type Ev4 = Result<rumqttc::Event, rumqttc::ConnectionError>;

/// A rumqttc 3.1.1 client whose event loop runs on a thread, events forwarded to `rx`.
pub struct R4 {
    pub client: rumqttc::Client,
    pub rx: Receiver<Ev4>,
}

pub fn r4_opts(port: u16, id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl R4 {
    /// Starts the client; returns it and its CONNACK (or the connection error).
    pub fn start(
        opts: rumqttc::MqttOptions,
    ) -> (R4, Result<rumqttc::ConnAck, rumqttc::ConnectionError>) {
        let (client, mut conn) = rumqttc::Client::new(opts, 256);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                let end = ev.is_err();
                if tx.send(ev).is_err() || end {
                    break;
                }
            }
        });
        let r = R4 { client, rx };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match r
                .rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)))) => return (r, Ok(a)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return (r, Err(e)),
                Err(_) => panic!("no CONNACK within 10 s"),
            }
        }
    }

    /// Connects (must succeed) with the options `f` sets.
    pub fn connect(
        port: u16,
        id: &str,
        f: impl FnOnce(&mut rumqttc::MqttOptions),
    ) -> (R4, rumqttc::ConnAck) {
        let mut o = r4_opts(port, id);
        f(&mut o);
        let (r, a) = R4::start(o);
        (r, a.expect("CONNACK success"))
    }

    /// The next incoming packet (other events skipped), or the connection error.
    pub fn next_incoming(&self, within: Duration) -> Option<Result<rumqttc::Packet, String>> {
        let end = Instant::now() + within;
        loop {
            match self
                .rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(Ok(rumqttc::Event::Incoming(p))) => return Some(Ok(p)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some(Err(format!("{e:?}"))),
                Err(_) => return None,
            }
        }
    }

    /// The next PUBLISH (bounded); panics on anything else ending the wait.
    pub fn publish_in(&self, within: Duration) -> rumqttc::Publish {
        let end = Instant::now() + within;
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(rumqttc::Packet::Publish(p))) => return p,
                Some(Ok(_)) => {}
                other => panic!("expected a PUBLISH, got {other:?}"),
            }
        }
    }

    /// The next SUBACK's codes.
    pub fn suback(&self) -> Vec<rumqttc::SubscribeReasonCode> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(rumqttc::Packet::SubAck(s))) => return s.return_codes,
                Some(Ok(_)) => {}
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    }

    pub fn subscribe(&self, filter: &str, qos: rumqttc::QoS) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).unwrap();
        self.suback()
    }

    /// True when no PUBLISH arrives for `d`.
    pub fn no_publish_for(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(rumqttc::Packet::Publish(_))) => return false,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return true,
            }
        }
    }
}

// ----- rumqttc 5.0 ------------------------------------------------------------------------

type Ev5 = Result<rumqttc::v5::Event, rumqttc::v5::ConnectionError>;

/// A rumqttc 5.0 client whose event loop runs on a thread.
pub struct R5 {
    pub client: rumqttc::v5::Client,
    pub rx: Receiver<Ev5>,
}

pub fn r5_opts(port: u16, id: &str) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl R5 {
    pub fn start(
        opts: rumqttc::v5::MqttOptions,
    ) -> (R5, Result<p5::ConnAck, rumqttc::v5::ConnectionError>) {
        let (client, mut conn) = rumqttc::v5::Client::new(opts, 256);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                let end = ev.is_err();
                if tx.send(ev).is_err() || end {
                    break;
                }
            }
        });
        let r = R5 { client, rx };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match r
                .rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(Ok(rumqttc::v5::Event::Incoming(p5::Packet::ConnAck(a)))) => return (r, Ok(a)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return (r, Err(e)),
                Err(_) => panic!("no CONNACK within 10 s"),
            }
        }
    }

    pub fn connect(
        port: u16,
        id: &str,
        f: impl FnOnce(&mut rumqttc::v5::MqttOptions),
    ) -> (R5, p5::ConnAck) {
        let mut o = r5_opts(port, id);
        f(&mut o);
        let (r, a) = R5::start(o);
        (r, a.expect("CONNACK success"))
    }

    /// The next incoming packet, or the connection error (Debug-formatted).
    pub fn next_incoming(
        &self,
        within: Duration,
    ) -> Option<Result<p5::Packet, rumqttc::v5::ConnectionError>> {
        let end = Instant::now() + within;
        loop {
            match self
                .rx
                .recv_timeout(end.saturating_duration_since(Instant::now()))
            {
                Ok(Ok(rumqttc::v5::Event::Incoming(p))) => return Some(Ok(p)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some(Err(e)),
                Err(_) => return None,
            }
        }
    }

    pub fn publish_in(&self, within: Duration) -> p5::Publish {
        let end = Instant::now() + within;
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(p5::Packet::Publish(p))) => return p,
                Some(Ok(_)) => {}
                other => panic!("expected a PUBLISH, got {other:?}"),
            }
        }
    }

    pub fn suback(&self) -> Vec<p5::SubscribeReasonCode> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(p5::Packet::SubAck(s))) => return s.return_codes,
                Some(Ok(_)) => {}
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    }

    /// Subscribes with one filter (options set by `f`) and an optional subscription id.
    pub fn subscribe(
        &self,
        filter: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
        id: Option<usize>,
        f: impl FnOnce(&mut p5::Filter),
    ) -> Vec<p5::SubscribeReasonCode> {
        let mut fl = p5::Filter::new(filter, qos);
        f(&mut fl);
        match id {
            Some(id) => {
                let props = p5::SubscribeProperties {
                    id: Some(id),
                    user_properties: Vec::new(),
                };
                self.client
                    .subscribe_many_with_properties([fl], props)
                    .unwrap();
            }
            None => self.client.subscribe_many([fl]).unwrap(),
        }
        self.suback()
    }

    pub fn no_publish_for(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(p5::Packet::Publish(_))) => return false,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return true,
            }
        }
    }

    /// Waits for the connection to end; the reason of a server DISCONNECT if there was one.
    pub fn server_disconnect(&self, within: Duration) -> Option<p5::DisconnectReasonCode> {
        let end = Instant::now() + within;
        loop {
            match self.next_incoming(end.saturating_duration_since(Instant::now())) {
                Some(Ok(p5::Packet::Disconnect(d))) => return Some(d.reason_code),
                Some(Ok(_)) => {}
                Some(Err(rumqttc::v5::ConnectionError::MqttState(
                    rumqttc::v5::StateError::ServerDisconnect { reason_code, .. },
                ))) => return Some(reason_code),
                Some(Err(e)) => panic!("connection ended without DISCONNECT: {e:?}"),
                None => return None,
            }
        }
    }
}

/// A path under the broker's temp dir, as a string.
pub fn path_str(p: &std::path::Path) -> String {
    p.to_str().unwrap().to_owned()
}
