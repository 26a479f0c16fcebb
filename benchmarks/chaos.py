"""Chaos and soak: two bridged sites, two ingest workers on PostgreSQL, faults on a schedule.

    .venv/bin/python -m benchmarks.chaos [--minutes 10] [--rate MSG_PER_S] [--out benchmarks/results]

Site A and site B each run a Mosquitto bridged to a central Mosquitto (persistence on) with the
bridge file ``genedge broker bridge`` writes; each bridge goes through a TCP relay the harness can
cut. Two load publishers per site (separate processes) publish readings through the edge agent's
store-and-forward stack (``ReliablePublisher`` over its SQLite disk queue); two ``genedge ingest
run`` workers share the stream into one PostgreSQL. Load publishers rather than simulator agents:
their rate is set exactly and every sequence number they queue is logged, which is what counting
lost and duplicated messages needs; the path from the queue on is the agent's own code.

A ramp first measures the highest end-to-end rate the topology sustains (stored rate keeps up
with the offered rate); the soak runs at 80 % of it (or at ``--rate``) for ``--minutes`` (and on
until :data:`RECOVERY_TAIL_S` after the last fault clears), with each fault once, spread over the
run: SIGKILL of a publisher (restarted: its queue replays), of an ingest worker (restarted), of
the central broker (restarted from its persistence file), the site A bridge cut at the relay (60 s
in a 10-minute run, scaled with the run), PostgreSQL stopped and started, and the queue disk of a
publisher filled (a 16 MiB tmpfs; then freed).

Measured: lost (a sequence number a publisher's queue accepted but the store lacks after the
drain), duplicated (a sequence number stored twice), order (first arrivals at the centre per
publisher; see ``_chaos_reader``), end-to-end lag (``received_at - sent_at`` of each stored
row), recovery time per fault (from the fault until three seconds in a row store at least 90 %
of the offered rate with every row's lag under the threshold), and the resident memory of every
process (sampled from /proc each second; flat when the straight line fitted over the second half
grows less than ``max(8 MiB, 10 % of its median)``).

Writes ``chaos.json``, ``chaos.md`` and ``chaos.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from benchmarks._chaos_publisher import reading
from benchmarks._chaos_report import write_markdown, write_plot
from benchmarks._chaos_topology import PUBLISHER_PREFIX, Publisher, Topology
from core.settings import MqttSettings
from edge_agent.publisher import MqttPublisher
from ingest.store import Store

RESULTS = Path(__file__).parent / "results"
#: Window of consecutive seconds that must meet the lag and throughput bounds to count as recovered.
RECOVERY_WINDOW_S = 3
#: Share of the offered rate a recovered second must store.
RECOVERY_RATE_SHARE = 0.9
#: Lag bound of a recovered second: this many times the pre-fault p99 lag, and at least the floor.
LAG_FACTOR, LAG_FLOOR_S = 3.0, 2.0
#: The soak runs on at least this long after the last fault clears, so that the last fault has
#: time to show its recovery in a short run too (a restarted process takes seconds to start).
RECOVERY_TAIL_S = 15.0
#: Memory is flat when the fitted growth over the second half stays under both bounds' maximum.
FLAT_MIB, FLAT_SHARE = 8.0, 0.10
#: Seconds after a process starts before its memory counts toward the flatness judgement.
WARMUP_S = 20.0


@dataclass
class Fault:
    """One scheduled fault: ``at`` is its share of the soak, ``outage_s`` how long it lasts."""

    name: str
    what: str
    at: float
    outage_s: float
    started: float = 0.0
    cleared: float = 0.0
    skipped: str | None = None
    recovered_at: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def fault_schedule(minutes: float) -> list[Fault]:
    """The six faults of a run of ``minutes``; outages are those of a 10-minute run scaled with it.

    The bridge cut comes first: at 80 % load its backlog takes about twice the cut to drain.
    """
    scale = minutes / 10.0
    kill = max(1.0, 5.0 * scale)
    return [
        Fault("bridge_cut", "site A's bridge relay cut (connections reset, new ones refused)", 0.08,
              max(3.0, 60.0 * scale)),
        Fault("publisher_kill", "SIGKILL of a site B publisher, restarted on its queue", 0.42, kill),
        Fault("central_broker_kill", "SIGKILL of the central broker, restarted from its persistence file", 0.52, kill),
        Fault("postgres_restart", "PostgreSQL stopped (fast) and started on the same data", 0.64, kill),
        Fault("disk_full", "the queue disk of a site A publisher filled, then freed", 0.76, max(2.0, 20.0 * scale)),
        Fault("ingest_kill", "SIGKILL of an ingest worker, restarted under its client id", 0.88, kill),
    ]


class Sampler:
    """Background sampling, once a second: resident memory of every process, stored row count."""

    def __init__(self, topo: Topology, engine: sa.Engine) -> None:
        self.topo = topo
        self.engine = engine
        self.rss: list[tuple[float, str, int, float]] = []  # (t, role, pid, MiB)
        self.stored: list[tuple[float, int]] = []
        self.restarted: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            now = time.time()
            for role, pid in self.topo.pids().items():
                if pid is not None and (mib := rss_mib(pid)) is not None:
                    self.rss.append((now, role, pid, mib))
            self.restarted += [(now, role) for role in self.topo.supervise()]
            count = stored_count(self.engine)
            if count is not None:
                self.stored.append((now, count))

    def rate(self, since: float) -> float:
        """Stored messages per second since ``since`` (wall clock)."""
        pts = [(t, n) for t, n in self.stored if t >= since]
        if len(pts) < 2:
            return 0.0
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])


def rss_mib(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB from /proc, ``None`` when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def stored_count(engine: sa.Engine) -> int | None:
    """Readings of this run's publishers in the store; ``None`` while the database is away."""
    try:
        with engine.connect() as c:
            return int(c.execute(sa.text("SELECT count(*) FROM readings WHERE publisher LIKE :p"),
                                 {"p": f"{PUBLISHER_PREFIX}%"}).scalar_one())
    except sa.exc.SQLAlchemyError:
        return None


