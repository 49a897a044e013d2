"""Helpers for driving the real ``tern broker`` with paho-mqtt 2.x and raw sockets.

Everything here is bounded in time: every wait takes a timeout and fails the test with a
message saying what it was waiting for. Nothing listens anywhere but 127.0.0.1.

* :class:`Broker` starts ``$TERN_BIN broker -c <conf>`` on a free loopback port and waits
  for its start-up line ``tern: listening on 127.0.0.1:PORT``.
* :class:`Client` is a paho-mqtt client (3.1.1 or 5.0) on a background network loop that
  records every CONNACK, SUBACK, PUBACK, message and DISCONNECT the broker sends.
* :class:`Raw` speaks MQTT bytes written by hand, for what a well-behaved library will
  not do (stay silent past the keep-alive, send a malformed packet, never read).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5
VERSIONS = [V311, V5]
TIMEOUT = 5.0
HOST = "127.0.0.1"

ANON = "listener {port} 127.0.0.1\nallow_anonymous true\n"
"""The smallest useful configuration: one loopback listener, anonymous clients allowed."""


def version_name(v: int) -> str:
    return "v5" if v == V5 else "v311"


def wait_for(pred: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Polls ``pred`` until it returns a truthy value (returned) or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(0.02)


def stays_false(pred: Callable[[], Any], duration: float) -> bool:
    """True when ``pred`` stays falsy for ``duration`` seconds."""
    end = time.monotonic() + duration
    while time.monotonic() < end:
        if pred():
            return False
        time.sleep(0.02)
    return not pred()


def _port_candidates() -> Iterator[int]:
    """Ports outside the system's ephemeral range (no client socket can take one), a separate
    block for each pytest-xdist worker, each handed out once per process."""
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    low, span = (1024, lo - 1024) if lo - 1024 >= 65536 - (hi + 1) else (hi + 1, 65536 - (hi + 1))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    block = max(span // 16, 100)
    start = low + (index % 16) * block + os.getpid() % 50
    yield from range(start, min(start + block, low + span))


_PORTS = _port_candidates()


def free_port() -> int:
    """A loopback port nothing listens on. Checked by connecting, not binding: asking the
    system for port 0 hands out ports from the range client sockets also use."""
    for port in _PORTS:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, port)) != 0:
                return port
    raise AssertionError("the tests used every port in this worker's block")


def tern_bin() -> str:
    b = os.environ.get("TERN_BIN")
    assert b, "TERN_BIN is not set: run the tests with scripts/test (it builds target/debug/tern)"
    assert os.access(b, os.X_OK), f"TERN_BIN={b} is not an executable; run cargo build first"
    return b


def require_tool(name: str) -> str:
    """The path of a Debian mosquitto tool; fails (never skips) when it is missing."""
    p = shutil.which(name)
    assert p, f"{name} is missing: install Debian's mosquitto and mosquitto-clients (scripts/test does)"
    return p


class Broker:
    """A running ``tern broker -c FILE``; :meth:`stop` (or the fixture) kills it.

    ``{port}``, ``{port2}`` and ``{dir}`` in the configuration text are replaced by two free
    loopback ports and the test's temporary directory.
    """

    def __init__(self, conf: str, workdir: Path, wait: bool = True):
        self.dir = workdir
        self.port = free_port()
        self.port2 = free_port()
        text = (
            conf.replace("{port}", str(self.port))
            .replace("{port2}", str(self.port2))
            .replace("{dir}", str(workdir))
        )
        self.conf_path = workdir / "tern.conf"
        self.conf_path.write_text(text)
        self.log_path = workdir / "broker.log"
        self.stdout_lines: list[str] = []
        self.clients: list[Client] = []
        self._log_file = open(self.log_path, "w")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "debug")
        self.proc = subprocess.Popen(
            [tern_bin(), "broker", "-c", str(self.conf_path)],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        if wait:
            want = f"tern: listening on 127.0.0.1:{self.port} "
            try:
                wait_for(
                    lambda: any(l.startswith(want) for l in self.stdout_lines),
                    15,
                    f"the start-up line {want!r}",
                )
            except AssertionError:
                self.stop()
                raise AssertionError(
                    f"tern did not start: stdout={self.stdout_lines!r}\nlog:\n{self.log()}"
                )

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))

    def log(self) -> str:
        """The broker's stderr so far."""
        self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = TIMEOUT) -> None:
        wait_for(lambda: needle in self.log(), timeout, f"{needle!r} in the broker log")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 10) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()

    def client(self, client_id: str = "", version: int = V311, **kw: Any) -> "Client":
        """A new paho client for this broker (not yet connected)."""
        c = Client(self.port, client_id, version, **kw)
        self.clients.append(c)
        return c

    def connect(self, client_id: str = "", version: int = V311, **kw: Any) -> "Client":
        """A paho client connected to this broker; connection options go to :meth:`Client.connect`."""
        ctor = {k: kw.pop(k) for k in ("clean", "manual_ack", "username", "password") if k in kw}
        c = self.client(client_id, version, **ctor)
        c.connect(**kw)
        return c


