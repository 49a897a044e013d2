//! Writes the seed corpora under `fuzz/corpus/<target>/` (or under the directory given as
//! the first argument): spec example packets of every type for MQTT 3.1, 3.1.1 and 5.0
//! encoded with tern-codec, the same packets cut and concatenated for `framer_split`, sample
//! mosquitto.conf files, password files with the reference vectors of
//! shared/reference/mosquitto-compat.md, ACL files and topic strings.
//!
//! Every packet seed is first checked with `tern_fuzz::codec::check_roundtrip`, every text
//! seed is run through its target once, so a seed that fails a check fails here.
//!
//! Run: `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus`. Re-running writes
//! the same files.

use std::fs;
use std::path::{Path, PathBuf};

use tern_codec::properties::{SubscriptionIds, UserProperties};
use tern_codec::{
    Ack, Auth, Connack, Connect, Disconnect, Packet, PacketId, Properties, ProtocolVersion,
    Publish, QoS, ReasonCode, RetainHandling, Suback, Subscribe, SubscribeFilters,
    SubscriptionOptions, Unsuback, Unsubscribe, UnsubscribeFilters, Will,
};
use tern_fuzz::codec::{check_roundtrip, split_input_bytes};

use ProtocolVersion::{V5, V31, V311};

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

const USERS: &[(&str, &str)] = &[("region", "eu"), ("k", "v")];
const FILTERS_311: &[(&str, SubscriptionOptions)] = &[
    (
        "sport/tennis/player1/#",
        SubscriptionOptions::qos(QoS::AtMostOnce),
    ),
    (
        "sport/+/ranking",
        SubscriptionOptions::qos(QoS::AtLeastOnce),
    ),
    (
        "$SYS/broker/uptime",
        SubscriptionOptions::qos(QoS::ExactlyOnce),
    ),
];
const FILTERS_5: &[(&str, SubscriptionOptions)] = &[
    (
        "a/b",
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendIfNew,
        },
    ),
    (
        "$share/group/sensors/+/temp",
        SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::DoNotSend,
        },
    ),
    ("#", SubscriptionOptions::qos(QoS::AtMostOnce)),
];

