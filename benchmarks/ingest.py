"""Ingest throughput: readings/s from MQTT into SQLite and PostgreSQL through the ingest service,
as a ratio to a bare subscriber measured in the same run, and how PostgreSQL ingest grows with
1-3 workers sharing the stream.

    .venv/bin/python -m benchmarks.ingest [--n 20000] [--samples 256] [--repeats 3]

Every part runs in its own process, as deployed: publisher processes (standing in for edge
agents) publish ``--n`` readings at QoS 1 as fast as the broker takes them; the consumer is either
a bare paho subscriber (receives and acknowledges, nothing else: the ceiling of broker, client
library and this machine) or ``genedge ingest run`` workers (validate, store, acknowledge after
commit). A run's rate is n / (time from the publishers' start to the last message received, or
the last reading committed). Each repeat runs the bare subscriber and every ingest variant back
to back, so a ratio compares runs under the same conditions; the ratios' spread over repeats is
reported with them. Every ingest run is checked for exactly-once storage (n rows, 0 duplicates).

Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.mqtt import connect, make_client
from core.settings import MqttSettings
from core.wire import TOPIC_ROOT, ReadingBatch, encode, host_state_topic, topic_for, utcnow
from genedge.localservices import mosquitto, postgres_cluster
from ingest.store import Store

RESULTS = Path(__file__).with_name("results") / "ingest.json"
SITE = "plant1"
#: Publisher processes: one publisher cannot keep a broker busy on its own.
PUBLISHERS = 2
#: What a child prints once connected (a publisher) or subscribed (the bare subscriber).
READY = "ready"


# ------------------------------------------------------------------ child processes
def _publish(port: int, publisher: str, n: int, samples: int, seed: int) -> None:
    """Publish ``n`` readings as ``publisher`` at QoS 1, as fast as the broker acknowledges them."""
    from edge_agent.publisher import MqttPublisher

    rng = np.random.default_rng(seed)
    now = utcnow()
    msgs = []
    for seq in range(n):
        m = ReadingBatch(publisher=publisher, seq=seq, asset_id=f"P-{seq % 8}", channel="vib_de",
                         quantity="acceleration", unit="g", sample_rate_hz=25600, start=now,
                         values=rng.normal(0, 0.5, samples).round(5).tolist())
        msgs.append((topic_for(SITE, m.asset_id, "readings"), encode(m)))
    pub = MqttPublisher(MqttSettings(port=port, embedded=False), publisher, max_inflight=1000)
    pub.connect()
    print(READY, flush=True)
    sys.stdin.readline()  # the parent says go once every publisher is connected
    cpu0 = time.process_time()
    for topic, payload in msgs:
        pub.publish_raw(topic, payload)
    if not pub.flush(600):
        raise SystemExit(f"{publisher}: broker did not acknowledge every message")
    print(json.dumps({"cpu_s": time.process_time() - cpu0}), flush=True)  # from go until all acknowledged
    pub.close()


def _bare(port: int, n: int) -> None:
    """Receive ``n`` QoS 1 messages (auto-acknowledged) and print the monotonic time of the last."""
    got = 0
    done = threading.Event()

    def on_message(*_a: object) -> None:
        nonlocal got
        got += 1
        if got >= n:
            done.set()

    settings = MqttSettings(port=port, embedded=False)
    sub = make_client(settings, client_id=f"bench-bare-{os.getpid()}", protocol="5")
    sub.on_message = on_message
    sub.on_subscribe = lambda *_a: print(READY, flush=True)
    connect(sub)
    sub.subscribe(f"{TOPIC_ROOT}/#", qos=1)
    sub.loop_start()
    done.wait(600)
    print(json.dumps({"last_at": time.monotonic(), "received": got}), flush=True)
    sub.loop_stop()
    sub.disconnect()


# ------------------------------------------------------------------ orchestration
def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (a PostgreSQL server's backends)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


class _ServerCpu:
    """CPU a server process and its children (PostgreSQL's backends) use between start and stop."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._start = self._snapshot()

    def _snapshot(self) -> dict[int, float]:
        if self.pid is None:
            return {}
        out = {}
        for p in (self.pid, *_children_of(self.pid)):
            try:
                out[p] = _cpu_s(p)
            except (OSError, ValueError, IndexError):
                continue
        return out

    def used_s(self) -> float:
        return sum(cpu - self._start.get(p, 0.0) for p, cpu in self._snapshot().items())


@dataclass(frozen=True)
class Run:
    """One consumer run: messages per second and CPU per message of each part (publishers, broker,
    consumer, database server)."""

    rate: float
    cpu_us_per_msg: dict[str, float]


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.ingest", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _await_line(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{what} exited before it was ready (rc {proc.wait()})")
    return line.strip()


