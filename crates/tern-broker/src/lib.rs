//! tern-broker: the tokio server around the broker core. Listeners with a connection cap
//! taken before accept, one task per connection ([`conn`]), a ticker for wills, expiry and
//! `$SYS`, and graceful shutdown that tells every client and waits for connections to drain.
//! It never prints: the binary reports what [`Server::listeners`] returns.

pub mod clock;
pub mod conn;
pub mod encode;
pub mod park;
pub mod security;
pub mod settings;
pub mod tls;
pub mod ws;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tern_broker_core::{AuthResult, Authenticator, Broker, ConnId, CoreConfig, ListenerLimits};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use crate::park::Wake;
use tracing::{debug, info, warn};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(
        "cannot listen on {addr}: {source}. Is another broker (mosquitto?) already using the port? Stop it or choose another port with -p"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The persistence store could not be opened or read (the message says what to do).
    #[error("{0}")]
    Store(#[from] tern_store::StoreError),
}

/// The wire protocol of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Mqtt,
    WebSockets,
}

/// Per-listener behaviour (mosquitto.conf listener and, with `per_listener_settings`, auth).
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    /// Shown in logs and the start-up line.
    pub protocol: Protocol,
    /// `allow_anonymous`.
    pub allow_anonymous: bool,
    /// `password_file`, if any.
    pub authenticator: Option<Arc<dyn Authenticator>>,
    /// `use_username_as_clientid`.
    pub use_username_as_clientid: bool,
    /// `max_connections` for this listener.
    pub max_connections: usize,
    /// `max_qos`, `max_topic_alias`, client id rules and the ACL of this listener.
    pub limits: ListenerLimits,
    /// TLS, when `certfile` and `keyfile` are set.
    pub tls: Option<Arc<tls::TlsAcceptor>>,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self {
            protocol: Protocol::Mqtt,
            allow_anonymous: false,
            authenticator: None,
            use_username_as_clientid: false,
            max_connections: 100_000,
            limits: ListenerLimits::from_core(&CoreConfig::default()),
            tls: None,
        }
    }
}

/// One socket to listen on.
#[derive(Clone, Debug)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub settings: ListenerSettings,
    /// The TLS options from the file (without reading the files), so that a reload can
    /// tell whether they changed.
    pub tls_options: Option<tls::TlsOptions>,
}

/// Everything the server needs.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub core: CoreConfig,
    pub listeners: Vec<ListenerSpec>,
    /// `max_connections` across all listeners. Worst case memory: this many connection
    /// tasks with their buffers.
    pub max_connections: usize,
    /// `connect_timeout` (tern): a connection that sends no CONNECT within this is closed.
    pub connect_timeout: Duration,
    /// `max_connections_per_address` (tern).
    pub max_connections_per_address: usize,
    /// `tls_handshake_rate` (tern): new TLS handshakes started per second, so a reconnect
    /// storm cannot starve message delivery.
    pub tls_handshake_rate: u32,
    /// `websockets_headers_size`: the largest WebSocket upgrade request accepted.
    pub websockets_headers_size: usize,
    /// `persistence true`: where the store is and how it commits. `None`: nothing survives a
    /// restart.
    pub persistence: Option<tern_store::StoreOptions>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            core: CoreConfig::default(),
            listeners: Vec::new(),
            max_connections: 100_000,
            connect_timeout: Duration::from_secs(10),
            max_connections_per_address: 100_000,
            tls_handshake_rate: 1000,
            websockets_headers_size: 1024,
            persistence: None,
        }
    }
}

/// The broker core and the wake-up handles of connected clients, behind one lock.
#[derive(Debug)]
pub struct CoreState {
    pub broker: Broker,
    pub notifies: tern_broker_core::Map<ConnId, Arc<Wake>>,
}

impl CoreState {
    /// The wake-up handles for `ids` (to notify after releasing the lock).
    pub fn notifies_for(&self, ids: &[ConnId]) -> Vec<Arc<Wake>> {
        ids.iter()
            .filter_map(|id| self.notifies.get(id).cloned())
            .collect()
    }
}

