//! From a parsed mosquitto.conf ([`tern_conf::conf::Config`]) to [`ServerSettings`]: bind
//! addresses, per-listener security, the core's limits. Mosquitto's "0 means unlimited" is
//! mapped to tern's finite caps here, in one place. Options that tern does not implement yet
//! are refused with a message that says so, never silently ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tern_broker_core::{AllowAll, Authenticator, Authorizer, CoreConfig, ListenerLimits};
use tern_codec::QoS;
use tern_conf::acl::AclFile;
use tern_conf::conf::{
    Config, ListenAddress, Listener, Protocol as ConfProtocol, Security, SocketDomain,
};
use tern_conf::passwd::PasswordFile;

use crate::security::{Acl, Passwords};
use crate::tls::{MinVersion, TlsAcceptor, TlsError, TlsOptions};
use crate::{ListenerSettings, ListenerSpec, Protocol, ServerSettings};

/// The caps tern puts where Mosquitto allows "unlimited".
pub mod caps {
    /// `max_inflight_messages 0`.
    pub const INFLIGHT: u16 = 65_535;
    /// `max_queued_messages 0`: per session.
    pub const QUEUED_MESSAGES: u32 = 100_000;
    /// `max_queued_bytes 0`: per session, 64 MiB.
    pub const QUEUED_BYTES: u64 = 64 * 1024 * 1024;
    /// `message_size_limit 0`: the protocol's own maximum.
    pub const MESSAGE_SIZE: u32 = 268_435_455;
    /// `max_packet_size` unset: 16 MiB (each connection buffers at most one such packet).
    pub const PACKET_SIZE: u32 = 16 * 1024 * 1024;
    /// `memory_limit 0`: 1 GiB of queued messages.
    pub const MEMORY: u64 = 1024 * 1024 * 1024;
    /// `max_connections -1`.
    pub const CONNECTIONS: u32 = 100_000;
}

/// Why the configuration cannot be served. Each message names the file and line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("{at}: {what}")]
    Unsupported { at: String, what: String },
    #[error(
        "{at}: cannot resolve listener address '{host}': {source}. Use an IP address or a name in /etc/hosts"
    )]
    Resolve {
        at: String,
        host: String,
        source: std::io::Error,
    },
    #[error(
        "{path}: cannot read the password file: {source}. Check the path and that the broker's user can read it"
    )]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: cannot read the ACL file: {source}. Check the path and that the broker's user can read it"
    )]
    AclFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Acl(#[from] tern_conf::acl::AclError),
}

/// Settings and the warnings to print at start-up.
#[derive(Debug)]
pub struct Built {
    pub settings: ServerSettings,
    pub warnings: Vec<String>,
}

/// `persistence true`: the store file is `persistence_location` (default: the current
/// directory, as in Mosquitto) joined with `persistence_file`.
pub fn persistence(c: &Config) -> Option<tern_store::StoreOptions> {
    if !c.persistence {
        return None;
    }
    let dir = c
        .persistence_location
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    Some(tern_store::StoreOptions {
        path: dir.join(&c.persistence_file),
        sync: c.persistence_sync,
        autosave_interval: c.autosave_interval,
        autosave_on_changes: c.autosave_on_changes,
    })
}

/// The broker-wide core limits from the general options.
pub fn core_config(c: &Config) -> CoreConfig {
    let d = CoreConfig::default();
    CoreConfig {
        max_inflight_messages: c.max_inflight_messages.capped(caps::INFLIGHT),
        max_queued_messages: c.max_queued_messages.capped(caps::QUEUED_MESSAGES) as usize,
        max_queued_bytes: c.max_queued_bytes.capped(caps::QUEUED_BYTES) as usize,
        message_size_limit: c.message_size_limit.capped(caps::MESSAGE_SIZE) as usize,
        max_packet_size: c.max_packet_size.capped(caps::PACKET_SIZE),
        max_keepalive: c.max_keepalive,
        retain_available: c.retain_available,
        persistent_client_expiration: c.persistent_client_expiration.map(|d| d.as_secs()),
        queue_qos0_messages: c.queue_qos0_messages,
        upgrade_outgoing_qos: c.upgrade_outgoing_qos,
        sys_interval: u64::from(c.sys_interval),
        memory_limit: c.memory_limit.capped(caps::MEMORY) as usize,
        allow_zero_length_clientid: c.security.allow_zero_length_clientid,
        auto_id_prefix: c.security.auto_id_prefix.clone(),
        ..d
    }
}

