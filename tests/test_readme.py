"""The README stays a front door: short, with working links and real ``genedge`` commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from genedge.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 150

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_INLINE = re.compile(r"`([^`\n]+)`")
_INVOCATION = re.compile(r"(?:^|[\s/])genedge((?:[ \t]+[a-z][a-z0-9_-]*)+)")


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _relative_links(text: str) -> list[str]:
    targets = (m.group(1) for m in _LINK.finditer(text))
    return sorted({t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")})


def _invocations(text: str) -> list[tuple[str, ...]]:
    """Every ``genedge <group> <command>`` shown in a code block or code span, as its words."""
    fenced = [m.group(1) for m in _FENCE.finditer(text)]
    prose = _FENCE.sub("", text)
    snippets = fenced + [m.group(1) for m in _INLINE.finditer(prose)]
    found = set()
    for snippet in snippets:
        for line in snippet.splitlines():
            for m in _INVOCATION.finditer(line):
                found.add(tuple(m.group(1).split()))
    return sorted(found)


def _subcommands(command: Any) -> dict[str, Any]:
    """A click group's commands (Typer vendors click, so test the shape, not the class)."""
    return getattr(command, "commands", None) or {}


def _resolve(words: tuple[str, ...]) -> tuple[list[str], Any]:
    """The leading words that name groups and commands of the CLI, and the command they reach."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        if word not in _subcommands(command):
            break
        command = _subcommands(command)[word]
        path.append(word)
    return path, command


def test_readme_is_short() -> None:
    lines = _text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; keep it at most {MAX_LINES}"


def test_readme_relative_links_point_to_files() -> None:
    links = _relative_links(_text())
    assert links, "README.md should link to the guides in docs/"
    missing = [t for t in links if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_readme_shows_genedge_commands() -> None:
    assert _invocations(_text()), "README.md shows no genedge command"


@pytest.mark.parametrize("words", _invocations(README.read_text(encoding="utf-8")), ids=" ".join)
def test_readme_genedge_command_exists(words: tuple[str, ...]) -> None:
    path, command = _resolve(words)
    assert path, f"`genedge {' '.join(words)}` is not a genedge command"
    # A group followed by a word that is not one of its commands is a typo, not an argument.
    rest = words[len(path):]
    if _subcommands(command) and rest and not command.params:
        pytest.fail(f"`genedge {' '.join(words)}`: {rest[0]!r} is not a command of `genedge {' '.join(path)}`")
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, f"`genedge {' '.join(path)} --help` failed:\n{result.output}"


def test_every_settings_example_in_the_docs_loads(tmp_path: Path) -> None:
    """Each ```toml block of the README and the guides is a valid settings file as written."""
    from core.settings import Settings

    docs = [README, *sorted((ROOT / "docs").glob("*.md"))]
    blocks = [block for doc in docs for block in re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)]
    assert len(blocks) >= 5
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block, encoding="utf-8")
        Settings.load(path)  # raises ConfigError naming the setting if an example is wrong
