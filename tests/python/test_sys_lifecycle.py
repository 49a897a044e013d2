"""``$SYS`` topics, and the broker's life: a client that never sends CONNECT, a malformed
packet, SIGINT/SIGTERM, start-up lines, configuration errors.
"""

from __future__ import annotations

import signal
import time

import pytest

from helpers import ANON, V311, V5, Raw, connect_bytes, packet, wait_for

CORE_SYS = [
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/clients/expired",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/clients/total",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/publish/messages/dropped",
    "$SYS/broker/publish/messages/received",
    "$SYS/broker/publish/messages/sent",
    "$SYS/broker/bytes/received",
    "$SYS/broker/bytes/sent",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/store/messages/count",
    "$SYS/broker/store/messages/bytes",
]
"""$SYS topics Mosquitto 2.0.11 publishes that dashboards rely on."""


def _latest(client, topic):
    ms = client.received(topic)
    return ms[-1].payload.decode() if ms else None


def test_sys_topics_with_mosquitto_names_every_sys_interval(make_broker, version):
    """``sys_interval 1``: the ``$SYS/broker/...`` topics use Mosquitto's names and values
    (uptime "N seconds", client counts) and are refreshed every interval."""
    b = make_broker(ANON + "sys_interval 1\n")
    others = [b.connect(f"sys-other-{i}", version) for i in range(2)]
    w = b.connect("sys-watch", version)
    w.subscribe("$SYS/broker/#", 0)
    wait_for(lambda: all(w.received(t) for t in CORE_SYS), 4,
             f"all of {CORE_SYS}; missing {[t for t in CORE_SYS if not w.received(t)]}")
    assert _latest(w, "$SYS/broker/uptime").endswith(" seconds")
    wait_for(lambda: _latest(w, "$SYS/broker/clients/connected") == "3", 4, "clients/connected 3")
    others[0].disconnect()
    wait_for(lambda: _latest(w, "$SYS/broker/clients/connected") == "2", 4, "clients/connected 2")
    assert int(_latest(w, "$SYS/broker/clients/maximum")) >= 3
    n = len(w.received("$SYS/broker/uptime"))
    w.wait_messages(n + 2, topic="$SYS/broker/uptime", timeout=3.5)
    ups = [int(m.payload.split()[0]) for m in w.received("$SYS/broker/uptime")]
    assert ups == sorted(ups) and ups[-1] > ups[0]


def test_sys_publish_counters(make_broker):
    """``$SYS/broker/publish/messages/received`` counts PUBLISH packets received and
    ``retained messages/count`` the retained messages."""
    b = make_broker(ANON + "sys_interval 1\n")
    p = b.connect("ctr-pub", V311)
    for i in range(5):
        p.publish(f"ctr/{i}", b"x", qos=1, retain=True)
    w = b.connect("ctr-watch", V311)
    w.subscribe("$SYS/broker/publish/messages/received", 0)
    w.subscribe("$SYS/broker/retained messages/count", 0)
    wait_for(lambda: int(_latest(w, "$SYS/broker/publish/messages/received") or 0) >= 5, 4,
             "publish/messages/received >= 5")
    wait_for(lambda: int(_latest(w, "$SYS/broker/retained messages/count") or 0) >= 5, 4,
             "retained messages/count >= 5")


def test_sys_names_match_mosquitto(make_broker, make_mosquitto):
    """Differential: every ``$SYS/broker/...`` topic Debian's Mosquitto 2.0.11 publishes with
    ``sys_interval 1`` is also published by tern (``heap/*`` excluded: it depends on how
    Mosquitto was built)."""
    names = []
    for start in (make_mosquitto, make_broker):
        srv = start(ANON + "sys_interval 1\n")
        w = srv.connect("sysnames", V311)
        w.subscribe("$SYS/#", 0)
        time.sleep(2.5)
        names.append({m.topic for m in w.received() if "/heap/" not in m.topic})
    missing = sorted(names[0] - names[1])
    assert not missing, f"tern does not publish these Mosquitto $SYS topics: {missing}"


def test_sys_interval_0_disables_sys(make_broker):
    """``sys_interval 0`` disables ``$SYS`` publishing, as in Mosquitto."""
    b = make_broker(ANON + "sys_interval 0\n")
    w = b.connect("nosys", V311)
    w.subscribe("$SYS/#", 0)
    assert w.quiet_for(2.0)


def test_client_that_never_sends_connect_is_dropped(make_broker):
    """A network connection that sends no CONNECT is closed after ``connect_timeout`` (tern's
    option; 5.0 section 4.2 non-normative: "a Server ... SHOULD close the Network Connection
    if it does not receive a CONNECT in a reasonable amount of time")."""
    b = make_broker(ANON + "connect_timeout 1\n")
    r = Raw(b.port)
    took = r.closed_within(5)
    assert took is not None and 0.8 <= took <= 3.0, took
    b.wait_log("no CONNECT within the connect timeout")
    b.connect("after-silent", V311)


def test_first_packet_not_connect_closed_mqtt_3_1_0_1(broker):
    """A first packet other than CONNECT closes the connection [MQTT-3.1.0-1]."""
    r = Raw(broker.port)
    r.send(packet(0x82, b"\x00\x01\x00\x01t\x00"))
    assert r.closed_within(3) is not None


