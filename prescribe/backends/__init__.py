"""Text backends behind one protocol, and the choice among them from settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prescribe.backends.base import Backend, DraftRequest
from prescribe.backends.local import (
    DEFAULT_DRAFT_MODEL_PATH,
    DEFAULT_MODEL_PATH,
    DRAFT_MODEL_SHA256,
    MODEL_SHA256,
    LocalBackend,
    verify_model,
)
from prescribe.backends.openai import OpenAIBackend
from prescribe.backends.rules import RulesBackend
from prescribe.prompt import SYSTEM_PROMPT

__all__ = [
    "DEFAULT_DRAFT_MODEL_PATH",
    "DEFAULT_MODEL_PATH",
    "DRAFT_MODEL_SHA256",
    "MODEL_SHA256",
    "Backend",
    "DraftRequest",
    "LocalBackend",
    "OpenAIBackend",
    "RulesBackend",
    "make_backend",
    "verify_model",
]


def make_backend(llm: Any, choice: str | None = None, *, nice: int = 0) -> tuple[Backend, tuple[str, ...]]:
    """The backend named by ``choice`` (default ``llm.backend``) and notes on any fallback.

    ``auto`` takes the local model when it is installed, else an OpenAI-compatible server when
    one is configured, else the rules. A local or OpenAI backend that cannot be used (no model
    file, no package, no URL) falls back to the rules, with a note saying why. A local backend
    whose ``llm.speculative="draft"`` has no draft model file decodes without speculation, with a note.

    Args:
        llm: a :class:`core.settings.LLMSettings`.
        choice: ``auto``, ``local``, ``openai`` or ``rules``.
        nice: niceness of the local model's worker process.
    """
    choice = choice or llm.backend
    if choice not in ("auto", "local", "openai", "rules"):
        raise ValueError(f"backend must be one of auto, local, openai, rules; got {choice!r}")
    model_path = llm.model_path or DEFAULT_MODEL_PATH
    notes: list[str] = []
    if choice in ("auto", "local"):
        why = LocalBackend.available(model_path)
        if why is None:
            speculative = llm.speculative
            draft_path = llm.draft_model_path or DEFAULT_DRAFT_MODEL_PATH
            if speculative == "draft" and not Path(draft_path).is_file():
                # speculation only changes speed: without its draft model the local model still answers
                notes.append(f"draft model file {str(draft_path)!r} is missing; local model decodes without "
                             "speculation (llm.speculative='draft')")
                speculative = "off"
            return LocalBackend(model_path, threads=llm.threads, nice=nice, system_prompt=SYSTEM_PROMPT,
                                speculative=speculative, draft_max=llm.draft_max, ngram_n=llm.ngram_n,
                                draft_model_path=draft_path), tuple(notes)
        if choice == "local":
            notes.append(f"local model unavailable: {why}; rule templates used instead")
    if choice in ("auto", "openai"):
        if llm.openai_url:
            key = llm.openai_key.get_secret_value() if llm.openai_key is not None else None
            return OpenAIBackend(llm.openai_url, llm.openai_model, api_key=key), tuple(notes)
        if choice == "openai":
            notes.append("no OpenAI-compatible server configured (llm.openai_url); rule templates used instead")
    return RulesBackend(), tuple(notes)
