//! Reading certificates back: a summary of each certificate (names, dates, key, signature,
//! fingerprints) and warnings in plain words about what will make TLS clients refuse it,
//! each with the `tern pki` command that fixes it.
//!
//! Pure: the current time is an argument, and nothing is read from disk.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::error::PkiError;
use crate::fingerprint::{FingerprintFormat, FingerprintKind, Fingerprints};
use crate::keys::{self, KeyKind};

/// A certificate expiring within this many days gets a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What one certificate says about itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertSummary {
    /// Subject, OpenSSL one-line style (`CN=broker.example.com, O=...`).
    pub subject: String,
    /// Issuer, same style.
    pub issuer: String,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// subjectAltName entries as `DNS:name` / `IP:addr` / `email:...` / `URI:...`.
    pub sans: Vec<String>,
    /// DNS names among the SANs.
    pub dns_names: Vec<String>,
    /// IP addresses among the SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number, upper-case hex.
    pub serial: String,
    /// X.509 version as people say it: 1 or 3.
    pub version: u32,
    /// The public key.
    pub key: KeyKind,
    /// Signature algorithm name, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`.
    pub signature_algorithm: String,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// Subject and issuer are the same name.
    pub self_signed: bool,
    /// keyUsage and extendedKeyUsage names, e.g. `digitalSignature`, `serverAuth`.
    pub usages: Vec<String>,
    /// Whether an extendedKeyUsage extension is present and, if so, allows serverAuth.
    pub server_auth: Option<bool>,
    /// Digests of the DER and SPKI.
    pub fingerprints: Fingerprints,
    /// The DER bytes.
    pub der: CertificateDer<'static>,
}

fn date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_else(|_| t.to_string())
}

fn cert_key_kind(x509: &X509Certificate<'_>) -> KeyKind {
    let spki = x509.public_key();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa {
            bits: crate::der::integer_bits(rsa.modulus),
        },
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map_or_else(
                    || "unknown curve".to_owned(),
                    |oid| keys::curve_name(oid.as_bytes()),
                );
            KeyKind::Ecdsa { curve }
        }
        _ => {
            let oid = spki.algorithm.algorithm.to_id_string();
            if oid == "1.3.101.112" {
                KeyKind::Ed25519
            } else {
                KeyKind::Other(oid)
            }
        }
    }
}

impl CertSummary {
    /// Summarises one DER certificate.
    pub fn of(der: &CertificateDer<'_>) -> Result<Self, PkiError> {
        let (_, x) =
            X509Certificate::from_der(der.as_ref()).map_err(|e| PkiError::BadCertificate {
                reason: e.to_string(),
            })?;
        let mut sans = Vec::new();
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for gn in &san.value.general_names {
                match gn {
                    GeneralName::DNSName(n) => {
                        sans.push(format!("DNS:{n}"));
                        dns_names.push((*n).to_owned());
                    }
                    GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                            _ => None,
                        };
                        match ip {
                            Some(ip) => {
                                sans.push(format!("IP:{ip}"));
                                ip_addresses.push(ip);
                            }
                            None => sans.push(format!("IP:{}", keys::hex_lower(b))),
                        }
                    }
                    GeneralName::RFC822Name(e) => sans.push(format!("email:{e}")),
                    GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                    other => sans.push(format!("{other:?}")),
                }
            }
        }
        let common_name = x
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut usages = Vec::new();
        if let Ok(Some(ku)) = x.key_usage() {
            usages.extend(ku.value.to_string().split(", ").map(str::to_owned));
        }
        let mut server_auth = None;
        if let Ok(Some(eku)) = x.extended_key_usage() {
            let e = &eku.value;
            server_auth = Some(e.server_auth || e.any);
            for (on, name) in [
                (e.server_auth, "serverAuth"),
                (e.client_auth, "clientAuth"),
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.any, "anyExtendedKeyUsage"),
            ] {
                if on {
                    usages.push(name.to_owned());
                }
            }
        }
        usages.retain(|u| !u.is_empty());
        let sig_oid = &x.signature_algorithm.algorithm;
        let signature_algorithm =
            x509_parser::objects::oid2sn(sig_oid, x509_parser::objects::oid_registry())
                .map_or_else(|_| sig_oid.to_id_string(), str::to_owned);
        let raw_serial = x.raw_serial();
        let skip = raw_serial
            .iter()
            .take_while(|&&b| b == 0)
            .count()
            .min(raw_serial.len().saturating_sub(1));
        Ok(Self {
            subject: x.subject().to_string(),
            issuer: x.issuer().to_string(),
            common_name,
            sans,
            dns_names,
            ip_addresses,
            not_before: x.validity().not_before.to_datetime(),
            not_after: x.validity().not_after.to_datetime(),
            serial: keys::hex_lower(&raw_serial[skip..]).to_uppercase(),
            version: x.version().0 + 1,
            key: cert_key_kind(&x),
            signature_algorithm,
            is_ca: matches!(x.basic_constraints(), Ok(Some(bc)) if bc.value.ca),
            self_signed: x.subject().as_raw() == x.issuer().as_raw(),
            usages,
            server_auth,
            fingerprints: Fingerprints::of(der)?,
            der: CertificateDer::from(der.as_ref().to_vec()),
        })
    }

    fn sha1_signed(&self) -> bool {
        self.signature_algorithm
            .to_ascii_lowercase()
            .contains("sha1")
    }
}

