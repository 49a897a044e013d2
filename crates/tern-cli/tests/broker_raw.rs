//! Raw-byte tests against the real `tern broker`: bytes written by hand (not by tern's own
//! encoder), one malformed case at a time. Each offender is disconnected with the reason the
//! specification names; other clients carry on; the broker keeps running.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

#[test]
fn connack_v311_and_v5() {
    let b = Broker::start();
    let mut c = Raw::connect(b.port);
    assert_eq!(c.connect_v311("raw-1"), vec![0x20, 2, 0, 0]);
    let mut c5 = Raw::connect(b.port);
    let ack = c5.connect_v5("raw-2");
    assert_eq!(
        &ack[..4],
        &[0x20, ack[1], 0, 0],
        "5.0 CONNACK success: {ack:?}"
    );
}

#[test]
fn first_packet_must_be_connect_mqtt_3_1_0_1() {
    let b = Broker::start();
    let mut c = Raw::connect(b.port);
    c.send(&[0xC0, 0x00]); // PINGREQ before CONNECT
    assert!(c.closed());
}

#[test]
fn unsupported_protocol_level_gets_connack_1_mqtt_3_1_2_2() {
    let b = Broker::start();
    let mut c = Raw::connect(b.port);
    c.send(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 9, 2, 0, 60, 0, 0]);
    assert_eq!(c.recv(), Some(vec![0x20, 2, 0, 1]));
    assert!(c.closed());
}

#[test]
fn malformed_packet_disconnects_only_the_offender() {
    let b = Broker::start();
    let mut good = Raw::connect(b.port);
    good.connect_v311("good");
    // SUBSCRIBE "t" QoS 0.
    good.send(&[0x82, 6, 0, 1, 0, 1, b't', 0]);
    assert_eq!(good.recv(), Some(vec![0x90, 3, 0, 1, 0]));
    let cases: &[(&str, &[u8])] = &[
        ("QoS 3 PUBLISH [MQTT-3.3.1-4]", &[0x36, 5, 0, 1, b't', 0, 1]),
        (
            "wildcard in topic name [MQTT-3.3.2-2]",
            &[0x30, 3, 0, 1, b'#'],
        ),
        ("reserved flags on PINGREQ [MQTT-2.1.3-1]", &[0xC1, 0]),
        (
            "invalid UTF-8 topic [MQTT-1.5.4-1]",
            &[0x30, 4, 0, 2, 0xC3, 0x28],
        ),
        (
            "remaining length longer than 4 bytes",
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        ),
        ("SUBSCRIBE without filters [MQTT-3.8.3-3]", &[0x82, 2, 0, 1]),
        ("packet id 0 [MQTT-2.2.1-3]", &[0x32, 5, 0, 1, b't', 0, 0]),
        (
            "second CONNECT [MQTT-3.1.0-2]",
            &[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0],
        ),
        (
            "bad topic filter [MQTT-4.7.1-2]",
            &[0x82, 7, 0, 1, 0, 2, b'#', b'a', 0],
        ),
        ("a packet type only servers send", &[0x90, 3, 0, 1, 0]),
    ];
    for (name, bytes) in cases {
        let mut bad = Raw::connect(b.port);
        bad.connect_v311("bad");
        bad.send(bytes);
        assert!(bad.closed(), "{name}: the offender must be disconnected");
        // Everyone else carries on.
        let mut pubr = Raw::connect(b.port);
        pubr.connect_v311("pub");
        pubr.send(&[0x30, 4, 0, 1, b't', b'x']);
        assert_eq!(
            good.recv(),
            Some(vec![0x30, 4, 0, 1, b't', b'x']),
            "after {name}"
        );
    }
}

