//! `tern doctor HOST[:PORT]`: connects to a broker's TLS port and explains, in plain words,
//! what a device or `mosquitto_sub` would run into: the certificates the server sent,
//! whether they chain to the given CA, whether the host name matches (and whether only
//! libmosquitto's CN fallback saves it), dates against this machine's clock, the TLS
//! version and cipher suite, whether a client certificate is wanted, and finally the one
//! thing to change. It also recognises a plain (non-TLS) MQTT port.
//!
//! The handshake uses a verifier that records the server's chain instead of failing, so
//! everything can be reported; the verdict comes from rustls' strict WebPKI verifier run
//! on the recorded chain. Blocking std sockets with timeouts; no async runtime.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tern_pki::CertSummary;
use time::OffsetDateTime;

/// `tern doctor ...`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The broker's address.
    #[arg(help = "Broker address: HOST, HOST:PORT or [IPv6]:PORT (default port 8883)")]
    target: String,
    /// CA certificate clients trust (the tutorial's ca.crt).
    #[arg(long, value_name = "FILE")]
    cafile: Option<PathBuf>,
    /// Client certificate to present when the broker asks for one.
    #[arg(long, requires = "key", value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Private key of --cert.
    #[arg(long, requires = "cert", value_name = "FILE")]
    key: Option<PathBuf>,
    /// Name to check the certificate against and send as SNI [default: HOST].
    #[arg(long, value_name = "NAME")]
    servername: Option<String>,
    /// Seconds to wait for connecting and for each answer.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

/// Records the chain the server sends and accepts it, so the handshake goes on and the
/// chain can be judged afterwards. Handshake signatures are still verified for real.
#[derive(Debug)]
struct Recorder {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<CryptoProvider>,
    /// Set when the handshake signature could not be checked because webpki cannot parse
    /// the certificate at all (X.509 v1): the diagnosis goes on and reports it.
    unchecked_signature: AtomicBool,
}

impl Recorder {
    /// Keeps a real signature check, but lets a certificate webpki cannot even parse
    /// through so that it can be explained instead of ending the diagnosis.
    fn tolerate_unparsable(
        &self,
        result: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match result {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding | CertificateError::Other(_),
            )) => {
                self.unchecked_signature.store(true, Ordering::SeqCst);
                Ok(HandshakeSignatureValid::assertion())
            }
            other => other,
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut chain) = self.chain.lock() {
            chain.clear();
            chain.push(end_entity.clone().into_owned());
            chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tolerate_unparsable(rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tolerate_unparsable(rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Notes whether the server asked for a client certificate, and offers one if given.
#[derive(Debug)]
struct ClientCertProbe {
    requested: AtomicBool,
    key: Option<Arc<rustls::sign::CertifiedKey>>,
}

impl rustls::client::ResolvesClientCert for ClientCertProbe {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A stream that keeps the first bytes the server sent, to recognise non-TLS answers.
#[derive(Debug)]
struct Tap {
    inner: TcpStream,
    first: Vec<u8>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = 16usize.saturating_sub(self.first.len());
        self.first.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }
}

impl Write for Tap {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An MQTT 3.1.1 CONNECT, clean session, keep-alive 10 s, client id `tern-doctor`.
const MQTT_CONNECT: &[u8] = &[
    0x10, 23, // CONNECT, remaining length 23
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // protocol level 4 (3.1.1)
    0x02, // clean session
    0x00, 0x0a, // keep alive 10 s
    0x00, 0x0b, b't', b'e', b'r', b'n', b'-', b'd', b'o', b'c', b't', b'o', b'r',
];
const MQTT_DISCONNECT: &[u8] = &[0xe0, 0x00];

fn parse_target(target: &str) -> Result<(String, u16)> {
    if let Ok(ip) = target.parse::<IpAddr>() {
        return Ok((ip.to_string(), 8883));
    }
    if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .context("an IPv6 address in brackets needs a closing ']', e.g. [::1]:8883")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p
                .parse()
                .with_context(|| format!("'{p}' is not a port number"))?,
            None => 8883,
        };
        return Ok((host.to_owned(), port));
    }
    match target.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_owned(),
            p.parse()
                .with_context(|| format!("'{p}' is not a port number; use HOST:PORT"))?,
        )),
        None => Ok((target.to_owned(), 8883)),
    }
}

fn date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&f).unwrap_or_else(|_| t.to_string())
}

