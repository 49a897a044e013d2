"""Bad input that tests/BAD-INPUT.md listed without a test: a will topic deeper than the
broker's 200-level limit, an MQTT 3.1 client id over 23 bytes, a response topic with a
wildcard, a configuration file that is not UTF-8, a missing ACL file or CA file, a bad
configuration at SIGHUP, and silent TCP on a TLS port. Each asserts what the user sees; the
broker keeps serving the others. Raw bytes on 127.0.0.1, bounded in time.
"""

from __future__ import annotations

import signal
import struct
import subprocess
from pathlib import Path

from helpers import ANON, V311, V5, Raw, _str, _vbi, connect_bytes, packet, tern_bin


def connack_code(p: bytes | None) -> int:
    assert p is not None and p[0] == 0x20, f"CONNACK expected: {p!r}"
    return p[3]


def still_serves(broker) -> None:
    r = Raw(broker.port)
    r.send(connect_bytes("bystander"))
    assert connack_code(r.recv()) == 0
    r.close()


def test_will_topic_deeper_than_200_levels_is_refused(broker, version: int) -> None:
    """tern (like Mosquitto) limits topics to 200 levels; a will topic beyond that is refused
    at CONNECT: 5.0 0x90 Topic Name invalid, 3.1.1 return code 3 (no better code exists)."""
    deep = "/".join(["a"] * 201)
    r = Raw(broker.port)
    r.send(connect_bytes("deep-will", version, will=(deep, b"bye")))
    assert connack_code(r.recv()) == (0x90 if version == V5 else 3)
    assert r.closed_within(5) is not None
    still_serves(broker)


def test_mqtt31_client_id_over_23_bytes_is_rejected_rc2(broker) -> None:
    """MQTT 3.1 (protocol name MQIsdp, level 3) allows client ids of 1 to 23 bytes; a longer
    one gets return code 2, identifier rejected."""
    for cid, want in [("x" * 24, 2), ("x" * 23, 0)]:
        body = _str("MQIsdp") + bytes([3, 0x02]) + struct.pack(">H", 60) + _str(cid)
        r = Raw(broker.port)
        r.send(packet(0x10, body))
        assert connack_code(r.recv()) == want, cid
        r.close()
    still_serves(broker)


def test_response_topic_with_a_wildcard_is_a_protocol_error_mqtt_3_3_2_14(broker) -> None:
    """[MQTT-3.3.2-14] the Response Topic must not contain wildcards: the broker sends
    DISCONNECT 0x82 (protocol error) and closes; nothing is delivered."""
    watcher = broker.connect("rt-watch", V5)
    watcher.subscribe("rt/#", 0)
    r = Raw(broker.port)
    r.send(connect_bytes("rt-bad", V5))
    assert connack_code(r.recv()) == 0
    props = bytes([0x08]) + _str("reply/+")
    body = _str("rt/x") + _vbi(len(props)) + props + b"payload"
    r.send(packet(0x30, body))
    d = r.recv()
    assert d is not None and d[0] == 0xE0 and d[2] == 0x82, f"DISCONNECT 0x82 expected: {d!r}"
    assert r.closed_within(5) is not None
    assert watcher.quiet_for(0.5, "rt/x")
    still_serves(broker)


def test_config_file_that_is_not_utf8_stops_start_up(make_broker) -> None:
    b = make_broker(ANON + "# caf\xe9\n", wait=False)
    b.conf_path.write_bytes(b.conf_path.read_bytes().replace("\xe9".encode(), b"\xe9"))
    b.stop()
    r = subprocess.run(
        [tern_bin(), "broker", "-c", str(b.conf_path)], capture_output=True, text=True, timeout=20
    )
    assert r.returncode != 0
    assert str(b.conf_path) in r.stderr and "UTF-8" in r.stderr, r.stderr


