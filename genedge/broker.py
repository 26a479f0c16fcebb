"""Embedded MQTT broker (amqtt) for the demo when no external broker is configured.

Production plants run Mosquitto, EMQX or HiveMQ; this broker exists so that ``genedge demo``
works on a fresh machine with nothing else installed. It speaks MQTT 3.1.1.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

from core.errors import IngestError

__all__ = ["EmbeddedBroker", "port_open"]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class EmbeddedBroker:
    """amqtt broker running on its own event loop in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._broker = Broker(self._config(), loop=loop)
            loop.run_until_complete(self._broker.start())
        except BaseException as err:  # reported to start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._broker.shutdown())
        loop.close()

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        # amqtt logs every readiness probe and client hiccup at ERROR; keep the demo's console readable.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        if port_open(self.host, self.port):
            raise IngestError(f"port {self.host}:{self.port} is taken: is another broker running? use --broker")
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise IngestError(f"embedded broker failed to start: {self._error}") from self._error
        end = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if time.monotonic() > end:
                raise IngestError(f"embedded broker not listening on {self.host}:{self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
            self._loop = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