/// (file name, version, packet) for every packet type.
#[allow(clippy::vec_init_then_push)] // one push per packet, grouped under comments
fn packets() -> Vec<(&'static str, ProtocolVersion, Packet<'static>)> {
    let mut v = Vec::new();
    // ---- MQTT 3.1 / 3.1.1
    v.push((
        "v31-connect",
        V31,
        Packet::Connect(Connect::new(V31, "old-client")),
    ));
    v.push((
        "v311-connect-will-user-password",
        V311,
        Packet::Connect(Connect {
            keep_alive: 10,
            will: Some(Will {
                topic: "w",
                payload: b"bye",
                qos: QoS::AtLeastOnce,
                retain: false,
                properties: Properties::default(),
            }),
            username: Some("u"),
            password: Some(b"pw"),
            ..Connect::new(V311, "c1")
        }),
    ));
    v.push((
        "v311-connect-empty-id-persistent",
        V311,
        Packet::Connect(Connect {
            clean_start: false,
            keep_alive: 0,
            will: Some(Will {
                topic: "status/dev1",
                payload: b"offline",
                qos: QoS::ExactlyOnce,
                retain: true,
                properties: Properties::default(),
            }),
            ..Connect::new(V311, "")
        }),
    ));
    v.push((
        "v311-connack-accepted",
        V311,
        Packet::Connack(Connack {
            session_present: true,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }),
    ));
    v.push((
        "v311-connack-refused-5",
        V311,
        Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::NotAuthorized,
            properties: Properties::default(),
        }),
    ));
    v.push((
        "v311-publish-qos0",
        V311,
        Packet::Publish(Publish::new("a/b", b"hi")),
    ));
    v.push((
        "v311-publish-qos1-spec-3-11",
        V311,
        Packet::Publish(Publish {
            qos: QoS::AtLeastOnce,
            packet_id: Some(pid(10)),
            ..Publish::new("a/b", b"hi")
        }),
    ));
    v.push((
        "v311-publish-qos2-dup-retain",
        V311,
        Packet::Publish(Publish {
            dup: true,
            qos: QoS::ExactlyOnce,
            retain: true,
            packet_id: Some(pid(65535)),
            ..Publish::new("$SYS/x", b"")
        }),
    ));
    v.push(("v311-puback", V311, Packet::Puback(Ack::new(pid(1)))));
    v.push(("v311-pubrec", V311, Packet::Pubrec(Ack::new(pid(2)))));
    v.push(("v311-pubrel", V311, Packet::Pubrel(Ack::new(pid(3)))));
    v.push(("v311-pubcomp", V311, Packet::Pubcomp(Ack::new(pid(4)))));
    v.push((
        "v311-subscribe",
        V311,
        Packet::Subscribe(Subscribe {
            packet_id: pid(10),
            properties: Properties::default(),
            filters: SubscribeFilters::List(FILTERS_311),
        }),
    ));
    v.push((
        "v311-suback",
        V311,
        Packet::Suback(Suback {
            packet_id: pid(10),
            properties: Properties::default(),
            reasons: &[0, 1, 2, 0x80],
        }),
    ));
    v.push((
        "v311-unsubscribe",
        V311,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(11),
            properties: Properties::default(),
            filters: UnsubscribeFilters::List(&["a/b", "c/+/#"]),
        }),
    ));
    v.push((
        "v311-unsuback",
        V311,
        Packet::Unsuback(Unsuback {
            packet_id: pid(11),
            properties: Properties::default(),
            reasons: &[],
        }),
    ));
    v.push(("v311-pingreq", V311, Packet::Pingreq));
    v.push(("v311-pingresp", V311, Packet::Pingresp));
    v.push((
        "v311-disconnect",
        V311,
        Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
    ));

    // ---- MQTT 5.0
    v.push((
        "v5-connect-properties-will",
        V5,
        Packet::Connect(Connect {
            keep_alive: 60,
            properties: Properties {
                session_expiry_interval: Some(3600),
                receive_maximum: Some(20),
                maximum_packet_size: Some(1 << 20),
                topic_alias_maximum: Some(10),
                request_response_information: Some(1),
                request_problem_information: Some(0),
                user_properties: UserProperties::List(USERS),
                authentication_method: Some("SCRAM-SHA-1"),
                authentication_data: Some(b"client-first"),
                ..Properties::default()
            },
            will: Some(Will {
                topic: "clients/c5/status",
                payload: b"{\"online\":false}",
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties {
                    will_delay_interval: Some(5),
                    payload_format_indicator: Some(1),
                    message_expiry_interval: Some(120),
                    content_type: Some("application/json"),
                    response_topic: Some("clients/c5/reply"),
                    correlation_data: Some(b"\x00\x01"),
                    user_properties: UserProperties::List(USERS),
                    ..Properties::default()
                },
            }),
            username: None,
            password: Some(b"token-without-user"),
            ..Connect::new(V5, "c5")
        }),
    ));
    v.push((
        "v5-connect-minimal",
        V5,
        Packet::Connect(Connect::new(V5, "")),
    ));
    v.push((
        "v5-connack-capabilities",
        V5,
        Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties {
                session_expiry_interval: Some(0),
                receive_maximum: Some(100),
                maximum_qos: Some(1),
                retain_available: Some(0),
                maximum_packet_size: Some(268_435_460),
                assigned_client_identifier: Some("auto-1234"),
                topic_alias_maximum: Some(16),
                reason_string: Some("welcome"),
                user_properties: UserProperties::List(USERS),
                wildcard_subscription_available: Some(1),
                subscription_identifier_available: Some(1),
                shared_subscription_available: Some(0),
                server_keep_alive: Some(30),
                response_information: Some("resp/"),
                server_reference: Some("other.example:1883"),
                authentication_method: Some("SCRAM-SHA-1"),
                authentication_data: Some(b"server-final"),
                ..Properties::default()
            },
        }),
    ));
    v.push((
        "v5-connack-refused",
        V5,
        Packet::Connack(Connack {
            session_present: false,
            reason: ReasonCode::BadUserNameOrPassword,
            properties: Properties::default(),
        }),
    ));
    v.push((
        "v5-publish-properties",
        V5,
        Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            retain: true,
            packet_id: Some(pid(7)),
            properties: Properties {
                payload_format_indicator: Some(1),
                message_expiry_interval: Some(60),
                topic_alias: Some(3),
                response_topic: Some("reply/to"),
                correlation_data: Some(b"corr"),
                user_properties: UserProperties::List(USERS),
                subscription_identifiers: SubscriptionIds::List(&[1, 268_435_455]),
                content_type: Some("text/plain"),
                ..Properties::default()
            },
            ..Publish::new("t/x", b"{}")
        }),
    ));
    v.push((
        "v5-publish-empty-topic-alias",
        V5,
        Packet::Publish(Publish {
            properties: Properties {
                topic_alias: Some(3),
                ..Properties::default()
            },
            ..Publish::new("", b"payload")
        }),
    ));
    v.push(("v5-puback-short", V5, Packet::Puback(Ack::new(pid(1)))));
    v.push((
        "v5-puback-reason-string",
        V5,
        Packet::Puback(Ack {
            packet_id: pid(1),
            reason: ReasonCode::NoMatchingSubscribers,
            properties: Properties {
                reason_string: Some("nobody listens"),
                user_properties: UserProperties::List(USERS),
                ..Properties::default()
            },
        }),
    ));
    v.push((
        "v5-pubrec-quota",
        V5,
        Packet::Pubrec(Ack {
            packet_id: pid(2),
            reason: ReasonCode::QuotaExceeded,
            properties: Properties::default(),
        }),
    ));
    v.push((
        "v5-pubrel-not-found",
        V5,
        Packet::Pubrel(Ack {
            packet_id: pid(3),
            reason: ReasonCode::PacketIdentifierNotFound,
            properties: Properties::default(),
        }),
    ));
    v.push(("v5-pubcomp", V5, Packet::Pubcomp(Ack::new(pid(4)))));
    v.push((
        "v5-subscribe-options",
        V5,
        Packet::Subscribe(Subscribe {
            packet_id: pid(12),
            properties: Properties {
                subscription_identifiers: SubscriptionIds::List(&[42]),
                user_properties: UserProperties::List(USERS),
                ..Properties::default()
            },
            filters: SubscribeFilters::List(FILTERS_5),
        }),
    ));
    v.push((
        "v5-suback-reasons",
        V5,
        Packet::Suback(Suback {
            packet_id: pid(12),
            properties: Properties {
                reason_string: Some("partly"),
                ..Properties::default()
            },
            reasons: &[0x01, 0x02, 0x00, 0x87, 0x8F, 0x9E, 0xA1, 0xA2],
        }),
    ));
    v.push((
        "v5-unsubscribe",
        V5,
        Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(13),
            properties: Properties {
                user_properties: UserProperties::List(USERS),
                ..Properties::default()
            },
            filters: UnsubscribeFilters::List(&["a/b", "$share/g/#"]),
        }),
    ));
    v.push((
        "v5-unsuback",
        V5,
        Packet::Unsuback(Unsuback {
            packet_id: pid(13),
            properties: Properties::default(),
            reasons: &[0x00, 0x11, 0x87],
        }),
    ));
    v.push(("v5-pingreq", V5, Packet::Pingreq));
    v.push(("v5-pingresp", V5, Packet::Pingresp));
    v.push((
        "v5-disconnect-short",
        V5,
        Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
    ));
    v.push((
        "v5-disconnect-properties",
        V5,
        Packet::Disconnect(Disconnect {
            reason: ReasonCode::UseAnotherServer,
            properties: Properties {
                session_expiry_interval: Some(0),
                reason_string: Some("moving"),
                server_reference: Some("b.example"),
                user_properties: UserProperties::List(USERS),
                ..Properties::default()
            },
        }),
    ));
    v.push((
        "v5-auth-continue",
        V5,
        Packet::Auth(Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties {
                authentication_method: Some("SCRAM-SHA-1"),
                authentication_data: Some(b"server-first"),
                ..Properties::default()
            },
        }),
    ));
    v.push((
        "v5-auth-short",
        V5,
        Packet::Auth(Auth {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }),
    ));
    v
}

