"""The processes of the chaos harness: brokers, bridge relays, PostgreSQL, ingest workers, publishers.

:class:`Topology` starts two sites (a Mosquitto each, bridged to the centre by the bridge file
``genedge broker bridge`` writes, through a relay the harness can cut), a central Mosquitto with
persistence, a PostgreSQL cluster whose data survives restarts, two ingest workers sharing one
subscription, the load publishers and the order reader. Each process is a :class:`Child` the
faults can kill and restart; :meth:`Topology.pids` names every process for the memory sampler.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from genedge.broker import write_bridge_config
from genedge.localservices import Mosquitto, PostgresCluster, fill_disk, free_port, wait_port

#: The two sites of the run.
SITES = ("site-a", "site-b")
#: Prefix of every load publisher's id: the store's rows of this run are ``publisher LIKE 'chaos-%'``.
PUBLISHER_PREFIX = "chaos-"
#: Size of the small disk under the queue of the publisher whose disk is filled.
SMALL_DISK = "16m"


@dataclass
class Child:
    """One child process of the run, restartable under the same command line."""

    role: str
    cmd: list[str]
    log: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    unexpected_exits: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        self.starts += 1

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, no acknowledgement."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart_if_dead(self) -> bool:
        """Start the process again if it exited on its own (a supervisor's job); ``True`` if it had."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exits += 1
            self.start()
            return True
        return False


@dataclass
class Publisher:
    """A load publisher process and the files it keeps (queue, seq log, rate file)."""

    child: Child
    publisher_id: str
    site: str
    queue: Path
    seq_log: Path
    rate_file: Path

    def set_rate(self, per_s: float) -> None:
        tmp = self.rate_file.with_suffix(".tmp")
        tmp.write_text(f"{per_s:.3f}\n")
        os.replace(tmp, self.rate_file)


@dataclass
class Topology:
    """Every process of one chaos run, under ``workdir``."""

    workdir: Path
    publishers_per_site: int = 2
    centre: Mosquitto = field(init=False)
    sites: dict[str, Mosquitto] = field(init=False, default_factory=dict)
    relays: dict[str, Child] = field(init=False, default_factory=dict)
    postgres: PostgresCluster = field(init=False)
    workers: list[Child] = field(init=False, default_factory=list)
    publishers: list[Publisher] = field(init=False, default_factory=list)
    reader: Child = field(init=False)
    small_disk: Path | None = field(init=False, default=None)
    small_disk_error: str | None = field(init=False, default=None)

    @property
    def db_url(self) -> str:
        return self.postgres.url

    @property
    def order_file(self) -> Path:
        return self.workdir / "order.json"

    @property
    def disk_publisher(self) -> Publisher:
        """The publisher whose queue sits on the small disk (the first of the first site)."""
        return self.publishers[0]

    def start(self) -> None:
        """Start everything, centre first; the reader subscribes before any bridge connects."""
        py = sys.executable
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # PostgreSQL runs as its own user when we are root: it must reach pg/
        (self.workdir / "pg").mkdir(parents=True)
        self.postgres = PostgresCluster.create(self.workdir / "pg")
        self.postgres.start()
        centre_dir = self.workdir / "centre"
        centre_dir.mkdir()
        # The centre's receive maximum admits the bridges' in-flight window (docs/deployment.md).
        self.centre = Mosquitto(port=free_port(), workdir=centre_dir, persistence=True,
                                extra_conf="max_inflight_messages 20000\n")
        self.centre.start()
        self.reader = Child("order-reader", [py, "-m", "benchmarks._chaos_reader", "--broker",
                                             f"127.0.0.1:{self.centre.port}", "--out", str(self.order_file)],
                            self.workdir / "reader.log")
        self.reader.start()
        self._start_workers(py)
        for site in SITES:
            self._start_site(py, site)
        self._mount_small_disk()
        for site in SITES:
            for i in range(self.publishers_per_site):
                self._start_publisher(py, site, i)

    def _start_workers(self, py: str) -> None:
        env = {**os.environ, "GENEDGE_STORE__BATCH_SIZE": "500"}
        for i in range(2):
            cmd = [py, "-m", "genedge", "ingest", "run", "--db", self.db_url, "--broker",
                   f"127.0.0.1:{self.centre.port}", "--client-id", f"chaos-ingest-{i}", "--share-group", "chaos"]
            worker = Child(f"ingest-{i}", cmd, self.workdir / f"ingest-{i}.log", env=env)
            worker.start()
            self.workers.append(worker)

    def _start_site(self, py: str, site: str) -> None:
        relay_port = free_port()
        relay = Child(f"relay-{site}", [py, "-m", "benchmarks._chaos_proxy", "--listen", str(relay_port),
                                        "--target", str(self.centre.port)], self.workdir / f"relay-{site}.log")
        relay.start()
        wait_port(relay_port)
        self.relays[site] = relay
        site_dir = self.workdir / site
        site_dir.mkdir()
        # The bridge file as a plant writes it with `genedge broker bridge`: plain TCP on loopback
        # (TLS is covered by the bridge's own tests and adds nothing to fault tolerance).
        # The site broker's persistence_location is set by its own configuration (Mosquitto refuses two).
        # The bridge waits at least 3 s before it reconnects (GenEdge's default: 5): after a central
        # broker restart the ingest workers, retrying every 0.2 s, subscribe again first
        # (Mosquitto 2.0 does not restore shared subscriptions from its persistence file).
        settings = Settings.model_validate({"mqtt": {"site": site, "bridge": {
            "host": "127.0.0.1", "port": relay_port, "tls": False, "allow_plain_tcp": True,
            "connection": f"chaos-bridge-{site}", "restart_timeout": (3, 10), "max_queued_messages": 1_000_000,
            "max_queued_bytes": 0}}})
        conf_d = site_dir / "conf.d"
        write_bridge_config(settings, conf_d)
        broker = Mosquitto(port=free_port(), workdir=site_dir, persistence=True, extra_conf=f"include_dir {conf_d}\n")
        broker.start()
        self.sites[site] = broker

    def _mount_small_disk(self) -> None:
        mount = self.workdir / "small-disk"
        mount.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK}", "tmpfs", str(mount)],
                              capture_output=True, check=False)
        if done.returncode == 0:
            self.small_disk = mount
        else:
            self.small_disk_error = done.stderr.decode(errors="replace").strip() or f"mount exited {done.returncode}"

    def _start_publisher(self, py: str, site: str, i: int) -> None:
        pid = f"{PUBLISHER_PREFIX}{site}-{i}"
        first = not self.publishers
        qdir = self.small_disk if first and self.small_disk is not None else self.workdir / "queues"
        qdir.mkdir(exist_ok=True)
        pub = Publisher(Child(pid, [], self.workdir / f"{pid}.log"), pid, site, qdir / f"{pid}.db",
                        self.workdir / f"{pid}.seq", self.workdir / f"{pid}.rate")
        pub.child.cmd = [py, "-m", "benchmarks._chaos_publisher", "--broker", f"127.0.0.1:{self.sites[site].port}",
                         "--site", site, "--publisher", pid, "--queue", str(pub.queue), "--log", str(pub.seq_log),
                         "--rate-file", str(pub.rate_file)]
        pub.set_rate(0.0)
        pub.child.start()
        self.publishers.append(pub)

    def set_rate(self, total_per_s: float) -> None:
        """Spread ``total_per_s`` messages per second evenly over the publishers."""
        for p in self.publishers:
            p.set_rate(total_per_s / len(self.publishers))

    def supervise(self) -> list[str]:
        """Restart the workers, publishers, relays and reader that exited on their own; their roles."""
        children = [*self.workers, *(p.child for p in self.publishers), *self.relays.values(), self.reader]
        return [c.role for c in children if c.restart_if_dead()]

    def pids(self) -> dict[str, int | None]:
        """Role -> process id of every process of the run (``None`` while it is down)."""
        out: dict[str, int | None] = {"broker-centre": self.centre.pid, "postgres": self.postgres.postmaster_pid()}
        out |= {f"broker-{s}": b.pid for s, b in self.sites.items()}
        out |= {c.role: c.pid for c in (*self.workers, *(p.child for p in self.publishers),
                                        *self.relays.values(), self.reader)}
        return out

    def fill_small_disk(self) -> Path:
        """Write a ballast file until the small disk is full; returns it (delete it to free the disk)."""
        assert self.small_disk is not None
        return fill_disk(self.small_disk)

    def stop(self) -> None:
        """Stop everything: publishers first (they drain), the centre and the database last."""
        for p in self.publishers:
            p.child.stop()
        for c in (*self.relays.values(),):
            c.stop()
        for b in self.sites.values():
            b.stop()
        for w in self.workers:
            w.stop()
        if hasattr(self, "reader"):
            self.reader.stop()
        if hasattr(self, "centre"):
            self.centre.stop()
        if hasattr(self, "postgres"):
            self.postgres.stop("fast")
        if self.small_disk is not None:
            subprocess.run(["umount", "-l", str(self.small_disk)], capture_output=True, check=False)
            self.small_disk = None
        time.sleep(0.1)
        shutil.rmtree(self.workdir / "queues", ignore_errors=True)
