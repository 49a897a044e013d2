"""MQTT 5.0 features with paho-mqtt: topic aliases in both directions, message expiry
counted down while queued, properties forwarded unchanged, Maximum Packet Size in both
directions, request/response information, reason strings.
"""

from __future__ import annotations

import time

from paho.mqtt.packettypes import PacketTypes

from helpers import ANON, V5, Raw, connect_bytes, packet, props


def test_topic_alias_from_client_mqtt_3_3_2_12(broker):
    """A client sets alias 1 with a topic, then publishes with an empty topic and alias 1:
    the broker resolves it and subscribers see the full topic [MQTT-3.3.2-12] (section
    3.3.2.3.4). CONNACK announces ``max_topic_alias`` (default 10)."""
    s = broker.connect("alias-sub", V5)
    s.subscribe("alias/in", 1)
    c = broker.client("alias-pub", V5)
    ack = c.connect()
    assert ack.properties.TopicAliasMaximum == 10
    c.publish("alias/in", b"first", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=1))
    c.publish("", b"second", qos=1, properties=props(PacketTypes.PUBLISH, TopicAlias=1))
    got = s.wait_messages(2)
    assert [(m.topic, m.payload) for m in got] == [("alias/in", b"first"), ("alias/in", b"second")]
    assert not c.disconnects


def test_topic_alias_maximum_configured(make_broker):
    """``max_topic_alias 3`` is announced as Topic Alias Maximum 3; an alias above it is a
    "topic alias invalid" (0x94) DISCONNECT [MQTT-3.3.2-9] (5.0 section 3.2.2.3.8)."""
    b = make_broker(ANON + "max_topic_alias 3\n")
    c = b.client("alias-max", V5)
    assert c.connect().properties.TopicAliasMaximum == 3
    c.publish("alias/x", b"x", qos=0, properties=props(PacketTypes.PUBLISH, TopicAlias=4))
    d = c.wait_disconnect()
    assert d.from_server and d.reason == 0x94, d


def test_topic_alias_to_client_mqtt_3_3_2_11(make_broker):
    """With ``max_topic_alias_broker`` set, a client announcing Topic Alias Maximum 2 gets
    aliased PUBLISH packets; every alias is within 1..2 [MQTT-3.3.2-11] [MQTT-3.1.2-26] and
    resolving them gives the original topics. A client that announces none gets no alias
    [MQTT-3.1.2-27]. (tern's default, like Mosquitto 2.0, is to send no aliases.)"""
    broker = make_broker(ANON + "max_topic_alias_broker 10\n")
    aliased = broker.client("alias-rx", V5)
    aliased.connect(properties=props(PacketTypes.CONNECT, TopicAliasMaximum=2))
    aliased.subscribe("ta/#", 1)
    plain = broker.connect("alias-none", V5)
    plain.subscribe("ta/#", 1)
    pub = broker.connect("alias-tx", V5)
    sent = [f"ta/topic-{i % 3}" for i in range(12)]
    for i, t in enumerate(sent):
        pub.publish(t, str(i), qos=1)
    aliased.wait_messages(12)
    plain.wait_messages(12)
    table: dict[int, str] = {}
    resolved = []
    used_alias = False
    for m in aliased.received():
        alias = getattr(m.properties, "TopicAlias", None)
        if alias is not None:
            used_alias = True
            assert 1 <= alias <= 2, alias
            if m.topic:
                table[alias] = m.topic
            resolved.append(table[alias])
        else:
            assert m.topic, "an empty topic needs an alias"
            resolved.append(m.topic)
    assert resolved == sent
    assert used_alias, "tern uses outbound topic aliases when the client allows them"
    assert all(getattr(m.properties, "TopicAlias", None) is None for m in plain.received())
    assert [m.topic for m in plain.received()] == sent


