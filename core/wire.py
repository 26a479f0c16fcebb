"""Wire schema: every message GenEdge puts on MQTT, versioned, plus the topic scheme.

Topics are ``genedge/v1/<site>/<asset>/<type>`` where ``<type>`` is one of :class:`MessageType`.
Payloads are UTF-8 JSON objects; each carries ``v`` (schema version), a unique ``msg_id``,
the ``publisher`` and its per-publisher ``seq`` number, and ``type`` (which must match the
topic). :func:`decode` turns arbitrary bytes into a message or raises :class:`WireError` with a
reason code; it never raises anything else. See ``docs/integrator.md`` for examples.
"""

from __future__ import annotations

import functools
import json
import math
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from core.assets import UNITS, Quantity
from core.errors import WireError

__all__ = [
    "AT_CAP_SHARE",
    "CMD_SUFFIX",
    "COMMAND_ACTIONS",
    "COMMAND_MAX_BYTES",
    "COMMAND_MAX_LAST",
    "ID_PATTERN",
    "RUL_UNITS",
    "STATE_ROOT",
    "TOPIC_ROOT",
    "WIRE_VERSION",
    "BirthMessage",
    "Command",
    "DataQuality",
    "DeathMessage",
    "FeatureFrame",
    "Limits",
    "Message",
    "MessageType",
    "Prediction",
    "ReadingBatch",
    "RulUnit",
    "StatusReport",
    "Topic",
    "check_limits",
    "cmd_topic",
    "decode",
    "decode_command",
    "encode",
    "host_state_topic",
    "is_cmd_topic",
    "new_msg_id",
    "parse_topic",
    "printable",
    "rul_at_cap",
    "topic_for",
    "utcnow",
]

WIRE_VERSION: Literal[1] = 1
TOPIC_ROOT = "genedge/v1"
ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
_Id = Annotated[str, Field(pattern=ID_PATTERN)]
_Finite = Annotated[float, Field(allow_inf_nan=False)]


def _check_chars(text: str, allowed: frozenset[str]) -> str:
    """``text`` if it holds no control character (C0/C1, NUL included) but ``allowed``, and no lone surrogate.

    Databases refuse such characters (PostgreSQL: NUL, surrogates) and they have no business in a
    unit, a name or a status text; the error names the code point, never the text around it.
    """
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cs") and ch not in allowed:
            raise ValueError(f"control characters are not allowed (found U+{ord(ch):04X})")
    return text


def printable(text: str, limit: int = 2000) -> str:
    """``text`` cut to ``limit`` characters, with every character a free-text field refuses replaced by
    U+FFFD: for details built from foreign text (a device's error message) before they go on the wire."""
    return "".join(
        "\ufffd" if unicodedata.category(ch) in ("Cc", "Cs") and ch not in _LINE_BREAKS else ch for ch in text[:limit]
    )


_NO_CONTROLS: frozenset[str] = frozenset()
_LINE_BREAKS = frozenset("\t\n\r")
#: a name or a unit on the wire: printable characters only
_Text = Annotated[str, AfterValidator(lambda t: _check_chars(t, _NO_CONTROLS))]
#: a free-text detail on the wire: printable characters, tabs and line breaks
_Prose = Annotated[str, AfterValidator(lambda t: _check_chars(t, _LINE_BREAKS))]


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_msg_id() -> str:
    """A fresh unique message id (UUID4, hex)."""
    return uuid.uuid4().hex


class MessageType(StrEnum):
    READINGS = "readings"
    FEATURES = "features"
    STATUS = "status"
    PREDICTION = "prediction"
    BIRTH = "birth"
    DEATH = "death"


