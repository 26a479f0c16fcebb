"""Persistent store: SQLAlchemy models, Alembic migrations and the repository API."""

from ingest.store._engine import make_engine, migrate
from ingest.store.repo import DeadLetterIn, ReadingRecord, Store, WriteResult

__all__ = ["DeadLetterIn", "ReadingRecord", "Store", "WriteResult", "make_engine", "migrate"]
