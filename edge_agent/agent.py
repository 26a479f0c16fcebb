"""The edge agent: source -> windows -> features, quality, health -> store-and-forward publisher.

It publishes feature frames (not raw data), raw batches of slow channels (process values),
status, and raw snapshots from its ring buffer on request (command topic) or when an anomaly
starts. Optional: RUL inference with an ONNX model, PLC write-back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.assets import AssetConfig
from core.settings import Settings
from core.wire import DataQuality, FeatureFrame, Prediction, StatusReport, printable, utcnow
from edge_agent._commands import CommandGate
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
    commands_served: int = 0
    #: refused commands by reason (``invalid``, ``queue full``, ``rate limit (asset)`` ...)
    commands_refused: dict[str, int] = field(default_factory=dict)
    #: restarts of supervised tasks (``source``, ``housekeeping``) after they died
    task_restarts: dict[str, int] = field(default_factory=dict)
    #: raw batches whose processing raised (logged and skipped)
    batch_errors: int = 0


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
        self.commands = CommandGate(
            self.assets, queue_max=edge.command_queue_max,
            asset_rate_per_min=edge.command_rate_per_asset, asset_burst=edge.command_burst_per_asset,
            requester_rate_per_min=edge.command_rate_per_requester, requester_burst=edge.command_burst_per_requester,
        )
        self._queue_alarm: str | None = None
        self._failed_since_status: set[str] = set()
        self._batch_error_logged = 0.0
        self._silent: dict[str, set[str]] = {a: set() for a in self.assets}
        self._started = time.monotonic()
        #: each asset's latest RUL median and its unit (``h``, ``cycles``, ``%``), for the PLC write-back
        self.last_rul: dict[str, tuple[float, str]] = {}
        #: when each asset's latest RUL was predicted (``time.monotonic()``): the PLC marks an old one invalid
        self.rul_at: dict[str, float] = {}
        #: why an asset's RUL model gives no RUL (failed to load or to predict); cleared by the next prediction
        self.rul_faults: dict[str, str] = {}
        self.on_window: Callable[[WindowResult], None] | None = None

    # ------------------------------------------------------------------ entry points
    async def run(self, source: Source, stop: threading.Event | None = None) -> AgentStats:
        """Consume ``source`` until it ends or ``stop`` is set; housekeeping runs alongside.

        Both are supervised (:meth:`_supervised`): a task that raises is logged, reported in a
        status and restarted with back-off, so no input and no failing device ends the agent.
        """
        stop = stop or threading.Event()
        keeper = asyncio.create_task(self._supervised("housekeeping", lambda: self._housekeeping(stop), stop))
        try:
            await self._supervised("source", lambda: self._consume(source, stop), stop)
            self.flush()
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            for hook in self.hooks:
                closer = getattr(hook, "close", None)
                if closer is not None:
                    await closer()
        return self.stats

    async def _consume(self, source: Source, stop: threading.Event) -> None:
        async with source:
            async for batch in source.batches():
                self._handle_batch_guarded(batch)
                self.handle_commands()
                if stop.is_set():
                    break

    async def _supervised(self, name: str, start: Callable[[], Awaitable[None]], stop: threading.Event) -> None:
        """Run ``start()`` until it returns; restart it with back-off (``edge.task_restart_s``) when it raises."""
        first, cap = self.edge.task_restart_s
        delay = max(first, 0.01)
        while True:
            started = time.monotonic()
            try:
                await start()
                return
            except Exception as err:
                restarts = self.stats.task_restarts.get(name, 0) + 1
                self.stats.task_restarts[name] = restarts
                self._failed_since_status.add(name)
                log.exception("agent task %s failed; restart %d in %.1f s", name, restarts, delay)
                # The exception's type only: its text may carry foreign input.
                self._report(self.agent_id, "degraded",
                             f"task {name} failed ({type(err).__name__}); restart {restarts} in {delay:.1f} s")
            if stop.is_set():
                return
            if time.monotonic() - started > cap:
                delay = max(first, 0.01)  # it ran well for a while: this is a new failure, not a loop
            end = time.monotonic() + delay
            while not stop.is_set() and time.monotonic() < end:
                await asyncio.sleep(min(0.2, delay))
            if stop.is_set():
                return
            delay = min(delay * 2, max(cap, first))

    def _handle_batch_guarded(self, batch: RawBatch) -> None:
        """:meth:`handle_batch`, with a batch that raises counted, logged and skipped."""
        try:
            self.handle_batch(batch)
        except Exception as err:
            self.stats.batch_errors += 1
            now = time.monotonic()
            if now - self._batch_error_logged > 60.0:  # at most one traceback a minute
                self._batch_error_logged = now
                log.exception("a raw batch failed to process (%d so far); skipped", self.stats.batch_errors)
                self._report(self.agent_id, "degraded",
                             f"a raw batch failed to process ({type(err).__name__}); "
                             f"{self.stats.batch_errors} skipped so far")

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
        """Serve the commands waiting (validated and rate-limited); answer the refused ones."""
        while (item := self.commands.take()) is not None:
            asset_id, command = item
            try:
                n = self.publish_snapshot(asset_id, command.channel, command.last)
            except Exception as err:
                log.exception("command %s for %s failed", command.action, asset_id)
                self.commands.refuse(asset_id, "failed", f"{command.action} failed ({type(err).__name__})")
                continue
            log.info("raw snapshot of %s on request: %d batches", asset_id, n)
        self.stats.commands_served = self.commands.served
        self.stats.commands_refused = dict(self.commands.refused)
        for asset_id, refusals in self.commands.answers().items():
            self._report(asset_id, "degraded", refusals.detail())

    def command(self, asset_id: str, payload: bytes) -> None:
        """Thread-safe entry for commands (called by the publisher's network thread); never raises."""
        try:
            self.commands.offer(asset_id, payload)
        except Exception:  # a bad command must not kill the network thread
            log.exception("command intake failed")

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
        """The agent's periodic status: ``degraded`` while its disk queue is in alarm or a task failed."""
        queue = getattr(self.sink, "queue", None)
        depth = len(queue) if queue is not None else 0
        parts = [f"windows={self.stats.windows} alarms={self.stats.alarms}"]
        alarm = getattr(self.sink, "queue_alarm", None)
        if alarm:
            parts.append(f"disk queue: {alarm}, {getattr(queue, 'dropped', 0)} messages dropped ({self.edge.overflow})")
        if self._failed_since_status:
            parts.append(f"tasks restarted: {', '.join(sorted(self._failed_since_status))}")
        refused = self.commands.refused_total()
        if refused:
            parts.append(f"commands refused={refused}")
        state = "degraded" if alarm or self._failed_since_status else "online"
        self._failed_since_status.clear()
        self._send_status(self.agent_id, state, "; ".join(parts), queue_depth=depth)

    def check_queue(self) -> None:
        """Report a disk-queue alarm (disk full, storage error) when it is raised and when it clears."""
        alarm = getattr(self.sink, "queue_alarm", None)
        if alarm == self._queue_alarm:
            return
        self._queue_alarm = alarm
        queue = getattr(self.sink, "queue", None)
        dropped = getattr(queue, "dropped", 0)
        if alarm:
            self._report(self.agent_id, "degraded",
                         f"disk queue: {alarm}; overflow policy {self.edge.overflow}, {dropped} messages dropped")
        else:
            self._report(self.agent_id, "online", f"disk queue: recovered; {dropped} messages dropped")

    def tick_hooks(self) -> None:
        """Per-cycle work of the hooks that have some (the PLC heartbeat and validity), windows or not."""
        for hook in self.hooks:
            tick = getattr(hook, "on_tick", None)
            if tick is not None:
                tick(self)

    async def _housekeeping(self, stop: threading.Event) -> None:
        next_status = time.monotonic() + self.edge.status_interval_s
        while not stop.is_set():
            await asyncio.sleep(0.2)
            self.handle_commands()
            self.check_silence()
            self.check_queue()
            self.tick_hooks()
            if time.monotonic() >= next_status:
                self.send_status()
                next_status += self.edge.status_interval_s

    # ------------------------------------------------------------------ sending
    def _send_status(self, asset_id: str, state: str, detail: str, queue_depth: int = 0) -> None:
        self._send(StatusReport(publisher=self.agent_id, seq=self.sink.next_seq(), asset_id=asset_id,
                                state=state, uptime_s=time.monotonic() - self._started,
                                queue_depth=queue_depth, detail=printable(detail)), "status")

    def _report(self, asset_id: str, state: str, detail: str) -> None:
        """An out-of-band status (refusal, failure, alarm): goes around a full queue; never raises."""
        message = StatusReport(publisher=self.agent_id, seq=self.sink.next_seq(), asset_id=asset_id, state=state,
                               uptime_s=time.monotonic() - self._started, detail=printable(detail))
        try:
            if hasattr(self.sink, "queue_alarm"):  # the store-and-forward publisher
                self.sink.send(message, urgent=True)  # type: ignore[call-arg]
            else:
                self.sink.send(message)
        except Exception:
            log.exception("status of %s could not be sent", asset_id)
            return
        self.stats.status_sent += 1
        self.stats.by_type["status"] = self.stats.by_type.get("status", 0) + 1

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


