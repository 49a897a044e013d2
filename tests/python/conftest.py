"""pytest fixtures: a real ``tern broker`` per test, killed afterwards with its clients.

``TERN_BIN`` names the binary (scripts/test sets it to target/debug/tern).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from helpers import ANON, CHILDREN, V311, V5, Broker, Mosquitto, version_name


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """A factory: ``make_broker(conf_text)`` starts tern with that mosquitto.conf text."""
    started: list[Broker] = []

    def start(conf: str = ANON, wait: bool = True) -> Broker:
        d = tmp_path / f"b{len(started)}"
        d.mkdir()
        b = Broker(conf, d, wait=wait)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """tern with one anonymous loopback listener and default limits."""
    return make_broker(ANON)


@pytest.fixture(autouse=True)
def _reap_children() -> Iterator[None]:
    """Kills will-client child processes a failed test left running."""
    yield
    while CHILDREN:
        p = CHILDREN.pop()
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.fixture(params=[V311, V5], ids=version_name)
def version(request: pytest.FixtureRequest) -> int:
    """Runs a test once with MQTT 3.1.1 and once with MQTT 5.0."""
    return request.param


@pytest.fixture
def make_mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """A factory for Debian's real mosquitto with a configuration text (differential tests)."""
    started: list[Mosquitto] = []

    def start(conf: str = ANON) -> Mosquitto:
        d = tmp_path / f"m{len(started)}"
        d.mkdir()
        m = Mosquitto(conf, d)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()
