//! `tern device sketch`: writes a complete Arduino project for an ESP8266 or ESP32 that
//! speaks MQTT over TLS (PubSubClient 2.8) to the broker, replacing the tutorial sketch.
//!
//! The sketch checks the server exactly one deliberate way: the CA with the clock set by
//! NTP first (default), or, only when asked, a certificate fingerprint or (ESP8266) the
//! server's public key. It never turns validation off. Before writing anything this module
//! checks what the device will check: that the server certificate names `--host`, is signed
//! by `--ca`, that the client key matches its certificate, and it says plainly what will
//! fail on the device otherwise.
//!
//! Layout: [`plan`] reads and checks the inputs (the only file reads), [`render`] turns a
//! [`Plan`] into file contents (pure, used by the snapshot tests through the binary), and
//! [`run`] writes the files and prints what it did. The file texts are the templates in
//! `templates/`, rendered by [`super::template`].

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tern_pki::{CertSummary, FileMode, FingerprintFormat, FingerprintKind, KeyKind};
use time::OffsetDateTime;

use super::template::{self, Vars};

const SKETCH_TEMPLATE: &str = include_str!("templates/sketch.ino.tmpl");
const CERTS_TEMPLATE: &str = include_str!("templates/certs.h.tmpl");
const SECRETS_TEMPLATE: &str = include_str!("templates/secrets.h.tmpl");
const README_TEMPLATE: &str = include_str!("templates/README.txt.tmpl");
const GITIGNORE_TEMPLATE: &str = include_str!("templates/gitignore.tmpl");

/// Size of the sketch's `commandTopic` buffer, NUL included.
const COMMAND_TOPIC_BUF: usize = 128;
/// Longest `--client-id-prefix`: with 6 hex digits it fits `clientId[64]` and the
/// `devices/<id>/telemetry` topic fits its 96-byte buffer.
const MAX_PREFIX: usize = 32;
/// Hex digits the sketch appends to the prefix (`%06lx` of a 24-bit chip id).
const ID_SUFFIX_LEN: usize = 6;
/// Days before a certificate's end that earn a warning.
const EXPIRY_WARNING_DAYS: i64 = tern_pki::EXPIRY_WARNING_DAYS;

/// The microcontroller family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Board {
    /// ESP8266 (NodeMCU, Wemos D1 mini...): BearSSL, about 40 KB of heap.
    Esp8266,
    /// ESP32: mbedTLS.
    Esp32,
}

impl Board {
    const fn upper(self) -> &'static str {
        match self {
            Self::Esp8266 => "ESP8266",
            Self::Esp32 => "ESP32",
        }
    }

    const fn arg(self) -> &'static str {
        match self {
            Self::Esp8266 => "esp8266",
            Self::Esp32 => "esp32",
        }
    }

    const fn default_prefix(self) -> &'static str {
        match self {
            Self::Esp8266 => "ESP8266Client-",
            Self::Esp32 => "ESP32Client-",
        }
    }

    /// Relay and LED pins: the tutorial's GPIO4 / GPIO5 on ESP8266; GPIO26 and the
    /// DevKit's on-board LED (GPIO2) on ESP32.
    const fn pins(self) -> (u8, u8) {
        match self {
            Self::Esp8266 => (4, 5),
            Self::Esp32 => (26, 2),
        }
    }

    const fn package(self) -> &'static str {
        match self {
            Self::Esp8266 => "esp8266 by ESP8266 Community",
            Self::Esp32 => "esp32 by Espressif Systems",
        }
    }

    const fn fqbn(self) -> &'static str {
        match self {
            Self::Esp8266 => "esp8266:esp8266:nodemcuv2",
            Self::Esp32 => "esp32:esp32:esp32",
        }
    }
}

/// How the device checks the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pin {
    /// The CA signed the broker's certificate, its dates hold (clock set by NTP first) and
    /// it names --host. Survives renewals of the server certificate.
    Ca,
    /// The broker's certificate fingerprint (ESP8266: SHA-1 only; ESP32: SHA-256 on top of
    /// the CA check). Breaks whenever the certificate is renewed.
    Fingerprint,
    /// ESP8266 only: the broker's public key (setKnownKey); the certificate is ignored.
    Spki,
}

impl Pin {
    const fn arg(self) -> &'static str {
        match self {
            Self::Ca => "ca",
            Self::Fingerprint => "fingerprint",
            Self::Spki => "spki",
        }
    }
}

