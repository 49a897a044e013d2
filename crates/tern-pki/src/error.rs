//! The one error type of tern-pki. Every message is lower-case, names what was wrong and
//! says what to do next, so the CLI can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong while making, loading or checking certificates and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read, written or renamed.
    #[error("cannot {action} {}: {source}; check that the directory exists and is writable", path.display())]
    Io {
        /// What was being done: "read", "write", "rename", "create directory".
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The input held no PEM block at all.
    #[error(
        "no PEM data found (expected {expected}); if the file is DER, convert it with `openssl x509 -inform der -in FILE -out FILE.pem` (certificates) or `openssl pkey -inform der -in FILE -out FILE.pem` (keys)"
    )]
    NoPem {
        /// What was expected: "a certificate", "a private key".
        expected: &'static str,
    },

    /// The input held PEM blocks, but none of the expected kind.
    #[error("the file holds {found}, not {expected}; pass the {expected_file} instead")]
    WrongPem {
        /// What was expected.
        expected: &'static str,
        /// What was found, e.g. "a certificate".
        found: String,
        /// Which file the user should pass instead, e.g. "key file (server.key)".
        expected_file: &'static str,
    },

    /// The private key is password protected.
    #[error(
        "the private key is encrypted; tern needs an unencrypted key: decrypt it with `openssl pkey -in KEY -out KEY.plain` and keep KEY.plain readable only by its owner (chmod 600)"
    )]
    EncryptedKey,

    /// A key of a type or size tern does not use.
    #[error(
        "unsupported key: {found}; tern uses RSA 2048 to 4096 bits or ECDSA P-256/P-384: make a new one with `tern pki server --key rsa-2048` (or `--key ecdsa-p256`)"
    )]
    UnsupportedKey {
        /// What the key is, e.g. "RSA 1024 bits".
        found: String,
    },

    /// The key bytes could not be parsed or used.
    #[error(
        "the private key is not valid ({reason}); make a new one with `tern pki server` or check that the file was copied completely"
    )]
    BadKey {
        /// Why it was refused.
        reason: String,
    },

    /// The certificate could not be parsed.
    #[error(
        "the certificate is not valid X.509 ({reason}); check that the file was copied completely, or reissue it with `tern pki server`"
    )]
    BadCertificate {
        /// The parser's complaint.
        reason: String,
    },

    /// A CA already exists where a new one would be written.
    #[error(
        "{} already exists; refusing to replace the CA (every certificate it issued would stop verifying); pass --force to replace it anyway",
        path.display()
    )]
    CaExists {
        /// The existing CA certificate or key.
        path: PathBuf,
    },

    /// A file needed for issuing is missing.
    #[error("{} does not exist; {hint}", path.display())]
    Missing {
        /// The missing file.
        path: PathBuf,
        /// The command that creates it.
        hint: String,
    },

    /// The private key does not belong to the certificate.
    #[error(
        "the private key does not match the certificate {subject}; pass the key that was made with it, or issue a new pair with `tern pki {reissue}`"
    )]
    KeyMismatch {
        /// Subject of the certificate.
        subject: String,
        /// The `tern pki` subcommand that makes a matching pair.
        reissue: &'static str,
    },

    /// The certificate given as issuer cannot sign certificates.
    #[error("{subject} cannot act as a CA: {reason}; make a CA with `tern pki ca`")]
    NotACa {
        /// Subject of the certificate.
        subject: String,
        /// Why not.
        reason: &'static str,
    },

    /// A host name given for a subjectAltName is not a valid DNS name.
    #[error(
        "'{name}' is not a valid DNS name for a certificate; use letters, digits, '-' and '.', or pass an IP address with --ip"
    )]
    InvalidName {
        /// The offending name.
        name: String,
    },

    /// An unknown `--key` value.
    #[error("unknown key type '{0}'; use ecdsa-p256, rsa-2048 or rsa-4096")]
    UnknownKeyType(String),

    /// A name or serial to revoke was not found.
    #[error(
        "no certificate named or numbered '{0}' in issued.txt; list issued certificates with `cat issued.txt` in the PKI directory, or pass the serial shown by `tern pki inspect CERT`"
    )]
    NotIssued(String),

    /// An attempt to revoke the CA itself.
    #[error(
        "the CA cannot revoke itself; to stop trusting it, make a new CA with `tern pki ca --force` and reissue every certificate"
    )]
    RevokeCa,

    /// A certificate name that cannot be used as a file name.
    #[error(
        "'{0}' cannot be used as a certificate name; use letters, digits, '-', '_' and '.', not starting with '.'"
    )]
    InvalidFileName(String),

    /// The index files of the PKI directory are damaged.
    #[error("{} line {line} is not understood ({reason}); fix or remove that line", path.display())]
    BadIndex {
        /// issued.txt or revoked.txt.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },

    /// rcgen refused to build or sign a certificate.
    #[error(
        "could not build the certificate ({0}); check the names and key given, and report a bug if they look right"
    )]
    Generate(String),

    /// The random number generator failed.
    #[error("the system random number generator failed; retry, and check /dev/urandom")]
    Random,

    /// A PKCS#12 bundle could not be written.
    #[error(
        "could not write the PKCS#12 bundle ({0}); the PEM files were written and can be bundled with `openssl pkcs12 -export`"
    )]
    Pkcs12(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        Self::Generate(e.to_string())
    }
}

impl PkiError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
