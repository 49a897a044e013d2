//! `mosquitto.conf` (and tern's additions) parsed into a typed [`Config`].
//!
//! Owns the syntax and the meaning of every option Mosquitto 2.0 (and the 2.1 additions)
//! knows, their defaults, deprecations and range checks, the `include_dir` mechanism and the
//! scoping of options to listeners and bridges. Follows `src/conf.c`
//! (`config__read_file_core`). It does **not** decide what tern supports: bridges, plugins,
//! websockets and the rest are parsed into typed values and the broker refuses what it
//! cannot do. Files are read only through a [`Loader`], so tests pass strings.
//!
//! # Syntax
//! - A line whose first non-blank character is `#` is a comment; blank lines are skipped.
//! - Otherwise a line is `name value`; the name ends at the first space or tab. Options with
//!   one word as value (numbers, booleans, keywords) refuse extra words, except a trailing
//!   word starting with `#` (Mosquitto ignores the rest of such lines). Options taking a path
//!   or free text take the rest of the line, spaces included.
//! - Booleans are `true|false` (Mosquitto also accepts `1|0`, so does tern).
//! - `include_dir DIR` is allowed only in the main file; it reads `DIR/*.conf` in
//!   byte-wise (case-sensitive) name order, right where the line stands. Like Mosquitto,
//!   each included file starts with no current listener, bridge or plugin.
//!
//! # Scoping
//! - Options after `listener PORT [ADDR]` apply to that listener (`listener 0 PATH` is a
//!   Unix socket). Listener options before any `listener` line, and the deprecated `port`
//!   and `bind_address`, configure the *default listener*, which is appended to
//!   [`Config::listeners`] (port 1883 unless `port` says otherwise) when any of them is used.
//! - `per_listener_settings true` makes the auth options (`password_file`, `acl_file`,
//!   `psk_file`, `allow_anonymous`, `allow_zero_length_clientid`, `auto_id_prefix`,
//!   `plugin`, `plugin_opt_*`) belong to the current listener ([`Listener::security`]);
//!   otherwise they are global ([`Config::security`]). It must come before any of them.
//! - `connection NAME` starts a bridge; bridge options apply to the latest bridge.
//!
//! # Limits
//! Mosquitto writes "unlimited" as 0 or -1. tern records those values as
//! [`Limit::Unlimited`] rather than a number, so the broker maps them explicitly to its own
//! finite caps (architecture rule: every limit is finite). tern's own options have finite
//! defaults and no unlimited value.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tern_codec::topic;

/// Reads config files. [`FsLoader`] reads the file system; [`MemLoader`] serves strings.
pub trait Loader {
    /// The whole file as UTF-8.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The entries of a directory (any order; the parser filters and sorts).
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// [`Loader`] over `std::fs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        if path.is_dir() {
            return Err(io::Error::other("it is a directory"));
        }
        std::fs::read_to_string(path)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }
}

/// In-memory [`Loader`] for tests: a map from path to contents. A directory exists when a
/// file was added under it (or it was added with [`MemLoader::dir`]).
#[derive(Clone, Debug, Default)]
pub struct MemLoader {
    files: BTreeMap<PathBuf, String>,
    dirs: Vec<PathBuf>,
}

impl MemLoader {
    /// An empty loader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file (builder style).
    pub fn file(mut self, path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.files.insert(path.into(), text.into());
        self
    }

    /// Adds an empty directory (builder style).
    pub fn dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.dirs.push(path.into());
        self
    }
}

impl Loader for MemLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let entries: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect();
        if entries.is_empty() && !self.dirs.iter().any(|d| d == dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(entries)
    }
}

/// Where something was written: file and 1-based line. Displays as `FILE:LINE`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Location {
    /// The config file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// A deprecation or a value Mosquitto would silently adjust. Displays as `FILE:LINE: text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Where the option was written.
    pub location: Location,
    /// What to know and what to do.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A configuration error. Displays as `FILE:LINE: <what is wrong>. <what to do>`
/// (`FILE: ...` when no line applies, e.g. an unreadable main file).
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", Where(path, *line))]
#[non_exhaustive]
pub struct ConfError {
    /// The file with the problem.
    pub path: PathBuf,
    /// The 1-based line, when the problem is on one line.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: ErrorKind,
}

struct Where<'a>(&'a Path, Option<usize>);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(line) => write!(f, "{}:{line}", self.0.display()),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// What is wrong in a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An option name that neither Mosquitto nor tern knows.
    #[error("unknown option \"{name}\". Check the spelling against mosquitto.conf(5){}", DidYouMean(*suggestion))]
    UnknownOption {
        /// The name as written.
        name: String,
        /// The closest known option name, when one is near.
        suggestion: Option<&'static str>,
    },
    /// An option without its value.
    #[error("\"{option}\" needs a value. Write it as \"{option} {usage}\"")]
    MissingValue {
        /// The option.
        option: String,
        /// What the value looks like.
        usage: &'static str,
    },
    /// A value out of range or of the wrong kind.
    #[error("\"{option}\" must be {expected}, not \"{value}\"")]
    InvalidValue {
        /// The option.
        option: String,
        /// The value as written.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// Words after a one-word value.
    #[error(
        "unexpected \"{junk}\" after the value of \"{option}\". Remove it; comments go on their own line starting with #"
    )]
    TrailingJunk {
        /// The option.
        option: String,
        /// The extra text.
        junk: String,
    },
    /// `include_dir` in an included file.
    #[error("include_dir is allowed only in the main config file. Move this line to {}", main.display())]
    IncludeDirNotInMain {
        /// The main config file.
        main: PathBuf,
    },
    /// A config file that cannot be read.
    #[error("cannot read config file \"{}\": {error}. Check that it exists and that the broker's user can read it", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// An `include_dir` directory that cannot be listed.
    #[error("cannot list include_dir \"{}\": {error}. Check that the directory exists and is readable", dir.display())]
    IncludeDirUnreadable {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        error: io::Error,
    },
    /// A single-valued option given twice in the same scope (Mosquitto: "Duplicate ... value").
    #[error("\"{option}\" is already set at {first}. Keep only one of the two lines")]
    Duplicate {
        /// The option.
        option: String,
        /// Where it was first set.
        first: Location,
    },
    /// A listener-only option before any `listener` line.
    #[error(
        "\"{option}\" applies to a listener, but no listener is defined yet. Put a \"listener <port>\" line before it"
    )]
    NeedsListener {
        /// The option.
        option: String,
    },
    /// A bridge option outside a bridge.
    #[error(
        "\"{option}\" is a bridge option, but no bridge is defined yet. Start the bridge with \"connection <name>\" before it"
    )]
    NeedsBridge {
        /// The option.
        option: String,
    },
    /// A plugin option before any plugin.
    #[error(
        "\"{option}\" configures a plugin, but no plugin is defined yet. Put a \"plugin <path>\" line before it"
    )]
    NeedsPlugin {
        /// The option.
        option: String,
    },
    /// `per_listener_settings true` after an auth option.
    #[error(
        "per_listener_settings must come before any other security option. Move it to the top of the file"
    )]
    PerListenerSettingsTooLate,
    /// Two bridges with the same name.
    #[error("a bridge named \"{name}\" already exists. Give each \"connection\" a unique name")]
    DuplicateBridge {
        /// The name.
        name: String,
    },
    /// A second `address` line in one bridge.
    #[error("this bridge already has addresses. List them all on one \"address\" line")]
    BridgeAddressTwice,
    /// A bridge missing something it needs, reported at its `connection` line.
    #[error("bridge \"{name}\" has no {missing}. Add \"{usage}\" after its connection line")]
    BridgeIncomplete {
        /// The bridge.
        name: String,
        /// What is missing.
        missing: &'static str,
        /// The line to add.
        usage: &'static str,
    },
    /// Certificates and PSK on one listener or bridge.
    #[error(
        "certificate options and a pre-shared key cannot be used on the same {scope}. Use either certificates or PSK"
    )]
    CertificateAndPsk {
        /// "listener" or "bridge".
        scope: &'static str,
    },
    /// `listener 0` without a socket path.
    #[error(
        "a listener on port 0 needs a Unix socket path. Write it as \"listener 0 /run/tern/tern.sock\""
    )]
    UnixSocketNeedsPath,
    /// Two `log_dest file` lines.
    #[error(
        "\"log_dest file\" is given twice; only one log file is supported. Keep one of the lines"
    )]
    LogFileTwice,
    /// `restart_timeout base cap` with cap < base.
    #[error(
        "the restart_timeout cap {cap} is lower than the base {base}. Write it as \"restart_timeout <base> <cap>\" with cap >= base"
    )]
    BackoffCapBelowBase {
        /// First value.
        base: u32,
        /// Second value.
        cap: u32,
    },
}

struct DidYouMean(Option<&'static str>);

impl fmt::Display for DidYouMean {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "; did you mean \"{s}\"?"),
            None => f.write_str("."),
        }
    }
}

/// A Mosquitto limit that may be "unlimited" (written as 0 or -1 in mosquitto.conf).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit<T> {
    /// Mosquitto's 0/-1. The broker must replace it with its own finite cap.
    Unlimited,
    /// A configured maximum.
    Max(T),
}

impl<T: Copy + Ord> Limit<T> {
    /// The configured maximum, if any.
    pub fn get(self) -> Option<T> {
        match self {
            Self::Unlimited => None,
            Self::Max(v) => Some(v),
        }
    }

    /// The configured maximum, but never more than `cap` (and `cap` when unlimited).
    pub fn capped(self, cap: T) -> T {
        match self {
            Self::Unlimited => cap,
            Self::Max(v) => v.min(cap),
        }
    }
}

/// `log_dest` values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogDest {
    /// `stdout`
    Stdout,
    /// `stderr` (the default)
    Stderr,
    /// `syslog`
    Syslog,
    /// `topic`: `$SYS/broker/log/{E,W,N,I,M}`
    Topic,
    /// `dlt` (GENIVI Diagnostic Log and Trace)
    Dlt,
    /// `file PATH`
    File(PathBuf),
}

/// `log_type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogType {
    /// `error`
    Error,
    /// `warning`
    Warning,
    /// `notice`
    Notice,
    /// `information`
    Information,
    /// `debug`
    Debug,
    /// `subscribe`
    Subscribe,
    /// `unsubscribe`
    Unsubscribe,
    /// `websockets`
    Websockets,
    /// `internal`
    Internal,
}

impl LogType {
    /// Every type, what `log_type all` selects.
    pub const ALL: [Self; 9] = [
        Self::Error,
        Self::Warning,
        Self::Notice,
        Self::Information,
        Self::Debug,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Websockets,
        Self::Internal,
    ];
}

/// `protocol` of a listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `mqtt` (default)
    #[default]
    Mqtt,
    /// `websockets`
    Websockets,
}

/// `socket_domain` of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketDomain {
    /// `ipv4`
    Ipv4,
    /// `ipv6`
    Ipv6,
}

/// `tls_version`: the **minimum** TLS version (Mosquitto 2.0 semantics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `tlsv1.1`
    Tls1_1,
    /// `tlsv1.2`
    Tls1_2,
    /// `tlsv1.3`
    Tls1_3,
}