def test_missing_acl_file_and_missing_cafile_stop_start_up(make_broker, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "acl"
    b = make_broker(ANON + f"acl_file {missing}\n", wait=False)
    assert b.wait_exit(10) != 0
    assert str(missing) in b.log() and "ACL file" in b.log(), b.log()
    ca = tmp_path / "nowhere" / "ca.crt"
    subprocess.run([tern_bin(), "pki", "ca", "--dir", str(tmp_path / "pki")], check=True,
                   capture_output=True, timeout=60)
    subprocess.run([tern_bin(), "pki", "server", "--dir", str(tmp_path / "pki"), "--host", "localhost"],
                   check=True, capture_output=True, timeout=60)
    b = make_broker(
        ANON + f"listener {{port2}} 127.0.0.1\ncafile {ca}\ncertfile {tmp_path / 'pki' / 'server.crt'}\n"
        f"keyfile {tmp_path / 'pki' / 'server.key'}\n",
        wait=False,
    )
    assert b.wait_exit(10) != 0
    assert str(ca) in b.log(), b.log()


def test_bad_configuration_at_sighup_keeps_the_running_one(broker) -> None:
    """A mistake put in the file and then SIGHUP: the broker says the configuration was not
    reloaded, names FILE:LINE, and keeps serving with the running one (as Debian's Mosquitto
    2.0.11 does)."""
    text = broker.conf_path.read_text()
    broker.conf_path.write_text(text + "no_such_option 1\n")
    line = len((text + "no_such_option 1\n").splitlines())
    broker.signal(signal.SIGHUP)
    broker.wait_log("configuration not reloaded, the running one stays")
    assert f"{broker.conf_path}:{line}" in broker.log()
    assert broker.proc.poll() is None
    still_serves(broker)


def test_silent_tcp_on_a_tls_port_is_closed_after_connect_timeout(make_broker, tmp_path: Path) -> None:
    """A client that opens TCP to a TLS listener and sends nothing holds no resources past
    connect_timeout."""
    d = tmp_path / "pki"
    subprocess.run([tern_bin(), "pki", "ca", "--dir", str(d)], check=True, capture_output=True, timeout=60)
    subprocess.run([tern_bin(), "pki", "server", "--dir", str(d), "--host", "localhost"], check=True,
                   capture_output=True, timeout=60)
    b = make_broker(
        f"allow_anonymous true\nconnect_timeout 1\nlistener {{port}} 127.0.0.1\n"
        f"certfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\n"
    )
    r = Raw(b.port)
    closed = r.closed_within(8)
    assert closed is not None, "the silent connection was never closed"
    assert 0.5 < closed < 6, closed


def _pki(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    subprocess.run([tern_bin(), "pki", "ca", "--dir", str(d)], check=True, capture_output=True, timeout=60)
    subprocess.run([tern_bin(), "pki", "server", "--dir", str(d), "--host", "localhost"], check=True,
                   capture_output=True, timeout=60)
    return d


def test_bad_tls_files_stop_start_up_naming_the_file(make_broker, tmp_path: Path) -> None:
    """A certfile that is missing, a crlfile that is not PEM, and require_certificate without
    a CA each stop start-up (exit non-zero, nothing listening) with a message naming the file
    or the option."""
    d = _pki(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("this is not PEM\n")
    cases = [
        (f"certfile {tmp_path / 'missing.crt'}\nkeyfile {d / 'server.key'}\n", str(tmp_path / "missing.crt")),
        (f"certfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\ncafile {d / 'ca.crt'}\n"
         f"require_certificate true\ncrlfile {junk}\n", str(junk)),
        (f"certfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\nrequire_certificate true\n",
         "require_certificate"),
    ]
    for lines, named in cases:
        b = make_broker("allow_anonymous true\nlistener {port} 127.0.0.1\n" + lines, wait=False)
        assert b.wait_exit(10) != 0, lines
        assert named in b.log(), f"{lines}\n{b.log()}"
        assert not [l for l in b.stdout_lines if l.startswith("tern: listening")]
