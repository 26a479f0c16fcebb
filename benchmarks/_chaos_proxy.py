"""A TCP relay between a site broker's bridge and the central broker, that the harness can cut.

The bridge's ``address`` points at this relay. SIGUSR1 cuts the link: every relayed connection
is closed and new ones are refused (the listening socket is closed), as when a WAN line drops.
SIGUSR2 restores it. Run as ``python -m benchmarks._chaos_proxy --listen PORT --target PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal


class Relay:
    """Relays loopback connections from ``listen`` to ``target``; :meth:`cut` and :meth:`restore` the link."""

    def __init__(self, listen: int, target: int) -> None:
        self.listen = listen
        self.target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen, reuse_address=True)

    def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()  # a reset, not a polite close: the far side learns nothing in advance
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


async def serve(listen: int, target: int) -> None:
    relay = Relay(listen, target)
    await relay.open()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, relay.cut)
    loop.add_signal_handler(signal.SIGUSR2, lambda: loop.create_task(relay.open()))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    relay.cut()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", type=int, required=True)
    a = parser.parse_args()
    asyncio.run(serve(a.listen, a.target))


if __name__ == "__main__":
    main()
