//! The broker core driven directly, with a simulated clock: no sockets, no sleeps.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use tern_broker_core::*;
use tern_codec::*;
use tern_proto::Timestamp;

struct Client {
    conn: ConnId,
}

fn broker() -> Broker {
    Broker::new(
        CoreConfig {
            sys_interval: 0,
            ..CoreConfig::default()
        },
        Timestamp(0),
        42,
    )
}

fn connect_with(
    b: &mut Broker,
    now: u64,
    c: Connect<'_>,
) -> (Result<Accepted, ReasonCode>, Vec<Out>) {
    let mut out = Vec::new();
    let r = b.connect(
        Timestamp(now),
        ConnectRequest {
            limits: &ListenerLimits::from_core(&CoreConfig::default()),
            connect: &c,
            username: None,
            client_id_override: None,
            authenticator: None,
        },
        &mut out,
    );
    (r, out)
}

fn connect(b: &mut Broker, id: &str, v: ProtocolVersion, clean: bool) -> (Client, bool) {
    let mut c = Connect::new(v, id);
    c.clean_start = clean;
    if v.is_v5() && !clean {
        c.properties.session_expiry_interval = Some(3600);
    }
    let (r, out) = connect_with(b, 0, c);
    let acc = r.unwrap();
    let Out::Connack(info) = &out[0] else {
        panic!("{out:?}")
    };
    (Client { conn: acc.conn }, info.session_present)
}

fn send(b: &mut Broker, c: &Client, p: Packet<'_>) -> Vec<Out> {
    let mut out = Vec::new();
    b.handle(Timestamp(0), c.conn, &p, None, &mut out).unwrap();
    out
}

fn subscribe(b: &mut Broker, c: &Client, filter: &str, qos: QoS) -> Vec<u8> {
    let list = [(filter, SubscriptionOptions::qos(qos))];
    let s = Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        properties: Properties::default(),
        filters: SubscribeFilters::List(&list),
    };
    let out = send(b, c, Packet::Subscribe(s));
    let Some(Out::Suback(_, codes)) = out.first() else {
        panic!("{out:?}")
    };
    codes.clone()
}

fn publish(
    b: &mut Broker,
    c: &Client,
    topic: &str,
    payload: &[u8],
    qos: QoS,
    retain: bool,
    pid: u16,
) -> Vec<Out> {
    let mut p = Publish::new(topic, payload);
    p.qos = qos;
    p.retain = retain;
    p.packet_id = PacketId::new(pid).filter(|_| qos != QoS::AtMostOnce);
    send(b, c, Packet::Publish(p))
}

fn drain(b: &mut Broker, c: &Client) -> Vec<Delivery> {
    let mut out = Vec::new();
    b.drain(Timestamp(0), c.conn, 1000, &mut out);
    out.into_iter()
        .filter_map(|o| match o {
            Out::Publish(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn payloads(d: &[Delivery]) -> Vec<String> {
    d.iter()
        .map(|d| String::from_utf8_lossy(&d.msg.payload).into_owned())
        .collect()
}

#[test]
fn qos0_pub_sub_and_qos_downgrade_mqtt_3_8_4_6() {
    let mut b = broker();
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V311, true);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V311, true);
    assert_eq!(subscribe(&mut b, &s, "a/+", QoS::AtLeastOnce), vec![1]);
    let acks = publish(&mut b, &p, "a/b", b"hello", QoS::ExactlyOnce, false, 7);
    assert!(matches!(acks[0], Out::Pubrec(id, ReasonCode::Success) if id.get() == 7));
    let d = drain(&mut b, &s);
    assert_eq!(payloads(&d), vec!["hello"]);
    // Delivered at the granted QoS 1, not the published QoS 2.
    assert_eq!(d[0].qos, QoS::AtLeastOnce);
    assert!(d[0].pid.is_some());
}

#[test]
fn v5_no_matching_subscribers_reason() {
    let mut b = broker();
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V5, true);
    let acks = publish(&mut b, &p, "nobody", b"x", QoS::AtLeastOnce, false, 1);
    assert!(matches!(
        acks[0],
        Out::Puback(_, ReasonCode::NoMatchingSubscribers)
    ));
}

#[test]
fn retained_set_replace_clear_and_flag_on_subscribe() {
    let mut b = broker();
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V311, true);
    publish(&mut b, &p, "r/t", b"one", QoS::AtMostOnce, true, 0);
    publish(&mut b, &p, "r/t", b"two", QoS::AtMostOnce, true, 0);
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V311, true);
    subscribe(&mut b, &s, "r/#", QoS::AtMostOnce);
    let d = drain(&mut b, &s);
    assert_eq!(payloads(&d), vec!["two"]);
    assert!(
        d[0].retain,
        "[MQTT-3.3.1-8] retained message keeps RETAIN on subscribe"
    );
    // A live retained publish reaches an existing 3.1.1 subscriber with RETAIN cleared.
    publish(&mut b, &p, "r/t", b"three", QoS::AtMostOnce, true, 0);
    let d = drain(&mut b, &s);
    assert!(!d[0].retain);
    // Empty payload clears it.
    publish(&mut b, &p, "r/t", b"", QoS::AtMostOnce, true, 0);
    assert_eq!(b.retained_count(), 0);
}

