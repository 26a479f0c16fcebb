"""Prescriber: evidence -> recommendation -> work order, with text backends behind one protocol.

Priority and deadline are computed by :mod:`prescribe.policy` from the RUL interval and the
asset's criticality; a backend (local model, OpenAI-compatible server, or rule templates)
writes only the actions' text and cites the evidence and procedures they rest on.
"""

from __future__ import annotations

from prescribe.backends import Backend, LocalBackend, OpenAIBackend, RulesBackend, make_backend
from prescribe.evidence import from_simulator, from_store
from prescribe.knowledge import load_knowledge, retrieve
from prescribe.policy import DeadlinePolicy, Decision, DecisionPolicy, assess
from prescribe.prescriber import Outcome, Prescriber
from prescribe.schema import Action, Evidence, EvidenceItem, Recommendation, WorkOrderDraft

__all__ = [
    "Action",
    "Backend",
    "DeadlinePolicy",
    "Decision",
    "DecisionPolicy",
    "Evidence",
    "EvidenceItem",
    "LocalBackend",
    "OpenAIBackend",
    "Outcome",
    "Prescriber",
    "Recommendation",
    "RulesBackend",
    "WorkOrderDraft",
    "assess",
    "from_simulator",
    "from_store",
    "load_knowledge",
    "make_backend",
    "retrieve",
]
