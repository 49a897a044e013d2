//! The per-connection driver: reads bytes, frames and decodes packets (bounded by
//! `max_packet_size` before buffering), resolves inbound topic aliases, hands packets to the
//! broker core under its lock, encodes what the core answers outside the lock, and writes.
//! It owns the keep-alive and CONNECT timers. One task per connection, generic over the
//! stream (TCP, TLS, WebSocket).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tern_broker_core::{AuthResult, ConnId, ConnectRequest, Drain, Flow, Out};
use tern_codec::{DecodeError, Packet, ProtocolVersion, ReasonCode, decode_body, frame};
use tern_proto::alias::AliasError;
use tern_proto::{InboundAliases, KeepAlive, Timestamp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{debug, info};

use crate::clock;
use crate::encode::{Encoder, encode_connack, encode_disconnect};
use crate::park::{Parked, Wake};
use crate::{ListenerSettings, Shared};

/// Messages moved per lock acquisition when draining a session queue.
const DRAIN_BUDGET: usize = 256;
/// Bytes of output gathered before a write.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// Largest read buffer a busy connection grows to (it grows by doubling while reads fill it).
const MAX_READ_CHUNK: usize = 64 * 1024;
/// A connection quiet for this long gives its buffers back.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a connection ended (for the log line).
#[derive(Debug)]
enum End {
    PeerClosed,
    Disconnected,
    Io(std::io::Error),
    Decode(DecodeError),
    Protocol(ReasonCode, &'static str),
    KeepAlive,
    ConnectTimeout,
    Refused(ReasonCode),
    ClosedByBroker(ReasonCode),
    Store(tern_store::StoreError),
}

struct State {
    peer: SocketAddr,
    conn: Option<ConnId>,
    client_id: Option<Arc<str>>,
    version: ProtocolVersion,
    encoder: Option<Encoder>,
    aliases: InboundAliases,
    keep_alive: Option<KeepAlive>,
    wake: Arc<Wake>,
    outs: Vec<Out>,
    /// Counted since the last time they were added to the broker's statistics.
    packets_in: u32,
    bytes_in: u32,
    packets_out: u32,
    /// Recent authentication failures from this address (when this one failed).
    auth_failures: u32,
    /// Store batch that must be committed before `wbuf` (acks of stored messages) is written.
    /// (Stored as the batch number + 1, so that the `Option` costs nothing.)
    hold: Option<std::num::NonZeroU64>,
}

/// The TCP socket under a connection: registered with tokio while the connection is busy,
/// a plain socket in the lot's epoll set while it is parked.
#[derive(Debug)]
pub enum Tcp {
    Live(tokio::net::TcpStream),
    Parked(std::net::TcpStream),
    /// The socket was lost while moving between the two (the connection ends).
    Gone,
}

impl Tcp {
    fn live(&mut self) -> std::io::Result<&mut tokio::net::TcpStream> {
        match self {
            Tcp::Live(s) => Ok(s),
            _ => Err(std::io::Error::other("the connection is parked")),
        }
    }

    /// Takes the socket out of tokio's reactor.
    fn park_socket(&mut self) -> std::io::Result<()> {
        match std::mem::replace(self, Tcp::Gone) {
            Tcp::Live(s) => {
                *self = Tcp::Parked(s.into_std()?);
                Ok(())
            }
            other => {
                *self = other;
                Err(std::io::Error::other("the connection is not busy"))
            }
        }
    }

    /// The socket while it is parked.
    fn parked_fd(&self) -> Option<RawFd> {
        match self {
            Tcp::Parked(s) => Some(s.as_raw_fd()),
            _ => None,
        }
    }

    /// Puts the socket back into tokio's reactor.
    fn unpark_socket(&mut self) -> std::io::Result<()> {
        match std::mem::replace(self, Tcp::Gone) {
            Tcp::Parked(s) => {
                *self = Tcp::Live(tokio::net::TcpStream::from_std(s)?);
                Ok(())
            }
            Tcp::Live(s) => {
                *self = Tcp::Live(s);
                Ok(())
            }
            Tcp::Gone => Err(std::io::Error::other("the connection's socket was lost")),
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut().live() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().live() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().live() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut().live() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut().live() {
            Ok(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}

/// A stream whose connection can be parked while idle (see [`crate::park`]).
pub(crate) trait Park: Sized {
    /// Whether this kind of stream can be parked; one that cannot keeps its task while idle.
    const PARKS: bool;
    /// The socket under the stream.
    fn tcp(&mut self) -> Option<&mut Tcp>;
    fn tcp_ref(&self) -> Option<&Tcp>;
    /// A plain TCP connection is parked in the lot's slab itself rather than in a box of
    /// its own: no allocation per idle connection, so none to fragment the heap.
    fn unbox(c: Box<Conn<Self>>) -> Result<PlainConn, Box<Conn<Self>>> {
        Err(c)
    }
}

impl Park for Tcp {
    const PARKS: bool = true;
    fn tcp(&mut self) -> Option<&mut Tcp> {
        Some(self)
    }
    fn tcp_ref(&self) -> Option<&Tcp> {
        Some(self)
    }
    fn unbox(c: Box<Conn<Self>>) -> Result<PlainConn, Box<Conn<Self>>> {
        Ok(*c)
    }
}

/// A plain MQTT-over-TCP connection (the kind parked inline, see [`Park::unbox`]).
pub(crate) type PlainConn = Conn<Tcp>;

impl Park for tokio_rustls::server::TlsStream<Tcp> {
    // rustls holds no unread plaintext when a connection parks: it parks only after its last
    // read found nothing, and its pending output is flushed first.
    const PARKS: bool = true;
    fn tcp(&mut self) -> Option<&mut Tcp> {
        Some(self.get_mut().0)
    }
    fn tcp_ref(&self) -> Option<&Tcp> {
        Some(self.get_ref().0)
    }
}

impl Park for tokio::net::TcpStream {
    // Only the WebSocket path serves a bare TcpStream.
    const PARKS: bool = false;
    fn tcp(&mut self) -> Option<&mut Tcp> {
        None
    }
    fn tcp_ref(&self) -> Option<&Tcp> {
        None
    }
}

/// What a connection owns between packets. Boxed while a task serves it; while it is parked,
/// a plain one waits in the lot's slab by value and any other in its box.
pub(crate) struct Conn<S> {
    shared: Arc<Shared>,
    stream: S,
    listener: Arc<ListenerSettings>,
    peer_username: Option<Box<str>>,
    st: State,
    connect_deadline: Timestamp,
    /// The connection's span, kept only when it is enabled (debug logging): a disabled span
    /// is still 40 bytes.
    span: Option<Box<tracing::Span>>,
    /// The connection's share of the limits, given back when it ends (with its address,
    /// see `Drop`).
    permits: Option<crate::Permits>,
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        if self.permits.is_some() {
            crate::release_address(&self.shared, self.st.peer.ip());
        }
    }
}

/// Serves one connection until it ends. `peer_username` is a TLS certificate identity when
/// `use_identity_as_username` / `use_subject_as_username` applies; `slot` is released when
/// the connection ends.
pub(crate) async fn serve<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    listener: Arc<ListenerSettings>,
    peer_username: Option<String>,
    slot: Option<crate::ConnSlot>,
) where
    S: AsyncRead + AsyncWrite + Park + Unpin + Send + 'static,
{
    use tracing::Instrument;
    let c = Box::new(Conn::new(
        shared,
        stream,
        peer,
        listener,
        peer_username,
        slot,
    ));
    // `.instrument`, not `span.enter()`: an entered span held across `.await` leaks into
    // whatever else runs on the worker thread.
    let span = c
        .span
        .as_deref()
        .cloned()
        .unwrap_or_else(tracing::Span::none);
    if let Some(c) = serve_busy(c).instrument(span).await {
        park(c);
    }
}

impl<S> Conn<S> {
    fn new(
        shared: Arc<Shared>,
        stream: S,
        peer: SocketAddr,
        listener: Arc<ListenerSettings>,
        peer_username: Option<String>,
        slot: Option<crate::ConnSlot>,
    ) -> Self {
        // A debug-level span: at the default info level it costs nothing per connection (an
        // enabled span keeps its formatted fields for the connection's life, so it is kept
        // only when enabled); the info lines name the peer and client themselves.
        let span = tracing::debug_span!("conn", %peer, client_id = tracing::field::Empty);
        let span = (!span.is_disabled()).then(|| Box::new(span));
        let connect_deadline = clock::now() + shared.settings.connect_timeout;
        let wake = Arc::new(Wake::new(shared.lot.clone()));
        Conn {
            shared,
            stream,
            listener,
            peer_username: peer_username.map(String::into_boxed_str),
            st: State {
                peer,
                conn: None,
                client_id: None,
                version: ProtocolVersion::V311,
                encoder: None,
                aliases: InboundAliases::new(0),
                keep_alive: None,
                wake,
                outs: Vec::new(),
                packets_in: 0,
                bytes_in: 0,
                packets_out: 0,
                auth_failures: 0,
                hold: None,
            },
            connect_deadline,
            span,
            permits: slot.and_then(crate::ConnSlot::into_permits),
        }
    }
}

/// Starts a new plain MQTT connection parked: its socket goes straight into the lot's epoll
/// set, never into tokio's, and the lot answers a simple CONNECT itself
/// ([`Conn::answer_in_lot`]). A connecting client that then waits (most do) costs one
/// `epoll_ctl` and no task, as in Mosquitto; anything more gets a task as usual.
pub(crate) fn accept_plain(
    shared: Arc<Shared>,
    stream: std::net::TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerSettings>,
    slot: Option<crate::ConnSlot>,
) {
    let Some(lot) = shared.lot.clone() else {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(s) => {
                tokio::spawn(serve(shared, Tcp::Live(s), peer, listener, None, slot));
            }
            Err(e) => debug!(%peer, error = %e, "connection error"),
        }
        return;
    };
    let c = Conn::new(shared, Tcp::Parked(stream), peer, listener, None, slot);
    lot.park(Parked::Plain(c));
}

/// What the lot did with a parked connection's input.
pub(crate) enum InLot {
    /// Answered (or nothing to do): it stays parked.
    Stay,
    /// It needs a task: resume it.
    Busy,
    /// It ended (closed, logged).
    Ended,
}

/// Largest CONNECT the lot answers itself; a larger one (a big will) gets a task.
const LOT_CONNECT_MAX: usize = 512;

impl Conn<Tcp> {
    /// Answers a parked connection without a task when what arrived is one whole packet, and
    /// simple: a new connection's CONNECT with clean start (nothing to resume or redeliver),
    /// no password to check (that runs on a blocking thread, see `Shared::authenticate`) and
    /// no persistence (whose acknowledgements wait for the disk); or a connected client's
    /// keep-alive PINGREQ. The answer (CONNACK, PINGRESP) is a few bytes, written at once.
    /// Everything else is served by a task as usual.
    pub(crate) fn answer_in_lot(&mut self) -> InLot {
        // A task closes an overdue connection (no CONNECT in time, keep-alive expired).
        let overdue = crate::park::Resume::due(self).is_some_and(|d| clock::now() >= d);
        let Conn {
            shared,
            stream,
            listener,
            st,
            span,
            ..
        } = self;
        // Log lines name their connection, as in a task (no `.await` below).
        let _entered = span.as_deref().map(tracing::Span::enter);
        let connected = st.conn.is_some();
        // A CONNECT with persistence on waits for the disk, in a task.
        if overdue
            || st.wake.is_set()
            || st.hold.is_some()
            || (!connected && shared.store.is_some())
        {
            return InLot::Busy;
        }
        let Tcp::Parked(sock) = stream else {
            return InLot::Busy;
        };
        let mut buf = [0u8; LOT_CONNECT_MAX];
        let n = match sock.peek(&mut buf) {
            Ok(n) if n > 0 => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return InLot::Stay,
            // Closed, or an error: the task reports it as usual.
            _ => return InLot::Busy,
        };
        let max_packet = shared.max_packet_size();
        let simple = if connected {
            // A keep-alive PINGREQ, alone.
            matches!(frame(&buf[..n], max_packet), Ok(Some(f)) if f.total_len() == n && f.first_byte == 0xC0)
        } else {
            whole_connect(&buf[..n], max_packet).is_some_and(|(c, len)| {
                len == n
                    && c.clean_start
                    && (c.username.is_none() || listener.authenticator.is_none())
            })
        };
        if !simple {
            return InLot::Busy;
        }
        // Take the packet off the socket: the bytes peeked are there, so one read gets them.
        let mut rbuf = vec![0u8; n];
        if !matches!(std::io::Read::read(&mut &*sock, &mut rbuf), Ok(m) if m == n) {
            let e = std::io::Error::other("short read of a peeked packet");
            finish(shared, st, End::Io(e));
            return InLot::Ended;
        }
        st.bytes_in = st
            .bytes_in
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        let mut wbuf = Vec::new();
        let peer = st.peer;
        let ended = process_input(
            shared, listener, st, &mut rbuf, &mut wbuf, max_packet, peer, None, None,
        );
        let sent = std::io::Write::write(&mut &*sock, &wbuf);
        shared.add_sent(wbuf.len(), std::mem::take(&mut st.packets_out));
        let end = match (ended, sent) {
            (Some(end), _) => end,
            (None, Ok(m)) if m == wbuf.len() => return InLot::Stay,
            (None, Ok(_)) => End::Io(std::io::Error::other("the answer did not fit the socket")),
            (None, Err(e)) => End::Io(e),
        };
        let _ = sock.shutdown(std::net::Shutdown::Write);
        finish(shared, st, end);
        InLot::Ended
    }
}

/// Parks an idle connection (its busy task is ending): its socket leaves tokio's reactor for
/// the lot, which resumes it on input, a wake-up or its keep-alive deadline.
fn park<S>(mut c: Box<Conn<S>>)
where
    S: AsyncRead + AsyncWrite + Park + Unpin + Send + 'static,
{
    let Some(lot) = c.shared.lot.clone() else {
        return resume(c);
    };
    match c.stream.tcp().map(|t| t.park_socket()) {
        Some(Ok(())) => {}
        None => return resume(c),
        Some(Err(e)) => return finish(&c.shared, &c.st, End::Io(e)),
    }
    lot.park(match S::unbox(c) {
        Ok(plain) => Parked::Plain(plain),
        Err(c) => Parked::Boxed(c),
    });
}

impl<S> crate::park::Resume for Conn<S>
where
    S: AsyncRead + AsyncWrite + Park + Unpin + Send + 'static,
{
    fn resume(mut self: Box<Self>) {
        if let Some(Err(e)) = self.stream.tcp().map(|t| t.unpark_socket()) {
            return finish(&self.shared, &self.st, End::Io(e));
        }
        resume(self);
    }

    fn fd(&self) -> Option<RawFd> {
        self.stream.tcp_ref().and_then(Tcp::parked_fd)
    }

    fn due(&self) -> Option<Timestamp> {
        if self.st.conn.is_none() {
            // A new connection waiting for its CONNECT (see `accept_plain`).
            return Some(self.connect_deadline);
        }
        self.st
            .keep_alive
            .as_ref()
            .and_then(|k| k.server_deadline())
    }

    fn wake(&self) -> &Wake {
        &self.st.wake
    }
}

/// Serves a connection in a task of its own until it ends or parks again.
fn resume<S>(c: Box<Conn<S>>)
where
    S: AsyncRead + AsyncWrite + Park + Unpin + Send + 'static,
{
    use tracing::Instrument;
    let span = c
        .span
        .as_deref()
        .cloned()
        .unwrap_or_else(tracing::Span::none);
    tokio::spawn(
        async move {
            if let Some(c) = serve_busy(c).await {
                park(c);
            }
        }
        .instrument(span),
    );
}

/// Serves a connection while it is busy. Returns it when it has been quiet long enough to be
/// parked, `None` when it has ended.
async fn serve_busy<S>(mut c: Box<Conn<S>>) -> Option<Box<Conn<S>>>
where
    S: AsyncRead + AsyncWrite + Park + Unpin,
{
    let Conn {
        shared,
        stream,
        listener,
        peer_username,
        st,
        connect_deadline,
        ..
    } = &mut *c;
    let connect_deadline = *connect_deadline;
    let peer = st.peer;
    let max_packet = shared.max_packet_size();
    let parks = S::PARKS && shared.lot.is_some();
    // Buffers are allocated while a connection is busy and released after it has been quiet
    // for IDLE_RELEASE (then it parks), so an idle connection costs its state and little
    // else, and a busy one does not reallocate per packet. `read_hint` is how much to read
    // next: 0 when idle (the read then gets a small chunk), doubling while reads fill the
    // buffer.
    let mut rbuf: Vec<u8> = Vec::new();
    let mut read_hint: usize = 0;
    let mut wbuf: Vec<u8> = Vec::new();
    let mut release_at: Option<tokio::time::Instant> = None;
    let mut connecting = st.conn.is_none();
    let end = loop {
        if !wbuf.is_empty() {
            if let Err(e) = held_until_durable(shared, st).await {
                break End::Store(e);
            }
            if let Err(e) = stream.write_all(&wbuf).await {
                break End::Io(e);
            }
            shared.add_sent(wbuf.len(), std::mem::take(&mut st.packets_out));
            if wbuf.capacity() > WRITE_HIGH_WATER * 2 {
                wbuf = Vec::new();
            } else {
                wbuf.clear();
            }
        }
        if connecting && st.conn.is_some() {
            // Just connected, and nothing more read yet: most clients now wait, so park at
            // once. A storm of connections then costs parked connections, not busy tasks;
            // a client that goes on sending is resumed by its next packet.
            if !(parks && rbuf.is_empty() && st.hold.is_none()) {
                connecting = false;
            } else if !st.wake.is_set() {
                if let Err(e) = stream.flush().await {
                    break End::Io(e);
                }
                return Some(c);
            }
            // Otherwise its session had something queued: the wake-up branch below sends
            // it, and this looks again.
        }
        // A connection that could park but has nothing to release (woken for nothing) still
        // counts down to parking.
        let parkable = parks && st.conn.is_some() && release_at.is_none();
        if rbuf.capacity() + wbuf.capacity() + st.outs.capacity() > 0 || parkable {
            release_at = Some(tokio::time::Instant::now() + IDLE_RELEASE);
        }
        let deadline = match (&st.conn, &st.keep_alive) {
            (None, _) => Some(connect_deadline),
            (Some(_), Some(k)) => k.server_deadline(),
            (Some(_), None) => None,
        };
        let mut sleep_until = clock::instant_at(deadline.unwrap_or(Timestamp(u64::MAX / 2)));
        let releasing = matches!(release_at, Some(r) if r < sleep_until);
        if let Some(r) = release_at.filter(|_| releasing) {
            sleep_until = r;
        }
        if read_hint > 0 && rbuf.capacity() - rbuf.len() < read_hint / 2 {
            rbuf.reserve(read_hint);
        }
        let spare = rbuf.capacity() - rbuf.len();
        tokio::select! {
            r = stream.read_buf(&mut rbuf) => {
                match r {
                    Ok(0) => break End::PeerClosed,
                    Ok(n) => {
                        st.bytes_in = st.bytes_in.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
                        read_hint = if n >= spare.max(64) { (read_hint * 2).clamp(2048, MAX_READ_CHUNK) } else { read_hint.min(n.next_power_of_two()) };
                        // A CONNECT with a password is checked off this thread first.
                        let verdict = match (&listener.authenticator, st.conn, peer_username.as_deref()) {
                            (Some(auth), None, None) => match connect_credentials(&rbuf, max_packet) {
                                Some((user, password)) => Some(shared.authenticate(auth.clone(), user, password).await),
                                None => None,
                            },
                            _ => None,
                        };
                        let mut ended = process_input(shared, listener, st, &mut rbuf, &mut wbuf, max_packet, peer, peer_username.as_deref(), verdict);
                        while ended.is_none() && has_complete_packet(&rbuf, max_packet) {
                            // More than one batch was read: let the other connections run
                            // between batches, so one busy client cannot hold the thread.
                            tokio::task::yield_now().await;
                            ended = process_input(shared, listener, st, &mut rbuf, &mut wbuf, max_packet, peer, peer_username.as_deref(), None);
                        }
                        if let Some(end) = ended {
                            if st.auth_failures > 1 {
                                // Repeated wrong passwords from this address: each new
                                // attempt waits longer for its answer.
                                tokio::time::sleep(auth_delay(st.auth_failures)).await;
                            }
                            // Send what was produced (CONNACK refusal, DISCONNECT) first.
                            if held_until_durable(shared, st).await.is_ok() {
                                let _ = stream.write_all(&wbuf).await;
                            }
                            break end;
                        }
                        if rbuf.is_empty() && n < spare {
                            read_hint = read_hint.min(MAX_READ_CHUNK / 4);
                        }
                        if n >= 16 * 1024 {
                            // A big read (a flooding publisher): let the other connections
                            // run before reading more.
                            tokio::task::yield_now().await;
                        }
                    }
                    Err(e) => break End::Io(e),
                }
            }
            _ = st.wake.woken(), if st.conn.is_some() => {
                if let Some(end) = drain_own(shared, st, &mut wbuf) {
                    if held_until_durable(shared, st).await.is_ok() {
                        let _ = stream.write_all(&wbuf).await;
                    }
                    break end;
                }
            }
            _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() || releasing => {
                if releasing {
                    // Quiet for a while: give the buffers back until the next burst, and
                    // park if nothing is half done.
                    wbuf = Vec::new();
                    st.outs = Vec::new();
                    release_at = None;
                    if rbuf.is_empty() {
                        if parks && st.conn.is_some() && st.hold.is_none() {
                            // Whatever the stream still buffers (TLS records) goes out first.
                            if let Err(e) = stream.flush().await {
                                break End::Io(e);
                            }
                            return Some(c);
                        }
                        rbuf = Vec::new();
                        read_hint = 0;
                    }
                    continue;
                }
                if st.conn.is_some() {
                    if st.version.is_v5() {
                        encode_disconnect(ReasonCode::KeepAliveTimeout, None, &mut wbuf);
                        let _ = stream.write_all(&wbuf).await;
                    }
                    break End::KeepAlive;
                }
                break End::ConnectTimeout;
            }
        }
    };
    let _ = stream.shutdown().await;
    finish(shared, st, end);
    None
}

/// Waits until the store batch the pending output depends on is committed.
async fn held_until_durable(shared: &Shared, st: &mut State) -> Result<(), tern_store::StoreError> {
    match st.hold.take() {
        Some(h) => shared.durable(h.get() - 1).await,
        None => Ok(()),
    }
}

/// Records that the output gathered so far may only be written once store batch `seq` (if
/// any) is committed.
fn hold_for(st: &mut State, seq: Option<u64>) {
    if let Some(h) = seq.and_then(|s| std::num::NonZeroU64::new(s.saturating_add(1))) {
        st.hold = Some(st.hold.map_or(h, |old| old.max(h)));
    }
}

fn finish(shared: &Shared, st: &State, end: End) {
    let now = clock::now();
    {
        let mut core = shared.lock();
        if let Some(conn) = st.conn {
            core.broker.connection_lost(now, conn);
            core.notifies.remove(&conn);
        }
        let stats = core.broker.stats_mut();
        stats.bytes_received += u64::from(st.bytes_in);
        stats.messages_received += u64::from(st.packets_in);
        shared.persist(&mut core);
        let mut woken = Vec::new();
        core.broker.take_wakeups(&mut woken);
        let to_wake = core.notifies_for(&woken);
        drop(core);
        for n in to_wake {
            n.notify_one();
        }
    }
    let who = st.client_id.as_deref().unwrap_or("-");
    match end {
        End::PeerClosed => debug!(client_id = who, "connection closed by the client"),
        End::Disconnected => debug!(client_id = who, "client disconnected"),
        End::Io(e) => debug!(client_id = who, error = %e, "connection error"),
        // A peer's bad packet is logged once at info, never at error (ARCHITECTURE.md 7).
        End::Decode(e) => info!(client_id = who, peer = %st.peer, "closed: malformed packet: {e}"),
        End::Protocol(r, t) => info!(client_id = who, peer = %st.peer, "closed: {t} ({r})"),
        End::KeepAlive => {
            info!(client_id = who, peer = %st.peer, "closed: no packet within 1.5 x keep-alive")
        }
        End::ConnectTimeout => {
            info!(peer = %st.peer, "closed: no CONNECT within the connect timeout")
        }
        End::Refused(r) => info!(client_id = who, peer = %st.peer, "connection refused: {r}"),
        End::ClosedByBroker(r) => {
            info!(client_id = who, peer = %st.peer, "closed by the broker: {r}")
        }
        End::Store(e) => info!(client_id = who, peer = %st.peer, "closed: {e}"),
    }
}

/// Drains this connection's session queue into `wbuf`.
fn drain_own(shared: &Shared, st: &mut State, wbuf: &mut Vec<u8>) -> Option<End> {
    let conn = st.conn?;
    let now = clock::now();
    let mut result = Drain::Idle;
    let mut woken = Vec::new();
    {
        let mut core = shared.lock();
        core.broker.stats_mut().bytes_received += u64::from(std::mem::take(&mut st.bytes_in));
        core.broker.stats_mut().messages_received += u64::from(std::mem::take(&mut st.packets_in));
        while wbuf.len() < WRITE_HIGH_WATER {
            result = core.broker.drain(now, conn, DRAIN_BUDGET, &mut st.outs);
            if result != Drain::More || st.outs.len() >= DRAIN_BUDGET * 4 {
                break;
            }
        }
        let seq = shared.persist(&mut core);
        hold_for(st, seq);
        core.broker.take_wakeups(&mut woken);
        let to_wake = core.notifies_for(&woken);
        drop(core);
        for n in to_wake {
            n.notify_one();
        }
    }
    flush_outs(st, now, wbuf);
    match result {
        Drain::More => {
            // More is waiting: come back after this write.
            st.wake.notify_one();
            None
        }
        Drain::Idle => None,
        Drain::Closed(reason) => {
            if st.version.is_v5() {
                encode_disconnect(reason, None, wbuf);
            }
            // The broker already detached this connection.
            st.conn = None;
            Some(End::ClosedByBroker(reason))
        }
    }
}

fn flush_outs(st: &mut State, now: Timestamp, wbuf: &mut Vec<u8>) {
    if let Some(enc) = st.encoder.as_mut() {
        let debug = tracing::enabled!(tracing::Level::DEBUG);
        for o in st.outs.drain(..) {
            if debug {
                // Mosquitto's `log_type all` lines, which scripts and tests look for.
                debug!(
                    "Sending {} to {}",
                    out_name(&o),
                    st.client_id.as_deref().unwrap_or("-")
                );
            }
            enc.encode(&o, now, wbuf);
            st.packets_out = st.packets_out.saturating_add(1);
        }
    } else {
        st.outs.clear();
    }
}

fn out_name(o: &Out) -> &'static str {
    match o {
        Out::Connack(_) => "CONNACK",
        Out::Publish(_) => "PUBLISH",
        Out::Puback(..) => "PUBACK",
        Out::Pubrec(..) => "PUBREC",
        Out::Pubrel(..) => "PUBREL",
        Out::Pubcomp(..) => "PUBCOMP",
        Out::Suback(..) => "SUBACK",
        Out::Unsuback(..) => "UNSUBACK",
        Out::Pingresp => "PINGRESP",
        Out::Disconnect(..) => "DISCONNECT",
    }
}

/// Decodes every complete packet in `rbuf` and handles them under one lock. Returns `Some`
/// when the connection must end.
/// Packets handled per turn of a connection (the rest wait in its buffer until the other
/// connections have had theirs).
const BATCH_PACKETS: usize = 64;

/// The CONNECT at the start of `buf` and its length in bytes, once it is whole (a look ahead:
/// the packet is handled later by `process_input`).
fn whole_connect(buf: &[u8], max_packet: u32) -> Option<(tern_codec::Connect<'_>, usize)> {
    let f = frame(buf, max_packet).ok()??;
    let body = buf.get(f.header_len..f.total_len())?;
    match decode_body(f.first_byte, body, ProtocolVersion::V311).ok()? {
        Packet::Connect(c) => Some((c, f.total_len())),
        _ => None,
    }
}

/// The user name and password of the CONNECT at the start of `rbuf`, once it is whole (what
/// [`Shared::authenticate`] checks before the packet is handled).
fn connect_credentials(rbuf: &[u8], max_packet: u32) -> Option<(String, Option<Vec<u8>>)> {
    let (c, _) = whole_connect(rbuf, max_packet)?;
    Some((c.username?.to_owned(), c.password.map(<[u8]>::to_vec)))
}

/// True when `rbuf` starts with a whole packet (or with bytes that are already an error).
fn has_complete_packet(rbuf: &[u8], max_packet: u32) -> bool {
    match frame(rbuf, max_packet) {
        Ok(Some(f)) => rbuf.len() >= f.total_len(),
        Ok(None) => false,
        Err(_) => true,
    }
}

#[allow(clippy::too_many_arguments)]
fn process_input(
    shared: &Shared,
    listener: &ListenerSettings,
    st: &mut State,
    rbuf: &mut Vec<u8>,
    wbuf: &mut Vec<u8>,
    max_packet: u32,
    peer: SocketAddr,
    peer_username: Option<&str>,
    verdict: Option<AuthResult>,
) -> Option<End> {
    let now = clock::now();
    let mut off = 0;
    let mut end = None;
    let mut woken = Vec::new();
    let mut core: Option<crate::CoreGuard<'_>> = None;
    let mut handled = 0;
    while off < rbuf.len() && handled < BATCH_PACKETS {
        handled += 1;
        let f = match frame(&rbuf[off..], max_packet) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                end = Some(protocol_failure(st, e, wbuf));
                break;
            }
        };
        let total = f.total_len();
        if rbuf.len() - off < total {
            // Reserve the rest of this packet now that its size is known and allowed.
            rbuf.reserve(total - (rbuf.len() - off));
            break;
        }
        let body = &rbuf[off + f.header_len..off + total];
        off += total;
        st.packets_in = st.packets_in.saturating_add(1);
        if let Some(k) = st.keep_alive.as_mut() {
            k.last_received = now;
        }
        let packet = match decode_body(f.first_byte, body, st.version) {
            Ok(p) => p,
            Err(e) => {
                end = Some(protocol_failure(st, e, wbuf));
                break;
            }
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            let who = match &packet {
                Packet::Connect(c) => c.client_id,
                _ => st.client_id.as_deref().unwrap_or("-"),
            };
            debug!("Received {} from {}", packet.packet_type().name(), who);
        }
        let Some(conn) = st.conn else {
            // [MQTT-3.1.0-1] the first packet must be CONNECT.
            let Packet::Connect(c) = &packet else {
                end = Some(End::Protocol(
                    ReasonCode::ProtocolError,
                    "first packet was not CONNECT",
                ));
                break;
            };
            st.version = c.protocol;
            match handle_connect(
                shared,
                listener,
                st,
                c,
                now,
                peer,
                peer_username,
                verdict,
                wbuf,
            ) {
                Ok(()) => {
                    // Outputs of the CONNECT (CONNACK, redeliveries) are already encoded.
                    continue;
                }
                Err(e) => {
                    end = Some(e);
                    break;
                }
            }
        };
        // Resolve a 5.0 topic alias before the core sees the PUBLISH.
        let mut topic = None;
        if let Packet::Publish(p) = &packet
            && st.version.is_v5()
        {
            match st.aliases.resolve(p.topic, p.properties.topic_alias) {
                Ok(t) => topic = t,
                Err(AliasError::OutOfRange) => {
                    end = Some(close_with(
                        st,
                        ReasonCode::TopicAliasInvalid,
                        "topic alias out of range",
                        wbuf,
                    ));
                    break;
                }
                Err(AliasError::Unknown) => {
                    end = Some(close_with(
                        st,
                        ReasonCode::ProtocolError,
                        "topic alias not set",
                        wbuf,
                    ));
                    break;
                }
            }
        }
        let guard = core.get_or_insert_with(|| shared.lock());
        match guard.broker.handle(now, conn, &packet, topic, &mut st.outs) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Disconnected) => {
                st.conn = None;
                guard.notifies.remove(&conn);
                end = Some(End::Disconnected);
                break;
            }
            Err(close) => {
                flush_outs(st, now, wbuf);
                end = Some(close_with(
                    st,
                    close.reason,
                    close.text.unwrap_or("protocol violation"),
                    wbuf,
                ));
                break;
            }
        }
    }
    // Messages freed by acknowledgements, and whoever this input woke.
    if let Some(mut guard) = core {
        if end.is_none()
            && let Some(conn) = st.conn
        {
            guard.broker.drain(now, conn, DRAIN_BUDGET, &mut st.outs);
        }
        let seq = shared.persist(&mut guard);
        hold_for(st, seq);
        guard.broker.take_wakeups(&mut woken);
        let to_wake = guard.notifies_for(&woken);
        drop(guard);
        for n in to_wake {
            n.notify_one();
        }
    }
    flush_outs(st, now, wbuf);
    rbuf.drain(..off);
    end
}

