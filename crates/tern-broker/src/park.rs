//! Parked connections: an idle connection costs its state and nothing else.
//!
//! A busy connection is a tokio task with its socket registered in tokio's reactor. When it
//! has nothing to do (right after CONNACK, or after [`IDLE_RELEASE`](crate::conn) of quiet),
//! its task ends and the connection is *parked* here: its socket leaves tokio's reactor (whose
//! per-socket state is a few hundred bytes) for one epoll set shared by every parked
//! connection, and its state waits in a slab. New plain connections start here. One task, the
//! lot, waits on that epoll set, on wake-ups for parked connections (a message routed to
//! them, shutdown) and on a one-second tick for CONNECT and keep-alive deadlines; a simple
//! CONNECT or PINGREQ it answers itself, anything else is resumed in a new task of its own.
//!
//! Mosquitto keeps an idle connection in its epoll set and a struct; this is the same shape.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use mio::unix::SourceFd;
use tern_proto::Timestamp;
use tokio::io::unix::AsyncFd;
use tracing::warn;

use crate::clock;
use crate::conn::{InLot, PlainConn};

/// A parked connection, whatever its stream type.
pub(crate) trait Resume: Send {
    /// Puts the socket back into tokio's reactor and serves the connection in a new task.
    fn resume(self: Box<Self>);
    /// The parked socket (`None` once it is lost).
    fn fd(&self) -> Option<RawFd>;
    /// Keep-alive deadline: resumed then (and, still silent, closed).
    fn due(&self) -> Option<Timestamp>;
    fn wake(&self) -> &Wake;
}

/// A connection on its way into the lot. (The size difference is the point: a plain
/// connection moves into the slab by value, and a `Parked` only lives for that move.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parked {
    /// Plain TCP, the common idle connection: kept in the lot's slab itself.
    Plain(PlainConn),
    /// Anything else (TLS): its own allocation, large anyway.
    Boxed(Box<dyn Resume>),
}

impl Parked {
    fn resume(self) {
        match self {
            Parked::Plain(c) => Box::new(c).resume(),
            Parked::Boxed(c) => c.resume(),
        }
    }

    fn conn(&self) -> &dyn Resume {
        match self {
            Parked::Plain(c) => c,
            Parked::Boxed(c) => &**c,
        }
    }
}

/// A connection's wake-up: set by whoever queues something for it (another connection's
/// publish, the ticker, shutdown). Like `tokio::sync::Notify::notify_one`, a wake-up given
/// while nobody waits is kept for the next wait. A parked connection is woken through the
/// lot.
#[derive(Debug)]
pub struct Wake {
    /// Bit 0: a wake-up is waiting to be taken. The other bits: the connection's lot token
    /// + 1 while it is parked, 0 while it is busy. One word for both, so that a wake-up and
    ///   a park cannot miss each other (and the handle stays small: one per connection).
    state: AtomicUsize,
    waker: AtomicWaker,
    lot: Option<Arc<Lot>>,
}

const WOKEN: usize = 1;

impl Wake {
    pub(crate) fn new(lot: Option<Arc<Lot>>) -> Self {
        Self {
            state: AtomicUsize::new(0),
            waker: AtomicWaker::new(),
            lot,
        }
    }

    /// Wakes the connection, or leaves the wake-up for its next wait.
    pub fn notify_one(&self) {
        // Either this sees the parked token, or `Lot::park` sees the wake-up.
        let was = self.state.fetch_or(WOKEN, Ordering::SeqCst);
        match (was >> 1, &self.lot) {
            (0, _) | (_, None) => self.waker.wake(),
            (k, Some(lot)) => lot.make_ready(k - 1),
        }
    }

    /// Records the lot token of a parked connection; true if a wake-up is already waiting.
    fn set_parked(&self, token: usize) -> bool {
        // Busy: the token bits are 0, so adding sets them and keeps the wake-up bit.
        self.state.fetch_add((token + 1) << 1, Ordering::SeqCst) & WOKEN != 0
    }

    /// The connection left the lot.
    fn set_busy(&self) {
        self.state.fetch_and(WOKEN, Ordering::SeqCst);
    }

    /// True when a wake-up is waiting to be taken.
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & WOKEN != 0
    }

    fn take(&self) -> bool {
        self.state.fetch_and(!WOKEN, Ordering::AcqRel) & WOKEN != 0
    }

    pub(crate) fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.take() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A wake-up between the check and the registration is not lost.
        if self.take() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub(crate) async fn woken(&self) {
        std::future::poll_fn(|cx| self.poll_woken(cx)).await;
    }
}

