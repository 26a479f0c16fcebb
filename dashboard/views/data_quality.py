"""Data quality: what was rejected at ingest and why, how fresh each asset and channel is, publisher status.

The edge agent sends every channel as features (one window per tick) and the slow channels also
raw; vibration and sound go raw only in snapshots. A channel is fresh when it is in the asset's
recent feature windows or raw batches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

from core.wire import utcnow
from dashboard import _charts, _data, _ui
from dashboard import _context as ctx
from ingest.store.queries import AssetOverview

#: How far back the channel table looks for a channel in the feature windows.
LOOKBACK_MIN = 10


def _dead_letters(url: str) -> None:
    st.subheader("Dead letters", divider="gray")
    st.caption("Messages the ingest service rejected, with the reason. Redeliveries of the same bad message are "
               "stored once.")
    counts = _data.load_dead_letter_counts(url)
    if not counts:
        st.success("No message has been rejected.", icon=":material/check_circle:")
        return
    c = st.columns([2, 3])
    with c[0]:
        st.metric("Rejected messages", sum(counts.values()))
        st.dataframe(pd.DataFrame(sorted(counts.items(), key=lambda kv: -kv[1]), columns=["reason", "count"]),
                     hide_index=True, key="dl_counts")
    with c[1]:
        st.plotly_chart(_charts.bar_figure(list(counts), list(counts.values()), "Rejected by reason", "messages"),
                        key="dl_bar")
    reason = st.selectbox("Reason", ["all", *sorted(counts)], key="dl_reason")
    letters = _data.load_dead_letters(url, None if reason == "all" else reason, 200)
    st.dataframe(pd.DataFrame([{"time": d.received_at, "topic": d.topic, "reason": d.reason, "detail": d.detail,
                                "bytes": d.payload_bytes, "payload (start)": d.payload_preview} for d in letters]),
                 hide_index=True, key="dl_table",
                 column_config={"detail": st.column_config.TextColumn(width="large")})


def _asset_rows(rows: list[AssetOverview], now: datetime) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        f = r.features
        out.append({"asset": r.asset.asset_id, "data quality": r.quality,
                    "newest feature window": f.window_start if f else None,
                    "window quality": f.quality if f else None, "publisher": f.publisher if f else None,
                    "last update": r.last_update, "age": _ui.ago(r.last_update, now)})
    return out


def _channel_rows(r: AssetOverview, url: str, now: datetime) -> list[dict[str, Any]]:
    channels = [c for c in r.asset.config.get("channels", []) if isinstance(c, dict) and "name" in c]
    names = [str(c["name"]) for c in channels] or sorted({*r.readings, *(r.features.features if r.features else {})}
                                                          - {"health"})
    seen = _data.load_channels_seen(url, r.asset.asset_id, tuple(names), LOOKBACK_MIN)
    stale = _data.stale_after()
    frame_fresh = r.features is not None and now - r.features.window_start <= stale
    out = []
    for name in names:
        conf = next((c for c in channels if c["name"] == name), {})
        raw = r.readings.get(name)
        in_features = seen.get(name)
        flat = r.features is not None and r.features.features.get(name, {}).get("flatline", 0.0) >= 0.5
        newest = max([t for t in (in_features, raw.end if raw else None) if t is not None], default=None)
        if flat:
            quality = "flatline"
        elif newest is None:
            quality = "no data"
        elif now - newest > stale:
            # The asset's other channels still report: this one went quiet.
            quality = "silent" if frame_fresh else "stale"
        else:
            quality = raw.quality if raw is not None and now - raw.end <= stale else "good"
        out.append({"asset": r.asset.asset_id, "channel": name, "quantity": conf.get("quantity", raw.quantity if raw
                                                                                       else ""),
                    "rate (Hz)": conf.get("sample_rate_hz", raw.sample_rate_hz if raw else None), "quality": quality,
                    "in features": in_features, "last raw batch": raw.start if raw else None,
                    "raw samples": raw.n_samples if raw else None, "raw received": raw.received_at if raw else None,
                    "age": _ui.ago(newest, now)})
    return out


def _freshness(url: str) -> None:
    st.subheader("Assets and channels", divider="gray")
    rows = [r for r in _data.load_overview(url) if r.monitored]
    if not rows:
        st.info("No assets are registered yet.")
        return
    now = utcnow()
    st.dataframe(pd.DataFrame(_asset_rows(rows, now)), hide_index=True, key="asset_quality")
    channel_rows = [row for r in rows for row in _channel_rows(r, url, now)]
    st.dataframe(pd.DataFrame(channel_rows), hide_index=True, key="channel_table")
    st.caption(f"Data quality per asset: stale when nothing arrived for {_data.stale_after().total_seconds():g} s; silent, "
               "flatline or suspect when the edge marks its data so. Per channel: when it was last in the asset's "
               f"feature windows (last {LOOKBACK_MIN} min) and its newest raw batch (slow channels every tick; "
               "vibration and sound only in snapshots); silent when the asset reports but this channel does not.")


def _publishers(url: str) -> None:
    st.subheader("Publishers", divider="gray")
    status = _data.load_status(url)
    if status:
        st.dataframe(pd.DataFrame([{"publisher": s.publisher, "asset": s.asset_id, "kind": s.kind, "state": s.state,
                                    "detail": s.detail, "sent": s.sent_at} for s in status]), hide_index=True,
                     key="status_table")
    else:
        st.caption("No status, birth or death messages received yet.")


ctx.require()
st.title("Data quality")
_url = ctx.store_url()
_dead_letters(_url)
_freshness(_url)
_publishers(_url)