pub(crate) type CoreGuard<'a> = MutexGuard<'a, CoreState>;

/// State shared by every task of the server.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<CoreState>,
    pub settings: ServerSettings,
    bytes_sent: AtomicU64,
    packets_sent: AtomicU64,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Recent authentication failures per address: (count, last failure).
    auth_failures: Mutex<HashMap<IpAddr, (u32, std::time::Instant)>>,
    shutdown: Notify,
    handshakes: Mutex<(f64, std::time::Instant)>,
    /// Turns for password checks on blocking threads (one per core, see `authenticate`).
    auth_turns: Semaphore,
    /// The persistence store (`persistence true`).
    store: Option<tern_store::Store>,
    /// Where idle connections wait (`None`: they keep their tasks).
    pub lot: Option<Arc<park::Lot>>,
}

impl Shared {
    /// Checks a user name and password on a blocking thread, not the broker's: a password
    /// hash is slow on purpose (PBKDF2 with up to 10,000,000 iterations takes seconds), and
    /// every other client would wait for it. At most one check per core (at most four) runs
    /// at once; the rest wait their turn.
    pub(crate) async fn authenticate(
        &self,
        auth: Arc<dyn Authenticator>,
        username: String,
        password: Option<Vec<u8>>,
    ) -> AuthResult {
        let Ok(_turn) = self.auth_turns.acquire().await else {
            return AuthResult::BadCredentials;
        };
        tokio::task::spawn_blocking(move || auth.authenticate(&username, password.as_deref()))
            .await
            .unwrap_or(AuthResult::BadCredentials)
    }

    /// Locks the broker core. Never held across an `.await`.
    pub fn lock(&self) -> CoreGuard<'_> {
        // A panic while holding the lock would be a bug in the core; keep serving with the
        // state as it is rather than taking every connection down with it.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the store operations the core produced to the store. Call it before releasing
    /// the lock the core was called under, so that batches keep the core's order. Returns the
    /// batch to wait for before writing the acknowledgements this batch produced.
    pub(crate) fn persist(&self, core: &mut CoreState) -> Option<u64> {
        let store = self.store.as_ref()?;
        let mut ops = Vec::new();
        core.broker.take_store_ops(&mut ops);
        let t = store.submit(&mut ops)?;
        t.must_wait.then_some(t.seq)
    }

    /// Resolves once store batch `seq` is committed ("an acknowledged QoS 1/2 message is
    /// never lost").
    pub(crate) async fn durable(&self, seq: u64) -> Result<(), tern_store::StoreError> {
        match &self.store {
            Some(s) => s.wait(seq).await,
            None => Ok(()),
        }
    }

    /// The persistence store, when `persistence true`.
    pub fn store(&self) -> Option<&tern_store::Store> {
        self.store.as_ref()
    }

    fn max_packet_size(&self) -> u32 {
        self.settings.core.max_packet_size
    }

    fn add_sent(&self, bytes: usize, packets: u32) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.packets_sent
            .fetch_add(u64::from(packets), Ordering::Relaxed);
    }

    /// Records a failed authentication from `ip`; returns how many failed recently (a
    /// minute without failures forgets them). Bounded: at most 10,000 addresses are tracked.
    fn auth_failed(&self, ip: IpAddr) -> u32 {
        let mut f = self.auth_failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if f.len() > 10_000 {
            f.retain(|_, (_, t)| now.duration_since(*t) < Duration::from_secs(60));
            if f.len() > 10_000 {
                f.clear();
            }
        }
        let e = f.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) > Duration::from_secs(60) {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = now;
        e.0
    }
}

/// A listener's settings, replaced as a whole on reload; connections take a copy when
/// they are accepted.
pub type SettingsSlot = Arc<Mutex<Arc<ListenerSettings>>>;

