//! The async client: a driver task owns the socket and a [`ClientConn`]; the application
//! talks to it over bounded channels. Reconnects with exponential backoff and full jitter,
//! resubscribes when the broker did not keep the session, and queues publishes (bounded)
//! while offline.
//!
//! Back-pressure: the driver waits for room in the event channel before reading more from
//! the socket, so a slow consumer slows the broker down instead of growing memory. Read
//! events (or drop the [`Client`]'s event side by never subscribing) while awaiting
//! acknowledgements.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::ServerName;
use tern_codec::{PacketId, ProtocolVersion, ReasonCode, SubscriptionOptions};
use tern_proto::client::{ClientConn, Event as ConnEvent, ServerLimits};
use tern_proto::{Message, OwnedProperties, Timestamp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::ClientError;
use crate::tls::{TlsOptions, handshake_error};

/// Reconnect delays: attempt `n` waits a uniformly random time in
/// `0..=min(max, initial * 2^n)` ("full jitter"), so that many clients cut off together do
/// not come back together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Give up after this many failed attempts in a row; `None` retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    /// 1 s doubling up to 60 s, forever.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The upper bound for attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }

    /// The delay for attempt `attempt` given `unit`, a random number in `[0, 1]`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Everything needed to connect.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub host: String,
    pub port: u16,
    /// Protocol options: version, client id, clean start, keep-alive, will, credentials,
    /// limits. An empty client id is replaced by a random `tern-...` one unless
    /// [`allow_empty_client_id`](Self::allow_empty_client_id) is set.
    pub mqtt: tern_proto::ClientOptions,
    /// Send an empty client id as is (5.0 servers assign one).
    pub allow_empty_client_id: bool,
    /// `None` for plain TCP.
    pub tls: Option<TlsOptions>,
    /// `None` ends the client when the connection is lost.
    pub reconnect: Option<Backoff>,
    /// For TCP connect, the TLS handshake and CONNACK, each.
    pub connect_timeout: Duration,
    /// Events waiting for the application; when full, the driver stops reading the socket.
    pub event_capacity: usize,
    /// Requests waiting for the driver.
    pub command_capacity: usize,
}

impl ClientOptions {
    /// The rustls configuration (every TLS file read now) and the name to verify the
    /// broker's certificate against, or `None` for plain TCP.
    pub fn tls_target(
        &self,
    ) -> Result<Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>, ClientError> {
        let Some(t) = &self.tls else {
            return Ok(None);
        };
        let config = t.build()?;
        let name = t.server_name.clone().unwrap_or_else(|| self.host.clone());
        let name = ServerName::try_from(name.clone())
            .map_err(|_| ClientError::Config(format!("'{name}' is not a valid TLS server name")))?;
        Ok(Some((config, name)))
    }

    /// MQTT 3.1.1 to `host:port`, plain TCP, random client id, no reconnect.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            mqtt: tern_proto::ClientOptions::new(ProtocolVersion::V311, ""),
            allow_empty_client_id: false,
            tls: None,
            reconnect: None,
            connect_timeout: Duration::from_secs(30),
            event_capacity: 256,
            command_capacity: 64,
        }
    }

    pub fn version(mut self, v: ProtocolVersion) -> Self {
        self.mqtt.version = v;
        self
    }

    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.mqtt.client_id = id.into();
        self
    }

    pub fn clean_start(mut self, clean: bool) -> Self {
        self.mqtt.clean_start = clean;
        self
    }

    /// 5.0 Session Expiry Interval, seconds.
    pub fn session_expiry(mut self, secs: u32) -> Self {
        self.mqtt.session_expiry_interval = Some(secs);
        self
    }

    pub fn keep_alive(mut self, secs: u16) -> Self {
        self.mqtt.keep_alive_secs = secs;
        self
    }

    pub fn credentials(mut self, user: impl Into<String>, password: Option<Vec<u8>>) -> Self {
        self.mqtt.username = Some(user.into());
        self.mqtt.password = password;
        self
    }

    pub fn will(mut self, will: Message) -> Self {
        self.mqtt.will = Some(will);
        self
    }

    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn reconnect(mut self, backoff: Backoff) -> Self {
        self.reconnect = Some(backoff);
        self
    }
}

