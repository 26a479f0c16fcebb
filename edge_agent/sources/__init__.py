"""Sources of raw batches: one async protocol, several implementations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.assets import AssetConfig
from core.errors import ConfigError
from core.settings import Settings
from edge_agent.sources.base import RawBatch, Source

if TYPE_CHECKING:  # the config imports the sources' users; keep this package import-light
    from edge_agent.config import SourceConfig

__all__ = ["RawBatch", "Source", "build_source", "configured_asset"]


def build_source(cfg: SourceConfig, settings: Settings) -> tuple[Any, list[AssetConfig]]:
    """The configured source and the assets it delivers."""
    from core.sim import default_faults, default_plant
    from edge_agent.sources import industrial, replay
    from edge_agent.sources.simulator import SimulatorSource

    kind = cfg.kind
    if kind == "simulator":
        assets = settings.assets or default_plant(settings.mqtt.site)
        return SimulatorSource(
            assets,
            default_faults(assets, settings.sim.seed),
            seed=settings.sim.seed,
            time_acceleration=settings.sim.time_acceleration,
            interval_s=settings.sim.publish_interval_s,
            snapshot_samples=settings.sim.vibration_samples,
        ), assets
    if kind in ("femto", "cwru", "cmapss", "dcase") and not cfg.paths:
        raise ConfigError(f"source kind {kind!r} needs 'paths'")
    if kind == "femto":
        bearing = cfg.paths[0].name.removesuffix(".tar.xz").rsplit("Bearing", 1)[-1]
        femto = replay.FemtoReplaySource(cfg.paths[0], configured_asset(replay.femto_asset(bearing), settings), speed=cfg.speed)
        return femto, [femto.asset]
    if kind == "cwru":
        cwru = replay.CwruReplaySource(cfg.paths, configured_asset(replay.cwru_asset(), settings), speed=cfg.speed)
        return cwru, [cwru.asset]
    if kind == "cmapss":
        path = cfg.paths[0]
        units = cfg.units if cfg.units is not None else sorted(replay.load_cmapss(path))
        recorded = replay.cmapss_assets(path.stem.split("_")[-1], units)
        cm = replay.CmapssReplaySource(path, units, assets=[configured_asset(a, settings) for a in recorded], speed=cfg.speed)
        return cm, cm.assets
    if kind == "dcase":
        dc = replay.DcaseReplaySource(cfg.paths, configured_asset(replay.dcase_asset(), settings), speed=cfg.speed)
        return dc, [dc.asset]
    if not settings.assets:
        raise ConfigError(f"source kind {kind!r} needs the assets in the settings file ([[assets]])")
    if kind == "opcua":
        return industrial.OpcUaSource(cfg.endpoint, cfg.opcua_tags, settings.assets), list(settings.assets)
    modbus = industrial.ModbusSource(cfg.endpoint, cfg.modbus_tags, settings.assets, unit_id=cfg.unit_id, poll_s=cfg.poll_s)
    return modbus, list(settings.assets)


def configured_asset(recorded: AssetConfig, settings: Settings) -> AssetConfig:
    """The settings file's ``[[assets]]`` entry with a replayed asset's id, else the dataset's own description.

    The entry supplies name, place, criticality, ISO machine class, shaft speed, bearing geometry
    and limits; every channel of the recording must be in it with the recorded quantity, unit and
    sample rate (a replay cannot resample or convert).

    Raises:
        ConfigError: the entry lacks a recorded channel or describes it differently.
    """
    entry = next((a for a in settings.assets if a.asset_id == recorded.asset_id), None)
    if entry is None:
        return recorded
    have = {c.name: c for c in entry.channels}
    for ch in recorded.channels:
        got = have.get(ch.name)
        if got is None or (got.quantity, got.unit, got.sample_rate_hz) != (ch.quantity, ch.unit, ch.sample_rate_hz):
            raise ConfigError(
                f"asset {recorded.asset_id!r} in the settings file: channel {ch.name!r} must be {ch.quantity.value} in "
                f"{ch.unit!r} at {ch.sample_rate_hz} Hz as recorded, got "
                + ("nothing" if got is None else f"{got.quantity.value} in {got.unit!r} at {got.sample_rate_hz} Hz")
            )
    return entry
