"""Shared fixtures: real services on loopback, dataset location, markers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from genedge.localservices import Mosquitto, mosquitto, postgres
from tests._factories import unavailable

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Real datasets: ``GENEDGE_TEST_DATA_DIR`` or ``../shared/datasets`` beside the repo."""
    return Path(os.environ.get("GENEDGE_TEST_DATA_DIR", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def datasets() -> Path:
    d = data_dir()
    if not d.is_dir():
        unavailable(f"real datasets not found at {d}; set GENEDGE_TEST_DATA_DIR")
    return d


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    """A fresh real Mosquitto per test (tests may stop and restart it)."""
    with mosquitto() as b:
        yield b


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """One real PostgreSQL server for the session; tests use their own databases in it."""
    with postgres() as url:
        yield url


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import uuid

    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield pg_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
