//! In-memory tests: the client against hand-written server bytes, with a simulated clock.

use super::*;
use ProtocolVersion::*;
use alloc::vec;
use tern_codec::{Connack, Properties, Suback, Unsuback};

const T0: Timestamp = Timestamp(1_000_000);

fn at(ms: u64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).unwrap()
}

/// Everything the client wants to send, split into packets.
fn sent(c: &mut ClientConn) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    c.poll_transmit(&mut out);
    let mut packets = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let f = frame(rest, u32::MAX).unwrap().unwrap();
        packets.push(rest[..f.total_len()].to_vec());
        rest = &rest[f.total_len()..];
    }
    packets
}

fn events(c: &mut ClientConn) -> Vec<Event> {
    core::iter::from_fn(|| c.poll_event()).collect()
}

fn enc(v: ProtocolVersion, p: &Packet<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, v, p).unwrap();
    out
}

fn connack(v: ProtocolVersion, session_present: bool, props: Properties<'_>) -> Vec<u8> {
    enc(
        v,
        &Packet::Connack(Connack {
            session_present,
            reason: ReasonCode::Success,
            properties: props,
        }),
    )
}

fn connected_with(opts: ClientOptions, props: Properties<'_>) -> ClientConn {
    let v = opts.version;
    let mut c = ClientConn::new(opts);
    c.connect(T0);
    sent(&mut c);
    c.handle_input(T0, &connack(v, false, props)).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Connected {
            session_present: false,
            ..
        })
    ));
    c
}

fn connected(v: ProtocolVersion) -> ClientConn {
    connected_with(ClientOptions::new(v, "c"), Properties::default())
}

fn msg(topic: &str, payload: &[u8], qos: QoS) -> Message {
    Message::new(topic, payload).with_qos(qos)
}

#[test]
fn connect_bytes_v311_section_3_1() {
    let mut c = ClientConn::new(ClientOptions::new(V311, "c1"));
    c.connect(T0);
    assert_eq!(
        sent(&mut c),
        vec![vec![
            0x10, 14, // CONNECT, remaining length 14
            0, 4, b'M', b'Q', b'T', b'T', // protocol name
            4,    // level 4
            0x02, // clean session
            0, 60, // keep-alive 60
            0, 2, b'c', b'1', // client id
        ]]
    );
    assert!(!c.is_connected());
    assert_eq!(c.poll_timeout(), Some(at(30_000)));
}

#[test]
fn connect_v5_announces_limits_and_will() {
    let mut o = ClientOptions::new(V5, "id");
    o.session_expiry_interval = Some(300);
    o.receive_maximum = 10;
    o.max_packet_size = 4096;
    o.topic_alias_maximum = 5;
    o.username = Some("u".into());
    o.password = Some(b"p".to_vec());
    let mut will = Message::new("w/t", "bye").with_qos(QoS::AtLeastOnce);
    will.retain = true;
    will.properties.will_delay_interval = Some(5);
    o.will = Some(will);
    let mut c = ClientConn::new(o);
    c.connect(T0);
    let p = sent(&mut c).remove(0);
    let Ok(Some((Packet::Connect(k), _))) = decode(&p, V5, u32::MAX) else {
        panic!("not a CONNECT")
    };
    assert_eq!(k.properties.session_expiry_interval, Some(300));
    assert_eq!(k.properties.receive_maximum, Some(10));
    assert_eq!(k.properties.maximum_packet_size, Some(4096));
    assert_eq!(k.properties.topic_alias_maximum, Some(5));
    assert_eq!((k.username, k.password), (Some("u"), Some(&b"p"[..])));
    let w = k.will.unwrap();
    assert_eq!(
        (w.topic, w.payload, w.qos, w.retain),
        ("w/t", &b"bye"[..], QoS::AtLeastOnce, true)
    );
    assert_eq!(w.properties.will_delay_interval, Some(5));
}

#[test]
fn refused_connack_v311_return_code_5() {
    let mut c = ClientConn::new(ClientOptions::new(V311, "c"));
    c.connect(T0);
    sent(&mut c);
    c.handle_input(T0, &[0x20, 2, 0, 5]).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Refused {
            reason: ReasonCode::NotAuthorized,
            properties: OwnedProperties::default()
        }]
    );
    assert!(!c.is_connected());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn packet_before_connack_is_a_protocol_error() {
    let mut c = ClientConn::new(ClientOptions::new(V311, "c"));
    c.connect(T0);
    sent(&mut c);
    assert_eq!(
        c.handle_input(T0, &[0xD0, 0]),
        Err(ConnError::Protocol("a packet before CONNACK"))
    );
}

