//! `tern bench`: a load generator for MQTT brokers on this machine (loopback only), in the
//! manner of emqtt-bench. It maps arguments to a scenario, runs it on one current-thread
//! runtime (so the generator uses one core), samples the broker's CPU and memory from `/proc`
//! and prints a table or one JSON line. No broker logic lives here.
//!
//! Scenarios: `pairs` (N publisher/subscriber pairs), `fan-in` (N publishers, one wildcard
//! subscriber), `fan-out` (one publisher, N subscribers) and `conn` (idle connections, or
//! full TLS handshakes per second with `--tls-handshakes`). Every run is bounded: publishing
//! stops at `--duration` or `--messages`, the drain at `--drain`, connection counts at
//! [`MAX_CONNECTIONS`].

mod connections;
mod flow;
mod net;
mod procfs;
mod stamp;
mod stats;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use tern_codec::{ProtocolVersion, QoS};

use procfs::{Target as Proc, Watch};

/// Most connections one run opens.
pub const MAX_CONNECTIONS: usize = 100_000;
/// Largest payload accepted (the read buffers are sized from it).
pub const MAX_PAYLOAD: usize = 1024 * 1024;
/// Longest run.
pub const MAX_DURATION_S: f64 = 3600.0;
/// The keep-alive every connection asks for; no run may last this long, so no PINGREQ is
/// needed.
const KEEP_ALIVE_S: u16 = 7200;

/// Which load to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// N publisher/subscriber pairs, one topic each (-c pairs, default 4).
    Pairs,
    /// N publishers to one wildcard subscriber (-c publishers, default 50).
    FanIn,
    /// One publisher to N subscribers (-c subscribers, default 50).
    FanOut,
    /// Open N idle connections and hold them (-c connections, default 1000); with
    /// --tls-handshakes, open and drop connections for --duration instead.
    Conn,
}

/// MQTT protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MqttVersion {
    #[value(name = "3.1.1", alias = "311", alias = "4")]
    V311,
    #[value(name = "5", alias = "5.0")]
    V5,
}