/// A decode error: 5.0 gets DISCONNECT with the reason the spec names; 3.1.1 is just closed.
fn protocol_failure(st: &mut State, e: DecodeError, wbuf: &mut Vec<u8>) -> End {
    if st.conn.is_none() {
        // Before CONNACK: an unsupported protocol level gets CONNACK 0x01 / 0x84
        // [MQTT-3.1.2-2]; anything else is closed without a reply.
        if let DecodeError::UnsupportedProtocolLevel(level) = e {
            let v = if level == 5 {
                ProtocolVersion::V5
            } else {
                ProtocolVersion::V311
            };
            encode_connack(
                &tern_broker_core::ConnackInfo::new(ReasonCode::UnsupportedProtocolVersion),
                v,
                wbuf,
            );
        }
        return End::Decode(e);
    }
    if st.version.is_v5() {
        encode_disconnect(e.reason_code(), None, wbuf);
    }
    End::Decode(e)
}

fn close_with(st: &mut State, reason: ReasonCode, text: &'static str, wbuf: &mut Vec<u8>) -> End {
    if st.version.is_v5() {
        let t = st
            .encoder
            .as_ref()
            .is_some_and(|e| e.problem_information)
            .then_some(text);
        encode_disconnect(reason, t, wbuf);
    }
    End::Protocol(reason, text)
}