/// What the broker said when it accepted the connection.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectInfo {
    pub session_present: bool,
    /// The client id in use (assigned by a 5.0 server when ours was empty).
    pub client_id: String,
    /// CONNACK properties (5.0).
    pub properties: OwnedProperties,
    pub limits: ServerLimits,
}

/// What the application sees.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived on a subscription.
    Message(Message),
    /// Connected again after a loss (the first connection is [`Client::connect`]'s result).
    Reconnected(ConnectInfo),
    /// The connection was lost; the client reconnects if configured to.
    ConnectionLost(ClientError),
}

type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

enum Command {
    Publish(Message, Reply<()>),
    Subscribe(
        Vec<(String, SubscriptionOptions)>,
        OwnedProperties,
        Reply<Vec<ReasonCode>>,
    ),
    Unsubscribe(Vec<String>, OwnedProperties, Reply<Vec<ReasonCode>>),
    Disconnect(ReasonCode, OwnedProperties, oneshot::Sender<()>),
}

/// A cloneable handle for requests; [`Client`] derefs to one.
#[derive(Clone, Debug)]
pub struct ClientHandle {
    cmd: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Publish(..) => "Publish",
            Self::Subscribe(..) => "Subscribe",
            Self::Unsubscribe(..) => "Unsubscribe",
            Self::Disconnect(..) => "Disconnect",
        })
    }
}

/// Resolves when a publish is acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP) or, for QoS 0,
/// once it is written or queued.
#[derive(Debug)]
pub struct PublishHandle(oneshot::Receiver<Result<(), ClientError>>);

impl PublishHandle {
    /// Waits for the acknowledgement.
    pub async fn wait(self) -> Result<(), ClientError> {
        self.0.await.unwrap_or(Err(ClientError::Shutdown(None)))
    }
}

impl ClientHandle {
    async fn send(&self, c: Command) -> Result<(), ClientError> {
        self.cmd
            .send(c)
            .await
            .map_err(|_| ClientError::Shutdown(None))
    }

    /// Hands a message to the driver and returns a handle that resolves on acknowledgement,
    /// so that several messages can be in flight at once.
    pub async fn start_publish(&self, msg: Message) -> Result<PublishHandle, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Publish(msg, tx)).await?;
        Ok(PublishHandle(rx))
    }

    /// Publishes and waits for the acknowledgement (QoS 1/2) or the write (QoS 0).
    pub async fn publish(&self, msg: Message) -> Result<(), ClientError> {
        self.start_publish(msg).await?.wait().await
    }

    /// Subscribes and waits for SUBACK; returns one code per filter (granted QoS or a
    /// failure). The subscription is restored after a reconnect that lost the session.
    pub async fn subscribe(
        &self,
        filters: &[(&str, SubscriptionOptions)],
        properties: OwnedProperties,
    ) -> Result<Vec<ReasonCode>, ClientError> {
        let (tx, rx) = oneshot::channel();
        let f = filters.iter().map(|(t, o)| ((*t).to_owned(), *o)).collect();
        self.send(Command::Subscribe(f, properties, tx)).await?;
        rx.await.unwrap_or(Err(ClientError::Shutdown(None)))
    }

    /// Unsubscribes and waits for UNSUBACK (5.0: one code per filter).
    pub async fn unsubscribe(
        &self,
        filters: &[&str],
        properties: OwnedProperties,
    ) -> Result<Vec<ReasonCode>, ClientError> {
        let (tx, rx) = oneshot::channel();
        let f = filters.iter().map(|t| (*t).to_owned()).collect();
        self.send(Command::Unsubscribe(f, properties, tx)).await?;
        rx.await.unwrap_or(Err(ClientError::Shutdown(None)))
    }

    /// Sends DISCONNECT (normal, so the broker discards the will) and closes.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::Success, OwnedProperties::default())
            .await
    }

    /// Sends DISCONNECT with a 5.0 reason (e.g. `DisconnectWithWill`) and properties (e.g.
    /// a new session expiry), then closes.
    pub async fn disconnect_with(
        &self,
        reason: ReasonCode,
        properties: OwnedProperties,
    ) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Disconnect(reason, properties, tx))
            .await?;
        let _ = rx.await;
        Ok(())
    }
}