@pytest.mark.parametrize(
    "name, raw, v5_reason",
    [
        ("packet type 15: reserved in 3.1.1 (2.2.1), AUTH without a method in 5.0", bytes([0xF0, 0x00]), 0x82),
        ("PUBLISH QoS 3 [MQTT-3.3.1-4]", packet(0x36, b"\x00\x01t\x00\x01x"), 0x81),
        ("SUBSCRIBE bad flags [MQTT-3.8.1-1]", packet(0x80, b"\x00\x01\x00\x01t\x00"), 0x81),
        ("topic with U+0000 [MQTT-1.5.3-2] (5.0 [MQTT-1.5.4-2])", packet(0x30, b"\x00\x03a\x00b"), 0x81),
    ],
)
def test_malformed_packet_disconnects_only_that_client_mqtt_4_8_0_1(broker, version, name, raw, v5_reason):
    """A malformed packet closes that client's connection (5.0: DISCONNECT 0x81 malformed
    packet or 0x82 protocol error first, section 4.13) [MQTT-4.8.0-1]; paho clients connected
    at the same time keep working."""
    sub = broker.connect("mal-sub", version)
    sub.subscribe("mal/t", 1)
    pub = broker.connect("mal-pub", version)
    r = Raw(broker.port)
    r.send(connect_bytes("mal-bad", version))
    assert r.recv()[0] == 0x20
    if version == V5 and raw[0] == 0x30:
        raw = packet(0x30, b"\x00\x03a\x00b\x00")  # with an empty property length
    r.send(raw)
    if version == V5:
        d = r.recv()
        assert d is not None and d[0] == 0xE0 and d[2] == v5_reason, (name, d)
    assert r.closed_within(3) is not None, name
    pub.publish("mal/t", b"still fine", qos=1)
    assert sub.wait_messages(1)[0].payload == b"still fine"
    assert not sub.disconnects and not pub.disconnects


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_0_and_v5_clients_get_disconnect_0x8b(make_broker, sig):
    """SIGTERM / SIGINT: 5.0 clients get DISCONNECT 0x8B (server shutting down, section
    3.14.2.1), 3.1.1 clients are disconnected, and tern exits with status 0."""
    b = make_broker(ANON)
    c5 = b.connect("sig-5", V5)
    c3 = b.connect("sig-3", V311)
    b.signal(sig)
    d5 = c5.wait_disconnect()
    assert d5.from_server and d5.reason == 0x8B, d5
    c3.wait_disconnect()
    assert b.wait_exit(10) == 0


def test_startup_prints_one_line_per_listener(make_broker):
    """Start-up prints exactly one ``tern: listening on ADDR:PORT (...)`` line per
    listener."""
    b = make_broker("listener {port} 127.0.0.1\nallow_anonymous true\nlistener {port2} 127.0.0.1\n")
    wait_for(lambda: sum(l.startswith("tern: listening on ") for l in b.stdout_lines) >= 2, 5,
             "two listening lines")
    time.sleep(0.3)
    lines = [l for l in b.stdout_lines if l.startswith("tern: listening on ")]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"tern: listening on 127.0.0.1:{b.port} (mqtt)")
    assert lines[1].startswith(f"tern: listening on 127.0.0.1:{b.port2} (mqtt)")
    # allow_anonymous is a global option without per_listener_settings (as in Mosquitto).
    assert all("anonymous access allowed" in l for l in lines), lines


@pytest.mark.parametrize(
    "conf, line, words",
    [
        ("listener {port} 127.0.0.1\nallow_anonymous true\nno_such_option 1\n", 3, "no_such_option"),
        ("listener {port} 127.0.0.1\nmax_inflight_messages lots\n", 2, "max_inflight_messages"),
        ("listener {port} 127.0.0.1\nallow_anonymous maybe\n", 2, "allow_anonymous"),
        ("# comment\nlistener 99999 127.0.0.1\n", 2, "99999"),
    ],
)
def test_config_error_stops_startup_with_file_and_line(make_broker, conf, line, words):
    """An unknown option or a bad value stops start-up with a non-zero status and an error
    naming ``FILE:LINE`` (Mosquitto: "Error found at FILE:LINE.")."""
    b = make_broker(conf, wait=False)
    code = b.wait_exit(10)
    assert code != 0
    err = b.log()
    assert f"{b.conf_path}:{line}" in err, err
    assert words in err, err
    assert not [l for l in b.stdout_lines if l.startswith("tern: listening")]


def test_log_lines_carry_only_their_own_connection_span(broker):
    """The broker log names one connection per line: ARCHITECTURE.md convention 7 ("one span
    per connection with client id and peer address"). Four paho clients connect and leave;
    every ``conn{...}`` log line must carry exactly one span, and it must be the client the
    line is about."""
    clients = [broker.connect(f"span-{i}", V311) for i in range(4)]
    for c in clients:
        c.disconnect()
    broker.wait_log('client disconnected client_id="span-3"')
    lines = [l for l in broker.log().splitlines() if "conn{" in l]
    assert lines
    nested = [l for l in lines if l.count("conn{") > 1]
    assert not nested, f"{len(nested)} of {len(lines)} lines carry other connections' spans, e.g.\n{nested[-1]}"
