//! Connection flags shared by `tern pub` and `tern sub`, with mosquitto_pub/mosquitto_sub
//! names, meanings and defaults, and their translation into [`tern_client::ClientOptions`].
//! No protocol logic here: only argument mapping and error wording.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tern_client::{
    ClientError, ClientOptions, Message, OwnedProperties, Pin, ProtocolVersion, QoS, TlsOptions,
    TlsVersion,
};

/// Flags common to both commands.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// Broker host to connect to.
    #[arg(short = 'h', long = "host", default_value = "localhost")]
    pub host: String,
    /// Network port (default 1883, or 8883 with TLS).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Client id (default: random).
    #[arg(short = 'i', long = "id")]
    pub id: Option<String>,
    /// Client id prefix; the process id is appended.
    #[arg(short = 'I', long = "id-prefix")]
    pub id_prefix: Option<String>,
    /// User name.
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw")]
    pub password: Option<String>,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keepalive: u16,
    /// Keep the session when disconnecting (clean session / clean start off).
    #[arg(short = 'c', long = "disable-clean-session")]
    pub disable_clean_session: bool,
    /// MQTT 5 session expiry interval in seconds; -1 (or ∞) never expires. Ignored before
    /// MQTT 5, as by mosquitto_pub/sub.
    #[arg(
        short = 'x',
        long = "session-expiry-interval",
        allow_negative_numbers = true
    )]
    pub session_expiry: Option<String>,
    /// MQTT version: 5, 311 or 31 (also mqttv5, mqttv311, mqttv31).
    #[arg(short = 'V', long = "protocol-version", default_value = "311")]
    pub protocol_version: String,
    /// Print debug messages.
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Do not print error messages.
    #[arg(long = "quiet")]
    pub quiet: bool,
    /// MQTT 5 property: -D COMMAND PROPERTY VALUE (user-property takes NAME VALUE).
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["CMD", "PROP", "VALUE"])]
    pub properties: Vec<String>,
    /// URL: mqtt(s)://[user[:pass]@]host[:port]/topic
    #[arg(short = 'L', long = "url")]
    pub url: Option<String>,
    /// Will topic.
    #[arg(long = "will-topic")]
    pub will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload")]
    pub will_payload: Option<String>,
    /// Will QoS.
    #[arg(long = "will-qos", default_value_t = 0)]
    pub will_qos: u8,
    /// Retain the will.
    #[arg(long = "will-retain")]
    pub will_retain: bool,
    /// CA certificate file (turns TLS on).
    #[arg(long = "cafile")]
    pub cafile: Option<PathBuf>,
    /// Directory of CA certificates (turns TLS on).
    #[arg(long = "capath")]
    pub capath: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long = "cert")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM: PKCS#1, PKCS#8 or SEC1).
    #[arg(long = "key")]
    pub key: Option<PathBuf>,
    /// Do not check that the certificate's host name matches (the chain is still checked).
    #[arg(long = "insecure")]
    pub insecure: bool,
    /// Lowest TLS version: tlsv1.3 or tlsv1.2 (tlsv1.1 is treated as tlsv1.2).
    #[arg(long = "tls-version")]
    pub tls_version: Option<String>,
    /// Use the system's CA certificates.
    #[arg(long = "tls-use-os-certs")]
    pub tls_use_os_certs: bool,
    /// Pin the broker's certificate by its SHA-1 or SHA-256 fingerprint (hex, colons allowed).
    #[arg(long = "fingerprint")]
    pub fingerprint: Vec<String>,
    /// Pin the broker's public key: base64 SHA-256 of its SubjectPublicKeyInfo.
    #[arg(long = "pin-spki")]
    pub pin_spki: Vec<String>,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// Which packet a `-D` property belongs to.
#[derive(Debug, Default, Clone)]
pub struct PropertySets {
    pub connect: OwnedProperties,
    pub publish: OwnedProperties,
    pub subscribe: OwnedProperties,
    pub unsubscribe: OwnedProperties,
    pub disconnect: OwnedProperties,
    pub will: OwnedProperties,
}

