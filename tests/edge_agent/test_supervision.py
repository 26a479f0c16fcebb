"""Every agent task is supervised: one that raises is logged, reported, restarted with back-off."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from core.settings import EdgeSettings, Settings
from core.sim import default_plant
from core.wire import StatusReport, utcnow
from edge_agent.agent import EdgeAgent
from edge_agent.sources.base import RawBatch
from edge_agent.sources.simulator import SimulatorSource
from tests._factories import ListSink, wait_for
from tests.edge_agent.conftest import agent_thread

ASSETS = default_plant()[:1]


class FlakySource:
    """The simulator, whose first session breaks after a few batches (a device that drops the link)."""

    def __init__(self) -> None:
        self.inner = SimulatorSource(ASSETS, {}, seed=1, interval_s=0.05, snapshot_samples=256)
        self.sessions = 0

    async def __aenter__(self) -> FlakySource:
        self.sessions += 1
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def batches(self) -> AsyncIterator[RawBatch]:
        n = 0
        async for batch in self.inner.batches():
            n += 1
            if self.sessions == 1 and n > 20:
                raise ConnectionError("device dropped the link")
            yield batch


def statuses(sink: ListSink) -> list[StatusReport]:
    return [m for m in list(sink.messages) if isinstance(m, StatusReport)]


def test_a_task_that_raises_is_restarted_and_reported() -> None:
    sink = ListSink()
    settings = Settings(edge=EdgeSettings(agent_id="edge-sup", status_interval_s=0.5, task_restart_s=(0.1, 1.0)))
    agent = EdgeAgent(settings, ASSETS, sink)
    failures = {"left": 2}
    check_silence = agent.check_silence

    def broken_check_silence() -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("a bug in housekeeping")
        check_silence()

    agent.check_silence = broken_check_silence  # type: ignore[method-assign]
    source = FlakySource()
    with agent_thread(lambda stop: agent.run(source, stop)):
        assert wait_for(lambda: agent.stats.task_restarts == {"housekeeping": 2, "source": 1}, 20), agent.stats
        windows, status_sent = agent.stats.windows, agent.stats.status_sent
        assert wait_for(lambda: agent.stats.windows > windows + 3, 20), "the source runs again"
        assert wait_for(lambda: agent.stats.status_sent > status_sent + 1, 20), "housekeeping runs again"
    assert source.sessions == 2, "the source was entered again after it broke"
    details = [s.detail for s in statuses(sink) if s.asset_id == "edge-sup"]
    assert "task source failed (ConnectionError); restart 1 in 0.1 s" in details
    assert "task housekeeping failed (RuntimeError); restart 1 in 0.1 s" in details
    assert "task housekeeping failed (RuntimeError); restart 2 in 0.2 s" in details, "back-off doubles"
    assert any(s.state == "degraded" and "tasks restarted: " in s.detail for s in statuses(sink)), (
        "the periodic status says tasks were restarted")
    assert not any("device dropped the link" in d for d in details), "the exception's text is not echoed"


def test_a_batch_that_raises_is_skipped_and_counted() -> None:
    sink = ListSink()
    agent = EdgeAgent(Settings(edge=EdgeSettings(agent_id="edge-bad")), ASSETS, sink)
    other = default_plant()[1]
    source = SimulatorSource(ASSETS, {}, seed=1, interval_s=0.0, snapshot_samples=256, max_ticks=3)
    stray = SimulatorSource([other], {}, seed=1, snapshot_samples=256).tick(0.0, utcnow())

    class Mixed:
        async def __aenter__(self) -> Mixed:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def batches(self) -> AsyncIterator[RawBatch]:
            for batch in stray:
                yield batch  # an asset this agent does not serve: handle_batch raises KeyError
            async with source:
                async for batch in source.batches():
                    yield batch

    stats = asyncio.run(agent.run(Mixed(), threading.Event()))
    assert stats.batch_errors == len(stray) and stats.windows > 0 and stats.task_restarts == {}
    assert any("a raw batch failed to process (KeyError)" in s.detail for s in statuses(sink))