fn describe_cert_error(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => "it is not signed by a CA in the CA file".to_owned(),
            CertificateError::BadSignature => "a signature in the chain is wrong".to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "it has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "it is not valid yet".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "it is not valid for this host name".to_owned()
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "it is not allowed for TLS servers (extendedKeyUsage)".to_owned()
            }
            CertificateError::BadEncoding => {
                "it is malformed or an X.509 v1 certificate, which strict clients do not accept"
                    .to_owned()
            }
            CertificateError::Other(o) if format!("{o:?}").contains("UnsupportedCertVersion") => {
                "it is an X.509 v1 certificate, which strict clients do not accept".to_owned()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// How the host name compares with the certificate, as strict clients and libmosquitto see it.
#[derive(Debug, PartialEq, Eq)]
enum NameMatch {
    San(String),
    CnOnly,
    Mismatch,
}

fn dns_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    let h = h.trim_end_matches('.');
    if let Some(suffix) = p.strip_prefix("*.") {
        return h
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix);
    }
    p == h
}

fn match_name(c: &CertSummary, name: &str) -> NameMatch {
    if let Ok(ip) = name.parse::<IpAddr>() {
        if c.ip_addresses.contains(&ip) {
            return NameMatch::San(format!("IP:{ip}"));
        }
    } else if let Some(d) = c.dns_names.iter().find(|d| dns_matches(d, name)) {
        return NameMatch::San(format!("DNS:{d}"));
    }
    // libmosquitto (tls_mosq.c) falls back to the CN when there is no DNS SAN.
    if c.dns_names.is_empty()
        && c.common_name
            .as_deref()
            .is_some_and(|cn| dns_matches(cn, name))
    {
        return NameMatch::CnOnly;
    }
    NameMatch::Mismatch
}

struct Handshake {
    conn: ClientConnection,
    tap: Tap,
    chain: Vec<CertificateDer<'static>>,
    client_cert_requested: bool,
    unchecked_signature: bool,
}

enum HandshakeFailure {
    NotTls(Vec<u8>),
    Closed,
    Tls(rustls::Error),
    Io(io::Error),
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

fn handshake(
    addr: SocketAddr,
    server_name: ServerName<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_key: Option<Arc<rustls::sign::CertifiedKey>>,
    timeout: Duration,
) -> Result<Result<Handshake, HandshakeFailure>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        chain: Mutex::new(Vec::new()),
        provider: provider.clone(),
        unchecked_signature: AtomicBool::new(false),
    });
    let probe = Arc::new(ClientCertProbe {
        requested: AtomicBool::new(false),
        key: client_key,
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .context("rustls refused the protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_client_cert_resolver(probe.clone());
    let mut conn = ClientConnection::new(Arc::new(config), server_name)
        .context("rustls could not start a connection")?;
    let stream = match connect(addr, timeout) {
        Ok(s) => s,
        Err(e) => return Ok(Err(HandshakeFailure::Io(e))),
    };
    let mut tap = Tap {
        inner: stream,
        first: Vec::new(),
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tap) {
            let not_tls = tap
                .first
                .first()
                .is_some_and(|b| !(0x14..=0x18).contains(b));
            let failure = if not_tls {
                HandshakeFailure::NotTls(tap.first.clone())
            } else if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                HandshakeFailure::Tls(tls.clone())
            } else if tap.first.is_empty()
                && matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                )
            {
                HandshakeFailure::Closed
            } else {
                HandshakeFailure::Io(e)
            };
            return Ok(Err(failure));
        }
    }
    let chain = recorder.chain.lock().map(|c| c.clone()).unwrap_or_default();
    Ok(Ok(Handshake {
        conn,
        tap,
        chain,
        client_cert_requested: probe.requested.load(Ordering::SeqCst),
        unchecked_signature: recorder.unchecked_signature.load(Ordering::SeqCst),
    }))
}

/// Whether the chain (leaf first) leads by name and signature to one of `roots`.
fn chain_signed_by(chain: &[CertificateDer<'static>], roots: &[CertificateDer<'static>]) -> bool {
    let mut current = match chain.first() {
        Some(c) => c,
        None => return false,
    };
    for _ in 0..8 {
        if roots.iter().any(|r| tern_pki::signed_by(current, r)) {
            return true;
        }
        match chain
            .iter()
            .find(|c| *c != current && tern_pki::signed_by(current, c))
        {
            Some(next) => current = next,
            None => return false,
        }
    }
    false
}

