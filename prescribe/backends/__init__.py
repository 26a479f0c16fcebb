"""Text backends behind one protocol, and the choice among them from settings."""

from __future__ import annotations

from typing import Any

from prescribe.backends.base import Backend, DraftRequest
from prescribe.backends.local import DEFAULT_MODEL_PATH, MODEL_SHA256, LocalBackend, verify_model
from prescribe.backends.openai import OpenAIBackend
from prescribe.backends.rules import RulesBackend
from prescribe.prompt import SYSTEM_PROMPT

__all__ = [
    "DEFAULT_MODEL_PATH",
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
    file, no package, no URL) falls back to the rules, with a note saying why.

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
            return LocalBackend(model_path, threads=llm.threads, nice=nice, system_prompt=SYSTEM_PROMPT,
                                speculative=llm.speculative, draft_max=llm.draft_max, ngram_n=llm.ngram_n), ()
        if choice == "local":
            notes.append(f"local model unavailable: {why}; rule templates used instead")
    if choice in ("auto", "openai"):
        if llm.openai_url:
            key = llm.openai_key.get_secret_value() if llm.openai_key is not None else None
            return OpenAIBackend(llm.openai_url, llm.openai_model, api_key=key), tuple(notes)
        if choice == "openai":
            notes.append("no OpenAI-compatible server configured (llm.openai_url); rule templates used instead")
    return RulesBackend(), tuple(notes)
