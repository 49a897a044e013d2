//! Making certificates: the CA, server and client certificates, and loading an existing CA
//! (tern's own or one made with the tutorial's `openssl` commands) to sign with.
//!
//! Everything here works in memory and returns PEM; writing files is [`crate::store`]'s job.
//! The current time is passed in through the options so tests can fix it.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::PkiError;
use crate::keys::{self, KeyType};

/// How far notBefore is set back from now for leaf certificates, so devices whose clocks
/// are a little late (no RTC, SNTP not yet synced across a time zone mistake) still accept
/// a certificate issued minutes ago.
pub const BACKDATE: Duration = Duration::hours(24);

/// Options for [`ca`].
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// Subject common name. Default `tern CA`.
    pub common_name: String,
    /// Lifetime in days. Default 3650.
    pub days: u32,
    /// Key type. Default ECDSA P-256.
    pub key_type: KeyType,
    /// The time of issue.
    pub now: OffsetDateTime,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            common_name: "tern CA".to_owned(),
            days: 3650,
            key_type: KeyType::default(),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// Options for [`server`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// DNS names for the subjectAltName. The first one is also the CN. When both `hosts`
    /// and `ips` are empty, [`default_server_names`] is used.
    pub hosts: Vec<String>,
    /// IP addresses for the subjectAltName.
    pub ips: Vec<IpAddr>,
    /// Lifetime in days. Default 825 (the longest lifetime Apple platforms accept).
    pub days: u32,
    /// Key type. Default ECDSA P-256; use [`KeyType::Rsa2048`] for ESP8266 devices
    /// (BearSSL verifies RSA signatures several times faster than ECDSA on that chip).
    pub key_type: KeyType,
    /// The time of issue; notBefore is this minus [`BACKDATE`].
    pub now: OffsetDateTime,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            ips: Vec::new(),
            days: 825,
            key_type: KeyType::default(),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// Options for [`client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Lifetime in days. Default 825.
    pub days: u32,
    /// Key type. Default ECDSA P-256; RSA 2048 for ESP8266 clients.
    pub key_type: KeyType,
    /// The time of issue; notBefore is this minus [`BACKDATE`].
    pub now: OffsetDateTime,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            days: 825,
            key_type: KeyType::default(),
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// A freshly issued certificate with its new private key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub key_pem: String,
    /// The serial number in upper-case hex, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// The subject common name.
    pub common_name: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// A CA certificate and its key, ready to sign.
#[derive(Debug)]
pub struct CaSigner {
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
    subject: String,
}

impl CaSigner {
    /// Loads a CA from its PEM certificate and PEM private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// Accepts CAs made by `openssl req -new -x509` even without keyUsage. Refuses a
    /// certificate that says it is not a CA, one whose keyUsage lacks keyCertSign, and a
    /// key that does not belong to the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, PkiError> {
        let cert_der = keys::load_certs(cert_pem)?
            .into_iter()
            .next()
            .ok_or(PkiError::NoPem {
                expected: "a certificate",
            })?;
        let key_der = keys::load_private_key(key_pem)?;
        Self::from_der(cert_der, &key_der)
    }

    /// Loads a CA from a DER certificate and a private key.
    pub fn from_der(
        cert_der: CertificateDer<'static>,
        key_der: &PrivateKeyDer<'_>,
    ) -> Result<Self, PkiError> {
        let (_, x509) =
            X509Certificate::from_der(cert_der.as_ref()).map_err(|e| PkiError::BadCertificate {
                reason: e.to_string(),
            })?;
        let subject = x509.subject().to_string();
        if let Ok(Some(bc)) = x509.basic_constraints()
            && !bc.value.ca
        {
            return Err(PkiError::NotACa {
                subject,
                reason: "its basicConstraints say CA:FALSE",
            });
        }
        if let Ok(Some(ku)) = x509.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(PkiError::NotACa {
                subject,
                reason: "its keyUsage does not include keyCertSign",
            });
        }
        let key = keys::signing_key(key_der)?;
        if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch {
                subject,
                reissue: "ca --force",
            });
        }
        let cert_pem = keys::to_pem("CERTIFICATE", cert_der.as_ref());
        Ok(Self {
            cert_der,
            cert_pem,
            key,
            subject,
        })
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's subject, e.g. `CN=tern CA`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// An rcgen issuer that takes its name and key identifier from the CA certificate, so
    /// the authorityKeyIdentifier of what it signs matches the CA's subjectKeyIdentifier
    /// whoever made the CA.
    pub(crate) fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Ok(Issuer::from_ca_cert_der(&self.cert_der, &self.key)?)
    }

    /// The subjectKeyIdentifier of the CA certificate, or the one rcgen would derive.
    pub(crate) fn key_identifier(&self) -> rcgen::KeyIdMethod {
        let from_cert = X509Certificate::from_der(self.cert_der.as_ref())
            .ok()
            .and_then(|(_, x509)| {
                x509.iter_extensions()
                    .find_map(|ext| match ext.parsed_extension() {
                        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                            Some(id.0.to_vec())
                        }
                        _ => None,
                    })
            });
        match from_cert {
            Some(id) => rcgen::KeyIdMethod::PreSpecified(id),
            None => {
                // What OpenSSL computes: SHA-1 of the subjectPublicKey bits.
                use sha1::Digest as _;
                rcgen::KeyIdMethod::PreSpecified(
                    sha1::Sha1::digest(self.key.public_key_raw()).to_vec(),
                )
            }
        }
    }
}

