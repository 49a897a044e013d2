//! Black-box tests of `tern bench` against the real `tern broker`: the JSON report carries
//! every figure, QoS 1 loses nothing, and `conn` opens what it is asked to. Speeds are
//! printed by the tool but never asserted.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Broker, TERN, run};

fn bench(port: u16, args: &[&str], broker_pid: u32) -> serde_json::Value {
    let port = port.to_string();
    let pid = broker_pid.to_string();
    let (code, out, err) = run(
        Command::new(TERN).arg("bench").args(args).args([
            "-p",
            &port,
            "--json",
            "--broker-pid",
            &pid,
            "--drain",
            "10",
        ]),
        Duration::from_secs(120),
    );
    let line = out.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not one JSON line ({e}): {out:?}\nstderr: {err}"));
    assert_eq!(
        code,
        Some(0),
        "tern bench {args:?} failed: {v}\nstderr: {err}"
    );
    v
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v.get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("'{key}' missing or not a number in {v}"))
}

const FLOW_FIELDS: &[&str] = &[
    "sent",
    "expected",
    "received",
    "lost",
    "duplicates",
    "out_of_order",
    "msgs_per_s",
    "sent_per_s",
    "latency_p50_us",
    "latency_p99_us",
    "latency_p999_us",
    "latency_max_us",
    "broker_cpu_s",
    "broker_cpu_s_per_million",
    "broker_rss_peak_kb",
    "generator_cpu_s",
];

#[test]
fn pairs_qos0_and_qos1_report_every_figure_and_qos1_loses_nothing() {
    let broker = Broker::start();
    let pid = broker.child.id();
    for qos in ["0", "1"] {
        let v = bench(
            broker.port,
            &["pairs", "--messages", "2000", "-q", qos],
            pid,
        );
        for k in FLOW_FIELDS {
            num(&v, k);
        }
        assert_eq!(v["scenario"], "pairs");
        assert_eq!(num(&v, "publishers"), 4.0);
        assert_eq!(num(&v, "sent"), 8000.0, "{v}");
        assert_eq!(num(&v, "expected"), 8000.0, "{v}");
        assert_eq!(num(&v, "errors"), 0.0, "{v}");
        if qos == "1" {
            assert_eq!(num(&v, "lost"), 0.0, "QoS 1 lost messages: {v}");
            assert_eq!(num(&v, "received"), 8000.0, "{v}");
            assert_eq!(num(&v, "unacked"), 0.0, "{v}");
        }
        assert!(num(&v, "latency_p50_us") <= num(&v, "latency_max_us"));
    }
}

#[test]
fn mqtt5_fan_in_and_fan_out_at_qos1() {
    let broker = Broker::start();
    let pid = broker.child.id();
    for (scenario, pubs, subs) in [("fan-in", 5.0, 1.0), ("fan-out", 1.0, 5.0)] {
        let v = bench(
            broker.port,
            &[
                scenario,
                "-c",
                "5",
                "--messages",
                "300",
                "-q",
                "1",
                "--mqtt",
                "5",
            ],
            pid,
        );
        assert_eq!(v["mqtt"], "5");
        assert_eq!(
            (num(&v, "publishers"), num(&v, "subscribers")),
            (pubs, subs)
        );
        assert_eq!(num(&v, "expected"), 1500.0, "{v}");
        assert_eq!(num(&v, "lost"), 0.0, "{v}");
    }
}

#[test]
fn conn_opens_and_holds_fifty_connections() {
    let broker = Broker::start();
    let v = bench(
        broker.port,
        &["conn", "-c", "50", "--hold", "0.5"],
        broker.child.id(),
    );
    assert_eq!(v["scenario"], "conn");
    assert_eq!(num(&v, "connections"), 50.0);
    assert_eq!(num(&v, "connected"), 50.0, "{v}");
    assert_eq!(num(&v, "connect_failures"), 0.0);
    for k in [
        "conn_per_s",
        "bytes_per_conn",
        "broker_rss_peak_kb",
        "open_s",
    ] {
        num(&v, k);
    }
}

#[test]
fn refuses_non_loopback_and_short_payloads() {
    let (code, _, err) = run(
        Command::new(TERN).args(["bench", "pairs", "-h", "192.0.2.1", "--messages", "1"]),
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("loopback"), "{err}");
    let (code, _, err) = run(
        Command::new(TERN).args(["bench", "pairs", "--payload", "8"]),
        Duration::from_secs(10),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("--payload"), "{err}");
}

/// `--persistent-subscribers`: the subscribers' sessions outlive the run (so a broker with
/// `persistence true` stores what it queues for them), and QoS 1 still loses nothing.
#[test]
fn persistent_subscribers_keep_their_sessions() {
    let broker = Broker::with_config(
        "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\nsys_interval 1\n",
    );
    let pid = broker.child.id();
    let v = bench(
        broker.port,
        &[
            "pairs",
            "--messages",
            "500",
            "-q",
            "1",
            "--persistent-subscribers",
        ],
        pid,
    );
    assert_eq!(v["persistent_subscribers"], true, "{v}");
    assert_eq!(num(&v, "lost"), 0.0, "{v}");
    assert_eq!(num(&v, "received"), 2000.0, "{v}");
    // The 4 subscribers' sessions are still there, offline (the publishers' clean sessions
    // are not; the reading client is connected, so not counted).
    let port = broker.port.to_string();
    let offline = || {
        let (_, out, _) = run(
            Command::new(TERN).args([
                "sub",
                "-p",
                &port,
                "-t",
                "$SYS/broker/clients/disconnected",
                "-C",
                "1",
                "-W",
                "5",
            ]),
            Duration::from_secs(10),
        );
        out.trim().to_owned()
    };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = offline();
    while seen != "4" && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        seen = offline();
    }
    assert_eq!(
        seen, "4",
        "persistent subscriber sessions kept after the run"
    );
}
