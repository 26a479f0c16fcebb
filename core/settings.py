"""The one typed configuration object of GenEdge.

Built once at the entry point (``Settings.load(config_file)``) and passed down; nothing else
reads ``os.environ``. Precedence, highest first: explicit overrides (CLI flags), environment
variables (``GENEDGE_`` prefix, ``__`` between sections, e.g. ``GENEDGE_MQTT__PORT=1884``),
the TOML file given with ``--config``, then the defaults below.
"""

from __future__ import annotations

import json
import math
import re
import threading
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from core.assets import AssetConfig
from core.edge_config import FeatureConfig, HealthConfig, PlcConfig, QualityConfig, SourceConfig
from core.errors import ConfigError

__all__ = [
    "AlarmSettings",
    "BridgeSettings",
    "DashboardSettings",
    "EdgeSettings",
    "GatewaySettings",
    "IngestSettings",
    "LLMSettings",
    "ModelsSettings",
    "MqttComponent",
    "MqttIdentities",
    "MqttIdentity",
    "MqttSettings",
    "PlantSettings",
    "RetentionSettings",
    "Settings",
    "SimSettings",
    "StoreSettings",
]


_LOAD_LOCK = threading.Lock()


_MQTT_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"
"""Broker user names and client ids: no space, colon or MQTT wildcard, so they fit Mosquitto's
password file and ACL lines and a topic level."""

MqttComponent = Literal["agent", "ingest", "dashboard"]


class MqttIdentity(BaseModel):
    """One component's login at the broker: its own user name, password and client id."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=_MQTT_NAME, description="broker user name of the component")
    password: SecretStr | None = Field(default=None, description="password of username; masked when shown")
    client_id: str | None = Field(
        default=None, pattern=_MQTT_NAME,
        description="MQTT client id; none: the component's own (agent <agent_id>-fwd, ingest ingest.client_id, "
        "dashboard <mqtt.client_id>-dash-<random>)",
    )


class MqttIdentities(BaseModel):
    """The login of each component; a component without one uses ``mqtt.username``/``mqtt.password``."""

    model_config = ConfigDict(extra="forbid")

    agent: MqttIdentity | None = None
    ingest: MqttIdentity | None = None
    dashboard: MqttIdentity | None = None


class GatewaySettings(BaseModel):
    """A gateway (one edge agent) of the plant: what it owns and how it logs in.

    Read by ``genedge broker acl`` (password file and ACL) and by ingest (which gateway owns an
    asset); a gateway's own agent logs in with ``mqtt.identities.agent``.
    """

    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="none: mqtt.site")
    assets: list[str] = Field(
        default_factory=list, description="asset ids the gateway serves; empty: every [[assets]] entry of its site",
    )
    username: str | None = Field(default=None, pattern=_MQTT_NAME, description="none: the agent id")
    password: SecretStr | None = Field(default=None, description="password of the gateway's agent; masked when shown")

    @field_validator("assets")
    @classmethod
    def _asset_ids(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", a)]
        if bad:
            raise ValueError(f"asset ids must match ^[A-Za-z0-9_-]{{1,64}}$; {len(bad)} do not")
        return v


_BRIDGE_HOST = r"^[A-Za-z0-9_.:\-\[\]]{1,253}$"
"""A host name or IP address of a bridge's central broker: it goes into a Mosquitto config line."""


def _check_topic_filter(topic: str) -> str:
    """``topic`` if it is an MQTT topic filter that fits on a Mosquitto ``topic`` line, else ValueError."""
    if not topic or len(topic.encode()) > 65535:
        raise ValueError(f"a bridge topic must be 1 to 65535 bytes, got {len(topic.encode())}")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in topic):
        raise ValueError(f"bridge topic {topic!r} contains a space or control character: it goes into a config line")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"bridge topic {topic!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"bridge topic {topic!r}: '+' must be a whole level")
    return topic


def _check_config_path(path: Path | None, name: str) -> None:
    if path is not None and any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in str(path)):
        raise ValueError(f"{name} {str(path)!r} contains a space or control character: it goes into a config line")