/// A warning for each limit configured above the cap tern keeps (so memory stays bounded),
/// instead of lowering it silently.
pub fn cap_warnings(c: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let mut check = |name: &str, value: Option<u64>, cap: u64, per: &str| {
        if let Some(v) = value.filter(|v| *v > cap) {
            w.push(format!(
                "{name} {v} is more than tern allows ({cap}{per}); {cap} is used. Lower it in the configuration to silence this warning"
            ));
        }
    };
    check(
        "max_inflight_messages",
        c.max_inflight_messages.get().map(u64::from),
        u64::from(caps::INFLIGHT),
        "",
    );
    check(
        "max_queued_messages",
        c.max_queued_messages.get().map(u64::from),
        u64::from(caps::QUEUED_MESSAGES),
        " per session",
    );
    check(
        "max_queued_bytes",
        c.max_queued_bytes.get(),
        caps::QUEUED_BYTES,
        " bytes per session",
    );
    check(
        "message_size_limit",
        c.message_size_limit.get().map(u64::from),
        u64::from(caps::MESSAGE_SIZE),
        " bytes",
    );
    check(
        "max_packet_size",
        c.max_packet_size.get().map(u64::from),
        u64::from(caps::PACKET_SIZE),
        " bytes",
    );
    check(
        "memory_limit",
        c.memory_limit.get(),
        caps::MEMORY,
        " bytes of queued messages",
    );
    w
}

fn at(l: &Listener) -> String {
    l.origin.to_string()
}

/// A listener as log lines name it: `8883`, `127.0.0.1:8883` or the socket path.
fn listener_name(l: &Listener) -> String {
    match &l.address {
        ListenAddress::Tcp { port, host: None } => port.to_string(),
        ListenAddress::Tcp {
            port,
            host: Some(h),
        } => format!("{h}:{port}"),
        ListenAddress::Unix(p) => p.display().to_string(),
    }
}

fn unsupported(l: &Listener, what: &str) -> SettingsError {
    SettingsError::Unsupported {
        at: at(l),
        what: what.to_owned(),
    }
}

/// Loaded security files, shared by listeners that use the same ones.
#[derive(Default)]
struct Loaded {
    passwords: Vec<(PathBuf, Arc<dyn Authenticator>)>,
    acls: Vec<(PathBuf, Arc<dyn Authorizer>)>,
}

impl Loaded {
    fn passwords(
        &mut self,
        path: &Path,
        warnings: &mut Vec<String>,
    ) -> Result<Arc<dyn Authenticator>, SettingsError> {
        if let Some((_, a)) = self.passwords.iter().find(|(p, _)| p == path) {
            return Ok(a.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::PasswordFile {
            path: path.to_owned(),
            source,
        })?;
        let file = PasswordFile::parse(path, &text);
        for e in file.errors() {
            // A bad line refuses that user only; the others still work.
            warnings.push(e.to_string());
        }
        let a: Arc<dyn Authenticator> = Arc::new(Passwords(file));
        self.passwords.push((path.to_owned(), a.clone()));
        Ok(a)
    }

    fn acl(&mut self, path: &Path) -> Result<Arc<dyn Authorizer>, SettingsError> {
        if let Some((_, a)) = self.acls.iter().find(|(p, _)| p == path) {
            return Ok(a.clone());
        }
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::AclFileRead {
            path: path.to_owned(),
            source,
        })?;
        let a: Arc<dyn Authorizer> = Arc::new(Acl(AclFile::parse(path, &text)?));
        self.acls.push((path.to_owned(), a.clone()));
        Ok(a)
    }
}

