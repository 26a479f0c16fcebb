"""Plotly figures of the dashboard. Pure functions of plain data: no Streamlit, no store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import plotly.graph_objects as go
from numpy.typing import NDArray

from dashboard._limits import Limit
from dashboard._ui import rul_unit_text
from ingest.store.queries import PredictionView, TrendPoint

__all__ = ["COLOURS", "bar_figure", "envelope_trend_figure", "feature_trend_figure", "health_figure", "rul_figure",
           "series_figure", "spectrum_figure", "trend_figure", "velocity_figure"]

COLOURS = {
    "alert": "#f9a825",
    "alarm": "#c62828",
    "line": "#1565c0",
    "band": "rgba(21, 101, 192, 0.18)",
    "health": "#2e7d32",
    "envelope": "#6a1b9a",
}
_MARKER_COLOURS = {"shaft": "#546e7a", "BPFO": "#c62828", "BPFI": "#ef6c00", "BSF": "#2e7d32", "FTF": "#6a1b9a"}
#: Right-hand axis of the health index; own ticks, or plotly aligns them to the left axis's grid.
_HEALTH_AXIS = {"title": "health index", "overlaying": "y", "side": "right", "range": [0, 1.05], "showgrid": False,
                "tickmode": "array", "tickvals": [0, 0.25, 0.5, 0.75, 1.0]}
#: ISO 10816/20816 zone fills, faint: the zones are context, the trend line is the message.
_ZONE_FILLS = {"A": "rgba(46, 125, 50, 0.07)", "B": "rgba(124, 179, 66, 0.09)", "C": "rgba(249, 168, 37, 0.12)",
               "D": "rgba(198, 40, 40, 0.10)"}


def _layout(fig: go.Figure, title: str, y_title: str, x_title: str = "", height: int = 320) -> go.Figure:
    # Legend under the plot: above it, it collides with the title and the marker labels.
    fig.update_layout(title={"text": title, "font": {"size": 15}}, height=height,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=y_title, xaxis_title=x_title,
                      hovermode="x unified",
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0})
    return fig


def _limit_lines(fig: go.Figure, limits: Sequence[Limit], unit: str) -> None:
    for lim in limits:
        fig.add_hline(y=lim.value, line={"color": COLOURS[lim.level], "dash": "dash", "width": 1.4},
                      annotation_text=f"{lim.label} ({lim.value:.3g} {unit})", annotation_position="top left",
                      annotation_font={"size": 11, "color": COLOURS[lim.level]})


def series_figure(times: Sequence[datetime], values: Sequence[float], title: str, unit: str, *,
                  limits: Sequence[Limit] = (), bad: Sequence[tuple[datetime, float]] = (),
                  from_zero: bool = True) -> go.Figure:
    """One value over time with horizontal limit lines and crosses at windows of bad data quality."""
    fig = go.Figure(go.Scatter(x=list(times), y=list(values), mode="lines", name=title.split(" · ", maxsplit=1)[0],
                               line={"color": COLOURS["line"], "width": 1.6}))
    if bad:
        fig.add_trace(go.Scatter(x=[b[0] for b in bad], y=[b[1] for b in bad], mode="markers", name="bad quality",
                                 marker={"color": COLOURS["alarm"], "symbol": "x", "size": 7}))
    _limit_lines(fig, limits, unit)
    if limits and values:
        top = max(*values, *(lim.value for lim in limits))
        fig.update_yaxes(range=[min(0.0, *values) if from_zero else min(values) - 2, top * 1.12])
    return _layout(fig, title, unit)


def trend_figure(points: Sequence[TrendPoint], value: str, title: str, unit: str,
                 limits: Sequence[Limit] = ()) -> go.Figure:
    """A trend of raw batches' ``value`` (``v_rms`` or ``v_mean``) over time with horizontal limit lines."""
    bad = [(p.start, float(getattr(p, value))) for p in points if p.quality != "good"]
    return series_figure([p.start for p in points], [float(getattr(p, value)) for p in points], title, unit,
                         limits=limits, bad=bad, from_zero=value == "v_rms")


def velocity_figure(times: Sequence[datetime], values: Sequence[float], title: str,
                    zone_limits: tuple[float, float, float], machine_class: str) -> go.Figure:
    """Velocity RMS (mm/s) over the ISO 10816/20816 zones A-D of the machine class."""
    fig = go.Figure(go.Scatter(x=list(times), y=list(values), mode="lines", name="velocity RMS",
                               line={"color": COLOURS["line"], "width": 1.6}))
    top = max([*values, zone_limits[1]]) * 1.15
    edges = [0.0, *zone_limits, max(top, zone_limits[2] * 1.15)]
    for zone, lo, hi in zip("ABCD", edges[:-1], edges[1:], strict=True):
        if lo >= top:
            break
        fig.add_hrect(y0=lo, y1=min(hi, top), fillcolor=_ZONE_FILLS[zone], line_width=0, layer="below",
                      annotation_text=f"zone {zone}", annotation_position="top left",
                      annotation_font={"size": 10, "color": "#607d8b"})
    fig.update_yaxes(range=[0, top])
    return _layout(fig, f"{title} · ISO class {machine_class}", "mm/s")


