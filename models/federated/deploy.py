"""Run the federated retraining on Flower's Deployment Engine: a SuperLink, one SuperNode per plant, ``flwr run``.

Flower 1.42 serves the SuperLink's Fleet, Control and ServerApp runtime APIs over HTTP on one
``--host``/``--port``; each SuperNode has its own runtime API port for its ClientApp processes. Both
start ``flower-superexec`` and ``flwr-serverapp``/``flwr-clientapp`` by name, so the venv's ``bin``
goes first on their ``PATH``. ``flwr run`` finds the SuperLink through a named connection in
``$FLWR_HOME/config.toml``; every process here gets a ``FLWR_HOME`` of its own (a temp directory), so
the user's ``~/.flwr`` is never read or written, and Flower's telemetry and update check are off.

:class:`LocalFederation` runs the whole federation on 127.0.0.1 for tests and local experiments
(plain HTTP: loopback only). :func:`federate_server` and :func:`federate_client` are the two halves
of a real deployment (TLS unless ``insecure`` is asked for explicitly).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from core.errors import ModelError

__all__ = [
    "APP_DIR",
    "FederationError",
    "FederationResult",
    "LocalFederation",
    "PlantNode",
    "federate_client",
    "federate_server",
]

#: the Flower App (FAB source) of the federated retraining
APP_DIR = Path(__file__).resolve().parent / "app"
_CONNECTION = "genedge"
_LOOPBACK = "127.0.0.1"
_LOG_TAIL_CHARS = 3000

ConfigValue = str | int | float | bool


class FederationError(ModelError):
    """A federation's processes failed to start, or its run failed or timed out."""


@dataclass(frozen=True)
class PlantNode:
    """One plant's SuperNode: its Flower node configuration.

    Attributes:
        plant: the plant's name (keys its metrics in ``history.json``).
        data_dir: where its data lies (C-MAPSS files for the default learner).
        subset: the C-MAPSS subset its units belong to.
        units: the unit ids it owns, comma-separated.
        seed: its seed.
        extra: further node config entries (e.g. ``learner`` = ``"module:factory"``).
    """

    plant: str
    data_dir: Path
    subset: str = ""
    units: str = ""
    seed: int = 0
    extra: Mapping[str, ConfigValue] = field(default_factory=dict)

    def node_config(self, audit_log: Path | None = None) -> dict[str, ConfigValue]:
        """The node configuration handed to ``flower-supernode --node-config``."""
        cfg: dict[str, ConfigValue] = {
            "plant": self.plant,
            "data-dir": str(self.data_dir),
            "subset": self.subset,
            "units": self.units,
            "seed": self.seed,
        }
        if audit_log is not None:
            cfg["audit-log"] = str(audit_log)
        cfg.update(self.extra)
        return cfg


@dataclass(frozen=True)
class FederationResult:
    """What a finished run left: the history, the final weights and where the files are.

    Attributes:
        run_id: Flower's run id.
        history: the parsed ``history.json``.
        parameters: the aggregated weights of the last round (``final.npz``, in order).
        out_dir: the directory holding ``final.npz`` and ``history.json``.
        audit_logs: per plant, the JSON-lines log of what its ClientApp sent (local federations).
        wall_time_s: from submitting the run to its end.
    """

    run_id: int
    history: dict[str, Any]
    parameters: list[np.ndarray]
    out_dir: Path
    audit_logs: dict[str, Path]
    wall_time_s: float


# --------------------------------------------------------------------------------------- helpers


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_LOOPBACK, 0))
        return int(s.getsockname()[1])


def _toml_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    # a JSON string is a TOML basic string (same escapes; non-ASCII kept as UTF-8)
    return json.dumps(str(value), ensure_ascii=False)


def _write_toml(path: Path, values: Mapping[str, ConfigValue]) -> Path:
    path.write_text("".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in values.items()), encoding="utf-8")
    return path