fn current(slot: &SettingsSlot) -> Arc<ListenerSettings> {
    slot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<(std::net::TcpListener, SettingsSlot)>,
    /// The parked connections' epoll set, until `run` starts the lot's task.
    lot_poll: Option<mio::Poll>,
}

/// Applies a new configuration to a running server (SIGHUP).
#[derive(Clone, Debug)]
pub struct ReloadHandle {
    shared: Arc<Shared>,
    /// Each listener's configured address (as in the file: port 0 stays 0) and settings.
    slots: Vec<(SocketAddr, SettingsSlot)>,
}

impl ReloadHandle {
    /// Applies what can change without a restart: the core limits, `allow_anonymous`, the
    /// password and ACL files (existing clients are checked against the new ACL from their
    /// next packet on), and the TLS files (re-read; new handshakes use them). Listeners are
    /// paired with the new configuration's by address and port, so adding or removing one
    /// in the file moves nobody's settings onto another. What needs a restart (a listener
    /// added or removed, changed TLS options or protocol, the connection limits, the packet
    /// size, persistence) is logged as a warning and left as it is, as in Mosquitto.
    pub fn reload(&self, new: ServerSettings) {
        self.warn_restart_needed(&new);
        {
            let mut core = self.shared.lock();
            let mut cfg = new.core.clone();
            // Persistence is chosen at start-up, as in Mosquitto.
            cfg.persistence = self.shared.store.is_some();
            // Connections read the packet size from the start-up settings: keep the core
            // in step with them.
            cfg.max_packet_size = self.shared.settings.core.max_packet_size;
            core.broker.set_config(cfg);
            self.shared.persist(&mut core);
            let mut to_close = Vec::new();
            let mut specs = new.listeners;
            for (addr, slot) in &self.slots {
                let Some(i) = specs.iter().position(|s| s.addr == *addr) else {
                    warn!(
                        %addr,
                        "listener removed from the configuration file: it keeps running with its old settings; restart the broker to stop it"
                    );
                    continue;
                };
                let spec = specs.remove(i);
                let old = current(slot);
                let mut next = spec.settings;
                // TLS acceptors stay (their files are reloaded below).
                next.tls = old.tls.clone();
                if old.tls.as_ref().map(|t| &t.options) != spec.tls_options.as_ref() {
                    warn!(
                        %addr,
                        "the TLS options of this listener changed: restart the broker to apply them (only the certificate, key, CA and CRL files are re-read on SIGHUP)"
                    );
                }
                if next.protocol != old.protocol {
                    warn!(
                        %addr,
                        "the protocol of this listener changed: restart the broker to apply it"
                    );
                    next.protocol = old.protocol;
                }
                core.broker
                    .replace_authorizer(&old.limits.authorizer, &next.limits.authorizer);
                if let Some(a) = &old.authenticator {
                    to_close.extend(
                        core.broker
                            .replace_authenticator(a, next.authenticator.as_ref()),
                    );
                }
                *slot.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
            }
            for spec in &specs {
                warn!(
                    addr = %spec.addr,
                    "listener added to the configuration file: restart the broker to start it"
                );
            }
            if !to_close.is_empty() {
                info!(
                    count = to_close.len(),
                    "disconnecting clients whose user is no longer in the password file"
                );
            }
            for n in core.notifies_for(&to_close) {
                n.notify_one();
            }
        }
        let mut seen: Vec<Arc<tls::TlsAcceptor>> = Vec::new();
        for (_, slot) in &self.slots {
            if let Some(t) = &current(slot).tls
                && !seen.iter().any(|x| Arc::ptr_eq(x, t))
            {
                reload_one(t);
                seen.push(t.clone());
            }
        }
        info!("configuration reloaded");
    }

