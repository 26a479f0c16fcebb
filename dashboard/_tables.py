"""Tables the pages show: single-typed columns, readable evidence, one unit per quantity. Pure: no Streamlit.

Streamlit hands a ``DataFrame`` to Arrow, which refuses a column mixing numbers and text
(``ArrowInvalid``); :func:`single_typed` makes every column one type first. Evidence from the
prescriber (:class:`prescribe.schema.EvidenceItem`) reads as a list of facts, not as JSON, and in
the dashboard's units: remaining life in hours, temperature rates in K/h (:func:`dashboard_units`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["EVIDENCE_KINDS", "dashboard_units", "evidence_rows", "fmt_value", "single_typed"]

#: What each kind of evidence item is, in words.
EVIDENCE_KINDS = {"rul": "Remaining life", "fault": "Fault call", "zone": "ISO vibration zone", "peak": "Envelope peak",
                  "temperature": "Temperature", "alarm": "Alarm", "work_order": "Past work order", "asset": "Asset",
                  "knowledge": "Procedure"}

# "7.2 d" (days) -> hours; degC/h and degC/min -> K/h; degC -> °C.
_DAYS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) d\b(?! ago)")
_PER_MIN = re.compile(r"([+-]?\d+(?:\.\d+)?) ?(?:degC|°C|K)/min\b")
_PER_H = re.compile(r"(?:degC|°C)/h\b")


def dashboard_units(text: str) -> str:
    """``text`` in the dashboard's units: durations in hours, temperature rates in K/h, temperatures in °C.

    ``'RUL 7.2 d'`` reads ``'RUL 173 h'``, ``'+0.05 degC/min'`` reads ``'+3.00 K/h'`` and
    ``'+1.20 degC/h'`` reads ``'+1.20 K/h'``.
    """
    out = _DAYS.sub(lambda m: f"{float(m.group(1)) * 24:.0f} h", text)
    out = _PER_MIN.sub(lambda m: f"{float(m.group(1)) * 60:+.2f} K/h", out)
    out = _PER_H.sub("K/h", out)
    return out.replace("degC", "°C")


def fmt_value(v: Any) -> str:
    """One cell as text: numbers to 4 significant digits, flags as yes/no, nothing as an empty cell."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(fmt_value(x) for x in v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {fmt_value(x)}" for k, x in v.items())
    return str(v)


def _numeric(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def single_typed(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every column of one type: numbers (blanks as NaN) where all values are numbers,
    else text (numbers formatted by :func:`fmt_value`)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype != object:
            continue
        present = [v for v in out[col] if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if present and all(_numeric(v) for v in present):
            out[col] = pd.to_numeric(out[col], errors="coerce")
        elif present and not all(isinstance(v, str) for v in present):
            out[col] = [fmt_value(v) for v in out[col]]
    return out


def _rul_reading(values: Mapping[str, Any], fallback: str) -> str:
    median, lower, upper = (values.get(k) for k in ("median_h", "lower_h", "upper_h"))
    if not all(_numeric(x) for x in (median, lower, upper)):
        return dashboard_units(fallback)
    cap = values.get("cap_h")
    if values.get("at_cap") and _numeric(cap):
        return f"RUL ≥ {cap:.0f} h (at the model's cap: no end of life in sight)"
    coverage = values.get("coverage")
    cover = f"{coverage:.0%} " if _numeric(coverage) else ""
    return f"RUL {median:.0f} h, {cover}interval {lower:.0f}–{upper:.0f} h"


def _reading(item: Mapping[str, Any]) -> str:
    raw = item.get("values")
    values: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    summary = str(item.get("summary", ""))
    if item.get("id") == "rul:latest":
        return _rul_reading(values, summary)
    return dashboard_units(summary)


def _details(item: Mapping[str, Any]) -> str:
    values = item.get("values")
    if not isinstance(values, Mapping):
        return ""
    shown = []
    for k, v in values.items():
        if v is None or v == "":
            continue
        key, value = str(k), v
        if key.endswith("_per_min") and _numeric(value):  # a rate per minute reads per hour, like everywhere else
            key, value = key.removesuffix("_per_min") + "_per_h", value * 60
        shown.append(f"{key} {fmt_value(value)}")
    return " · ".join(shown)


def evidence_rows(evidence: Any) -> list[dict[str, str]]:
    """Evidence as rows of text (``Evidence``, ``Reading``, ``Details``), in the dashboard's units.

    Args:
        evidence: a list of evidence items (``{id, kind, summary, values}``), a mapping of
            name to value, or a list of ids or lines.

    Returns:
        One row per fact; empty for empty or unrecognised evidence.
    """
    if isinstance(evidence, Mapping):
        return [{"Evidence": str(k).replace("_", " "), "Reading": fmt_value(v), "Details": ""}
                for k, v in evidence.items()]
    if not isinstance(evidence, list | tuple):
        return []
    rows = []
    for e in evidence:
        if isinstance(e, Mapping):
            kind = str(e.get("kind", ""))
            ident = str(e.get("id", ""))
            label = EVIDENCE_KINDS.get(kind, kind.replace("_", " ") or "Fact")
            rows.append({"Evidence": f"{label} ({ident})" if ident else label, "Reading": _reading(e),
                         "Details": _details(e)})
        else:
            rows.append({"Evidence": "", "Reading": dashboard_units(str(e)), "Details": ""})
    return rows
