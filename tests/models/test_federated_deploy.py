"""Federated retraining on Flower's Deployment Engine: real SuperLink, SuperNodes and ``flwr run`` over loopback.

The plants here run :class:`TinyLearner`, a linear model trained by full-batch gradient descent on
rows the test writes, so the expected FedAvg result can be computed exactly in the test; the ClientApp
loads it through the node config's ``learner`` entry (the SuperNodes get this repository on their
``PYTHONPATH``).
"""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn)

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from core.errors import ModelError
from models.federated.deploy import FederationResult, LocalFederation, PlantNode
from models.federated.flower_app import OutgoingDataError, ServerSettings, check_secagg_range, inspect_reply

REPO = Path(__file__).resolve().parents[2]
N_FEATURES = 4
LEARNER_REF = "tests.models.test_federated_deploy:tiny_learner"
PLANTS = {"north": 60, "south": 90, "east": 150}  # training rows per plant: FedAvg weights 60:90:150


class TinyLearner:
    """Linear regression ``y = X @ w + b`` by full-batch gradient descent on one plant's rows.

    The initial weights come from the run's seed (the same on every plant); ``fit`` runs
    ``local_epochs`` steps, so a round is a deterministic function of the global weights.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, seed: int, learning_rate: float = 0.05) -> None:
        n_train = int(0.8 * len(y))
        self.X, self.y = X[:n_train].astype(np.float64), y[:n_train].astype(np.float64)
        self.X_val, self.y_val = X[n_train:].astype(np.float64), y[n_train:].astype(np.float64)
        self.seed = seed
        self.learning_rate = learning_rate

    def get_parameters(self) -> list[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return [rng.normal(0.0, 0.1, N_FEATURES).astype(np.float32), np.zeros(1, dtype=np.float32)]

    def fit(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        w, b = np.asarray(parameters[0], np.float64), float(np.asarray(parameters[1])[0])
        for _ in range(int(config.get("local_epochs", 1))):
            err = self.X @ w + b - self.y
            w = w - self.learning_rate * 2.0 * (self.X.T @ err) / len(err)
            b = b - self.learning_rate * 2.0 * float(err.mean())
        mse = float(np.mean((self.X @ w + b - self.y) ** 2))
        return [w.astype(np.float32), np.array([b], dtype=np.float32)], len(self.y), {"train_loss": mse}

    def evaluate(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict[str, float]]:
        pred = self.X_val @ np.asarray(parameters[0], np.float64) + float(np.asarray(parameters[1])[0])
        rmse = float(np.sqrt(np.mean((pred - self.y_val) ** 2)))
        return rmse, len(self.y_val), {"rmse": rmse}


def tiny_learner(node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> TinyLearner:
    """The ClientApp's learner factory for the plants of this test (``learner`` in their node config)."""
    with np.load(Path(str(node_config["data-dir"])) / "rows.npz") as rows:
        return TinyLearner(rows["X"], rows["y"], seed=int(run_config["seed"]))


def _write_plant(root: Path, name: str, n_train: int, seed: int) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = math.ceil(n_train / 0.8)  # TinyLearner trains on int(0.8 * n) rows: exactly n_train
    X = rng.normal(0.0, 1.0, (n, N_FEATURES)).astype(np.float32)
    w_true = rng.normal(0.0, 1.0, N_FEATURES)
    y = (X @ w_true + 0.5 + rng.normal(0.0, 0.1, n)).astype(np.float32)
    path = root / name
    path.mkdir()
    np.savez(path / "rows.npz", X=X, y=y)
    return path, X, y


def _expected(learners: Sequence[TinyLearner], rounds: int, local_epochs: int) -> list[np.ndarray]:
    weights = learners[0].get_parameters()
    for r in range(1, rounds + 1):
        cfg = {"local_epochs": local_epochs, "server_round": r, "proximal_mu": 0.0}
        fits = [lrn.fit(weights, cfg) for lrn in learners]
        total = sum(n for _, n, _ in fits)
        weights = [sum(n * np.asarray(p[i], np.float64) for p, n, _ in fits) / total for i in range(len(weights))]
    return weights


def _row_digests(X: np.ndarray, y: np.ndarray) -> set[str]:
    """SHA-256 of every raw row as it could be sent: features, features + target, in float32 and float64."""
    digests = set()
    for row, target in zip(X, y, strict=True):
        for arr in (row, np.append(row, target)):
            for dtype in (np.float32, np.float64):
                digests.add(hashlib.sha256(np.ascontiguousarray(arr, dtype=dtype).tobytes()).hexdigest())
    return digests


