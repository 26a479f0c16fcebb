"""Safe PLC output: heartbeat, validity flags, sentinels and the ``device_silent`` bit.

Real servers (asyncua, pymodbus) on free loopback ports, read back over the protocols; the agent
runs in process with a real OPC UA source for its temperature channel (a device that stops
updating its node goes silent) and, for the SIGKILL test, as ``genedge agent run`` in a subprocess.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asyncua import Node, Server, ua
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.edge_config import HealthConfig, OpcUaTag, PlcConfig, PlcTarget, QualityConfig
from core.settings import EdgeSettings, Settings
from core.sim import default_plant
from edge_agent.agent import EdgeAgent
from edge_agent.hooks import FeatureRulHook, UnloadedRulHook, build_hooks
from edge_agent.plc import ALARM_BITS, PlcWriter
from edge_agent.sources.industrial import MergedSource, OpcUaSource
from edge_agent.sources.simulator import SimulatorSource
from genedge.localservices import Mosquitto, free_port
from tests._factories import ListSink, wait_for

REPO = Path(__file__).resolve().parents[2]
VIB = ChannelConfig(name="vib_de", quantity=Quantity.ACCELERATION, unit="g", sample_rate_hz=25600.0)
TEMP = ChannelConfig(name="temp", quantity=Quantity.TEMPERATURE, unit="degC", sample_rate_hz=1.0)
ASSET = AssetConfig(asset_id="pump-safe", machine_class="I", shaft_speed_rpm=1480.0, channels=(VIB, TEMP))
REGS = {"valid": 20, "health_valid": 21, "rul_valid": 22, "health_index": 23, "rul_hours": 24, "alarm_bits": 25}
HEARTBEAT_REG = 30
SENTINEL = 0xFFFF
SILENT_BIT = 1 << ALARM_BITS["device_silent"]


class StubPredictor:
    """A unit test's collaborator standing in for a feature RUL model: one frame per prediction.

    ``fail``: predictions raise (a broken model); ``paused``: no frame enters its window, so no
    new prediction comes (the RUL ages); ``rul``: the median it predicts.
    """

    window = 1
    step_hours = 1e-9
    rul_unit = "h"
    rul_cap = None
    card = None

    def __init__(self) -> None:
        self.fail = False
        self.paused = False
        self.rul = 500.0

    def frame_row(self, features: Any) -> list[float] | None:
        return None if self.paused else [1.0]

    def predict_unit(self, rows: list[list[float]], coverage: float) -> dict[str, float]:
        if self.fail:
            raise RuntimeError("model output is not finite")
        return {"rul": self.rul, "lower": self.rul - 50, "upper": self.rul + 50}


@dataclass
class Plant:
    """The PLC side: OPC UA nodes, Modbus registers, and the temperature device."""

    mb_port: int
    endpoint: str
    temp: Node
    nodes: dict[str, Node]
    heartbeat_node: Node
    temp_alive: bool = True
    mb: Any = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def regs(self) -> dict[str, int]:
        rr = await self.mb.read_holding_registers(20, count=11, device_id=1)
        got = dict(zip(range(20, 31), rr.registers, strict=True))
        return {**{k: got[a] for k, a in REGS.items()}, "heartbeat": got[HEARTBEAT_REG]}

    async def opc(self) -> dict[str, float]:
        return {k: float(await n.read_value()) for k, n in {**self.nodes, "heartbeat": self.heartbeat_node}.items()}

    def target(self) -> PlcTarget:
        return PlcTarget(asset_id=ASSET.asset_id, modbus_registers=REGS,
                         opcua_nodes={k: n.nodeid.to_string() for k, n in self.nodes.items()},
                         invalid_modbus={"health_index": SENTINEL, "rul_hours": SENTINEL},
                         invalid_opcua={"health_index": -1.0, "rul_hours": -1.0})

    def plc_config(self, **kw: Any) -> PlcConfig:
        return PlcConfig(opcua_endpoint=self.endpoint, modbus_endpoint=f"127.0.0.1:{self.mb_port}", min_interval_s=0.2,
                         heartbeat_modbus_register=HEARTBEAT_REG, heartbeat_opcua_node=self.heartbeat_node.nodeid.to_string(),
                         heartbeat_interval_s=0.2, targets=[self.target()], **kw)

    async def until(self, what: str, check: Callable[[dict[str, int], dict[str, float]], bool], timeout: float = 8.0
                    ) -> tuple[dict[str, int], dict[str, float]]:
        """Poll both protocols until ``check(modbus, opcua)`` holds; fails the test with what was seen."""
        end = time.monotonic() + timeout
        while True:
            regs, opc = await self.regs(), await self.opc()
            if check(regs, opc):
                return regs, opc
            if time.monotonic() > end:
                raise AssertionError(f"{what}: not seen within {timeout} s; Modbus {regs}, OPC UA {opc}")
            await asyncio.sleep(0.1)


@asynccontextmanager
async def plant() -> AsyncIterator[Plant]:
    """Real asyncua and pymodbus servers; a task keeps the temperature node moving while ``temp_alive``."""
    opc_port, mb_port = free_port(), free_port()
    endpoint = f"opc.tcp://127.0.0.1:{opc_port}/genedge/"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    idx = await server.register_namespace("urn:genedge:safety")
    obj = await server.nodes.objects.add_object(idx, "PumpSafe")
    temp = await obj.add_variable(idx, "Temp", 41.0)
    nodes = {"valid": await obj.add_variable(idx, "Valid", 7, varianttype=ua.VariantType.UInt16),
             "rul_valid": await obj.add_variable(idx, "RulValid", 7, varianttype=ua.VariantType.UInt16),
             "health_index": await obj.add_variable(idx, "Health", 0.0),
             "rul_hours": await obj.add_variable(idx, "RulHours", 0.0),
             "alarm_bits": await obj.add_variable(idx, "AlarmBits", 0, varianttype=ua.VariantType.UInt16)}
    beat = await obj.add_variable(idx, "Heartbeat", 0, varianttype=ua.VariantType.UInt16)
    for node in (*nodes.values(), beat):
        await node.set_writable()
    block = ModbusSequentialDataBlock(1, [7] * 40)  # 7: "never written" (no output ever writes 7 here)
    mb_server = ModbusTcpServer(ModbusServerContext(devices={1: ModbusDeviceContext(hr=block)}, single=False),
                                address=("127.0.0.1", mb_port))
    mb_task = asyncio.create_task(mb_server.serve_forever())
    async with server:
        await asyncio.sleep(0.3)
        p = Plant(mb_port=mb_port, endpoint=endpoint, temp=temp, nodes=nodes, heartbeat_node=beat)
        p.mb = AsyncModbusTcpClient("127.0.0.1", port=mb_port)
        assert await p.mb.connect()

        async def wiggle() -> None:  # the temperature device: a new value every 100 ms while alive
            i = 0
            while True:
                if p.temp_alive:
                    i += 1
                    await temp.write_value(41.0 + 0.01 * i)
                await asyncio.sleep(0.1)

        p.tasks.append(asyncio.create_task(wiggle()))
        try:
            yield p
        finally:
            for t in p.tasks:
                t.cancel()
            await asyncio.gather(*p.tasks, return_exceptions=True)
            p.mb.close()
    await mb_server.shutdown()
    mb_task.cancel()
    await asyncio.gather(mb_task, return_exceptions=True)


def agent_for(p: Plant, hooks: list[Any]) -> tuple[EdgeAgent, MergedSource]:
    edge = EdgeSettings(agent_id="edge-safe", health=HealthConfig(warmup_windows=0, baseline_windows=5, smooth_windows=1),
                        quality=QualityConfig(silent_after_s=1.0), status_interval_s=60)
    source = MergedSource(
        SimulatorSource([ASSET.model_copy(update={"channels": (VIB,)})], {}, seed=1, interval_s=0.2, snapshot_samples=4096),
        OpcUaSource(p.endpoint, [OpcUaTag(node_id=p.temp.nodeid.to_string(), asset_id=ASSET.asset_id, channel="temp")],
                    [ASSET], publishing_ms=50),
    )
    return EdgeAgent(Settings(edge=edge), [ASSET], ListSink(), hooks=hooks), source


async def with_agent(p: Plant, hooks: list[Any], scenario: Callable[[], Awaitable[None]]) -> EdgeAgent:
    """Run the agent while ``scenario`` drives the plant; the agent stops cleanly when it returns."""
    agent, source = agent_for(p, hooks)
    stop = threading.Event()
    run = asyncio.create_task(agent.run(source, stop))
    try:
        await scenario()
    finally:
        stop.set()
        await asyncio.wait_for(run, 20)
    return agent


def fresh(regs: dict[str, int], opc: dict[str, float]) -> bool:
    return regs["valid"] == 1 and opc["valid"] == 1 and regs["rul_hours"] == 500 and opc["rul_hours"] == 500.0


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


def test_heartbeat_counts_and_a_clean_stop_marks_everything_invalid() -> None:
    """The heartbeat counts up on both protocols while the agent runs and stands still once it
    stops; values are valid only once fresh, and a clean stop writes validity 0 and the sentinels."""

    async def main() -> None:
        async with plant() as p:
            model = StubPredictor()
            writer = PlcWriter(p.plc_config())

            async def scenario() -> None:
                regs, opc = await p.until("fresh values", fresh)
                assert regs["health_valid"] == 1 and 0 < regs["health_index"] <= 1000
                assert 0 < opc["health_index"] <= 1.0 and opc["alarm_bits"] == regs["alarm_bits"]
                await p.until("first heartbeat", lambda r, o: r["heartbeat"] != 7 and o["heartbeat"] > 0)
                beats = []
                for _ in range(6):
                    beats.append((await p.regs())["heartbeat"])
                    await asyncio.sleep(0.3)
                assert beats == sorted(beats) and beats[-1] >= beats[0] + 4, f"heartbeat must count up: {beats}"
                assert (await p.opc())["heartbeat"] >= beats[-1] - 2

            await with_agent(p, [FeatureRulHook(model), writer], scenario)
            regs, opc = await p.regs(), await p.opc()
            assert (regs["valid"], regs["health_valid"], regs["rul_valid"]) == (0, 0, 0), regs
            assert (opc["valid"], opc["rul_valid"]) == (0, 0), opc
            assert regs["rul_hours"] == regs["health_index"] == SENTINEL and opc["rul_hours"] == opc["health_index"] == -1
            await asyncio.sleep(1.0)
            assert (await p.regs())["heartbeat"] == regs["heartbeat"], "the heartbeat stands still after the stop"
            assert regs["heartbeat"] == writer.heartbeat and writer.errors == 0

    run(main())


def test_silent_sensor_sets_device_silent_and_marks_health_invalid() -> None:
    """A device that stops updating its node: within silent_after_s the asset's health is invalid
    (validity 0, sentinel in the health tag) and the device_silent bit is set, although the
    vibration channel keeps delivering windows; when the device is back, both clear."""

    async def main() -> None:
        async with plant() as p:
            async def scenario() -> None:
                regs, _ = await p.until("fresh values", fresh)
                assert not regs["alarm_bits"] & SILENT_BIT
                p.temp_alive = False
                # flags go to 0 before the sentinels are written: wait for the whole invalid picture
                regs, _ = await p.until("silent temperature", lambda r, o: r["valid"] == o["valid"] == 0 and bool(
                    r["alarm_bits"] & SILENT_BIT and int(o["alarm_bits"]) & SILENT_BIT)
                    and r["health_index"] == SENTINEL and o["health_index"] == -1.0)
                assert regs["health_valid"] == 0 and regs["rul_valid"] == 1, "the RUL itself is still fresh"
                await asyncio.sleep(1.0)  # windows of the vibration channel go on: still invalid, not overwritten
                regs = await p.regs()
                assert regs["valid"] == 0 and regs["health_index"] == SENTINEL and regs["alarm_bits"] & SILENT_BIT
                p.temp_alive = True
                regs, _ = await p.until("device back", lambda r, o: r["valid"] == o["valid"] == 1 and not (
                    r["alarm_bits"] & SILENT_BIT or int(o["alarm_bits"]) & SILENT_BIT))
                assert not regs["alarm_bits"] & SILENT_BIT and regs["health_index"] != SENTINEL

            agent = await with_agent(p, [FeatureRulHook(StubPredictor()), PlcWriter(p.plc_config())], scenario)
            assert agent.stats.silent_reports >= 1

    run(main())


def test_failed_prediction_and_stale_rul_mark_rul_invalid() -> None:
    """A model whose predictions fail: RUL invalid at once (sentinel, not the last value); a model
    that stops predicting: the RUL turns invalid after rul_max_age_s and the old RUL is never
    written again as if it were fresh; a new prediction makes it valid again."""

    async def main() -> None:
        async with plant() as p:
            model = StubPredictor()
            writer = PlcWriter(p.plc_config(rul_max_age_s=1.5))

            def invalid_rul(r: dict[str, float], o: dict[str, float]) -> bool:
                return r["rul_valid"] == 0 and o["rul_valid"] == 0 and r["rul_hours"] == SENTINEL and o["rul_hours"] == -1.0

            async def scenario() -> None:
                await p.until("fresh values", fresh)
                model.fail = True
                # the flag goes to 0 before the sentinel is written (never a valid flag beside a sentinel):
                # wait for both
                regs, opc = await p.until("failed prediction", invalid_rul)
                assert regs["valid"] == 0 and regs["health_valid"] == 1, "health is not the model's fault"
                model.fail, model.rul = False, 400.0
                await p.until("recovered", lambda r, o: r["rul_valid"] == 1 and r["rul_hours"] == 400)
                model.paused = True  # no new prediction from here on
                t0 = time.monotonic()
                regs, opc = await p.until("stale RUL", invalid_rul)
                assert time.monotonic() - t0 >= 1.0, "valid until rul_max_age_s has passed"
                assert regs["health_valid"] == 1
                written = writer.written[ASSET.asset_id]["rul_hours"]
                await asyncio.sleep(1.5)  # windows and ticks go on; the old RUL must not come back
                regs, opc = await p.regs(), await p.opc()
                assert regs["rul_hours"] == SENTINEL and regs["rul_valid"] == 0 and opc["rul_hours"] == -1.0
                assert writer.written[ASSET.asset_id]["rul_hours"] == written
                model.paused, model.rul = False, 300.0
                await p.until("new prediction", lambda r, o: r["rul_valid"] == 1 and r["rul_hours"] == 300)

            await with_agent(p, [FeatureRulHook(model), writer], scenario)

    run(main())


def test_model_that_fails_to_load_leaves_health_running_and_rul_invalid(tmp_path: Path) -> None:
    """A RUL model that cannot be loaded does not stop the agent when it writes a PLC: health
    stays valid, the RUL is invalid with its sentinel, and the reason is kept per asset."""
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "card.json").write_text("{not json")

    async def main() -> None:
        async with plant() as p:
            edge = EdgeSettings(rul_model=broken, plc=p.plc_config())
            hooks = build_hooks(edge, [ASSET])
            assert [type(h) for h in hooks] == [UnloadedRulHook, PlcWriter]

            async def scenario() -> None:
                regs, _ = await p.until("health valid, RUL not", lambda r, o: r["health_valid"] == 1 and r["rul_valid"] == 0
                                          and o["rul_valid"] == 0 and r["rul_hours"] == SENTINEL and o["rul_hours"] == -1.0)
                assert regs["valid"] == 0

            agent = await with_agent(p, hooks, scenario)
            assert "model not loaded" in agent.rul_faults[ASSET.asset_id]
    with pytest.raises(Exception, match="card"):  # without a PLC the one starting the agent is told at once
        build_hooks(EdgeSettings(rul_model=broken), [ASSET])

    run(main())


def test_plc_options_refuse_misspelt_fields_and_shared_registers() -> None:
    """A misspelt validity field would leave the PLC without the flag its logic relies on."""
    with pytest.raises(ValidationError, match="validity"):
        PlcTarget(asset_id="a", modbus_registers={"validity": 1})
    with pytest.raises(ValidationError, match="alarm_bits"):
        PlcTarget(asset_id="a", invalid_modbus={"alarm_bits": 0xFFFF})
    with pytest.raises(ValidationError, match="mapped twice"):
        PlcConfig(heartbeat_modbus_register=5, targets=[PlcTarget(asset_id="a", modbus_registers={"valid": 5})])


def test_plc_sees_the_heartbeat_stop_when_the_agent_is_killed(broker: Mosquitto, tmp_path: Path) -> None:
    """``genedge agent run`` writes a real Modbus server; after SIGKILL (no chance to clean up) the
    PLC side sees the heartbeat counter stand still within a few seconds."""
    asset = default_plant("plant1")[0].asset_id
    mb_port = free_port()
    ready = threading.Event()
    served: list[tuple[asyncio.AbstractEventLoop, ModbusTcpServer]] = []

    async def serve() -> None:  # the PLC: a Modbus server on its own loop in a thread
        block = ModbusSequentialDataBlock(1, [7] * 40)
        server = ModbusTcpServer(ModbusServerContext(devices={1: ModbusDeviceContext(hr=block)}, single=False),
                                 address=("127.0.0.1", mb_port))
        served.append((asyncio.get_running_loop(), server))
        ready.set()
        await server.serve_forever()

    server_thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    server_thread.start()
    assert ready.wait(10)
    cfg = tmp_path / "settings.toml"
    cfg.write_text(
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\nembedded = false\n\n'
        f'[sim]\npublish_interval_s = 0.5\nvibration_samples = 2048\n\n'
        f'[edge]\nagent_id = "edge-kill"\nqueue_path = "{tmp_path / "queue.db"}"\n\n'
        f'[edge.source]\nkind = "simulator"\n\n'
        f'[edge.plc]\nmodbus_endpoint = "127.0.0.1:{mb_port}"\nheartbeat_modbus_register = {HEARTBEAT_REG}\n'
        f'heartbeat_interval_s = 0.2\n\n'
        f'[[edge.plc.targets]]\nasset_id = "{asset}"\nmodbus_registers = {{ valid = 20, health_index = 23 }}\n'
    )
    client = ModbusTcpClient("127.0.0.1", port=mb_port)
    log = (tmp_path / "agent.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "genedge"), "agent", "run", "--config", str(cfg)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(client.connect, 10), "the Modbus server did not start"

        def heartbeat() -> int:
            return int(client.read_holding_registers(HEARTBEAT_REG, count=1, device_id=1).registers[0])

        end = time.monotonic() + 60
        while heartbeat() in (7, 0) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.2)
        first = heartbeat()
        time.sleep(1.5)
        running = heartbeat()
        assert running > first, f"the heartbeat counts while the agent runs: {first} -> {running}; " + \
            (tmp_path / "agent.log").read_text()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = heartbeat()
        time.sleep(2.0)
        assert heartbeat() == killed_at, "the heartbeat stands still once the agent is killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        client.close()
        loop, server = served[0]
        asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(10)
        server_thread.join(10)
        log.close()