/// `tern device sketch ...`
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  tern device sketch --board esp8266 --host broker.example.com \
                        --ca ~/.local/share/tern/pki/ca.crt --server-cert ~/.local/share/tern/pki/server.crt -o sketches"
)]
pub struct SketchArgs {
    /// The board family.
    #[arg(long, value_enum)]
    board: Board,
    /// The broker's host name, as written in its certificate's subjectAltName.
    #[arg(long, value_name = "NAME")]
    host: String,
    /// The broker's TLS port.
    #[arg(long, default_value_t = 8883, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// CA certificate(s) that signed the broker's certificate (PEM, e.g. ca.crt).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The broker's certificate: checked against --host and --ca; needed for
    /// --pin fingerprint and --pin spki.
    #[arg(long, value_name = "FILE")]
    server_cert: Option<PathBuf>,
    /// How the device checks the broker: ca (recommended), fingerprint (breaks at every
    /// renewal), spki (ESP8266 only).
    #[arg(long, value_enum, default_value = "ca")]
    pin: Pin,
    /// This device's certificate, for brokers with require_certificate (tern pki client).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// This device's private key (RSA or ECDSA, unencrypted PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// The command topic to subscribe to; {id} becomes the device id.
    #[arg(long, value_name = "TOPIC", default_value = "devices/{id}/set")]
    topic: String,
    /// Start of the client id; the chip id in hex is appended [default: ESP8266Client- or
    /// ESP32Client-].
    #[arg(long, value_name = "PREFIX")]
    client_id_prefix: Option<String>,
    /// PubSubClient's buffer in bytes: bigger incoming messages are dropped silently.
    #[arg(long, value_name = "BYTES", default_value_t = 1024,
          value_parser = clap::value_parser!(u16).range(256..=16384))]
    buffer_size: u16,
    /// Seconds between telemetry messages.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(5..=86400))]
    telemetry_secs: u32,
    /// Project (and .ino) name [default: tern_esp8266 or tern_esp32].
    #[arg(long)]
    name: Option<String>,
    /// Directory to create the project in: writes DIR/NAME/NAME.ino and its files.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Overwrite an existing project (secrets.h is always kept).
    #[arg(long)]
    force: bool,
}

/// The client certificate part of a plan.
#[derive(Debug)]
struct ClientMaterial {
    /// The certificate's CN (the name `tern pki revoke` takes), else the file stem.
    name: String,
    summary: CertSummary,
    /// Every certificate of the client file, leaf first.
    cert_pem: String,
    key_pem: String,
    key: KeyKind,
    /// Key of the CA that issued the client certificate (ESP8266 setClientECCert wants it).
    issuer_key: KeyKind,
}

/// Everything the files are made from, checked.
#[derive(Debug)]
pub struct Plan {
    board: Board,
    pin: Pin,
    name: String,
    host: String,
    host_ip: bool,
    port: u16,
    ca_file: String,
    ca_pem: String,
    ca: Vec<CertSummary>,
    server_file: Option<String>,
    server: Option<CertSummary>,
    server_public_key_pem: Option<String>,
    client: Option<ClientMaterial>,
    topic: String,
    prefix: String,
    buffer_size: u16,
    telemetry_secs: u32,
    /// Things the user should know; printed, not written.
    notes: Vec<String>,
}

/// One generated file.
#[derive(Debug)]
pub struct OutFile {
    /// Name inside the project directory.
    pub name: String,
    pub text: String,
    pub mode: FileMode,
    /// Never overwritten once it exists (the user fills it in).
    pub keep_existing: bool,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Whether `host` matches a DNS subjectAltName `pattern` (`*.example.com` covers one label).
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => pattern == host,
    }
}

fn valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Escapes text for a C string literal. Non-ASCII bytes become 3-digit octal escapes,
/// which cannot swallow a following character the way `\x` escapes can.
fn c_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// The command topic as a C `snprintf` format (`{id}` -> `%s`, `%` -> `%%`) and the
/// matching argument list (`, clientId` once per `{id}`).
fn topic_format(topic: &str) -> (String, String) {
    let parts: Vec<&str> = topic.split("{id}").collect();
    let format = parts
        .iter()
        .map(|p| c_escape(&p.replace('%', "%%")))
        .collect::<Vec<_>>()
        .join("%s");
    let args = ", clientId".repeat(parts.len() - 1);
    (format, args)
}

fn check_topic(topic: &str, prefix: &str) -> Result<()> {
    let ids = topic.matches("{id}").count();
    let rest = topic.replace("{id}", "");
    if rest.contains('{') || rest.contains('}') {
        bail!(
            "--topic {topic:?}: only {{id}} is replaced (by the device id); remove the other braces"
        );
    }
    if topic.chars().any(char::is_control) {
        bail!("--topic {topic:?} contains control characters");
    }
    let example = topic.replace("{id}", &format!("{prefix}{}", "0".repeat(ID_SUFFIX_LEN)));
    tern_codec::topic::validate_filter(&example)
        .map_err(|e| anyhow::anyhow!("--topic {topic:?} is not a valid MQTT topic filter: {e}"))?;
    let longest = rest.len() + ids * (prefix.len() + ID_SUFFIX_LEN);
    if longest >= COMMAND_TOPIC_BUF {
        bail!(
            "--topic {topic:?} becomes {longest} bytes with the device id; the sketch allows {}",
            COMMAND_TOPIC_BUF - 1
        );
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || prefix.len() > MAX_PREFIX
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!(
            "--client-id-prefix {prefix:?}: use 1 to {MAX_PREFIX} letters, digits, '-', '_' or '.' \
             (it becomes part of the client id and of topic names)"
        );
    }
    Ok(())
}

