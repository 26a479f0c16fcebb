"""The one exception hierarchy of GenEdge.

Every error raised on purpose by GenEdge code derives from :class:`GenEdgeError`.
Protocol libraries' exceptions (paho, asyncua, pymodbus, SQLAlchemy) are wrapped once,
at the seam, with ``raise IngestError(...) from err``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "GenEdgeError",
    "IngestError",
    "ModelError",
    "NotFittedError",
    "SourceError",
    "StoreError",
    "StoreRejectedError",
    "WireError",
]


class GenEdgeError(Exception):
    """Root of all GenEdge errors."""


class ConfigError(GenEdgeError, ValueError):
    """The configuration is invalid: a setting has the wrong type, range or is missing."""


class WireError(GenEdgeError, ValueError):
    """A message on the wire could not be decoded or failed validation.

    Attributes:
        reason: short machine-friendly reason code (``malformed``, ``out_of_range`` ...).
        detail: human-readable explanation: what was expected and what was got.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class IngestError(GenEdgeError):
    """The ingest service could not talk to the broker or the store."""


class StoreError(GenEdgeError):
    """The database rejected an operation or could not be reached."""


class StoreRejectedError(StoreError):
    """The database refused the data itself, not the connection: the same write will never succeed."""


class SourceError(GenEdgeError):
    """A sensor source (simulator, replay, OPC UA, Modbus) failed."""


class ModelError(GenEdgeError):
    """A model could not be trained, loaded, exported or evaluated."""


class DatasetError(SourceError, ModelError):
    """A public dataset file (C-MAPSS, FEMTO, CWRU, DCASE) is missing or malformed.

    Both a replay source and a training run read these files, so the error is both a
    :class:`SourceError` and a :class:`ModelError`: each caller catches the kind it knows.
    """


class NotFittedError(GenEdgeError, ValueError, AttributeError):
    """An estimator was used before ``fit``."""
