"""Alarms from feature frames and RUL predictions: limits shared with the charts, chatter control,
RUL escalation with re-annunciation, diagnosis text, and the EEMUA 191 KPI view."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from core.errors import StoreError
from core.settings import AlarmSettings, IngestSettings
from core.sim import default_plant
from core.wire import FeatureFrame, Message, Prediction, ReadingBatch, RulUnit, utcnow
from dashboard._limits import channel_limits as chart_limits
from ingest.alarms import MAX_MESSAGE, AlarmEvaluator, diagnose
from ingest.store import Store, actions, queries
from ingest.store.models import Asset

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
NO_DELAY = AlarmSettings(on_delay_frames=1, off_delay_frames=1, deadband_pct=0.0, rul_on_delay=1, rul_off_delay=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'alarms.db'}") as s:
        s.upsert_assets(default_plant())
        yield s


class _Feed:
    """Frames of one asset, one per second of data time, stored and then judged as ingest does."""

    def __init__(self, store: Store, ev: AlarmEvaluator, asset_id: str = "P-102") -> None:
        self.store, self.ev, self.asset_id, self.seq = store, ev, asset_id, 0

    def at(self, i: int | None = None) -> datetime:
        return T0 + timedelta(seconds=self.seq if i is None else i)

    def send(self, features: dict[str, dict[str, float]], *extra: Message) -> None:
        frame = FeatureFrame(publisher="edge-01", seq=self.seq, asset_id=self.asset_id, window_start=self.at(),
                             window_s=1.0, features=features)
        self.seq += 1
        messages: list[Message] = [frame, *extra]
        self.store.write([(m, self.at()) for m in messages])
        self.ev.evaluate(messages)

    def vib(self, rms: float, **more: float) -> None:
        self.send({"vib_de": {"rms": rms, "crest": 3.0, **more}})

    def baseline(self, rms: float = 0.05, n: int = 20) -> None:
        for _ in range(n):
            self.vib(rms)


def _open(store: Store) -> dict[str, tuple[str, str]]:
    return {a.kind: (a.state, a.severity) for a in queries.alarms(store, states=queries.OPEN_ALARM_STATES)}


def _one(store: Store, kind: str) -> queries.AlarmView:
    (alarm,) = [a for a in queries.alarms(store, states=queries.OPEN_ALARM_STATES) if a.kind == kind]
    return alarm


def _health_frame(seq: int, *, alarm: float, zone: int, learning: float = 0.0) -> FeatureFrame:
    return FeatureFrame(
        publisher="edge-01", seq=seq, asset_id="P-101", window_start=T0 + timedelta(seconds=seq), window_s=1.0,
        features={"vib_de": {"iso_zone": float(zone), "vel_rms_mm_s": 2.0 + zone},
                  "health": {"hi": 0.9 if alarm else 0.1, "threshold": 0.5, "alarm": alarm, "learning": learning}},
    )


# ------------------------------------------------------------------------ anomaly, zones
def test_alarm_lifecycle_from_frames(store: Store) -> None:
    ev = AlarmEvaluator(store, NO_DELAY)
    ev.evaluate([_health_frame(0, alarm=1.0, zone=1, learning=1.0)])
    assert _open(store) == {}, "no alarm while the threshold is still being learned"
    ev.evaluate([_health_frame(1, alarm=0.0, zone=1), _health_frame(2, alarm=1.0, zone=2)])
    assert _open(store) == {"health_anomaly": ("active", "high"), "iso_zone_C": ("active", "medium")}
    ev.evaluate([_health_frame(3, alarm=1.0, zone=2)])
    assert ev.raised == 2, "an open alarm is not raised again"
    ev.evaluate([_health_frame(4, alarm=1.0, zone=3)])
    assert _open(store) == {"health_anomaly": ("active", "high"), "iso_zone_D": ("active", "critical")}
    ev.evaluate([_health_frame(5, alarm=0.0, zone=0)])
    assert _open(store) == {}
    assert {a.state for a in queries.alarms(store)} == {"cleared"}


def test_every_frame_of_a_batch_counts_toward_the_delays(store: Store) -> None:
    ev = AlarmEvaluator(store, AlarmSettings(on_delay_frames=3, off_delay_frames=2))
    ev.evaluate([_health_frame(i, alarm=1.0, zone=1) for i in range(2)])
    assert _open(store) == {}, "two frames are within the three-frame on-delay"
    ev.evaluate([_health_frame(2, alarm=1.0, zone=1)])
    assert _open(store) == {"health_anomaly": ("active", "high")}
    assert _one(store, "health_anomaly").raised_at == T0 + timedelta(seconds=3), "raised at the data time"
    ev.evaluate([_health_frame(3, alarm=0.0, zone=1), _health_frame(4, alarm=1.0, zone=1),
                 _health_frame(5, alarm=0.0, zone=1)])
    assert _open(store) == {"health_anomaly": ("active", "high")}, "one frame back to normal is within the off-delay"
    ev.evaluate([_health_frame(6, alarm=0.0, zone=1)])
    assert _open(store) == {}


# ------------------------------------------------------------------------ analog limits
def test_vibration_limits_are_the_charts_limits(store: Store) -> None:
    ev = AlarmEvaluator(store, NO_DELAY)
    feed = _Feed(store, ev)
    feed.baseline(0.05, n=18)
    feed.vib(0.5)
    assert _open(store) == {}, "relative limits arm only once the baseline has all its windows (19 of 20 here)"
    feed.vib(0.05)
    info = queries.asset(store, "P-102")
    assert info is not None
    base = queries.channel_baseline(store, "P-102", "vib_de", "acceleration")
    assert base is not None and base.complete and base.value == pytest.approx(0.05)
    # the number the asset page's vibration chart uses today is the same baseline
    assert queries.feature_baseline(store, "P-102", "vib_de.rms") == base.value
    alert, alarm = (lim.value for lim in chart_limits(info.config, "vib_de", "acceleration", base.value))
    assert (alert, alarm) == pytest.approx((0.1, 0.2))

    feed.vib(alert * 0.999)
    assert _open(store) == {}, "at or below the chart's alert line: no alarm"
    feed.vib(alert * 1.001)
    assert _open(store) == {"vibration_high": ("active", "medium")}
    feed.vib(alarm * 0.999)
    assert _open(store) == {"vibration_high": ("active", "medium")}
    feed.vib(alarm * 1.001)
    assert _open(store) == {"vibration_high": ("active", "high")}, "above the chart's alarm line: high"
    assert "above the 0.2 g alarm limit" in _one(store, "vibration_high").message


def test_temperature_limits_use_the_raw_readings_baseline(store: Store) -> None:
    ev = AlarmEvaluator(store, NO_DELAY)
    feed = _Feed(store, ev)
    for i in range(20):
        batch = ReadingBatch(publisher="edge-01", seq=1000 + i, asset_id="P-102", channel="temp_de",
                             quantity="temperature", unit="degC", sample_rate_hz=1.0, start=feed.at(i),
                             values=[43.0, 43.4])
        feed.send({"temp_de": {"mean": 43.2, "slope_per_min": 0.0}}, batch)
    base = queries.channel_baseline(store, "P-102", "temp_de", "temperature")
    assert base is not None and base.source == "readings temp_de v_mean"
    assert base.value == queries.baseline(store, "P-102", "temp_de", value="v_mean") == pytest.approx(43.2)
    feed.send({"temp_de": {"mean": 58.0}})
    assert _open(store) == {}
    feed.send({"temp_de": {"mean": 68.5}})
    alarm = _one(store, "temperature_high")
    assert (alarm.severity, alarm.message) == (
        "high", "Temperature 68.5 degC on temp_de above the 68.2 degC alarm limit. Check lubrication, cooling and "
                "load; see the asset's work order.")


def test_configured_limits_win_and_alert_is_low_on_a_criticality_1_asset(store: Store) -> None:
    with store._sessions.begin() as s:
        row = s.get(Asset, "M-202")
        assert row is not None and row.criticality == 1
        s.execute(update(Asset).where(Asset.asset_id == "M-202")
                  .values(config={**row.config, "alarm_limits": {"vib_de": {"alert": 0.3, "alarm": 0.6}}}))
    feed = _Feed(store, AlarmEvaluator(store, NO_DELAY), "M-202")
    feed.vib(0.35)  # no baseline needed with configured limits
    assert _open(store) == {"vibration_high": ("active", "low")}
    feed.vib(0.7)
    assert _open(store) == {"vibration_high": ("active", "high")}


def _noisy(rng: np.random.Generator, n: int, around: float, rel_sigma: float) -> list[float]:
    return list(around * (1.0 + rel_sigma * rng.standard_normal(n)))


def _chatter_run(store: Store, settings: AlarmSettings) -> AlarmEvaluator:
    ev = AlarmEvaluator(store, settings)
    feed = _Feed(store, ev)
    feed.baseline(0.05)
    for v in _noisy(np.random.default_rng(3), 120, 0.1, 0.03):  # dithering around the 0.1 g alert limit
        feed.vib(v)
    return ev


def test_without_delays_a_noisy_signal_near_the_limit_chatters(store: Store) -> None:
    ev = _chatter_run(store, NO_DELAY)
    assert ev.raised > 20 and ev.cleared >= ev.raised - 1
    kpis = queries.alarm_kpis(store, since=T0, until=T0 + timedelta(hours=1))
    assert kpis.chattering and kpis.chattering[0][:2] == ("P-102", "vibration_high")


def test_on_delay_and_deadband_stop_the_chatter_and_off_delay_clears(store: Store) -> None:
    ev = _chatter_run(store, AlarmSettings())  # defaults: 3 frames on, 5 off, 5 % deadband
    assert (ev.raised, ev.cleared) == (1, 0)
    assert not queries.alarm_kpis(store, since=T0, until=T0 + timedelta(hours=1)).chattering
    feed = _Feed(store, ev)
    feed.seq = 200
    for _ in range(4):
        feed.vib(0.05)
    assert _open(store) == {"vibration_high": ("active", "medium")}, "four frames back to normal: off-delay not over"
    feed.vib(0.05)
    assert _open(store) == {} and ev.cleared == 1


def test_on_delay_in_seconds_of_data_time(store: Store) -> None:
    feed = _Feed(store, AlarmEvaluator(store, AlarmSettings(on_delay_frames=1, on_delay_s=10.0, off_delay_frames=1)))
    feed.baseline(0.05)
    start = feed.seq
    while _open(store) == {}:
        feed.vib(0.5)
    assert feed.seq - start == 11, "raised when the condition has held for 10 s (frames 1 s apart)"


# ---------------------------------------------------------------------------- diagnosis
def _bearing_frame_features(rms: float) -> dict[str, float]:
    return {"rms": rms, "crest": 5.0, "shaft_hz": 29.5, "env_bpfo_h1": 0.017, "env_bpfo_snr": 17.2,
            "env_bpfi_snr": 2.0, "env_bsf_snr": 1.5, "env_ftf_snr": 1.1}


def test_the_alarm_names_the_fault_the_prescriber_names() -> None:
    from prescribe.evidence import diagnose_peaks, vibration_and_temperature

    # BSF with its FTF sidebands, FTF the stronger: a rolling-element defect for both, not a cage one
    ball = {"rms": 0.3, "shaft_hz": 29.5, "env_bsf_h1": 0.01, "env_bsf_snr": 9.0, "env_ftf_h1": 0.012, "env_ftf_snr": 11.0,
            "env_bsf_hz": 120.0, "env_ftf_hz": 11.9, "env_bpfo_snr": 1.0}
    diag = diagnose({"vib_de": ball})
    assert diag is not None and (diag.fault, diag.defect) == ("ball", "ftf")
    # the prescriber counts a peak that two windows show (prescribe.evidence.confirmed_envelope)
    _, peaks, _ = vibration_and_temperature([(T0, {"vib_de": ball}), (T0 + timedelta(minutes=1), {"vib_de": ball})])
    call = diagnose_peaks(peaks)
    assert call is not None and call.kind == diag.fault


def test_diagnosis_text_names_fault_frequency_value_limit_and_action(store: Store) -> None:
    info = queries.asset(store, "P-102")
    assert info is not None
    diag = diagnose({"vib_de": _bearing_frame_features(0.8)}, info.config)
    assert diag is not None and (diag.fault, diag.defect) == ("outer_race", "bpfo")
    assert diag.frequency_hz == pytest.approx(105.8, abs=0.5)  # SKF 6205 BPFO at 29.5 Hz shaft speed
    assert diagnose({"vib_de": {**_bearing_frame_features(0.8), "env_bpfo_snr": 3.0}}) is None, "below the peak SNR"

    feed = _Feed(store, AlarmEvaluator(store, NO_DELAY))
    feed.baseline(0.0417)
    feed.send({"vib_de": _bearing_frame_features(0.774)})
    alarm = _one(store, "vibration_high")
    assert alarm.message == ("Bearing outer-race defect: BPFO 106 Hz at 17x the noise floor; RMS 0.774 g on vib_de "
                             "above the 0.167 g alarm limit. Plan bearing replacement; see the asset's work order.")


def test_messages_are_printable_and_bounded(store: Store) -> None:
    feed = _Feed(store, AlarmEvaluator(store, NO_DELAY))
    feed.baseline(0.05)
    feed.send({"vib_de": {**_bearing_frame_features(9.9), "iso_zone": 3.0, "vel_rms_mm_s": 20.0},
               "health": {"hi": 2.0, "threshold": 0.5, "alarm": 1.0, "learning": 0.0}})
    alarms = queries.alarms(store)
    assert {a.kind for a in alarms} == {"vibration_high", "iso_zone_D", "health_anomaly"}
    for a in alarms:
        assert 0 < len(a.message) <= MAX_MESSAGE and a.message.isprintable()
        assert a.message.startswith("Bearing outer-race defect: BPFO 106 Hz")


# ------------------------------------------------------------------------------ rul_low
def _prediction(seq: int, lower: float, *, median: float | None = None, cap: float | None = 2000.0,
                unit: RulUnit = "h") -> Prediction:
    median = lower * 1.5 if median is None else median
    return Prediction(publisher="edge-01", seq=5000 + seq, asset_id="P-102", model_name="rul", model_version="1",
                      at=T0 + timedelta(hours=seq), rul_unit=unit, rul_median=median, rul_lower=lower,
                      rul_upper=median * 1.3, coverage=0.9, rul_cap=cap)


class _Rul:
    def __init__(self, store: Store, ev: AlarmEvaluator) -> None:
        self.store, self.ev, self.seq = store, ev, 0

    def send(self, lower: float, times: int = 1, *, median: float | None = None, cap: float | None = 2000.0,
             unit: RulUnit = "h") -> None:
        for _ in range(times):
            p = _prediction(self.seq, lower, median=median, cap=cap, unit=unit)
            self.seq += 1
            self.store.write([(p, p.at)])
            self.ev.evaluate([p])


def test_rul_low_escalates_with_the_lower_bound_and_re_annunciates(store: Store) -> None:
    ev = AlarmEvaluator(store, AlarmSettings(rul_on_delay=2, rul_off_delay=2))
    rul = _Rul(store, ev)
    rul.send(300, 2, median=400, cap=400)  # at the model's cap: "at least 400 h"
    rul.send(400, 2)  # beyond the 336 h planning horizon
    assert _open(store) == {}

    rul.send(300)
    assert _open(store) == {}, "one prediction is within the on-delay"
    rul.send(300)
    planned = _one(store, "rul_low")
    assert (planned.state, planned.severity) == ("active", "medium")
    assert "within the 336 h planning horizon" in planned.message and "next planned stop" in planned.message
    actions.acknowledge_alarm(store, planned.id, "olga")

    rul.send(30, 2)  # margin max(8, 0.25 * 30) = 8 h: 22 h left, within urgent_h
    urgent = _one(store, "rul_low")
    assert (urgent.id, urgent.state, urgent.severity) == (planned.id, "active", "high"), "re-annunciated"
    assert (urgent.escalated_from, urgent.escalated_by, urgent.acked_by) == ("medium", "ingest", "olga")
    assert not urgent.acknowledged and "without waiting for a planned stop" in urgent.message

    assert actions.acknowledge_alarm(store, urgent.id, "olga").acknowledged
    actions.shelve_alarm(store, urgent.id, "olga", "crew on the way", utcnow() + timedelta(hours=8))
    rul.send(6, 2)  # within the 8 h safety margin
    stop = _one(store, "rul_low")
    assert (stop.state, stop.severity, stop.escalated_from) == ("active", "critical", "high")
    assert "Stop, lock out and repair now" in stop.message and (stop.shelved_by, stop.shelved_until) == ("olga", None)

    rul.send(100, 2)  # back in the planning band: a standing alarm's priority never drops
    assert _open(store) == {"rul_low": ("active", "critical")}
    rul.send(500, 2, median=500, cap=500)
    assert _open(store) == {} and (ev.raised, ev.escalated, ev.cleared) == (1, 2, 1)


def test_a_standing_rul_low_escalates_on_the_first_prediction_in_a_tighter_band(store: Store) -> None:
    rul = _Rul(store, AlarmEvaluator(store, AlarmSettings(rul_on_delay=3, rul_off_delay=3)))
    rul.send(300, 3)
    assert _open(store) == {"rul_low": ("active", "medium")}
    rul.send(30)  # one prediction in the urgent band, between two in the planning band: as the work order does
    assert _open(store) == {"rul_low": ("active", "high")}
    rul.send(300)
    assert _open(store) == {"rul_low": ("active", "high")}


def test_no_rul_low_at_the_cap_or_in_other_units(store: Store) -> None:
    rul = _Rul(store, AlarmEvaluator(store, NO_DELAY))
    rul.send(5, median=400, cap=400)  # median at the cap: the lower bound sets no deadline
    rul.send(5, median=50, unit="cycles")
    assert _open(store) == {}


def test_escalation_refuses_a_lower_priority_and_unshelving_returns_it_active(store: Store) -> None:
    a = actions.raise_alarm(store, "P-101", "rul_low", "high", at=T0)
    with pytest.raises(StoreError, match="priority below medium"):
        actions.escalate_alarm(store, a.id, "medium", at=T0)
    actions.acknowledge_alarm(store, a.id, "olga", at=T0 + timedelta(minutes=1))
    actions.escalate_alarm(store, a.id, "critical", at=T0 + timedelta(minutes=2))
    actions.shelve_alarm(store, a.id, "olga", "test", T0 + timedelta(hours=1), at=T0 + timedelta(minutes=3))
    assert actions.unshelve_alarm(store, a.id).state == "active", "not acknowledged since the escalation"
    actions.clear_alarm(store, a.id, at=T0 + timedelta(minutes=4))
    assert actions.acknowledge_alarm(store, a.id, "olga", at=T0 + timedelta(minutes=5)).acknowledged


def test_ingest_settings_carry_the_alarm_defaults() -> None:
    s = IngestSettings().alarms
    assert s == AlarmSettings() and (s.on_delay_frames, s.off_delay_frames, s.deadband_pct) == (3, 5, 5.0)
    with pytest.raises(ValueError, match="on_delay_frames"):
        AlarmSettings(on_delay_frames=0)


# ----------------------------------------------------------------------------- KPI view
def _raise(store: Store, asset_id: str, kind: str, severity: str, at: datetime, *,
           cleared: timedelta | None = None) -> queries.AlarmView:
    a = actions.raise_alarm(store, asset_id, kind, severity, at=at)
    if cleared is not None:
        actions.clear_alarm(store, a.id, at=at + cleared)
    return a


def _history(store: Store) -> int:
    """12 alarms in the first 10 minutes (a flood), one alarm chattering 3 times in 40 s, and standing alarms."""
    for i in range(12):
        _raise(store, "P-101", f"flood_{i}", ("low", "medium", "high")[i % 3], T0 + timedelta(seconds=10 * i),
               cleared=timedelta(minutes=1))
    for s in (0, 20, 40):
        _raise(store, "M-202", "vibration_high", "medium", T0 + timedelta(minutes=20, seconds=s),
               cleared=timedelta(seconds=10))
    _raise(store, "M-202", "vibration_high", "medium", T0 + timedelta(minutes=40), cleared=timedelta(seconds=5))
    stale = _raise(store, "F-101", "temperature_high", "high", T0 - timedelta(hours=25))
    shelved = _raise(store, "F-201", "vibration_high", "low", T0 - timedelta(hours=30))
    actions.shelve_alarm(store, shelved.id, "olga", "known", T0 + timedelta(days=1), at=T0)
    _raise(store, "P-201", "temperature_high", "low", T0 - timedelta(hours=26), cleared=timedelta(hours=25))
    _raise(store, "M-101", "rul_low", "critical", T0 + timedelta(minutes=50))
    return stale.id


def test_alarm_kpis_on_a_constructed_history(store: Store) -> None:
    stale_id = _history(store)
    k = queries.alarm_kpis(store, since=T0, until=T0 + timedelta(hours=1))
    assert (k.raised, k.windows, k.floods) == (17, 6, 1)
    assert k.avg_per_10min == pytest.approx(17 / 6) and (k.peak_per_10min, k.peak_at) == (12, T0)
    assert k.chattering == (("M-202", "vibration_high", 3),), "the fourth raise is 20 minutes later"
    assert k.stale_ids == (stale_id,), "standing > 24 h; not the shelved one, not the one cleared"
    assert k.by_priority == {"low": 4, "medium": 8, "high": 4, "critical": 1}
    assert k.flood_share == pytest.approx(1 / 6)

    two = queries.alarm_kpis(store, since=T0, until=T0 + timedelta(hours=1), operators=2)
    assert two.avg_per_10min == pytest.approx(17 / 12) and (two.peak_per_10min, two.floods) == (6, 0)


@pytest.mark.parametrize(("since", "until", "operators", "match"), [
    (T0, T0, 1, "until must be after since"),
    (T0.replace(tzinfo=None), T0 + timedelta(hours=1), 1, "timezone-aware"),
    (T0, T0 + timedelta(hours=1), 0, "operators must be"),
])
def test_alarm_kpis_refuse_bad_windows(store: Store, since: datetime, until: datetime, operators: int,
                                       match: str) -> None:
    with pytest.raises(StoreError, match=match):
        queries.alarm_kpis(store, since=since, until=until, operators=operators)


def test_open_work_order_per_asset_is_the_most_urgent_then_the_approved_one(store: Store) -> None:
    actions.create_work_order(store, "P-101", "Inspect", by="prescriber", at=T0)
    approved = actions.create_work_order(store, "P-101", "Replace bearing", by="prescriber", at=T0)
    actions.approve_work_order(store, approved.id, "eve", at=T0)
    actions.create_work_order(store, "M-101", "Done already", by="prescriber", at=T0)
    done = queries.work_orders(store, asset_id="M-101")[0]
    actions.reject_work_order(store, done.id, "eve", "not needed", at=T0)
    found = queries.open_work_orders_by_asset(store)
    assert {a: (w.id, w.status) for a, w in found.items()} == {"P-101": (approved.id, "approved")}
    # an escalation drafts a more urgent order beside the approved one: the alarm links to it
    urgent = actions.create_work_order(store, "P-101", "Stop and replace now", by="prescriber", priority="urgent",
                                       at=T0 + timedelta(hours=1))
    assert queries.open_work_orders_by_asset(store)["P-101"].id == urgent.id
