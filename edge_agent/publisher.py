"""MQTT publishers of the edge.

:class:`MqttPublisher` is the plain QoS 1 publisher (per-publisher sequence numbers, delivery
accounting) that tools and tests use; :class:`ReliablePublisher` is the agent's store-and-forward
publisher with births, deaths (MQTT last will) and replay of a durable queue after outages.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from core.errors import IngestError
from core.mqtt import MqttClient, check_transport, connect, make_client
from core.settings import MqttSettings
from core.wire import (
    CMD_SUFFIX,
    TOPIC_ROOT,
    BirthMessage,
    DeathMessage,
    MessageType,
    cmd_topic,
    encode,
    host_state_topic,
    printable,
    topic_for,
)
from edge_agent.queue import DiskQueue

__all__ = ["CMD_SUFFIX", "ForwardStats", "MqttPublisher", "ReliablePublisher", "cmd_topic", "host_state_topic"]

log = logging.getLogger(__name__)


class MqttPublisher:
    """Publish wire messages at QoS 1 and count what the broker acknowledged.

    Args:
        settings: broker connection.
        publisher_id: goes into every message's ``publisher`` field; ``seq`` counts per publisher.
        max_inflight: QoS 1 messages awaiting PUBACK before ``publish`` blocks.
    """

    def __init__(self, settings: MqttSettings, publisher_id: str, *, max_inflight: int = 500,
                 start_seq: int = 0) -> None:
        self.settings = settings
        self.publisher_id = publisher_id
        self._seq = itertools.count(start_seq)
        self._lock = threading.Lock()
        self.acked = 0
        self.sent = 0
        self._client = make_client(settings, client_id=f"{publisher_id}-pub", component="agent")
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish

    def _on_publish(self, *_args: Any) -> None:
        with self._lock:
            self.acked += 1

    def next_seq(self) -> int:
        return next(self._seq)

    def connect(self, timeout: float = 10.0) -> None:
        connect(self._client)
        self._client.loop_start()
        end = time.monotonic() + timeout
        while not self._client.is_connected():
            if time.monotonic() > end:
                raise IngestError(f"broker {self.settings.host}:{self.settings.port} did not accept the connection")
            time.sleep(0.01)

    def publish_raw(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        with self._lock:
            self.sent += 1
        return self._client.publish(topic, payload, qos=qos)

    def publish(self, site: str, message: Any) -> mqtt.MQTTMessageInfo:
        """Publish a wire message on its topic (``genedge/v1/<site>/<asset>/<type>``)."""
        return self.publish_raw(topic_for(site, message.asset_id, MessageType(message.type)), encode(message))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every sent message was acknowledged; ``False`` on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                if self.acked >= self.sent:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# ----------------------------------------------------------------------------------------------
# Store-and-forward publisher of the edge agent
# ----------------------------------------------------------------------------------------------

# Command and host-state topics live in core.wire; re-exported here for the agent's callers.
@dataclass
class ForwardStats:
    queued: int = 0
    sent: int = 0
    acked: int = 0
    replayed: int = 0
    connects: int = 0
    disconnects: int = 0
    dropped: int = 0  # given up by the queue's overflow policy (count, bytes or a full disk)


class ReliablePublisher:
    """QoS 1 publisher with a durable queue, births/deaths and replay after outages.

    Every message is first written to the :class:`~edge_agent.queue.DiskQueue` and deleted only
    when the broker acknowledges it (PUBACK), so an outage or a crash loses nothing but what the
    queue's overflow policy drops. Messages are sent strictly in queue order. Messages queued
    while the link was down, and messages re-sent after a broken connection, go out marked
    ``historical``; their ``msg_id``, ``seq`` and timestamps are never changed, so ingest stores
    each once (it skips repeated ``msg_id``) and stale data never gets a new timestamp.

    Each connection is a fresh MQTT session whose last will is the agent's death message; on
    every (re)connect the agent and each asset are born again (once the link is up). Births and deaths are published
    by ``<agent_id>-state`` with their own sequence (Sparkplug's bdSeq), so the data publisher's
    ``seq`` is gap-free. With ``primary_host`` the publisher also waits, like a Sparkplug edge node,
    for the host application's retained STATE ``{"online": true}`` before sending data.

    Args:
        settings: broker connection; the agent logs in as ``identities.agent``.
        site: site of the agent's topics.
        agent_id: the data publisher id.
        queue: durable queue.
        assets: assets born with the agent: ``(asset_id, channel names)``.
        primary_host: host application id whose STATE gates sending; ``None`` to send whenever connected.
        on_command: called from the network thread with ``(asset_id, payload)`` for command messages.
        max_inflight: unacknowledged messages on the wire.
        reconnect_s: ``(first, max)`` back-off between connection attempts.

    Raises:
        ConfigError: plain TCP to a broker on another machine without ``mqtt.allow_plain_tcp``.
    """

    def __init__(self, settings: MqttSettings, site: str, agent_id: str, queue: DiskQueue, *,
                 assets: Sequence[tuple[str, Sequence[str]]] = (), primary_host: str | None = None,
                 on_command: Callable[[str, bytes], None] | None = None, max_inflight: int = 200,
                 reconnect_s: tuple[float, float] = (0.5, 5.0)) -> None:
        check_transport(settings)  # a refused transport is a ConfigError here, not a silently dead forwarder thread
        self.settings = settings
        self.site = site
        self.agent_id = agent_id
        self.state_id = f"{agent_id}-state"[:64]
        self.queue = queue
        self.assets = list(assets)
        self.primary_host = primary_host
        self.on_command = on_command
        self.max_inflight = max_inflight
        self.reconnect_s = reconnect_s
        self.stats = ForwardStats()
        self._seq = itertools.count(0)
        self._bd_seq = itertools.count(0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._host_online = primary_host is None
        self._inflight: dict[int, int] = {}  # mid -> queue row id
        self._early_acks: set[int] = set()
        self._untracked: set[int] = set()  # births: acknowledged but not in the queue
        self._replay_upto = queue.max_id()  # rows left by an earlier run are replays
        self._client: mqtt.Client | None = None
        self._thread: threading.Thread | None = None
        self.started = time.monotonic()

    # ------------------------------------------------------------------ public API
    def next_seq(self) -> int:
        return next(self._seq)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def link_up(self) -> bool:
        return self._connected.is_set() and self._host_online

    def start(self) -> ReliablePublisher:
        self._thread = threading.Thread(target=self._run, name=f"{self.agent_id}-forwarder", daemon=True)
        self._thread.start()
        return self

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return self._connected.wait(timeout)

    def send(self, message: Any, *, urgent: bool = False) -> bool:
        """Queue a wire message for delivery on its topic; ``False`` when the overflow policy dropped it.

        Never raises for a full queue or a full disk (:attr:`queue_alarm` tells). An ``urgent``
        message the queue gave up (the status that reports a full disk) is published directly
        while the link is up, outside the queue's order and guarantees.
        """
        topic = topic_for(self.site, message.asset_id, MessageType(message.type))
        payload = encode(message)
        row = self.queue.put(topic, payload, offline=not self.link_up)
        with self._lock:
            self.stats.queued += int(row is not None)
            self.stats.dropped = self.queue.dropped
        self._wake.set()
        if row is None and urgent and self.link_up:
            self.publish_now(topic, payload)
        return row is not None

    @property
    def queue_alarm(self) -> str | None:
        """Why the disk queue refused its last write (``"disk full"``, ``"storage error"``), or ``None``."""
        return self.queue.alarm

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until the broker acknowledged everything queued; ``False`` on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if len(self.queue) == 0:
                return True
            time.sleep(0.02)
        return len(self.queue) == 0

    def publish_now(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish outside the queue (births, deaths, state): only while connected."""
        client = self._client
        if client is not None and self.connected:
            client.publish(topic, payload, qos=1, retain=retain)

    def close(self, reason: str = "shutdown", drain_timeout: float = 10.0) -> None:
        """Drain the queue, publish the deaths of the assets and the agent, disconnect."""
        if self.link_up:
            self.drain(drain_timeout)
        client = self._client
        if client is not None and self.connected:
            infos = [client.publish(*self._death(a, reason), qos=1) for a, _ in self.assets]
            infos.append(client.publish(*self._death(self.agent_id, reason), qos=1))
            for info in infos:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(2.0)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    # ------------------------------------------------------------------ messages
    def _birth(self, asset_id: str, channels: Sequence[str]) -> tuple[str, bytes]:
        msg = BirthMessage(publisher=self.state_id, seq=next(self._bd_seq), asset_id=asset_id, channels=list(channels))
        return topic_for(self.site, asset_id, MessageType.BIRTH), encode(msg)

    def _death(self, asset_id: str, reason: str) -> tuple[str, bytes]:
        msg = DeathMessage(publisher=self.state_id, seq=next(self._bd_seq), asset_id=asset_id, reason=printable(reason, 500))
        return topic_for(self.site, asset_id, MessageType.DEATH), encode(msg)

    # ------------------------------------------------------------------ network thread
    def _new_client(self) -> MqttClient:
        client = make_client(self.settings, client_id=f"{self.agent_id}-fwd", component="agent")
        client.max_inflight_messages_set(self.max_inflight + len(self.assets) + 4)
        client.max_queued_messages_set(0)
        will_topic, will_payload = self._death(self.agent_id, "connection lost (last will)")
        client.will_set(will_topic, will_payload, qos=1)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
        if getattr(rc, "is_failure", False):
            log.warning("broker refused the agent's connection: %s", rc)
            return
        client.subscribe(f"{TOPIC_ROOT}/{self.site}/+/{CMD_SUFFIX}", qos=1)
        if self.primary_host is not None:
            client.subscribe(host_state_topic(self.primary_host), qos=1)
        with self._lock:
            self.stats.connects += 1
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, *_args: Any) -> None:
        # The host's STATE must be seen again on the next session: it may have gone while we were away.
        self._host_online = self.primary_host is None
        if self._connected.is_set():
            with self._lock:
                self.stats.disconnects += 1
        self._connected.clear()
        self._wake.set()

    def _on_publish(self, client: mqtt.Client, _u: object, mid: int, *_rest: Any) -> None:
        if client is not self._client:
            return  # a late PUBACK of a session already given up: its rows are re-sent anyway
        with self._lock:
            if mid in self._untracked:
                self._untracked.discard(mid)
                return
            row = self._inflight.pop(mid, None)
            if row is None:
                self._early_acks.add(mid)  # PUBACK before _pump recorded the mid
        if row is not None:
            self._ack(row)
        self._wake.set()

    def _ack(self, row: int) -> None:
        self.queue.ack(row)
        with self._lock:
            self.stats.acked += 1

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if self.primary_host is not None and msg.topic == host_state_topic(self.primary_host):
            try:
                self._host_online = bool(json.loads(msg.payload or b"{}").get("online", False))
            except (ValueError, AttributeError):
                log.warning("ignoring malformed host STATE payload on %s", msg.topic)
            self._wake.set()
            return
        parts = msg.topic.split("/")
        if len(parts) == 5 and parts[4] == CMD_SUFFIX and self.on_command is not None:
            try:
                self.on_command(parts[3], bytes(msg.payload))
            except Exception:  # a bad command must not kill the network thread
                log.exception("command handler failed for %s", msg.topic)

    def _run(self) -> None:
        delay = self.reconnect_s[0]
        while not self._stop.is_set():
            client = self._new_client()
            try:
                connect(client)
            except IngestError as err:
                log.info("%s; queueing locally", err)
                self._stop.wait(delay)
                delay = min(delay * 2, self.reconnect_s[1])
                continue
            self._client = client
            client.loop_start()
            if not self._connected.wait(10.0):
                client.loop_stop()
                client.disconnect()
                continue
            delay = self.reconnect_s[0]
            self._pump(client)
            # The session is gone: whatever was in flight stays queued and is re-sent, in order.
            client.disconnect()
            client.loop_stop()
            self._client = None
            with self._lock:
                self._inflight.clear()
                self._early_acks.clear()
                self._untracked.clear()
            self._replay_upto = self.queue.max_id()

    def _publish_births(self, client: mqtt.Client) -> None:
        """Birth of the agent and of each asset, once per session, when the link is up (Sparkplug order)."""
        births = [self._birth(self.agent_id, [a for a, _ in self.assets])]
        births += [self._birth(asset_id, channels) for asset_id, channels in self.assets]
        for topic, payload in births:
            info = client.publish(topic, payload, qos=1)
            with self._lock:
                if info.mid in self._early_acks:
                    self._early_acks.discard(info.mid)
                else:
                    self._untracked.add(info.mid)

    def _pump(self, client: mqtt.Client) -> None:
        last_id = 0
        born = False
        while not self._stop.is_set() and self._connected.is_set():
            self._wake.clear()
            if not self._host_online:
                self._wake.wait(0.2)
                continue
            if not born:
                self._publish_births(client)
                born = True
            with self._lock:
                room = self.max_inflight - len(self._inflight)
            rows = self.queue.peek(last_id, room) if room > 0 else []
            for row in rows:
                replay = row.offline or row.id <= self._replay_upto
                payload = _mark_historical(row.payload) if replay else row.payload
                # Never hold our lock inside paho: its network thread calls _on_publish holding its own.
                info = client.publish(row.topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                with self._lock:
                    acked_early = info.mid in self._early_acks
                    if acked_early:
                        self._early_acks.discard(info.mid)
                    else:
                        self._inflight[info.mid] = row.id
                    self.stats.sent += 1
                    self.stats.replayed += int(replay)
                if acked_early:
                    self._ack(row.id)
                last_id = row.id
            if not rows:
                self._wake.wait(0.05)


def _mark_historical(payload: bytes) -> bytes:
    # The envelope's "historical" is serialised before any user field, and a quote inside a JSON
    # string is escaped, so the first unescaped match is the envelope's own flag.
    return payload.replace(b'"historical":false', b'"historical":true', 1)