#[test]
fn persistent_session_queues_qos1_and_redelivers_with_dup() {
    let mut b = broker();
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V311, false);
    subscribe(&mut b, &s, "q", QoS::AtLeastOnce);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V311, true);
    publish(&mut b, &p, "q", b"m1", QoS::AtLeastOnce, false, 1);
    // Sent but not acknowledged, then the subscriber vanishes.
    let d = drain(&mut b, &s);
    assert_eq!(payloads(&d), vec!["m1"]);
    b.connection_lost(Timestamp(0), s.conn);
    publish(&mut b, &p, "q", b"m2", QoS::AtLeastOnce, false, 2);
    publish(&mut b, &p, "q", b"q0", QoS::AtMostOnce, false, 0);
    let mut out = Vec::new();
    let mut c = Connect::new(ProtocolVersion::V311, "sub");
    c.clean_start = false;
    let acc = b
        .connect(
            Timestamp(1),
            ConnectRequest {
                limits: &ListenerLimits::from_core(&CoreConfig::default()),
                connect: &c,
                username: None,
                client_id_override: None,
                authenticator: None,
            },
            &mut out,
        )
        .unwrap();
    let Out::Connack(info) = &out[0] else {
        panic!()
    };
    assert!(info.session_present);
    // [MQTT-4.4.0-1] m1 is resent with DUP, then m2 follows; QoS 0 was not queued offline.
    let Out::Publish(resent) = &out[1] else {
        panic!("{out:?}")
    };
    assert!(resent.dup);
    assert_eq!(&*resent.msg.payload, b"m1");
    let s2 = Client { conn: acc.conn };
    assert_eq!(payloads(&drain(&mut b, &s2)), vec!["m2"]);
}

/// How a QoS 2 test session comes back: same broker without a store, same broker with a
/// store (its messages are spilled to the store while offline), or a broker restarted from
/// the store.
#[derive(Clone, Copy, Debug)]
enum Resume {
    InMemory,
    Spilled,
    Restarted,
}

