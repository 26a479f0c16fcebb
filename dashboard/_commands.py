"""Commands from the dashboard to edge agents over MQTT (a raw snapshot request). No Streamlit.

A command is one QoS 1 message on the asset's command topic ``genedge/v1/<site>/<asset>/cmd``,
built through the wire schema :class:`core.wire.Command` that the agent validates it against;
the edge agent that serves the asset answers a ``{"action": "raw"}`` by publishing the raw
batches in its ring buffer, which ingest stores like any reading batch.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from core.errors import IngestError
from core.mqtt import connect, make_client
from core.settings import MqttSettings
from core.wire import Command, cmd_topic

__all__ = ["request_raw_snapshot", "send_command"]


def send_command(settings: MqttSettings, site: str, asset_id: str, command: Command, *,
                 timeout_s: float = 5.0) -> str:
    """Publish ``command`` on the asset's command topic and wait for the broker's PUBACK.

    Args:
        settings: broker connection (host, port, TLS; the login of ``identities.dashboard``).
        site: the asset's site (part of the topic).
        asset_id: the asset.
        command: e.g. ``Command(action="raw")``.
        timeout_s: how long to wait for the connection and for the broker to acknowledge.

    Returns:
        The topic the command went to.

    Raises:
        IngestError: the broker could not be reached, refused the connection, or did not
            acknowledge the command in time.
        ConfigError: the TLS files named in ``settings`` cannot be loaded.
    """
    topic = cmd_topic(site, asset_id)
    where = f"{settings.host}:{settings.port}"
    # MQTT 3.1.1 with a clean session: every broker GenEdge runs with speaks it,
    # and a one-shot publisher must leave no session behind on the broker.
    # The dashboard's own identity (mqtt.identities.dashboard): the broker lets it publish commands only.
    client = make_client(settings, client_id=f"{settings.client_id}-dash-{uuid.uuid4().hex[:8]}",
                         component="dashboard")
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
        if getattr(rc, "is_failure", False):
            refused.append(str(rc))
        connected.set()

    client.on_connect = on_connect
    connect(client)
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise IngestError(f"the MQTT broker at {where} did not answer within {timeout_s:g} s")
        if refused:
            raise IngestError(f"the MQTT broker at {where} refused the connection: {refused[0]}")
        info = client.publish(topic, command.model_dump_json(exclude_none=True).encode(), qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as err:
            raise IngestError(f"publishing to {topic} failed: {err}") from err
        if not info.is_published():
            raise IngestError(f"the MQTT broker at {where} did not acknowledge the command on {topic} "
                              f"within {timeout_s:g} s")
    finally:
        client.disconnect()
        client.loop_stop()
    return topic


def request_raw_snapshot(settings: MqttSettings, site: str, asset_id: str, *, channel: str | None = None,
                         requester: str = "dashboard", timeout_s: float = 5.0) -> str:
    """Ask the asset's edge agent for a raw snapshot (``{"action": "raw"}``); returns the topic.

    Args:
        settings: broker connection.
        site: the asset's site.
        asset_id: the asset.
        channel: only this channel (default: every fast channel in the agent's ring buffer).
        requester: who asks; the agent rate-limits each requester (``^[A-Za-z0-9_-]{1,64}$``).
        timeout_s: see :func:`send_command`.

    Raises:
        IngestError: see :func:`send_command`.
        pydantic.ValidationError: ``channel`` or ``requester`` is not an id.
    """
    command = Command(action="raw", channel=channel, requester=requester, request_id=uuid.uuid4().hex)
    return send_command(settings, site, asset_id, command, timeout_s=timeout_s)
