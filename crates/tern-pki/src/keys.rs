//! Private keys and certificates in PEM: generation (ECDSA with ring, RSA with the `rsa`
//! crate because ring cannot generate RSA keys), loading in every format OpenSSL writes
//! (PKCS#8, PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`), and describing what a key is.
//! It does no file I/O: callers pass bytes.

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::der;
use crate::error::PkiError;

/// The kinds of key tern generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256 signatures: small and fast for the broker.
    #[default]
    EcdsaP256,
    /// RSA 2048 bits: the one to pick for ESP8266 devices, whose BearSSL verifies RSA faster
    /// than ECDSA.
    Rsa2048,
    /// RSA 4096 bits: slow on every microcontroller; for CAs that must last.
    Rsa4096,
}

impl KeyType {
    /// The name used on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether this is an RSA key type.
    pub const fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa4096)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ecdsa-p256" | "ecdsa" | "ec" | "p256" | "p-256" => Ok(Self::EcdsaP256),
            "rsa-2048" | "rsa" | "rsa2048" => Ok(Self::Rsa2048),
            "rsa-4096" | "rsa4096" => Ok(Self::Rsa4096),
            _ => Err(PkiError::UnknownKeyType(s.to_owned())),
        }
    }
}

/// What a key is, as read from a private key or a certificate's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size.
        bits: usize,
    },
    /// ECDSA on a named curve.
    Ecdsa {
        /// "P-256", "P-384", "P-521" or the curve's OID.
        curve: String,
    },
    /// Ed25519.
    Ed25519,
    /// Anything else, described by its algorithm OID.
    Other(String),
}

impl KeyKind {
    /// Whether tern accepts this key for TLS: RSA 2048..=4096 or ECDSA P-256/P-384.
    pub fn is_supported(&self) -> bool {
        match self {
            Self::Rsa { bits } => (2048..=4096).contains(bits),
            Self::Ecdsa { curve } => curve == "P-256" || curve == "P-384",
            Self::Ed25519 | Self::Other(_) => false,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rsa { bits } => write!(f, "RSA {bits} bits"),
            Self::Ecdsa { curve } => write!(f, "ECDSA {curve}"),
            Self::Ed25519 => f.write_str("Ed25519"),
            Self::Other(oid) => write!(f, "key algorithm {oid}"),
        }
    }
}

pub(crate) fn curve_name(oid: &[u8]) -> String {
    match oid {
        der::OID_P256 => "P-256".to_owned(),
        der::OID_P384 => "P-384".to_owned(),
        der::OID_P521 => "P-521".to_owned(),
        other => format!("curve OID {}", hex_lower(other)),
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Encodes DER as PEM with `\n` line endings and 64-column lines, as OpenSSL writes it.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let cfg = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der.to_vec()), cfg)
}

fn describe_label(label: &str) -> &'static str {
    match label {
        "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" => "a certificate",
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => "a private key",
        "ENCRYPTED PRIVATE KEY" => "an encrypted private key",
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => "a certificate signing request (CSR)",
        "X509 CRL" => "a certificate revocation list (CRL)",
        "PUBLIC KEY" | "RSA PUBLIC KEY" => "a public key",
        "EC PARAMETERS" => "EC parameters",
        "PKCS7" => "a PKCS#7 bundle",
        _ => "an unrecognised PEM block",
    }
}

fn parse_pem(bytes: &[u8], expected: &'static str) -> Result<Vec<pem::Pem>, PkiError> {
    match pem::parse_many(bytes) {
        Ok(blocks) if !blocks.is_empty() => Ok(blocks),
        Ok(_) => Err(PkiError::NoPem { expected }),
        Err(e) => Err(if bytes.first() == Some(&0x30) {
            PkiError::NoPem { expected }
        } else {
            PkiError::BadKey {
                reason: format!("the PEM text is damaged: {e}"),
            }
        }),
    }
}

fn found_list(blocks: &[pem::Pem]) -> String {
    let mut found: Vec<&str> = blocks.iter().map(|b| describe_label(b.tag())).collect();
    found.dedup();
    found.join(" and ")
}