    /// Warns about each broker-wide option that changed but is read only at start-up.
    fn warn_restart_needed(&self, new: &ServerSettings) {
        let old = &self.shared.settings;
        let changed = [
            (
                "max_packet_size",
                old.core.max_packet_size != new.core.max_packet_size,
            ),
            (
                "max_connections",
                old.max_connections != new.max_connections,
            ),
            (
                "connect_timeout",
                old.connect_timeout != new.connect_timeout,
            ),
            (
                "max_connections_per_address",
                old.max_connections_per_address != new.max_connections_per_address,
            ),
            (
                "tls_handshake_rate",
                old.tls_handshake_rate != new.tls_handshake_rate,
            ),
            (
                "websockets_headers_size",
                old.websockets_headers_size != new.websockets_headers_size,
            ),
            (
                "persistence",
                old.persistence.as_ref().map(|p| &p.path)
                    != new.persistence.as_ref().map(|p| &p.path),
            ),
        ];
        for (name, _) in changed.iter().filter(|(_, c)| *c) {
            warn!("{name} changed: restart the broker to apply it; the old value stays");
        }
    }
}

/// Describes a bound listener (for the start-up lines).
#[derive(Clone, Debug)]
pub struct BoundListener {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub tls: bool,
    pub allow_anonymous: bool,
}

impl Server {
    /// Binds every listener. Fails on the first address that cannot be bound.
    pub async fn bind(settings: ServerSettings) -> Result<Server, ServerError> {
        // The store first: a store that cannot be used stops the start before any port is
        // taken.
        let now = clock::now();
        let mut core_cfg = settings.core.clone();
        core_cfg.persistence = settings.persistence.is_some();
        let mut broker = Broker::new(core_cfg, now, rand::random());
        // A restored session's listener is not recorded: until it reconnects (wills going
        // out on expiry), it is checked against the first listener's ACL, which is every
        // listener's ACL unless `per_listener_settings` gives them different files.
        if let Some(first) = settings.listeners.first() {
            broker.set_restored_authorizer(first.settings.limits.authorizer.clone());
        }
        let store = match &settings.persistence {
            Some(opts) => Some(open_store(opts, now, &mut broker)?),
            None => None,
        };
        let mut listeners = Vec::new();
        for spec in &settings.listeners {
            let l = bind_tcp(spec.addr).map_err(|source| ServerError::Bind {
                addr: spec.addr,
                source,
            })?;
            listeners.push((l, Arc::new(Mutex::new(Arc::new(spec.settings.clone())))));
        }
        let lot = park::Lot::new();
        let shared = Arc::new(Shared {
            core: Mutex::new(CoreState {
                broker,
                notifies: tern_broker_core::Map::default(),
            }),
            settings,
            bytes_sent: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            per_address: Mutex::new(HashMap::new()),
            auth_failures: Mutex::new(HashMap::new()),
            shutdown: Notify::new(),
            handshakes: Mutex::new((0.0, std::time::Instant::now())),
            auth_turns: Semaphore::new(crypto_threads()),
            store,
            lot: lot.as_ref().map(|(l, _)| l.clone()),
        });
        Ok(Server {
            shared,
            listeners,
            lot_poll: lot.map(|(_, p)| p),
        })
    }