#[test]
fn connack_timeout() {
    let mut c = ClientConn::new(ClientOptions::new(V311, "c"));
    c.connect(T0);
    assert_eq!(c.handle_timeout(at(29_999)), Ok(()));
    assert_eq!(
        c.handle_timeout(at(30_000)),
        Err(ConnError::ConnackTimeout(30_000))
    );
    assert!(!c.is_connected());
}

#[test]
fn qos0_publish_bytes_section_3_3() {
    let mut c = connected(V311);
    assert_eq!(c.publish(T0, msg("a/b", b"hi", QoS::AtMostOnce)), Ok(None));
    assert_eq!(
        sent(&mut c),
        vec![vec![0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i']]
    );
    let mut m = msg("r", b"", QoS::AtMostOnce);
    m.retain = true;
    c.publish(T0, m).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x31, 3, 0, 1, b'r']]);
}

#[test]
fn qos1_publish_puback_section_4_3_2() {
    let mut c = connected(V311);
    let id = c.publish(T0, msg("t", b"x", QoS::AtLeastOnce)).unwrap();
    assert_eq!(id, Some(pid(1)));
    assert_eq!(sent(&mut c), vec![vec![0x32, 6, 0, 1, b't', 0, 1, b'x']]);
    assert_eq!(c.inflight_len(), 1);
    c.handle_input(T0, &[0x40, 2, 0, 1]).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Published {
            packet_id: pid(1),
            reason: ReasonCode::Success
        }]
    );
    assert_eq!(c.inflight_len(), 0);
    // A late duplicate PUBACK is ignored.
    c.handle_input(T0, &[0x40, 2, 0, 1]).unwrap();
    assert!(events(&mut c).is_empty());
}

#[test]
fn qos2_publish_pubrec_pubrel_pubcomp_section_4_3_3() {
    let mut c = connected(V311);
    c.publish(T0, msg("t", b"x", QoS::ExactlyOnce)).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x34, 6, 0, 1, b't', 0, 1, b'x']]);
    c.handle_input(T0, &[0x50, 2, 0, 1]).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x62, 2, 0, 1]]);
    assert!(events(&mut c).is_empty());
    c.handle_input(T0, &[0x70, 2, 0, 1]).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Published {
            packet_id: pid(1),
            reason: ReasonCode::Success
        }]
    );
}

#[test]
fn qos2_refused_by_pubrec_reason_v5() {
    let mut c = connected(V5);
    c.publish(T0, msg("t", b"x", QoS::ExactlyOnce)).unwrap();
    sent(&mut c);
    c.handle_input(T0, &[0x50, 3, 0, 1, 0x87]).unwrap();
    assert!(sent(&mut c).is_empty());
    assert_eq!(
        events(&mut c),
        vec![Event::Published {
            packet_id: pid(1),
            reason: ReasonCode::NotAuthorized
        }]
    );
}

#[test]
fn incoming_qos1_is_acknowledged() {
    let mut c = connected(V311);
    c.handle_input(T0, &[0x32, 6, 0, 1, b't', 0, 7, b'x'])
        .unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x40, 2, 0, 7]]);
    let ev = events(&mut c);
    let [Event::Message(m)] = &ev[..] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (m.topic.as_str(), &m.payload[..], m.qos),
        ("t", &b"x"[..], QoS::AtLeastOnce)
    );
    assert_eq!(m.packet_id, Some(pid(7)));
}

#[test]
fn incoming_qos2_delivered_exactly_once_mqtt_4_3_3_2() {
    let mut c = connected(V311);
    let publish = [0x34, 6, 0, 1, b't', 0, 9, b'x'];
    c.handle_input(T0, &publish).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x50, 2, 0, 9]]);
    assert_eq!(events(&mut c).len(), 1);
    // The server resends with DUP before seeing PUBREC: acknowledged, not delivered again.
    let mut dup = publish;
    dup[0] |= 0x08;
    c.handle_input(T0, &dup).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x50, 2, 0, 9]]);
    assert!(events(&mut c).is_empty());
    c.handle_input(T0, &[0x62, 2, 0, 9]).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0x70, 2, 0, 9]]);
    // After PUBCOMP the identifier is free: a new message with it is delivered.
    c.handle_input(T0, &publish).unwrap();
    assert_eq!(events(&mut c).len(), 1);
}