fn expiry_note(what: &str, c: &CertSummary, now: OffsetDateTime, fix: &str) -> Option<String> {
    let left = (c.not_after - now).whole_days();
    if c.not_after <= now {
        Some(format!(
            "{what} {} expired on {}: the device will refuse it. {fix}",
            c.subject,
            c.not_after.date()
        ))
    } else if left < EXPIRY_WARNING_DAYS {
        Some(format!(
            "{what} {} expires in {left} days ({}). {fix}",
            c.subject,
            c.not_after.date()
        ))
    } else if c.not_before > now {
        Some(format!(
            "{what} {} is not valid before {}",
            c.subject,
            c.not_before.date()
        ))
    } else {
        None
    }
}

fn key_type_constant(k: &KeyKind) -> Result<&'static str> {
    match k {
        KeyKind::Rsa { .. } => Ok("BR_KEYTYPE_RSA"),
        KeyKind::Ecdsa { .. } => Ok("BR_KEYTYPE_EC"),
        other => bail!("BearSSL cannot use a CA with a {other} key for client certificates"),
    }
}

fn pem_label(key: &PrivateKeyDer<'_>) -> &'static str {
    match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    }
}

fn certs_pem(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| tern_pki::to_pem("CERTIFICATE", c.as_ref()))
        .collect()
}