/// Sends CONNECT over plain TCP; true when the answer is a CONNACK.
fn speaks_plain_mqtt(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(mut s) = connect(addr, timeout) else {
        return false;
    };
    if s.write_all(MQTT_CONNECT).is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    let ok = s.read_exact(&mut buf).is_ok() && buf[0] == 0x20 && buf[1] == 0x02;
    let _ = s.write_all(MQTT_DISCONNECT);
    ok
}

enum MqttOutcome {
    Accepted,
    Refused(u8),
    Alert(rustls::Error),
    Closed,
    Other(String),
}

fn mqtt_over_tls(h: &mut Handshake) -> MqttOutcome {
    let mut stream = rustls::Stream::new(&mut h.conn, &mut h.tap);
    let result = (|| -> io::Result<[u8; 4]> {
        stream.write_all(MQTT_CONNECT)?;
        stream.flush()?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf)?;
        Ok(buf)
    })();
    match result {
        Ok(buf) if buf[0] == 0x20 && buf[1] == 0x02 => {
            let _ = stream.write_all(MQTT_DISCONNECT);
            h.conn.send_close_notify();
            let _ = h.conn.complete_io(&mut h.tap);
            if buf[3] == 0 {
                MqttOutcome::Accepted
            } else {
                MqttOutcome::Refused(buf[3])
            }
        }
        Ok(buf) => MqttOutcome::Other(format!(
            "the server answered CONNECT with bytes {:02x?}, not a CONNACK",
            buf
        )),
        Err(e) => {
            if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                MqttOutcome::Alert(tls.clone())
            } else if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) {
                MqttOutcome::Closed
            } else {
                MqttOutcome::Other(e.to_string())
            }
        }
    }
}

