"""Speculative decoding settings reach the local model's worker (no model loaded here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import LLMSettings
from prescribe.backends import LocalBackend, make_backend
from prescribe.backends._llm_worker import SPECULATIVE_TYPES, configure_speculative, parse_args


def _local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **llm: object) -> LocalBackend:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    # the backend is chosen without the package or a real model: only its command line is checked
    monkeypatch.setattr(LocalBackend, "available", staticmethod(lambda _path=None: None))
    backend, notes = make_backend(LLMSettings(backend="local", model_path=model, **llm))
    assert isinstance(backend, LocalBackend) and notes == ()
    return backend


def test_speculative_setting_reaches_the_worker_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    backend = _local(monkeypatch, tmp_path, speculative="ngram-mod", draft_max=6, ngram_n=2, threads=1)
    cmd = backend.worker_command()
    assert cmd[1].endswith("_llm_worker.py")
    args = parse_args(cmd[2:])
    assert (args.speculative, args.draft_max, args.ngram_n, args.threads) == ("ngram-mod", 6, 2, 1)
    assert args.model == str(tmp_path / "model.gguf")


def test_speculative_is_off_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert LLMSettings().speculative == "off"
    args = parse_args(_local(monkeypatch, tmp_path).worker_command()[2:])
    assert args.speculative == "off"


def test_settings_and_backend_refuse_unknown_speculative_types(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="speculative"):
        LLMSettings(speculative="eagle")
    with pytest.raises(ValidationError, match="draft_max"):
        LLMSettings(draft_max=0)
    with pytest.raises(ValueError, match="speculative must be one of off, ngram-simple"):
        LocalBackend(tmp_path / "m.gguf", speculative="eagle")
    with pytest.raises(ValueError, match="draft_max must be >= 1; got 0"):
        LocalBackend(tmp_path / "m.gguf", speculative="ngram-mod", draft_max=0)


def test_worker_rejects_bad_speculative_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--model", "m.gguf", "--speculative", "eagle"])
    with pytest.raises(SystemExit):
        parse_args(["--model", "m.gguf", "--draft-max", "0"])
    assert "expected an integer >= 1" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp not installed")
@pytest.mark.parametrize("kind", sorted(SPECULATIVE_TYPES))
def test_worker_configures_llama_cpp_speculation(kind: str) -> None:
    import xllamacpp as xlc

    params = xlc.CommonParams()
    configure_speculative(params, xlc, kind, draft_max=5, ngram_n=2)
    assert [t.name for t in params.speculative.types] == [SPECULATIVE_TYPES[kind]]
    if kind == "off":
        assert params.speculative.draft.n_max == xlc.CommonParams().speculative.draft.n_max
        return
    spec = params.speculative
    assert (spec.draft.n_max, spec.draft.n_min) == (5, 0)
    assert (spec.ngram_simple.size_n, spec.ngram_simple.size_m) == (2, 5)
    assert (spec.ngram_map_k.size_n, spec.ngram_map_k.size_m) == (2, 5)
    assert (spec.ngram_mod.n_match, spec.ngram_mod.n_min, spec.ngram_mod.n_max) == (2, 0, 5)
