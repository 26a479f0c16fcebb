"""The prescriber: evidence -> policy decision -> backend text -> validated recommendation.

Priority and deadline come from :mod:`prescribe.policy`; a backend writes only the actions'
text and citations. An answer that is not the schema or cites an id that was not supplied is
rejected; the backend gets one retry (told why), then the rule backend answers and the
recommendation carries a note saying so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ModelError
from prescribe.backends.base import Backend, BackendUnavailableError, DraftRequest
from prescribe.backends.rules import RulesBackend
from prescribe.evidence import rul_text
from prescribe.knowledge import KB_DIR, Procedure, retrieve
from prescribe.policy import DeadlinePolicy, Decision, assess
from prescribe.prompt import LLMDraft, build_messages, draft_schema, parse_draft
from prescribe.schema import Action, Evidence, EvidenceItem, Recommendation, WorkOrderDraft

__all__ = ["Outcome", "Prescriber"]

log = logging.getLogger(__name__)

_FAULT_TEXT = {"outer_race": "outer race defect", "inner_race": "inner race defect", "ball": "rolling element defect",
               "cage": "cage defect", "imbalance": "rotor imbalance", "misalignment": "misalignment",
               "looseness": "looseness", "lubrication": "lubrication problem", "overheating": "overheating",
               "cavitation": "cavitation"}
#: How a summary opens, by decision state (docs/decisions.md).
_STATE_HEAD = {"stop_now": "STOP NOW: ", "urgent": "urgent: ", "plan": "plan at the next stop: "}
#: Words that tie a listed spare part to a fault (bearing faults also match the bearing designation).
_PART_WORDS = {"imbalance": ("impeller", "balance"), "misalignment": ("coupling", "shim"), "cavitation": ("impeller", "seal"),
               "looseness": ("bolt", "shim")}


@dataclass
class Outcome:
    """A recommendation and how it was made (for benchmarks and logs).

    Attributes:
        recommendation: the validated recommendation.
        backend_used: which backend's text it carries (``policy`` when none was asked).
        attempts: backend calls made (0, 1, 2; the rule fallback not counted).
        rejected: why answers were rejected.
        latency_s: wall time of the backend calls.
    """

    recommendation: Recommendation
    backend_used: str
    attempts: int = 0
    rejected: list[str] = field(default_factory=list)
    latency_s: float = 0.0


class Prescriber:
    """Turns evidence into a validated :class:`~prescribe.schema.Recommendation`.

    Args:
        backend: the text backend (local model, OpenAI-compatible server or rules).
        policy: deadline and priority rules.
        max_tokens: generation budget of a language-model answer.
        max_actions: most actions a language model may write. Each costs about 40 generated tokens;
            one keeps the local model's p50 latency under 15 s on a two-core CPU (two: about 19 s).
            The rule backend writes up to two whatever this says.
        kb_dir: knowledge-base directory.
        kb_limit: procedures retrieved into a prompt.
        notes: notes to carry on every recommendation (e.g. why the backend is the fallback).
    """

    def __init__(self, backend: Backend | None = None, *, policy: DeadlinePolicy | None = None, max_tokens: int = 96,
                 max_actions: int = 1, kb_dir: Path = KB_DIR, kb_limit: int = 2, notes: tuple[str, ...] = ()) -> None:
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
        """The recommendation for ``ev`` and how it was made."""
        decision = assess(ev, self.policy)
        items = ev.items()
        procedures = retrieve(ev, decision.fault, limit=self.kb_limit, directory=self.kb_dir)
        if not decision.works_on_machine:
            # healthy, watch and insufficient evidence: no backend is asked, so none can turn
            # them into maintenance work, and no work order is drafted
            return Outcome(self._without_backend(ev, decision, items, procedures), backend_used="policy")
        request = DraftRequest(messages=build_messages(ev, items, procedures, decision),
                               schema=draft_schema([i.id for i in items], [p.id for p in procedures],
                                                   max_actions=self.max_actions),
                               max_tokens=self.max_tokens, evidence=ev, items=items, procedures=procedures,
                               decision=decision)
        draft, used, attempts, rejected, latency = await self._draft(request)
        notes = list(self.notes)
        if used != self.backend.name:
            notes.append(f"{self.backend.name} backend answer rejected ({'; '.join(rejected)[:300]}); "
                         "rule templates used instead")
        return Outcome(self._compose(ev, decision, items, procedures, draft, used, tuple(notes)),
                       backend_used=used, attempts=attempts, rejected=rejected, latency_s=latency)

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

    # ------------------------------------------------------------------ composing
    def _compose(self, ev: Evidence, d: Decision, items: list[EvidenceItem], procedures: list[Procedure],
                 draft: LLMDraft, backend: str, notes: tuple[str, ...]) -> Recommendation:
        actions = tuple(Action(what=a.what.strip(), why=a.why.strip(), evidence=tuple(dict.fromkeys(a.evidence)),
                               kb=tuple(dict.fromkeys(a.kb)), priority=d.priority, deadline=d.deadline)
                        for a in draft.actions)
        summary = self._summary(ev, d, actions[0].what)
        kb_ids = tuple(p.id for p in procedures)
        rec = Recommendation(asset_id=ev.asset.asset_id, created_at=ev.at, status="action", state=d.state, summary=summary,
                             priority=d.priority, deadline=d.deadline, margin_h=d.margin_h, actions=actions,
                             evidence=tuple(items), kb=kb_ids, backend=backend, notes=notes,
                             work_order=self._work_order(ev, d, actions, summary))
        return rec

    def _summary(self, ev: Evidence, d: Decision, first: str) -> str:
        fault = _FAULT_TEXT.get(d.fault or "", "deteriorating condition")
        rul = rul_text(ev, coverage=True, when_none="no RUL prediction")
        due = f" by {d.deadline:%Y-%m-%d %H:%M} UTC" if d.deadline is not None else ""
        head = _STATE_HEAD.get(d.state, "")
        return (f"{ev.asset.asset_id}: {head}{fault}, {rul}. {first.rstrip('.')}{due} (priority {d.priority}; "
                f"{d.why})."[:600])

    def _work_order(self, ev: Evidence, d: Decision, actions: tuple[Action, ...], summary: str) -> WorkOrderDraft:
        parts = self._parts(ev, d.fault)
        lines = [summary, "", "Why:"] + [f"- {a.why} [{', '.join([*a.evidence, *a.kb])}]" for a in actions]
        return WorkOrderDraft(asset_id=ev.asset.asset_id, title=f"{ev.asset.asset_id}: {actions[0].what}"[:200],
                              priority=d.priority, due_by=d.deadline, description="\n".join(lines)[:4000],
                              tasks=tuple(a.what for a in actions), parts=parts,
                              evidence=tuple(dict.fromkeys(e for a in actions for e in a.evidence)),
                              kb=tuple(dict.fromkeys(k for a in actions for k in a.kb)))

    @staticmethod
    def _parts(ev: Evidence, fault: str | None) -> tuple[str, ...]:
        spares = ev.asset.spare_parts
        if fault in ("outer_race", "inner_race", "ball", "cage", "lubrication", "overheating"):
            digits = "".join(ch for ch in ev.asset.bearing if ch.isdigit())
            return tuple(s for s in spares if (digits and digits in s) or "bearing" in s.lower())
        words = _PART_WORDS.get(fault or "", ())
        return tuple(s for s in spares if any(w in s.lower() for w in words))

    def _without_backend(self, ev: Evidence, d: Decision, items: list[EvidenceItem],
                         procedures: list[Procedure]) -> Recommendation:
        ids = [i.id for i in items]

        def cite(*wanted: str) -> tuple[str, ...]:
            got = tuple(w for w in wanted if w in ids)
            return got or (ids[0],)

        if d.status == "insufficient_evidence":
            action = Action(what="Collect better evidence: manual vibration and envelope measurement, check sensors",
                            why="the evidence is weak or contradictory: " + "; ".join(d.reasons)[:380],
                            evidence=cite("rul:latest", "rul:life_share", "fault:class", "zone:latest", "peak:bpfo", "peak:bpfi"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = (f"{ev.asset.asset_id}: insufficient evidence for a maintenance decision ("
                       + "; ".join(d.reasons) + "). Verify before acting.")[:600]
        elif d.state == "watch":
            action = Action(what="Watch: trend vibration, envelope and temperature more closely; no work order yet",
                            why=f"{d.why}; {rul_text(ev, when_none='no RUL prediction')}"[:400],
                            evidence=cite("rul:latest", "peak:bpfo", "peak:bpfi", "peak:bsf", "peak:ftf", "zone:trend",
                                          "fault:class", "temp:trend"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = (f"{ev.asset.asset_id}: watch - {d.why}. No maintenance action yet; "
                       "trend it more closely.")[:600]
        else:
            action = Action(what="Continue monitoring; no maintenance action needed",
                            why=(d.why + (f"; {rul_text(ev)}" if ev.rul is not None else ""))[:400],
                            evidence=cite("zone:latest", "rul:latest", "fault:class", "temp:latest"),
                            kb=(), priority=d.priority, deadline=d.deadline)
            summary = f"{ev.asset.asset_id}: healthy, continue monitoring ({d.why})."[:600]
        return Recommendation(asset_id=ev.asset.asset_id, created_at=ev.at, status=d.status, state=d.state,
                              summary=summary, priority=d.priority, deadline=d.deadline, margin_h=d.margin_h,
                              actions=(action,), reasons=d.reasons, evidence=tuple(items),
                              kb=tuple(p.id for p in procedures), backend="policy", notes=self.notes)


def outcome_dict(o: Outcome) -> dict[str, Any]:
    """An :class:`Outcome` as plain data (for ``--json`` and benchmarks)."""
    return {"backend_used": o.backend_used, "attempts": o.attempts, "rejected": o.rejected,
            "latency_s": round(o.latency_s, 3), "recommendation": o.recommendation.model_dump(mode="json")}


