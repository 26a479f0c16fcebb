"""Showing stored text (work orders, prescriptions, outcomes) as the literal text it is.

Prescriptions come from a language model and work-order text from people; rendered as Markdown,
``![x](http://host/beacon.png)`` would make every browser that opens the page fetch that address.
Pages show such text with ``st.text`` (never interpreted) and, where Streamlit only takes
Markdown (expander labels, captions), escape it with :func:`escape_markdown` first.
"""

from __future__ import annotations

import re

__all__ = ["escape_markdown"]

# Every ASCII punctuation character CommonMark lets a backslash escape; ':' and '$' too
# (Streamlit's icon/colour shortcodes and LaTeX).
_MARKDOWN_CHARS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&\"'=^])")


def escape_markdown(text: str) -> str:
    """``text`` with every Markdown-significant character backslash-escaped and line breaks
    flattened, so a Markdown renderer shows it literally (no images, links, emphasis or HTML)."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_CHARS.sub(r"\\\1", flat)
