//! Unit tests for `conf.rs`: one group per option family, the exact error text a user sees,
//! include_dir ordering, per_listener_settings on and off, and defaults.

use super::*;

const MAIN: &str = "/etc/tern/tern.conf";

fn parse(text: &str) -> Config {
    match Config::parse_str(Path::new(MAIN), text, &MemLoader::new()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn parse_with(text: &str, loader: &MemLoader) -> Result<Config, ConfError> {
    Config::parse_str(Path::new(MAIN), text, loader)
}

fn err(text: &str) -> String {
    match Config::parse_str(Path::new(MAIN), text, &MemLoader::new()) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

fn warnings(c: &Config) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------- defaults

#[test]
fn defaults_match_mosquitto_2_0() {
    let c = parse("");
    assert_eq!(
        c,
        Config {
            files: vec![PathBuf::from(MAIN)],
            ..Config::default()
        }
    );
    assert!(c.local_only);
    assert!(c.listeners.is_empty());
    assert!(c.security.allow_anonymous);
    assert!(c.security.allow_zero_length_clientid);
    assert_eq!(c.security.auto_id_prefix, "auto-");
    assert_eq!(c.autosave_interval, 1800);
    assert!(!c.autosave_on_changes);
    assert!(c.check_retain_source);
    assert!(c.connection_messages);
    assert_eq!(c.log_dest, [LogDest::Stderr]);
    assert_eq!(
        c.log_type,
        [
            LogType::Error,
            LogType::Warning,
            LogType::Notice,
            LogType::Information
        ]
    );
    assert!(c.log_timestamp);
    assert_eq!(c.max_inflight_bytes, Limit::Unlimited);
    assert_eq!(c.max_inflight_messages, Limit::Max(20));
    assert_eq!(c.max_keepalive, 65535);
    assert_eq!(c.max_packet_size, Limit::Unlimited);
    assert_eq!(c.max_queued_bytes, Limit::Unlimited);
    assert_eq!(c.max_queued_messages, Limit::Max(1000));
    assert_eq!(c.memory_limit, Limit::Unlimited);
    assert_eq!(c.message_size_limit, Limit::Unlimited);
    assert!(!c.persistence);
    assert_eq!(c.persistence_file, PathBuf::from("tern.db"));
    assert_eq!(c.persistent_client_expiration, None);
    assert!(!c.queue_qos0_messages);
    assert!(c.retain_available);
    assert!(!c.set_tcp_nodelay);
    assert_eq!(c.sys_interval, 10);
    assert!(!c.upgrade_outgoing_qos);
    assert_eq!(c.user, "mosquitto");
    assert_eq!(c.websockets_headers_size, 1024);
    assert!(!c.per_listener_settings);
    assert!(c.allow_duplicate_messages);
    // tern additions
    assert!(c.persistence_sync);
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.max_connections_per_address, 1024);
    assert_eq!(c.tls_handshake_rate, 1000);
    assert!(c.warnings.is_empty());
}

#[test]
fn listener_defaults() {
    let c = parse("listener 1883\n");
    let l = &c.listeners[0];
    assert_eq!(
        l.address,
        ListenAddress::Tcp {
            port: 1883,
            host: None
        }
    );
    assert_eq!(l.origin.to_string(), "/etc/tern/tern.conf:1");
    assert_eq!(l.max_connections, Limit::Unlimited);
    assert_eq!(l.max_qos, 2);
    assert_eq!(l.max_topic_alias, 10);
    assert_eq!(l.max_topic_alias_broker, 0);
    assert_eq!(l.protocol, Protocol::Mqtt);
    assert_eq!(l.socket_domain, None);
    assert!(!l.use_username_as_clientid);
    assert_eq!(l.accept_protocol_versions, ProtocolVersions::default());
    assert_eq!(l.tls, Tls::default());
    assert!(!l.tls.enabled());
    assert!(!c.local_only);
    // allow_anonymous defaults to false once a listener is configured (Mosquitto 2.0)
    assert!(!c.security.allow_anonymous);
    assert!(!c.security_for(l).allow_anonymous);
}

#[test]
fn limit_helpers() {
    assert_eq!(Limit::<u32>::Unlimited.capped(100), 100);
    assert_eq!(Limit::Max(5u32).capped(100), 5);
    assert_eq!(Limit::Max(500u32).capped(100), 100);
    assert_eq!(Limit::Max(5u32).get(), Some(5));
    assert_eq!(Limit::<u32>::Unlimited.get(), None);
}

// ---------------------------------------------------------------- syntax

#[test]
fn comments_blank_lines_tabs_and_crlf() {
    let c = parse(
        "# comment\n\n   \n  # indented comment\r\nmax_keepalive\t60\r\nsys_interval   5  \n",
    );
    assert_eq!(c.max_keepalive, 60);
    assert_eq!(c.sys_interval, 5);
}

#[test]
fn trailing_hash_word_is_a_comment_but_other_junk_is_an_error() {
    assert_eq!(parse("max_qos 1 # at most once\n").listeners[0].max_qos, 1);
    assert_eq!(
        err("listener 1883\nmax_qos 1 2\n"),
        "/etc/tern/tern.conf:2: unexpected \"2\" after the value of \"max_qos\". Remove it; comments go on their own line starting with #"
    );
    assert_eq!(
        err("persistence true please\n"),
        "/etc/tern/tern.conf:1: unexpected \"please\" after the value of \"persistence\". Remove it; comments go on their own line starting with #"
    );
}

#[test]
fn unknown_option_with_and_without_suggestion() {
    assert_eq!(
        err("listener 1883\n\n\n\n\n\n\n\n\n\n\nmax_conections 10\n"),
        "/etc/tern/tern.conf:12: unknown option \"max_conections\". Check the spelling against mosquitto.conf(5); did you mean \"max_connections\"?"
    );
    assert_eq!(
        err("frobnicate yes\n"),
        "/etc/tern/tern.conf:1: unknown option \"frobnicate\". Check the spelling against mosquitto.conf(5)."
    );
    assert_eq!(
        err("allow_anonymus true\n"),
        "/etc/tern/tern.conf:1: unknown option \"allow_anonymus\". Check the spelling against mosquitto.conf(5); did you mean \"allow_anonymous\"?"
    );
}

#[test]
fn missing_value_messages() {
    assert_eq!(
        err("password_file\n"),
        "/etc/tern/tern.conf:1: \"password_file\" needs a value. Write it as \"password_file <path>\""
    );
    assert_eq!(
        err("listener 1883\nmax_qos\n"),
        "/etc/tern/tern.conf:2: \"max_qos\" needs a value. Write it as \"max_qos 0|1|2\""
    );
    assert_eq!(
        err("persistence\n"),
        "/etc/tern/tern.conf:1: \"persistence\" needs a value. Write it as \"persistence true|false\""
    );
    assert_eq!(
        err("listener\n"),
        "/etc/tern/tern.conf:1: \"listener\" needs a value. Write it as \"listener <port> [<bind address>]\""
    );
}

#[test]
fn invalid_value_messages() {
    assert_eq!(
        err("listener 1883\nmax_qos 3\n"),
        "/etc/tern/tern.conf:2: \"max_qos\" must be 0, 1 or 2, not \"3\""
    );
    assert_eq!(
        err("allow_anonymous yes\n"),
        "/etc/tern/tern.conf:1: \"allow_anonymous\" must be true or false, not \"yes\""
    );
    assert_eq!(
        err("max_keepalive 70000\n"),
        "/etc/tern/tern.conf:1: \"max_keepalive\" must be an integer from 0 to 65535, not \"70000\""
    );
    assert_eq!(
        err("sys_interval ten\n"),
        "/etc/tern/tern.conf:1: \"sys_interval\" must be an integer from 0 to 65535, not \"ten\""
    );
    assert_eq!(
        err("listener 1883\nprotocol http\n"),
        "/etc/tern/tern.conf:2: \"protocol\" must be mqtt or websockets, not \"http\""
    );
}

// ---------------------------------------------------------------- general options

#[test]
fn general_options() {
    let c = parse(
        "autosave_interval 60\nautosave_on_changes true\ncheck_retain_source false\n\
         connection_messages false\nmax_inflight_bytes 64k\nmax_inflight_messages 1\n\
         max_keepalive 120\nmax_packet_size 1M\nmax_queued_bytes 1000000\n\
         max_queued_messages 50\nmemory_limit 1G\npersistence true\n\
         persistence_file tern.db\npersistence_location /var/lib/tern/\n\
         pid_file /run/tern.pid\nqueue_qos0_messages true\nretain_available false\n\
         set_tcp_nodelay true\nsys_interval 0\nupgrade_outgoing_qos true\nuser tern\n\
         websockets_headers_size 4096\nwebsockets_log_level 255\nenable_control_api true\n\
         global_max_clients 100\nglobal_max_connections -1\n",
    );
    assert_eq!(c.autosave_interval, 60);
    assert!(c.autosave_on_changes);
    assert!(!c.check_retain_source);
    assert!(!c.connection_messages);
    assert_eq!(c.max_inflight_bytes, Limit::Max(65536));
    assert_eq!(c.max_inflight_messages, Limit::Max(1));
    assert_eq!(c.max_keepalive, 120);
    assert_eq!(c.max_packet_size, Limit::Max(1 << 20));
    assert_eq!(c.max_queued_bytes, Limit::Max(1_000_000));
    assert_eq!(c.max_queued_messages, Limit::Max(50));
    assert_eq!(c.memory_limit, Limit::Max(1 << 30));
    assert!(c.persistence);
    assert_eq!(c.persistence_file, PathBuf::from("tern.db"));
    assert_eq!(
        c.persistence_location,
        Some(PathBuf::from("/var/lib/tern/"))
    );
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/tern.pid")));
    assert!(c.queue_qos0_messages);
    assert!(!c.retain_available);
    assert!(c.set_tcp_nodelay);
    assert_eq!(c.sys_interval, 0);
    assert!(c.upgrade_outgoing_qos);
    assert_eq!(c.user, "tern");
    assert_eq!(c.websockets_headers_size, 4096);
    assert_eq!(c.websockets_log_level, Some(255));
    assert!(c.enable_control_api);
    assert_eq!(c.global_max_clients, Limit::Max(100));
    assert_eq!(c.global_max_connections, Limit::Unlimited);
    assert!(c.local_only, "no listener line");
}

#[test]
fn unlimited_values_are_recorded_as_unlimited() {
    let c = parse(
        "max_inflight_bytes 0\nmax_inflight_messages 0\nmax_queued_bytes -1\n\
         max_queued_messages 0\nmemory_limit 0\nmessage_size_limit 0\nautosave_interval -5\n",
    );
    assert_eq!(c.max_inflight_bytes, Limit::Unlimited);
    assert_eq!(c.max_inflight_messages, Limit::Unlimited);
    assert_eq!(c.max_queued_bytes, Limit::Unlimited);
    assert_eq!(c.max_queued_messages, Limit::Unlimited);
    assert_eq!(c.memory_limit, Limit::Unlimited);
    assert_eq!(c.message_size_limit, Limit::Unlimited);
    assert_eq!(c.autosave_interval, 0);
    // 65535 also means unlimited for max_inflight_messages (conf.c)
    assert_eq!(
        parse("max_inflight_messages 65535\n").max_inflight_messages,
        Limit::Unlimited
    );
    assert_eq!(
        parse("listener 1\nmax_connections -1\n").listeners[0].max_connections,
        Limit::Unlimited
    );
    assert_eq!(
        parse("listener 1\nmax_connections 500\n").listeners[0].max_connections,
        Limit::Max(500)
    );
}

#[test]
fn size_and_range_errors() {
    assert_eq!(
        err("max_packet_size 10\n"),
        "/etc/tern/tern.conf:1: \"max_packet_size\" must be a byte count from 20 to 268435460, not \"10\""
    );
    assert_eq!(
        err("memory_limit -1\n"),
        "/etc/tern/tern.conf:1: \"memory_limit\" must be a byte count such as 65536, 64k, 10M or 1G, not \"-1\""
    );
    assert_eq!(
        err("message_size_limit 268435456\n"),
        "/etc/tern/tern.conf:1: \"message_size_limit\" must be a byte count from 0 (unlimited) to 268435455, not \"268435456\""
    );
    assert_eq!(
        err("max_inflight_messages 70000\n"),
        "/etc/tern/tern.conf:1: \"max_inflight_messages\" must be an integer from 0 (unlimited) to 65535, not \"70000\""
    );
    assert_eq!(
        err("global_max_clients 0\n"),
        "/etc/tern/tern.conf:1: \"global_max_clients\" must be -1 (unlimited) or a positive integer, not \"0\""
    );
    assert_eq!(
        err("max_queued_bytes 5X\n"),
        "/etc/tern/tern.conf:1: \"max_queued_bytes\" must be a byte count such as 65536, 64k, 10M or 1G, not \"5X\""
    );
}

#[test]
fn persistent_client_expiration_units() {
    let d = |s: &str| {
        parse(&format!("persistent_client_expiration {s}\n")).persistent_client_expiration
    };
    assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
    assert_eq!(d("14d"), Some(Duration::from_secs(14 * 86_400)));
    assert_eq!(d("1w"), Some(Duration::from_secs(7 * 86_400)));
    assert_eq!(d("1m"), Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(d("1y"), Some(Duration::from_secs(365 * 86_400)));
    let expected = "must be a duration such as 12h, 14d, 2w, 6m or 1y (units h, d, w, m, y)";
    for bad in [
        "14",
        "0d",
        "-1d",
        "d",
        "14s",
        "1.5d",
        "99999999999999999999y",
    ] {
        assert_eq!(
            err(&format!("persistent_client_expiration {bad}\n")),
            format!(
                "/etc/tern/tern.conf:1: \"persistent_client_expiration\" {expected}, not \"{bad}\""
            )
        );
    }
}

#[test]
fn logging_options() {
    let c = parse(
        "log_dest stdout\nlog_dest syslog\nlog_dest file /var/log/tern.log\nlog_type debug\nlog_type error\nlog_facility 3\nlog_timestamp false\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n",
    );
    assert_eq!(
        c.log_dest,
        [
            LogDest::Stdout,
            LogDest::Syslog,
            LogDest::File(PathBuf::from("/var/log/tern.log"))
        ]
    );
    assert_eq!(c.log_type, [LogType::Error, LogType::Debug]);
    assert_eq!(c.log_facility, Some(3));
    assert!(!c.log_timestamp);
    assert_eq!(c.log_timestamp_format.as_deref(), Some("%Y-%m-%dT%H:%M:%S"));
    assert!(parse("log_dest none\n").log_dest.is_empty());
    assert!(parse("log_type none\n").log_type.is_empty());
    assert_eq!(parse("log_type all\n").log_type, LogType::ALL);
    assert_eq!(
        parse("log_dest topic\nlog_dest dlt\n").log_dest,
        [LogDest::Topic, LogDest::Dlt]
    );
    assert_eq!(
        err("log_dest file /a\nlog_dest file /b\n"),
        "/etc/tern/tern.conf:2: \"log_dest file\" is given twice; only one log file is supported. Keep one of the lines"
    );
    assert_eq!(
        err("log_dest file\n"),
        "/etc/tern/tern.conf:1: \"log_dest\" needs a value. Write it as \"log_dest file <path>\""
    );
    assert_eq!(
        err("log_dest printer\n"),
        "/etc/tern/tern.conf:1: \"log_dest\" must be stdout, stderr, syslog, topic, dlt, none or file <path>, not \"printer\""
    );
    assert_eq!(
        err("log_facility 8\n"),
        "/etc/tern/tern.conf:1: \"log_facility\" must be an integer from 0 to 7, not \"8\""
    );
    assert_eq!(
        err("log_type verbose\n"),
        "/etc/tern/tern.conf:1: \"log_type\" must be error, warning, notice, information, debug, subscribe, unsubscribe, websockets, internal, all or none, not \"verbose\""
    );
}

#[test]
fn tern_additions() {
    let c = parse(
        "persistence_sync false\nconnect_timeout 30\nmax_connections_per_address 1000\ntls_handshake_rate 50\nlistener 8883\ntls_max_fragment_size 1024\n",
    );
    assert!(!c.persistence_sync);
    assert_eq!(c.connect_timeout, Duration::from_secs(30));
    assert_eq!(c.max_connections_per_address, 1000);
    assert_eq!(c.tls_handshake_rate, 50);
    assert_eq!(c.listeners[0].tls.tls_max_fragment_size, Some(1024));
    assert_eq!(
        err("connect_timeout 0\n"),
        "/etc/tern/tern.conf:1: \"connect_timeout\" must be an integer from 1 to 3600, not \"0\""
    );
    assert_eq!(
        err("max_connections_per_address 0\n"),
        "/etc/tern/tern.conf:1: \"max_connections_per_address\" must be an integer from 1 to 1000000, not \"0\""
    );
    assert_eq!(
        err("listener 8883\ntls_max_fragment_size 100\n"),
        "/etc/tern/tern.conf:2: \"tls_max_fragment_size\" must be an integer from 512 to 16384, not \"100\""
    );
}

#[test]
fn deprecated_options_warn_with_location() {
    let c = parse(
        "retry_interval 20\nallow_duplicate_messages false\nclientid_prefixes sensor-\nport 1884\nbind_address 127.0.0.1\nmessage_size_limit 1000\nauth_plugin /usr/lib/p.so\nauth_opt_x 1\n",
    );
    assert_eq!(
        warnings(&c),
        [
            "/etc/tern/tern.conf:1: \"retry_interval\" is no longer available and is ignored. Remove the line",
            "/etc/tern/tern.conf:2: \"allow_duplicate_messages\" is deprecated and has no effect; duplicates are always allowed. Remove the line",
            "/etc/tern/tern.conf:3: \"clientid_prefixes\" is deprecated. Restrict clients with an ACL or a password file instead",
            "/etc/tern/tern.conf:4: \"port\" is deprecated. Use \"listener <port>\" instead",
            "/etc/tern/tern.conf:5: \"bind_address\" is deprecated. Use \"listener <port> <address>\" instead",
            "/etc/tern/tern.conf:6: \"message_size_limit\" is kept for compatibility. Prefer \"max_packet_size\"",
            "/etc/tern/tern.conf:7: \"auth_plugin\" is deprecated. Use \"plugin\" instead",
            "/etc/tern/tern.conf:8: \"auth_opt_\" is deprecated. Use \"plugin_opt_\" instead",
        ]
    );
    assert!(!c.allow_duplicate_messages);
    assert_eq!(c.clientid_prefixes.as_deref(), Some("sensor-"));
    assert_eq!(c.message_size_limit, Limit::Max(1000));
    assert_eq!(
        c.security.plugins[0].options,
        [("x".to_owned(), "1".to_owned())]
    );
}

#[test]
fn aliases() {
    let c = parse("listener 1\nmaximum_qos 1\nretained_persistence true\n");
    assert_eq!(c.listeners[0].max_qos, 1);
    assert!(c.persistence);
}

#[test]
fn duplicate_single_valued_options() {
    assert_eq!(
        err("password_file /a\n# x\npassword_file /b\n"),
        "/etc/tern/tern.conf:3: \"password_file\" is already set at /etc/tern/tern.conf:1. Keep only one of the two lines"
    );
    // ...but per listener they are separate scopes
    let c = parse("listener 1\ncafile /a\nlistener 2\ncafile /b\n");
    assert_eq!(c.listeners[1].tls.cafile, Some(PathBuf::from("/b")));
}

// ---------------------------------------------------------------- listeners

#[test]
fn listener_forms() {
    let c = parse(
        "listener 1883\nlistener 8883 127.0.0.1\nlistener 0 /run/tern.sock\nlistener 9001 ::1 # v6 loopback\n",
    );
    assert_eq!(c.listeners.len(), 4);
    assert_eq!(
        c.listeners[0].address,
        ListenAddress::Tcp {
            port: 1883,
            host: None
        }
    );
    assert_eq!(
        c.listeners[1].address,
        ListenAddress::Tcp {
            port: 8883,
            host: Some("127.0.0.1".into())
        }
    );
    assert_eq!(
        c.listeners[2].address,
        ListenAddress::Unix(PathBuf::from("/run/tern.sock"))
    );
    assert_eq!(
        c.listeners[3].address,
        ListenAddress::Tcp {
            port: 9001,
            host: Some("::1".into())
        }
    );
    assert_eq!(
        err("listener 0\n"),
        "/etc/tern/tern.conf:1: a listener on port 0 needs a Unix socket path. Write it as \"listener 0 /run/tern/tern.sock\""
    );
    assert_eq!(
        err("listener 65536\n"),
        "/etc/tern/tern.conf:1: \"listener\" must be a port from 1 to 65535, or 0 with a Unix socket path, not \"65536\""
    );
    assert_eq!(
        err("listener 1883 0.0.0.0 extra\n"),
        "/etc/tern/tern.conf:1: unexpected \"extra\" after the value of \"listener\". Remove it; comments go on their own line starting with #"
    );
}

#[test]
fn listener_options_apply_to_the_latest_listener() {
    let c = parse(
        "listener 1883\nmax_qos 1\nprotocol websockets\nsocket_domain ipv4\nmax_connections 10\n\
         max_topic_alias 5\nmax_topic_alias_broker 7\nmount_point site1/\nuse_username_as_clientid true\n\
         bind_interface eth0\nhttp_dir /srv/www\nwebsockets_origin https://a.example\nwebsockets_origin https://b.example\n\
         accept_protocol_versions 4, 5\nenable_proxy_protocol 2\nproxy_protocol_v2_require_tls true\n\
         listener 1884\nsocket_domain ipv6\n",
    );
    let l = &c.listeners[0];
    assert_eq!(l.max_qos, 1);
    assert_eq!(l.protocol, Protocol::Websockets);
    assert_eq!(l.socket_domain, Some(SocketDomain::Ipv4));
    assert_eq!(l.max_connections, Limit::Max(10));
    assert_eq!(l.max_topic_alias, 5);
    assert_eq!(l.max_topic_alias_broker, 7);
    assert_eq!(l.mount_point.as_deref(), Some("site1/"));
    assert!(l.use_username_as_clientid);
    assert_eq!(l.bind_interface.as_deref(), Some("eth0"));
    assert_eq!(l.http_dir, Some(PathBuf::from("/srv/www")));
    assert_eq!(
        l.websockets_origin,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(
        l.accept_protocol_versions,
        ProtocolVersions {
            v31: false,
            v311: true,
            v5: true
        }
    );
    assert_eq!(l.enable_proxy_protocol, Some(2));
    assert!(l.proxy_protocol_v2_require_tls);
    let l2 = &c.listeners[1];
    assert_eq!(l2.max_qos, 2);
    assert_eq!(l2.socket_domain, Some(SocketDomain::Ipv6));
}

#[test]
fn listener_only_options_need_a_listener() {
    assert_eq!(
        err("mount_point a/\n"),
        "/etc/tern/tern.conf:1: \"mount_point\" applies to a listener, but no listener is defined yet. Put a \"listener <port>\" line before it"
    );
    assert_eq!(
        err("accept_protocol_versions 5\n"),
        "/etc/tern/tern.conf:1: \"accept_protocol_versions\" applies to a listener, but no listener is defined yet. Put a \"listener <port>\" line before it"
    );
    assert_eq!(
        err("listener 1\naccept_protocol_versions 4 6\n"),
        "/etc/tern/tern.conf:2: \"accept_protocol_versions\" must be a list of 3 (MQTT 3.1), 4 (3.1.1) and 5 (5.0), not \"6\""
    );
    assert_eq!(
        err("listener 1\nmount_point a/+/\n"),
        "/etc/tern/tern.conf:2: \"mount_point\" must be a topic prefix without + or #, not \"a/+/\""
    );
}

#[test]
fn default_listener_from_port_bind_address_and_early_listener_options() {
    let c = parse("port 1884\nbind_address 10.0.0.1\nmax_qos 1\nlistener 8883\n");
    assert!(!c.local_only);
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(
        c.listeners[0].address,
        ListenAddress::Tcp {
            port: 8883,
            host: None
        }
    );
    let d = &c.listeners[1];
    assert_eq!(
        d.address,
        ListenAddress::Tcp {
            port: 1884,
            host: Some("10.0.0.1".into())
        }
    );
    assert_eq!(d.max_qos, 1);
    assert_eq!(d.origin.to_string(), "/etc/tern/tern.conf:1");
    // `max_connections -1` is Mosquitto's default value: before the first listener it does
    // not create the default listener (Mosquitto 2.0 compares the value, conf.c), while
    // any other value does.
    let c = parse("max_connections -1\nlistener 8883 127.0.0.1\n");
    assert_eq!(c.listeners.len(), 1, "{:?}", c.listeners);
    let c = parse("max_connections 5\nlistener 8883 127.0.0.1\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].max_connections, Limit::Max(5));
    // The same for the other options Mosquitto 2.0.11 records without opening 1883
    // (checked against Debian's mosquitto: `ss -ltn` shows no 1883 for these).
    for quiet in [
        "max_qos 2",
        "protocol mqtt",
        "max_topic_alias 5",
        "use_username_as_clientid true",
        "bind_interface lo",
        "http_dir /tmp",
    ] {
        let c = parse(&format!("{quiet}\nlistener 8883 127.0.0.1\n"));
        assert_eq!(c.listeners.len(), 1, "{quiet}: {:?}", c.listeners);
    }
    // ... and these open it, as in Mosquitto.
    for loud in ["max_qos 1", "protocol websockets", "socket_domain ipv4"] {
        let c = parse(&format!("{loud}\nlistener 8883 127.0.0.1\n"));
        assert_eq!(c.listeners.len(), 2, "{loud}");
    }
    // a listener option without any listener line creates a default listener on 1883
    let c = parse("max_qos 1\n");
    assert!(c.local_only);
    assert_eq!(
        c.listeners[0].address,
        ListenAddress::Tcp {
            port: 1883,
            host: None
        }
    );
    let c = parse("port 1\nport 2\n");
    assert_eq!(
        c.listeners[0].address,
        ListenAddress::Tcp {
            port: 2,
            host: None
        }
    );
    assert!(warnings(&c).contains(
        &"/etc/tern/tern.conf:2: the default listener port is given more than once; the last one is used".to_owned()
    ));
}

// ---------------------------------------------------------------- TLS

#[test]
fn tls_options() {
    let c = parse(
        "listener 8883\ncafile /etc/ca.pem\ncapath /etc/ca.d\ncertfile /etc/server.pem\nkeyfile /etc/server.key\n\
         ciphers ECDHE-ECDSA-AES128-GCM-SHA256\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\ncrlfile /etc/crl.pem\n\
         dhparamfile /etc/dh.pem\nrequire_certificate true\ntls_version tlsv1.3\nuse_identity_as_username true\n\
         use_subject_as_username true\ntls_engine pkcs11\ntls_engine_kpass_sha1 0123456789abcdef0123456789abcdef01234567\n\
         tls_keyform engine\ndisable_client_cert_date_checks true\n\
         listener 8884\npsk_hint tern\nuse_identity_as_username true\n",
    );
    let t = &c.listeners[0].tls;
    assert!(t.enabled());
    assert_eq!(t.cafile, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(t.capath, Some(PathBuf::from("/etc/ca.d")));
    assert_eq!(t.certfile, Some(PathBuf::from("/etc/server.pem")));
    assert_eq!(t.keyfile, Some(PathBuf::from("/etc/server.key")));
    assert_eq!(t.ciphers.as_deref(), Some("ECDHE-ECDSA-AES128-GCM-SHA256"));
    assert_eq!(t.ciphers_tls13.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(t.crlfile, Some(PathBuf::from("/etc/crl.pem")));
    assert_eq!(t.dhparamfile, Some(PathBuf::from("/etc/dh.pem")));
    assert!(t.require_certificate);
    assert_eq!(t.tls_version, Some(TlsVersion::Tls1_3));
    assert!(t.use_identity_as_username);
    assert!(t.use_subject_as_username);
    assert_eq!(t.tls_engine.as_deref(), Some("pkcs11"));
    assert_eq!(t.tls_keyform, KeyForm::Engine);
    assert!(t.disable_client_cert_date_checks);
    assert!(t.tls_engine_kpass_sha1.is_some());
    let p = &c.listeners[1].tls;
    assert!(p.enabled());
    assert_eq!(p.psk_hint.as_deref(), Some("tern"));
}

#[test]
fn tls_errors() {
    assert_eq!(
        err("listener 8883\ntls_version tlsv1.0\n"),
        "/etc/tern/tern.conf:2: \"tls_version\" must be tlsv1.1, tlsv1.2 or tlsv1.3, not \"tlsv1.0\""
    );
    assert_eq!(
        err("listener 8883\npsk_hint x\ncafile /ca\n"),
        "/etc/tern/tern.conf:3: certificate options and a pre-shared key cannot be used on the same listener. Use either certificates or PSK"
    );
    assert_eq!(
        err("listener 8883\ncertfile /c\npsk_hint x\n"),
        "/etc/tern/tern.conf:3: certificate options and a pre-shared key cannot be used on the same listener. Use either certificates or PSK"
    );
    assert_eq!(
        err("listener 1\ntls_engine_kpass_sha1 abc\n"),
        "/etc/tern/tern.conf:2: \"tls_engine_kpass_sha1\" must be a SHA-1 digest of 40 hex digits, not \"abc\""
    );
    assert_eq!(
        err("disable_client_cert_date_checks true\n"),
        "/etc/tern/tern.conf:1: \"disable_client_cert_date_checks\" applies to a listener, but no listener is defined yet. Put a \"listener <port>\" line before it"
    );
}

#[test]
fn paths_keep_spaces() {
    let c = parse("listener 1\ncertfile /etc/my certs/server.pem\n");
    assert_eq!(
        c.listeners[0].tls.certfile,
        Some(PathBuf::from("/etc/my certs/server.pem"))
    );
}

// ---------------------------------------------------------------- auth scoping

#[test]
fn auth_options_are_global_without_per_listener_settings() {
    let c = parse(
        "listener 1883\npassword_file /etc/pw\nacl_file /etc/acl\npsk_file /etc/psk\nallow_anonymous true\n\
         allow_zero_length_clientid false\nauto_id_prefix dev-\nlistener 1884\n",
    );
    assert!(!c.per_listener_settings);
    assert_eq!(c.security.password_file, Some(PathBuf::from("/etc/pw")));
    assert_eq!(c.security.acl_file, Some(PathBuf::from("/etc/acl")));
    assert_eq!(c.security.psk_file, Some(PathBuf::from("/etc/psk")));
    assert!(c.security.allow_anonymous);
    assert!(!c.security.allow_zero_length_clientid);
    assert_eq!(c.security.auto_id_prefix, "dev-");
    for l in &c.listeners {
        assert_eq!(l.security.password_file, None);
        assert_eq!(
            c.security_for(l).password_file,
            Some(PathBuf::from("/etc/pw"))
        );
    }
}

#[test]
fn auth_options_per_listener_with_per_listener_settings() {
    let c = parse(
        "per_listener_settings true\nlistener 1883\npassword_file /etc/pw1\nallow_anonymous true\n\
         listener 8883\npassword_file /etc/pw2\nacl_file /etc/acl2\nplugin /usr/lib/auth.so\nplugin_opt_db /var/db\n\
         global_plugin /usr/lib/global.so\n",
    );
    assert!(c.per_listener_settings);
    assert_eq!(c.security.password_file, None);
    let (a, b) = (&c.listeners[0], &c.listeners[1]);
    assert_eq!(
        c.security_for(a).password_file,
        Some(PathBuf::from("/etc/pw1"))
    );
    assert!(c.security_for(a).allow_anonymous);
    assert_eq!(
        c.security_for(b).password_file,
        Some(PathBuf::from("/etc/pw2"))
    );
    assert_eq!(c.security_for(b).acl_file, Some(PathBuf::from("/etc/acl2")));
    assert!(
        !c.security_for(b).allow_anonymous,
        "unset means false once listeners exist"
    );
    assert_eq!(
        b.security.plugins[0].path,
        PathBuf::from("/usr/lib/auth.so")
    );
    assert_eq!(
        b.security.plugins[0].options,
        [("db".to_owned(), "/var/db".to_owned())]
    );
    assert_eq!(
        c.security.plugins[0].path,
        PathBuf::from("/usr/lib/global.so")
    );
    // the same option on two listeners is not a duplicate
    assert!(c.warnings.is_empty());
}

#[test]
fn per_listener_settings_must_come_first_and_sticks() {
    assert_eq!(
        err("allow_anonymous true\nper_listener_settings true\n"),
        "/etc/tern/tern.conf:2: per_listener_settings must come before any other security option. Move it to the top of the file"
    );
    let c = parse("per_listener_settings true\nper_listener_settings false\n");
    assert!(c.per_listener_settings);
    // false after security options is harmless
    assert!(!parse("acl_file /a\nper_listener_settings false\n").per_listener_settings);
}

#[test]
fn per_listener_auth_before_any_listener_goes_to_the_default_listener() {
    let c = parse("per_listener_settings true\npassword_file /etc/pw\nallow_anonymous true\n");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(
        c.listeners[0].security.password_file,
        Some(PathBuf::from("/etc/pw"))
    );
    assert!(c.listeners[0].security.allow_anonymous);
}

#[test]
fn allow_anonymous_resolution() {
    assert!(parse("").security.allow_anonymous, "local-only default");
    assert!(!parse("listener 1\n").security.allow_anonymous);
    assert!(
        parse("listener 1\nallow_anonymous true\n")
            .security
            .allow_anonymous
    );
    // tern keeps an explicit false even in local-only mode (Mosquitto would allow)
    assert!(!parse("allow_anonymous false\n").security.allow_anonymous);
}

#[test]
fn plugins() {
    let c = parse(
        "plugin /usr/lib/a.so\nplugin_opt_key some value with spaces\nauth_plugin_deny_special_chars false\n",
    );
    let p = &c.security.plugins[0];
    assert_eq!(p.path, PathBuf::from("/usr/lib/a.so"));
    assert_eq!(
        p.options,
        [("key".to_owned(), "some value with spaces".to_owned())]
    );
    assert!(!p.deny_special_chars);
    assert_eq!(p.origin.to_string(), "/etc/tern/tern.conf:1");
    assert_eq!(
        err("plugin_opt_x 1\n"),
        "/etc/tern/tern.conf:1: \"plugin_opt_x\" configures a plugin, but no plugin is defined yet. Put a \"plugin <path>\" line before it"
    );
    assert_eq!(
        err("plugin /a.so\nplugin_opt_x\n"),
        "/etc/tern/tern.conf:2: \"plugin_opt_x\" needs a value. Write it as \"plugin_opt_x <value>\""
    );
    assert_eq!(
        err("auth_plugin_deny_special_chars true\n"),
        "/etc/tern/tern.conf:1: \"auth_plugin_deny_special_chars\" configures a plugin, but no plugin is defined yet. Put a \"plugin <path>\" line before it"
    );
}

// ---------------------------------------------------------------- bridges

#[test]
fn bridge_full() {
    let c = parse(
        "connection cloud\naddress broker.example.com:8883 [::1]:1883 backup.example.com\n\
         topic sensors/# out 1\ntopic cmd/# in 2 local/ remote/\ntopic status both 0 \"\" remote/\ntopic \"\" in 0 a/ b/\n\
         bridge_protocol_version mqttv50\ncleansession true\nlocal_cleansession false\nkeepalive_interval 30\n\
         idle_timeout 120\nstart_type lazy\nthreshold 5\nrestart_timeout 10 60\nround_robin true\ntry_private false\n\
         notifications false\nnotifications_local_only true\nnotification_topic $SYS/bridge/cloud\n\
         remote_clientid gw1\nremote_username gw\nremote_password s3cret\nlocal_clientid local-gw1\n\
         local_username lu\nlocal_password lp\nbridge_attempt_unsubscribe false\nbridge_bind_address 10.0.0.2\n\
         bridge_max_packet_size 65536\nbridge_outgoing_retain false\nbridge_receive_maximum 100\n\
         bridge_session_expiry_interval 3600\nbridge_max_topic_alias 0\nbridge_tcp_keepalive 60 10 3\n\
         bridge_tcp_user_timeout 5000\nbridge_reload_type immediate\nbridge_cafile /ca.pem\nbridge_capath /ca.d\n\
         bridge_certfile /c.pem\nbridge_keyfile /c.key\nbridge_alpn mqtt\nbridge_require_ocsp true\n\
         bridge_tls_version tlsv1.2\nbridge_tls_use_os_certs true\nbridge_ciphers HIGH\nbridge_ciphers_tls1.3 TLS_AES_256_GCM_SHA384\n",
    );
    let b = &c.bridges[0];
    assert_eq!(b.name, "cloud");
    assert_eq!(
        b.addresses,
        [
            BridgeAddress {
                host: "broker.example.com".into(),
                port: 8883
            },
            BridgeAddress {
                host: "[::1]".into(),
                port: 1883
            },
            BridgeAddress {
                host: "backup.example.com".into(),
                port: 1883
            },
        ]
    );
    assert_eq!(b.topics.len(), 4);
    assert_eq!(
        (
            b.topics[0].pattern.as_str(),
            b.topics[0].direction,
            b.topics[0].qos
        ),
        ("sensors/#", Direction::Out, 1)
    );
    assert_eq!(b.topics[1].local_prefix.as_deref(), Some("local/"));
    assert_eq!(b.topics[1].remote_prefix.as_deref(), Some("remote/"));
    assert_eq!(b.topics[2].direction, Direction::Both);
    assert_eq!(b.topics[2].local_prefix, None);
    assert_eq!(b.topics[3].pattern, "");
    assert_eq!(b.topics[3].origin.line, 6);
    assert_eq!(b.protocol_version, BridgeProtocol::Mqtt5);
    assert!(b.cleansession);
    assert_eq!(b.local_cleansession, Some(false));
    assert_eq!(b.keepalive_interval, 30);
    assert_eq!(b.idle_timeout, 120);
    assert_eq!(b.start_type, StartType::Lazy);
    assert_eq!(b.threshold, 5);
    assert_eq!(
        b.restart_timeout,
        RestartTimeout::Backoff { base: 10, cap: 60 }
    );
    assert!(b.round_robin && !b.try_private && !b.notifications && b.notifications_local_only);
    assert_eq!(b.notification_topic.as_deref(), Some("$SYS/bridge/cloud"));
    assert_eq!(b.remote_clientid.as_deref(), Some("gw1"));
    assert_eq!(b.remote_username.as_deref(), Some("gw"));
    assert_eq!(b.remote_password.as_deref(), Some("s3cret"));
    assert_eq!(b.local_clientid.as_deref(), Some("local-gw1"));
    assert_eq!(b.local_username.as_deref(), Some("lu"));
    assert_eq!(b.local_password.as_deref(), Some("lp"));
    assert!(!b.attempt_unsubscribe && !b.outgoing_retain);
    assert_eq!(b.bind_address.as_deref(), Some("10.0.0.2"));
    assert_eq!(b.max_packet_size, Limit::Max(65536));
    assert_eq!(b.receive_maximum, Some(100));
    assert_eq!(b.session_expiry_interval, Some(3600));
    assert_eq!(b.max_topic_alias, 0);
    assert_eq!(
        b.tcp_keepalive,
        Some(TcpKeepalive {
            idle: 60,
            interval: 10,
            count: 3
        })
    );
    assert_eq!(b.tcp_user_timeout, Some(5000));
    assert_eq!(b.reload_type, ReloadType::Immediate);
    assert_eq!(b.cafile, Some(PathBuf::from("/ca.pem")));
    assert_eq!(b.capath, Some(PathBuf::from("/ca.d")));
    assert_eq!(b.certfile, Some(PathBuf::from("/c.pem")));
    assert_eq!(b.keyfile, Some(PathBuf::from("/c.key")));
    assert_eq!(b.alpn.as_deref(), Some("mqtt"));
    assert!(b.require_ocsp && b.tls_use_os_certs);
    assert_eq!(b.tls_version, Some(TlsVersion::Tls1_2));
    assert_eq!(b.ciphers.as_deref(), Some("HIGH"));
    assert_eq!(b.ciphers_tls13.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
}

#[test]
fn bridge_defaults_and_aliases() {
    let c = parse("connection a\naddresses h\ntopic # \nclientid c\nusername u\npassword p\n");
    let b = &c.bridges[0];
    assert_eq!(
        b.addresses,
        [BridgeAddress {
            host: "h".into(),
            port: 1883
        }]
    );
    assert_eq!(b.topics[0].direction, Direction::Out);
    assert_eq!(b.topics[0].qos, 0);
    assert_eq!(b.protocol_version, BridgeProtocol::Mqtt311);
    assert!(!b.cleansession);
    assert_eq!(b.keepalive_interval, 60);
    assert_eq!(b.idle_timeout, 60);
    assert_eq!(b.threshold, 10);
    assert_eq!(
        b.restart_timeout,
        RestartTimeout::Backoff { base: 5, cap: 30 }
    );
    assert!(b.try_private && b.notifications && b.attempt_unsubscribe && b.outgoing_retain);
    assert_eq!(b.max_topic_alias, 10);
    assert_eq!(b.start_type, StartType::Automatic);
    assert_eq!(b.remote_clientid.as_deref(), Some("c"));
    assert_eq!(b.remote_username.as_deref(), Some("u"));
    assert_eq!(b.remote_password.as_deref(), Some("p"));
    assert_eq!(b.local_clientid, None);
}

#[test]
fn bridge_adjusted_values_warn() {
    let c = parse(
        "connection a\naddress h\ntopic x\nkeepalive_interval 2\nthreshold 0\nrestart_timeout 0\nbridge_insecure true\n",
    );
    let b = &c.bridges[0];
    assert_eq!(b.keepalive_interval, 5);
    assert_eq!(b.threshold, 1);
    assert_eq!(b.restart_timeout, RestartTimeout::Constant(1));
    assert!(b.insecure);
    assert_eq!(
        warnings(&c),
        [
            "/etc/tern/tern.conf:4: keepalive_interval is below 5 seconds; using 5",
            "/etc/tern/tern.conf:5: threshold is below 1; using 1",
            "/etc/tern/tern.conf:6: restart_timeout is below 1 second; using 1",
            "/etc/tern/tern.conf:7: bridge \"a\" does not check the remote host name (bridge_insecure true). Use it only for testing",
        ]
    );
}

#[test]
fn bridge_errors() {
    assert_eq!(
        err("topic a/#\n"),
        "/etc/tern/tern.conf:1: \"topic\" is a bridge option, but no bridge is defined yet. Start the bridge with \"connection <name>\" before it"
    );
    assert_eq!(
        err("connection a\naddress h\ntopic x\nconnection a\n"),
        "/etc/tern/tern.conf:4: a bridge named \"a\" already exists. Give each \"connection\" a unique name"
    );
    assert_eq!(
        err("connection a\ntopic x\n"),
        "/etc/tern/tern.conf:1: bridge \"a\" has no address. Add \"address <host>[:<port>]\" after its connection line"
    );
    assert_eq!(
        err("connection a\naddress h\n"),
        "/etc/tern/tern.conf:1: bridge \"a\" has no topic. Add \"topic <pattern> [in|out|both]\" after its connection line"
    );
    assert_eq!(
        err("connection a\naddress h\naddress i\n"),
        "/etc/tern/tern.conf:3: this bridge already has addresses. List them all on one \"address\" line"
    );
    assert_eq!(
        err("connection a\naddress h:0\n"),
        "/etc/tern/tern.conf:2: \"address\" must be host[:port] with a port from 1 to 65535, not \"0\""
    );
    assert_eq!(
        err("connection a\ntopic x sideways\n"),
        "/etc/tern/tern.conf:2: \"topic\" must be in, out or both, not \"sideways\""
    );
    assert_eq!(
        err("connection a\ntopic x in 3\n"),
        "/etc/tern/tern.conf:2: \"topic\" must be a QoS of 0, 1 or 2, not \"3\""
    );
    assert_eq!(
        err("connection a\nstart_type manual\n"),
        "/etc/tern/tern.conf:2: \"start_type\" must be automatic, lazy or once (manual is not supported), not \"manual\""
    );
    assert_eq!(
        err("connection a\nrestart_timeout 30 10\n"),
        "/etc/tern/tern.conf:2: the restart_timeout cap 10 is lower than the base 30. Write it as \"restart_timeout <base> <cap>\" with cap >= base"
    );
    assert_eq!(
        err("connection a\nbridge_psk 00ff\nbridge_cafile /ca\n"),
        "/etc/tern/tern.conf:3: certificate options and a pre-shared key cannot be used on the same bridge. Use either certificates or PSK"
    );
    assert_eq!(
        err("connection a\naddress h\ntopic x\nbridge_psk 00ff\n"),
        "/etc/tern/tern.conf:1: bridge \"a\" has no bridge_identity. Add \"bridge_identity <identity>\" after its connection line"
    );
    assert_eq!(
        err("connection a\nbridge_protocol_version mqttv5\n"),
        "/etc/tern/tern.conf:2: \"bridge_protocol_version\" must be mqttv31, mqttv311 or mqttv50, not \"mqttv5\""
    );
    assert_eq!(
        err("connection a\nbridge_receive_maximum 0\n"),
        "/etc/tern/tern.conf:2: \"bridge_receive_maximum\" must be an integer from 1 to 65535, not \"0\""
    );
}

#[test]
fn listener_options_after_a_bridge_still_apply_to_the_listener() {
    let c = parse("listener 1883\nconnection a\naddress h\ntopic x\nmax_qos 1\n");
    assert_eq!(c.listeners[0].max_qos, 1);
}

// ---------------------------------------------------------------- include_dir

#[test]
fn include_dir_reads_conf_files_in_byte_order_where_the_line_is() {
    let loader = MemLoader::new()
        .file("/etc/tern/conf.d/b.conf", "listener 2\n")
        .file("/etc/tern/conf.d/A.conf", "listener 3\n")
        .file("/etc/tern/conf.d/00.conf", "listener 4\n")
        .file("/etc/tern/conf.d/a.conf", "listener 5\n")
        .file("/etc/tern/conf.d/B.conf", "listener 6\n")
        .file("/etc/tern/conf.d/01.conf", "listener 7\n")
        .file("/etc/tern/conf.d/notes.txt", "garbage\n")
        .file("/etc/tern/conf.d/.conf", "garbage\n");
    let c = parse_with(
        "listener 1\ninclude_dir /etc/tern/conf.d\nlistener 8\n",
        &loader,
    )
    .unwrap();
    let ports: Vec<u16> = c
        .listeners
        .iter()
        .map(|l| match l.address {
            ListenAddress::Tcp { port, .. } => port,
            ListenAddress::Unix(_) => 0,
        })
        .collect();
    // 00.conf 01.conf A.conf B.conf a.conf b.conf
    assert_eq!(ports, [1, 4, 7, 3, 6, 5, 2, 8]);
    assert_eq!(
        c.files,
        [
            "/etc/tern/tern.conf",
            "/etc/tern/conf.d/00.conf",
            "/etc/tern/conf.d/01.conf",
            "/etc/tern/conf.d/A.conf",
            "/etc/tern/conf.d/B.conf",
            "/etc/tern/conf.d/a.conf",
            "/etc/tern/conf.d/b.conf",
        ]
        .map(PathBuf::from)
    );
    assert_eq!(c.include_dir, Some(PathBuf::from("/etc/tern/conf.d")));
}

#[test]
fn included_files_start_without_a_current_listener() {
    let loader = MemLoader::new().file("/d/x.conf", "max_qos 1\n");
    let c = parse_with(
        "listener 1883\ninclude_dir /d\nmax_topic_alias 3\n",
        &loader,
    )
    .unwrap();
    // max_qos in x.conf went to the default listener, not to 1883 (as in Mosquitto)
    assert_eq!(c.listeners[0].max_qos, 2);
    assert_eq!(
        c.listeners[0].max_topic_alias, 3,
        "main file keeps its listener"
    );
    assert_eq!(c.listeners[1].max_qos, 1);
    assert_eq!(c.listeners[1].origin.to_string(), "/d/x.conf:1");
}

#[test]
fn errors_in_included_files_name_that_file() {
    let loader = MemLoader::new().file("/d/10-auth.conf", "# auth\nallow_anonymous maybe\n");
    let e = parse_with("include_dir /d\n", &loader).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/d/10-auth.conf:2: \"allow_anonymous\" must be true or false, not \"maybe\""
    );
    assert_eq!(e.path, PathBuf::from("/d/10-auth.conf"));
    assert_eq!(e.line, Some(2));
}

#[test]
fn include_dir_only_in_main_file() {
    let loader = MemLoader::new().file("/d/x.conf", "include_dir /e\n");
    assert_eq!(
        parse_with("include_dir /d\n", &loader)
            .unwrap_err()
            .to_string(),
        "/d/x.conf:1: include_dir is allowed only in the main config file. Move this line to /etc/tern/tern.conf"
    );
}

#[test]
fn include_dir_errors() {
    assert_eq!(
        err("include_dir /nowhere\n"),
        "/etc/tern/tern.conf:1: cannot list include_dir \"/nowhere\": no such directory. Check that the directory exists and is readable"
    );
    struct Unreadable;
    impl Loader for Unreadable {
        fn read(&self, _: &Path) -> io::Result<String> {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "permission denied",
            ))
        }
        fn list_dir(&self, _: &Path) -> io::Result<Vec<PathBuf>> {
            Ok(vec![PathBuf::from("/d/x.conf")])
        }
    }
    assert_eq!(
        Config::parse_str(Path::new(MAIN), "\ninclude_dir /d\n", &Unreadable)
            .unwrap_err()
            .to_string(),
        "/etc/tern/tern.conf:2: cannot read config file \"/d/x.conf\": permission denied. Check that it exists and that the broker's user can read it"
    );
    let c = parse_with("include_dir /empty\n", &MemLoader::new().dir("/empty")).unwrap();
    assert_eq!(c.files.len(), 1);
}

#[test]
fn load_main_file_through_loader() {
    let loader = MemLoader::new().file(MAIN, "listener 1883\n");
    let c = Config::load(Path::new(MAIN), &loader).unwrap();
    assert_eq!(c.listeners.len(), 1);
    let e = Config::load(Path::new("/missing.conf"), &loader).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/missing.conf: cannot read config file \"/missing.conf\": no such file. Check that it exists and that the broker's user can read it"
    );
    assert_eq!(e.line, None);
}

#[test]
fn fs_loader_reads_real_files() {
    let dir = std::env::temp_dir().join(format!("tern-conf-fs-{}", std::process::id()));
    let inc = dir.join("conf.d");
    std::fs::create_dir_all(&inc).unwrap();
    let main = dir.join("tern.conf");
    std::fs::write(
        &main,
        format!("listener 1883\ninclude_dir {}\n", inc.display()),
    )
    .unwrap();
    std::fs::write(inc.join("b.conf"), "listener 2\n").unwrap();
    std::fs::write(inc.join("a.conf"), "listener 1\n").unwrap();
    let c = Config::load(&main, &FsLoader).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.listeners.len(), 3);
    assert_eq!(
        c.listeners[1].address,
        ListenAddress::Tcp {
            port: 1,
            host: None
        }
    );
    assert!(FsLoader.read(Path::new("/")).is_err());
}

// ---------------------------------------------------------------- every reference option parses

#[test]
fn every_known_option_is_recognised() {
    // Each known option, with a value it accepts and the context it needs.
    for name in OPTIONS {
        let value = match *name {
            "plugin_opt_" => continue,
            n if n.contains("file") || n.contains("path") || n.contains("dir") => "/x",
            "listener" => "1884",
            "port" => "1885",
            "accept_protocol_versions" => "5",
            "enable_proxy_protocol" => "1",
            "log_dest" => "stderr",
            "log_type" => "all",
            "protocol" => "mqtt",
            "socket_domain" => "ipv4",
            "tls_version" | "bridge_tls_version" => "tlsv1.2",
            "tls_keyform" => "pem",
            "tls_engine_kpass_sha1" => "0123456789abcdef0123456789abcdef01234567",
            "persistent_client_expiration" => "1d",
            "bridge_protocol_version" => "mqttv311",
            "start_type" => "automatic",
            "bridge_reload_type" => "lazy",
            "bridge_tcp_keepalive" => "1 2 3",
            "address" | "addresses" | "connection" => continue,
            "topic" => "t",
            "tls_max_fragment_size" => "4096",
            "max_packet_size" => "100",
            "log_facility" | "max_qos" | "maximum_qos" => "1",
            n if n.starts_with("allow")
                || n.starts_with("use_")
                || n.contains("persistence")
                    && n != "persistence_file"
                    && n != "persistence_location" =>
            {
                "true"
            }
            _ => "1",
        };
        let value = match *name {
            "autosave_on_changes"
            | "check_retain_source"
            | "connection_messages"
            | "enable_control_api"
            | "log_timestamp"
            | "queue_qos0_messages"
            | "retain_available"
            | "set_tcp_nodelay"
            | "upgrade_outgoing_qos"
            | "require_certificate"
            | "disable_client_cert_date_checks"
            | "proxy_protocol_v2_require_tls"
            | "per_listener_settings"
            | "cleansession"
            | "local_cleansession"
            | "round_robin"
            | "try_private"
            | "notifications"
            | "notifications_local_only"
            | "bridge_attempt_unsubscribe"
            | "bridge_outgoing_retain"
            | "bridge_insecure"
            | "bridge_require_ocsp"
            | "bridge_tls_use_os_certs"
            | "auth_plugin_deny_special_chars" => "true",
            _ => value,
        };
        let text = format!(
            "listener 1883\nplugin /p.so\nconnection b\naddress h\ntopic t\n{name} {value}\n"
        );
        let text = if *name == "psk_hint"
            || name.starts_with("bridge_identity")
            || *name == "bridge_psk"
        {
            text.replace("plugin /p.so\n", "")
        } else {
            text
        };
        let text = if *name == "bridge_psk" {
            format!("{text}bridge_identity id\n")
        } else if *name == "bridge_identity" {
            format!("{text}bridge_psk 00\n")
        } else {
            text
        };
        let text = if *name == "per_listener_settings" {
            format!(
                "{name} {value}\n{}",
                text.replace(&format!("{name} {value}\n"), "")
            )
        } else {
            text
        };
        if let Err(e) = Config::parse_str(Path::new(MAIN), &text, &MemLoader::new().dir("/x")) {
            panic!("{name} {value}: {e}");
        }
    }
}

proptest::proptest! {
    #[test]
    fn parser_never_panics(text in "\\PC*") {
        let _ = Config::parse_str(Path::new(MAIN), &text, &MemLoader::new());
    }

    #[test]
    fn parser_never_panics_on_option_like_lines(
        lines in proptest::collection::vec(
            (proptest::sample::select(OPTIONS), "\\PC{0,24}"), 0..12),
    ) {
        let text: String = lines.iter().map(|(n, v)| format!("{n} {v}\n")).collect();
        let _ = Config::parse_str(Path::new(MAIN), &text, &MemLoader::new());
        let text = format!("listener 1\nconnection b\n{text}");
        let _ = Config::parse_str(Path::new(MAIN), &text, &MemLoader::new());
    }
}

/// Debian's /etc/mosquitto/mosquitto.conf (mosquitto 2.0.11), verbatim.
#[test]
fn debian_default_config_parses() {
    let text = "# Place your local configuration in /etc/mosquitto/conf.d/\n#\n\
        # A full description of the configuration file is at\n\
        # /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\n\
        pid_file /run/mosquitto/mosquitto.pid\n\npersistence true\n\
        persistence_location /var/lib/mosquitto/\n\n\
        log_dest file /var/log/mosquitto/mosquitto.log\n\n\
        include_dir /etc/mosquitto/conf.d\n";
    let loader = MemLoader::new().file(
        "/etc/mosquitto/conf.d/local.conf",
        "listener 1883\nallow_anonymous false\npassword_file /etc/mosquitto/passwd\n",
    );
    let c = parse_with(text, &loader).unwrap();
    assert_eq!(
        c.pid_file,
        Some(PathBuf::from("/run/mosquitto/mosquitto.pid"))
    );
    assert!(c.persistence);
    assert_eq!(
        c.persistence_location,
        Some(PathBuf::from("/var/lib/mosquitto/"))
    );
    assert_eq!(
        c.log_dest,
        [LogDest::File(PathBuf::from(
            "/var/log/mosquitto/mosquitto.log"
        ))]
    );
    assert_eq!(c.listeners.len(), 1);
    assert!(!c.security.allow_anonymous);
    assert_eq!(
        c.security.password_file,
        Some(PathBuf::from("/etc/mosquitto/passwd"))
    );
    assert!(c.warnings.is_empty());
}
