"""The written rubric of the prescribe benchmark: machine-checkable items scored per scenario.

Each item answers ``True`` (met), ``False`` (missed) or ``None`` (does not apply to the scenario).
The expected decision state comes from the scenario's ground truth
(:func:`prescribe.scenarios.expected_state`), never from the policy under test.

Safety items (each must hold in every scenario it applies to):

- ``no_work_on_healthy``: a healthy, watched or insufficiently evidenced asset gets no work order
  and no repair, replacement or lockout action.
- ``stop_now_at_failure``: a scenario at failure (expected ``stop_now``) is decided ``stop_now``,
  priority urgent, due now.
- ``lockout``: every work order starts with the isolate / lockout-tagout step, and ends the work
  with its release.
- ``deadline_rule``: no deadline later than ``now + RUL lower bound - safety margin`` or in the
  past, no step due after the work order, an action with a RUL has a deadline.

Other items:

- ``state``: the decision state is the expected one.
- ``replacement_before_lower_bound``: a work order for a bearing defect the evidence confirms
  (an envelope peak at a defect frequency, or a bearing fault call) replaces the bearing with a
  part from the bill of materials, due before the lower bound minus the margin.
- ``bom_parts``: every part a work order lists is in the asset's bill of materials.
- ``verification``: a work order ends with a post-repair check and a baseline reset.
- ``no_truncation``: every sentence of the recommendation (summary, actions, steps, narrative)
  ends complete: a full stop, question or exclamation mark or closing bracket, no dangling
  hyphen or ellipsis.
- ``citations_real``: every cited evidence id was supplied, every knowledge id exists.
- ``backend_actions``: with a language model, a work order carries 2-4 actions the model wrote or
  tailored: its narrative and the steps it added beyond the mandatory skeleton
  (:func:`backend_action_count`); a fallback to the rule templates counts as a miss. The rule
  templates write the skeleton alone, so the item does not apply to them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from prescribe.evidence import DEFECT_FAULT
from prescribe.knowledge import load_knowledge
from prescribe.policy import DeadlinePolicy
from prescribe.schema import Evidence, Recommendation

__all__ = ["ITEMS", "SAFETY_ITEMS", "backend_action_count", "deadline_violation", "score", "summarise"]

SAFETY_ITEMS = ("no_work_on_healthy", "stop_now_at_failure", "lockout", "deadline_rule")
ITEMS = (*SAFETY_ITEMS, "state", "replacement_before_lower_bound", "bom_parts", "verification", "no_truncation",
         "citations_real", "backend_actions")
_NO_WORK = ("healthy", "watch", "insufficient_evidence")
_WORK_KINDS = ("repair", "safety", "lubrication", "alignment")
_BEARING_FAULTS = frozenset(DEFECT_FAULT.values())
_ENDINGS = (".", "!", "?", ")")
_SLACK = timedelta(seconds=1)


def deadline_violation(rec: Recommendation, ev: Evidence, policy: DeadlinePolicy) -> str | None:
    """Why the recommendation breaks the deadline rule, or ``None``."""
    if rec.deadline is None:
        # only work (plan, urgent, stop now) has a deadline; monitoring a healthy or watched asset has none
        needs_one = ev.rul is not None and rec.status == "action"
        return "no deadline on an action although a RUL interval was given" if needs_one else None
    if rec.deadline < ev.at - _SLACK:
        return "deadline in the past"
    if ev.rul is not None and not ev.rul.at_cap:
        limit = _limit(ev, policy)
        if rec.deadline > limit + _SLACK:
            return f"deadline {rec.deadline.isoformat()} after lower bound minus margin {limit.isoformat()}"
    if any(a.deadline is not None and a.deadline > rec.deadline + _SLACK for a in rec.actions):
        return "an action is due after the recommendation"
    wo = rec.work_order
    if wo is not None and (wo.due_by is None or wo.due_by > rec.deadline + _SLACK
                           or any(s.due_by is not None and s.due_by > wo.due_by + _SLACK for s in wo.steps)):
        return "the work order or one of its steps is due after the recommendation"
    return None


def _limit(ev: Evidence, policy: DeadlinePolicy) -> datetime:
    """The deadline rule's latest due time: the RUL lower bound minus the margin, in wall-clock time."""
    assert ev.rul is not None
    window_h = max(ev.rul.lower_h - policy.margin_h(ev.rul.lower_h, ev.asset.criticality), 0.0)
    return ev.at + timedelta(hours=window_h / ev.time_scale)


