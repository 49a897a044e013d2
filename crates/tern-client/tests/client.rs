//! tern-client against a real broker (mosquitto by default) on 127.0.0.1: QoS 0/1/2 both
//! ways in 3.1.1 and 5.0, retained messages, wills, reconnect after the broker restarts,
//! refused connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Broker;
use tern_client::{
    Backoff, Client, ClientError, ClientOptions, Event, Message, OwnedProperties, ProtocolVersion,
    QoS, ReasonCode, SubscriptionOptions,
};

const LIMIT: Duration = Duration::from_secs(10);

async fn next_message(c: &mut Client) -> Message {
    loop {
        match tokio::time::timeout(LIMIT, c.next_event()).await {
            Ok(Some(Event::Message(m))) => return m,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("client ended while waiting for a message"),
            Err(_) => panic!("no message within {LIMIT:?}"),
        }
    }
}

fn opts(b: &Broker, v: ProtocolVersion, id: &str) -> ClientOptions {
    ClientOptions::new("127.0.0.1", b.port)
        .version(v)
        .client_id(id)
}

async fn qos_both_ways(v: ProtocolVersion) {
    let b = Broker::start();
    let mut sub = Client::connect(opts(&b, v, "sub")).await.unwrap();
    let granted = sub
        .subscribe(
            &[("t/#", SubscriptionOptions::qos(QoS::ExactlyOnce))],
            OwnedProperties::default(),
        )
        .await
        .unwrap();
    assert_eq!(granted, [ReasonCode::GrantedQos2]);
    let publisher = Client::connect(opts(&b, v, "pub")).await.unwrap();
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let payload = vec![i as u8, 0, 255, b'\n'];
        publisher
            .publish(Message::new(format!("t/{i}"), payload.clone()).with_qos(qos))
            .await
            .unwrap();
        let m = next_message(&mut sub).await;
        assert_eq!(m.topic, format!("t/{i}"));
        assert_eq!(m.payload, payload);
        assert_eq!(m.qos, qos, "{v}: delivered at the published QoS");
        assert!(!m.retain);
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
}

#[tokio::test]
async fn qos_0_1_2_both_ways_v311() {
    qos_both_ways(ProtocolVersion::V311).await;
}

#[tokio::test]
async fn qos_0_1_2_both_ways_v5() {
    qos_both_ways(ProtocolVersion::V5).await;
}

#[tokio::test]
async fn qos_0_1_2_both_ways_v31() {
    qos_both_ways(ProtocolVersion::V31).await;
}