/// Reads and checks the inputs. `now` is only used for expiry notes.
pub fn plan(args: &SketchArgs, now: OffsetDateTime) -> Result<Plan> {
    let board = args.board;
    let pin = args.pin;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("tern_{}", board.arg()));
    if !valid_project_name(&name) {
        bail!(
            "--name {name:?}: Arduino wants a letter or digit first, then letters, digits, '_', '-' \
             or '.', at most 63 characters"
        );
    }
    let prefix = args
        .client_id_prefix
        .clone()
        .unwrap_or_else(|| board.default_prefix().to_owned());
    check_prefix(&prefix)?;
    check_topic(&args.topic, &prefix)?;

    let host = args.host.trim().to_owned();
    let host_ip = match host.parse::<IpAddr>() {
        Ok(_) => true,
        Err(_) if tern_pki::valid_dns_name(&host) => false,
        Err(_) => bail!("--host {host:?} is neither a DNS name nor an IP address"),
    };
    if pin == Pin::Spki && board == Board::Esp32 {
        bail!(
            "--pin spki is for ESP8266 (BearSSL setKnownKey); arduino-esp32 has no public-key \
             pinning. Use --pin ca (recommended) or --pin fingerprint"
        );
    }
    let mut notes = Vec::new();

    // The CA.
    let ca_ders = tern_pki::load_certs(&read(&args.ca)?)
        .with_context(|| format!("--ca {}", args.ca.display()))?;
    let mut ca = Vec::new();
    for der in &ca_ders {
        let s = CertSummary::of(der).with_context(|| format!("--ca {}", args.ca.display()))?;
        if !s.is_ca {
            if s.version == 1 && s.self_signed {
                notes.push(format!(
                    "{} is an X.509 v1 certificate without CA:TRUE; mbedTLS (ESP32) may refuse it \
                     as a CA. A new CA: tern pki ca",
                    s.subject
                ));
            } else {
                bail!(
                    "--ca {} holds {}, which is not a CA certificate. Pass the CA that signed the \
                     broker's certificate (ca.crt), and the broker's own certificate as --server-cert",
                    args.ca.display(),
                    s.subject
                );
            }
        }
        if let Some(n) = expiry_note("the CA", &s, now, "Make a new CA: tern pki ca --force") {
            notes.push(n);
        }
        ca.push(s);
    }
    let ca_pem = certs_pem(&ca_ders);

    // The server certificate.
    let name_checked = match (board, pin) {
        (_, Pin::Ca) | (Board::Esp32, Pin::Fingerprint) => true,
        (Board::Esp8266, Pin::Fingerprint | Pin::Spki) | (Board::Esp32, Pin::Spki) => false,
    };
    let name_arg = if host_ip {
        format!("--ip {host}")
    } else {
        format!("--host {host}")
    };
    let (server, server_public_key_pem) = match &args.server_cert {
        None => {
            if pin != Pin::Ca {
                bail!(
                    "--pin {} needs the broker's certificate: add --server-cert server.crt",
                    pin.arg()
                );
            }
            if host_ip {
                bail!(
                    "--host {host} is an IP address: add --server-cert so tern can check that the \
                     certificate lists IP:{host} (the device checks it), or better use a DNS name"
                );
            }
            notes.push(format!(
                "add --server-cert server.crt to check now that the broker's certificate names \
                 {host} and is signed by this CA; otherwise the device finds out"
            ));
            (None, None)
        }
        Some(path) => {
            let ders = tern_pki::load_certs(&read(path)?)
                .with_context(|| format!("--server-cert {}", path.display()))?;
            let der = ders.first().context("--server-cert holds no certificate")?;
            let s = CertSummary::of(der)
                .with_context(|| format!("--server-cert {}", path.display()))?;
            let names_host = if host_ip {
                s.ip_addresses.iter().any(|ip| ip.to_string() == host)
            } else {
                s.dns_names.iter().any(|n| dns_matches(n, &host))
            };
            if !names_host {
                let listed = if s.sans.is_empty() {
                    "it has no subjectAltName at all".to_owned()
                } else {
                    format!("it lists {}", s.sans.join(", "))
                };
                let msg = format!(
                    "the server certificate {} does not name {host} ({listed}). Reissue it: \
                     tern pki server {name_arg}",
                    path.display()
                );
                if name_checked {
                    bail!("{msg}; or pass --host with a name it lists");
                }
                notes.push(format!(
                    "{msg}. With --pin {} the device does not check the name, but a CA-checking client will",
                    pin.arg()
                ));
            }
            let signed = ca_ders.iter().any(|c| tern_pki::signed_by(der, c))
                || ders
                    .iter()
                    .skip(1)
                    .any(|inter| tern_pki::signed_by(der, inter));
            if !signed {
                let msg = format!(
                    "the server certificate {} ({}) is not signed by the CA in {}",
                    path.display(),
                    s.issuer,
                    args.ca.display()
                );
                if pin == Pin::Ca || board == Board::Esp32 {
                    bail!("{msg}: the device would refuse the broker. Pass the CA that signed it");
                }
                notes.push(msg);
            }
            if board == Board::Esp8266 && matches!(s.key, KeyKind::Ecdsa { .. }) {
                notes.push(format!(
                    "the server certificate has an {} key: BearSSL on the ESP8266 handshakes several \
                     times faster with RSA. Consider: tern pki server {name_arg} --key rsa-2048",
                    s.key
                ));
            }
            let fix = format!("Renew it: tern pki server {name_arg}");
            if let Some(n) = expiry_note("the server certificate", &s, now, &fix) {
                notes.push(n);
            }
            let spki = if pin == Pin::Spki {
                Some(tern_pki::public_key_pem(der).context("reading the server's public key")?)
            } else {
                None
            };
            (Some(s), spki)
        }
    };

    // The client certificate.
    let client = match (&args.client_cert, &args.client_key) {
        (Some(cert_path), Some(key_path)) => Some(load_client(
            cert_path, key_path, &ca_ders, &ca, board, now, &mut notes,
        )?),
        _ => None,
    };

    Ok(Plan {
        board,
        pin,
        name,
        host,
        host_ip,
        port: args.port,
        ca_file: file_name(&args.ca),
        ca_pem,
        ca,
        server_file: args.server_cert.as_deref().map(file_name),
        server,
        server_public_key_pem,
        client,
        topic: args.topic.clone(),
        prefix,
        buffer_size: args.buffer_size,
        telemetry_secs: args.telemetry_secs,
        notes,
    })
}