def _audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _digests_in(entry: dict[str, Any]) -> list[str]:
    out = [a["sha256"] for a in entry.get("arrays", [])]
    for fld in entry.get("fields", {}).values():
        out += [a["sha256"] for a in fld.get("arrays", [])]
        out += fld.get("sha256", [])
    return out


def test_fedavg_with_secagg_over_real_processes(tmp_path: Path) -> None:
    rows = {name: _write_plant(tmp_path, name, n, seed) for seed, (name, n) in enumerate(PLANTS.items())}
    nodes = [PlantNode(name, path, seed=i, extra={"learner": LEARNER_REF}) for i, (name, (path, _, _)) in enumerate(rows.items())]
    run_config = {
        "num-server-rounds": 2,
        "strategy": "fedavg",
        "secagg": True,
        "secagg-num-shares": 3,
        "secagg-reconstruction-threshold": 2,
        "secagg-max-weight": 1000.0,
        "local-epochs": 3,
        "seed": 11,
    }
    started = time.perf_counter()
    with LocalFederation(nodes, workdir=tmp_path / "federation", python_path=[REPO]) as fed:
        result: FederationResult = fed.run(run_config, timeout_s=300)
    elapsed = time.perf_counter() - started
    print(f"federation: 3 plants, 2 SecAgg+ rounds in {elapsed:.1f} s (run {result.wall_time_s:.1f} s)")

    # the aggregate is FedAvg's weighted mean, up to SecAgg+'s quantisation
    learners = [tiny_learner({"data-dir": str(path)}, {"seed": 11}) for path, _, _ in rows.values()]
    expected = _expected(learners, rounds=2, local_epochs=3)
    history = result.history
    bound = sum(r["secagg_error_bound"] for r in history["rounds"])
    assert 0 < bound < 1e-3
    assert [p.shape for p in result.parameters] == [(N_FEATURES,), (1,)]
    for got, want in zip(result.parameters, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=bound + 1e-5)

    # the history: two rounds, every plant's fit and evaluation, the aggregated evaluation loss
    assert history["strategy"] == "fedavg" and history["secagg"] is True
    assert [r["round"] for r in history["rounds"]] == [1, 2]
    for rnd in history["rounds"]:
        assert rnd["num_clients"] == 3 and rnd["fit_failures"] == 0 and rnd["eval_failures"] == 0
        assert set(rnd["clients"]) == set(PLANTS)
        for name, client in rnd["clients"].items():
            assert client["fit"]["num_examples"] == PLANTS[name]
            assert client["evaluate"]["rmse"] == pytest.approx(client["evaluate"]["loss"])
            assert client["bytes_down"] == 2 * (N_FEATURES + 1) * 4 and client["bytes_up"] == (N_FEATURES + 1) * 4
        n_val = {name: client["evaluate"]["num_examples"] for name, client in rnd["clients"].items()}
        mean = sum(n_val[p] * rnd["clients"][p]["evaluate"]["loss"] for p in PLANTS) / sum(n_val.values())
        assert rnd["eval_loss"] == pytest.approx(mean)
        assert rnd["wall_time_s"] > 0
    assert history["rounds"][1]["eval_loss"] < history["rounds"][0]["eval_loss"]

    # what left each plant: weight-shaped arrays (only to answer the initial request) and SecAgg+ material;
    # under SecAgg+ no plain fit weights; nothing equal to any raw row
    allowed = {
        "fitres.parameters", "fitres.metrics", "fitres.num_examples", "fitres.status",
        "evaluateres.loss", "evaluateres.num_examples", "evaluateres.metrics", "evaluateres.status",
        "getparametersres.parameters", "getparametersres.status", "secaggplus_configs",
    }  # fmt: skip
    param_shapes = [[N_FEATURES], [1]]
    for name, (_, X, y) in rows.items():
        raw = _row_digests(X, y)
        lines = _audit(result.audit_logs[name])
        assert lines and all(line["error"] is None for line in lines)
        stages = [line["secagg_stage"] for line in lines if line["secagg_stage"]]
        assert stages == ["setup", "share_keys", "collect_masked_vectors", "unmask"] * 2
        for line in lines:
            for entry in line["records"]:
                assert entry["record"] in allowed
                if entry["record"] == "fitres.parameters":
                    assert entry["arrays"] == []
                if entry.get("kind") == "arrays" and entry["arrays"]:
                    assert [a["shape"] for a in entry["arrays"]] == param_shapes
                    assert {a["dtype"] for a in entry["arrays"]} == {"float32"}
                if entry.get("stage") == "collect_masked_vectors":
                    masked = entry["fields"]["masked_params"]["arrays"]
                    assert [a["shape"] for a in masked] == [[1], *param_shapes]
                assert not raw.intersection(_digests_in(entry))