def test_message_expiry_counted_down_while_queued_mqtt_3_3_2_6(broker):
    """A queued message's Message Expiry Interval is reduced by the time it waited
    [MQTT-3.3.2-6]; a message whose interval passed is not delivered [MQTT-3.3.2-5]."""
    sub = broker.client("mexp", V5, clean=False)
    sub.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    sub.subscribe("mexp/#", 1)
    sub.disconnect()
    pub = broker.connect("mexp-pub", V5)
    pub.publish("mexp/long", b"long", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=30))
    pub.publish("mexp/short", b"short", qos=1, properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    time.sleep(2.5)
    sub = broker.client("mexp", V5, clean=False)
    sub.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=300))
    m = sub.wait_messages(1)[0]
    assert m.topic == "mexp/long"
    assert 26 <= m.properties.MessageExpiryInterval <= 28, m.properties.MessageExpiryInterval
    assert sub.quiet_for(0.5)
    assert [x.topic for x in sub.received()] == ["mexp/long"]


def test_retained_message_expiry(broker):
    """A retained message stops being delivered to new subscribers once its Message Expiry
    Interval has passed [MQTT-3.3.2-5]; before that its remaining interval is sent."""
    pub = broker.connect("rexp-pub", V5)
    pub.publish("rexp/t", b"soon gone", qos=1, retain=True,
                properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=2))
    s = broker.connect("rexp-1", V5)
    s.subscribe("rexp/t", 1)
    m = s.wait_messages(1)[0]
    assert 1 <= m.properties.MessageExpiryInterval <= 2
    time.sleep(2.5)
    s2 = broker.connect("rexp-2", V5)
    s2.subscribe("rexp/t", 1)
    assert s2.quiet_for(0.7)


def test_properties_forwarded_unchanged_mqtt_3_3_2_4_15_16_17_18_20(broker):
    """Payload Format Indicator [MQTT-3.3.2-4], Response Topic [MQTT-3.3.2-15], Correlation
    Data [MQTT-3.3.2-16], User Properties in order [MQTT-3.3.2-17] [MQTT-3.3.2-18] and
    Content Type [MQTT-3.3.2-20] reach the subscriber unchanged."""
    s = broker.connect("fwd", V5)
    s.subscribe("fwd/t", 2)
    p = props(
        PacketTypes.PUBLISH,
        PayloadFormatIndicator=1,
        ContentType="application/json; charset=utf-8",
        ResponseTopic="fwd/reply/42",
        CorrelationData=b"\x00\x01corr\xff",
        UserProperty=[("b", "2"), ("a", "1"), ("b", "3"), ("ünï", "çødé")],
    )
    broker.connect("fwd-pub", V5).publish("fwd/t", '{"x": 1}', qos=2, properties=p)
    m = s.wait_messages(1)[0]
    q = m.properties
    assert m.payload == b'{"x": 1}'
    assert q.PayloadFormatIndicator == 1
    assert q.ContentType == "application/json; charset=utf-8"
    assert q.ResponseTopic == "fwd/reply/42"
    assert q.CorrelationData == b"\x00\x01corr\xff"
    assert q.UserProperty == [("b", "2"), ("a", "1"), ("b", "3"), ("ünï", "çødé")]


def test_properties_forwarded_to_311_subscriber_without_properties(broker):
    """A 5.0 message with properties still reaches a 3.1.1 subscriber (payload intact)."""
    from helpers import V311

    s = broker.connect("fwd311", V311)
    s.subscribe("fwd311/t", 1)
    p = props(PacketTypes.PUBLISH, ContentType="text/plain", UserProperty=[("k", "v")])
    broker.connect("fwd311-pub", V5).publish("fwd311/t", b"plain", qos=1, properties=p)
    assert s.wait_messages(1)[0].payload == b"plain"


