"""Sources of raw batches: one async protocol, several implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.assets import AssetConfig
from core.errors import ConfigError
from core.settings import Settings
from edge_agent.sources.base import RawBatch, Source

if TYPE_CHECKING:  # the config imports the sources' users; keep this package import-light
    from edge_agent.config import SourceConfig

__all__ = ["RawBatch", "Source", "build_source"]


def build_source(cfg: SourceConfig, settings: Settings) -> tuple[Any, list[AssetConfig]]:
    """The configured source and the assets it delivers."""
    from core.sim import default_faults, default_plant
    from edge_agent.sources import industrial, replay
    from edge_agent.sources.simulator import SimulatorSource

    kind = cfg.kind
    if kind == "simulator":
        assets = settings.assets or default_plant(settings.mqtt.site)
        return SimulatorSource(assets, default_faults(assets, settings.sim.seed), seed=settings.sim.seed,
                               time_acceleration=settings.sim.time_acceleration,
                               interval_s=settings.sim.publish_interval_s,
                               snapshot_samples=settings.sim.vibration_samples), assets
    if kind in ("femto", "cwru", "cmapss", "dcase") and not cfg.paths:
        raise ConfigError(f"source kind {kind!r} needs 'paths'")
    if kind == "femto":
        femto = replay.FemtoReplaySource(cfg.paths[0], speed=cfg.speed)
        return femto, [femto.asset]
    if kind == "cwru":
        cwru = replay.CwruReplaySource(cfg.paths, speed=cfg.speed)
        return cwru, [cwru.asset]
    if kind == "cmapss":
        cm = replay.CmapssReplaySource(cfg.paths[0], cfg.units, speed=cfg.speed)
        return cm, cm.assets
    if kind == "dcase":
        dc = replay.DcaseReplaySource(cfg.paths, speed=cfg.speed)
        return dc, [dc.asset]
    if not settings.assets:
        raise ConfigError(f"source kind {kind!r} needs the assets in the settings file ([[assets]])")
    if kind == "opcua":
        return industrial.OpcUaSource(cfg.endpoint, cfg.opcua_tags, settings.assets), list(settings.assets)
    return industrial.ModbusSource(cfg.endpoint, cfg.modbus_tags, settings.assets, unit_id=cfg.unit_id,
                                   poll_s=cfg.poll_s), list(settings.assets)