def _shapes() -> list[tuple[tuple[int, ...], str]]:
    return [((N_FEATURES,), "float32"), ((1,), "float32")]


def _fit_reply(arrays: list[np.ndarray], metrics: dict[str, Any]) -> RecordDict:
    return RecordDict(
        {
            "fitres.parameters": ArrayRecord(arrays),
            "fitres.metrics": ConfigRecord(metrics),
            "fitres.num_examples": MetricRecord({"num_examples": 10}),
            "fitres.status": ConfigRecord({"code": 0, "message": "Success"}),
        }
    )


def test_guard_passes_weights_and_scalar_metrics() -> None:
    weights = [np.zeros(N_FEATURES, np.float32), np.zeros(1, np.float32)]
    entries = inspect_reply(_fit_reply(weights, {"plant": "north", "train_loss": 0.5}), None, _shapes)
    arrays = next(e for e in entries if e["record"] == "fitres.parameters")["arrays"]
    assert [a["shape"] for a in arrays] == [[N_FEATURES], [1]] and [a["nbytes"] for a in arrays] == [16, 4]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        # an extra array (a raw row) next to the weights
        (_fit_reply([np.zeros(N_FEATURES, np.float32), np.zeros(1, np.float32), np.ones(5, np.float32)], {}), "not the model's"),
        # weights in the wrong dtype (float64 doubles what leaves and is no weight of this model)
        (_fit_reply([np.zeros(N_FEATURES), np.zeros(1)], {}), "not the model's"),
        # a list hidden in the metrics
        (_fit_reply([np.zeros(N_FEATURES, np.float32), np.zeros(1, np.float32)], {"rows": [1.0, 2.0]}), "not a scalar"),
        # a string metric other than the plant's name
        (_fit_reply([np.zeros(N_FEATURES, np.float32), np.zeros(1, np.float32)], {"note": "unit 7 failed"}), "not a scalar"),
        # a record of its own
        (RecordDict({"raw": ArrayRecord([np.ones((3, N_FEATURES), np.float32)])}), "not one of"),
    ],
)
def test_guard_refuses_anything_else(content: RecordDict, match: str) -> None:
    with pytest.raises(OutgoingDataError, match=match):
        inspect_reply(content, None, _shapes)


def test_guard_refuses_secagg_fields_of_another_stage() -> None:
    content = RecordDict({"secaggplus_configs": ConfigRecord({"pk1": b"k" * 64, "pk2": b"k" * 64})})
    assert inspect_reply(content, "setup", _shapes)[0]["fields"]["pk1"]["nbytes"] == [64]
    with pytest.raises(OutgoingDataError, match="stage 'unmask'"):
        inspect_reply(content, "unmask", _shapes)
    with pytest.raises(OutgoingDataError, match="outside SecAgg"):
        inspect_reply(content, None, _shapes)
    big = RecordDict({"secaggplus_configs": ConfigRecord({"pk1": b"k" * 10_000, "pk2": b"k"})})
    with pytest.raises(OutgoingDataError, match="at most"):
        inspect_reply(big, "setup", _shapes)


def test_secagg_range_check_refuses_weights_that_would_be_clipped() -> None:
    check_secagg_range([np.full(3, 7.9, np.float32)], 1000, clipping_range=8.0, max_weight=1000.0)
    check_secagg_range([np.full(3, 50.0, np.float32)], 100, clipping_range=8.0, max_weight=1000.0)  # 50 x 0.1
    with pytest.raises(ModelError, match="would be clipped"):
        check_secagg_range([np.full(3, 9.0, np.float32)], 1000, clipping_range=8.0, max_weight=1000.0)
    with pytest.raises(ModelError, match="exceed secagg-max-weight"):
        check_secagg_range([np.zeros(3, np.float32)], 1001, clipping_range=8.0, max_weight=1000.0)


def test_server_settings_from_run_config() -> None:
    s = ServerSettings.from_run_config({"num-server-rounds": 5, "strategy": "fedprox", "secagg": "false", "proximal-mu": 1})
    assert (s.num_server_rounds, s.strategy, s.secagg, s.proximal_mu) == (5, "fedprox", False, 1.0)
    with pytest.raises(ValueError, match="strategy"):
        ServerSettings.from_run_config({"strategy": "krum"})
    with pytest.raises(ValueError, match="reconstruction-threshold"):
        ServerSettings.from_run_config({"secagg-num-shares": 3, "secagg-reconstruction-threshold": 3})
    assert ServerSettings().secagg_error_bound(3, 300) == pytest.approx(3 * 16 / 2**22 * 100_000 / 300)
