//! tern-pki: the small certificate authority behind `tern pki`.
//!
//! It replaces the six `openssl` commands of the usual "Mosquitto with TLS" tutorial:
//! making a CA ([`ca`]), server and client certificates ([`server`], [`client`]), signing
//! with an existing CA (including one made by those `openssl` commands, [`CaSigner`]),
//! revocation with a CRL Mosquitto accepts ([`revoke`]), inspection with plain-language
//! warnings ([`inspect`], [`server_cert_warnings`]), fingerprints in the forms ESP8266 and
//! ESP32 sketches want ([`Fingerprints`]), and a C header for devices ([`device_header`]).
//!
//! The crate never talks to the network. Functions that write files say so in their names
//! and take a directory; everything else works on bytes.
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
pub use fingerprint::{FingerprintFormat, FingerprintKind, Fingerprints, colon_hex};
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
