//! Fingerprints of a certificate, in the forms devices and OpenSSL use.
//!
//! - SHA-1 of the leaf certificate's DER: what ESP8266 `WiFiClientSecure::setFingerprint`
//!   compares. It changes on every renewal.
//! - SHA-256 of the leaf DER: for ESP32 and `openssl x509 -fingerprint -sha256`.
//! - SHA-256 of the SubjectPublicKeyInfo (the HPKP `pin-sha256`): survives renewal as long
//!   as the key is kept.
//!
//! Pure functions over DER bytes; no I/O.

use std::fmt::Write as _;

use rustls_pki_types::CertificateDer;
use sha1::Digest as _;

use crate::error::PkiError;

/// Which digest to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FingerprintKind {
    /// SHA-1 of the certificate DER (ESP8266 `setFingerprint`).
    #[default]
    Sha1,
    /// SHA-256 of the certificate DER.
    Sha256,
    /// SHA-256 of the SubjectPublicKeyInfo (key pin).
    Spki,
}

/// How to print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FingerprintFormat {
    /// Byte-identical to OpenSSL 3: `sha1 Fingerprint=61:5B:...` (`openssl x509 -noout
    /// -fingerprint -sha1`), `sha256 Fingerprint=...`; for SPKI `pin-sha256="BASE64"`.
    #[default]
    Openssl,
    /// Lower-case hex without separators.
    Hex,
    /// A C array for Arduino sketches: `const uint8_t mqttCertFingerprint[] = {0x61,...};`.
    Arduino,
}

/// The digests of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    /// SHA-1 of the certificate DER.
    pub sha1: [u8; 20],
    /// SHA-256 of the certificate DER.
    pub sha256: [u8; 32],
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub spki_sha256: [u8; 32],
}

impl Fingerprints {
    /// Computes all digests of a DER certificate.
    pub fn of(cert: &CertificateDer<'_>) -> Result<Self, PkiError> {
        let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
            PkiError::BadCertificate {
                reason: e.to_string(),
            }
        })?;
        let spki = x509.tbs_certificate.subject_pki.raw;
        Ok(Self {
            sha1: sha1::Sha1::digest(cert.as_ref()).into(),
            sha256: sha2::Sha256::digest(cert.as_ref()).into(),
            spki_sha256: sha2::Sha256::digest(spki).into(),
        })
    }

    /// The HPKP-style pin: base64 of the SPKI SHA-256.
    pub fn spki_pin_base64(&self) -> String {
        base64(&self.spki_sha256)
    }

    /// One digest in one format, without a trailing newline.
    pub fn format(&self, kind: FingerprintKind, format: FingerprintFormat) -> String {
        let bytes: &[u8] = match kind {
            FingerprintKind::Sha1 => &self.sha1,
            FingerprintKind::Sha256 => &self.sha256,
            FingerprintKind::Spki => &self.spki_sha256,
        };
        match format {
            FingerprintFormat::Openssl => match kind {
                FingerprintKind::Sha1 => format!("sha1 Fingerprint={}", colon_hex(bytes)),
                FingerprintKind::Sha256 => format!("sha256 Fingerprint={}", colon_hex(bytes)),
                FingerprintKind::Spki => format!("pin-sha256=\"{}\"", self.spki_pin_base64()),
            },
            FingerprintFormat::Hex => crate::keys::hex_lower(bytes),
            FingerprintFormat::Arduino => {
                let name = match kind {
                    FingerprintKind::Sha1 => "mqttCertFingerprint",
                    FingerprintKind::Sha256 => "mqttCertFingerprintSha256",
                    FingerprintKind::Spki => "mqttSpkiSha256",
                };
                format!("const uint8_t {name}[] = {{{}}};", c_bytes(bytes))
            }
        }
    }
}

/// The certificate's public key as PEM (`-----BEGIN PUBLIC KEY-----`, the DER
/// SubjectPublicKeyInfo, OpenSSL's `x509 -pubkey` output): what ESP8266
/// `BearSSL::PublicKey` parses for `setKnownKey`. Its SHA-256 is
/// [`Fingerprints::spki_sha256`].
pub fn public_key_pem(cert: &CertificateDer<'_>) -> Result<String, PkiError> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
        PkiError::BadCertificate {
            reason: e.to_string(),
        }
    })?;
    Ok(crate::keys::to_pem(
        "PUBLIC KEY",
        x509.tbs_certificate.subject_pki.raw,
    ))
}

/// `61:5B:5A:...`, upper-case as OpenSSL prints it.
pub fn colon_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// `0x61,0x5B,...` as in the tutorial's sketch.
pub(crate) fn c_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("0x{b:02X}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Standard base64 with padding (RFC 4648), as HPKP pins use.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_pem_is_the_spki_behind_the_pin() {
        let ca = crate::issue::ca(&crate::issue::CaOptions::default()).unwrap();
        let pem_text = public_key_pem(&ca.cert_der).unwrap();
        assert!(pem_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let block = pem::parse(&pem_text).unwrap();
        let digest: [u8; 32] = sha2::Sha256::digest(block.contents()).into();
        assert_eq!(digest, Fingerprints::of(&ca.cert_der).unwrap().spki_sha256);
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn tutorial_fingerprint_formats() {
        // The tutorial's SHA-1 printed as it shows it.
        let sha1: [u8; 20] = [
            0x61, 0x5B, 0x5A, 0xB9, 0xAF, 0x35, 0x79, 0xAA, 0x21, 0x09, 0x04, 0x5C, 0xC2, 0x32,
            0x43, 0x6C, 0x57, 0xCC, 0x8C, 0xF4,
        ];
        let fp = Fingerprints {
            sha1,
            sha256: [0; 32],
            spki_sha256: [0; 32],
        };
        assert_eq!(
            fp.format(FingerprintKind::Sha1, FingerprintFormat::Openssl),
            "sha1 Fingerprint=61:5B:5A:B9:AF:35:79:AA:21:09:04:5C:C2:32:43:6C:57:CC:8C:F4"
        );
        assert_eq!(
            fp.format(FingerprintKind::Sha1, FingerprintFormat::Arduino),
            "const uint8_t mqttCertFingerprint[] = {0x61,0x5B,0x5A,0xB9,0xAF,0x35,0x79,0xAA,0x21,0x09,0x04,0x5C,0xC2,0x32,0x43,0x6C,0x57,0xCC,0x8C,0xF4};"
        );
        assert_eq!(
            fp.format(FingerprintKind::Sha1, FingerprintFormat::Hex),
            "615b5ab9af3579aa2109045cc232436c57cc8cf4"
        );
        assert_eq!(
            fp.format(FingerprintKind::Spki, FingerprintFormat::Openssl),
            "pin-sha256=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\""
        );
    }
}