def test_client_maximum_packet_size_messages_too_big_not_sent_mqtt_3_1_2_24(broker):
    """A client announcing Maximum Packet Size 200 never receives a larger packet
    [MQTT-3.1.2-24]: the too-big message is discarded for it [MQTT-3.1.2-25] while smaller
    ones (before and after) arrive; another client gets all three."""
    small = broker.client("mps", V5)
    small.connect(properties=props(PacketTypes.CONNECT, MaximumPacketSize=200))
    small.subscribe("mps/t", 1)
    big = broker.connect("mps-big", V5)
    big.subscribe("mps/t", 1)
    pub = broker.connect("mps-pub", V5)
    pub.publish("mps/t", b"a" * 10, qos=1)
    pub.publish("mps/t", b"b" * 1000, qos=1)
    pub.publish("mps/t", b"c" * 10, qos=1)
    big.wait_messages(3)
    small.wait_messages(2)
    assert small.quiet_for(0.5)
    assert small.payloads() == [b"a" * 10, b"c" * 10]
    assert not small.disconnects


def test_server_maximum_packet_size_mqtt_3_2_2_15(make_broker):
    """``max_packet_size 1000`` is announced in CONNACK; a client packet larger than it ends
    the connection with DISCONNECT 0x95 (packet too large) [MQTT-3.2.2-15] (section 4.13)."""
    b = make_broker(ANON + "max_packet_size 1000\n")
    s = b.connect("smps-sub", V5)
    s.subscribe("smps/t", 0)
    c = b.client("smps", V5)
    assert c.connect().properties.MaximumPacketSize == 1000
    c.publish("smps/t", b"x" * 2000, qos=0)
    d = c.wait_disconnect()
    assert d.from_server and d.reason == 0x95, d
    assert s.quiet_for(0.5)


def test_request_response_information_mqtt_3_1_2_28(broker):
    """Request Response Information 1 gets a Response Information string in CONNACK
    (section 3.2.2.3.15); 0 or absent gets none [MQTT-3.1.2-28]."""
    a = broker.client("rri-1", V5)
    ack = a.connect(properties=props(PacketTypes.CONNECT, RequestResponseInformation=1))
    info = getattr(ack.properties, "ResponseInformation", None)
    assert info, ack.properties
    # A response topic built from it works like any other topic.
    a.subscribe(f"{info}/#", 1)
    broker.connect("rri-pub", V5).publish(f"{info}/answer", b"42", qos=1)
    assert a.wait_messages(1)[0].payload == b"42"
    for value in (0, None):
        c = broker.client(f"rri-{value}", V5)
        p = None if value is None else props(PacketTypes.CONNECT, RequestResponseInformation=0)
        ack = c.connect(properties=p)
        assert getattr(ack.properties, "ResponseInformation", None) is None


def test_reason_string_on_refused_connack(make_broker):
    """A refused 5.0 CONNACK carries a human-readable Reason String (section 3.2.2.3.9)."""
    b = make_broker("listener {port} 127.0.0.1\nallow_anonymous false\n")
    ack = b.client("rs", V5).connect(expect=None)
    assert ack.reason == 0x87
    assert getattr(ack.properties, "ReasonString", ""), ack.properties


def test_reason_string_on_protocol_error_disconnect_mqtt_3_1_2_29(broker):
    """A DISCONNECT for a protocol error carries a Reason String by default; with Request
    Problem Information 0 the server may still put one on DISCONNECT, but never on other
    acknowledgements [MQTT-3.1.2-29]. Raw bytes: a PUBLISH with topic alias 99 > 10."""
    r = Raw(broker.port)
    r.send(connect_bytes("rs-raw", V5))
    assert r.recv()[0] == 0x20
    # PUBLISH QoS 0, topic "t", properties: Topic Alias (0x23) = 99.
    r.send(packet(0x30, b"\x00\x01t" + bytes([3, 0x23, 0, 99])))
    d = r.recv()
    assert d[0] == 0xE0 and d[2] == 0x94, d
    # [E0, len, reason, property length, 0x1F (Reason String), ...]
    assert len(d) > 4 and d[4] == 0x1F, f"no Reason String property in {d!r}"