#[allow(clippy::too_many_arguments)]
fn load_client(
    cert_path: &Path,
    key_path: &Path,
    ca_ders: &[CertificateDer<'static>],
    ca: &[CertSummary],
    board: Board,
    now: OffsetDateTime,
    notes: &mut Vec<String>,
) -> Result<ClientMaterial> {
    let ders = tern_pki::load_certs(&read(cert_path)?)
        .with_context(|| format!("--client-cert {}", cert_path.display()))?;
    let leaf = ders.first().context("--client-cert holds no certificate")?;
    let summary =
        CertSummary::of(leaf).with_context(|| format!("--client-cert {}", cert_path.display()))?;
    let key = tern_pki::load_private_key(&read(key_path)?)
        .with_context(|| format!("--client-key {}", key_path.display()))?;
    if !tern_pki::key_matches(leaf, &key)? {
        bail!(
            "--client-key {} is not the key of --client-cert {} ({})",
            key_path.display(),
            cert_path.display(),
            summary.subject
        );
    }
    let kind = tern_pki::key_kind(&key)?;
    let key_pem = tern_pki::to_pem(pem_label(&key), key.secret_der());
    let issuer = ca_ders
        .iter()
        .zip(ca)
        .find(|(der, _)| tern_pki::signed_by(leaf, der))
        .map(|(_, s)| s.key.clone())
        .or_else(|| {
            ders.iter()
                .skip(1)
                .find(|d| tern_pki::signed_by(leaf, d))
                .and_then(|d| CertSummary::of(d).ok())
                .map(|s| s.key)
        });
    let issuer_key = match issuer {
        Some(k) => k,
        None => {
            notes.push(format!(
                "the client certificate {} ({}) is not signed by the CA in --ca; the broker must \
                 trust its issuer",
                cert_path.display(),
                summary.issuer
            ));
            ca.first().map_or_else(|| kind.clone(), |c| c.key.clone())
        }
    };
    if board == Board::Esp8266 {
        key_type_constant(&issuer_key)?;
        if matches!(kind, KeyKind::Rsa { bits } if bits > 2048) {
            notes.push(format!(
                "the client key is {kind}: slow on the ESP8266. tern pki client NAME --key rsa-2048 \
                 makes a faster one"
            ));
        }
    }
    let name = summary.common_name.clone().unwrap_or_else(|| {
        cert_path
            .file_stem()
            .map_or_else(|| "NAME".to_owned(), |s| s.to_string_lossy().into_owned())
    });
    let fix = format!("Renew it: tern pki client {name}");
    if let Some(n) = expiry_note("the client certificate", &summary, now, &fix) {
        notes.push(n);
    }
    Ok(ClientMaterial {
        name,
        summary,
        cert_pem: certs_pem(&ders),
        key_pem,
        key: kind,
        issuer_key,
    })
}

/// The one-line description of the validation, for the sketch's header comment.
fn validation_line(board: Board, pin: Pin) -> &'static str {
    match (board, pin) {
        (Board::Esp8266, Pin::Ca) => {
            "the CA in certs.h (setTrustAnchors), after the clock is set by NTP"
        }
        (Board::Esp8266, Pin::Fingerprint) => {
            "SHA-1 fingerprint of the server certificate (setFingerprint): breaks at renewal"
        }
        (_, Pin::Spki) => "the server's public key (setKnownKey); its certificate is not checked",
        (Board::Esp32, Pin::Ca) => "the CA in certs.h (setCACert), after the clock is set by NTP",
        (Board::Esp32, Pin::Fingerprint) => {
            "the CA in certs.h (setCACert) plus the certificate's SHA-256: breaks at renewal"
        }
    }
}

/// The README's paragraph about the validation.
fn validation_text(board: Board, pin: Pin, host: &str) -> String {
    match (board, pin) {
        (Board::Esp8266, Pin::Ca) => format!(
            "CA validation (--pin ca, the default). The sketch first sets the clock with NTP\n\
             (configTime) and waits until it is right, then BearSSL checks that the broker's\n\
             certificate chains to the CA in certs.h (setTrustAnchors), is within its dates and\n\
             names {host}. Renewing the server certificate with the same CA needs no change on\n\
             the device. If UDP port 123 (NTP) is blocked, the device waits and says so."
        ),
        (Board::Esp8266, Pin::Fingerprint) => {
            "Fingerprint pinning (--pin fingerprint), as asked. BearSSL compares the SHA-1\n\
             of the broker's certificate with certs.h (setFingerprint) and checks nothing else:\n\
             not the CA, not the dates, not the name. When the server certificate is renewed the\n\
             device cannot connect until you run tern device sketch again and upload. CA\n\
             validation (--pin ca) has neither problem."
                .to_owned()
        }
        (_, Pin::Spki) => {
            "Public-key pinning (--pin spki), as asked. BearSSL only checks that the broker\n\
             holds the public key in certs.h (setKnownKey); the certificate (CA, dates, name) is\n\
             not looked at. It survives renewals that keep the key, but `tern pki server` makes\n\
             a new key each time: regenerate the sketch after renewing. CA validation (--pin ca)\n\
             survives every renewal."
                .to_owned()
        }
        (Board::Esp32, Pin::Ca) => format!(
            "CA validation (--pin ca, the default). mbedTLS checks that the broker's certificate\n\
             chains to the CA in certs.h (setCACert) and names {host}. The sketch sets the clock\n\
             with NTP first, but arduino-esp32's mbedTLS is built without certificate date\n\
             checks (espressif/arduino-esp32#7747): an expired certificate is accepted.\n\
             Renewing the server certificate with the same CA needs no change on the device."
        ),
        (Board::Esp32, Pin::Fingerprint) => format!(
            "CA validation plus a pin (--pin fingerprint), as asked. mbedTLS checks that the\n\
             broker's certificate chains to the CA in certs.h (setCACert) and names {host};\n\
             then the sketch checks that its SHA-256 fingerprint is the one in certs.h\n\
             (verify). The pin breaks whenever the certificate is renewed: run tern device\n\
             sketch again and upload. Without the pin (--pin ca) renewals need nothing."
        ),
    }
}