#[test]
fn incoming_qos2_over_receive_maximum_v5() {
    let mut o = ClientOptions::new(V5, "c");
    o.receive_maximum = 1;
    let mut c = connected_with(o, Properties::default());
    c.handle_input(T0, &[0x34, 7, 0, 1, b't', 0, 1, 0, b'x'])
        .unwrap();
    sent(&mut c);
    assert_eq!(
        c.handle_input(T0, &[0x34, 7, 0, 1, b't', 0, 2, 0, b'x']),
        Err(ConnError::ReceiveMaximumExceeded(1))
    );
    assert_eq!(sent(&mut c), vec![vec![0xE0, 2, 0x93, 0]]);
}

#[test]
fn window_is_the_server_receive_maximum() {
    let mut c = connected_with(
        ClientOptions::new(V5, "c"),
        Properties {
            receive_maximum: Some(2),
            ..Default::default()
        },
    );
    for _ in 0..4 {
        c.publish(T0, msg("t", b"x", QoS::AtLeastOnce)).unwrap();
    }
    assert_eq!(sent(&mut c).len(), 2);
    assert_eq!((c.inflight_len(), c.pending_len()), (2, 2));
    // QoS 0 behind queued QoS 1 keeps its place.
    c.publish(T0, msg("t", b"zero", QoS::AtMostOnce)).unwrap();
    assert_eq!(c.pending_len(), 3);
    c.handle_input(T0, &[0x40, 2, 0, 1]).unwrap();
    let out = sent(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..2], &[0x32, 7]); // id 3
    assert_eq!(&out[0][5..7], &[0, 3]);
    c.handle_input(T0, &[0x40, 2, 0, 2]).unwrap();
    let out = sent(&mut c);
    assert_eq!(out.len(), 2, "id 4 and then the QoS 0 message");
    assert_eq!(out[1][0], 0x30);
    assert_eq!(c.pending_len(), 0);
}

#[test]
fn pending_queue_is_bounded() {
    let mut o = ClientOptions::new(V311, "c");
    o.max_pending = 2;
    let mut c = ClientConn::new(o);
    c.publish(T0, msg("t", b"1", QoS::AtLeastOnce)).unwrap();
    c.publish(T0, msg("t", b"2", QoS::AtMostOnce)).unwrap();
    assert_eq!(
        c.publish(T0, msg("t", b"3", QoS::AtLeastOnce)),
        Err(UsageError::QueueFull {
            messages: 2,
            bytes: 4
        })
    );
    // Queued while offline, sent after CONNACK.
    c.connect(T0);
    sent(&mut c);
    c.handle_input(T0, &[0x20, 2, 0, 0]).unwrap();
    let out = sent(&mut c);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0][0], 0x32);
    assert_eq!(out[1][0], 0x30);
}

#[test]
fn keep_alive_ping_and_timeout_mqtt_3_1_2_23() {
    let mut c = connected(V311);
    assert_eq!(c.poll_timeout(), Some(at(60_000)));
    c.handle_timeout(at(59_999)).unwrap();
    assert!(sent(&mut c).is_empty());
    c.handle_timeout(at(60_000)).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0xC0, 0]]);
    // PINGRESP clears it and the timer restarts from the last exchange.
    c.handle_input(at(60_500), &[0xD0, 0]).unwrap();
    assert_eq!(c.poll_timeout(), Some(at(120_000)));
    c.handle_timeout(at(120_000)).unwrap();
    assert_eq!(sent(&mut c), vec![vec![0xC0, 0]]);
    assert_eq!(c.poll_timeout(), Some(at(180_000)));
    assert_eq!(c.handle_timeout(at(179_999)), Ok(()));
    assert_eq!(
        c.handle_timeout(at(180_000)),
        Err(ConnError::PingTimeout(60_000))
    );
    assert!(!c.is_connected());
}

