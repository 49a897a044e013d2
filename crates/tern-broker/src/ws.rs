//! MQTT over WebSockets (MQTT 5.0 section 6, mosquitto's `protocol websockets`).
//!
//! This module owns the HTTP upgrade and the framing: [`accept`] performs the upgrade on an
//! already accepted stream (plain TCP, or TLS layered underneath by the caller), insists on
//! the `mqtt` subprotocol, and returns a [`WsStream`] that the per-connection driver
//! ([`crate::conn::serve`]) reads and writes like any byte stream. It knows nothing about
//! MQTT packets: an MQTT packet may span WebSocket messages and one message may hold several
//! packets [MQTT-6.0.0-2], so reads simply concatenate the payloads of binary messages.
//!
//! It must not touch sockets, TLS or listener settings itself, and it does not serve files
//! (`http_dir`): a request that is not a WebSocket upgrade is refused.
//!
//! Every buffer is bounded (see [`WsOptions`]). Worst-case memory per connection: the request
//! head while upgrading (`headers_size`), then one incoming message being reassembled plus
//! the frame being read (about 2 x `max_message_size`), and one outgoing message
//! (`max_write_message` plus its copy in the WebSocket write buffer).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_PROTOCOL;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

/// The subprotocol MQTT 5.0 and 3.1.1 clients ask for, and the one the server selects
/// [MQTT-6.0.0-3] [MQTT-6.0.0-4].
pub const SUBPROTOCOL_MQTT: &str = "mqtt";
/// The subprotocol name used by some older clients (Paho JavaScript before 1.0.1);
/// mosquitto accepts it too.
pub const SUBPROTOCOL_MQTT_V31: &str = "mqttv3.1";

/// mosquitto's default for `websockets_headers_size`.
pub const DEFAULT_HEADERS_SIZE: usize = 1024;
/// The WebSocket library refuses request heads larger than this whatever we allow.
const MAX_HEADERS_SIZE: usize = 64 * 1024;
/// Default for [`WsOptions::max_write_message`].
pub const DEFAULT_MAX_WRITE_MESSAGE: usize = 64 * 1024;
/// Bytes read from the socket at a time once upgraded (the driver reads in 4 KiB too).
const READ_CHUNK: usize = 4096;
/// Room in the write buffer beyond one outgoing message, for a queued pong or close frame.
const WRITE_SLACK: usize = 1024;

/// Limits and timeouts of one WebSocket listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsOptions {
    /// `websockets_headers_size`: the largest HTTP upgrade request (request line and headers)
    /// accepted, in bytes. 0 means mosquitto's default, 1024; values above 64 KiB act as
    /// 64 KiB. Browsers sending cookies may need more. Worst-case memory: this many bytes
    /// per connection while upgrading.
    pub headers_size: usize,
    /// The largest WebSocket message (and frame) accepted from the client, in bytes. Set
    /// from the broker's `max_packet_size`: a client sending one packet per message, as
    /// clients do, never needs more. Worst-case memory: about twice this per connection
    /// while a fragmented message is reassembled.
    pub max_message_size: usize,
    /// The largest WebSocket message the broker sends; longer writes are split into several
    /// messages, which [MQTT-6.0.0-2] allows. Worst-case memory: twice this per connection.
    pub max_write_message: usize,
    /// How long a client may take to complete the upgrade before the connection is closed
    /// (use the listener's `connect_timeout`).
    pub handshake_timeout: Duration,
}

impl WsOptions {
    /// Options for a broker whose `max_packet_size` is `max_packet_size`, with mosquitto's
    /// defaults for the rest.
    pub fn new(max_packet_size: u32) -> Self {
        Self {
            headers_size: DEFAULT_HEADERS_SIZE,
            max_message_size: usize::try_from(max_packet_size).unwrap_or(usize::MAX),
            max_write_message: DEFAULT_MAX_WRITE_MESSAGE,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    fn headers_limit(&self) -> usize {
        match self.headers_size {
            0 => DEFAULT_HEADERS_SIZE,
            n => n.min(MAX_HEADERS_SIZE),
        }
    }

    fn config(&self) -> WebSocketConfig {
        let max_message = self.max_message_size.max(1);
        let max_write = self.max_write_message.max(1);
        WebSocketConfig::default()
            .read_buffer_size(READ_CHUNK)
            // Write each message to the socket at once: the driver does not flush after
            // writing, and batching is already done by the driver.
            .write_buffer_size(0)
            .max_write_buffer_size(max_write.saturating_add(WRITE_SLACK))
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message))
            // RFC 6455 section 5.1: a server must close on an unmasked client frame.
            .accept_unmasked_frames(false)
    }
}

