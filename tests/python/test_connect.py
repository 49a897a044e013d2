"""CONNECT and CONNACK with paho-mqtt: return codes (3.1.1) and reason codes (5.0), empty
client identifiers, session takeover, clean session / clean start, session expiry and the
session-present flag, queued messages and redelivery on reconnect.
"""

from __future__ import annotations

import time

from paho.mqtt.packettypes import PacketTypes

from helpers import ANON, V311, V5, Raw, connect_bytes, connect_persistent, props, stays_false


def test_connack_accepted_rc0_session_present_0_mqtt_3_2_2_1(broker, version):
    """A clean connection is accepted (3.1.1 return code 0 / 5.0 reason 0x00) and, with
    clean session / clean start, the session-present flag is 0 [MQTT-3.2.2-1] (5.0
    [MQTT-3.2.2-2])."""
    c = broker.client("ok-1", version)
    ack = c.connect()
    assert ack.reason == 0
    assert ack.session_present is False
    if version == V311:
        assert ack.rc3 == 0


def test_unsupported_protocol_level_gets_rc1_mqtt_3_1_2_2(broker):
    """Protocol level 7 is not supported: CONNACK return code 0x01 and the connection is
    closed [MQTT-3.1.2-2]."""
    r = Raw(broker.port)
    body = bytes([0, 4]) + b"MQTT" + bytes([7, 0x02, 0, 60, 0, 1]) + b"x"
    r.send(bytes([0x10, len(body)]) + body)
    assert r.recv() == bytes([0x20, 0x02, 0x00, 0x01])
    assert r.closed_within(3) is not None


def test_v311_empty_client_id_with_clean_session_0_refused_rc2_mqtt_3_1_3_8(broker):
    """3.1.1: an empty client id with CleanSession 0 gets return code 0x02 (identifier
    rejected) and the connection is closed [MQTT-3.1.3-8]. paho refuses to send such a
    CONNECT, so the bytes are written by hand."""
    r = Raw(broker.port)
    r.send(connect_bytes("", V311, clean=False))
    assert r.recv() == bytes([0x20, 0x02, 0x00, 0x02])
    assert r.closed_within(3) is not None


def test_v311_empty_client_id_with_clean_session_accepted_mqtt_3_1_3_6(broker):
    """3.1.1: the server accepts an empty client id with CleanSession 1 and assigns a unique
    id [MQTT-3.1.3-6]; two such clients work side by side."""
    a = broker.connect("", V311)
    b = broker.connect("", V311)
    assert a.connacks[-1].rc3 == 0 and b.connacks[-1].rc3 == 0
    assert a.subscribe("anon/t", 0) == [0]
    b.publish("anon/t", b"hello")
    assert a.wait_messages(1)[0].payload == b"hello"
    assert not a.disconnects and not b.disconnects, "neither was taken over by the other"


def test_v5_empty_client_id_gets_assigned_identifier_with_auto_id_prefix_mqtt_3_2_2_16(make_broker):
    """5.0: an empty client id gets an Assigned Client Identifier in CONNACK, unused by any
    other session [MQTT-3.2.2-16]; tern uses ``auto_id_prefix`` as Mosquitto does."""
    b = make_broker(ANON + "auto_id_prefix robot-\n")
    ids = []
    for _ in range(3):
        ack = b.connect("", V5).connacks[-1]
        assigned = getattr(ack.properties, "AssignedClientIdentifier", None)
        assert assigned, f"no Assigned Client Identifier in {ack.properties}"
        assert assigned.startswith("robot-"), assigned
        ids.append(assigned)
    assert len(set(ids)) == 3, ids


