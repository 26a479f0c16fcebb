"""MQTT publisher for the edge: QoS 1, per-publisher sequence numbers, delivery accounting."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from core.errors import IngestError
from core.settings import MqttSettings
from core.wire import MessageType, encode, topic_for

__all__ = ["MqttPublisher"]

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
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{publisher_id}-pub",
                                   protocol=MQTTProtocolVersion.MQTTv311)
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password.get_secret_value() if settings.password else None)
        if settings.tls:
            self._client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None,
                                 certfile=str(settings.cert_file) if settings.cert_file else None,
                                 keyfile=str(settings.key_file) if settings.key_file else None)
        self._client.max_inflight_messages_set(max_inflight)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish

    def _on_publish(self, *_args: Any) -> None:
        with self._lock:
            self.acked += 1

    def next_seq(self) -> int:
        return next(self._seq)

    def connect(self, timeout: float = 10.0) -> None:
        try:
            self._client.connect(self.settings.host, self.settings.port, keepalive=self.settings.keepalive_s)
        except OSError as err:
            raise IngestError(f"cannot reach broker {self.settings.host}:{self.settings.port}: {err}") from err
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
