"""The what-if view of one asset: simulated futures under each option, their risk and cost, and the choice.

:func:`show_whatif` draws :func:`prescribe.whatif.whatif_from_store` for one asset: the
recommendation in plain words, a cost/risk table with one row per option, and a fan chart of the
health index per option (the 5-95 % and 25-75 % bands of the futures and their median, in plant
hours from now). The engineer changes the derate option's share and the date of the "repair at
next planned stop" option and reruns. The rest of this module is pure (no Streamlit, no store):
the table's rows, the text, the figures and the conversion of a chosen date to plant hours.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from numpy.typing import NDArray

from core.errors import GenEdgeError
from core.twin import QUANTILES
from dashboard._charts import COLOURS
from dashboard._context import _open_store, settings
from dashboard._tables import single_typed
from prescribe.whatif import WhatIf, whatif_from_store

__all__ = [
    "DERATE_RANGE_PCT",
    "default_derate_pct",
    "default_repair_at",
    "fan_figure",
    "generator_text",
    "option_rows",
    "recommendation_text",
    "repair_choice",
    "repair_hours",
    "show_whatif",
    "whatif_table",
]

_log = logging.getLogger(__name__)

#: The derate share the engineer may pick, in % of the load taken off.
DERATE_RANGE_PCT = (10, 60)
#: A what-if reads up to 500 feature windows and draws hundreds of futures: a few seconds old is fresh.
_FRESH = timedelta(seconds=5)
_TIME = "%Y-%m-%d %H:%M"
#: Fan bands: the outer one (5-95 %) faint, the inner one (25-75 %) stronger.
_OUTER, _INNER = "rgba(21, 101, 192, 0.14)", "rgba(21, 101, 192, 0.32)"


# ------------------------------------------------------------------------------ pure helpers
def default_derate_pct(plant_share: float) -> int:
    """The slider's starting derate in %: the plant's ``derate_share``, kept within :data:`DERATE_RANGE_PCT`."""
    lo, hi = DERATE_RANGE_PCT
    return int(min(max(round(plant_share * 100), lo), hi))


def _utc(t: datetime) -> datetime:
    """``t`` as an aware UTC time; a naive ``t`` (what a date input returns) is read as UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def repair_hours(chosen: datetime, at: datetime, time_scale: float) -> float:
    """Plant hours from ``at`` to the wall-clock time ``chosen`` (naive: UTC).

    Args:
        chosen: the repair's wall-clock time.
        at: when the what-if is judged.
        time_scale: plant hours per wall-clock hour (1 for a real plant).

    Raises:
        ValueError: ``time_scale`` is not a finite number > 0, or ``chosen`` is before ``at``.
    """
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"time_scale must be a finite number > 0, got {time_scale!r}")
    hours = (_utc(chosen) - _utc(at)).total_seconds() / 3600.0 * time_scale
    if hours < 0:
        raise ValueError(f"the repair date {_utc(chosen):{_TIME}} UTC is in the past "
                         f"(the what-if is judged at {_utc(at):{_TIME}} UTC)")
    return hours


def default_repair_at(w: WhatIf) -> datetime | None:
    """The date input's starting value: when "repair at next planned stop" repairs, to the minute, naive UTC.

    ``None`` when the calendar holds no planned stop (after the spare part arrives).
    """
    o = w.outcome("repair_next_stop")
    hours = o.option.repair_h if o is not None else w.next_stop_h
    due = w.due_at(hours) if hours is not None else None
    return None if due is None else _utc(due).replace(second=0, microsecond=0, tzinfo=None)


def repair_choice(chosen: datetime | None, default: datetime | None, at: datetime, time_scale: float) -> float | None:
    """``repair_in_h`` for :func:`prescribe.whatif.whatif_from_store` from the date input.

    ``None`` (the calendar's next stop) when nothing is chosen or the date shown first is kept:
    the shown date is cut to the minute, and converting it back would move the repair before the
    stop begins (by up to a minute of wall-clock time, an hour of plant time on the demo's clock).

    Raises:
        ValueError: see :func:`repair_hours`.
    """
    if chosen is None or (default is not None and _utc(chosen) == _utc(default)):
        return None
    return repair_hours(chosen, at, time_scale)