def test_empty_client_id_refused_when_zero_length_not_allowed(make_broker, version):
    """``allow_zero_length_clientid false``: an empty id is refused with 3.1.1 return code 2
    / 5.0 reason 0x85 and the connection is closed ([MQTT-3.1.3-9], 5.0 [MQTT-3.1.3-8])."""
    b = make_broker(ANON + "allow_zero_length_clientid false\n")
    if version == V5:
        c = b.client("", version)
        assert c.connect(expect=None).reason == 0x85
        c.wait_disconnect()
    else:
        # paho 3.1.1 hides a return code 2 for an empty id (it gives up or retries with a
        # random id), so the bytes are written by hand.
        r = Raw(b.port)
        r.send(connect_bytes("", V311))
        assert r.recv() == bytes([0x20, 0x02, 0x00, 0x02])
        assert r.closed_within(3) is not None


def test_anonymous_refused_rc5_or_0x87(make_broker, version):
    """``allow_anonymous false`` without credentials: 3.1.1 return code 5 (not authorized) /
    5.0 reason 0x87, then the connection is closed [MQTT-3.2.2-5] (5.0 [MQTT-3.2.2-7])."""
    b = make_broker("listener {port} 127.0.0.1\nallow_anonymous false\n")
    c = b.client("anon", version)
    ack = c.connect(expect=None)
    if version == V5:
        assert ack.reason == 0x87
    else:
        assert ack.rc3 == 5
    c.wait_disconnect()


def test_v5_authentication_method_refused_0x8c_mqtt_4_12_0_1(broker):
    """5.0: a CONNECT with an Authentication Method the server does not support gets CONNACK
    0x8C (bad authentication method) and is closed [MQTT-4.12.0-1]."""
    c = broker.client("auth", V5)
    p = props(PacketTypes.CONNECT, AuthenticationMethod="SCRAM-SHA-256", AuthenticationData=b"x")
    ack = c.connect(properties=p, expect=None)
    assert ack.reason == 0x8C
    assert getattr(ack.properties, "ReasonString", ""), "a reason string explains the refusal"
    c.wait_disconnect()


def test_session_takeover_disconnects_first_connection_mqtt_3_1_4_3(broker, version):
    """A second connection with the same client id closes the first [MQTT-3.1.4-2]
    (3.1.1) / [MQTT-3.1.4-3] (5.0, where the first connection gets DISCONNECT 0x8E
    "session taken over" first). The newcomer keeps working."""
    first = broker.connect("twin", version)
    second = broker.connect("twin", version)
    d = first.wait_disconnect()
    if version == V5:
        assert d.from_server and d.reason == 0x8E, d
    assert second.subscribe("twin/t") == [0]
    second.publish("twin/t", b"still here")
    assert second.wait_messages(1)[0].payload == b"still here"
    assert not second.disconnects


def test_session_present_flag_and_subscriptions_resume_mqtt_3_2_2_2(broker, version):
    """A persistent session: first connection session-present 0 [MQTT-3.2.2-3], reconnection
    session-present 1 [MQTT-3.2.2-2] with its subscriptions still in force [MQTT-3.1.2-4]."""
    c = connect_persistent(broker, "keep", version)
    assert c.connacks[-1].session_present is False
    assert c.subscribe("keep/t", 1) == [1]
    c.disconnect()
    c2 = connect_persistent(broker, "keep", version)
    assert c2.connacks[-1].session_present is True
    broker.connect("keep-pub", version).publish("keep/t", b"resumed", qos=1)
    assert c2.wait_messages(1)[0].payload == b"resumed"


def test_clean_session_discards_old_session_mqtt_3_1_2_6(broker, version):
    """Clean session / clean start 1 discards the previous session: session-present 0 and
    the old subscriptions are gone [MQTT-3.1.2-6] (5.0 [MQTT-3.1.2-4])."""
    c = connect_persistent(broker, "wipe", version)
    c.subscribe("wipe/t", 1)
    c.disconnect()
    c2 = broker.connect("wipe", version)
    assert c2.connacks[-1].session_present is False
    broker.connect("wipe-pub", version).publish("wipe/t", b"x", qos=1)
    assert c2.quiet_for(0.7), "the discarded subscription must not deliver"