@dataclass
class Connack:
    """What a CONNACK told a paho client."""

    session_present: bool
    reason: int  # 5.0 reason code (paho's translation for 3.1.1)
    rc3: int | None  # the 3.1.1 return code byte as received (None for 5.0)
    properties: Properties | None


@dataclass
class Disconnect:
    """An ``on_disconnect`` call: reason from the server's DISCONNECT (5.0) or paho's own."""

    reason: int
    from_server: bool
    properties: Properties | None


class Client:
    """A paho-mqtt 2.x client on a background loop that records what the broker sends.

    The paho client is ``self.mqtt``; tests may call it directly.
    """

    def __init__(
        self,
        port: int,
        client_id: str = "",
        version: int = V311,
        *,
        clean: bool = True,
        manual_ack: bool = False,
        username: str | None = None,
        password: str | None = None,
    ):
        self.port = port
        self.version = version
        self.clean = clean
        self.lock = threading.Condition()
        self.connacks: list[Connack] = []
        self.messages: list[mqtt.MQTTMessage] = []
        self.disconnects: list[Disconnect] = []
        self.subacks: dict[int, list[int]] = {}
        self.suback_props: dict[int, Properties | None] = {}
        self.unsubacks: dict[int, list[int]] = {}
        self.pubacks: dict[int, int] = {}
        self.log_lines: list[str] = []
        self._rc3: int | None = None
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean if version != V5 else None,
            protocol=version,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        m = self.mqtt
        m.on_connect = self._on_connect
        m.on_message = self._on_message
        m.on_disconnect = self._on_disconnect
        m.on_subscribe = self._on_subscribe
        m.on_unsubscribe = self._on_unsubscribe
        m.on_publish = self._on_publish
        m.on_log = self._on_log
        self.looping = False

    # ----- paho callbacks ------------------------------------------------------------
    def _on_log(self, client, userdata, level, buf):  # noqa: ANN001
        with self.lock:
            self.log_lines.append(buf)
            m = re.match(r"Received CONNACK \((\d+), (\d+)\)$", buf)
            if m and self.version != V5:
                self._rc3 = int(m.group(2))

    def _on_connect(self, client, userdata, flags, reason_code, properties):  # noqa: ANN001
        with self.lock:
            self.connacks.append(
                Connack(
                    bool(flags.session_present),
                    reason_code.value,
                    self._rc3,
                    properties if self.version == V5 else None,
                )
            )
            self.lock.notify_all()

    def _on_message(self, client, userdata, message):  # noqa: ANN001
        with self.lock:
            self.messages.append(message)
            self.lock.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):  # noqa: ANN001
        with self.lock:
            self.disconnects.append(
                Disconnect(reason_code.value, bool(flags.is_disconnect_packet_from_server), properties)
            )
            self.lock.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):  # noqa: ANN001
        with self.lock:
            self.subacks[mid] = [r.value for r in reason_codes]
            self.suback_props[mid] = properties
            self.lock.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, reason_codes, properties):  # noqa: ANN001
        with self.lock:
            self.unsubacks[mid] = [r.value for r in reason_codes] if reason_codes else []
            self.lock.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties):  # noqa: ANN001
        with self.lock:
            self.pubacks[mid] = reason_code.value
            self.lock.notify_all()

    # ----- actions -------------------------------------------------------------------
    def connect(
        self,
        *,
        keepalive: int = 60,
        properties: Properties | None = None,
        clean_start: bool | None = None,
        will: tuple | None = None,
        will_properties: Properties | None = None,
        expect: int | None = 0,
        timeout: float = TIMEOUT,
        loop: bool = True,
    ) -> Connack:
        """Connects and waits for the CONNACK. ``expect`` is the reason code the test
        requires (5.0 code, or paho's translation of the 3.1.1 code); ``None`` accepts any.
        ``will`` is ``(topic, payload, qos, retain)``. With ``loop=False`` the network loop is
        driven by :meth:`pump` only (so the client can be made to fall silent)."""
        if will is not None:
            self.mqtt.will_set(*will, properties=will_properties)
        kw: dict[str, Any] = {"keepalive": keepalive}
        if self.version == V5:
            kw["clean_start"] = self.clean if clean_start is None else clean_start
            if properties is not None:
                kw["properties"] = properties
        n = len(self.connacks)
        self.mqtt.connect(HOST, self.port, **kw)
        if loop:
            self.mqtt.loop_start()
            self.looping = True
            wait_for(lambda: len(self.connacks) > n or self.disconnects[n:], timeout, "CONNACK")
        else:
            end = time.monotonic() + timeout
            while len(self.connacks) <= n and time.monotonic() < end:
                self.mqtt.loop(0.05)
        assert len(self.connacks) > n, f"no CONNACK; disconnects={self.disconnects}"
        ack = self.connacks[-1]
        if expect is not None:
            assert ack.reason == expect, f"CONNACK reason {ack.reason:#x}, expected {expect:#x}"
        return ack

    def pump(self, duration: float) -> None:
        """Runs the network loop by hand for ``duration`` seconds (clients with loop=False)."""
        end = time.monotonic() + duration
        while time.monotonic() < end:
            self.mqtt.loop(0.05)

    def subscribe(
        self,
        topic: str,
        qos: int = 0,
        *,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: int = 0,
        sub_id: int | None = None,
    ) -> list[int]:
        """Subscribes and returns the SUBACK codes (granted QoS or failure code)."""
        if self.version == V5:
            opts = SubscribeOptions(
                qos=qos,
                noLocal=no_local,
                retainAsPublished=retain_as_published,
                retainHandling=retain_handling,
            )
            props = None
            if sub_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = sub_id
            rc, mid = self.mqtt.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.mqtt.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        wait_for(lambda: mid in self.subacks, TIMEOUT, f"SUBACK for {topic}")
        return self.subacks[mid]

    def unsubscribe(self, topic: str) -> list[int]:
        rc, mid = self.mqtt.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        wait_for(lambda: mid in self.unsubacks, TIMEOUT, f"UNSUBACK for {topic}")
        return self.unsubacks[mid]

    def publish(
        self,
        topic: str,
        payload: bytes | str | None = b"",
        qos: int = 0,
        retain: bool = False,
        properties: Properties | None = None,
        wait: bool = True,
    ) -> mqtt.MQTTMessageInfo:
        """Publishes; for QoS 1/2 waits (bounded) for the flow to complete."""
        info = self.mqtt.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if wait and qos > 0:
            wait_for(lambda: info.mid in self.pubacks, TIMEOUT, f"PUBACK/PUBCOMP for {topic}")
        return info

    def puback_reason(self, info: mqtt.MQTTMessageInfo) -> int:
        return self.pubacks[info.mid]

    def wait_messages(self, n: int, timeout: float = TIMEOUT, topic: str | None = None) -> list:
        """Waits until at least ``n`` messages (on ``topic`` if given) arrived; returns them."""

        def got():
            ms = self.received(topic)
            return ms if len(ms) >= n else None

        return wait_for(got, timeout, f"{n} message(s) on {topic or 'any topic'} (have {len(self.received(topic))})")

    def received(self, topic: str | None = None) -> list:
        with self.lock:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [m.payload for m in self.received(topic)]

    def quiet_for(self, duration: float, topic: str | None = None) -> bool:
        """True when no (further) message on ``topic`` arrives for ``duration`` seconds."""
        n = len(self.received(topic))
        return stays_false(lambda: len(self.received(topic)) > n, duration)

    def wait_disconnect(self, timeout: float = TIMEOUT) -> Disconnect:
        wait_for(lambda: self.disconnects, timeout, "on_disconnect")
        return self.disconnects[0]

    def disconnect(self, reasoncode: ReasonCode | None = None, properties: Properties | None = None) -> None:
        """A normal DISCONNECT (optionally with a 5.0 reason), then stop the loop."""
        self.mqtt.disconnect(reasoncode=reasoncode, properties=properties)
        if self.looping:
            wait_for(lambda: self.disconnects, TIMEOUT, "local disconnect")
        self.close()

    def drop(self) -> None:
        """Closes the TCP connection without DISCONNECT (an abnormal disconnection)."""
        sock = self.mqtt.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        if self.looping:
            self.looping = False
            self.mqtt.loop_stop()
        sock = self.mqtt.socket()
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