#[test]
fn sending_postpones_the_ping_but_silence_from_the_server_does_not() {
    let mut c = connected(V311);
    c.publish(at(30_000), msg("t", b"x", QoS::AtMostOnce))
        .unwrap();
    // Received nothing since T0: ping still due at 60 s.
    assert_eq!(c.poll_timeout(), Some(at(60_000)));
    c.handle_input(at(40_000), &[0x30, 3, 0, 1, b't']).unwrap();
    assert_eq!(c.poll_timeout(), Some(at(90_000)));
}

#[test]
fn server_keep_alive_and_assigned_client_id_v5() {
    let c = connected_with(
        ClientOptions::new(V5, ""),
        Properties {
            server_keep_alive: Some(5),
            assigned_client_identifier: Some("auto-123"),
            ..Default::default()
        },
    );
    assert_eq!(c.client_id(), "auto-123");
    assert_eq!(c.server_limits().keep_alive_secs, 5);
    assert_eq!(c.poll_timeout(), Some(at(5_000)));
}

#[test]
fn keep_alive_zero_never_pings() {
    let mut o = ClientOptions::new(V311, "c");
    o.keep_alive_secs = 0;
    let mut c = connected_with(o, Properties::default());
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(at(10_000_000)).unwrap();
    assert!(sent(&mut c).is_empty());
}

#[test]
fn reconnect_with_session_present_resends_with_dup_mqtt_4_4_0_1() {
    let mut c = connected(V311);
    c.publish(T0, msg("a", b"1", QoS::AtLeastOnce)).unwrap();
    c.publish(T0, msg("b", b"2", QoS::ExactlyOnce)).unwrap();
    c.publish(T0, msg("c", b"3", QoS::ExactlyOnce)).unwrap();
    sent(&mut c);
    c.handle_input(T0, &[0x50, 2, 0, 3]).unwrap(); // PUBREC for id 3
    sent(&mut c);
    c.connection_lost();
    assert!(!c.is_connected());
    c.connect(at(1000));
    sent(&mut c);
    c.handle_input(at(1000), &[0x20, 2, 1, 0]).unwrap();
    assert!(matches!(
        c.poll_event(),
        Some(Event::Connected {
            session_present: true,
            ..
        })
    ));
    assert_eq!(
        sent(&mut c),
        vec![
            vec![0x3A, 6, 0, 1, b'a', 0, 1, b'1'], // DUP QoS 1
            vec![0x3C, 6, 0, 1, b'b', 0, 2, b'2'], // DUP QoS 2
            vec![0x62, 2, 0, 3],                   // PUBREL again
        ]
    );
}

#[test]
fn reconnect_without_session_sends_again_as_new() {
    let mut c = connected(V311);
    c.publish(T0, msg("a", b"1", QoS::AtLeastOnce)).unwrap();
    c.publish(T0, msg("c", b"3", QoS::ExactlyOnce)).unwrap();
    sent(&mut c);
    c.handle_input(T0, &[0x50, 2, 0, 2]).unwrap();
    sent(&mut c);
    c.connection_lost();
    c.connect(at(1000));
    sent(&mut c);
    c.handle_input(at(1000), &[0x20, 2, 0, 0]).unwrap();
    let ev = events(&mut c);
    assert_eq!(
        ev[1],
        Event::Published {
            packet_id: pid(2),
            reason: ReasonCode::Success
        }
    );
    assert_eq!(sent(&mut c), vec![vec![0x32, 6, 0, 1, b'a', 0, 1, b'1']]);
}