def test_v5_session_expiry_interval_mqtt_3_1_2_23(broker):
    """5.0: a session with Session Expiry Interval 2 survives a short absence (session
    present 1) and is gone after the interval (session present 0) [MQTT-3.1.2-23]."""
    c = connect_persistent(broker, "exp", V5, expiry=2)
    c.subscribe("exp/t", 1)
    c.disconnect()
    time.sleep(0.5)
    c = connect_persistent(broker, "exp", V5, expiry=2)
    assert c.connacks[-1].session_present is True
    c.disconnect()
    time.sleep(3.5)
    c = connect_persistent(broker, "exp", V5, expiry=2)
    assert c.connacks[-1].session_present is False


def test_v5_session_expiry_absent_means_session_ends_with_connection_mqtt_3_1_2_23(broker):
    """5.0: without Session Expiry Interval (0) the session ends when the connection closes,
    even with Clean Start 0 [MQTT-3.1.2-23]."""
    c = broker.client("noexp", V5, clean=False)
    c.connect()
    c.subscribe("noexp/t", 1)
    c.disconnect()
    c = broker.client("noexp", V5, clean=False)
    assert c.connect().session_present is False


def test_queued_qos1_qos2_delivered_on_reconnect_mqtt_3_1_2_5(broker, version):
    """QoS 1 and 2 messages published while a persistent session is offline are stored and
    delivered, in order, on reconnection [MQTT-3.1.2-5]; QoS 0 ones are not queued
    (Mosquitto's default ``queue_qos0_messages false``)."""
    c = connect_persistent(broker, "off", version)
    assert c.subscribe("off/#", 2) == [2]
    c.disconnect()
    pub = broker.connect("off-pub", version)
    for i in range(3):
        pub.publish("off/q1", f"one-{i}", qos=1)
        pub.publish("off/q2", f"two-{i}", qos=2)
        pub.publish("off/q0", f"zero-{i}", qos=0)
    # A QoS 1 message on another topic: once acknowledged, every earlier PUBLISH from this
    # client has been processed (one connection is handled in order).
    pub.publish("sync/after-q0", "x", qos=1)
    c = connect_persistent(broker, "off", version)
    assert c.connacks[-1].session_present is True
    c.wait_messages(6)
    assert c.quiet_for(0.5)
    got = [(m.topic, m.payload.decode(), m.qos) for m in c.received()]
    assert [g for g in got if g[0] == "off/q1"] == [("off/q1", f"one-{i}", 1) for i in range(3)]
    assert [g for g in got if g[0] == "off/q2"] == [("off/q2", f"two-{i}", 2) for i in range(3)]
    assert not [g for g in got if g[0] == "off/q0"], got


def test_unacknowledged_qos1_redelivered_with_dup_after_reconnect_mqtt_4_4_0_1(broker, version):
    """A QoS 1 message the client did not acknowledge before its connection ended is sent
    again on reconnection [MQTT-4.4.0-1] with the DUP flag set [MQTT-3.3.1-1]."""
    c = connect_persistent(broker, "dup", version, manual_ack=True)
    c.subscribe("dup/t", 1)
    broker.connect("dup-pub", version).publish("dup/t", b"ack me", qos=1)
    first = c.wait_messages(1)[0]
    assert first.dup is False
    c.disconnect()  # without PUBACK
    c2 = connect_persistent(broker, "dup", version)
    assert c2.connacks[-1].session_present is True
    again = c2.wait_messages(1)[0]
    assert (again.payload, again.qos, again.dup) == (b"ack me", 1, True)
    c2.disconnect()
    c3 = connect_persistent(broker, "dup", version)
    assert c3.quiet_for(0.7), "acknowledged now: not sent a third time"


def test_offline_session_then_clean_reconnect_drops_queue(broker, version):
    """Messages queued for an offline session are discarded with it when the client comes
    back with clean session / clean start 1 [MQTT-3.1.2-6]."""
    c = connect_persistent(broker, "drop", version)
    c.subscribe("drop/t", 1)
    c.disconnect()
    broker.connect("drop-pub", version).publish("drop/t", b"stale", qos=1)
    c2 = broker.connect("drop", version)
    assert c2.connacks[-1].session_present is False
    assert stays_false(lambda: c2.received(), 0.7)