fn key_name(k: &KeyKind) -> String {
    k.to_string()
}

/// The command line that reproduces the files (file names only, so it reads the same
/// wherever the files are).
fn command_line(p: &Plan) -> String {
    let mut c = format!(
        "tern device sketch --board {} --host {} --port {} --ca {}",
        p.board.arg(),
        p.host,
        p.port,
        p.ca_file
    );
    if let Some(f) = &p.server_file {
        let _ = write!(c, " --server-cert {f}");
    }
    let _ = write!(c, " --pin {}", p.pin.arg());
    if let Some(cl) = &p.client {
        let _ = write!(c, " --client-cert {0}.crt --client-key {0}.key", cl.name);
    }
    let _ = write!(
        c,
        " --topic '{}' --client-id-prefix {} --buffer-size {} --telemetry-secs {} --name {}",
        p.topic, p.prefix, p.buffer_size, p.telemetry_secs, p.name
    );
    c
}

/// Renders every file of the project.
pub fn render(p: &Plan) -> Result<Vec<OutFile>> {
    let (relay_pin, led_pin) = p.board.pins();
    let esp8266 = p.board == Board::Esp8266;
    let needs_clock = p.pin == Pin::Ca || (p.board == Board::Esp32 && p.pin == Pin::Fingerprint);
    let sha1_pin = esp8266 && p.pin == Pin::Fingerprint;
    let sha256_pin = !esp8266 && p.pin == Pin::Fingerprint;
    let ca_used = p.pin == Pin::Ca || !esp8266;
    let (topic_fmt, topic_args) = topic_format(&p.topic);
    let topic_display = p.topic.replace("{id}", "<id>");
    let example_id = format!("{}{}", p.prefix, "a1b2c3");
    let min_valid =
        p.ca.iter()
            .map(|c| c.not_before)
            .min()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let name_arg = if p.host_ip {
        format!("--ip {}", p.host)
    } else {
        format!("--host {}", p.host)
    };

    let mut v = Vars::default();
    v.set("NAME", p.name.clone())
        .set("BOARD", p.board.upper())
        .set("HOST", c_escape(&p.host))
        .set("PORT", p.port.to_string())
        .set("VALIDATION", validation_line(p.board, p.pin))
        .set("TOPIC_DISPLAY", topic_display.clone())
        .set("TOPIC_FORMAT", topic_fmt)
        .set("TOPIC_ARGS", topic_args)
        .set("TOPIC_EXAMPLE", p.topic.replace("{id}", &example_id))
        .set("CLIENT_ID_PREFIX", p.prefix.clone())
        .set("BUFFER_SIZE", p.buffer_size.to_string())
        .set("TELEMETRY_SECS", p.telemetry_secs.to_string())
        .set("MIN_VALID_TIME", min_valid.unix_timestamp().to_string())
        .set("MIN_VALID_DATE", min_valid.date().to_string())
        .set("RELAY_PIN", relay_pin.to_string())
        .set("LED_PIN", led_pin.to_string())
        .set("SERVER_NAME_ARG", name_arg)
        .set("CA_FILE", p.ca_file.clone())
        .set("CA_PEM", p.ca_pem.clone())
        .set("PIN", p.pin.arg())
        .set("BOARD_PACKAGE", p.board.package())
        .set("FQBN", p.board.fqbn())
        .set("COMMAND", command_line(p))
        .set("TITLE_RULE", "=".repeat(p.name.len() + 42))
        .set(
            "CLOCK_STEP",
            if needs_clock {
                "sets the clock by NTP, "
            } else {
                ""
            },
        )
        .set("VALIDATION_TEXT", validation_text(p.board, p.pin, &p.host))
        .flag("ESP8266", esp8266)
        .flag("ESP32", !esp8266)
        .flag("PIN_CA", p.pin == Pin::Ca)
        .flag("PIN_FINGERPRINT", p.pin == Pin::Fingerprint)
        .flag("PIN_SPKI", p.pin == Pin::Spki)
        .flag("NEEDS_CLOCK", needs_clock)
        .flag("HOST_IP", esp8266 && p.host_ip)
        .flag("SHA1_PIN", sha1_pin)
        .flag("SHA256_PIN", sha256_pin)
        .flag("CA_USED", ca_used)
        .flag("SERVER_KNOWN", p.server.is_some())
        .flag(
            "SUGGEST_RSA",
            esp8266
                && !p
                    .server
                    .as_ref()
                    .is_some_and(|s| matches!(s.key, KeyKind::Rsa { .. })),
        )
        .flag("CLIENT_CERT", p.client.is_some())
        .flag(
            "CLIENT_RSA",
            esp8266
                && p.client
                    .as_ref()
                    .is_some_and(|c| matches!(c.key, KeyKind::Rsa { .. })),
        )
        .flag(
            "CLIENT_EC",
            esp8266
                && p.client
                    .as_ref()
                    .is_some_and(|c| matches!(c.key, KeyKind::Ecdsa { .. })),
        );

    let mut ca_comment = String::new();
    for c in &p.ca {
        let _ = write!(
            ca_comment,
            "//   {}, {}, valid {} to {}",
            c.subject,
            key_name(&c.key),
            c.not_before.date(),
            c.not_after.date()
        );
        ca_comment.push('\n');
    }
    v.set("CA_COMMENT", ca_comment.trim_end().to_owned());

    let mut extra = Vec::new();
    if sha1_pin {
        extra.push("the server certificate's SHA-1");
    }
    if sha256_pin {
        extra.push("the server certificate's SHA-256");
    }
    if p.pin == Pin::Spki {
        extra.push("the server's public key");
    }
    if p.client.is_some() {
        extra.push("this device's certificate and key");
    }
    let mut certs_extra = String::new();
    for e in &extra {
        let _ = write!(certs_extra, ", {e}");
    }
    v.set("CERTS_EXTRA", certs_extra.clone());
    v.set(
        "CERTS_DESCRIPTION",
        format!(
            "the CA certificate{certs_extra}{}",
            if p.client.is_some() {
                ".\n  It holds a private key: keep it out of version control (.gitignore lists it)"
            } else {
                ""
            }
        ),
    );

    match &p.server {
        Some(s) => {
            let fp = &s.fingerprints;
            v.set("SERVER_FILE", p.server_file.clone().unwrap_or_default())
                .set("SERVER_SUBJECT", s.subject.clone())
                .set("SERVER_KEY", key_name(&s.key))
                .set("SERVER_NOT_AFTER", s.not_after.date().to_string())
                .set("SERVER_NAMES", s.sans.join(", "))
                .set(
                    "SERVER_SHA1",
                    fp.format(FingerprintKind::Sha1, FingerprintFormat::Openssl),
                )
                .set(
                    "SERVER_SHA1_ARRAY",
                    format!(
                        "{{{}}}",
                        fp.sha1
                            .iter()
                            .map(|b| format!("0x{b:02X}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                )
                .set("SERVER_SHA256", tern_pki::colon_hex(&fp.sha256))
                .set(
                    "SERVER_SPKI_PIN",
                    fp.format(FingerprintKind::Spki, FingerprintFormat::Openssl),
                );
        }
        None => {
            for k in [
                "SERVER_FILE",
                "SERVER_SUBJECT",
                "SERVER_KEY",
                "SERVER_NOT_AFTER",
                "SERVER_NAMES",
                "SERVER_SHA1",
                "SERVER_SHA1_ARRAY",
                "SERVER_SHA256",
                "SERVER_SPKI_PIN",
            ] {
                v.set(k, "");
            }
        }
    }
    v.set(
        "SERVER_PUBLIC_KEY",
        p.server_public_key_pem.clone().unwrap_or_default(),
    );

    match &p.client {
        Some(c) => {
            v.set("CLIENT_NAME", c.name.clone())
                .set("CLIENT_SUBJECT", c.summary.subject.clone())
                .set("CLIENT_KEY", key_name(&c.key))
                .set("CLIENT_NOT_AFTER", c.summary.not_after.date().to_string())
                .set("CLIENT_CERT_PEM", c.cert_pem.clone())
                .set("CLIENT_KEY_PEM", c.key_pem.clone())
                .set("CLIENT_ISSUER_KEY", key_name(&c.issuer_key))
                .set(
                    "CLIENT_ISSUER_KEYTYPE",
                    if esp8266 {
                        key_type_constant(&c.issuer_key)?
                    } else {
                        ""
                    },
                );
        }
        None => {
            for k in [
                "CLIENT_NAME",
                "CLIENT_SUBJECT",
                "CLIENT_KEY",
                "CLIENT_NOT_AFTER",
                "CLIENT_CERT_PEM",
                "CLIENT_KEY_PEM",
                "CLIENT_ISSUER_KEY",
                "CLIENT_ISSUER_KEYTYPE",
            ] {
                v.set(k, "");
            }
        }
    }

    let secret_certs = p.client.is_some();
    Ok(vec![
        OutFile {
            name: format!("{}.ino", p.name),
            text: template::render(SKETCH_TEMPLATE, &v).context("sketch template")?,
            mode: FileMode::Public,
            keep_existing: false,
        },
        OutFile {
            name: "certs.h".to_owned(),
            text: template::render(CERTS_TEMPLATE, &v).context("certs.h template")?,
            mode: if secret_certs {
                FileMode::Secret
            } else {
                FileMode::Public
            },
            keep_existing: false,
        },
        OutFile {
            name: "secrets.h".to_owned(),
            text: template::render(SECRETS_TEMPLATE, &v).context("secrets.h template")?,
            mode: FileMode::Secret,
            keep_existing: true,
        },
        OutFile {
            name: "README.txt".to_owned(),
            text: template::render(README_TEMPLATE, &v).context("README template")?,
            mode: FileMode::Public,
            keep_existing: false,
        },
        OutFile {
            name: ".gitignore".to_owned(),
            text: template::render(GITIGNORE_TEMPLATE, &v).context(".gitignore template")?,
            mode: FileMode::Public,
            keep_existing: false,
        },
    ])
}

/// `tern device sketch`: checks, renders, writes, and says what to do next.
pub fn run(args: SketchArgs) -> Result<i32> {
    let plan = plan(&args, OffsetDateTime::now_utc())?;
    let files = render(&plan)?;
    let dir = args.out.join(&plan.name);
    let ino = dir.join(format!("{}.ino", plan.name));
    if ino.exists() && !args.force {
        bail!(
            "{} exists: pass --force to regenerate the project (secrets.h is kept)",
            ino.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for f in &files {
        let path = dir.join(&f.name);
        if f.keep_existing && path.exists() {
            println!("kept  {} (your credentials)", path.display());
            continue;
        }
        tern_pki::write_atomic(&path, f.text.as_bytes(), f.mode)?;
        let what = match f.name.as_str() {
            "certs.h" if plan.client.is_some() => "certificates and this device's private key",
            "certs.h" => "certificates",
            "secrets.h" => "fill in Wi-Fi and broker credentials",
            "README.txt" => "how it works and how to use it",
            ".gitignore" => "keeps the secrets out of git",
            _ => validation_line(plan.board, plan.pin),
        };
        println!("wrote {} ({what})", path.display());
    }
    for n in &plan.notes {
        println!("note: {n}");
    }
    let secrets = dir.join("secrets.h");
    println!("next:");
    println!(
        "  1. fill in {}: WIFI_SSID, WIFI_PASSWORD (and MQTT_USER/MQTT_PASSWORD if the broker asks)",
        secrets.display()
    );
    println!(
        "  2. Arduino IDE: board package \"{}\", library \"PubSubClient\" 2.8 (Nick O'Leary)",
        plan.board.package()
    );
    println!(
        "  3. open {} in the Arduino IDE, select the board, upload; serial monitor at 115200 baud",
        ino.display()
    );
    println!(
        "  or: arduino-cli lib install \"PubSubClient@2.8\" && arduino-cli compile --fqbn {} {}",
        plan.board.fqbn(),
        dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dns_names_match_like_tls_clients() {
        assert!(dns_matches("broker.example.com", "Broker.Example.com"));
        assert!(dns_matches("broker.example.com.", "broker.example.com"));
        assert!(dns_matches("*.example.com", "broker.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(!dns_matches("broker.example.com", "broker.example.org"));
    }

    #[test]
    fn topic_becomes_a_checked_format_string() {
        assert_eq!(
            topic_format("devices/{id}/set"),
            ("devices/%s/set".to_owned(), ", clientId".to_owned())
        );
        assert_eq!(
            topic_format("a/{id}/100%/{id}"),
            (
                "a/%s/100%%/%s".to_owned(),
                ", clientId, clientId".to_owned()
            )
        );
        assert_eq!(
            topic_format("h\u{e9}\"x\\"),
            ("h\\303\\251\\\"x\\\\".to_owned(), String::new())
        );
    }

    #[test]
    fn topics_are_checked() {
        check_topic("devices/{id}/set", "ESP8266Client-").unwrap();
        check_topic("home/+/relay", "p").unwrap();
        for bad in [
            "devices/{ID}/set",
            "a/#/b",
            "",
            "line\nbreak",
            &"x".repeat(200),
        ] {
            assert!(check_topic(bad, "p").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_and_prefixes_are_checked() {
        assert!(valid_project_name("tern_esp8266"));
        assert!(valid_project_name("relay-1.v2"));
        assert!(!valid_project_name("_x"));
        assert!(!valid_project_name("a b"));
        assert!(!valid_project_name(""));
        check_prefix("ESP8266Client-").unwrap();
        assert!(check_prefix("a/b").is_err());
        assert!(check_prefix("a+").is_err());
        assert!(check_prefix(&"x".repeat(MAX_PREFIX + 1)).is_err());
    }
}
