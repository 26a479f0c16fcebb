"""``genedge ingest maintain``: downsample the features and apply the store's retention once.

    genedge ingest maintain [--config FILE] [--db URL]

Mounted on the ``ingest`` group by :mod:`genedge.cli`. Run it from cron or a systemd timer, one
at a time; it prints one JSON line with what it aggregated and deleted.
"""

from __future__ import annotations

import json

import typer

from core.errors import GenEdgeError
from genedge._cli_output import fail
from genedge._common import ConfigOpt, DbOpt, load_settings

__all__ = ["ingest_maintain"]


def ingest_maintain(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Fold the feature windows into hourly/daily aggregates, then delete rows past their retention."""
    # the store (SQLAlchemy, Alembic) loads only when the command runs, so `genedge --help` stays quick
    from ingest.store import Store
    from ingest.store.retention import maintain

    try:
        settings = load_settings(config, db)
        with Store(settings.store.url.get_secret_value()) as store:
            result = maintain(store, settings.store.retention)
    except GenEdgeError as err:
        fail(err)
    typer.echo(json.dumps(result))
