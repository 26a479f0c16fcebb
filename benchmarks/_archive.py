"""Benchmark part files (one JSON file per run), read from their directory or from its archive.

A finished benchmark's parts leave the repository's hot path: ``results/<name>_parts/`` is packed
into one text file, ``results/archive/<name>_parts.jsonl``, a line ``{"name": ..., "text": ...}``
per part (``python -m benchmarks._archive pack DIR``). Every reader goes through
:func:`read_parts`, which takes the archive and the directory together (a file
in the directory wins), so a merged summary reproduces from the archive alone and new runs can be
added beside it in the directory; :func:`is_archived` tells a resumable runner that a part is done.
"""

from __future__ import annotations

import argparse
import atexit
import fnmatch
import json
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.inference.registry import CARD_FILE, MODEL_FILE, SHIPPED_DIR, ModelRegistry, ModelVersion

RESULTS = Path(__file__).resolve().parent / "results"
ARCHIVE = RESULTS / "archive"
#: the ONNX files of earlier shipped versions that a committed result needs (rul_crossfit.py: FD002/FD004 v8),
#: as ``<name>/<version>/model.onnx``
SHIPPED_HISTORY = ARCHIVE / "shipped_history"
#: registry directory -> where the cards of its pruned versions are kept
ARCHIVED_CARDS = {SHIPPED_DIR: ARCHIVE / "shipped_cards", RESULTS / "rul_baselines": ARCHIVE / "rul_baselines_cards"}

__all__ = [
    "ARCHIVE",
    "SHIPPED_HISTORY",
    "archive_of",
    "card_path",
    "is_archived",
    "load_parts",
    "pack",
    "read_parts",
    "registered_version",
]


def archive_of(parts_dir: str | Path) -> Path:
    """Where the archive of ``parts_dir`` lives: ``<its parent>/archive/<its name>.jsonl``."""
    parts = Path(parts_dir)
    return parts.parent / "archive" / f"{parts.name}.jsonl"


@cache
def _archived(archive: Path, mtime_ns: int) -> dict[str, str]:
    """Every part of ``archive`` by file name (read once per file version)."""
    del mtime_ns  # part of the cache key only: a re-packed archive is read again
    lines = archive.read_text(encoding="utf-8").splitlines()
    return {entry["name"]: entry["text"] for entry in map(json.loads, lines) if entry}


def _archive_members(parts_dir: str | Path) -> dict[str, str]:
    archive = archive_of(parts_dir)
    return _archived(archive.resolve(), archive.stat().st_mtime_ns) if archive.is_file() else {}


def read_parts(parts_dir: str | Path, pattern: str = "*.json") -> list[tuple[str, str]]:
    """``(file name, text)`` of every part matching ``pattern``, sorted by name.

    Reads the archive of ``parts_dir`` (if there is one) and the directory (if it exists); a file
    in the directory replaces the archived one of the same name.
    """
    found = dict(_archive_members(parts_dir))
    parts = Path(parts_dir)
    if parts.is_dir():
        found.update({p.name: p.read_text(encoding="utf-8") for p in parts.glob(pattern)})
    return sorted((name, text) for name, text in found.items() if fnmatch.fnmatch(name, pattern))


def load_parts(parts_dir: str | Path, pattern: str = "*.json") -> list[dict[str, Any]]:
    """The parsed parts of :func:`read_parts`, in file-name order."""
    return [json.loads(text) for _, text in read_parts(parts_dir, pattern)]


def is_archived(part: str | Path) -> bool:
    """Whether ``part`` (``<parts_dir>/<name>.json``) is in its directory's archive."""
    path = Path(part)
    return path.name in _archive_members(path.parent)


def card_path(registry_dir: str | Path, name: str, version: str) -> Path:
    """``card.json`` of ``name`` ``version``: in the registry, else its archived card.

    Raises:
        ModelError: neither the registry nor the archive has the card.
    """
    root = Path(registry_dir)
    path = root / name / version / CARD_FILE
    if path.is_file():
        return path
    cards = ARCHIVED_CARDS.get(root.resolve())
    archived = cards / name / version / CARD_FILE if cards is not None else None
    if archived is not None and archived.is_file():
        return archived
    raise ModelError(f"no card for {name!r} {version!r}: expected {path}" + (f" or {archived}" if archived else ""))


def registered_version(registry_dir: str | Path, name: str, version: str) -> ModelVersion:
    """A version with its card and ONNX file: from the registry, else rebuilt from the archive.

    An archived version is put together in a temporary registry (its card, its ONNX file from
    :data:`SHIPPED_HISTORY`) that lives as long as the process.

    Raises:
        ModelError: the version is in neither place, or only its card was kept.
    """
    registry = ModelRegistry(registry_dir)
    if (Path(registry_dir) / name / version / MODEL_FILE).is_file():
        return registry.get(name, version)
    card = card_path(registry_dir, name, version)
    model = SHIPPED_HISTORY / name / version / MODEL_FILE
    if not model.is_file():
        raise ModelError(f"{name} {version}: only its card is archived ({card}); no {model}")
    tmp = Path(tempfile.mkdtemp(prefix="genedge-history-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    (tmp / name / version).mkdir(parents=True)
    shutil.copyfile(model, tmp / name / version / MODEL_FILE)
    shutil.copyfile(card, tmp / name / version / CARD_FILE)
    return ModelRegistry(tmp).get(name, version)


def pack(parts_dir: str | Path, *, remove: bool = False) -> Path:
    """Pack every ``*.json`` of ``parts_dir`` (with what its archive already holds) into its archive.

    Deterministic (sorted names), so re-packing the same files gives the same bytes. ``remove``
    deletes the directory afterwards.
    """
    parts = Path(parts_dir)
    archive = archive_of(parts)
    archive.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"name": name, "text": text}, sort_keys=True) + "\n" for name, text in read_parts(parts)]
    tmp = archive.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(archive)
    if remove:
        shutil.rmtree(parts)
    return archive


def main(argv: list[str] | None = None) -> int:
    """``pack DIR [--remove]``: pack a parts directory; ``list DIR``: the parts a reader sees."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("action", choices=["pack", "list"])
    p.add_argument("parts_dir", type=Path)
    p.add_argument("--remove", action="store_true", help="delete the directory once packed")
    args = p.parse_args(argv)
    if args.action == "pack":
        print(pack(args.parts_dir, remove=args.remove))
    else:
        for name, _ in read_parts(args.parts_dir):
            print(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