impl Default for WsOptions {
    fn default() -> Self {
        Self::new(tern_broker_core::CoreConfig::default().max_packet_size)
    }
}

/// What went wrong with a WebSocket connection: during the upgrade ([`accept`]) or, wrapped
/// in an [`io::Error`], while reading a [`WsStream`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// [MQTT-6.0.0-3]: the client must offer "mqtt" in `Sec-WebSocket-Protocol`.
    #[error(
        "the client did not ask for the 'mqtt' WebSocket subprotocol (it offered {}); MQTT over WebSockets requires the header 'Sec-WebSocket-Protocol: mqtt'",
        .offered.as_deref().map_or_else(|| "none".to_owned(), |o| format!("'{o}'"))
    )]
    NoSubprotocol {
        /// The subprotocols the client offered, as sent.
        offered: Option<String>,
    },
    /// The request head went past `websockets_headers_size`.
    #[error(
        "the HTTP upgrade request is larger than {limit} bytes; raise websockets_headers_size if clients send large headers such as cookies"
    )]
    HeadersTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The client opened the connection but did not finish the upgrade in time.
    #[error("the client did not complete the WebSocket upgrade within {0:?}")]
    HandshakeTimeout(Duration),
    /// The client spoke plain MQTT to a WebSocket listener.
    #[error(
        "the client sent an MQTT packet instead of an HTTP upgrade request; it should connect to an MQTT (not WebSockets) listener, or use a WebSocket transport"
    )]
    PlainMqtt,
    /// The request was not a valid WebSocket upgrade, or the connection failed during it.
    #[error("the WebSocket upgrade failed: {0}")]
    Handshake(tungstenite::Error),
    /// [MQTT-6.0.0-1]: MQTT packets travel in binary frames only.
    #[error("the client sent a text WebSocket frame; MQTT packets must be sent in binary frames")]
    TextFrame,
    /// A message longer than [`WsOptions::max_message_size`].
    #[error(
        "the client sent a WebSocket message of {size} bytes, more than the maximum of {max} (max_packet_size)"
    )]
    MessageTooLarge {
        /// Size of the message (or of the frame, if a single frame was too large).
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The client broke RFC 6455 (an unmasked frame, a bad opcode, a bad close frame...).
    #[error("the client broke the WebSocket protocol: {0}")]
    Protocol(ProtocolError),
    /// Any other failure of the upgraded connection.
    #[error("WebSocket error: {0}")]
    WebSocket(tungstenite::Error),
}

/// Marks the I/O error raised when the request head passes the limit.
#[derive(Debug)]
struct HeadLimitReached;

impl fmt::Display for HeadLimitReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the HTTP upgrade request is too large")
    }
}

impl std::error::Error for HeadLimitReached {}

/// The stream under the WebSocket: bounds what the upgrade may read, then passes through.
struct Inner<S> {
    io: S,
    /// Bytes the upgrade may still read; `None` once upgraded.
    head_budget: Option<usize>,
    /// The first byte the client sent (`NO_BYTE` before), to recognise a plain MQTT
    /// client; shared with [`accept`], which loses the stream when the upgrade fails.
    first_byte: Option<Arc<AtomicU16>>,
}

const NO_BYTE: u16 = u16::MAX;
/// The first byte of an MQTT CONNECT packet.
const CONNECT_BYTE: u16 = 0x10;

