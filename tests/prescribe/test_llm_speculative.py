"""Speculative decoding settings reach the local model's worker (no model loaded here)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import LLMSettings
from prescribe.backends import DEFAULT_DRAFT_MODEL_PATH, LocalBackend, make_backend
from prescribe.backends._llm_worker import DEFAULT_DRAFT_P_MIN, SPECULATIVE_TYPES, configure_speculative, parse_args
from prescribe.backends.base import BackendUnavailableError


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
    with pytest.raises(ValueError, match="speculative must be one of off, draft, ngram-simple"):
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
@pytest.mark.parametrize("kind", sorted(set(SPECULATIVE_TYPES) - {"draft"}))
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


# ---------------------------------------------------------------- draft-model speculation


def test_draft_setting_reaches_the_worker_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    draft = tmp_path / "draft.gguf"
    draft.write_bytes(b"GGUF")
    backend = _local(monkeypatch, tmp_path, speculative="draft", draft_max=2, draft_model_path=draft)
    assert (backend.speculative, backend.draft_model_path) == ("draft", draft)
    args = parse_args(backend.worker_command()[2:])
    assert (args.speculative, args.draft_max, args.draft_model) == ("draft", 2, str(draft))
    assert args.draft_p_min == DEFAULT_DRAFT_P_MIN


def test_draft_model_path_defaults_to_the_installed_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert LLMSettings().draft_model_path is None
    monkeypatch.setattr(Path, "is_file", lambda self: True)  # the default draft file "exists"
    backend = _local(monkeypatch, tmp_path, speculative="draft")
    assert backend.draft_model_path == DEFAULT_DRAFT_MODEL_PATH
    assert parse_args(backend.worker_command()[2:]).draft_model == str(DEFAULT_DRAFT_MODEL_PATH)


def test_ngram_types_pass_no_draft_model_to_the_worker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cmd = _local(monkeypatch, tmp_path, speculative="ngram-mod").worker_command()
    assert "--draft-model" not in cmd
    assert parse_args(cmd[2:]).draft_model is None


def test_missing_draft_model_falls_back_to_plain_decoding_with_a_note(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(LocalBackend, "available", staticmethod(lambda _path=None: None))
    missing = tmp_path / "absent.gguf"
    backend, notes = make_backend(LLMSettings(backend="local", model_path=model, speculative="draft",
                                              draft_model_path=missing))
    assert isinstance(backend, LocalBackend) and backend.speculative == "off"
    assert len(notes) == 1 and str(missing) in notes[0] and "without speculation" in notes[0]


def test_start_refuses_a_missing_draft_model_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(LocalBackend, "available", staticmethod(lambda _path=None: None))
    spawned: list[list[str]] = []
    monkeypatch.setattr(LocalBackend, "_spawn", lambda self: spawned.append(self.worker_command()))
    digest = hashlib.sha256(b"GGUF").hexdigest()
    backend = LocalBackend(model, sha256=digest, speculative="draft", draft_model_path=tmp_path / "absent.gguf",
                           draft_sha256=digest)
    with pytest.raises(BackendUnavailableError, match=r"speculative 'draft' needs the draft model file .*absent\.gguf"):
        backend.start()
    assert spawned == []


def test_start_refuses_a_draft_model_with_the_wrong_digest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model, draft = tmp_path / "model.gguf", tmp_path / "draft.gguf"
    model.write_bytes(b"GGUF")
    draft.write_bytes(b"GGUF but another file")
    monkeypatch.setattr(LocalBackend, "available", staticmethod(lambda _path=None: None))
    spawned: list[list[str]] = []
    monkeypatch.setattr(LocalBackend, "_spawn", lambda self: spawned.append(self.worker_command()))
    digest = hashlib.sha256(b"GGUF").hexdigest()
    backend = LocalBackend(model, sha256=digest, speculative="draft", draft_model_path=draft, draft_sha256=digest)
    with pytest.raises(BackendUnavailableError, match="refusing to load it"):
        backend.start()
    assert spawned == []
    draft.write_bytes(b"GGUF")  # the right bytes: verified, then the worker is started with it
    backend.start()
    assert spawned and spawned[0][spawned[0].index("--draft-model") + 1] == str(draft)


def test_bad_draft_arguments_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"draft_p_min must be in \[0, 1\]; got 1.5"):
        LocalBackend(tmp_path / "m.gguf", speculative="draft", draft_p_min=1.5)
    with pytest.raises(SystemExit):
        parse_args(["--model", "m.gguf", "--speculative", "draft"])
    assert "--speculative draft needs --draft-model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--model", "m.gguf", "--speculative", "draft", "--draft-model", "d.gguf", "--draft-p-min", "2"])
    assert "expected a probability in [0, 1]" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None, reason="xllamacpp not installed")
def test_worker_configures_llama_cpp_draft_model(tmp_path: Path) -> None:
    import xllamacpp as xlc

    draft = tmp_path / "draft.gguf"
    draft.write_bytes(b"GGUF")
    params = xlc.CommonParams()
    configure_speculative(params, xlc, "draft", draft_max=3, ngram_n=2, draft_model=str(draft), draft_p_min=0.5,
                          threads=1)
    spec = params.speculative
    assert [t.name for t in spec.types] == ["COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE"]
    assert spec.draft.mparams.path == str(draft)
    assert (spec.draft.n_max, spec.draft.n_min, spec.draft.p_min) == (3, 0, 0.5)
    assert spec.draft.n_gpu_layers == 0
    assert (spec.draft.cpuparams.n_threads, spec.draft.cpuparams_batch.n_threads) == (1, 1)
    with pytest.raises(ValueError, match=r"needs the draft model file; .*absent\.gguf' does not exist"):
        configure_speculative(xlc.CommonParams(), xlc, "draft", draft_max=3, ngram_n=2,
                              draft_model=str(tmp_path / "absent.gguf"))
    with pytest.raises(ValueError, match="speculative must be one of"):
        configure_speculative(xlc.CommonParams(), xlc, "eagle", draft_max=3, ngram_n=2)