fn check_supported(l: &Listener, sec: &Security) -> Result<(), SettingsError> {
    if !sec.plugins.is_empty() {
        return Err(unsupported(
            l,
            "plugins are C shared objects for Mosquitto; tern cannot load them. Remove the plugin lines (password_file and acl_file are supported natively)",
        ));
    }
    if sec.psk_file.is_some() || l.tls.psk_hint.is_some() {
        return Err(unsupported(
            l,
            "TLS-PSK (psk_file, psk_hint) is not supported by tern; use certificates (tern pki) instead",
        ));
    }
    if l.mount_point.is_some() {
        return Err(unsupported(
            l,
            "mount_point is not supported yet; remove it",
        ));
    }
    Ok(())
}

/// Builds the server settings for `c`. `cli_ports` are mosquitto's `-p` ports, used only in
/// local-only mode (no listener in the file).
pub fn build(c: &Config, cli_ports: &[u16]) -> Result<Built, SettingsError> {
    build_with(c, cli_ports, true)
}

/// Like [`build`] for SIGHUP: TLS files are not read here (each listener re-reads its own and
/// keeps the old ones if the new ones are bad), so a bad certificate cannot block the reload
/// of the password file, the ACL or the limits.
pub fn build_for_reload(c: &Config, cli_ports: &[u16]) -> Result<Built, SettingsError> {
    build_with(c, cli_ports, false)
}

fn build_with(c: &Config, cli_ports: &[u16], with_tls: bool) -> Result<Built, SettingsError> {
    let mut warnings: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    warnings.extend(cap_warnings(c));
    let core = core_config(c);
    let mut loaded = Loaded::default();
    let mut listeners = Vec::new();
    if c.listeners.is_empty() {
        listeners = local_only(cli_ports, &core, &c.security, &mut loaded, &mut warnings)?;
    } else if !cli_ports.is_empty() {
        warnings.push("-p ports are ignored because the configuration file defines listeners (as mosquitto does)".to_owned());
    }
    if !c.bridges.is_empty() {
        return Err(SettingsError::Unsupported {
            at: c.bridges[0].origin.to_string(),
            what: "bridges (connection ...) are not supported yet; remove the bridge section to run tern".to_owned(),
        });
    }
    for l in &c.listeners {
        let sec = c.security_for(l);
        check_supported(l, sec)?;
        let protocol = match l.protocol {
            ConfProtocol::Mqtt => Protocol::Mqtt,
            ConfProtocol::Websockets => Protocol::WebSockets,
        };
        let mut settings = listener_settings(l, sec, protocol, &mut loaded, &mut warnings)?;
        let tls_options = tls_options(l, &mut warnings)?;
        if with_tls && let Some(o) = &tls_options {
            let (acceptor, tls_warnings) =
                TlsAcceptor::new(o.clone(), listener_name(l)).map_err(|e| {
                    // A cipher name is wrong on its own line, not on the listener's.
                    let line = match &e {
                        TlsError::UnknownCipher { option, .. } if *option == "ciphers" => {
                            l.tls.ciphers_at.as_ref()
                        }
                        TlsError::UnknownCipher { .. } => l.tls.ciphers_tls13_at.as_ref(),
                        // A file's problem, on the line that named the file (the last
                        // one, when one file is named twice: keyfile and certfile usually
                        // come after cafile).
                        TlsError::Read { path, .. } | TlsError::Content { path, .. } => l
                            .tls
                            .files_at
                            .iter()
                            .rev()
                            .find(|(p, _)| p.display().to_string() == *path)
                            .map(|(_, at)| at),
                        _ => None,
                    };
                    SettingsError::Unsupported {
                        at: line.map_or_else(|| at(l), ToString::to_string),
                        what: e.to_string(),
                    }
                })?;
            warnings.extend(tls_warnings.warnings);
            if let Some(w) = tls_warnings.ciphers {
                let line = l
                    .tls
                    .ciphers_at
                    .as_ref()
                    .map_or_else(|| at(l), ToString::to_string);
                warnings.push(format!("{line}: {w}"));
            }
            settings.tls = Some(Arc::new(acceptor));
        }
        for addr in bind_addresses(l)? {
            listeners.push(ListenerSpec {
                addr,
                settings: settings.clone(),
                tls_options: tls_options.clone(),
            });
        }
    }
    let settings = ServerSettings {
        core,
        listeners,
        max_connections: c.global_max_connections.capped(caps::CONNECTIONS) as usize,
        connect_timeout: c.connect_timeout.max(Duration::from_millis(100)),
        max_connections_per_address: c.max_connections_per_address as usize,
        tls_handshake_rate: c.tls_handshake_rate,
        websockets_headers_size: usize::from(c.websockets_headers_size),
        persistence: persistence(c),
    };
    Ok(Built { settings, warnings })
}