/// Generate MQTT load against a broker on this machine and measure it.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// The scenario to run.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Broker host; must resolve to a loopback address.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(short = 'p', long, default_value_t = 1883)]
    pub port: u16,
    /// Pairs (pairs), publishers (fan-in), subscribers (fan-out) or connections (conn).
    #[arg(short = 'c', long)]
    pub count: Option<usize>,
    /// QoS of every PUBLISH and subscription.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload bytes (at least 16: send time, sequence number, publisher id).
    #[arg(short = 's', long, default_value_t = 64)]
    pub payload: usize,
    /// Seconds to publish (default 10, or an upper bound of 300 with --messages); for conn
    /// --tls-handshakes, seconds to churn.
    #[arg(short = 'd', long)]
    pub duration: Option<f64>,
    /// Messages each publisher sends (stops earlier than --duration if reached).
    #[arg(short = 'm', long)]
    pub messages: Option<u32>,
    /// Messages per second per publisher; 0 publishes as fast as the window allows.
    #[arg(short = 'r', long, default_value_t = 0.0)]
    pub rate: f64,
    /// Messages per publisher in flight end to end (sent, not yet received by every
    /// subscriber); at QoS 1/2 also the MQTT inflight limit (lowered to the broker's Receive
    /// Maximum). Default 1000, and for fan-in 1000 / -c, so that the one subscriber's broker
    /// queue (max_queued_messages, 1000 in mosquitto and tern) never overflows.
    #[arg(short = 'w', long, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub window: Option<u32>,
    /// Longest wait in seconds for messages still on their way after publishing stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Subscribers keep a session (3.1.1 clean session 0; 5.0 clean start 0 and a session
    /// expiry), so a broker with `persistence true` stores what it queues for them.
    #[arg(long)]
    pub persistent_subscribers: bool,
    /// MQTT version.
    #[arg(long = "mqtt", value_enum, default_value = "3.1.1")]
    pub mqtt: MqttVersion,
    /// Connect with TLS (rustls); needs --cafile.
    #[arg(long, requires = "cafile")]
    pub tls: bool,
    /// CA certificate (PEM) that signed the broker's certificate.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Name to check the broker's certificate against (default: --host).
    #[arg(long)]
    pub servername: Option<String>,
    /// conn: open and drop connections for --duration and report full handshakes per
    /// second (no session resumption).
    #[arg(long)]
    pub tls_handshakes: bool,
    /// conn: connections opened at once (default 64 idle, 8 with --tls-handshakes).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: Option<u32>,
    /// conn: seconds to hold the idle connections open.
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
    /// Sample this process's CPU time and memory from /proc during the run (the broker).
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// Print one JSON line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Every figure of a run. Fields that do not apply to the scenario are `null`.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub scenario: &'static str,
    pub mqtt: &'static str,
    pub qos: u8,
    pub tls: bool,
    pub payload: usize,
    pub window: u32,
    pub rate: f64,
    pub persistent_subscribers: bool,
    pub publishers: Option<usize>,
    pub subscribers: Option<usize>,
    pub connect_s: Option<f64>,
    pub sent: Option<u64>,
    pub expected: Option<u64>,
    pub received: Option<u64>,
    pub lost: Option<u64>,
    pub duplicates: Option<u64>,
    pub out_of_order: Option<u64>,
    pub foreign: Option<u64>,
    pub unacked: Option<u64>,
    pub rejected: Option<u64>,
    pub window_stalls: Option<u64>,
    pub publish_s: Option<f64>,
    pub elapsed_s: Option<f64>,
    pub sent_per_s: Option<f64>,
    pub msgs_per_s: Option<f64>,
    pub latency_count: Option<u64>,
    pub latency_p50_us: Option<f64>,
    pub latency_p99_us: Option<f64>,
    pub latency_p999_us: Option<f64>,
    pub latency_max_us: Option<f64>,
    pub latency_mean_us: Option<f64>,
    pub connections: Option<usize>,
    pub connected: Option<usize>,
    pub connect_failures: Option<usize>,
    pub open_s: Option<f64>,
    pub conn_per_s: Option<f64>,
    pub handshakes: Option<usize>,
    pub handshakes_per_s: Option<f64>,
    pub bytes_per_conn: Option<f64>,
    pub broker_pid: Option<u32>,
    pub broker_cpu_s: Option<f64>,
    pub broker_cpu_s_per_million: Option<f64>,
    pub broker_rss_start_kb: Option<u64>,
    pub broker_rss_end_kb: Option<u64>,
    pub broker_rss_peak_kb: Option<u64>,
    pub broker_hwm_kb: Option<u64>,
    pub generator_cpu_s: Option<f64>,
    pub generator_cpu_s_per_million: Option<f64>,
    pub measure_s: Option<f64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Samples the broker (if given) and this process between `start` and `end`, with a task
/// that keeps the broker's peak RSS.
#[derive(Debug)]
struct Probe {
    broker: Option<u32>,
    state: Rc<RefCell<ProbeState>>,
}

#[derive(Debug, Default)]
struct ProbeState {
    broker: Watch,
    generator: Watch,
    started: Option<std::time::Instant>,
    ended: Option<std::time::Instant>,
    running: bool,
}

impl Probe {
    fn new(broker: Option<u32>) -> Self {
        Self {
            broker,
            state: Rc::new(RefCell::new(ProbeState::default())),
        }
    }

    fn start(&self) {
        let mut st = self.state.borrow_mut();
        st.generator.tick(Proc::SelfProcess);
        st.started = Some(std::time::Instant::now());
        st.running = true;
        if let Some(pid) = self.broker {
            st.broker.tick(Proc::Pid(pid));
            let state = self.state.clone();
            tokio::task::spawn_local(async move {
                let mut every = tokio::time::interval(Duration::from_millis(100));
                loop {
                    every.tick().await;
                    let mut st = state.borrow_mut();
                    if !st.running {
                        break;
                    }
                    st.broker.tick(Proc::Pid(pid));
                }
            });
        }
    }

