//! `tern device run`: the tutorial's ESP8266 board as a process, or a fleet of them.
//!
//! Each device is one task that drives its own connection (`super::link`: the sans-IO
//! `ClientConn` of tern-proto over TCP or TLS, no client task or channels). It connects with
//! the flags of `tern sub` (TLS with a CA and/or a pinned fingerprint; the rustls
//! configuration is built once for the fleet), subscribes to the command topic,
//! prints each message as the sketch's `subCallback` does, drives the simulated relay and
//! LED (`super::sim`), and publishes `devices/<id>/state` (retained), `devices/<id>/status`
//! (`online` retained, will `offline` retained) and `devices/<id>/telemetry`.
//!
//! Reconnecting is the device's own loop, as in the sketch's `reconnect()`: after a loss it
//! tries at once, then every `--reconnect-delay` seconds (`fixed`, default 5 s), or with
//! exponential backoff and full jitter (`backoff`). Every connection attempt of the process
//! takes a slot of `--connect-rate` per second, so a fleet start (or a fleet reconnecting
//! after a broker restart) is spread out instead of a storm.
//!
//! Stopping: `--duration`, Ctrl-C or SIGTERM stop the devices cleanly, as firmware that is
//! told to shut down would: each publishes `offline` (retained) and sends DISCONNECT (so the
//! broker drops the will). A board that loses power cannot do that; simulate it with
//! SIGKILL, and the broker publishes the will (`offline`, retained) instead.
//!
//! Summary lines (every `--summary-interval` for fleets and `--quiet`, and at the end):
//! `connected` devices connected and subscribed now, `reconnects` successful connections
//! after a device's first, `received` messages on the command topic, `commands` those that
//! were commands, `ignored` those that were not, `published` publishes handed to the
//! connection, `errors` failed attempts, lost connections and refused requests.
//!
//! Memory: per device one task, its client id, a few bytes of board state and, while
//! connected, the socket, the TLS session, a 1 KiB read buffer and the `ClientConn` (whose
//! queue is capped at a few messages). Nothing grows while offline: telemetry is skipped,
//! like `PubSubClient::publish` returning false.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tern_client::{Backoff, ClientError, Message, OwnedProperties, QoS, SubscriptionOptions};
use tern_codec::ReasonCode;
use tern_proto::client::Event;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::link::{Link, Target};
use super::sim::{self, Device};
use crate::conn_args::{ConnArgs, parse_qos};

/// `println!` that neither panics nor stops the devices when stdout is closed (`| head`).
macro_rules! say {
    ($($t:tt)*) => {{
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, $($t)*).and_then(|()| o.flush());
    }};
}

/// The same without the newline (the sketch's `Serial.print`).
macro_rules! say_part {
    ($($t:tt)*) => {{
        let mut o = std::io::stdout().lock();
        let _ = write!(o, $($t)*).and_then(|()| o.flush());
    }};
}

/// How a device waits between connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReconnectMode {
    /// Like the sketch: try at once after a loss, then every --reconnect-delay seconds.
    Fixed,
    /// Exponential backoff with full jitter: attempt n waits a random time up to
    /// min(--reconnect-max, --reconnect-delay * 2^n).
    Backoff,
}