    /// What is listening where.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.listeners
            .iter()
            .filter_map(|(l, s)| {
                let s = current(s);
                Some(BoundListener {
                    addr: l.local_addr().ok()?,
                    protocol: s.protocol,
                    tls: s.tls.is_some(),
                    allow_anonymous: s.allow_anonymous,
                })
            })
            .collect()
    }

    /// The shared state (tests, reload).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// A handle to reload the configuration while the server runs.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            shared: self.shared.clone(),
            // `listeners` were bound from `settings.listeners`, one for one and in order.
            slots: self
                .shared
                .settings
                .listeners
                .iter()
                .zip(&self.listeners)
                .map(|(spec, (_, s))| (spec.addr, s.clone()))
                .collect(),
        }
    }

    /// The TLS acceptors of every listener (for reload on SIGHUP).
    pub fn tls_acceptors(&self) -> Vec<Arc<tls::TlsAcceptor>> {
        let mut v: Vec<Arc<tls::TlsAcceptor>> = Vec::new();
        for (_, s) in &self.listeners {
            if let Some(t) = &current(s).tls
                && !v.iter().any(|x| Arc::ptr_eq(x, t))
            {
                v.push(t.clone());
            }
        }
        v
    }

    /// Serves until `shutdown` resolves, then closes every connection cleanly (5.0 clients
    /// get DISCONNECT 0x8B) and waits up to `drain_timeout` for them to finish.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        drain_timeout: Duration,
    ) {
        let total = self.shared.settings.max_connections.max(1);
        let permits = Arc::new(Semaphore::new(total));
        let mut tasks = tokio::task::JoinSet::new();
        let acceptors = self.tls_acceptors();
        for (listener, settings) in self.listeners {
            tasks.spawn(accept_loop(
                self.shared.clone(),
                listener,
                settings,
                permits.clone(),
            ));
        }
        tasks.spawn(ticker(self.shared.clone()));
        // Not in `tasks`: parked connections are resumed through it while shutting down.
        let lot_task = match (self.shared.lot.clone(), self.lot_poll.take()) {
            (Some(lot), Some(poll)) => Some(tokio::spawn(park::run(lot, poll))),
            _ => None,
        };
        if !acceptors.is_empty() {
            tasks.spawn(watch_tls_files(acceptors));
        }
        shutdown.await;
        info!("shutting down: closing connections");
        self.shared.shutdown.notify_waiters();
        tasks.abort_all();
        let ids = {
            let mut core = self.shared.lock();
            let ids = core.broker.shutdown_all();
            self.shared.persist(&mut core);
            core.notifies_for(&ids)
        };
        for n in ids {
            n.notify_one();
        }
        let all = u32::try_from(total).unwrap_or(u32::MAX);
        match tokio::time::timeout(drain_timeout, permits.acquire_many(all)).await {
            Ok(_) => debug!("all connections closed"),
            Err(_) => warn!("some connections did not close within {drain_timeout:?}"),
        }
        if let Some(t) = lot_task {
            t.abort();
        }
        if let Some(lot) = &self.shared.lot {
            lot.clear();
        }
        if let Some(store) = &self.shared.store {
            // Whatever the closing connections left, then one durable commit.
            self.shared.persist(&mut self.shared.lock());
            match store.close() {
                Ok(()) => info!(path = %store.path().display(), "persistence store saved"),
                Err(e) => tracing::error!("{e}"),
            }
        }
    }
}