/// A random positive 128-bit serial number and its hex form.
fn new_serial() -> Result<(SerialNumber, String), PkiError> {
    let mut bytes = [0u8; 16];
    keys::random_bytes(&mut bytes)?;
    // Positive, and with a non-zero first nibble so the hex has no leading zero to strip.
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    Ok((
        SerialNumber::from_slice(&bytes),
        keys::hex_lower(&bytes).to_uppercase(),
    ))
}

fn common_name(params: &mut CertificateParams, cn: &str) {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
}

fn finish(
    params: &CertificateParams,
    key: &KeyPair,
    serial: String,
    cn: &str,
    cert_der: CertificateDer<'static>,
) -> Issued {
    Issued {
        cert_pem: keys::to_pem("CERTIFICATE", cert_der.as_ref()),
        cert_der,
        key_pem: key.serialize_pem(),
        serial,
        common_name: cn.to_owned(),
        not_after: params.not_after,
    }
}

/// Makes a CA: a new key and a self-signed certificate with basicConstraints CA:TRUE
/// (critical), keyUsage keyCertSign + cRLSign (critical) and a subjectKeyIdentifier.
/// notBefore is set back by [`BACKDATE`] like the leaf certificates.
pub fn ca(opts: &CaOptions) -> Result<Issued, PkiError> {
    let key = keys::generate(opts.key_type)?;
    let mut params = CertificateParams::default();
    common_name(&mut params, &opts.common_name);
    let (serial, serial_hex) = new_serial()?;
    params.serial_number = Some(serial);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = opts.now - BACKDATE;
    params.not_after = opts.now + Duration::days(i64::from(opts.days));
    let cert = params.self_signed(&key)?;
    Ok(finish(
        &params,
        &key,
        serial_hex,
        &opts.common_name,
        cert.der().clone(),
    ))
}

fn leaf_params(
    cn: &str,
    days: u32,
    key_type: KeyType,
    now: OffsetDateTime,
    eku: ExtendedKeyUsagePurpose,
) -> Result<(CertificateParams, String), PkiError> {
    let mut params = CertificateParams::default();
    common_name(&mut params, cn);
    let (serial, serial_hex) = new_serial()?;
    params.serial_number = Some(serial);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = if key_type.is_rsa() {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(days));
    Ok((params, serial_hex))
}

/// The names a server certificate gets when none are given: `localhost`, `127.0.0.1`,
/// `::1` and this machine's host name (from `/proc/sys/kernel/hostname`, `/etc/hostname`
/// or `$HOSTNAME`) when it is a valid DNS name other than `localhost`.
pub fn default_server_names() -> (Vec<String>, Vec<IpAddr>) {
    let mut hosts = vec!["localhost".to_owned()];
    if let Some(h) = machine_hostname()
        && h != "localhost"
        && valid_dns_name(&h)
    {
        hosts.push(h);
    }
    let ips = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    (hosts, ips)
}

fn machine_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
}