/// [MQTT-4.4.0-1] on a resumed session the server resends unacknowledged PUBLISH packets
/// (DUP=1, same packet id) and PUBREL packets: a QoS 2 message the client did not answer
/// with PUBREC is resent as PUBLISH; one it answered with PUBREC but whose PUBCOMP never came
/// gets PUBREL, not the PUBLISH again [MQTT-4.3.3-5] (issue #2).
#[test]
fn persistent_session_resends_qos2_publish_and_pubrel_after_reconnect() {
    for mode in [Resume::InMemory, Resume::Spilled, Resume::Restarted] {
        let store = std::sync::Arc::new(MemStore::default());
        let mut b = match mode {
            Resume::InMemory => broker(),
            Resume::Spilled | Resume::Restarted => persistent_broker(&store, 0),
        };
        let (s, _) = connect(&mut b, "sub", ProtocolVersion::V311, false);
        assert_eq!(subscribe(&mut b, &s, "q2", QoS::ExactlyOnce), vec![2]);
        let (p, _) = connect(&mut b, "pub", ProtocolVersion::V311, true);
        publish(&mut b, &p, "q2", b"no-pubrec", QoS::ExactlyOnce, false, 1);
        publish(&mut b, &p, "q2", b"pubrec-only", QoS::ExactlyOnce, false, 2);
        let d = drain(&mut b, &s);
        assert_eq!(payloads(&d), vec!["no-pubrec", "pubrec-only"], "{mode:?}");
        assert!(d.iter().all(|d| !d.dup && d.qos == QoS::ExactlyOnce));
        let (first, second) = (d[0].pid.unwrap(), d[1].pid.unwrap());
        // The client answers the second with PUBREC and gets PUBREL; then it vanishes
        // before sending PUBCOMP.
        let out = send(&mut b, &s, Packet::Pubrec(Ack::new(second)));
        assert!(
            matches!(out.as_slice(), [Out::Pubrel(id, ReasonCode::Success)] if *id == second),
            "{mode:?}: {out:?}"
        );
        b.connection_lost(Timestamp(0), s.conn);
        if let Resume::Spilled | Resume::Restarted = mode {
            flush(&mut b, &store);
        }
        if let Resume::Restarted = mode {
            drop(b);
            b = persistent_broker(&store, 10);
        }

        let mut c = Connect::new(ProtocolVersion::V311, "sub");
        c.clean_start = false;
        let (r, out) = connect_with(&mut b, 10, c);
        let s2 = Client {
            conn: r.unwrap().conn,
        };
        let Some(Out::Connack(info)) = out.first() else {
            panic!("{mode:?}: {out:?}")
        };
        assert!(info.session_present, "{mode:?}");
        let resent: Vec<String> = out[1..]
            .iter()
            .map(|o| match o {
                Out::Publish(d) => format!(
                    "PUBLISH {} dup={} qos={:?} {}",
                    d.pid.map_or(0, PacketId::get),
                    d.dup,
                    d.qos,
                    String::from_utf8_lossy(&d.msg.payload)
                ),
                Out::Pubrel(id, _) => format!("PUBREL {}", id.get()),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            resent,
            vec![
                format!("PUBLISH {} dup=true qos=ExactlyOnce no-pubrec", first.get()),
                format!("PUBREL {}", second.get()),
            ],
            "{mode:?}"
        );
        // Nothing else is queued: the PUBREC'd message is not delivered a second time.
        assert!(drain(&mut b, &s2).is_empty(), "{mode:?}");
        // The flows complete: PUBREC for the first (PUBREL back), PUBCOMP for both.
        let out = send(&mut b, &s2, Packet::Pubrec(Ack::new(first)));
        assert!(
            matches!(out.as_slice(), [Out::Pubrel(id, ReasonCode::Success)] if *id == first),
            "{mode:?}: {out:?}"
        );
        send(&mut b, &s2, Packet::Pubcomp(Ack::new(first)));
        send(&mut b, &s2, Packet::Pubcomp(Ack::new(second)));
        assert_eq!(
            b.session("sub").unwrap().flow().inflight.len(),
            0,
            "{mode:?}"
        );
    }
}

#[test]
fn inflight_window_limits_unacknowledged() {
    let mut b = Broker::new(
        CoreConfig {
            max_inflight_messages: 2,
            sys_interval: 0,
            ..CoreConfig::default()
        },
        Timestamp(0),
        1,
    );
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V311, true);
    subscribe(&mut b, &s, "w", QoS::AtLeastOnce);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V311, true);
    for i in 1..=5u16 {
        publish(
            &mut b,
            &p,
            "w",
            format!("{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        );
    }
    let d = drain(&mut b, &s);
    assert_eq!(payloads(&d), vec!["1", "2"]);
    assert!(drain(&mut b, &s).is_empty());
    send(&mut b, &s, Packet::Puback(Ack::new(d[0].pid.unwrap())));
    assert_eq!(payloads(&drain(&mut b, &s)), vec!["3"]);
}

#[test]
fn takeover_closes_old_connection_with_0x8e() {
    let mut b = broker();
    let (old, _) = connect(&mut b, "dup", ProtocolVersion::V5, true);
    let (_new, _) = connect(&mut b, "dup", ProtocolVersion::V5, true);
    let mut wake = Vec::new();
    b.take_wakeups(&mut wake);
    assert!(wake.contains(&old.conn));
    let mut out = Vec::new();
    assert_eq!(
        b.drain(Timestamp(0), old.conn, 10, &mut out),
        Drain::Closed(ReasonCode::SessionTakenOver)
    );
}

#[test]
fn will_on_abnormal_close_not_on_disconnect() {
    let mut b = broker();
    let (s, _) = connect(&mut b, "watch", ProtocolVersion::V311, true);
    subscribe(&mut b, &s, "wills/#", QoS::AtMostOnce);
    for (normal, expect) in [(false, 1), (true, 0)] {
        let mut c = Connect::new(ProtocolVersion::V311, "dev");
        c.will = Some(Will {
            topic: "wills/dev",
            payload: b"gone",
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::default(),
        });
        let (r, _) = connect_with(&mut b, 0, c);
        let conn = r.unwrap().conn;
        if normal {
            let mut out = Vec::new();
            assert_eq!(
                b.handle(
                    Timestamp(0),
                    conn,
                    &Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
                    None,
                    &mut out
                ),
                Ok(Flow::Disconnected)
            );
        }
        b.connection_lost(Timestamp(0), conn);
        assert_eq!(
            drain(&mut b, &s).len(),
            expect,
            "normal disconnect = {normal}"
        );
    }
}

#[test]
fn will_delay_and_session_expiry() {
    let mut b = broker();
    let (s, _) = connect(&mut b, "watch", ProtocolVersion::V5, true);
    subscribe(&mut b, &s, "w", QoS::AtMostOnce);
    let mut c = Connect::new(ProtocolVersion::V5, "dev");
    c.properties.session_expiry_interval = Some(100);
    c.will = Some(Will {
        topic: "w",
        payload: b"late",
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties {
            will_delay_interval: Some(5),
            ..Default::default()
        },
    });
    let (r, _) = connect_with(&mut b, 0, c);
    b.connection_lost(Timestamp(1_000), r.unwrap().conn);
    b.tick(Timestamp(5_999));
    assert!(drain(&mut b, &s).is_empty());
    b.tick(Timestamp(6_000));
    assert_eq!(payloads(&drain(&mut b, &s)), vec!["late"]);
    assert!(b.session("dev").is_some());
    b.tick(Timestamp(101_000));
    assert!(b.session("dev").is_none(), "session expired after 100 s");
}

#[test]
fn empty_client_id_rules_mqtt_3_1_3_8() {
    let mut b = broker();
    let mut c = Connect::new(ProtocolVersion::V311, "");
    c.clean_start = false;
    let (r, out) = connect_with(&mut b, 0, c);
    assert_eq!(r, Err(ReasonCode::ClientIdentifierNotValid));
    assert!(matches!(&out[0], Out::Connack(i) if i.reason.to_v3_connack() == 2));
    let (r, out) = connect_with(&mut b, 0, Connect::new(ProtocolVersion::V5, ""));
    let acc = r.unwrap();
    assert!(acc.client_id.starts_with("auto-"));
    let Out::Connack(info) = &out[0] else {
        panic!()
    };
    assert_eq!(
        info.assigned_client_identifier.as_deref(),
        Some(&*acc.client_id)
    );
}

#[test]
fn overlapping_subscriptions_deliver_once_at_max_qos_mqtt_3_3_4_2() {
    let mut b = broker();
    let (s, _) = connect(&mut b, "s", ProtocolVersion::V311, true);
    subscribe(&mut b, &s, "a/#", QoS::AtMostOnce);
    subscribe(&mut b, &s, "a/b", QoS::AtLeastOnce);
    let (p, _) = connect(&mut b, "p", ProtocolVersion::V311, true);
    publish(&mut b, &p, "a/b", b"x", QoS::AtLeastOnce, false, 1);
    let d = drain(&mut b, &s);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].qos, QoS::AtLeastOnce);
}