/// Whether `key` is the private key of `cert`.
pub fn key_matches(cert: &CertificateDer<'_>, key: &PrivateKeyDer<'_>) -> Result<bool, PkiError> {
    let (_, x) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| PkiError::BadCertificate {
            reason: e.to_string(),
        })?;
    let pair = keys::signing_key(key)?;
    Ok(pair.public_key_raw() == x.public_key().subject_public_key.data.as_ref())
}

/// Whether `cert` names `issuer` as its issuer and carries a valid signature by
/// `issuer`'s key. Works for X.509 v1 certificates too, which webpki refuses to parse.
pub fn signed_by(cert: &CertificateDer<'_>, issuer: &CertificateDer<'_>) -> bool {
    let (Ok((_, c)), Ok((_, i))) = (
        X509Certificate::from_der(cert.as_ref()),
        X509Certificate::from_der(issuer.as_ref()),
    ) else {
        return false;
    };
    c.issuer().as_raw() == i.subject().as_raw() && c.verify_signature(Some(i.public_key())).is_ok()
}

/// A problem found with a certificate, before it is put in words.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    V1NoSan,
    NoSan,
    Expired(OffsetDateTime),
    NotYetValid(OffsetDateTime),
    ExpiresSoon(OffsetDateTime, i64),
    Sha1Signature,
    SmallRsa(usize),
    KeyMismatch,
    CaCert,
    NoServerAuth,
}

fn problems(
    c: &CertSummary,
    key_match: Option<bool>,
    now: OffsetDateTime,
    as_server: bool,
) -> Vec<Problem> {
    let mut out = Vec::new();
    let leaf_like = as_server || !c.is_ca;
    if c.version < 3 {
        out.push(Problem::V1NoSan);
    } else if c.sans.is_empty() && leaf_like && !(as_server && c.is_ca) {
        out.push(Problem::NoSan);
    }
    if c.not_after < now {
        out.push(Problem::Expired(c.not_after));
    } else if c.not_before > now {
        out.push(Problem::NotYetValid(c.not_before));
    } else {
        let left = (c.not_after - now).whole_days();
        if left < EXPIRY_WARNING_DAYS {
            out.push(Problem::ExpiresSoon(c.not_after, left));
        }
    }
    if c.sha1_signed() && !c.self_signed {
        out.push(Problem::Sha1Signature);
    }
    if let KeyKind::Rsa { bits } = c.key
        && bits < 2048
    {
        out.push(Problem::SmallRsa(bits));
    }
    if key_match == Some(false) {
        out.push(Problem::KeyMismatch);
    }
    let looks_like_server = !c.sans.is_empty() || c.server_auth == Some(true);
    if c.is_ca && (as_server || looks_like_server) {
        out.push(Problem::CaCert);
    }
    if c.server_auth == Some(false) && as_server {
        out.push(Problem::NoServerAuth);
    }
    out
}