class DataQuality(StrEnum):
    """Quality of a reading batch, told apart at the edge."""

    GOOD = "good"
    FLATLINE = "flatline"  # the sensor answers but its signal is frozen
    DEVICE_SILENT = "device_silent"  # the device stopped answering
    SUSPECT = "suspect"


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    v: Literal[1] = 1
    msg_id: str = Field(default_factory=new_msg_id, pattern=r"^[A-Za-z0-9_\-]{8,64}$")
    publisher: _Id
    seq: int = Field(ge=0, le=2**63 - 1)
    sent_at: AwareDatetime = Field(default_factory=utcnow)
    historical: bool = Field(default=False, description="replayed from the edge queue after an outage")

    @field_validator("sent_at")
    @classmethod
    def _to_utc(cls, v: datetime) -> datetime:
        return v.astimezone(UTC)


class ReadingBatch(_Envelope):
    """A batch of consecutive samples from one channel of one asset."""

    type: Literal["readings"] = "readings"
    asset_id: _Id
    channel: _Id
    quantity: Quantity
    unit: _Text = Field(max_length=16)
    sample_rate_hz: float = Field(gt=0, le=1_000_000, allow_inf_nan=False)
    start: AwareDatetime
    values: list[_Finite] = Field(min_length=1, max_length=1_048_576)
    quality: DataQuality = DataQuality.GOOD

    @field_validator("start")
    @classmethod
    def _start_utc(cls, v: datetime) -> datetime:
        return v.astimezone(UTC)

    @model_validator(mode="after")
    def _unit_for_quantity(self) -> ReadingBatch:
        allowed = UNITS[self.quantity]
        if self.unit not in allowed:
            raise ValueError(
                f"unit {self.unit!r} is wrong for quantity {self.quantity.value!r}; expected one of {sorted(allowed)}"
            )
        return self

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=len(self.values) / self.sample_rate_hz)


class FeatureFrame(_Envelope):
    """Features computed at the edge for one asset over one window: channel -> name -> value."""

    type: Literal["features"] = "features"
    asset_id: _Id
    window_start: AwareDatetime
    window_s: float = Field(gt=0, allow_inf_nan=False)
    features: dict[_Id, dict[Annotated[_Text, Field(max_length=64)], _Finite]] = Field(min_length=1)
    quality: DataQuality = DataQuality.GOOD


class StatusReport(_Envelope):
    """Health of an edge agent or one of its assets."""

    type: Literal["status"] = "status"
    asset_id: _Id
    state: Literal["online", "degraded", "offline"]
    uptime_s: float = Field(ge=0, allow_inf_nan=False)
    queue_depth: int = Field(default=0, ge=0)
    detail: _Prose = Field(default="", max_length=2000)


#: What a prediction's RUL is counted in: hours, operating cycles, or the remaining share of the
#: asset's life in percent (100 when new, 0 at failure; a model trained on runs of unlike length).
RulUnit = Literal["h", "cycles", "%"]
RUL_UNITS: tuple[str, ...] = ("h", "cycles", "%")


#: A median within this share of the cap reads as "at the cap". A model trained on a capped target
#: answers a little under the cap for machines as new (the demo's simulator model: 190-200 h at a
#: 200 h cap), and those few hours are within its error there, not a countdown.
AT_CAP_SHARE = 0.95


def rul_at_cap(unit: str, median: float, cap: float | None) -> bool:
    """Whether a RUL median sits at its model's training cap (within :data:`AT_CAP_SHARE` of it),
    so the model only says "at least this long".

    Never in ``%``: there the cap is 100 % of life, as new, which nothing exceeds.
    """
    return unit != "%" and cap is not None and median >= AT_CAP_SHARE * cap


