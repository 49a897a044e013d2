//! MQTT over WebSockets (MQTT 5.0 section 6, mosquitto's `protocol websockets`).
//!
//! This module owns the HTTP upgrade and the framing: [`accept`] performs the upgrade on an
//! already accepted stream (plain TCP, or TLS layered underneath by the caller), insists on
//! the `mqtt` subprotocol, and returns a [`WsStream`] that the per-connection driver
//! (`conn::serve`) reads and writes like any byte stream. It knows nothing about
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
/// Characters of the client's subprotocol list kept in [`WsError::NoSubprotocol`].
const OFFERED_LOG_CHARS: usize = 100;
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
        /// The subprotocols the client offered, as sent (cut after 100 characters).
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
        *self.refused = Some((!offered.is_empty()).then(|| {
            // Kept for the log line: bounded, whatever the client sent.
            let mut text = offered.join(", ");
            if let Some((cut, _)) = text.char_indices().nth(OFFERED_LOG_CHARS) {
                text.truncate(cut);
                text.push_str("...");
            }
            text
        }));
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

impl<S> crate::conn::Park for WsStream<S> {
    // Frames may sit half-read in the WebSocket layer: a WebSocket connection keeps its task.
    const PARKS: bool = false;
    fn tcp(&mut self) -> Option<&mut crate::conn::Tcp> {
        None
    }
    fn tcp_ref(&self) -> Option<&crate::conn::Tcp> {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    type Client = WebSocketStream<DuplexStream>;
    type ClientResponse = tungstenite::handshake::client::Response;

    /// CONNECT, MQTT 3.1.1, clean session, keep-alive 60, client id "a".
    const CONNECT: &[u8] = &[
        0x10, 0x0D, // CONNECT, remaining length 13
        0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
        0x04, // protocol level 4 (3.1.1)
        0x02, // clean session
        0x00, 0x3C, // keep-alive 60 s
        0x00, 0x01, b'a', // client id "a"
    ];
    /// CONNACK, session not present, accepted.
    const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
    /// SUBSCRIBE packet id 1, "t" at QoS 0.
    const SUBSCRIBE: &[u8] = &[0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b't', 0x00];
    /// SUBACK packet id 1, granted QoS 0.
    const SUBACK: &[u8] = &[0x90, 0x03, 0x00, 0x01, 0x00];
    /// PUBLISH QoS 0 to "t", payload "hi".
    const PUBLISH: &[u8] = &[0x30, 0x05, 0x00, 0x01, b't', b'h', b'i'];
    const PINGREQ: &[u8] = &[0xC0, 0x00];
    const PINGRESP: &[u8] = &[0xD0, 0x00];

    fn opts() -> WsOptions {
        WsOptions {
            handshake_timeout: Duration::from_secs(5),
            ..WsOptions::new(1024)
        }
    }

    fn request(protocols: Option<&str>) -> Request {
        let mut req = "ws://localhost/mqtt".into_client_request().unwrap();
        if let Some(p) = protocols {
            req.headers_mut()
                .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(p).unwrap());
        }
        req
    }

    /// Runs both ends of the upgrade over an in-memory pipe.
    async fn upgrade(
        opts: &WsOptions,
        req: Request,
    ) -> (
        Result<WsStream<DuplexStream>, WsError>,
        Result<(Client, ClientResponse), tungstenite::Error>,
    ) {
        let (server_io, client_io) = duplex(64 * 1024);
        tokio::join!(
            accept(server_io, opts),
            tokio_tungstenite::client_async(req, client_io)
        )
    }

    async fn connected(opts: &WsOptions) -> (WsStream<DuplexStream>, Client) {
        let (server, client) = upgrade(opts, request(Some("mqtt"))).await;
        (server.unwrap(), client.unwrap().0)
    }