def props(packet_type: int, **values: Any) -> Properties:
    """A paho Properties object: ``props(PacketTypes.PUBLISH, ContentType="text/plain")``."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def reason(packet_type: int, name: str) -> ReasonCode:
    return ReasonCode(packet_type, name)


def connect_persistent(broker, cid, version, expiry=3600, **kw):
    """Connects with a session that outlives the connection (3.1.1 CleanSession 0, 5.0
    Clean Start 0 with a session expiry interval)."""
    if version == V5:
        p = props(PacketTypes.CONNECT, SessionExpiryInterval=expiry)
        c = broker.client(cid, V5, clean=False, **kw)
        c.connect(properties=p)
    else:
        c = broker.client(cid, V311, clean=False, **kw)
        c.connect()
    return c


# ----- a child process holding a paho connection (to be killed) ----------------------------

_CHILD = r"""
import sys, time, json
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
a = json.loads(sys.argv[1])
c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=a["id"], protocol=a["version"],
                clean_session=None if a["version"] == 5 else True)
wp = None
if a.get("will_props"):
    wp = Properties(PacketTypes.WILLMESSAGE)
    for k, v in a["will_props"].items():
        if k == "UserProperty":
            v = [tuple(x) for x in v]
        elif k == "CorrelationData":
            v = v.encode()
        setattr(wp, k, v)
