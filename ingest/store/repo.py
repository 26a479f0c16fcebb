"""Repository: the store's public API. Sessions and SQL stay inside this module."""

from __future__ import annotations

import hashlib
import logging
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from core.assets import AssetConfig
from core.errors import StoreError, StoreRejectedError
from core.wire import (
    BirthMessage,
    DeathMessage,
    FeatureFrame,
    Message,
    Prediction,
    ReadingBatch,
    StatusReport,
    utcnow,
)
from ingest.store._engine import make_engine, migrate
from ingest.store._partitions import PARTITIONED, ensure_all, partitioned_tables
from ingest.store.models import (
    Asset,
    DeadLetter,
    FeatureRow,
    PredictionRow,
    Reading,
    StatusRow,
    StoreMeta,
)

__all__ = ["DeadLetterIn", "ReadingRecord", "Store", "WriteResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetterIn:
    """A message that failed validation, kept with its raw payload and the reason."""

    topic: str
    payload: bytes
    reason: str
    detail: str
    received_at: datetime = field(default_factory=utcnow)

    @property
    def dedup_key(self) -> str:
        """Redelivery of the same bad message (same topic and bytes) is stored once."""
        digest = hashlib.sha256(self.topic.encode() + b"\0" + self.payload).hexdigest()
        return f"sha256:{digest}"


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    duplicates: int
    dead_lettered: int


@dataclass(frozen=True)
class ReadingRecord:
    msg_id: str
    publisher: str
    seq: int
    asset_id: str
    channel: str
    quantity: str
    unit: str
    sample_rate_hz: float
    start: datetime
    values: np.ndarray
    quality: str
    historical: bool
    received_at: datetime


def _common(m: Message, received_at: datetime) -> dict[str, Any]:
    return {
        "msg_id": m.msg_id,
        "publisher": m.publisher,
        "seq": m.seq,
        "historical": m.historical,
        "sent_at": m.sent_at,
        "received_at": received_at,
    }


def _reading_rows(batch: Sequence[tuple[ReadingBatch, datetime]]) -> list[dict[str, Any]]:
    """The rows of reading batches, in order; the summary statistics of all batches of one length are
    computed at once (per-batch numpy calls on a few hundred samples cost more than the arithmetic)."""
    rows: list[dict[str, Any]] = [{} for _ in batch]
    by_length: dict[int, list[int]] = {}
    for i, (m, _) in enumerate(batch):
        by_length.setdefault(len(m.values), []).append(i)
    for n, index in by_length.items():
        arr = np.array([batch[i][0].values for i in index], dtype=np.float64)
        samples = arr.astype("<f4")
        v_min, v_max, v_mean = arr.min(axis=1).tolist(), arr.max(axis=1).tolist(), arr.mean(axis=1).tolist()
        v_rms = np.sqrt(np.mean(arr * arr, axis=1)).tolist()
        for k, i in enumerate(index):
            m, received_at = batch[i]
            rows[i] = {
                **_common(m, received_at),
                "asset_id": m.asset_id,
                "channel": m.channel,
                "quantity": m.quantity.value,
                "unit": m.unit,
                "sample_rate_hz": m.sample_rate_hz,
                "start": m.start,
                "n_samples": n,
                "samples": samples[k].tobytes(),
                "v_min": v_min[k],
                "v_max": v_max[k],
                "v_mean": v_mean[k],
                "v_rms": v_rms[k],
                "quality": m.quality.value,
            }
    return rows


def _reading_row(m: ReadingBatch, received_at: datetime) -> dict[str, Any]:
    return _reading_rows([(m, received_at)])[0]


#: Raw payloads above this are kept truncated in the dead-letter table (the reason says so).
MAX_DEAD_PAYLOAD = 1 << 20


def _refused_data(err: SQLAlchemyError) -> bool:
    """Whether the database refused the rows themselves (retrying cannot help), not the connection.

    Data and integrity errors are about the rows; a statement error wraps one raised while the
    driver adapted a value (e.g. a NUL byte in a PostgreSQL string). Anything else (server down,
    connection lost, disk full, a schema out of date) is the store's trouble, worth a retry.
    """
    if isinstance(err, DBAPIError):
        return isinstance(err, DataError | IntegrityError) and not err.connection_invalidated
    return isinstance(err, StatementError) and isinstance(err.orig, ValueError | TypeError)


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:500] if str(err).strip() else type(err).__name__


