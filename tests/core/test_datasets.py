"""Property tests of the dataset readers: what is written reads back; anything else is a DatasetError."""

from __future__ import annotations

import io
import itertools
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.io import savemat, wavfile

from core.datasets.cmapss import COLUMNS, load_cmapss, read_cmapss_file, units_of
from core.datasets.cwru import read_cwru
from core.datasets.dcase import read_wav
from core.datasets.femto import bearing_archive, iter_femto
from core.errors import DatasetError, ModelError, SourceError

FILES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: the CWRU reader runs scipy in a child process per file (a corrupt MAT file can crash scipy): fewer examples
MAT_FILES = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=64)


def test_dataset_error_is_both_a_source_and_a_model_error() -> None:
    # replay sources catch SourceError, training catches ModelError: both see the readers' errors
    assert issubclass(DatasetError, SourceError)
    assert issubclass(DatasetError, ModelError)


# ------------------------------------------------------------------------------------- C-MAPSS
@st.composite
def cmapss_rows(draw: st.DrawFn) -> np.ndarray:
    units = draw(st.integers(1, 4))
    blocks = []
    for u in range(1, units + 1):
        n = draw(st.integers(1, 6))
        values = draw(arrays(np.float64, (n, len(COLUMNS) - 2), elements=finite))
        blocks.append(np.column_stack([np.full(n, u), np.arange(1, n + 1), values]))
    return np.vstack(blocks)


@FILES
@given(rows=cmapss_rows())
def test_cmapss_rows_read_back(tmp_path: Path, rows: np.ndarray) -> None:
    path = tmp_path / "train_FD001.txt"
    np.savetxt(path, rows, fmt="%.17g")
    np.testing.assert_array_equal(read_cmapss_file(path), rows)
    df = load_cmapss(tmp_path, "FD001")
    assert list(df.columns) == COLUMNS
    np.testing.assert_array_equal(df.to_numpy(np.float64), rows)
    by_unit = units_of(rows)
    assert sorted(by_unit) == sorted({int(u) for u in rows[:, 0]})
    assert sum(len(v) for v in by_unit.values()) == len(rows)


@FILES
@given(raw=st.binary(max_size=400) | st.text(alphabet="0123456789 .-e\n\tnaif", max_size=400).map(str.encode))
def test_cmapss_arbitrary_bytes_read_or_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "test_FD002.txt"
    path.write_bytes(raw)
    try:
        rows = read_cmapss_file(path)
    except DatasetError as err:
        assert str(path) in str(err)
    else:
        assert rows.ndim == 2
        assert rows.shape[1] == len(COLUMNS)


def test_cmapss_wrong_subset_split_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="FD009"):
        load_cmapss(tmp_path, "FD009")
    with pytest.raises(DatasetError, match="split"):
        load_cmapss(tmp_path, "FD001", "valid")
    with pytest.raises(DatasetError, match=r"train_FD001\.txt"):
        load_cmapss(tmp_path, "FD001")


