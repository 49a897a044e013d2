//! `tern device run`: the tutorial's ESP8266 board as a process, or a fleet of them.
//!
//! Each device is one task around a [`tern_client::Client`]: it connects with the flags of
//! `tern sub` (TLS with a CA and/or a pinned fingerprint), subscribes to the command topic,
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
//! Memory: per device one task, its client id, a few bytes of board state, and the client
//! (socket, TLS session, read buffer, bounded channels); no queue grows while offline
//! (telemetry is skipped, like `PubSubClient::publish` returning false).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tern_client::{
    Backoff, Client, ClientError, ClientOptions, Event, Message, QoS, SubscriptionOptions,
};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::sim::{self, Device};
use crate::conn_args::{ConnArgs, parse_qos};

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
    /// Connection attempts per second across the whole process.
    #[arg(long = "connect-rate", default_value_t = 500.0)]
    pub connect_rate: f64,
    /// Seconds between summary lines (fleets and --quiet; a single device prints one at the
    /// end).
    #[arg(long = "summary-interval", default_value_t = 5.0)]
    pub summary_interval: f64,
}

/// The most devices one process simulates (file descriptors and memory are the limits).
const MAX_COUNT: u32 = 100_000;
/// How long a clean stop waits for `offline` and DISCONNECT to be written.
const STOP_GRACE: Duration = Duration::from_secs(5);

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    if !v.is_finite() || v < 0.0 || v > 1e9 {
        bail!("{flag} must be a number of seconds from 0 up, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Everything the device tasks share.
#[derive(Debug)]
struct Ctx {
    /// Connection options without client id and will.
    base: ClientOptions,
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
    target: String,
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
        if !(args.connect_rate.is_finite() && args.connect_rate >= 0.01) {
            bail!("--connect-rate must be a positive number of connections per second");
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
        let mut base = resolved.options;
        base.connect_timeout = Duration::from_secs(15);
        base.mqtt.connack_timeout_ms = 15_000;
        base.reconnect = None;
        // Small channels: a device handles one message at a time.
        base.event_capacity = 16;
        base.command_capacity = 4;
        if let Some(t) = &base.tls {
            // Read the CA, certificate and key files now: a mistake is reported once, not
            // retried every few seconds.
            t.build()?;
        }
        let target = format!(
            "{}:{}{}",
            base.host,
            base.port,
            if base.tls.is_some() { " (TLS)" } else { "" }
        );
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
                base,
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
                rate: RateLimit::new(args.connect_rate),
            },
            ids,
            count: args.count,
            duration,
            summary_every,
            target,
        })
    }

    async fn run(self) -> anyhow::Result<i32> {
        let Plan {
            ctx,
            ids,
            count,
            duration,
            summary_every,
            target,
        } = self;
        let ctx = Arc::new(ctx);
        let started = Instant::now();
        if count == 1 {
            let id = ids.get(0);
            println!(
                "tern device: {id} -> {target}, commands on {}, state on {}",
                ctx.topic,
                sim::state_topic(&id)
            );
        } else {
            println!(
                "tern device: {count} devices {}-0 .. {}-{} -> {target}, commands on {}, {} connections/s",
                ids.base,
                ids.base,
                count - 1,
                ctx.topic,
                1.0 / ctx.rate.period.as_secs_f64()
            );
        }
        flush();
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
                    println!(
                        "tern device: {:.1}s {}",
                        started.elapsed().as_secs_f64(),
                        ctx.stats.line(count)
                    );
                    flush();
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
        println!(
            "tern device: final {:.1}s {} ({why})",
            started.elapsed().as_secs_f64(),
            ctx.stats.line(count)
        );
        flush();
        if ctx.stats.ever_connected.load(Ordering::Relaxed) == 0 {
            eprintln!("tern device: no device ever connected to {target}");
            return Ok(1);
        }
        Ok(0)
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
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
            print!("Attempting MQTT broker connection...");
            flush();
        }
        let opts = options_for(&ctx.base, &id);
        let attempt = tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                if ctx.verbose {
                    println!("stopped");
                }
                return;
            }
            r = Client::connect(opts) => r,
        };
        let delay = match attempt {
            Err(e) => {
                inc(&ctx.stats.errors);
                let delay = retry_delay(&ctx, failures);
                failures = failures.saturating_add(1);
                if ctx.verbose {
                    let timed_out = matches!(e, ClientError::Timeout { .. });
                    let rc =
                        sim::pubsubclient_rc(e.refusal().map(|r| r.to_v3_connack()), timed_out);
                    println!(
                        "Failed, rc={rc}. Trying again in {} seconds...",
                        fmt_secs(delay)
                    );
                    flush();
                    eprintln!("tern device: {e}");
                }
                delay
            }
            Ok(client) => {
                failures = 0;
                if connected_before {
                    inc(&ctx.stats.reconnects);
                } else {
                    inc(&ctx.stats.ever_connected);
                }
                connected_before = true;
                if ctx.verbose {
                    println!("connected");
                    flush();
                }
                match session(&ctx, &id, &mut board, boot, client, &mut stop).await {
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
fn options_for(base: &ClientOptions, id: &str) -> ClientOptions {
    let will = Message::new(sim::status_topic(id), sim::OFFLINE)
        .with_qos(QoS::AtLeastOnce)
        .with_retain(true);
    base.clone().client_id(id).will(will)
}

/// Requests a connected device makes, in priority order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Subscribe,
    Online,
    State,
    Telemetry,
}

type JobFuture = Pin<Box<dyn Future<Output = (Job, Result<bool, ClientError>)> + Send>>;

/// Awaits the request in progress, if any.
async fn in_progress(f: &mut Option<JobFuture>) -> (Job, Result<bool, ClientError>) {
    match f.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// One connection: subscribe, announce, then serve commands and send telemetry until the
/// connection is lost or the process stops. One request is in progress at a time, while
/// events keep being read (never waiting on the broker while it waits on us); a state
/// change during a request is published after it, so the retained state is always the last.
async fn session(
    ctx: &Ctx,
    id: &str,
    board: &mut Device,
    boot: Instant,
    mut client: Client,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let handle = client.handle();
    let mut subscribed = false;
    // Subscribe first, as the sketch does, then announce online and the current state.
    let (mut want_online, mut want_state, mut want_telemetry) = (true, true, false);
    let mut current: Option<JobFuture> = None;
    let mut next_job = Some(Job::Subscribe);
    let period = ctx.telemetry.unwrap_or(Duration::from_secs(3600));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = Vec::new();
    let ended = loop {
        if current.is_none() {
            let job = next_job.take().or(if !subscribed {
                None
            } else if want_online {
                want_online = false;
                Some(Job::Online)
            } else if want_state {
                want_state = false;
                Some(Job::State)
            } else if want_telemetry {
                want_telemetry = false;
                Some(Job::Telemetry)
            } else {
                None
            });
            if let Some(job) = job {
                current = Some(start_job(ctx, id, board, boot, &handle, job));
            }
        }
        tokio::select! {
            (job, r) = in_progress(&mut current) => {
                current = None;
                match (job, r) {
                    (Job::Subscribe, Ok(true)) => {
                        subscribed = true;
                        inc(&ctx.stats.connected);
                    }
                    (Job::Subscribe, Ok(false)) => {
                        inc(&ctx.stats.errors);
                        if ctx.verbose {
                            eprintln!("tern device: the broker refused the subscription to '{}': check its ACL for this device", ctx.topic);
                        }
                        break Ended::Refused;
                    }
                    (_, Ok(_)) => inc(&ctx.stats.published),
                    (job, Err(e)) => {
                        inc(&ctx.stats.errors);
                        tracing::debug!(?job, error = %e, "request failed");
                    }
                }
            }
            ev = client.next_event() => match ev {
                Some(Event::Message(m)) => {
                    inc(&ctx.stats.received);
                    let result = sim::parse_command(&m.payload);
                    if ctx.verbose {
                        out.clear();
                        sim::message_block(&m.topic, &m.payload, &mut out);
                    }
                    match result {
                        Ok(cmd) => {
                            inc(&ctx.stats.commands);
                            let now = board.apply(cmd);
                            want_state = true;
                            if ctx.verbose {
                                out.extend_from_slice(now.describe().as_bytes());
                                out.push(b'\n');
                            }
                        }
                        Err(e) => {
                            inc(&ctx.stats.ignored);
                            if ctx.verbose {
                                out.extend_from_slice(format!("Ignored: {e}\n").as_bytes());
                            }
                        }
                    }
                    if ctx.verbose {
                        let mut so = std::io::stdout().lock();
                        let _ = so.write_all(&out).and_then(|()| so.flush());
                    }
                }
                Some(Event::ConnectionLost(e)) => break Ended::Lost(e),
                Some(_) => {}
                None => break Ended::Lost(ClientError::Shutdown(None)),
            },
            _ = tick.tick(), if ctx.telemetry.is_some() => want_telemetry = true,
            _ = stopped(stop) => {
                // A clean stop: say offline ourselves, then DISCONNECT (the will is dropped).
                drop(current.take());
                let offline = Message::new(sim::status_topic(id), sim::OFFLINE)
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true);
                let bye = async {
                    if handle.publish(offline).await.is_ok() {
                        inc(&ctx.stats.published);
                    }
                    let _ = handle.disconnect().await;
                };
                let _ = tokio::time::timeout(STOP_GRACE, bye).await;
                break Ended::Stopped;
            }
        }
    };
    // A stopped device still counts as connected in the final summary.
    if subscribed && !matches!(ended, Ended::Stopped) {
        ctx.stats.connected.fetch_sub(1, Ordering::Relaxed);
    }
    ended
}

fn start_job(
    ctx: &Ctx,
    id: &str,
    board: &mut Device,
    boot: Instant,
    handle: &tern_client::ClientHandle,
    job: Job,
) -> JobFuture {
    let h = handle.clone();
    match job {
        Job::Subscribe => {
            let topic = ctx.topic.clone();
            let opts = SubscriptionOptions::qos(ctx.qos);
            Box::pin(async move {
                let r = h
                    .subscribe(&[(topic.as_str(), opts)], Default::default())
                    .await
                    .map(|codes| codes.iter().all(|c| c.is_success()));
                (job, r)
            })
        }
        Job::Online | Job::State | Job::Telemetry => {
            let msg = match job {
                Job::Online => Message::new(sim::status_topic(id), sim::ONLINE)
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true),
                Job::State => Message::new(sim::state_topic(id), board.outputs().to_json())
                    .with_qos(QoS::AtLeastOnce)
                    .with_retain(true),
                _ => {
                    let t = board.telemetry(boot.elapsed().as_secs(), rand::random());
                    Message::new(sim::telemetry_topic(id), t.to_json())
                }
            };
            Box::pin(async move { (job, h.publish(msg).await.map(|()| true)) })
        }
    }
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
