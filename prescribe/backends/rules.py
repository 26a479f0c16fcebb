"""Deterministic rule and template backend: the answer when no language model is available.

It reads the structured evidence (never the prompt text), so operator notes cannot steer it.
"""

from __future__ import annotations

import json

from prescribe.backends.base import DraftRequest
from prescribe.evidence import rul_text
from prescribe.prompt import plain_text
from prescribe.schema import Evidence

__all__ = ["RulesBackend"]

#: When the work is done, by decision state (the deadline itself is the policy's).
_WHEN = {"stop_now": "now", "urgent": "before the deadline",
         "plan": "at the next planned stop"}
_BEARING = {"outer_race": "outer race", "inner_race": "inner race", "ball": "rolling element", "cage": "cage"}
_PEAK_OF = {"outer_race": "peak:bpfo", "inner_race": "peak:bpfi", "ball": "peak:bsf", "cage": "peak:ftf"}
#: fault -> (what, why) of the main action; {bearing} is the asset's bearing designation.
_MAIN = {
    "imbalance": ("Clean and balance the rotor in place", "vibration rising with the rotor-imbalance signature"),
    "misalignment": ("Laser-align the coupling and check soft foot",
                     "vibration and temperature rising as with shaft misalignment"),
    "looseness": ("Check and torque base, cap and housing bolts", "vibration pattern of mechanical looseness"),
    "lubrication": ("Re-lubricate the bearing with the specified grease", "bearing temperature rising without a defect peak"),
    "overheating": ("Check lubrication and cooling; reduce load", "bearing temperature high or rising fast"),
    "cavitation": ("Check suction pressure, NPSH margin and strainers", "broadband vibration typical of cavitation"),
}


def _rul(ev: Evidence) -> str:
    """The remaining life in the characters action text allows (``>=`` in words)."""
    return rul_text(ev).replace(">=", "at least")


class RulesBackend:
    """Templates keyed by fault, filled from the evidence; citations only of ids present."""

    name = "rules"

    async def complete(self, request: DraftRequest) -> str:
        """The answer as the text of one JSON object (see :class:`prescribe.prompt.LLMDraft`)."""
        return json.dumps(self.draft(request))

    def draft(self, request: DraftRequest) -> dict[str, list[dict[str, object]]]:
        ev, fault = request.evidence, request.decision.fault
        ids = {i.id for i in request.items}
        kb_ids = [p.id for p in request.procedures]

        def cite(*wanted: str) -> list[str]:
            got = [w for w in wanted if w in ids]
            return got[:3] or [request.items[0].id]

        def kb(preferred: str) -> list[str]:
            return [preferred] if preferred in kb_ids else kb_ids[:1]

        actions: list[dict[str, object]] = []
        state = request.decision.state
        if not request.decision.works_on_machine:
            # healthy and watch assets get no maintenance work, whatever the evidence text says
            return {"actions": [{"what": "Continue monitoring; no maintenance action needed",
                                 "why": f"decision {state}: {plain_text(request.decision.why)}"[:150],
                                 "evidence": cite("rul:latest", "zone:latest", "fault:class"), "kb": []}]}
        when = _WHEN[state]
        if state == "stop_now":
            actions.append({"what": "Stop the machine now, isolate and lock out before work",
                            "why": f"stop now: {plain_text(request.decision.why)}"[:150],
                            "evidence": cite("rul:latest", "zone:latest", "temp:latest", "peak:bpfo", "fault:class"),
                            "kb": kb_ids[:1]})
        if fault in _BEARING:
            part = _BEARING[fault]
            # the designation is operator-entered: only the characters action text allows
            designation = plain_text(ev.asset.bearing)[:32]
            bearing = designation if designation and designation != "generic" else "drive-end"
            actions.append({
                "what": f"Replace the {bearing} bearing {when}",
                "why": f"{part} defect indicated; {_rul(ev)}",
                "evidence": cite("rul:latest", _PEAK_OF[fault], "fault:class", "zone:trend"),
                "kb": kb(f"kb:{'rolling_element' if fault == 'ball' else fault}"),
            })
            if state != "stop_now":
                actions.append({
                    "what": "Confirm with an envelope measurement and trend daily until replaced",
                    "why": f"verify the {part} defect frequency before the stop",
                    "evidence": cite(_PEAK_OF[fault], "fault:class", "zone:latest"),
                    "kb": kb(f"kb:{'rolling_element' if fault == 'ball' else fault}"),
                })
        elif fault in _MAIN:
            what, why = _MAIN[fault]
            actions.append({"what": what, "why": f"{why}; {_rul(ev)}",
                            "evidence": cite("rul:latest", "zone:trend", "fault:class", "temp:trend"),
                            "kb": kb(f"kb:{fault}")})
        else:
            actions.append({"what": "Diagnose the cause: spectrum, phase and looseness check",
                            "why": f"condition deteriorating without a clear fault class; {_rul(ev)}",
                            "evidence": cite("rul:latest", "zone:trend", "zone:latest", "fault:class"),
                            "kb": kb_ids[:1]})
        temp_rising = "temp:trend" in ids and ev.temperature is not None and (ev.temperature.slope_c_per_h or 0) > 0.1
        if temp_rising and len(actions) < 2 and fault != "lubrication":
            actions.append({"what": "Check lubrication and re-grease if needed",
                            "why": "bearing temperature is rising",
                            "evidence": cite("temp:trend", "temp:latest"), "kb": kb("kb:lubrication")})
        return {"actions": actions[:2]}

    async def aclose(self) -> None:
        """Nothing to release."""