/// The `tern pki server` command that issues a proper replacement for `c`.
pub fn reissue_command(c: &CertSummary, small_rsa: bool) -> String {
    let mut cmd = "tern pki server".to_owned();
    let mut any = false;
    for n in &c.dns_names {
        cmd.push_str(&format!(" --host {n}"));
        any = true;
    }
    for ip in &c.ip_addresses {
        cmd.push_str(&format!(" --ip {ip}"));
        any = true;
    }
    if !any {
        match &c.common_name {
            Some(cn) if cn.parse::<IpAddr>().is_ok() => cmd.push_str(&format!(" --ip {cn}")),
            Some(cn) if crate::issue::valid_dns_name(cn) => cmd.push_str(&format!(" --host {cn}")),
            _ => cmd.push_str(" --host YOUR.BROKER.HOST"),
        }
    }
    if small_rsa {
        cmd.push_str(" --key rsa-2048");
    }
    cmd
}

fn server_sentence(p: &Problem, file: &str, c: &CertSummary) -> String {
    let fix = reissue_command(c, matches!(p, Problem::SmallRsa(_)));
    let cn = c.common_name.as_deref().unwrap_or("(none)");
    match p {
        Problem::V1NoSan => format!(
            "{file} is an X.509 v{} certificate with no subjectAltName, so strict TLS clients will refuse it; reissue it with: {fix}",
            c.version
        ),
        Problem::NoSan => format!(
            "{file} has no subjectAltName (only libmosquitto falls back to its CN '{cn}'), so strict TLS clients will refuse it; reissue it with: {fix}"
        ),
        Problem::Expired(t) => format!(
            "{file} expired on {}, so every TLS client will refuse it; reissue it with: {fix}",
            date(*t)
        ),
        Problem::NotYetValid(t) => format!(
            "{file} is not valid before {}, so TLS clients will refuse it until then; check this machine's clock, and if it is right reissue it with: {fix}",
            date(*t)
        ),
        Problem::ExpiresSoon(t, d) => format!(
            "{file} expires on {} (in {d} days), after which every TLS client will refuse it; renew it now with: {fix}",
            date(*t)
        ),
        Problem::Sha1Signature => format!(
            "{file} is signed with SHA-1 ({}), which current TLS clients refuse; reissue it with: {fix}",
            c.signature_algorithm
        ),
        Problem::SmallRsa(bits) => format!(
            "{file} has a {bits}-bit RSA key, which current TLS clients refuse as too weak; reissue it with: {fix}"
        ),
        Problem::KeyMismatch => format!(
            "the private key given with {file} does not belong to it, so every TLS handshake will fail; pass the key made with it, or reissue both with: {fix}"
        ),
        Problem::CaCert => format!(
            "{file} is a CA certificate (basicConstraints CA:TRUE), not a server certificate, so strict TLS clients will refuse it; give it to clients as cafile and issue a server certificate with: {fix}"
        ),
        Problem::NoServerAuth => format!(
            "{file} is not allowed for TLS servers (its extendedKeyUsage lacks serverAuth), so TLS clients will refuse it; reissue it with: {fix}"
        ),
    }
}

/// Warnings for the broker's start-up about its `certfile`/`keyfile`: one plain sentence
/// each, naming `cert_file` (e.g. `server.crt`) and ending with the exact `tern pki
/// server --host ...` command that reissues a proper certificate (the host names come from
/// the certificate's SANs, else its CN).
///
/// `chain` is the certfile's content (leaf first); `key` the keyfile's, when loaded.
pub fn server_cert_warnings(
    cert_file: &str,
    chain: &[CertificateDer<'_>],
    key: Option<&PrivateKeyDer<'_>>,
    now: OffsetDateTime,
) -> Vec<String> {
    let Some(leaf) = chain.first() else {
        return vec![format!(
            "{cert_file} holds no certificate; issue one with: tern pki server --host YOUR.BROKER.HOST"
        )];
    };
    let summary = match CertSummary::of(leaf) {
        Ok(s) => s,
        Err(e) => return vec![format!("{cert_file}: {e}")],
    };
    let key_match = key.and_then(|k| key_matches(leaf, k).ok());
    problems(&summary, key_match, now, true)
        .iter()
        .map(|p| server_sentence(p, cert_file, &summary))
        .collect()
}

/// Everything `tern pki inspect` shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspection {
    /// The certificates in the file, in order.
    pub certs: Vec<CertSummary>,
    /// The key given, if any.
    pub key: Option<KeyKind>,
    /// Whether the key given belongs to the first certificate.
    pub key_matches: Option<bool>,
    /// Plain-language warnings about the first certificate.
    pub warnings: Vec<String>,
}