/// A parsed `-L` URL.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub topic: Option<String>,
}

pub fn parse_url(s: &str) -> anyhow::Result<Url> {
    let (tls, rest) = if let Some(r) = s.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = s.strip_prefix("mqtt://") {
        (false, r)
    } else {
        bail!("unsupported URL '{s}': use mqtt://host[:port]/topic or mqtts://host[:port]/topic");
    };
    let (authority, topic) = match rest.split_once('/') {
        Some((a, t)) => (a, (!t.is_empty()).then(|| t.to_owned())),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, pass) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(u.to_owned()), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => {
            let port = p
                .parse()
                .with_context(|| format!("'{p}' in the URL is not a port number"))?;
            (h.trim_matches(['[', ']']).to_owned(), Some(port))
        }
        _ => (hostport.trim_matches(['[', ']']).to_owned(), None),
    };
    if host.is_empty() {
        bail!("the URL '{s}' has no host");
    }
    Ok(Url {
        tls,
        user,
        pass,
        host,
        port,
        topic,
    })
}

pub fn parse_version(s: &str) -> anyhow::Result<ProtocolVersion> {
    Ok(match s {
        "5" | "mqttv5" | "50" => ProtocolVersion::V5,
        "311" | "mqttv311" => ProtocolVersion::V311,
        "31" | "mqttv31" => ProtocolVersion::V31,
        other => bail!("unknown protocol version '{other}': use 5, 311 or 31"),
    })
}

pub fn parse_qos(q: u8, what: &str) -> anyhow::Result<QoS> {
    Ok(match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => bail!("{what} must be 0, 1 or 2, not {q}"),
    })
}

/// `-x` as mosquitto_pub/sub read it (C `strtol` with base 0): decimal, `0x` hex or
/// leading-`0` octal, from -1 to 4294967295; -1 and `∞` mean "never expires".
pub fn parse_session_expiry(s: &str) -> anyhow::Result<u32> {
    if s == "∞" {
        return Ok(u32::MAX);
    }
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let not_number = || {
        anyhow::anyhow!(
            "-x '{s}' is not a number: give the session expiry in seconds, or -1 for a session that never expires"
        )
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(not_number());
    }
    let out_of_range = || {
        anyhow::anyhow!(
            "-x {s} is out of range: use 0 to 4294967295 seconds, or -1 for a session that never expires"
        )
    };
    let v = i64::from_str_radix(digits, radix).map_err(|_| out_of_range())?;
    let v = if neg { -v } else { v };
    match v {
        -1 => Ok(u32::MAX),
        v => u32::try_from(v).map_err(|_| out_of_range()),
    }
}

fn num<T: std::str::FromStr>(v: &str, prop: &str) -> anyhow::Result<T> {
    v.parse()
        .map_err(|_| anyhow::anyhow!("-D {prop}: '{v}' is not a valid number"))
}