#[test]
fn shared_subscription_spreads_messages() {
    let mut b = broker();
    let (a, _) = connect(&mut b, "a", ProtocolVersion::V5, true);
    let (c, _) = connect(&mut b, "c", ProtocolVersion::V5, true);
    subscribe(&mut b, &a, "$share/g/jobs/+", QoS::AtMostOnce);
    subscribe(&mut b, &c, "$share/g/jobs/+", QoS::AtMostOnce);
    let (p, _) = connect(&mut b, "p", ProtocolVersion::V5, true);
    for i in 0..10 {
        publish(
            &mut b,
            &p,
            "jobs/x",
            format!("{i}").as_bytes(),
            QoS::AtMostOnce,
            false,
            0,
        );
    }
    let (da, dc) = (drain(&mut b, &a), drain(&mut b, &c));
    assert_eq!(da.len() + dc.len(), 10);
    assert_eq!(da.len(), 5);
}

#[test]
fn queue_limit_drops_and_counts_qos0() {
    let mut b = Broker::new(
        CoreConfig {
            max_queued_messages: 3,
            sys_interval: 0,
            ..CoreConfig::default()
        },
        Timestamp(0),
        1,
    );
    let (s, _) = connect(&mut b, "slow", ProtocolVersion::V311, true);
    subscribe(&mut b, &s, "f", QoS::AtMostOnce);
    let (p, _) = connect(&mut b, "p", ProtocolVersion::V311, true);
    for _ in 0..10 {
        publish(&mut b, &p, "f", b"x", QoS::AtMostOnce, false, 0);
    }
    assert_eq!(b.stats().publish_dropped, 7);
    assert_eq!(drain(&mut b, &s).len(), 3);
}

