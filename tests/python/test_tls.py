"""paho-mqtt 2.x over TLS against tern's TLS listener, with certificates from ``tern pki ca``
and ``tern pki server`` (the "Encryption: TLS listeners and a one-command PKI" issue).

``tls_set(ca_certs=...)`` with MQTT 3.1.1 and 5.0, by IP and by name; a TLS 1.2-only
context; a client that trusts another CA (refused, and the broker logs why once); client
certificates with ``use_identity_as_username``. Everything on 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import ssl
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from helpers import HOST, TIMEOUT, V311, tern_bin, wait_for

UNKNOWN_CA = (
    "TLS handshake failed: the client does not trust the broker's certificate (unknown CA): "
    "give the client the CA that signed it (ca.crt)"
)


def tern(*args: str) -> str:
    r = subprocess.run([tern_bin(), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"tern {args} failed: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA and a server certificate for localhost / 127.0.0.1, made with tern pki."""
    d = tmp_path / "pki"
    tern("pki", "ca", "--dir", str(d))
    tern("pki", "server", "--dir", str(d), "--host", "localhost", "--ip", "127.0.0.1")
    return d


def tls_listener(pki: Path, extra: str = "") -> str:
    return (
        "listener {port} 127.0.0.1\n"
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        f"{extra}"
    )


@pytest.fixture
def tls_broker(make_broker, pki: Path):
    return make_broker("allow_anonymous true\n" + tls_listener(pki))


def test_tls_set_ca_certs_pub_sub(tls_broker, pki: Path, version: int) -> None:
    sub = tls_broker.client("tls-sub", version)
    sub.mqtt.tls_set(ca_certs=str(pki / "ca.crt"))
    sub.connect()
    sock = sub.mqtt.socket()
    assert isinstance(sock, ssl.SSLSocket)
    assert sock.version() == "TLSv1.3"
    assert sub.subscribe("tls/paho", 1) == [1]
    pub = tls_broker.client("tls-pub", version)
    pub.mqtt.tls_set(ca_certs=str(pki / "ca.crt"))
    pub.connect()
    pub.publish("tls/paho", b"over TLS", qos=1)
    wait_for(lambda: sub.messages, TIMEOUT, "the message over TLS")
    assert sub.messages[0].topic == "tls/paho"
    assert sub.messages[0].payload == b"over TLS"
    assert "TLS handshake failed" not in tls_broker.log()


def test_tls_by_host_name(tls_broker, pki: Path, version: int) -> None:
    """paho checks the host name: "localhost" is in the certificate's subjectAltName."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="by-name", protocol=version)
    c.tls_set(ca_certs=str(pki / "ca.crt"))
    try:
        rc = c.connect("localhost", tls_broker.port, keepalive=30)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert c.socket().getpeercert()["subject"] == ((("commonName", "localhost"),),)
    finally:
        c.disconnect()
        s = c.socket()
        if s is not None:
            s.close()


def test_tls12_only_client(tls_broker, pki: Path) -> None:
    """A client limited to TLS 1.2 and one ECDHE-ECDSA AES-GCM suite (as small devices are)."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    c = tls_broker.client("tls12", V311)
    c.mqtt.tls_set_context(ctx)
    c.connect()
    sock = c.mqtt.socket()
    assert sock.version() == "TLSv1.2"
    assert sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert c.subscribe("tls12/t") == [0]


def test_other_ca_is_refused_and_logged_once(tls_broker, tmp_path: Path) -> None:
    other = tmp_path / "other"
    tern("pki", "ca", "--dir", str(other), "--cn", "Other CA")
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wrong-ca")
    c.tls_set(ca_certs=str(other / "ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect(HOST, tls_broker.port, keepalive=30)
    tls_broker.wait_log(UNKNOWN_CA)
    time.sleep(0.5)
    assert tls_broker.log().count(UNKNOWN_CA) == 1, tls_broker.log()


def test_client_certificate_cn_is_the_user_name(make_broker, pki: Path, version: int) -> None:
    """use_identity_as_username: the ACL grants secret/# to ``user sensor-1`` only."""
    tern("pki", "client", "sensor-1", "--dir", str(pki))
    tern("pki", "client", "sensor-2", "--dir", str(pki))
    acl = pki.parent / "acl"
    acl.write_text("user sensor-1\ntopic readwrite secret/#\n")
    b = make_broker(
        f"allow_anonymous false\nacl_file {acl}\n"
        + tls_listener(pki, "require_certificate true\nuse_identity_as_username true\n")
    )
    granted = 1
    denied = 0x80 if version == V311 else 0x87
    for name, want in [("sensor-1", granted), ("sensor-2", denied)]:
        c = b.client(f"{name}-paho", version)
        c.mqtt.tls_set(
            ca_certs=str(pki / "ca.crt"),
            certfile=str(pki / f"{name}.crt"),
            keyfile=str(pki / f"{name}.key"),
        )
        c.connect()
        assert c.subscribe("secret/x", 1) == [want], name
        c.disconnect()
    # Without a certificate there is no MQTT session: the broker ends the TLS connection
    # (with TLS 1.3 the client learns it on its first read) and says why.
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="no-cert", protocol=version)
    c.tls_set(ca_certs=str(pki / "ca.crt"))
    connacks: list[object] = []
    c.on_connect = lambda *a: connacks.append(a)
    try:
        c.connect(HOST, b.port, keepalive=30)
        end = time.monotonic() + 3
        while time.monotonic() < end and c.loop(0.1) == mqtt.MQTT_ERR_SUCCESS:
            pass
    except (ssl.SSLError, OSError):
        pass
    finally:
        s = c.socket()
        if s is not None:
            s.close()
    assert connacks == []
    b.wait_log("TLS handshake failed: the client sent no certificate, but require_certificate is true")
