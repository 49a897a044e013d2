"""Keep-alive and wills with paho-mqtt: a silent client is disconnected after 1.5 times its
keep-alive and its will is published; ``max_keepalive`` and the 5.0 Server Keep Alive; wills
on abnormal disconnection only, 5.0 DISCONNECT 0x04, Will Delay Interval, will properties.
"""

from __future__ import annotations

import time

from paho.mqtt.packettypes import PacketTypes

from helpers import (
    ANON,
    V311,
    V5,
    Raw,
    WillChild,
    connect_bytes,
    props,
    reason,
)


def test_silent_client_disconnected_after_1_5_keepalive_and_will_published_mqtt_3_1_2_24(broker, version):
    """A client that sends nothing for 1.5 x its keep-alive (2 s here) is disconnected and
    its will is published [MQTT-3.1.2-24] (5.0 [MQTT-3.1.2-22]), [MQTT-3.1.2-8]. The
    paho client's network loop is stopped after CONNACK, so it sends no PINGREQ."""
    watcher = broker.connect("ka-watch", version)
    watcher.subscribe("ka/will", 1)
    silent = broker.client("ka-silent", version)
    silent.connect(keepalive=2, will=("ka/will", b"gone quiet", 1, False), loop=False)
    start = time.monotonic()
    msg = watcher.wait_messages(1, timeout=8)[0]
    elapsed = time.monotonic() - start
    assert msg.payload == b"gone quiet"
    assert 2.7 <= elapsed <= 5.0, f"will after {elapsed:.2f}s; expected about 3 s (1.5 x 2 s)"


def test_client_that_pings_is_not_disconnected(broker, version):
    """The other side of [MQTT-3.1.2-24]: a client whose loop sends PINGREQ every keep-alive
    stays connected well past 1.5 x keep-alive."""
    c = broker.connect("ka-alive", version, keepalive=1)
    time.sleep(3.5)
    assert not c.disconnects
    assert c.subscribe("ka/alive") == [0]


def test_v5_keepalive_timeout_disconnect_reason_0x8d(broker):
    """5.0: the server closes a silent connection with DISCONNECT 0x8D (keep alive timeout)
    [MQTT-3.1.2-22] (raw socket: CONNECT with keep-alive 1, then nothing)."""
    r = Raw(broker.port, timeout=6)
    r.send(connect_bytes("ka-raw", V5, keepalive=1))
    assert r.recv()[0] == 0x20
    start = time.monotonic()
    d = r.recv()
    elapsed = time.monotonic() - start
    assert d is not None and d[0] == 0xE0 and d[2] == 0x8D, d
    assert 1.3 <= elapsed <= 3.0, elapsed


def test_v5_max_keepalive_sent_as_server_keep_alive_mqtt_3_2_2_21(make_broker):
    """``max_keepalive 10``: a 5.0 client asking for 60 s (or 0, no keep-alive) gets Server
    Keep Alive 10 in CONNACK, which it must then use [MQTT-3.2.2-21]."""
    b = make_broker(ANON + "max_keepalive 10\n")
    for asked in (60, 0):
        ack = b.client(f"ska-{asked}", V5).connect(keepalive=asked)
        assert getattr(ack.properties, "ServerKeepAlive", None) == 10, (asked, ack.properties)
    ack = b.client("ska-5", V5).connect(keepalive=5)
    assert getattr(ack.properties, "ServerKeepAlive", None) in (None, 5)


def test_v5_server_keep_alive_is_enforced(make_broker):
    """``max_keepalive 1``: a 5.0 client that asked for 60 s and then stays silent is
    disconnected after 1.5 x the Server Keep Alive [MQTT-3.2.2-21] [MQTT-3.1.2-22]."""
    b = make_broker(ANON + "max_keepalive 1\n")
    r = Raw(b.port, timeout=6)
    r.send(connect_bytes("ska-raw", V5, keepalive=60))
    assert r.recv()[0] == 0x20
    start = time.monotonic()
    assert r.closed_within(5) is not None
    assert time.monotonic() - start <= 3.5


def test_v311_keepalive_above_max_keepalive_refused(make_broker):
    """3.1.1 has no Server Keep Alive: like Mosquitto, a keep-alive above ``max_keepalive``
    gets CONNACK 2 (identifier rejected); one within it is accepted."""
    b = make_broker(ANON + "max_keepalive 10\n")
    c = b.client("ka-big", V311)
    assert c.connect(keepalive=60, expect=None).rc3 == 2
    assert b.client("ka-ok", V311).connect(keepalive=10).rc3 == 0


def test_will_published_on_abnormal_disconnect_mqtt_3_1_2_8(broker, version):
    """The will is published when the network connection closes without DISCONNECT (the
    client process is killed) [MQTT-3.1.2-8]; a retained will is stored [MQTT-3.1.2-17]."""
    watcher = broker.connect("w-watch", version)
    watcher.subscribe("will/crash", 1)
    child = WillChild(broker.port, "w-crash", version, "will/crash", "crashed", qos=1, retain=True)
    child.kill()
    m = watcher.wait_messages(1)[0]
    assert (m.payload, m.qos) == (b"crashed", 1)
    late = broker.connect("w-late", version)
    late.subscribe("will/crash", 1)
    r = late.wait_messages(1)[0]
    assert (r.payload, r.retain) == (b"crashed", True)