fn persistent_broker(store: &std::sync::Arc<MemStore>, now: u64) -> Broker {
    let mut b = Broker::new(
        CoreConfig {
            persistence: true,
            sys_interval: 0,
            ..CoreConfig::default()
        },
        Timestamp(now),
        7,
    );
    b.set_queue_loader(store.clone());
    // As tern-store reads a store at start-up: messages counted, not read into memory.
    b.restore(Timestamp(now), store.restored_summary(Timestamp(now)));
    flush(&mut b, store);
    b
}

fn flush(b: &mut Broker, store: &MemStore) {
    let mut ops = Vec::new();
    b.take_store_ops(&mut ops);
    store.apply(&ops);
}

#[test]
fn persistent_session_survives_a_restart() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = persistent_broker(&store, 0);
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    subscribe(&mut b, &s, "p/#", QoS::AtLeastOnce);
    b.connection_lost(Timestamp(0), s.conn);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V5, true);
    publish(&mut b, &p, "p/1", b"one", QoS::AtLeastOnce, false, 1);
    publish(&mut b, &p, "p/2", b"two", QoS::AtLeastOnce, false, 2);
    publish(&mut b, &p, "p/r", b"kept", QoS::AtMostOnce, true, 0);
    flush(&mut b, &store);
    // Offline: the messages live in the store only.
    assert_eq!(b.session("sub").unwrap().flow().queue.len(), 0);
    assert_eq!(store.item_count(), 2);
    drop(b);

    // "Restart": a new broker from the store.
    let mut b = persistent_broker(&store, 10);
    assert_eq!(b.retained_count(), 1);
    let (s, present) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    assert!(present, "session present after restart");
    let d = drain(&mut b, &s);
    // In order; the QoS 0 message was not queued for the offline session.
    assert_eq!(payloads(&d), vec!["one", "two"]);
    let (n, _) = connect(&mut b, "new", ProtocolVersion::V5, true);
    subscribe(&mut b, &n, "p/r", QoS::AtMostOnce);
    assert_eq!(
        payloads(&drain(&mut b, &n)),
        vec!["kept"],
        "retained message restored"
    );
    // Acknowledged messages leave the store.
    for x in d.iter().filter(|x| x.pid.is_some()) {
        send(&mut b, &s, Packet::Puback(Ack::new(x.pid.unwrap())));
    }
    flush(&mut b, &store);
    assert_eq!(store.item_count(), 0);
}

