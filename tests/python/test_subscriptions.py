"""Subscriptions with paho-mqtt: ``+`` and ``#``, ``$`` topics, overlapping subscriptions,
QoS downgrade, subscription replacement, UNSUBSCRIBE, and the 5.0 options: no-local,
retain-as-published, retain handling, subscription identifiers, shared subscriptions.
"""

from __future__ import annotations

import pytest

from helpers import ANON, V311, V5, wait_for


@pytest.mark.parametrize(
    "filt, want",
    [
        ("sport/tennis/+", ["sport/tennis/player1", "sport/tennis/player2"]),
        ("sport/#", ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2", "sport/tennis/player1/ranking"]),
        ("+/+", ["/finance", "sport/tennis"]),
        ("/+", ["/finance"]),
        ("+", ["sport"]),
        ("#", ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2",
               "sport/tennis/player1/ranking", "/finance"]),
        ("sport/+/player1", ["sport/tennis/player1"]),
    ],
)
def test_wildcards_section_4_7_1(broker, version, filt, want):
    """``#`` matches the parent and any number of levels, ``+`` exactly one level, including
    an empty one: the examples of sections 4.7.1.2 and 4.7.1.3 (the filters follow the
    placement rules [MQTT-4.7.1-2] and [MQTT-4.7.1-3])."""
    topics = ["sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player2",
              "sport/tennis/player1/ranking", "/finance"]
    sub = broker.connect("wild", version)
    assert sub.subscribe(filt, 1) == [1]
    sub.subscribe("zz/end", 1)
    pub = broker.connect("wild-pub", version)
    for t in topics:
        pub.publish(t, t.encode(), qos=1)
    pub.publish("zz/end", b"end", qos=1)
    sub.wait_messages(1, topic="zz/end")
    got = sorted(m.topic for m in sub.received() if m.topic != "zz/end")
    assert got == sorted(want)


def test_dollar_topics_not_matched_by_leading_wildcards_mqtt_4_7_2_1(make_broker, version):
    """Filters starting with ``#`` or ``+`` do not match topics starting with ``$``
    [MQTT-4.7.2-1]; ``$SYS/#`` does (sys_interval 1 makes tern publish $SYS topics)."""
    b = make_broker(ANON + "sys_interval 1\n")
    hash_sub = b.connect("dollar-hash", version)
    hash_sub.subscribe("#", 0)
    plus_sub = b.connect("dollar-plus", version)
    plus_sub.subscribe("+/broker/uptime", 0)
    sys_sub = b.connect("dollar-sys", version)
    sys_sub.subscribe("$SYS/broker/uptime", 0)
    sys_sub.wait_messages(2, timeout=5)
    assert not [m.topic for m in hash_sub.received() if m.topic.startswith("$")]
    assert not plus_sub.received()


def test_overlapping_subscriptions_deliver_at_highest_qos_mqtt_3_3_5_1(broker, version):
    """A message matching two subscriptions of one client is delivered respecting the
    highest granted QoS [MQTT-3.3.5-1] (5.0 [MQTT-3.3.4-2]). tern sends a single copy."""
    sub = broker.connect("over", version)
    assert sub.subscribe("over/#", 0) == [0]
    assert sub.subscribe("over/+", 2) == [2]
    broker.connect("over-pub", version).publish("over/x", b"both", qos=2)
    sub.wait_messages(1)
    assert sub.quiet_for(0.5)
    got = sub.received()
    assert max(m.qos for m in got) == 2
    assert len(got) == 1, [(m.topic, m.qos) for m in got]


@pytest.mark.parametrize("pub_qos, sub_qos", [(2, 0), (2, 1), (1, 0), (0, 2), (1, 2)])
def test_delivered_qos_is_minimum_of_publish_and_subscription_mqtt_3_8_4_8(broker, version, pub_qos, sub_qos):
    """The QoS of a delivered message is the minimum of the published QoS and the granted
    QoS (downgrade, never upgrade) [MQTT-3.8.4-8] (5.0 section 3.8.4)."""
    sub = broker.connect("down", version)
    assert sub.subscribe("down/t", sub_qos) == [sub_qos]
    broker.connect("down-pub", version).publish("down/t", b"q", qos=pub_qos)
    m = sub.wait_messages(1)[0]
    assert m.qos == min(pub_qos, sub_qos)