fn inspect_sentence(p: &Problem, c: &CertSummary) -> String {
    let fix = reissue_command(c, matches!(p, Problem::SmallRsa(_)));
    match p {
        Problem::V1NoSan if c.is_ca || c.self_signed => format!(
            "this is an X.509 v{} certificate: it has no extensions, and rustls and other strict TLS clients refuse v1 certificates; make a new CA with: tern pki ca",
            c.version
        ),
        Problem::CaCert => format!(
            "this is a CA certificate (basicConstraints CA:TRUE) that also carries server names: use it only as cafile, and give the broker a server certificate made with: {fix}"
        ),
        other => server_sentence(other, "this certificate", c).replacen(
            "this certificate",
            "the certificate",
            1,
        ),
    }
}

/// Inspects a PEM file of one or more certificates and, optionally, a private key.
/// Warnings concern the first certificate.
pub fn inspect(
    cert_pem: &[u8],
    key_pem: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<Inspection, PkiError> {
    let ders = keys::load_certs(cert_pem)?;
    let certs = ders
        .iter()
        .map(CertSummary::of)
        .collect::<Result<Vec<_>, _>>()?;
    let (key, key_match) = match key_pem {
        Some(k) => {
            let der = keys::load_private_key(k)?;
            let m = ders.first().map(|c| key_matches(c, &der)).transpose()?;
            (Some(keys::key_kind(&der)?), m)
        }
        None => (None, None),
    };
    let warnings = certs
        .first()
        .map(|c| {
            problems(c, key_match, now, false)
                .iter()
                .map(|p| inspect_sentence(p, c))
                .collect()
        })
        .unwrap_or_default();
    Ok(Inspection {
        certs,
        key,
        key_matches: key_match,
        warnings,
    })
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  subject:    {}", self.subject)?;
        writeln!(f, "  issuer:     {}", self.issuer)?;
        let sans = if self.sans.is_empty() {
            "(none)".to_owned()
        } else {
            self.sans.join(", ")
        };
        writeln!(f, "  SANs:       {sans}")?;
        writeln!(
            f,
            "  valid:      {} to {}",
            date(self.not_before),
            date(self.not_after)
        )?;
        writeln!(f, "  serial:     {}", self.serial)?;
        writeln!(f, "  version:    {}", self.version)?;
        writeln!(f, "  key:        {}", self.key)?;
        writeln!(f, "  signature:  {}", self.signature_algorithm)?;
        writeln!(
            f,
            "  CA:         {}{}",
            if self.is_ca { "yes" } else { "no" },
            if self.self_signed {
                " (self-signed)"
            } else {
                ""
            }
        )?;
        if !self.usages.is_empty() {
            writeln!(f, "  usage:      {}", self.usages.join(", "))?;
        }
        let fp = &self.fingerprints;
        writeln!(
            f,
            "  {}",
            fp.format(FingerprintKind::Sha1, FingerprintFormat::Openssl)
        )?;
        writeln!(
            f,
            "  {}",
            fp.format(FingerprintKind::Sha256, FingerprintFormat::Openssl)
        )?;
        writeln!(
            f,
            "  SPKI {}",
            fp.format(FingerprintKind::Spki, FingerprintFormat::Openssl)
        )
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.certs.len();
        for (i, c) in self.certs.iter().enumerate() {
            writeln!(f, "certificate {} of {n}:", i + 1)?;
            write!(f, "{c}")?;
        }
        if let Some(k) = &self.key {
            let m = match self.key_matches {
                Some(true) => "matches the certificate",
                Some(false) => "does NOT match the certificate",
                None => "not compared",
            };
            writeln!(f, "private key: {k}, {m}")?;
        }
        if self.warnings.is_empty() {
            writeln!(f, "no warnings")
        } else {
            writeln!(f, "warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  - {w}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{self, CaOptions, CaSigner, ServerOptions};
    use time::Duration;

    fn signer() -> CaSigner {
        let made = issue::ca(&CaOptions::default()).unwrap();
        CaSigner::from_pem(made.cert_pem.as_bytes(), made.key_pem.as_bytes()).unwrap()
    }

    #[test]
    fn good_server_certificate_has_no_warnings() {
        let ca = signer();
        let s = issue::server(
            &ca,
            &ServerOptions {
                hosts: vec!["broker.example.com".into()],
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let key = keys::load_private_key(s.key_pem.as_bytes()).unwrap();
        let w = server_cert_warnings(
            "server.crt",
            std::slice::from_ref(&s.cert_der),
            Some(&key),
            OffsetDateTime::now_utc(),
        );
        assert!(w.is_empty(), "{w:?}");
        let i = inspect(
            s.cert_pem.as_bytes(),
            Some(s.key_pem.as_bytes()),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert_eq!(i.key_matches, Some(true));
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        let text = i.to_string();
        assert!(text.contains("DNS:broker.example.com"), "{text}");
        assert!(text.contains("sha1 Fingerprint="), "{text}");
    }

    #[test]
    fn dates_wrong_key_and_ca_as_server_are_reported() {
        let ca = signer();
        let s = issue::server(
            &ca,
            &ServerOptions {
                hosts: vec!["broker.example.com".into()],
                days: 10,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let other = issue::server(&ca, &ServerOptions::default()).unwrap();
        let wrong_key = keys::load_private_key(other.key_pem.as_bytes()).unwrap();
        let now = OffsetDateTime::now_utc();
        let w = server_cert_warnings(
            "server.crt",
            std::slice::from_ref(&s.cert_der),
            Some(&wrong_key),
            now,
        );
        assert!(w.iter().any(|x| x.contains("expires on")), "{w:?}");
        assert!(w.iter().any(|x| x.contains("does not belong")), "{w:?}");
        assert!(
            w.iter()
                .all(|x| x.ends_with("tern pki server --host broker.example.com")),
            "{w:?}"
        );
        let later = now + Duration::days(20);
        let w = server_cert_warnings("server.crt", std::slice::from_ref(&s.cert_der), None, later);
        assert!(w[0].starts_with("server.crt expired on"), "{w:?}");
        let earlier = now - Duration::days(3);
        let w = server_cert_warnings(
            "server.crt",
            std::slice::from_ref(&s.cert_der),
            None,
            earlier,
        );
        assert!(w[0].contains("not valid before"), "{w:?}");
        let w = server_cert_warnings("ca.crt", std::slice::from_ref(ca.cert_der()), None, now);
        assert!(w.iter().any(|x| x.contains("is a CA certificate")), "{w:?}");
        assert!(
            w.iter().all(|x| x.ends_with("--host YOUR.BROKER.HOST")),
            "{w:?}"
        );
    }

    const TUTORIAL_CERT: &str = include_str!("../testdata/tutorial-server.crt");
    const TUTORIAL_KEY: &str = include_str!("../testdata/tutorial-server.key");
    const TUTORIAL_CA: &str = include_str!("../testdata/tutorial-ca.crt");
    const TUTORIAL_CA_KEY: &str = include_str!("../testdata/tutorial-ca.key");

    fn tutorial_now() -> OffsetDateTime {
        let c = keys::load_certs(TUTORIAL_CERT.as_bytes()).unwrap();
        CertSummary::of(&c[0]).unwrap().not_before + Duration::days(1)
    }

    #[test]
    fn tutorial_v1_certificate_gets_the_reissue_sentence() {
        let chain = keys::load_certs(TUTORIAL_CERT.as_bytes()).unwrap();
        let key = keys::load_private_key(TUTORIAL_KEY.as_bytes()).unwrap();
        let w = server_cert_warnings("server.crt", &chain, Some(&key), tutorial_now());
        assert_eq!(
            w,
            vec![
                "server.crt is an X.509 v1 certificate with no subjectAltName, so strict TLS clients will refuse it; reissue it with: tern pki server --host broker.example.com"
            ]
        );
        let s = CertSummary::of(&chain[0]).unwrap();
        assert_eq!(s.version, 1);
        assert_eq!(s.key, KeyKind::Rsa { bits: 2048 });
        assert_eq!(s.signature_algorithm, "sha256WithRSAEncryption");
        assert!(signed_by(
            &chain[0],
            &keys::load_certs(TUTORIAL_CA.as_bytes()).unwrap()[0]
        ));
    }

    #[test]
    fn tutorial_ca_signs_a_proper_certificate() {
        let ca = CaSigner::from_pem(TUTORIAL_CA.as_bytes(), TUTORIAL_CA_KEY.as_bytes()).unwrap();
        let s = issue::server(
            &ca,
            &ServerOptions {
                hosts: vec!["broker.example.com".into()],
                key_type: crate::KeyType::Rsa2048,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        assert!(signed_by(&s.cert_der, ca.cert_der()));
        let sum = CertSummary::of(&s.cert_der).unwrap();
        assert_eq!(sum.issuer, CertSummary::of(ca.cert_der()).unwrap().subject);
        let key = keys::load_private_key(s.key_pem.as_bytes()).unwrap();
        let w = server_cert_warnings(
            "server.crt",
            std::slice::from_ref(&s.cert_der),
            Some(&key),
            OffsetDateTime::now_utc(),
        );
        assert!(w.is_empty(), "{w:?}");
    }

    const SHA1_CERT: &str = include_str!("../testdata/sha1-server.crt");
    const RSA1024_CERT: &str = include_str!("../testdata/rsa1024-server.crt");
    const NO_SAN_CERT: &str = include_str!("../testdata/nosan-server.crt");

    /// The broker's start-up warnings and `tern pki inspect`'s for a fixture.
    fn warnings_of(pem: &str) -> (Vec<String>, Vec<String>) {
        let chain = keys::load_certs(pem.as_bytes()).unwrap();
        let now = CertSummary::of(&chain[0]).unwrap().not_before + Duration::days(1);
        let server = server_cert_warnings("server.crt", &chain, None, now);
        let inspected = inspect(pem.as_bytes(), None, now).unwrap().warnings;
        (server, inspected)
    }

    #[test]
    fn sha1_signature_is_reported() {
        let (server, inspected) = warnings_of(SHA1_CERT);
        assert_eq!(
            server,
            vec![
                "server.crt is signed with SHA-1 (sha1WithRSAEncryption), which current TLS clients refuse; reissue it with: tern pki server --host broker.example.com"
            ]
        );
        assert_eq!(
            inspected,
            vec![
                "the certificate is signed with SHA-1 (sha1WithRSAEncryption), which current TLS clients refuse; reissue it with: tern pki server --host broker.example.com"
            ]
        );
    }

    #[test]
    fn weak_rsa_key_is_reported_with_an_rsa_2048_reissue() {
        let (server, inspected) = warnings_of(RSA1024_CERT);
        assert_eq!(
            server,
            vec![
                "server.crt has a 1024-bit RSA key, which current TLS clients refuse as too weak; reissue it with: tern pki server --host broker.example.com --key rsa-2048"
            ]
        );
        assert_eq!(inspected.len(), 1, "{inspected:?}");
        assert!(
            inspected[0].starts_with("the certificate has a 1024-bit RSA key"),
            "{inspected:?}"
        );
        let s = CertSummary::of(&keys::load_certs(RSA1024_CERT.as_bytes()).unwrap()[0]).unwrap();
        assert_eq!(s.key, KeyKind::Rsa { bits: 1024 });
    }

    #[test]
    fn v3_certificate_without_subject_alt_name_is_reported() {
        let (server, inspected) = warnings_of(NO_SAN_CERT);
        assert_eq!(
            server,
            vec![
                "server.crt has no subjectAltName (only libmosquitto falls back to its CN 'broker.example.com'), so strict TLS clients will refuse it; reissue it with: tern pki server --host broker.example.com"
            ]
        );
        assert_eq!(inspected.len(), 1, "{inspected:?}");
        assert!(
            inspected[0].starts_with("the certificate has no subjectAltName"),
            "{inspected:?}"
        );
        let s = CertSummary::of(&keys::load_certs(NO_SAN_CERT.as_bytes()).unwrap()[0]).unwrap();
        assert_eq!(s.version, 3);
    }

    #[test]
    fn signed_by_checks_name_and_signature() {
        let made = issue::ca(&CaOptions::default()).unwrap();
        let ca = CaSigner::from_pem(made.cert_pem.as_bytes(), made.key_pem.as_bytes()).unwrap();
        let other = issue::ca(&CaOptions::default()).unwrap();
        let s = issue::server(&ca, &ServerOptions::default()).unwrap();
        assert!(signed_by(&s.cert_der, ca.cert_der()));
        assert!(!signed_by(&s.cert_der, &other.cert_der));
    }

    #[test]
    fn ca_inspects_cleanly() {
        let made = issue::ca(&CaOptions::default()).unwrap();
        let i = inspect(
            made.cert_pem.as_bytes(),
            Some(made.key_pem.as_bytes()),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
        assert!(i.certs[0].is_ca && i.certs[0].self_signed);
        assert_eq!(i.certs[0].version, 3);
    }
}