/// Whether `name` can go in a dNSName subjectAltName: labels of letters, digits and `-`
/// (a leading `*.` wildcard allowed), at most 253 characters.
pub fn valid_dns_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Makes a server certificate signed by `ca`: subjectAltName with every host and IP, CN =
/// the first host (or IP), extendedKeyUsage serverAuth, keyUsage digitalSignature
/// (+ keyEncipherment for RSA), authorityKeyIdentifier, notBefore set back by
/// [`BACKDATE`].
///
/// For ESP8266 devices pick [`KeyType::Rsa2048`]: BearSSL is much faster with RSA.
pub fn server(ca: &CaSigner, opts: &ServerOptions) -> Result<Issued, PkiError> {
    let (hosts, ips) = if opts.hosts.is_empty() && opts.ips.is_empty() {
        default_server_names()
    } else {
        (opts.hosts.clone(), opts.ips.clone())
    };
    for h in &hosts {
        if !valid_dns_name(h) {
            return Err(PkiError::InvalidName { name: h.clone() });
        }
    }
    let cn = hosts
        .first()
        .cloned()
        .or_else(|| ips.first().map(IpAddr::to_string))
        .unwrap_or_else(|| "localhost".to_owned());
    let (mut params, serial) = leaf_params(
        &cn,
        opts.days,
        opts.key_type,
        opts.now,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let mut sans = Vec::with_capacity(hosts.len() + ips.len());
    for h in &hosts {
        let name = h
            .clone()
            .try_into()
            .map_err(|_| PkiError::InvalidName { name: h.clone() })?;
        sans.push(SanType::DnsName(name));
    }
    sans.extend(ips.iter().copied().map(SanType::IpAddress));
    params.subject_alt_names = sans;
    let key = keys::generate(opts.key_type)?;
    let cert = params.signed_by(&key, &ca.issuer()?)?;
    Ok(finish(&params, &key, serial, &cn, cert.der().clone()))
}

/// Makes a client certificate signed by `ca`: CN = `name`, extendedKeyUsage clientAuth.
/// Mosquitto's `use_identity_as_username` takes the CN as the MQTT user name.
pub fn client(ca: &CaSigner, name: &str, opts: &ClientOptions) -> Result<Issued, PkiError> {
    let (params, serial) = leaf_params(
        name,
        opts.days,
        opts.key_type,
        opts.now,
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let key = keys::generate(opts.key_type)?;
    let cert = params.signed_by(&key, &ca.issuer()?)?;
    Ok(finish(&params, &key, serial, name, cert.der().clone()))
}

/// A PKCS#12 bundle of a client certificate, its key and the CA, protected by `password`
/// (PBES2 with AES-256 and HMAC-SHA-256, readable by OpenSSL 3 and current browsers).
pub fn pkcs12(issued: &Issued, ca: &CaSigner, password: &str) -> Result<Vec<u8>, PkiError> {
    let p12 = |e: p12_keystore::error::Error| PkiError::Pkcs12(e.to_string());
    let key_der = keys::load_private_key(issued.key_pem.as_bytes())?;
    let pkcs8 = keys::to_pkcs8(&key_der)?;
    let leaf = p12_keystore::Certificate::from_der(issued.cert_der.as_ref()).map_err(p12)?;
    let root = p12_keystore::Certificate::from_der(ca.cert_der().as_ref()).map_err(p12)?;
    let key = p12_keystore::PrivateKey::from_der(&pkcs8).map_err(p12)?;
    let mut local_id = [0u8; 20];
    keys::random_bytes(&mut local_id)?;
    let chain = p12_keystore::PrivateKeyChain::new(local_id.to_vec(), key, [leaf, root]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        &issued.common_name,
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    store.writer(password).write().map_err(p12)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
        X509Certificate::from_der(der.as_ref()).unwrap().1
    }

    fn test_ca(key_type: KeyType) -> CaSigner {
        let made = ca(&CaOptions {
            key_type,
            ..CaOptions::default()
        })
        .unwrap();
        CaSigner::from_pem(made.cert_pem.as_bytes(), made.key_pem.as_bytes()).unwrap()
    }

    #[test]
    fn ca_has_the_required_extensions() {
        let made = ca(&CaOptions::default()).unwrap();
        let x = parse(&made.cert_der);
        let bc = x.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        let ku = x.key_usage().unwrap().unwrap();
        assert!(ku.value.key_cert_sign() && ku.value.crl_sign());
        assert!(x.iter_extensions().any(|e| matches!(
            e.parsed_extension(),
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
        )));
        assert_eq!(x.subject().to_string(), "CN=tern CA");
        let days = (x.validity().not_after.to_datetime() - x.validity().not_before.to_datetime())
            .whole_days();
        assert_eq!(days, 3651); // 3650 days plus the day set back
    }

    #[test]
    fn server_certificate_names_and_usages() {
        let signer = test_ca(KeyType::EcdsaP256);
        let now = OffsetDateTime::now_utc();
        let made = server(
            &signer,
            &ServerOptions {
                hosts: vec!["broker.example.com".into(), "mqtt.local".into()],
                ips: vec!["192.0.2.7".parse().unwrap()],
                now,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let x = parse(&made.cert_der);
        assert_eq!(x.subject().to_string(), "CN=broker.example.com");
        assert_eq!(x.issuer().to_string(), "CN=tern CA");
        let san = x.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names.len(), 3);
        let eku = x.extended_key_usage().unwrap().unwrap();
        assert!(eku.value.server_auth && !eku.value.client_auth);
        let ku = x.key_usage().unwrap().unwrap();
        assert!(ku.value.digital_signature() && !ku.value.key_encipherment());
        let nb = x.validity().not_before.to_datetime();
        assert!(((now - nb) - BACKDATE).whole_seconds().abs() <= 1);
        assert!(x.version() == x509_parser::x509::X509Version::V3);
    }

    #[test]
    fn default_names_are_loopback_and_the_host_name_for_825_days() {
        use x509_parser::extensions::GeneralName;
        let signer = test_ca(KeyType::EcdsaP256);
        let now = OffsetDateTime::now_utc();
        let made = server(
            &signer,
            &ServerOptions {
                now,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let x = parse(&made.cert_der);
        let san = x.subject_alternative_name().unwrap().unwrap();
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                GeneralName::IPAddress(b) => ips.push(match b.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                    _ => IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                }),
                other => panic!("unexpected name {other:?}"),
            }
        }
        // This machine's name, read here the way a user would look it up.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
            .to_owned();
        let mut want_dns = vec!["localhost".to_owned()];
        if host != "localhost" && valid_dns_name(&host) {
            want_dns.push(host);
        }
        assert_eq!(dns, want_dns);
        assert_eq!(
            ips,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse::<IpAddr>().unwrap()
            ]
        );
        assert_eq!(made.common_name, "localhost");
        // 825 days from now, valid from BACKDATE before now.
        let v = x.validity();
        let (nb, na) = (v.not_before.to_datetime(), v.not_after.to_datetime());
        assert!(((na - now) - Duration::days(825)).whole_seconds().abs() <= 1);
        assert!(((now - nb) - BACKDATE).whole_seconds().abs() <= 1);
        // A given lifetime is kept.
        let short = server(
            &signer,
            &ServerOptions {
                days: 30,
                now,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let na = parse(&short.cert_der).validity().not_after.to_datetime();
        assert!(((na - now) - Duration::days(30)).whole_seconds().abs() <= 1);
    }

    #[test]
    fn rsa_server_has_key_encipherment() {
        let signer = test_ca(KeyType::EcdsaP256);
        let made = server(
            &signer,
            &ServerOptions {
                hosts: vec!["esp.local".into()],
                key_type: KeyType::Rsa2048,
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let x = parse(&made.cert_der);
        assert!(x.key_usage().unwrap().unwrap().value.key_encipherment());
        assert!(made.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn client_certificate_has_client_auth() {
        let signer = test_ca(KeyType::EcdsaP256);
        let made = client(&signer, "sensor-1", &ClientOptions::default()).unwrap();
        let x = parse(&made.cert_der);
        assert_eq!(x.subject().to_string(), "CN=sensor-1");
        assert!(x.extended_key_usage().unwrap().unwrap().value.client_auth);
        let p12 = pkcs12(&made, &signer, "pw").unwrap();
        let ks = p12_keystore::KeyStore::from_pkcs12(
            &p12,
            "pw",
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .unwrap();
        assert_eq!(ks.entries_len(), 1);
    }

    #[test]
    fn invalid_host_is_refused_with_advice() {
        let signer = test_ca(KeyType::EcdsaP256);
        let err = server(
            &signer,
            &ServerOptions {
                hosts: vec!["bad host".into()],
                ..ServerOptions::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--ip"), "{err}");
    }

    #[test]
    fn mismatched_ca_key_is_refused() {
        let a = ca(&CaOptions::default()).unwrap();
        let b = ca(&CaOptions::default()).unwrap();
        let err = CaSigner::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
    }

    #[test]
    fn leaf_cannot_sign() {
        let signer = test_ca(KeyType::EcdsaP256);
        let leaf = client(&signer, "x", &ClientOptions::default()).unwrap();
        let err =
            CaSigner::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap_err();
        assert!(matches!(err, PkiError::NotACa { .. }), "{err}");
    }

    #[test]
    fn dns_name_validation() {
        assert!(valid_dns_name("broker.example.com"));
        assert!(valid_dns_name("*.example.com"));
        assert!(valid_dns_name("localhost"));
        assert!(!valid_dns_name("bad host"));
        assert!(!valid_dns_name("-x.com"));
        assert!(!valid_dns_name(""));
        assert!(!valid_dns_name("a..b"));
    }
}