/// Binds a listening socket. An IPv6 socket is IPv6-only, as in Mosquitto: a listener
/// without an address binds `0.0.0.0` and `[::]` separately, which a dual-stack `[::]`
/// would refuse ("address already in use").
fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // As tokio's own bind does on Unix: a restarted broker gets its port back at once.
    s.set_reuse_address(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listening socket on Linux: set once here
    // instead of once per connection (one system call fewer per accept).
    s.set_tcp_nodelay(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Accepts connections without registering them with tokio: a plain MQTT connection goes
/// to the lot's epoll set instead (see `conn::accept_plain`); the others are registered by
/// their task. The sockets are non-blocking.
struct Acceptor(AsyncFd<mio::net::TcpListener>);

impl Acceptor {
    fn new(l: std::net::TcpListener) -> std::io::Result<Self> {
        // Deprecated because an arbitrary `AsRawFd` type could close or swap its descriptor
        // while registered; a `mio::net::TcpListener` owns its descriptor from creation to
        // drop, and the `AsyncFd` owns the listener. (The replacement is an `unsafe fn`,
        // which this workspace forbids.)
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(
            mio::net::TcpListener::from_std(l),
            tokio::io::Interest::READABLE,
        )?;
        Ok(Self(fd))
    }

    async fn accept(&self) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|l| l.get_ref().accept()) {
                Ok(Ok((s, peer))) => return Ok((s.into(), peer)),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// Opens the store, restores the broker from it and installs it as the broker's queue loader.
fn open_store(
    opts: &tern_store::StoreOptions,
    now: tern_proto::Timestamp,
    broker: &mut Broker,
) -> Result<tern_store::Store, ServerError> {
    let started = std::time::Instant::now();
    let store = tern_store::Store::open(opts.clone())?;
    let restored = store.load_summary(now)?;
    let report = store.report();
    // The loader first: restored messages then stay in the store until their session
    // reconnects instead of filling memory.
    broker.set_queue_loader(Arc::new(store.clone()));
    broker.restore(now, restored);
    let mut ops = Vec::new();
    broker.take_store_ops(&mut ops);
    store.submit(&mut ops);
    store.flush()?;
    if let Some(v) = report.migrated_from {
        info!(path = %store.path().display(), "persistence store migrated from schema {v} to {}", tern_store::SCHEMA_VERSION);
    }
    for line in report.damage_lines(store.path()) {
        warn!("{line}");
    }
    info!(
        path = %store.path().display(),
        sessions = report.sessions,
        messages = report.items,
        retained = report.retained,
        "persistence store loaded in {:?}",
        started.elapsed()
    );
    Ok(store)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    slot: SettingsSlot,
    permits: Arc<Semaphore>,
) {
    let listener = match Acceptor::new(listener) {
        Ok(l) => l,
        Err(e) => {
            warn!(error = %e, "cannot accept connections on a listener");
            return;
        }
    };
    let local = Arc::new(Semaphore::new(current(&slot).max_connections.max(1)));
    let mut backoff = Duration::from_millis(5);
    loop {
        // The listener's cap is taken before accept (mini-redis): at its limit, new connections
        // wait in the kernel's backlog instead of costing memory here. The global cap is
        // taken after accept, so that idle listeners do not each hold a slot of it.
        let Ok(mine) = local.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(e) => {
                // Out of file descriptors and similar: back off instead of spinning.
                warn!(error = %e, "accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(global) = permits.clone().try_acquire_owned() else {
            info!(%peer, "refused: max_connections (global_max_connections) reached");
            continue;
        };
        if !reserve_address(&shared, peer.ip()) {
            info!(%peer, "refused: too many connections from this address (max_connections_per_address)");
            continue;
        }
        let shared = shared.clone();
        let settings = current(&slot);
        let slot_guard = ConnSlot {
            shared: shared.clone(),
            ip: peer.ip(),
            permits: Some(Permits::keep(mine, global)),
        };
        // One spawn per kind of connection, so that each task is only as large as its own
        // future: a plain MQTT connection, the common idle case, does not carry the space of
        // a TLS session or a WebSocket handshake.
        match (settings.tls.clone(), settings.protocol) {
            (None, Protocol::Mqtt) => {
                conn::accept_plain(shared, stream, peer, settings, Some(slot_guard));
            }
            (None, Protocol::WebSockets) => {
                if let Some(stream) = registered(stream, peer) {
                    tokio::spawn(serve_stream(
                        shared, stream, peer, settings, None, slot_guard,
                    ));
                }
            }
            (Some(tls), _) => {
                if let Some(stream) = registered(stream, peer) {
                    tokio::spawn(serve_tls(shared, stream, peer, settings, tls, slot_guard));
                }
            }
        }
    }
}

/// An accepted socket registered with tokio (for a task that serves it).
fn registered(s: std::net::TcpStream, peer: SocketAddr) -> Option<TcpStream> {
    TcpStream::from_std(s)
        .map_err(|e| debug!(%peer, error = %e, "connection error"))
        .ok()
}

/// A connection's share of the limits, given back when the connection ends.
#[derive(Debug)]
pub struct ConnSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    /// `None` once handed to the connection (see [`ConnSlot::into_permits`]).
    permits: Option<Permits>,
}

impl ConnSlot {
    /// Hands the slot to a connection, which keeps only the permits (it has the shared
    /// state and the peer address already) and gives the address back itself, with
    /// [`release_address`], when it ends.
    pub(crate) fn into_permits(mut self) -> Option<Permits> {
        self.permits.take()
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if self.permits.take().is_some() {
            release_address(&self.shared, self.ip);
        }
    }
}

/// One permit each of the listener's and the global `max_connections` semaphores, given back
/// on drop. (Held as the semaphores alone: a held `OwnedSemaphorePermit` is twice the size,
/// for every idle connection.)
#[derive(Debug)]
pub(crate) struct Permits([Arc<Semaphore>; 2]);

impl Permits {
    /// Each permit is one (`acquire_owned` / `try_acquire_owned`); `drop` adds one back.
    fn keep(
        listener: tokio::sync::OwnedSemaphorePermit,
        global: tokio::sync::OwnedSemaphorePermit,
    ) -> Self {
        Self([listener, global].map(|p| {
            let s = p.semaphore().clone();
            p.forget();
            s
        }))
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        for s in &self.0 {
            s.add_permits(1);
        }
    }
}

/// Serves MQTT, or MQTT over WebSockets, on an established (plain or TLS) stream.
async fn serve_stream<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    settings: Arc<ListenerSettings>,
    username: Option<String>,
    slot: ConnSlot,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + conn::Park + Unpin + Send + 'static,
{
    match settings.protocol {
        Protocol::Mqtt => conn::serve(shared, stream, peer, settings, username, Some(slot)).await,
        Protocol::WebSockets => {
            // Boxed: the WebSocket handshake and stream are large and rare.
            Box::pin(async move {
                let opts = ws::WsOptions {
                    handshake_timeout: shared.settings.connect_timeout,
                    headers_size: shared.settings.websockets_headers_size,
                    ..ws::WsOptions::new(shared.settings.core.max_packet_size)
                };
                match ws::accept(stream, &opts).await {
                    Ok(ws) => conn::serve(shared, ws, peer, settings, username, Some(slot)).await,
                    Err(e) => info!(%peer, "closed: {e}"),
                }
            })
            .await
        }
    }
}

/// Threads for TLS handshakes, and the number of password checks at once: one per core, at
/// most four. Handshakes per second are also bounded by `tls_handshake_rate`, so a reconnect
/// storm cannot take every core from message delivery for long.
fn crypto_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// The runtime that runs TLS handshakes: worker threads beside the broker's own.
fn handshake_runtime() -> &'static tokio::runtime::Handle {
    static RT: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    static FALLBACK: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    match RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(crypto_threads())
            .thread_name("tern-tls")
            .enable_all()
            .build()
            .ok()
    }) {
        Some(rt) => rt.handle(),
        // Could not start a thread: handshakes run on the broker's runtime.
        None => FALLBACK.get_or_init(tokio::runtime::Handle::current),
    }
}

