"""The maintenance knowledge base: Markdown procedures in ``prescribe/knowledge/``.

Each file starts with a small front matter block::

    ---
    id: kb:outer_race
    title: Rolling bearing outer race defect
    faults: outer_race
    signals: peak:bpfo, zone:trend
    key: one sentence put into the prompt
    ---

Retrieval is by fault first (the procedure written for it), then by evidence (procedures
whose signals were seen, e.g. ``temp:trend`` rising brings lubrication and overheating).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from prescribe.schema import Evidence

__all__ = ["KB_DIR", "Procedure", "load_knowledge", "retrieve"]

KB_DIR = Path(__file__).resolve().parent / "knowledge"
_FIELDS = ("id", "title", "faults", "signals", "key")


@dataclass(frozen=True)
class Procedure:
    """One procedure of the knowledge base."""

    id: str
    title: str
    faults: tuple[str, ...]
    signals: tuple[str, ...]
    key: str
    body: str
    path: Path


def _parse(path: Path) -> Procedure:
    text = path.read_text(encoding="utf-8")
    parts = text.split("---", 2)
    if len(parts) != 3 or parts[0].strip():
        raise ConfigError(f"knowledge file {path.name}: expected a '---' front matter block at the top")
    meta: dict[str, str] = {}
    for line in parts[1].strip().splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(f"knowledge file {path.name}: front matter line {line!r} is not 'name: value'")
        meta[name.strip()] = value.strip()
    missing = [f for f in _FIELDS if not meta.get(f)]
    if missing:
        raise ConfigError(f"knowledge file {path.name}: front matter lacks {missing}")
    if meta["id"] != f"kb:{path.stem}":
        raise ConfigError(f"knowledge file {path.name}: id must be 'kb:{path.stem}', got {meta['id']!r}")

    def split(v: str) -> tuple[str, ...]:
        return tuple(s.strip() for s in v.split(",") if s.strip())

    return Procedure(id=meta["id"], title=meta["title"], faults=split(meta["faults"]), signals=split(meta["signals"]),
                     key=meta["key"], body=parts[2].strip(), path=path)


@lru_cache(maxsize=4)
def load_knowledge(directory: Path = KB_DIR) -> dict[str, Procedure]:
    """All procedures of ``directory`` by id.

    Raises:
        ConfigError: a file's front matter is malformed.
    """
    return {p.id: p for p in (_parse(f) for f in sorted(directory.glob("*.md")))}


def _signals_seen(ev: Evidence) -> set[str]:
    seen = {f"peak:{p.defect}" for p in ev.peaks}
    if ev.temperature is not None and ((ev.temperature.slope_c_per_h or 0.0) > 0.1 or ev.temperature.latest_c >= 70):
        seen.add("temp:trend")
    if ev.temperature is not None and ev.temperature.latest_c >= 80:
        seen.add("temp:latest")
    return seen


def retrieve(ev: Evidence, fault: str | None, *, limit: int = 2, directory: Path = KB_DIR) -> list[Procedure]:
    """The procedures for ``fault`` and the evidence, best first, at most ``limit``.

    The fault's own procedure comes first; the rest are ranked by how many of their signals
    were seen (a peak, a rising temperature), ties broken by id.
    """
    kb = load_knowledge(directory)
    chosen = [p for p in kb.values() if fault is not None and fault in p.faults]
    seen = _signals_seen(ev)
    scored = sorted(((len(seen & set(p.signals)), p.id) for p in kb.values() if p not in chosen), reverse=True)
    # A rising temperature calls for the lubrication check before the generic procedures.
    extra = [kb[pid] for score, pid in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]
    if "temp:trend" in seen and "kb:lubrication" in kb and kb["kb:lubrication"] not in chosen:
        extra = [kb["kb:lubrication"], *[p for p in extra if p.id != "kb:lubrication"]]
    return (chosen + extra)[:limit]