/// Parked connections are named by a token: the slab key times two, plus one for the boxed
/// slab. (The token is also the epoll token and, plus one, the high bits of `Wake::state`.) A slab holds
/// the connection and nothing else: its socket, deadline and wake-up are in it.
#[derive(Default)]
struct Inner {
    /// `None` while the lot itself is answering the connection (see `Lot::resume`): the key
    /// stays reserved, so its epoll token stays valid.
    plain: slab::Slab<Option<PlainConn>>,
    boxed: slab::Slab<Box<dyn Resume>>,
    /// Tokens woken since the lot last looked.
    ready: Vec<usize>,
}

impl Inner {
    /// Takes the connection under `token` out (a plain one leaves its key reserved).
    fn take(&mut self, token: usize) -> Option<Parked> {
        if token & 1 == 0 {
            self.plain.get_mut(token >> 1)?.take().map(Parked::Plain)
        } else {
            self.boxed.try_remove(token >> 1).map(Parked::Boxed)
        }
    }

    /// Puts a plain connection back under its reserved key.
    fn put_back(&mut self, token: usize, conn: PlainConn) {
        if let Some(slot) = self.plain.get_mut(token >> 1) {
            *slot = Some(conn);
        }
    }

    /// Frees a plain connection's reserved key (it has left the lot).
    fn release(&mut self, token: usize) {
        if token & 1 == 0 {
            self.plain.try_remove(token >> 1);
        }
    }
}

/// The parked connections of one server.
pub struct Lot {
    inner: Mutex<Inner>,
    registry: mio::Registry,
    /// The lot task, for wake-ups of parked connections.
    task: AtomicWaker,
}

impl std::fmt::Debug for Lot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lot").finish_non_exhaustive()
    }
}

impl Lot {
    /// A lot and the epoll set its task waits on; `None` if the system will not give one
    /// (connections then keep their tasks while idle).
    pub(crate) fn new() -> Option<(Arc<Lot>, mio::Poll)> {
        let poll = match mio::Poll::new() {
            Ok(p) => p,
            Err(e) => {
                warn!(
                    "idle connections cannot be parked (no epoll set: {e}); they keep their tasks"
                );
                return None;
            }
        };
        let registry = poll.registry().try_clone().ok()?;
        let lot = Arc::new(Lot {
            inner: Mutex::new(Inner::default()),
            registry,
            task: AtomicWaker::new(),
        });
        Some((lot, poll))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Parks `conn`, whose socket is out of tokio's reactor. If the socket cannot be
    /// watched, the connection is resumed at once.
    pub(crate) fn park(&self, conn: Parked) {
        let Some(fd) = conn.conn().fd() else {
            warn!("could not park an idle connection (its socket is not parked); it stays busy");
            return conn.resume();
        };
        let (token, woken) = {
            let mut inner = self.lock();
            let token = match &conn {
                Parked::Plain(_) => inner.plain.vacant_key() << 1,
                Parked::Boxed(_) => (inner.boxed.vacant_key() << 1) | 1,
            };
            // Edge-triggered: input that arrived before this call is reported at once.
            if let Err(e) = self.registry.register(
                &mut SourceFd(&fd),
                mio::Token(token),
                mio::Interest::READABLE,
            ) {
                drop(inner);
                warn!("could not park an idle connection ({e}); it stays busy");
                conn.resume();
                return;
            }
            let woken = conn.conn().wake().set_parked(token);
            match conn {
                Parked::Plain(conn) => {
                    inner.plain.insert(Some(conn));
                }
                Parked::Boxed(conn) => {
                    inner.boxed.insert(conn);
                }
            }
            (token, woken)
        };
        // A wake-up given while the connection was on its way here.
        if woken {
            self.make_ready(token);
        }
    }

    fn make_ready(&self, key: usize) {
        self.lock().ready.push(key);
        self.task.wake();
    }

    fn poll_ready(&self, cx: &mut Context<'_>, keys: &mut Vec<usize>) -> Poll<()> {
        self.task.register(cx.waker());
        let mut inner = self.lock();
        if inner.ready.is_empty() {
            return Poll::Pending;
        }
        keys.append(&mut inner.ready);
        Poll::Ready(())
    }

    /// Tokens of parked connections whose deadline (CONNECT timeout, keep-alive) has passed.
    fn due(&self, now: Timestamp, keys: &mut Vec<usize>) {
        let inner = self.lock();
        let due = |d: Option<Timestamp>| d.is_some_and(|d| d <= now);
        keys.extend(
            inner
                .plain
                .iter()
                .filter(|(_, c)| c.as_ref().is_some_and(|c| due(c.due())))
                .map(|(k, _)| k << 1),
        );
        keys.extend(
            inner
                .boxed
                .iter()
                .filter(|(_, c)| due(c.due()))
                .map(|(k, _)| (k << 1) | 1),
        );
    }

    /// Resumes the connections under `keys` (each once; stale keys are skipped). A plain
    /// connection's simple CONNECT or PINGREQ is answered here, without a task (see
    /// `Conn::answer_in_lot`); it stays parked.
    fn resume(&self, keys: &mut Vec<usize>) {
        let mut out = Vec::with_capacity(keys.len());
        {
            let mut inner = self.lock();
            for k in keys.drain(..) {
                if let Some(conn) = inner.take(k) {
                    out.push((k, conn));
                }
            }
        }
        // The lock is not held here: answering takes the broker's lock, whose holders may
        // wake parked connections (which takes this one).
        for (token, conn) in out {
            match conn {
                Parked::Plain(mut c) => match c.answer_in_lot() {
                    InLot::Stay => self.lock().put_back(token, c),
                    InLot::Busy => {
                        self.lock().release(token);
                        self.unwatch(&c);
                        Parked::Plain(c).resume();
                    }
                    InLot::Ended => {
                        self.lock().release(token);
                        self.unwatch(&c);
                    }
                },
                boxed => {
                    self.unwatch(boxed.conn());
                    boxed.resume();
                }
            }
        }
    }

    /// Takes a connection's socket out of the epoll set (it is leaving the lot).
    fn unwatch(&self, conn: &dyn Resume) {
        if let Some(fd) = conn.fd() {
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
        conn.wake().set_busy();
    }

    /// Drops every parked connection (the server has stopped).
    pub(crate) fn clear(&self) {
        let (plain, boxed) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.plain),
                std::mem::take(&mut inner.boxed),
            )
        };
        for c in plain.into_iter().filter_map(|(_, c)| c) {
            self.unwatch(&c);
        }
        for (_, c) in boxed {
            self.unwatch(&*c);
        }
    }
}