def health_figure(times: Sequence[datetime], health_index: Sequence[float | None], hi: Sequence[float | None],
                  threshold: Sequence[float | None], alarm: Sequence[float | None]) -> go.Figure:
    """The health indicator against the adaptive threshold, the health index (0-1), and anomaly windows."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(times), y=list(hi), mode="lines", name="health indicator (log RMS ratio)",
                             line={"color": COLOURS["line"], "width": 1.6}))
    if any(t is not None for t in threshold):
        fig.add_trace(go.Scatter(x=list(times), y=list(threshold), mode="lines", name="adaptive threshold",
                                 line={"color": COLOURS["alarm"], "dash": "dash", "width": 1.4}))
    on = [(t, h) for t, h, a in zip(times, hi, alarm, strict=True) if a is not None and a >= 0.5 and h is not None]
    if on:
        fig.add_trace(go.Scatter(x=[o[0] for o in on], y=[o[1] for o in on], mode="markers", name="anomaly alarm on",
                                 marker={"color": COLOURS["alarm"], "size": 5}))
    fig.add_trace(go.Scatter(x=list(times), y=list(health_index), mode="lines", name="health index", yaxis="y2",
                             line={"color": COLOURS["health"], "width": 1.4, "dash": "dot"}))
    fig.update_layout(yaxis2=_HEALTH_AXIS)
    return _layout(fig, "Health", "health indicator")


def envelope_trend_figure(times: Sequence[datetime], series: Mapping[str, Sequence[float | None]], title: str,
                          unit: str) -> go.Figure:
    """Envelope amplitudes (or their SNR) at bearing defect frequencies over time, one line per family."""
    fig = go.Figure()
    for family, values in series.items():
        fig.add_trace(go.Scatter(x=list(times), y=list(values), mode="lines", name=family, connectgaps=False,
                                 line={"color": _MARKER_COLOURS.get(family, COLOURS["line"]), "width": 1.5}))
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
    """RUL median with its interval band, and the health index on a second axis.

    Where the median sits at the model's cap the band runs from the cap up: the model only says
    "at least the cap" there.
    """
    x = [p.at for p in preds]
    unit = preds[-1].rul_unit if preds else "h"
    coverage = preds[-1].coverage if preds else 0.9
    # A median at the model's cap means "at least the cap": the band starts there, never below it.
    lower = [p.rul_cap if p.at_cap and p.rul_cap is not None else p.rul_lower for p in preds]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[max(p.rul_upper, lo) for p, lo in zip(preds, lower, strict=True)], mode="lines",
                             line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=x, y=lower, mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor=COLOURS["band"], name=f"{coverage:.0%} interval"))
    fig.add_trace(go.Scatter(x=x, y=[p.rul_median for p in preds], mode="lines", name="RUL median",
                             line={"color": COLOURS["line"], "width": 2}))
    hi = [(p.at, p.health_index) for p in preds if p.health_index is not None]
    if hi:
        fig.add_trace(go.Scatter(x=[h[0] for h in hi], y=[h[1] for h in hi], mode="lines", name="health index",
                                 yaxis="y2", line={"color": COLOURS["health"], "width": 1.4, "dash": "dot"}))
        fig.update_layout(yaxis2=_HEALTH_AXIS)
    return _layout(fig, "Remaining useful life", f"RUL ({rul_unit_text(unit)})", height=340)


def bar_figure(labels: Sequence[str], values: Sequence[float], title: str, y_title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color=COLOURS["alarm"]))
    return _layout(fig, title, y_title, height=260)


def feature_history_figure(starts: Sequence[datetime], mean: Sequence[float], low: Sequence[float],
                           high: Sequence[float], title: str) -> go.Figure:
    """A feature's hourly or daily buckets: the mean as a line inside the min-max band."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(starts), y=list(high), mode="lines", line={"width": 0}, name="max",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=list(starts), y=list(low), mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor=COLOURS["band"], name="min-max"))
    fig.add_trace(go.Scatter(x=list(starts), y=list(mean), mode="lines+markers", name="mean",
                             line={"color": COLOURS["line"], "width": 1.4}, marker={"size": 4}))
    return _layout(fig, title, title.split(" · ", maxsplit=1)[0])


def feature_trend_figure(times: Sequence[datetime], values: Sequence[float], title: str) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(times), y=list(values), mode="lines+markers", name=title,
                               line={"color": COLOURS["line"], "width": 1.4}, marker={"size": 4}))
    return _layout(fig, title, title)