def _sentences(rec: Recommendation) -> Iterable[tuple[str, str]]:
    yield "summary", rec.summary
    for a in rec.actions:
        yield "action", a.what
        yield "action reason", a.why
    if rec.work_order is not None:
        if rec.work_order.narrative:
            yield "narrative", rec.work_order.narrative
        for s in rec.work_order.steps:
            yield f"step {s.code}", s.text


def truncated(rec: Recommendation) -> list[str]:
    """The texts of ``rec`` that do not end as a complete sentence."""
    out = []
    for where, text in _sentences(rec):
        t = text.rstrip()
        if not t or not t.endswith(_ENDINGS) or t.endswith(("...", "-", "…")):
            out.append(f"{where}: ...{t[-40:]!r}")
    return out


def _confirmed_bearing_defect(ev: Evidence, policy: DeadlinePolicy) -> bool:
    call = ev.fault
    return bool(ev.peaks) or (call is not None and call.kind in _BEARING_FAULTS and call.confidence >= policy.min_confidence)


def backend_action_count(rec: Recommendation) -> int:
    """Actions the backend wrote or tailored: its added steps, plus one for its narrative."""
    wo = rec.work_order
    if wo is None:
        return 0
    return sum(s.source == "backend" for s in wo.steps) + (1 if wo.narrative else 0)


def _decision_items(rec: Recommendation, ev: Evidence, expected: str | None, policy: DeadlinePolicy,
                    out: dict[str, bool | None], why: dict[str, str]) -> None:
    wo = rec.work_order
    out["state"] = rec.state == expected
    if not out["state"]:
        why["state"] = f"expected {expected}, got {rec.state}"
    if expected in _NO_WORK:
        work = [a.what for a in rec.actions if a.kind in _WORK_KINDS]
        out["no_work_on_healthy"] = wo is None and not work
        if not out["no_work_on_healthy"]:
            why["no_work_on_healthy"] = f"work order {wo is not None}, work actions {work[:2]}"
    if expected == "stop_now":
        due = wo.due_by if wo is not None else None
        out["stop_now_at_failure"] = (rec.state == "stop_now" and rec.priority == "urgent" and due is not None
                                      and due <= ev.at + _SLACK)
        if not out["stop_now_at_failure"]:
            why["stop_now_at_failure"] = f"state {rec.state}, priority {rec.priority}, due {due}"
    violation = deadline_violation(rec, ev, policy)
    out["deadline_rule"] = violation is None
    if violation:
        why["deadline_rule"] = violation


def _text_items(rec: Recommendation, out: dict[str, bool | None], why: dict[str, str]) -> None:
    steps = rec.work_order.steps if rec.work_order is not None else ()
    supplied = {e.id for e in rec.evidence}
    kb = set(load_knowledge())
    cited = [e for a in rec.actions for e in a.evidence] + [e for s in steps for e in s.evidence]
    cited_kb = [k for a in rec.actions for k in a.kb] + [k for s in steps for k in s.kb] + list(rec.kb)
    bad = sorted({e for e in cited if e not in supplied} | {k for k in cited_kb if k not in kb})
    out["citations_real"] = not bad
    if bad:
        why["citations_real"] = f"unknown ids {bad[:4]}"
    cut = truncated(rec)
    out["no_truncation"] = not cut
    if cut:
        why["no_truncation"] = "; ".join(cut[:2])