/// `tls_keyform`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyForm {
    /// `pem` (default)
    #[default]
    Pem,
    /// `engine`
    Engine,
}

/// Where a listener listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListenAddress {
    /// `listener PORT [HOST]`; `host` None means every interface.
    Tcp {
        /// TCP port, 1..=65535.
        port: u16,
        /// Bind address or host name.
        host: Option<String>,
    },
    /// `listener 0 PATH`.
    Unix(PathBuf),
}

/// `accept_protocol_versions` (2.1): which MQTT versions a listener accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolVersions {
    /// MQTT 3.1 (protocol level 3).
    pub v31: bool,
    /// MQTT 3.1.1 (level 4).
    pub v311: bool,
    /// MQTT 5.0 (level 5).
    pub v5: bool,
}

impl Default for ProtocolVersions {
    fn default() -> Self {
        Self {
            v31: true,
            v311: true,
            v5: true,
        }
    }
}

/// A `plugin` (or `auth_plugin`, `global_plugin`) with its `plugin_opt_*` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plugin {
    /// Path of the shared object. tern does not load C plugins; the broker refuses them.
    pub path: PathBuf,
    /// `plugin_opt_KEY VALUE` pairs in file order, `KEY` without the prefix.
    pub options: Vec<(String, String)>,
    /// `auth_plugin_deny_special_chars` (default true).
    pub deny_special_chars: bool,
    /// Where the plugin line is.
    pub origin: Location,
}

/// The auth options: global, or per listener with `per_listener_settings true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// `password_file` (re-read on SIGHUP).
    pub password_file: Option<PathBuf>,
    /// `acl_file` (re-read on SIGHUP).
    pub acl_file: Option<PathBuf>,
    /// `psk_file`: lines `identity:hexkey`.
    pub psk_file: Option<PathBuf>,
    /// `allow_anonymous`. When not written: true if [`Config::local_only`], else false
    /// (Mosquitto 2.0). Unlike Mosquitto, an explicit `allow_anonymous false` is kept even
    /// when no listener is configured.
    pub allow_anonymous: bool,
    /// `allow_zero_length_clientid` (default true).
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix` (default `auto-`).
    pub auto_id_prefix: String,
    /// `plugin` / `auth_plugin` lines in this scope (and `global_plugin` in the global one).
    pub plugins: Vec<Plugin>,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            password_file: None,
            acl_file: None,
            psk_file: None,
            allow_anonymous: false,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_owned(),
            plugins: Vec::new(),
        }
    }
}

/// TLS options of a listener. TLS is on when both `certfile` and `keyfile` are set, or
/// `psk_hint` is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// `cafile`: CA certificates for client certificates.
    pub cafile: Option<PathBuf>,
    /// `capath`: directory of hashed CA certificates.
    pub capath: Option<PathBuf>,
    /// `certfile` (reloaded on SIGHUP).
    pub certfile: Option<PathBuf>,
    /// `keyfile` (reloaded on SIGHUP).
    pub keyfile: Option<PathBuf>,
    /// `ciphers` (TLS 1.2 and lower), OpenSSL syntax.
    pub ciphers: Option<String>,
    /// `ciphers_tls1.3`.
    pub ciphers_tls13: Option<String>,
    /// Where `ciphers` and `ciphers_tls1.3` were given (for errors about their names,
    /// which the broker checks).
    pub ciphers_at: Option<Location>,
    pub ciphers_tls13_at: Option<Location>,
    /// Where each file option (`cafile`, `capath`, `certfile`, `keyfile`, `crlfile`) was
    /// given, by its value: an error about a file names the line that named the file.
    pub files_at: Vec<(PathBuf, Location)>,
    /// `crlfile`.
    pub crlfile: Option<PathBuf>,
    /// `dhparamfile`.
    pub dhparamfile: Option<PathBuf>,
    /// `require_certificate` (default false).
    pub require_certificate: bool,
    /// `tls_version`: minimum version; None = TLS 1.2 and 1.3.
    pub tls_version: Option<TlsVersion>,
    /// `use_identity_as_username`: the certificate CN (or PSK identity) becomes the user name.
    pub use_identity_as_username: bool,
    /// `use_subject_as_username`: the whole subject DN becomes the user name.
    pub use_subject_as_username: bool,
    /// `tls_engine`.
    pub tls_engine: Option<String>,
    /// `tls_engine_kpass_sha1`: 40 hex digits.
    pub tls_engine_kpass_sha1: Option<String>,
    /// `tls_keyform` (default pem).
    pub tls_keyform: KeyForm,
    /// `psk_hint`: enables TLS-PSK on the listener.
    pub psk_hint: Option<String>,
    /// `disable_client_cert_date_checks` (2.1, default false).
    pub disable_client_cert_date_checks: bool,
    /// tern: `tls_max_fragment_size N` (512..=16384). Caps the size of outgoing TLS records
    /// so that small devices with little RAM can receive them. None = 16384 (TLS maximum).
    pub tls_max_fragment_size: Option<u16>,
}

impl Tls {
    /// True when this listener uses TLS (certificate or PSK).
    pub fn enabled(&self) -> bool {
        (self.certfile.is_some() && self.keyfile.is_some()) || self.psk_hint.is_some()
    }

    fn has_certificates(&self) -> bool {
        self.cafile.is_some() || self.certfile.is_some()
    }
}

/// One listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The `listener` line; for the default listener, the first line that configured it.
    pub origin: Location,
    /// Where to listen.
    pub address: ListenAddress,
    /// `bind_interface`: bind to this network interface (Linux `SO_BINDTODEVICE`).
    pub bind_interface: Option<String>,
    /// `http_dir`: static files served on a websockets listener.
    pub http_dir: Option<PathBuf>,
    /// `max_connections` (default -1: [`Limit::Unlimited`]; 0 also means unlimited, as
    /// Mosquitto only enforces values > 0).
    pub max_connections: Limit<u32>,
    /// `max_qos` / `maximum_qos` (default 2).
    pub max_qos: u8,
    /// `max_topic_alias`: aliases a client may use towards the broker (default 10).
    pub max_topic_alias: u16,
    /// `max_topic_alias_broker` (2.1): aliases the broker may use towards a client.
    /// tern's default is 0 (no aliases), like Mosquitto 2.0, which never sends them, so that
    /// clients see exactly what they saw before; set it to shorten repeated topics.
    pub max_topic_alias_broker: u16,
    /// `mount_point`: prefix added to every topic of this listener's clients.
    pub mount_point: Option<String>,
    /// `protocol` (default mqtt).
    pub protocol: Protocol,
    /// `socket_domain`: None = both IPv4 and IPv6.
    pub socket_domain: Option<SocketDomain>,
    /// `use_username_as_clientid` (default false).
    pub use_username_as_clientid: bool,
    /// `accept_protocol_versions` (2.1; default all).
    pub accept_protocol_versions: ProtocolVersions,
    /// `enable_proxy_protocol 1|2` (2.1): expect a PROXY protocol header.
    pub enable_proxy_protocol: Option<u8>,
    /// `proxy_protocol_v2_require_tls` (2.1, default false).
    pub proxy_protocol_v2_require_tls: bool,
    /// `websockets_origin` (2.1): allowed Origin headers; empty = any.
    pub websockets_origin: Vec<String>,
    /// TLS options.
    pub tls: Tls,
    /// Auth options; used only with [`Config::per_listener_settings`].
    pub security: Security,
}

impl Listener {
    fn new(origin: Location, address: ListenAddress) -> Self {
        Self {
            origin,
            address,
            bind_interface: None,
            http_dir: None,
            max_connections: Limit::Unlimited,
            max_qos: 2,
            max_topic_alias: 10,
            max_topic_alias_broker: 0,
            mount_point: None,
            protocol: Protocol::Mqtt,
            socket_domain: None,
            use_username_as_clientid: false,
            accept_protocol_versions: ProtocolVersions::default(),
            enable_proxy_protocol: None,
            proxy_protocol_v2_require_tls: false,
            websockets_origin: Vec::new(),
            tls: Tls::default(),
            security: Security::default(),
        }
    }
}

/// Direction of a bridge `topic`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `out` (default): local to remote.
    #[default]
    Out,
    /// `in`: remote to local.
    In,
    /// `both`.
    Both,
}

/// A bridge `topic PATTERN [in|out|both [QOS [LOCAL-PREFIX REMOTE-PREFIX]]]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeTopic {
    /// The topic pattern (`""` in the file gives an empty pattern).
    pub pattern: String,
    /// Direction (default out).
    pub direction: Direction,
    /// QoS 0..=2 (default 0).
    pub qos: u8,
    /// Local prefix; `""` in the file gives None.
    pub local_prefix: Option<String>,
    /// Remote prefix; `""` in the file gives None.
    pub remote_prefix: Option<String>,
    /// Where the line is.
    pub origin: Location,
}

/// `bridge_protocol_version`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BridgeProtocol {
    /// `mqttv31`
    Mqtt31,
    /// `mqttv311` (default)
    #[default]
    Mqtt311,
    /// `mqttv50`
    Mqtt5,
}

/// `start_type` of a bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartType {
    /// `automatic` (default): connect at start and reconnect.
    #[default]
    Automatic,
    /// `lazy`: connect when `threshold` messages are queued.
    Lazy,
    /// `once`: connect at start, never reconnect.
    Once,
}

/// `bridge_reload_type` (2.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ReloadType {
    /// `lazy` (default)
    #[default]
    Lazy,
    /// `immediate`
    Immediate,
}

/// `restart_timeout`: how long to wait before reconnecting a bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RestartTimeout {
    /// `restart_timeout BASE CAP`: jittered exponential backoff (default 5 to 30 seconds).
    Backoff {
        /// Base delay in seconds.
        base: u32,
        /// Maximum delay in seconds.
        cap: u32,
    },
    /// `restart_timeout N`: always N seconds.
    Constant(u32),
}

/// `bridge_tcp_keepalive IDLE INTERVAL COUNT` (2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpKeepalive {
    /// Seconds before the first probe.
    pub idle: u32,
    /// Seconds between probes.
    pub interval: u32,
    /// Probes before the connection is dropped.
    pub count: u32,
}

/// `host[:port]` of a bridge `address`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BridgeAddress {
    /// Host name or address.
    pub host: String,
    /// Port (default 1883).
    pub port: u16,
}