def read_seq_log(path: Path) -> tuple[set[int], set[int]]:
    """(accepted, refused) sequence numbers from a publisher's log."""
    accepted: set[int] = set()
    refused: set[int] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            kind, _, seq = line.partition(" ")
            if seq.isdigit():
                (accepted if kind == "a" else refused).add(int(seq))
    return accepted, refused


def accepted_total(pubs: list[Publisher]) -> int:
    return sum(len(read_seq_log(p.seq_log)[0]) for p in pubs)


# ---------------------------------------------------------------------------------------------- ramp


def ramp(topo: Topology, sampler: Sampler, step_s: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Raise the offered rate by half each step until the store stops keeping up; the highest stored rate.

    A step is sustained when the publishers offered at least 90 % of the target and the store took
    at least 95 % of what they offered over the step's second half.
    """
    steps: list[dict[str, float]] = []
    target = 200.0
    for _ in range(14):
        topo.set_rate(target)
        time.sleep(step_s / 2)
        t0, a0 = time.time(), accepted_total(topo.publishers)
        time.sleep(step_s / 2)
        t1, a1 = time.time(), accepted_total(topo.publishers)
        offered = (a1 - a0) / (t1 - t0)
        stored = sampler.rate(t0)
        sustained = offered >= 0.9 * target and stored >= 0.95 * offered
        steps.append({"target": target, "offered": round(offered, 1), "stored": round(stored, 1),
                      "sustained": sustained})
        log(f"ramp {target:.0f}/s: offered {offered:.0f}/s, stored {stored:.0f}/s, sustained {sustained}")
        if not sustained:
            break
        target *= 1.5
    best = max(min(s["offered"], s["stored"]) for s in steps)
    return {"steps": steps, "max_rate": round(best, 1)}


def wait_subscribed(topo: Topology, engine: sa.Engine, timeout_s: float = 120.0) -> None:
    """Probe through each site until both ingest workers and both bridges carry messages to the store.

    A message that reaches the centre before any worker's shared subscription exists is dropped by
    the broker (there is no session to queue it for): the load starts only after this.

    Raises:
        RuntimeError: no probe of some site reached the store within ``timeout_s``.
    """
    probes = {site: MqttPublisher(MqttSettings(host="127.0.0.1", port=b.port, embedded=False), f"probe-{site}")
              for site, b in topo.sites.items()}
    end = time.monotonic() + timeout_s
    seq = 0
    try:
        for p in probes.values():
            p.connect()
        while time.monotonic() < end:
            for site, p in probes.items():
                p.publish(site, reading(p.publisher_id, seq, random.Random(seq)))
            seq += 1
            if all(_probe_stored(engine, p.publisher_id) for p in probes.values()):
                time.sleep(3.0)  # the second worker's subscription, started with the first
                return
            time.sleep(0.5)
    finally:
        for p in probes.values():
            p.flush(5.0)
            p.close()
    raise RuntimeError(f"no probe reached the store within {timeout_s:.0f} s; see the logs in {topo.workdir}")


def _probe_stored(engine: sa.Engine, publisher: str) -> bool:
    try:
        with engine.connect() as c:
            return bool(c.execute(sa.text("SELECT count(*) FROM readings WHERE publisher = :p"),
                                  {"p": publisher}).scalar_one())
    except sa.exc.SQLAlchemyError:
        return False


def drain(topo: Topology, engine: sa.Engine, timeout_s: float, stall_s: float = 45.0) -> bool:
    """Wait until every accepted message is stored; ``False`` on timeout or when nothing arrived for ``stall_s``.

    The stall bound ends the wait early when messages are lost: nothing more is on its way.
    """
    end = time.monotonic() + timeout_s
    last, last_change = -1, time.monotonic()
    while time.monotonic() < end:
        want = accepted_total(topo.publishers)
        have = stored_count(engine)
        if have is not None and have >= want:
            return True
        if have is not None and have != last:
            last, last_change = have, time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return False
        time.sleep(1.0)
    return False


# ---------------------------------------------------------------------------------------------- faults


def inject(topo: Topology, fault: Fault) -> None:
    """Cause ``fault``, wait its outage, end it; sets ``started`` and ``cleared``."""
    fault.started = time.time()
    if fault.name == "bridge_cut":
        relay = topo.relays["site-a"]
        relay.signal(signal.SIGUSR1)
        time.sleep(fault.outage_s)
        relay.signal(signal.SIGUSR2)
    elif fault.name == "publisher_kill":
        pub = topo.publishers[-1].child
        pub.kill()
        time.sleep(fault.outage_s)
        pub.start()
    elif fault.name == "central_broker_kill":
        topo.centre.kill()
        time.sleep(fault.outage_s)
        topo.centre.start()
    elif fault.name == "postgres_restart":
        topo.postgres.stop("fast")
        time.sleep(fault.outage_s)
        topo.postgres.start()
    elif fault.name == "disk_full":
        if topo.small_disk is None:
            fault.skipped = f"no small disk for the queue: {topo.small_disk_error}"
        else:
            ballast = topo.fill_small_disk()
            _, refused0 = read_seq_log(topo.disk_publisher.seq_log)
            time.sleep(fault.outage_s)
            ballast.unlink()
            _, refused1 = read_seq_log(topo.disk_publisher.seq_log)
            fault.detail["refused_while_full"] = len(refused1) - len(refused0)
    elif fault.name == "ingest_kill":
        worker = topo.workers[0]
        worker.kill()
        time.sleep(fault.outage_s)
        worker.start()
    else:
        raise ValueError(f"unknown fault {fault.name!r}")
    fault.cleared = time.time()


# ---------------------------------------------------------------------------------------------- analysis


def timeline(engine: sa.Engine, t0: float, t1: float) -> dict[str, np.ndarray]:
    """Per second from ``t0`` to ``t1`` (receive time): rows stored, max and p99 lag of those rows."""
    with engine.connect() as c:
        rows = c.execute(sa.text(
            "SELECT extract(epoch FROM received_at), extract(epoch FROM received_at - sent_at) FROM readings "
            "WHERE publisher LIKE :p"), {"p": f"{PUBLISHER_PREFIX}%"}).all()
    arr = np.array(rows, dtype=float).reshape(-1, 2)
    keep = (arr[:, 0] >= t0) & (arr[:, 0] < t1)
    arr = arr[keep]
    n = max(1, int(np.ceil(t1 - t0)))
    idx = np.clip(((arr[:, 0] - t0)).astype(int), 0, n - 1)
    count = np.bincount(idx, minlength=n).astype(float)
    lag_max = np.zeros(n)
    np.maximum.at(lag_max, idx, arr[:, 1])
    order = np.argsort(idx, kind="stable")
    lag_p99 = np.zeros(n)
    starts = np.searchsorted(idx[order], np.arange(n))
    ends = np.searchsorted(idx[order], np.arange(n), side="right")
    lags = arr[order, 1]
    for b in range(n):
        if ends[b] > starts[b]:
            lag_p99[b] = float(np.percentile(lags[starts[b]:ends[b]], 99))
    return {"t": np.arange(n, dtype=float), "count": count, "lag_max": lag_max, "lag_p99": lag_p99, "lags": lags}


def recovery(faults: list[Fault], tl: dict[str, np.ndarray], t0: float, rate: float, lag_bound: float,
             end: float) -> None:
    """Set each fault's ``recovered_at``: the first window after it clears that meets both bounds."""
    ok = (tl["count"] >= RECOVERY_RATE_SHARE * rate) & (tl["lag_max"] <= lag_bound)
    for i, f in enumerate(faults):
        if f.skipped:
            continue
        limit = faults[i + 1].started if i + 1 < len(faults) and faults[i + 1].started else end
        first = int(np.floor(f.cleared - t0))
        last = int(np.floor(limit - t0)) - RECOVERY_WINDOW_S
        for b in range(max(first, 0), min(last, len(ok) - RECOVERY_WINDOW_S) + 1):
            if ok[b:b + RECOVERY_WINDOW_S].all():
                f.recovered_at = max(t0 + b, f.cleared)  # the window's second may have begun before it cleared
                break


def accounting(topo: Topology, engine: sa.Engine) -> dict[str, Any]:
    """Lost, duplicated and refused per publisher, from the seq logs and the store."""
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT publisher, seq, count(*) FROM readings WHERE publisher LIKE :p "
                                 "GROUP BY publisher, seq"), {"p": f"{PUBLISHER_PREFIX}%"}).all()
    stored: dict[str, dict[int, int]] = {}
    for pub, seq, n in rows:
        stored.setdefault(str(pub), {})[int(seq)] = int(n)
    per: dict[str, dict[str, Any]] = {}
    for p in topo.publishers:
        accepted, refused = read_seq_log(p.seq_log)
        got = stored.get(p.publisher_id, {})
        per[p.publisher_id] = {
            "accepted": len(accepted), "refused_by_queue": len(refused), "stored": len(got),
            "lost": len(accepted - got.keys()),
            "duplicated": sum(n - 1 for n in got.values()),
            # queued in the instant of a SIGKILL, before the log line: stored, never promised
            "stored_unlogged": len(got.keys() - accepted - refused),
            "stored_though_refused": len(got.keys() & refused),
            "missing_ranges": _ranges(sorted(accepted - got.keys()))[:10],
        }
    totals = {k: sum(v[k] for v in per.values()) for k in next(iter(per.values())) if k != "missing_ranges"}
    return {"per_publisher": per, "totals": totals}