@contextmanager
def _publishers(port: int, tag: str, n: int, samples: int) -> Iterator[list[subprocess.Popen[str]]]:
    share = [n // PUBLISHERS + (i < n % PUBLISHERS) for i in range(PUBLISHERS)]
    procs = [_child("_publish", str(port), f"bench-{tag}-{i}", str(k), str(samples), str(i))
             for i, k in enumerate(share)]
    try:
        for p in procs:
            if _await_line(p, "publisher") != READY:
                raise RuntimeError("publisher did not connect")
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def _go(procs: list[subprocess.Popen[str]]) -> float:
    t0 = time.monotonic()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return t0


def _publisher_cpu_s(pubs: list[subprocess.Popen[str]]) -> float:
    """The publishers' CPU seconds from go until the broker acknowledged their last message."""
    return float(sum(json.loads(_await_line(p, "publisher"))["cpu_s"] for p in pubs))


def _per_msg(n: int, **cpu_s: float) -> dict[str, float]:
    parts = {k: v / n * 1e6 for k, v in cpu_s.items()}
    return {**parts, "total": sum(parts.values())}


def bare_rate(port: int, tag: str, n: int, samples: int, broker_pid: int | None) -> Run:
    sub = _child("_bare", str(port), str(n))
    try:
        if _await_line(sub, "bare subscriber") != READY:
            raise RuntimeError("bare subscriber did not subscribe")
        with _publishers(port, tag, n, samples) as pubs:
            cpu0, broker = _cpu_s(sub.pid), _ServerCpu(broker_pid)
            t0 = _go(pubs)
            out = json.loads(_await_line(sub, "bare subscriber"))
            cpu = _cpu_s(sub.pid) - cpu0
            publishers = _publisher_cpu_s(pubs)
            broker_s = broker.used_s()
        if out["received"] < n:
            raise RuntimeError(f"bare subscriber received {out['received']} of {n}")
        return Run(n / (out["last_at"] - t0),
                   _per_msg(n, publishers=publishers, broker=broker_s, consumer=cpu, database=0.0))
    finally:
        sub.kill()
        sub.wait()


def _wait_online(port: int, client_ids: list[str], timeout: float = 60.0) -> None:
    """Wait for each worker's retained host state to say online (it has subscribed)."""
    online: set[str] = set()
    ready = threading.Event()

    def on_message(_c: object, _u: object, msg: Any) -> None:
        if json.loads(msg.payload or b"{}").get("online"):
            online.add(msg.topic)
            if len(online) == len(client_ids):
                ready.set()

    c = make_client(MqttSettings(port=port, embedded=False), client_id=f"bench-watch-{time.monotonic_ns()}")
    c.on_message = on_message
    connect(c)
    for cid in client_ids:
        c.subscribe(host_state_topic(cid), qos=1)
    c.loop_start()
    try:
        if not ready.wait(timeout):
            raise RuntimeError(f"ingest workers not online after {timeout:.0f} s: {sorted(online)}")
    finally:
        c.loop_stop()
        c.disconnect()


def ingest_rate(port: int, url: str, tag: str, n: int, samples: int, *, workers: int, batch: int,
                log_dir: Path, broker_pid: int | None, db_pid: int | None) -> Run:
    """Start ``workers`` ingest processes on one shared subscription, publish, time until all is stored."""
    env = {**os.environ, "GENEDGE_STORE__BATCH_SIZE": str(batch)}
    ids = [f"bench-ingest-{tag}-{w}" for w in range(workers)]
    procs = []
    for cid in ids:
        cmd = [sys.executable, "-m", "genedge", "ingest", "run", "--db", url, "--broker", f"127.0.0.1:{port}",
               "--client-id", cid]
        if workers > 1:
            cmd += ["--share-group", f"bench-{tag}"]
        log = (log_dir / f"{cid}.log").open("w")
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env))
    store = Store(url)
    try:
        _wait_online(port, ids)
        with _publishers(port, tag, n, samples) as pubs:
            cpu0, broker, database = sum(_cpu_s(p.pid) for p in procs), _ServerCpu(broker_pid), _ServerCpu(db_pid)
            t0 = _go(pubs)
            prefix = f"bench-{tag}-"
            while True:
                stored = sum(store.count_readings(f"{prefix}{i}") for i in range(PUBLISHERS))
                if stored >= n:
                    t1 = time.monotonic()
                    cpu = sum(_cpu_s(p.pid) for p in procs) - cpu0
                    broker_s, database_s = broker.used_s(), database.used_s()
                    break
                if any(p.poll() is not None for p in procs):
                    raise RuntimeError(f"an ingest worker exited; see {log_dir}")
                if time.monotonic() - t0 > 900:
                    raise RuntimeError(f"only {stored} of {n} stored after 900 s")
                time.sleep(0.05)
            publishers = _publisher_cpu_s(pubs)
        dups = sum(store.count_duplicate_readings(f"{prefix}{i}") for i in range(PUBLISHERS))
        if stored != n or dups:
            raise RuntimeError(f"exactly-once broken: {stored} rows for {n} messages, {dups} duplicates")
        return Run(n / (t1 - t0), _per_msg(n, publishers=publishers, broker=broker_s, consumer=cpu, database=database_s))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        store.close()