class Prediction(_Envelope):
    """A RUL / health prediction as a distribution: median and a calibrated interval.

    In ``"%"`` (share of life left) every value is at most 100.
    """

    type: Literal["prediction"] = "prediction"
    asset_id: _Id
    model_name: _Text = Field(max_length=128)
    model_version: _Text = Field(max_length=64)
    at: AwareDatetime
    rul_unit: RulUnit = "h"
    rul_median: float = Field(ge=0, allow_inf_nan=False)
    rul_lower: float = Field(ge=0, allow_inf_nan=False)
    rul_upper: float = Field(ge=0, allow_inf_nan=False)
    coverage: float = Field(gt=0, lt=1)
    health_index: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    #: the model's training cap on RUL: a median at the cap reads "at least ``rul_cap``"
    rul_cap: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @property
    def at_cap(self) -> bool:
        """Whether the median sits at the model's cap (:func:`rul_at_cap`)."""
        return rul_at_cap(self.rul_unit, self.rul_median, self.rul_cap)

    @model_validator(mode="after")
    def _ordered(self) -> Prediction:
        if not self.rul_lower <= self.rul_median <= self.rul_upper:
            raise ValueError(
                f"interval must satisfy lower <= median <= upper, got "
                f"{self.rul_lower} <= {self.rul_median} <= {self.rul_upper}"
            )
        if self.rul_unit == "%" and max(self.rul_upper, self.rul_cap or 0.0) > 100.0:
            raise ValueError(
                f"a share of life left is at most 100 %, got upper {self.rul_upper} and cap {self.rul_cap}"
            )
        return self


class BirthMessage(_Envelope):
    """Publisher (agent or asset) came online; ``seq`` restarts here (Sparkplug-style)."""

    type: Literal["birth"] = "birth"
    asset_id: _Id
    channels: list[_Id] = Field(default_factory=list)


class DeathMessage(_Envelope):
    """Publisher went offline (sent as MQTT last will, or on a clean shutdown)."""

    type: Literal["death"] = "death"
    asset_id: _Id
    reason: _Prose = Field(default="", max_length=500)


Message = Annotated[
    ReadingBatch | FeatureFrame | StatusReport | Prediction | BirthMessage | DeathMessage,
    Field(discriminator="type"),
]
_MESSAGE: TypeAdapter[Message] = TypeAdapter(Message)


class Topic(BaseModel):
    """A parsed topic ``genedge/v1/<site>/<asset>/<type>``."""

    model_config = ConfigDict(frozen=True)

    site: _Id
    asset_id: _Id
    type: MessageType

    def __str__(self) -> str:
        return f"{TOPIC_ROOT}/{self.site}/{self.asset_id}/{self.type.value}"


#: Commands to an asset's edge agent (e.g. ``{"action": "raw"}`` for a raw snapshot) travel on
#: ``genedge/v1/<site>/<asset>/cmd``; they are instructions, not data, so ingest does not store them.
CMD_SUFFIX = "cmd"
#: Retained ``{"online": bool}`` of a host application (ingest), like Sparkplug B's STATE; outside
#: ``genedge/v1/#``. Edge agents may hold their data until their primary host is online.
STATE_ROOT = "genedge/state"


def cmd_topic(site: str, asset_id: str) -> str:
    """Command topic of an asset: ``genedge/v1/<site>/<asset>/cmd``."""
    return f"{TOPIC_ROOT}/{site}/{asset_id}/{CMD_SUFFIX}"