/// Every `CERTIFICATE` block of a PEM file, in order (leaf first in a chain file).
///
/// Errors name what the file holds instead, e.g. "the file holds a private key, not a
/// certificate".
pub fn load_certs(pem_bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let blocks = parse_pem(pem_bytes, "a certificate")?;
    let certs: Vec<CertificateDer<'static>> = blocks
        .iter()
        .filter(|b| {
            matches!(
                b.tag(),
                "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
            )
        })
        .map(|b| CertificateDer::from(b.contents().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(PkiError::WrongPem {
            expected: "a certificate",
            found: found_list(&blocks),
            expected_file: "certificate file (e.g. server.crt)",
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file, in the format it was written in (PKCS#8, PKCS#1 or
/// SEC1), checked to be usable by rustls: RSA 2048 to 4096 bits, ECDSA P-256 or P-384.
///
/// Errors name what the file holds instead ("the file holds a certificate, not a private
/// key"), and explain encrypted or unsupported keys.
pub fn load_private_key(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, PkiError> {
    let key = parse_private_key(pem_bytes)?;
    let kind = key_kind(&key)?;
    if !kind.is_supported() {
        return Err(PkiError::UnsupportedKey {
            found: kind.to_string(),
        });
    }
    rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| PkiError::BadKey {
        reason: e.to_string(),
    })?;
    Ok(key)
}

fn parse_private_key(pem_bytes: &[u8]) -> Result<PrivateKeyDer<'static>, PkiError> {
    let blocks = parse_pem(pem_bytes, "a private key")?;
    for b in &blocks {
        let encrypted_legacy = b
            .headers()
            .get("Proc-Type")
            .is_some_and(|v| v.contains("ENCRYPTED"));
        let der = b.contents().to_vec();
        match b.tag() {
            "ENCRYPTED PRIVATE KEY" => return Err(PkiError::EncryptedKey),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" if encrypted_legacy => {
                return Err(PkiError::EncryptedKey);
            }
            "PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der))),
            "RSA PRIVATE KEY" => return Ok(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der))),
            "EC PRIVATE KEY" => return Ok(PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der))),
            _ => {}
        }
    }
    Err(PkiError::WrongPem {
        expected: "a private key",
        found: found_list(&blocks),
        expected_file: "key file (e.g. server.key)",
    })
}

fn bad(reason: &str) -> PkiError {
    PkiError::BadKey {
        reason: reason.to_owned(),
    }
}

fn rsa_bits_from_pkcs1(pkcs1: &[u8]) -> Result<usize, PkiError> {
    let mut outer = der::Reader::new(pkcs1);
    let seq = outer
        .expect(der::SEQUENCE)
        .ok_or_else(|| bad("RSAPrivateKey is not a SEQUENCE"))?;
    let mut r = der::Reader::new(seq);
    r.expect(der::INTEGER)
        .ok_or_else(|| bad("RSAPrivateKey has no version"))?;
    let modulus = r
        .expect(der::INTEGER)
        .ok_or_else(|| bad("RSAPrivateKey has no modulus"))?;
    Ok(der::integer_bits(modulus))
}

/// Curve OID and whether the SEC1 ECPrivateKey has its parameters.
fn sec1_curve(sec1: &[u8]) -> Result<Option<Vec<u8>>, PkiError> {
    let mut outer = der::Reader::new(sec1);
    let seq = outer
        .expect(der::SEQUENCE)
        .ok_or_else(|| bad("ECPrivateKey is not a SEQUENCE"))?;
    let mut r = der::Reader::new(seq);
    r.expect(der::INTEGER)
        .ok_or_else(|| bad("ECPrivateKey has no version"))?;
    let private = r
        .expect(der::OCTET_STRING)
        .ok_or_else(|| bad("ECPrivateKey has no private key"))?;
    while let Some(t) = r.next_tlv() {
        if t.tag == der::CONTEXT_0 {
            let oid = der::Reader::new(t.content)
                .expect(der::OID)
                .ok_or_else(|| bad("ECPrivateKey parameters are not a named curve"))?;
            return Ok(Some(oid.to_vec()));
        }
    }
    // No parameters: infer the curve from the private scalar's length.
    Ok(match private.len() {
        32 => Some(der::OID_P256.to_vec()),
        48 => Some(der::OID_P384.to_vec()),
        _ => None,
    })
}

