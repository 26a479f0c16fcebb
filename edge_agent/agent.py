"""The edge agent: source -> windows -> features, quality, health -> store-and-forward publisher.

It publishes feature frames (not raw data), raw batches of slow channels (process values),
status, and raw snapshots from its ring buffer on request (command topic) or when an anomaly
starts. Optional: RUL inference with an ONNX model, PLC write-back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.assets import AssetConfig
from core.settings import Settings
from core.wire import DataQuality, FeatureFrame, Prediction, StatusReport, printable, utcnow
from edge_agent.processor import AssetProcessor, WindowResult
from edge_agent.readings import to_reading_batch
from edge_agent.ringbuffer import RawRingBuffer
from edge_agent.sources.base import RawBatch, Source

__all__ = ["AgentStats", "EdgeAgent", "Sink", "WindowHook"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where the agent's messages go (the :class:`~edge_agent.publisher.ReliablePublisher`)."""

    def next_seq(self) -> int: ...

    def send(self, message: Any) -> bool: ...


class WindowHook(Protocol):
    """Extra per-window work: RUL inference, PLC write-back."""

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None: ...


@dataclass
class AgentStats:
    batches: int = 0
    windows: int = 0
    features_sent: int = 0
    readings_sent: int = 0
    raw_snapshots_sent: int = 0
    status_sent: int = 0
    predictions_sent: int = 0
    silent_reports: int = 0
    alarms: int = 0
    bytes_raw: int = 0
    bytes_sent: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class EdgeAgent:
    """Runs one source through per-asset processors and publishes the results.

    Args:
        settings: shared settings; the agent's options are ``settings.edge``.
        assets: the assets the source delivers.
        sink: message sink (``next_seq`` + ``send``).
        hooks: per-window hooks (RUL, PLC).
        measure_bytes: count the JSON bytes of everything sent and of the raw data it replaced.
    """

    def __init__(self, settings: Settings, assets: Sequence[AssetConfig], sink: Sink, *,
                 hooks: Sequence[WindowHook] = (), measure_bytes: bool = False) -> None:
        self.settings = settings
        self.edge = settings.edge
        self.agent_id = settings.edge.agent_id
        self.assets = {a.asset_id: a for a in assets}
        self.sink = sink
        self.hooks = list(hooks)
        self.measure_bytes = measure_bytes
        edge = self.edge
        self.processors = {a.asset_id: AssetProcessor(a, features=edge.features, health=edge.health,
                                                      quality=edge.quality) for a in assets}
        self.ring = RawRingBuffer(edge.ring_capacity)
        self.stats = AgentStats()
        self.commands: queue_mod.Queue[tuple[str, bytes]] = queue_mod.Queue()
        self._silent: dict[str, set[str]] = {a: set() for a in self.assets}
        self._started = time.monotonic()
        #: each asset's latest RUL median and its unit (``h``, ``cycles``, ``%``), for the PLC write-back
        self.last_rul: dict[str, tuple[float, str]] = {}
        self.on_window: Callable[[WindowResult], None] | None = None

    # ------------------------------------------------------------------ entry points
    async def run(self, source: Source, stop: threading.Event | None = None) -> AgentStats:
        """Consume ``source`` until it ends or ``stop`` is set; housekeeping runs alongside."""
        stop = stop or threading.Event()
        keeper = asyncio.create_task(self._housekeeping(stop))
        try:
            async with source:
                async for batch in source.batches():
                    self.handle_batch(batch)
                    self.handle_commands()
                    if stop.is_set():
                        break
            self.flush()
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            for hook in self.hooks:
                closer = getattr(hook, "close", None)
                if closer is not None:
                    await closer()
        return self.stats

    def handle_batch(self, batch: RawBatch) -> None:
        proc = self.processors.get(batch.asset.asset_id)
        if proc is None:
            raise KeyError(f"batch for unknown asset {batch.asset.asset_id!r}; agent has {sorted(self.processors)}")
        self.stats.batches += 1
        self.ring.add(batch)
        self._silent[batch.asset.asset_id].discard(batch.channel.name)
        for result in proc.add(batch):
            self.handle_window(result)

    def flush(self) -> None:
        for proc in self.processors.values():
            result = proc.flush()
            if result is not None:
                self.handle_window(result)

    # ------------------------------------------------------------------ per window
    def handle_window(self, result: WindowResult) -> None:
        self.stats.windows += 1
        asset = result.asset
        features = dict(result.features)
        if result.alarm is not None:
            a = result.alarm
            features["health"] = {"hi": a.hi, "health_index": a.health, "alarm": float(a.alarm),
                                  "learning": float(a.learning), **({"threshold": a.threshold}
                                                                    if a.threshold is not None else {})}
        if features:
            self._send(FeatureFrame(publisher=self.agent_id, seq=self.sink.next_seq(), asset_id=asset.asset_id,
                                    window_start=result.window_start, window_s=result.window_s,
                                    features=features, quality=result.quality), "features")
        for b in result.batches:
            if b.channel.sample_rate_hz < self.edge.raw_below_hz:
                self._send_raw(b, result.channel_quality.get(b.channel.name, DataQuality.GOOD), "readings")
        if result.alarm is not None and result.alarm.alarm_started:
            self.stats.alarms += 1
            self._send_status(asset.asset_id, "degraded",
                              f"anomaly: hi={result.alarm.hi:.3f} > threshold={result.alarm.threshold:.3f}")
            if self.edge.raw_on_anomaly:
                self.publish_snapshot(asset.asset_id)
        for hook in self.hooks:
            hook.on_window(result, self)
        if self.on_window is not None:
            self.on_window(result)
        if self.measure_bytes:
            self.stats.bytes_raw += sum(_raw_json_bytes(b) for b in result.batches)

    def publish_snapshot(self, asset_id: str, channel: str | None = None, last: int | None = None) -> int:
        """Send the ring buffer's raw batches of an asset (one channel, the ``last`` n); returns how many."""
        batches = self.ring.snapshot(asset_id, channel, last=last)
        for b in batches:
            if b.channel.sample_rate_hz >= self.edge.raw_below_hz:
                self._send_raw(b, DataQuality.GOOD, "snapshot")
        return len(batches)

    def send_prediction(self, prediction: Prediction) -> None:
        self._send(prediction, "prediction")

    # ------------------------------------------------------------------ commands, status, silence
    def handle_commands(self) -> None:
        while True:
            try:
                asset_id, payload = self.commands.get_nowait()
            except queue_mod.Empty:
                return
            try:
                cmd = json.loads(payload or b"{}")
            except ValueError:
                log.warning("ignoring command for %s: not JSON", asset_id)
                continue
            if asset_id not in self.assets or not isinstance(cmd, dict):
                log.warning("ignoring command for unknown asset %r", asset_id)
                continue
            if cmd.get("action") == "raw":
                last = cmd.get("last")
                n = self.publish_snapshot(asset_id, cmd.get("channel"), int(last) if last else None)
                log.info("raw snapshot of %s on request: %d batches", asset_id, n)
            else:
                log.warning("unknown command %r for %s", cmd.get("action"), asset_id)

    def command(self, asset_id: str, payload: bytes) -> None:
        """Thread-safe entry for commands (called by the publisher's network thread)."""
        self.commands.put((asset_id, payload))

    def check_silence(self) -> None:
        """Report channels that stopped delivering (once per silence); never re-send their last values."""
        for asset_id, proc in self.processors.items():
            silent = proc.quality.silent_channels()
            new = set(silent) - self._silent[asset_id]
            if not new:
                continue
            self._silent[asset_id] |= new
            self.stats.silent_reports += 1
            self._send(FeatureFrame(publisher=self.agent_id, seq=self.sink.next_seq(), asset_id=asset_id,
                                    window_start=utcnow(), window_s=max(silent.values()),
                                    features={ch: {"silent_s": silent[ch]} for ch in sorted(new)},
                                    quality=DataQuality.DEVICE_SILENT), "features")
            self._send_status(asset_id, "degraded", f"device silent: {', '.join(sorted(new))}")

    def send_status(self) -> None:
        depth = len(getattr(self.sink, "queue", ()))
        self._send_status(self.agent_id, "online", f"windows={self.stats.windows} alarms={self.stats.alarms}",
                          queue_depth=depth)

    async def _housekeeping(self, stop: threading.Event) -> None:
        next_status = time.monotonic() + self.edge.status_interval_s
        while not stop.is_set():
            await asyncio.sleep(0.2)
            self.handle_commands()
            self.check_silence()
            if time.monotonic() >= next_status:
                self.send_status()
                next_status += self.edge.status_interval_s

    # ------------------------------------------------------------------ sending
    def _send_status(self, asset_id: str, state: str, detail: str, queue_depth: int = 0) -> None:
        self._send(StatusReport(publisher=self.agent_id, seq=self.sink.next_seq(), asset_id=asset_id,
                                state=state, uptime_s=time.monotonic() - self._started,
                                queue_depth=queue_depth, detail=printable(detail)), "status")

    def _send_raw(self, batch: RawBatch, quality: DataQuality, kind: str) -> None:
        msg = to_reading_batch(batch, self.agent_id, self.sink.next_seq(), decimals=self.edge.raw_decimals,
                               quality=quality)
        self._send(msg, kind)

    def _send(self, message: Any, kind: str) -> None:
        self.sink.send(message)
        counter = {"features": "features_sent", "readings": "readings_sent", "snapshot": "raw_snapshots_sent",
                   "status": "status_sent", "prediction": "predictions_sent"}[kind]
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        self.stats.by_type[kind] = self.stats.by_type.get(kind, 0) + 1
        if self.measure_bytes:
            self.stats.bytes_sent += len(message.model_dump_json())


def _raw_json_bytes(batch: RawBatch) -> int:
    """Size of the batch as a raw ReadingBatch on the wire (the alternative to edge features)."""
    return len(to_reading_batch(batch, "raw", 0).model_dump_json())


