"""Message factories for tests: good readings and a zoo of bad messages."""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NoReturn

import pytest

from core.settings import MqttSettings
from core.wire import ReadingBatch, encode, topic_for, utcnow
from genedge.localservices import Mosquitto

SITE = "plant1"


def good_reading(publisher: str, seq: int, asset: str = "pump-01", n: int = 32) -> ReadingBatch:
    rng = random.Random(seq)
    return ReadingBatch(
        publisher=publisher,
        seq=seq,
        asset_id=asset,
        channel="vib_de",
        quantity="acceleration",
        unit="g",
        sample_rate_hz=25600.0,
        start=utcnow(),
        values=[rng.gauss(0.0, 0.3) for _ in range(n)],
    )


def bad_message(i: int, publisher: str = "bad") -> tuple[str, bytes, str]:
    """The i-th malformed message: (topic, payload, expected dead-letter reason)."""
    topic = topic_for(SITE, "pump-01", "readings")
    base = json.loads(encode(good_reading(publisher, 10_000_000 + i)))
    kind = i % 9
    if kind == 0:
        return topic, b"\x00\xffnot json" + str(i).encode(), "malformed"
    if kind == 1:
        return topic, json.dumps(base).replace("[", "[NaN, ", 1).encode(), "malformed"
    if kind == 2:
        base["unit"] = "degC"
        return topic, json.dumps(base).encode(), "invalid"
    if kind == 3:
        base["start"] = (utcnow() + timedelta(days=2)).isoformat()
        return topic, json.dumps(base).encode(), "out_of_range"
    if kind == 4:
        return topic, b'{"pad": "' + b"x" * 2_100_000 + str(i).encode() + b'"}', "oversize"
    if kind == 5:
        return f"genedge/v1/{SITE}/pump-01/bogus", json.dumps(base).encode(), "unknown_topic"
    if kind == 6:
        return topic_for(SITE, "fan-09", "readings"), json.dumps(base).encode(), "topic_mismatch"
    if kind == 7:
        base["values"][0] = 1e12
        return topic, json.dumps(base).encode(), "out_of_range"
    del base["sample_rate_hz"]
    return topic, json.dumps(base).encode(), "invalid"


def minimal_card(**overrides: Any) -> dict[str, Any]:
    """The smallest valid model card dict (a C-MAPSS FD001 transformer); ``overrides`` replace top-level fields."""
    card: dict[str, Any] = {
        "model": "transformer",
        "dataset": {"name": "cmapss", "subset": "FD001"},
        "preprocessing": {"window": 30, "rul_cap": 125, "normalizer": {}},
    }
    card.update(overrides)
    return card


def mqtt_settings(broker: Mosquitto) -> MqttSettings:
    """Settings of a client of the test's real broker."""
    return MqttSettings(host="127.0.0.1", port=broker.port, embedded=False)


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; its last answer."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


class ListSink:
    """A unit test's collaborator standing in for the publisher: keeps what the agent sends."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._seq = itertools.count()

    def next_seq(self) -> int:
        return next(self._seq)

    def send(self, message: Any) -> bool:
        self.messages.append(message)
        return True


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose real part (dataset, model) is missing here; fail in CI, which installs them all."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs every real part: a missing one is a broken setup)")
    pytest.skip(reason)
