"""Synthetic data (engineers): not built yet, and the page says so."""

from __future__ import annotations

import streamlit as st

from dashboard import _context as ctx
from dashboard.auth import Permission

ctx.require(Permission.SYNTH)
st.title("Synthetic data")
st.info(
    "Not built yet. This page is meant to train and sample a generative model of sensor windows (VAE / GAN) "
    "and show its quality-gate report with plots. None of that is wired into the dashboard yet, so there is "
    "nothing to train, sample or report here today.",
    icon=":material/construction:",
)
