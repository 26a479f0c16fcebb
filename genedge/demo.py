"""Demo wiring: broker + simulated plant + ingest (+ dashboard), all on this machine."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.errors import ConfigError
from core.inference.registry import SHIPPED_DIR
from core.mqtt import is_loopback_host
from core.settings import EdgeSettings, Settings
from core.sim import default_faults, default_plant
from core.wire import utcnow
from edge_agent.agent import EdgeAgent
from edge_agent.hooks import build_hooks
from edge_agent.publisher import MqttPublisher, ReliablePublisher
from edge_agent.readings import to_reading_batch
from edge_agent.sources.simulator import SimulatorSource
from edge_agent.wiring import build_agent
from genedge.broker import EmbeddedBroker, port_open
from ingest.service import IngestService
from ingest.store import Store, queries

__all__ = [
    "SIM_RUL_MODEL",
    "Demo",
    "DemoResult",
    "check_demo_logins",
    "demo_edge_settings",
    "fresh_demo_store",
    "publish_simulation",
    "seed_registry",
    "start_demo_dashboard",
]

log = logging.getLogger(__name__)

#: The RUL model of the demo plant's machines (trained on simulated runs; reads the agent's feature frames).
SIM_RUL_MODEL = SHIPPED_DIR / "sim-bearing"


def demo_edge_settings(settings: Settings) -> EdgeSettings:
    """``settings.edge`` for the demo: the simulator RUL model of the demo's registry unless
    another is configured, on the simulator's accelerated clock unless a time scale is configured.

    The registry (``models.registry_dir``) is seeded with the shipped models first; the agent
    follows its ``sim-bearing`` promotions, so promoting or rolling back on the Models page
    changes the model the running agent uses. Without a usable registry the shipped model runs.
    """
    cfg = settings.edge
    update: dict[str, Any] = {}
    if cfg.rul_model is None:
        registry_dir = settings.models.registry_dir
        try:
            if copied := seed_registry(registry_dir):
                log.warning("model registry %s: copied the shipped models %s", registry_dir, ", ".join(copied))
        except OSError as err:
            log.warning("model registry %s not writable (%s): the agent runs the shipped RUL model", registry_dir, err)
        in_registry = registry_dir / SIM_RUL_MODEL.name
        if (in_registry / "promoted.json").is_file():
            update["rul_model"] = in_registry
        elif SIM_RUL_MODEL.is_dir():
            update["rul_model"] = SIM_RUL_MODEL
    if "rul_time_scale" not in cfg.model_fields_set:
        update["rul_time_scale"] = settings.sim.time_acceleration
    return cfg.model_copy(update=update) if update else cfg


def seed_registry(registry_dir: Path, shipped: Path = SHIPPED_DIR) -> list[str]:
    """Copy the shipped models into an empty registry, so the Models page has something to show.

    A model already in ``registry_dir`` is left alone (its versions and promotions are the
    user's). The shipped layout is the registry layout, so copying keeps cards and pointers.

    Returns:
        The names of the models copied.
    """
    copied: list[str] = []
    if not shipped.is_dir():
        return copied
    for src in sorted(p for p in shipped.iterdir() if p.is_dir()):
        dst = registry_dir / src.name
        if dst.exists():
            continue
        shutil.copytree(src, dst)
        copied.append(src.name)
    return copied


@dataclass
class DemoResult:
    published: int
    stored: int
    dead_lettered: int
    duplicates: int
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, int]:
        return {"published": self.published, "stored": self.stored,
                "dead_lettered": self.dead_lettered, "duplicates": self.duplicates}


class Demo:
    """The whole plant on one machine: sensor -> edge agent -> broker -> ingest.

    Starts the embedded broker unless an external one is configured (``mqtt.embedded = false``
    or ``--broker``), the ingest service, and the edge agent consuming the simulated plant. The
    agent publishes feature frames, status and the raw readings of the slow channels
    (temperature, speed, load); ``published``/``stored`` count those reading batches.
    """

    def __init__(self, settings: Settings) -> None:
        self.assets = settings.assets or default_plant(settings.mqtt.site)
        self.publisher_id = f"demo-{uuid.uuid4().hex[:8]}"
        self._tmp = tempfile.TemporaryDirectory(prefix="genedge-demo-")
        edge = demo_edge_settings(settings).model_copy(update={"agent_id": self.publisher_id,
                                                               "queue_path": Path(self._tmp.name) / "edge-queue.db"})
        self.settings = settings.model_copy(update={"edge": edge})
        self.broker: EmbeddedBroker | None = None
        self.store: Store | None = None
        self._stop_sim = threading.Event()
        self._stop_ingest = threading.Event()
        self._threads: list[threading.Thread] = []
        self.publisher: ReliablePublisher | None = None
        self.agent: EdgeAgent | None = None
        self.ingest: IngestService | None = None
        self.started_at = utcnow()
        self.errors: list[BaseException] = []
        self.prescriptions = 0

    def start(self) -> None:
        s = self.settings
        # MQTT 5 is needed only for shared subscriptions; 3.1.1 works with every broker.
        protocol = "5" if s.ingest.share_group else "3.1.1"
        if s.mqtt.embedded:
            if port_open(s.mqtt.host, s.mqtt.port):
                log.warning("a broker already listens on %s:%d: using it", s.mqtt.host, s.mqtt.port)
            else:
                self.broker = EmbeddedBroker(s.mqtt.host, s.mqtt.port).start()
                log.warning("embedded MQTT broker (Mosquitto) on %s:%d", s.mqtt.host, s.mqtt.port)
        self.store = Store(s.store.url.get_secret_value())
        self.store.upsert_assets(self.assets)
        # The simulator's clock runs time_acceleration times faster than the timestamps it stores: every
        # reader of this store (dashboard, prescriber, retraining) reads its trends in plant hours.
        self.store.set_meta(queries.TIME_SCALE_KEY, repr(s.sim.time_acceleration))
        ingest_settings = s.ingest.model_copy(update={"client_id": f"{s.ingest.client_id}-demo"})
        self.ingest = IngestService(s.mqtt, ingest_settings, self.store, batch_size=s.store.batch_size, protocol=protocol)
        self._spawn("ingest", lambda: self.ingest.run(self._stop_ingest, drain_s=0.2))
        if not self.ingest.connected.wait(20):
            raise RuntimeError("ingest could not connect to the broker")
        self.agent, self.publisher = build_agent(s, self.assets, hooks=build_hooks(s.edge, self.assets))
        self.publisher.start()
        if not self.publisher.wait_connected(20):
            raise RuntimeError("the edge agent could not connect to the broker")
        self._spawn("simulator", lambda: asyncio.run(self._simulate()))
        self._spawn("prescriber", lambda: asyncio.run(self._prescribe_on_decisions()))

    def _spawn(self, name: str, target: Any) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as err:  # surfaced by wait()/stop()
                log.exception("%s failed", name)
                self.errors.append(err)

        t = threading.Thread(target=guarded, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    async def _simulate(self) -> None:
        assert self.agent is not None
        s = self.settings
        source = SimulatorSource(
            self.assets, default_faults(self.assets, s.sim.seed), seed=s.sim.seed,
            time_acceleration=s.sim.time_acceleration, interval_s=s.sim.publish_interval_s,
            snapshot_samples=s.sim.vibration_samples,
        )
        await self.agent.run(source, self._stop_sim)

    async def _prescribe_on_decisions(self, every_s: float = 3.0) -> None:
        """Judge every asset with the decision policy; draft a work order each time one escalates
        into work (plan, urgent, stop now), superseding the asset's older drafts, citing the what-if
        twin's choice of when to repair."""
        from prescribe.backends import make_backend
        from prescribe.prescriber import Prescriber
        from prescribe.service import DecisionWatcher

        assert self.store is not None

        async def prescriber() -> Prescriber:  # the local model loads when a work order is first needed
            backend, notes = make_backend(self.settings.llm, nice=5)
            return Prescriber(backend, notes=notes)

        # the settings' [plant] calendar and costs give each work order the what-if twin's choice, with
        # the analog library beside the predicting model in the demo's registry (seeded from the shipped models)
        watcher = DecisionWatcher(self.store, {a.asset_id: a for a in self.assets}, prescriber,
                                  time_scale=self.settings.store.time_scale, settings=self.settings,
                                  registry_dirs=[self.settings.models.registry_dir, SHIPPED_DIR])
        try:
            while not self._stop_ingest.wait(every_s):
                for event in await watcher.step():
                    self.prescriptions += 1
                    log.warning("work order %s drafted for %s: decision %s -> %s%s", event.work_order_id,
                                event.asset_id, event.previous, event.state,
                                f" (superseding drafts {list(event.superseded)})" if event.superseded else "")
        finally:
            await watcher.aclose()

    def stop(self, drain_timeout: float = 60.0) -> DemoResult:
        """Stop the simulator and agent, let ingest store everything published, then shut down."""
        self._stop_sim.set()
        for t in self._threads:
            if t.name == "simulator":
                t.join(30)
        published = 0
        extra: dict[str, Any] = {}
        if self.publisher is not None and self.agent is not None:
            self.publisher.drain(drain_timeout)
            st = self.agent.stats
            unsent = sum(1 for m in self.publisher.queue.peek(0, 1_000_000) if m.topic.endswith("/readings"))
            published = st.readings_sent + st.raw_snapshots_sent - unsent
            extra = {"agent": self.publisher_id, "features": st.features_sent, "status": st.status_sent,
                     "predictions": st.predictions_sent,
                     "windows": st.windows, "alarms": st.alarms, "queue_left": len(self.publisher.queue)}
            self.publisher.close()
        assert self.store is not None
        end = time.monotonic() + drain_timeout
        while self.store.count_readings(self.publisher_id) < published and time.monotonic() < end:
            time.sleep(0.2)
        self._stop_ingest.set()
        for t in self._threads:
            t.join(30)
        result = DemoResult(
            published=published,
            stored=self.store.count_readings(self.publisher_id),
            dead_lettered=self.store.count_dead_letters(since=self.started_at),
            duplicates=self.store.count_duplicate_readings(self.publisher_id),
            extra=extra,
        )
        self.store.close()
        if self.broker is not None:
            self.broker.stop()
        self._tmp.cleanup()
        return result


async def publish_simulation(settings: Settings, assets: list[Any], publisher: MqttPublisher,
                             stop: threading.Event, duration_s: float | None = None) -> None:
    """Publish the simulated plant's readings until ``stop`` is set or ``duration_s`` passes."""
    s = settings
    source = SimulatorSource(
        assets, default_faults(assets, s.sim.seed), seed=s.sim.seed, time_acceleration=s.sim.time_acceleration,
        interval_s=s.sim.publish_interval_s, snapshot_samples=s.sim.vibration_samples,
    )
    end = None if duration_s is None else time.monotonic() + duration_s
    async with source:
        async for raw in source.batches():
            if stop.is_set() or (end is not None and time.monotonic() >= end):
                break
            publisher.publish(s.mqtt.site, to_reading_batch(raw, publisher.publisher_id, publisher.next_seq()))


DEMO_USERS = {"operator": "operator", "engineer": "engineer"}


#: Where each demo run keeps its own SQLite store, and how many runs' stores are kept.
DEMO_STORE_DIR = Path("var/demo")
DEMO_STORES_KEPT = 5


def fresh_demo_store(settings: Settings, *, directory: Path = DEMO_STORE_DIR, keep: int = DEMO_STORES_KEPT) -> Settings:
    """``settings`` with a new SQLite store for this demo run, unless a store was configured.

    A demo that reused the last run's store would start with its open work orders and alarms, so
    nothing new would be drafted; a configured ``store.url`` (``--db``, the settings file or
    ``GENEDGE_STORE__URL``) is used as given. The ``keep`` newest runs' stores are kept for a look
    afterwards, older ones deleted.
    """
    if "url" in settings.store.model_fields_set:
        return settings
    directory.mkdir(parents=True, exist_ok=True)
    old = sorted(directory.glob("genedge-*.db"))
    for stale in old[: max(len(old) - keep + 1, 0)]:
        for part in (stale, stale.with_name(stale.name + "-wal"), stale.with_name(stale.name + "-shm")):
            part.unlink(missing_ok=True)  # SQLite's write-ahead log and shared memory beside the file
    path = directory / f"genedge-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}.db"
    log.warning("demo store: %s (pass --db to use another)", path)
    store = settings.store.model_copy(update={"url": SecretStr(f"sqlite:///{path}")})
    return settings.model_copy(update={"store": store})


def check_demo_logins(settings: Settings) -> None:
    """Refuse the demo's well-known logins on a dashboard that other machines can reach.

    Without configured ``dashboard.users`` the demo creates operator/operator and
    engineer/engineer; those are safe only while the dashboard listens on a loopback address.

    Raises:
        ConfigError: no users are configured and ``dashboard.host`` is not a loopback address.
    """
    host = settings.dashboard.host
    if not settings.dashboard.users and not is_loopback_host(host):
        raise ConfigError(
            f"dashboard.host is {host!r}, reachable from other machines: the demo's logins operator/operator "
            "and engineer/engineer are only created on a loopback address (127.0.0.1, ::1, localhost). Configure "
            "dashboard.users with your own passwords (genedge dashboard add-user NAME) or listen on 127.0.0.1"
        )


def start_demo_dashboard(settings: Settings, config_file: Any = None) -> Any:
    """Start the Streamlit dashboard against the demo's store, with demo-only logins.

    Raises:
        ConfigError: see :func:`check_demo_logins`.
    """
    import json

    from dashboard.auth import hash_password
    from dashboard.launch import dashboard_url, start_dashboard, wait_ready

    check_demo_logins(settings)
    if copied := seed_registry(settings.models.registry_dir):
        log.warning("model registry %s: copied the shipped models %s", settings.models.registry_dir, ", ".join(copied))
    users = settings.dashboard.users or {
        name: {"role": name, "password_hash": hash_password(pw)} for name, pw in DEMO_USERS.items()
    }
    env = {"GENEDGE_STORE__URL": settings.store.url.get_secret_value(), "GENEDGE_DASHBOARD__USERS": json.dumps(users),
           # the snapshot button publishes commands to the demo's broker, wherever it is
           "GENEDGE_MQTT__HOST": settings.mqtt.host, "GENEDGE_MQTT__PORT": str(settings.mqtt.port),
           "GENEDGE_MQTT__SITE": settings.mqtt.site,
           # the Models page lists (and retrains into) the demo's registry
           "GENEDGE_MODELS__REGISTRY_DIR": str(settings.models.registry_dir.resolve())}
    if settings.models.data_dir is not None:
        env["GENEDGE_MODELS__DATA_DIR"] = str(settings.models.data_dir.resolve())
    d = settings.dashboard
    proc = start_dashboard(config_file, d.host, d.port, env, tls_cert_file=d.tls_cert_file, tls_key_file=d.tls_key_file)
    url = dashboard_url(d.host, d.port, tls=d.tls_cert_file is not None)
    wait_ready(url, 60, proc=proc)
    if d.users:
        log.warning("dashboard: %s", url)
    else:
        log.warning("dashboard: %s  (demo logins: operator/operator, engineer/engineer)", url)
    return proc
