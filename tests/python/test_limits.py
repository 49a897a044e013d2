"""Broker limits from mosquitto.conf, seen by paho-mqtt clients: ``max_connections``,
``max_queued_messages`` (offline queue and a slow subscriber, with the ``$SYS`` dropped
counter), ``message_size_limit``, ``max_packet_size`` (3.1.1), ``max_qos`` and
``retain_available``. (``max_inflight_messages`` and ``max_keepalive`` are in
test_qos_retained.py and test_keepalive_will.py.)
"""

from __future__ import annotations

import pytest

from helpers import (
    ANON,
    V311,
    V5,
    Raw,
    connect_bytes,
    connect_persistent,
    stays_false,
    subscribe_bytes,
    wait_for,
)


def test_max_connections(make_broker, version):
    """``max_connections 2`` on a listener: with two clients connected a third is not served
    (no CONNACK); once one leaves, a new client gets in."""
    b = make_broker("listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections 2\n")
    one = b.connect("mc-1", version)
    b.connect("mc-2", version)
    third = b.client("mc-3", version)
    third.mqtt.connect("127.0.0.1", b.port)
    third.mqtt.loop_start()
    third.looping = True
    assert stays_false(lambda: third.connacks, 1.5), "a third connection must not be accepted"
    third.close()
    one.disconnect()
    fresh = b.client("mc-4", version)
    fresh.connect(timeout=8)


def test_max_queued_messages_offline_session(make_broker, version):
    """``max_queued_messages 5``: an offline session keeps at most 5 QoS 1 messages; the
    rest are dropped (Mosquitto: "messages over the limit are silently dropped")."""
    b = make_broker(ANON + "max_queued_messages 5\n")
    c = connect_persistent(b, "mq", version)
    c.subscribe("mq/t", 1)
    c.disconnect()
    pub = b.connect("mq-pub", version)
    for i in range(12):
        pub.publish("mq/t", str(i), qos=1)
    c = connect_persistent(b, "mq", version)
    c.wait_messages(5)
    assert c.quiet_for(0.7)
    assert [int(m.payload) for m in c.received()] == [0, 1, 2, 3, 4]


def _sys_value(watcher, topic):
    ms = watcher.received(topic)
    return int(ms[-1].payload) if ms else None


def test_slow_subscriber_qos0_dropped_and_counted(make_broker):
    """A subscriber that stops reading: QoS 0 messages beyond what the socket and
    ``max_queued_messages 10`` hold are dropped, not buffered without bound, and counted in
    ``$SYS/broker/publish/messages/dropped``; what the subscriber does get is in order."""
    b = make_broker(ANON + "max_queued_messages 10\nsys_interval 1\n")
    slow = Raw(b.port, rcvbuf=4096)
    slow.send(connect_bytes("slow", V311))
    assert slow.recv() == bytes([0x20, 2, 0, 0])
    slow.send(subscribe_bytes(1, "slow/t", 0))
    assert slow.recv() == bytes([0x90, 3, 0, 1, 0])
    watcher = b.connect("dropwatch", V311)
    watcher.subscribe("$SYS/broker/publish/messages/dropped", 0)
    pub = b.connect("slow-pub", V311)
    n, size = 2000, 8192
    for i in range(n):
        pub.publish("slow/t", f"{i:08d}".encode() + b"x" * (size - 8), qos=0, wait=False)
    # Acknowledged only after everything before it on this connection was routed.
    pub.publish("slow/end", b"", qos=1)
    assert b.proc.poll() is None
    wait_for(lambda: (_sys_value(watcher, "$SYS/broker/publish/messages/dropped") or 0) > 0,
             6, "a non-zero $SYS/broker/publish/messages/dropped")
    dropped = _sys_value(watcher, "$SYS/broker/publish/messages/dropped")
    # Now read what the slow subscriber was sent.
    got = []
    slow.s.settimeout(2)
    while True:
        p = slow.recv()
        if p is None:
            break
        got.append(p)
    indexes = []
    for p in got:
        # 3.1.1 QoS 0 PUBLISH: header, remaining length (varint), topic length + topic, payload.
        i = 1
        while p[i] & 0x80:
            i += 1
        i += 1
        tl = int.from_bytes(p[i:i + 2], "big")
        indexes.append(int(p[i + 2 + tl:i + 2 + tl + 8]))
    assert len(indexes) < n, "the slow subscriber cannot have been sent everything"
    assert indexes == sorted(indexes), "what was kept stays in order"
    assert dropped >= n - len(indexes) - 10, (dropped, len(indexes))