c.will_set(a["topic"], a["payload"], a["qos"], a["retain"], properties=wp)
cp = None
if a.get("expiry") is not None:
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = a["expiry"]
c.on_connect = lambda *x: print("connected", flush=True)
kw = {"properties": cp} if a["version"] == 5 else {}
c.connect("127.0.0.1", a["port"], keepalive=60, **kw)
c.loop_forever()
"""


CHILDREN: list[subprocess.Popen] = []
"""Child processes started by :class:`WillChild`; the conftest kills any left after a test."""


class WillChild:
    """A paho client in a child process with a will, to be killed with SIGKILL: the broker
    sees the network connection end without DISCONNECT, as after a crash."""

    def __init__(self, port: int, client_id: str, version: int, topic: str, payload: str,
                 qos: int = 0, retain: bool = False, will_props: dict | None = None,
                 expiry: int | None = None):
        import json

        arg = json.dumps({"port": port, "id": client_id, "version": version, "topic": topic,
                          "payload": payload, "qos": qos, "retain": retain,
                          "will_props": will_props, "expiry": expiry})
        self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, arg],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        CHILDREN.append(self.proc)
        line: list[str] = []
        t = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(10)
        if not line or "connected" not in line[0]:
            self.proc.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"the will client did not connect: {line!r} {err}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


# ----- raw MQTT bytes --------------------------------------------------------------------


def _vbi(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _vbi(len(body)) + body


def connect_bytes(client_id: str, version: int = V311, keepalive: int = 60, clean: bool = True,
                  will: tuple[str, bytes] | None = None, props: bytes = b"") -> bytes:
    """A CONNECT packet written by hand (``will`` = (topic, payload), QoS 0)."""
    flags = (0x02 if clean else 0) | (0x04 if will else 0)
    body = _str("MQTT") + bytes([4 if version == V311 else 5, flags]) + struct.pack(">H", keepalive)
    if version == V5:
        body += _vbi(len(props)) + props
    body += _str(client_id)
    if will:
        if version == V5:
            body += b"\x00"
        body += _str(will[0]) + _str(will[1])
    return packet(0x10, body)


def subscribe_bytes(pid: int, topic: str, qos: int = 0, version: int = V311) -> bytes:
    body = struct.pack(">H", pid) + (b"\x00" if version == V5 else b"") + _str(topic) + bytes([qos])
    return packet(0x82, body)


class Raw:
    """A raw TCP connection to the broker."""

    def __init__(self, port: int, rcvbuf: int | None = None, timeout: float = TIMEOUT):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect((HOST, port))

    def send(self, b: bytes) -> None:
        self.s.sendall(b)

    def _exact(self, n: int) -> bytes | None:
        out = b""
        while len(out) < n:
            try:
                chunk = self.s.recv(n - len(out))
            except (socket.timeout, ConnectionResetError):
                return None
            if not chunk:
                return None
            out += chunk
        return out

    def recv(self) -> bytes | None:
        """One whole packet, or None on EOF/timeout."""
        first = self._exact(1)
        if first is None:
            return None
        head = first
        n, mult = 0, 1
        while True:
            b = self._exact(1)
            if b is None:
                return None
            head += b
            n += (b[0] & 0x7F) * mult
            mult *= 128
            if not b[0] & 0x80:
                break
        body = self._exact(n) if n else b""
        return None if body is None else head + body

    def closed_within(self, timeout: float) -> float | None:
        """Seconds until the broker closed the connection (reading and discarding whatever
        arrives), or None if it was still open after ``timeout``."""
        start = time.monotonic()
        self.s.settimeout(0.1)
        while time.monotonic() - start < timeout:
            try:
                if self.s.recv(65536) == b"":
                    return time.monotonic() - start
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - start
        return None

    def close(self) -> None:
        self.s.close()


class Mosquitto:
    """Debian's real ``mosquitto`` with the same configuration text, for differential tests
    (what tern must match). Fails, never skips, when mosquitto is missing."""

    def __init__(self, conf: str, workdir: Path):
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        assert exe, "mosquitto is missing: install Debian's mosquitto (scripts/test does)"
        self.port = free_port()
        self.conf_path = workdir / "mosquitto.conf"
        self.conf_path.write_text(conf.replace("{port}", str(self.port)).replace("{dir}", str(workdir)))
        self.log_path = workdir / "mosquitto.log"
        self._log = open(self.log_path, "w")
        self.clients: list[Client] = []
        self.proc = subprocess.Popen([exe, "-c", str(self.conf_path)], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection((HOST, self.port), 0.2).close()
                return True
            except OSError:
                return False

        wait_for(up, 10, "mosquitto to listen")

    def connect(self, client_id: str = "", version: int = V311, **kw: Any) -> Client:
        ctor = {k: kw.pop(k) for k in ("clean", "manual_ack", "username", "password") if k in kw}
        c = Client(self.port, client_id, version, **ctor)
        self.clients.append(c)
        c.connect(**kw)
        return c

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()