# --------------------------------------------------------------------------------------- FEMTO
def _femto_archive(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:xz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(f"Bearing1_1/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _acc_csv(second: int, values: np.ndarray) -> bytes:
    # hour, minute, second, microsecond, horizontal, vertical
    lines = [f"9,0,{second},{i * 39},{float(h)!r},{float(v)!r}" for i, (h, v) in enumerate(values)]
    return ("\n".join(lines) + "\n").encode()


@FILES
@given(snapshots=st.lists(arrays(np.float64, st.tuples(st.integers(1, 8), st.just(2)), elements=finite), min_size=1, max_size=4))
def test_femto_snapshots_read_back_in_time_order(tmp_path: Path, snapshots: list[np.ndarray]) -> None:
    path = tmp_path / "Learning_set_Bearing1_1.tar.xz"
    _femto_archive(path, {f"acc_{i + 1:05d}.csv": _acc_csv(10 * i, s) for i, s in enumerate(snapshots)})
    got = list(iter_femto(bearing_archive(tmp_path, "1_1"), temperature=False))
    assert [g.index for g in got] == list(range(1, len(snapshots) + 1))
    assert all(b.t_s > a.t_s for a, b in itertools.pairwise(got))
    for g, s in zip(got, snapshots, strict=True):
        np.testing.assert_array_equal(g.values, s)


@FILES
@given(raw=st.binary(max_size=300))
def test_femto_arbitrary_member_or_archive_read_or_refused(tmp_path: Path, raw: bytes) -> None:
    archive = tmp_path / "Learning_set_Bearing1_1.tar.xz"
    _femto_archive(archive, {"acc_00001.csv": raw})
    broken = tmp_path / "broken.tar.xz"
    broken.write_bytes(raw)
    for path in (archive, broken):
        try:
            snaps = list(iter_femto(path, temperature=True))
        except DatasetError as err:
            assert str(path) in str(err)
        else:
            assert all(s.values.ndim in (1, 2) for s in snaps)


def test_femto_missing_archive_names_both_places(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="femto"):
        bearing_archive(tmp_path, "1_1")


# ---------------------------------------------------------------------------------------- CWRU
@MAT_FILES
@given(
    de=arrays(np.float64, st.integers(1, 64), elements=finite),
    fe=st.none() | arrays(np.float64, st.integers(1, 64), elements=finite),
    rpm=st.none() | st.floats(100, 4000),
)
def test_cwru_record_reads_back(tmp_path: Path, de: np.ndarray, fe: np.ndarray | None, rpm: float | None) -> None:
    path = tmp_path / "105.mat"
    variables: dict[str, np.ndarray] = {"X105_DE_time": de[:, None]}
    if fe is not None:
        variables["X105_FE_time"] = fe[:, None]
    if rpm is not None:
        variables["X105RPM"] = np.array([[rpm]])
    savemat(path, variables)
    rec = read_cwru(path)
    np.testing.assert_array_equal(rec.de, de)
    np.testing.assert_array_equal(rec.channel("DE"), de)
    if fe is None:
        assert rec.fe is None
        with pytest.raises(DatasetError, match="FE"):
            rec.channel("FE")
    else:
        np.testing.assert_array_equal(rec.fe, fe)
    assert rec.rpm == rpm


def test_cwru_takes_the_files_own_recording(tmp_path: Path) -> None:
    # some mirrors store the neighbouring recording (X098) in 97.mat too
    path = tmp_path / "97.mat"
    savemat(path, {"X098_DE_time": np.ones((4, 1)), "X097_DE_time": np.zeros((4, 1)), "X097RPM": np.array([[1797.0]])})
    np.testing.assert_array_equal(read_cwru(path).de, np.zeros(4))


@MAT_FILES
@given(raw=st.binary(max_size=600))
def test_cwru_arbitrary_bytes_read_or_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "x.mat"
    path.write_bytes(raw)
    try:
        rec = read_cwru(path)
    except DatasetError as err:
        assert "x.mat" in str(err)
    else:
        assert rec.de.ndim == 1


# --------------------------------------------------------------------------------------- DCASE
@FILES
@given(samples=arrays(np.int16, st.integers(1, 256)), rate=st.sampled_from([8000, 16000]))
def test_wav_reads_back_scaled_to_full_scale(tmp_path: Path, samples: np.ndarray, rate: int) -> None:
    path = tmp_path / "clip.wav"
    wavfile.write(path, rate, samples)
    fs, x = read_wav(path, full_scale_pa=2.0)
    assert fs == rate
    np.testing.assert_allclose(x, samples.astype(np.float64) / 32767.0 * 2.0)


@FILES
@given(raw=st.binary(max_size=300))
def test_wav_arbitrary_bytes_read_or_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(b"RIFF" + raw)
    try:
        _, x = read_wav(path)
    except DatasetError as err:
        assert "clip.wav" in str(err)
    else:
        assert x.ndim == 1


def test_a_mat_file_that_crashes_scipy_is_a_dataset_error(tmp_path: Path) -> None:
    """Byte flips in a MAT header make scipy's C reader crash the process (found by benchmarks/hostile.py):
    the reader runs in a child process, so the caller gets a DatasetError and goes on."""
    good = tmp_path / "good.mat"
    savemat(good, {"X105_DE_time": np.ones((64, 1)), "X105RPM": np.array([[1797.0]])})
    data = bytearray(good.read_bytes())
    for offset, value in ((93, 7), (110, 141), (117, 211), (165, 215), (192, 20), (302, 23), (600, 122), (628, 6)):
        data[offset] = value
    bad = tmp_path / "bad.mat"
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"bad\.mat"):
        read_cwru(bad)
