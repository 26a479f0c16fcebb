"""``genedge agent``: run the edge agent (mounted by :mod:`genedge.cli`)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Annotated

import typer

from core.assets import AssetConfig
from core.errors import ConfigError
from core.settings import Settings
from edge_agent.hooks import build_hooks
from edge_agent.sources import build_source
from edge_agent.wiring import build_agent
from genedge._common import AgentConfigOpt, BrokerOpt, ConfigOpt, load_settings, setup_logging, stop_on_signals

agent_app = typer.Typer(help="Edge agent: sources -> features -> store-and-forward MQTT.", no_args_is_help=True)


@agent_app.command("run")
def agent_run(
    config: ConfigOpt = None,
    agent_config: AgentConfigOpt = None,
    broker: BrokerOpt = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the agent until interrupted (or ``--duration``); prints its counters as JSON at the end."""
    setup_logging(verbose)
    settings = load_settings(config, None, broker, agent_config)
    source, assets = build_source(settings)
    stats = run_agent(settings, source, assets, stop_on_signals(), duration)
    typer.echo(json.dumps(stats, default=str))


def run_agent(settings: Settings, source: object, assets: list[AssetConfig],
              stop: object, duration: float | None = None) -> dict[str, object]:
    """Wire publisher, hooks and agent, run until the source ends, ``stop`` is set or ``duration`` passes."""
    assert isinstance(stop, threading.Event)
    if not assets:
        raise ConfigError("the agent has no assets")
    e = settings.edge
    agent, pub = build_agent(settings, assets, hooks=build_hooks(e, assets))
    pub.start()
    if duration is not None:
        threading.Timer(duration, stop.set).start()
    try:
        asyncio.run(agent.run(source, stop))  # type: ignore[arg-type]
    finally:
        pub.close()
    return {"agent": e.agent_id, **agent.stats.__dict__, "forward": pub.stats.__dict__}