impl<S: AsyncRead + Unpin> AsyncRead for Inner<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(budget) = this.head_budget else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        if budget == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                HeadLimitReached,
            )));
        }
        // Read at most `budget` bytes, so that the head can never exceed the limit and bytes
        // the client sends after it stay in the socket until the upgrade is done.
        let max = budget.min(buf.remaining());
        buf.initialize_unfilled_to(max);
        let mut limited = buf.take(max);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut limited))?;
        let n = limited.filled().len();
        if let (Some(first), Some(&b)) = (&this.first_byte, limited.filled().first()) {
            let _ =
                first.compare_exchange(NO_BYTE, u16::from(b), Ordering::Relaxed, Ordering::Relaxed);
        }
        buf.advance(n);
        this.head_budget = Some(budget - n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Inner<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Performs the WebSocket upgrade on `stream` and returns the MQTT byte stream inside it.
///
/// The client must offer the `mqtt` subprotocol ([MQTT-6.0.0-3]); the server selects it
/// ([MQTT-6.0.0-4]). `mqttv3.1` is accepted as mosquitto does, when `mqtt` is not offered.
/// Any request path is accepted. A refused request gets `400 Bad Request`.
pub async fn accept<S>(stream: S, opts: &WsOptions) -> Result<WsStream<S>, WsError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limit = opts.headers_limit();
    let first_byte = Arc::new(AtomicU16::new(NO_BYTE));
    let inner = Inner {
        io: stream,
        head_budget: Some(limit),
        first_byte: Some(first_byte.clone()),
    };
    let mut selected: Option<&'static str> = None;
    let mut refused: Option<Option<String>> = None;
    let callback = SubprotocolCheck {
        selected: &mut selected,
        refused: &mut refused,
    };
    let upgrade =
        tokio_tungstenite::accept_hdr_async_with_config(inner, callback, Some(opts.config()));
    let result = match tokio::time::timeout(opts.handshake_timeout, upgrade).await {
        Ok(r) => r,
        Err(_) => return Err(WsError::HandshakeTimeout(opts.handshake_timeout)),
    };
    let mut ws = match result {
        Ok(ws) => ws,
        Err(e) => {
            if let Some(offered) = refused {
                return Err(WsError::NoSubprotocol { offered });
            }
            let plain_mqtt = first_byte.load(Ordering::Relaxed) == CONNECT_BYTE;
            return Err(handshake_error(e, limit, plain_mqtt));
        }
    };
    ws.get_mut().head_budget = None;
    ws.get_mut().first_byte = None;
    Ok(WsStream {
        ws,
        subprotocol: selected.unwrap_or(SUBPROTOCOL_MQTT),
        pending: Bytes::new(),
        eof: false,
        flush_pending: false,
        close_code: None,
        close_queued: false,
        closed: false,
        max_write_message: opts.max_write_message.max(1),
        max_message_size: opts.max_message_size,
    })
}

/// Picks the subprotocol during the upgrade, or refuses the request without one.
struct SubprotocolCheck<'a> {
    selected: &'a mut Option<&'static str>,
    /// Set when refusing: what the client offered instead, if anything.
    refused: &'a mut Option<Option<String>>,
}

impl Callback for SubprotocolCheck<'_> {
    fn on_request(self, req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
        let offers = req.headers().get_all(SEC_WEBSOCKET_PROTOCOL);
        // The header may repeat, and each holds a comma-separated list (RFC 6455 4.1).
        let tokens = || {
            offers
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
        };
        let choice = [SUBPROTOCOL_MQTT, SUBPROTOCOL_MQTT_V31]
            .into_iter()
            .find(|want| tokens().any(|t| t == *want));
        if let Some(p) = choice {
            *self.selected = Some(p);
            resp.headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
            return Ok(resp);
        }
        let offered: Vec<&str> = tokens().filter(|t| !t.is_empty()).collect();
        *self.refused = Some((!offered.is_empty()).then(|| offered.join(", ")));
        let mut err = ErrorResponse::new(Some(
            "MQTT over WebSockets requires the 'mqtt' subprotocol (Sec-WebSocket-Protocol: mqtt)\n"
                .to_owned(),
        ));
        *err.status_mut() = StatusCode::BAD_REQUEST;
        Err(err)
    }
}

fn handshake_error(e: tungstenite::Error, limit: usize, plain_mqtt: bool) -> WsError {
    if let tungstenite::Error::Io(io) = &e
        && io
            .get_ref()
            .is_some_and(|inner| inner.is::<HeadLimitReached>())
    {
        return WsError::HeadersTooLarge { limit };
    }
    if plain_mqtt && let tungstenite::Error::Protocol(ProtocolError::HttparseError(_)) = &e {
        // An MQTT client on the wrong port: its first byte is CONNECT (0x10), which does
        // not start an HTTP method.
        return WsError::PlainMqtt;
    }
    WsError::Handshake(e)
}

/// An upgraded WebSocket connection carrying MQTT, read and written as a byte stream.
///
/// Reads return the payloads of binary messages in order; pings are answered, pongs
/// ignored, a close frame ends the stream (read returns 0). A text frame, an oversized
/// message or a WebSocket protocol violation is an [`io::ErrorKind::InvalidData`] error
/// wrapping a [`WsError`]; [`AsyncWriteExt::shutdown`](tokio::io::AsyncWriteExt::shutdown)
/// then sends the matching close code (1003, 1009, 1002), otherwise 1000.
///
/// Each write is sent at once as one binary message of at most
/// [`WsOptions::max_write_message`] bytes, so a driver that never flushes still delivers
/// everything; bytes the socket did not take yet are pushed on by the next read, write,
/// flush or shutdown.
pub struct WsStream<S> {
    ws: WebSocketStream<Inner<S>>,
    subprotocol: &'static str,
    /// The unread rest of the current binary message.
    pending: Bytes,
    /// The client closed the WebSocket (or the connection).
    eof: bool,
    /// A message was handed to the socket but not all of it was written yet.
    flush_pending: bool,
    /// Why we are closing, sent in the close frame.
    close_code: Option<CloseCode>,
    close_queued: bool,
    closed: bool,
    max_write_message: usize,
    max_message_size: usize,
}

