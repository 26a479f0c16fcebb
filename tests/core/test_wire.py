"""Wire schema: property tests for the parser and round-trips for every message type."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.assets import UNITS, Quantity
from core.errors import WireError
from core.wire import (
    BirthMessage,
    DeathMessage,
    FeatureFrame,
    Limits,
    MessageType,
    Prediction,
    ReadingBatch,
    StatusReport,
    _decode_checked,
    _decode_fast,
    check_limits,
    decode,
    encode,
    parse_topic,
    topic_for,
    utcnow,
)

ids = st.from_regex(r"[A-Za-z0-9_\-]{1,20}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e9, max_value=1e9)
aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def reading_batches(draw: st.DrawFn) -> ReadingBatch:
    q = draw(st.sampled_from(list(Quantity)))
    return ReadingBatch(
        publisher=draw(ids), seq=draw(st.integers(0, 2**62)), asset_id=draw(ids), channel=draw(ids),
        quantity=q, unit=draw(st.sampled_from(sorted(UNITS[q]))),
        sample_rate_hz=draw(st.floats(0.001, 1e6)), start=draw(aware),
        values=draw(st.lists(finite, min_size=1, max_size=50)), historical=draw(st.booleans()),
    )


@st.composite
def predictions(draw: st.DrawFn) -> Prediction:
    lo, mid, hi = sorted(draw(st.lists(st.floats(0, 1e5), min_size=3, max_size=3)))
    return Prediction(
        publisher=draw(ids), seq=draw(st.integers(0, 2**40)), asset_id=draw(ids), model_name="transformer",
        model_version=draw(ids), at=draw(aware), rul_median=mid, rul_lower=lo, rul_upper=hi,
        coverage=draw(st.floats(0.01, 0.99)), health_index=draw(st.none() | st.floats(0, 1)),
    )


@given(st.binary(max_size=2000))
@settings(max_examples=400)
def test_arbitrary_bytes_give_message_or_wire_error(payload: bytes) -> None:
    try:
        decode(payload)
    except WireError as err:
        assert err.reason in {"malformed", "invalid", "oversize"}
        assert err.detail


@given(st.recursive(st.none() | st.booleans() | finite | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=10), c, max_size=5),
                    max_leaves=30))
@settings(max_examples=300)
def test_arbitrary_json_gives_message_or_wire_error(obj: object) -> None:
    try:
        decode(json.dumps(obj).encode(), "genedge/v1/plant1/pump-01/readings")
    except WireError as err:
        assert err.reason in {"malformed", "invalid", "topic_mismatch"}


@given(reading_batches())
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_reading_round_trip(msg: ReadingBatch) -> None:
    assert decode(encode(msg), topic_for("s1", msg.asset_id, "readings")) == msg


@given(predictions())
def test_prediction_round_trip(msg: Prediction) -> None:
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize(
    "msg",
    [
        FeatureFrame(publisher="edge-01", seq=1, asset_id="P-101", window_start=utcnow(), window_s=1.0,
                     features={"vib_de": {"rms": 0.3, "kurtosis": 3.1}}),
        StatusReport(publisher="edge-01", seq=2, asset_id="P-101", state="online", uptime_s=12.5, queue_depth=3),
        BirthMessage(publisher="edge-01", seq=0, asset_id="P-101", channels=["vib_de"]),
        DeathMessage(publisher="edge-01", seq=9, asset_id="P-101", reason="shutdown"),
    ],
)
def test_other_types_round_trip(msg: object) -> None:
    assert decode(encode(msg)) == msg  # type: ignore[arg-type]


@given(reading_batches())
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
def test_valid_messages_take_the_one_pass_path(msg: ReadingBatch) -> None:
    raw = encode(msg)
    assert _decode_fast(raw) == _decode_checked(raw) == msg


@given(st.binary(max_size=2000) | st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=10), c, max_size=5),
    max_leaves=30).map(lambda o: json.dumps(o).encode()))
@settings(max_examples=300)
def test_the_one_pass_path_accepts_only_what_the_checked_path_accepts(payload: bytes) -> None:
    """Any payload the fast path takes is the same message the checked path makes of it; anything
    else goes to the checked path, which names what is wrong (NaN included)."""
    fast = _decode_fast(payload)
    if fast is not None:
        assert _decode_checked(payload) == fast


def test_payloads_the_fast_path_refuses_keep_their_reasons() -> None:
    good = json.loads(encode(ReadingBatch(publisher="p", seq=1, asset_id="a", channel="c", quantity="acceleration",
                                          unit="g", sample_rate_hz=10.0, start=utcnow(), values=[1.0, 2.0])))
    cases = {
        b"\xff\xfe": "malformed",
        b"[1, 2]": "malformed",
        json.dumps({**good, "values": [1.0, float("nan")]}).encode(): "malformed",
        json.dumps({**good, "values": []}).encode(): "invalid",
    }
    for raw, reason in cases.items():
        assert _decode_fast(raw) is None
        with pytest.raises(WireError) as err:
            decode(raw)
        assert err.value.reason == reason


@given(st.text(max_size=80))
def test_parse_topic_total(topic: str) -> None:
    try:
        t = parse_topic(topic)
    except WireError as err:
        assert err.reason == "unknown_topic"
    else:
        assert str(t) == topic


def test_topic_scheme() -> None:
    assert topic_for("plant1", "P-101", MessageType.READINGS) == "genedge/v1/plant1/P-101/readings"
    assert parse_topic("genedge/v1/plant1/P-101/prediction").type is MessageType.PREDICTION


def _reading(**kw: object) -> dict[str, object]:
    base = json.loads(encode(ReadingBatch(publisher="p", seq=1, asset_id="a", channel="c", quantity="temperature",
                                          unit="degC", sample_rate_hz=1, start=utcnow(), values=[20.0])))
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("change", "reason", "needle"),
    [
        ({"unit": "g"}, "invalid", "unit 'g' is wrong for quantity 'temperature'"),
        ({"values": []}, "invalid", "values"),
        ({"seq": -1}, "invalid", "seq"),
        ({"v": 2}, "invalid", "v"),
        ({"extra": 1}, "invalid", "extra"),
        ({"start": "2026-01-01T00:00:00"}, "invalid", "timezone"),
    ],
)
def test_invalid_messages_say_what_is_wrong(change: dict[str, object], reason: str, needle: str) -> None:
    with pytest.raises(WireError) as exc:
        decode(json.dumps(_reading(**change)).encode())
    assert exc.value.reason == reason
    assert needle in exc.value.detail


def test_nan_and_infinity_rejected() -> None:
    for token in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps(_reading()).replace("[20.0]", f"[{token}]").encode()
        with pytest.raises(WireError, match="not allowed"):
            decode(raw)


def test_oversize_rejected_before_parsing() -> None:
    with pytest.raises(WireError) as exc:
        decode(b"{" + b" " * 100 + b"}", max_bytes=50)
    assert exc.value.reason == "oversize"


def test_limits_future_and_range() -> None:
    now = utcnow()
    future = ReadingBatch(publisher="p", seq=1, asset_id="a", channel="c", quantity="temperature", unit="degC",
                          sample_rate_hz=1, start=now + timedelta(hours=1), values=[20.0])
    with pytest.raises(WireError, match="in the future"):
        check_limits(future, Limits(max_future_s=60), now=now)
    hot = future.model_copy(update={"start": now, "values": [20.0, 900.0]})
    with pytest.raises(WireError, match=r"must lie in \[-50.0, 200.0\]"):
        check_limits(hot, Limits(channel_ranges={("a", "c"): (-50.0, 200.0)}), now=now)
    check_limits(hot, Limits(), now=now)  # within the global bound


def test_prediction_interval_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="lower <= median <= upper"):
        Prediction(publisher="p", seq=1, asset_id="a", model_name="m", model_version="1", at=utcnow(),
                   rul_median=10, rul_lower=20, rul_upper=30, coverage=0.9)
    assert math.isfinite(Prediction(publisher="p", seq=1, asset_id="a", model_name="m", model_version="1",
                                    at=utcnow(), rul_median=10, rul_lower=5, rul_upper=30, coverage=0.9).rul_upper)


def test_share_of_life_predictions_stay_within_100_percent() -> None:
    """``%`` is the share of life left: a model sending more than 100 is broken, and its message is refused
    (ingest dead-letters it with this reason) rather than stored as a RUL."""
    base = {"publisher": "p", "seq": 1, "asset_id": "a", "model_name": "femto-bearing", "model_version": "v1",
            "at": utcnow(), "rul_unit": "%", "coverage": 0.9}
    ok = Prediction(**base, rul_median=40, rul_lower=10, rul_upper=100, rul_cap=100)
    assert not ok.at_cap, "100 % of life is as new, not a model cap"
    assert Prediction(**{**base, "rul_unit": "h"}, rul_median=100, rul_lower=10, rul_upper=150, rul_cap=100).at_cap
    with pytest.raises(ValueError, match="at most 100 %"):
        Prediction(**base, rul_median=40, rul_lower=10, rul_upper=130)
    payload = ok.model_dump_json().replace('"rul_upper":100.0', '"rul_upper":101.0').encode()
    with pytest.raises(WireError) as err:
        decode(payload, topic_for("plant1", "a", "prediction"))
    assert "at most 100 %" in str(err.value)
    with pytest.raises(ValueError, match="rul_unit"):
        Prediction(**{**base, "rul_unit": "days"}, rul_median=4, rul_lower=1, rul_upper=9)
