"""Smoke test: paho-mqtt 2.x (3.1.1 and 5.0) publishes and subscribes through the real tern broker."""
import os
import queue
import re
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

TERN = os.environ.get("TERN_BIN", "target/debug/tern")


@pytest.fixture
def tern_port():
    proc = subprocess.Popen([TERN, "broker", "-p", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = None
    deadline = time.time() + 15
    while time.time() < deadline and port is None:
        line = proc.stdout.readline()
        m = re.match(r"tern: listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
    assert port, "tern broker did not report a listener"
    yield port
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_publish_subscribe_round_trip(tern_port, version):
    got = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="smoke-sub", protocol=version)
    sub.on_message = lambda c, u, m: got.put((m.topic, m.payload, m.qos))
    subscribed = queue.Queue()
    sub.on_subscribe = lambda c, u, mid, codes, props: subscribed.put(codes)
    sub.connect("127.0.0.1", tern_port)
    sub.loop_start()
    sub.subscribe("smoke/#", qos=1)
    codes = subscribed.get(timeout=5)
    assert [int(getattr(c, "value", c)) for c in codes] == [1]
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="smoke-pub", protocol=version)
    pub.connect("127.0.0.1", tern_port)
    pub.loop_start()
    pub.publish("smoke/a", b"hello", qos=1).wait_for_publish(timeout=5)
    assert got.get(timeout=5) == ("smoke/a", b"hello", 1)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
