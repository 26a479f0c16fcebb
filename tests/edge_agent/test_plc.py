"""OPC UA and Modbus TCP: the agent reads process tags and writes health/RUL/zone/alarm back.

Real servers (asyncua, pymodbus) on free loopback ports; values are read back over the protocols.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from asyncua import Client, Server, ua
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.edge_config import HealthConfig, ModbusTag, OpcUaTag, PlcConfig, PlcTarget, QualityConfig
from core.settings import EdgeSettings, Settings
from core.wire import DataQuality
from edge_agent.agent import EdgeAgent
from edge_agent.plc import FIELDS, RUL_FIELDS, PlcWriter, plc_outputs
from edge_agent.processor import WindowResult
from edge_agent.sources.industrial import MergedSource, ModbusSource, OpcUaSource
from edge_agent.sources.simulator import SimulatorSource
from genedge.localservices import free_port
from tests._factories import ListSink

VIB = ChannelConfig(name="vib_de", quantity=Quantity.ACCELERATION, unit="g", sample_rate_hz=25600.0)
ASSET = AssetConfig(asset_id="pump-ot", machine_class="I", shaft_speed_rpm=1480.0, channels=(
    VIB,
    ChannelConfig(name="speed", quantity=Quantity.SPEED, unit="rpm", sample_rate_hz=1.0),
    ChannelConfig(name="temp", quantity=Quantity.TEMPERATURE, unit="degC", sample_rate_hz=1.0),
    ChannelConfig(name="load", quantity=Quantity.LOAD, unit="%", sample_rate_hz=1.0),
))
REGS = {"health_index": 10, "rul_hours": 11, "iso_zone": 12, "alarm_bits": 13}




async def run_plant() -> None:  # noqa: PLR0915 - one end-to-end scenario
    opc_port, mb_port = free_port(), free_port()
    endpoint = f"opc.tcp://127.0.0.1:{opc_port}/genedge/"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:genedge:test")
    plc = await server.nodes.objects.add_object(idx, "PumpOT")
    speed = await plc.add_variable(idx, "Speed", 1480.0)
    temp = await plc.add_variable(idx, "Temp", 41.0)
    outputs = {"health_index": await plc.add_variable(idx, "HealthIndex", 0.0),
               "rul_hours": await plc.add_variable(idx, "RulHours", 0.0),
               "iso_zone": await plc.add_variable(idx, "IsoZone", 0, varianttype=ua.VariantType.Int32),
               "alarm_bits": await plc.add_variable(idx, "AlarmBits", 0, varianttype=ua.VariantType.UInt16)}
    for node in outputs.values():
        await node.set_writable()

    block = ModbusSequentialDataBlock(1, [625] + [0] * 31)  # register 0: load 62.5 % in tenths
    mb_server = ModbusTcpServer(ModbusServerContext(devices={1: ModbusDeviceContext(hr=block)}, single=False),
                                address=("127.0.0.1", mb_port))
    mb_task = asyncio.create_task(mb_server.serve_forever())

    async with server:
        await asyncio.sleep(0.3)
        tags = [OpcUaTag(node_id=speed.nodeid.to_string(), asset_id="pump-ot", channel="speed"),
                OpcUaTag(node_id=temp.nodeid.to_string(), asset_id="pump-ot", channel="temp")]
        sim_view = ASSET.model_copy(update={"channels": (VIB,)})
        source = MergedSource(
            SimulatorSource([sim_view], {}, seed=1, interval_s=0.2, snapshot_samples=8192, max_ticks=25),
            OpcUaSource(endpoint, tags, [ASSET], publishing_ms=50),
            ModbusSource(f"127.0.0.1:{mb_port}", [ModbusTag(address=0, asset_id="pump-ot", channel="load",
                                                            scale=0.1)], [ASSET], poll_s=0.2, max_polls=25),
        )
        writer = PlcWriter(PlcConfig(opcua_endpoint=endpoint, modbus_endpoint=f"127.0.0.1:{mb_port}",
                                     min_interval_s=0.2, targets=[PlcTarget(
                                         asset_id="pump-ot", modbus_registers=REGS,
                                         opcua_nodes={k: v.nodeid.to_string() for k, v in outputs.items()})]))
        edge = EdgeSettings(agent_id="edge-ot",
                            health=HealthConfig(warmup_windows=0, baseline_windows=5, smooth_windows=1),
                            quality=QualityConfig(silent_after_s=30.0), status_interval_s=60)
        sink = ListSink()
        agent = EdgeAgent(Settings(edge=edge), [ASSET], sink, hooks=[writer])
        agent.last_rul["pump-ot"] = (321.5, "h")  # what the RUL hook sets after a prediction
        agent.rul_at["pump-ot"] = time.monotonic()

        async def wiggle() -> None:  # the process moves: new OPC UA values every 100 ms
            for i in range(80):
                await temp.write_value(41.0 + 0.05 * i)
                await speed.write_value(1480.0 + (i % 3))
                await asyncio.sleep(0.1)

        wiggler = asyncio.create_task(wiggle())
        stop = threading.Event()
        asyncio.get_running_loop().call_later(5.5, stop.set)  # the OPC UA subscription never ends by itself
        await agent.run(source, stop)
        wiggler.cancel()

        seen = {b.channel.name for b in agent.ring.snapshot("pump-ot")} | {
            m.channel for m in sink.messages if getattr(m, "type", "") == "readings"}
        assert {"speed", "temp", "load", "vib_de"} <= seen, f"channels read: {seen}"
        loads = [m.values[0] for m in sink.messages if getattr(m, "channel", "") == "load"]
        assert loads and all(v == 62.5 for v in loads), "Modbus register scaled by 0.1"

        written = writer.written["pump-ot"]
        assert set(written) == set(REGS), f"every configured field written, got {written}"
        async with Client(endpoint) as client:
            for name, node in outputs.items():
                got = await client.get_node(node.nodeid).read_value()
                assert float(got) == float(written[name]), f"OPC UA {name}: read {got}, wrote {written[name]}"
        mb = AsyncModbusTcpClient("127.0.0.1", port=mb_port)
        await mb.connect()
        rr = await mb.read_holding_registers(10, count=4, device_id=1)
        rest = await mb.read_holding_registers(1, count=9, device_id=1)
        rest2 = await mb.read_holding_registers(14, count=16, device_id=1)
        mb.close()
        scale = PlcTarget(asset_id="x").modbus_scale
        assert rr.registers == [round(written[k] * scale[k]) for k in REGS], (rr.registers, written)
        assert rest.registers + rest2.registers == [0] * 25, "nothing outside the configured registers is written"
    await mb_server.shutdown()
    mb_task.cancel()
    await asyncio.gather(mb_task, return_exceptions=True)


def test_agent_reads_tags_and_writes_back_to_plc() -> None:
    asyncio.run(asyncio.wait_for(run_plant(), 90))


def _window(features: dict[str, dict[str, float]]) -> WindowResult:
    return WindowResult(asset=ASSET, window_start=datetime(2026, 1, 1, tzinfo=UTC), window_s=1.0, batches=[],
                        features=features, quality=DataQuality.GOOD, channel_quality={}, alarm=None)


def test_rul_goes_to_the_field_of_its_unit() -> None:
    """A tag holds one unit: cycles or a share of life never land in the hours tag."""
    win = _window({"vib_de": {"iso_zone": 1.0}})
    assert plc_outputs(win, (321.54, "h"))["rul_hours"] == 321.5
    cycles = plc_outputs(win, (87.0, "cycles"))
    assert cycles["rul_cycles"] == 87.0 and "rul_hours" not in cycles
    share = plc_outputs(win, (42.26, "%"))
    assert share["rul_life_pct"] == 42.3 and not {"rul_hours", "rul_cycles"} & set(share)
    assert not set(RUL_FIELDS.values()) & set(plc_outputs(win, None)), "no prediction yet: no RUL written"
    assert set(RUL_FIELDS.values()) <= set(FIELDS) and set(FIELDS) <= set(PlcTarget(asset_id="x").modbus_scale)