/// What a private key is (algorithm and size), whatever its PEM format.
pub fn key_kind(key: &PrivateKeyDer<'_>) -> Result<KeyKind, PkiError> {
    match key {
        PrivateKeyDer::Pkcs1(k) => Ok(KeyKind::Rsa {
            bits: rsa_bits_from_pkcs1(k.secret_pkcs1_der())?,
        }),
        PrivateKeyDer::Sec1(k) => Ok(match sec1_curve(k.secret_sec1_der())? {
            Some(oid) => KeyKind::Ecdsa {
                curve: curve_name(&oid),
            },
            None => KeyKind::Ecdsa {
                curve: "unknown curve".to_owned(),
            },
        }),
        PrivateKeyDer::Pkcs8(k) => {
            let mut outer = der::Reader::new(k.secret_pkcs8_der());
            let seq = outer
                .expect(der::SEQUENCE)
                .ok_or_else(|| bad("PKCS#8 key is not a SEQUENCE"))?;
            let mut r = der::Reader::new(seq);
            r.expect(der::INTEGER)
                .ok_or_else(|| bad("PKCS#8 key has no version"))?;
            let alg = r
                .expect(der::SEQUENCE)
                .ok_or_else(|| bad("PKCS#8 key has no algorithm"))?;
            let inner = r
                .expect(der::OCTET_STRING)
                .ok_or_else(|| bad("PKCS#8 key has no key data"))?;
            let mut a = der::Reader::new(alg);
            let oid = a
                .expect(der::OID)
                .ok_or_else(|| bad("PKCS#8 algorithm has no OID"))?;
            match oid {
                der::OID_RSA_ENCRYPTION => Ok(KeyKind::Rsa {
                    bits: rsa_bits_from_pkcs1(inner)?,
                }),
                der::OID_EC_PUBLIC_KEY => {
                    let curve = match a.expect(der::OID) {
                        Some(c) => curve_name(c),
                        None => "unknown curve".to_owned(),
                    };
                    Ok(KeyKind::Ecdsa { curve })
                }
                der::OID_ED25519 => Ok(KeyKind::Ed25519),
                other => Ok(KeyKind::Other(hex_lower(other))),
            }
        }
        _ => Err(bad("unknown private key format")),
    }
}

/// Rewraps any supported private key as PKCS#8, the only format rcgen with ring loads.
pub(crate) fn to_pkcs8(key: &PrivateKeyDer<'_>) -> Result<Vec<u8>, PkiError> {
    let version = der::tlv(der::INTEGER, &[0]);
    match key {
        PrivateKeyDer::Pkcs8(k) => Ok(k.secret_pkcs8_der().to_vec()),
        PrivateKeyDer::Pkcs1(k) => {
            let alg = der::sequence(&[
                &der::tlv(der::OID, der::OID_RSA_ENCRYPTION),
                &der::tlv(der::NULL, &[]),
            ]);
            Ok(der::sequence(&[
                &version,
                &alg,
                &der::tlv(der::OCTET_STRING, k.secret_pkcs1_der()),
            ]))
        }
        PrivateKeyDer::Sec1(k) => {
            let curve = sec1_curve(k.secret_sec1_der())?
                .ok_or_else(|| bad("the EC key does not say which curve it is on"))?;
            let alg = der::sequence(&[
                &der::tlv(der::OID, der::OID_EC_PUBLIC_KEY),
                &der::tlv(der::OID, &curve),
            ]);
            Ok(der::sequence(&[
                &version,
                &alg,
                &der::tlv(der::OCTET_STRING, k.secret_sec1_der()),
            ]))
        }
        _ => Err(bad("unknown private key format")),
    }
}

/// An rcgen signing key from any supported private key.
pub(crate) fn signing_key(key: &PrivateKeyDer<'_>) -> Result<rcgen::KeyPair, PkiError> {
    let kind = key_kind(key)?;
    if !kind.is_supported() {
        return Err(PkiError::UnsupportedKey {
            found: kind.to_string(),
        });
    }
    let pkcs8 = to_pkcs8(key)?;
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    rcgen::KeyPair::try_from(&der).map_err(|e| PkiError::BadKey {
        reason: e.to_string(),
    })
}

/// Adapts ring's system random generator (through rustls) to the `rand_core` traits the
/// `rsa` crate wants.
struct SystemRng;

#[derive(Debug, thiserror::Error)]
#[error("system random generator failed")]
struct RngError;

impl rsa::rand_core::TryRng for SystemRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        random_bytes(dst).map_err(|_| RngError)
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRng {}

/// Fills `dst` from the operating system's random generator (via ring).
pub(crate) fn random_bytes(dst: &mut [u8]) -> Result<(), PkiError> {
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(dst)
        .map_err(|_| PkiError::Random)
}