#[test]
fn unacknowledged_subscribe_is_resent_and_queued_while_offline() {
    let mut c = ClientConn::new(ClientOptions::new(V311, "c"));
    let id = c
        .subscribe(
            T0,
            &[("a/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
            &OwnedProperties::default(),
        )
        .unwrap();
    c.connect(T0);
    assert_eq!(sent(&mut c).len(), 1, "only CONNECT before CONNACK");
    c.handle_input(T0, &[0x20, 2, 0, 0]).unwrap();
    assert_eq!(
        sent(&mut c),
        vec![vec![0x82, 8, 0, 1, 0, 3, b'a', b'/', b'#', 1]]
    );
    let suback = enc(
        V311,
        &Packet::Suback(Suback {
            packet_id: id,
            properties: Properties::default(),
            reasons: &[1],
        }),
    );
    c.handle_input(T0, &suback).unwrap();
    assert_eq!(
        events(&mut c)[1..],
        [Event::Subscribed {
            packet_id: id,
            reasons: vec![ReasonCode::GrantedQos1]
        }]
    );
    let u = c
        .unsubscribe(T0, &["a/#"], &OwnedProperties::default())
        .unwrap();
    assert_eq!(
        sent(&mut c),
        vec![vec![0xA2, 7, 0, 2, 0, 3, b'a', b'/', b'#']]
    );
    let unsuback = enc(
        V311,
        &Packet::Unsuback(Unsuback {
            packet_id: u,
            properties: Properties::default(),
            reasons: &[],
        }),
    );
    c.handle_input(T0, &unsuback).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Unsubscribed {
            packet_id: u,
            reasons: vec![]
        }]
    );
    assert_eq!(c.requests_len(), 0);
}

#[test]
fn invalid_requests_are_refused_before_sending() {
    let mut c = connected(V311);
    assert!(matches!(
        c.publish(T0, msg("a/+", b"", QoS::AtMostOnce)),
        Err(UsageError::BadTopicName { .. })
    ));
    assert!(matches!(
        c.subscribe(
            T0,
            &[("a/#/b", SubscriptionOptions::default())],
            &OwnedProperties::default()
        ),
        Err(UsageError::BadTopicFilter { .. })
    ));
    assert_eq!(
        c.subscribe(T0, &[], &OwnedProperties::default()),
        Err(UsageError::NoTopicFilter)
    );
    assert!(sent(&mut c).is_empty());
}

#[test]
fn inbound_topic_alias_v5() {
    let mut c = connected(V5);
    // PUBLISH "a/b" with topic alias 1, then an empty topic with alias 1.
    let first = [0x30, 10, 0, 3, b'a', b'/', b'b', 3, 0x23, 0, 1, b'x'];
    c.handle_input(T0, &first).unwrap();
    let second = [0x30, 7, 0, 0, 3, 0x23, 0, 1, b'y'];
    c.handle_input(T0, &second).unwrap();
    let topics: Vec<String> = events(&mut c)
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.topic),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["a/b", "a/b"]);
    // Alias 11 is above the maximum we announced (10): DISCONNECT 0x94.
    let bad = [0x30, 7, 0, 0, 3, 0x23, 0, 11, b'y'];
    assert_eq!(c.handle_input(T0, &bad), Err(ConnError::TopicAliasInvalid));
    assert_eq!(sent(&mut c), vec![vec![0xE0, 2, 0x94, 0]]);
}

#[test]
fn outbound_topic_alias_v5() {
    let mut c = connected_with(
        ClientOptions::new(V5, "c"),
        Properties {
            topic_alias_maximum: Some(4),
            ..Default::default()
        },
    );
    c.publish(T0, msg("long/topic", b"1", QoS::AtMostOnce))
        .unwrap();
    c.publish(T0, msg("long/topic", b"2", QoS::AtMostOnce))
        .unwrap();
    let out = sent(&mut c);
    let Ok(Some((Packet::Publish(a), _))) = decode(&out[0], V5, u32::MAX) else {
        panic!()
    };
    assert_eq!((a.topic, a.properties.topic_alias), ("long/topic", Some(1)));
    let Ok(Some((Packet::Publish(b), _))) = decode(&out[1], V5, u32::MAX) else {
        panic!()
    };
    assert_eq!((b.topic, b.properties.topic_alias), ("", Some(1)));
}

#[test]
fn no_outbound_alias_when_server_allows_none() {
    let mut c = connected(V5);
    c.publish(T0, msg("t", b"1", QoS::AtMostOnce)).unwrap();
    c.publish(T0, msg("t", b"2", QoS::AtMostOnce)).unwrap();
    for p in sent(&mut c) {
        let Ok(Some((Packet::Publish(a), _))) = decode(&p, V5, u32::MAX) else {
            panic!()
        };
        assert_eq!((a.topic, a.properties.topic_alias), ("t", None));
    }
}

