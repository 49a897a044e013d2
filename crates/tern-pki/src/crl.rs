//! Revocation: `revoked.txt` in the PKI directory and `ca.crl`, a PEM CRL v2 signed by the
//! CA with a CRL number and a nextUpdate, as Mosquitto's `crlfile` and rustls'
//! `WebPkiClientVerifier::with_crls` want it.
//!
//! A CRL past its nextUpdate makes OpenSSL (and so Mosquitto) refuse every client
//! certificate, so the CRL is re-signed by every `revoke` and by [`write_crl`] (`tern pki
//! crl`), which should run before nextUpdate.

use rcgen::{CertificateRevocationListParams, RevokedCertParams, SerialNumber};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

use crate::error::PkiError;
use crate::issue::CaSigner;
use crate::keys;
use crate::store::{FileMode, IndexEntry, PkiDir, normalize_serial, write_atomic};

/// Default CRL lifetime (nextUpdate - thisUpdate).
pub const CRL_DAYS: u32 = 30;

/// Serials not found in issued.txt must have at least this many hex digits (OpenSSL and
/// tern use 32 to 40), so that a mistyped name such as `abc` is not revoked as serial 0xABC.
const MIN_FOREIGN_SERIAL_HEX: usize = 8;

/// thisUpdate is set back by this much so a broker whose clock is a little behind the
/// machine that signed the CRL does not reject it as "not yet valid".
const CRL_BACKDATE: Duration = Duration::hours(1);

/// What [`revoke`] did.
#[derive(Debug, Clone)]
pub struct Revocation {
    /// Certificates newly revoked by this call.
    pub newly_revoked: Vec<IndexEntry>,
    /// Certificates that matched but were already revoked.
    pub already_revoked: Vec<IndexEntry>,
    /// The CRL written.
    pub crl: CrlInfo,
}

/// The CRL written to `ca.crl`.
#[derive(Debug, Clone)]
pub struct CrlInfo {
    /// Where it was written.
    pub path: std::path::PathBuf,
    /// Its CRL number.
    pub number: u64,
    /// Its nextUpdate: re-sign it before then with `tern pki crl`.
    pub next_update: OffsetDateTime,
    /// How many certificates it lists.
    pub entries: usize,
}

fn serial_bytes(hex: &str) -> Result<Vec<u8>, PkiError> {
    let hex = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_owned()
    };
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16)
                .map_err(|_| PkiError::NotIssued(hex.clone()))
        })
        .collect()
}

/// Builds a PEM CRL signed by `ca` listing `revoked`.
pub fn make_crl(
    ca: &CaSigner,
    revoked: &[IndexEntry],
    number: u64,
    now: OffsetDateTime,
    days: u32,
) -> Result<String, PkiError> {
    let mut revoked_certs = Vec::with_capacity(revoked.len());
    for r in revoked {
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial_bytes(&r.serial)?),
            revocation_time: r.date.min(now),
            reason_code: None,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: now - CRL_BACKDATE,
        next_update: now + Duration::days(i64::from(days.max(1))),
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: ca.key_identifier(),
    };
    let crl = params.signed_by(&ca.issuer()?)?;
    Ok(keys::to_pem("X509 CRL", crl.der().as_ref()))
}

/// The CRL number of an existing PEM CRL, if it can be read.
fn existing_crl_number(pem_bytes: &[u8]) -> Option<u64> {
    let block = pem::parse(pem_bytes).ok()?;
    let (_, crl) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(block.contents()).ok()?;
    let n = crl.crl_number()?;
    u64::try_from(n).ok()
}

/// Re-signs `ca.crl` from `revoked.txt` with a new CRL number, valid for `days` days.
pub fn write_crl(dir: &PkiDir, now: OffsetDateTime, days: u32) -> Result<CrlInfo, PkiError> {
    let ca = dir.load_ca()?;
    let revoked = dir.revoked()?;
    let path = dir.crl_path();
    let number = std::fs::read(&path)
        .ok()
        .and_then(|b| existing_crl_number(&b))
        .map_or(1, |n| n.saturating_add(1));
    let pem = make_crl(&ca, &revoked, number, now, days)?;
    write_atomic(&path, pem.as_bytes(), FileMode::Public)?;
    Ok(CrlInfo {
        path,
        number,
        next_update: now + Duration::days(i64::from(days.max(1))),
        entries: revoked.len(),
    })
}