    /// A broker sample outside the periodic ones (memory after connections settle).
    fn mark(&self) -> Option<procfs::Sample> {
        let pid = self.broker?;
        let s = Proc::Pid(pid).sample()?;
        self.state.borrow_mut().broker.add(s);
        Some(s)
    }

    fn end(&self) {
        let mut st = self.state.borrow_mut();
        st.running = false;
        st.ended = Some(std::time::Instant::now());
        st.generator.tick(Proc::SelfProcess);
        if let Some(pid) = self.broker {
            st.broker.tick(Proc::Pid(pid));
        }
    }

    fn fill(&self, r: &mut Report, work: Option<u64>) {
        let st = self.state.borrow();
        let per_million = |cpu: Option<f64>| -> Option<f64> {
            let w = work.filter(|&w| w > 0)?;
            Some(cpu? / (w as f64 / 1e6))
        };
        r.measure_s = st
            .started
            .zip(st.ended)
            .map(|(a, b)| b.saturating_duration_since(a).as_secs_f64());
        r.generator_cpu_s = st.generator.cpu_s();
        r.generator_cpu_s_per_million = per_million(r.generator_cpu_s);
        if let Some(pid) = self.broker {
            r.broker_pid = Some(pid);
            r.broker_cpu_s = st.broker.cpu_s();
            r.broker_cpu_s_per_million = per_million(r.broker_cpu_s);
            r.broker_rss_start_kb = st.broker.first.map(|s| s.rss_kb);
            r.broker_rss_end_kb = st.broker.last.map(|s| s.rss_kb);
            r.broker_rss_peak_kb = st.broker.first.map(|_| st.broker.peak_rss_kb);
            r.broker_hwm_kb = st.broker.last.map(|s| s.hwm_kb);
        }
    }
}

fn secs(s: f64, what: &str) -> anyhow::Result<Duration> {
    if !(0.0..=MAX_DURATION_S).contains(&s) {
        bail!("{what} must be between 0 and {MAX_DURATION_S} seconds");
    }
    Ok(Duration::from_secs_f64(s))
}

fn rate(n: u64, s: f64) -> Option<f64> {
    (s > 0.0).then(|| n as f64 / s)
}

