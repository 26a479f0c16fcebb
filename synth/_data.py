"""CWRU bearing data (12 kHz drive end, 0 HP) as labelled windows, white noise and few-shot draws.

Protocol (rare-failure experiment): the first half of every recording gives training windows
(stride ``train_stride``), the second half gives test windows (non-overlapping), so no sample
of a test window was ever seen in training. White Gaussian noise at a given SNR (per window:
noise power = window power / 10^(SNR/10)) is added to train and test windows, as in
Zhang et al., "A new deep learning model for fault diagnosis with good anti-noise and domain
adaptation ability on raw vibration signals", Sensors 17 (2017) 425.
"""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core.assets import BearingGeometry
from core.datasets.cwru import CWRU_RATE_HZ, read_cwru
from core.errors import ModelError

__all__ = [
    "CWRU_CLASSES",
    "CWRU_FS",
    "CWRU_SHAFT_HZ",
    "CWRUData",
    "add_white_noise",
    "cwru_condition_features",
    "cwru_defect_frequencies",
    "cwru_kinematics",
    "few_shot",
    "load_cwru",
]

CWRU_FS = CWRU_RATE_HZ
#: 0 HP motor speed of the 10-class set (1797 rpm)
CWRU_SHAFT_HZ = 1797.0 / 60.0
#: label -> (file stem, fault type, severity in inches); label 0 is healthy
CWRU_CLASSES: tuple[tuple[str, str, float], ...] = (
    ("normal_0_97", "normal", 0.0),
    ("12k_Drive_End_B007_0_118", "ball", 0.007),
    ("12k_Drive_End_B014_0_185", "ball", 0.014),
    ("12k_Drive_End_B021_0_222", "ball", 0.021),
    ("12k_Drive_End_IR007_0_105", "inner", 0.007),
    ("12k_Drive_End_IR014_0_169", "inner", 0.014),
    ("12k_Drive_End_IR021_0_209", "inner", 0.021),
    ("12k_Drive_End_OR007@6_0_130", "outer", 0.007),
    ("12k_Drive_End_OR014@6_0_197", "outer", 0.014),
    ("12k_Drive_End_OR021@6_0_234", "outer", 0.021),
)
FAULT_TYPES = ("normal", "ball", "inner", "outer")
CHANNELS = ("DE", "FE")


@dataclass
class CWRUData:
    """Windows of the 10-class CWRU set, split by time into train (first half) and test (second half).

    Attributes:
        X_train: ``(n, channels, window)`` float32 windows from the first half of each recording.
        y_train: labels 0..9 (0 = normal) of ``X_train``.
        X_test: non-overlapping windows from the second half.
        y_test: labels of ``X_test``.
        class_names: ``"normal"``, ``"ball_007"`` ... per label.
        fs: sample rate in Hz.
        channels: sensor names of the channel axis.
        snr_db: SNR of the added white noise (``None``: clean).
    """

    X_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    X_test: NDArray[np.float32]
    y_test: NDArray[np.int64]
    class_names: list[str] = field(default_factory=list)
    fs: float = CWRU_FS
    channels: tuple[str, ...] = ("DE",)
    snr_db: float | None = None


def _read_recording(path: Path, channels: tuple[str, ...]) -> NDArray[np.float64]:
    rec = read_cwru(path)
    out = [rec.channel(ch) for ch in channels]
    n = min(a.size for a in out)
    return np.stack([a[:n] for a in out])


def _windows(sig: NDArray[np.float64], window: int, stride: int) -> NDArray[np.float64]:
    n = (sig.shape[1] - window) // stride + 1
    if n <= 0:
        return np.empty((0, sig.shape[0], window))
    idx = np.arange(window)[None, :] + stride * np.arange(n)[:, None]
    return np.transpose(sig[:, idx], (1, 0, 2))


def add_white_noise(X: NDArray[np.floating], snr_db: float | None, rng: np.random.Generator) -> NDArray[np.float32]:
    """``X`` plus white Gaussian noise at ``snr_db`` relative to each window's (and channel's) power."""
    X = np.asarray(X, dtype=np.float64)
    if snr_db is None:
        return X.astype(np.float32)
    power = np.mean(X**2, axis=-1, keepdims=True)
    sigma: NDArray[np.float64] = np.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (X + sigma * rng.standard_normal(X.shape)).astype(np.float32)


