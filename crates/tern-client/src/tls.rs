//! TLS for the client: rustls with the ring provider, CA files or directories, client
//! certificates (keys in PKCS#1, PKCS#8 or SEC1 PEM), and a verifier that behaves like
//! libmosquitto where it matters (host name against SAN DNS/IP, falling back to the CN when
//! there is no SAN DNS entry), plus pinning of the leaf certificate (SHA-256 or SHA-1, what
//! ESP8266 BearSSL's `setFingerprint` checks) or of its public key (SPKI SHA-256), with or
//! without CA validation.
//!
//! Pinning without a CA accepts any certificate whose hash matches, including X.509 v1
//! certificates with no SAN (the tutorial's `openssl x509 -req` output), and does not check
//! dates or the host name, like a device's fingerprint check. The handshake signature is
//! always verified against the certificate's public key, so a pin cannot be replayed by a
//! server that does not hold the private key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, DigitallySignedStruct, Error as TlsErr, OtherError, RootCertStore,
    SignatureScheme,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::{CertError, ClientError};
use crate::x509::{self, CertInfo};

/// The lowest TLS version to offer (rustls speaks 1.2 and 1.3 only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (mosquitto's default `tlsv1.2` is a minimum too).
    #[default]
    V12,
    /// TLS 1.3 only.
    V13,
}

/// A pinned hash of the server's certificate or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// SHA-256 of the leaf certificate DER (`openssl x509 -fingerprint -sha256`, ESP32
    /// `verify()`).
    LeafSha256([u8; 32]),
    /// SHA-1 of the leaf certificate DER (`openssl x509 -fingerprint -sha1`, ESP8266
    /// `setFingerprint`).
    LeafSha1([u8; 20]),
    /// SHA-256 of the leaf's SubjectPublicKeyInfo (survives reissuing with the same key).
    SpkiSha256([u8; 32]),
}

impl Pin {
    /// Parses a hex fingerprint (colons and spaces allowed); 20 bytes is SHA-1, 32 SHA-256.
    pub fn from_fingerprint(hex: &str) -> Result<Self, ClientError> {
        let bytes = parse_hex(hex).ok_or_else(|| {
            ClientError::Config(format!(
                "'{hex}' is not a hex fingerprint: give it as printed by `openssl x509 -noout -fingerprint -sha256` (or -sha1)"
            ))
        })?;
        match bytes.len() {
            20 => Ok(Self::LeafSha1(bytes.try_into().unwrap_or([0; 20]))),
            32 => Ok(Self::LeafSha256(bytes.try_into().unwrap_or([0; 32]))),
            n => Err(ClientError::Config(format!(
                "a fingerprint is 20 bytes (SHA-1) or 32 bytes (SHA-256), this one is {n}"
            ))),
        }
    }

    /// Parses a base64 (or hex) SHA-256 of the SubjectPublicKeyInfo, as printed by
    /// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
    pub fn from_spki(text: &str) -> Result<Self, ClientError> {
        let t = text.trim();
        let t = t.strip_prefix("sha256/").unwrap_or(t);
        let bytes = parse_hex(t)
            .filter(|b| b.len() == 32)
            .or_else(|| decode_base64(t))
            .ok_or_else(|| {
                ClientError::Config(format!("'{text}' is not a base64 SHA-256 SPKI pin"))
            })?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            ClientError::Config(format!(
                "an SPKI pin is a 32-byte SHA-256, this one is {} bytes",
                b.len()
            ))
        })?;
        Ok(Self::SpkiSha256(arr))
    }

    fn describe(&self) -> String {
        match self {
            Self::LeafSha256(h) => format!("SHA-256 fingerprint {}", hex(h)),
            Self::LeafSha1(h) => format!("SHA-1 fingerprint {}", hex(h)),
            Self::SpkiSha256(h) => format!("SPKI SHA-256 {}", base64(h)),
        }
    }
}

