"""Output helpers shared by the CLI groups: one JSON line for machines, aligned text for people."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer

__all__ = ["emit", "fail"]


def fail(err: Exception) -> NoReturn:
    """Print ``error: ...`` to stderr and exit 1."""
    typer.echo(f"error: {err}", err=True)
    raise typer.Exit(code=1)


def emit(data: dict[str, Any], as_json: bool, *, width: int = 24) -> None:
    """Print ``data`` as one JSON line, or one ``key: value`` line per item."""
    if as_json:
        typer.echo(json.dumps(data, default=float))
    else:
        for key, value in data.items():
            typer.echo(f"{key:>{width}}: {value}")