@pytest.mark.parametrize("limit_conf", ["message_size_limit 100\n"])
def test_message_size_limit(make_broker, version, limit_conf):
    """``message_size_limit 100``: a 100-byte payload is delivered, a 101-byte one is
    dropped; the publisher's QoS 1 flow still completes (5.0: PUBACK with an error reason
    code, 0x83 like Mosquitto 2.0) and the publisher stays connected."""
    b = make_broker(ANON + limit_conf)
    s = b.connect("msl-sub", version)
    s.subscribe("msl/t", 1)
    p = b.connect("msl-pub", version)
    ok = p.publish("msl/t", b"a" * 100, qos=1)
    big = p.publish("msl/t", b"b" * 101, qos=1)
    p.publish("msl/t", b"c", qos=1)
    s.wait_messages(2)
    assert s.quiet_for(0.5)
    assert s.payloads() == [b"a" * 100, b"c"]
    if version == V5:
        assert p.puback_reason(ok) == 0
        assert p.puback_reason(big) == 0x83
    assert not p.disconnects


def test_max_packet_size_v311_connection_closed(make_broker):
    """``max_packet_size 1000``: a 3.1.1 client sending a bigger packet is disconnected (3.1.1
    has no DISCONNECT from the server) and the message is not delivered."""
    b = make_broker(ANON + "max_packet_size 1000\n")
    s = b.connect("mp-sub", V311)
    s.subscribe("mp/t", 0)
    c = b.connect("mp", V311)
    c.publish("mp/t", b"x" * 2000, qos=0)
    c.wait_disconnect()
    assert s.quiet_for(0.5)


def test_max_qos_1(make_broker, version):
    """``max_qos 1``: 5.0 CONNACK says Maximum QoS 1 [MQTT-3.2.2-9]; SUBSCRIBE at QoS 2 is
    accepted and granted 1 [MQTT-3.2.2-10]; a QoS 2 PUBLISH is a protocol error: 5.0
    DISCONNECT 0x9B (section 3.2.2.3.4, [MQTT-3.2.2-11]), 3.1.1 connection closed; the
    message is not delivered."""
    b = make_broker(ANON + "max_qos 1\n")
    s = b.client("mq1-sub", version)
    ack = s.connect()
    if version == V5:
        assert ack.properties.MaximumQoS == 1
    assert s.subscribe("mq1/t", 2) == [1]
    p = b.connect("mq1-pub", version)
    p.publish("mq1/t", b"one", qos=1)
    assert s.wait_messages(1)[0].qos == 1
    p.publish("mq1/t", b"two", qos=2, wait=False)
    d = p.wait_disconnect()
    if version == V5:
        assert d.from_server and d.reason == 0x9B, d
    assert s.quiet_for(0.5)
    assert s.payloads() == [b"one"]


def test_v5_will_qos_above_max_qos_refused_0x9b_mqtt_3_2_2_12(make_broker):
    """``max_qos 1``: a 5.0 CONNECT whose will has QoS 2 is refused, CONNACK 0x9B (QoS not
    supported), and closed [MQTT-3.2.2-12]."""
    b = make_broker(ANON + "max_qos 1\n")
    c = b.client("willq", V5)
    ack = c.connect(will=("willq/t", b"w", 2, False), expect=None)
    assert ack.reason == 0x9B, f"CONNACK {ack.reason:#x}"


def test_retain_available_false(make_broker, version):
    """``retain_available false``: 5.0 CONNACK says Retain Available 0; a retained PUBLISH
    ends the connection (5.0: DISCONNECT 0x9A, section 3.2.2.3.5) and nothing is retained."""
    b = make_broker(ANON + "retain_available false\n")
    c = b.client("ra", version)
    ack = c.connect()
    if version == V5:
        assert ack.properties.RetainAvailable == 0
    live = b.connect("ra-live", version)
    live.subscribe("ra/t", 0)
    c.publish("ra/t", b"keep me", qos=1, retain=True, wait=False)
    d = c.wait_disconnect()
    if version == V5:
        assert d.from_server and d.reason == 0x9A, d
    later = b.connect("ra-late", version)
    later.subscribe("ra/t", 0)
    assert later.quiet_for(0.5)


def test_v5_will_retain_refused_when_retain_unavailable_0x9a_mqtt_3_2_2_13(make_broker):
    """``retain_available false``: a 5.0 CONNECT with a retained will is refused with CONNACK
    0x9A (retain not supported) [MQTT-3.2.2-13]."""
    b = make_broker(ANON + "retain_available false\n")
    c = b.client("willr", V5)
    ack = c.connect(will=("willr/t", b"w", 0, True), expect=None)
    assert ack.reason == 0x9A, f"CONNACK {ack.reason:#x}"
