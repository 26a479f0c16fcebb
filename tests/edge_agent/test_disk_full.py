"""The disk queue bounded in bytes, and a full disk: an alarm and the overflow policy, never a crash."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.sim import default_plant
from edge_agent.queue import DiskQueue
from edge_agent.sources.simulator import SimulatorSource
from edge_agent.wiring import build_agent
from genedge.localservices import Mosquitto, fill_disk
from tests._factories import wait_for
from tests.edge_agent.conftest import agent_settings, agent_thread
from tests.edge_agent.test_commands import Console

PAYLOAD = b"x" * 1000


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
def test_the_queue_is_bounded_in_bytes(tmp_path: Path, overflow: str) -> None:
    q = DiskQueue(tmp_path / "q.db", max_messages=1000, overflow=overflow, max_bytes=10_000)  # type: ignore[arg-type]
    ids = [q.put("t", PAYLOAD) for _ in range(25)]
    assert q.nbytes <= 10_000 and len(q) == 9, "9 rows of 1001 bytes fit in 10,000"
    assert q.dropped == 16
    kept = [m.id for m in q.peek(0, 100)]
    if overflow == "drop_oldest":
        assert kept == ids[-9:], "the newest stay"
    else:
        assert kept == ids[:9] and ids[9:] == [None] * 16, "the newest are refused"
    assert q.put("t", b"y" * 20_000) is None, "a message larger than the whole bound is refused"
    reopened_bytes = q.nbytes
    q.close()
    assert DiskQueue(tmp_path / "q.db", max_bytes=10_000).nbytes == reopened_bytes, "the byte count survives a restart"


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
def test_a_full_database_is_an_alarm_and_the_policy_not_an_exception(tmp_path: Path, overflow: str) -> None:
    q = DiskQueue(tmp_path / "q.db", overflow=overflow, alarm_hold_s=0.2)  # type: ignore[arg-type]
    pages = int(q._db.execute("PRAGMA page_count").fetchone()[0])
    q._db.execute(f"PRAGMA max_page_count = {pages + 12}")  # a disk with room for a few dozen rows
    ids = [q.put("t", PAYLOAD + str(i).encode()) for i in range(200)]
    assert q.alarm == "disk full" and q.storage_errors > 0
    assert q.dropped > 0 and len(q) + q.dropped == 200, "every message is kept or counted as dropped"
    kept = [m.id for m in q.peek(0, 1000)]
    if overflow == "drop_oldest":
        assert ids[-1] is not None and kept[-1] == ids[-1], "the newest message got in"
    else:
        assert kept == [i for i in ids if i is not None] and ids[-1] is None, "the oldest stay, the newest go"
    for row in kept[:5]:
        q.ack(row)  # delivered rows free their space
    q._db.execute("PRAGMA max_page_count = 1000000")  # space returns
    time.sleep(0.3)
    assert q.put("t", PAYLOAD) is not None
    assert q.alarm is None, "the alarm clears when a write succeeds again"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs (needs root: skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_the_agent_survives_a_full_disk(broker: Mosquitto, tmp_path: Path, small_disk: Path) -> None:
    settings = agent_settings(broker, small_disk, "edge-full",  # the queue on the small disk
                              raw_below_hz=1e9, status_interval_s=1.0)
    assets = default_plant()[:1]
    e = settings.edge
    queue = DiskQueue(e.queue_path, e.queue_max_messages, e.overflow, max_bytes=e.queue_max_bytes, alarm_hold_s=1.0)
    agent, pub = build_agent(settings, assets, queue=queue, reconnect_s=(0.5, 2.0))
    pub.start()
    console = Console(broker, settings.mqtt.site)
    source = SimulatorSource(assets, {}, seed=5, interval_s=0.1, snapshot_samples=2048)
    try:
        with agent_thread(lambda stop: agent.run(source, stop)):
            assert wait_for(lambda: agent.stats.windows > 5 and pub.stats.acked > 20, 30)
            ballast = small_disk / "ballast"
            try:
                fill_disk(small_disk)  # as a runaway log would; the agent's queue may have filled it already
                assert wait_for(lambda: pub.queue_alarm == "disk full", 60), "the queue met the full disk"
                windows, dropped = agent.stats.windows, queue.dropped
                assert wait_for(lambda: agent.stats.windows > windows + 5 and queue.dropped > dropped + 10, 30), (
                    "the agent goes on, the policy drops")
            finally:
                ballast.unlink(missing_ok=True)  # space returns
            assert wait_for(lambda: any(s.detail.startswith("disk queue: recovered") for s in console.statuses), 60), (
                pub.stats, len(queue), queue.alarm, queue.storage_errors)
            acked = pub.stats.acked
            assert wait_for(lambda: pub.stats.acked > acked + 20, 20), "data flows again"
    finally:
        pub.close(drain_timeout=10)
        queue.close()
        console.close()
    assert agent.stats.task_restarts == {} and agent.stats.batch_errors == 0
    assert pub.stats.dropped == queue.dropped > 0, "the dropped messages are counted"
    mine = [s for s in console.statuses if s.publisher == "edge-full" and s.asset_id == "edge-full"]
    alarms = [s for s in mine if "disk queue: disk full" in s.detail]
    assert alarms and all(s.state == "degraded" for s in alarms), "the full disk was reported as an alarm"
    assert any("messages dropped" in s.detail and "drop_oldest" in s.detail for s in alarms), [s.detail for s in alarms]