/// Simulate the tutorial's ESP8266 board (mosquitto_sub's connection and TLS flags).
#[derive(Debug, Clone, Args)]
#[command(
    disable_help_flag = true,
    mut_arg("keepalive", |a| a
        .default_value("15")
        .help("Keep-alive in seconds (PubSubClient's MQTT_KEEPALIVE is 15)")),
    mut_arg("id", |a| a.help("Fixed client id (with --count: ID-0 .. ID-N-1)")),
    mut_arg("id_prefix", |a| a.help(
        "Client id prefix; a random hex suffix is added like the sketch [default: ESP8266Client-]"
    )),
    mut_arg("quiet", |a| a.help(
        "Print only the summaries, not each connection and message"
    )),
    // The device sets its own will and takes no properties.
    mut_arg("will_topic", |a| a.hide(true)),
    mut_arg("will_payload", |a| a.hide(true)),
    mut_arg("will_qos", |a| a.hide(true)),
    mut_arg("will_retain", |a| a.hide(true)),
    mut_arg("properties", |a| a.hide(true)),
)]
pub struct RunArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Command topic to subscribe to [default: test001].
    #[arg(short = 't', long = "topic")]
    pub topic: Option<String>,
    /// QoS of the command subscription (PubSubClient subscribes at 0 or 1).
    #[arg(short = 'q', long = "qos", default_value_t = 0)]
    pub qos: u8,
    /// Seconds between telemetry messages on devices/<id>/telemetry (0: none).
    #[arg(long = "telemetry-interval", default_value_t = 10.0)]
    pub telemetry_interval: f64,
    /// How to wait between connection attempts.
    #[arg(long = "reconnect", value_enum, default_value = "fixed")]
    pub reconnect: ReconnectMode,
    /// Seconds between attempts (fixed), or the first backoff ceiling (backoff).
    #[arg(long = "reconnect-delay", default_value_t = 5.0)]
    pub reconnect_delay: f64,
    /// Largest backoff ceiling in seconds (backoff).
    #[arg(long = "reconnect-max", default_value_t = 60.0)]
    pub reconnect_max: f64,
    /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long = "duration")]
    pub duration: Option<f64>,
    /// Simulate this many devices in one process, with ids PREFIX<hex>-0 .. -N-1.
    #[arg(long = "count", default_value_t = 1)]
    pub count: u32,
    /// Connection attempts per second across the whole process [default: 500; 200 with
    /// TLS, tern broker's default tls_handshake_rate].
    #[arg(long = "connect-rate")]
    pub connect_rate: Option<f64>,
    /// Seconds between summary lines (fleets and --quiet; a single device prints one at the
    /// end).
    #[arg(long = "summary-interval", default_value_t = 5.0)]
    pub summary_interval: f64,
}

/// The most devices one process simulates (file descriptors and memory are the limits).
const MAX_COUNT: u32 = 100_000;
/// How long a clean stop waits for `offline` and DISCONNECT to be written.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// The largest packet a device accepts (a larger one ends the connection). PubSubClient's
/// default buffer is 256 bytes and it drops anything bigger.
const MAX_PACKET_SIZE: u32 = 64 * 1024;

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        bail!("{flag} must be a number of seconds from 0 up, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Everything the device tasks share.
#[derive(Debug)]
struct Ctx {
    /// Where to connect (TLS configuration built once).
    target: Target,
    /// Protocol options without client id and will.
    mqtt: tern_proto::ClientOptions,
    topic: String,
    qos: QoS,
    telemetry: Option<Duration>,
    mode: ReconnectMode,
    backoff: Backoff,
    /// Print each connection and message (one device, not --quiet).
    verbose: bool,
    stats: Stats,
    rate: RateLimit,
}

/// Counters shown in the summary lines.
#[derive(Debug, Default)]
struct Stats {
    /// Devices connected and subscribed right now.
    connected: AtomicU64,
    /// Successful connections after a device's first.
    reconnects: AtomicU64,
    /// Messages received on the command topic.
    received: AtomicU64,
    /// Messages that were valid commands.
    commands: AtomicU64,
    /// Messages that were not commands (reported and ignored).
    ignored: AtomicU64,
    /// Publishes acknowledged (QoS 1) or written (QoS 0).
    published: AtomicU64,
    /// Failed connection attempts, lost connections, refused or failed requests.
    errors: AtomicU64,
    /// Devices that connected at least once.
    ever_connected: AtomicU64,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    fn line(&self, devices: u32) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "devices={devices} connected={} reconnects={} received={} commands={} ignored={} published={} errors={}",
            g(&self.connected),
            g(&self.reconnects),
            g(&self.received),
            g(&self.commands),
            g(&self.ignored),
            g(&self.published),
            g(&self.errors),
        )
    }
}

/// Connection attempts start at most `rate` per second across the process.
#[derive(Debug)]
struct RateLimit {
    period: Duration,
    next: std::sync::Mutex<Instant>,
}

impl RateLimit {
    fn new(per_sec: f64) -> Self {
        Self {
            period: Duration::from_secs_f64(1.0 / per_sec),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + self.period;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    crate::pubsub_logging(args.conn.debug);
    let plan = Plan::new(&args)?;
    let rt = if args.count > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    rt.block_on(plan.run())
}

/// Validated arguments.
#[derive(Debug)]
struct Plan {
    ctx: Ctx,
    ids: Ids,
    count: u32,
    duration: Option<Duration>,
    summary_every: Option<Duration>,
}

/// The client ids: `base` alone for one device, `base-<index>` for a fleet.
#[derive(Debug)]
struct Ids {
    base: String,
    fleet: bool,
}

impl Ids {
    fn get(&self, i: u32) -> String {
        if self.fleet {
            format!("{}-{i}", self.base)
        } else {
            self.base.clone()
        }
    }
}

fn check_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty() {
        bail!("the client id is empty: give one with -i ID or a prefix with -I PREFIX");
    }
    if let Some(c) = id.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0')) {
        bail!(
            "the client id '{id}' contains '{c}', which cannot be part of devices/<id>/...: choose another with -i or -I"
        );
    }
    Ok(())
}