/// How to check the broker and identify ourselves.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM files of CA certificates to trust (`--cafile`).
    pub ca_files: Vec<PathBuf>,
    /// A directory of PEM CA certificates (`--capath`); every file that holds certificates
    /// is loaded (no `openssl rehash` needed).
    pub ca_path: Option<PathBuf>,
    /// Trust the system's CA bundle when no CA file, directory or pin is given.
    pub use_system_roots: bool,
    /// Our certificate chain, PEM (`--cert`).
    pub client_cert: Option<PathBuf>,
    /// Our private key, PEM: PKCS#1, PKCS#8 or SEC1 (`--key`).
    pub client_key: Option<PathBuf>,
    /// Skip only the host name check (`--insecure`); the chain is still validated.
    pub dangerous_skip_hostname_check: bool,
    /// Any one of these must match the leaf certificate.
    pub pins: Vec<Pin>,
    /// The lowest TLS version to accept.
    pub min_version: TlsVersion,
    /// The name to verify and send as SNI, when it differs from the host connected to.
    pub server_name: Option<String>,
    /// ALPN protocols to offer.
    pub alpn: Vec<Vec<u8>>,
}

const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

fn file_err(path: &Path, reason: impl Into<String>) -> ClientError {
    ClientError::TlsFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let data = std::fs::read(path).map_err(|e| file_err(path, e.to_string()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(file_err(
            path,
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn add_roots(
    store: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    path: &Path,
) -> Result<(), ClientError> {
    for c in certs {
        store.add(c).map_err(|e| {
            file_err(
                path,
                format!("a certificate in it cannot be used as a CA: {e}"),
            )
        })?;
    }
    Ok(())
}

impl TlsOptions {
    /// Builds the rustls configuration: reads every file now, so mistakes surface before any
    /// connection is attempted.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, ClientError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algs = provider.signature_verification_algorithms;
        let mut roots = RootCertStore::empty();
        let mut have_roots = false;
        for f in &self.ca_files {
            add_roots(&mut roots, read_certs(f)?, f)?;
            have_roots = true;
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e.to_string()))?;
            let mut paths: Vec<PathBuf> =
                entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths.into_iter().filter(|p| p.is_file()) {
                if let Ok(certs) = read_certs(&p) {
                    // Files in a CA directory that are not CA certificates are skipped.
                    for c in certs {
                        let _ = roots.add(c);
                    }
                }
            }
            if roots.is_empty() {
                return Err(file_err(dir, "the directory holds no PEM CA certificate"));
            }
            have_roots = true;
        }
        if !have_roots && self.pins.is_empty() {
            let bundle = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.is_file());
            match bundle {
                Some(p) if self.use_system_roots => {
                    let certs = read_certs(p)?;
                    let _ = roots.add_parsable_certificates(certs);
                    have_roots = true;
                }
                _ => {
                    return Err(ClientError::Config(
                        "TLS needs a way to check the broker: pass --cafile with the CA that signed its certificate, or pin it with --fingerprint".into(),
                    ));
                }
            }
        }
        let verifier = Arc::new(TernVerifier {
            roots: have_roots.then(|| Arc::new(roots)),
            pins: self.pins.clone(),
            check_hostname: !self.dangerous_skip_hostname_check,
            algs,
        });
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::V12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V13 => &[&rustls::version::TLS13],
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| ClientError::Config(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert)?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    file_err(
                        key,
                        format!("no private key in it (PKCS#1, PKCS#8 or SEC1 PEM expected): {e}"),
                    )
                })?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                    ClientError::Config(format!(
                        "the client certificate {} and key {} cannot be used together: {e}",
                        cert.display(),
                        key.display()
                    ))
                })?
            }
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(ClientError::Config(
                    "--cert needs --key with the matching private key".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ClientError::Config(
                    "--key needs --cert with the matching certificate".into(),
                ));
            }
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }
}

#[derive(Debug)]
struct TernVerifier {
    roots: Option<Arc<RootCertStore>>,
    pins: Vec<Pin>,
    check_hostname: bool,
    algs: WebPkiSupportedAlgorithms,
}

fn cert_err(e: CertError) -> TlsErr {
    TlsErr::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

fn now_secs(now: UnixTime) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// Turns webpki's verdict into plain words, with the dates and names from the certificate.
fn translate(e: TlsErr, info: &CertInfo, now: UnixTime) -> TlsErr {
    let now_text = x509::format_time(now_secs(now));
    let ce = match e {
        TlsErr::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                CertError::UnknownCa {
                    subject: info.subject_cn.clone(),
                    issuer: info.issuer_cn.clone(),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CertError::Expired {
                    not_after: x509::format_time(info.not_after),
                    now: now_text,
                }
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CertError::NotYetValid {
                    not_before: x509::format_time(info.not_before),
                    now: now_text,
                }
            }
            other => CertError::Other(format!("{other:?}")),
        },
        other => CertError::Other(other.to_string()),
    };
    cert_err(ce)
}

