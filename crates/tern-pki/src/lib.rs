//! tern-pki: the small certificate authority behind `tern pki`.
//!
//! It replaces the six `openssl` commands of the usual "Mosquitto with TLS" tutorial:
//! making a CA ([`ca`]), server and client certificates ([`server`], [`client`]), signing
//! with an existing CA (including one made by those `openssl` commands, [`CaSigner`]),
//! revocation with a CRL Mosquitto accepts ([`revoke`]), inspection with plain-language
//! warnings ([`inspect`], [`server_cert_warnings`]), fingerprints in the forms ESP8266 and
//! ESP32 sketches want ([`Fingerprints`]), and a C header for devices ([`device_header`]).
//!
//! The crate never talks to the network. Only [`PkiDir`] (and [`revoke`] / [`write_crl`],
//! which take one) touch files; everything else works on bytes, with the current time
//! passed in.
//!
//! Dependencies beyond the architecture table, and why:
//! - `rustls` (ring provider only, no aws-lc): validating keys exactly as the broker will
//!   load them, and the OS random generator for serials;
//! - `rsa`: ring cannot generate RSA keys, and ESP8266 devices want RSA server keys;
//! - `p12-keystore`: `NAME.p12` bundles for clients that import PKCS#12;
//! - `pem`: PEM with OpenSSL's layout (64 columns, `\n`).
//!
//! Keys are always written as PKCS#8 (`BEGIN PRIVATE KEY`), like OpenSSL 3; PKCS#1 and
//! SEC1 keys from older tools are read and rewrapped as PKCS#8 in memory when signing.
#![forbid(unsafe_code)]

mod crl;
mod der;
mod error;
mod fingerprint;
mod header;
mod inspect;
mod issue;
mod keys;
mod store;

pub use crl::{CRL_DAYS, CrlInfo, Revocation, make_crl, revoke, write_crl};
pub use error::PkiError;
pub use fingerprint::{
    FingerprintFormat, FingerprintKind, Fingerprints, colon_hex, public_key_pem,
};
pub use header::device_header;
pub use inspect::{
    CertSummary, EXPIRY_WARNING_DAYS, Inspection, inspect, key_matches, reissue_command,
    server_cert_warnings, signed_by,
};
pub use issue::{
    BACKDATE, CaOptions, CaSigner, ClientOptions, Issued, ServerOptions, ca, client,
    default_server_names, pkcs12, server, valid_dns_name,
};
pub use keys::{KeyKind, KeyType, key_kind, load_certs, load_private_key, to_pem};
pub use store::{
    CA_CERT, CA_CRL, CA_KEY, FileMode, ISSUED, IndexEntry, PkiDir, REVOKED, check_name,
    create_private_dir, load_ca_files, normalize_serial, write_atomic,
};