/// Revokes every certificate issued under `name_or_serial` (a name from `issued.txt`, e.g.
/// `sensor-1`, or a serial in hex, colons allowed), records it in `revoked.txt` and
/// rewrites `ca.crl` (valid [`CRL_DAYS`] days).
///
/// A serial that is not in `issued.txt` (a certificate made by `openssl`) is revoked as
/// given, with name `-`.
pub fn revoke(
    dir: &PkiDir,
    name_or_serial: &str,
    now: OffsetDateTime,
) -> Result<Revocation, PkiError> {
    let issued = dir.issued()?;
    let mut revoked = dir.revoked()?;
    if name_or_serial == "ca" {
        return Err(PkiError::RevokeCa);
    }
    let by_name: Vec<&IndexEntry> = issued
        .iter()
        .filter(|e| e.name == name_or_serial && e.name != "ca")
        .collect();
    let targets: Vec<(String, String)> = if !by_name.is_empty() {
        by_name
            .iter()
            .map(|e| (e.serial.clone(), e.name.clone()))
            .collect()
    } else {
        let serial = normalize_serial(name_or_serial);
        if !serial.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(PkiError::NotIssued(name_or_serial.to_owned()));
        }
        let known = issued.iter().find(|e| e.serial == serial);
        // A serial tern did not issue (e.g. from `openssl x509 -CAcreateserial`) is taken
        // as given, but only when it is long enough not to be a mistyped name.
        if known.is_none() && serial.len() < MIN_FOREIGN_SERIAL_HEX {
            return Err(PkiError::NotIssued(name_or_serial.to_owned()));
        }
        let name = known.map_or_else(|| "-".to_owned(), |e| e.name.clone());
        if name == "ca" {
            return Err(PkiError::RevokeCa);
        }
        vec![(serial, name)]
    };
    let mut newly = Vec::new();
    let mut already = Vec::new();
    for (serial, name) in targets {
        if let Some(prev) = revoked.iter().find(|r| r.serial == serial) {
            already.push(prev.clone());
            continue;
        }
        let entry = IndexEntry {
            serial,
            date: now,
            name,
        };
        revoked.push(entry.clone());
        newly.push(entry);
    }
    // Check the CA can sign before recording anything.
    let _ = dir.load_ca()?;
    dir.write_revoked(&revoked)?;
    let crl = write_crl(dir, now, CRL_DAYS)?;
    Ok(Revocation {
        newly_revoked: newly,
        already_revoked: already,
        crl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::{CaOptions, ClientOptions};

    #[test]
    fn crl_lists_revoked_serials_and_counts_up() {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let d = std::env::temp_dir().join(format!("tern-pki-crl-{}-{nanos}", std::process::id()));
        let pki = PkiDir::new(&d);
        pki.create_ca(&CaOptions::default(), false).unwrap();
        let ca = pki.load_ca().unwrap();
        let a = pki
            .issue_client(&ca, "a", &ClientOptions::default(), None)
            .unwrap();
        pki.issue_client(&ca, "b", &ClientOptions::default(), None)
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let r = revoke(&pki, "a", now).unwrap();
        assert_eq!(r.newly_revoked.len(), 1);
        assert_eq!(r.crl.number, 1);
        let again = revoke(&pki, &a.serial, now).unwrap();
        assert_eq!(again.already_revoked.len(), 1);
        assert_eq!(again.crl.number, 2);

        let pem_bytes = std::fs::read(pki.crl_path()).unwrap();
        let block = pem::parse(&pem_bytes).unwrap();
        assert_eq!(block.tag(), "X509 CRL");
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(block.contents())
                .unwrap();
        let serials: Vec<String> = crl
            .iter_revoked_certificates()
            .map(|r| keys::hex_lower(&r.user_certificate.to_bytes_be()).to_uppercase())
            .collect();
        assert_eq!(serials, vec![a.serial.clone()]);
        assert_eq!(crl.version().map(|v| v.0), Some(1)); // v2
        assert!(crl.next_update().is_some());
        // Signed by the CA.
        let (_, ca_x509) =
            x509_parser::certificate::X509Certificate::from_der(ca.cert_der().as_ref()).unwrap();
        crl.verify_signature(ca_x509.public_key()).unwrap();

        assert!(matches!(
            revoke(&pki, "nobody", now),
            Err(PkiError::NotIssued(_))
        ));
        assert!(matches!(
            revoke(&pki, "abc", now),
            Err(PkiError::NotIssued(_))
        ));
        assert!(matches!(revoke(&pki, "ca", now), Err(PkiError::RevokeCa)));
        let foreign = revoke(&pki, "10:3E:4A:3E:64:1E:66:18", now).unwrap();
        assert_eq!(foreign.newly_revoked[0].serial, "103E4A3E641E6618");
        assert_eq!(foreign.newly_revoked[0].name, "-");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The broker will load ca.crl with rustls' `WebPkiClientVerifier::with_crls`.
    #[test]
    fn rustls_client_verifier_honours_the_crl() {
        use rustls::server::WebPkiClientVerifier;
        use rustls_pki_types::{CertificateRevocationListDer, UnixTime};

        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        let d = std::env::temp_dir().join(format!("tern-pki-crl2-{}-{nanos}", std::process::id()));
        let pki = PkiDir::new(&d);
        pki.create_ca(&CaOptions::default(), false).unwrap();
        let ca = pki.load_ca().unwrap();
        let good = pki
            .issue_client(&ca, "good", &ClientOptions::default(), None)
            .unwrap();
        let bad = pki
            .issue_client(&ca, "bad", &ClientOptions::default(), None)
            .unwrap();
        revoke(&pki, "bad", OffsetDateTime::now_utc()).unwrap();
        let crl_pem = std::fs::read(pki.crl_path()).unwrap();
        let crl_der =
            CertificateRevocationListDer::from(pem::parse(&crl_pem).unwrap().into_contents());

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
            .with_crls([crl_der])
            .build()
            .unwrap();
        let now = UnixTime::now();
        verifier
            .verify_client_cert(&good.cert_der, &[], now)
            .unwrap();
        let err = verifier
            .verify_client_cert(&bad.cert_der, &[], now)
            .unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
