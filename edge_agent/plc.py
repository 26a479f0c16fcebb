"""PLC gateway: write health index, RUL (hours, cycles or % of life left, each to its own tag), ISO zone,
alarm bits and validity flags back to OPC UA nodes and Modbus holding registers, plus the agent's heartbeat.

Only configured addresses are written. Values are never left to go stale silently:

* a **heartbeat** counter (0-65535, wrapping) is written every ``heartbeat_interval_s`` while the
  agent runs, so the PLC sees a killed or hung agent by the counter standing still;
* each asset's **validity** flags (``valid``, ``health_valid``, ``rul_valid``) drop to 0 when a
  channel of the asset is silent, when its windows yield no health index, when its RUL model failed
  to load or predict, when its RUL is older than ``rul_max_age_s``, and when the agent stops; a
  target may name sentinels written into the invalid value tags as well;
* the ``device_silent`` alarm bit is set while a channel of the asset delivers nothing;
* a RUL is written once per prediction, never rewritten later as if it were fresh.

Window values are written at most once per ``min_interval_s`` per asset; a change of validity or
alarm state, and a new prediction, are written by the agent's housekeeping tick without waiting for
a window (a silent asset has none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.edge_config import PLC_VALIDITY_FIELDS, PlcConfig, PlcTarget
from core.wire import DataQuality
from edge_agent.processor import WindowResult
from edge_agent.sources.industrial import split_endpoint

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

__all__ = [
    "ALARM_BITS",
    "DEFAULT_RUL_MAX_AGE_S",
    "FIELDS",
    "HEARTBEAT_MODULO",
    "RUL_FIELDS",
    "PlcWriter",
    "alarm_word",
    "plc_outputs",
]

log = logging.getLogger(__name__)

#: Bit of each condition in the ``alarm_bits`` word.
ALARM_BITS = {"anomaly": 0, "zone_c": 1, "zone_d": 2, "flatline": 3, "device_silent": 4}
#: The RUL field of each wire unit: a tag holds one unit, so a model in cycles never lands in hours.
RUL_FIELDS = {"h": "rul_hours", "cycles": "rul_cycles", "%": "rul_life_pct"}
FIELDS = ("health_index", *RUL_FIELDS.values(), "iso_zone", "alarm_bits")
#: The heartbeat counts 0..65535 and wraps to 0: one 16-bit register, and the same on OPC UA.
HEARTBEAT_MODULO = 0x10000
#: Oldest RUL still valid when neither the settings nor the model give a prediction interval.
DEFAULT_RUL_MAX_AGE_S = 3600.0
#: Bound on the final "invalid" write at shutdown, so an unreachable PLC cannot hold the agent.
_CLOSE_TIMEOUT_S = 3.0
_HEALTH_FIELDS = ("health_index", "iso_zone")


def alarm_word(*, anomaly: bool, zone: float | None, flatline: bool, silent: bool) -> int:
    """The ``alarm_bits`` word (bits in :data:`ALARM_BITS`)."""
    z = -1 if zone is None else int(zone)
    return (int(anomaly) << ALARM_BITS["anomaly"] | int(z >= 2) << ALARM_BITS["zone_c"]
            | int(z >= 3) << ALARM_BITS["zone_d"] | int(flatline) << ALARM_BITS["flatline"]
            | int(silent) << ALARM_BITS["device_silent"])


def plc_outputs(result: WindowResult, rul: tuple[float, str] | None, *, silent: bool = False) -> dict[str, float]:
    """The values of one window on its own (fields that cannot be computed are left out).

    ``rul`` is the asset's latest RUL median and its unit; it goes to that unit's field.
    ``silent``: a channel of the asset delivers nothing (sets the ``device_silent`` bit).
    """
    out: dict[str, float] = {}
    zones = [f["iso_zone"] for f in result.features.values() if "iso_zone" in f]
    zone = float(int(max(zones))) if zones else None
    if result.alarm is not None:
        out["health_index"] = round(result.alarm.health, 3)
    if zone is not None:
        out["iso_zone"] = zone
    out["alarm_bits"] = float(alarm_word(anomaly=result.alarm is not None and result.alarm.alarm, zone=zone,
                                         flatline=result.quality == DataQuality.FLATLINE,
                                         silent=silent or result.quality == DataQuality.DEVICE_SILENT))
    if rul is not None and rul[1] in RUL_FIELDS:
        out[RUL_FIELDS[rul[1]]] = round(rul[0], 1)
    return out


@dataclass
class _AssetState:
    """What the writer knows of one asset between writes."""

    # The latest health index and zone, each from the last window that had it: a window of a slow
    # channel alone (a temperature tick) carries neither, and must not blank or flip them.
    window: dict[str, float] = field(default_factory=dict)
    anomaly: bool = False
    flat: dict[str, bool] = field(default_factory=dict)  # channel -> flat-lined in its latest window
    last_window_write: float = -1e9
    rul_written_at: float | None = None  # ``agent.rul_at`` of the prediction last written
    shown: dict[str, float] | None = None  # validity flags and alarm word as the PLC last received them
    busy: bool = False


@dataclass(frozen=True)
class _Assessment:
    """An asset's validity at one moment."""

    health_ok: bool
    rul_ok: bool
    silent: bool

    def flags(self, wants_rul: bool) -> dict[str, float]:
        valid = self.health_ok and (self.rul_ok or not wants_rul)
        return {"valid": float(valid), "health_valid": float(self.health_ok), "rul_valid": float(self.rul_ok)}

    def invalid_fields(self) -> set[str]:
        return ({*_HEALTH_FIELDS} if not self.health_ok else set()) | (set(RUL_FIELDS.values()) if not self.rul_ok else set())