#[allow(clippy::too_many_arguments)]
fn handle_connect(
    shared: &Shared,
    listener: &ListenerSettings,
    st: &mut State,
    c: &tern_codec::Connect<'_>,
    now: Timestamp,
    peer: SocketAddr,
    peer_username: Option<&str>,
    verdict: Option<AuthResult>,
    wbuf: &mut Vec<u8>,
) -> Result<(), End> {
    let v = c.protocol;
    let refuse = |reason: ReasonCode, wbuf: &mut Vec<u8>| {
        let mut info = tern_broker_core::ConnackInfo::new(reason);
        if v.is_v5() {
            info.reason_string = Some(reason.description().to_owned());
        }
        encode_connack(&info, v, wbuf);
        End::Refused(reason)
    };
    // Authentication: `verdict` was worked out off this thread (password hashing is slow on
    // purpose); checked here only if it was not.
    let username = peer_username.or(c.username);
    let check = |auth: &Arc<dyn tern_broker_core::Authenticator>, u: &str| {
        verdict.unwrap_or_else(|| auth.authenticate(u, c.password))
    };
    match (peer_username, c.username, &listener.authenticator) {
        (Some(_), _, _) => {}
        (None, Some(u), Some(auth)) if check(auth, u) != AuthResult::Allowed => {
            st.auth_failures = shared.auth_failed(peer.ip());
            return Err(refuse(ReasonCode::BadUserNameOrPassword, wbuf));
        }
        (None, Some(_), Some(_)) => {}
        // Anonymous (3.1.1 code 5 / 5.0 0x87), or a user name without a password file, which
        // proves nothing.
        (None, _, None) | (None, None, Some(_)) if !listener.allow_anonymous => {
            return Err(refuse(ReasonCode::NotAuthorized, wbuf));
        }
        _ => {}
    }
    let client_id_override = if listener.use_username_as_clientid {
        username
    } else {
        None
    };
    let mut outs = Vec::new();
    let mut core = shared.lock();
    let by_password = match (peer_username, c.username) {
        (None, Some(_)) => listener.authenticator.as_ref(),
        _ => None,
    };
    let req = ConnectRequest {
        limits: &listener.limits,
        connect: c,
        username,
        client_id_override,
        authenticator: by_password,
    };
    let result = core.broker.connect(now, req, &mut outs);
    match result {
        Ok(acc) => {
            let seq = shared.persist(&mut core);
            hold_for(st, seq);
            core.notifies.insert(acc.conn, st.wake.clone());
            let mut woken = Vec::new();
            core.broker.take_wakeups(&mut woken);
            let to_wake = core.notifies_for(&woken);
            drop(core);
            for n in to_wake {
                n.notify_one();
            }
            tracing::Span::current().record("client_id", &*acc.client_id);
            debug!(version = %acc.version, keep_alive = acc.keep_alive, "client connected");
            st.conn = Some(acc.conn);
            st.client_id = Some(acc.client_id.clone());
            st.aliases = InboundAliases::new(listener.limits.max_topic_alias);
            st.keep_alive = Some(KeepAlive::new(acc.keep_alive, now));
            let mut enc = Encoder::new(
                acc.version,
                acc.client_topic_alias_max,
                acc.problem_information,
            );
            for o in &outs {
                enc.encode(o, now, wbuf);
                st.packets_out = st.packets_out.saturating_add(1);
            }
            st.encoder = Some(enc);
            Ok(())
        }
        Err(reason) => {
            let seq = shared.persist(&mut core);
            hold_for(st, seq);
            drop(core);
            for o in &outs {
                if let Out::Connack(info) = o {
                    encode_connack(info, v, wbuf);
                }
            }
            Err(End::Refused(reason))
        }
    }
}

/// How long a refused or failed client waits before its CONNACK, growing with repeated
/// failures from the same address (capped).
pub fn auth_delay(failures: u32) -> Duration {
    Duration::from_millis(u64::from(failures.min(10)) * 200)
}