def load_cwru(
    data_dir: Path | str,
    *,
    window: int = 1024,
    train_stride: int = 512,
    channels: tuple[str, ...] = ("DE",),
    snr_db: float | None = None,
    noise_seed: int = 0,
    max_normal_train: int | None = None,
) -> CWRUData:
    """Load the 10-class 0 HP CWRU set as windows.

    Args:
        data_dir: the ``cwru`` folder, or a folder containing it.
        window: samples per window.
        train_stride: hop between training windows in the first half (test windows never overlap).
        channels: ``"DE"`` and/or ``"FE"`` accelerometers.
        snr_db: add white noise at this SNR to every window (train and test); ``None`` keeps them clean.
        noise_seed: seed of that noise.
        max_normal_train: keep at most this many (evenly spaced) normal training windows.
    """
    root = Path(data_dir)
    if (root / "cwru").is_dir():
        root = root / "cwru"
    bad = [c for c in channels if c not in CHANNELS]
    if bad or not channels:
        raise ModelError(f"channels must be a non-empty subset of {CHANNELS}, got {channels!r}")
    Xtr, ytr, Xte, yte = [], [], [], []
    for label, (stem, _, _) in enumerate(CWRU_CLASSES):
        path = root / f"{stem}.mat"
        if not path.is_file():
            raise ModelError(f"CWRU file missing: expected {path}")
        sig = _read_recording(path, channels)
        half = sig.shape[1] // 2
        tr = _windows(sig[:, :half], window, train_stride)
        if label == 0 and max_normal_train is not None and tr.shape[0] > max_normal_train:
            tr = tr[np.linspace(0, tr.shape[0] - 1, max_normal_train).round().astype(int)]
        te = _windows(sig[:, half:], window, window)
        Xtr.append(tr)
        Xte.append(te)
        ytr.append(np.full(tr.shape[0], label))
        yte.append(np.full(te.shape[0], label))
    rng = np.random.default_rng(noise_seed)
    X_train = add_white_noise(np.concatenate(Xtr), snr_db, rng)
    X_test = add_white_noise(np.concatenate(Xte), snr_db, rng)
    names = ["normal" if t == "normal" else f"{t}_{round(s * 1000):03d}" for _, t, s in CWRU_CLASSES]
    return CWRUData(X_train, np.concatenate(ytr).astype(np.int64), X_test, np.concatenate(yte).astype(np.int64),
                    names, CWRU_FS, tuple(channels), snr_db)


def few_shot(
    X: NDArray[np.floating], y: NDArray[np.integer], k: int, *, keep_all: tuple[int, ...] = (0,), seed: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.int64]]:
    """Keep every window of the ``keep_all`` classes and ``k`` random windows of each other class.

    Returns:
        ``(X_k, y_k, indices)`` with ``indices`` into ``X``.
    """
    if k < 1:
        raise ModelError(f"k must be >= 1, got {k}")
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if int(label) in keep_all:
            keep.extend(idx.tolist())
        else:
            keep.extend(rng.choice(idx, size=min(k, idx.size), replace=False).tolist())
    ix = np.asarray(sorted(keep), dtype=np.int64)
    return np.asarray(X[ix], dtype=np.float32), np.asarray(y[ix], dtype=np.int64), ix


def cwru_condition_features() -> dict[int, tuple[float, ...]]:
    """Condition vector of each label: one-hot fault type (normal/ball/inner/outer) + severity / 0.021 in.

    Factorised conditions let a generator share what a fault type looks like across severities.
    """
    out: dict[int, tuple[float, ...]] = {}
    for label, (_, ftype, sev) in enumerate(CWRU_CLASSES):
        onehot = [1.0 if ftype == t else 0.0 for t in FAULT_TYPES]
        out[label] = (*onehot, sev / 0.021)
    return out


def cwru_defect_frequencies() -> dict[int, float]:
    """The envelope-spectrum line expected for each fault label: BPFO, BPFI, or 2 x BSF for ball faults."""
    d = BearingGeometry.skf_6205().defect_frequencies(CWRU_SHAFT_HZ)
    by_type = {"ball": 2.0 * d.bsf, "inner": d.bpfi, "outer": d.bpfo}
    return {label: by_type[t] for label, (_, t, _) in enumerate(CWRU_CLASSES) if t in by_type}


def cwru_kinematics() -> dict[int, tuple[float, float]]:
    """Impact rate and modulation frequency (Hz) of each fault label, from the SKF 6205 geometry.

    Ball faults: impacts on both races, 2 x BSF, modulated at the cage speed (FTF); inner race: BPFI
    modulated at the shaft speed (the defect turns through the load zone); outer race: BPFO,
    unmodulated (the defect sits in the load zone).
    """
    d = BearingGeometry.skf_6205().defect_frequencies(CWRU_SHAFT_HZ)
    by_type = {"ball": (2.0 * d.bsf, d.ftf), "inner": (d.bpfi, d.shaft), "outer": (d.bpfo, 0.0)}
    return {label: by_type[t] for label, (_, t, _) in enumerate(CWRU_CLASSES) if t in by_type}
