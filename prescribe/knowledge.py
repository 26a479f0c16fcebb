"""The failure-mode knowledge base: one Markdown procedure per fault in ``prescribe/knowledge/``.

Each file starts with a front matter block of ``name: value`` lines, then ``##`` sections::

    ---
    id: kb:outer_race
    title: Rolling bearing outer race defect
    faults: outer_race
    signals: peak:bpfo, temp:trend
    key: one sentence put into the prompt
    confirmed_by: peak:bpfo
    replace: bearing
    parts: bearing, grease, seal?
    checks: alignment
    duration_h: 4
    crew: 1 mechanic + 1 electrician
    ---
    ## Symptom
    How the fault shows in the measurements (one paragraph).
    ## Confirm
    How to confirm it on the isolated machine (one paragraph).
    ## Tasks
    - Repair steps, one sentence each; {seal} stands for the BOM part of that role.
    ## Safety
    - Safety steps beyond lockout/tagout.
    ## Verification
    - Checks after the repair.

``confirmed_by`` names the evidence that, at strong strength, already confirms the fault (the
confirm step is then left out); ``replace`` the part role whose replacement is the repair;
``parts`` the part roles matched against the asset's bill of materials (a trailing ``?`` marks a
role used only when the asset has it); ``checks`` the alignment or balance check the fault calls
for. A malformed file raises :class:`core.errors.ConfigError` naming the file and the field.

Retrieval is by fault first (the procedure written for it), then by evidence (procedures
whose signals were seen, e.g. ``temp:trend`` rising brings lubrication and overheating).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import ConfigError
from prescribe.schema import TEXT_CHARS, Evidence

__all__ = ["CHECKS", "GENERAL", "KB_DIR", "PART_ROLES", "Procedure", "load_knowledge", "procedure_for", "retrieve"]

KB_DIR = Path(__file__).resolve().parent / "knowledge"
#: The procedure used when the fault is unknown.
GENERAL = "kb:general"
#: Part roles a procedure may name, with the words that find them in a bill of materials (the
#: bearing is found by its designation's number instead, see ``prescribe._skeleton``).
PART_ROLES: dict[str, tuple[str, ...]] = {
    "bearing": ("bearing",), "seal": ("seal",), "grease": ("grease",), "impeller": ("impeller",),
    "coupling": ("coupling",), "belt": ("belt",), "shim": ("shim",), "bolt": ("bolt",),
    "balance_weight": ("balance weight",), "strainer": ("strainer",), "gasket": ("gasket", "o-ring"),
}
#: Checks after the repair a procedure may call for.
CHECKS = ("alignment", "balance")
_FIELDS = ("id", "title", "faults", "key", "duration_h", "crew")
_OPTIONAL = ("signals", "confirmed_by", "replace", "parts", "checks")
_SECTIONS = ("symptom", "confirm", "tasks", "safety", "verification")
_LIST_SECTIONS = ("tasks", "safety", "verification")
_CREW = re.compile(r"^\d+ [a-z][a-z ]*[a-z]( \+ \d+ [a-z][a-z ]*[a-z])*$")
_SIGNAL = re.compile(r"^[a-z_]{1,24}:[a-z_]{1,24}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_LINE = re.compile(f"^[A-Z]{TEXT_CHARS}*[A-Za-z0-9)%]\\.$")


@dataclass(frozen=True)
class Procedure:
    """One failure mode of the knowledge base and what to do about it.

    Attributes:
        id: ``kb:<file stem>``.
        title: the failure mode.
        faults: fault classes it is written for.
        signals: evidence ids that bring it into a prompt (``peak:bpfo``, ``temp:trend``).
        key: one sentence for the prompt.
        body: the Markdown after the front matter.
        path: the file.
        symptom: how the fault shows in the measurements.
        confirm: how to confirm it on the isolated machine.
        confirmed_by: evidence ids that, at strong strength, already confirm it.
        replace: the part role whose replacement is the repair (``None``: no part replaced).
        parts: part roles needed, matched against the asset's bill of materials.
        optional_parts: part roles used only when the asset has them.
        checks: ``alignment`` and/or ``balance`` checks after the repair.
        tasks: repair steps (``{role}`` stands for the BOM part of that role).
        safety: safety steps beyond lockout/tagout.
        verification: checks after the repair.
        duration_h: estimated duration of the work in hours.
        crew: who does it, e.g. ``1 mechanic + 1 electrician``.
    """

    id: str
    title: str
    faults: tuple[str, ...]
    signals: tuple[str, ...]
    key: str
    body: str
    path: Path
    symptom: str = ""
    confirm: str = ""
    confirmed_by: tuple[str, ...] = ()
    replace: str | None = None
    parts: tuple[str, ...] = ()
    optional_parts: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    safety: tuple[str, ...] = ()
    verification: tuple[str, ...] = ()
    duration_h: float = 1.0
    crew: str = "1 mechanic"


def _split(v: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in v.split(",") if s.strip())


def _front_matter(path: Path, text: str) -> tuple[dict[str, str], str]:
    parts = text.split("---", 2)
    if len(parts) != 3 or parts[0].strip():
        raise ConfigError(f"knowledge file {path.name}: expected a '---' front matter block at the top")
    meta: dict[str, str] = {}
    for line in parts[1].strip().splitlines():
        name, sep, value = line.partition(":")
        if not sep:
            raise ConfigError(f"knowledge file {path.name}: front matter line {line!r} is not 'name: value'")
        name = name.strip()
        if name not in _FIELDS + _OPTIONAL:
            raise ConfigError(f"knowledge file {path.name}: unknown front matter field {name!r}; "
                              f"expected one of {list(_FIELDS + _OPTIONAL)}")
        if name in meta:
            raise ConfigError(f"knowledge file {path.name}: front matter field {name!r} given twice")
        meta[name] = value.strip()
    missing = [f for f in _FIELDS if not meta.get(f)]
    if missing:
        raise ConfigError(f"knowledge file {path.name}: front matter lacks {missing}")
    if meta["id"] != f"kb:{path.stem}":
        raise ConfigError(f"knowledge file {path.name}: id must be 'kb:{path.stem}', got {meta['id']!r}")
    return meta, parts[2].strip()


def _sections(path: Path, body: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in body.splitlines():
        if line.startswith("## "):
            current = line[3:].strip().lower()
            if current not in _SECTIONS:
                raise ConfigError(f"knowledge file {path.name}: unknown section {line!r}; expected {list(_SECTIONS)}")
            if current in found:
                raise ConfigError(f"knowledge file {path.name}: section {current!r} given twice")
            found[current] = []
        elif current is not None:
            found[current].append(line)
    missing = [s for s in _SECTIONS if s not in found]
    if missing:
        raise ConfigError(f"knowledge file {path.name}: lacks the sections {missing} ('## Symptom' ...)")
    return {k: "\n".join(v).strip() for k, v in found.items()}


def _items(path: Path, section: str, text: str) -> tuple[str, ...]:
    items = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith("- "):
            raise ConfigError(f"knowledge file {path.name}: section {section!r} line {line!r} is not a '- ' list item")
        items.append(line[2:].strip())
    return tuple(items)


def _sentence(path: Path, field: str, text: str) -> str:
    flat = " ".join(text.split())
    if not _LINE.match(_PLACEHOLDER.sub("X", flat)):
        raise ConfigError(f"knowledge file {path.name}: {field} {flat[:80]!r} must be one or more sentences of plain "
                          "text (letters, digits, ,.;:()/+%'-) starting with a capital and ending with a full stop")
    return flat


def _parse(path: Path) -> Procedure:
    meta, body = _front_matter(path, path.read_text(encoding="utf-8"))
    name = path.name
    sections = _sections(path, body)
    try:
        duration = float(meta["duration_h"])
    except ValueError:
        raise ConfigError(f"knowledge file {name}: duration_h must be a number of hours, got {meta['duration_h']!r}") from None
    if not 0 < duration <= 240:
        raise ConfigError(f"knowledge file {name}: duration_h must be in (0, 240] h, got {duration}")
    if not _CREW.match(meta["crew"]):
        raise ConfigError(f"knowledge file {name}: crew must read like '1 mechanic + 1 electrician', got {meta['crew']!r}")
    roles = _split(meta.get("parts", ""))
    required = tuple(r for r in roles if not r.endswith("?"))
    optional = tuple(r[:-1] for r in roles if r.endswith("?"))
    unknown = [r for r in required + optional if r not in PART_ROLES]
    if unknown:
        raise ConfigError(f"knowledge file {name}: unknown part roles {unknown}; known {sorted(PART_ROLES)}")
    replace = meta.get("replace") or None
    if replace is not None and replace not in required:
        raise ConfigError(f"knowledge file {name}: replace {replace!r} must be one of its required parts {list(required)}")
    checks = _split(meta.get("checks", ""))
    if any(c not in CHECKS for c in checks):
        raise ConfigError(f"knowledge file {name}: checks must be among {list(CHECKS)}, got {list(checks)}")
    signals, confirmed_by = _split(meta.get("signals", "")), _split(meta.get("confirmed_by", ""))
    bad = [s for s in signals + confirmed_by if not _SIGNAL.match(s)]
    if bad:
        raise ConfigError(f"knowledge file {name}: signals must be evidence ids like 'peak:bpfo', got {bad}")
    lists = {s: tuple(_sentence(path, s, t) for t in _items(path, s, sections[s])) for s in _LIST_SECTIONS}
    if not lists["verification"] or not (lists["tasks"] or replace):
        raise ConfigError(f"knowledge file {name}: needs at least one verification item and a task or a replace part")
    for section, items in lists.items():
        for item in items:
            for role in _PLACEHOLDER.findall(item):
                if role not in required + optional:
                    raise ConfigError(f"knowledge file {name}: {section} item {item[:60]!r} names part {{{role}}} "
                                      f"that is not among its parts {list(required + optional)}")
    return Procedure(id=meta["id"], title=meta["title"], faults=_split(meta["faults"]), signals=signals,
                     key=meta["key"], body=body, path=path,
                     symptom=_sentence(path, "symptom", sections["symptom"]),
                     confirm=_sentence(path, "confirm", sections["confirm"]),
                     confirmed_by=confirmed_by, replace=replace, parts=required, optional_parts=optional,
                     checks=checks, tasks=lists["tasks"], safety=lists["safety"], verification=lists["verification"],
                     duration_h=duration, crew=meta["crew"])


@lru_cache(maxsize=4)
def load_knowledge(directory: Path = KB_DIR) -> dict[str, Procedure]:
    """All procedures of ``directory`` by id.

    Raises:
        ConfigError: a file is malformed (front matter, sections, part roles, duration, crew).
    """
    return {p.id: p for p in (_parse(f) for f in sorted(directory.glob("*.md")))}


def procedure_for(fault: str | None, directory: Path = KB_DIR) -> Procedure:
    """The procedure written for ``fault``; the general one when the fault is unknown.

    Raises:
        ConfigError: the knowledge base has neither (the general procedure is missing).
    """
    kb = load_knowledge(directory)
    for p in kb.values():
        if fault is not None and fault in p.faults:
            return p
    if GENERAL not in kb:
        raise ConfigError(f"knowledge base {directory} has no procedure for {fault!r} and no {GENERAL}")
    return kb[GENERAL]


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