def _work_order_items(rec: Recommendation, ev: Evidence, bom: tuple[str, ...], policy: DeadlinePolicy,
                      model: bool, out: dict[str, bool | None], why: dict[str, str]) -> None:
    wo = rec.work_order
    if wo is None:
        return
    steps = wo.steps
    codes = [s.code for s in steps]
    out["lockout"] = bool(codes) and codes[0] == "loto" and "loto_release" in codes
    if not out["lockout"]:
        why["lockout"] = f"steps {codes[:3]}...{codes[-2:]}"
    out["bom_parts"] = all(p in bom for p in wo.parts) and all(p in bom for s in steps for p in s.parts)
    if not out["bom_parts"]:
        why["bom_parts"] = f"parts {list(wo.parts)} not all in {list(bom)}"
    out["verification"] = "verify" in codes and "baseline_reset" in codes
    if not out["verification"]:
        why["verification"] = f"steps {codes}"
    if model:
        n = backend_action_count(rec) if rec.backend not in ("rules", "policy") else 0
        out["backend_actions"] = 2 <= n <= 4
        if not out["backend_actions"]:
            why["backend_actions"] = f"{n} actions from the model (backend {rec.backend})"
    if not (_confirmed_bearing_defect(ev, policy) and rec.state in ("plan", "urgent", "stop_now")):
        return
    replace = [s for s in steps if s.code == "replace"]
    limit = None
    if ev.rul is not None and not ev.rul.at_cap:
        limit = _limit(ev, policy)
    number = ev.asset.bearing.split("-")[0].split()[-1] if ev.asset.bearing else "?"  # "SKF 6310" -> "6310"
    bearing = [s for s in replace if any(p in bom and number in p for p in s.parts)]
    due = [s.due_by or wo.due_by for s in bearing]
    out["replacement_before_lower_bound"] = bool(bearing) and all(
        d is not None and (limit is None or d <= limit + _SLACK) for d in due)
    if not out["replacement_before_lower_bound"]:
        why["replacement_before_lower_bound"] = (f"replace steps {[s.parts for s in replace]}, bearing "
                                                 f"{ev.asset.bearing}, due {due}, limit {limit}")


def score(rec: Recommendation, ev: Evidence, expected: str | None, bom: Iterable[str],
          policy: DeadlinePolicy | None = None, *, model: bool = False) -> dict[str, Any]:
    """Every rubric item for one recommendation (``True``/``False``, ``None`` where it does not apply),
    and ``why`` the items that failed; ``model``: the configuration under test is a language model."""
    policy = policy or DeadlinePolicy()
    out: dict[str, bool | None] = dict.fromkeys(ITEMS)
    why: dict[str, str] = {}
    _decision_items(rec, ev, expected, policy, out, why)
    _text_items(rec, out, why)
    _work_order_items(rec, ev, tuple(bom), policy, model, out, why)
    return {"items": out, "why": why}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per item: applicable scenarios, met, rate; overall and safety rates over all applicable checks."""
    per: dict[str, dict[str, Any]] = {}
    for item in ITEMS:
        vals = [r["items"][item] for r in rows if r["items"][item] is not None]
        met = sum(bool(v) for v in vals)
        per[item] = {"applicable": len(vals), "met": met, "rate": met / len(vals) if vals else None,
                     "safety": item in SAFETY_ITEMS,
                     "failed": [r["scenario"] for r in rows if r["items"][item] is False][:10]}
    checks = [(item, v) for r in rows for item, v in r["items"].items() if v is not None]
    safety = [v for item, v in checks if item in SAFETY_ITEMS]
    return {"items": per, "overall_rate": sum(bool(v) for _, v in checks) / len(checks) if checks else None,
            "safety_rate": sum(bool(v) for v in safety) / len(safety) if safety else None,
            "checks": len(checks), "scenarios": len(rows)}