def test_resubscribe_replaces_subscription_mqtt_3_8_4_3(broker, version):
    """SUBSCRIBE with a filter equal to an existing one replaces it: one copy, new QoS
    [MQTT-3.8.4-3]."""
    sub = broker.connect("resub", version)
    assert sub.subscribe("resub/t", 2) == [2]
    assert sub.subscribe("resub/t", 0) == [0]
    broker.connect("resub-pub", version).publish("resub/t", b"once", qos=2)
    sub.wait_messages(1)
    assert sub.quiet_for(0.5)
    assert [m.qos for m in sub.received()] == [0]


def test_unsubscribe_stops_delivery_mqtt_3_10_4_2(broker, version):
    """After UNSUBACK no new messages are delivered for the filter [MQTT-3.10.4-2]; 5.0
    UNSUBACK says 0x00 for a removed subscription and 0x11 for one that did not exist."""
    sub = broker.connect("unsub", version)
    sub.subscribe("unsub/t", 1)
    pub = broker.connect("unsub-pub", version)
    pub.publish("unsub/t", b"before", qos=1)
    sub.wait_messages(1)
    codes = sub.unsubscribe("unsub/t")
    if version == V5:
        assert codes == [0x00]
        assert sub.unsubscribe("unsub/never") == [0x11]
    pub.publish("unsub/t", b"after", qos=1)
    assert sub.quiet_for(0.7)
    assert sub.payloads() == [b"before"]


def test_v5_no_local_mqtt_3_8_3_3(broker):
    """5.0 No Local: messages are not forwarded to the connection that published them
    [MQTT-3.8.3-3]; without it a client receives its own messages."""
    nl = broker.connect("nolocal", V5)
    nl.subscribe("nl/t", 1, no_local=True)
    nl.subscribe("nl/own", 1)
    other = broker.connect("nl-other", V5)
    other.subscribe("nl/t", 1)
    nl.publish("nl/t", b"mine", qos=1)
    nl.publish("nl/own", b"echo", qos=1)
    assert other.wait_messages(1)[0].payload == b"mine"
    assert nl.wait_messages(1, topic="nl/own")[0].payload == b"echo"
    assert nl.quiet_for(0.5, topic="nl/t")
    assert not nl.received("nl/t")


def test_v5_retain_as_published_mqtt_3_3_1_12_and_13(broker):
    """5.0: a live retained message keeps RETAIN 1 only for subscriptions with
    Retain As Published [MQTT-3.3.1-13], otherwise RETAIN is 0 [MQTT-3.3.1-12]."""
    rap = broker.connect("rap-1", V5)
    rap.subscribe("rap/t", 1, retain_as_published=True)
    plain = broker.connect("rap-0", V5)
    plain.subscribe("rap/t", 1)
    broker.connect("rap-pub", V5).publish("rap/t", b"r", qos=1, retain=True)
    assert rap.wait_messages(1)[0].retain is True
    assert plain.wait_messages(1)[0].retain is False


def test_v311_live_retained_message_has_retain_0_mqtt_3_3_1_9(broker):
    """3.1.1: a retained PUBLISH forwarded to an existing subscription has RETAIN 0
    [MQTT-3.3.1-9]."""
    s = broker.connect("rlive", V311)
    s.subscribe("rlive/t", 1)
    broker.connect("rlive-pub", V311).publish("rlive/t", b"r", qos=1, retain=True)
    assert s.wait_messages(1)[0].retain is False