#[test]
fn v5_malformed_gets_disconnect_with_reason() {
    let b = Broker::start();
    let cases: &[(&str, &[u8], u8)] = &[
        ("wildcard topic -> 0x90", &[0x30, 4, 0, 1, b'+', 0], 0x90),
        (
            "duplicate property -> 0x82",
            &[0x30, 14, 0, 1, b't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1],
            0x82,
        ),
        (
            "property not allowed -> 0x81",
            &[0x30, 7, 0, 1, b't', 2, 0x11, 0, 0],
            0x81,
        ),
        (
            "topic alias 0 -> 0x82",
            &[0x30, 7, 0, 1, b't', 3, 0x23, 0, 0],
            0x82,
        ),
        (
            "topic alias above maximum -> 0x94",
            &[0x30, 7, 0, 1, b't', 3, 0x23, 0, 99],
            0x94,
        ),
        (
            "empty topic, unknown alias -> 0x82",
            &[0x30, 6, 0, 0, 3, 0x23, 0, 1],
            0x82,
        ),
        (
            "subscription identifier from a client -> 0x82",
            &[0x30, 6, 0, 1, b't', 2, 0x0B, 1],
            0x82,
        ),
        ("QoS 3 -> 0x81", &[0x36, 6, 0, 1, b't', 0, 1, 0], 0x81),
    ];
    for (name, bytes, reason) in cases {
        let mut c = Raw::connect(b.port);
        c.connect_v5("v5bad");
        c.send(bytes);
        let d = c
            .recv()
            .unwrap_or_else(|| panic!("{name}: expected DISCONNECT"));
        assert_eq!(d[0], 0xE0, "{name}: {d:?}");
        assert_eq!(d[2], *reason, "{name}: {d:?}");
        assert!(c.closed(), "{name}");
    }
}

#[test]
fn oversized_packet_refused_before_buffering() {
    let b = Broker::with_config(
        "listener {port} 127.0.0.1\nallow_anonymous true\nmax_packet_size 1000\n",
    );
    let mut c = Raw::connect(b.port);
    c.connect_v5("big");
    // Declares 100,000 bytes; only the header is sent. 0x95 packet too large.
    c.send(&[0x30, 0xA0, 0x8D, 0x06]);
    let d = c.recv().unwrap();
    assert_eq!((d[0], d[2]), (0xE0, 0x95));
}

#[test]
fn silent_tcp_connection_is_dropped_after_connect_timeout() {
    let b =
        Broker::with_config("listener {port} 127.0.0.1\nallow_anonymous true\nconnect_timeout 1\n");
    let mut c = Raw::connect(b.port);
    let start = std::time::Instant::now();
    assert!(c.closed());
    assert!(start.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn pingreq_gets_pingresp() {
    let b = Broker::start();
    let mut c = Raw::connect(b.port);
    c.connect_v311("ping");
    c.send(&[0xC0, 0]);
    assert_eq!(c.recv(), Some(vec![0xD0, 0]));
}

/// An idle connection parks (right after CONNACK, and again after it has been quiet for two
/// seconds and given its buffers back): it must still receive what is published to it and
/// answer what it is sent.
#[test]
fn idle_connection_still_receives_and_answers() {
    let b = Broker::start();
    let mut sub = Raw::connect(b.port);
    sub.connect_v311("idle-sub");
    // SUBSCRIBE "idle/t" QoS 0.
    sub.send(&[0x82, 11, 0, 1, 0, 6, b'i', b'd', b'l', b'e', b'/', b't', 0]);
    assert_eq!(sub.recv(), Some(vec![0x90, 3, 0, 1, 0]));
    // Quiet for longer than the broker's idle release (2 s).
    std::thread::sleep(std::time::Duration::from_millis(2600));
    let mut publ = Raw::connect(b.port);
    publ.connect_v311("idle-pub");
    let publish = [0x30, 9, 0, 6, b'i', b'd', b'l', b'e', b'/', b't', b'x'];
    publ.send(&publish);
    assert_eq!(sub.recv(), Some(publish.to_vec()));
    std::thread::sleep(std::time::Duration::from_millis(2600));
    sub.send(&[0xC0, 0]);
    assert_eq!(sub.recv(), Some(vec![0xD0, 0]));
}

/// A parked connection's keep-alive still runs out: silent for 1.5 x its keep-alive of 1 s,
/// it is closed [MQTT-3.1.2-24].
#[test]
fn parked_connection_is_closed_after_its_keep_alive() {
    let b = Broker::start();
    let mut c = Raw::connect(b.port);
    let mut p = vec![0x10, 0];
    p.extend([0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 1, 0, 4]);
    p.extend(b"ka-1");
    p[1] = (p.len() - 2) as u8;
    c.send(&p);
    assert_eq!(c.recv(), Some(vec![0x20, 2, 0, 0]));
    let start = std::time::Instant::now();
    assert!(c.closed(), "a silent client must be disconnected");
    let waited = start.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(1400)
            && waited < std::time::Duration::from_secs(4),
        "closed after {waited:?}, expected about 1.5 s (keep-alive 1 s)"
    );
}

/// `listener PORT` without an address (the tutorial's `listener 8883`) listens on every
/// IPv4 and IPv6 address, as Mosquitto does: the two sockets must not collide.
#[test]
fn listener_without_address_serves_ipv4_and_ipv6() {
    let b = Broker::with_config("listener {port}\nallow_anonymous true\n");
    let mut c = Raw::connect(b.port);
    assert_eq!(c.connect_v311("v4"), vec![0x20, 2, 0, 0]);
    // Loopback IPv6 where this machine has it.
    if std::net::TcpListener::bind(("::1", 0)).is_ok() {
        let s = std::net::TcpStream::connect(("::1", b.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut c6 = Raw { s };
        assert_eq!(c6.connect_v311("v6"), vec![0x20, 2, 0, 0]);
    }
}