impl ServerCertVerifier for TernVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsErr> {
        let info =
            x509::parse(end_entity).map_err(|e| cert_err(CertError::Malformed(e.to_string())))?;
        if !self.pins.is_empty() {
            let sha256: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
            let sha1: [u8; 20] = Sha1::digest(end_entity.as_ref()).into();
            let spki: [u8; 32] = Sha256::digest(&info.spki).into();
            let ok = self.pins.iter().any(|p| match p {
                Pin::LeafSha256(h) => *h == sha256,
                Pin::LeafSha1(h) => *h == sha1,
                Pin::SpkiSha256(h) => *h == spki,
            });
            if !ok {
                return Err(cert_err(CertError::PinMismatch {
                    expected: self
                        .pins
                        .iter()
                        .map(Pin::describe)
                        .collect::<Vec<_>>()
                        .join(" or "),
                    sha256: hex(&sha256),
                    sha1: hex(&sha1),
                    spki: base64(&spki),
                }));
            }
        }
        if let Some(roots) = &self.roots {
            if info.version < 3 {
                return Err(cert_err(CertError::Version1));
            }
            let parsed =
                ParsedCertificate::try_from(end_entity).map_err(|e| translate(e, &info, now))?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &parsed,
                roots,
                intermediates,
                now,
                self.algs.all,
            )
            .map_err(|e| translate(e, &info, now))?;
            if self.check_hostname {
                let host = match server_name {
                    ServerName::DnsName(d) => d.as_ref().to_owned(),
                    ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
                    _ => String::new(),
                };
                if !x509::matches_host(&info, &host) {
                    return Err(cert_err(CertError::HostnameMismatch {
                        names: x509::names(&info),
                        host,
                    }));
                }
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsErr> {
        // Verified against the raw public key so that v1 certificates work too.
        let info = x509::parse(cert).map_err(|e| cert_err(CertError::Malformed(e.to_string())))?;
        let candidates = self
            .algs
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(TlsErr::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        for alg in candidates {
            if alg.public_key_alg_id().as_ref() != info.spki_algorithm.as_slice() {
                continue;
            }
            if alg
                .verify_signature(&info.public_key, message, dss.signature())
                .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(TlsErr::InvalidCertificate(CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsErr> {
        let info = x509::parse(cert).map_err(|e| cert_err(CertError::Malformed(e.to_string())))?;
        let spki = SubjectPublicKeyInfoDer::from(info.spki.as_slice());
        verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Recovers a certificate verdict from a failed handshake, or describes the failure in plain
/// words with a hint. Public for callers that drive their own connections over the same
/// [`TlsOptions::build`] configuration (the `tern device` fleet simulator).
pub fn handshake_error(host: &str, e: &std::io::Error) -> ClientError {
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<TlsErr>())
        .cloned();
    match inner {
        Some(TlsErr::InvalidCertificate(CertificateError::Other(o))) => {
            match o.0.downcast_ref::<CertError>() {
                Some(c) => ClientError::Certificate(c.clone()),
                None => ClientError::Tls {
                    host: host.to_owned(),
                    detail: o.to_string(),
                },
            }
        }
        Some(TlsErr::InvalidCertificate(CertificateError::BadSignature)) => ClientError::Tls {
            host: host.to_owned(),
            detail: "the server's handshake signature does not match its certificate's key: it does not hold the private key of the certificate it presented".into(),
        },
        Some(TlsErr::AlertReceived(alert)) => ClientError::Tls {
            host: host.to_owned(),
            detail: format!(
                "the broker refused the handshake ({alert:?}): if it requires a client certificate, pass --cert and --key; if it requires TLS 1.3 or 1.2, check --tls-version"
            ),
        },
        Some(TlsErr::InvalidMessage(m)) => ClientError::Tls {
            host: host.to_owned(),
            detail: format!(
                "the broker did not answer with TLS ({m:?}): is this port a TLS listener? (1883 is usually plain MQTT, 8883 TLS)"
            ),
        },
        Some(other) => ClientError::Tls {
            host: host.to_owned(),
            detail: other.to_string(),
        },
        None => match e.kind() {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                ClientError::Tls {
                    host: host.to_owned(),
                    detail: format!(
                        "the broker closed the connection during the handshake ({e}): is this port a TLS listener, and does it require a client certificate (--cert, --key)?"
                    ),
                }
            }
            _ => ClientError::Tls {
                host: host.to_owned(),
                detail: e.to_string(),
            },
        },
    }
}

/// Lower-case hex with colons, like `openssl x509 -fingerprint` (which uses upper case).
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let s = s.split_once('=').map_or(s, |(_, v)| v); // "SHA1 Fingerprint=AA:BB..."
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b':' | b' ' | b'-'))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let h = (p[0] as char).to_digit(16)?;
            let l = (p[1] as char).to_digit(16)?;
            u8::try_from(h * 16 + l).ok()
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The three pins for a certificate (for printing and tests): SHA-256 and SHA-1 of the DER
/// as hex, and the SPKI SHA-256 as base64.
pub fn fingerprints(der: &[u8]) -> Result<(String, String, String), ClientError> {
    let info = x509::parse(der).map_err(|e| ClientError::Config(e.to_string()))?;
    let sha256: [u8; 32] = Sha256::digest(der).into();
    let sha1: [u8; 20] = Sha1::digest(der).into();
    let spki: [u8; 32] = Sha256::digest(&info.spki).into();
    Ok((hex(&sha256), hex(&sha1), base64(&spki)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(e: TlsErr) -> CertError {
        let TlsErr::InvalidCertificate(CertificateError::Other(o)) = e else {
            panic!("not translated: {e:?}")
        };
        o.0.downcast_ref::<CertError>().unwrap().clone()
    }

    #[test]
    fn dates_in_plain_words() {
        let info = CertInfo {
            version: 3,
            not_before: 1_600_000_000,
            not_after: 1_700_000_000,
            subject_cn: Some("broker".into()),
            issuer_cn: Some("ca".into()),
            san_dns: vec![],
            san_ip: vec![],
            spki: vec![],
            spki_algorithm: vec![],
            public_key: vec![],
        };
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000));
        let e = verdict(translate(
            TlsErr::InvalidCertificate(CertificateError::Expired),
            &info,
            now,
        ));
        assert_eq!(
            e.to_string(),
            "the broker's certificate expired on 2023-11-14 22:13:20 UTC (it is now 2027-01-15 08:00:00 UTC): issue a new one for the broker, or check this machine's clock"
        );
        let e = verdict(translate(
            TlsErr::InvalidCertificate(CertificateError::NotValidYet),
            &info,
            now,
        ));
        assert!(
            e.to_string()
                .contains("not valid before 2020-09-13 12:26:40 UTC"),
            "{e}"
        );
        let e = verdict(translate(
            TlsErr::InvalidCertificate(CertificateError::UnknownIssuer),
            &info,
            now,
        ));
        assert!(
            e.to_string().contains("(CN=broker, issued by CN=ca)"),
            "{e}"
        );
    }

    #[test]
    fn base64_round_trip() {
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).collect();
            assert_eq!(decode_base64(&base64(&v)).unwrap(), v);
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }

    #[test]
    fn fingerprint_forms() {
        let p = Pin::from_fingerprint(
            "SHA1 Fingerprint=61:5B:5A:B9:AF:35:79:AA:21:09:04:5C:C2:32:43:6C:57:CC:8C:F4",
        )
        .unwrap();
        assert!(matches!(p, Pin::LeafSha1(h) if h[0] == 0x61 && h[19] == 0xF4));
        assert!(matches!(
            Pin::from_fingerprint(&"ab".repeat(32)),
            Ok(Pin::LeafSha256(_))
        ));
        assert!(Pin::from_fingerprint("abc").is_err());
        assert!(Pin::from_fingerprint("zz").is_err());
        assert!(Pin::from_fingerprint(&"ab".repeat(16)).is_err());
        assert!(matches!(
            Pin::from_spki(&base64(&[7u8; 32])),
            Ok(Pin::SpkiSha256(h)) if h == [7u8; 32]
        ));
        assert!(Pin::from_spki("AAAA").is_err());
    }
}
