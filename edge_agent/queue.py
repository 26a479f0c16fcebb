"""Durable local queue (SQLite) of outgoing messages: store-and-forward for the edge publisher.

The queue is bounded twice, in messages and in bytes, and the overflow policy decides what gives
way when either bound or the disk itself is reached. A full disk never raises out of the queue:
the message the policy gives up is counted, :attr:`DiskQueue.alarm` says why, and the alarm clears
on the next write that succeeds.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DiskQueue", "QueuedMessage"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    offline INTEGER NOT NULL DEFAULT 0
)
"""

#: bytes the write-ahead log is truncated to after a checkpoint
_WAL_LIMIT = 4 * 1024 * 1024
_SIZE = "length(CAST(topic AS BLOB)) + length(payload)"


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
        max_bytes: bound on the bytes kept (topic + payload of every row); the file adds SQLite's
            page overhead and its write-ahead log.
        overflow: ``drop_oldest`` deletes the oldest rows to make room, ``drop_newest`` refuses the
            new one. Applies to the count, the bytes and a full disk alike.
        synchronous: SQLite ``synchronous`` pragma.
        alarm_hold_s: the alarm clears on the first write that succeeds this long after the last
            refused one (on a full disk, writes succeed again each time old rows give way: the
            alarm must not flap with them).

    Attributes:
        dropped: messages given up by the overflow policy (oldest deleted or newest refused).
        alarm: why the last write failed (``"disk full"``, ``"storage error"``), or ``None``.
        storage_errors: writes the storage refused.
    """

    def __init__(self, path: str | Path, max_messages: int = 100_000,
                 overflow: Literal["drop_oldest", "drop_newest"] = "drop_oldest",
                 synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL", *,
                 max_bytes: int = 256 * 1024 * 1024, alarm_hold_s: float = 10.0) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        if overflow not in ("drop_oldest", "drop_newest"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'drop_newest', got {overflow!r}")
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.overflow = overflow
        self.dropped = 0
        self.storage_errors = 0
        self.alarm: str | None = None
        self.alarm_hold_s = alarm_hold_s
        self._failed_at = 0.0
        self._lock = threading.Lock()
        self._unacked: set[int] = set()  # delivered rows whose DELETE the storage refused
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
        self._db.execute(_SCHEMA)
        count, size = self._db.execute(f"SELECT COUNT(*), COALESCE(SUM({_SIZE}), 0) FROM outbox").fetchone()
        self._count = int(count)
        self._bytes = int(size)

    # ------------------------------------------------------------------ writing
    def put(self, topic: str, payload: bytes, *, offline: bool = False) -> int | None:
        """Append a message; returns its id, or ``None`` when the overflow policy gave it up.

        Never raises for a full queue or a full disk: the policy decides, :attr:`alarm` tells.
        """
        size = len(topic.encode()) + len(payload)
        with self._lock:
            self._retry_acks()
            if size > self.max_bytes or not self._make_room(size):
                self.dropped += 1
                return None
            try:
                row = self._insert(topic, payload, offline, size)
            except sqlite3.Error as err:
                self._storage_failed(err)
                self._checkpoint()
                # The disk is full: drop_oldest gives up old rows so the newest data gets in.
                if self.overflow == "drop_newest" or not self._drop_oldest(max(size, self._bytes // 10)):
                    self.dropped += 1
                    return None
                try:
                    # The alarm stays raised: this row got in only because older ones gave way.
                    return self._insert(topic, payload, offline, size)
                except sqlite3.Error as again:
                    self._storage_failed(again)
                    self.dropped += 1
                    return None
            if self.alarm is not None and time.monotonic() - self._failed_at >= self.alarm_hold_s:
                log.warning("edge queue %s: writes succeed again (%s cleared)", self.path, self.alarm)
                self.alarm = None
            return row

    def _insert(self, topic: str, payload: bytes, offline: bool, size: int) -> int:
        cur = self._db.execute("INSERT INTO outbox (topic, payload, offline) VALUES (?, ?, ?)",
                               (topic, payload, int(offline)))
        self._count += 1
        self._bytes += size
        return int(cur.lastrowid or 0)

    def _make_room(self, size: int) -> bool:
        """Apply the policy to the count and byte bounds; ``False`` when the new message must go."""
        over_count = self._count >= self.max_messages
        over_bytes = self._bytes + size > self.max_bytes
        if not (over_count or over_bytes):
            return True
        if self.overflow == "drop_newest":
            return False
        need = self._bytes + size - self.max_bytes if over_bytes else 0
        return self._drop_oldest(need, rows=self._count - self.max_messages + 1 if over_count else 0)

    def _drop_oldest(self, need_bytes: int, rows: int = 0) -> bool:
        """Delete the oldest rows until ``rows`` rows and ``need_bytes`` bytes are freed."""
        last_id, n, freed = 0, 0, 0
        for row_id, size in self._db.execute(f"SELECT id, {_SIZE} FROM outbox ORDER BY id"):
            if n >= rows and freed >= need_bytes:
                break
            last_id, n, freed = int(row_id), n + 1, freed + int(size)
        if n == 0:
            return need_bytes <= 0 and rows <= 0
        try:
            cur = self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        except sqlite3.Error as err:
            self._storage_failed(err)
            return False
        self._count -= cur.rowcount
        self._bytes -= freed
        self.dropped += cur.rowcount
        self._unacked = {i for i in self._unacked if i > last_id}
        return True

    def _checkpoint(self) -> None:
        """Move the write-ahead log into the database and truncate it: on a full disk the log is what
        grows, and it only shrinks when a checkpoint completes."""
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as err:
            log.debug("edge queue checkpoint failed: %s", err)

    def _storage_failed(self, err: sqlite3.Error) -> None:
        full = getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(err).lower()
        reason = "disk full" if full else "storage error"
        self._failed_at = time.monotonic()
        if self.alarm != reason:
            log.error("edge queue %s: %s (%s); overflow policy %s applies", self.path, reason, err, self.overflow)
        self.alarm = reason
        self.storage_errors += 1

    # ------------------------------------------------------------------ reading, acknowledging
    def peek(self, after_id: int = 0, limit: int = 100) -> list[QueuedMessage]:
        """Up to ``limit`` rows with id above ``after_id``, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, topic, payload, offline FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                    (after_id, limit)).fetchall()
            except sqlite3.Error as err:
                self._storage_failed(err)
                return []
        return [QueuedMessage(int(r[0]), str(r[1]), bytes(r[2]), bool(r[3])) for r in rows
                if int(r[0]) not in self._unacked]

    def ack(self, message_id: int) -> None:
        """Remove a delivered message (no-op when it was already dropped).

        When the storage refuses the delete, the row is remembered as delivered (never sent
        again by this process) and deleted on a later write.
        """
        with self._lock:
            self._unacked.add(message_id)
            self._retry_acks()

    def _retry_acks(self) -> None:
        for row_id in sorted(self._unacked):
            try:
                cur = self._db.execute(f"DELETE FROM outbox WHERE id = ? RETURNING {_SIZE}", (row_id,))
                freed = cur.fetchall()
            except sqlite3.Error as err:
                self._storage_failed(err)
                return
            self._unacked.discard(row_id)
            self._count -= len(freed)
            self._bytes -= sum(int(f[0]) for f in freed)

    def max_id(self) -> int:
        with self._lock:
            try:
                return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0])
            except sqlite3.Error as err:
                self._storage_failed(err)
                return 0

    @property
    def nbytes(self) -> int:
        """Bytes held (topic + payload of every row)."""
        return self._bytes

    def __len__(self) -> int:
        return self._count - len(self._unacked)

    def close(self) -> None:
        with self._lock:
            self._db.close()
