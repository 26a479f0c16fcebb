"""Benchmark part files (one JSON file per run), read from their directory or from its archive.

A finished benchmark's parts leave the repository's hot path: ``results/<name>_parts/`` is packed
into one ``results/archive/<name>_parts.tar.xz`` (``python -m benchmarks._archive pack DIR``). Every
reader goes through :func:`read_parts`, which takes the tarball and the directory together (a file
in the directory wins), so a merged summary reproduces from the archive alone and new runs can be
added beside it in the directory; :func:`is_archived` tells a resumable runner that a part is done.
"""

from __future__ import annotations

import argparse
import atexit
import fnmatch
import io
import json
import shutil
import tarfile
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.inference.registry import CARD_FILE, MODEL_FILE, SHIPPED_DIR, ModelRegistry, ModelVersion

RESULTS = Path(__file__).resolve().parent / "results"
ARCHIVE = RESULTS / "archive"
#: the ONNX files of earlier shipped versions that a committed result needs (rul_crossfit.py: FD002/FD004 v8)
SHIPPED_HISTORY = ARCHIVE / "shipped_history.tar.xz"
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
    """Where the tarball of ``parts_dir`` lives: ``<its parent>/archive/<its name>.tar.xz``."""
    parts = Path(parts_dir)
    return parts.parent / "archive" / f"{parts.name}.tar.xz"


@cache
def _archived(tarball: Path, mtime_ns: int) -> dict[str, bytes]:
    """Every member of ``tarball`` by file name (read once per file version)."""
    del mtime_ns  # part of the cache key only: a re-packed archive is read again
    with tarfile.open(tarball, "r:xz") as tar:
        return {Path(m.name).name: f.read() for m in tar.getmembers() if m.isfile() and (f := tar.extractfile(m)) is not None}


def _archive_members(parts_dir: str | Path) -> dict[str, bytes]:
    tarball = archive_of(parts_dir)
    return _archived(tarball.resolve(), tarball.stat().st_mtime_ns) if tarball.is_file() else {}


def read_parts(parts_dir: str | Path, pattern: str = "*.json") -> list[tuple[str, str]]:
    """``(file name, text)`` of every part matching ``pattern``, sorted by name.

    Reads the archive of ``parts_dir`` (if there is one) and the directory (if it exists); a file
    in the directory replaces the archived one of the same name.
    """
    found = {name: data.decode("utf-8") for name, data in _archive_members(parts_dir).items()}
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

    An archived version is put together in a temporary registry (its card, its ONNX file out of
    :data:`SHIPPED_HISTORY`) that lives as long as the process.

    Raises:
        ModelError: the version is in neither place, or only its card was kept.
    """
    registry = ModelRegistry(registry_dir)
    if (Path(registry_dir) / name / version / MODEL_FILE).is_file():
        return registry.get(name, version)
    card = card_path(registry_dir, name, version)
    member = f"{name}/{version}/{MODEL_FILE}"
    with tarfile.open(SHIPPED_HISTORY, "r:xz") as tar:
        try:
            info = tar.getmember(member)
        except KeyError:
            raise ModelError(f"{name} {version}: only its card is archived ({card}); no {member} in {SHIPPED_HISTORY}") from None
        tmp = Path(tempfile.mkdtemp(prefix="genedge-history-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        tar.extract(info, tmp, filter="data")
    shutil.copyfile(card, tmp / name / version / CARD_FILE)
    return ModelRegistry(tmp).get(name, version)


def pack(parts_dir: str | Path, *, remove: bool = False) -> Path:
    """Pack every ``*.json`` of ``parts_dir`` (with what its archive already holds) into its archive.

    Deterministic (sorted names, no owners or times), so re-packing the same files gives the same
    bytes. ``remove`` deletes the directory afterwards.
    """
    parts = Path(parts_dir)
    tarball = archive_of(parts)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    files = read_parts(parts)
    tmp = tarball.with_suffix(".tmp")
    with tarfile.open(tmp, "w:xz", preset=9) as tar:
        for name, text in files:
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{parts.name}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(tarball)
    if remove:
        shutil.rmtree(parts)
    return tarball


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