def _pct(p: float) -> float:
    return round(100.0 * p, 1)


def _hours(h: float) -> float | None:
    return round(h, 1) if math.isfinite(h) else None


def option_rows(w: WhatIf) -> list[dict[str, Any]]:
    """One row per option: when it repairs, its risks (%), its costs and the failure-time quantiles.

    Every column holds one type (numbers, blanks as ``None``, or text) and names its unit. Run on
    has no repair (its risk counts up to the horizon it is judged over); a failure time beyond
    reach is blank.
    """
    cur = w.currency
    quantile_at = {q: i for i, q in enumerate(QUANTILES)}
    rows: list[dict[str, Any]] = []
    for o in w.outcomes:
        opt = o.option
        repairs = opt.name != "run_on" and math.isfinite(opt.repair_h)
        due = w.due_at(opt.repair_h) if repairs else None
        q = o.failure_quantiles_h
        rows.append({
            "Option": opt.label,
            "Choice": "recommended" if opt.name == w.choice else "",
            "Repair in (plant h)": _hours(opt.repair_h) if repairs else None,
            "Due (UTC)": f"{_utc(due):{_TIME}}" if due is not None else "",
            "Derate (% of load)": _pct(opt.derate_share),
            "P(fail before repair) (%)": _pct(o.p_fail_before_repair),
            "P(fail in 24 h) (%)": _pct(o.p_fail_24h),
            "P(fail before next stop) (%)": _pct(o.p_fail_before_stop),
            f"Expected cost ({cur})": round(o.expected_cost, 0),
            f"Cost per hour ({cur}/h)": round(o.cost_per_h, 1),
            "RUL p5 (h)": _hours(q[quantile_at[0.05]]),
            "RUL p50 (h)": _hours(q[quantile_at[0.5]]),
            "RUL p95 (h)": _hours(q[quantile_at[0.95]]),
        })
    return rows


def whatif_table(w: WhatIf) -> pd.DataFrame:
    """:func:`option_rows` as a frame of single-typed columns (blanks as NaN in number columns)."""
    return single_typed(pd.DataFrame(option_rows(w)))


def recommendation_text(w: WhatIf) -> str:
    """The recommendation in one Markdown sentence: the choice, when, its risk against the limit, its cost."""
    c = w.chosen
    if c is None:
        return f"Recommended: **{w.reason[:1].upper()}{w.reason[1:]}**."
    opt = c.option
    if opt.name == "run_on":
        when, before = "", "before the horizon it is judged over"
    else:
        due = w.due_at(opt.repair_h)
        when = f", due {_utc(due):{_TIME}} UTC (in {opt.repair_h:.0f} plant h)" if due is not None else ""
        before = "before the repair"
    side = "within" if c.p_fail_before_repair <= w.risk_limit else "above"
    return (f"Recommended: **{opt.label}**{when}. Risk of failing {before}: {c.p_fail_before_repair:.0%}, "
            f"{side} the plant's limit of {w.risk_limit:.0%}; expected cost {c.expected_cost:,.0f} {w.currency}.")


def generator_text(w: WhatIf) -> str:
    """Which generator made the futures, and how many."""
    n = w.futures.n if w.futures is not None else 0
    if w.generator == "analogs":
        near = w.futures.neighbours if w.futures is not None else 0
        return (f"{n} simulated futures from the analog library of {w.model}: the outcomes of the {near} "
                "run-to-failure cases whose predictions were nearest to this one.")
    if w.generator == "interval":
        return (f"{n} simulated futures from the RUL model's interval (log-normal through it): {w.model or 'the model'} "
                "has no analog library.")
    return "No simulated futures."