/// The lot's task: resumes parked connections that have input, a wake-up or a keep-alive
/// deadline due. Runs until the server stops.
pub(crate) async fn run(lot: Arc<Lot>, poll: mio::Poll) {
    // `with_interest` is deprecated because an arbitrary `AsRawFd` type could close or swap
    // its descriptor while registered; `mio::Poll` owns its epoll descriptor from creation
    // to drop and never changes it, and the `AsyncFd` owns the `Poll`. (The replacement,
    // `register_with_interest`, is an `unsafe fn`, which this workspace forbids.)
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(poll, tokio::io::Interest::READABLE);
    let mut afd = match registered {
        Ok(a) => a,
        Err(e) => {
            warn!("idle connections cannot be parked ({e}); they keep their tasks");
            return;
        }
    };
    let mut events = mio::Events::with_capacity(512);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keys = Vec::new();
    loop {
        tokio::select! {
            guard = afd.readable_mut() => {
                let Ok(mut guard) = guard else {
                    warn!("the parked connections' epoll set failed; idle connections stay parked until woken");
                    return;
                };
                // Everything that is ready, then wait again.
                loop {
                    let got = guard.try_io(|a| {
                        a.get_mut().poll(&mut events, Some(Duration::ZERO))?;
                        if events.is_empty() {
                            Err(std::io::ErrorKind::WouldBlock.into())
                        } else {
                            Ok(())
                        }
                    });
                    match got {
                        Ok(Ok(())) => keys.extend(events.iter().map(|e| e.token().0)),
                        Ok(Err(e)) => {
                            warn!("polling parked connections failed: {e}");
                            break;
                        }
                        Err(_would_block) => break,
                    }
                    if keys.len() >= 4096 {
                        break;
                    }
                }
            }
            _ = std::future::poll_fn(|cx| lot.poll_ready(cx, &mut keys)) => {}
            _ = tick.tick() => lot.due(clock::now(), &mut keys),
        }
        lot.resume(&mut keys);
    }
}