    fn ws_error(e: &io::Error) -> &WsError {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<WsError>())
            .unwrap_or_else(|| panic!("not a WsError: {e:?}"))
    }

    /// The next message from the server other than pings and pongs.
    async fn next_data(client: &mut Client) -> Message {
        loop {
            match client.next().await.unwrap().unwrap() {
                Message::Ping(_) | Message::Pong(_) => {}
                m => return m,
            }
        }
    }

    async fn expect_close(client: &mut Client, code: CloseCode) {
        match next_data(client).await {
            Message::Close(Some(f)) => assert_eq!(f.code, code),
            m => panic!("expected a close frame with {code}, got {m:?}"),
        }
    }

    #[tokio::test]
    async fn upgrade_selects_mqtt_subprotocol_mqtt_6_0_0_4() {
        let (server, client) = upgrade(&opts(), request(Some("mqtt"))).await;
        assert_eq!(server.unwrap().subprotocol(), "mqtt");
        let (_, resp) = client.unwrap();
        assert_eq!(resp.headers()[SEC_WEBSOCKET_PROTOCOL], "mqtt");
    }

    #[tokio::test]
    async fn upgrade_prefers_mqtt_among_several_offers() {
        let (server, client) = upgrade(&opts(), request(Some("wamp, mqttv3.1, mqtt"))).await;
        assert_eq!(server.unwrap().subprotocol(), "mqtt");
        assert_eq!(client.unwrap().1.headers()[SEC_WEBSOCKET_PROTOCOL], "mqtt");
    }

    #[tokio::test]
    async fn upgrade_accepts_mqttv31_like_mosquitto() {
        let (server, client) = upgrade(&opts(), request(Some("mqttv3.1"))).await;
        assert_eq!(server.unwrap().subprotocol(), "mqttv3.1");
        assert_eq!(
            client.unwrap().1.headers()[SEC_WEBSOCKET_PROTOCOL],
            "mqttv3.1"
        );
    }

    #[tokio::test]
    async fn upgrade_without_subprotocol_is_refused_mqtt_6_0_0_3() {
        let (server, client) = upgrade(&opts(), request(None)).await;
        let err = server.unwrap_err();
        assert!(
            matches!(err, WsError::NoSubprotocol { offered: None }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("did not ask for the 'mqtt'"),
            "{err}"
        );
        match client {
            Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
            other => panic!("the client should see 400 Bad Request: {other:?}"),
        }
    }

    #[tokio::test]
    async fn upgrade_with_only_other_subprotocols_is_refused() {
        let (server, _) = upgrade(&opts(), request(Some("wamp, MQTT"))).await;
        let err = server.unwrap_err();
        match &err {
            WsError::NoSubprotocol { offered } => {
                assert_eq!(offered.as_deref(), Some("wamp, MQTT"));
            }
            _ => panic!("{err:?}"),
        }
        assert!(err.to_string().contains("it offered 'wamp, MQTT'"), "{err}");
    }

    #[tokio::test]
    async fn a_long_list_of_other_subprotocols_is_cut_in_the_error() {
        let long = vec!["x"; 200].join(", ");
        let opts = WsOptions {
            headers_size: 4096,
            ..opts()
        };
        let (server, _) = upgrade(&opts, request(Some(&long))).await;
        match server.unwrap_err() {
            WsError::NoSubprotocol {
                offered: Some(text),
            } => {
                assert_eq!(text.len(), 103);
                assert!(text.ends_with("..."));
            }
            e => panic!("{e:?}"),
        }
    }

    #[tokio::test]
    async fn oversized_request_headers_are_refused() {
        let mut req = request(Some("mqtt"));
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(&"x".repeat(2000)).unwrap());
        let (server, client) = upgrade(&opts(), req).await;
        let err = server.unwrap_err();
        assert!(
            matches!(err, WsError::HeadersTooLarge { limit: 1024 }),
            "{err:?}"
        );
        assert!(client.is_err());
    }

    #[tokio::test]
    async fn headers_size_is_configurable() {
        let mut req = request(Some("mqtt"));
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(&"x".repeat(2000)).unwrap());
        let opts = WsOptions {
            headers_size: 4096,
            ..opts()
        };
        let (server, client) = upgrade(&opts, req).await;
        assert!(server.is_ok());
        assert!(client.is_ok());
    }

    #[tokio::test]
    async fn a_silent_client_times_out() {
        let (server_io, _client_io) = duplex(1024);
        let opts = WsOptions {
            handshake_timeout: Duration::from_millis(50),
            ..opts()
        };
        let err = accept(server_io, &opts).await.unwrap_err();
        assert!(matches!(err, WsError::HandshakeTimeout(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_plain_mqtt_client_is_told_it_is_on_the_wrong_port() {
        let (server_io, mut client_io) = duplex(1024);
        client_io.write_all(CONNECT).await.unwrap();
        let err = accept(server_io, &opts()).await.unwrap_err();
        assert!(matches!(err, WsError::PlainMqtt), "{err:?}");
    }

    #[tokio::test]
    async fn a_request_that_is_not_an_upgrade_is_refused() {
        let (server_io, mut client_io) = duplex(1024);
        client_io
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let err = accept(server_io, &opts()).await.unwrap_err();
        assert!(matches!(err, WsError::Handshake(_)), "{err:?}");
    }

    #[tokio::test]
    async fn raw_upgrade_with_the_rfc_6455_sample_key() {
        // Raw bytes, not produced by a WebSocket library: the sample handshake of RFC 6455
        // section 1.3, then a masked binary frame.
        let (server_io, mut client_io) = duplex(64 * 1024);
        let req = b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
            Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
        client_io.write_all(req).await.unwrap();
        let mut server = accept(server_io, &opts()).await.unwrap();
        let mut resp = vec![0u8; 512];
        let n = client_io.read(&mut resp).await.unwrap();
        // Header names are case-insensitive; this library sends them in lower case.
        let resp = String::from_utf8_lossy(&resp[..n]).to_ascii_lowercase();
        assert!(resp.starts_with("http/1.1 101 "), "{resp}");
        assert!(
            resp.contains("\r\nsec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
            "{resp}"
        );
        assert!(
            resp.contains("\r\nsec-websocket-protocol: mqtt\r\n"),
            "{resp}"
        );
        assert!(resp.ends_with("\r\n\r\n"), "{resp}");
        let frame = [
            0x82, // FIN, binary
            0x82, // masked, payload length 2
            0x01,
            0x02,
            0x03,
            0x04, // masking key
            0xC0 ^ 0x01,
            0x02, // PINGREQ, masked
        ];
        client_io.write_all(&frame).await.unwrap();
        let mut got = [0u8; 2];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, PINGREQ);
        // PINGRESP goes back as an unmasked binary frame.
        server.write_all(PINGRESP).await.unwrap();
        let mut out = [0u8; 4];
        client_io.read_exact(&mut out).await.unwrap();
        assert_eq!(out, [0x82, 0x02, 0xD0, 0x00]);
    }

    #[tokio::test]
    async fn an_unmasked_client_frame_is_a_protocol_error() {
        let (mut server, client) = connected(&opts()).await;
        let mut raw = client.into_inner();
        raw.write_all(&[0x82, 0x02, 0xC0, 0x00]).await.unwrap();
        let mut buf = [0u8; 2];
        let err = server.read(&mut buf).await.unwrap_err();
        assert!(matches!(ws_error(&err), WsError::Protocol(_)), "{err:?}");
        server.shutdown().await.unwrap();
        let mut out = [0u8; 4];
        raw.read_exact(&mut out).await.unwrap();
        // Close frame, code 1002 (protocol error).
        assert_eq!(out, [0x88, 0x10, 0x03, 0xEA]);
    }

    #[tokio::test]
    async fn a_packet_split_over_several_messages_is_reassembled_mqtt_6_0_0_2() {
        let (mut server, mut client) = connected(&opts()).await;
        for part in [&CONNECT[..1], &CONNECT[1..5], &CONNECT[5..]] {
            client
                .send(Message::Binary(Bytes::copy_from_slice(part)))
                .await
                .unwrap();
        }
        let mut got = vec![0u8; CONNECT.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, CONNECT);
    }

    #[tokio::test]
    async fn a_packet_split_over_continuation_frames_is_reassembled_mqtt_6_0_0_2() {
        let (mut server, mut client) = connected(&opts()).await;
        let frames = [
            Frame::message(
                Bytes::copy_from_slice(&CONNECT[..3]),
                OpCode::Data(Data::Binary),
                false,
            ),
            Frame::message(
                Bytes::copy_from_slice(&CONNECT[3..9]),
                OpCode::Data(Data::Continue),
                false,
            ),
            Frame::message(
                Bytes::copy_from_slice(&CONNECT[9..]),
                OpCode::Data(Data::Continue),
                true,
            ),
        ];
        for f in frames {
            client.send(Message::Frame(f)).await.unwrap();
        }
        let mut got = vec![0u8; CONNECT.len()];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, CONNECT);
    }

    #[tokio::test]
    async fn several_packets_in_one_message_are_all_read_mqtt_6_0_0_2() {
        let (mut server, mut client) = connected(&opts()).await;
        let batch = [SUBSCRIBE, PUBLISH, PINGREQ].concat();
        client.send(Message::binary(batch.clone())).await.unwrap();
        // Read in small pieces, as a framer asking for the rest of a packet would.
        let mut got = Vec::new();
        let mut piece = [0u8; 3];
        while got.len() < batch.len() {
            let n = server.read(&mut piece).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, batch);
    }

    #[tokio::test]
    async fn a_text_frame_closes_the_connection_mqtt_6_0_0_1() {
        let (mut server, mut client) = connected(&opts()).await;
        client.send(Message::text("hello")).await.unwrap();
        let mut buf = [0u8; 16];
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(matches!(ws_error(&err), WsError::TextFrame), "{err:?}");
        server.shutdown().await.unwrap();
        expect_close(&mut client, CloseCode::Unsupported).await;
    }

    #[tokio::test]
    async fn an_oversized_message_is_refused() {
        let opts = WsOptions {
            max_message_size: 64,
            ..opts()
        };
        let (mut server, mut client) = connected(&opts).await;
        client.send(Message::binary(vec![0x30; 64])).await.unwrap();
        let mut buf = vec![0u8; 64];
        server.read_exact(&mut buf).await.unwrap();
        client.send(Message::binary(vec![0x30; 65])).await.unwrap();
        let err = server.read(&mut buf).await.unwrap_err();
        assert!(
            matches!(
                ws_error(&err),
                WsError::MessageTooLarge { size: 65, max: 64 }
            ),
            "{err:?}"
        );
        server.shutdown().await.unwrap();
        expect_close(&mut client, CloseCode::Size).await;
    }

    #[tokio::test]
    async fn an_oversized_fragmented_message_is_refused() {
        let opts = WsOptions {
            max_message_size: 64,
            ..opts()
        };
        let (mut server, mut client) = connected(&opts).await;
        for (op, fin) in [
            (Data::Binary, false),
            (Data::Continue, false),
            (Data::Continue, true),
        ] {
            let f = Frame::message(vec![0u8; 30], OpCode::Data(op), fin);
            client.send(Message::Frame(f)).await.unwrap();
        }
        let mut buf = [0u8; 8];
        let err = server.read(&mut buf).await.unwrap_err();
        assert!(
            matches!(ws_error(&err), WsError::MessageTooLarge { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn writes_are_binary_messages_split_at_max_write_message() {
        let opts = WsOptions {
            max_write_message: 64,
            ..opts()
        };
        let (mut server, mut client) = connected(&opts).await;
        server.write_all(CONNACK).await.unwrap();
        assert_eq!(next_data(&mut client).await, Message::binary(CONNACK));
        let big: Vec<u8> = (0..150u8).collect();
        server.write_all(&big).await.unwrap();
        let mut sizes = Vec::new();
        let mut got = Vec::new();
        while got.len() < big.len() {
            match next_data(&mut client).await {
                Message::Binary(b) => {
                    sizes.push(b.len());
                    got.extend_from_slice(&b);
                }
                m => panic!("{m:?}"),
            }
        }
        assert_eq!(sizes, [64, 64, 22]);
        assert_eq!(got, big);
    }

    #[tokio::test]
    async fn writes_arrive_without_flush() {
        // conn::serve writes with write_all and never flushes. Use a pipe smaller than the
        // message, so the socket takes it in several goes, pushed on by the reads.
        let (server_io, client_io) = duplex(16);
        let opts = opts();
        let (server, client) = tokio::join!(
            accept(server_io, &opts),
            tokio_tungstenite::client_async(request(Some("mqtt")), client_io)
        );
        let (mut server, mut client) = (server.unwrap(), client.unwrap().0);
        let data = vec![7u8; 1000];
        server.write_all(&data).await.unwrap();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            server.read(&mut buf).await.map(|n| buf[..n].to_vec())
        });
        let got = tokio::time::timeout(Duration::from_secs(5), next_data(&mut client))
            .await
            .expect("the message was never pushed on to the socket");
        assert_eq!(got, Message::binary(data));
        client.send(Message::binary(PINGREQ)).await.unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), [0xC0]);
    }

    #[tokio::test]
    async fn pings_are_answered_while_reading() {
        let (mut server, mut client) = connected(&opts()).await;
        client
            .send(Message::Ping(Bytes::from_static(b"p")))
            .await
            .unwrap();
        client.send(Message::binary(PINGREQ)).await.unwrap();
        let mut got = [0u8; 2];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, PINGREQ);
        match client.next().await.unwrap().unwrap() {
            Message::Pong(p) => assert_eq!(&p[..], b"p"),
            m => panic!("expected a pong, got {m:?}"),
        }
    }

    #[tokio::test]
    async fn a_close_frame_ends_the_stream_and_is_answered() {
        let (mut server, mut client) = connected(&opts()).await;
        client.send(Message::binary(PINGREQ)).await.unwrap();
        client.close(None).await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, PINGREQ);
        server.shutdown().await.unwrap();
        assert!(matches!(next_data(&mut client).await, Message::Close(_)));
    }

    #[tokio::test]
    async fn a_dropped_connection_is_an_end_of_stream() {
        let (mut server, client) = connected(&opts()).await;
        drop(client);
        let mut buf = [0u8; 4];
        assert_eq!(server.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn shutdown_sends_a_normal_close() {
        let (mut server, mut client) = connected(&opts()).await;
        server.shutdown().await.unwrap();
        expect_close(&mut client, CloseCode::Normal).await;
        assert!(client.next().await.is_none());
    }

    #[test]
    fn the_upgrade_and_the_stream_can_move_between_threads() {
        fn is_send<T: Send>(_: &T) {}
        let (io, _) = duplex(16);
        let opts = opts();
        is_send(&accept(io, &opts));
        is_send(&crate::conn::serve::<WsStream<tokio::net::TcpStream>>);
    }

    #[tokio::test]
    async fn mqtt_over_websockets_through_the_connection_driver() {
        use crate::{ListenerSettings, Protocol, Server, ServerSettings};
        use std::sync::Arc;

        let server = Server::bind(ServerSettings::default()).await.unwrap();
        let shared = server.shared();
        let listener = Arc::new(ListenerSettings {
            protocol: Protocol::WebSockets,
            allow_anonymous: true,
            ..ListenerSettings::default()
        });
        let (server_io, client_io) = duplex(64 * 1024);
        let opts = WsOptions::new(shared.settings.core.max_packet_size);
        let driver = tokio::spawn(async move {
            let ws = accept(server_io, &opts).await.unwrap();
            let peer = "127.0.0.1:1".parse().unwrap();
            crate::conn::serve(shared, ws, peer, listener, None, None).await;
        });
        let (mut client, _) = tokio_tungstenite::client_async(request(Some("mqtt")), client_io)
            .await
            .unwrap();

        // CONNECT split over two messages, then SUBSCRIBE, PUBLISH and PINGREQ in one.
        client.send(Message::binary(&CONNECT[..6])).await.unwrap();
        client.send(Message::binary(&CONNECT[6..])).await.unwrap();
        let mut stream = Vec::new();
        let want = [CONNACK, SUBACK, PUBLISH, PINGRESP].concat();
        let mut sent_rest = false;
        while stream.len() < want.len() {
            match next_data(&mut client).await {
                Message::Binary(b) => stream.extend_from_slice(&b),
                m => panic!("{m:?}"),
            }
            if !sent_rest && stream.len() >= CONNACK.len() {
                assert_eq!(&stream[..4], CONNACK);
                let rest = [SUBSCRIBE, PUBLISH, PINGREQ].concat();
                client.send(Message::binary(rest)).await.unwrap();
                sent_rest = true;
            }
        }
        // The broker answers PINGREQ at once and delivers the PUBLISH through the
        // subscriber's mailbox, so either may come first.
        let (head, tail) = stream.split_at(CONNACK.len() + SUBACK.len());
        assert_eq!(head, [CONNACK, SUBACK].concat());
        assert!(
            tail == [PUBLISH, PINGRESP].concat() || tail == [PINGRESP, PUBLISH].concat(),
            "{tail:x?}"
        );

        // DISCONNECT: the broker closes the WebSocket.
        client
            .send(Message::binary(&[0xE0, 0x00][..]))
            .await
            .unwrap();
        assert!(matches!(next_data(&mut client).await, Message::Close(_)));
        driver.await.unwrap();
    }
}
