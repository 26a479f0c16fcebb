"""The command schema on ``genedge/v1/<site>/<asset>/cmd``: strict, bounded, clear errors that echo nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import WireError
from core.wire import COMMAND_MAX_BYTES, COMMAND_MAX_LAST, Command, decode_command

ids = st.from_regex(r"^[A-Za-z0-9_\-]{1,64}$", fullmatch=True)
commands = st.builds(Command, action=st.just("raw"), channel=st.none() | ids,
                     last=st.none() | st.integers(1, COMMAND_MAX_LAST), request_id=st.none() | ids,
                     requester=st.none() | ids)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)
MARKER = "SECRET-PAYLOAD-MARKER"
#: command-shaped objects: the known fields with values of any type, and extra keys
command_like = st.fixed_dictionaries(
    {"action": st.sampled_from(["raw", "reboot", "", 1, None, "RAW"])},
    optional={"last": json_values | st.just(MARKER), "channel": json_values | st.just(MARKER),
              "requester": json_values, "request_id": json_values, MARKER: json_values},
)


def test_the_issue_example_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(WireError) as err:
        decode_command(b'{"action":"raw","last":"x"}')
    assert err.value.reason == "invalid"
    assert err.value.detail.startswith("last: ") and "integer" in err.value.detail
    assert '"x"' not in str(err.value) and "'x'" not in str(err.value), "the value is not echoed"


@pytest.mark.parametrize(("payload", "reason", "says"), [
    (b'{"action": "reboot"}', "invalid", "action: must be one of ['raw']"),
    (b"{}", "invalid", "action: required"),
    (b'{"action": "raw", "last": 0}', "invalid", "last: Input should be greater than or equal to 1"),
    (b'{"action": "raw", "last": 99999}', "invalid", f"less than or equal to {COMMAND_MAX_LAST}"),
    (b'{"action": "raw", "last": true}', "invalid", "last: Input should be a valid integer"),
    (b'{"action": "raw", "last": "3"}', "invalid", "last: Input should be a valid integer"),
    (b'{"action": "raw", "channel": "vib de"}', "invalid", "channel: String should match pattern"),
    (b'{"action": "raw", "evil\\u0000key": 1}', "invalid", "unknown field (allowed: action, channel, last"),
    (b'["raw"]', "malformed", "command must be a JSON object, got list"),
    (b"\xff\xfe", "malformed", "command is not UTF-8 JSON"),
    (b'{"action": "raw", "last": NaN}', "malformed", "command is not UTF-8 JSON"),
    (b" " * (COMMAND_MAX_BYTES + 1), "oversize", f"limit is {COMMAND_MAX_BYTES}"),
])
def test_refusals_name_the_field_and_the_rule(payload: bytes, reason: str, says: str) -> None:
    with pytest.raises(WireError) as err:
        decode_command(payload)
    assert err.value.reason == reason
    assert says in err.value.detail
    assert "evil" not in err.value.detail, "a key of the payload is not echoed"


@given(commands)
def test_round_trip(command: Command) -> None:
    assert decode_command(command.model_dump_json(exclude_none=True)) == command
    assert decode_command(command.model_dump_json()) == command


@settings(max_examples=300)
@given(st.binary(max_size=512) | json_values.map(json.dumps) | command_like.map(json.dumps))
def test_any_payload_gives_a_command_or_a_wire_error_that_echoes_nothing(payload: Any) -> None:
    try:
        command = decode_command(payload)
    except WireError as err:
        assert err.reason in ("malformed", "invalid", "oversize")
        assert MARKER not in str(err)
    else:
        assert command.action == "raw"
        assert command.last is None or 1 <= command.last <= COMMAND_MAX_LAST
