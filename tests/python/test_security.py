"""``password_file`` (made by Debian's ``mosquitto_passwd``) and ``acl_file`` basics with
paho-mqtt: good and bad passwords, anonymous clients, denied publishes and subscriptions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers import V311, V5, require_tool

ACL = """\
# anonymous clients: nothing
user alice
topic readwrite home/alice/#
topic read public/#
topic deny home/alice/secret

user bob
topic readwrite public/#
topic read home/alice/#
"""


@pytest.fixture
def secure(make_broker, tmp_path: Path):
    """tern with a password file made by ``mosquitto_passwd`` (alice/wonderland,
    bob/builder) and the ACL above; anonymous clients refused."""
    tool = require_tool("mosquitto_passwd")
    pw = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(pw), "alice", "wonderland"], check=True, timeout=10)
    subprocess.run([tool, "-b", str(pw), "bob", "builder"], check=True, timeout=10)
    assert pw.read_text().startswith("alice:$7$"), "mosquitto_passwd writes PBKDF2-SHA512 hashes"
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    return make_broker(
        "per_listener_settings false\n"
        f"password_file {pw}\nacl_file {acl}\nallow_anonymous false\n"
        "listener {port} 127.0.0.1\n"
    )


def test_user_from_mosquitto_passwd_connects(secure, version):
    """A user and password from a file written by ``mosquitto_passwd`` are accepted."""
    c = secure.client("pw-ok", version, username="alice", password="wonderland")
    ack = c.connect()
    if version == V311:
        assert ack.rc3 == 0


@pytest.mark.parametrize("user, password", [("alice", "Wonderland"), ("alice", ""), ("mallory", "x")])
def test_wrong_password_refused_rc4_or_0x86(secure, version, user, password):
    """A wrong password, or an unknown user, gets 3.1.1 return code 4 / 5.0 reason 0x86
    (bad user name or password) and the connection is closed."""
    c = secure.client("pw-bad", version, username=user, password=password)
    ack = c.connect(expect=None)
    if version == V5:
        assert ack.reason == 0x86
    else:
        assert ack.rc3 == 4
    c.wait_disconnect()


def test_anonymous_refused_with_password_file(secure, version):
    """No user name with ``allow_anonymous false``: 3.1.1 return code 5 / 5.0 reason 0x87."""
    c = secure.client("pw-anon", version)
    ack = c.connect(expect=None)
    if version == V5:
        assert ack.reason == 0x87
    else:
        assert ack.rc3 == 5


def test_acl_denied_subscription_gets_0x80_or_0x87_mqtt_3_9_3(secure, version):
    """A subscription the ACL does not allow gets SUBACK 0x80 (3.1.1 failure) / 0x87 (5.0 not
    authorized) (section 3.9.3); allowed filters in the same client are granted."""
    a = secure.client("acl-sub", version, username="alice", password="wonderland")
    a.connect()
    assert a.subscribe("home/alice/#", 1) == [1]
    assert a.subscribe("home/bob/#", 1) == [0x87 if version == V5 else 0x80]


def test_acl_denied_publish_is_dropped(secure, version):
    """A publish to a topic the user may only read is dropped: subscribers never see it
    (3.1.1 still gets a normal PUBACK, 5.0 gets 0x87, as Mosquitto 2 does); an allowed
    publish goes through."""
    alice = secure.client("acl-alice", version, username="alice", password="wonderland")
    alice.connect()
    bob = secure.client("acl-bob", version, username="bob", password="builder")
    bob.connect()
    assert bob.subscribe("public/#", 1) == [1]
    assert alice.subscribe("public/#", 1) == [1]
    denied = alice.publish("public/news", b"from alice", qos=1)
    if version == V5:
        assert alice.puback_reason(denied) == 0x87
    bob.publish("public/news", b"from bob", qos=1)
    assert alice.wait_messages(1)[0].payload == b"from bob"
    bob.wait_messages(1)
    assert bob.quiet_for(0.5)
    assert bob.payloads() == [b"from bob"]


def test_acl_deny_line_wins_for_read(secure, version):
    """``topic deny home/alice/secret``: even with ``readwrite home/alice/#`` alice neither
    receives nor can publish that topic; bob (read home/alice/#) does not get it either."""
    alice = secure.client("deny-alice", version, username="alice", password="wonderland")
    alice.connect()
    bob = secure.client("deny-bob", version, username="bob", password="builder")
    bob.connect()
    alice.subscribe("home/alice/#", 1)
    bob.subscribe("home/alice/#", 1)
    alice.publish("home/alice/secret", b"hidden", qos=1)
    alice.publish("home/alice/open", b"visible", qos=1)
    assert bob.wait_messages(1)[0].payload == b"visible"
    alice.wait_messages(1)
    assert alice.quiet_for(0.5) and bob.quiet_for(0.1)
    assert alice.payloads() == [b"visible"] and bob.payloads() == [b"visible"]
