"""PLC gateway: write health index, RUL (hours, cycles or % of life left, each to its own tag), ISO zone
and alarm bits back to OPC UA nodes and Modbus holding registers. Only configured addresses are written, at most once per
``min_interval_s`` per asset."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from core.edge_config import PlcConfig, PlcTarget
from core.wire import DataQuality
from edge_agent.processor import WindowResult
from edge_agent.sources.industrial import split_endpoint

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

__all__ = ["ALARM_BITS", "FIELDS", "RUL_FIELDS", "PlcWriter", "plc_outputs"]

log = logging.getLogger(__name__)

#: Bit of each condition in the ``alarm_bits`` word.
ALARM_BITS = {"anomaly": 0, "zone_c": 1, "zone_d": 2, "flatline": 3, "device_silent": 4}
#: The RUL field of each wire unit: a tag holds one unit, so a model in cycles never lands in hours.
RUL_FIELDS = {"h": "rul_hours", "cycles": "rul_cycles", "%": "rul_life_pct"}
FIELDS = ("health_index", *RUL_FIELDS.values(), "iso_zone", "alarm_bits")


def plc_outputs(result: WindowResult, rul: tuple[float, str] | None) -> dict[str, float]:
    """The values written for one window (fields that cannot be computed are left out).

    ``rul`` is the asset's latest RUL median and its unit; it goes to that unit's field.
    """
    out: dict[str, float] = {}
    zones = [f["iso_zone"] for f in result.features.values() if "iso_zone" in f]
    zone = int(max(zones)) if zones else None
    bits = 0
    if result.alarm is not None:
        out["health_index"] = round(result.alarm.health, 3)
        bits |= int(result.alarm.alarm) << ALARM_BITS["anomaly"]
    if zone is not None:
        out["iso_zone"] = float(zone)
        bits |= int(zone >= 2) << ALARM_BITS["zone_c"] | int(zone >= 3) << ALARM_BITS["zone_d"]
    bits |= int(result.quality == DataQuality.FLATLINE) << ALARM_BITS["flatline"]
    bits |= int(result.quality == DataQuality.DEVICE_SILENT) << ALARM_BITS["device_silent"]
    out["alarm_bits"] = float(bits)
    if rul is not None and rul[1] in RUL_FIELDS:
        out[RUL_FIELDS[rul[1]]] = round(rul[0], 1)
    return out


class PlcWriter:
    """A window hook that writes each asset's outputs to its configured PLC addresses."""

    def __init__(self, config: PlcConfig) -> None:
        self.config = config
        self.targets = {t.asset_id: t for t in config.targets}
        self._last: dict[str, float] = {}
        self._busy: set[str] = set()
        self.written: dict[str, dict[str, float]] = {}
        self.errors = 0
        self._opc: Any = None
        self._modbus: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        asset_id = result.asset.asset_id
        target = self.targets.get(asset_id)
        now = time.monotonic()
        if target is None or asset_id in self._busy or now - self._last.get(asset_id, -1e9) < self.config.min_interval_s:
            return
        values = plc_outputs(result, agent.last_rul.get(asset_id))
        self._last[asset_id] = now
        self._busy.add(asset_id)
        task = asyncio.get_running_loop().create_task(self._write(target, values))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, target: PlcTarget, values: dict[str, float]) -> None:
        try:
            done: dict[str, float] = {}
            if target.opcua_nodes and self.config.opcua_endpoint:
                done |= await self._write_opcua(target, values)
            if target.modbus_registers and self.config.modbus_endpoint:
                done |= await self._write_modbus(target, values)
            self.written[target.asset_id] = {**self.written.get(target.asset_id, {}), **done}
        except Exception as err:  # a PLC hiccup must not stop the agent; the next window retries
            self.errors += 1
            log.warning("PLC write for %s failed: %s", target.asset_id, err)
            await self.close()
        finally:
            self._busy.discard(target.asset_id)

    async def _write_opcua(self, target: PlcTarget, values: dict[str, float]) -> dict[str, float]:
        # asyncua and pymodbus load only when a target uses them: asyncua alone takes about a
        # second to import, paid by every agent that writes no OPC UA tag otherwise.
        from asyncua import ua  # noqa: PLC0415
        from asyncua.client.client import Client  # noqa: PLC0415

        if self._opc is None:
            self._opc = Client(self.config.opcua_endpoint)  # type: ignore[arg-type]
            await self._opc.connect()
        done = {}
        for name, node_id in target.opcua_nodes.items():
            if name not in values:
                continue
            node = self._opc.get_node(node_id)
            vtype = await node.read_data_type_as_variant_type()
            value: Any = values[name]
            if vtype not in (ua.VariantType.Float, ua.VariantType.Double):
                value = round(value)
            await node.write_value(ua.DataValue(ua.Variant(value, vtype)))
            done[name] = values[name]
        return done

    async def _write_modbus(self, target: PlcTarget, values: dict[str, float]) -> dict[str, float]:
        from pymodbus.client import AsyncModbusTcpClient  # noqa: PLC0415  (loaded only when used, as above)

        if self._modbus is None:
            host, port = split_endpoint(self.config.modbus_endpoint or "")
            self._modbus = AsyncModbusTcpClient(host, port=port, timeout=1, retries=0)
            await self._modbus.connect()
        done = {}
        for name, address in target.modbus_registers.items():
            if name not in values:
                continue
            raw = round(values[name] * target.modbus_scale.get(name, 1.0))
            rr = await self._modbus.write_register(address, max(0, min(raw, 0xFFFF)), device_id=self.config.modbus_unit_id)
            if rr.isError():
                raise OSError(f"Modbus write of register {address} refused: {rr}")
            done[name] = values[name]
        return done

    async def close(self) -> None:
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        if self._opc is not None:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                await self._opc.disconnect()
            self._opc = None
        if self._modbus is not None:
            self._modbus.close()
            self._modbus = None
