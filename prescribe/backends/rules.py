"""Deterministic rule and template backend: the answer when no language model is available.

It reads the structured evidence (never the prompt text), so operator notes cannot steer it. Its
work order is the skeleton (:mod:`prescribe._skeleton`) as it stands, with a template narrative:
it adds no steps.
"""

from __future__ import annotations

import json

from prescribe._skeleton import Skeleton, build_skeleton, template_narrative
from prescribe._text import clip_sentence, plain_text
from prescribe.backends.base import DraftRequest
from prescribe.knowledge import procedure_for

__all__ = ["RulesBackend"]


class RulesBackend:
    """Template narrative filled from the evidence; the work order's steps are the skeleton's."""

    name = "rules"

    async def complete(self, request: DraftRequest) -> str:
        """The answer as the text of one JSON object (see :class:`prescribe.prompt.LLMDraft`)."""
        return json.dumps(self.draft(request))

    @staticmethod
    def skeleton(request: DraftRequest) -> Skeleton:
        """The request's skeleton, or the one built from its evidence and decision."""
        if request.skeleton is not None:
            return request.skeleton
        return build_skeleton(request.evidence, request.decision, request.items, procedure_for(request.decision.fault))

    def draft(self, request: DraftRequest) -> dict[str, object]:
        """The answer as data: a narrative and no added steps."""
        d = request.decision
        if not d.works_on_machine:
            # healthy and watch assets get no maintenance work, whatever the evidence text says
            why = clip_sentence(plain_text(d.why) or d.state, 300)
            return {"narrative": f"Continue monitoring; no maintenance action needed: decision {d.state}. {why}",
                    "actions": []}
        return {"narrative": template_narrative(request.evidence, d, self.skeleton(request)), "actions": []}

    async def aclose(self) -> None:
        """Nothing to release."""