/// A bridge (`connection NAME` and the lines after it). Parsed fully; tern's broker decides
/// whether it supports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // fields are the mosquitto.conf options of the same name
pub struct Bridge {
    /// The `connection` line.
    pub origin: Location,
    /// `connection NAME`.
    pub name: String,
    /// `address` / `addresses`.
    pub addresses: Vec<BridgeAddress>,
    /// `topic` lines.
    pub topics: Vec<BridgeTopic>,
    pub protocol_version: BridgeProtocol,
    /// `cleansession` (default false).
    pub cleansession: bool,
    /// `local_cleansession`; None = same as `cleansession`.
    pub local_cleansession: Option<bool>,
    /// `keepalive_interval` seconds (default 60, at least 5).
    pub keepalive_interval: u16,
    /// `idle_timeout` seconds for lazy bridges (default 60).
    pub idle_timeout: u32,
    pub start_type: StartType,
    /// `threshold` messages for lazy bridges (default 10).
    pub threshold: u32,
    pub restart_timeout: RestartTimeout,
    /// `round_robin` (default false).
    pub round_robin: bool,
    /// `try_private` (default true).
    pub try_private: bool,
    /// `notifications` (default true).
    pub notifications: bool,
    /// `notifications_local_only` (default false).
    pub notifications_local_only: bool,
    pub notification_topic: Option<String>,
    /// `remote_clientid` / `clientid`; None = `<hostname>.<name>`, filled in by the broker.
    pub remote_clientid: Option<String>,
    /// `remote_username` / `username`.
    pub remote_username: Option<String>,
    /// `remote_password` / `password`.
    pub remote_password: Option<String>,
    /// `local_clientid`; None = `local.<remote_clientid>`.
    pub local_clientid: Option<String>,
    pub local_username: Option<String>,
    pub local_password: Option<String>,
    /// `bridge_attempt_unsubscribe` (default true).
    pub attempt_unsubscribe: bool,
    pub bind_address: Option<String>,
    /// `bridge_max_packet_size` (0 = unlimited).
    pub max_packet_size: Limit<u32>,
    /// `bridge_outgoing_retain` (default true).
    pub outgoing_retain: bool,
    /// `bridge_receive_maximum` (2.1, 1..=65535).
    pub receive_maximum: Option<u16>,
    /// `bridge_session_expiry_interval` (2.1) seconds.
    pub session_expiry_interval: Option<u32>,
    /// `bridge_max_topic_alias` (2.1, default 10).
    pub max_topic_alias: u16,
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// `bridge_tcp_user_timeout` (2.1) milliseconds.
    pub tcp_user_timeout: Option<u32>,
    pub reload_type: ReloadType,
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub alpn: Option<String>,
    /// `bridge_insecure`: skips the host name check (dangerous).
    pub insecure: bool,
    pub require_ocsp: bool,
    /// `bridge_tls_version` (Mosquitto default tlsv1.2).
    pub tls_version: Option<TlsVersion>,
    /// `bridge_identity` (PSK identity).
    pub identity: Option<String>,
    /// `bridge_psk` (hex key).
    pub psk: Option<String>,
    /// `bridge_tls_use_os_certs` (2.1).
    pub tls_use_os_certs: bool,
    pub ciphers: Option<String>,
    pub ciphers_tls13: Option<String>,
}

impl Bridge {
    fn new(origin: Location, name: String) -> Self {
        Self {
            origin,
            name,
            addresses: Vec::new(),
            topics: Vec::new(),
            protocol_version: BridgeProtocol::Mqtt311,
            cleansession: false,
            local_cleansession: None,
            keepalive_interval: 60,
            idle_timeout: 60,
            start_type: StartType::Automatic,
            threshold: 10,
            restart_timeout: RestartTimeout::Backoff { base: 5, cap: 30 },
            round_robin: false,
            try_private: true,
            notifications: true,
            notifications_local_only: false,
            notification_topic: None,
            remote_clientid: None,
            remote_username: None,
            remote_password: None,
            local_clientid: None,
            local_username: None,
            local_password: None,
            attempt_unsubscribe: true,
            bind_address: None,
            max_packet_size: Limit::Unlimited,
            outgoing_retain: true,
            receive_maximum: None,
            session_expiry_interval: None,
            max_topic_alias: 10,
            tcp_keepalive: None,
            tcp_user_timeout: None,
            reload_type: ReloadType::Lazy,
            cafile: None,
            capath: None,
            certfile: None,
            keyfile: None,
            alpn: None,
            insecure: false,
            require_ocsp: false,
            tls_version: None,
            identity: None,
            psk: None,
            tls_use_os_certs: false,
            ciphers: None,
            ciphers_tls13: None,
        }
    }
}

/// The whole configuration. [`Config::default`] is what the broker runs with no config file:
/// [`Config::local_only`], anonymous access allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Files read, main file first, then included files in the order read.
    pub files: Vec<PathBuf>,
    /// True when no `listener`, `port` or `bind_address` line was given: Mosquitto 2.0 then
    /// listens on port 1883 on loopback only and allows anonymous clients.
    pub local_only: bool,
    /// Listeners in file order; the default listener (see module docs) comes last.
    pub listeners: Vec<Listener>,
    /// `per_listener_settings` (default false).
    pub per_listener_settings: bool,
    /// Global auth options (all auth options unless `per_listener_settings true`; always
    /// `global_plugin`).
    pub security: Security,
    /// Bridges in file order.
    pub bridges: Vec<Bridge>,

    /// `allow_duplicate_messages` (deprecated, default true).
    pub allow_duplicate_messages: bool,
    /// `autosave_interval` seconds (default 1800; 0 = only on exit and SIGUSR1).
    pub autosave_interval: u32,
    /// `autosave_on_changes` (default false): `autosave_interval` counts changes instead.
    pub autosave_on_changes: bool,
    /// `check_retain_source` (default true).
    pub check_retain_source: bool,
    /// `clientid_prefixes` (deprecated).
    pub clientid_prefixes: Option<String>,
    /// `connection_messages` (default true).
    pub connection_messages: bool,
    /// `enable_control_api` (2.1, default false).
    pub enable_control_api: bool,
    /// `global_max_clients` (2.1, default -1: unlimited).
    pub global_max_clients: Limit<u32>,
    /// `global_max_connections` (2.1, default -1: unlimited).
    pub global_max_connections: Limit<u32>,
    /// `include_dir` as written, if any.
    pub include_dir: Option<PathBuf>,
    /// `log_dest` (default stderr). `none` gives an empty list.
    pub log_dest: Vec<LogDest>,
    /// `log_facility` 0..=7 for syslog LOCAL0..LOCAL7 (default: daemon).
    pub log_facility: Option<u8>,
    /// `log_timestamp` (default true).
    pub log_timestamp: bool,
    /// `log_timestamp_format` (strftime).
    pub log_timestamp_format: Option<String>,
    /// Where `log_timestamp_format` was given (for errors in its format).
    pub log_timestamp_format_at: Option<Location>,
    /// `log_type` (default error, warning, notice, information). `none` gives an empty list.
    pub log_type: Vec<LogType>,
    /// `max_inflight_bytes` (default 0: unlimited).
    pub max_inflight_bytes: Limit<u64>,
    /// `max_inflight_messages` (default 20; 0 or 65535: unlimited).
    pub max_inflight_messages: Limit<u16>,
    /// `max_keepalive` seconds (default 65535).
    pub max_keepalive: u16,
    /// `max_packet_size` bytes (default unlimited; at least 20).
    pub max_packet_size: Limit<u32>,
    /// `max_queued_bytes` (default 0: unlimited).
    pub max_queued_bytes: Limit<u64>,
    /// `max_queued_messages` (default 1000; 0: unlimited).
    pub max_queued_messages: Limit<u32>,
    /// `memory_limit` bytes (default 0: unlimited).
    pub memory_limit: Limit<u64>,
    /// `message_size_limit` bytes (default 0: unlimited; at most 268435455).
    pub message_size_limit: Limit<u32>,
    /// `persistence` / `retained_persistence` (default false).
    pub persistence: bool,
    /// `persistence_file` (default `tern.db`; Mosquitto's default is `mosquitto.db`, a format
    /// tern neither reads nor writes, so tern does not use that name unless told to).
    pub persistence_file: PathBuf,
    /// `persistence_location` (default: the working directory).
    pub persistence_location: Option<PathBuf>,
    /// `persistent_client_expiration`; None = never (default).
    pub persistent_client_expiration: Option<Duration>,
    /// `pid_file`.
    pub pid_file: Option<PathBuf>,
    /// `queue_qos0_messages` (default false).
    pub queue_qos0_messages: bool,
    /// `retain_available` (default true).
    pub retain_available: bool,
    /// `set_tcp_nodelay` (default false).
    pub set_tcp_nodelay: bool,
    /// `sys_interval` seconds (default 10; 0 disables periodic `$SYS`).
    pub sys_interval: u16,
    /// `upgrade_outgoing_qos` (default false).
    pub upgrade_outgoing_qos: bool,
    /// `user` to drop privileges to (default `mosquitto`).
    pub user: String,
    /// `websockets_headers_size` (default 1024).
    pub websockets_headers_size: u16,
    /// `websockets_log_level` (libwebsockets bit mask).
    pub websockets_log_level: Option<i32>,

    /// tern: `persistence_sync true|false` (default true). With true, the store is fsynced
    /// before a QoS 1/2 message is acknowledged, so an acknowledged message survives power
    /// loss; false trades that guarantee for throughput.
    pub persistence_sync: bool,
    /// tern: `connect_timeout SECONDS` (default 10, 1..=3600): a connection that has not sent
    /// CONNECT within this time is closed, so idle sockets cannot pile up.
    pub connect_timeout: Duration,
    /// tern: `max_connections_per_address N` (default 1024, 1..=1000000): concurrent
    /// connections from one IP address. 1024 stops one host from exhausting the broker while
    /// leaving room for a site with many devices behind one NAT address (Mosquitto has no
    /// such limit, and a drop-in replacement must not refuse such a site); lower it on
    /// brokers facing the internet.
    pub max_connections_per_address: u32,
    /// tern: `tls_handshake_rate N` (default 1000, 1..=1000000): TLS handshakes started per
    /// second across all listeners. Handshakes cost CPU (they run on their own thread); the
    /// cap keeps a reconnect storm from starving established connections.
    pub tls_handshake_rate: u32,
    /// tern: `threads N` (default 1, 0 = one per CPU core): worker threads of the broker.
    /// One thread, like Mosquitto, is the fastest on small machines: the broker's state sits
    /// behind one lock, so more threads mostly add wake-ups and contention (see
    /// BENCHMARKS.md); more can help when TLS handshakes or encoding dominate on many cores.
    pub threads: u16,

    /// Deprecations and adjusted values, in file order.
    pub warnings: Vec<Warning>,
}

impl Default for Config {
    fn default() -> Self {
        let security = Security {
            allow_anonymous: true,
            ..Security::default()
        };
        Self {
            files: Vec::new(),
            local_only: true,
            listeners: Vec::new(),
            per_listener_settings: false,
            security,
            bridges: Vec::new(),
            allow_duplicate_messages: true,
            autosave_interval: 1800,
            autosave_on_changes: false,
            check_retain_source: true,
            clientid_prefixes: None,
            connection_messages: true,
            enable_control_api: false,
            global_max_clients: Limit::Unlimited,
            global_max_connections: Limit::Unlimited,
            include_dir: None,
            log_dest: vec![LogDest::Stderr],
            log_facility: None,
            log_timestamp: true,
            log_timestamp_format: None,
            log_timestamp_format_at: None,
            log_type: vec![
                LogType::Error,
                LogType::Warning,
                LogType::Notice,
                LogType::Information,
            ],
            max_inflight_bytes: Limit::Unlimited,
            max_inflight_messages: Limit::Max(20),
            max_keepalive: 65535,
            max_packet_size: Limit::Unlimited,
            max_queued_bytes: Limit::Unlimited,
            max_queued_messages: Limit::Max(1000),
            memory_limit: Limit::Unlimited,
            message_size_limit: Limit::Unlimited,
            persistence: false,
            persistence_file: PathBuf::from("tern.db"),
            persistence_location: None,
            persistent_client_expiration: None,
            pid_file: None,
            queue_qos0_messages: false,
            retain_available: true,
            set_tcp_nodelay: false,
            sys_interval: 10,
            upgrade_outgoing_qos: false,
            user: "mosquitto".to_owned(),
            websockets_headers_size: 1024,
            websockets_log_level: None,
            persistence_sync: true,
            connect_timeout: Duration::from_secs(10),
            max_connections_per_address: 1024,
            tls_handshake_rate: 1000,
            threads: 1,
            warnings: Vec::new(),
        }
    }
}