/// Seeds written by hand as bytes: forms the encoder never produces but peers may send.
fn raw_packets() -> Vec<(&'static str, ProtocolVersion, Vec<u8>)> {
    vec![
        // PUBACK with reason 0 and an empty property length (long form of the short one).
        ("v5-puback-long-form", V5, vec![0x40, 4, 0, 1, 0, 0]),
        // DISCONNECT with a reason code and no property length.
        ("v5-disconnect-no-props", V5, vec![0xE0, 1, 0x8E]),
        // Property identifier written as a two-byte variable byte integer.
        (
            "v5-publish-vbi-prop-id",
            V5,
            vec![0x30, 7, 0, 1, b'a', 3, 0x81, 0x00, 0],
        ),
        // Remaining length in 4 bytes (the maximum), not minimal.
        (
            "v311-pingreq-long-length",
            V311,
            vec![0xC0, 0x80, 0x80, 0x80, 0x00],
        ),
        // Remaining length 268,435,455 with no body.
        (
            "v311-publish-huge-length",
            V311,
            vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F],
        ),
        // Five-byte remaining length.
        (
            "v311-bad-length",
            V311,
            vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        // UTF-8: U+FFFF (allowed), an encoded surrogate, overlong NUL.
        (
            "v311-publish-u-ffff",
            V311,
            vec![0x30, 5, 0, 3, 0xEF, 0xBF, 0xBF],
        ),
        (
            "v311-publish-surrogate",
            V311,
            vec![0x30, 5, 0, 3, 0xED, 0xA0, 0x80],
        ),
        (
            "v311-publish-overlong-nul",
            V311,
            vec![0x30, 4, 0, 2, 0xC0, 0x80],
        ),
        // Reserved type 0 and flags on PINGREQ.
        ("reserved-type-0", V311, vec![0x00, 0x00]),
        ("v311-pingreq-flags", V311, vec![0xC1, 0x00]),
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create corpus dir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn version_index(v: ProtocolVersion) -> u8 {
    match v {
        V31 => 0,
        V311 => 1,
        V5 => 2,
    }
}

fn codec_seeds(root: &Path) -> usize {
    let mut n = 0;
    let mut encoded: Vec<(&str, ProtocolVersion, Vec<u8>)> = Vec::new();
    for (name, v, p) in packets() {
        let bytes = check_roundtrip(&p, v);
        tern_fuzz::codec::run_decode(&bytes);
        encoded.push((name, v, bytes));
    }
    for (name, v, bytes) in raw_packets() {
        tern_fuzz::codec::run_decode(&bytes);
        encoded.push((name, v, bytes));
    }
    for (name, v, bytes) in &encoded {
        write(&root.join("decode"), name, bytes);
        let split = split_input_bytes(version_index(*v), 0, &[], bytes);
        tern_fuzz::codec::run_framer_split(&split);
        write(&root.join("framer_split"), name, &split);
        n += 1;
    }
    // Streams: every packet of a version back to back, cut at a few places; one with a
    // maximum packet size that the stream's CONNECT exceeds.
    for v in [V311, V5] {
        let stream: Vec<u8> = encoded
            .iter()
            .filter(|(name, pv, _)| *pv == v && !name.contains("bad") && !name.contains("huge"))
            .take(12)
            .flat_map(|(_, _, b)| b.clone())
            .collect();
        let len = stream.len() as u16;
        let cuts = [1, 2, 5, len / 3, len / 2, len - 1];
        let vi = version_index(v);
        for (name, max, cuts) in [
            ("stream-whole", 0u8, &[][..]),
            ("stream-cut", 0, &cuts[..]),
            ("stream-max-64", 3, &cuts[..]),
        ] {
            let seed = split_input_bytes(vi, max, cuts, &stream);
            tern_fuzz::codec::run_framer_split(&seed);
            write(&root.join("framer_split"), &format!("v{vi}-{name}"), &seed);
        }
    }
    n
}

const CONF_SEEDS: &[(&str, &str)] = &[
    (
        "mosquitto-default",
        "# Place your local configuration in /etc/mosquitto/conf.d/\n\
         #\n\
         # A full description of the configuration file is at\n\
         # /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\
         \n\
         pid_file /run/mosquitto/mosquitto.pid\n\
         \n\
         persistence true\n\
         persistence_location /var/lib/mosquitto/\n\
         \n\
         log_dest file /var/log/mosquitto/mosquitto.log\n\
         \n\
         include_dir /etc/tern/conf.d\n\
         \0listener 1883\nallow_anonymous false\npassword_file /etc/tern/passwd\n\
         \0acl_file /etc/tern/acl\n",
    ),
    (
        "listeners-tls-websockets",
        "per_listener_settings true\n\
         listener 1883 127.0.0.1\n\
         allow_anonymous true\n\
         max_connections 100\n\
         \n\
         listener 8883\n\
         cafile /etc/tern/ca.crt\n\
         certfile /etc/tern/server.crt\n\
         keyfile /etc/tern/server.key\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         tls_version tlsv1.2\n\
         password_file /etc/tern/passwd\n\
         \n\
         listener 9001\n\
         protocol websockets\n\
         socket_domain ipv4\n\
         mount_point ws/\n\
         allow_anonymous false\n\
         \n\
         listener 0 /run/tern.sock\n",
    ),
    (
        "limits-and-logging",
        "max_inflight_messages 20\n\
         max_queued_messages 1000\n\
         max_queued_bytes 0\n\
         max_packet_size 1048576\n\
         message_size_limit 0\n\
         memory_limit 0\n\
         max_keepalive 65535\n\
         max_qos 2\n\
         retain_available true\n\
         persistent_client_expiration 2d\n\
         autosave_interval 1800\n\
         sys_interval 10\n\
         log_type error\n\
         log_type warning\n\
         log_type all\n\
         log_dest stdout\n\
         log_dest syslog\n\
         log_timestamp true\n\
         log_timestamp_format %Y-%m-%dT%H:%M:%S\n\
         connection_messages true\n\
         allow_zero_length_clientid true\n\
         auto_id_prefix auto-\n\
         set_tcp_nodelay false\n\
         upgrade_outgoing_qos false\n\
         queue_qos0_messages false\n",
    ),
    (
        "bridge",
        "listener 1883\n\
         connection cloud\n\
         address broker.example.com:8883 backup.example.com\n\
         topic sensors/# out 1 local/ remote/\n\
         topic commands/# in 2\n\
         topic status both 0 \"\" \"\"\n\
         bridge_protocol_version mqttv50\n\
         cleansession false\n\
         keepalive_interval 60\n\
         start_type automatic\n\
         restart_timeout 5 30\n\
         remote_clientid bridge-1\n\
         remote_username bridge\n\
         remote_password secret\n\
         notifications true\n\
         bridge_cafile /etc/tern/ca.crt\n\
         bridge_insecure false\n\
         try_private true\n",
    ),
    (
        "plugin-and-psk",
        "plugin /usr/lib/mosquitto_dynamic_security.so\n\
         plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json\n\
         auth_opt_backend files\n\
         listener 8884\n\
         psk_hint tern\n\
         psk_file /etc/tern/psk\n\
         ciphers PSK-AES128-CBC-SHA\n",
    ),
    (
        "deprecated-and-odd",
        "port 1884\n\
         bind_address 0.0.0.0\n\
         \tmax_connections -1   \n\
         # comment\n\
         \r\n\
         allow_anonymous 1\n\
         retry_interval 20\n\
         include_dir /etc/tern/empty.d\n\
         max_conections 5\n",
    ),
    (
        "include-in-include",
        "include_dir /etc/tern/conf.d\n\0include_dir /etc/tern/conf.d\n",
    ),
];

const PASSWD_SEEDS: &[(&str, &str)] = &[
    (
        "reference-vectors",
        "alice:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n\
         bob:$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==\n\
         \0carol\0secret",
    ),
    (
        "comments-duplicates-errors",
        "# users\n\
         \n\
         alice:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n\
         alice:$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==\r\n\
         plain:password\n\
         nohash:\n\
         :$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==\n\
         no colon here\n\
         argon:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n\
         \t spaced \t: $6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw== \n\
         extra:$6$AAECAwQFBgcICQoL$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==:trailing\n\
         \0alice\0secret",
    ),
    (
        "issue-2988-and-bad-fields",
        "test-user:$7$101$ctWMAD+/YScCjE9m$mzaBRxx9Lkl8afToTeTFSTXxtztLIiO5g==\n\
         nopad:$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w\n\
         zero:$7$0$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n\
         many:$7$10000000$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n\
         over:$7$10000001$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==\n\
         short-salt:$6$AAECAwQFBgcICQ$JqsxEv/ucyxjA5DKsQ+Y8CDWaQDNQI9FpAkmfwAqWfwZLk/JEGgM0EpylrJHAZKKyFQjJeZ3nFaHjPzOzPPmPw==\n\
         fields:$6$a$b$c\n\
         \0dave\0",
    ),
    (
        "plain-for-convert",
        "alice:secret\nbob:hunter2\n# keep\n\0alice\0secret",
    ),
    (
        "single-hash",
        "$7$101$AAECAwQFBgcICQoL$Xr99N9ym9ys8TWxis5ajETJq6EVYzmc6nb8t3pUYnPBbCAbICS4xejTltonXWCtJNBvA+By+TXUqU6qCblO00w==",
    ),
];

const ACL_SEEDS: &[(&str, &str)] = &[
    (
        "reference",
        "# topic lines before the first \"user\" line apply to anonymous clients\n\
         topic read $SYS/#\n\
         user alice\n\
         topic readwrite home/alice/#\n\
         topic deny home/alice/secret\n\
         pattern write sensor/%u/data\n\
         pattern write $SYS/broker/connection/%c/state\n\
         \0alice\0c1\0home/alice/lamp\0home/alice/#\
         \0-\0dev7\0$SYS/broker/connection/dev7/state\0$SYS/#",
    ),
    (
        "debian-example",
        "# This affects access control for clients with no username.\n\
         topic read $SYS/#\n\
         \n\
         # This only affects clients with username \"roger\".\n\
         user roger\n\
         topic foo/bar\n\
         \n\
         # This affects all clients.\n\
         pattern write $SYS/broker/connection/%c/state\n\
         \0roger\0c\0foo/bar\0foo/+",
    ),
    (
        "deny-and-patterns",
        "user bob smith\n\
         topic read a/#\n\
         topic deny a/secret/#\n\
         topic write a/+/in\n\
         pattern readwrite home/%u/#\n\
         pattern read devices/%c/+/state\n\
         pattern deny home/%u/locked\n\
         pattern read x%uy/#\n\
         \0bob smith\0dev\0a/b\0a/+\
         \0bob smith\0dev\0a/secret/x\0a/secret/+",
    ),
    ("errors", "topic\n\0a\0b\0c\0d"),
    (
        "shared-and-dollar",
        "user u\n\
         topic read $share/g/a/#\n\
         topic read +/status\n\
         topic read $SYS/+/status\n\
         \0u\0c\0$SYS/x/status\0+/status\
         \0u\0c\0a/b\0$share/g/a/#",
    ),
];

const TOPIC_SEEDS: &[(&str, &str)] = &[
    (
        "spec-4-7",
        "sport/tennis/player1/#\nsport/tennis/player1/ranking\nplayer2\n",
    ),
    ("plus", "+/+\n/finance\nx\n"),
    ("dollar", "#\n$SYS/broker/uptime\n$x\n"),
    ("shared", "$share/group/a/+/c\n$share/group/a/b/c\nb\n"),
    ("bad", "a/#/b\na+\n\u{0}\n"),
    ("empty-levels", "//+//#\n///\n\n"),
];

/// Target `routing`: every `\n`-separated part is both a filter and a topic name.
const ROUTING_SEEDS: &[(&str, &str)] = &[
    ("wildcards", "a/b\na/+\na/#\n#\n+/b\n+/+\na\na/b/c\nx/b"),
    (
        "dollar",
        "$SYS/#\n#\n+/uptime\n$SYS/uptime\n$SYS\n$\n+\n$share/g/#\n$share/g/$SYS/#",
    ),
    ("empty-levels", "/\n//\n+/+\n/+\na//b\na/+/b\na/\n+/\n/#\n#"),
    (
        "shared",
        "$share/g/a/#\n$share/g/a/#\n$share/h/a/+\n$share/g/+/b\na/#\na/b\na\n$share/g\n$share//x\n$share/g/#",
    ),
];

fn text_seeds(root: &Path) -> Vec<(&'static str, usize)> {
    let mut counts = Vec::new();
    type Seeds = &'static [(&'static str, &'static str)];
    type Run = fn(&[u8]);
    let sets: [(&str, Seeds, Run); 5] = [
        ("conf", CONF_SEEDS, tern_fuzz::conf::run),
        ("passwd", PASSWD_SEEDS, tern_fuzz::passwd::run),
        ("acl", ACL_SEEDS, tern_fuzz::acl::run),
        ("topic", TOPIC_SEEDS, tern_fuzz::topic::run),
        ("routing", ROUTING_SEEDS, tern_fuzz::routing::run),
    ];
    for (target, seeds, run) in sets {
        for (name, text) in seeds {
            run(text.as_bytes());
            write(&root.join(target), name, text.as_bytes());
        }
        counts.push((target, seeds.len()));
    }
    counts
}

fn alias_seeds(root: &Path) -> usize {
    // Format: inbound max (u16 LE), outbound max (u16 LE), then `arbitrary` operations; any
    // bytes are valid, these just start with small maxima and a few operations.
    let seeds: [(&str, Vec<u8>); 3] = [
        (
            "small-max",
            vec![
                2, 0, 2, 0, 0, 1, 1, 1, 0, 0, 1, 1, 2, 0, 1, 0, 1, 3, 1, 1, 2,
            ],
        ),
        ("zero-max", vec![0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 1]),
        (
            "large-max",
            vec![0xFF, 0xFF, 0x00, 0x80, 0, 1, 1, 0xFF, 0xFF, 1, 1, 1, 7],
        ),
    ];
    for (name, bytes) in &seeds {
        tern_fuzz::alias::run(bytes);
        write(&root.join("alias"), name, bytes);
    }
    seeds.len()
}

fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    let packets = codec_seeds(&root);
    println!(
        "decode: {packets} seeds, framer_split: {} seeds",
        packets + 6
    );
    for (target, n) in text_seeds(&root) {
        println!("{target}: {n} seeds");
    }
    println!("alias: {} seeds", alias_seeds(&root));
}
