//! The client side of the benchmark's connections: TCP or TLS (rustls with ring) to a loopback
//! address, the CONNECT and SUBSCRIBE handshakes, and a connection's read and write buffers.
//! Only the set-up path allocates; the per-message paths live in `flow`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{Context, bail};
use rustls_pki_types::ServerName;
use tern_codec::{
    Connect, Packet, PacketId, ProtocolVersion, QoS, Subscribe, SubscribeFilters,
    SubscriptionOptions,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Time allowed for one connection's TCP connect, TLS handshake and CONNACK.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A plain or TLS connection.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub version: ProtocolVersion,
    pub keep_alive: u16,
    /// Close with RST (no TIME_WAIT), for connection-rate runs that would run out of ports.
    pub abortive_close: bool,
    /// false: ask the broker to keep the session (5.0: for 5 minutes after the connection).
    pub clean_start: bool,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A rustls client configuration trusting only `cafile`, with session resumption off so
/// every connection makes a full handshake.
pub fn tls_connector(cafile: &std::path::Path) -> anyhow::Result<TlsConnector> {
    let pem = std::fs::read(cafile).with_context(|| format!("cannot read {}", cafile.display()))?;
    let certs = tern_pki::load_certs(&pem)
        .with_context(|| format!("cannot use --cafile {}", cafile.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c)
            .with_context(|| format!("a certificate in {} is not a usable CA", cafile.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The server name to check the certificate against: the host as given (an IP address
/// checks the certificate's IP subjectAltName).
pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .with_context(|| format!("'{host}' is not a valid TLS server name; pass --servername"))
}

/// Opens the transport only (TCP, then TLS if configured).
pub async fn open_stream(t: &Target) -> anyhow::Result<Stream> {
    let tcp = TcpStream::connect(t.addr)
        .await
        .with_context(|| format!("cannot connect to {}", t.addr))?;
    tcp.set_nodelay(true)?;
    if t.abortive_close {
        tcp.set_zero_linger()?;
    }
    Ok(match &t.tls {
        None => Stream::Plain(tcp),
        Some((connector, name)) => Stream::Tls(Box::new(
            connector
                .connect(name.clone(), tcp)
                .await
                .context("TLS handshake failed")?,
        )),
    })
}

/// One MQTT connection with its buffers. `inbuf[start..end]` holds unread bytes;
/// `out[pos..]` holds bytes not yet written.
#[derive(Debug)]
pub struct Conn {
    pub rd: ReadHalf<Stream>,
    pub wr: WriteHalf<Stream>,
    pub inbuf: Vec<u8>,
    pub start: usize,
    pub end: usize,
    pub out: Vec<u8>,
    pub pos: usize,
    pub version: ProtocolVersion,
    /// The server's Receive Maximum (5.0 CONNACK), 65535 when it sent none.
    pub server_receive_max: u16,
}

/// Appends one encoded packet to `out`. No allocation while `out` has the capacity.
pub fn push(out: &mut Vec<u8>, version: ProtocolVersion, p: &Packet<'_>) -> anyhow::Result<()> {
    let len = p
        .encoded_len(version)
        .map_err(|e| anyhow::anyhow!("encoding {}: {e}", p.packet_type().name()))?;
    let at = out.len();
    out.resize(at + len, 0);
    p.encode(version, &mut out[at..])
        .map_err(|e| anyhow::anyhow!("encoding {}: {e}", p.packet_type().name()))?;
    Ok(())
}

/// The largest packet a connection accepts: its read buffer size.
pub fn max_packet(conn: &Conn) -> u32 {
    u32::try_from(conn.inbuf.len()).unwrap_or(u32::MAX)
}

impl Conn {
    fn new(stream: Stream, version: ProtocolVersion, in_cap: usize, out_cap: usize) -> Self {
        let (rd, wr) = tokio::io::split(stream);
        Self {
            rd,
            wr,
            inbuf: vec![0; in_cap],
            start: 0,
            end: 0,
            out: Vec::with_capacity(out_cap),
            pos: 0,
            version,
            server_receive_max: u16::MAX,
        }
    }

    /// Appends one encoded packet to the write buffer.
    pub fn push(&mut self, p: &Packet<'_>) -> anyhow::Result<()> {
        push(&mut self.out, self.version, p)
    }

    /// Writes everything buffered (set-up and tear-down only; the hot loops write in `select!`).
    pub async fn flush_all(&mut self) -> anyhow::Result<()> {
        self.wr.write_all(&self.out[self.pos..]).await?;
        self.wr.flush().await?;
        self.out.clear();
        self.pos = 0;
        Ok(())
    }

    /// The next whole frame in the read buffer as (first byte, body range, total length),
    /// or `None` when more bytes are needed.
    pub fn next_frame(&self) -> anyhow::Result<Option<(u8, std::ops::Range<usize>)>> {
        let buf = &self.inbuf[self.start..self.end];
        let Some(f) = tern_codec::frame(buf, max_packet(self))
            .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?
        else {
            return Ok(None);
        };
        if buf.len() < f.total_len() {
            return Ok(None);
        }
        let body = self.start + f.header_len..self.start + f.total_len();
        Ok(Some((f.first_byte, body)))
    }

    /// Makes room at the end of the read buffer, moving unread bytes to the front.
    pub fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.end == self.inbuf.len() {
            self.inbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Reads more bytes (set-up path). Errors on end of stream.
    async fn fill(&mut self) -> anyhow::Result<()> {
        self.compact();
        if self.end == self.inbuf.len() {
            bail!("a packet from the broker is larger than the read buffer");
        }
        let n = self.rd.read(&mut self.inbuf[self.end..]).await?;
        if n == 0 {
            bail!("the broker closed the connection");
        }
        self.end += n;
        Ok(())
    }

    /// Waits for the next packet and hands it to `f` (set-up path).
    async fn next_packet<T>(
        &mut self,
        f: impl FnOnce(Packet<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        loop {
            if let Some((first, body)) = self.next_frame()? {
                let end = body.end;
                let p = tern_codec::decode_body(first, &self.inbuf[body], self.version)
                    .map_err(|e| anyhow::anyhow!("bad packet from the broker: {e}"))?;
                let r = f(p);
                self.start = end;
                return r;
            }
            self.fill().await?;
        }
    }

    /// Sends DISCONNECT and shuts the write side; errors are ignored (the run is over).
    pub async fn close(mut self) {
        let _ = self.push(&Packet::Disconnect(tern_codec::Disconnect::new(
            tern_codec::ReasonCode::Success,
        )));
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = self.flush_all().await;
            let _ = self.wr.shutdown().await;
        })
        .await;
    }
}

/// Connects and completes CONNECT / CONNACK with a clean session.
pub async fn connect(
    t: &Target,
    client_id: &str,
    in_cap: usize,
    out_cap: usize,
) -> anyhow::Result<Conn> {
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let stream = open_stream(t).await?;
        let mut conn = Conn::new(stream, t.version, in_cap, out_cap);
        let mut c = Connect::new(t.version, client_id);
        c.keep_alive = t.keep_alive;
        c.clean_start = t.clean_start;
        if !t.clean_start && t.version.is_v5() {
            c.properties.session_expiry_interval = Some(300);
        }
        if t.version.is_v5() {
            // Tell the broker how large a packet we read, so it never sends a larger one.
            c.properties.maximum_packet_size = Some(max_packet(&conn));
        }
        conn.push(&Packet::Connect(c))?;
        conn.flush_all().await?;
        let receive_max = conn
            .next_packet(|p| match p {
                Packet::Connack(ack) if ack.reason.is_success() => {
                    Ok(ack.properties.receive_maximum.unwrap_or(u16::MAX))
                }
                Packet::Connack(ack) => bail!(
                    "the broker refused the connection: {}",
                    ack.reason.description()
                ),
                other => bail!("expected CONNACK, got {}", other.packet_type().name()),
            })
            .await?;
        conn.server_receive_max = receive_max.max(1);
        Ok(conn)
    })
    .await
    .map_err(|_| anyhow::anyhow!("no CONNACK within {} s", CONNECT_TIMEOUT.as_secs()))?
}

/// Subscribes to one filter and waits for a SUBACK that grants it.
pub async fn subscribe(conn: &mut Conn, filter: &str, qos: QoS) -> anyhow::Result<()> {
    let list = [(filter, SubscriptionOptions::qos(qos))];
    conn.push(&Packet::Subscribe(Subscribe {
        packet_id: PacketId::MIN,
        properties: Default::default(),
        filters: SubscribeFilters::List(&list),
    }))?;
    conn.flush_all().await?;
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        loop {
            let done = conn
                .next_packet(|p| match p {
                    Packet::Suback(s) => match s.reasons.first() {
                        Some(&code) if code < 0x80 => Ok(true),
                        Some(&code) => bail!(
                            "the broker refused the subscription to '{filter}' (code 0x{code:02x})"
                        ),
                        None => bail!("SUBACK without a return code"),
                    },
                    // Anything else before the SUBACK (retained messages) is skipped.
                    _ => Ok(false),
                })
                .await?;
            if done {
                return Ok(());
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no SUBACK within {} s", CONNECT_TIMEOUT.as_secs()))?
}
