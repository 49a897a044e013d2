//! One simulated device's connection: TCP, TLS with a rustls configuration built once and
//! shared by the whole fleet, and the sans-IO [`ClientConn`] driven in place by the device
//! task. No driver task and no channels per device (unlike [`tern_client::Client`]), so a
//! connected device costs its socket, its TLS session, a 1 KiB read buffer and the
//! `ClientConn`'s buffers.
//!
//! Owns: name resolution, connect/handshake/CONNACK time-outs, reading and writing, and
//! turning failures into [`ClientError`]s (the same plain words as `tern sub`). Must not
//! contain protocol logic (that is tern-proto's) nor retry policy (that is the device's).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tern_client::{ClientError, ClientOptions};
use tern_proto::client::{ClientConn, Event};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from the socket at a time (commands are small; longer packets are assembled
/// by the `ClientConn`, up to its `max_packet_size`).
const READ_CHUNK: usize = 1024;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub use tern_client::Clock;
use tern_client::sleep_until;

/// Where and how every device connects; built once.
#[derive(Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// For each of TCP connect and the TLS handshake (CONNACK has the `ClientConn`'s own).
    connect_timeout: Duration,
    pub clock: Clock,
}

impl Target {
    /// Reads the TLS files now, so that a mistake is reported once instead of at every
    /// attempt.
    pub fn new(opts: &ClientOptions) -> Result<Self, ClientError> {
        let tls = opts.tls_target()?;
        Ok(Self {
            host: opts.host.clone(),
            port: opts.port,
            tls,
            connect_timeout: opts.connect_timeout,
            clock: Clock::new(),
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn timeout(&self, what: &'static str) -> ClientError {
        ClientError::Timeout {
            what,
            secs: self.connect_timeout.as_secs().max(1),
        }
    }
}

/// A connected device.
pub struct Link {
    pub conn: ClientConn,
    stream: Box<dyn Stream>,
    buf: Box<[u8]>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("conn", &self.conn).finish()
    }
}

impl Link {
    /// Connects, handshakes and waits for CONNACK.
    pub async fn connect(
        target: &Target,
        opts: tern_proto::ClientOptions,
    ) -> Result<Link, ClientError> {
        let host = target.host.as_str();
        let addrs: Vec<_> = tokio::net::lookup_host((host, target.port))
            .await
            .map_err(|e| ClientError::Resolve {
                host: host.to_owned(),
                source: Arc::new(e),
            })?
            .collect();
        let tcp = tokio::time::timeout(target.connect_timeout, TcpStream::connect(&addrs[..]))
            .await
            .map_err(|_| target.timeout("connecting"))?
            .map_err(|e| ClientError::Connect {
                host: host.to_owned(),
                port: target.port,
                source: Arc::new(e),
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &target.tls {
            Some((config, name)) => {
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
                let s = tokio::time::timeout(
                    target.connect_timeout,
                    connector.connect(name.clone(), tcp),
                )
                .await
                .map_err(|_| target.timeout("in the TLS handshake"))?
                .map_err(|e| tern_client::tls::handshake_error(host, &e))?;
                Box::new(s)
            }
            None => Box::new(tcp),
        };
        let mut link = Link {
            conn: ClientConn::new(opts),
            stream,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
        };
        link.conn.connect(target.clock.now());
        link.flush().await?;
        loop {
            if let Some(ev) = link.conn.poll_event() {
                match ev {
                    Event::Connected { .. } => return Ok(link),
                    Event::Refused { reason, properties } => {
                        return Err(ClientError::Refused {
                            reason,
                            reason_string: properties.reason_string,
                        });
                    }
                    _ => continue,
                }
            }
            if let Err(e) = link.wait(&target.clock).await {
                return Err(match e {
                    ClientError::Disconnected { .. } => ClientError::ClosedBeforeConnack {
                        detail: "end of stream".into(),
                    },
                    // TLS 1.3 reports a refused client certificate after the handshake.
                    ClientError::Io(io) if target.is_tls() && is_tls_error(&io) => {
                        tern_client::tls::handshake_error(host, &io)
                    }
                    ClientError::Io(io) => ClientError::ClosedBeforeConnack {
                        detail: io.to_string(),
                    },
                    other => other,
                });
            }
        }
    }

    /// Writes everything the `ClientConn` has queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        if self.conn.wants_transmit() {
            let mut out = Vec::new();
            self.conn.poll_transmit(&mut out);
            self.stream.write_all(&out).await?;
            self.stream.flush().await?;
        }
        Ok(())
    }

    /// Waits for bytes or the next protocol timer and feeds the `ClientConn`. Cancel-safe:
    /// the only await is the read (or the timer), and handling is synchronous.
    pub async fn wait(&mut self, clock: &Clock) -> Result<(), ClientError> {
        let deadline = self.conn.poll_timeout().map(|t| clock.instant(t));
        tokio::select! {
            r = self.stream.read(&mut self.buf) => {
                let n = r?;
                if n == 0 {
                    return Err(ClientError::Disconnected { reason: None, reason_string: None });
                }
                self.conn.handle_input(clock.now(), &self.buf[..n])?;
            }
            _ = sleep_until(deadline) => {
                self.conn.handle_timeout(clock.now())?;
            }
        }
        Ok(())
    }

    /// Flushes (a queued DISCONNECT, say) and closes, within `limit`.
    pub async fn close(&mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            let _ = self.flush().await;
            let _ = self.stream.shutdown().await;
        })
        .await;
    }
}

fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<rustls::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::Timestamp;

    #[test]
    fn clock_round_trip() {
        let c = Clock::new();
        let t = c.now();
        let later = Timestamp(t.0 + 1500);
        let d = c.instant(later) - c.instant(t);
        assert_eq!(d, Duration::from_millis(1500));
    }
}
