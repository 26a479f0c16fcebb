"""The ingest service: MQTT subscriber -> validation -> batched, idempotent store writes.

Delivery guarantee: messages are acknowledged to the broker (QoS 1, paho manual ack) only after
the transaction holding them has committed. A crash before the commit makes the broker redeliver
them (persistent session); a crash between commit and ack makes it redeliver messages that are
already stored, which the store skips by ``msg_id``. So nothing is lost and nothing is stored
twice. Several workers may share the stream through an MQTT 5 shared subscription.

Memory is bounded while the store is down: at most ``ingest.max_buffered_messages`` messages
(and ``max_buffered_bytes`` of payload) wait unstored. MQTT 5 asks the broker for that receive
maximum, so it holds back further QoS 1 messages; past either cap (QoS 0 traffic, MQTT 3.1.1)
ingest stops reading its socket until a flush succeeds, and the broker keeps the rest in the
session. With MQTT 5 ingest also asks for a maximum packet size of twice ``max_payload_bytes``
(plus room for topic and header): a message up to that size arrives and is dead-lettered as
``oversize``; the broker drops anything larger for ingest without delivering it.

Each message's asset must belong to the gateway that published it (:mod:`ingest._ownership`):
data for an asset another gateway owns is dead-lettered as ``not_owner``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt

from core.errors import IngestError, StoreError, StoreRejectedError, WireError
from core.mqtt import MAX_PACKET_SIZE, client_id_for, connect, make_client
from core.settings import IngestSettings, MqttSettings
from core.wire import (
    TOPIC_ROOT,
    Limits,
    Message,
    check_limits,
    decode,
    host_state_topic,
    is_cmd_topic,
    parse_topic,
    utcnow,
)
from ingest._ownership import AssetOwners
from ingest.alarms import AlarmEvaluator
from ingest.store import DeadLetterIn, Store, WriteResult

__all__ = ["PACKET_HEADROOM_BYTES", "IngestService", "IngestStats", "max_packet_size"]

log = logging.getLogger(__name__)

#: Room for the topic, properties and fixed header of a PUBLISH on top of its payload.
PACKET_HEADROOM_BYTES = 4096
#: Reconnect attempts: this often for the first seconds of an outage, then backing off to a cap.
_RECONNECT_FAST_S = 0.2
_RECONNECT_FAST_FOR_S = 30.0
_RECONNECT_MAX_S = 5.0


def max_packet_size(max_payload_bytes: int) -> int:
    """The MQTT 5 maximum packet size ingest asks for: oversize payloads up to twice the limit
    still arrive (and are dead-lettered with the reason ``oversize``); the broker drops larger ones."""
    return min(2 * max_payload_bytes + PACKET_HEADROOM_BYTES, MAX_PACKET_SIZE)


@dataclass
class IngestStats:
    received: int = 0
    commands_seen: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    store_failures: int = 0
    reconnects: int = 0
    #: most messages held unstored at once; stays within ``ingest.max_buffered_messages``
    buffered_high_water: int = 0
    #: times reading stopped because the buffer was full
    read_pauses: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pending:
    messages: list[tuple[Message, datetime]] = field(default_factory=list)
    #: the topic and raw payload of each of ``messages``, to dead-letter one the store refuses
    raw: list[tuple[str, bytes]] = field(default_factory=list)
    dead: list[DeadLetterIn] = field(default_factory=list)
    mids: list[tuple[int, int]] = field(default_factory=list)  # (mid, qos) to ack after commit
    since: float = 0.0
    nbytes: int = 0  # payload bytes held

    def __len__(self) -> int:
        return len(self.messages) + len(self.dead)


class IngestService:
    """Subscribe to ``genedge/v1/#`` and store every valid message, dead-letter the rest.

    Args:
        mqtt_settings: broker connection.
        ingest_settings: limits, batching, shared-subscription group and client id.
        store: where messages go.
        limits: context range checks (channel ranges of configured assets).
        protocol: ``"5"`` (default; needed for shared subscriptions) or ``"3.1.1"``.
        owners: asset id -> (site, gateway agent id) from the configuration
            (:func:`core.mqtt.asset_owners`); other assets' owners are learnt from births.
    """

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        store: Store,
        *,
        batch_size: int = 500,
        limits: Limits | None = None,
        protocol: str = "5",
        on_flush: Callable[[IngestStats], None] | None = None,
        evaluate_alarms: bool = True,
        owners: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.mqtt_settings = mqtt_settings
        self.settings = ingest_settings
        self.store = store
        self.batch_size = batch_size
        self.limits = limits or Limits(max_future_s=ingest_settings.max_future_s, max_abs_value=ingest_settings.max_abs_value)
        self.protocol = protocol
        self.stats = IngestStats()
        self._on_flush = on_flush
        self.alarms = AlarmEvaluator(store, ingest_settings.alarms) if evaluate_alarms else None
        self.owners = AssetOwners(owners)
        self._pending = _Pending()
        self._paused = False
        self._connected = threading.Event()
        self.client_id = client_id_for(mqtt_settings, "ingest", ingest_settings.client_id)
        # A persistent session keeps our queue on the broker across restarts; messages are
        # acknowledged by hand, only once committed (see the module docstring). The receive
        # maximum keeps the broker from sending more unacknowledged messages than we may hold.
        mqtt5 = protocol == "5"
        self._client = make_client(mqtt_settings, client_id=self.client_id, component="ingest",
                                   protocol="5" if mqtt5 else "3.1.1", persistent=True,
                                   receive_maximum=min(max(batch_size * 2, 100), ingest_settings.max_buffered_messages),
                                   max_packet_size=max_packet_size(ingest_settings.max_payload_bytes) if mqtt5 else None)
        self._client.manual_ack_set(True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        # Sparkplug-style host STATE: edge agents may wait for us before they send; the broker
        # publishes the "offline" will if we die without a clean disconnect.
        self._client.will_set(self.state_topic, b'{"online": false}', qos=1, retain=True)

    @property
    def topic_filter(self) -> str:
        base = f"{TOPIC_ROOT}/#"
        return f"$share/{self.settings.share_group}/{base}" if self.settings.share_group else base

    @property
    def state_topic(self) -> str:
        return host_state_topic(self.client_id)

    @property
    def connected(self) -> threading.Event:
        return self._connected

    # ------------------------------------------------------------- callbacks
    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None) -> None:
        if getattr(rc, "is_failure", False):
            log.error("broker refused connection: %s", rc)
            return
        client.subscribe(self.topic_filter, qos=1)
        client.publish(self.state_topic, b'{"online": true}', qos=1, retain=True)
        self._connected.set()
        log.info("ingest %s subscribed to %s", self.client_id, self.topic_filter)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None) -> None:
        self._connected.clear()
        level = logging.WARNING if getattr(rc, "is_failure", True) else logging.INFO
        log.log(level, "ingest disconnected from broker: %s", rc)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        received_at = utcnow()
        topic, payload = msg.topic, msg.payload  # paho decodes the topic on every access
        if is_cmd_topic(topic):  # commands to edge agents are instructions, not data
            self.stats.commands_seen += 1
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)
            return
        pending = self._pending
        if not pending:
            pending.since = time.monotonic()
        pending.mids.append((msg.mid, msg.qos))
        pending.nbytes += len(payload)
        try:
            message = decode(payload, topic, max_bytes=self.settings.max_payload_bytes)
            check_limits(message, self.limits, now=received_at)
            refused = self.owners.check(parse_topic(topic).site, message)
            if refused is not None:
                raise WireError("not_owner", refused)
        except WireError as err:
            self.stats.by_reason[err.reason] = self.stats.by_reason.get(err.reason, 0) + 1
            pending.dead.append(
                DeadLetterIn(topic=topic, payload=bytes(payload),
                             reason=err.reason, detail=err.detail, received_at=received_at)
            )
        else:
            pending.messages.append((message, received_at))
            pending.raw.append((topic, bytes(payload)))
        self.stats.buffered_high_water = max(self.stats.buffered_high_water, len(pending))

    # ------------------------------------------------------------- main loop
    def connect(self) -> None:
        """Open the connection to the broker; the subscription follows in ``on_connect``.

        Raises:
            IngestError: the broker cannot be reached.
        """
        connect(self._client)

    def run(self, stop: threading.Event, *, drain_s: float = 0.0) -> IngestStats:
        """Process messages until ``stop`` is set, then flush what is pending and disconnect.

        After losing the broker, ingest tries again every ``_RECONNECT_FAST_S`` for the first
        ``_RECONNECT_FAST_FOR_S``, then backs off to ``_RECONNECT_MAX_S``. Coming back fast
        matters after a broker restart: Mosquitto 2.0 does not restore shared subscriptions from
        its persistence file, so what a bridge delivers before a worker has subscribed again is
        not queued for the group (docs/deployment.md, "Sites and centre").
        """
        down_since: float | None = None
        backoff, failures = _RECONNECT_FAST_S, 0
        try:
            self.connect()
        except IngestError as err:
            log.warning("%s; retrying", err)
        while not stop.is_set():
            rc = self._step()
            if rc != mqtt.MQTT_ERR_SUCCESS and not self._client.is_connected():
                now = time.monotonic()
                down_since = now if down_since is None else down_since
                self._drop_unacked()
                self._maybe_flush()  # what arrived before the outage goes to the store meanwhile
                time.sleep(backoff)
                if now - down_since >= _RECONNECT_FAST_FOR_S:
                    backoff = min(backoff * 2, _RECONNECT_MAX_S)
                try:
                    connect(self._client)
                    self.stats.reconnects += 1
                    down_since, backoff, failures = None, _RECONNECT_FAST_S, 0
                except IngestError as err:  # broker still down: keep trying, keep nothing unacked
                    failures += 1
                    if failures & (failures - 1) == 0:  # the 1st, 2nd, 4th, 8th ... failure: a quiet log
                        log.warning("reconnect failed (%d tries): %s", failures, err)
                continue
            self._maybe_flush()
        end = time.monotonic() + drain_s
        while time.monotonic() < end:
            self._step()
            self._maybe_flush()
        self._flush()
        if self._client.is_connected():
            self._client.publish(self.state_topic, b'{"online": false}', qos=1, retain=True)
            self._client.loop(timeout=0.2)
        self._client.disconnect()
        return self.stats

    def _step(self) -> int:
        """One turn of the network loop: read and write, or only keep the connection while the buffer is full."""
        if self._buffer_full():
            return self._hold_reading()
        self._paused = False
        rc = int(self._client.loop(timeout=0.05))
        # paho's loop reads one packet per select(); when messages queue up in the socket, read
        # them without a select each (the socket is non-blocking), until one read brings no
        # message or the batch is due.
        for _ in range(self.batch_size):
            if rc != mqtt.MQTT_ERR_SUCCESS or len(self._pending) >= self.batch_size or self._buffer_full():
                break
            before = self.stats.received
            rc = int(self._client.loop_read())
            if self.stats.received == before:
                break
        return rc

    def _buffer_full(self) -> bool:
        pending = self._pending
        return len(pending) >= self.settings.max_buffered_messages or pending.nbytes >= self.settings.max_buffered_bytes

    def _hold_reading(self) -> int:
        """Back-pressure: the buffer is full, so read nothing until a flush empties it.

        Unread messages stay in the socket and then with the broker (the session keeps them).
        Pings still go out, but their answers are not read: a store outage longer than about
        twice the keepalive drops the connection, and after the reconnect the broker redelivers
        whatever was not acknowledged (the store skips what it already has).
        """
        if not self._paused:
            self._paused = True
            self.stats.read_pauses += 1
            log.warning("ingest holds %d unstored messages (%d bytes): not reading until the store takes them",
                        len(self._pending), self._pending.nbytes)
        rc = self._client.loop_misc()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = self._client.loop_write()
        time.sleep(0.05)
        return int(rc)

    def _maybe_flush(self) -> None:
        if not self._pending:
            return
        due = time.monotonic() - self._pending.since >= self.settings.flush_interval_s
        if due or len(self._pending) >= self.batch_size or self._buffer_full():
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending = self._pending
        try:
            result = self._write(pending)
        except StoreError as err:
            # Keep everything unacked: the broker holds it until we manage to commit.
            self.stats.store_failures += 1
            log.error("store write failed, will retry: %s", err)
            pending.since = time.monotonic()
            time.sleep(0.5)
            return
        self._pending = _Pending()
        for mid, qos in pending.mids:
            if qos > 0:
                self._client.ack(mid, qos)
        self.stats.stored += result.inserted
        self.stats.duplicates += result.duplicates
        self.stats.dead_lettered += result.dead_lettered
        if self.alarms is not None:
            self.alarms.evaluate(m for m, _ in pending.messages)
        if self._on_flush is not None:
            self._on_flush(self.stats)

    def _write(self, pending: _Pending) -> WriteResult:
        """Store a batch; when the database refuses some of its data, store the rest.

        A refused batch is written in halves until each refused message stands alone; those go to
        the dead letters with the database's reason (``store_refused``), so one bad message never
        holds up the stream and nothing is lost.

        Raises:
            StoreError: the store is unreachable; nothing of what is left was stored.
        """
        try:
            return self.store.write(pending.messages, pending.dead)
        except StoreRejectedError as err:
            log.warning("the store refused part of a batch of %d; isolating it: %s", len(pending.messages), err)
        inserted = duplicates = 0
        refused: list[DeadLetterIn] = []
        stack = [list(range(len(pending.messages)))]
        while stack:
            part = stack.pop()
            try:
                result = self.store.write([pending.messages[i] for i in part])
            except StoreRejectedError as err:
                if len(part) > 1:
                    stack.extend((part[len(part) // 2 :], part[: len(part) // 2]))
                    continue
                (i,) = part
                topic, payload = pending.raw[i]
                refused.append(DeadLetterIn(topic=topic, payload=payload, reason="store_refused", detail=str(err),
                                            received_at=pending.messages[i][1]))
                continue
            inserted += result.inserted
            duplicates += result.duplicates
        self.stats.by_reason["store_refused"] = self.stats.by_reason.get("store_refused", 0) + len(refused)
        dead = self.store.write([], [*pending.dead, *refused])
        return WriteResult(inserted=inserted, duplicates=duplicates, dead_lettered=dead.dead_lettered)

    def _drop_unacked(self) -> None:
        """After a disconnect, old mids mean nothing: acknowledge none of what is held, but keep it.

        What is held is written by the next flush, retried until the store takes it: a broker
        restored from an older save may no longer have it, so it must never be dropped. The broker
        redelivers what it still has, and the store skips those as duplicates.
        """
        self._pending.mids.clear()