class BridgeSettings(BaseModel):
    """This site's broker bridged to a central broker (``[mqtt.bridge]``).

    ``genedge broker bridge`` writes the Mosquitto bridge configuration of the site broker from
    it: the site's data goes out and its commands come in over TLS, at QoS 1 on a persistent
    session, and the site broker queues what cannot be sent while the link is down.
    """

    model_config = ConfigDict(extra="forbid")

    connection: str | None = Field(
        default=None, pattern=_MQTT_NAME,
        description="bridge name, also its client id at the centre; none: genedge-bridge-<mqtt.site>",
    )
    host: str = Field(pattern=_BRIDGE_HOST, description="central broker's host name or IP address")
    port: int = Field(default=8883, ge=1, le=65535)
    tls: bool = Field(default=True, description="connect to the centre over TLS, verifying its certificate and name")
    allow_plain_tcp: bool = Field(default=False, description="allow the bridge without TLS (data and login in clear)")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle that signed the central broker's certificate")
    cert_file: Path | None = Field(default=None, description="PEM client certificate for mutual TLS (with key_file)")
    key_file: Path | None = Field(default=None, description="PEM private key of cert_file")
    username: str | None = Field(default=None, pattern=_MQTT_NAME, description="the bridge's login at the centre")
    password: SecretStr | None = Field(default=None, description="password of username; masked when shown")
    out_topics: list[str] | None = Field(
        default=None, description="topic filters sent to the centre; none: this site's data, genedge/v1/<site>/+/<type>",
    )
    in_topics: list[str] | None = Field(
        default=None, description="topic filters taken from the centre; none: this site's commands, genedge/v1/<site>/+/cmd",
    )
    qos: Literal[1, 2] = Field(default=1, description="QoS of both directions (QoS 0 could lose messages in an outage)")
    protocol: Literal["mqttv50", "mqttv311"] = Field(default="mqttv50", description="MQTT version of the bridge")
    max_inflight: int = Field(
        default=20_000, ge=1, le=65_534,
        description="QoS 1 messages the site broker sends unacknowledged (its max_inflight_messages, for "
                    "every client of the site broker); as large as an outage's backlog, so that the backlog "
                    "drains before newer messages (the centre's receive maximum must allow it too)",
    )
    max_queued_messages: int = Field(
        default=100_000, ge=1, description="messages the site broker holds per client (the bridge's) while the link is down",
    )
    max_queued_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="bytes of payload it holds per client (0: no limit)",
    )
    restart_timeout: tuple[int, int] = Field(
        default=(5, 30), description="reconnect back-off in seconds, base and cap (jitter in between)",
    )
    persistence_dir: Path | None = Field(
        default=None,
        description="folder of the site broker's persistence file; none: the broker's own persistence_location",
    )

    @field_validator("out_topics", "in_topics")
    @classmethod
    def _topic_filters(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_check_topic_filter(t) for t in v]

    @field_validator("password")
    @classmethod
    def _password_fits_a_line(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            secret = v.get_secret_value()
            if not secret or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in secret):
                raise ValueError("the bridge password must be non-empty, without spaces or control characters: "
                                 "it goes into a Mosquitto config line")
        return v

    @field_validator("restart_timeout")
    @classmethod
    def _back_off(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError(f"restart_timeout must be [base, cap] seconds with 1 <= base <= cap, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _secure_link(self) -> BridgeSettings:
        for name in ("ca_file", "cert_file", "key_file", "persistence_dir"):
            _check_config_path(getattr(self, name), name)
        if self.tls:
            if self.ca_file is None:
                raise ValueError("a TLS bridge needs ca_file (the CA that signed the central broker's certificate; "
                                 "the system bundle, e.g. /etc/ssl/certs/ca-certificates.crt, for a public CA)")
            if (self.cert_file is None) != (self.key_file is None):
                raise ValueError("cert_file and key_file come together")
        elif not self.allow_plain_tcp:
            raise ValueError("the bridge would carry the site's data and its login unencrypted to the centre: "
                             "set tls = true with ca_file, or allow_plain_tcp = true on a network that protects it")
        if self.password is not None and self.username is None:
            raise ValueError("password needs username (the bridge's login at the centre)")
        return self


class MqttSettings(BaseModel):
    """Broker connection. With ``embedded`` the demo starts its own broker on host:port."""

    model_config = ConfigDict(extra="forbid")  # a mistyped "pasword" must not mean an anonymous login

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = "genedge"
    username: str | None = Field(
        default=None, description="broker login of every component without its own identity; none: anonymous",
    )
    password: SecretStr | None = Field(default=None, description="password of username; masked when shown")
    identities: MqttIdentities = Field(default_factory=MqttIdentities, description="per-component logins")
    gateways: dict[str, GatewaySettings] = Field(
        default_factory=dict, description="agent id -> gateway: the plant's gateways, for the broker ACL and ingest",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: bool = Field(default=False, description="connect over TLS, verifying the broker's certificate and host name")
    allow_plain_tcp: bool = Field(
        default=False,
        description="allow plain TCP (no TLS) to a broker that is not on this machine; loopback needs nothing",
    )
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the broker's certificate (with tls); none: the system CAs",
    )
    cert_file: Path | None = Field(default=None, description="PEM client certificate for mutual TLS (with tls)")
    key_file: Path | None = Field(
        default=None, description="PEM private key of cert_file (with tls); none: the key is inside cert_file",
    )
    embedded: bool = Field(default=True, description="start an in-process broker when none is configured")
    site: str = Field(default="plant1", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    bridge: BridgeSettings | None = Field(
        default=None, description="this site's broker bridged to a central broker (genedge broker bridge)",
    )

    @field_validator("gateways")
    @classmethod
    def _gateway_ids(cls, v: dict[str, GatewaySettings]) -> dict[str, GatewaySettings]:
        bad = [g for g in v if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", g)]
        if bad:
            raise ValueError(f"gateway agent ids must match ^[A-Za-z0-9_-]{{1,64}}$; {len(bad)} do not")
        return v

    def identity(self, component: MqttComponent | None) -> MqttIdentity | None:
        """The login of ``component``: its own identity, else the shared ``username``/``password``
        (``None``: anonymous). ``component=None`` (tools, tests): the shared login."""
        own: MqttIdentity | None = getattr(self.identities, component) if component is not None else None
        if own is not None:
            return own
        if self.username:
            # not validated: the shared login predates the identity rules (a name with "@" still logs in)
            return MqttIdentity.model_construct(username=self.username, password=self.password, client_id=None)
        return None


class RetentionSettings(BaseModel):
    """How long each time-series table keeps its rows (``genedge ingest maintain``; docs/deployment.md).

    Days of data time; ``None`` or 0 keeps a table's rows for good. The hourly and daily feature
    aggregates are always kept. Feature rows are deleted only after their buckets were aggregated.
    """

    model_config = ConfigDict(extra="forbid")

    readings_days: int | None = Field(default=30, ge=0, le=36_500, description="raw snapshots (waveforms)")
    features_days: int | None = Field(default=365, ge=0, le=36_500)
    predictions_days: int | None = Field(default=365, ge=0, le=36_500)
    status_reports_days: int | None = Field(default=90, ge=0, le=36_500)
    dead_letters_days: int | None = Field(default=90, ge=0, le=36_500)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000, description="rows deleted per statement")


class StoreSettings(BaseModel):
    """Database. SQLite (WAL) by default; PostgreSQL by URL ``postgresql+psycopg://...``."""

    url: SecretStr = SecretStr("sqlite:///var/genedge.db")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    echo: bool = False
    time_scale: float | None = Field(
        default=None, gt=0, le=1e6, allow_inf_nan=False,
        description="plant hours per wall-clock hour of the stored timestamps; unset: what the store records "
                    "(the demo records its simulator's acceleration), else 1. Trends, look-backs and the "
                    "prescriber's evidence are read in plant hours")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not raw.startswith(("sqlite", "postgresql")):
            # the value is not quoted back: a mistyped URL may hold the database password
            raise ValueError("store url must start with sqlite or postgresql "
                             "(sqlite:///var/genedge.db, postgresql+psycopg://USER:PASSWORD@HOST/DB)")
        return v


class AlarmSettings(BaseModel):
    """Chatter control of ingest's alarms (ISA-18.2 on/off delays and deadband; docs/operator.md, Alarms).

    A condition must hold for ``on_delay_frames`` consecutive feature frames spanning at least
    ``on_delay_s`` seconds of data time before its alarm is raised (or escalated), and be back to
    normal for ``off_delay_frames`` frames spanning ``off_delay_s`` before it clears. An analog
    value (vibration RMS, temperature) is back to normal only below its lowest limit minus
    ``deadband_pct`` percent of that limit; zones and the anomaly flag use the delays only. RUL
    alarms count predictions instead of frames.
    """

    model_config = ConfigDict(extra="forbid")

    on_delay_frames: int = Field(default=3, ge=1, le=1000,
                                 description="consecutive frames a condition must hold before it raises")
    on_delay_s: float = Field(default=0.0, ge=0, le=86_400,
                              description="data time a condition must hold before it raises (with the frames)")
    off_delay_frames: int = Field(default=5, ge=1, le=1000,
                                  description="consecutive frames back to normal before an alarm clears")
    off_delay_s: float = Field(default=0.0, ge=0, le=86_400,
                               description="data time back to normal before an alarm clears (with the frames)")
    deadband_pct: float = Field(default=5.0, ge=0, le=50,
                                description="an analog alarm clears only this many percent below its limit")
    rul_on_delay: int = Field(default=2, ge=1, le=100,
                              description="consecutive RUL predictions in a band before rul_low raises or escalates")
    rul_off_delay: int = Field(default=3, ge=1, le=100,
                               description="consecutive RUL predictions out of every band before rul_low clears")


class IngestSettings(BaseModel):
    """Validation limits, subscription and memory bounds of the ingest service."""

    model_config = ConfigDict(extra="forbid")

    share_group: str | None = Field(default=None, description="MQTT 5 shared subscription group")
    max_payload_bytes: int = Field(default=2_000_000, ge=1024)
    max_future_s: float = Field(default=300.0, ge=0, description="reject timestamps further ahead than this")
    max_abs_value: float = Field(default=1e6, gt=0)
    flush_interval_s: float = Field(default=0.25, gt=0)
    client_id: str = "genedge-ingest"
    max_buffered_messages: int = Field(
        default=5000, ge=1, le=65_535,
        description="messages held in memory, not yet stored: beyond this ingest stops reading (the broker "
        "keeps the rest); also the MQTT 5 receive maximum",
    )
    max_buffered_bytes: int = Field(
        default=256 * 1024 * 1024, ge=65_536, description="payload bytes held in memory before ingest stops reading",
    )
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="alarm on/off delays and deadband")


class SimSettings(BaseModel):
    """Plant simulator used by the demo."""

    seed: int = 7
    time_acceleration: float = Field(default=3600.0, gt=0, description="simulated seconds per wall second")
    publish_interval_s: float = Field(default=0.5, gt=0, description="wall seconds between snapshots per asset")
    vibration_samples: int = Field(
        default=6400, ge=64, le=262_144,
        description="samples per vibration snapshot (6400 = 0.25 s at 25.6 kHz: enough for velocity RMS and ISO zone)",
    )


class EdgeSettings(BaseModel):
    """Edge agent on the gateway: identity and queue, source, features, health, quality, RUL and PLC."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(default="edge-01", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    queue_path: Path = Path("var/edge-queue.db")
    queue_max_messages: int = Field(default=100_000, ge=10)
    queue_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=65_536,
        description="bound on the queued messages' bytes (topic + payload); the file adds SQLite's overhead",
    )
    overflow: Literal["drop_oldest", "drop_newest"] = Field(
        default="drop_oldest",
        description="queue full (count, bytes or disk): drop_oldest deletes the oldest rows, drop_newest refuses the new one",
    )
    command_queue_max: int = Field(default=64, ge=1, le=10_000, description="commands waiting; more are refused")
    command_rate_per_asset: float = Field(default=6.0, gt=0, description="commands served per minute per asset")
    command_burst_per_asset: int = Field(default=3, ge=1, description="commands served at once per asset")
    command_rate_per_requester: float = Field(default=12.0, gt=0, description="commands served per minute per requester")
    command_burst_per_requester: int = Field(default=6, ge=1, description="commands served at once per requester")
    task_restart_s: tuple[float, float] = Field(
        default=(0.5, 30.0), description="(first, max) back-off before an agent task that died is restarted",
    )
    iso_class: str = "II"
    source: SourceConfig = Field(default_factory=SourceConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    plc: PlcConfig = Field(default_factory=PlcConfig)
    raw_below_hz: float = Field(default=100.0, ge=0, description="channels slower than this go upstream raw")
    raw_on_anomaly: bool = True
    ring_capacity: int = Field(default=8, ge=1, description="raw batches kept per channel")
    raw_decimals: int = Field(default=5, ge=0, le=12)
    status_interval_s: float = Field(default=10.0, gt=0)
    primary_host: str | None = Field(default=None, description="wait for this host's STATE before sending")
    rul_model: Path | None = Field(
        default=None,
        description="RUL model: a registry model directory (its promoted version is loaded), a version "
        "directory or an ONNX file; its card says whether it reads C-MAPSS rows or edge feature frames",
    )
    rul_every: int = Field(
        default=10,
        ge=1,
        description="windows between RUL predictions (C-MAPSS models; feature models predict once per frame step of their card)",
    )
    rul_time_scale: float = Field(
        default=1.0,
        gt=0,
        description="asset seconds per second of the window "
        "timestamps, for feature models' frame steps (an accelerated simulator: 3600)",
    )
    rul_coverage: float = Field(default=0.9, gt=0, lt=1)


class ModelsSettings(BaseModel):
    """Model training and registry."""

    registry_dir: Path = Path("var/registry")
    data_dir: Path | None = None
    seed: int | None = Field(default=None, description="training seed; none: each recipe's own (0 for the shipped models)")
    max_epochs: int | None = Field(default=None, ge=1, description="training epochs; none: the recipe's (25 C-MAPSS, 30 others)")
    accelerator: str | None = Field(default=None, description="Lightning accelerator (cpu, gpu, auto); none: the recipe's (cpu)")


class LLMSettings(BaseModel):
    """Prescriber backends."""

    backend: Literal["auto", "local", "openai", "rules"] = "auto"
    model_path: Path | None = None
    openai_url: str | None = None
    openai_key: SecretStr | None = None
    openai_model: str = "qwen2.5-coder"
    threads: int = Field(default=2, ge=1)
    speculative: Literal["off", "draft", "ngram-simple", "ngram-map-k", "ngram-mod", "ngram-cache"] = Field(
        default="off",
        description="speculative decoding of the local model, with a draft model (draft) or from n-grams; "
        "off by default: on the two-core reference CPU the best type (ngram-mod) decoded 1.10x as fast as "
        "plain decoding, the draft model 0.47x, and it may change the wording of greedy answers "
        "(benchmarks/results/llm_speculative.md)",
    )
    draft_max: int = Field(default=4, ge=1, le=64, description="most tokens drafted per step (speculative on)")
    ngram_n: int = Field(default=3, ge=1, le=32, description="n-gram length looked up to draft (speculative on)")
    draft_model_path: Path | None = Field(
        default=None,
        description="draft model GGUF of speculative=draft; none: var/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    )


class DashboardSettings(BaseModel):
    """Streamlit dashboard."""

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    users: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="user -> {role, password_hash}; the hashes are masked when shown",
    )
    refresh_s: float = Field(default=2.0, gt=0, description="live pages refresh interval")
    stale_after_s: float = Field(default=30.0, gt=0, description="an asset with no data for this long is stale")
    session_secret: SecretStr | None = Field(
        default=None,
        description="key that signs session cookies (32+ characters); none: a random key generated once "
        "and kept in state_dir/session.key (mode 0600)",
    )
    state_dir: Path = Field(
        default=Path("var/dashboard"),
        description="sign-in state of the server: the generated session key, sessions and failed sign-ins",
    )
    session_ttl_s: float = Field(default=12 * 3600, gt=0, le=7 * 86400, description="lifetime of a sign-in")
    lockout_after: int = Field(default=5, ge=1, description="failed sign-ins (per user, per client) before a lockout")
    lockout_s: float = Field(
        default=30.0, gt=0, description="first lockout; each further failure while locked out doubles it",
    )
    lockout_max_s: float = Field(default=900.0, gt=0, description="longest lockout")
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate: serve the dashboard over HTTPS (with tls_key_file)",
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")

    @field_validator("session_secret")
    @classmethod
    def _long_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 32:
            raise ValueError(f"session_secret must be at least 32 characters, got {len(v.get_secret_value())}")
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> DashboardSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file come together")
        return self


class PlantSettings(BaseModel):
    """The plant's maintenance calendar and costs, and the what-if twin's limits (``[plant]``).

    Planned stops repeat every ``planned_stop_every_h`` plant hours from ``planned_stop_anchor``
    (a stop's start), plus the one-off ``planned_stops``. Costs are in ``currency``; an asset's
    own ``[[assets]]`` values (``downtime_cost_per_h``, ``repair_h``, ``parts_cost``,
    ``failure_cost``, ``spare_lead_time_h``) override these defaults.
    """

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(default="EUR", pattern=r"^[A-Za-z]{3}$")
    planned_stop_anchor: AwareDatetime = Field(
        default=datetime(2026, 1, 4, 6, 0, tzinfo=UTC), description="start of one planned stop (the calendar's phase)",
    )
    planned_stop_every_h: float = Field(
        default=168.0, ge=0, description="plant hours between planned stops; 0: only planned_stops",
    )
    planned_stop_h: float = Field(default=12.0, gt=0, le=720, description="length of a planned stop in hours")
    planned_stops: list[AwareDatetime] = Field(default_factory=list, description="one-off planned stops (starts)")
    risk_limit: dict[int, float] = Field(
        default_factory=lambda: {1: 0.2, 2: 0.1, 3: 0.05},
        description="per criticality 1-3: the highest accepted probability of failing before the repair",
    )
    derate_share: float = Field(default=0.3, gt=0, le=0.9, description="share of the load taken off by the derate option")
    futures: int = Field(default=500, ge=50, le=20_000, description="simulated futures per option")
    review_h: float = Field(
        default=4.0, gt=0, le=720, description="plant hours between what-if judgements (a new RUL prediction)",
    )
    downtime_cost_per_h: dict[int, float] = Field(
        default_factory=lambda: {1: 300.0, 2: 1500.0, 3: 6000.0}, description="per criticality 1-3",
    )
    repair_h: float = Field(default=6.0, gt=0)
    parts_cost: float = Field(default=800.0, ge=0)
    labour_per_h: float = Field(default=90.0, ge=0)
    failure_extra_h: float = Field(default=12.0, ge=0, description="further downtime after an unplanned failure")
    failure_cost: float = Field(default=4000.0, ge=0, description="secondary damage of an unplanned failure")

    @field_validator("downtime_cost_per_h")
    @classmethod
    def _three_levels(cls, v: dict[int, float]) -> dict[int, float]:
        if sorted(v) != [1, 2, 3] or any(not (x >= 0 and math.isfinite(x)) for x in v.values()):
            raise ValueError(f"downtime_cost_per_h needs finite costs >= 0 for criticality 1, 2 and 3, got {v}")
        return v

    @field_validator("risk_limit")
    @classmethod
    def _three_risks(cls, v: dict[int, float]) -> dict[int, float]:
        if sorted(v) != [1, 2, 3] or any(not 0 < x < 1 for x in v.values()):
            raise ValueError(f"risk_limit needs a probability in (0, 1) for criticality 1, 2 and 3, got {v}")
        return v


class Settings(BaseSettings):
    """All of GenEdge's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GENEDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    _toml_data: ClassVar[dict[str, Any] | None] = None
    _legacy_edge: ClassVar[dict[str, Any] | None] = None

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    plant: PlantSettings = Field(default_factory=PlantSettings)
    assets: list[AssetConfig] = Field(default_factory=list, description="empty: the simulator's default plant")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._legacy_edge is not None:
            sources.append(InitSettingsSource(settings_cls, init_kwargs={"edge": cls._legacy_edge}))
        if cls._toml_data is not None:  # the --config file, parsed once by load()
            sources.append(InitSettingsSource(settings_cls, init_kwargs=cls._toml_data))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, *, agent_config_file: Path | None = None, **overrides: Any) -> Settings:
        """Build the settings from defaults, an optional TOML file, the environment and overrides.

        Args:
            config_file: the TOML settings file (``--config``).
            agent_config_file: deprecated: an edge-agent file of the old layout (top-level
                ``rul_model``, ``[source]``, ``[plc]`` ...), read as the ``[edge]`` section. It
                ranks above ``config_file`` and below the environment.
            overrides: section values that rank above everything else.

        Raises:
            ConfigError: a file is missing or unreadable, or a value is invalid.
        """
        toml = _read_toml(config_file, "config file") if config_file is not None else None
        legacy = _read_toml(agent_config_file, "agent config") if agent_config_file is not None else None
        with _LOAD_LOCK:  # the file contents travel to settings_customise_sources on the class
            cls._toml_data = toml
            cls._legacy_edge = legacy
            try:
                return cls(**overrides)
            except ValidationError as err:
                problem = _describe(err)
            except SettingsError as err:  # a GENEDGE_* variable that is not valid JSON for its section
                problem = _settings_error_field(err)
            finally:
                cls._toml_data = None
                cls._legacy_edge = None
        # Raised outside the handler, so the pydantic error (whose text and traceback carry the
        # input values: passwords, URLs) is neither the cause nor the context of this one.
        raise ConfigError(f"invalid configuration: {problem}")

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data with secrets shown as ``**********``."""
        masked: dict[str, Any] = _mask(json.loads(self.model_dump_json()))
        return masked


_MASK = "**********"
#: Keys whose values are secret wherever they appear in plain data (e.g. ``dashboard.users``' hashes).
_SECRET_KEY = re.compile(r"(password|secret|token|api_key|passphrase)", re.IGNORECASE)


def _mask(data: Any) -> Any:
    """``data`` with every value under a secret-looking key replaced by the mask (recursively)."""
    if isinstance(data, dict):
        return {k: (_MASK if v is not None and _SECRET_KEY.search(str(k)) else _mask(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask(v) for v in data]
    return data


def _describe(err: ValidationError, limit: int = 10) -> str:
    """Each error's location and message, never its input value (a password, a database URL)."""
    parts = []
    for e in err.errors(include_url=False, include_context=False, include_input=False)[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    more = err.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _settings_error_field(err: SettingsError) -> str:
    """A pydantic-settings parsing error reduced to the field and source it names."""
    m = re.search(r'field "([^"]+)" from source "([^"]+)"', str(err))
    if m is None:
        return "a value could not be parsed"
    field, source = m.groups()
    where = f"a GENEDGE_{field.upper()}__* environment variable" if source == "EnvSettingsSource" else source
    return f"{field}: {where} is not valid JSON (a section, list or mapping is JSON in the environment)"


def _read_toml(path: Path | str, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what} {str(path)!r} is not UTF-8 text (byte {err.start})") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{what} {str(path)!r} is not valid TOML: {err}") from err