/// Applies one `-D CMD PROP VALUE [VALUE]`.
fn apply_property(sets: &mut PropertySets, args: &[String]) -> anyhow::Result<()> {
    let (cmd, prop) = (args[0].as_str(), args[1].as_str());
    let value = args[2].as_str();
    let target = match cmd {
        "connect" => &mut sets.connect,
        "publish" => &mut sets.publish,
        "subscribe" => &mut sets.subscribe,
        "unsubscribe" => &mut sets.unsubscribe,
        "disconnect" => &mut sets.disconnect,
        "will" => &mut sets.will,
        other => bail!(
            "-D: unknown command '{other}': use connect, publish, subscribe, unsubscribe, disconnect or will"
        ),
    };
    let allowed: &[&str] = match cmd {
        "connect" => &[
            "authentication-method",
            "authentication-data",
            "maximum-packet-size",
            "receive-maximum",
            "request-problem-information",
            "request-response-information",
            "session-expiry-interval",
            "topic-alias-maximum",
            "user-property",
        ],
        "publish" | "will" => &[
            "content-type",
            "correlation-data",
            "message-expiry-interval",
            "payload-format-indicator",
            "response-topic",
            "topic-alias",
            "user-property",
            "will-delay-interval",
        ],
        "subscribe" => &["subscription-identifier", "user-property"],
        "unsubscribe" => &["user-property"],
        _ => &["reason-string", "session-expiry-interval", "user-property"],
    };
    if !allowed.contains(&prop) || (prop == "will-delay-interval" && cmd != "will") {
        bail!("-D {cmd} {prop}: this property is not allowed with {cmd}");
    }
    if prop == "user-property" {
        let Some(v) = args.get(3) else {
            bail!("-D {cmd} user-property needs a name and a value");
        };
        target.user_properties.push((value.to_owned(), v.clone()));
        return Ok(());
    }
    if args.len() > 3 {
        bail!("-D {cmd} {prop} takes one value");
    }
    match prop {
        "authentication-method" => target.authentication_method = Some(value.to_owned()),
        "authentication-data" => target.authentication_data = Some(value.as_bytes().to_vec()),
        "maximum-packet-size" => target.maximum_packet_size = Some(num(value, prop)?),
        "receive-maximum" => target.receive_maximum = Some(num(value, prop)?),
        "request-problem-information" => {
            target.request_problem_information = Some(num(value, prop)?)
        }
        "request-response-information" => {
            target.request_response_information = Some(num(value, prop)?)
        }
        "session-expiry-interval" => target.session_expiry_interval = Some(num(value, prop)?),
        "topic-alias-maximum" => target.topic_alias_maximum = Some(num(value, prop)?),
        "content-type" => target.content_type = Some(value.to_owned()),
        "correlation-data" => target.correlation_data = Some(value.as_bytes().to_vec()),
        "message-expiry-interval" => target.message_expiry_interval = Some(num(value, prop)?),
        "payload-format-indicator" => target.payload_format_indicator = Some(num(value, prop)?),
        "response-topic" => target.response_topic = Some(value.to_owned()),
        "topic-alias" => target.topic_alias = Some(num(value, prop)?),
        "will-delay-interval" => target.will_delay_interval = Some(num(value, prop)?),
        "subscription-identifier" => target.subscription_identifiers = vec![num(value, prop)?],
        "reason-string" => target.reason_string = Some(value.to_owned()),
        _ => bail!("-D {cmd} {prop}: unknown property"),
    }
    Ok(())
}

/// Everything a command needs to connect, resolved from the flags.
#[derive(Debug)]
pub struct Resolved {
    pub options: ClientOptions,
    pub props: PropertySets,
    /// The topic from `-L`, if any.
    pub url_topic: Option<String>,
    pub version: ProtocolVersion,
}