#[test]
fn server_maximum_packet_size_qos_and_retain_v5() {
    let mut c = connected_with(
        ClientOptions::new(V5, "c"),
        Properties {
            maximum_packet_size: Some(20),
            maximum_qos: Some(1),
            retain_available: Some(0),
            ..Default::default()
        },
    );
    assert!(
        c.publish(T0, msg("t", b"0123456789", QoS::AtMostOnce))
            .is_ok()
    );
    assert_eq!(
        c.publish(T0, msg("t", b"0123456789abcdef", QoS::AtMostOnce)),
        Err(UsageError::PacketTooLarge { len: 22, max: 20 })
    );
    assert_eq!(
        c.publish(T0, msg("t", b"", QoS::ExactlyOnce)),
        Err(UsageError::QosNotSupported { max: 1 })
    );
    assert_eq!(
        c.publish(T0, msg("t", b"", QoS::AtMostOnce).with_retain(true)),
        Err(UsageError::RetainNotSupported)
    );
}

#[test]
fn incoming_packet_over_our_maximum_v5() {
    let mut o = ClientOptions::new(V5, "c");
    o.max_packet_size = 16;
    let mut c = connected_with(o, Properties::default());
    // Declares 100 bytes: refused from the header alone, before buffering.
    assert_eq!(
        c.handle_input(T0, &[0x30, 100, 0, 1]),
        Err(ConnError::Decode(DecodeError::PacketTooLarge {
            len: 102,
            max: 16
        }))
    );
    assert_eq!(sent(&mut c), vec![vec![0xE0, 2, 0x95, 0]]);
}

#[test]
fn malformed_packet_v5_disconnects_with_0x81() {
    let mut c = connected(V5);
    assert!(c.handle_input(T0, &[0x40, 1, 0]).is_err());
    assert_eq!(sent(&mut c), vec![vec![0xE0, 2, 0x81, 0]]);
}

#[test]
fn input_split_at_every_point() {
    let stream: Vec<u8> = [
        &[0x20, 2, 0, 0][..],
        &[0x32, 6, 0, 1, b't', 0, 7, b'x'],
        &[0x30, 3, 0, 1, b'u'],
        &[0xD0, 0],
    ]
    .concat();
    for split in 0..=stream.len() {
        let mut c = ClientConn::new(ClientOptions::new(V311, "c"));
        c.connect(T0);
        sent(&mut c);
        let (a, b) = stream.split_at(split);
        assert_eq!(c.handle_input(T0, a), Ok(a.len()));
        assert_eq!(c.handle_input(T0, b), Ok(b.len()));
        let ev = events(&mut c);
        assert_eq!(ev.len(), 3, "split at {split}: {ev:?}");
        assert_eq!(sent(&mut c), vec![vec![0x40, 2, 0, 7]]);
    }
}

#[test]
fn server_disconnect_v5() {
    let mut c = connected(V5);
    c.handle_input(T0, &[0xE0, 1, 0x8B]).unwrap();
    assert_eq!(
        events(&mut c),
        vec![Event::Disconnected {
            reason: ReasonCode::ServerShuttingDown,
            properties: OwnedProperties::default()
        }]
    );
    assert!(!c.is_connected());
}

#[test]
fn client_disconnect() {
    let mut c = connected(V5);
    c.disconnect(ReasonCode::DisconnectWithWill, &OwnedProperties::default());
    assert_eq!(sent(&mut c), vec![vec![0xE0, 2, 0x04, 0]]);
    let mut c = connected(V311);
    c.disconnect(ReasonCode::Success, &OwnedProperties::default());
    assert_eq!(sent(&mut c), vec![vec![0xE0, 0]]);
    assert!(!c.is_connected());
}

#[test]
fn v5_message_properties_are_owned() {
    let mut c = connected(V5);
    let users = [("k", "v"), ("k", "w")];
    let p = enc(
        V5,
        &Packet::Publish(Publish {
            properties: Properties {
                content_type: Some("text/plain"),
                user_properties: tern_codec::UserProperties::List(&users),
                message_expiry_interval: Some(9),
                ..Default::default()
            },
            ..Publish::new("t", b"x")
        }),
    );
    c.handle_input(T0, &p).unwrap();
    let Some(Event::Message(m)) = c.poll_event() else {
        panic!()
    };
    assert_eq!(m.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(m.properties.message_expiry_interval, Some(9));
    assert_eq!(
        m.properties.user_properties,
        vec![("k".into(), "v".into()), ("k".into(), "w".into())]
    );
}