/// Generates a new key pair of the given type.
pub(crate) fn generate(key_type: KeyType) -> Result<rcgen::KeyPair, PkiError> {
    match key_type {
        KeyType::EcdsaP256 => Ok(rcgen::KeyPair::generate_for(
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )?),
        KeyType::Rsa2048 | KeyType::Rsa4096 => {
            use rsa::pkcs8::EncodePrivateKey;
            let bits = if key_type == KeyType::Rsa2048 {
                2048
            } else {
                4096
            };
            let key = rsa::PrivateKey::new(&mut SystemRng, bits)
                .map_err(|e| PkiError::Generate(format!("RSA key generation failed: {e}")))?;
            let doc = key
                .to_pkcs8_der()
                .map_err(|e| PkiError::Generate(format!("RSA key encoding failed: {e}")))?;
            let der = PrivatePkcs8KeyDer::from(doc.as_bytes().to_vec());
            rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
                .map_err(PkiError::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    #[test]
    fn key_type_names_round_trip() {
        for t in [KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Rsa4096] {
            assert_eq!(t.as_str().parse::<KeyType>().unwrap(), t);
        }
        assert!("dsa".parse::<KeyType>().is_err());
    }

    #[test]
    fn certificate_given_as_key_is_named() {
        let err = load_private_key(CERT_PEM.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("the file holds a certificate, not a private key"),
            "{err}"
        );
    }

    #[test]
    fn key_given_as_certificate_is_named() {
        let kp = generate(KeyType::EcdsaP256).unwrap();
        let err = load_certs(kp.serialize_pem().as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("the file holds a private key, not a certificate"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_encrypted_inputs_explain_themselves() {
        let err = load_private_key(b"hello").unwrap_err();
        assert!(err.to_string().contains("no PEM data found"), "{err}");
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = load_private_key(enc.as_bytes()).unwrap_err();
        assert!(matches!(err, PkiError::EncryptedKey));
    }

    #[test]
    fn generated_ecdsa_key_loads_and_is_described() {
        let kp = generate(KeyType::EcdsaP256).unwrap();
        let key = load_private_key(kp.serialize_pem().as_bytes()).unwrap();
        assert_eq!(
            key_kind(&key).unwrap(),
            KeyKind::Ecdsa {
                curve: "P-256".into()
            }
        );
    }

    #[test]
    fn p384_is_accepted_small_rsa_and_ed25519_are_not() {
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let key = load_private_key(p384.serialize_pem().as_bytes()).unwrap();
        assert_eq!(
            key_kind(&key).unwrap(),
            KeyKind::Ecdsa {
                curve: "P-384".into()
            }
        );
        signing_key(&key).unwrap();

        use rsa::pkcs8::EncodePrivateKey;
        let small = rsa::PrivateKey::new(&mut SystemRng, 1024).unwrap();
        let der = small.to_pkcs8_der().unwrap();
        let pem = to_pem("PRIVATE KEY", der.as_bytes());
        let err = load_private_key(pem.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("RSA 1024 bits"), "{err}");
        assert!(err.to_string().contains("--key rsa-2048"), "{err}");

        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let err = load_private_key(ed.serialize_pem().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("Ed25519"), "{err}");
    }

    #[test]
    fn pkcs1_rewrapped_as_pkcs8_is_loadable() {
        let kp = generate(KeyType::Rsa2048).unwrap();
        // Extract the PKCS#1 structure from PKCS#8 and rewrap it.
        let pkcs8 = kp.serialize_der();
        let mut r = der::Reader::new(&pkcs8);
        let seq = r.expect(der::SEQUENCE).unwrap();
        let mut r = der::Reader::new(seq);
        r.next_tlv().unwrap();
        r.next_tlv().unwrap();
        let pkcs1 = r.expect(der::OCTET_STRING).unwrap().to_vec();
        let pem = to_pem("RSA PRIVATE KEY", &pkcs1);
        let key = load_private_key(pem.as_bytes()).unwrap();
        assert!(matches!(key, PrivateKeyDer::Pkcs1(_)));
        assert_eq!(key_kind(&key).unwrap(), KeyKind::Rsa { bits: 2048 });
        let back = signing_key(&key).unwrap();
        assert_eq!(back.public_key_raw(), kp.public_key_raw());
    }
}