/// After a restart a queued message whose expiry passed is deleted from the store and not
/// delivered [MQTT-3.3.2-5]; the others come back in order when the session reconnects.
#[test]
fn expired_queued_message_is_dropped_at_restart() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = persistent_broker(&store, 0);
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    subscribe(&mut b, &s, "e/#", QoS::AtLeastOnce);
    b.connection_lost(Timestamp(0), s.conn);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V5, true);
    publish(&mut b, &p, "e/1", b"first", QoS::AtLeastOnce, false, 1);
    let mut short = Publish::new("e/2", b"expires");
    short.qos = QoS::AtLeastOnce;
    short.packet_id = PacketId::new(2);
    short.properties.message_expiry_interval = Some(5);
    send(&mut b, &p, Packet::Publish(short));
    publish(&mut b, &p, "e/3", b"third", QoS::AtLeastOnce, false, 3);
    flush(&mut b, &store);
    assert_eq!(store.item_count(), 3);
    drop(b);

    let mut b = persistent_broker(&store, 6_000);
    assert_eq!(
        store.item_count(),
        2,
        "the expired message left the store at start-up"
    );
    let (s, present) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    assert!(present);
    assert_eq!(payloads(&drain(&mut b, &s)), vec!["first", "third"]);
}

/// Stored messages of a session that is no longer stored are deleted at start-up.
#[test]
fn messages_without_a_session_are_deleted_at_restart() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = persistent_broker(&store, 0);
    let (s, _) = connect(&mut b, "brief", ProtocolVersion::V5, false);
    subscribe(&mut b, &s, "o/#", QoS::AtLeastOnce);
    b.connection_lost(Timestamp(0), s.conn);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V5, true);
    publish(&mut b, &p, "o/1", b"lost", QoS::AtLeastOnce, false, 1);
    flush(&mut b, &store);
    drop(b);
    // The session record goes, its message stays (a store damaged that way).
    let items = QueueLoader::load(&*store, "brief");
    assert_eq!(items.len(), 1);
    store.apply(&[StoreOp::SessionDel("brief".into())]);
    let puts: Vec<StoreOp> = items
        .into_iter()
        .map(|(seq, item)| StoreOp::ItemPut {
            client_id: "brief".into(),
            seq,
            item,
        })
        .collect();
    store.apply(&puts);
    assert_eq!(store.item_count(), 1);
    let b = persistent_broker(&store, 10);
    assert!(b.session("brief").is_none());
    assert_eq!(store.item_count(), 0);
}

#[test]
fn expired_session_is_gone_after_restart() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = persistent_broker(&store, 0);
    let mut c = Connect::new(ProtocolVersion::V5, "short");
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(5);
    let (r, _) = connect_with(&mut b, 0, c);
    b.connection_lost(Timestamp(0), r.unwrap().conn);
    flush(&mut b, &store);
    let b = persistent_broker(&store, 6_000);
    assert!(
        b.session("short").is_none(),
        "expiry kept counting across the restart"
    );
}

