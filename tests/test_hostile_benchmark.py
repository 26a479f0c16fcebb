"""The hostile-input benchmark's surfaces on a small sample: nothing crashes, nothing is lost, every
refusal has a reason (the full run is ``python -m benchmarks.hostile``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from scipy.io import wavfile

from benchmarks import hostile


@pytest.fixture(autouse=True)
def _quiet_wav() -> None:
    warnings.simplefilter("ignore", wavfile.WavFileWarning)


def _clean(result: dict[str, object]) -> None:
    assert result["crashes"] == 0
    assert result["losses"] in (None, 0)
    assert result["refused_with_reason"] == result["refused"]
    assert result["tried"] == result["accepted"] + result["refused"] + result["crashes"]  # type: ignore[operator]


def test_wire_messages_through_a_real_broker_and_ingest(tmp_path: Path) -> None:
    _clean(hostile.wire_through_ingest(120, seed=1, tmp=tmp_path))


def test_wire_decoder_commands_files_and_settings(tmp_path: Path) -> None:
    _clean(hostile.wire_decode(300, seed=1))
    commands = hostile.commands(300, seed=1)
    assert commands is not None
    _clean(commands)
    _clean(hostile.dataset_files(120, seed=1, tmp=tmp_path))
    settings = hostile.settings_inputs(120, seed=1, tmp=tmp_path)
    assert settings["secret_leaks"] == 0
    _clean(settings)