impl Plan {
    fn new(args: &RunArgs) -> anyhow::Result<Self> {
        if args.count == 0 || args.count > MAX_COUNT {
            bail!("--count must be from 1 to {MAX_COUNT}");
        }
        let c = &args.conn;
        if c.will_topic.is_some() || c.will_payload.is_some() || c.will_retain {
            bail!(
                "tern device run sets its own will ('offline', retained, on devices/<id>/status): remove --will-*"
            );
        }
        if !c.properties.is_empty() {
            bail!("tern device run does not take -D properties");
        }
        let base = match (&c.id, &c.id_prefix) {
            (Some(_), Some(_)) => bail!("-i and -I cannot be used together"),
            (Some(id), None) => id.clone(),
            (None, prefix) => {
                let prefix = prefix.as_deref().unwrap_or(sim::DEFAULT_ID_PREFIX);
                format!("{prefix}{}", sim::random_suffix(rand::random()))
            }
        };
        check_id(&base)?;
        let ids = Ids {
            base,
            fleet: args.count > 1,
        };
        // Resolve the shared flags with a stand-in id (so -c is accepted); each device sets
        // its own id and will.
        let mut conn = c.clone();
        conn.id = Some(ids.get(0));
        conn.id_prefix = None;
        let mut resolved = conn.resolve("device")?;
        let topic = args
            .topic
            .clone()
            .or(resolved.url_topic.take())
            .unwrap_or_else(|| sim::DEFAULT_COMMAND_TOPIC.to_owned());
        if let Err(e) = tern_codec::topic::validate_filter(&topic) {
            bail!("invalid command topic '{topic}': {e}");
        }
        let qos = parse_qos(args.qos, "-q")?;
        if qos == QoS::ExactlyOnce {
            bail!("-q 2: PubSubClient subscribes at QoS 0 or 1 only");
        }
        let mut options = resolved.options;
        options.connect_timeout = Duration::from_secs(15);
        let mut mqtt = options.mqtt.clone();
        // PubSubClient's socket time-out is 15 s, for CONNACK too.
        mqtt.connack_timeout_ms = 15_000;
        // A board holds a few messages, not a queue: what does not fit is an error.
        mqtt.max_inflight = 4;
        mqtt.max_pending = 8;
        mqtt.max_pending_bytes = 8 * 1024;
        mqtt.max_packet_size = MAX_PACKET_SIZE;
        mqtt.topic_alias_maximum = 0;
        mqtt.outbound_topic_aliases = 0;
        let target = Target::new(&options)?;
        // A broker that takes handshakes more slowly than they arrive queues them, and
        // attempts that time out in its queue are wasted: stay at tern's default pace.
        let connect_rate = args
            .connect_rate
            .unwrap_or(if target.is_tls() { 200.0 } else { 500.0 });
        if !(connect_rate.is_finite() && connect_rate >= 0.01) {
            bail!("--connect-rate must be a positive number of connections per second");
        }
        let telemetry = match secs(args.telemetry_interval, "--telemetry-interval")? {
            d if d.is_zero() => None,
            d if d < Duration::from_millis(100) => {
                bail!("--telemetry-interval must be 0 (off) or at least 0.1 s")
            }
            d => Some(d),
        };
        let delay = secs(args.reconnect_delay, "--reconnect-delay")?;
        let max = secs(args.reconnect_max, "--reconnect-max")?.max(delay);
        let duration = args.duration.map(|d| secs(d, "--duration")).transpose()?;
        let every = secs(args.summary_interval, "--summary-interval")?;
        let summary_every = (args.count > 1 || c.quiet)
            .then_some(every)
            .filter(|d| !d.is_zero());
        Ok(Self {
            ctx: Ctx {
                target,
                mqtt,
                topic,
                qos,
                telemetry,
                mode: args.reconnect,
                backoff: Backoff {
                    initial: delay,
                    max,
                    max_attempts: None,
                },
                verbose: args.count == 1 && !c.quiet,
                stats: Stats::default(),
                rate: RateLimit::new(connect_rate),
            },
            ids,
            count: args.count,
            duration,
            summary_every,
        })
    }