fn load_client_key(cert: &PathBuf, key: &PathBuf) -> Result<Arc<rustls::sign::CertifiedKey>> {
    let certs = tern_pki::load_certs(
        &std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?,
    )
    .with_context(|| format!("cannot use --cert {}", cert.display()))?;
    let der = tern_pki::load_private_key(
        &std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?,
    )
    .with_context(|| format!("cannot use --key {}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .with_context(|| format!("rustls cannot sign with {}", key.display()))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(certs, signing)))
}

fn alert_advice(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::AlertReceived(A::CertificateRequired | A::HandshakeFailure) => {
            format!(
                "the broker refused the connection ({e}); it most likely requires a client certificate (require_certificate true): pass --cert and --key, made with `tern pki client NAME`"
            )
        }
        rustls::Error::AlertReceived(A::CertificateRevoked) => format!(
            "the broker refused the client certificate ({e}): it is revoked (listed in the broker's crlfile); issue a new one with `tern pki client NAME`"
        ),
        rustls::Error::AlertReceived(A::UnknownCA | A::BadCertificate | A::DecryptError) => {
            format!(
                "the broker refused the client certificate ({e}): it is not signed by the broker's cafile CA, or it is expired"
            )
        }
        rustls::Error::AlertReceived(A::ProtocolVersion) => format!(
            "the server and tern share no TLS version ({e}); allow TLS 1.2 or 1.3 on the broker (mosquitto: tls_version tlsv1.2)"
        ),
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// Runs the diagnosis and returns the process exit code: 0 when a strict TLS client would
/// connect, 1 otherwise.
pub fn run(args: DoctorArgs) -> Result<i32> {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let (host, port) = parse_target(&args.target)?;
    let name = args.servername.clone().unwrap_or_else(|| host.clone());
    let server_name = ServerName::try_from(name.clone())
        .with_context(|| format!("'{name}' is not a valid host name or IP address"))?;
    println!("tern doctor: {host}:{port}, checking the certificate for \"{name}\"");

    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            println!("DNS: cannot resolve {host}: {e}");
            println!(
                "most important: use a name this machine can resolve, or the broker's IP address"
            );
            return Ok(1);
        }
    };
    let Some(&addr) = addrs.first() else {
        println!("DNS: {host} has no address");
        println!("most important: use a name this machine can resolve, or the broker's IP address");
        return Ok(1);
    };

    let client_key = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some(load_client_key(c, k)?),
        _ => None,
    };
    let all = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut h = match handshake(addr, server_name.clone(), &all, client_key.clone(), timeout)? {
        Ok(h) => h,
        Err(HandshakeFailure::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            println!("TCP: {addr}: connection refused, nothing listens on port {port}");
            println!(
                "most important: start the broker with a TLS listener on port {port} (mosquitto.conf: listener {port}, cafile, certfile, keyfile), or use the right port"
            );
            return Ok(1);
        }
        Err(HandshakeFailure::Io(e)) => {
            println!("TCP/TLS: {addr}: {e}");
            println!(
                "most important: check that the broker is reachable on port {port} (firewall, address) and speaks TLS there"
            );
            return Ok(1);
        }
        Err(HandshakeFailure::NotTls(bytes)) => {
            println!("TCP: connected to {addr}");
            let mqtt = bytes.first().is_some_and(|b| b >> 4 == 2);
            println!(
                "TLS: the server answered with non-TLS bytes {bytes:02x?}{}",
                if mqtt { " (an MQTT CONNACK)" } else { "" }
            );
            println!(
                "most important: {host}:{port} is a plain MQTT (non-TLS) port, not a TLS one; connect to the TLS listener (usually 8883), or add one to mosquitto.conf: listener 8883 with cafile, certfile and keyfile"
            );
            return Ok(1);
        }
        Err(HandshakeFailure::Closed) => {
            println!("TCP: connected to {addr}");
            println!("TLS: the server closed the connection without answering the TLS ClientHello");
            if speaks_plain_mqtt(addr, timeout) {
                println!("MQTT: an unencrypted CONNECT on a new connection got a CONNACK");
                println!(
                    "most important: {host}:{port} is a plain MQTT (non-TLS) port, not a TLS one; connect to the TLS listener (usually 8883), or add one to mosquitto.conf: listener 8883 with cafile, certfile and keyfile"
                );
            } else {
                println!(
                    "most important: {host}:{port} does not speak TLS (it closed the connection on the ClientHello); check the port and that certfile/keyfile are set for this listener"
                );
            }
            return Ok(1);
        }
        Err(HandshakeFailure::Tls(e)) => {
            println!("TCP: connected to {addr}");
            let advice = alert_advice(&e);
            println!("TLS: {advice}");
            println!("most important: {advice}");
            return Ok(1);
        }
    };
    println!("TCP: connected to {addr}");
    let version = h.conn.protocol_version().map_or_else(
        || "unknown".to_owned(),
        |v| format!("{v:?}").replace("TLSv1_", "TLS 1."),
    );
    let suite = h
        .conn
        .negotiated_cipher_suite()
        .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
    println!("TLS: {version}, cipher suite {suite}");
    if h.unchecked_signature {
        println!(
            "TLS: the server's handshake signature could not be checked: its certificate cannot be parsed by strict clients (X.509 v1?)"
        );
    }
    println!(
        "client certificate: {}",
        match (h.client_cert_requested, client_key.is_some()) {
            (false, _) => "not requested by the server",
            (true, true) => "requested by the server; sent --cert",
            (true, false) =>
                "requested by the server; none given (pass --cert and --key if it is required)",
        }
    );

    // What the server sent.
    let chain = h.chain.clone();
    println!("the server sent {} certificate(s):", chain.len());
    let summaries: Vec<Option<CertSummary>> =
        chain.iter().map(|c| CertSummary::of(c).ok()).collect();
    let now = OffsetDateTime::now_utc();
    for (i, s) in summaries.iter().enumerate() {
        match s {
            Some(s) => {
                println!("  [{i}] subject {}", s.subject);
                println!("      issuer  {}", s.issuer);
                println!(
                    "      SANs    {}",
                    if s.sans.is_empty() {
                        "(none)".to_owned()
                    } else {
                        s.sans.join(", ")
                    }
                );
                println!(
                    "      valid   {} to {}",
                    date(s.not_before),
                    date(s.not_after)
                );
            }
            None => println!("  [{i}] (cannot be parsed)"),
        }
    }
    let Some(Some(leaf)) = summaries.first() else {
        println!(
            "most important: the server sent no usable certificate; set certfile in the broker's TLS listener"
        );
        return Ok(1);
    };

    // Findings, most important first.
    let mut problems: Vec<String> = Vec::new();

    // Chain.
    let mut strict_result: Option<Result<(), rustls::Error>> = None;
    match &args.cafile {
        None => {
            println!("chain: not checked (no --cafile given)");
            problems.push(
                "pass --cafile with the CA certificate your clients use, so the chain can be checked"
                    .to_owned(),
            );
        }
        Some(cafile) => {
            let ca_certs = tern_pki::load_certs(
                &std::fs::read(cafile)
                    .with_context(|| format!("cannot read {}", cafile.display()))?,
            )
            .with_context(|| format!("cannot use --cafile {}", cafile.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in &ca_certs {
                if let Err(e) = roots.add(c.clone()) {
                    println!(
                        "chain: {} cannot be used as a trust anchor: {e}",
                        cafile.display()
                    );
                }
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("no usable CA certificate in {}", cafile.display()))?;
            let (ee, rest) = (&chain[0], &chain[1..]);
            // Check the chain at a moment inside the leaf's validity, so a date problem
            // does not hide whether it chains to the CA at all.
            let inside = leaf.not_before + time::Duration::minutes(1);
            let at = |t: OffsetDateTime| {
                UnixTime::since_unix_epoch(Duration::from_secs(
                    u64::try_from(t.unix_timestamp()).unwrap_or(0),
                ))
            };
            let chain_check = verifier.verify_server_cert(ee, rest, &server_name, &[], at(inside));
            let unparsable = matches!(
                &chain_check,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::BadEncoding | CertificateError::Other(_)
                ))
            );
            let chains = match &chain_check {
                Ok(_) => true,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => true,
                // webpki cannot parse it (X.509 v1): check name and signature directly.
                Err(_) if unparsable => chain_signed_by(&chain, &ca_certs),
                Err(_) => false,
            };
            let ca_names: Vec<String> = ca_certs
                .iter()
                .filter_map(|c| CertSummary::of(c).ok().map(|s| s.subject))
                .collect();
            if chains {
                println!(
                    "chain: chains to {} ({}){}",
                    cafile.display(),
                    ca_names.join("; "),
                    if unparsable {
                        " by signature, but strict clients cannot parse the certificate"
                    } else {
                        ""
                    }
                );
            } else {
                let why = chain_check
                    .as_ref()
                    .err()
                    .map(describe_cert_error)
                    .unwrap_or_default();
                println!(
                    "chain: does not chain to {} ({}): {why}",
                    cafile.display(),
                    ca_names.join("; ")
                );
                problems.push(format!(
                    "the server's certificate (issuer {}) does not chain to {}: give clients the CA that signed it as cafile, or reissue the server certificate with this CA: tern pki server --host {name} --ca-cert {} --ca-key {}",
                    leaf.issuer,
                    cafile.display(),
                    cafile.display(),
                    cafile.with_extension("key").display()
                ));
            }
            strict_result = Some(
                verifier
                    .verify_server_cert(ee, rest, &server_name, &[], UnixTime::now())
                    .map(|_| ()),
            );
        }
    }

    // Name.
    match match_name(leaf, &name) {
        NameMatch::San(entry) => println!("name: \"{name}\" matches {entry}"),
        NameMatch::CnOnly => {
            println!(
                "name: \"{name}\" is only in the CN; the certificate has no subjectAltName, so only libmosquitto's CN fallback accepts it, strict clients (rustls, ESP32, Python, Go) do not"
            );
            problems.push(format!(
                "the certificate has no subjectAltName; reissue it with: tern pki server --host {name}"
            ));
        }
        NameMatch::Mismatch => {
            let names = if leaf.sans.is_empty() {
                format!("CN {}", leaf.common_name.as_deref().unwrap_or("(none)"))
            } else {
                leaf.sans.join(", ")
            };
            println!("name: \"{name}\" does not match the certificate ({names})");
            let flag = if name.parse::<IpAddr>().is_ok() {
                "--ip"
            } else {
                "--host"
            };
            problems.push(format!(
                "\"{name}\" does not match the certificate's names ({names}): connect with one of those names, or reissue it with: tern pki server {flag} {name}"
            ));
        }
    }

    // Dates.
    if leaf.not_after < now {
        println!(
            "dates: EXPIRED on {} (this machine's clock: {})",
            date(leaf.not_after),
            date(now)
        );
        problems.push(format!(
            "the certificate expired on {}; reissue it with: {}",
            date(leaf.not_after),
            tern_pki::reissue_command(leaf, false)
        ));
    } else if leaf.not_before > now {
        println!(
            "dates: NOT YET VALID until {} (this machine's clock: {})",
            date(leaf.not_before),
            date(now)
        );
        problems.push(format!(
            "the certificate is not valid before {}: check the clocks of the broker's host, this machine and the devices (SNTP)",
            date(leaf.not_before)
        ));
    } else {
        let left = (leaf.not_after - now).whole_days();
        println!(
            "dates: valid now ({left} days left, by this machine's clock {})",
            date(now)
        );
        if left < tern_pki::EXPIRY_WARNING_DAYS {
            println!(
                "       renew soon: {}",
                tern_pki::reissue_command(leaf, false)
            );
        }
    }
    if leaf.version < 3 {
        problems.push(format!(
            "the certificate is X.509 v{}, which strict clients refuse; reissue it with: {}",
            leaf.version,
            tern_pki::reissue_command(leaf, false)
        ));
    }

    // TLS 1.2: what ESP8266 (BearSSL) speaks.
    if version == "TLS 1.3" {
        match handshake(
            addr,
            server_name.clone(),
            &[&rustls::version::TLS12],
            client_key.clone(),
            timeout,
        )? {
            Ok(h12) => {
                let s = h12
                    .conn
                    .negotiated_cipher_suite()
                    .map_or_else(|| "unknown".to_owned(), |s| format!("{:?}", s.suite()));
                println!("TLS 1.2 (needed by ESP8266): supported, {s}");
            }
            Err(HandshakeFailure::Tls(rustls::Error::AlertReceived(
                rustls::AlertDescription::ProtocolVersion,
            ))) => println!(
                "TLS 1.2 (needed by ESP8266): NOT offered; ESP8266 devices cannot connect (mosquitto: tls_version tlsv1.2)"
            ),
            Err(HandshakeFailure::Tls(e)) => {
                println!("TLS 1.2 (needed by ESP8266): offered, but the handshake ended with: {e}")
            }
            Err(_) => println!("TLS 1.2 (needed by ESP8266): could not be checked"),
        }
    }

    // MQTT over the TLS connection: the server checks a client certificate only now in TLS 1.3.
    let mut transport_ok = true;
    match mqtt_over_tls(&mut h) {
        MqttOutcome::Accepted => println!("MQTT: CONNECT accepted (CONNACK 0)"),
        MqttOutcome::Refused(rc) => {
            let why = match rc {
                1 => "unacceptable protocol version",
                2 => "client id rejected",
                3 => "server unavailable",
                4 => "bad user name or password",
                5 => "not authorised",
                _ => "refused",
            };
            println!(
                "MQTT: CONNECT refused with CONNACK {rc} ({why}); TLS itself worked, the broker wants credentials (user name and password, or a client certificate)"
            );
        }
        MqttOutcome::Alert(e) => {
            println!("MQTT: the server ended TLS after the handshake: {e}");
            transport_ok = false;
            problems.insert(0, alert_advice(&e));
        }
        MqttOutcome::Closed => {
            println!("MQTT: the server closed the connection right after the handshake");
            transport_ok = false;
            problems.insert(
                0,
                "the broker closed the connection after the TLS handshake; it most likely requires a client certificate (require_certificate true): pass --cert and --key made with `tern pki client NAME`"
                    .to_owned(),
            );
        }
        MqttOutcome::Other(e) => println!("MQTT: {e}"),
    }

    let strict_ok = transport_ok && matches!(strict_result, Some(Ok(())));
    if strict_ok {
        println!(
            "verdict: OK, a strict TLS client (rustls, ESP32, Python, Go, mosquitto_sub) would connect to \"{name}\""
        );
        println!("most important: nothing to change");
        Ok(0)
    } else {
        if let Some(Err(e)) = &strict_result {
            println!(
                "verdict: FAIL, a strict TLS client would refuse this server: {}",
                describe_cert_error(e)
            );
        } else {
            println!("verdict: FAIL");
        }
        let first = problems
            .into_iter()
            .next()
            .unwrap_or_else(|| "check the findings above".to_owned());
        println!("most important: {first}");
        Ok(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("localhost").unwrap(),
            ("localhost".into(), 8883)
        );
        assert_eq!(parse_target("h:1883").unwrap(), ("h".into(), 1883));
        assert_eq!(parse_target("[::1]:8884").unwrap(), ("::1".into(), 8884));
        assert_eq!(parse_target("::1").unwrap(), ("::1".into(), 8883));
        assert!(parse_target("h:x").is_err());
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.example.com", "a.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("Broker.Example.com", "broker.example.com."));
    }

    #[test]
    fn connect_packet_length_is_right() {
        assert_eq!(usize::from(MQTT_CONNECT[1]), MQTT_CONNECT.len() - 2);
    }
}