def _storable(text: str) -> str:
    """``text`` with control characters but tab and line breaks replaced, so the dead letter itself is
    never refused (its raw payload is kept byte for byte in a binary column)."""
    return "".join(ch if ch.isprintable() or ch in "\t\n\r" else "\ufffd" for ch in text)


def _dead_row(d: DeadLetterIn) -> dict[str, Any]:
    payload, detail = d.payload, _storable(d.detail)
    if len(payload) > MAX_DEAD_PAYLOAD:
        detail = f"{detail} [payload truncated to {MAX_DEAD_PAYLOAD} of {len(payload)} bytes]"
        payload = payload[:MAX_DEAD_PAYLOAD]
    return {"dedup_key": d.dedup_key, "topic": _storable(d.topic[:1024]), "payload": payload, "reason": d.reason,
            "detail": detail[:4000], "received_at": d.received_at}


def _row_for(m: Message, received_at: datetime) -> tuple[Table, dict[str, Any]]:
    if isinstance(m, ReadingBatch):
        return Reading.__table__, _reading_row(m, received_at)  # type: ignore[return-value]
    if isinstance(m, FeatureFrame):
        return FeatureRow.__table__, {  # type: ignore[return-value]
            **_common(m, received_at),
            "asset_id": m.asset_id,
            "window_start": m.window_start,
            "window_s": m.window_s,
            "features": m.features,
            "quality": m.quality.value,
        }
    if isinstance(m, Prediction):
        return PredictionRow.__table__, {  # type: ignore[return-value]
            **_common(m, received_at),
            **m.model_dump(include={"asset_id", "model_name", "model_version", "at", "rul_unit", "rul_median",
                                    "rul_lower", "rul_upper", "coverage", "health_index", "rul_cap"}),
        }
    if isinstance(m, StatusReport | BirthMessage | DeathMessage):
        state = m.state if isinstance(m, StatusReport) else ("online" if isinstance(m, BirthMessage) else "offline")
        detail = m.detail if isinstance(m, StatusReport) else getattr(m, "reason", "")
        return StatusRow.__table__, {  # type: ignore[return-value]
            **_common(m, received_at),
            "asset_id": m.asset_id,
            "kind": m.type,
            "state": state,
            "detail": detail,
            "body": m.model_dump(mode="json"),
        }
    raise StoreError(f"no table for message type {type(m).__name__}")