impl Config {
    /// Reads and parses the main config file `path` (and its `include_dir`).
    pub fn load(path: &Path, loader: &dyn Loader) -> Result<Self, ConfError> {
        let text = loader.read(path).map_err(|error| ConfError {
            path: path.to_owned(),
            line: None,
            kind: ErrorKind::Unreadable {
                file: path.to_owned(),
                error,
            },
        })?;
        Self::parse_str(path, &text, loader)
    }

    /// Parses `text` as the main config file; `path` names it in messages and `loader`
    /// serves `include_dir`.
    pub fn parse_str(path: &Path, text: &str, loader: &dyn Loader) -> Result<Self, ConfError> {
        let mut p = Parser::new(path, loader);
        p.file(path, text, 0)?;
        p.finish()
    }

    /// The auth options that apply to clients of `listener`: its own with
    /// `per_listener_settings true`, the global ones otherwise.
    pub fn security_for<'a>(&'a self, listener: &'a Listener) -> &'a Security {
        if self.per_listener_settings {
            &listener.security
        } else {
            &self.security
        }
    }
}

/// Every option name, for the unknown-option check and its did-you-mean.
const OPTIONS: &[&str] = &[
    "accept_protocol_versions",
    "acl_file",
    "address",
    "addresses",
    "allow_anonymous",
    "allow_duplicate_messages",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auth_plugin_deny_special_chars",
    "auto_id_prefix",
    "autosave_interval",
    "autosave_on_changes",
    "bind_address",
    "bind_interface",
    "bridge_alpn",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_ciphers",
    "bridge_ciphers_tls1.3",
    "bridge_identity",
    "bridge_insecure",
    "bridge_keyfile",
    "bridge_max_packet_size",
    "bridge_max_topic_alias",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "bridge_psk",
    "bridge_receive_maximum",
    "bridge_reload_type",
    "bridge_require_ocsp",
    "bridge_session_expiry_interval",
    "bridge_tcp_keepalive",
    "bridge_tcp_user_timeout",
    "bridge_tls_use_os_certs",
    "bridge_tls_version",
    "cafile",
    "capath",
    "certfile",
    "check_retain_source",
    "ciphers",
    "ciphers_tls1.3",
    "cleansession",
    "clientid",
    "clientid_prefixes",
    "connect_timeout",
    "connection",
    "connection_messages",
    "crlfile",
    "dhparamfile",
    "disable_client_cert_date_checks",
    "enable_control_api",
    "enable_proxy_protocol",
    "global_max_clients",
    "global_max_connections",
    "global_plugin",
    "http_dir",
    "idle_timeout",
    "include_dir",
    "keepalive_interval",
    "keyfile",
    "listener",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "log_dest",
    "log_facility",
    "log_timestamp",
    "log_timestamp_format",
    "log_type",
    "max_connections",
    "max_connections_per_address",
    "max_inflight_bytes",
    "max_inflight_messages",
    "max_keepalive",
    "max_packet_size",
    "max_qos",
    "max_queued_bytes",
    "max_queued_messages",
    "max_topic_alias",
    "max_topic_alias_broker",
    "maximum_qos",
    "memory_limit",
    "message_size_limit",
    "mount_point",
    "notification_topic",
    "notifications",
    "notifications_local_only",
    "password",
    "password_file",
    "per_listener_settings",
    "persistence",
    "persistence_file",
    "persistence_location",
    "persistence_sync",
    "persistent_client_expiration",
    "pid_file",
    "plugin",
    "plugin_opt_",
    "port",
    "protocol",
    "proxy_protocol_v2_require_tls",
    "psk_file",
    "psk_hint",
    "queue_qos0_messages",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "require_certificate",
    "restart_timeout",
    "retain_available",
    "retained_persistence",
    "retry_interval",
    "round_robin",
    "set_tcp_nodelay",
    "socket_domain",
    "start_type",
    "sys_interval",
    "threshold",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "threads",
    "tls_handshake_rate",
    "tls_keyform",
    "tls_max_fragment_size",
    "tls_version",
    "topic",
    "try_private",
    "upgrade_outgoing_qos",
    "use_identity_as_username",
    "use_subject_as_username",
    "use_username_as_clientid",
    "user",
    "username",
    "websockets_headers_size",
    "websockets_log_level",
    "websockets_origin",
];

/// Which listener the current file's listener options go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cur {
    Default,
    Index(usize),
}

/// Where the current plugin (for `plugin_opt_*`) lives.
#[derive(Clone, Copy, Debug)]
enum PluginAt {
    Global(usize),
    Listener(Cur, usize),
}

/// Per-file parsing state: Mosquitto resets it for every included file.
struct Ctx {
    level: usize,
    listener: Cur,
    bridge: Option<usize>,
    plugin: Option<PluginAt>,
}

/// One option line.
struct Line<'a> {
    path: &'a Path,
    no: usize,
    name: &'a str,
    rest: &'a str,
}

type Res<T> = Result<T, ConfError>;

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Line<'_> {
    fn loc(&self) -> Location {
        Location {
            path: self.path.to_owned(),
            line: self.no,
        }
    }

    fn err(&self, kind: ErrorKind) -> ConfError {
        ConfError {
            path: self.path.to_owned(),
            line: Some(self.no),
            kind,
        }
    }

    fn missing(&self, usage: &'static str) -> ConfError {
        self.err(ErrorKind::MissingValue {
            option: self.name.to_owned(),
            usage,
        })
    }

    fn invalid(&self, value: &str, expected: impl Into<String>) -> ConfError {
        self.err(ErrorKind::InvalidValue {
            option: self.name.to_owned(),
            value: value.chars().take(200).collect(),
            expected: expected.into(),
        })
    }

    /// Words of the value, stopping at a word that starts with `#`.
    fn words(&self) -> Vec<&str> {
        self.words_after(0)
    }

    /// Like [`Line::words`], but the first `raw` words are taken even if they start with
    /// `#` (a bridge `topic #` pattern).
    fn words_after(&self, raw: usize) -> Vec<&str> {
        let mut all = self.rest.split(is_blank).filter(|w| !w.is_empty());
        let mut words: Vec<&str> = all.by_ref().take(raw).collect();
        words.extend(all.take_while(|w| !w.starts_with('#')));
        words
    }

    /// Between `min` and `max` words.
    fn n_words(&self, min: usize, max: usize, usage: &'static str) -> Res<Vec<&str>> {
        self.check_words(self.words(), min, max, usage)
    }

    fn check_words<'w>(
        &self,
        words: Vec<&'w str>,
        min: usize,
        max: usize,
        usage: &'static str,
    ) -> Res<Vec<&'w str>> {
        if words.len() < min {
            return Err(self.missing(usage));
        }
        if let Some(junk) = words.get(max..).filter(|j| !j.is_empty()) {
            return Err(self.err(ErrorKind::TrailingJunk {
                option: self.name.to_owned(),
                junk: junk.join(" "),
            }));
        }
        Ok(words)
    }

    /// A one-word value.
    fn word(&self, usage: &'static str) -> Res<&str> {
        let words = self.n_words(1, 1, usage)?;
        Ok(words.first().copied().unwrap_or_default())
    }

    /// The rest of the line (paths and free text may contain spaces).
    fn text(&self, usage: &'static str) -> Res<String> {
        if self.rest.is_empty() {
            return Err(self.missing(usage));
        }
        Ok(self.rest.to_owned())
    }

    fn path_value(&self) -> Res<PathBuf> {
        self.text("<path>").map(PathBuf::from)
    }

    fn bool(&self) -> Res<bool> {
        let w = self.word("true|false")?;
        match w {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(self.invalid(other, "true or false")),
        }
    }

    fn int_in(&self, word: &str, min: i64, max: i64, expected: &str) -> Res<i64> {
        word.parse::<i64>()
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| self.invalid(word, expected))
    }

    /// A one-word integer in `min..=max`.
    fn int(&self, min: i64, max: i64) -> Res<i64> {
        let w = self.word("<integer>")?;
        self.int_in(w, min, max, &format!("an integer from {min} to {max}"))
    }

    fn int_as<T: TryFrom<i64>>(&self, min: i64, max: i64) -> Res<T> {
        let v = self.int(min, max)?;
        T::try_from(v).map_err(|_| self.invalid(&v.to_string(), "in range"))
    }

    /// A byte count: an integer, optionally with `k`, `M` or `G` (powers of 1024; a tern
    /// extension). Negative values are returned as -1.
    fn size(&self, allow_negative: bool) -> Res<i64> {
        let w = self.word("<bytes>")?;
        let expected = "a byte count such as 65536, 64k, 10M or 1G";
        let (digits, mult) = match w.char_indices().last() {
            Some((i, 'k' | 'K')) => (w.get(..i).unwrap_or_default(), 1i64 << 10),
            Some((i, 'm' | 'M')) => (w.get(..i).unwrap_or_default(), 1 << 20),
            Some((i, 'g' | 'G')) => (w.get(..i).unwrap_or_default(), 1 << 30),
            _ => (w, 1),
        };
        let v = digits
            .parse::<i64>()
            .ok()
            .and_then(|v| v.checked_mul(mult))
            .ok_or_else(|| self.invalid(w, expected))?;
        if v < 0 {
            if allow_negative {
                return Ok(-1);
            }
            return Err(self.invalid(w, expected));
        }
        Ok(v)
    }

    fn keyword<T: Copy>(&self, choices: &[(&str, T)], usage: &'static str) -> Res<T> {
        let w = self.word(usage)?;
        choices
            .iter()
            .find(|(k, _)| *k == w)
            .map(|(_, v)| *v)
            .ok_or_else(|| self.invalid(w, one_of(choices.iter().map(|(k, _)| *k))))
    }
}

fn one_of<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let words: Vec<&str> = words.collect();
    match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

const TLS_VERSIONS: &[(&str, TlsVersion)] = &[
    ("tlsv1.1", TlsVersion::Tls1_1),
    ("tlsv1.2", TlsVersion::Tls1_2),
    ("tlsv1.3", TlsVersion::Tls1_3),
];