/// A QoS 2 message received (PUBREC sent) before a restart, and sent again by its publisher
/// after it (no PUBREL seen yet), is acknowledged but not delivered twice [MQTT-4.3.3-2];
/// the PUBREL then completes it, and the id is free again.
#[test]
fn qos2_received_before_a_restart_is_not_delivered_twice() {
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = persistent_broker(&store, 0);
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    subscribe(&mut b, &s, "q2", QoS::ExactlyOnce);
    b.connection_lost(Timestamp(0), s.conn);
    let (p, _) = connect(&mut b, "pub", ProtocolVersion::V5, false);
    let out = publish(&mut b, &p, "q2", b"once", QoS::ExactlyOnce, false, 5);
    assert!(
        matches!(out.as_slice(), [Out::Pubrec(id, ReasonCode::Success)] if id.get() == 5),
        "{out:?}"
    );
    flush(&mut b, &store);
    drop(b);

    let mut b = persistent_broker(&store, 10);
    let (p, present) = connect(&mut b, "pub", ProtocolVersion::V5, false);
    assert!(present);
    // The publisher never saw the PUBREC: it sends the message again with DUP.
    let mut again = Publish::new("q2", b"once");
    again.qos = QoS::ExactlyOnce;
    again.dup = true;
    again.packet_id = PacketId::new(5);
    let out = send(&mut b, &p, Packet::Publish(again));
    assert!(
        matches!(out.as_slice(), [Out::Pubrec(id, ReasonCode::Success)] if id.get() == 5),
        "{out:?}"
    );
    let out = send(
        &mut b,
        &p,
        Packet::Pubrel(Ack::new(PacketId::new(5).unwrap())),
    );
    assert!(
        matches!(out.as_slice(), [Out::Pubcomp(_, ReasonCode::Success)]),
        "{out:?}"
    );
    let (s, _) = connect(&mut b, "sub", ProtocolVersion::V5, false);
    assert_eq!(
        payloads(&drain(&mut b, &s)),
        vec!["once"],
        "delivered exactly once"
    );
    // Completed: a later PUBREL for it is unknown, and the id can carry a new message.
    flush(&mut b, &store);
    let b2 = persistent_broker(&store, 20);
    assert!(b2.session("pub").unwrap().flow().inbound_qos2.is_empty());
}

/// `persistent_client_expiration` (issue #6; a binary test would have to wait its one-hour
/// minimum): a persistent 3.1.1 session, which has no expiry of its own, is removed once it
/// has been offline that long — by `tick` while the broker runs, and by `restore` when the
/// time passed while the broker was down. A 5.0 session's shorter expiry still wins.
#[test]
fn persistent_client_expiration_removes_offline_311_sessions() {
    let cfg = CoreConfig {
        persistence: true,
        sys_interval: 0,
        persistent_client_expiration: Some(3600),
        ..CoreConfig::default()
    };
    // Live: tick.
    let mut b = Broker::new(cfg.clone(), Timestamp(0), 3);
    let (s, _) = connect(&mut b, "old", ProtocolVersion::V311, false);
    subscribe(&mut b, &s, "t", QoS::AtLeastOnce);
    b.connection_lost(Timestamp(1_000), s.conn);
    b.tick(Timestamp(3_600_999));
    assert!(b.session("old").is_some(), "kept until the hour is up");
    b.tick(Timestamp(3_601_000));
    assert!(b.session("old").is_none(), "removed after an hour offline");
    assert_eq!(b.stats().clients_expired, 1);
    assert_eq!(b.subscription_count(), 0);

    // Across a restart: offline at 1 s, broker down, restarted after the hour.
    let store = std::sync::Arc::new(MemStore::default());
    let mut b = Broker::new(cfg.clone(), Timestamp(0), 4);
    b.set_queue_loader(store.clone());
    let (s, _) = connect(&mut b, "old", ProtocolVersion::V311, false);
    subscribe(&mut b, &s, "t", QoS::AtLeastOnce);
    b.connection_lost(Timestamp(1_000), s.conn);
    flush(&mut b, &store);
    drop(b);
    let restart = |now: u64| {
        let mut b = Broker::new(cfg.clone(), Timestamp(now), 5);
        b.set_queue_loader(store.clone());
        b.restore(Timestamp(now), store.restored());
        flush(&mut b, &store);
        b
    };
    let b = restart(3_000_000);
    assert!(
        b.session("old").is_some(),
        "restarted before the hour: kept"
    );
    drop(b);
    let mut b = restart(3_601_000);
    assert!(
        b.session("old").is_none(),
        "restarted after the hour: removed"
    );
    assert!(
        store.restored().sessions.is_empty(),
        "and deleted from the store"
    );
    let (_, present) = connect(&mut b, "old", ProtocolVersion::V311, false);
    assert!(!present, "[MQTT-3.2.2-3] no session present");
}