/// An MQTT client. See the crate docs for an example.
#[derive(Debug)]
pub struct Client {
    handle: ClientHandle,
    events: mpsc::Receiver<Event>,
    task: JoinHandle<()>,
    info: ConnectInfo,
}

impl std::ops::Deref for Client {
    type Target = ClientHandle;
    fn deref(&self) -> &ClientHandle {
        &self.handle
    }
}

impl Client {
    /// Connects (TCP, TLS, CONNECT/CONNACK) and starts the driver. Errors from this first
    /// attempt are returned, not retried: a wrong CA or password should be reported, not
    /// hammered.
    pub async fn connect(mut opts: ClientOptions) -> Result<Client, ClientError> {
        if opts.mqtt.client_id.is_empty() && !opts.allow_empty_client_id {
            opts.mqtt.client_id = random_client_id();
        }
        let tls = opts.tls_target()?;
        let (cmd_tx, cmd_rx) = mpsc::channel(opts.command_capacity.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(opts.event_capacity.max(1));
        let mut driver = Driver {
            conn: ClientConn::new(opts.mqtt.clone()),
            opts,
            tls,
            clock: Clock::new(),
            cmd_rx,
            ev_tx,
            pub_waiters: HashMap::new(),
            qos0_waiters: Vec::new(),
            sub_waiters: HashMap::new(),
            unsub_waiters: HashMap::new(),
            subscriptions: Vec::new(),
            buf: vec![0; 16 * 1024],
        };
        let (stream, info) = driver.establish().await?;
        let task = tokio::spawn(driver.run(stream));
        Ok(Client {
            handle: ClientHandle { cmd: cmd_tx },
            events: ev_rx,
            task,
            info,
        })
    }

    /// What the broker said on the first connection.
    pub fn info(&self) -> &ConnectInfo {
        &self.info
    }

    /// A cloneable handle for publishing and subscribing from other tasks.
    pub fn handle(&self) -> ClientHandle {
        self.handle.clone()
    }

    /// The next event; `None` once the client has shut down and all events were read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Closes the connection at once without DISCONNECT, as a crash would (the broker then
    /// publishes the will).
    pub fn abort(self) {
        self.task.abort();
    }

    /// Waits for the driver to finish (after `disconnect`, or a loss without reconnect).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

fn random_client_id() -> String {
    use rand::RngExt;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("tern-{tail}")
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Milliseconds since the Unix epoch, advanced by a monotonic clock: the [`Timestamp`]s the
/// sans-IO state machines take, and the tokio instants to sleep until.
#[derive(Debug)]
pub struct Clock {
    start: Instant,
    epoch_ms: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            start: Instant::now(),
            epoch_ms,
        }
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        let e = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.epoch_ms.saturating_add(e))
    }

    /// The instant at which `t` is reached.
    pub fn instant(&self, t: Timestamp) -> Instant {
        self.start + Duration::from_millis(t.0.saturating_sub(self.epoch_ms))
    }
}

struct SubWaiter {
    filters: Vec<(String, SubscriptionOptions)>,
    properties: OwnedProperties,
    reply: Option<Reply<Vec<ReasonCode>>>,
}

struct Driver {
    opts: ClientOptions,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    conn: ClientConn,
    clock: Clock,
    cmd_rx: mpsc::Receiver<Command>,
    ev_tx: mpsc::Sender<Event>,
    pub_waiters: HashMap<u16, Reply<()>>,
    qos0_waiters: Vec<Reply<()>>,
    sub_waiters: HashMap<u16, SubWaiter>,
    unsub_waiters: HashMap<u16, (Vec<String>, Reply<Vec<ReasonCode>>)>,
    /// Acknowledged subscriptions, restored after a reconnect without session.
    subscriptions: Vec<(String, SubscriptionOptions, OwnedProperties)>,
    buf: Vec<u8>,
}

