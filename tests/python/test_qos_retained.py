"""QoS 0/1/2 end to end in both directions, ordering, the inflight window
(``max_inflight_messages`` and the 5.0 Receive Maximum), and retained messages.
"""

from __future__ import annotations

import pytest

from paho.mqtt.packettypes import PacketTypes

from helpers import ANON, V5, Raw, connect_bytes, packet, props


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_end_to_end_both_directions_mqtt_4_3(broker, version, qos):
    """A message published at QoS n to a QoS n subscription arrives once, at QoS n, with its
    payload intact; the publisher's flow (PUBACK, or PUBREC/PUBREL/PUBCOMP) completes
    (sections 4.3.1-4.3.3). Each client is both publisher and subscriber."""
    a = broker.connect("qa", version)
    b = broker.connect("qb", version)
    a.subscribe("q/to-a", qos)
    b.subscribe("q/to-b", qos)
    payload = bytes(range(256)) * 3
    ia = a.publish("q/to-b", payload, qos=qos)
    ib = b.publish("q/to-a", b"reply", qos=qos)
    mb = b.wait_messages(1)[0]
    ma = a.wait_messages(1)[0]
    assert (mb.payload, mb.qos) == (payload, qos)
    assert (ma.payload, ma.qos) == (b"reply", qos)
    if qos:
        assert ia.is_published() and ib.is_published()
        if version == V5:
            assert a.puback_reason(ia) == 0 and b.puback_reason(ib) == 0
    assert a.quiet_for(0.3) and b.quiet_for(0.3)
    assert len(a.received()) == 1 and len(b.received()) == 1


def test_v5_no_matching_subscribers_reason_0x10(broker):
    """5.0: a QoS 1/2 PUBLISH nobody is subscribed to is acknowledged with 0x10 (no matching
    subscribers) (sections 3.4.2.1 and 3.5.2.1). paho reports the PUBACK reason; the PUBREC
    reason of QoS 2 is read from raw bytes."""
    c = broker.connect("nomatch", V5)
    info = c.publish("nobody/listens", b"x", qos=1)
    assert c.puback_reason(info) == 0x10
    r = Raw(broker.port)
    r.send(connect_bytes("nomatch-raw", V5))
    assert r.recv()[0] == 0x20
    # PUBLISH QoS 2, topic "nobody/2", packet id 7, no properties, payload "x".
    r.send(packet(0x34, b"\x00\x08nobody/2\x00\x07\x00x"))
    assert r.recv() == bytes([0x50, 3, 0, 7, 0x10])


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_in_order_delivery_per_topic_mqtt_4_6_0_6(broker, version, qos):
    """Messages on one topic from one publisher at one QoS arrive in the order sent
    [MQTT-4.6.0-6] (5.0 section 4.6)."""
    sub = broker.connect("order", version)
    sub.subscribe("order/t", 2)
    pub = broker.connect("order-pub", version)
    n = 300
    for i in range(n):
        pub.publish("order/t", str(i), qos=qos, wait=False)
    sub.wait_messages(n, timeout=20)
    assert [int(m.payload) for m in sub.received()] == list(range(n))


def test_inflight_window_max_inflight_messages(make_broker, version):
    """``max_inflight_messages 2``: the broker has at most 2 unacknowledged QoS 1 messages
    out to a client; the third is sent only after a PUBACK. 5.0 clients see Receive Maximum
    2 in CONNACK and the broker must honour it [MQTT-3.3.4-9]."""
    b = make_broker(ANON + "max_inflight_messages 2\n")
    sub = b.client("win", version, manual_ack=True)
    ack = sub.connect()
    if version == V5:
        assert ack.properties.ReceiveMaximum == 2
    sub.subscribe("win/t", 1)
    pub = b.connect("win-pub", version)
    for i in range(6):
        pub.publish("win/t", str(i), qos=1)
    sub.wait_messages(2)
    assert sub.quiet_for(0.7), "no third message before a PUBACK"
    assert [int(m.payload) for m in sub.received()] == [0, 1]
    first = sub.received()[0]
    sub.mqtt.ack(first.mid, 1)
    sub.wait_messages(3)
    assert sub.quiet_for(0.5)
    assert [int(m.payload) for m in sub.received()] == [0, 1, 2]
    for m in sub.received()[1:]:
        sub.mqtt.ack(m.mid, 1)
    sub.wait_messages(5)
    for m in sub.received()[3:]:
        sub.mqtt.ack(m.mid, 1)
    sub.wait_messages(6)
    assert [int(m.payload) for m in sub.received()] == list(range(6))


