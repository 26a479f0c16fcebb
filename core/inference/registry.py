"""A file-system model registry: versioned ONNX artefacts with model cards.

Layout under ``root``::

    <root>/<model_name>/<version>/model.onnx
    <root>/<model_name>/<version>/card.json
    <root>/<model_name>/promoted.json     {"version": "v2", "history": ["v1", "v2"]}

Versions are ``v1``, ``v2``, ... in registration order. Promotion writes a small pointer file
(no symlinks, so the registry survives copying, zipping and Windows). ``rollback`` re-promotes
the previously promoted version. Only the standard library is used: the edge agent reads the
registry without torch.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ModelError
from core.inference.card import CARD_SCHEMA_VERSION, ModelCard, read_card

__all__ = ["SHIPPED_DIR", "ModelRegistry", "ModelVersion", "git_commit", "load_promoted"]

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
POINTER_FILE = "promoted.json"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VERSION_RE = re.compile(r"^v(\d+)$")
#: The registry of trained models that ship with GenEdge: package data of ``models``
#: (``models/shipped``), found beside this package rather than through ``models``, which is torch
#: code the torch-free layer does not import.
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "models" / "shipped"


@dataclass(frozen=True)
class ModelVersion:
    """One registered artefact.

    Attributes:
        name: model name (e.g. ``cmapss-FD001``).
        version: ``v<N>``.
        path: directory holding ``model.onnx`` and ``card.json``.
        card: the model card, typed.
        promoted: whether this is the promoted version.
    """

    name: str
    version: str
    path: Path
    card: ModelCard
    promoted: bool = False

    @property
    def model_path(self) -> Path:
        """The ONNX file."""
        return self.path / MODEL_FILE


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit of ``cwd`` (``None`` outside a repository or without commits)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic: readers never see half a pointer


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ModelRegistry:
    """Versioned model artefacts in a directory.

    Args:
        root: registry directory (created on first registration).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- names ---------------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> str:
        if not _NAME_RE.match(name):
            raise ModelError(f"model name must match {_NAME_RE.pattern} (letters, digits, '_', '.', '-'), got {name!r}")
        return name

    def _versions(self, name: str) -> list[str]:
        d = self.root / self._check_name(name)
        if not d.is_dir():
            return []
        found = [(int(m.group(1)), p.name) for p in d.iterdir() if p.is_dir() and (m := _VERSION_RE.match(p.name))]
        return [v for _, v in sorted(found)]

    def names(self) -> list[str]:
        """Names of all registered models."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self._versions(p.name))

    # -- write ---------------------------------------------------------------------------------
    def register(
        self, name: str, model_path: str | Path, card: ModelCard | dict[str, Any], *, promote: bool = False
    ) -> ModelVersion:
        """Copy an ONNX file into a new version with its card.

        Args:
            name: model name.
            model_path: ONNX file to copy.
            card: model card (data hash, config, seed, metrics, ...); ``name``, ``version``,
                ``schema_version``, ``created_at``, ``git_commit`` (if absent) and ``model_sha256``
                are added.
            promote: promote the new version right away.

        Returns:
            The new version.

        Raises:
            ModelError: the file is missing or the card is not a valid :class:`ModelCard`; nothing
                is written then.
        """
        src = Path(model_path)
        if not src.is_file():
            raise ModelError(f"model file not found: expected {src}")
        self._check_name(name)
        draft = card.to_dict() if isinstance(card, ModelCard) else dict(card)
        ModelCard.from_dict(draft, source=f"card of {name!r}")  # refuse a bad card before writing anything
        existing = self._versions(name)
        number = 1 + (int(existing[-1][1:]) if existing else 0)
        version = f"v{number}"
        vdir = self.root / name / version
        vdir.mkdir(parents=True, exist_ok=False)
        shutil.copyfile(src, vdir / MODEL_FILE)
        full = dict(draft)
        full.update(
            {
                "schema_version": CARD_SCHEMA_VERSION,
                "name": name,
                "version": version,
                "created_at": full.get("created_at") or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "model_file": MODEL_FILE,
                "model_sha256": _sha256(vdir / MODEL_FILE),
                "model_size_bytes": (vdir / MODEL_FILE).stat().st_size,
            }
        )
        full.setdefault("git_commit", git_commit())
        _write_json(vdir / CARD_FILE, full)
        if promote:
            self.promote(name, version)
        return self.get(name, version)

    def promote(self, name: str, version: str) -> ModelVersion:
        """Make ``version`` the one the edge agent loads."""
        if version not in self._versions(name):
            raise ModelError(f"unknown version {version!r} of {name!r}; registered: {self._versions(name)}")
        pointer = self._pointer(name)
        history = [v for v in pointer.get("history", []) if v in self._versions(name)]
        if not history or history[-1] != version:
            history.append(version)
        _write_json(self.root / name / POINTER_FILE, {"version": version, "history": history})
        return self.get(name, version)

    def rollback(self, name: str) -> ModelVersion:
        """Re-promote the version promoted before the current one.

        Raises:
            ModelError: if there is no earlier promotion to go back to.
        """
        history = self.history(name)
        if len(history) < 2:
            raise ModelError(f"nothing to roll back to for {name!r}: promotion history {history}")
        history = history[:-1]
        _write_json(self.root / name / POINTER_FILE, {"version": history[-1], "history": history})
        return self.get(name, history[-1])

    # -- read ----------------------------------------------------------------------------------
    def _pointer(self, name: str) -> dict[str, Any]:
        path = self.root / self._check_name(name) / POINTER_FILE
        if not path.is_file():
            return {}
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ModelError(f"unreadable promotion pointer {path}: {err}") from err
        return data

    def get(self, name: str, version: str) -> ModelVersion:
        """One version with its card."""
        vdir = self.root / self._check_name(name) / version
        card_path = vdir / CARD_FILE
        if not card_path.is_file():
            raise ModelError(f"no card for {name!r} {version!r}: expected {card_path}")
        return ModelVersion(name, version, vdir, read_card(card_path), promoted=self._pointer(name).get("version") == version)

    def list(self, name: str | None = None) -> list[ModelVersion]:
        """All versions (of one model, or of every model), oldest first."""
        names = [name] if name else self.names()
        return [self.get(n, v) for n in names for v in self._versions(n)]

    def history(self, name: str) -> builtins.list[str]:
        """Promotion history of ``name``, oldest first; the last entry is the promoted version.

        Versions no longer registered are left out. Empty if nothing was ever promoted.
        """
        registered = set(self._versions(name))
        return [str(v) for v in self._pointer(name).get("history", []) if v in registered]

    def can_rollback(self, name: str) -> bool:
        """Whether :meth:`rollback` has an earlier promotion to go back to."""
        return len(self.history(name)) >= 2

    def rollback_target(self, name: str) -> str | None:
        """The version :meth:`rollback` would promote, ``None`` if there is none."""
        history = self.history(name)
        return history[-2] if len(history) >= 2 else None

    def promoted(self, name: str) -> ModelVersion:
        """The promoted version.

        Raises:
            ModelError: if nothing is promoted.
        """
        version = self._pointer(name).get("version")
        if not version:
            raise ModelError(f"no promoted version of {name!r} in {self.root}")
        return self.get(name, version)


def load_promoted(registry_dir: str | Path, name: str) -> tuple[Path, ModelCard]:
    """Path of the promoted ONNX model of ``name`` and its card."""
    mv = ModelRegistry(registry_dir).promoted(name)
    return mv.model_path, mv.card
