"""Data quality: what was rejected at ingest and why, channel freshness, publisher status."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.wire import utcnow
from dashboard import _charts, _data, _ui
from dashboard import _context as ctx
from ingest.store.queries import assess_quality

ctx.require()
st.title("Data quality")
url = ctx.store_url()

st.subheader("Dead letters", divider="gray")
st.caption("Messages the ingest service rejected, with the reason. Redeliveries of the same bad message are "
           "stored once.")
counts = _data.load_dead_letter_counts(url)
if not counts:
    st.success("No message has been rejected.", icon=":material/check_circle:")
else:
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

st.subheader("Channels", divider="gray")
latest = _data.load_latest_readings(url)
now = utcnow()
rows = [{"asset": a, "channel": ch, "quantity": c.quantity, "unit": c.unit, "quality": c.quality,
         "last batch": c.start, "age": _ui.ago(c.end, now), "samples": c.n_samples,
         "rate (Hz)": c.sample_rate_hz, "min": c.v_min, "max": c.v_max}
        for a, per in latest.items() for ch, c in per.items()]
if rows:
    asset_rows = [{"asset": a, "data quality": assess_quality(per, now, _data.STALE_AFTER)} for a, per in latest.items()]
    st.dataframe(pd.DataFrame(asset_rows), hide_index=True, key="asset_quality")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="channel_table")
    st.caption(f"Data quality per asset: silent, flatline or suspect when the edge marks a channel so, stale when "
               f"nothing arrived for {_data.STALE_AFTER.seconds} s.")
else:
    st.info("No readings stored yet.")

st.subheader("Publishers", divider="gray")
status = _data.load_status(url)
if status:
    st.dataframe(pd.DataFrame([{"publisher": s.publisher, "asset": s.asset_id, "kind": s.kind, "state": s.state,
                                "detail": s.detail, "sent": s.sent_at} for s in status]), hide_index=True,
                 key="status_table")
else:
    st.caption("No status, birth or death messages received yet.")