#[tokio::test]
async fn many_qos1_in_flight_at_once() {
    let b = Broker::start();
    let mut sub = Client::connect(opts(&b, ProtocolVersion::V5, "s"))
        .await
        .unwrap();
    sub.subscribe(
        &[("n", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    let p = Client::connect(opts(&b, ProtocolVersion::V5, "p"))
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..200u32 {
        let m = Message::new("n", i.to_string()).with_qos(QoS::AtLeastOnce);
        handles.push(p.start_publish(m).await.unwrap());
    }
    for h in handles {
        tokio::time::timeout(LIMIT, h.wait())
            .await
            .unwrap()
            .unwrap();
    }
    for i in 0..200u32 {
        assert_eq!(
            next_message(&mut sub).await.payload,
            i.to_string().into_bytes()
        );
    }
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let b = Broker::start();
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    p.publish(
        Message::new("r/1", "kept")
            .with_qos(QoS::AtLeastOnce)
            .with_retain(true),
    )
    .await
    .unwrap();
    let mut s = Client::connect(opts(&b, ProtocolVersion::V311, "s"))
        .await
        .unwrap();
    s.subscribe(
        &[("r/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    let m = next_message(&mut s).await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..], m.retain),
        ("r/1", &b"kept"[..], true)
    );
}

#[tokio::test]
async fn will_is_published_on_abnormal_close() {
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let b = Broker::start();
        let mut watcher = Client::connect(opts(&b, v, "watcher")).await.unwrap();
        watcher
            .subscribe(
                &[("status/dev", SubscriptionOptions::qos(QoS::AtLeastOnce))],
                OwnedProperties::default(),
            )
            .await
            .unwrap();
        let dev = Client::connect(
            opts(&b, v, "dev")
                .will(Message::new("status/dev", "offline").with_qos(QoS::AtLeastOnce)),
        )
        .await
        .unwrap();
        dev.abort();
        let m = next_message(&mut watcher).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            ("status/dev", &b"offline"[..])
        );
    }
}

#[tokio::test]
async fn will_is_not_published_on_normal_disconnect() {
    let b = Broker::start();
    let mut watcher = Client::connect(opts(&b, ProtocolVersion::V311, "w"))
        .await
        .unwrap();
    watcher
        .subscribe(
            &[("status/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
            OwnedProperties::default(),
        )
        .await
        .unwrap();
    let dev = Client::connect(
        opts(&b, ProtocolVersion::V311, "dev").will(Message::new("status/dev", "offline")),
    )
    .await
    .unwrap();
    dev.disconnect().await.unwrap();
    // A marker published afterwards arrives first: no will came.
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    p.publish(Message::new("status/marker", "m")).await.unwrap();
    assert_eq!(next_message(&mut watcher).await.topic, "status/marker");
}

#[tokio::test]
async fn reconnects_and_resubscribes_after_the_broker_restarts() {
    let mut b = Broker::start();
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        max_attempts: None,
    };
    let mut sub = Client::connect(opts(&b, ProtocolVersion::V311, "resub").reconnect(backoff))
        .await
        .unwrap();
    sub.subscribe(
        &[("live/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    b.restart();
    // The client notices, reconnects (new broker: no session) and resubscribes.
    let mut lost = false;
    loop {
        match tokio::time::timeout(LIMIT, sub.next_event()).await {
            Ok(Some(Event::ConnectionLost(_))) => lost = true,
            Ok(Some(Event::Reconnected(info))) => {
                assert!(!info.session_present);
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("no reconnect within {LIMIT:?}; broker log:\n{}", b.log()),
        }
    }
    assert!(lost);
    // Publish until the resubscription is in place (bounded).
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    let got = tokio::time::timeout(LIMIT, async {
        loop {
            p.publish(Message::new("live/x", "again").with_qos(QoS::AtLeastOnce))
                .await
                .unwrap();
            if let Ok(Some(Event::Message(m))) =
                tokio::time::timeout(Duration::from_millis(200), sub.next_event()).await
            {
                return m;
            }
        }
    })
    .await
    .expect("the client did not resubscribe");
    assert_eq!(got.payload, b"again");
}

#[tokio::test]
async fn queued_offline_publish_is_sent_after_reconnect() {
    let mut b = Broker::start();
    let backoff = Backoff {
        initial: Duration::from_millis(300),
        max: Duration::from_millis(300),
        max_attempts: None,
    };
    let mut p = Client::connect(opts(&b, ProtocolVersion::V5, "offline").reconnect(backoff))
        .await
        .unwrap();
    b.kill();
    // Wait until the client knows it is offline, then publish into the queue.
    match tokio::time::timeout(LIMIT, p.next_event()).await.unwrap() {
        Some(Event::ConnectionLost(_)) => {}
        other => panic!("unexpected {other:?}"),
    }
    let h = p
        .start_publish(
            Message::new("q/1", "queued")
                .with_qos(QoS::AtLeastOnce)
                .with_retain(true),
        )
        .await
        .unwrap();
    b.restart();
    tokio::time::timeout(LIMIT, h.wait())
        .await
        .unwrap()
        .unwrap();
    let mut s = Client::connect(opts(&b, ProtocolVersion::V5, "s"))
        .await
        .unwrap();
    s.subscribe(
        &[("q/#", SubscriptionOptions::default())],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    assert_eq!(next_message(&mut s).await.payload, b"queued");
}

#[tokio::test]
async fn v5_properties_reach_the_subscriber() {
    let b = Broker::start();
    let mut s = Client::connect(opts(&b, ProtocolVersion::V5, "s"))
        .await
        .unwrap();
    s.subscribe(
        &[("p", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties {
            subscription_identifiers: vec![42],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let p = Client::connect(opts(&b, ProtocolVersion::V5, "p"))
        .await
        .unwrap();
    let mut m = Message::new("p", "{}").with_qos(QoS::AtLeastOnce);
    m.properties.content_type = Some("application/json".into());
    m.properties.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
    m.properties.correlation_data = Some(b"c1".to_vec());
    m.properties.response_topic = Some("reply/here".into());
    p.publish(m).await.unwrap();
    let got = next_message(&mut s).await;
    let pr = &got.properties;
    assert_eq!(pr.content_type.as_deref(), Some("application/json"));
    assert_eq!(pr.user_properties.len(), 2);
    assert_eq!(pr.correlation_data.as_deref(), Some(&b"c1"[..]));
    assert_eq!(pr.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(pr.subscription_identifiers, [42]);
}

#[tokio::test]
async fn refused_connection_reports_the_reason() {
    let b = Broker::start_with(&[], "");
    // A second broker that refuses anonymous clients.
    let strict = Broker::start_with(&[], "allow_anonymous false\npassword_file /dev/null\n");
    drop(b);
    for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let e = Client::connect(opts(&strict, v, "x")).await.unwrap_err();
        let reason = e.refusal().unwrap_or_else(|| panic!("{v}: {e}"));
        assert!(
            matches!(
                reason,
                ReasonCode::NotAuthorized | ReasonCode::BadUserNameOrPassword
            ),
            "{v}: {reason:?}"
        );
        assert!(e.to_string().contains("refused"), "{e}");
    }
}

#[tokio::test]
async fn connection_refused_says_what_to_check() {
    let port = common::free_port();
    let e = Client::connect(ClientOptions::new("127.0.0.1", port))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&port.to_string()) && text.contains("is the broker running"),
        "{text}"
    );
}

#[tokio::test]
async fn server_assigned_client_id_v5() {
    let b = Broker::start();
    let mut o = opts(&b, ProtocolVersion::V5, "");
    o.allow_empty_client_id = true;
    let c = Client::connect(o).await.unwrap();
    assert!(!c.info().client_id.is_empty(), "mosquitto assigns an id");
    assert_eq!(
        c.info().properties.assigned_client_identifier.as_deref(),
        Some(c.info().client_id.as_str())
    );
}

#[tokio::test]
async fn persistent_session_keeps_subscription_v311() {
    let b = Broker::start();
    let o = opts(&b, ProtocolVersion::V311, "persist").clean_start(false);
    let s = Client::connect(o.clone()).await.unwrap();
    s.subscribe(
        &[("ps", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    s.disconnect().await.unwrap();
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    p.publish(Message::new("ps", "while away").with_qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let mut s = Client::connect(o).await.unwrap();
    assert!(s.info().session_present);
    assert_eq!(next_message(&mut s).await.payload, b"while away");
}

/// A kept session is relied on after a reconnect: the broker (with persistence, stopped with
/// SIGTERM so it saves the session, then started again) answers session_present = true, the
/// client does not subscribe again, and messages published afterwards still arrive through
/// the stored subscription.
///
/// "Did not subscribe again" is observed through a retained message: a SUBSCRIBE (even one
/// repeating a kept subscription) makes the broker send the matching retained message, so a
/// resubscribing client would receive `kept/r` (retain flag set) before the live message.
/// When the broker logs SUBSCRIBE packets (mosquitto with log_type all), its log after the
/// restart must not show one from this client either.
#[tokio::test]
async fn kept_session_is_relied_on_after_reconnect_without_resubscribing() {
    let store = common::TempDir::new("store");
    // mosquitto started as root drops to the `mosquitto` user before writing its store.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut b = Broker::start_with(
        &[],
        &format!(
            "persistence true\npersistence_location {}/\nlog_type all\n",
            store.path().display()
        ),
    );
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        max_attempts: None,
    };
    let o = opts(&b, ProtocolVersion::V311, "kept")
        .clean_start(false)
        .reconnect(backoff);
    let mut sub = Client::connect(o).await.unwrap();
    assert!(!sub.info().session_present, "a new broker has no session");
    sub.subscribe(
        &[("kept/#", SubscriptionOptions::qos(QoS::AtLeastOnce))],
        OwnedProperties::default(),
    )
    .await
    .unwrap();
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    p.publish(
        Message::new("kept/r", "retained")
            .with_qos(QoS::AtLeastOnce)
            .with_retain(true),
    )
    .await
    .unwrap();
    assert_eq!(next_message(&mut sub).await.payload, b"retained");
    p.disconnect().await.unwrap();
    let logs_subscribes = b.log().contains("Received SUBSCRIBE from kept");

    b.restart_graceful();
    let mut lost = false;
    loop {
        match tokio::time::timeout(LIMIT, sub.next_event()).await {
            Ok(Some(Event::ConnectionLost(_))) => lost = true,
            Ok(Some(Event::Reconnected(info))) => {
                assert!(
                    info.session_present,
                    "the broker kept the session; its log:\n{}",
                    b.log()
                );
                break;
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(_) => panic!("no reconnect within {LIMIT:?}; broker log:\n{}", b.log()),
        }
    }
    assert!(lost);
    let p = Client::connect(opts(&b, ProtocolVersion::V311, "p"))
        .await
        .unwrap();
    p.publish(Message::new("kept/live", "after").with_qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    let m = next_message(&mut sub).await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..], m.retain),
        ("kept/live", &b"after"[..], false),
        "the first message after the reconnect must be the live one, not a retained one sent for a new SUBSCRIBE"
    );
    // Nothing else follows (a late retained message would mean a SUBSCRIBE was sent).
    if let Ok(ev) = tokio::time::timeout(Duration::from_millis(500), sub.next_event()).await {
        panic!("unexpected event after the live message: {ev:?}");
    }
    if logs_subscribes {
        assert!(
            !b.log().contains("Received SUBSCRIBE from kept"),
            "the client subscribed again; broker log:\n{}",
            b.log()
        );
    }
    sub.disconnect().await.unwrap();
}
