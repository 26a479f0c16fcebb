"""The edge agent wired as it runs on a gateway: disk queue -> store-and-forward publisher -> agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.assets import AssetConfig
from core.settings import Settings
from edge_agent.agent import EdgeAgent, WindowHook
from edge_agent.publisher import ReliablePublisher
from edge_agent.queue import DiskQueue

__all__ = ["build_agent"]


def build_agent(settings: Settings, assets: Sequence[AssetConfig], *, hooks: Sequence[WindowHook] = (),
                queue: DiskQueue | None = None, **publisher_options: Any) -> tuple[EdgeAgent, ReliablePublisher]:
    """The agent and its publisher, commands routed from one to the other; neither is started.

    Args:
        settings: ``settings.edge`` gives the queue, the agent id and the primary host;
            ``settings.mqtt`` the broker.
        assets: the monitored assets (announced by the publisher's birth message).
        hooks: the agent's per-window hooks (``edge_agent.hooks.build_hooks``: RUL, PLC).
        queue: the disk queue (default: the one ``settings.edge`` configures).
        publisher_options: further :class:`ReliablePublisher` options (``reconnect_s`` ...).

    Raises:
        ConfigError: the broker transport is refused (see :class:`ReliablePublisher`).
    """
    e = settings.edge
    if queue is None:
        queue = DiskQueue(e.queue_path, e.queue_max_messages, e.overflow, max_bytes=e.queue_max_bytes)
    publisher_options.setdefault("primary_host", e.primary_host)
    pub = ReliablePublisher(settings.mqtt, settings.mqtt.site, e.agent_id, queue,
                            assets=[(a.asset_id, [c.name for c in a.channels]) for a in assets], **publisher_options)
    agent = EdgeAgent(settings, assets, pub, hooks=hooks)
    pub.on_command = agent.command
    return agent, pub