fn listener_settings(
    l: &Listener,
    sec: &Security,
    protocol: Protocol,
    loaded: &mut Loaded,
    warnings: &mut Vec<String>,
) -> Result<ListenerSettings, SettingsError> {
    let authenticator = sec
        .password_file
        .as_deref()
        .map(|p| loaded.passwords(p, warnings))
        .transpose()?;
    let authorizer = match &sec.acl_file {
        Some(p) => loaded.acl(p)?,
        None => Arc::new(AllowAll),
    };
    let max_qos = match l.max_qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    Ok(ListenerSettings {
        protocol,
        allow_anonymous: sec.allow_anonymous,
        authenticator,
        use_username_as_clientid: l.use_username_as_clientid,
        max_connections: l.max_connections.capped(caps::CONNECTIONS) as usize,
        limits: ListenerLimits {
            max_qos,
            max_topic_alias: l.max_topic_alias,
            max_topic_alias_broker: l.max_topic_alias_broker,
            allow_zero_length_clientid: sec.allow_zero_length_clientid,
            auto_id_prefix: sec.auto_id_prefix.clone(),
            authorizer,
        },
        tls: None,
    })
}

/// The listener's TLS options, when `certfile`/`keyfile` are set (no file is read here).
fn tls_options(
    l: &Listener,
    warnings: &mut Vec<String>,
) -> Result<Option<TlsOptions>, SettingsError> {
    let t = &l.tls;
    let (certfile, keyfile) = match (&t.certfile, &t.keyfile) {
        (None, None) => {
            if t.cafile.is_some() || t.capath.is_some() || t.require_certificate {
                return Err(unsupported(
                    l,
                    "cafile, capath and require_certificate need certfile and keyfile to enable TLS on this listener",
                ));
            }
            return Ok(None);
        }
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => return Err(unsupported(l, "TLS needs both certfile and keyfile")),
    };
    if t.tls_keyform == tern_conf::conf::KeyForm::Engine || t.tls_engine.is_some() {
        return Err(unsupported(
            l,
            "tls_engine / tls_keyform engine (OpenSSL engines) are not available in tern; use a PEM key file",
        ));
    }
    if t.dhparamfile.is_some() {
        warnings.push(format!(
            "{}: dhparamfile is ignored: tern offers only ECDHE key exchange",
            at(l)
        ));
    }
    let min_version = match t.tls_version {
        Some(tern_conf::conf::TlsVersion::Tls1_3) => MinVersion::Tls13,
        Some(tern_conf::conf::TlsVersion::Tls1_1) => {
            warnings.push(format!(
                "{}: tls_version tlsv1.1: TLS 1.1 is not offered; TLS 1.2 is the minimum",
                at(l)
            ));
            MinVersion::Tls12
        }
        _ => MinVersion::Tls12,
    };
    let options = TlsOptions {
        cafile: t.cafile.clone(),
        capath: t.capath.clone(),
        certfile,
        keyfile,
        crlfile: t.crlfile.clone(),
        require_certificate: t.require_certificate,
        use_identity_as_username: t.use_identity_as_username,
        use_subject_as_username: t.use_subject_as_username,
        min_version,
        ciphers: t.ciphers.clone(),
        ciphers_tls13: t.ciphers_tls13.clone(),
        max_fragment_size: t.tls_max_fragment_size.map(usize::from),
    };
    Ok(Some(options))
}