impl<S> fmt::Debug for WsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsStream")
            .field("subprotocol", &self.subprotocol)
            .field("pending", &self.pending.len())
            .field("eof", &self.eof)
            .field("close_code", &self.close_code)
            .finish_non_exhaustive()
    }
}

impl<S> WsStream<S> {
    /// The subprotocol selected during the upgrade: `mqtt` or `mqttv3.1`.
    pub fn subprotocol(&self) -> &'static str {
        self.subprotocol
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsStream<S> {
    /// Pushes on a message that the socket has not fully taken yet.
    fn poll_flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.flush_pending {
            return Poll::Ready(Ok(()));
        }
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(write_error)?;
        self.flush_pending = false;
        Poll::Ready(Ok(()))
    }

    /// Turns an error from the WebSocket into what the driver sees, noting the close code.
    fn read_error(&mut self, e: tungstenite::Error) -> io::Result<()> {
        let (code, err) = match e {
            tungstenite::Error::Io(e) => return Err(e),
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                // The client went away without a close frame: an end of stream like TCP's.
                self.eof = true;
                return Ok(());
            }
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => (
                CloseCode::Size,
                WsError::MessageTooLarge {
                    size,
                    max: max_size,
                },
            ),
            tungstenite::Error::Capacity(_) => (
                CloseCode::Size,
                WsError::MessageTooLarge {
                    size: 0,
                    max: self.max_message_size,
                },
            ),
            tungstenite::Error::Protocol(p) => (CloseCode::Protocol, WsError::Protocol(p)),
            // Only text frames carry UTF-8.
            tungstenite::Error::Utf8(_) => (CloseCode::Unsupported, WsError::TextFrame),
            other => (CloseCode::Error, WsError::WebSocket(other)),
        };
        self.close_code = Some(code);
        Err(io::Error::new(io::ErrorKind::InvalidData, err))
    }
}

fn write_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "the WebSocket is closed")
        }
        tungstenite::Error::Protocol(ProtocolError::SendAfterClosing) => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the WebSocket is closing; nothing more can be sent",
        ),
        other => io::Error::other(WsError::WebSocket(other)),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // The driver waits here between writes: keep an unfinished write moving.
        if let Poll::Ready(Err(e)) = this.poll_flush_pending(cx) {
            return Poll::Ready(Err(e));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let msg = match ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                None => {
                    this.eof = true;
                    continue;
                }
                Some(Err(e)) => {
                    this.read_error(e)?;
                    continue;
                }
                Some(Ok(m)) => m,
            };
            match msg {
                // [MQTT-6.0.0-2]: payloads concatenate into one byte stream.
                Message::Binary(b) => this.pending = b,
                // [MQTT-6.0.0-1]: any other data frame closes the connection.
                Message::Text(_) => {
                    this.close_code = Some(CloseCode::Unsupported);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        WsError::TextFrame,
                    )));
                }
                // The library queues the pong and sends it on the next read or write.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                // The library queues the close reply; shutdown sends it.
                Message::Close(_) => this.eof = true,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // One message at a time in the write buffer: this is the back-pressure.
        ready!(this.poll_flush_pending(cx))?;
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(write_error)?;
        let n = buf.len().min(this.max_write_message);
        let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
        Pin::new(&mut this.ws)
            .start_send(msg)
            .map_err(write_error)?;
        this.flush_pending = true;
        // The message is taken; whatever the socket does not accept now goes later.
        if let Poll::Ready(Err(e)) = this.poll_flush_pending(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.flush_pending = true;
        this.poll_flush_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closed {
            if !this.close_queued {
                this.close_queued = true;
                let frame = CloseFrame {
                    code: this.close_code.unwrap_or(CloseCode::Normal),
                    reason: close_reason(this.close_code).into(),
                };
                // Fails only if a close frame went already (the client's close was
                // answered); poll_close below finishes the job either way.
                let _ = Pin::new(&mut this.ws).start_send(Message::Close(Some(frame)));
            }
            ready!(Pin::new(&mut this.ws).poll_close(cx)).map_err(write_error)?;
            this.closed = true;
            this.flush_pending = false;
        }
        // The server closes the TCP connection first (RFC 6455 section 7.1.1).
        Pin::new(&mut this.ws.get_mut().io).poll_shutdown(cx)
    }
}

fn close_reason(code: Option<CloseCode>) -> &'static str {
    match code {
        Some(CloseCode::Unsupported) => "MQTT needs binary frames",
        Some(CloseCode::Size) => "message too large",
        Some(CloseCode::Protocol) => "protocol error",
        _ => "",
    }
}
