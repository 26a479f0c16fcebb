"""Local real services (Mosquitto, PostgreSQL) on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import errno
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def find_binary(name: str, *extra_dirs: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in extra_dirs:
        p = Path(d) / name
        if p.exists():
            return str(p)
    return None


@dataclass
class Mosquitto:
    """A real Mosquitto broker with its own config file; ``stop``/``start`` simulate outages.

    Attributes:
        port: loopback port it listens on.
        workdir: folder of its config, log and (with ``persistence``) persistence file.
        persistence: keep sessions and queued messages in ``workdir/data/mosquitto.db`` across
            restarts; saved every ``autosave_interval_s`` seconds and on a clean stop.
        autosave_interval_s: seconds between saves of the persistence file.
        extra_conf: more configuration lines, e.g. a bridge (``include_dir``, ``connection``).
    """

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    persistence: bool = False
    autosave_interval_s: int = 1
    extra_conf: str = ""

    @property
    def binary(self) -> str:
        b = find_binary("mosquitto", "/usr/sbin")
        if b is None:
            raise RuntimeError("mosquitto is not installed: run the README's test command (it installs it)")
        return b

    @property
    def pid(self) -> int | None:
        """Process id of the running broker, ``None`` while it is stopped."""
        return self.proc.pid if self.proc is not None else None

    def conf_text(self) -> str:
        """The broker's ``mosquitto.conf``."""
        if self.persistence:
            data = self.workdir / "data"
            data.mkdir(exist_ok=True)
            persist = f"persistence true\npersistence_location {data}/\nautosave_interval {self.autosave_interval_s}\n"
        else:
            persist = "persistence false\n"
        return (
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            + persist
            + "max_inflight_messages 1000\n"
            "max_queued_messages 1000000\n"
            "max_queued_bytes 0\n"
            "message_size_limit 4000000\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\n"
            + self.extra_conf
        )

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.conf_text())
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker dies without saving; what it restores is its last autosave."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@contextmanager
def mosquitto() -> Iterator[Mosquitto]:
    with tempfile.TemporaryDirectory(prefix="genedge-mosq-") as d:
        broker = Mosquitto(port=free_port(), workdir=Path(d))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


_PG_DIRS = [f"/usr/lib/postgresql/{v}/bin" for v in (17, 16, 15, 14, 13)]


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster in its own data folder on a loopback port; ``stop``/``start`` keep its data.

    Create it with :meth:`create` (initdb); :attr:`url` is valid while it runs.
    """

    root: Path
    port: int
    pg_ctl: str
    run_as: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://genedge@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls, root: Path, port: int | None = None) -> PostgresCluster:
        """Initialise a cluster in ``root/data`` (trust authentication, user ``genedge``); not started.

        Raises:
            RuntimeError: the server binaries are missing, root has no ``postgres`` user to run them,
                or initdb failed (its message included).
        """
        initdb = find_binary("initdb", *_PG_DIRS)
        pg_ctl = find_binary("pg_ctl", *_PG_DIRS)
        if initdb is None or pg_ctl is None:
            raise RuntimeError("PostgreSQL server binaries not found: run the README's test command (it installs them)")
        run_as: tuple[str, ...] = ()
        if os.geteuid() == 0:  # initdb refuses to run as root
            if not _has_user("postgres"):
                raise RuntimeError("running as root needs a 'postgres' system user for initdb")
            shutil.chown(root, "postgres", "postgres")
            run_as = ("runuser", "-u", "postgres", "--")
        cluster = cls(root=root, port=port or free_port(), pg_ctl=pg_ctl, run_as=run_as)
        done = subprocess.run([*run_as, initdb, "-D", str(cluster.data), "-U", "genedge", "--auth=trust", "-E", "UTF8"],
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb in {root} failed ({done.returncode}): "
                               f"{done.stderr.decode(errors='replace').strip()[-500:]}")
        return cluster

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "pg.log"),
                        "-w", "start"], check=True, capture_output=True)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: a clean shutdown; ``immediate``: like a crash); its data stays."""
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True, check=False)

    def postmaster_pid(self) -> int | None:
        """Process id of the running postmaster, from ``postmaster.pid``; ``None`` while stopped."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster (initdb into a temp dir), started; stopped and deleted after."""
    with tempfile.TemporaryDirectory(prefix="genedge-pg-") as d:
        cluster = PostgresCluster.create(Path(d))
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop("immediate")


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb into a temp dir) on a loopback port; yields its URL."""
    with postgres_cluster() as cluster:
        yield cluster.url


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def fill_disk(disk: Path) -> Path:
    """Write a ballast file into ``disk`` until the file system is full, as a runaway log would.

    The disk may be full before the file can even be opened (another writer got there first):
    either way it ends up full. Delete the returned file to free it.

    Raises:
        OSError: writing failed for a reason other than a full disk.
    """
    ballast = disk / "ballast"
    try:
        with ballast.open("wb") as f:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
    return ballast
