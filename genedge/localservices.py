"""Local real services (Mosquitto, PostgreSQL) on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

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
    """A real Mosquitto broker with its own config file; ``stop``/``start`` simulate outages."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def binary(self) -> str:
        b = find_binary("mosquitto", "/usr/sbin")
        if b is None:
            raise RuntimeError("mosquitto is not installed: run the README's test command (it installs it)")
        return b

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            f"user {getpass.getuser()}\n"
            "persistence false\n"
            "max_inflight_messages 1000\n"
            "max_queued_messages 1000000\n"
            "max_queued_bytes 0\n"
            "message_size_limit 4000000\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\n"
        )
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


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb into a temp dir) on a loopback port; yields its URL."""
    initdb = find_binary("initdb", *_PG_DIRS)
    pg_ctl = find_binary("pg_ctl", *_PG_DIRS)
    if initdb is None or pg_ctl is None:
        raise RuntimeError("PostgreSQL server binaries not found: run the README's test command (it installs them)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="genedge-pg-") as d:
        data = Path(d) / "data"
        run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(d, "postgres", "postgres") if _has_user("postgres") else None
            run_as = ["runuser", "-u", "postgres", "--"] if _has_user("postgres") else []
            if not run_as:
                raise RuntimeError("running as root needs a 'postgres' system user for initdb")
        subprocess.run([*run_as, initdb, "-D", str(data), "-U", "genedge", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True)
        opts = f"-p {port} -k {d} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", opts, "-l", str(Path(d) / "pg.log"), "-w", "start"],
                       check=True, capture_output=True)
        try:
            yield f"postgresql+psycopg://genedge@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, check=False)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