def _flower_env(flwr_home: Path, python_path: Sequence[Path] = ()) -> dict[str, str]:
    """The environment of every Flower process: its own FLWR_HOME, no telemetry, no update check, no installs."""
    env = dict(os.environ)
    env.update(
        FLWR_HOME=str(flwr_home),
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        PYTHONUNBUFFERED="1",
    )
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in python_path), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _write_connection(flwr_home: Path, address: str, root_certificates: Path | None, insecure: bool) -> None:
    """``$FLWR_HOME/config.toml`` with the one SuperLink connection ``flwr run`` uses."""
    flwr_home.mkdir(parents=True, exist_ok=True)
    lines = ["[superlink]", f'default = "{_CONNECTION}"', "", f"[superlink.{_CONNECTION}]", f"address = {_toml_value(address)}"]
    if insecure:
        lines.append("insecure = true")
    elif root_certificates is not None:
        lines.append(f"root-certificates = {_toml_value(str(root_certificates))}")
    (flwr_home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _tail(path: Path, chars: int = _LOG_TAIL_CHARS) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return text[-chars:]


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (Linux); empty elsewhere."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return children
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the ppid is the 2nd field after it
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(pid: int) -> list[int]:
    tree = _children_map()
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


class _Proc:
    """A Flower process in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: Sequence[str], env: Mapping[str, str], log_dir: Path, cwd: Path) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.log = log_dir / f"{name}.log"
        with self.log.open("ab") as fh:
            # a session of its own: stopping the federation signals the whole group
            self.popen = subprocess.Popen(
                self.cmd, env=dict(env), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        return f"--- {self.name} ({state}): {' '.join(self.cmd)}\n{_tail(self.log)}"


def _stop(procs: Sequence[_Proc], grace_s: float = 5.0) -> None:
    """Stop the processes, their process groups and every descendant (SuperExec starts its own sessions)."""
    pids: set[int] = set()
    for p in procs:
        if p.alive():
            pids.add(p.popen.pid)
        pids.update(_descendants(p.popen.pid))
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.popen.pid, signal.SIGTERM)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(timeout=2.0)


def _superlink_cmd(
    port: int, host: str, database: Path | None, certificates: tuple[Path, Path, Path] | None, insecure: bool, log_file: Path
) -> list[str]:
    cmd = [_bin("flower-superlink"), "--host", host, "--port", str(port), "--disable-runtime-dependency-installation"]
    cmd += ["--log-file", str(log_file)]
    if database is not None:
        cmd += ["--database", str(database)]
    if insecure:
        cmd.append("--insecure")
    elif certificates is not None:
        ca, cert, key = certificates
        cmd += ["--ssl-ca-certfile", str(ca), "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    else:
        raise FederationError("the SuperLink needs TLS certificates (ca, cert, key), or insecure=True for loopback tests")
    return cmd


def _supernode_cmd(
    superlink: str, runtime_port: int, node_config: Path, root_certificates: Path | None, insecure: bool
) -> list[str]:
    cmd = [_bin("flower-supernode"), "--superlink", superlink, "--host", _LOOPBACK, "--port", str(runtime_port)]
    cmd += ["--node-config", str(node_config)]
    if insecure:
        cmd.append("--insecure")
    elif root_certificates is not None:
        cmd += ["--root-certificates", str(root_certificates)]
    return cmd


def _wait_healthy(proc: _Proc, host: str, port: int, timeout_s: float) -> None:
    """Wait until the SuperLink accepts connections on its HTTP port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise FederationError(f"the SuperLink exited while starting\n{proc.describe()}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise FederationError(f"the SuperLink did not listen on {host}:{port} within {timeout_s:.0f} s\n{proc.describe()}")


class _Flwr:
    """The ``flwr`` CLI against the one SuperLink connection in a private FLWR_HOME."""

    def __init__(self, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.log = log

    def __call__(self, *args: str, timeout_s: float = 60.0) -> str:
        cmd = [_bin("flwr"), *args]
        try:
            res = subprocess.run(
                cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise FederationError(f"`{' '.join(cmd)}` took more than {timeout_s:.0f} s") from err
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}\n")
        if res.returncode != 0:
            raise FederationError(f"`{' '.join(cmd)}` failed ({res.returncode}):\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
        return res.stdout

    def submit(self, app_dir: Path, run_config: Path) -> int:
        out = self("run", str(app_dir), _CONNECTION, "--run-config", str(run_config), "--format", "json")
        payload = _last_json(out)
        if not payload.get("success") or payload.get("run-id") is None:
            raise FederationError(f"`flwr run` did not start a run: {out[-2000:]}")
        return int(payload["run-id"])

    def status(self, run_id: int) -> str:
        payload = _last_json(self("ls", _CONNECTION, "--run-id", str(run_id), "--format", "json"))
        runs = payload.get("runs") or []
        return str(runs[0].get("status", "")) if runs else ""

    def stop(self, run_id: int) -> None:
        with contextlib.suppress(FederationError):
            self("stop", str(run_id), _CONNECTION, timeout_s=20.0)


def _last_json(text: str) -> dict[str, Any]:
    start = text.find("{")
    if start < 0:
        raise FederationError(f"expected JSON from the flwr CLI, got: {text[-2000:]}")
    try:
        obj = json.loads(text[start:])
    except json.JSONDecodeError as err:
        raise FederationError(f"unreadable JSON from the flwr CLI: {text[-2000:]}") from err
    if not isinstance(obj, dict):
        raise FederationError(f"expected a JSON object from the flwr CLI, got: {text[-2000:]}")
    return obj


def _run_to_end(
    flwr: _Flwr, app_dir: Path, run_config: Mapping[str, ConfigValue], work: Path, timeout_s: float, procs: Sequence[_Proc]
) -> tuple[int, float]:
    """Submit the app and wait for the run to finish; its run id and wall time.

    ``flwr log --stream`` waits for the run (the SuperLink ends the stream when the run finishes) and
    copies the ServerApp's log to ``logs/run-<id>.log``; ``flwr ls`` then gives the final status.
    """
    started = time.perf_counter()
    run_id = flwr.submit(app_dir, _write_toml(work / "run-config.toml", run_config))
    deadline = time.monotonic() + timeout_s
    status = ""
    stream: _Proc | None = None
    try:
        while time.monotonic() < deadline:
            if stream is None or not stream.alive():
                status = flwr.status(run_id)
                if status.startswith("finished"):
                    break
                stream = _Proc(f"run-{run_id}", [_bin("flwr"), "log", str(run_id), _CONNECTION, "--stream"], flwr.env,
                               flwr.log.parent, flwr.cwd)
            dead = [p for p in procs if not p.alive()]
            if dead:
                raise FederationError(f"run {run_id}: a process died\n" + "\n".join(p.describe() for p in dead))
            time.sleep(0.5)
        else:
            flwr.stop(run_id)
            raise FederationError(f"run {run_id} did not finish within {timeout_s:.0f} s (last status {status!r})")
    finally:
        if stream is not None:
            _stop([stream])
    if status != "finished:completed":
        raise FederationError(f"run {run_id} ended {status!r}\n{_tail(flwr.log.parent / f'run-{run_id}.log')}")
    return run_id, time.perf_counter() - started


def _read_result(run_id: int, out_dir: Path, audit_logs: dict[str, Path], wall_time_s: float) -> FederationResult:
    history_path, final_path = out_dir / "history.json", out_dir / "final.npz"
    if not history_path.is_file() or not final_path.is_file():
        raise FederationError(f"run {run_id} completed but wrote no history.json/final.npz in {out_dir}")
    with np.load(final_path) as npz:
        parameters = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    history = json.loads(history_path.read_text(encoding="utf-8"))
    return FederationResult(run_id, history, parameters, out_dir, audit_logs, wall_time_s)


# --------------------------------------------------------------------------------------- local


class LocalFederation:
    """A SuperLink and one SuperNode per plant on 127.0.0.1, as real processes; ``run()`` submits the app.

    Plain HTTP (``--insecure``): for tests and experiments on one machine only. Use as a context
    manager; leaving it stops every process it started (and their children).

    Args:
        nodes: the plants.
        app_dir: the Flower App to run.
        workdir: where logs, FLWR_HOME, audit logs and outputs go (default: a temp dir, removed on exit
            unless ``keep_workdir``).
        python_path: directories prepended to the processes' ``PYTHONPATH`` (e.g. where a test's learner lives).
        audit: give every plant an ``audit-log`` (what its ClientApp sent).
        startup_timeout_s: how long the SuperLink may take to listen.
        keep_workdir: keep a temp workdir after exit.
    """

    def __init__(
        self,
        nodes: Sequence[PlantNode],
        *,
        app_dir: Path = APP_DIR,
        workdir: Path | None = None,
        python_path: Sequence[Path] = (),
        audit: bool = True,
        startup_timeout_s: float = 60.0,
        keep_workdir: bool = False,
    ) -> None:
        if not nodes:
            raise FederationError("a federation needs at least one plant")
        names = [n.plant for n in nodes]
        if len(set(names)) != len(names):
            raise FederationError(f"plant names must be unique, got {names}")
        self.nodes = list(nodes)
        self.app_dir = Path(app_dir).resolve()
        self.python_path = [Path(p).resolve() for p in python_path]
        self.audit = audit
        self.startup_timeout_s = startup_timeout_s
        self.keep_workdir = keep_workdir
        self._given_workdir = workdir
        self.workdir = Path()
        self.port = 0
        self.procs: list[_Proc] = []
        self.audit_logs: dict[str, Path] = {}
        self._flwr: _Flwr | None = None
        self._temp = False

    @property
    def address(self) -> str:
        """The SuperLink's address (Fleet, Control and runtime APIs)."""
        return f"{_LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        if self._given_workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="genedge-federation-"))
            self._temp = True
        else:
            self.workdir = Path(self._given_workdir).resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._shutdown()

    def _start(self) -> None:
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        flwr_home = self.workdir / "flwr-home"
        env = _flower_env(flwr_home, self.python_path)
        self.port = _free_port()
        _write_connection(flwr_home, self.address, None, insecure=True)
        link = _Proc(
            "superlink",
            _superlink_cmd(self.port, _LOOPBACK, self.workdir / "superlink.db", None, True, logs / "superlink-file.log"),
            env,
            logs,
            self.workdir,
        )
        self.procs.append(link)
        _wait_healthy(link, _LOOPBACK, self.port, self.startup_timeout_s)
        for node in self.nodes:
            audit_log = (self.workdir / "audit" / f"{node.plant}.jsonl") if self.audit else None
            if audit_log is not None:
                audit_log.parent.mkdir(exist_ok=True)
                audit_log.touch()
                self.audit_logs[node.plant] = audit_log
            cfg = _write_toml(self.workdir / f"node-{node.plant}.toml", node.node_config(audit_log))
            cmd = _supernode_cmd(self.address, _free_port(), cfg, None, insecure=True)
            self.procs.append(_Proc(f"supernode-{node.plant}", cmd, env, logs, self.workdir))
        self._flwr = _Flwr(env, self.workdir, logs / "flwr-cli.log")

    def run(self, run_config: Mapping[str, ConfigValue] | None = None, *, timeout_s: float = 600.0) -> FederationResult:
        """Submit the app with ``run_config`` overrides and wait for it; the run's history and final weights.

        ``min-clients`` defaults to the number of plants and ``out-dir`` to ``<workdir>/out-<n>``.

        Raises:
            FederationError: the run failed, timed out or a process died (with the tails of all logs).
        """
        if self._flwr is None:
            raise FederationError("LocalFederation.run() needs the federation started: use it in a `with` block")
        out_dir = self.workdir / f"out-{len(list(self.workdir.glob('out-*')))}"
        config: dict[str, ConfigValue] = {"min-clients": len(self.nodes), "out-dir": str(out_dir)}
        config.update(run_config or {})
        try:
            run_id, wall = _run_to_end(self._flwr, self.app_dir, config, self.workdir, timeout_s, self.procs)
            return _read_result(run_id, Path(str(config["out-dir"])), dict(self.audit_logs), wall)
        except FederationError as err:
            raise FederationError(f"{err}\n\nlogs in {self.workdir / 'logs'}:\n{self.logs_tail()}") from None

    def logs_tail(self) -> str:
        """The tail of every process's log, and of the flwr CLI calls."""
        parts = [p.describe() for p in self.procs]
        parts.append(f"--- flwr CLI\n{_tail(self.workdir / 'logs' / 'flwr-cli.log')}")
        parts.append(f"--- superlink log file\n{_tail(self.workdir / 'logs' / 'superlink-file.log')}")
        return "\n".join(parts)

    def _shutdown(self) -> None:
        _stop(self.procs)
        self.procs = []
        if self._temp and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------- deployment


@contextlib.contextmanager
def _workdir(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="genedge-federate-") as tmp:
        yield Path(tmp)


def federate_server(
    out_dir: Path,
    *,
    host: str = "0.0.0.0",
    port: int = 9092,
    certificates: tuple[Path, Path, Path] | None = None,
    insecure: bool = False,
    run_config: Mapping[str, ConfigValue] | None = None,
    app_dir: Path = APP_DIR,
    workdir: Path | None = None,
    timeout_s: float = 24 * 3600.0,
) -> FederationResult:
    """Run a SuperLink, submit the federated retraining and wait for it to finish (``genedge federate server``).

    Args:
        out_dir: where ``final.npz`` and ``history.json`` go.
        host: the address the SuperLink listens on.
        port: its port (Fleet API for the plants, Control API for ``flwr``).
        certificates: ``(ca, cert, key)`` PEM paths for TLS.
        insecure: plain HTTP instead of TLS (only on a trusted network; loopback tests).
        run_config: overrides of the app's run configuration.
        app_dir: the Flower App.
        workdir: logs, the SuperLink's database and FLWR_HOME (default: a temp dir).
        timeout_s: how long the run may take.

    Raises:
        FederationError: no certificates and not insecure; the SuperLink did not start; the run failed.
    """
    with _workdir(workdir) as work:
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        flwr_home = work / "flwr-home"
        env = _flower_env(flwr_home)
        cmd = _superlink_cmd(port, host, work / "superlink.db", certificates, insecure, logs / "superlink-file.log")
        local = _LOOPBACK if host in {"0.0.0.0", "::", ""} else host
        _write_connection(flwr_home, f"{local}:{port}", certificates[0] if certificates else None, insecure)
        link = _Proc("superlink", cmd, env, logs, work)
        try:
            _wait_healthy(link, local, port, 60.0)
            config: dict[str, ConfigValue] = {"out-dir": str(Path(out_dir).resolve())}
            config.update(run_config or {})
            flwr = _Flwr(env, work, logs / "flwr-cli.log")
            run_id, wall = _run_to_end(flwr, Path(app_dir).resolve(), config, work, timeout_s, [link])
            return _read_result(run_id, Path(str(config["out-dir"])), {}, wall)
        except FederationError as err:
            raise FederationError(f"{err}\n{link.describe()}") from None
        finally:
            _stop([link])


def federate_client(
    superlink: str,
    node: PlantNode,
    *,
    root_certificates: Path | None = None,
    insecure: bool = False,
    workdir: Path | None = None,
    audit_log: Path | None = None,
) -> int:
    """Run one plant's SuperNode against ``superlink`` (``host:port``) until it exits (``genedge federate client``).

    Args:
        superlink: the SuperLink's address.
        node: the plant.
        root_certificates: the CA that signed the SuperLink's certificate (TLS).
        insecure: plain HTTP (trusted networks and loopback only).
        workdir: logs and FLWR_HOME (default: a temp dir).
        audit_log: where the plant's ClientApp logs what it sends.

    Returns:
        The SuperNode's exit code (0).

    Raises:
        FederationError: no CA and not insecure; the SuperNode failed (with its log's tail).
    """
    if not insecure and root_certificates is None:
        raise FederationError("the SuperNode needs the SuperLink's CA certificate, or insecure=True")
    with _workdir(workdir) as work:
        logs = work / "logs"
        logs.mkdir(exist_ok=True)
        env = _flower_env(work / "flwr-home")
        cfg = _write_toml(work / f"node-{node.plant}.toml", node.node_config(audit_log))
        cmd = _supernode_cmd(superlink, _free_port(), cfg, root_certificates, insecure)
        proc = _Proc(f"supernode-{node.plant}", cmd, env, logs, work)
        try:
            code = proc.popen.wait()
        finally:
            _stop([proc])
        if code != 0:
            raise FederationError(f"the SuperNode of plant {node.plant!r} exited {code}\n{proc.describe()}")
        return code