@pytest.mark.parametrize("handling, first, again", [(0, True, True), (1, True, False), (2, False, False)])
def test_v5_retain_handling_mqtt_3_3_1_9_to_11(broker, handling, first, again):
    """5.0 Retain Handling: 0 sends retained messages at every subscribe [MQTT-3.3.1-9], 1
    only if the subscription did not exist [MQTT-3.3.1-10], 2 never [MQTT-3.3.1-11]
    (5.0 numbering)."""
    broker.connect("rh-pub", V5).publish("rh/t", b"kept", qos=1, retain=True)
    s = broker.connect("rh-sub", V5)
    s.subscribe("rh/t", 1, retain_handling=handling)
    if first:
        m = s.wait_messages(1)[0]
        assert (m.payload, m.retain) == (b"kept", True)
    else:
        assert s.quiet_for(0.5)
    n = len(s.received())
    s.subscribe("rh/t", 1, retain_handling=handling)
    if again:
        s.wait_messages(n + 1)
    else:
        assert s.quiet_for(0.5)
        assert len(s.received()) == n


def test_v5_subscription_identifiers_mqtt_3_3_4_3_and_4(broker):
    """5.0: a message carries the Subscription Identifier of the matching subscription
    [MQTT-3.3.4-3]; a single copy matching several subscriptions carries all of them
    [MQTT-3.3.4-4]; retained messages sent at subscribe carry it too."""
    pub = broker.connect("sid-pub", V5)
    pub.publish("sid/retained", b"r", qos=1, retain=True)
    s = broker.connect("sid", V5)
    s.subscribe("sid/#", 1, sub_id=7)
    r = s.wait_messages(1)[0]
    assert r.topic == "sid/retained" and r.properties.SubscriptionIdentifier == [7]
    s.subscribe("sid/+", 1, sub_id=300)
    s.subscribe("sid/plain/x", 1)
    pub.publish("sid/a", b"a", qos=1)
    m = s.wait_messages(1, topic="sid/a")[0]
    assert sorted(m.properties.SubscriptionIdentifier) == [7, 300]
    pub.publish("sid/plain/x", b"x", qos=1)
    m = s.wait_messages(1, topic="sid/plain/x")[0]
    assert m.properties.SubscriptionIdentifier == [7]


def test_shared_subscription_spreads_messages_mqtt_4_8_2(broker, version):
    """``$share/group/filter``: each message goes to exactly one member of the group
    (MQTT 5.0 section 4.8.2, also accepted from 3.1.1 clients as by Mosquitto), members all
    get some; an ordinary subscriber still gets every message."""
    members = [broker.connect(f"share-{i}", version) for i in range(3)]
    for m in members:
        assert m.subscribe("$share/g1/shared/#", 1) == [1]
    everyone = broker.connect("share-all", version)
    everyone.subscribe("shared/#", 1)
    pub = broker.connect("share-pub", version)
    n = 30
    for i in range(n):
        pub.publish(f"shared/{i % 3}", str(i), qos=1)
    everyone.wait_messages(n)
    total = []
    for m in members:
        m.quiet_for(0.3)
        total += [int(x.payload) for x in m.received()]
    assert sorted(total) == list(range(n)), "each message exactly once across the group"
    counts = [len(m.received()) for m in members]
    assert all(c > 0 for c in counts), counts


def test_shared_subscription_gets_no_retained_messages_mqtt_3_8_4_4(broker):
    """5.0: retained messages are not sent when a shared subscription is made
    (section 3.8.4, [MQTT-3.8.4-4] with 4.8.2)."""
    broker.connect("shr-pub", V5).publish("shr/t", b"old", qos=1, retain=True)
    s = broker.connect("shr", V5)
    s.subscribe("$share/g/shr/t", 1)
    assert s.quiet_for(0.7)


def test_shared_groups_are_independent(broker, version):
    """Two share groups on the same filter each receive every message once."""
    a = [broker.connect(f"ga-{i}", version) for i in range(2)]
    b = [broker.connect(f"gb-{i}", version) for i in range(2)]
    for c in a:
        c.subscribe("$share/A/grp/t", 1)
    for c in b:
        c.subscribe("$share/B/grp/t", 1)
    pub = broker.connect("grp-pub", version)
    for i in range(10):
        pub.publish("grp/t", str(i), qos=1)
    for group in (a, b):
        def total(group=group):
            return sorted(int(m.payload) for c in group for m in c.received())
        wait_for(lambda: len(total()) >= 10, 5, "10 messages in the group")
        for c in group:
            c.quiet_for(0.2)
        assert total() == list(range(10))