    async fn run(self) -> anyhow::Result<i32> {
        let Plan {
            ctx,
            ids,
            count,
            duration,
            summary_every,
        } = self;
        let target = format!(
            "{}:{}{}",
            ctx.target.host,
            ctx.target.port,
            if ctx.target.is_tls() { " (TLS)" } else { "" }
        );
        let ctx = Arc::new(ctx);
        let started = Instant::now();
        if count == 1 {
            let id = ids.get(0);
            say!(
                "tern device: {id} -> {target}, commands on {}, state on {}",
                ctx.topic,
                sim::state_topic(&id)
            );
        } else {
            say!(
                "tern device: {count} devices {}-0 .. {}-{} -> {target}, commands on {}, {} connections/s",
                ids.base,
                ids.base,
                count - 1,
                ctx.topic,
                1.0 / ctx.rate.period.as_secs_f64()
            );
        }
        if let Some(limit) = open_files_limit()
            && limit < u64::from(count) + 64
        {
            eprintln!(
                "tern device: warning: this process may open only {limit} files and {count} devices need {count} sockets: raise the limit first (ulimit -n {})",
                u64::from(count) + 1024
            );
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for i in 0..count {
            tasks.spawn(device(Arc::clone(&ctx), ids.get(i), stop_rx.clone()));
        }
        let summary = summary_every.map(|every| {
            let ctx = Arc::clone(&ctx);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(Instant::now() + every, every);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    say!(
                        "tern device: {:.1}s {}",
                        started.elapsed().as_secs_f64(),
                        ctx.stats.line(count)
                    );
                }
            })
        });
        let why = wait_for_stop(duration).await;
        let _ = stop_tx.send(true);
        let grace = tokio::time::sleep(STOP_GRACE + Duration::from_secs(1));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                r = tasks.join_next() => if r.is_none() { break },
                _ = &mut grace => {
                    tasks.abort_all();
                    break;
                }
            }
        }
        if let Some(s) = summary {
            s.abort();
        }
        say!(
            "tern device: final {:.1}s {} ({why})",
            started.elapsed().as_secs_f64(),
            ctx.stats.line(count)
        );
        if ctx.stats.ever_connected.load(Ordering::Relaxed) == 0 {
            eprintln!("tern device: no device ever connected to {target}");
            return Ok(1);
        }
        Ok(0)
    }
}

/// The soft limit on open files, from /proc/self/limits (Linux; `None` elsewhere).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

fn parse_open_files_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resolves at `--duration`, Ctrl-C or SIGTERM; says which.
async fn wait_for_stop(duration: Option<Duration>) -> &'static str {
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = timer => "duration reached",
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = term => "terminated",
    }
}

/// Resolves once the process is asked to stop (the guard is not held across awaits).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// What ended a session.
enum Ended {
    /// Asked to stop (already published `offline` and disconnected).
    Stopped,
    /// The broker refused the command subscription (ACL): try again after a delay.
    Refused,
    Lost(ClientError),
}