struct Parser<'a> {
    loader: &'a dyn Loader,
    main: PathBuf,
    config: Config,
    default_listener: Listener,
    /// First line that configured the default listener, if any.
    default_used: Option<Location>,
    default_port: Option<u16>,
    default_host: Option<String>,
    /// Where each single-valued option was first set, keyed by scope and name.
    seen: HashMap<String, Location>,
    /// Whether `allow_anonymous` was written, per scope key.
    anonymous_set: HashMap<String, bool>,
    security_used: bool,
    log_dest_set: bool,
    log_type_set: bool,
    log_file_set: bool,
}

fn scope_key(cur: Cur) -> String {
    match cur {
        Cur::Default => "L-default".to_owned(),
        Cur::Index(i) => format!("L{i}"),
    }
}

impl<'a> Parser<'a> {
    fn new(main: &Path, loader: &'a dyn Loader) -> Self {
        let origin = Location {
            path: main.to_owned(),
            line: 0,
        };
        Self {
            loader,
            main: main.to_owned(),
            config: Config::default(),
            default_listener: Listener::new(
                origin,
                ListenAddress::Tcp {
                    port: 1883,
                    host: None,
                },
            ),
            default_used: None,
            default_port: None,
            default_host: None,
            seen: HashMap::new(),
            anonymous_set: HashMap::new(),
            security_used: false,
            log_dest_set: false,
            log_type_set: false,
            log_file_set: false,
        }
    }

    fn warn(&mut self, line: &Line<'_>, message: impl Into<String>) {
        self.config.warnings.push(Warning {
            location: line.loc(),
            message: message.into(),
        });
    }

    /// Single-valued option: error when already set in this scope (Mosquitto's
    /// "Duplicate ... value in configuration").
    fn once(&mut self, line: &Line<'_>, scope: &str) -> Res<()> {
        let key = format!("{scope}/{}", line.name);
        if let Some(first) = self.seen.get(&key) {
            return Err(line.err(ErrorKind::Duplicate {
                option: line.name.to_owned(),
                first: first.clone(),
            }));
        }
        self.seen.insert(key, line.loc());
        Ok(())
    }

    fn listener(&mut self, cur: Cur, line: &Line<'_>) -> &mut Listener {
        match cur {
            Cur::Index(i) if i < self.config.listeners.len() => &mut self.config.listeners[i],
            _ => {
                if self.default_used.is_none() {
                    self.default_used = Some(line.loc());
                }
                &mut self.default_listener
            }
        }
    }

    /// The current listener, or the default listener *without* creating it: for options
    /// that Mosquitto 2.0 records on the default listener but that do not by themselves
    /// make it listen on 1883 (conf.c creates it only for port, bind_address, TLS and
    /// security options, socket_domain, and max_connections / max_qos / protocol values
    /// other than their defaults; checked against Debian's mosquitto 2.0.11).
    fn listener_quiet(&mut self, cur: Cur) -> &mut Listener {
        match cur {
            Cur::Index(i) if i < self.config.listeners.len() => &mut self.config.listeners[i],
            _ => &mut self.default_listener,
        }
    }

    /// A listener option that Mosquitto 2.1 refuses before the first `listener` line.
    fn real_listener(&mut self, ctx: &Ctx, line: &Line<'_>) -> Res<&mut Listener> {
        match ctx.listener {
            Cur::Default => Err(line.err(ErrorKind::NeedsListener {
                option: line.name.to_owned(),
            })),
            cur => Ok(self.listener(cur, line)),
        }
    }

    fn bridge(&mut self, ctx: &Ctx, line: &Line<'_>) -> Res<&mut Bridge> {
        ctx.bridge
            .and_then(|i| self.config.bridges.get_mut(i))
            .ok_or_else(|| {
                line.err(ErrorKind::NeedsBridge {
                    option: line.name.to_owned(),
                })
            })
    }

    fn security_scope(&self, ctx: &Ctx) -> String {
        if self.config.per_listener_settings {
            scope_key(ctx.listener)
        } else {
            "global".to_owned()
        }
    }

    fn security(&mut self, ctx: &Ctx, line: &Line<'_>) -> &mut Security {
        self.security_used = true;
        if self.config.per_listener_settings {
            &mut self.listener(ctx.listener, line).security
        } else {
            &mut self.config.security
        }
    }

    fn file(&mut self, path: &Path, text: &str, level: usize) -> Res<()> {
        self.config.files.push(path.to_owned());
        let mut ctx = Ctx {
            level,
            listener: Cur::Default,
            bridge: None,
            plugin: None,
        };
        for (idx, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_matches(|c: char| is_blank(c) || c == '\r');
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (name, rest) = match trimmed.split_once(is_blank) {
                Some((n, r)) => (n, r.trim_matches(is_blank)),
                None => (trimmed, ""),
            };
            let line = Line {
                path,
                no: idx + 1,
                name,
                rest,
            };
            self.option(&mut ctx, &line)?;
        }
        Ok(())
    }

