//! Errors, in plain words that say what to do next. Certificate problems found during the
//! handshake are [`CertError`]s (carried through rustls and recovered afterwards); everything
//! else a caller can see is a [`ClientError`].

use std::path::PathBuf;
use std::sync::Arc;

use tern_codec::ReasonCode;
use tern_proto::client::{ConnError, UsageError};

/// What was wrong with the broker's certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The host name (or IP address) we connected to is not in the certificate.
    #[error("{}", hostname_text(names, host))]
    HostnameMismatch { names: Vec<String>, host: String },
    /// The certificate does not chain to a CA we were given.
    #[error(
        "the broker's certificate{} is not signed by a CA you trust: pass the CA that signed it with --cafile (or pin the certificate with --fingerprint)",
        subject_text(subject, issuer)
    )]
    UnknownCa {
        subject: Option<String>,
        issuer: Option<String>,
    },
    /// notAfter is in the past.
    #[error(
        "the broker's certificate expired on {not_after} (it is now {now}): issue a new one for the broker, or check this machine's clock"
    )]
    Expired { not_after: String, now: String },
    /// notBefore is in the future.
    #[error(
        "the broker's certificate is not valid before {not_before} (it is now {now}): check this machine's clock (devices without a real-time clock need SNTP first)"
    )]
    NotYetValid { not_before: String, now: String },
    /// None of the pins matched.
    #[error(
        "the broker's certificate does not match the pinned {expected}: it has SHA-256 {sha256}, SHA-1 {sha1}, SPKI SHA-256 {spki}. If the broker's certificate was reissued on purpose, update the pin; otherwise something is intercepting the connection"
    )]
    PinMismatch {
        expected: String,
        sha256: String,
        sha1: String,
        spki: String,
    },
    /// An X.509 version 1 certificate (no extensions), which webpki refuses.
    #[error(
        "the broker's certificate is X.509 version 1 (made by `openssl x509 -req` without extensions), which CA validation here does not accept: reissue it with `tern pki server`, or pin it with --fingerprint / --pin-spki instead of --cafile"
    )]
    Version1,
    /// The certificate could not be parsed.
    #[error("the broker sent a certificate that cannot be read: {0}")]
    Malformed(String),
    /// Anything else webpki refused.
    #[error("the broker's certificate was refused: {0}")]
    Other(String),
}

fn subject_text(subject: &Option<String>, issuer: &Option<String>) -> String {
    match (subject, issuer) {
        (Some(s), Some(i)) => format!(" (CN={s}, issued by CN={i})"),
        (Some(s), None) => format!(" (CN={s})"),
        (None, Some(i)) => format!(" (issued by CN={i})"),
        (None, None) => String::new(),
    }
}

fn hostname_text(names: &[String], host: &str) -> String {
    let list = if names.is_empty() {
        "no name at all".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let flag = if host.parse::<std::net::IpAddr>().is_ok() {
        "--ip"
    } else {
        "--host"
    };
    format!(
        "the broker's certificate is for {list}, not '{host}': connect by a name in the certificate or reissue with: tern pki server {flag} {host}"
    )
}

/// Everything that can go wrong for a client.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The options are inconsistent (e.g. a key without a certificate).
    #[error("{0}")]
    Config(String),
    /// A TLS file could not be read or holds nothing usable.
    #[error("cannot use {}: {reason}", path.display())]
    TlsFile { path: PathBuf, reason: String },
    /// Name resolution failed.
    #[error("cannot resolve '{host}': {source}: check the host name (-h)")]
    Resolve {
        host: String,
        source: Arc<std::io::Error>,
    },
    /// TCP connect failed.
    #[error(
        "cannot connect to {host} port {port}: {source}{}",
        connect_hint(source)
    )]
    Connect {
        host: String,
        port: u16,
        source: Arc<std::io::Error>,
    },
    /// TCP connect or the TLS handshake or CONNACK took too long.
    #[error("timed out after {secs} s {what}")]
    Timeout { what: &'static str, secs: u64 },
    /// The broker's certificate was refused.
    #[error("{0}")]
    Certificate(CertError),
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {host} failed: {detail}")]
    Tls { host: String, detail: String },
    /// CONNACK refused the connection.
    #[error("the broker refused the connection: {}{}{}", reason.description(), reason_string.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(), refusal_hint(*reason))]
    Refused {
        reason: ReasonCode,
        reason_string: Option<String>,
    },
    /// The broker closed the connection (5.0 DISCONNECT carries a reason).
    #[error(
        "the broker closed the connection{}",
        disconnect_text(reason, reason_string)
    )]
    Disconnected {
        reason: Option<ReasonCode>,
        reason_string: Option<String>,
    },
    /// The connection ended before CONNACK.
    #[error(
        "the broker closed the connection before accepting it ({detail}): if this port expects TLS, add --cafile (or --fingerprint); otherwise the broker's log says why"
    )]
    ClosedBeforeConnack { detail: String },
    /// Reading or writing the connection failed.
    #[error("connection to the broker lost: {0}")]
    Io(Arc<std::io::Error>),
    /// The broker broke the protocol, or stopped answering.
    #[error("{0}")]
    Protocol(ConnError),
    /// A request was refused before anything was sent.
    #[error("{0}")]
    Usage(UsageError),
    /// A QoS 1/2 message was refused by the broker (5.0 reason code 0x80 or above).
    #[error("the broker refused the message: {0}")]
    PublishRefused(ReasonCode),
    /// The client was shut down (disconnect, or the connection was lost without reconnect).
    #[error("the client is shut down{}", .0.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Shutdown(Option<Arc<ClientError>>),
}

fn connect_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            ": is the broker running and listening on that port (-p)?"
        }
        _ => "",
    }
}

fn refusal_hint(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::BadUserNameOrPassword => ": check -u and -P",
        ReasonCode::NotAuthorized => {
            ": check the user name and password (-u, -P) or the broker's ACL"
        }
        ReasonCode::ClientIdentifierNotValid => ": choose another client id with -i",
        ReasonCode::UnsupportedProtocolVersion => ": try another protocol version with -V",
        _ => "",
    }
}

fn disconnect_text(reason: &Option<ReasonCode>, s: &Option<String>) -> String {
    let mut t = String::new();
    if let Some(r) = reason {
        t.push_str(": ");
        t.push_str(r.description());
    }
    if let Some(s) = s {
        t.push_str(&format!(" ({s})"));
    }
    t
}

impl ClientError {
    /// The CONNACK reason when the broker refused the connection: what mosquitto_pub/sub
    /// use as the exit status (the 3.1.1 return code, or the 5.0 reason code).
    pub fn refusal(&self) -> Option<ReasonCode> {
        match self {
            Self::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

impl From<UsageError> for ClientError {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
    }
}

impl From<ConnError> for ClientError {
    fn from(e: ConnError) -> Self {
        Self::Protocol(e)
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_mismatch_says_what_to_do() {
        let e = CertError::HostnameMismatch {
            names: vec!["broker.local".into()],
            host: "10.0.0.5".into(),
        };
        assert_eq!(
            e.to_string(),
            "the broker's certificate is for 'broker.local', not '10.0.0.5': connect by a name in the certificate or reissue with: tern pki server --ip 10.0.0.5"
        );
    }

    #[test]
    fn refused_mentions_the_reason() {
        let e = ClientError::Refused {
            reason: ReasonCode::NotAuthorized,
            reason_string: None,
        };
        assert!(
            e.to_string()
                .starts_with("the broker refused the connection: not authorized")
        );
        assert_eq!(e.refusal(), Some(ReasonCode::NotAuthorized));
    }
}