/// The sketch's `loop()`/`reconnect()`: connect, serve, and after a loss try again.
async fn device(ctx: Arc<Ctx>, id: String, mut stop: watch::Receiver<bool>) {
    let boot = Instant::now();
    let mut board = Device::new();
    let mut failures: u32 = 0;
    let mut connected_before = false;
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = ctx.rate.acquire() => {}
        }
        if ctx.verbose {
            say_part!("Attempting MQTT broker connection...");
        }
        let attempt = tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                if ctx.verbose {
                    say!("stopped");
                }
                return;
            }
            // Boxed: the handshake's state (~4 KiB) exists only while connecting, instead of
            // in every idle device's task.
            r = Box::pin(Link::connect(&ctx.target, options_for(&ctx.mqtt, &id))) => r,
        };
        let delay = match attempt {
            Err(e) => {
                inc(&ctx.stats.errors);
                let delay = retry_delay(&ctx, failures);
                failures = failures.saturating_add(1);
                if ctx.verbose {
                    let timed_out = matches!(
                        e,
                        ClientError::Timeout { .. }
                            | ClientError::Protocol(tern_proto::client::ConnError::ConnackTimeout(
                                _
                            ))
                    );
                    let rc =
                        sim::pubsubclient_rc(e.refusal().map(|r| r.to_v3_connack()), timed_out);
                    say!(
                        "Failed, rc={rc}. Trying again in {} seconds...",
                        fmt_secs(delay)
                    );
                    eprintln!("tern device: {e}");
                }
                delay
            }
            Ok(link) => {
                failures = 0;
                if connected_before {
                    inc(&ctx.stats.reconnects);
                } else {
                    inc(&ctx.stats.ever_connected);
                }
                connected_before = true;
                if ctx.verbose {
                    say!("connected");
                }
                let since = Instant::now();
                match session(&ctx, &id, &mut board, boot, link, &mut stop).await {
                    Ended::Stopped => return,
                    Ended::Refused => {
                        let delay = retry_delay(&ctx, failures);
                        failures = failures.saturating_add(1);
                        delay
                    }
                    Ended::Lost(e) => {
                        inc(&ctx.stats.errors);
                        if ctx.verbose {
                            eprintln!("tern device: connection lost: {e}");
                        }
                        if since.elapsed() < ctx.backoff.initial {
                            // Lost again right after connecting (a client id taken over
                            // back and forth, say): wait like after a failed attempt
                            // instead of hammering the broker.
                            let delay = retry_delay(&ctx, failures);
                            failures = failures.saturating_add(1);
                            delay
                        } else {
                            match ctx.mode {
                                // The sketch notices at the next loop() and tries at once.
                                ReconnectMode::Fixed => Duration::ZERO,
                                ReconnectMode::Backoff => {
                                    failures = 1;
                                    retry_delay(&ctx, 0)
                                }
                            }
                        }
                    }
                }
            }
        };
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn retry_delay(ctx: &Ctx, failures: u32) -> Duration {
    match ctx.mode {
        ReconnectMode::Fixed => ctx.backoff.initial,
        ReconnectMode::Backoff => ctx.backoff.delay(failures, rand::random()),
    }
}

/// The shared options with this device's client id and will.
fn options_for(base: &tern_proto::ClientOptions, id: &str) -> tern_proto::ClientOptions {
    let mut o = base.clone();
    o.client_id = id.to_owned();
    o.will = Some(
        Message::new(sim::status_topic(id), sim::OFFLINE)
            .with_qos(QoS::AtLeastOnce)
            .with_retain(true),
    );
    o
}

/// Queues a publish on the connection and counts it (sent, or an error).
fn publish(ctx: &Ctx, link: &mut Link, msg: Message) {
    match link.conn.publish(ctx.target.clock.now(), msg) {
        Ok(_) => inc(&ctx.stats.published),
        Err(e) => {
            inc(&ctx.stats.errors);
            tracing::debug!(error = %e, "publish failed");
        }
    }
}