impl ConnArgs {
    /// Builds client options; `clean_default` is what mosquitto does without `-c`.
    pub fn resolve(&self, tool: &str) -> anyhow::Result<Resolved> {
        let version = parse_version(&self.protocol_version)?;
        let url = self.url.as_deref().map(parse_url).transpose()?;
        let mut props = PropertySets::default();
        // clap hands the -D values over flattened; each group is CMD PROP VALUE, plus a
        // fourth value for user-property.
        let mut rest: &[String] = &self.properties;
        while !rest.is_empty() {
            let n = if rest.get(1).is_some_and(|p| p == "user-property") {
                4
            } else {
                3
            };
            if rest.len() < n {
                bail!(
                    "-D needs COMMAND PROPERTY VALUE (user-property: COMMAND user-property NAME VALUE)"
                );
            }
            apply_property(&mut props, &rest[..n])?;
            rest = &rest[n..];
        }
        if !version.is_v5() && !self.properties.is_empty() {
            bail!("-D properties need MQTT 5: add -V 5");
        }
        let host = url
            .as_ref()
            .map(|u| u.host.clone())
            .unwrap_or_else(|| self.host.clone());
        let pins: Vec<Pin> = self
            .fingerprint
            .iter()
            .map(|f| {
                let f = f.trim();
                let f = ["sha256:", "sha1:", "SHA256:", "SHA1:"]
                    .iter()
                    .find_map(|p| f.strip_prefix(p))
                    .unwrap_or(f);
                Pin::from_fingerprint(f)
            })
            .chain(self.pin_spki.iter().map(|s| Pin::from_spki(s)))
            .collect::<Result<_, ClientError>>()?;
        let url_tls = url.as_ref().is_some_and(|u| u.tls);
        let tls_on = self.cafile.is_some()
            || self.capath.is_some()
            || !pins.is_empty()
            || self.tls_use_os_certs
            || url_tls;
        if !tls_on && (self.cert.is_some() || self.key.is_some()) {
            bail!(
                "--cert and --key need TLS: add --cafile with the broker's CA (or --fingerprint)"
            );
        }
        if !tls_on && self.insecure {
            bail!("--insecure only makes sense with TLS: add --cafile");
        }
        let port = url
            .as_ref()
            .and_then(|u| u.port)
            .or(self.port)
            .unwrap_or(if tls_on { 8883 } else { 1883 });
        let mut o = ClientOptions::new(host.clone(), port).version(version);
        o.mqtt.keep_alive_secs = self.keepalive;
        if self.keepalive != 0 && self.keepalive < 5 {
            bail!(
                "keepalive must be 0 or at least 5 seconds, not {}",
                self.keepalive
            );
        }
        let id = match (&self.id, &self.id_prefix) {
            (Some(_), Some(_)) => bail!("-i and -I cannot be used together"),
            (Some(id), None) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            (None, None) => String::new(),
        };
        let expiry = self
            .session_expiry
            .as_deref()
            .map(parse_session_expiry)
            .transpose()?;
        // As mosquitto_pub/sub: a kept session needs a client id given with -i (an -I id
        // changes with every run); -x is ignored before MQTT 5.
        let expiry = match (expiry, version.is_v5()) {
            (Some(x), true) => Some(x),
            (None, true) if self.disable_clean_session => Some(u32::MAX),
            (_, true) => props.connect.session_expiry_interval,
            (_, false) => None,
        };
        if expiry == Some(u32::MAX) && self.id.is_none() {
            bail!(
                "a session that never expires (-c without -x, or -x -1) needs a client id: add -i ID, or -x SECONDS without -c"
            );
        }
        if self.disable_clean_session && self.id.is_none() {
            bail!(
                "-c keeps the session, so the broker must recognise this client next time: add -i ID (-I makes a new id each run)"
            );
        }
        o.mqtt.client_id = id;
        o.mqtt.clean_start = !self.disable_clean_session;
        o.mqtt.session_expiry_interval = expiry;
        let user = url
            .as_ref()
            .and_then(|u| u.user.clone())
            .or_else(|| self.username.clone());
        let pass = url
            .as_ref()
            .and_then(|u| u.pass.clone())
            .or_else(|| self.password.clone());
        if let Some(u) = user {
            o.mqtt.username = Some(u);
        }
        if let Some(p) = pass {
            if o.mqtt.username.is_none() && !version.is_v5() {
                bail!("-P (password) needs -u (user name) before MQTT 5");
            }
            o.mqtt.password = Some(p.into_bytes());
        }
        if let Some(t) = &self.will_topic {
            let mut w = Message::new(t.clone(), self.will_payload.clone().unwrap_or_default())
                .with_qos(parse_qos(self.will_qos, "--will-qos")?)
                .with_retain(self.will_retain);
            w.properties = props.will.clone();
            o.mqtt.will = Some(w);
        } else if self.will_payload.is_some() || self.will_retain {
            bail!("--will-payload and --will-retain need --will-topic");
        }
        let mut cp = props.connect.clone();
        if let Some(r) = cp.receive_maximum.take() {
            o.mqtt.receive_maximum = r;
        }
        if let Some(m) = cp.maximum_packet_size.take() {
            o.mqtt.max_packet_size = m;
        }
        if let Some(t) = cp.topic_alias_maximum.take() {
            o.mqtt.topic_alias_maximum = t;
        }
        cp.session_expiry_interval = None;
        o.mqtt.connect_properties = cp;
        if tls_on {
            let min_version = match self.tls_version.as_deref() {
                None | Some("tlsv1.2") | Some("tlsv1.1") | Some("tlsv1") => TlsVersion::V12,
                Some("tlsv1.3") => TlsVersion::V13,
                Some(other) => bail!("--tls-version '{other}': use tlsv1.3 or tlsv1.2"),
            };
            o.tls = Some(TlsOptions {
                ca_files: self.cafile.iter().cloned().collect(),
                ca_path: self.capath.clone(),
                use_system_roots: self.tls_use_os_certs
                    || url_tls
                    || (self.cafile.is_none() && self.capath.is_none()),
                client_cert: self.cert.clone(),
                client_key: self.key.clone(),
                dangerous_skip_hostname_check: self.insecure,
                pins,
                min_version,
                server_name: None,
                alpn: Vec::new(),
            });
        }
        o.connect_timeout = Duration::from_secs(30);
        let _ = tool;
        Ok(Resolved {
            options: o,
            props,
            url_topic: url.and_then(|u| u.topic),
            version,
        })
    }
}

