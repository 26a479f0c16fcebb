"""Durable local queue (SQLite) of outgoing messages: store-and-forward for the edge publisher."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DiskQueue", "QueuedMessage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    offline INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class QueuedMessage:
    """One row of the queue; ``offline`` is true when it was queued while the link was down."""

    id: int
    topic: str
    payload: bytes
    offline: bool


class DiskQueue:
    """A bounded FIFO of (topic, payload) on SQLite in WAL mode; safe to share between threads.

    Rows survive a crash of the agent (``synchronous=NORMAL``: a committed row survives a process
    crash; use ``FULL`` to survive power loss as well, at a cost per message).

    Args:
        path: database file (``":memory:"`` for tests that need no durability).
        max_messages: bound on the rows kept.
        overflow: ``drop_oldest`` deletes the oldest row to make room, ``drop_newest`` refuses the new one.
        synchronous: SQLite ``synchronous`` pragma.
    """

    def __init__(self, path: str | Path, max_messages: int = 100_000,
                 overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
                 synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL") -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', got {overflow!r}")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.overflow = overflow
        self.dropped = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(_SCHEMA)
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def put(self, topic: str, payload: bytes, *, offline: bool = False) -> int | None:
        """Append a message; returns its id, or ``None`` when ``drop_newest`` refused it."""
        with self._lock:
            if self._count >= self.max_messages:
                if self.overflow == "drop_newest":
                    self.dropped += 1
                    return None
                excess = self._count - self.max_messages + 1
                cur = self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
                self._count -= cur.rowcount
                self.dropped += cur.rowcount
            cur = self._db.execute("INSERT INTO outbox (topic, payload, offline) VALUES (?, ?, ?)",
                                   (topic, payload, int(offline)))
            self._count += 1
            return int(cur.lastrowid or 0)

    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Up to ``limit`` rows with id above ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload, offline FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                                    (after_id, limit)).fetchall()
        return [QueuedMessage(int(r[0]), str(r[1]), bytes(r[2]), bool(r[3])) for r in rows]

    def ack(self, message_id: int) -> None:
        """Remove a delivered message (no-op when it was already dropped)."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
            self._count -= cur.rowcount

    def max_id(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0])

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
