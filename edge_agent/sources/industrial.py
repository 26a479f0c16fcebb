"""Live sources from plant networks: OPC UA (subscribed tags) and Modbus TCP (polled registers).

Both yield one single-sample batch per tag update, stamped with the device's own time when
the protocol has one (OPC UA SourceTimestamp), so a device that stops updating produces no new
batches (the agent reports it silent) instead of its last value with fresh timestamps.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from typing import Any

import numpy as np
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import UaError
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from core.assets import AssetConfig
from core.edge_config import ModbusTag, OpcUaTag
from core.errors import SourceError
from core.wire import utcnow
from edge_agent.sources.base import RawBatch

__all__ = ["MergedSource", "ModbusSource", "OpcUaSource", "decode_registers", "split_endpoint"]

log = logging.getLogger(__name__)


def split_endpoint(endpoint: str, default_port: int = 502) -> tuple[str, int]:
    host, _, port = endpoint.removeprefix("tcp://").rpartition(":")
    if not host:
        return endpoint, default_port
    if not port.isdigit():
        raise SourceError(f"endpoint must be HOST:PORT, got {endpoint!r}")
    return host, int(port)


def _resolve(assets: Sequence[AssetConfig], asset_id: str, channel: str) -> tuple[AssetConfig, Any]:
    for a in assets:
        if a.asset_id == asset_id:
            return a, a.channel(channel)
    raise SourceError(f"tag refers to unknown asset {asset_id!r}; configured: {[a.asset_id for a in assets]}")


class _Handler:
    def __init__(self, queue: asyncio.Queue[RawBatch], by_node: dict[str, tuple[AssetConfig, Any]]) -> None:
        self.queue = queue
        self.by_node = by_node

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        target = self.by_node.get(node.nodeid.to_string())
        if target is None or val is None:
            return
        dv = data.monitored_item.Value
        stamp = dv.SourceTimestamp or dv.ServerTimestamp or utcnow()
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        try:
            value = float(val)
        except (TypeError, ValueError):
            log.warning("OPC UA node %s: non-numeric value %r ignored", node.nodeid.to_string(), val)
            return
        self.queue.put_nowait(RawBatch(target[0], target[1], stamp, np.asarray([value])))


class OpcUaSource:
    """Subscribe to OPC UA tags (asyncua client); each data change becomes a one-sample batch.

    Args:
        endpoint: ``opc.tcp://host:port/path``.
        tags: node id -> (asset, channel).
        assets: the configured assets.
        publishing_ms: subscription publishing interval.
    """

    def __init__(self, endpoint: str, tags: Sequence[OpcUaTag], assets: Sequence[AssetConfig], *,
                 publishing_ms: float = 100.0) -> None:
        self.endpoint = endpoint
        self.tags = list(tags)
        self.assets = list(assets)
        self.publishing_ms = publishing_ms
        self._client: Any = None
        self._queue: asyncio.Queue[RawBatch] = asyncio.Queue()

    async def __aenter__(self) -> OpcUaSource:

        by_node = {t.node_id: _resolve(self.assets, t.asset_id, t.channel) for t in self.tags}
        self._client = Client(self.endpoint)
        try:
            await self._client.connect()
            sub = await self._client.create_subscription(self.publishing_ms, _Handler(self._queue, by_node))
            nodes = [self._client.get_node(t.node_id) for t in self.tags]
            # Trigger on timestamps too: a frozen sensor that keeps reporting is a flat line, not silence.
            flt = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
            await sub._subscribe(nodes, mfilter=flt, queuesize=10)
        except (OSError, TimeoutError, UaError) as err:
            raise SourceError(f"cannot subscribe to OPC UA server {self.endpoint}: {err}") from err
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            try:
                await self._client.disconnect()
            except (OSError, TimeoutError, RuntimeError) as err:  # already gone
                log.info("OPC UA disconnect: %s", err)

    async def batches(self) -> AsyncIterator[RawBatch]:
        while True:
            yield await self._queue.get()


class ModbusSource:
    """Poll Modbus TCP registers (pymodbus client) every ``poll_s``; ``value = raw * scale + offset``.

    A failed poll yields nothing for its tags: values are never repeated without a fresh read.
    """

    def __init__(self, endpoint: str, tags: Sequence[ModbusTag], assets: Sequence[AssetConfig], *,
                 unit_id: int = 1, poll_s: float = 1.0, max_polls: int | None = None) -> None:
        self.host, self.port = split_endpoint(endpoint)
        self.tags = list(tags)
        self.targets = [_resolve(assets, t.asset_id, t.channel) for t in self.tags]
        self.unit_id = unit_id
        self.poll_s = poll_s
        self.max_polls = max_polls
        self.failed_polls = 0
        self._client: Any = None

    async def __aenter__(self) -> ModbusSource:

        self._client = AsyncModbusTcpClient(self.host, port=self.port, timeout=1, retries=0)
        await self._client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()

    async def _read(self, tag: ModbusTag) -> float | None:

        try:
            if not self._client.connected:
                await self._client.connect()
            fn = self._client.read_holding_registers if tag.kind == "holding" else self._client.read_input_registers
            rr = await fn(tag.address, count=tag.words, device_id=self.unit_id)
        except (ModbusException, OSError, TimeoutError) as err:
            log.debug("Modbus read of %d failed: %s", tag.address, err)
            return None
        if rr.isError():
            return None
        return decode_registers(rr.registers, signed=tag.signed) * tag.scale + tag.offset

    async def batches(self) -> AsyncIterator[RawBatch]:
        polls = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while self.max_polls is None or polls < self.max_polls:
            stamp = utcnow()
            for tag, (asset, ch) in zip(self.tags, self.targets, strict=True):
                value = await self._read(tag)
                if value is None:
                    self.failed_polls += 1
                    continue
                yield RawBatch(asset, ch, stamp, np.asarray([value]))
            polls += 1
            next_at += self.poll_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))


def decode_registers(registers: Sequence[int], *, signed: bool = False) -> float:
    """One 16-bit register or a big-endian 32-bit pair as an integer."""
    if len(registers) == 1:
        raw = int(registers[0]) & 0xFFFF
        return float(raw - 0x10000 if signed and raw >= 0x8000 else raw)
    packed = struct.pack(">HH", int(registers[0]) & 0xFFFF, int(registers[1]) & 0xFFFF)
    return float(struct.unpack(">i" if signed else ">I", packed)[0])


class MergedSource:
    """Several sources as one (e.g. vibration from a DAQ, process tags over OPC UA and Modbus)."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources
        self._queue: asyncio.Queue[RawBatch | None] = asyncio.Queue(maxsize=1000)
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> MergedSource:
        for s in self.sources:
            await s.__aenter__()
        self._tasks = [asyncio.create_task(self._pump(s)) for s in self.sources]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for s in self.sources:
            await s.__aexit__(*exc)

    async def _pump(self, source: Any) -> None:
        try:
            async for batch in source.batches():
                await self._queue.put(batch)
        finally:
            await self._queue.put(None)

    async def batches(self) -> AsyncIterator[RawBatch]:
        finished = 0
        while finished < len(self.sources):
            batch = await self._queue.get()
            if batch is None:
                finished += 1
                continue
            yield batch