/// Takes a slot of the TLS handshake budget (`tls_handshake_rate` per second), waiting for
/// it if needed. Slots are reserved in arrival order; a connection whose slot is further away
/// than half the connect timeout is refused at once (false) instead of queueing: its client
/// would give up before its turn, and serving the queue of the departed is how a reconnect
/// storm collapses throughput.
async fn handshake_budget(shared: &Shared) -> bool {
    let rate = f64::from(shared.settings.tls_handshake_rate.max(1));
    let limit = shared.settings.connect_timeout.as_secs_f64() / 2.0;
    let wait = {
        let mut b = shared.handshakes.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * rate).min(rate);
        b.1 = now;
        let wait = if b.0 >= 1.0 { 0.0 } else { (1.0 - b.0) / rate };
        if wait > limit {
            return false;
        }
        b.0 -= 1.0;
        wait
    };
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
    true
}

async fn serve_tls(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    settings: Arc<ListenerSettings>,
    acceptor: Arc<tls::TlsAcceptor>,
    slot: ConnSlot,
) {
    let limit = shared.settings.connect_timeout;
    // Plain MQTT on a TLS port: a CONNECT starts with 0x10, a TLS record with 0x16.
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x10 => {
            info!(%peer, "TLS handshake failed: the client sent plain MQTT to a TLS port; connect to the plain port, or enable TLS in the client (e.g. --cafile ca.crt)");
            return;
        }
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
        Ok(Ok(_)) => {}
    }
    if !handshake_budget(&shared).await {
        info!(%peer, "refused: more TLS handshakes are waiting than tls_handshake_rate can serve before the client gives up; it should retry later");
        return;
    }
    let tls = tokio_rustls::TlsAcceptor::from(acceptor.config());
    // The handshake's public-key work runs on its own thread, so that a burst of handshakes
    // (a fleet reconnecting) does not stall message delivery on the broker's thread.
    let handshake = handshake_runtime().spawn(async move {
        tokio::time::timeout(limit, tls.accept(conn::Tcp::Live(stream))).await
    });
    let stream = match handshake.await {
        Ok(Ok(Ok(s))) => s,
        Ok(Ok(Err(e))) => {
            info!(%peer, "TLS handshake failed: {}", tls::explain(&e));
            return;
        }
        Ok(Err(_)) => {
            info!(%peer, "TLS handshake failed: it did not finish within the connect timeout");
            return;
        }
        Err(e) => {
            warn!(%peer, "TLS handshake task failed: {e}");
            return;
        }
    };
    let o = &acceptor.options;
    let mut username = None;
    if o.use_identity_as_username || o.use_subject_as_username {
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first().cloned());
        username = leaf.and_then(|c| tls::identity(&c, !o.use_identity_as_username));
        if username.is_none() {
            info!(%peer, "refused: use_identity_as_username needs a client certificate with a subject, and the client sent none");
            return;
        }
    }
    serve_stream(shared, stream, peer, settings, username, slot).await;
}