/// One connection: subscribe (as the sketch does once connected), then announce `online`
/// and the current state, then serve commands and send telemetry until the connection is
/// lost or the process stops. Requests are calls on the `ClientConn`; the only waits are
/// for input, its timers, the telemetry tick and the stop signal. State changes within
/// one read are published once, so the retained state is always the last.
async fn session(
    ctx: &Ctx,
    id: &str,
    board: &mut Device,
    boot: Instant,
    mut link: Link,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let clock = &ctx.target.clock;
    let sub = link.conn.subscribe(
        clock.now(),
        &[(ctx.topic.as_str(), SubscriptionOptions::qos(ctx.qos))],
        &OwnedProperties::default(),
    );
    let sub = match sub {
        Ok(pid) => pid,
        Err(e) => return Ended::Lost(e.into()),
    };
    let mut subscribed = false;
    let (mut want_online, mut want_state, mut want_telemetry) = (true, true, false);
    let period = ctx.telemetry.unwrap_or(Duration::from_secs(3600));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = Vec::new();
    let ended = 'conn: loop {
        while let Some(ev) = link.conn.poll_event() {
            match ev {
                Event::Subscribed { packet_id, reasons } if packet_id == sub => {
                    if reasons.iter().all(|r| r.is_success()) {
                        subscribed = true;
                        inc(&ctx.stats.connected);
                    } else {
                        inc(&ctx.stats.errors);
                        if ctx.verbose {
                            eprintln!(
                                "tern device: the broker refused the subscription to '{}': check its ACL for this device",
                                ctx.topic
                            );
                        }
                        break 'conn Ended::Refused;
                    }
                }
                Event::Message(m) => {
                    want_state |= handle_message(ctx, board, &m.topic, &m.payload, &mut out);
                }
                Event::Published { reason, .. } if !reason.is_success() => {
                    inc(&ctx.stats.errors);
                }
                Event::Disconnected { reason, properties } => {
                    break 'conn Ended::Lost(ClientError::Disconnected {
                        reason: Some(reason),
                        reason_string: properties.reason_string,
                    });
                }
                _ => {}
            }
        }
        if subscribed {
            if std::mem::take(&mut want_online) {
                let m = Message::new(sim::status_topic(id), sim::ONLINE)
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true);
                publish(ctx, &mut link, m);
            }
            if std::mem::take(&mut want_state) {
                let m = Message::new(sim::state_topic(id), board.outputs().to_json())
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true);
                publish(ctx, &mut link, m);
            }
            if std::mem::take(&mut want_telemetry) {
                let t = board.telemetry(boot.elapsed().as_secs(), rand::random());
                publish(
                    ctx,
                    &mut link,
                    Message::new(sim::telemetry_topic(id), t.to_json()),
                );
            }
        }
        if let Err(e) = link.flush().await {
            break Ended::Lost(e);
        }
        tokio::select! {
            r = link.wait(clock) => {
                if let Err(e) = r {
                    // A protocol error has queued DISCONNECT (5.0): send it if we can.
                    let _ = tokio::time::timeout(Duration::from_secs(1), link.flush()).await;
                    break Ended::Lost(e);
                }
            }
            _ = tick.tick(), if ctx.telemetry.is_some() => want_telemetry = true,
            _ = stopped(stop) => {
                // A clean stop: say offline ourselves, then DISCONNECT (the broker drops the
                // will). Both go out in order on the same connection.
                let m = Message::new(sim::status_topic(id), sim::OFFLINE)
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true);
                publish(ctx, &mut link, m);
                link.conn.disconnect(ReasonCode::Success, &OwnedProperties::default());
                link.close(STOP_GRACE).await;
                // A stopped device still counts as connected in the final summary.
                return Ended::Stopped;
            }
        }
    };
    if subscribed {
        ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
    }
    ended
}

/// A message on the command topic: count it, print it as the sketch does (one device), and
/// apply it. True when it was a command (the state is to be published).
fn handle_message(
    ctx: &Ctx,
    board: &mut Device,
    topic: &str,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> bool {
    inc(&ctx.stats.received);
    let result = sim::parse_command(payload);
    if ctx.verbose {
        out.clear();
        sim::message_block(topic, payload, out);
    }
    let applied = match result {
        Ok(cmd) => {
            inc(&ctx.stats.commands);
            let now = board.apply(cmd);
            if ctx.verbose {
                out.extend_from_slice(now.describe().as_bytes());
                out.push(b'\n');
            }
            true
        }
        Err(e) => {
            inc(&ctx.stats.ignored);
            if ctx.verbose {
                out.extend_from_slice(format!("Ignored: {e}\n").as_bytes());
            }
            false
        }
    };
    if ctx.verbose {
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(out).and_then(|()| so.flush());
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let one = Ids {
            base: "ESP8266Client-3fa2".into(),
            fleet: false,
        };
        assert_eq!(one.get(0), "ESP8266Client-3fa2");
        let fleet = Ids {
            base: "dev".into(),
            fleet: true,
        };
        assert_eq!(fleet.get(0), "dev-0");
        assert_eq!(fleet.get(199), "dev-199");
        assert!(check_id("ESP8266Client-3fa2").is_ok());
        assert!(check_id("a/b").is_err());
        assert!(check_id("a+").is_err());
        assert!(check_id("").is_err());
    }

    #[test]
    fn open_files_limit_from_proc() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        assert_eq!(
            parse_open_files_limit("Max open files            unlimited  unlimited  files"),
            None
        );
        assert_eq!(parse_open_files_limit(""), None);
    }

    #[test]
    fn delays() {
        assert_eq!(fmt_secs(Duration::from_secs(5)), "5");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5");
        assert!(secs(-1.0, "--x").is_err());
        assert!(secs(f64::NAN, "--x").is_err());
        assert_eq!(secs(0.5, "--x").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn rate_limit_spaces_attempts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let took = rt.block_on(async {
            let r = RateLimit::new(100.0);
            let t0 = Instant::now();
            for _ in 0..6 {
                r.acquire().await;
            }
            t0.elapsed()
        });
        // The first is immediate, the next five 10 ms apart.
        assert!(took >= Duration::from_millis(50), "{took:?}");
    }
}