/// Exit status for a client error, like mosquitto_pub/sub: the CONNACK code on refusal
/// (3.1.1 return code or 5.0 reason code), 1 otherwise.
pub fn exit_code(e: &ClientError, version: ProtocolVersion) -> i32 {
    match e.refusal() {
        Some(r) if version.is_v5() => i32::from(r.as_u8()),
        Some(r) => i32::from(r.to_v3_connack()),
        None => 1,
    }
}

/// Prints an error unless `--quiet`.
pub fn report(quiet: bool, tool: &str, e: &dyn std::fmt::Display) {
    if !quiet {
        eprintln!("{tool}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtts://u:p@broker.local:8884/a/b").unwrap(),
            Url {
                tls: true,
                user: Some("u".into()),
                pass: Some("p".into()),
                host: "broker.local".into(),
                port: Some(8884),
                topic: Some("a/b".into()),
            }
        );
        let u = parse_url("mqtt://h").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.topic), ("h", None, None));
        let u = parse_url("mqtt://[::1]:1884/t").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(1884)));
        assert!(parse_url("http://h/t").is_err());
        assert!(parse_url("mqtt://h:x/t").is_err());
    }

    #[test]
    fn session_expiry() {
        for (s, v) in [
            ("0", 0),
            ("60", 60),
            ("0x10", 16),
            ("010", 8),
            ("-1", u32::MAX),
            ("∞", u32::MAX),
            ("4294967295", u32::MAX),
        ] {
            assert_eq!(parse_session_expiry(s).unwrap(), v, "{s}");
        }
        for s in [
            "",
            "abc",
            "12s",
            "-2",
            "4294967296",
            "99999999999999999999",
            "0x",
        ] {
            assert!(parse_session_expiry(s).is_err(), "{s}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("mqttv5").unwrap(), ProtocolVersion::V5);
        assert_eq!(parse_version("31").unwrap(), ProtocolVersion::V31);
        assert!(parse_version("4").is_err());
    }

    #[test]
    fn properties() {
        let mut s = PropertySets::default();
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        apply_property(&mut s, &a(&["publish", "user-property", "k", "v"])).unwrap();
        apply_property(&mut s, &a(&["publish", "content-type", "text/plain"])).unwrap();
        apply_property(&mut s, &a(&["connect", "receive-maximum", "5"])).unwrap();
        assert_eq!(s.publish.user_properties, [("k".into(), "v".into())]);
        assert_eq!(s.connect.receive_maximum, Some(5));
        assert!(apply_property(&mut s, &a(&["subscribe", "content-type", "x"])).is_err());
        assert!(apply_property(&mut s, &a(&["connect", "receive-maximum", "x"])).is_err());
        assert!(apply_property(&mut s, &a(&["publish", "user-property", "k"])).is_err());
    }
}