def _ranges(seqs: list[int]) -> list[list[int]]:
    """Sorted numbers as ``[first, last]`` runs of consecutive numbers."""
    runs: list[list[int]] = []
    for n in seqs:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs


def memory(sampler: Sampler, t_half: float, t_end: float) -> dict[str, dict[str, Any]]:
    """Per process: median RSS and the slope of a line fitted over the second half of the run.

    A process restarted by a fault is judged per process id, each from ``WARMUP_S`` after its first
    sample (a fresh process grows while it imports and fills its caches); the longest such segment
    is reported, and the role is flat only if every segment with enough samples is.
    """
    out: dict[str, dict[str, Any]] = {}
    for role in sorted({r for _, r, _, _ in sampler.rss}):
        pts = [(t, pid, m) for t, r, pid, m in sampler.rss if r == role and t <= t_end]
        first_seen: dict[int, float] = {}
        for t, pid, _ in pts:
            first_seen.setdefault(pid, t)
        segments = []
        for pid, born in first_seen.items():
            seg = np.array([(t, m) for t, p, m in pts if p == pid and t >= max(t_half, born + WARMUP_S)])
            if len(seg) >= 5:
                segments.append(seg)
        if not segments:
            out[role] = {"samples": 0, "flat": None}
            continue
        judged = []
        for seg in segments:
            slope = float(np.polyfit(seg[:, 0] - seg[0, 0], seg[:, 1], 1)[0])
            growth = slope * (seg[-1, 0] - seg[0, 0])
            median = float(np.median(seg[:, 1]))
            bound = max(FLAT_MIB, FLAT_SHARE * median)
            judged.append({"samples": len(seg), "median_mib": round(median, 1), "slope_mib_per_min": round(slope * 60, 3),
                           "growth_mib": round(growth, 2), "bound_mib": round(bound, 1), "flat": bool(growth < bound)})
        longest = max(judged, key=lambda j: j["samples"])
        out[role] = {**longest, "flat": all(j["flat"] for j in judged),
                     "restarted_in_window": len(first_seen) > 1, "segments": len(judged)}
    return out


