"""The prescriber: evidence -> policy decision -> work-order skeleton -> backend text -> validated
recommendation.

Priority and deadline come from :mod:`prescribe.policy`; the work order's mandatory steps from
the skeleton (:mod:`prescribe._skeleton`). A backend writes the narrative and may add steps:
an answer that is not the schema or cites an id that was not supplied is rejected (one retry,
told why, then the rule backend answers and the recommendation carries a note saying so); an
added step that states what the evidence does not, repeats a step or asks to confirm what is
confirmed is dropped, and a narrative sentence that states what the evidence does not is left
out. No skeleton step, least of all a safety step, can be dropped by a backend. The what-if twin's
choice, when the evidence carries one, is cited by the work order (its "What-if:" line and the
repair step) but never moves the decision's state or due time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ModelError
from prescribe._skeleton import (
    FAULT_TEXT,
    WHATIF_ID,
    Skeleton,
    build_skeleton,
    merge_steps,
    screen_added,
    template_narrative,
    whatif_due_note,
)
from prescribe._text import clip_sentence, is_whole_sentence, plain_text, ungrounded
from prescribe.backends.base import Backend, BackendUnavailableError, DraftRequest
from prescribe.backends.rules import RulesBackend
from prescribe.evidence import rul_text
from prescribe.knowledge import KB_DIR, Procedure, procedure_for, retrieve
from prescribe.policy import DeadlinePolicy, Decision, assess
from prescribe.prompt import (
    NARRATIVE_MAX,
    WHAT_MAX,
    WHY_MAX,
    LLMDraft,
    at_limit,
    build_messages,
    draft_schema,
    parse_draft,
)
from prescribe.schema import Action, Evidence, EvidenceItem, Recommendation, WorkOrderDraft, WorkStep

__all__ = ["Outcome", "Prescriber"]

log = logging.getLogger(__name__)

#: How a summary opens, by decision state (docs/decisions.md).
_STATE_HEAD = {"stop_now": "STOP NOW: ", "urgent": "urgent: ", "plan": "plan at the next stop: "}
_SENTENCES = re.compile(r"(?<=[a-z0-9)%][.!?]) +(?=[A-Z])")


def _whole(text: str, cap: int) -> str:
    """``text`` as whole sentences: a text at the grammar's limit of ``cap`` characters (where it
    closes the string, possibly inside a word) is cut back to its last whole sentence or word."""
    if at_limit(text, cap):
        return clip_sentence(text, min(len(text), cap))
    return clip_sentence(text, max(len(text) + 1, 8))


@dataclass
class Outcome:
    """A recommendation and how it was made (for benchmarks and logs).

    Attributes:
        recommendation: the validated recommendation.
        backend_used: which backend's text it carries (``policy`` when none was asked).
        attempts: backend calls made (0, 1, 2; the rule fallback not counted).
        rejected: why answers were rejected.
        latency_s: wall time of the backend calls.
        dropped: the backend's added steps and narrative sentences left out, each with why.
    """

    recommendation: Recommendation
    backend_used: str
    attempts: int = 0
    rejected: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    dropped: list[str] = field(default_factory=list)


class Prescriber:
    """Turns evidence into a validated :class:`~prescribe.schema.Recommendation`.

    Args:
        backend: the text backend (local model, OpenAI-compatible server or rules).
        policy: deadline and priority rules.
        max_tokens: generation budget of a language-model answer (a narrative and ``max_actions``
            added steps need about 170 tokens; an answer cut at the budget is rejected).
        max_actions: most steps a language model may add (1-4; it must add ``min(2, max_actions)``).
            Each costs about 50 generated tokens, about 2.5 s on a two-core CPU.
        kb_dir: knowledge-base directory.
        kb_limit: procedures retrieved into a prompt.
        notes: notes to carry on every recommendation (e.g. why the backend is the fallback).
    """

    def __init__(self, backend: Backend | None = None, *, policy: DeadlinePolicy | None = None, max_tokens: int = 200,
                 max_actions: int = 2, kb_dir: Path = KB_DIR, kb_limit: int = 2, notes: tuple[str, ...] = ()) -> None:
        self.backend: Backend = backend or RulesBackend()
        self.policy = policy or DeadlinePolicy()
        self.max_tokens = max_tokens
        self.max_actions = max_actions
        self.kb_dir = kb_dir
        self.kb_limit = kb_limit
        self.notes = notes
        self._rules = RulesBackend()

    # --------------------------------------------------------------------- public
    def recommend(self, ev: Evidence) -> Recommendation:
        """Blocking :meth:`arecommend`."""
        return asyncio.run(self.arun(ev)).recommendation

    async def arecommend(self, ev: Evidence) -> Recommendation:
        """The recommendation for ``ev``."""
        return (await self.arun(ev)).recommendation

    async def arun(self, ev: Evidence) -> Outcome:
        """The recommendation for ``ev`` and how it was made.

        Raises:
            ConfigError: the knowledge base is malformed.
        """
        decision = assess(ev, self.policy)
        items = ev.items()
        procedures = retrieve(ev, decision.fault, limit=self.kb_limit, directory=self.kb_dir)
        if not decision.works_on_machine:
            # healthy, watch and insufficient evidence: no backend is asked, so none can turn
            # them into maintenance work, and no work order is drafted
            return Outcome(self._without_backend(ev, decision, items, procedures), backend_used="policy")
        main = procedure_for(decision.fault, self.kb_dir)
        if main not in procedures:
            procedures = [main, *procedures][: max(self.kb_limit, 1)]
        skeleton = build_skeleton(ev, decision, items, main, self.policy)
        request = DraftRequest(messages=build_messages(ev, items, procedures, decision, skeleton),
                               schema=draft_schema([i.id for i in items], [p.id for p in procedures],
                                                   max_actions=self.max_actions),
                               max_tokens=self.max_tokens, evidence=ev, items=items, procedures=procedures,
                               decision=decision, skeleton=skeleton)
        draft, used, attempts, rejected, latency = await self._draft(request)
        notes = list(self.notes)
        if used != self.backend.name:
            notes.append(f"{self.backend.name} backend answer rejected ({'; '.join(rejected)[:300]}); "
                         "rule templates used instead")
        context = "\n".join([*(m["content"] for m in request.messages), *(s.text for s in skeleton.steps)])
        steps, narrative, dropped = self._merge(ev, decision, skeleton, draft, context, trusted=used == self._rules.name)
        rec = self._compose(ev, decision, items, procedures, skeleton, steps, narrative, used, tuple(notes))
        return Outcome(rec, backend_used=used, attempts=attempts, rejected=rejected, latency_s=latency, dropped=dropped)

    async def aclose(self) -> None:
        """Release the backend."""
        await self.backend.aclose()

    # ------------------------------------------------------------------- drafting
    async def _draft(self, request: DraftRequest) -> tuple[LLMDraft, str, int, list[str], float]:
        ids, kb_ids = [i.id for i in request.items], [p.id for p in request.procedures]
        rejected: list[str] = []
        t0 = time.perf_counter()
        attempt_request = request
        attempts = 0
        for _ in range(2):
            attempts += 1
            try:
                text = await self.backend.complete(attempt_request)
                return parse_draft(text, ids, kb_ids), self.backend.name, attempts, rejected, time.perf_counter() - t0
            except ModelError as err:
                rejected.append(str(err))
                log.warning("prescriber: %s answer rejected: %s", self.backend.name, err)
                if isinstance(self.backend, RulesBackend) or isinstance(err, BackendUnavailableError):
                    break  # retrying cannot help: deterministic templates, or no model at all
                retry = [*request.messages, {"role": "user", "content": (
                    f"Your answer was rejected: {str(err)[:200]}. Answer again with one JSON object; "
                    f"cite only these evidence ids: {', '.join(ids)}.")}]
                attempt_request = dataclasses.replace(request, messages=retry)
        latency = time.perf_counter() - t0
        draft = parse_draft(await self._rules.complete(request), ids, kb_ids)
        return draft, self._rules.name, attempts, rejected, latency

    # -------------------------------------------------------------------- merging
    def _merge(self, ev: Evidence, d: Decision, skeleton: Skeleton, draft: LLMDraft, context: str, *,
               trusted: bool) -> tuple[tuple[WorkStep, ...], str, list[str]]:
        """The skeleton with the backend's screened steps merged in, the narrative, and what was dropped.

        ``trusted``: the answer is the rule templates' (made from the evidence by code), whose
        narrative is kept as written.
        """
        dropped: list[str] = []
        kept: list[WorkStep] = []
        summaries = {i.id: plain_text(i.summary) for i in ev.items()}
        for a in draft.actions[: max(self.max_actions, 0)]:
            text = _whole(plain_text(a.what), WHAT_MAX)
            # the reason is the backend's when it wrote one, else the cited facts as code summarised them
            why = _whole(plain_text(a.why), WHY_MAX) if a.why.strip() else clip_sentence(
                "; ".join(summaries[e] for e in dict.fromkeys(a.evidence) if e in summaries), 400)
            if len(text) < 3:
                dropped.append(f"step {a.what[:60]!r}: nothing left once cut to whole words")
                continue
            step = WorkStep(kind=a.kind, code="added", text=text, why=why, source="backend", mandatory=False,
                            evidence=tuple(dict.fromkeys(a.evidence)), kb=(), due_by=d.deadline)
            reason = screen_added(step, skeleton, ev, context, d.state, kept)
            if reason is None:
                kept.append(step)
            else:
                dropped.append(f"step {text[:60]!r}: {reason}")
        for extra in draft.actions[self.max_actions:]:
            dropped.append(f"step {extra.what[:60]!r}: more than max_actions={self.max_actions} steps")
        left_out: list[str] = []
        if trusted:
            narrative = clip_sentence(draft.narrative, 600)
        else:
            narrative, left_out = self._narrative(ev, d, skeleton, draft.narrative, context)
        dropped += left_out
        if dropped:
            log.info("prescriber: %s left out of the %s answer: %s", len(dropped), ev.asset.asset_id, dropped)
        return merge_steps(skeleton, kept), narrative, dropped

    @staticmethod
    def _narrative(ev: Evidence, d: Decision, skeleton: Skeleton, text: str, context: str) -> tuple[str, list[str]]:
        """The narrative's grounded whole sentences; the template narrative when none is left."""
        kept, dropped = [], []
        for sentence in _SENTENCES.split(_whole(plain_text(text), NARRATIVE_MAX)):
            facts = ungrounded(sentence, context)
            if facts:
                dropped.append(f"narrative sentence {sentence[:60]!r}: states what the evidence does not: "
                               + ", ".join(facts))
            elif is_whole_sentence(sentence):
                kept.append(sentence)
            else:
                dropped.append(f"narrative sentence {sentence[:60]!r}: not a whole sentence")
        narrative = " ".join(kept)
        if len(narrative) < 20:
            narrative = template_narrative(ev, d, skeleton)
        return clip_sentence(narrative, 600), dropped

    # ------------------------------------------------------------------ composing
    def _compose(self, ev: Evidence, d: Decision, items: list[EvidenceItem], procedures: list[Procedure],
                 skeleton: Skeleton, steps: tuple[WorkStep, ...], narrative: str, backend: str,
                 notes: tuple[str, ...]) -> Recommendation:
        first = items[0].id
        actions = tuple(Action(what=s.text, why=s.why or skeleton.procedure.title, evidence=s.evidence or (first,),
                               kb=s.kb, priority=d.priority, deadline=d.deadline, kind=s.kind) for s in steps)
        summary = self._summary(ev, d, skeleton.headline)
        kb_ids = tuple(p.id for p in procedures)
        return Recommendation(asset_id=ev.asset.asset_id, created_at=ev.at, status="action", state=d.state,
                              summary=summary, priority=d.priority, deadline=d.deadline, margin_h=d.margin_h,
                              actions=actions, evidence=tuple(items), kb=kb_ids, backend=backend, notes=notes,
                              narrative=narrative,
                              work_order=self._work_order(ev, d, skeleton, steps, narrative, summary))

    def _summary(self, ev: Evidence, d: Decision, headline: str) -> str:
        fault = FAULT_TEXT.get(d.fault or "", "deteriorating condition")
        rul = rul_text(ev, coverage=True, when_none="no RUL prediction")
        due = " now" if d.state == "stop_now" else (f" by {d.deadline:%Y-%m-%d %H:%M} UTC" if d.deadline is not None else "")
        head = _STATE_HEAD.get(d.state, "")
        return clip_sentence(f"{ev.asset.asset_id}: {head}{fault}, {rul}. {headline.rstrip('.')}{due} "
                             f"(priority {d.priority}; {d.why}).", 600)

    @staticmethod
    def _work_order(ev: Evidence, d: Decision, skeleton: Skeleton, steps: tuple[WorkStep, ...], narrative: str,
                    summary: str) -> WorkOrderDraft:
        due = f"{d.deadline:%Y-%m-%d %H:%M} UTC" if d.deadline is not None else "none"
        lines = [summary, "", narrative, "",
                 f"Decision: {d.state}, priority {d.priority}, due {due} ({d.why}).",
                 *Prescriber._whatif_lines(ev, d),
                 f"Estimate: {skeleton.duration_h:g} h, crew {skeleton.crew}.",
                 "Parts: " + ("; ".join(skeleton.parts) if skeleton.parts else "none from the spare list") + "."]
        if skeleton.parts_missing:
            lines.append("To order (not in the spare list): " + ", ".join(skeleton.parts_missing) + ".")
        lines += ["", "Steps:"] + [f"{i}. [{s.kind}] {s.text}" for i, s in enumerate(steps, 1)]
        return WorkOrderDraft(asset_id=ev.asset.asset_id, title=skeleton.title, priority=d.priority, due_by=d.deadline,
                              description="\n".join(lines)[:4000], tasks=tuple(s.text for s in steps),
                              parts=skeleton.parts, evidence=tuple(dict.fromkeys(e for s in steps for e in s.evidence)),
                              kb=tuple(dict.fromkeys(k for s in steps for k in s.kb)), state=d.state, fault=d.fault,
                              narrative=narrative, steps=steps, parts_missing=skeleton.parts_missing,
                              duration_h=skeleton.duration_h, crew=skeleton.crew)

    @staticmethod
    def _whatif_lines(ev: Evidence, d: Decision) -> list[str]:
        """The work order's "What-if:" line: the simulated choice, its risk and cost against the best
        alternative, and how it meets the decision's due time, which it never moves."""
        item = next((i for i in ev.items() if i.id == WHATIF_ID), None)
        if item is None:
            return []
        return [f"What-if: {item.summary}. {whatif_due_note(ev, d)}"]

    def _without_backend(self, ev: Evidence, d: Decision, items: list[EvidenceItem],
                         procedures: list[Procedure]) -> Recommendation:
        ids = [i.id for i in items]

        def cite(*wanted: str) -> tuple[str, ...]:
            got = tuple(w for w in wanted if w in ids)
            return got or (ids[0],)

        if d.status == "insufficient_evidence":
            action = Action(what="Collect better evidence: take a manual vibration and envelope measurement and check "
                                 "the sensors.",
                            why=clip_sentence("The evidence is weak or contradictory: " + "; ".join(d.reasons), 400),
                            evidence=cite("rul:latest", "rul:life_share", "fault:class", "zone:latest", "peak:bpfo", "peak:bpfi"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = clip_sentence(f"{ev.asset.asset_id}: insufficient evidence for a maintenance decision, "
                                    "verify before acting: " + "; ".join(d.reasons), 600)
        elif d.state == "watch":
            action = Action(what="Watch: trend vibration, envelope and temperature more closely; no work order yet.",
                            why=clip_sentence(f"{d.why}; {rul_text(ev, when_none='no RUL prediction')}", 400),
                            evidence=cite("rul:latest", "peak:bpfo", "peak:bpfi", "peak:bsf", "peak:ftf", "zone:trend",
                                          "fault:class", "temp:trend"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = clip_sentence(f"{ev.asset.asset_id}: watch, no maintenance action yet, trend it more closely: "
                                    f"{d.why}", 600)
        else:
            action = Action(what="Continue monitoring; no maintenance action is needed.",
                            why=clip_sentence(d.why + (f"; {rul_text(ev)}" if ev.rul is not None else ""), 400),
                            evidence=cite("zone:latest", "rul:latest", "fault:class", "temp:latest"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = clip_sentence(f"{ev.asset.asset_id}: healthy, continue monitoring ({d.why})", 600)
        return Recommendation(asset_id=ev.asset.asset_id, created_at=ev.at, status=d.status, state=d.state,
                              summary=summary, priority=d.priority, deadline=d.deadline, margin_h=d.margin_h,
                              actions=(action,), reasons=d.reasons, evidence=tuple(items),
                              kb=tuple(p.id for p in procedures), backend="policy", notes=self.notes)


def outcome_dict(o: Outcome) -> dict[str, Any]:
    """An :class:`Outcome` as plain data (for ``--json`` and benchmarks)."""
    return {"backend_used": o.backend_used, "attempts": o.attempts, "rejected": o.rejected,
            "latency_s": round(o.latency_s, 3), "recommendation": o.recommendation.model_dump(mode="json")}