def test_v5_client_receive_maximum_honoured_mqtt_3_3_4_9(broker):
    """5.0: a client announcing Receive Maximum 3 never has more than 3 unacknowledged
    QoS 1/2 PUBLISH packets from the broker [MQTT-3.3.4-9]."""
    sub = broker.client("rm", V5, manual_ack=True)
    sub.connect(properties=props(PacketTypes.CONNECT, ReceiveMaximum=3))
    sub.subscribe("rm/t", 1)
    pub = broker.connect("rm-pub", V5)
    for i in range(8):
        pub.publish("rm/t", str(i), qos=1)
    sub.wait_messages(3)
    assert sub.quiet_for(0.7)
    assert len(sub.received()) == 3
    for m in sub.received():
        sub.mqtt.ack(m.mid, 1)
    sub.wait_messages(6)
    assert sub.quiet_for(0.5)
    assert len(sub.received()) == 6


# ----- retained messages -----------------------------------------------------------------


def test_retained_set_and_delivered_with_retain_flag_mqtt_3_3_1_6_and_8(broker, version):
    """A retained message is stored [MQTT-3.3.1-5] and sent to a new subscriber
    [MQTT-3.3.1-6] with RETAIN 1 [MQTT-3.3.1-8], at min(published, granted) QoS."""
    broker.connect("ret-pub", version).publish("ret/a", b"v1", qos=2, retain=True)
    s = broker.connect("ret-sub", version)
    s.subscribe("ret/+", 1)
    m = s.wait_messages(1)[0]
    assert (m.topic, m.payload, m.retain, m.qos) == ("ret/a", b"v1", True, 1)


def test_retained_replaced_mqtt_3_3_1_7(broker, version):
    """A new retained message on a topic replaces the previous one [MQTT-3.3.1-7]."""
    pub = broker.connect("rep-pub", version)
    pub.publish("rep/t", b"old", qos=1, retain=True)
    pub.publish("rep/t", b"new", qos=1, retain=True)
    s = broker.connect("rep-sub", version)
    s.subscribe("rep/t", 1)
    s.wait_messages(1)
    assert s.quiet_for(0.5)
    assert s.payloads() == [b"new"]


def test_retained_cleared_by_empty_payload_mqtt_3_3_1_10(broker, version):
    """A retained PUBLISH with an empty payload removes the retained message
    [MQTT-3.3.1-10] and is not stored itself [MQTT-3.3.1-11]; it is still forwarded to
    current subscribers."""
    pub = broker.connect("clr-pub", version)
    live = broker.connect("clr-live", version)
    live.subscribe("clr/t", 1)
    pub.publish("clr/t", b"something", qos=1, retain=True)
    pub.publish("clr/t", b"", qos=1, retain=True)
    live.wait_messages(2)
    assert live.payloads() == [b"something", b""]
    s = broker.connect("clr-sub", version)
    s.subscribe("clr/#", 1)
    assert s.quiet_for(0.7)


def test_retained_many_topics_wildcard(broker, version):
    """A wildcard subscription receives every matching retained message, each with RETAIN 1
    [MQTT-3.3.1-6]."""
    pub = broker.connect("rw-pub", version)
    for i in range(5):
        pub.publish(f"rw/{i}", str(i), qos=1, retain=True)
    pub.publish("other/x", b"no", qos=1, retain=True)
    s = broker.connect("rw-sub", version)
    s.subscribe("rw/#", 0)
    s.wait_messages(5)
    assert s.quiet_for(0.5)
    assert sorted(m.topic for m in s.received()) == [f"rw/{i}" for i in range(5)]
    assert all(m.retain for m in s.received())


def test_retained_qos0_publish_not_retained_when_retain_false(broker, version):
    """A PUBLISH with RETAIN 0 neither stores nor clears a retained message
    [MQTT-3.3.1-12] (3.1.1 numbering)."""
    pub = broker.connect("nr-pub", version)
    pub.publish("nr/t", b"kept", qos=1, retain=True)
    pub.publish("nr/t", b"transient", qos=1, retain=False)
    s = broker.connect("nr-sub", version)
    s.subscribe("nr/t", 1)
    s.wait_messages(1)
    assert s.quiet_for(0.3)
    assert s.payloads() == [b"kept"]