fn bind_addresses(l: &Listener) -> Result<Vec<SocketAddr>, SettingsError> {
    let (port, host) = match &l.address {
        ListenAddress::Tcp { port, host } => (*port, host.clone()),
        ListenAddress::Unix(_) => {
            return Err(unsupported(
                l,
                "unix socket listeners are not supported yet; use a TCP port",
            ));
        }
    };
    let want = |ip: &IpAddr| match l.socket_domain {
        Some(SocketDomain::Ipv4) => ip.is_ipv4(),
        Some(SocketDomain::Ipv6) => ip.is_ipv6(),
        None => true,
    };
    let addrs: Vec<SocketAddr> = match host {
        None => [
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        ]
        .into_iter()
        .filter(want)
        .map(|ip| SocketAddr::new(ip, port))
        .collect(),
        Some(h) => {
            let resolved =
                (h.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|source| SettingsError::Resolve {
                        at: at(l),
                        host: h.clone(),
                        source,
                    })?;
            let mut v: Vec<SocketAddr> = resolved.filter(|a| want(&a.ip())).collect();
            v.dedup();
            v
        }
    };
    Ok(addrs)
}

/// Mosquitto 2's local-only mode: loopback listeners on the `-p` ports (default 1883),
/// anonymous access allowed unless the file says otherwise.
fn local_only(
    ports: &[u16],
    core: &CoreConfig,
    sec: &Security,
    loaded: &mut Loaded,
    warnings: &mut Vec<String>,
) -> Result<Vec<ListenerSpec>, SettingsError> {
    let ports = if ports.is_empty() {
        vec![1883]
    } else {
        ports.to_vec()
    };
    let authenticator = sec
        .password_file
        .as_deref()
        .map(|p| loaded.passwords(p, warnings))
        .transpose()?;
    let authorizer: Arc<dyn Authorizer> = match &sec.acl_file {
        Some(p) => loaded.acl(p)?,
        None => Arc::new(AllowAll),
    };
    let settings = ListenerSettings {
        allow_anonymous: sec.allow_anonymous,
        authenticator,
        limits: ListenerLimits {
            authorizer,
            ..ListenerLimits::from_core(core)
        },
        ..ListenerSettings::default()
    };
    let mut out = Vec::new();
    for port in ports {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            out.push(ListenerSpec {
                addr: SocketAddr::new(ip, port),
                settings: settings.clone(),
                tls_options: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_conf::conf::FsLoader;

    fn config(text: &str) -> Config {
        Config::parse_str(std::path::Path::new("t.conf"), text, &FsLoader).expect("parses")
    }

    #[test]
    fn unlimited_means_tern_s_caps_and_explicit_values_are_kept() {
        let c = core_config(&config(
            "max_inflight_messages 0\nmax_queued_messages 0\nmax_queued_bytes 0\nmemory_limit 0\n",
        ));
        assert_eq!(c.max_inflight_messages, caps::INFLIGHT);
        assert_eq!(c.max_queued_messages, caps::QUEUED_MESSAGES as usize);
        assert_eq!(c.max_queued_bytes, caps::QUEUED_BYTES as usize);
        assert_eq!(c.memory_limit, caps::MEMORY as usize);
        assert_eq!(c.max_packet_size, caps::PACKET_SIZE, "unset");
        let c = core_config(&config(
            "max_inflight_messages 7\nmax_queued_messages 9\nmax_queued_bytes 1000\nmax_packet_size 2048\n",
        ));
        assert_eq!(
            (
                c.max_inflight_messages,
                c.max_queued_messages,
                c.max_queued_bytes,
                c.max_packet_size
            ),
            (7, 9, 1000, 2048)
        );
    }

    #[test]
    fn values_above_a_cap_are_lowered_with_a_warning() {
        let c =
            config("max_queued_bytes 100000000\nmax_packet_size 20000000\nmax_queued_messages 5\n");
        assert_eq!(
            core_config(&c).max_queued_bytes,
            caps::QUEUED_BYTES as usize
        );
        assert_eq!(core_config(&c).max_packet_size, caps::PACKET_SIZE);
        let w = cap_warnings(&c);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("max_queued_bytes 100000000 is more than tern allows (67108864 bytes per session); 67108864 is used"), "{w:?}");
        assert!(w[1].starts_with("max_packet_size 20000000"), "{w:?}");
        assert!(
            cap_warnings(&config("max_queued_bytes 0\n")).is_empty(),
            "unlimited is not a mistake"
        );
    }
}
