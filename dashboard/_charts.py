"""Plotly figures of the dashboard. Pure functions of plain data: no Streamlit, no store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import plotly.graph_objects as go
from numpy.typing import NDArray

from dashboard._limits import Limit
from ingest.store.queries import PredictionView, TrendPoint

__all__ = ["COLOURS", "bar_figure", "rul_figure", "spectrum_figure", "trend_figure"]

COLOURS = {
    "alert": "#f9a825",
    "alarm": "#c62828",
    "line": "#1565c0",
    "band": "rgba(21, 101, 192, 0.18)",
    "health": "#2e7d32",
    "envelope": "#6a1b9a",
}
_MARKER_COLOURS = {"shaft": "#546e7a", "BPFO": "#c62828", "BPFI": "#ef6c00", "BSF": "#2e7d32", "FTF": "#6a1b9a"}


def _layout(fig: go.Figure, title: str, y_title: str, x_title: str = "", height: int = 320) -> go.Figure:
    # Legend under the plot: above it, it collides with the title and the marker labels.
    fig.update_layout(title={"text": title, "font": {"size": 15}}, height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=y_title, xaxis_title=x_title,
                      hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0})
    return fig


def trend_figure(points: Sequence[TrendPoint], value: str, title: str, unit: str,
                 limits: Sequence[Limit] = ()) -> go.Figure:
    """A trend of ``value`` (``v_rms`` or ``v_mean``) over time with horizontal limit lines."""
    x = [p.start for p in points]
    y = [getattr(p, value) for p in points]
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines", name=title, line={"color": COLOURS["line"], "width": 1.6}))
    bad = [(p.start, getattr(p, value)) for p in points if p.quality != "good"]
    if bad:
        fig.add_trace(go.Scatter(x=[b[0] for b in bad], y=[b[1] for b in bad], mode="markers", name="bad quality",
                                 marker={"color": COLOURS["alarm"], "symbol": "x", "size": 7}))
    for lim in limits:
        fig.add_hline(y=lim.value, line={"color": COLOURS[lim.level], "dash": "dash", "width": 1.4},
                      annotation_text=f"{lim.label} ({lim.value:.3g} {unit})", annotation_position="top left",
                      annotation_font={"size": 11, "color": COLOURS[lim.level]})
    if limits and y:
        top = max(*y, *(lim.value for lim in limits))
        fig.update_yaxes(range=[min(0.0, *y) if value == "v_rms" else min(y) - 2, top * 1.12])
    return _layout(fig, title, unit)


def spectrum_figure(freqs: NDArray[np.float64], amp: NDArray[np.float64], title: str, unit: str, *,
                    markers: Sequence[tuple[str, float, str]] = (), fmax: float | None = None,
                    colour: str = COLOURS["line"]) -> go.Figure:
    """An amplitude spectrum with labelled vertical markers (bearing defect frequencies)."""
    if fmax is not None:
        keep = freqs <= fmax
        freqs, amp = freqs[keep], amp[keep]
    fig = go.Figure(go.Scatter(x=freqs, y=amp, mode="lines", name=title.split(" · ", maxsplit=1)[0],
                               line={"color": colour, "width": 1.2}))
    top = float(amp.max()) if amp.size else 1.0
    shown: set[str] = set()
    for label, f, family in markers:
        if fmax is not None and f > fmax:
            continue
        colour_m = _MARKER_COLOURS.get(family, "#455a64")
        fig.add_trace(go.Scatter(x=[f, f], y=[0, top * 1.05], mode="lines", name=family,
                                 legendgroup=family, showlegend=family not in shown,
                                 line={"color": colour_m, "dash": "dot", "width": 1.2},
                                 hovertemplate=f"{label} %{{x:.1f}} Hz<extra></extra>"))
        shown.add(family)
        fig.add_annotation(x=f, y=top * 1.05, text=label, showarrow=False, yanchor="bottom",
                           font={"size": 10, "color": colour_m}, textangle=-60)
    fig.update_yaxes(range=[0, top * 1.25])
    return _layout(fig, title, unit, "frequency (Hz)", height=380)


def rul_figure(preds: Sequence[PredictionView]) -> go.Figure:
    """RUL median with its interval band, and the health index on a second axis."""
    x = [p.at for p in preds]
    unit = preds[-1].rul_unit if preds else "h"
    coverage = preds[-1].coverage if preds else 0.9
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[p.rul_upper for p in preds], mode="lines", line={"width": 0},
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=[p.rul_lower for p in preds], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor=COLOURS["band"], name=f"{coverage:.0%} interval"))
    fig.add_trace(go.Scatter(x=x, y=[p.rul_median for p in preds], mode="lines", name="RUL median",
                             line={"color": COLOURS["line"], "width": 2}))
    hi = [(p.at, p.health_index) for p in preds if p.health_index is not None]
    if hi:
        fig.add_trace(go.Scatter(x=[h[0] for h in hi], y=[h[1] for h in hi], mode="lines", name="health index",
                                 yaxis="y2", line={"color": COLOURS["health"], "width": 1.4, "dash": "dot"}))
        fig.update_layout(yaxis2={"title": "health index", "overlaying": "y", "side": "right", "range": [0, 1.05],
                                  "showgrid": False})
    return _layout(fig, "Remaining useful life", f"RUL ({unit})", height=340)


def bar_figure(labels: Sequence[str], values: Sequence[float], title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color=COLOURS["alarm"]))
    return _layout(fig, title, y_title, height=260)


def feature_trend_figure(times: Sequence[datetime], values: Sequence[float], title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(times), y=list(values), mode="lines+markers", name=title,
                               line={"color": COLOURS["line"], "width": 1.4}, marker={"size": 4}))
    return _layout(fig, title, title)