def _summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-workers", type=int, default=3)
    args = ap.parse_args()
    variants = [("sqlite", 1), *((f"postgres_w{w}", w) for w in range(1, args.max_workers + 1))]
    rates: dict[str, list[float]] = {"bare": [], **{name: [] for name, _ in variants}}
    cpu: dict[str, list[dict[str, float]]] = {"bare": [], **{name: [] for name, _ in variants}}
    ratios: dict[str, list[float]] = {name: [] for name, _ in variants}
    with mosquitto() as broker, postgres_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        pg, pg_pid = cluster.url, cluster.postmaster_pid()
        for r in range(args.repeats):
            bare = bare_rate(broker.port, f"r{r}-bare", args.n, args.samples, broker.pid)
            rates["bare"].append(bare.rate)
            cpu["bare"].append(bare.cpu_us_per_msg)
            for name, workers in variants:
                url = f"sqlite:///{tmp}/bench-{r}.db" if name == "sqlite" else pg
                run = ingest_rate(broker.port, url, f"r{r}-{name}", args.n, args.samples, workers=workers,
                                  batch=args.batch, log_dir=Path(tmp), broker_pid=broker.pid,
                                  db_pid=None if name == "sqlite" else pg_pid)
                rates[name].append(run.rate)
                cpu[name].append(run.cpu_us_per_msg)
                ratios[name].append(run.rate / bare.rate)
            print(f"repeat {r}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items()), flush=True)
    results: dict[str, Any] = {
        "what": "readings (batches of samples) per second from publisher processes over MQTT QoS 1: a bare "
                "subscriber process vs `genedge ingest run` worker processes (validate, store, ack after commit)",
        "n_messages": args.n, "samples_per_message": args.samples, "batch_size": args.batch,
        "publishers": PUBLISHERS, "repeats": args.repeats,
        "payload_bytes": len(encode(ReadingBatch(publisher="bench-r0-bare-0", seq=0, asset_id="P-0", channel="vib_de",
                                                 quantity="acceleration", unit="g", sample_rate_hz=25600,
                                                 start=utcnow(), values=[0.12345] * args.samples))),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "broker": "mosquitto (Debian)", "postgres": "PostgreSQL 15, fsync off (throwaway cluster)",
        "msgs_per_s": {k: _summary(v) for k, v in rates.items()},
        "ratio_to_bare": {k: _summary(v) for k, v in ratios.items()},
        "consumer_cpu_us_per_msg": {k: _summary([c["consumer"] for c in v]) for k, v in cpu.items()},
        # Where the two cores go: CPU per message of each part, means over repeats. "database" is the
        # PostgreSQL server (its backends, including the one counting the stored rows); SQLite is in
        # the consumer. The rate a run could reach with every core busy is cores / total.
        "cpu_us_per_msg_by_part": {k: {part: round(statistics.fmean(c[part] for c in v), 1) for part in v[0]}
                                   for k, v in cpu.items()},
        "cpu_bound_msgs_per_s": {k: round(statistics.fmean((os.cpu_count() or 1) * 1e6 / c["total"] for c in v))
                                 for k, v in cpu.items()},
        "exactly_once": "every ingest run stored n rows with 0 duplicates",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_publish":
        _publish(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_bare":
        _bare(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