def fan_figure(times_h: NDArray[np.float64], quantiles: NDArray[np.float64], title: str, *,
               repair_h: float | None = None, height: int = 280) -> go.Figure:
    """A fan chart of the health index: the 5-95 % and 25-75 % bands of the futures and their median.

    Args:
        times_h: plant hours from now.
        quantiles: the health index at :data:`core.twin.QUANTILES` (rows) over ``times_h`` (columns).
        title: the chart's title.
        repair_h: plant hours to the option's repair (a dashed line); ``None``: no repair.
        height: pixels.

    Raises:
        ValueError: ``quantiles`` is not ``(len(QUANTILES), len(times_h))``.
    """
    x = np.asarray(times_h, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    if q.shape != (len(QUANTILES), x.size):
        raise ValueError(f"quantiles must have shape ({len(QUANTILES)}, {x.size}), got {q.shape}")
    xs = x.tolist()
    fig = go.Figure()
    for (lo, hi), colour, name in (((0, 4), _OUTER, "5–95 % of futures"), ((1, 3), _INNER, "25–75 % of futures")):
        fig.add_trace(go.Scatter(x=xs, y=q[hi].tolist(), mode="lines", line={"width": 0}, showlegend=False,
                                 hoverinfo="skip", legendgroup=name))
        fig.add_trace(go.Scatter(x=xs, y=q[lo].tolist(), mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=colour, name=name, legendgroup=name))
    fig.add_trace(go.Scatter(x=xs, y=q[2].tolist(), mode="lines", name="median",
                             line={"color": COLOURS["line"], "width": 2}))
    if repair_h is not None and math.isfinite(repair_h):
        fig.add_vline(x=repair_h, line={"color": COLOURS["health"], "dash": "dash", "width": 1.4},
                      annotation_text=f"repair ({repair_h:.0f} h)", annotation_position="top right",
                      annotation_font={"size": 11, "color": COLOURS["health"]})
    fig.update_yaxes(range=[0, 1.05])
    # Legend under the plot, like the dashboard's other charts: above it collides with the title.
    fig.update_layout(title={"text": title, "font": {"size": 14}}, height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title="health index",
                      xaxis_title="plant hours from now", hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0.0})
    return fig


# ------------------------------------------------------------------------------ the view
@st.cache_data(ttl=_FRESH, show_spinner=False)
def _load(url: str, asset_id: str, derate_share: float | None, repair_in_h: float | None) -> WhatIf:
    return whatif_from_store(_open_store(url), asset_id, settings(), derate_share=derate_share,
                             repair_in_h=repair_in_h)


def _run(url: str, asset_id: str, derate_share: float | None, repair_in_h: float | None) -> WhatIf | None:
    """The what-if, or ``None`` after saying on the page why there is none."""
    try:
        return _load(url, asset_id, derate_share, repair_in_h)
    except (GenEdgeError, ValueError) as err:  # StoreError/ConfigError; bad inputs or stored values
        st.error(f"The what-if could not be computed: {err}", icon=":material/error:")
    except Exception as err:  # an unforeseen failure must not take the asset page down with it
        _log.exception("what-if of %s failed", asset_id)
        st.error(f"The what-if could not be computed ({type(err).__name__}): {err}", icon=":material/error:")
    return None


def _inputs(w: WhatIf) -> tuple[float, datetime | None, datetime | None]:
    """The form: derate share (0-1), the chosen repair date and the date shown first."""
    default_at = default_repair_at(w)
    with st.form(f"whatif-form-{w.asset_id}", border=False):
        c = st.columns([2, 2, 1], vertical_alignment="bottom")
        pct = c[0].slider("Derate: load taken off (%)", *DERATE_RANGE_PCT, default_derate_pct(settings().plant.derate_share),
                          step=1, key=f"whatif-derate-{w.asset_id}",
                          help="The derate option runs at this much less load until its repair; a bearing fault "
                               "then grows slower by the load-life law.")
        # The default is part of the key: a new calendar stop resets a date picked for the old one.
        stamp = f"{default_at:%Y%m%d%H%M}" if default_at is not None else "none"
        chosen = c[1].datetime_input("Repair at next stop (UTC)", value=default_at, step=timedelta(minutes=1),
                                     key=f"whatif-repair-{w.asset_id}-{stamp}",
                                     help="When 'repair at next planned stop' (and the derate option) repair; "
                                          "the calendar's next stop after the spare part arrives unless changed.")
        c[2].form_submit_button("Rerun", icon=":material/refresh:", type="primary")
    return pct / 100.0, chosen, default_at


