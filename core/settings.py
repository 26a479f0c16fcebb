"""The one typed configuration object of GenEdge.

Built once at the entry point (``Settings.load(config_file)``) and passed down; nothing else
reads ``os.environ``. Precedence, highest first: explicit overrides (CLI flags), environment
variables (``GENEDGE_`` prefix, ``__`` between sections, e.g. ``GENEDGE_MQTT__PORT=1884``),
the TOML file given with ``--config``, then the defaults below.
"""

from __future__ import annotations

import json
import threading
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.assets import AssetConfig
from core.edge_config import FeatureConfig, HealthConfig, PlcConfig, QualityConfig, SourceConfig
from core.errors import ConfigError

__all__ = [
    "DashboardSettings",
    "EdgeSettings",
    "IngestSettings",
    "LLMSettings",
    "ModelsSettings",
    "MqttSettings",
    "Settings",
    "SimSettings",
    "StoreSettings",
]


_LOAD_LOCK = threading.Lock()


class MqttSettings(BaseModel):
    """Broker connection. With ``embedded`` the demo starts its own broker on host:port."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = "genedge"
    username: str | None = Field(default=None, description="broker login; none: connect anonymously")
    password: SecretStr | None = Field(default=None, description="password of username; masked when shown")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    tls: bool = Field(default=False, description="connect over TLS, verifying the broker's certificate and host name")
    ca_file: Path | None = Field(
        default=None, description="PEM CA bundle that signed the broker's certificate (with tls); none: the system CAs",
    )
    cert_file: Path | None = Field(default=None, description="PEM client certificate for mutual TLS (with tls)")
    key_file: Path | None = Field(
        default=None, description="PEM private key of cert_file (with tls); none: the key is inside cert_file",
    )
    embedded: bool = Field(default=True, description="start an in-process broker when none is configured")
    site: str = Field(default="plant1", pattern=r"^[A-Za-z0-9_\-]{1,64}$")


class StoreSettings(BaseModel):
    """Database. SQLite (WAL) by default; PostgreSQL by URL ``postgresql+psycopg://...``."""

    url: SecretStr = SecretStr("sqlite:///var/genedge.db")
    batch_size: int = Field(default=500, ge=1, le=100_000)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: SecretStr) -> SecretStr:
        raw = v.get_secret_value()
        if not raw.startswith(("sqlite", "postgresql")):
            raise ValueError(f"store url must start with sqlite or postgresql, got {raw.split(':', 1)[0]!r}")
        return v


class IngestSettings(BaseModel):
    """Validation limits and subscription of the ingest service."""

    share_group: str | None = Field(default=None, description="MQTT 5 shared subscription group")
    max_payload_bytes: int = Field(default=2_000_000, ge=1024)
    max_future_s: float = Field(default=300.0, ge=0, description="reject timestamps further ahead than this")
    max_abs_value: float = Field(default=1e6, gt=0)
    flush_interval_s: float = Field(default=0.25, gt=0)
    client_id: str = "genedge-ingest"


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
    overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest"
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


class DashboardSettings(BaseModel):
    """Streamlit dashboard."""

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=1, le=65535)
    users: dict[str, dict[str, str]] = Field(default_factory=dict, description="user -> {role, password_hash}")
    refresh_s: float = Field(default=2.0, gt=0, description="live pages refresh interval")
    stale_after_s: float = Field(default=30.0, gt=0, description="an asset with no data for this long is stale")


class Settings(BaseSettings):
    """All of GenEdge's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="GENEDGE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    _toml_file: ClassVar[Path | None] = None
    _legacy_edge: ClassVar[dict[str, Any] | None] = None

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
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
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
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
        if config_file is not None:
            _read_toml(config_file, "config file")
        legacy = _read_toml(agent_config_file, "agent config") if agent_config_file is not None else None
        with _LOAD_LOCK:  # the file contents travel to settings_customise_sources on the class
            cls._toml_file = config_file
            cls._legacy_edge = legacy
            try:
                return cls(**overrides)
            except ValidationError as err:
                raise ConfigError(f"invalid configuration: {err}") from err
            finally:
                cls._toml_file = None
                cls._legacy_edge = None

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data with secrets shown as ``**********``."""
        masked: dict[str, Any] = json.loads(self.model_dump_json())
        return masked


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{what} {str(path)!r} is not valid TOML: {err}") from err