/// How a serving period ended.
enum Ended {
    /// The application asked to stop.
    Shutdown,
    Lost(ClientError),
}

impl Driver {
    async fn establish(&mut self) -> Result<(Box<dyn Stream>, ConnectInfo), ClientError> {
        let secs = self.opts.connect_timeout.as_secs().max(1);
        let host = self.opts.host.clone();
        let port = self.opts.port;
        let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| ClientError::Resolve {
                host: host.clone(),
                source: Arc::new(e),
            })?
            .collect();
        let tcp = tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(&addrs[..]))
            .await
            .map_err(|_| ClientError::Timeout {
                what: "connecting",
                secs,
            })?
            .map_err(|e| ClientError::Connect {
                host: host.clone(),
                port,
                source: Arc::new(e),
            })?;
        let _ = tcp.set_nodelay(true);
        let mut stream: Box<dyn Stream> = match &self.tls {
            Some((config, name)) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let s = tokio::time::timeout(
                    self.opts.connect_timeout,
                    connector.connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| ClientError::Timeout {
                    what: "in the TLS handshake",
                    secs,
                })?
                .map_err(|e| handshake_error(&host, &e))?;
                Box::new(s)
            }
            None => Box::new(tcp),
        };
        self.conn.connect(self.clock.now());
        self.flush(&mut stream).await?;
        loop {
            if let Some(ev) = self.conn.poll_event() {
                match ev {
                    ConnEvent::Connected {
                        session_present,
                        properties,
                    } => {
                        let info = ConnectInfo {
                            session_present,
                            client_id: self.conn.client_id().to_owned(),
                            properties,
                            limits: self.conn.server_limits(),
                        };
                        tracing::debug!(client_id = %info.client_id, session_present, "connected");
                        return Ok((stream, info));
                    }
                    ConnEvent::Refused { reason, properties } => {
                        return Err(ClientError::Refused {
                            reason,
                            reason_string: properties.reason_string,
                        });
                    }
                    _ => continue,
                }
            }
            let deadline = self.conn.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                r = stream.read(&mut self.buf) => {
                    let n = match r {
                        Ok(0) => {
                            return Err(ClientError::ClosedBeforeConnack {
                                detail: "end of stream".into(),
                            })
                        }
                        Ok(n) => n,
                        // TLS 1.3 reports a refused client certificate after the handshake.
                        Err(e) if self.tls.is_some() && e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                            return Err(handshake_error(&host, &e));
                        }
                        Err(e) => {
                            return Err(ClientError::ClosedBeforeConnack { detail: e.to_string() })
                        }
                    };
                    let now = self.clock.now();
                    if let Err(e) = self.conn.handle_input(now, &self.buf[..n]) {
                        let _ = self.flush(&mut stream).await;
                        return Err(e.into());
                    }
                }
                _ = sleep_until(deadline) => {
                    self.conn.handle_timeout(self.clock.now()).map_err(|_| ClientError::Timeout {
                        what: "waiting for CONNACK",
                        secs: self.conn.options().connack_timeout_ms / 1000,
                    })?;
                }
            }
        }
    }

    async fn flush(&mut self, stream: &mut Box<dyn Stream>) -> Result<(), ClientError> {
        let mut out = Vec::new();
        if self.conn.poll_transmit(&mut out) > 0 {
            stream.write_all(&out).await?;
            stream.flush().await?;
        }
        for w in self.qos0_waiters.drain(..) {
            let _ = w.send(Ok(()));
        }
        Ok(())
    }

    async fn run(mut self, mut stream: Box<dyn Stream>) {
        loop {
            let err = match self.serve(&mut stream).await {
                Ended::Shutdown => return,
                Ended::Lost(e) => e,
            };
            tracing::info!(error = %err, "connection lost");
            drop(stream);
            self.conn.connection_lost();
            let _ = self.ev_tx.try_send(Event::ConnectionLost(err.clone()));
            let Some(backoff) = self.opts.reconnect else {
                self.fail_all(err);
                return;
            };
            let mut attempt = 0u32;
            stream = loop {
                let unit: f64 = rand::random();
                let delay = backoff.delay(attempt, unit);
                attempt += 1;
                tracing::debug!(?delay, attempt, "reconnecting");
                if !self.wait_offline(delay).await {
                    return;
                }
                match self.establish().await {
                    Ok((s, info)) => {
                        if !info.session_present {
                            self.resubscribe();
                        }
                        let _ = self.ev_tx.try_send(Event::Reconnected(info));
                        break s;
                    }
                    Err(e) => {
                        tracing::info!(error = %e, attempt, "reconnect failed");
                        self.conn.connection_lost();
                        if backoff.max_attempts.is_some_and(|m| attempt >= m) {
                            self.fail_all(e);
                            return;
                        }
                        let _ = self.ev_tx.try_send(Event::ConnectionLost(e));
                    }
                }
            };
        }
    }

    /// Resubscribes to every acknowledged subscription (the broker lost the session).
    fn resubscribe(&mut self) {
        let subs = std::mem::take(&mut self.subscriptions);
        let now = self.clock.now();
        for (filter, options, properties) in subs {
            match self
                .conn
                .subscribe(now, &[(filter.as_str(), options)], &properties)
            {
                Ok(pid) => {
                    self.sub_waiters.insert(
                        pid.get(),
                        SubWaiter {
                            filters: vec![(filter, options)],
                            properties,
                            reply: None,
                        },
                    );
                }
                Err(e) => tracing::warn!(error = %e, %filter, "cannot resubscribe"),
            }
        }
    }

    /// Waits `delay` while still taking requests (publishes are queued). False when the
    /// application asked to stop.
    async fn wait_offline(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                cmd = self.cmd_rx.recv() => match cmd {
                    None => return false,
                    Some(Command::Disconnect(_, _, done)) => {
                        self.fail_all(ClientError::Shutdown(None));
                        let _ = done.send(());
                        return false;
                    }
                    Some(c) => {
                        self.handle_command(c);
                        for w in self.qos0_waiters.drain(..) {
                            let _ = w.send(Ok(()));
                        }
                    }
                }
            }
        }
    }

    fn fail_all(&mut self, e: ClientError) {
        let e = ClientError::Shutdown(Some(Arc::new(e)));
        for (_, w) in self.pub_waiters.drain() {
            let _ = w.send(Err(e.clone()));
        }
        for w in self.qos0_waiters.drain(..) {
            let _ = w.send(Err(e.clone()));
        }
        for (_, w) in self.sub_waiters.drain() {
            if let Some(r) = w.reply {
                let _ = r.send(Err(e.clone()));
            }
        }
        for (_, (_, w)) in self.unsub_waiters.drain() {
            let _ = w.send(Err(e.clone()));
        }
        self.cmd_rx.close();
    }

    async fn serve(&mut self, stream: &mut Box<dyn Stream>) -> Ended {
        loop {
            if let Err(e) = self.process_events().await {
                let _ = self.flush(stream).await;
                return Ended::Lost(e);
            }
            if let Err(e) = self.flush(stream).await {
                return Ended::Lost(e);
            }
            let deadline = self.conn.poll_timeout().map(|t| self.clock.instant(t));
            tokio::select! {
                r = stream.read(&mut self.buf) => {
                    let n = match r {
                        Ok(0) => return Ended::Lost(ClientError::Disconnected { reason: None, reason_string: None }),
                        Ok(n) => n,
                        Err(e) => return Ended::Lost(e.into()),
                    };
                    let now = self.clock.now();
                    if let Err(e) = self.conn.handle_input(now, &self.buf[..n]) {
                        let _ = self.flush(stream).await;
                        return Ended::Lost(e.into());
                    }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    None => {
                        self.conn.disconnect(ReasonCode::Success, &OwnedProperties::default());
                        let _ = self.flush(stream).await;
                        let _ = stream.shutdown().await;
                        return Ended::Shutdown;
                    }
                    Some(Command::Disconnect(reason, props, done)) => {
                        self.conn.disconnect(reason, &props);
                        let _ = self.flush(stream).await;
                        let _ = stream.shutdown().await;
                        self.fail_all(ClientError::Shutdown(None));
                        let _ = done.send(());
                        return Ended::Shutdown;
                    }
                    Some(c) => self.handle_command(c),
                },
                _ = sleep_until(deadline) => {
                    if let Err(e) = self.conn.handle_timeout(self.clock.now()) {
                        let _ = self.flush(stream).await;
                        return Ended::Lost(e.into());
                    }
                }
            }
        }
    }

    fn handle_command(&mut self, c: Command) {
        let now = self.clock.now();
        match c {
            Command::Publish(msg, reply) => match self.conn.publish(now, msg) {
                Ok(Some(pid)) => {
                    self.pub_waiters.insert(pid.get(), reply);
                }
                Ok(None) => self.qos0_waiters.push(reply),
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            Command::Subscribe(filters, properties, reply) => {
                let refs: Vec<(&str, SubscriptionOptions)> =
                    filters.iter().map(|(f, o)| (f.as_str(), *o)).collect();
                match self.conn.subscribe(now, &refs, &properties) {
                    Ok(pid) => {
                        self.sub_waiters.insert(
                            pid.get(),
                            SubWaiter {
                                filters,
                                properties,
                                reply: Some(reply),
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Unsubscribe(filters, properties, reply) => {
                let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
                match self.conn.unsubscribe(now, &refs, &properties) {
                    Ok(pid) => {
                        self.unsub_waiters.insert(pid.get(), (filters, reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Disconnect(..) => {}
        }
    }

    async fn process_events(&mut self) -> Result<(), ClientError> {
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                ConnEvent::Message(m) => {
                    // Waits for room: back-pressure to the socket.
                    let _ = self.ev_tx.send(Event::Message(m)).await;
                }
                ConnEvent::Published { packet_id, reason } => {
                    if let Some(w) = self.pub_waiters.remove(&packet_id.get()) {
                        let r = if reason.is_success() {
                            Ok(())
                        } else {
                            Err(ClientError::PublishRefused(reason))
                        };
                        let _ = w.send(r);
                    }
                }
                ConnEvent::Subscribed { packet_id, reasons } => {
                    self.on_suback(packet_id, reasons);
                }
                ConnEvent::Unsubscribed { packet_id, reasons } => {
                    if let Some((filters, reply)) = self.unsub_waiters.remove(&packet_id.get()) {
                        self.subscriptions
                            .retain(|(f, _, _)| !filters.iter().any(|u| u == f));
                        let _ = reply.send(Ok(reasons));
                    }
                }
                ConnEvent::Disconnected { reason, properties } => {
                    return Err(ClientError::Disconnected {
                        reason: Some(reason),
                        reason_string: properties.reason_string,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_suback(&mut self, packet_id: PacketId, reasons: Vec<ReasonCode>) {
        let Some(w) = self.sub_waiters.remove(&packet_id.get()) else {
            return;
        };
        for ((filter, options), code) in w.filters.iter().zip(&reasons) {
            if code.is_success() {
                self.subscriptions.retain(|(f, _, _)| f != filter);
                self.subscriptions
                    .push((filter.clone(), *options, w.properties.clone()));
            }
        }
        if let Some(r) = w.reply {
            let _ = r.send(Ok(reasons));
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none (for `select!` arms).
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_bounds() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            max_attempts: None,
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(5), Duration::from_secs(2));
        assert_eq!(b.ceiling(200), Duration::from_secs(2));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(400));
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(800));
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
    }

    #[test]
    fn generated_ids_are_distinct() {
        let a = random_client_id();
        assert!(a.starts_with("tern-") && a.len() == 21);
        assert_ne!(a, random_client_id());
    }
}
