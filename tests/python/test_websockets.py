"""MQTT over WebSockets against the real `tern broker`, with paho-mqtt 2.x.

The broker runs from $TERN_BIN (default: target/debug/tern, then target/release/tern, under
the repository root) with a config holding one WebSockets listener on a free loopback port:

    listener PORT 127.0.0.1
    protocol websockets
    allow_anonymous true

and each test waits for its start-up line `tern: listening on 127.0.0.1:PORT`.

Run: pip install -r tests/python/requirements.txt && cargo build -p tern-cli &&
     python -m pytest tests/python/test_websockets.py
"""

import os
import pathlib
import queue
import socket
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT = 10.0


def tern_bin():
    env = os.environ.get("TERN_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        path = ROOT / "target" / profile / "tern"
        if path.exists():
            return str(path)
    pytest.fail("no tern binary: set TERN_BIN or run `cargo build -p tern-cli`")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A `tern broker -c CONF` process and the port of its WebSockets listener."""

    def __init__(self, tmp_path):
        self.port = free_port()
        conf = tmp_path / "tern.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "protocol websockets\n"
            "allow_anonymous true\n"
        )
        self.stderr_path = tmp_path / "broker.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [tern_bin(), "broker", "-c", str(conf)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "RUST_LOG": "debug"},
        )
        self._wait_ready()

    def _wait_ready(self):
        lines = queue.Queue()

        def pump():
            for raw in self.proc.stdout:
                lines.put(raw.decode(errors="replace").rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        want = f"tern: listening on 127.0.0.1:{self.port}"
        seen = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if line.startswith(want):
                return
        self.stop()
        pytest.fail(
            f"the broker did not print {want!r} within {TIMEOUT}s "
            f"(exit code {self.proc.returncode}).\nstdout:\n"
            + "\n".join(seen)
            + "\nstderr:\n"
            + self.log()
        )

    def log(self):
        """What the broker wrote to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


VERSIONS = [
    pytest.param(mqtt.MQTTv311, id="mqtt311"),
    pytest.param(mqtt.MQTTv5, id="mqtt5"),
]


class Client:
    """A paho client over WebSockets, with the events it saw in queues."""

    def __init__(self, port, protocol, name):
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.messages = queue.Queue()
        self.published = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
            transport="websockets",
        )
        self.c.ws_set_options(path="/mqtt")
        self.c.on_connect = lambda c, u, flags, rc, props: self.connacks.put(rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put(rcs)
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        self.c.on_publish = lambda c, u, mid, rc, props: self.published.put(mid)
        self.protocol = protocol
        if protocol == mqtt.MQTTv5:
            self.c.connect("127.0.0.1", port, keepalive=30, clean_start=True)
        else:
            self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        rc = self.connacks.get(timeout=TIMEOUT)
        assert not rc.is_failure, f"CONNACK refused: {rc}"

    def subscribe(self, topic, qos):
        result, _ = self.c.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        (granted,) = self.subacks.get(timeout=TIMEOUT)
        assert not granted.is_failure, f"SUBACK refused: {granted}"
        assert granted.value == qos

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.parametrize("protocol", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_sub_round_trip_over_websockets(broker, protocol, qos):
    client = Client(broker.port, protocol, "ws-roundtrip")
    try:
        client.subscribe("tern/ws/echo", qos)
        client.c.publish("tern/ws/echo", b"hello over websockets", qos=qos)
        msg = client.messages.get(timeout=TIMEOUT)
        assert msg.topic == "tern/ws/echo"
        assert msg.payload == b"hello over websockets"
        assert msg.qos == qos
    finally:
        client.close()


@pytest.mark.parametrize("protocol", VERSIONS)
def test_two_websocket_clients(broker, protocol):
    sub = Client(broker.port, protocol, "ws-sub")
    pub = Client(broker.port, protocol, "ws-pub")
    try:
        sub.subscribe("tern/ws/+/data", 1)
        for i in range(20):
            pub.c.publish(f"tern/ws/{i}/data", f"m{i}".encode(), qos=1)
        got = [sub.messages.get(timeout=TIMEOUT) for _ in range(20)]
        assert [m.payload for m in got] == [f"m{i}".encode() for i in range(20)]
    finally:
        pub.close()
        sub.close()


@pytest.mark.parametrize("protocol", VERSIONS)
def test_large_payload_spans_websocket_messages(broker, protocol):
    """A 300 KB PUBLISH is larger than one broker WebSocket message (64 KiB), so the
    broker sends it over several; [MQTT-6.0.0-2] lets a packet span frames."""
    payload = bytes(range(256)) * 1200
    client = Client(broker.port, protocol, "ws-large")
    try:
        client.subscribe("tern/ws/large", 1)
        client.c.publish("tern/ws/large", payload, qos=1)
        msg = client.messages.get(timeout=TIMEOUT)
        assert msg.payload == payload
    finally:
        client.close()


@pytest.mark.parametrize("protocol", VERSIONS)
def test_retained_message_reaches_a_later_subscriber(broker, protocol):
    pub = Client(broker.port, protocol, "ws-retain-pub")
    try:
        info = pub.c.publish("tern/ws/retained", b"kept", qos=1, retain=True)
        info.wait_for_publish(timeout=TIMEOUT)
    finally:
        pub.close()
    sub = Client(broker.port, protocol, "ws-retain-sub")
    try:
        sub.subscribe("tern/ws/retained", 1)
        msg = sub.messages.get(timeout=TIMEOUT)
        assert msg.payload == b"kept"
        assert msg.retain
    finally:
        sub.close()


def raw_upgrade(port, protocol_header):
    """Sends an HTTP upgrade request by hand and returns the response head."""
    lines = [
        "GET /mqtt HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if protocol_header:
        lines.append(f"Sec-WebSocket-Protocol: {protocol_header}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return head.decode(errors="replace")


def test_upgrade_selects_the_mqtt_subprotocol(broker):
    """[MQTT-6.0.0-4]: the server selects "mqtt"; the accept key is RFC 6455's example."""
    head = raw_upgrade(broker.port, "mqtt").lower()
    assert head.startswith("http/1.1 101"), head
    assert "sec-websocket-protocol: mqtt\r\n" in head, head
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n" in head, head


def test_upgrade_without_the_mqtt_subprotocol_is_refused(broker):
    """[MQTT-6.0.0-3]: the client must offer "mqtt"."""
    head = raw_upgrade(broker.port, None)
    assert head.startswith("HTTP/1.1 400"), head