/// Resolves the broker address and refuses anything but loopback.
fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve '{host}'"))?
        .collect();
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "tern bench only loads brokers on this machine; '{host}' resolves to {}, which is not a loopback address",
            bad.ip()
        );
    }
    addrs
        .into_iter()
        .next()
        .with_context(|| format!("'{host}' resolves to no address"))
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let addr = resolve(&args.host, args.port)?;
    if args.payload < stamp::STAMP_LEN || args.payload > MAX_PAYLOAD {
        bail!(
            "--payload must be between {} and {MAX_PAYLOAD} bytes (the first 16 hold the send time, sequence number and publisher id)",
            stamp::STAMP_LEN
        );
    }
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        bail!("--rate must be 0 (unpaced) or a positive number of messages per second");
    }
    if args.tls_handshakes && args.scenario != Scenario::Conn {
        bail!("--tls-handshakes applies to the conn scenario only");
    }
    let count = args.count.unwrap_or(match args.scenario {
        Scenario::Pairs => 4,
        Scenario::FanIn | Scenario::FanOut => 50,
        Scenario::Conn => 1000,
    });
    let total_conns = match args.scenario {
        Scenario::Pairs => count.saturating_mul(2),
        Scenario::FanIn | Scenario::FanOut | Scenario::Conn => count.saturating_add(1),
    };
    if count == 0 || total_conns > MAX_CONNECTIONS {
        bail!(
            "-c must be between 1 and {} for {:?}",
            MAX_CONNECTIONS / 2,
            args.scenario
        );
    }
    if let Some(limit) = procfs::open_files_limit() {
        let need = total_conns as u64 + 64;
        if !args.tls_handshakes && need > limit {
            bail!(
                "this run needs about {need} open files but the limit is {limit}; raise it first (ulimit -n {need})"
            );
        }
    }
    let window = args.window.unwrap_or(match args.scenario {
        Scenario::FanIn => u32::try_from(1000 / count).unwrap_or(1).max(1),
        _ => 1000,
    });
    let duration = secs(
        args.duration
            .unwrap_or(if args.messages.is_some() { 300.0 } else { 10.0 }),
        "--duration",
    )?;
    let drain = secs(args.drain, "--drain")?;
    let hold = secs(args.hold, "--hold")?;
    let version = match args.mqtt {
        MqttVersion::V311 => ProtocolVersion::V311,
        MqttVersion::V5 => ProtocolVersion::V5,
    };
    let tls = if args.tls || args.tls_handshakes {
        let Some(cafile) = &args.cafile else {
            bail!(
                "TLS needs --cafile with the CA certificate that signed the broker's certificate"
            );
        };
        let name = args.servername.as_deref().unwrap_or(&args.host);
        Some((net::tls_connector(cafile)?, net::server_name(name)?))
    } else {
        None
    };
    let target = net::Target {
        addr,
        tls,
        version,
        keep_alive: KEEP_ALIVE_S,
        abortive_close: false,
        clean_start: true,
    };
    let qos = match args.qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    let run_id = format!("tb{}-{}", std::process::id(), nonce());
    let mut report = Report {
        tool: "tern bench",
        version: env!("CARGO_PKG_VERSION"),
        scenario: match args.scenario {
            Scenario::Pairs => "pairs",
            Scenario::FanIn => "fan-in",
            Scenario::FanOut => "fan-out",
            Scenario::Conn => "conn",
        },
        mqtt: flow::version_name(version),
        qos: args.qos,
        tls: target.tls.is_some(),
        payload: args.payload,
        window,
        rate: args.rate,
        persistent_subscribers: args.persistent_subscribers,
        ..Report::default()
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let local = tokio::task::LocalSet::new();
    let probe = Probe::new(args.broker_pid);
    local.block_on(&rt, async {
        match args.scenario {
            Scenario::Conn => {
                let spec = connections::ConnSpec {
                    count,
                    concurrency: args
                        .concurrency
                        .map_or(if args.tls_handshakes { 8 } else { 64 }, |c| c as usize),
                    hold,
                    handshakes: args.tls_handshakes,
                    duration,
                };
                run_conn(&spec, &target, &run_id, &probe, &mut report).await
            }
            shape => {
                let spec = flow::FlowSpec {
                    shape: match shape {
                        Scenario::FanIn => flow::Shape::FanIn,
                        Scenario::FanOut => flow::Shape::FanOut,
                        _ => flow::Shape::Pairs,
                    },
                    count,
                    qos,
                    payload: args.payload,
                    duration,
                    messages: args.messages,
                    rate: args.rate,
                    window,
                    drain,
                    prefix: format!("tern-bench/{run_id}"),
                    persistent_subscribers: args.persistent_subscribers,
                };
                run_flow(&spec, &target, &run_id, &probe, &mut report).await
            }
        }
    })?;

    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    let incomplete = report
        .connect_failures
        .is_some_and(|f| f > 0 && !args.tls_handshakes);
    Ok(if report.errors > 0 || incomplete {
        1
    } else {
        0
    })
}

async fn run_flow(
    spec: &flow::FlowSpec,
    target: &net::Target,
    run_id: &str,
    probe: &Probe,
    report: &mut Report,
) -> anyhow::Result<()> {
    let r = flow::run(spec, target, run_id, || probe.start(), || probe.end()).await?;
    report.publishers = Some(r.publishers);
    report.subscribers = Some(r.subscribers);
    report.connect_s = Some(r.connect_s);
    report.sent = Some(r.sent);
    report.expected = Some(r.expected);
    report.received = Some(r.received);
    report.lost = Some(r.lost);
    report.duplicates = Some(r.duplicates);
    report.out_of_order = Some(r.out_of_order);
    report.foreign = Some(r.foreign);
    report.unacked = Some(r.unacked);
    report.rejected = Some(r.rejected);
    report.window_stalls = Some(r.window_stalls);
    report.publish_s = Some(r.publish_s);
    report.elapsed_s = Some(r.elapsed_s);
    report.sent_per_s = rate(r.sent, r.publish_s);
    report.msgs_per_s = rate(r.received, r.elapsed_s);
    if let Some(p) = r.latency.percentiles() {
        report.latency_count = Some(r.latency.count());
        report.latency_p50_us = Some(p.p50_us);
        report.latency_p99_us = Some(p.p99_us);
        report.latency_p999_us = Some(p.p999_us);
        report.latency_max_us = Some(p.max_us);
        report.latency_mean_us = Some(p.mean_us);
    }
    report.errors = r.errors;
    report.first_error = r.first_error;
    probe.fill(report, Some(r.received));
    Ok(())
}