/// Reloads TLS files that changed on disk (checked every two seconds). A bad new file keeps
/// the old configuration in service.
async fn watch_tls_files(acceptors: Vec<Arc<tls::TlsAcceptor>>) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        for a in &acceptors {
            if a.changed_on_disk() {
                reload_one(a);
            }
        }
    }
}

/// Reloads one TLS acceptor, logging the outcome.
pub fn reload_one(a: &tls::TlsAcceptor) {
    match a.reload() {
        Ok(r) => {
            if r.unchanged {
                info!(
                    "TLS files reloaded for listener {} (none had changed on disk): {}; new connections use them",
                    a.name,
                    r.files.join(", ")
                );
            } else {
                info!(
                    "TLS files reloaded for listener {}: {}; new connections use them",
                    a.name,
                    r.files.join(", ")
                );
            }
            for w in r.warnings {
                warn!("{w}");
            }
        }
        Err(e) => warn!("TLS files not reloaded, the previous ones stay in service: {e}"),
    }
}

fn reserve_address(shared: &Shared, ip: IpAddr) -> bool {
    let mut m = shared.per_address.lock().unwrap_or_else(|e| e.into_inner());
    let n = m.entry(ip).or_default();
    if *n >= shared.settings.max_connections_per_address {
        return false;
    }
    *n += 1;
    true
}

pub(crate) fn release_address(shared: &Shared, ip: IpAddr) {
    let mut m = shared.per_address.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = m.get_mut(&ip) {
        *n -= 1;
        if *n == 0 {
            m.remove(&ip);
        }
    }
}

/// Runs the core's timers: delayed wills, session expiry, `$SYS`.
async fn ticker(shared: Arc<Shared>) {
    loop {
        let now = clock::now();
        let (next, wake) = {
            let mut core = shared.lock();
            let st = core.broker.stats_mut();
            st.bytes_sent = shared.bytes_sent.load(Ordering::Relaxed);
            st.messages_sent = shared.packets_sent.load(Ordering::Relaxed);
            let next = core.broker.tick(now);
            shared.persist(&mut core);
            let mut woken = Vec::new();
            core.broker.take_wakeups(&mut woken);
            (next, core.notifies_for(&woken))
        };
        for n in wake {
            n.notify_one();
        }
        let until = next.map_or(now.plus_secs(1), |n| n.min(now.plus_secs(1)));
        tokio::time::sleep_until(clock::instant_at(until)).await;
    }
}
