//! tern-broker: the tokio server around the broker core. Listeners with a connection cap
//! taken before accept, one task per connection ([`conn`]), a ticker for wills, expiry and
//! `$SYS`, and graceful shutdown that tells every client and waits for connections to drain.
//! It never prints: the binary reports what [`Server::listeners`] returns.

pub mod clock;
pub mod conn;
pub mod encode;
pub mod security;
pub mod settings;
pub mod ws;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tern_broker_core::{Authenticator, Broker, ConnId, CoreConfig, ListenerLimits};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
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
        }
    }
}

/// One socket to listen on.
#[derive(Clone, Debug)]
pub struct ListenerSpec {
    pub addr: SocketAddr,
    pub settings: ListenerSettings,
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
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            core: CoreConfig::default(),
            listeners: Vec::new(),
            max_connections: 100_000,
            connect_timeout: Duration::from_secs(10),
            max_connections_per_address: 100_000,
        }
    }
}

/// The broker core and the wake-up handles of connected clients, behind one lock.
#[derive(Debug)]
pub struct CoreState {
    pub broker: Broker,
    pub notifies: HashMap<ConnId, Arc<Notify>>,
}

impl CoreState {
    /// The wake-up handles for `ids` (to notify after releasing the lock).
    pub fn notifies_for(&self, ids: &[ConnId]) -> Vec<Arc<Notify>> {
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
    auth_failures: Mutex<HashMap<IpAddr, u32>>,
    shutdown: Notify,
}

impl Shared {
    /// Locks the broker core. Never held across an `.await`.
    pub fn lock(&self) -> CoreGuard<'_> {
        // A panic while holding the lock would be a bug in the core; keep serving with the
        // state as it is rather than taking every connection down with it.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn max_packet_size(&self) -> u32 {
        self.settings.core.max_packet_size
    }

    fn add_sent(&self, bytes: usize, packets: u64) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.packets_sent.fetch_add(packets, Ordering::Relaxed);
    }

    fn auth_failed(&self, ip: IpAddr) {
        let mut f = self.auth_failures.lock().unwrap_or_else(|e| e.into_inner());
        if f.len() > 10_000 {
            f.clear();
        }
        *f.entry(ip).or_default() += 1;
    }
}

/// A bound server, ready to run.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<(TcpListener, Arc<ListenerSettings>)>,
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
        let mut listeners = Vec::new();
        for spec in &settings.listeners {
            let l = TcpListener::bind(spec.addr)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: spec.addr,
                    source,
                })?;
            listeners.push((l, Arc::new(spec.settings.clone())));
        }
        let broker = Broker::new(settings.core.clone(), clock::now(), rand::random());
        let shared = Arc::new(Shared {
            core: Mutex::new(CoreState {
                broker,
                notifies: HashMap::new(),
            }),
            settings,
            bytes_sent: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            per_address: Mutex::new(HashMap::new()),
            auth_failures: Mutex::new(HashMap::new()),
            shutdown: Notify::new(),
        });
        Ok(Server { shared, listeners })
    }

    /// What is listening where.
    pub fn listeners(&self) -> Vec<BoundListener> {
        self.listeners
            .iter()
            .filter_map(|(l, s)| {
                Some(BoundListener {
                    addr: l.local_addr().ok()?,
                    protocol: s.protocol,
                    tls: false,
                    allow_anonymous: s.allow_anonymous,
                })
            })
            .collect()
    }

    /// The shared state (tests, reload).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `shutdown` resolves, then closes every connection cleanly (5.0 clients
    /// get DISCONNECT 0x8B) and waits up to `drain_timeout` for them to finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
        drain_timeout: Duration,
    ) {
        let total = self.shared.settings.max_connections.max(1);
        let permits = Arc::new(Semaphore::new(total));
        let mut tasks = tokio::task::JoinSet::new();
        for (listener, settings) in self.listeners {
            tasks.spawn(accept_loop(
                self.shared.clone(),
                listener,
                settings,
                permits.clone(),
            ));
        }
        tasks.spawn(ticker(self.shared.clone()));
        shutdown.await;
        info!("shutting down: closing connections");
        self.shared.shutdown.notify_waiters();
        tasks.abort_all();
        let ids = {
            let mut core = self.shared.lock();
            let ids = core.broker.shutdown_all();
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
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    settings: Arc<ListenerSettings>,
    permits: Arc<Semaphore>,
) {
    let local = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut backoff = Duration::from_millis(5);
    loop {
        // The caps are taken before accept (mini-redis): at the limit, new connections wait
        // in the kernel's backlog instead of costing memory here.
        let Ok(global) = permits.clone().acquire_owned().await else {
            return;
        };
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
        if !reserve_address(&shared, peer.ip()) {
            info!(%peer, "refused: too many connections from this address (max_connections_per_address)");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            serve_tcp(shared.clone(), stream, peer, settings).await;
            release_address(&shared, peer.ip());
            drop(mine);
            drop(global);
        });
    }
}

async fn serve_tcp(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    settings: Arc<ListenerSettings>,
) {
    let delay = {
        let f = shared
            .auth_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f.get(&peer.ip()).copied().unwrap_or(0)
    };
    if delay > 3 {
        // Repeated authentication failures from this address: slow it down.
        tokio::time::sleep(conn::auth_delay(delay)).await;
    }
    conn::serve(shared, stream, peer, settings, None).await;
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

fn release_address(shared: &Shared, ip: IpAddr) {
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
