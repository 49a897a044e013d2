//! `tern broker`'s command line against the real binary: `-d` (checks the configuration
//! before detaching, detaches once), several `-p`, options tern refuses at start-up, and
//! logging as a user configures it (no `RUST_LOG`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Processes whose command line has `arg` as one of its arguments (read from /proc).
fn pids_with_arg(arg: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|a| a == arg.as_os_str().as_encoded_bytes())
        {
            out.push(pid);
        }
    }
    out
}

/// Kills (by pid) every process started with this configuration file, when dropped: a
/// daemon must not outlive its test, whatever the test's outcome.
struct DaemonGuard {
    config: PathBuf,
}

fn kill(sig: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl DaemonGuard {
    /// Stops and kills every process started with the configuration file. A broker that
    /// re-detaches starts another process as it exits, so each one is stopped first (a
    /// stopped process cannot start another) until no new one appears, then all are killed.
    fn kill_all(&self) {
        let mut stopped: Vec<u32> = Vec::new();
        let mut quiet_rounds = 0;
        let end = Instant::now() + Duration::from_secs(20);
        while quiet_rounds < 5 && Instant::now() < end {
            let new: Vec<u32> = pids_with_arg(&self.config)
                .into_iter()
                .filter(|p| !stopped.contains(p))
                .collect();
            if new.is_empty() {
                quiet_rounds += 1;
            } else {
                quiet_rounds = 0;
            }
            for p in new {
                kill("STOP", p);
                stopped.push(p);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in stopped {
            kill("KILL", p);
        }
    }
}

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn wait_listening(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A `tern broker FLAGS -c CONF` run on `text` written to `conf`; the guard kills whatever
/// it left running when dropped.
struct DaemonRun {
    guard: DaemonGuard,
    code: Option<i32>,
    out: String,
    err: String,
}

fn run_broker(conf: &Path, text: &str, flags: &[&str]) -> DaemonRun {
    std::fs::write(conf, text).unwrap();
    let guard = DaemonGuard {
        config: conf.to_path_buf(),
    };
    let (code, out, err) = run(
        Command::new(TERN)
            .arg("broker")
            .args(flags)
            .arg("-c")
            .arg(conf),
        Duration::from_secs(20),
    );
    DaemonRun {
        guard,
        code,
        out,
        err,
    }
}

#[test]
fn daemon_with_a_bad_config_exits_non_zero_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    let port = free_port();
    let DaemonRun {
        guard: _guard,
        code,
        out,
        err,
    } = run_broker(
        &conf,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages lots\n"),
        &["-d"],
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?}; stdout {out}; stderr {err}"
    );
    let at = format!("{}:3", conf.display());
    assert!(err.contains(&at), "stderr must name {at}: {err}");
    assert!(
        !out.contains("running in the background"),
        "nothing may detach: {out}"
    );
    assert!(!wait_listening(port, Duration::from_millis(500)));
}

#[test]
fn daemon_with_a_missing_password_file_exits_non_zero_before_detaching() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tern.conf");
    let missing = dir.path().join("no-such-passwd");
    let port = free_port();
    let DaemonRun {
        guard: _guard,
        code,
        out,
        err,
    } = run_broker(
        &conf,
        &format!(
            "listener {port} 127.0.0.1\npassword_file {}\n",
            missing.display()
        ),
        &["-d"],
    );
    assert!(
        code.is_some_and(|c| c != 0),
        "exit code {code:?}; stdout {out}; stderr {err}"
    );
    assert!(
        err.contains(&missing.display().to_string())
            && err.contains("cannot read the password file"),
        "stderr: {err}"
    );
    assert!(!wait_listening(port, Duration::from_millis(500)));
}

#[test]
fn daemon_with_combined_short_flags_leaves_exactly_one_broker() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tern.conf");
    let port = free_port();
    let DaemonRun {
        guard,
        code,
        out,
        err,
    } = run_broker(
        &conf,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        &["-vd"],
    );
    assert_eq!(code, Some(0), "stdout {out}; stderr {err}");
    let pid: u32 = out
        .split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {out}"));
    assert!(
        wait_listening(port, Duration::from_secs(15)),
        "the detached broker never listened on {port}"
    );
    let mut c = Raw::connect(port);
    assert_eq!(c.connect_v311("daemon"), vec![0x20, 2, 0, 0]);
    // A child that detached again would have exited (and started another).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        pids_with_arg(&conf),
        vec![pid],
        "exactly the reported broker must be running"
    );
    // SIGTERM stops the daemon (the guard kills it if not).
    kill("TERM", pid);
    let end = Instant::now() + Duration::from_secs(10);
    while !pids_with_arg(&conf).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        pids_with_arg(&conf).is_empty(),
        "the broker did not stop on SIGTERM"
    );
    drop(guard);
}