def test_will_published_when_socket_dropped(broker, version):
    """[MQTT-3.1.2-8] again, with a paho client whose TCP connection is shut down under it."""
    watcher = broker.connect("w2-watch", version)
    watcher.subscribe("will/drop", 0)
    c = broker.client("w2", version)
    c.connect(will=("will/drop", b"dropped", 0, False))
    c.drop()
    assert watcher.wait_messages(1)[0].payload == b"dropped"


def test_no_will_on_normal_disconnect_mqtt_3_1_2_10(broker, version):
    """After a normal DISCONNECT the will is discarded, not published [MQTT-3.1.2-10]
    (5.0 [MQTT-3.14.4-3])."""
    watcher = broker.connect("w3-watch", version)
    watcher.subscribe("will/normal", 0)
    c = broker.client("w3", version)
    c.connect(will=("will/normal", b"must not appear", 0, False))
    c.disconnect()
    assert watcher.quiet_for(1.0)


def test_v5_disconnect_with_will_message_0x04(broker):
    """5.0: DISCONNECT with reason 0x04 (disconnect with will message) closes normally but
    the will is published (MQTT 5.0 section 3.14.2.1)."""
    watcher = broker.connect("w4-watch", V5)
    watcher.subscribe("will/04", 0)
    c = broker.client("w4", V5)
    c.connect(will=("will/04", b"please publish", 0, False))
    c.disconnect(reasoncode=reason(PacketTypes.DISCONNECT, "Disconnect with will message"))
    assert watcher.wait_messages(1)[0].payload == b"please publish"


def test_v5_will_delay_interval_mqtt_3_1_3_9(broker):
    """5.0: with Will Delay Interval 2 the will is published about 2 s after the connection
    ends, not at once (MQTT 5.0 section 3.1.3.2.2)."""
    watcher = broker.connect("w5-watch", V5)
    watcher.subscribe("will/delay", 0)
    child = WillChild(broker.port, "w5", V5, "will/delay", "late", will_props={"WillDelayInterval": 2},
                      expiry=60)
    start = time.monotonic()
    child.kill()
    m = watcher.wait_messages(1, timeout=6)[0]
    elapsed = time.monotonic() - start
    assert m.payload == b"late"
    assert 1.7 <= elapsed <= 4.0, f"will after {elapsed:.2f}s, expected about 2 s"


def test_v5_will_delay_cancelled_by_reconnect_mqtt_3_1_3_9(broker):
    """5.0: if the client reconnects to its session before the Will Delay Interval passes,
    the will is not published [MQTT-3.1.3-9]."""
    watcher = broker.connect("w6-watch", V5)
    watcher.subscribe("will/cancel", 0)
    child = WillChild(broker.port, "w6", V5, "will/cancel", "never", will_props={"WillDelayInterval": 2},
                      expiry=60)
    child.kill()
    time.sleep(0.5)
    back = broker.client("w6", V5, clean=False)
    back.connect(properties=props(PacketTypes.CONNECT, SessionExpiryInterval=60))
    assert back.connacks[-1].session_present is True
    assert watcher.quiet_for(3.0)


def test_v5_will_delay_longer_than_session_expiry_published_at_session_end(broker):
    """5.0: the will goes out when the session ends if that is sooner than the will delay
    (session expiry 1 s, will delay 30 s) (MQTT 5.0 section 3.1.3.2.2)."""
    watcher = broker.connect("w7-watch", V5)
    watcher.subscribe("will/expiry", 0)
    child = WillChild(broker.port, "w7", V5, "will/expiry", "session over",
                      will_props={"WillDelayInterval": 30}, expiry=1)
    start = time.monotonic()
    child.kill()
    m = watcher.wait_messages(1, timeout=6)[0]
    assert m.payload == b"session over"
    assert time.monotonic() - start <= 4.0


def test_v5_will_properties_forwarded_mqtt_3_1_3_10(broker):
    """5.0: the will's properties (payload format, content type, response topic, correlation
    data, user properties in order) reach subscribers unchanged [MQTT-3.1.3-10]."""
    watcher = broker.connect("w8-watch", V5)
    watcher.subscribe("will/props", 1)
    wp = {
        "PayloadFormatIndicator": 1,
        "ContentType": "text/plain",
        "ResponseTopic": "will/reply",
        "CorrelationData": "abc",
        "UserProperty": [["k", "1"], ["k", "2"], ["a", "z"]],
        "MessageExpiryInterval": 100,
    }
    child = WillChild(broker.port, "w8", V5, "will/props", "bye", qos=1, will_props=wp)
    child.kill()
    m = watcher.wait_messages(1)[0]
    p = m.properties
    assert m.payload == b"bye"
    assert p.PayloadFormatIndicator == 1
    assert p.ContentType == "text/plain"
    assert p.ResponseTopic == "will/reply"
    assert p.CorrelationData == b"abc"
    assert p.UserProperty == [("k", "1"), ("k", "2"), ("a", "z")]
    assert 95 <= p.MessageExpiryInterval <= 100
