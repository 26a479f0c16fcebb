"""Text rules of work-order steps and backend answers: allowed characters, whole sentences, and
grounding of a backend's text in what it was shown.

Every step and narrative ends with a complete word and a sentence end. A text that reached its
length limit may have been cut inside a word (a grammar-constrained model is forced to close the
string there), so it is cut back to the last whole word before the limit and ends cleanly.

Grounding is deliberately narrow and cheap: a backend's sentence is kept only when every number
in it, every all-caps token (defect abbreviations such as BPFO, BPFI, BSF, FTF) and every term of
a small closed vocabulary of measurement claims (axial, phase, oil analysis ...) also occurs in
the text the backend was given (the evidence, the procedures and the fixed steps).
"""

from __future__ import annotations

import re

from prescribe.schema import TEXT_CHARS

__all__ = [
    "DEFECT_ABBREVIATIONS",
    "clip_sentence",
    "is_whole_sentence",
    "plain_text",
    "sentence",
    "ungrounded",
]

#: Envelope defect frequencies by their abbreviation (the only defect names written in capitals).
DEFECT_ABBREVIATIONS = {"BPFO": "bpfo", "BPFI": "bpfi", "BSF": "bsf", "FTF": "ftf"}
#: All-caps words a step may use without the prompt showing them.
_KNOWN_CAPS = frozenset({*DEFECT_ABBREVIATIONS, "RUL", "ISO", "LOTO", "DE", "NDE", "RMS", "NPSH", "UTC", "OK", "PPE"})
#: Measurement claims a backend may only make when its prompt mentions them.
_CLAIMS = ("axial", "radial", "phase", "oil analysis", "oil sample", "thermograph", "ultrasound", "ultrasonic",
           "current", "imbalance", "unbalance", "misalign", "looseness", "cavitation", "resonance", "crack", "soft foot")
#: Words a text cut at its limit must not end on.
_DANGLING = frozenset({"a", "an", "the", "and", "or", "to", "of", "with", "then", "for", "in", "on", "at", "by",
                       "from", "if", "before", "after", "until", "within", "its", "their", "is", "are", "be", "so",
                       "but", "as", "that", "which", "must", "should", "will", "can", "may"})
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CAPS = re.compile(r"\b[A-Z]{2,}\b")
_END = re.compile(r"[.!?]$")
_SENTENCE_END = re.compile(r"(?<=[a-z0-9)%])[.!?](?= [A-Z])")


def plain_text(text: str) -> str:
    """``text`` with every character outside the allowed step-text set removed (for templates that
    insert operator-entered values, such as a bearing designation or a spare part)."""
    return " ".join(re.sub(f"(?!{TEXT_CHARS}).", " ", text).split())


def sentence(text: str) -> str:
    """``text`` as one sentence: whitespace collapsed, capitalised, ending with a full stop."""
    flat = " ".join(text.split()).rstrip(" ,;:-")
    if not flat:
        return flat
    flat = flat[0].upper() + flat[1:]
    return flat if _END.search(flat) else flat + "."


def clip_sentence(text: str, limit: int) -> str:
    """``text`` as a sentence of at most ``limit`` characters, cut at a word boundary.

    A text of ``limit`` characters or more is taken to have been cut inside its last word. When a
    sentence ends in its first ``limit`` characters, it ends there; otherwise the last word is
    dropped, then any trailing punctuation and dangling function word ("and", "the" ...), and a
    full stop ends it. A text shorter than ``limit`` is only made a sentence.

    Raises:
        ValueError: ``limit`` is below 8 characters.
    """
    if limit < 8:
        raise ValueError(f"limit must be at least 8 characters, got {limit}")
    flat = " ".join(text.split())
    if len(flat) < limit:
        return sentence(flat)
    ends = [m.end() for m in _SENTENCE_END.finditer(flat[: limit - 1])]
    if ends:
        return sentence(flat[: ends[-1]])
    words = flat[: limit - 1].split(" ")[:-1]  # the last word may be cut: drop it
    while words and (words[-1].lower().strip(",;:-") in _DANGLING or not words[-1].strip(",;:-.")):
        words.pop()
    return sentence(" ".join(words).rstrip(",;:-.")) if words else ""


def is_whole_sentence(text: str) -> bool:
    """Whether ``text`` starts with a capital or digit, ends with a sentence end after a whole word
    (a letter, digit or closing bracket, not a hyphen) and uses only the allowed characters."""
    return bool(re.fullmatch(f"[A-Z0-9]{TEXT_CHARS}*[A-Za-z0-9)%][.!?]", text))


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(text)}


def ungrounded(text: str, context: str) -> list[str]:
    """What ``text`` states that ``context`` does not: numbers, unknown all-caps tokens (e.g. a
    misspelt defect abbreviation), defect abbreviations and measurement claims absent from it.

    A number counts as shown when it equals a number of ``context`` or that number rounded.
    """
    shown = _numbers(context)
    shown |= {float(round(n)) for n in shown}
    low = context.lower()
    out = [f"number {n}" for n in _NUMBER.findall(text) if float(n) not in shown]
    for tok in _CAPS.findall(text):
        if tok not in _KNOWN_CAPS and tok not in context:
            out.append(f"unknown term {tok}")
        elif tok in DEFECT_ABBREVIATIONS and tok not in context:
            out.append(f"{tok} not in the evidence")
    out += [f"claim '{c}'" for c in _CLAIMS if c in text.lower() and c not in low]
    return out