async fn run_conn(
    spec: &connections::ConnSpec,
    target: &net::Target,
    run_id: &str,
    probe: &Probe,
    report: &mut Report,
) -> anyhow::Result<()> {
    if spec.handshakes {
        probe.start();
        let r = connections::run_handshakes(spec, target, run_id).await;
        probe.end();
        report.handshakes = Some(r.connected);
        report.handshakes_per_s = rate(r.connected as u64, r.open_s);
        report.connect_failures = Some(r.failed);
        report.open_s = Some(r.open_s);
        report.first_error = r.first_error;
        probe.fill(report, Some(r.connected as u64));
        return Ok(());
    }
    probe.start();
    let after = Rc::new(RefCell::new(None));
    let after2 = after.clone();
    let r = connections::run_idle(
        spec,
        target,
        run_id,
        || *after2.borrow_mut() = probe.mark(),
        || probe.end(),
    )
    .await;
    report.connections = Some(r.requested);
    report.connected = Some(r.connected);
    report.connect_failures = Some(r.failed);
    report.open_s = Some(r.open_s);
    report.conn_per_s = rate(r.connected as u64, r.open_s);
    report.first_error = r.first_error;
    probe.fill(report, Some(r.connected as u64));
    let before = probe.state.borrow().broker.first;
    if let (Some(b), Some(a)) = (before, *after.borrow()) {
        if r.connected > 0 {
            let delta = a.rss_kb.saturating_sub(b.rss_kb) as f64 * 1024.0;
            report.bytes_per_conn = Some(delta / r.connected as f64);
        }
        report.broker_rss_end_kb = Some(a.rss_kb);
    }
    Ok(())
}

/// A few random-ish bits so two runs against one broker use different topics and ids.
fn nonce() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t % 1_000_000
}

fn print_table(r: &Report) {
    let v = serde_json::to_value(r).unwrap_or_default();
    let Some(map) = v.as_object() else {
        return;
    };
    println!(
        "tern bench {} ({} MQTT {}, QoS {}{})",
        r.scenario,
        r.version,
        r.mqtt,
        r.qos,
        if r.tls { ", TLS" } else { "" }
    );
    for (k, val) in map {
        let text = match val {
            serde_json::Value::Null => continue,
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() => format_float(f),
                _ => n.to_string(),
            },
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        println!("  {k:<28} {text}");
    }
}

fn format_float(f: f64) -> String {
    if f.abs() >= 1000.0 {
        format!("{f:.0}")
    } else if f.abs() >= 10.0 {
        format!("{f:.1}")
    } else {
        format!("{f:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only() {
        assert!(resolve("127.0.0.1", 1883).is_ok());
        assert!(resolve("::1", 1883).is_ok());
        let e = resolve("192.0.2.1", 1883).unwrap_err().to_string();
        assert!(e.contains("not a loopback address"), "{e}");
    }

    #[test]
    fn report_has_every_field_even_when_null() {
        let v = serde_json::to_value(Report::default()).unwrap();
        for k in [
            "msgs_per_s",
            "lost",
            "latency_p99_us",
            "bytes_per_conn",
            "broker_cpu_s_per_million",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
    }

    #[test]
    fn floats_are_readable() {
        assert_eq!(format_float(123456.7), "123457");
        assert_eq!(format_float(12.34), "12.3");
        assert_eq!(format_float(0.1234), "0.123");
    }
}
