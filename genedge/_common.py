"""What the CLI groups share: the common options, the one Settings object, logging and clean shutdown.

The group modules (``agent_cli``, ``prescribe_cli`` ...) take these from here, never from
:mod:`genedge.cli`, which only mounts them.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from core.settings import Settings

__all__ = ["AgentConfigOpt", "BrokerOpt", "ConfigOpt", "DbOpt", "load_settings", "setup_logging", "stop_on_signals"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file", exists=False)]
DbOpt = Annotated[str | None, typer.Option("--db", help="database URL (overrides store.url)")]
BrokerOpt = Annotated[str | None, typer.Option("--broker", help="HOST:PORT of an external MQTT broker")]
AgentConfigOpt = Annotated[Path | None, typer.Option(
    "--agent-config", help="deprecated: an edge-agent TOML file of the old layout, read as the edge section; use --config")]


def load_settings(config: Path | None, db: str | None = None, broker: str | None = None,
                  agent_config: Path | None = None) -> Settings:
    """Build the one Settings object from file, environment and CLI overrides.

    ``agent_config`` is the deprecated ``--agent-config`` file (the old top-level layout of the
    edge options), read as the ``[edge]`` section.
    """
    if agent_config is not None:
        typer.echo(f"warning: --agent-config is deprecated and will be removed; move the options of {agent_config} "
                   "under [edge] in the --config file", err=True)
    settings = Settings.load(config, agent_config_file=agent_config)
    updates: dict[str, Any] = {}
    if db:
        updates["store"] = settings.store.model_copy(update={"url": SecretStr(db)})
    if broker:
        host, _, port = broker.rpartition(":")
        if not host or not port.isdigit():
            raise typer.BadParameter(f"--broker must be HOST:PORT, got {broker!r}")
        updates["mqtt"] = settings.mqtt.model_copy(update={"host": host, "port": int(port), "embedded": False})
    return settings.model_copy(update=updates) if updates else settings


def setup_logging(verbose: bool) -> None:
    """Log to stderr: INFO with ``--verbose``, else WARNING."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM, for clean shutdowns."""
    stop = threading.Event()

    def _handler(_sig: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    return stop