def _recommendation(w: WhatIf) -> None:
    c = w.chosen
    text = recommendation_text(w)
    if c is not None and w.developing and c.p_fail_before_repair > w.risk_limit:
        st.warning(text, icon=":material/warning:")
    else:
        st.success(text, icon=":material/lightbulb:")
    st.caption(f"Why: {w.reason}. Decision state {w.state.replace('_', ' ')}.")


def _fans(w: WhatIf) -> None:
    cols = st.columns(2)
    for i, o in enumerate(w.outcomes):
        name = o.option.name
        times, quantiles = w.fan(name)
        repair = o.option.repair_h if name != "run_on" else None
        with cols[i % 2]:
            st.plotly_chart(fan_figure(times, quantiles, f"Health index · {o.option.label}", repair_h=repair),
                            key=f"whatif-fan-{name}")


def _table(w: WhatIf) -> None:
    df = whatif_table(w)
    formats = {col: "{:,.0f}" if col.startswith("Expected cost") else "{:,.1f}"
               for col in df.columns if pd.api.types.is_numeric_dtype(df[col])}
    st.table(df.style.format(formats, na_rep="—").hide(axis="index"))
    run_on = w.outcome("run_on")
    horizon = run_on.option.repair_h if run_on is not None else math.inf
    st.caption("Hours are plant hours from now; risks over the simulated futures. Run on has no repair: its risk "
               + (f"counts up to {horizon:.0f} h, the horizon it is judged over" if math.isfinite(horizon) else
                  "counts over every future") + ". A blank RUL: no failure in sight in enough futures.")


def _body(url: str, asset_id: str) -> None:
    base = _run(url, asset_id, None, None)
    if base is None:
        return
    if not base.outcomes:
        st.info(f"No RUL prediction for {asset_id} yet: the what-if needs one to start its futures from.",
                icon=":material/timeline:")
        return
    share, chosen, default_at = _inputs(base)
    try:
        repair_in_h = repair_choice(chosen, default_at, base.at, base.time_scale)
    except ValueError as err:
        st.warning(f"{err}: the what-if repairs at the calendar's next stop instead.", icon=":material/event_busy:")
        repair_in_h = None
    derate = base.outcome("derate")
    unchanged = derate is not None and share == derate.option.derate_share and repair_in_h is None
    w = base if unchanged else _run(url, asset_id, share, repair_in_h)
    if w is None:
        return
    _recommendation(w)
    st.caption(generator_text(w))
    nxt = w.outcome("repair_next_stop")
    if repair_in_h is not None and nxt is not None and abs(nxt.option.repair_h - repair_in_h) > 1e-6:
        st.warning(f"The spare part arrives {w.costs.lead_time_h:.0f} plant h from now: the repair moves to "
                   f"{nxt.option.repair_h:.0f} h.", icon=":material/local_shipping:")
    _table(w)
    _fans(w)


@st.fragment
def show_whatif(url: str, asset_id: str) -> None:
    """The what-if of ``asset_id``: the recommendation, the cost/risk table and a fan chart per option.

    A fragment: "Rerun" recomputes only this view, not the rest of the asset page. An asset
    without a RUL prediction gets one line; a failure of the what-if shows as an error message.
    """
    st.caption("What if the asset runs on, is derated, or is repaired at the next planned stop or now? Futures of "
               "its developing fault under each option, their risk and cost (docs/decisions.md).")
    _body(url, asset_id)