/// Denies writing to one topic (for will checks).
#[derive(Debug)]
struct DenyWrite(&'static str);

impl Authorizer for DenyWrite {
    fn can_write(&self, _: Identity<'_>, topic: &str) -> bool {
        topic != self.0
    }
    fn can_read(&self, _: Identity<'_>, _: &str) -> bool {
        true
    }
    fn check_subscribe(&self, _: Identity<'_>, _: &str) -> SubscribeDecision {
        SubscribeDecision::Allowed
    }
}

/// A will is checked against the ACL when it is published (issue #5): after the listener's
/// ACL is replaced (SIGHUP) to deny its topic, and for a will restored from the store, which
/// is checked against the authorizer given for restored sessions. Denied wills are not
/// delivered (nor retained); allowed ones still are.
#[test]
fn wills_are_checked_against_the_acl_in_force_when_published() {
    let allow: std::sync::Arc<dyn Authorizer> = std::sync::Arc::new(AllowAll);
    let deny: std::sync::Arc<dyn Authorizer> = std::sync::Arc::new(DenyWrite("will/t"));
    let limits = ListenerLimits {
        authorizer: allow.clone(),
        ..ListenerLimits::from_core(&CoreConfig::default())
    };
    let with_will = |id: &'static str, expiry: u32, delay: u32| {
        let mut c = Connect::new(ProtocolVersion::V5, id);
        c.properties.session_expiry_interval = Some(expiry);
        c.will = Some(Will {
            topic: "will/t",
            payload: id.as_bytes(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Properties {
                will_delay_interval: Some(delay),
                ..Default::default()
            },
        });
        c
    };
    let accept = |b: &mut Broker, c: &Connect<'_>| {
        let mut out = Vec::new();
        b.connect(
            Timestamp(0),
            ConnectRequest {
                limits: &limits,
                connect: c,
                username: None,
                client_id_override: None,
                authenticator: None,
            },
            &mut out,
        )
        .unwrap()
        .conn
    };

    // Reload: "now" is published (allowed), then the ACL is replaced and "later" is not.
    let mut b = broker();
    let (s, _) = connect(&mut b, "watch", ProtocolVersion::V5, true);
    subscribe(&mut b, &s, "will/#", QoS::AtMostOnce);
    let now = accept(&mut b, &with_will("now", 0, 0));
    let later = accept(&mut b, &with_will("later", 0, 0));
    b.connection_lost(Timestamp(0), now);
    assert_eq!(payloads(&drain(&mut b, &s)), vec!["now"]);
    b.replace_authorizer(&allow, &deny);
    b.connection_lost(Timestamp(0), later);
    assert!(drain(&mut b, &s).is_empty(), "denied will delivered");
    assert_eq!(
        b.retained_count(),
        1,
        "the denied will did not replace the retained one"
    );

    // Restore: a delayed will saved in the store goes out (or not) after the restart.
    for (authz, want) in [(allow.clone(), vec!["stored"]), (deny.clone(), vec![])] {
        let store = std::sync::Arc::new(MemStore::default());
        let mut b = persistent_broker(&store, 0);
        let conn = accept(&mut b, &with_will("stored", 3600, 60));
        b.connection_lost(Timestamp(0), conn);
        flush(&mut b, &store);
        drop(b);
        let mut b = Broker::new(
            CoreConfig {
                persistence: true,
                sys_interval: 0,
                ..CoreConfig::default()
            },
            Timestamp(1_000),
            8,
        );
        b.set_queue_loader(store.clone());
        b.set_restored_authorizer(authz);
        b.restore(Timestamp(1_000), store.restored());
        let (s, _) = connect(&mut b, "watch", ProtocolVersion::V5, true);
        subscribe(&mut b, &s, "will/#", QoS::AtMostOnce);
        b.tick(Timestamp(61_000));
        let got = payloads(&drain(&mut b, &s));
        assert_eq!(got, want);
    }
}