#[test]
fn two_dash_p_ports_both_listen() {
    let [a, b] = free_ports::<2>();
    let broker = Broker::start_args(&["-p", &a.to_string(), "-p", &b.to_string()], None);
    for port in [a, b] {
        let mut c = Raw::connect(port);
        assert_eq!(
            c.connect_v311(&format!("p{port}")),
            vec![0x20, 2, 0, 0],
            "port {port}"
        );
    }
    drop(broker);
}

/// Options tern refuses: start-up stops, names the file and line, and says what to do.
#[test]
fn refused_options_stop_start_up_naming_file_and_line() {
    // (name, configuration with "{listener}" for "listener PORT 127.0.0.1", line reported,
    // text expected)
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "mount_point before a listener",
            "mount_point site/\n{listener}\nallow_anonymous true\n",
            1,
            "no listener is defined yet",
        ),
        (
            "bridge",
            "{listener}\nallow_anonymous true\nconnection b1\naddress 127.0.0.1:1\ntopic # out\n",
            3,
            "bridges",
        ),
        (
            "mount_point",
            "{listener}\nmount_point site/\nallow_anonymous true\n",
            1,
            "mount_point",
        ),
        (
            "plugin",
            "{listener}\nallow_anonymous true\nplugin /usr/lib/x.so\n",
            1,
            "plugins",
        ),
        (
            "auth_plugin",
            "{listener}\nallow_anonymous true\nauth_plugin /usr/lib/x.so\n",
            1,
            "plugins",
        ),
        ("psk_hint", "{listener}\npsk_hint hint\n", 1, "TLS-PSK"),
        ("psk_file", "{listener}\npsk_file /etc/psk\n", 1, "TLS-PSK"),
        (
            "unix socket",
            "{listener}\nallow_anonymous true\nlistener 0 {dir}/tern.sock\n",
            3,
            "unix socket",
        ),
    ];
    let mut failures = Vec::new();
    for (name, rest, line, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("tern.conf");
        let port = free_port();
        let text = rest
            .replace("{listener}", &format!("listener {port} 127.0.0.1"))
            .replace("{dir}", dir.path().to_str().unwrap());
        std::fs::write(&conf, text).unwrap();
        let (code, out, err) = run(
            Command::new(TERN)
                .arg("broker")
                .arg("-c")
                .arg(&conf)
                .env_remove("RUST_LOG"),
            Duration::from_secs(20),
        );
        let at = format!("{}:{line}", conf.display());
        if code.is_none_or(|c| c == 0) || !err.contains(&at) || !err.contains(needle) {
            failures.push(format!(
                "{name}: exit {code:?}, expected {at} and '{needle}' in stderr: {err} (stdout: {out})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const LISTENER: &str = "listener {port} 127.0.0.1\nallow_anonymous true\n";

/// A line logged at info level on demand: SIGHUP's "configuration reloaded".
fn reload_and_wait(b: &Broker, read: impl Fn() -> String) -> String {
    b.signal("HUP");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = read();
        if text.contains("configuration reloaded") {
            return text;
        }
        assert!(
            Instant::now() < end,
            "no 'configuration reloaded' line; log so far: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn log_dest_file_writes_to_that_file_without_rust_log() {
    let config = format!("log_dest file {{dir}}/x.log\n{LISTENER}");
    let b = Broker::start_with_log(&[], Some(&config), None);
    let file = b.path("x.log");
    let text = reload_and_wait(&b, || std::fs::read_to_string(&file).unwrap_or_default());
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !b.log().contains("configuration reloaded"),
        "log_dest file only: nothing on stderr: {}",
        b.log()
    );
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with '{needle}' in: {text}"))
}

fn starts_with_date(line: &str) -> bool {
    let b = line.trim_start().as_bytes();
    b.len() > 5 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

#[test]
fn log_timestamp_false_prints_lines_without_a_timestamp() {
    let with = Broker::start_with_log(&[], Some(LISTENER), None);
    let text = reload_and_wait(&with, || with.log());
    let line = line_with(&text, "configuration reloaded");
    assert!(starts_with_date(line), "default: a timestamp first: {line}");

    let config = format!("log_timestamp false\n{LISTENER}");
    let without = Broker::start_with_log(&[], Some(&config), None);
    let text = reload_and_wait(&without, || without.log());
    let line = line_with(&text, "configuration reloaded");
    assert!(!starts_with_date(line), "log_timestamp false: {line}");
    assert!(line.trim_start().starts_with("INFO"), "{line}");
}

/// `log_timestamp_format` starts each line with the time in that format (here
/// `2026/11/25 06:45:01 INFO ...`); a specifier tern does not know is a warning at its line.
#[test]
fn log_timestamp_format_shapes_the_timestamp_of_log_lines() {
    let config = format!("log_timestamp_format %Y/%m/%d %H:%M:%S\n{LISTENER}");
    let b = Broker::start_with_log(&[], Some(&config), None);
    let text = reload_and_wait(&b, || b.log());
    let line = line_with(&text, "configuration reloaded");
    let shape: String = line
        .trim_start()
        .chars()
        .take(20)
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd/dd/dd dd:dd:dd ", "{line}");
    assert!(
        line.trim_start()[20..].trim_start().starts_with("INFO"),
        "{line}"
    );

    let config = format!("{LISTENER}log_timestamp_format %Y %Q\n");
    let bad = Broker::start_with_log(&[], Some(&config), None);
    let text = reload_and_wait(&bad, || bad.log());
    let warning = format!(
        "tern: warning: {}:3: log_timestamp_format: '%Y %Q' holds a strftime specifier tern does not know, so log lines use the default timestamp; use the usual ones such as %Y-%m-%dT%H:%M:%S",
        bad.path("tern.conf").display()
    );
    assert!(text.contains(&warning), "{text}");
    let line = line_with(&text, "configuration reloaded");
    assert!(starts_with_date(line), "the default timestamp: {line}");
}

#[test]
fn dash_v_logs_debug_lines_the_default_does_not() {
    for verbose in [false, true] {
        let args: &[&str] = if verbose { &["-v"] } else { &[] };
        let b = Broker::start_with_log(args, Some(LISTENER), None);
        let mut c = Raw::connect(b.port);
        assert_eq!(c.connect_v311("logged"), vec![0x20, 2, 0, 0]);
        drop(c);
        let text = reload_and_wait(&b, || b.log());
        let debug = text.lines().any(|l| l.contains("DEBUG"));
        assert_eq!(
            debug, verbose,
            "-v {verbose}: debug lines present {debug}: {text}"
        );
        if verbose {
            assert!(text.contains("client connected"), "{text}");
        }
    }
}

// ----- SIGHUP ----------------------------------------------------------------------------

fn hup(b: &Broker) {
    let before = b.log().matches("configuration reloaded").count();
    b.signal("HUP");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if b.log().matches("configuration reloaded").count() > before {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no 'configuration reloaded' after SIGHUP:\n{}", b.log());
}

/// The CONNACK return code an anonymous 3.1.1 client gets on `port`.
fn anonymous_connack(port: u16, id: &str) -> u8 {
    let mut c = Raw::connect(port);
    let ack = c.connect_v311(id);
    assert_eq!(ack.len(), 4, "CONNACK: {ack:?}");
    ack[3]
}

/// Listeners are paired by address on SIGHUP: a listener inserted before the others in
/// the file does not move their settings (here `allow_anonymous`) onto their neighbours,
/// and is not started; the log says a restart is needed.
#[test]
fn sighup_pairs_listeners_by_address_not_position() {
    let [a, b, c] = free_ports::<3>();
    let open = format!("listener {a} 127.0.0.1\nallow_anonymous true\n");
    let closed = format!("listener {b} 127.0.0.1\nallow_anonymous false\n");
    let config = format!("per_listener_settings true\n{open}{closed}");
    let broker = Broker::with_config(&config);
    let conf = broker.path("tern.conf");
    assert_eq!(anonymous_connack(a, "a1"), 0);
    assert_ne!(anonymous_connack(b, "b1"), 0);

    let inserted = format!("listener {c} 127.0.0.1\nallow_anonymous false\n");
    std::fs::write(
        &conf,
        format!("per_listener_settings true\n{inserted}{open}{closed}"),
    )
    .unwrap();
    hup(&broker);
    assert_eq!(
        anonymous_connack(a, "a2"),
        0,
        "port {a} keeps allow_anonymous true"
    );
    assert_ne!(
        anonymous_connack(b, "b2"),
        0,
        "port {b} keeps allow_anonymous false"
    );
    assert!(
        TcpStream::connect(("127.0.0.1", c)).is_err(),
        "a listener added to the file is not started by SIGHUP"
    );
    let log = broker.log();
    assert!(
        log.contains("listener added to the configuration file: restart the broker"),
        "{log}"
    );

    // Removing the first listener from the file leaves the other's rule in place.
    std::fs::write(&conf, format!("per_listener_settings true\n{closed}")).unwrap();
    hup(&broker);
    assert_ne!(anonymous_connack(b, "b3"), 0);
    assert_eq!(
        anonymous_connack(a, "a3"),
        0,
        "a removed listener keeps running"
    );
    assert!(
        broker
            .log()
            .contains("listener removed from the configuration file"),
        "{}",
        broker.log()
    );
}

/// `message_size_limit` is reloaded: a message over the old limit is dropped, the same
/// message under the new limit (after SIGHUP) is delivered.
#[test]
fn sighup_applies_a_changed_message_size_limit() {
    let base = "listener {port} 127.0.0.1\nallow_anonymous true\n";
    let broker = Broker::with_config(&format!("{base}message_size_limit 10\n"));
    let conf = broker.path("tern.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let mut sub = Raw::connect(broker.port);
    sub.connect_v311("sub");
    sub.send(&[0x82, 6, 0, 1, 0, 1, b't', 0]);
    assert_eq!(sub.recv(), Some(vec![0x90, 3, 0, 1, 0]));
    sub.s
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let payload = b"twenty-bytes-payload";
    let mut publish = vec![0x30, (3 + payload.len()) as u8, 0, 1, b't'];
    publish.extend(payload);
    let mut p = Raw::connect(broker.port);
    p.connect_v311("pub");
    p.send(&publish);
    assert_eq!(sub.recv(), None, "20 bytes are over message_size_limit 10");

    std::fs::write(
        &conf,
        text.replace("message_size_limit 10", "message_size_limit 100"),
    )
    .unwrap();
    hup(&broker);
    let mut p = Raw::connect(broker.port);
    p.connect_v311("pub2");
    p.send(&publish);
    assert_eq!(
        sub.recv(),
        Some(publish),
        "message_size_limit 100 after SIGHUP"
    );
}

/// Options read only at start-up are named in a warning after SIGHUP when they changed.
#[test]
fn sighup_warns_about_options_that_need_a_restart() {
    let broker = Broker::with_config("listener {port} 127.0.0.1\nallow_anonymous true\n");
    let conf = broker.path("tern.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        format!("max_packet_size 2000\nwebsockets_headers_size 2048\n{text}"),
    )
    .unwrap();
    hup(&broker);
    let log = broker.log();
    for name in ["max_packet_size", "websockets_headers_size"] {
        assert!(
            log.contains(&format!("{name} changed: restart the broker to apply it")),
            "{name}: {log}"
        );
    }
}

/// Local-only mode (no listener in the file, `-p` ports): a reload finds the same
/// listeners and warns about nothing.
#[test]
fn sighup_in_local_only_mode_keeps_its_listeners_without_warnings() {
    let port = free_port();
    let broker = Broker::start_args(&["-p", &port.to_string()], Some("max_keepalive 100\n"));
    assert_eq!(broker.port, port);
    hup(&broker);
    let log = broker.log();
    assert!(!log.contains("restart the broker"), "{log}");
    assert_eq!(anonymous_connack(port, "local"), 0);
}

/// `pid_file`, as Mosquitto 2.0 does it: the running broker's pid is written at start-up
/// (in the foreground and with `-d`, where it names the detached process) and the file is
/// removed when the broker stops cleanly.
#[test]
fn pid_file_names_the_running_broker_and_goes_at_exit() {
    let dir = tempfile::tempdir().unwrap();
    let pid_path = dir.path().join("tern.pid");
    let b = Broker::with_config(&format!(
        "listener {{port}} 127.0.0.1\nallow_anonymous true\npid_file {}\n",
        pid_path.display()
    ));
    assert_eq!(
        std::fs::read_to_string(&pid_path).unwrap().trim(),
        b.child.id().to_string(),
        "foreground: the broker's own pid"
    );
    let mut b = b;
    b.signal("TERM");
    assert_eq!(b.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!pid_path.exists(), "removed at a clean exit");

    // -d: the file names the detached broker, which the test stops through it.
    let conf = dir.path().join("daemon.conf");
    let port = free_port();
    let DaemonRun {
        guard,
        code,
        out,
        err,
    } = run_broker(
        &conf,
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npid_file {}\n",
            pid_path.display()
        ),
        &["-d"],
    );
    assert_eq!(code, Some(0), "stdout {out}; stderr {err}");
    assert!(wait_listening(port, Duration::from_secs(15)));
    let end = Instant::now() + Duration::from_secs(10);
    while !pid_path.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid: u32 = std::fs::read_to_string(&pid_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pids_with_arg(&conf), vec![pid], "the pid of the daemon");
    kill("TERM", pid);
    let end = Instant::now() + Duration::from_secs(10);
    while pid_path.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pid_path.exists(), "the daemon removed it at exit");
    drop(guard);
}

/// A pid_file that cannot be written stops start-up with the path and what to do, before
/// detaching with `-d` too (Mosquitto exits as well).
#[test]
fn unwritable_pid_file_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("tern.conf");
    let bad = dir.path().join("no-such-dir").join("tern.pid");
    let text = format!(
        "listener {} 127.0.0.1\nallow_anonymous true\npid_file {}\n",
        free_port(),
        bad.display()
    );
    for daemon in [false, true] {
        let flags: &[&str] = if daemon { &["-d"] } else { &[] };
        let DaemonRun {
            guard,
            code,
            out,
            err,
        } = run_broker(&conf, &text, flags);
        assert_ne!(code, Some(0), "-d {daemon}: stdout {out}; stderr {err}");
        assert!(
            err.contains("cannot write pid_file") && err.contains(&*bad.to_string_lossy()),
            "-d {daemon}: {err}"
        );
        assert!(
            err.contains("create its directory"),
            "says what to do: {err}"
        );
        assert!(pids_with_arg(&conf).is_empty(), "nothing left running");
        drop(guard);
    }
}