def is_cmd_topic(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 5 and "/".join(parts[:2]) == TOPIC_ROOT and parts[4] == CMD_SUFFIX


def host_state_topic(host_id: str) -> str:
    """Retained online/offline state of a host application."""
    return f"{STATE_ROOT}/{host_id}"


def topic_for(site: str, asset_id: str, kind: MessageType | str) -> str:
    """The topic a message of ``kind`` about ``asset_id`` is published on."""
    return str(Topic(site=site, asset_id=asset_id, type=MessageType(kind)))


def parse_topic(topic: str) -> Topic:
    """Parse a topic string.

    Raises:
        WireError: reason ``unknown_topic`` when it is not ``genedge/v1/<site>/<asset>/<type>``.
    """
    return _parse_topic(topic)


#: A plant's topics are few and repeat with every message; a flood of distinct topics only
#: evicts entries (failures are not cached).
@functools.lru_cache(maxsize=4096)
def _parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireError("unknown_topic", f"expected {TOPIC_ROOT}/<site>/<asset>/<type>, got {topic!r}")
    try:
        return Topic(site=parts[2], asset_id=parts[3], type=MessageType(parts[4]))
    except (ValueError, ValidationError) as err:
        raise WireError(
            "unknown_topic",
            f"topic {topic!r}: site/asset must match {ID_PATTERN} and type be one of "
            f"{[t.value for t in MessageType]}",
        ) from err


def encode(message: BaseModel) -> bytes:
    """Serialise a message to its JSON payload."""
    return message.model_dump_json().encode()


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not allowed in a GenEdge payload")


def decode(payload: bytes | bytearray | memoryview | str, topic: str | None = None, *, max_bytes: int = 2_000_000) -> Message:
    """Decode and validate a payload; check it agrees with its topic when one is given.

    Raises:
        WireError: reasons ``oversize``, ``malformed`` (not UTF-8 JSON object), ``invalid``
            (schema or range violation, e.g. NaN, wrong unit), ``unknown_topic`` or
            ``topic_mismatch``.
    """
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > max_bytes:
        raise WireError("oversize", f"payload is {len(raw)} bytes, limit is {max_bytes}")
    parsed_topic = parse_topic(topic) if topic is not None else None
    message = _decode_fast(raw)
    if message is None:
        message = _decode_checked(raw)
    if parsed_topic is not None:
        _check_topic(message, parsed_topic)
    return message


#: JSON tokens Python's json module accepts but GenEdge refuses as malformed; a payload holding
#: them (anywhere, even inside a string) takes the checked path.
_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


def _decode_fast(raw: bytes) -> Message | None:
    """Parse and validate in one pass (pydantic's JSON parser): the path of every valid message.

    ``None`` when the payload is not a valid message, or may hold a non-finite constant, so that
    :func:`_decode_checked` classifies it exactly as it always does.
    """
    if any(token in raw for token in _NON_FINITE_TOKENS):
        return None
    try:
        return _MESSAGE.validate_json(raw)
    except (ValidationError, ValueError, TypeError, RecursionError):
        return None


def _decode_checked(raw: bytes) -> Message:
    """Parse, then validate, naming what is wrong (see :func:`decode`)."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise WireError("malformed", f"payload is not UTF-8 JSON: {err}") from err
    if not isinstance(data, dict):
        raise WireError("malformed", f"payload must be a JSON object, got {type(data).__name__}")
    try:
        message = _MESSAGE.validate_python(data)
    except ValidationError as err:
        raise WireError("invalid", _summarise(err)) from err
    except (ValueError, TypeError, RecursionError) as err:  # defensive: odd inputs inside validators
        raise WireError("invalid", str(err)) from err
    return message


def _check_topic(message: Message, topic: Topic) -> None:
    if message.type != topic.type.value:
        raise WireError("topic_mismatch", f"topic says type {topic.type.value!r}, payload says {message.type!r}")
    if message.asset_id != topic.asset_id:
        raise WireError(
            "topic_mismatch", f"topic says asset {topic.asset_id!r}, payload says {message.asset_id!r}"
        )


def _summarise(err: ValidationError, limit: int = 3) -> str:
    parts = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        parts.append(f"{loc}: {e['msg']}")
    more = err.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# Commands (``genedge/v1/<site>/<asset>/cmd``): instructions to an edge agent, never trusted
# ----------------------------------------------------------------------------------------------

#: The actions an edge agent serves: ``raw`` publishes a raw snapshot from its ring buffer.
COMMAND_ACTIONS: tuple[str, ...] = ("raw",)
#: A command payload larger than this is refused unread.
COMMAND_MAX_BYTES = 4096
#: The most raw batches per channel one command may ask for (the agent's ring holds fewer).
COMMAND_MAX_LAST = 1024


class Command(BaseModel):
    """A command to the edge agent that serves the topic's asset.

    Strict: unknown fields are refused and no value is coerced (``"last": "3"`` is refused, as
    is ``"last": true``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["raw"]
    channel: _Id | None = Field(default=None, description="only this channel; none: every fast channel")
    last: int | None = Field(default=None, ge=1, le=COMMAND_MAX_LAST, description="the newest n batches per channel")
    request_id: _Id | None = Field(default=None, description="the asker's id of this request, for its own bookkeeping")
    requester: _Id | None = Field(default=None, description="who asks (a dashboard, a user); rate-limited on its own")


_COMMAND_FIELDS = frozenset(Command.model_fields)


def decode_command(payload: bytes | bytearray | memoryview | str) -> Command:
    """Decode and validate a command payload.

    The error's detail names fields of the schema and what was wrong, never a value or a key of
    the payload: it is answered on the wire to whoever sent it.

    Raises:
        WireError: reasons ``oversize``, ``malformed`` (not a UTF-8 JSON object) or ``invalid``
            (unknown action or field, a value of the wrong type or out of range).
    """
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > COMMAND_MAX_BYTES:
        raise WireError("oversize", f"command is {len(raw)} bytes, limit is {COMMAND_MAX_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise WireError("malformed", "command is not UTF-8 JSON") from err
    if not isinstance(data, dict):
        raise WireError("malformed", f"command must be a JSON object, got {type(data).__name__}")
    try:
        return Command.model_validate(data)
    except ValidationError as err:
        raise WireError("invalid", _summarise_command(err)) from err
    except (ValueError, TypeError, RecursionError) as err:  # defensive: odd inputs inside validators
        raise WireError("invalid", f"command failed validation ({type(err).__name__})") from err


def _summarise_command(err: ValidationError, limit: int = 3) -> str:
    parts = []
    for e in err.errors()[:limit]:
        field = str(e["loc"][0]) if e["loc"] else ""
        if e["type"] == "extra_forbidden" or field not in _COMMAND_FIELDS:
            parts.append(f"unknown field (allowed: {', '.join(sorted(_COMMAND_FIELDS))})")
        elif e["type"] == "missing":
            parts.append(f"{field}: required")
        elif field == "action":
            parts.append(f"action: must be one of {list(COMMAND_ACTIONS)}")
        else:
            parts.append(f"{field}: {e['msg']}")
    more = err.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


class Limits(BaseModel):
    """Range checks that need context (the clock, the configured channel) beyond the schema."""

    max_future_s: float = 300.0
    max_abs_value: float = 1e6
    channel_ranges: Mapping[tuple[str, str], tuple[float, float]] = Field(default_factory=dict)


def check_limits(message: Message, limits: Limits, now: datetime | None = None) -> None:
    """Reject messages that are well-formed but implausible.

    Raises:
        WireError: reason ``out_of_range`` naming the field, the bound and the value.
    """
    now = now or utcnow()
    horizon = now + timedelta(seconds=limits.max_future_s)
    stamps: dict[str, datetime] = {"sent_at": message.sent_at}
    if isinstance(message, ReadingBatch):
        stamps["start"] = message.start
    elif isinstance(message, FeatureFrame):
        stamps["window_start"] = message.window_start
    elif isinstance(message, Prediction):
        stamps["at"] = message.at
    for name, stamp in stamps.items():
        if stamp > horizon:
            raise WireError(
                "out_of_range",
                f"{name} {stamp.isoformat()} is more than {limits.max_future_s:.0f} s in the future (now {now.isoformat()})",
            )
    if isinstance(message, ReadingBatch):
        lo, hi = limits.channel_ranges.get((message.asset_id, message.channel), (-limits.max_abs_value, limits.max_abs_value))
        vmin, vmax = min(message.values), max(message.values)
        if vmin < lo or vmax > hi:
            raise WireError(
                "out_of_range",
                f"values of {message.asset_id}/{message.channel} must lie in [{lo}, {hi}], got [{vmin}, {vmax}]",
            )
    elif isinstance(message, FeatureFrame):
        for ch, feats in message.features.items():
            for name, value in feats.items():
                if not math.isfinite(value) or abs(value) > limits.max_abs_value:
                    raise WireError("out_of_range", f"feature {ch}.{name} = {value} exceeds {limits.max_abs_value}")