# ---------------------------------------------------------------------------------------------- run


def run_chaos(minutes: float = 10.0, rate: float | None = None, publishers_per_site: int = 2,
              workdir: Path | None = None, drain_s: float = 300.0,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Set up the topology, ramp (unless ``rate``), soak with the faults, drain, and measure.

    Args:
        minutes: length of the soak (the faults' outages scale with it).
        rate: total messages per second of the soak; ``None`` measures the maximum and takes 80 %.
        publishers_per_site: load publisher processes per site.
        workdir: folder for the run's files (a temporary one if ``None``).
        drain_s: longest wait for the stored count to reach the accepted count at the end.
        log: progress lines.

    Returns:
        The report (what ``chaos.json`` holds), with the per-second timeline and memory samples.

    Raises:
        ValueError: ``minutes``, ``rate`` or ``publishers_per_site`` out of range.
    """
    if not 0.2 <= minutes <= 240:
        raise ValueError(f"minutes must be within 0.2..240, got {minutes}")
    if rate is not None and not 1.0 <= rate <= 100_000:
        raise ValueError(f"rate must be within 1..100000 messages per second, got {rate}")
    if not 1 <= publishers_per_site <= 16:
        raise ValueError(f"publishers_per_site must be within 1..16, got {publishers_per_site}")
    with tempfile.TemporaryDirectory(prefix="genedge-chaos-") as tmp:
        topo = Topology(workdir or Path(tmp), publishers_per_site)
        try:
            return _run(topo, minutes, rate, drain_s, log)
        finally:
            topo.stop()


def _run(topo: Topology, minutes: float, rate: float | None, drain_s: float,
         log: Callable[[str], None]) -> dict[str, Any]:
    topo.start()
    Store(topo.db_url).engine.dispose()  # the schema, before the workers' first write
    engine = sa.create_engine(topo.db_url, pool_pre_ping=True)
    sampler = Sampler(topo, engine)
    sampler.start()
    try:
        wait_subscribed(topo, engine)
        ramp_doc = ramp(topo, sampler, 6.0 if minutes < 3 else 10.0, log) if rate is None else None
        soak_rate = round(0.8 * ramp_doc["max_rate"], 1) if ramp_doc else float(rate or 0)
        topo.set_rate(0.0)
        drain(topo, engine, drain_s)
        log(f"soak at {soak_rate:.0f} msg/s for {minutes} min")
        faults = fault_schedule(minutes)
        topo.set_rate(soak_rate)
        t0 = time.time()
        duration = minutes * 60.0
        for f in faults:
            time.sleep(max(0.0, t0 + f.at * duration - time.time()))
            log(f"t={time.time() - t0:5.0f}s fault {f.name} ({f.outage_s:.0f} s)")
            inject(topo, f)
        time.sleep(max(0.0, max(t0 + duration, faults[-1].cleared + RECOVERY_TAIL_S) - time.time()))
        t_end = time.time()
        topo.set_rate(0.0)
        drained = drain(topo, engine, drain_s)
        time.sleep(3.0)  # late redeliveries land (and would show as duplicates)
        log(f"drained: {drained}")
    finally:
        sampler.stop()
    tl = timeline(engine, t0, t_end)
    first_fault = int(faults[0].started - t0)
    pre_counts = tl["count"][:first_fault]
    with engine.connect() as c:
        pre = np.array(c.execute(sa.text(
            "SELECT extract(epoch FROM received_at - sent_at) FROM readings WHERE publisher LIKE :p "
            "AND received_at >= to_timestamp(:a) AND received_at < to_timestamp(:b)"),
            {"p": f"{PUBLISHER_PREFIX}%", "a": t0, "b": faults[0].started}).scalars().all(), dtype=float)
    baseline_p99 = float(np.percentile(pre, 99)) if len(pre) else 0.0
    lag_bound = max(LAG_FLOOR_S, LAG_FACTOR * baseline_p99)
    recovery(faults, tl, t0, soak_rate, lag_bound, t_end)
    topo.reader.stop()
    order = json.loads(topo.order_file.read_text()) if topo.order_file.exists() else {"publishers": {}}
    counts = accounting(topo, engine)
    mem = memory(sampler, t0 + duration / 2, t_end)
    engine.dispose()
    lags = tl["lags"]
    fault_rows = [{
        "fault": f.name, "what": f.what, "at_s": round(f.started - t0, 1), "outage_s": round(f.cleared - f.started, 1),
        "skipped": f.skipped, "recovered": f.skipped is None and f.recovered_at is not None,
        "recovery_s": round(f.recovered_at - f.started, 1) if f.recovered_at else None,
        "recovery_after_clear_s": round(f.recovered_at - f.cleared, 1) if f.recovered_at else None, **f.detail,
    } for f in faults]
    inversions = sum(p["inversions"] for p in order["publishers"].values())
    return {
        "benchmark": "chaos",
        "machine": {"cpus": _cpus(), "platform": platform.platform(), "python": platform.python_version()},
        "topology": {"sites": 2, "publishers": len(topo.publishers), "ingest_workers": len(topo.workers),
                     "central_broker_persistence": True, "bridge": "Mosquitto bridge (MQTT 5, QoS 1, plain TCP on "
                     "loopback) through a cuttable relay", "store": "PostgreSQL"},
        "ramp": ramp_doc, "soak": {"minutes": minutes, "rate_msg_s": soak_rate, "drained": drained,
                                   "stored_during_soak": int(tl["count"].sum()),
                                   "pre_fault_rate_msg_s": round(float(pre_counts.mean()), 1) if len(pre_counts) else 0},
        "lag_s": {"p50": _pct(lags, 50), "p99": _pct(lags, 99), "max": _pct(lags, 100), "baseline_p99": round(baseline_p99, 3),
                  "recovery_bound": round(lag_bound, 3)},
        "faults": fault_rows, "messages": counts,
        "order": {"kept": inversions == 0, "inversions": inversions,
                  "max_displacement": max((p.get("max_displacement", 0) for p in order["publishers"].values()),
                                          default=0),
                  "historical_inversions": sum(p["historical_inversions"] for p in order["publishers"].values()),
                  "per_publisher": order["publishers"]},
        "memory": mem, "memory_flat": all(m["flat"] is not False for m in mem.values()),
        "supervisor_restarts": [{"t_s": round(t - t0, 1), "role": r} for t, r in sampler.restarted],
        "series": {"t0": t0, "rate": tl["count"].tolist(), "lag_max": tl["lag_max"].round(3).tolist(),
                   "lag_p99": tl["lag_p99"].round(3).tolist(),
                   "rss": [(round(t - t0, 1), r, round(m, 1)) for t, r, _, m in sampler.rss if t0 <= t <= t_end]},
    }


def _pct(a: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(a, q)), 3) if len(a) else None


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.5)
    return cond()


def main() -> None:
    parser = argparse.ArgumentParser(description="chaos and soak of two bridged sites into PostgreSQL")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the soak")
    parser.add_argument("--rate", type=float, default=None, help="total msg/s (default: 80 %% of the measured max)")
    parser.add_argument("--publishers-per-site", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the run's files and logs here (must not exist)")
    parser.add_argument("--drain-s", type=float, default=300.0, help="longest wait for the store to catch up at the end")
    a = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so every child process is stopped and the small disk unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    def log(line: str) -> None:
        print(f"[{time.time() - started:6.0f}s] {line}", flush=True)

    doc = run_chaos(a.minutes, a.rate, a.publishers_per_site, a.workdir, a.drain_s, log=log)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "chaos.json").write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, a.out / "chaos.md")
    write_plot(doc, a.out / "chaos.png")
    print(json.dumps({"messages": doc["messages"]["totals"], "order_kept": doc["order"]["kept"],
                      "memory_flat": doc["memory_flat"], "faults": [(f["fault"], f["recovery_s"]) for f in doc["faults"]]}))


if __name__ == "__main__":
    main()