class PlcWriter:
    """A window hook that writes each asset's outputs, validity and the agent's heartbeat to the PLC.

    The agent calls :meth:`on_window` per window and :meth:`on_tick` from its housekeeping loop;
    :meth:`close` marks every target invalid before the connections close.

    Args:
        config: endpoints, heartbeat, targets (``settings.edge.plc``).
        rul_max_age_s: oldest RUL still valid when ``config.rul_max_age_s`` is not set (from the
            RUL model's prediction interval); :data:`DEFAULT_RUL_MAX_AGE_S` when neither is.
    """

    def __init__(self, config: PlcConfig, *, rul_max_age_s: float | None = None) -> None:
        self.config = config
        self.targets = {t.asset_id: t for t in config.targets}
        self.rul_max_age_s = config.rul_max_age_s or rul_max_age_s or DEFAULT_RUL_MAX_AGE_S
        self.written: dict[str, dict[str, float]] = {}
        #: fields each asset currently shows as invalid (their sentinel written where one is configured)
        self.invalid: dict[str, set[str]] = {}
        self.heartbeat = 0
        self.heartbeats_written = 0
        self.errors = 0
        self._state = {aid: _AssetState() for aid in self.targets}
        self._next_beat = 0.0
        self._beat_busy = False
        self._opc: Any = None
        self._modbus: Any = None
        self._opc_lock = asyncio.Lock()
        self._modbus_lock = asyncio.Lock()
        self._opc_types: dict[str, Any] = {}
        self._failing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # ------------------------------------------------------------------ hooks the agent calls
    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        asset_id = result.asset.asset_id
        st = self._state.get(asset_id)
        if st is None or self._closed:
            return
        values = plc_outputs(result, None)
        values.pop("alarm_bits")
        st.window |= values
        if result.alarm is not None:
            st.anomaly = result.alarm.alarm
        st.flat |= {ch: q == DataQuality.FLATLINE for ch, q in result.channel_quality.items()}
        now = time.monotonic()
        if st.busy or now - st.last_window_write < self.config.min_interval_s:
            return
        st.last_window_write = now
        self._schedule_asset(asset_id, agent, now)

    def on_tick(self, agent: EdgeAgent) -> None:
        """Housekeeping: the heartbeat, and any change of validity, alarms or a new RUL."""
        if self._closed:
            return
        now = time.monotonic()
        if now >= self._next_beat and not self._beat_busy and self._has_heartbeat():
            self._next_beat = now + self.config.heartbeat_interval_s
            self.heartbeat = (self.heartbeat + 1) % HEARTBEAT_MODULO
            self._beat_busy = True
            self._spawn(self._write_heartbeat(self.heartbeat))
        for asset_id, st in self._state.items():
            if st.busy:
                continue
            a = self._assess(asset_id, agent, now)
            if st.shown != self._status(asset_id, st, a) or self._rul_pending(asset_id, agent, a):
                self._schedule_asset(asset_id, agent, now)

    async def close(self) -> None:
        """Mark every target invalid (the agent stops), then close the connections."""
        self._closed = True
        await self._drain()
        try:
            await asyncio.wait_for(self._write_all_invalid(), _CLOSE_TIMEOUT_S)
        except Exception as err:  # the heartbeat stops either way; shutdown must go on
            log.warning("PLC: could not mark the targets invalid at shutdown: %s", err)
        await self._disconnect("opcua")
        await self._disconnect("modbus")

    # ------------------------------------------------------------------ what to write
    def _assess(self, asset_id: str, agent: EdgeAgent, now: float) -> _Assessment:
        st = self._state[asset_id]
        proc = agent.processors.get(asset_id)
        silent = proc is None or bool(proc.quality.silent_channels())
        health_ok = not silent and "health_index" in st.window
        rul_at = agent.rul_at.get(asset_id)
        rul_ok = (rul_at is not None and asset_id in agent.last_rul and asset_id not in agent.rul_faults
                  and now - rul_at <= self.rul_max_age_s)
        return _Assessment(health_ok=health_ok, rul_ok=rul_ok, silent=silent)

    def _status(self, asset_id: str, st: _AssetState, a: _Assessment) -> dict[str, float]:
        """Validity flags and the alarm word: what the PLC must see now, window or not."""
        bits = alarm_word(anomaly=st.anomaly, zone=st.window.get("iso_zone"), flatline=any(st.flat.values()),
                          silent=a.silent)
        return {**a.flags(self._wants_rul(asset_id)), "alarm_bits": float(bits)}

    def _rul_pending(self, asset_id: str, agent: EdgeAgent, a: _Assessment) -> bool:
        return a.rul_ok and agent.rul_at.get(asset_id) != self._state[asset_id].rul_written_at

    def _wants_rul(self, asset_id: str) -> bool:
        t = self.targets[asset_id]
        return bool(set(RUL_FIELDS.values()) & (t.opcua_nodes.keys() | t.modbus_registers.keys()))

    def _schedule_asset(self, asset_id: str, agent: EdgeAgent, now: float) -> None:
        st = self._state[asset_id]
        a = self._assess(asset_id, agent, now)
        status = self._status(asset_id, st, a)
        invalid = a.invalid_fields()
        # the latest window's values go with the flags, so "valid" never stands beside a sentinel
        values: dict[str, float] = status | {k: v for k, v in st.window.items() if k not in invalid}
        rul_at = None
        if self._rul_pending(asset_id, agent, a):  # a new prediction, written once
            median, unit = agent.last_rul[asset_id]
            if unit in RUL_FIELDS:
                values[RUL_FIELDS[unit]] = round(median, 1)
            rul_at = agent.rul_at[asset_id]
        st.busy = True
        self._spawn(self._write_asset(self.targets[asset_id], values, invalid, status, rul_at))

    async def _write_asset(self, target: PlcTarget, values: dict[str, float], invalid: set[str],
                           status: dict[str, float], rul_at: float | None) -> None:
        st = self._state[target.asset_id]
        try:
            if await self._write_target(target, values, invalid):
                st.shown = status
                if rul_at is not None:
                    st.rul_written_at = rul_at
                self._record(target, values, invalid)
        finally:
            st.busy = False

    async def _write_all_invalid(self) -> None:
        off = dict.fromkeys(PLC_VALIDITY_FIELDS, 0.0)
        sentinel = {*_HEALTH_FIELDS, *RUL_FIELDS.values()}
        for target in self.targets.values():
            if await self._write_target(target, off, sentinel):
                self._record(target, off, sentinel)

    def _record(self, target: PlcTarget, values: dict[str, float], invalid: set[str]) -> None:
        """Remember what the target's tags show: the values of its mapped fields, and which are invalid."""
        mapped = target.opcua_nodes.keys() | target.modbus_registers.keys()
        aid = target.asset_id
        self.written[aid] = {**self.written.get(aid, {}), **{k: v for k, v in values.items() if k in mapped}}
        self.invalid[aid] = invalid & mapped

    async def _write_target(self, target: PlcTarget, values: dict[str, float], invalid: set[str]) -> bool:
        """Write ``values`` and the sentinels of the ``invalid`` fields; whether every endpoint took them.

        Flags dropping to 0 are written first and flags rising to 1 last, so a PLC reading between
        two tags never sees ``valid = 1`` beside a sentinel or a value not yet written.
        """
        def rank(name: str) -> int:
            return (0 if not values[name] else 2) if name in PLC_VALIDITY_FIELDS and name in values else 1

        opc = [(node, target.invalid_opcua[name] if name in invalid and name in target.invalid_opcua else values[name])
               for name, node in sorted(target.opcua_nodes.items(), key=lambda kv: rank(kv[0]))
               if name in values or (name in invalid and name in target.invalid_opcua)]
        regs = []
        for name, reg in sorted(target.modbus_registers.items(), key=lambda kv: rank(kv[0])):
            if name in invalid and name in target.invalid_modbus:
                regs.append((reg, target.invalid_modbus[name]))
            elif name in values:
                raw = round(values[name] * target.modbus_scale.get(name, 1.0))
                regs.append((reg, max(0, min(raw, 0xFFFF))))
        ok = True
        if opc and self.config.opcua_endpoint:
            ok &= await self._guarded("opcua", lambda: self._write_opcua(opc))
        if regs and self.config.modbus_endpoint:
            ok &= await self._guarded("modbus", lambda: self._write_modbus(regs))
        return ok

    async def _write_heartbeat(self, count: int) -> None:
        try:
            ok = True
            if self.config.heartbeat_opcua_node and self.config.opcua_endpoint:
                node = self.config.heartbeat_opcua_node
                ok &= await self._guarded("opcua", lambda: self._write_opcua([(node, float(count))]))
            if self.config.heartbeat_modbus_register is not None and self.config.modbus_endpoint:
                reg = self.config.heartbeat_modbus_register
                ok &= await self._guarded("modbus", lambda: self._write_modbus([(reg, count)]))
            self.heartbeats_written += int(ok)
        finally:
            self._beat_busy = False

    def _has_heartbeat(self) -> bool:
        c = self.config
        return bool((c.heartbeat_opcua_node and c.opcua_endpoint) or (c.heartbeat_modbus_register is not None
                                                                        and c.modbus_endpoint))

    # ------------------------------------------------------------------ protocols
    async def _guarded(self, proto: str, write: Callable[[], Awaitable[None]]) -> bool:
        """Run one protocol's write; a failure is counted, logged once per outage and retried later."""
        lock = self._opc_lock if proto == "opcua" else self._modbus_lock
        async with lock:
            try:
                await write()
            except Exception as err:  # a PLC hiccup must not stop the agent; the next tick retries
                self.errors += 1
                if proto not in self._failing:
                    self._failing.add(proto)
                    log.warning("PLC %s write failed (retrying every tick, logged once): %s", proto, err)
                await self._disconnect(proto)
                return False
        if proto in self._failing:
            self._failing.discard(proto)
            log.warning("PLC %s writes succeed again", proto)
        return True

    async def _write_opcua(self, items: list[tuple[str, float]]) -> None:
        # asyncua and pymodbus load only when a target uses them: asyncua alone takes about a
        # second to import, paid by every agent that writes no OPC UA tag otherwise.
        from asyncua import ua  # noqa: PLC0415
        from asyncua.client.client import Client  # noqa: PLC0415

        if self._opc is None:
            client = Client(self.config.opcua_endpoint, timeout=2)  # type: ignore[arg-type]
            await client.connect()
            self._opc = client
        for node_id, value in items:
            node = self._opc.get_node(node_id)
            vtype = self._opc_types.get(node_id)
            if vtype is None:
                vtype = self._opc_types[node_id] = await node.read_data_type_as_variant_type()
            out: Any = value
            if vtype not in (ua.VariantType.Float, ua.VariantType.Double):
                out = round(value)
            await node.write_value(ua.DataValue(ua.Variant(out, vtype)))

    async def _write_modbus(self, items: list[tuple[int, int]]) -> None:
        from pymodbus.client import AsyncModbusTcpClient  # noqa: PLC0415  (loaded only when used, as above)

        if self._modbus is None:
            host, port = split_endpoint(self.config.modbus_endpoint or "")
            client = AsyncModbusTcpClient(host, port=port, timeout=1, retries=0)
            if not await client.connect():
                client.close()
                raise OSError(f"no Modbus connection to {host}:{port}")
            self._modbus = client
        for address, raw in items:
            rr = await self._modbus.write_register(address, raw, device_id=self.config.modbus_unit_id)
            if rr.isError():
                raise OSError(f"Modbus write of register {address} refused: {rr}")

    async def _disconnect(self, proto: str) -> None:
        if proto == "opcua" and self._opc is not None:
            client, self._opc = self._opc, None
            self._opc_types.clear()
            with contextlib.suppress(Exception):  # the connection may already be gone; it is dropped either way
                await asyncio.wait_for(client.disconnect(), 2)
        if proto == "modbus" and self._modbus is not None:
            client, self._modbus = self._modbus, None
            client.close()

    # ------------------------------------------------------------------ tasks
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self) -> None:
        pending = [t for t in self._tasks if t is not asyncio.current_task()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
