"""The broker side of GenEdge: the embedded demo broker and the files that secure a real one.

:class:`EmbeddedBroker` (a Mosquitto child process, MQTT 5 and 3.1.1, anonymous) lets
``genedge demo`` run with nothing but Debian's ``mosquitto`` package installed; it listens on
loopback addresses only unless told otherwise. Production plants run Mosquitto, EMQX or HiveMQ with one login per component and an
ACL: :func:`write_broker_files` writes Mosquitto's password file, ACL file and the lines of
``mosquitto.conf`` that use them, from the configured gateways, assets and identities
(``genedge broker acl``). ``docs/security.md`` gives the same rights for EMQX and HiveMQ.

A site's broker bridges to a central broker with :func:`write_bridge_config` (``genedge broker
bridge``): the Mosquitto bridge lines from ``[mqtt.bridge]``, so that a WAN outage is queued at
the site and replayed when the link returns.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import getpass
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.errors import ConfigError, GenEdgeError, IngestError
from core.mqtt import Gateway, client_id_for, configured_gateways, is_loopback_host
from core.settings import BridgeSettings, Settings
from core.sim import default_plant
from core.wire import CMD_SUFFIX, TOPIC_ROOT, MessageType, cmd_topic, host_state_topic, topic_for

__all__ = [
    "AGENT_SELF_TYPES",
    "AGENT_TYPES",
    "BridgePlan",
    "BrokerFiles",
    "EmbeddedBroker",
    "acl_text",
    "bridge_conf_text",
    "bridge_plan",
    "broker_gateways",
    "find_mosquitto",
    "mosquitto_hash",
    "port_open",
    "write_bridge_config",
    "write_broker_files",
]


#: Where Debian's ``mosquitto`` package installs the broker when ``/usr/sbin`` is not on ``PATH``.
MOSQUITTO_FALLBACK = Path("/usr/sbin/mosquitto")


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (IPv4 or IPv6) within 0.2 s."""
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=0.2):
            return True
    except OSError:
        return False


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` program: on ``PATH``, else :data:`MOSQUITTO_FALLBACK`; ``None`` if absent."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return str(MOSQUITTO_FALLBACK) if MOSQUITTO_FALLBACK.is_file() else None


class EmbeddedBroker:
    """A Mosquitto child process for the demo: anonymous, no persistence, gone when its parent is.

    Its configuration and log live in a private temporary folder, removed by :meth:`stop`. It is
    stopped by :meth:`stop`, at interpreter exit, and (when started from the main thread) by the
    kernel if the parent dies without either. It runs in its own session, so a Ctrl-C in the
    terminal reaches the parent only, which drains its clients before stopping the broker.

    It lets anyone connect and publish anything, so it listens on a loopback address only,
    unless ``allow_remote`` accepts that for a trial on a closed network.

    Args:
        host: address to listen on.
        port: TCP port to listen on.
        allow_remote: listen on a non-loopback ``host`` although anyone may connect.
        binary: the ``mosquitto`` program; found with :func:`find_mosquitto` when ``None``.

    Raises:
        ConfigError: ``host`` is not a loopback address and ``allow_remote`` is off.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, allow_remote: bool = False,
                 binary: str | None = None) -> None:
        if not allow_remote and not is_loopback_host(host):
            raise ConfigError(
                f"the embedded broker lets anyone connect without a login, so it listens on loopback only, "
                f"not on {host!r}: run Mosquitto with the files of 'genedge broker acl' for other machines "
                "(or accept anonymous access on a closed test network with --allow-anonymous-remote)"
            )
        self.host = host
        self.port = port
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def pid(self) -> int | None:
        """Process id of the running broker; ``None`` while it is not running."""
        return self._proc.pid if self._proc is not None else None

    def _program(self) -> str:
        program = self.binary if self.binary is not None else find_mosquitto()
        if program is None or not os.access(program, os.X_OK) or not Path(program).is_file():
            where = repr(program) if program is not None else f"on PATH or at {MOSQUITTO_FALLBACK}"
            raise GenEdgeError(
                f"the embedded MQTT broker needs Mosquitto, not found {where}: install Debian's 'mosquitto' "
                "package (sudo apt-get install mosquitto; 'make demo' does) or point [mqtt] host and port "
                "at a running broker (or use --broker HOST:PORT)"
            )
        return program

    def _conf_text(self, log: Path) -> str:
        return (
            "# The demo's broker: anonymous, in memory only; written by GenEdge's EmbeddedBroker.\n"
            f"listener {self.port} {self.host.strip('[]')}\n"
            "allow_anonymous true\n"
            # Mosquitto started as root drops to the 'mosquitto' user unless told to stay this user.
            f"user {getpass.getuser()}\n"
            "persistence false\n"
            # Ingest may fall behind the simulator while it starts: queue for it rather than drop.
            "max_inflight_messages 1000\n"
            "max_queued_messages 100000\n"
            f"log_dest file {log}\n"
            "log_type error\n"
            "log_type warning\n"
        )

    def _log_tail(self) -> str:
        if self._workdir is None:
            return ""
        text = ""
        for name in ("stderr.log", "mosquitto.log"):
            try:
                text += (self._workdir / name).read_text(errors="replace")
            except OSError:
                continue
        return text.strip()[-1500:] or "(nothing logged)"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        """Start Mosquitto and wait until it accepts connections; returns ``self``.

        Raises:
            GenEdgeError: Mosquitto is not installed (or ``binary`` is not a program).
            IngestError: the port is taken, or Mosquitto exited or did not listen within ``timeout``
                seconds (its messages included).
        """
        if self._proc is not None:
            return self
        program = self._program()
        if port_open(self.host, self.port):
            raise IngestError(f"port {self.host}:{self.port} is taken: is another broker running? use --broker")
        self._workdir = Path(tempfile.mkdtemp(prefix="genedge-broker-"))
        conf = self._workdir / "mosquitto.conf"
        conf.write_text(self._conf_text(self._workdir / "mosquitto.log"))
        with (self._workdir / "stderr.log").open("wb") as err:
            # The preexec function makes one system call (prctl) through an already resolved C function.
            self._proc = subprocess.Popen(
                [program, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent(),  # noqa: PLW1509
            )
        atexit.register(self.stop)
        end = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            code = self._proc.poll()
            if code is not None or time.monotonic() > end:
                why = f"exited with status {code}" if code is not None else f"not listening after {timeout:g} s"
                detail = self._log_tail()
                self.stop()
                raise IngestError(f"embedded broker ({program}) on {self.host}:{self.port} {why}: {detail}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Mosquitto (SIGTERM, then SIGKILL after ``timeout`` seconds) and remove its folder."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when this thread dies; ``None`` elsewhere.

    The kernel ties the signal to the thread that forks, not to the process: only a child of the
    main thread gets it, so a broker started from a short-lived worker thread is not killed with
    that thread (atexit still stops it).
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


# ----------------------------------------------------------------------------------------------
# Password file and ACL of a real broker (Mosquitto)
# ----------------------------------------------------------------------------------------------

#: What a gateway's agent may publish about each of its assets.
AGENT_TYPES = tuple(MessageType)
#: What an agent may publish about itself (its own id on its site): births, deaths, status.
AGENT_SELF_TYPES = (MessageType.BIRTH, MessageType.DEATH, MessageType.STATUS)
#: PBKDF2 rounds of a ``$7$`` hash: Mosquitto 2.0's own count, so both ways of writing the file agree.
PBKDF2_ITERATIONS = 101


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_files` wrote."""

    passwords: Path
    acl: Path
    conf: Path
    users: tuple[str, ...]
    hashed_by: str


@dataclass(frozen=True)
class _Login:
    username: str
    password: SecretStr
    what: str


def broker_gateways(settings: Settings) -> list[Gateway]:
    """The gateways whose agents may publish: ``mqtt.gateways``, or else the one gateway of this
    configuration (``edge.agent_id`` on ``mqtt.site`` with the configured assets, or the
    simulator's default plant, logging in as ``mqtt.identities.agent``).

    Raises:
        ConfigError: no gateway is configured, or two gateways claim one asset.
    """
    assets = list(settings.assets)
    gateways = configured_gateways(settings.mqtt, assets)
    if gateways:
        return gateways
    agent = settings.mqtt.identities.agent
    if agent is None:
        raise ConfigError("no gateway to let in: configure [mqtt.gateways.<agent id>] entries (several gateways) or "
                          "[mqtt.identities.agent] with edge.agent_id (one gateway)")
    site = settings.mqtt.site
    ids = tuple(a.asset_id for a in (assets or default_plant(site)))
    return [Gateway(settings.edge.agent_id, site, ids, agent.username, agent.password)]


def acl_text(gateways: list[Gateway], *, ingest_user: str, ingest_client_id: str, dashboard_user: str | None) -> str:
    """Mosquitto ACL file: each login's topics, nothing for anyone else (anonymous included).

    - an agent publishes only its own assets' data topics and its own births, deaths, status and
      state topic, and reads its own assets' commands and the host applications' state;
    - ingest reads ``genedge/v1/#`` and publishes only its own state topic;
    - the dashboard publishes commands to the configured assets only.
    """
    lines = ["# Written by 'genedge broker acl': one section per login; whatever is not listed is denied.", ""]
    for g in gateways:
        lines += [f"# gateway {g.agent_id} on site {g.site}: {len(g.assets)} assets", f"user {g.username}"]
        for asset_id in g.assets:
            lines += [f"topic write {topic_for(g.site, asset_id, t)}" for t in AGENT_TYPES]
            lines.append(f"topic read {cmd_topic(g.site, asset_id)}")
        lines += [f"topic write {topic_for(g.site, g.agent_id, t)}" for t in AGENT_SELF_TYPES]
        lines += [f"topic write {host_state_topic(g.agent_id)}", f"topic read {host_state_topic('+')}", ""]
    lines += ["# ingest: reads all data, writes only its own online state", f"user {ingest_user}",
              "topic read genedge/v1/#", f"topic write {host_state_topic(ingest_client_id)}", ""]
    if dashboard_user is not None:
        lines += ["# dashboard: commands to the configured assets, nothing else", f"user {dashboard_user}"]
        lines += [f"topic write {cmd_topic(g.site, a)}" for g in gateways for a in g.assets]
        lines.append("")
    return "\n".join(lines)


def write_broker_files(settings: Settings, out_dir: Path, *, use_mosquitto_passwd: bool = True) -> BrokerFiles:
    """Write Mosquitto's password file, ACL file and ``genedge.conf`` (the lines that use them).

    Args:
        settings: gateways (see :func:`broker_gateways`) and the ``mqtt.identities`` of ingest
            (required) and the dashboard (optional: without it nobody may send commands), each
            with a password.
        out_dir: created if missing; the password file is written with mode 0600.
        use_mosquitto_passwd: hash with ``mosquitto_passwd -U`` when it is installed (it comes with
            Mosquitto); otherwise, or with ``False``, hash here the same way (PBKDF2-SHA512, ``$7$``).

    Raises:
        ConfigError: an identity or password is missing or unusable, or a user name is taken twice.
        GenEdgeError: the files cannot be written, or ``mosquitto_passwd`` failed.
    """
    mqtt = settings.mqtt
    gateways = broker_gateways(settings)
    ingest = mqtt.identities.ingest
    if ingest is None:
        raise ConfigError("mqtt.identities.ingest is not configured: ingest needs its own login (username, password)")
    dashboard = mqtt.identities.dashboard
    ingest_client_id = client_id_for(mqtt, "ingest", settings.ingest.client_id)
    logins = [_login(g.username, g.password, f"gateway {g.agent_id}") for g in gateways]
    logins.append(_login(ingest.username, ingest.password, "mqtt.identities.ingest"))
    if dashboard is not None:
        logins.append(_login(dashboard.username, dashboard.password, "mqtt.identities.dashboard"))
    seen: dict[str, str] = {}
    for login in logins:
        if login.username in seen:
            raise ConfigError(f"broker user {login.username!r} is used by both {seen[login.username]} and {login.what}: "
                              "every component needs its own login")
        seen[login.username] = login.what
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        acl = out_dir / "acl"
        acl.write_text(acl_text(gateways, ingest_user=ingest.username, ingest_client_id=ingest_client_id,
                                dashboard_user=dashboard.username if dashboard else None))
        passwords = out_dir / "passwords"
        program = shutil.which("mosquitto_passwd") if use_mosquitto_passwd else None
        hashed_by = _write_passwords(passwords, logins, program)
        conf = out_dir / "genedge.conf"
        conf.write_text(_conf_text(passwords.resolve(), acl.resolve()))
    except OSError as err:
        raise GenEdgeError(f"cannot write the broker files in {str(out_dir)!r}: {err.strerror or err}") from err
    return BrokerFiles(passwords, acl, conf, tuple(seen), hashed_by)


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """A Mosquitto 2 password hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>``."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _login(username: str, password: SecretStr | None, what: str) -> _Login:
    if password is None or not password.get_secret_value():
        raise ConfigError(f"{what} (user {username!r}) has no password: the broker file needs one for every login")
    if any(ord(c) < 32 or ord(c) == 127 for c in password.get_secret_value()):
        raise ConfigError(f"{what} (user {username!r}): the password contains a control character (line break, tab ...)")
    return _Login(username, password, what)


def _write_passwords(path: Path, logins: list[_Login], program: str | None) -> str:
    """Write the hashed password file (mode 0600) with ``program -U`` or here; returns what hashed it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            for login in logins:
                secret = login.password.get_secret_value()
                f.write(f"{login.username}:{secret if program else mosquitto_hash(secret)}\n")
        if program:
            done = subprocess.run([program, "-U", str(tmp)], capture_output=True, text=True, check=False)
            if done.returncode != 0:  # its messages name the file, never a password
                raise GenEdgeError(f"{program} -U failed ({done.returncode}): {done.stderr.strip()[:500]}")
        os.replace(tmp, path)
        path.chmod(0o600)  # whatever the hashing program did to the mode: hashes stay the broker's
    finally:
        tmp.unlink(missing_ok=True)  # plain-text passwords never stay on disk
    return f"{program} -U" if program else "genedge (PBKDF2-SHA512, $7$)"


def _conf_text(passwords: Path, acl: Path) -> str:
    return (
        "# Written by 'genedge broker acl': include it in mosquitto.conf (or copy these lines).\n"
        "# Only the listed logins may connect, each only to its own topics.\n"
        "allow_anonymous false\n"
        f"password_file {passwords}\n"
        f"acl_file {acl}\n"
        "# The broker keys a session by the user name, not the client id a client sends: nobody can\n"
        "# take over (or kick off) another component's session by connecting with its client id.\n"
        "use_username_as_clientid true\n"
    )


# ----------------------------------------------------------------------------------------------
# Bridge of a site's broker to the central broker (Mosquitto at the site, any MQTT broker at the centre)
# ----------------------------------------------------------------------------------------------

#: Retained ``1``/``0`` (the bridge's will) on both brokers while the bridge is up or down.
BRIDGE_STATE_TOPIC = "genedge/bridge/{connection}/state"


@dataclass(frozen=True)
class BridgePlan:
    """What a site's bridge does, as :func:`bridge_conf_text` writes it; holds no secret."""

    connection: str
    address: str
    tls: bool
    mutual_tls: bool
    username: str | None
    protocol: str
    qos: int
    out_topics: tuple[str, ...]
    in_topics: tuple[str, ...]
    state_topic: str
    max_queued_messages: int
    max_queued_bytes: int

    def as_json(self) -> dict[str, Any]:
        """Plain data for ``genedge broker bridge``'s report."""
        return {"connection": self.connection, "address": self.address, "tls": self.tls, "mutual_tls": self.mutual_tls,
                "username": self.username, "protocol": self.protocol, "qos": self.qos, "out": list(self.out_topics),
                "in": list(self.in_topics), "state_topic": self.state_topic,
                "max_queued_messages": self.max_queued_messages, "max_queued_bytes": self.max_queued_bytes}


def _bridge_settings(settings: Settings) -> BridgeSettings:
    bridge = settings.mqtt.bridge
    if bridge is None:
        raise ConfigError("mqtt.bridge is not configured: give [mqtt.bridge] with the central broker's host "
                          "(and ca_file, username, password) to bridge this site's broker to the centre")
    return bridge


def bridge_plan(settings: Settings) -> BridgePlan:
    """The bridge of ``mqtt.site``'s broker from ``[mqtt.bridge]``, with the defaults filled in.

    By default this site's data goes out (``genedge/v1/<site>/+/<type>`` for every data type) and
    its commands come in (``genedge/v1/<site>/+/cmd``). The two never overlap, so no broker can send
    a message back where it came from, and the centre can let the bridge login write data but not
    commands.

    Raises:
        ConfigError: ``mqtt.bridge`` is not configured, or it takes no topic in either direction.
    """
    bridge = _bridge_settings(settings)
    site = settings.mqtt.site
    connection = bridge.connection or f"genedge-bridge-{site}"
    out = bridge.out_topics if bridge.out_topics is not None else [f"{TOPIC_ROOT}/{site}/+/{t}" for t in MessageType]
    into = bridge.in_topics if bridge.in_topics is not None else [f"{TOPIC_ROOT}/{site}/+/{CMD_SUFFIX}"]
    if not out and not into:
        raise ConfigError("mqtt.bridge.out_topics and in_topics are both empty: the bridge would carry nothing")
    return BridgePlan(connection=connection, address=f"{bridge.host}:{bridge.port}", tls=bridge.tls,
                      mutual_tls=bridge.tls and bridge.cert_file is not None, username=bridge.username,
                      protocol=bridge.protocol, qos=bridge.qos, out_topics=tuple(out), in_topics=tuple(into),
                      state_topic=BRIDGE_STATE_TOPIC.format(connection=connection),
                      max_queued_messages=bridge.max_queued_messages, max_queued_bytes=bridge.max_queued_bytes)


def bridge_conf_text(settings: Settings) -> str:
    """The site broker's ``mosquitto.conf`` lines of the bridge (with its password).

    At the centre the bridge is one ordinary MQTT client: a persistent session (``cleansession
    false``) that publishes and subscribes at QoS 1, so Mosquitto, an EMQX or a HiveMQ cluster
    can be the central broker with nothing but a login and an ACL. Mosquitto-specific lines act on
    the site broker only: its persistence and the queue it keeps for the bridge while the link is
    down (``max_queued_messages``/``max_queued_bytes``; they apply to every client of the site
    broker).

    Raises:
        ConfigError: ``mqtt.bridge`` is not configured or carries nothing.
    """
    bridge = _bridge_settings(settings)
    plan = bridge_plan(settings)
    lines = [
        "# Written by 'genedge broker bridge' from [mqtt.bridge]: include it in the site broker's",
        "# configuration (e.g. /etc/mosquitto/conf.d/). It holds the bridge's password: keep it 0600.",
        "# The site broker keeps queued messages on disk across restarts and holds the bridge's",
        "# messages while the link to the centre is down, then sends them in order.",
        "persistence true",
    ]
    if bridge.persistence_dir is not None:
        lines.append(f"persistence_location {str(bridge.persistence_dir).rstrip('/')}/")
    lines += [f"max_queued_messages {plan.max_queued_messages}", f"max_queued_bytes {plan.max_queued_bytes}"]
    # Mosquitto 2.0 moves a reconnected bridge's backlog into flight only as far as this window
    # (and the centre's receive maximum) allow and sends newer messages beside the rest: a window
    # as large as the backlog keeps the site's order across an outage.
    lines.append(f"max_inflight_messages {bridge.max_inflight}")
    lines += ["",
              f"connection {plan.connection}", f"address {plan.address}",
              f"bridge_protocol_version {plan.protocol}",
              "# a persistent session at both ends: nothing is dropped while the link is down",
              "cleansession false", f"local_clientid local.{plan.connection}", f"remote_clientid {plan.connection}",
              "start_type automatic", f"restart_timeout {bridge.restart_timeout[0]} {bridge.restart_timeout[1]}",
              "notifications true", f"notification_topic {plan.state_topic}"]
    if bridge.username is not None:
        lines.append(f"remote_username {bridge.username}")
    if bridge.password is not None:
        lines.append(f"remote_password {bridge.password.get_secret_value()}")
    if bridge.tls:  # checked by BridgeSettings: TLS comes with a CA file
        lines += [f"bridge_cafile {bridge.ca_file}", "bridge_insecure false"]
        if bridge.cert_file is not None:
            lines += [f"bridge_certfile {bridge.cert_file}", f"bridge_keyfile {bridge.key_file}"]
    lines += [f"topic {t} out {plan.qos}" for t in plan.out_topics]
    lines += [f"topic {t} in {plan.qos}" for t in plan.in_topics]
    return "\n".join(lines) + "\n"


def write_bridge_config(settings: Settings, out_dir: Path) -> Path:
    """Write ``bridge.conf``, the site broker's bridge to the central broker, with mode 0600.

    Args:
        settings: ``[mqtt.bridge]`` (see :class:`core.settings.BridgeSettings`) and ``mqtt.site``.
        out_dir: created if missing.

    Returns:
        The path of ``bridge.conf``.

    Raises:
        ConfigError: ``mqtt.bridge`` is not configured or carries nothing.
        GenEdgeError: the file cannot be written.
    """
    text = bridge_conf_text(settings)
    path = out_dir / "bridge.conf"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        path.chmod(0o600)  # exactly 0600, whatever the umask took away
    except OSError as err:
        raise GenEdgeError(f"cannot write the bridge configuration in {str(out_dir)!r}: {err.strerror or err}") from err
    return path
