"""The one protocol every text backend implements, and the request it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.errors import ModelError
from prescribe._skeleton import Skeleton
from prescribe.knowledge import Procedure
from prescribe.policy import Decision
from prescribe.schema import Evidence, EvidenceItem

__all__ = ["Backend", "BackendUnavailableError", "DraftRequest"]


class BackendUnavailableError(ModelError):
    """The backend cannot answer at all (no model file, digest mismatch, worker died, server down):
    retrying the same request is pointless."""


@dataclass(frozen=True)
class DraftRequest:
    """What a backend gets: the chat messages and output schema for language models, and the
    structured evidence for backends that work from it directly (the rule backend).

    Attributes:
        messages: chat messages (system first); evidence inside is quoted data.
        schema: JSON schema the answer must satisfy (evidence and kb ids as enums).
        max_tokens: generation budget.
        evidence: the evidence the recommendation is about.
        items: its citable items (the only ids an answer may cite).
        procedures: retrieved knowledge-base procedures (the only kb ids an answer may cite).
        decision: the policy's decision (status, priority, deadline, fault).
        skeleton: the work order's mandatory steps (``None`` for states without a work order);
            a backend writes the narrative and may add steps, never remove these.
    """

    messages: list[dict[str, str]]
    schema: dict[str, Any]
    max_tokens: int
    evidence: Evidence
    items: list[EvidenceItem]
    procedures: list[Procedure]
    decision: Decision
    skeleton: Skeleton | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """Writes the narrative and added steps of a work order as one JSON object matching ``request.schema``.

    Implementations: :class:`~prescribe.backends.rules.RulesBackend` (deterministic templates),
    :class:`~prescribe.backends.local.LocalBackend` (xllamacpp in a worker process) and
    :class:`~prescribe.backends.openai.OpenAIBackend` (any OpenAI-compatible server).
    Failures are raised as :class:`core.errors.ModelError`.
    """

    name: str

    async def complete(self, request: DraftRequest) -> str:
        """The answer: the text of one JSON object."""
        ...

    async def aclose(self) -> None:
        """Release the model, worker or connection pool."""
        ...