class Store:
    """Persistent store of GenEdge data on SQLite or PostgreSQL.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///var/genedge.db`` or ``postgresql+psycopg://...``.
        migrate_schema: run Alembic migrations up to head on open.
    """

    def __init__(self, url: str, *, echo: bool = False, migrate_schema: bool = True) -> None:
        self.url = url
        try:
            self.engine: Engine = make_engine(url, echo=echo)
            if migrate_schema:
                migrate(self.engine)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot open store at {self._safe_url()}: {err}") from err
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.dialect = self.engine.dialect.name
        self._bind_cache: dict[str, tuple[frozenset[str], list[str], list[Any]]] = {}
        #: Tables partitioned by event time (PostgreSQL at migration 0007 or later): their unique
        #: key, and so the ON CONFLICT target, is ``(msg_id, <time>)``.
        self.partitioned: frozenset[str] = frozenset()
        if self.dialect == "postgresql":
            self._open_partitions(migrate_schema)

    def _open_partitions(self, maintain: bool) -> None:
        """Learn which tables are partitioned; as the schema's owner, create the partitions due.

        A failed creation is logged, not raised: the DEFAULT partitions take every row meanwhile and
        ``genedge ingest maintain`` creates the partitions (and moves those rows) later.
        """
        try:
            with self.engine.connect() as conn:
                self.partitioned = partitioned_tables(conn)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot open store at {self._safe_url()}: {err}") from err
        if maintain and self.partitioned:
            try:
                ensure_all(self.engine, utcnow())
            except SQLAlchemyError as err:
                log.warning("cannot create the partitions due (the DEFAULT partitions take the rows): %s",
                            _first_line(err))

    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True) if hasattr(self, "engine") else "<url>"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def _conflict_target(self, table: Table, key: str) -> list[str]:
        """The unique key ON CONFLICT names: ``key``, plus the partition key on a partitioned table."""
        if table.name in self.partitioned:
            return [key, PARTITIONED[table.name].column]
        return [key]

    def _insert_ignore(self, session: Session, table: Table, rows: list[dict[str, Any]], key: str) -> int:
        """Insert rows, skipping those whose unique ``key`` exists; return how many were inserted."""
        if not rows:
            return 0
        target = self._conflict_target(table, key)
        if self.dialect == "postgresql" and table.name == "readings" and len(rows) >= 50:
            return self._copy_ignore(session, table, rows, key, target)
        if self.dialect == "sqlite" and self._columns(table)[0] <= rows[0].keys():
            return self._executemany_ignore(session, table, rows, target)
        dialect_insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=target).returning(table.c[key])
        return len(session.execute(stmt, rows).all())

    def _columns(self, table: Table) -> tuple[frozenset[str], list[str], list[Any]]:
        """The table's columns but ``id``, in order, with each one's bind processor (``None``: none)."""
        cached = self._bind_cache.get(table.name)
        if cached is None:
            cols = [c for c in table.columns if c.name != "id"]
            names = [c.name for c in cols]
            dialect = self.engine.dialect  # the dialect's own implementation of each type, as statements use
            cached = (frozenset(names), names, [c.type.dialect_impl(dialect).bind_processor(dialect) for c in cols])
            self._bind_cache[table.name] = cached
        return cached

    def _bound_rows(self, table: Table, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """``rows`` as driver parameters: each column's value through its type's bind processing."""
        _, names, procs = self._columns(table)
        get = operator.itemgetter(*names)
        processed = [(i, p) for i, p in enumerate(procs) if p is not None]
        try:
            if not processed:
                return [get(row) for row in rows]
            bound = []
            for row in rows:
                values = list(get(row))
                for i, p in processed:
                    values[i] = p(values[i])
                bound.append(tuple(values))
            return bound
        except (ValueError, TypeError) as err:  # a value its column type refuses: the row's fault
            raise StatementError(f"cannot bind a row of {table.name}: {err}", None, None, err) from err

    def _executemany_ignore(self, session: Session, table: Table, rows: list[dict[str, Any]],
                            target: list[str]) -> int:
        """SQLite bulk path: one prepared INSERT ... ON CONFLICT DO NOTHING, run by the driver for
        every row (building a statement per row in SQLAlchemy costs more than SQLite's insert).
        The driver sums the rows it inserted over the batch."""
        _, names, _ = self._columns(table)
        sql = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
               f"ON CONFLICT ({', '.join(target)}) DO NOTHING")
        return int(session.connection().exec_driver_sql(sql, self._bound_rows(table, rows)).rowcount)

    def _copy_ignore(self, session: Session, table: Table, rows: list[dict[str, Any]], key: str,
                     target: list[str]) -> int:
        """PostgreSQL bulk path: COPY into a temp table, then insert what is new.

        The stage empties itself at commit (``write`` stages one batch per table and transaction;
        rows staged twice would only meet their own conflict).
        """
        _, cols, _ = self._columns(table)
        conn = session.connection()
        conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS _stage_{table.name} "
                          f"(LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))
        dbapi = conn.connection.dbapi_connection
        values = self._bound_rows(table, rows)
        driver_error = self.engine.dialect.loaded_dbapi.Error
        statement = f"COPY _stage_{table.name} ({', '.join(cols)}) FROM STDIN"
        try:
            with dbapi.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
                for row in values:
                    copy.write_row(row)
        except driver_error as err:  # the driver's own error, as SQLAlchemy would wrap it
            raise DBAPIError.instance(statement, None, err, driver_error) from err
        col_list = ", ".join(cols)
        result = conn.execute(
            text(
                f"INSERT INTO {table.name} ({col_list}) SELECT {col_list} FROM _stage_{table.name} "
                f"ON CONFLICT ({', '.join(target)}) DO NOTHING RETURNING {key}"
            )
        )
        return len(result.all())

    def write(self, messages: Sequence[tuple[Message, datetime]], dead: Sequence[DeadLetterIn] = ()) -> WriteResult:
        """Store validated messages and dead letters in one transaction.

        Idempotent: a message whose ``msg_id`` is already stored is counted as a duplicate and
        skipped, so redelivery after a crash never stores anything twice.

        Raises:
            StoreError: the transaction failed; nothing of it was stored.
        """
        by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        last_seen: dict[str, datetime] = {}
        readings: list[tuple[ReadingBatch, datetime]] = []
        for m, received_at in messages:
            if isinstance(m, ReadingBatch):
                readings.append((m, received_at))
            else:
                table, row = _row_for(m, received_at)
                by_table.setdefault(table.name, (table, []))[1].append(row)
            last_seen[m.asset_id] = max(received_at, last_seen.get(m.asset_id, received_at))
        if readings:
            by_table["readings"] = (Reading.__table__, _reading_rows(readings))  # type: ignore[assignment]
        dead_rows = [_dead_row(d) for d in dead]
        try:
            with self._sessions.begin() as session:
                self._touch_assets(session, last_seen)
                inserted = sum(self._insert_ignore(session, t, rows, "msg_id") for t, rows in by_table.values())
                n_dead = self._insert_ignore(session, DeadLetter.__table__, dead_rows, "dedup_key")  # type: ignore[arg-type]
        except SQLAlchemyError as err:
            what = f"write of {len(messages)} messages and {len(dead)} dead letters"
            if _refused_data(err):
                raise StoreRejectedError(f"{what} refused by the database: {_first_line(err)}") from err
            raise StoreError(f"{what} failed: {_first_line(err)}") from err
        return WriteResult(inserted=inserted, duplicates=len(messages) - inserted, dead_lettered=n_dead)

    def _touch_assets(self, session: Session, last_seen: dict[str, datetime]) -> None:
        """Register assets seen for the first time and move their ``last_seen`` forward."""
        if not last_seen:
            return
        known = set(session.scalars(select(Asset.asset_id).where(Asset.asset_id.in_(last_seen))))
        # Rows are locked in asset-id order: two ingest workers updating the same assets in their
        # arrival orders would deadlock on PostgreSQL.
        ordered = sorted(last_seen.items())
        missing = [{"asset_id": a, "site": "", "line": "", "name": a, "kind": "", "criticality": 2, "config": {},
                    "last_seen": t} for a, t in ordered if a not in known]
        if missing:
            self._insert_ignore(session, Asset.__table__, missing, "asset_id")  # type: ignore[arg-type]
        seen = [{"a": a, "t": t} for a, t in ordered if a in known]
        if seen:  # one executemany of a Core UPDATE (the ORM's per-statement session sync is not needed)
            assets: Table = Asset.__table__  # type: ignore[assignment]
            session.connection().execute(
                update(assets).where(assets.c.asset_id == bindparam("a"),
                                     assets.c.last_seen.is_(None) | (assets.c.last_seen < bindparam("t")))
                .values(last_seen=bindparam("t")), seen)

    def upsert_assets(self, assets: Iterable[AssetConfig]) -> None:
        """Register or update the configured assets."""
        with self._sessions.begin() as session:
            for a in assets:
                session.merge(
                    Asset(asset_id=a.asset_id, site=a.site, line=a.line, name=a.name or a.asset_id,
                          kind=a.kind.value, criticality=a.criticality, config=a.model_dump(mode="json"))
                )

    def set_meta(self, key: str, value: str) -> None:
        """Record a fact about the stored data (``store_meta``), replacing the key's old value.

        Raises:
            StoreError: the key is empty or longer than 64 characters, or the database failed.
        """
        if not 0 < len(key) <= 64:
            raise StoreError(f"store meta key must be 1-64 characters, got {key!r}")
        try:
            with self._sessions.begin() as session:
                session.merge(StoreMeta(key=key, value=value))
        except SQLAlchemyError as err:
            raise StoreError(f"cannot record store meta {key!r}: {_first_line(err)}") from err

    def meta(self, key: str) -> str | None:
        """A fact recorded with :meth:`set_meta`, or ``None``.

        Raises:
            StoreError: the database failed.
        """
        try:
            with self._sessions() as s:
                row = s.get(StoreMeta, key)
                return None if row is None else row.value
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read store meta {key!r}: {_first_line(err)}") from err

    # ------------------------------------------------------------------ reads
    def count_readings(self, publisher: str | None = None) -> int:
        stmt = select(func.count()).select_from(Reading)
        if publisher is not None:
            stmt = stmt.where(Reading.publisher == publisher)
        with self._sessions() as s:
            return int(s.scalar(stmt) or 0)

    def count_duplicate_readings(self, publisher: str | None = None) -> int:
        """Readings stored more than once for the same publisher and sequence number."""
        distinct = select(Reading.publisher, Reading.seq).distinct()
        total = select(func.count()).select_from(Reading)
        if publisher is not None:
            distinct = distinct.where(Reading.publisher == publisher)
            total = total.where(Reading.publisher == publisher)
        with self._sessions() as s:
            n_distinct = int(s.scalar(select(func.count()).select_from(distinct.subquery())) or 0)
            return int(s.scalar(total) or 0) - n_distinct

    def stored_msg_ids(self, msg_ids: Sequence[str]) -> set[str]:
        with self._sessions() as s:
            found: set[str] = set()
            for i in range(0, len(msg_ids), 500):
                found.update(s.scalars(select(Reading.msg_id).where(Reading.msg_id.in_(msg_ids[i:i + 500]))))
            return found

    def reading_sequences(self, publisher: str) -> list[tuple[int, bool]]:
        """(seq, historical) of a publisher's readings in arrival order."""
        with self._sessions() as s:
            rows = s.execute(select(Reading.seq, Reading.historical).where(Reading.publisher == publisher).order_by(Reading.id))
            return [(int(r[0]), bool(r[1])) for r in rows]

    def count_dead_letters(self, since: datetime | None = None) -> int:
        stmt = select(func.count()).select_from(DeadLetter)
        if since is not None:
            stmt = stmt.where(DeadLetter.received_at >= since)
        with self._sessions() as s:
            return int(s.scalar(stmt) or 0)

    def dead_letters(self, limit: int = 100) -> list[DeadLetterIn]:
        with self._sessions() as s:
            rows = s.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit))
            return [DeadLetterIn(topic=r.topic, payload=r.payload, reason=r.reason, detail=r.detail,
                                 received_at=r.received_at) for r in rows]

    def readings(self, asset_id: str, channel: str | None = None, *, limit: int = 100,
                 since: datetime | None = None) -> list[ReadingRecord]:
        """Most recent readings of an asset (newest first)."""
        stmt = select(Reading).where(Reading.asset_id == asset_id)
        if channel is not None:
            stmt = stmt.where(Reading.channel == channel)
        if since is not None:
            stmt = stmt.where(Reading.start >= since)
        stmt = stmt.order_by(Reading.start.desc(), Reading.id.desc()).limit(limit)
        with self._sessions() as s:
            return [
                ReadingRecord(
                    msg_id=r.msg_id, publisher=r.publisher, seq=r.seq, asset_id=r.asset_id, channel=r.channel,
                    quantity=r.quantity, unit=r.unit, sample_rate_hz=r.sample_rate_hz, start=r.start,
                    values=np.frombuffer(r.samples, dtype="<f4").copy(), quality=r.quality,
                    historical=r.historical, received_at=r.received_at,
                )
                for r in s.scalars(stmt)
            ]

    def asset_ids(self) -> list[str]:
        with self._sessions() as s:
            return list(s.scalars(select(Asset.asset_id).order_by(Asset.asset_id)))
