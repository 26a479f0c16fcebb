"""Sources of raw batches: one async protocol, several implementations."""

from __future__ import annotations

from typing import Any

from core.assets import AssetConfig
from core.edge_config import SourceConfig
from core.errors import ConfigError
from core.settings import Settings
from edge_agent.sources.base import RawBatch, Source

__all__ = ["RawBatch", "Source", "build_source", "configured_asset"]


def build_source(settings: Settings) -> tuple[Any, list[AssetConfig]]:
    """The source of ``settings.edge.source`` and the assets it delivers.

    Each kind's module is imported in its branch: the replays pull in scipy and the dataset
    readers, the PLC sources asyncua and pymodbus (about a second to import), and a gateway loads
    only what its source needs.
    """
    cfg = settings.edge.source
    kind = cfg.kind
    if kind == "simulator":
        from core.sim import default_faults, default_plant  # noqa: PLC0415  (per kind, see above)
        from edge_agent.sources.simulator import SimulatorSource  # noqa: PLC0415

        assets = settings.assets or default_plant(settings.mqtt.site)
        return SimulatorSource(
            assets,
            default_faults(assets, settings.sim.seed),
            seed=settings.sim.seed,
            time_acceleration=settings.sim.time_acceleration,
            interval_s=settings.sim.publish_interval_s,
            snapshot_samples=settings.sim.vibration_samples,
        ), assets
    if kind in ("femto", "cwru", "cmapss", "dcase"):
        return _replay(cfg, settings)
    if not settings.assets:
        raise ConfigError(f"source kind {kind!r} needs the assets in the settings file ([[assets]])")
    from edge_agent.sources import industrial  # noqa: PLC0415  (per kind, see above)

    if kind == "opcua":
        return industrial.OpcUaSource(cfg.endpoint, cfg.opcua_tags, settings.assets), list(settings.assets)
    modbus = industrial.ModbusSource(cfg.endpoint, cfg.modbus_tags, settings.assets, unit_id=cfg.unit_id, poll_s=cfg.poll_s)
    return modbus, list(settings.assets)


def _replay(cfg: SourceConfig, settings: Settings) -> tuple[Any, list[AssetConfig]]:
    from core.datasets.cmapss import cmapss_assets, read_cmapss_file, units_of  # noqa: PLC0415  (see build_source)
    from core.datasets.cwru import cwru_asset  # noqa: PLC0415
    from core.datasets.dcase import dcase_asset  # noqa: PLC0415
    from core.datasets.femto import femto_asset  # noqa: PLC0415
    from edge_agent.sources import replay  # noqa: PLC0415

    if not cfg.paths:
        raise ConfigError(f"source kind {cfg.kind!r} needs 'paths'")
    if cfg.kind == "femto":
        bearing = cfg.paths[0].name.removesuffix(".tar.xz").rsplit("Bearing", 1)[-1]
        femto = replay.FemtoReplaySource(cfg.paths[0], configured_asset(femto_asset(bearing), settings), speed=cfg.speed)
        return femto, [femto.asset]
    if cfg.kind == "cwru":
        cwru = replay.CwruReplaySource(cfg.paths, configured_asset(cwru_asset(), settings), speed=cfg.speed)
        return cwru, [cwru.asset]
    if cfg.kind == "cmapss":
        path = cfg.paths[0]
        units = cfg.units if cfg.units is not None else sorted(units_of(read_cmapss_file(path)))
        recorded = cmapss_assets(path.stem.split("_")[-1], units)
        cm = replay.CmapssReplaySource(path, units, assets=[configured_asset(a, settings) for a in recorded], speed=cfg.speed)
        return cm, cm.assets
    dc = replay.DcaseReplaySource(cfg.paths, configured_asset(dcase_asset(), settings), speed=cfg.speed)
    return dc, [dc.asset]


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