    fn include_dir(&mut self, ctx: &Ctx, line: &Line<'_>) -> Res<()> {
        if ctx.level > 0 {
            return Err(line.err(ErrorKind::IncludeDirNotInMain {
                main: self.main.clone(),
            }));
        }
        let dir = line.path_value()?;
        let entries = self.loader.list_dir(&dir).map_err(|error| {
            line.err(ErrorKind::IncludeDirUnreadable {
                dir: dir.clone(),
                error,
            })
        })?;
        let mut files: Vec<PathBuf> = entries
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .is_some_and(|n| n.len() > 5 && n.ends_with(b".conf"))
            })
            .collect();
        files.sort_by(|a, b| {
            let key = |p: &PathBuf| p.file_name().map(|n| n.as_encoded_bytes().to_vec());
            key(a).cmp(&key(b))
        });
        self.config.include_dir = Some(dir);
        for file in files {
            let text = self.loader.read(&file).map_err(|error| {
                line.err(ErrorKind::Unreadable {
                    file: file.clone(),
                    error,
                })
            })?;
            self.file(&file, &text, ctx.level + 1)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)] // one arm per option, in the style of conf.c
    fn option(&mut self, ctx: &mut Ctx, line: &Line<'_>) -> Res<()> {
        let name = line.name;
        if let Some(key) = name
            .strip_prefix("plugin_opt_")
            .or_else(|| name.strip_prefix("auth_opt_"))
        {
            return self.plugin_opt(ctx, line, key);
        }
        match name {
            // ---- scoping ----
            "include_dir" => self.include_dir(ctx, line)?,
            "listener" => self.new_listener(ctx, line)?,
            "connection" => self.new_bridge(ctx, line)?,
            "port" => {
                self.warn(
                    line,
                    "\"port\" is deprecated. Use \"listener <port>\" instead",
                );
                self.config.local_only = false;
                if self.default_port.is_some() {
                    self.warn(
                        line,
                        "the default listener port is given more than once; the last one is used",
                    );
                }
                let port = line.int_as::<u16>(1, 65535)?;
                self.default_port = Some(port);
                self.listener(Cur::Default, line);
            }
            "bind_address" => {
                self.warn(
                    line,
                    "\"bind_address\" is deprecated. Use \"listener <port> <address>\" instead",
                );
                self.config.local_only = false;
                self.once(line, "L-default")?;
                self.default_host = Some(line.text("<address>")?);
                self.listener(Cur::Default, line);
            }

            // ---- auth (global or per listener) ----
            "per_listener_settings" => {
                let v = line.bool()?;
                if self.config.per_listener_settings {
                    // Once set it stays set (conf.c).
                } else if v && self.security_used {
                    return Err(line.err(ErrorKind::PerListenerSettingsTooLate));
                } else {
                    self.config.per_listener_settings = v;
                }
            }
            "password_file" | "acl_file" | "psk_file" => {
                let scope = self.security_scope(ctx);
                self.once(line, &scope)?;
                let v = Some(line.path_value()?);
                let s = self.security(ctx, line);
                match name {
                    "password_file" => s.password_file = v,
                    "acl_file" => s.acl_file = v,
                    _ => s.psk_file = v,
                }
            }
            "allow_anonymous" => {
                let v = line.bool()?;
                let scope = self.security_scope(ctx);
                self.anonymous_set.insert(scope, v);
                self.security(ctx, line).allow_anonymous = v;
            }
            "allow_zero_length_clientid" => {
                let v = line.bool()?;
                self.security(ctx, line).allow_zero_length_clientid = v;
            }
            "auto_id_prefix" => {
                let scope = self.security_scope(ctx);
                self.once(line, &scope)?;
                let v = line.text("<prefix>")?;
                if v.len() > 65535 {
                    return Err(line.invalid(&v, "at most 65535 bytes"));
                }
                self.security(ctx, line).auto_id_prefix = v;
            }
            "plugin" | "auth_plugin" | "global_plugin" => {
                if name == "auth_plugin" {
                    self.warn(
                        line,
                        "\"auth_plugin\" is deprecated. Use \"plugin\" instead",
                    );
                }
                let plugin = Plugin {
                    path: line.path_value()?,
                    options: Vec::new(),
                    deny_special_chars: true,
                    origin: line.loc(),
                };
                if name == "global_plugin" || !self.config.per_listener_settings {
                    if name != "global_plugin" {
                        self.security_used = true;
                    }
                    let list = &mut self.config.security.plugins;
                    list.push(plugin);
                    ctx.plugin = Some(PluginAt::Global(list.len() - 1));
                } else {
                    let list = &mut self.security(ctx, line).plugins;
                    list.push(plugin);
                    ctx.plugin = Some(PluginAt::Listener(ctx.listener, list.len() - 1));
                }
            }
            "auth_plugin_deny_special_chars" => {
                let v = line.bool()?;
                self.plugin(ctx, line)?.deny_special_chars = v;
            }
            "check_retain_source" => {
                self.security_used = true;
                self.config.check_retain_source = line.bool()?;
            }

            // ---- general ----
            "allow_duplicate_messages" => {
                self.warn(
                    line,
                    "\"allow_duplicate_messages\" is deprecated and has no effect; duplicates are always allowed. Remove the line",
                );
                self.config.allow_duplicate_messages = line.bool()?;
            }
            "autosave_interval" => {
                let v = line.int(i64::MIN, i64::from(u32::MAX))?;
                self.config.autosave_interval = u32::try_from(v.max(0)).unwrap_or(0);
            }
            "autosave_on_changes" => self.config.autosave_on_changes = line.bool()?,
            "clientid_prefixes" => {
                self.warn(
                    line,
                    "\"clientid_prefixes\" is deprecated. Restrict clients with an ACL or a password file instead",
                );
                self.once(line, "global")?;
                self.config.clientid_prefixes = Some(line.text("<prefix>")?);
            }
            "connection_messages" => self.config.connection_messages = line.bool()?,
            "enable_control_api" => self.config.enable_control_api = line.bool()?,
            "global_max_clients" | "global_max_connections" => {
                let w = line.word("<count>")?;
                let v = line.int_in(
                    w,
                    i64::MIN,
                    i64::from(u32::MAX),
                    "-1 (unlimited) or a positive integer",
                )?;
                let limit = match v {
                    ..0 => Limit::Unlimited,
                    0 => return Err(line.invalid(w, "-1 (unlimited) or a positive integer")),
                    v => Limit::Max(u32::try_from(v).unwrap_or(u32::MAX)),
                };
                if name == "global_max_clients" {
                    self.config.global_max_clients = limit;
                } else {
                    self.config.global_max_connections = limit;
                }
            }
            "log_dest" => self.log_dest(line)?,
            "log_facility" => self.config.log_facility = Some(line.int_as::<u8>(0, 7)?),
            "log_timestamp" => self.config.log_timestamp = line.bool()?,
            "log_timestamp_format" => {
                self.once(line, "global")?;
                self.config.log_timestamp_format = Some(line.text("<strftime format>")?);
                self.config.log_timestamp_format_at = Some(line.loc());
            }
            "log_type" => self.log_type(line)?,
            "max_inflight_bytes" => {
                let v = line.size(true)?;
                self.config.max_inflight_bytes = bytes_limit(v);
            }
            "max_inflight_messages" => {
                let w = line.word("<count>")?;
                let v =
                    line.int_in(w, i64::MIN, 65535, "an integer from 0 (unlimited) to 65535")?;
                self.config.max_inflight_messages = if v <= 0 || v == 65535 {
                    Limit::Unlimited
                } else {
                    Limit::Max(u16::try_from(v).unwrap_or(u16::MAX))
                };
            }
            "max_keepalive" => self.config.max_keepalive = line.int_as::<u16>(0, 65535)?,
            "max_packet_size" => {
                let w = line.word("<bytes>")?;
                let v = line.size(false)?;
                if !(20..=268_435_460).contains(&v) {
                    return Err(line.invalid(w, "a byte count from 20 to 268435460"));
                }
                self.config.max_packet_size = Limit::Max(u32::try_from(v).unwrap_or(u32::MAX));
            }
            "max_queued_bytes" => {
                let v = line.size(true)?;
                self.config.max_queued_bytes = bytes_limit(v);
            }
            "max_queued_messages" => {
                let v = line.int(i64::MIN, i64::from(u32::MAX))?;
                self.config.max_queued_messages = if v <= 0 {
                    Limit::Unlimited
                } else {
                    Limit::Max(u32::try_from(v).unwrap_or(u32::MAX))
                };
            }
            "memory_limit" => {
                let v = line.size(false)?;
                self.config.memory_limit = bytes_limit(v);
            }
            "message_size_limit" => {
                self.warn(
                    line,
                    "\"message_size_limit\" is kept for compatibility. Prefer \"max_packet_size\"",
                );
                let w = line.word("<bytes>")?;
                let v = line.size(false)?;
                if v > 268_435_455 {
                    return Err(line.invalid(w, "a byte count from 0 (unlimited) to 268435455"));
                }
                self.config.message_size_limit = bytes_limit(v).map_u32();
            }
            "persistence" | "retained_persistence" => self.config.persistence = line.bool()?,
            "persistence_file" => {
                self.once(line, "global")?;
                self.config.persistence_file = line.path_value()?;
            }
            "persistence_location" => {
                self.once(line, "global")?;
                self.config.persistence_location = Some(line.path_value()?);
            }
            "persistent_client_expiration" => {
                self.config.persistent_client_expiration = Some(self.expiration(line)?);
            }
            "pid_file" => {
                self.once(line, "global")?;
                self.config.pid_file = Some(line.path_value()?);
            }
            "queue_qos0_messages" => self.config.queue_qos0_messages = line.bool()?,
            "retain_available" => self.config.retain_available = line.bool()?,
            "retry_interval" => {
                self.warn(
                    line,
                    "\"retry_interval\" is no longer available and is ignored. Remove the line",
                );
            }
            "set_tcp_nodelay" => self.config.set_tcp_nodelay = line.bool()?,
            "sys_interval" => self.config.sys_interval = line.int_as::<u16>(0, 65535)?,
            "upgrade_outgoing_qos" => self.config.upgrade_outgoing_qos = line.bool()?,
            "user" => self.config.user = line.text("<user>")?,
            "websockets_headers_size" => {
                self.config.websockets_headers_size = line.int_as::<u16>(0, 65535)?;
            }
            "websockets_log_level" => {
                self.config.websockets_log_level =
                    Some(line.int_as::<i32>(i64::from(i32::MIN), i64::from(i32::MAX))?);
            }

            // ---- tern additions ----
            "persistence_sync" => self.config.persistence_sync = line.bool()?,
            "connect_timeout" => {
                self.config.connect_timeout = Duration::from_secs(line.int_as::<u64>(1, 3600)?);
            }
            "max_connections_per_address" => {
                self.config.max_connections_per_address = line.int_as::<u32>(1, 1_000_000)?;
            }
            "tls_handshake_rate" => {
                self.config.tls_handshake_rate = line.int_as::<u32>(1, 1_000_000)?;
            }
            "threads" => {
                self.config.threads = line.int_as::<u16>(0, 1024)?;
            }

            _ => return self.listener_option(ctx, line),
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn listener_option(&mut self, ctx: &mut Ctx, line: &Line<'_>) -> Res<()> {
        let name = line.name;
        let cur = ctx.listener;
        let scope = scope_key(cur);
        match name {
            "accept_protocol_versions" => {
                let words: Vec<&str> = line
                    .rest
                    .split(|c: char| c == ',' || is_blank(c))
                    .filter(|w| !w.is_empty())
                    .collect();
                if words.is_empty() {
                    return Err(line.missing("3, 4, 5"));
                }
                let mut v = ProtocolVersions {
                    v31: false,
                    v311: false,
                    v5: false,
                };
                for w in words {
                    match w {
                        "3" => v.v31 = true,
                        "4" => v.v311 = true,
                        "5" => v.v5 = true,
                        other => {
                            return Err(line
                                .invalid(other, "a list of 3 (MQTT 3.1), 4 (3.1.1) and 5 (5.0)"));
                        }
                    }
                }
                self.real_listener(ctx, line)?.accept_protocol_versions = v;
            }
            "bind_interface" => {
                self.once(line, &scope)?;
                let v = Some(line.text("<interface>")?);
                self.listener_quiet(cur).bind_interface = v;
            }
            "http_dir" => {
                self.once(line, &scope)?;
                let v = Some(line.path_value()?);
                self.listener_quiet(cur).http_dir = v;
            }
            "max_connections" => {
                let v = line.int(i64::MIN, i64::from(u32::MAX))?;
                let limit = if v <= 0 {
                    Limit::Unlimited
                } else {
                    Limit::Max(u32::try_from(v).unwrap_or(u32::MAX))
                };
                if v == -1 {
                    // Mosquitto's default value: `max_connections -1` before the first
                    // `listener` does not open port 1883.
                    self.listener_quiet(cur).max_connections = limit;
                } else {
                    self.listener(cur, line).max_connections = limit;
                }
            }
            "max_qos" | "maximum_qos" => {
                let w = line.word("0|1|2")?;
                let v = u8::try_from(line.int_in(w, 0, 2, "0, 1 or 2")?).unwrap_or(2);
                if v == 2 {
                    self.listener_quiet(cur).max_qos = v;
                } else {
                    self.listener(cur, line).max_qos = v;
                }
            }
            "max_topic_alias" => {
                self.listener_quiet(cur).max_topic_alias = line.int_as::<u16>(0, 65535)?;
            }
            "max_topic_alias_broker" => {
                self.listener_quiet(cur).max_topic_alias_broker = line.int_as::<u16>(0, 65535)?;
            }
            "mount_point" => {
                if self.config.listeners.is_empty() {
                    return Err(line.err(ErrorKind::NeedsListener {
                        option: name.to_owned(),
                    }));
                }
                self.once(line, &scope)?;
                let v = line.text("<topic prefix>")?;
                if topic::validate_name(&v).is_err() {
                    return Err(line.invalid(&v, "a topic prefix without + or #"));
                }
                self.listener(cur, line).mount_point = Some(v);
            }
            "protocol" => {
                let v = line.keyword(
                    &[
                        ("mqtt", Protocol::Mqtt),
                        ("websockets", Protocol::Websockets),
                    ],
                    "mqtt|websockets",
                )?;
                if v == Protocol::Mqtt {
                    self.listener_quiet(cur).protocol = v;
                } else {
                    self.listener(cur, line).protocol = v;
                }
            }
            "socket_domain" => {
                let v = line.keyword(
                    &[("ipv4", SocketDomain::Ipv4), ("ipv6", SocketDomain::Ipv6)],
                    "ipv4|ipv6",
                )?;
                self.listener(cur, line).socket_domain = Some(v);
            }
            "use_username_as_clientid" => {
                self.listener_quiet(cur).use_username_as_clientid = line.bool()?;
            }
            "enable_proxy_protocol" => {
                let w = line.word("1|2")?;
                let v = line.int_in(w, 1, 2, "1 or 2")?;
                self.real_listener(ctx, line)?.enable_proxy_protocol = u8::try_from(v).ok();
            }
            "proxy_protocol_v2_require_tls" => {
                let v = line.bool()?;
                self.real_listener(ctx, line)?.proxy_protocol_v2_require_tls = v;
            }
            "websockets_origin" => {
                let v = line.text("<origin>")?;
                self.listener(cur, line).websockets_origin.push(v);
            }

            // ---- TLS ----
            "cafile" | "certfile" => {
                if self.listener(cur, line).tls.psk_hint.is_some() {
                    return Err(line.err(ErrorKind::CertificateAndPsk { scope: "listener" }));
                }
                self.once(line, &scope)?;
                let v = Some(line.path_value()?);
                let tls = &mut self.listener(cur, line).tls;
                tls.files_at.extend(v.clone().map(|p| (p, line.loc())));
                if name == "cafile" {
                    tls.cafile = v;
                } else {
                    tls.certfile = v;
                }
            }
            "psk_hint" => {
                if self.listener(cur, line).tls.has_certificates() {
                    return Err(line.err(ErrorKind::CertificateAndPsk { scope: "listener" }));
                }
                self.once(line, &scope)?;
                let v = Some(line.text("<hint>")?);
                self.listener(cur, line).tls.psk_hint = v;
            }
            "capath" | "keyfile" | "crlfile" | "dhparamfile" => {
                self.once(line, &scope)?;
                let v = Some(line.path_value()?);
                let tls = &mut self.listener(cur, line).tls;
                tls.files_at.extend(v.clone().map(|p| (p, line.loc())));
                match name {
                    "capath" => tls.capath = v,
                    "keyfile" => tls.keyfile = v,
                    "crlfile" => tls.crlfile = v,
                    _ => tls.dhparamfile = v,
                }
            }
            "ciphers" | "ciphers_tls1.3" | "tls_engine" => {
                self.once(line, &scope)?;
                let v = Some(line.text("<value>")?);
                let tls = &mut self.listener(cur, line).tls;
                match name {
                    "ciphers" => {
                        tls.ciphers = v;
                        tls.ciphers_at = Some(line.loc());
                    }
                    "ciphers_tls1.3" => {
                        tls.ciphers_tls13 = v;
                        tls.ciphers_tls13_at = Some(line.loc());
                    }
                    _ => tls.tls_engine = v,
                }
            }
            "tls_engine_kpass_sha1" => {
                self.once(line, &scope)?;
                let w = line.word("<40 hex digits>")?;
                if w.len() != 40 || !w.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(line.invalid(w, "a SHA-1 digest of 40 hex digits"));
                }
                self.listener(cur, line).tls.tls_engine_kpass_sha1 = Some(w.to_owned());
            }
            "tls_keyform" => {
                let v = line.keyword(
                    &[("pem", KeyForm::Pem), ("engine", KeyForm::Engine)],
                    "pem|engine",
                )?;
                self.listener(cur, line).tls.tls_keyform = v;
            }
            "tls_version" => {
                self.once(line, &scope)?;
                let v = line.keyword(TLS_VERSIONS, "tlsv1.2|tlsv1.3")?;
                self.listener(cur, line).tls.tls_version = Some(v);
            }
            "require_certificate" => {
                self.listener(cur, line).tls.require_certificate = line.bool()?;
            }
            "use_identity_as_username" => {
                self.listener(cur, line).tls.use_identity_as_username = line.bool()?;
            }
            "use_subject_as_username" => {
                self.listener(cur, line).tls.use_subject_as_username = line.bool()?;
            }
            "disable_client_cert_date_checks" => {
                let v = line.bool()?;
                self.real_listener(ctx, line)?
                    .tls
                    .disable_client_cert_date_checks = v;
            }
            "tls_max_fragment_size" => {
                let v = line.int_as::<u16>(512, 16384)?;
                self.listener(cur, line).tls.tls_max_fragment_size = Some(v);
            }
            _ => return self.bridge_option(ctx, line),
        }
        Ok(())
    }

    #[allow(clippy::too_many_lines)]
    fn bridge_option(&mut self, ctx: &mut Ctx, line: &Line<'_>) -> Res<()> {
        let name = line.name;
        let scope = format!("B{}", ctx.bridge.unwrap_or(usize::MAX));
        // Every remaining known option needs a bridge; unknown names are reported first.
        if !OPTIONS.contains(&name) {
            return Err(line.err(ErrorKind::UnknownOption {
                name: name.chars().take(100).collect(),
                suggestion: crate::suggest(name, OPTIONS),
            }));
        }
        self.bridge(ctx, line)?;
        match name {
            "address" | "addresses" => {
                if !self.bridge(ctx, line)?.addresses.is_empty() {
                    return Err(line.err(ErrorKind::BridgeAddressTwice));
                }
                let words = line.words();
                if words.is_empty() {
                    return Err(line.missing("<host>[:<port>] ..."));
                }
                let mut addresses = Vec::with_capacity(words.len());
                for w in words {
                    let (host, port) = match w.rsplit_once(':') {
                        Some((h, p)) => {
                            let port = line.int_in(
                                p,
                                1,
                                65535,
                                "host[:port] with a port from 1 to 65535",
                            )?;
                            (h, u16::try_from(port).unwrap_or(1883))
                        }
                        None => (w, 1883),
                    };
                    if host.is_empty() {
                        return Err(line.invalid(w, "host[:port]"));
                    }
                    addresses.push(BridgeAddress {
                        host: host.to_owned(),
                        port,
                    });
                }
                self.bridge(ctx, line)?.addresses = addresses;
            }
            "topic" => {
                let t = self.bridge_topic(line)?;
                self.bridge(ctx, line)?.topics.push(t);
            }
            "bridge_protocol_version" => {
                let v = line.keyword(
                    &[
                        ("mqttv31", BridgeProtocol::Mqtt31),
                        ("mqttv311", BridgeProtocol::Mqtt311),
                        ("mqttv50", BridgeProtocol::Mqtt5),
                    ],
                    "mqttv31|mqttv311|mqttv50",
                )?;
                self.bridge(ctx, line)?.protocol_version = v;
            }
            "cleansession" => self.bridge(ctx, line)?.cleansession = line.bool()?,
            "local_cleansession" => self.bridge(ctx, line)?.local_cleansession = Some(line.bool()?),
            "keepalive_interval" => {
                let v = line.int(i64::MIN, 65535)?;
                let v = if v < 5 {
                    self.warn(line, "keepalive_interval is below 5 seconds; using 5");
                    5
                } else {
                    v
                };
                self.bridge(ctx, line)?.keepalive_interval = u16::try_from(v).unwrap_or(60);
            }
            "idle_timeout" | "threshold" => {
                let v = line.int(i64::MIN, i64::from(u32::MAX))?;
                let v = if v < 1 {
                    self.warn(line, format!("{name} is below 1; using 1"));
                    1
                } else {
                    u32::try_from(v).unwrap_or(u32::MAX)
                };
                let b = self.bridge(ctx, line)?;
                if name == "idle_timeout" {
                    b.idle_timeout = v;
                } else {
                    b.threshold = v;
                }
            }
            "start_type" => {
                let w = line.word("automatic|lazy|once")?;
                let v = match w {
                    "automatic" => StartType::Automatic,
                    "lazy" => StartType::Lazy,
                    "once" => StartType::Once,
                    "manual" => {
                        return Err(
                            line.invalid(w, "automatic, lazy or once (manual is not supported)")
                        );
                    }
                    other => return Err(line.invalid(other, "automatic, lazy or once")),
                };
                self.bridge(ctx, line)?.start_type = v;
            }
            "restart_timeout" => {
                let words = line.n_words(1, 2, "<seconds> [<cap seconds>]")?;
                let expected = "a number of seconds";
                let nums = words
                    .iter()
                    .map(|w| line.int_in(w, i64::MIN, i64::from(u32::MAX), expected))
                    .collect::<Res<Vec<i64>>>()?;
                let base = match nums.first() {
                    Some(b) if *b < 1 => {
                        self.warn(line, "restart_timeout is below 1 second; using 1");
                        1
                    }
                    Some(b) => u32::try_from(*b).unwrap_or(u32::MAX),
                    None => 1,
                };
                let v = match nums.get(1) {
                    Some(cap) => {
                        let cap = u32::try_from((*cap).max(0)).unwrap_or(u32::MAX);
                        if cap < base {
                            return Err(line.err(ErrorKind::BackoffCapBelowBase { base, cap }));
                        }
                        RestartTimeout::Backoff { base, cap }
                    }
                    None => RestartTimeout::Constant(base),
                };
                self.bridge(ctx, line)?.restart_timeout = v;
            }
            "round_robin" => self.bridge(ctx, line)?.round_robin = line.bool()?,
            "try_private" => self.bridge(ctx, line)?.try_private = line.bool()?,
            "notifications" => self.bridge(ctx, line)?.notifications = line.bool()?,
            "notifications_local_only" => {
                self.bridge(ctx, line)?.notifications_local_only = line.bool()?;
            }
            "bridge_attempt_unsubscribe" => {
                self.bridge(ctx, line)?.attempt_unsubscribe = line.bool()?;
            }
            "bridge_outgoing_retain" => self.bridge(ctx, line)?.outgoing_retain = line.bool()?,
            "bridge_insecure" => {
                let v = line.bool()?;
                if v {
                    let bname = self.bridge(ctx, line)?.name.clone();
                    self.warn(
                        line,
                        format!("bridge \"{bname}\" does not check the remote host name (bridge_insecure true). Use it only for testing"),
                    );
                }
                self.bridge(ctx, line)?.insecure = v;
            }
            "bridge_require_ocsp" => self.bridge(ctx, line)?.require_ocsp = line.bool()?,
            "bridge_tls_use_os_certs" => self.bridge(ctx, line)?.tls_use_os_certs = line.bool()?,
            "bridge_max_packet_size" => {
                let v = line.size(true)?;
                self.bridge(ctx, line)?.max_packet_size = bytes_limit(v).map_u32();
            }
            "bridge_receive_maximum" => {
                self.bridge(ctx, line)?.receive_maximum = Some(line.int_as::<u16>(1, 65535)?);
            }
            "bridge_session_expiry_interval" => {
                self.bridge(ctx, line)?.session_expiry_interval =
                    Some(line.int_as::<u32>(0, i64::from(u32::MAX))?);
            }
            "bridge_max_topic_alias" => {
                self.bridge(ctx, line)?.max_topic_alias = line.int_as::<u16>(0, 65535)?;
            }
            "bridge_tcp_keepalive" => {
                let words = line.n_words(3, 3, "<idle> <interval> <count>")?;
                let expected = "a positive integer";
                let n = words
                    .iter()
                    .map(|w| {
                        line.int_in(w, 1, i64::from(u32::MAX), expected)
                            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
                    })
                    .collect::<Res<Vec<u32>>>()?;
                if let [idle, interval, count] = n[..] {
                    self.bridge(ctx, line)?.tcp_keepalive = Some(TcpKeepalive {
                        idle,
                        interval,
                        count,
                    });
                }
            }
            "bridge_tcp_user_timeout" => {
                self.bridge(ctx, line)?.tcp_user_timeout =
                    Some(line.int_as::<u32>(0, i64::from(u32::MAX))?);
            }
            "bridge_reload_type" => {
                let v = line.keyword(
                    &[
                        ("lazy", ReloadType::Lazy),
                        ("immediate", ReloadType::Immediate),
                    ],
                    "lazy|immediate",
                )?;
                self.bridge(ctx, line)?.reload_type = v;
            }
            "bridge_tls_version" => {
                self.once(line, &scope)?;
                let v = line.keyword(TLS_VERSIONS, "tlsv1.2|tlsv1.3")?;
                self.bridge(ctx, line)?.tls_version = Some(v);
            }
            "bridge_cafile" | "bridge_capath" | "bridge_certfile" | "bridge_keyfile" => {
                let b = self.bridge(ctx, line)?;
                if b.identity.is_some() || b.psk.is_some() {
                    return Err(line.err(ErrorKind::CertificateAndPsk { scope: "bridge" }));
                }
                self.once(line, &scope)?;
                let v = Some(line.path_value()?);
                let b = self.bridge(ctx, line)?;
                match name {
                    "bridge_cafile" => b.cafile = v,
                    "bridge_capath" => b.capath = v,
                    "bridge_certfile" => b.certfile = v,
                    _ => b.keyfile = v,
                }
            }
            "bridge_identity" | "bridge_psk" => {
                let b = self.bridge(ctx, line)?;
                if b.cafile.is_some()
                    || b.capath.is_some()
                    || b.certfile.is_some()
                    || b.keyfile.is_some()
                {
                    return Err(line.err(ErrorKind::CertificateAndPsk { scope: "bridge" }));
                }
                self.once(line, &scope)?;
                let v = Some(line.text("<value>")?);
                let b = self.bridge(ctx, line)?;
                if name == "bridge_identity" {
                    b.identity = v;
                } else {
                    b.psk = v;
                }
            }
            _ => {
                // Remaining bridge strings.
                self.once(line, &scope)?;
                let v = Some(line.text("<value>")?);
                let b = self.bridge(ctx, line)?;
                match name {
                    "notification_topic" => b.notification_topic = v,
                    "remote_clientid" | "clientid" => b.remote_clientid = v,
                    "remote_username" | "username" => b.remote_username = v,
                    "remote_password" | "password" => b.remote_password = v,
                    "local_clientid" => b.local_clientid = v,
                    "local_username" => b.local_username = v,
                    "local_password" => b.local_password = v,
                    "bridge_bind_address" => b.bind_address = v,
                    "bridge_alpn" => b.alpn = v,
                    "bridge_ciphers" => b.ciphers = v,
                    "bridge_ciphers_tls1.3" => b.ciphers_tls13 = v,
                    _ => {
                        return Err(line.err(ErrorKind::UnknownOption {
                            name: name.to_owned(),
                            suggestion: None,
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    fn bridge_topic(&mut self, line: &Line<'_>) -> Res<BridgeTopic> {
        let words = line.check_words(
            line.words_after(1),
            1,
            5,
            "<pattern> [in|out|both [<qos> [<local prefix> <remote prefix>]]]",
        )?;
        let unquote = |w: &str| -> Option<String> {
            if w == "\"\"" {
                None
            } else {
                Some(w.to_owned())
            }
        };
        let pattern = words
            .first()
            .map(|w| unquote(w).unwrap_or_default())
            .unwrap_or_default();
        let direction = match words.get(1) {
            None => Direction::Out,
            Some(w) => match w.to_ascii_lowercase().as_str() {
                "out" => Direction::Out,
                "in" => Direction::In,
                "both" => Direction::Both,
                _ => return Err(line.invalid(w, "in, out or both")),
            },
        };
        let qos = match words.get(2) {
            None => 0,
            Some(w) => u8::try_from(line.int_in(w, 0, 2, "a QoS of 0, 1 or 2")?).unwrap_or(0),
        };
        if words.len() == 4 {
            return Err(line.err(ErrorKind::MissingValue {
                option: "topic".to_owned(),
                usage: "<pattern> <direction> <qos> <local prefix> <remote prefix>",
            }));
        }
        let local_prefix = words.get(3).and_then(|w| unquote(w));
        let remote_prefix = words.get(4).and_then(|w| unquote(w));
        Ok(BridgeTopic {
            pattern,
            direction,
            qos,
            local_prefix,
            remote_prefix,
            origin: line.loc(),
        })
    }

    fn plugin(&mut self, ctx: &Ctx, line: &Line<'_>) -> Res<&mut Plugin> {
        let missing = || {
            line.err(ErrorKind::NeedsPlugin {
                option: line.name.to_owned(),
            })
        };
        match ctx.plugin {
            Some(PluginAt::Global(i)) => {
                self.config.security.plugins.get_mut(i).ok_or_else(missing)
            }
            Some(PluginAt::Listener(cur, i)) => self
                .listener(cur, line)
                .security
                .plugins
                .get_mut(i)
                .ok_or_else(missing),
            None => Err(missing()),
        }
    }

    fn plugin_opt(&mut self, ctx: &Ctx, line: &Line<'_>, key: &str) -> Res<()> {
        if key.is_empty() {
            return Err(line.invalid(line.name, "plugin_opt_<key> <value>"));
        }
        if line.name.starts_with("auth_opt_") {
            self.warn(
                line,
                "\"auth_opt_\" is deprecated. Use \"plugin_opt_\" instead",
            );
        }
        let value = line.text("<value>")?;
        self.plugin(ctx, line)?
            .options
            .push((key.to_owned(), value));
        Ok(())
    }

    fn new_listener(&mut self, ctx: &mut Ctx, line: &Line<'_>) -> Res<()> {
        self.config.local_only = false;
        let words = line.n_words(1, 2, "<port> [<bind address>]")?;
        let port_word = words.first().copied().unwrap_or_default();
        let port = line.int_in(
            port_word,
            0,
            65535,
            "a port from 1 to 65535, or 0 with a Unix socket path",
        )?;
        let address = match (port, words.get(1)) {
            (0, Some(path)) => ListenAddress::Unix(PathBuf::from(path)),
            (0, None) => return Err(line.err(ErrorKind::UnixSocketNeedsPath)),
            (p, host) => ListenAddress::Tcp {
                port: u16::try_from(p).unwrap_or(1883),
                host: host.map(|h| (*h).to_owned()),
            },
        };
        self.config
            .listeners
            .push(Listener::new(line.loc(), address));
        ctx.listener = Cur::Index(self.config.listeners.len() - 1);
        Ok(())
    }

    fn new_bridge(&mut self, ctx: &mut Ctx, line: &Line<'_>) -> Res<()> {
        let name = line.word("<name>")?.to_owned();
        if self.config.bridges.iter().any(|b| b.name == name) {
            return Err(line.err(ErrorKind::DuplicateBridge { name }));
        }
        self.config.bridges.push(Bridge::new(line.loc(), name));
        ctx.bridge = Some(self.config.bridges.len() - 1);
        Ok(())
    }

    fn log_dest(&mut self, line: &Line<'_>) -> Res<()> {
        let (kind, rest) = match line.rest.split_once(is_blank) {
            Some((k, r)) => (k, r.trim_matches(is_blank)),
            None => (line.rest, ""),
        };
        if kind.is_empty() {
            return Err(line.missing("stdout|stderr|syslog|topic|dlt|none|file <path>"));
        }
        let dest = match kind {
            "none" => None,
            "stdout" => Some(LogDest::Stdout),
            "stderr" => Some(LogDest::Stderr),
            "syslog" => Some(LogDest::Syslog),
            "topic" => Some(LogDest::Topic),
            "dlt" => Some(LogDest::Dlt),
            "file" => {
                if self.log_file_set {
                    return Err(line.err(ErrorKind::LogFileTwice));
                }
                if rest.is_empty() {
                    return Err(line.missing("file <path>"));
                }
                self.log_file_set = true;
                Some(LogDest::File(PathBuf::from(rest)))
            }
            other => {
                return Err(line.invalid(
                    other,
                    "stdout, stderr, syslog, topic, dlt, none or file <path>",
                ));
            }
        };
        if kind != "file" && !rest.is_empty() && !rest.starts_with('#') {
            return Err(line.err(ErrorKind::TrailingJunk {
                option: line.name.to_owned(),
                junk: rest.to_owned(),
            }));
        }
        if !self.log_dest_set {
            self.log_dest_set = true;
            self.config.log_dest.clear();
        }
        match dest {
            None => self.config.log_dest.clear(),
            Some(d) => {
                if !self.config.log_dest.contains(&d) {
                    self.config.log_dest.push(d);
                }
            }
        }
        Ok(())
    }

    fn log_type(&mut self, line: &Line<'_>) -> Res<()> {
        let w = line.word(
            "error|warning|notice|information|debug|subscribe|unsubscribe|websockets|all|none",
        )?;
        let add: &[LogType] = match w {
            "none" => &[],
            "all" => &LogType::ALL,
            "error" => &[LogType::Error],
            "warning" => &[LogType::Warning],
            "notice" => &[LogType::Notice],
            "information" => &[LogType::Information],
            "debug" => &[LogType::Debug],
            "subscribe" => &[LogType::Subscribe],
            "unsubscribe" => &[LogType::Unsubscribe],
            "websockets" => &[LogType::Websockets],
            "internal" => &[LogType::Internal],
            other => {
                return Err(line.invalid(
                    other,
                    "error, warning, notice, information, debug, subscribe, unsubscribe, websockets, internal, all or none",
                ));
            }
        };
        if !self.log_type_set || w == "none" {
            self.log_type_set = true;
            self.config.log_type.clear();
        }
        for t in add {
            if !self.config.log_type.contains(t) {
                self.config.log_type.push(*t);
            }
        }
        self.config.log_type.sort();
        Ok(())
    }

    fn expiration(&mut self, line: &Line<'_>) -> Res<Duration> {
        let w = line.word("<number><h|d|w|m|y>")?;
        let expected = "a duration such as 12h, 14d, 2w, 6m or 1y (units h, d, w, m, y)";
        let split = w.char_indices().last().map_or(0, |(i, _)| i);
        let (digits, unit) = (
            w.get(..split).unwrap_or_default(),
            w.get(split..).unwrap_or_default(),
        );
        let mult: u64 = match unit {
            "h" => 3600,
            "d" => 86_400,
            "w" => 86_400 * 7,
            "m" => 86_400 * 30,
            "y" => 86_400 * 365,
            _ => return Err(line.invalid(w, expected)),
        };
        digits
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| n.checked_mul(mult))
            .map(Duration::from_secs)
            .ok_or_else(|| line.invalid(w, expected))
    }

    fn finish(mut self) -> Res<Config> {
        // The default listener exists when anything configured it (conf.c
        // config__parse_args), on the port given by "port" or 1883.
        if let Some(origin) = self.default_used.take() {
            let mut l = std::mem::replace(
                &mut self.default_listener,
                Listener::new(origin.clone(), ListenAddress::Unix(PathBuf::new())),
            );
            l.origin = origin;
            l.address = ListenAddress::Tcp {
                port: self.default_port.unwrap_or(1883),
                host: self.default_host.take(),
            };
            self.config.listeners.push(l);
        }
        // allow_anonymous: unset means true for the local-only default, false otherwise.
        let local_only = self.config.local_only;
        if !self.anonymous_set.contains_key("global") {
            self.config.security.allow_anonymous = local_only;
        }
        let default_set = self.anonymous_set.get("L-default").copied();
        let count = self.config.listeners.len();
        for (i, l) in self.config.listeners.iter_mut().enumerate() {
            let explicit = self.anonymous_set.get(&format!("L{i}")).copied();
            // The default listener is pushed last and carries the "L-default" scope.
            let explicit = if i + 1 == count && explicit.is_none() {
                default_set
            } else {
                explicit
            };
            if explicit.is_none() {
                l.security.allow_anonymous = local_only;
            }
        }
        for b in &self.config.bridges {
            let missing = if b.addresses.is_empty() {
                Some(("address", "address <host>[:<port>]"))
            } else if b.topics.is_empty() {
                Some(("topic", "topic <pattern> [in|out|both]"))
            } else if b.psk.is_some() && b.identity.is_none() {
                Some(("bridge_identity", "bridge_identity <identity>"))
            } else if b.identity.is_some() && b.psk.is_none() {
                Some(("bridge_psk", "bridge_psk <hex key>"))
            } else {
                None
            };
            if let Some((missing, usage)) = missing {
                return Err(ConfError {
                    path: b.origin.path.clone(),
                    line: Some(b.origin.line),
                    kind: ErrorKind::BridgeIncomplete {
                        name: b.name.clone(),
                        missing,
                        usage,
                    },
                });
            }
        }
        Ok(self.config)
    }
}

fn bytes_limit(v: i64) -> Limit<u64> {
    if v <= 0 {
        Limit::Unlimited
    } else {
        Limit::Max(u64::try_from(v).unwrap_or(u64::MAX))
    }
}

impl Limit<u64> {
    fn map_u32(self) -> Limit<u32> {
        match self {
            Self::Unlimited => Limit::Unlimited,
            Self::Max(v) => Limit::Max(u32::try_from(v).unwrap_or(u32::MAX)),
        }
    }
}

#[cfg(test)]
mod tests;
