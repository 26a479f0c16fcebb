"""Flower ServerApp and ClientApp of GenEdge's federated retraining, for Flower's Deployment Engine.

The server runs Flower's legacy strategies (FedAvg or FedProx) inside ``DefaultWorkflow``; with
``secagg`` on, the fit round is Flower's SecAgg+ protocol (``SecAggPlusWorkflow`` on the server,
``secaggplus_mod`` on each client), so the server only ever sees the weighted *sum* of the plants'
weights. Every round ends with a federated evaluation on each plant's validation units.

Each plant's ClientApp wraps a learner (by default :class:`models.federated.learner.PlantLearner`)
in a ``NumPyClient``, and :func:`outgoing_guard` inspects every reply before it leaves the plant:
only the model's weight arrays, scalar metrics and the SecAgg+ protocol's own records may go out.

SecAgg+ quantisation: each client multiplies its weights by ``num_examples / max_weight`` (at most 1),
clips them to ``[-clipping_range, clipping_range]`` and maps them to integers in
``[0, 2**22)``. Weights outside the clipping range would be clipped silently, so the client refuses to
send them (:func:`check_secagg_range`) and ``num_examples`` may not exceed ``max_weight``. The
aggregate's error per weight is at most ``n_clients * 2 * clipping_range / 2**22 * max_weight /
sum(num_examples)`` (stochastic rounding: below one quantisation step per client); ``history.json``
records that bound. The RUL network's weights stay far inside the default ``clipping_range`` of 8
(its output is ``rul_cap * head(x)``, so no weight carries the cycle scale).

The run configuration keys are declared (with their defaults) in ``models/federated/app/pyproject.toml``;
Flower rejects overrides of undeclared keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from flwr.app import Array, ConfigRecord, Context, Message, RecordDict
from flwr.client import Client, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    NDArrays,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg, FedProx, Strategy
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from core.errors import ConfigError, ModelError

__all__ = [
    "DEFAULT_LEARNER",
    "DEFAULT_REGISTRAR",
    "SECAGG_QUANTIZATION_RANGE",
    "Learner",
    "OutgoingDataError",
    "ServerSettings",
    "check_secagg_range",
    "client_app",
    "inspect_reply",
    "learner_for",
    "outgoing_guard",
    "plant_learner",
    "server_app",
]

#: node-config reference of the learner factory: ``(node_config, run_config) -> Learner``
DEFAULT_LEARNER = "models.federated.flower_app:plant_learner"
#: node-config reference of the registrar: ``(learner, registry_dir, parameters, federation) -> version``
DEFAULT_REGISTRAR = "models.federated.register:register_plant_version"
#: SecAgg+'s integer range for a clipped weight (Flower's default, 2**22)
SECAGG_QUANTIZATION_RANGE = 4_194_304
#: SecAgg+ key, ciphertext and share sizes are a few hundred bytes at most; a bigger "protocol" field
#: would be something else riding in the protocol's records
_SECAGG_MAX_FIELD_BYTES = 4096

# Reply records a plant may send: the legacy Flower result records and SecAgg+'s configs record.
_ARRAY_RECORDS = frozenset({"fitres.parameters", "getparametersres.parameters"})
_METRIC_RECORDS: Mapping[str, frozenset[str]] = {
    "fitres.num_examples": frozenset({"num_examples"}),
    "evaluateres.loss": frozenset({"loss"}),
    "evaluateres.num_examples": frozenset({"num_examples"}),
}
_STATUS_RECORDS = frozenset({"fitres.status", "evaluateres.status", "getparametersres.status"})
_METRICS_RECORDS = frozenset({"fitres.metrics", "evaluateres.metrics"})
_SECAGG_RECORD = "secaggplus_configs"
#: what each SecAgg+ stage's reply holds: public keys; share destinations and encrypted shares;
#: the masked, quantised weights; the node ids and key shares that unmask the sum
_SECAGG_REPLY_FIELDS: Mapping[str, frozenset[str]] = {
    "setup": frozenset({"pk1", "pk2"}),
    "share_keys": frozenset({"dsts", "ctxts"}),
    "collect_masked_vectors": frozenset({"masked_params"}),
    "unmask": frozenset({"nids", "shares"}),
}
#: the node state's records: the plant's privacy ledger; the version it registered
_PRIVACY_STATE = "genedge.privacy"
_REGISTERED_STATE = "genedge.registered"
#: the one string metric a plant reports: its own name, which keys the server's per-plant history
_STRING_METRICS = frozenset({"plant"})


class Learner(Protocol):
    """What the ClientApp needs of a plant's learner (:class:`models.federated.learner.PlantLearner`)."""

    def get_parameters(self) -> list[np.ndarray]:
        """The model's weights (float32, the same shapes on every plant)."""

    def fit(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train from ``parameters``: ``(weights, n_examples, metrics)``."""

    def evaluate(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict[str, float]]:
        """Evaluate ``parameters`` on the plant's validation units: ``(loss, n, metrics)``."""


class OutgoingDataError(ModelError):
    """A plant's reply held something other than weights, scalar metrics or SecAgg+ material; it was not sent."""


# --------------------------------------------------------------------------------------- settings


def _get(run_config: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = run_config.get(key, default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise ConfigError(f"run config {key!r} must be a bool, got {value!r}")
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"run config {key!r} must be {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class ServerSettings:
    """The server's part of the run configuration (dashed keys in Flower's run config)."""

    num_server_rounds: int = 3
    strategy: str = "fedavg"
    proximal_mu: float = 0.01
    local_epochs: int = 1
    min_clients: int = 2
    secagg: bool = True
    secagg_num_shares: int = 3
    secagg_reconstruction_threshold: int = 2
    secagg_clipping_range: float = 8.0
    secagg_max_weight: float = 100_000.0
    secagg_timeout_s: float = 0.0
    out_dir: str = "var/federated"

    def __post_init__(self) -> None:
        if self.num_server_rounds < 1:
            raise ConfigError(f"num-server-rounds must be >= 1, got {self.num_server_rounds}")
        if self.strategy not in {"fedavg", "fedprox"}:
            raise ConfigError(f"strategy must be 'fedavg' or 'fedprox', got {self.strategy!r}")
        if self.proximal_mu < 0:
            raise ConfigError(f"proximal-mu must be >= 0, got {self.proximal_mu}")
        if self.local_epochs < 1 or self.min_clients < 1:
            raise ConfigError(f"local-epochs and min-clients must be >= 1, got {self.local_epochs}, {self.min_clients}")
        if self.secagg:
            if self.min_clients < 2:
                raise ConfigError("SecAgg+ needs at least 2 clients (min-clients >= 2)")
            if self.secagg_num_shares < 3 or not 2 <= self.secagg_reconstruction_threshold < self.secagg_num_shares:
                raise ConfigError(
                    "SecAgg+ needs secagg-num-shares >= 3 and 2 <= secagg-reconstruction-threshold < secagg-num-shares, "
                    f"got {self.secagg_num_shares} and {self.secagg_reconstruction_threshold}"
                )
            if self.secagg_clipping_range <= 0 or self.secagg_max_weight <= 0:
                raise ConfigError("secagg-clipping-range and secagg-max-weight must be > 0")

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> ServerSettings:
        """The settings from a Flower run configuration (missing keys keep their defaults)."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = f.name.replace("_", "-")
            if key in run_config:
                default = getattr(cls, f.name)
                kwargs[f.name] = _get(run_config, key, type(default), default)
        return cls(**kwargs)

    def secagg_error_bound(self, n_clients: int, total_examples: int) -> float:
        """Largest error per aggregated weight SecAgg+'s quantisation can cause (see the module docstring)."""
        if not self.secagg or total_examples <= 0:
            return 0.0
        step = 2.0 * self.secagg_clipping_range / SECAGG_QUANTIZATION_RANGE
        return n_clients * step * self.secagg_max_weight / total_examples


# --------------------------------------------------------------------------------------- client


def plant_learner(node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> Learner:
    """The default learner: :class:`~models.federated.learner.PlantLearner` of the node's plant."""
    # imported here: the learner pulls torch and Lightning, which the server process never needs
    from models.federated.learner import FederatedConfig, PlantLearner  # noqa: PLC0415

    return PlantLearner.from_node_config(node_config, FederatedConfig.from_run_config(run_config))


def _resolve(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"a node config reference must be 'module:attribute', got {ref!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"node config reference {ref!r} is not callable")
    return cast(Callable[..., Any], obj)


#: learners built in this process, keyed by node and run configuration (Flower 1.42 starts one
#: ClientApp process per message, so this spares rebuilding only when a process handles several)
_LEARNERS: dict[str, Learner] = {}


def learner_for(context: Context) -> Learner:
    """The learner of this node and run, built once per process by the node config's ``learner`` factory."""
    node_config = dict(context.node_config)
    run_config = dict(context.run_config)
    key = json.dumps([context.run_id, sorted(node_config.items()), sorted(run_config.items())], default=str)
    if key not in _LEARNERS:
        factory = _resolve(str(node_config.get("learner", DEFAULT_LEARNER)))
        _LEARNERS[key] = factory(node_config, run_config)
    return _LEARNERS[key]


def check_secagg_range(parameters: Sequence[np.ndarray], num_examples: int, clipping_range: float, max_weight: float) -> None:
    """Refuse weights SecAgg+ would clip: ``|w| * num_examples / max_weight`` must stay within ``clipping_range``.

    Raises:
        ModelError: ``num_examples`` exceeds ``max_weight``, or a weight would be clipped.
    """
    if num_examples > max_weight:
        raise ModelError(
            f"SecAgg+: this plant's {num_examples} examples exceed secagg-max-weight {max_weight:g}; raise secagg-max-weight"
        )
    ratio = num_examples / max_weight
    largest = max((float(np.max(np.abs(p))) for p in parameters if np.size(p)), default=0.0)
    if not math.isfinite(largest) or largest * ratio > clipping_range:
        raise ModelError(
            f"SecAgg+: a weight of magnitude {largest:.4g} (x {ratio:.3g}) exceeds secagg-clipping-range "
            f"{clipping_range:g} and would be clipped; raise secagg-clipping-range"
        )


def _nbytes(arrays: Sequence[np.ndarray]) -> int:
    return int(sum(np.asarray(a).nbytes for a in arrays))


class _PlantClient(NumPyClient):
    """A plant's NumPyClient: the learner's weights, training and evaluation, and the plant's name in every metric set.

    A learner with a privacy ledger (``restore_privacy`` and a ``privacy`` with ``to_card``) keeps it
    in the node's ``context.state`` between rounds: Flower starts a ClientApp process per message,
    and the ledger is what stops a plant from spending more than its budget. With ``registry-dir`` in
    the node config, the evaluation of the last round registers the final weights in the plant's
    registry, unpromoted (the node config's ``registrar``, default :data:`DEFAULT_REGISTRAR`).
    """

    def __init__(self, learner: Learner, plant: str, settings: ServerSettings, context: Context) -> None:
        self.learner = learner
        self.plant = plant
        self.settings = settings
        self.ctx = context

    def get_parameters(self, config: dict[str, Scalar]) -> NDArrays:
        return self.learner.get_parameters()

    def _ledger(self) -> Any:
        return getattr(self.learner, "privacy", None)

    def fit(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[NDArrays, int, dict[str, Scalar]]:
        stored = self.ctx.state.config_records.get(_PRIVACY_STATE)
        if stored is not None and self._ledger() is not None:
            cast(Any, self.learner).restore_privacy(dict(stored))
        weights, n, metrics = self.learner.fit(parameters, config)
        ledger = self._ledger()
        if ledger is not None:
            self.ctx.state.config_records[_PRIVACY_STATE] = ConfigRecord(ledger.to_card())
        if self.settings.secagg:
            check_secagg_range(weights, n, self.settings.secagg_clipping_range, self.settings.secagg_max_weight)
        out: dict[str, Scalar] = {k: float(v) for k, v in metrics.items()}
        out.update(plant=self.plant, bytes_down=_nbytes(parameters), bytes_up=_nbytes(weights))
        return weights, n, out

    def evaluate(self, parameters: NDArrays, config: dict[str, Scalar]) -> tuple[float, int, dict[str, Scalar]]:
        loss, n, metrics = self.learner.evaluate(parameters, config)
        out: dict[str, Scalar] = {k: float(v) for k, v in metrics.items()}
        out.update(plant=self.plant, bytes_down=_nbytes(parameters))
        registry = self.ctx.node_config.get("registry-dir")
        if registry and config.get("final"):
            self._register(str(registry), parameters, config, float(loss))
        return float(loss), n, out

    def _register(self, registry: str, parameters: NDArrays, config: dict[str, Scalar], loss: float) -> None:
        stored = self.ctx.state.config_records.get(_PRIVACY_STATE)
        federation = {
            "run_id": self.ctx.run_id,
            "rounds": self.settings.num_server_rounds,
            "plants": sorted(p for p in str(config.get("plants", "")).split(",") if p),
            "strategy": self.settings.strategy,
            "proximal_mu": self.settings.proximal_mu if self.settings.strategy == "fedprox" else 0.0,
            "local_epochs": self.settings.local_epochs,
            "secure_aggregation": self.settings.secagg,
            "privacy": dict(stored) if stored is not None else None,
            "plant_val_rmse": loss,
        }
        registrar = _resolve(str(self.ctx.node_config.get("registrar", DEFAULT_REGISTRAR)))
        version = registrar(self.learner, registry, parameters, federation)
        self.ctx.state.config_records[_REGISTERED_STATE] = ConfigRecord({"registry": registry, "version": str(version)})


def _client_fn(context: Context) -> Client:
    learner = learner_for(context)
    plant = str(context.node_config.get("plant", context.node_id))
    return _PlantClient(learner, plant, ServerSettings.from_run_config(context.run_config), context).to_client()


# --------------------------------------------------------------------------------------- guard


def _decode(array: Array) -> np.ndarray:
    """An Array's values: legacy records hold a serialised ``.npy`` with no dtype/shape of their own."""
    if array.dtype == "":
        return cast(np.ndarray, np.load(io.BytesIO(array.data), allow_pickle=False))
    return array.numpy()


def _describe(arr: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "nbytes": int(arr.nbytes),
        "sha256": hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest(),
    }


def _check_shapes(what: str, arrays: Sequence[np.ndarray], expected: Sequence[tuple[tuple[int, ...], str]]) -> None:
    got = [(tuple(a.shape), str(a.dtype)) for a in arrays]
    if got != list(expected):
        raise OutgoingDataError(f"{what}: arrays {got} are not the model's weights {list(expected)}")


def _check_scalar(what: str, key: str, value: Any) -> None:
    if isinstance(value, str) and key in _STRING_METRICS:
        return
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        return
    raise OutgoingDataError(f"{what}[{key!r}]: a {type(value).__name__} is not a scalar metric")


def _secagg_entry(stage: str, record: ConfigRecord, expected: Callable[[], list[tuple[tuple[int, ...], str]]]) -> dict[str, Any]:
    allowed = _SECAGG_REPLY_FIELDS.get(stage)
    if allowed is None or set(record.keys()) != allowed:
        raise OutgoingDataError(f"{_SECAGG_RECORD}: fields {sorted(record.keys())} are not SecAgg+'s reply to stage {stage!r}")
    entry: dict[str, Any] = {"record": _SECAGG_RECORD, "kind": "secagg", "stage": stage, "fields": {}}
    for key, value in record.items():
        items = value if isinstance(value, list) else [value]
        if key in {"dsts", "nids"}:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise OutgoingDataError(f"{_SECAGG_RECORD}[{key!r}] must hold node ids")
            entry["fields"][key] = {"kind": "node_ids", "count": len(items)}
        elif key == "masked_params":
            blobs = [v for v in items if isinstance(v, bytes)]
            if len(blobs) != len(items):
                raise OutgoingDataError(f"{_SECAGG_RECORD}[{key!r}] must hold serialised arrays")
            arrays = [cast(np.ndarray, np.load(io.BytesIO(b), allow_pickle=False)) for b in blobs]
            # the first vector is SecAgg+'s weight factor (one integer), then one masked vector per weight
            shapes = [(1,), *(shape for shape, _ in expected())]
            if [tuple(a.shape) for a in arrays] != shapes or not all(np.issubdtype(a.dtype, np.integer) for a in arrays):
                raise OutgoingDataError(
                    f"{_SECAGG_RECORD}[{key!r}]: {[(a.shape, str(a.dtype)) for a in arrays]} are not masked weights {shapes}"
                )
            entry["fields"][key] = {"kind": "masked_vectors", "arrays": [_describe(a) for a in arrays]}
        else:
            if not all(isinstance(v, bytes) and len(v) <= _SECAGG_MAX_FIELD_BYTES for v in items):
                raise OutgoingDataError(
                    f"{_SECAGG_RECORD}[{key!r}] must hold keys or shares of at most {_SECAGG_MAX_FIELD_BYTES} bytes"
                )
            blobs = cast(list[bytes], items)
            entry["fields"][key] = {
                "kind": "key_material",
                "count": len(blobs),
                "nbytes": [len(b) for b in blobs],
                "sha256": [hashlib.sha256(b).hexdigest() for b in blobs],
            }
    return entry


def inspect_reply(
    content: RecordDict, secagg_stage: str | None, expected: Callable[[], list[tuple[tuple[int, ...], str]]]
) -> list[dict[str, Any]]:
    """Check a reply's content and describe each of its records.

    Args:
        content: the reply's records.
        secagg_stage: the SecAgg+ stage the reply answers (``None`` outside SecAgg+).
        expected: the model's weights as ``(shape, dtype)`` pairs, in order (called only when the reply holds arrays).

    Returns:
        One audit entry per record: its name and, for arrays, their shapes, dtypes, sizes and SHA-256.

    Raises:
        OutgoingDataError: a record, field or array that is not the model's weights, a scalar metric,
            a status or SecAgg+ material of the stage being answered.
    """
    entries: list[dict[str, Any]] = []
    for name, arr_record in content.array_records.items():
        if name not in _ARRAY_RECORDS:
            raise OutgoingDataError(f"array record {name!r} is not one of {sorted(_ARRAY_RECORDS)}")
        arrays = [_decode(a) for key, a in arr_record.items() if not (key == "_empty" and not a.data)]
        if arrays:
            _check_shapes(name, arrays, expected())
        entries.append({"record": name, "kind": "arrays", "arrays": [_describe(a) for a in arrays]})
    for name, metric_record in content.metric_records.items():
        keys = _METRIC_RECORDS.get(name)
        if keys is None or set(metric_record.keys()) != keys:
            raise OutgoingDataError(f"metric record {name!r} with {sorted(metric_record.keys())} is not a result count or loss")
        for key, value in metric_record.items():
            _check_scalar(name, key, value)
        entries.append({"record": name, "kind": "metrics", "keys": sorted(metric_record.keys())})
    for name, cfg_record in content.config_records.items():
        if name == _SECAGG_RECORD:
            if secagg_stage is None:
                raise OutgoingDataError(f"{_SECAGG_RECORD} in a reply to a message outside SecAgg+")
            entries.append(_secagg_entry(secagg_stage, cfg_record, expected))
        elif name in _STATUS_RECORDS:
            if set(cfg_record.keys()) - {"code", "message"}:
                raise OutgoingDataError(f"status record {name!r} holds {sorted(cfg_record.keys())}")
            entries.append({"record": name, "kind": "status"})
        elif name in _METRICS_RECORDS:
            for key, config_value in cfg_record.items():
                _check_scalar(name, key, config_value)
            entries.append({"record": name, "kind": "metrics", "keys": sorted(cfg_record.keys())})
        else:
            raise OutgoingDataError(f"config record {name!r} is not a result status, metrics or SecAgg+ record")
    return entries


def outgoing_guard(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Client mod: let a reply leave the plant only if it holds weights, scalar metrics or SecAgg+ material.

    Put it first in the ClientApp's mods, so that it sees the reply as sent (after SecAgg+ masking).
    With ``audit-log`` in the node config, each reply's records are appended as one JSON line.

    Raises:
        OutgoingDataError: the reply held anything else (the ClientApp then sends an error instead).
    """
    stage = None
    if _SECAGG_RECORD in msg.content.config_records:
        # secaggplus_mod pops the stage from the incoming record: read it first
        stage = str(msg.content.config_records[_SECAGG_RECORD].get("stage", ""))
    reply = call_next(msg, ctxt)

    shapes: list[tuple[tuple[int, ...], str]] = []

    def expected() -> list[tuple[tuple[int, ...], str]]:
        if not shapes:
            shapes.extend((tuple(np.shape(a)), str(np.asarray(a).dtype)) for a in learner_for(ctxt).get_parameters())
        return shapes

    entries = [] if reply.has_error() else inspect_reply(reply.content, stage, expected)
    audit_log = ctxt.node_config.get("audit-log")
    if audit_log:
        line = {
            "time": time.time(),
            "run_id": ctxt.run_id,
            "plant": str(ctxt.node_config.get("plant", ctxt.node_id)),
            "message_type": msg.metadata.message_type,
            "group_id": msg.metadata.group_id,
            "secagg_stage": stage,
            "error": reply.error.reason if reply.has_error() else None,
            "records": entries,
        }
        with Path(str(audit_log)).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return reply


# secaggplus_mod acts on train messages only; a train message without SecAgg+ configs is a plain fit,
# so one ClientApp serves runs with and without secure aggregation
def _secagg_when_asked(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    if _SECAGG_RECORD in msg.content.config_records:
        return secaggplus_mod(msg, ctxt, call_next)
    return call_next(msg, ctxt)


client_app = ClientApp(client_fn=_client_fn, mods=[outgoing_guard, _secagg_when_asked])


# --------------------------------------------------------------------------------------- server


def _weighted_mean(metrics: list[tuple[int, dict[str, Scalar]]]) -> dict[str, Scalar]:
    total = sum(n for n, _ in metrics)
    keys = {k for _, m in metrics for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    if total <= 0:
        return {}
    return {k: sum(n * float(cast(float, m[k])) for n, m in metrics if k in m) / total for k in sorted(keys)}


@dataclass
class _Round:
    number: int
    started: float
    fit: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluate: dict[str, dict[str, Any]] = field(default_factory=dict)
    fit_failures: int = 0
    eval_failures: int = 0
    eval_loss: float | None = None
    eval_metrics: dict[str, Scalar] = field(default_factory=dict)
    finished: float | None = None
    bytes_down_per_message: int = 0


def _plant_of(proxy: ClientProxy, metrics: Mapping[str, Scalar]) -> str:
    return str(metrics.get("plant", proxy.cid))


class _RecordingStrategy(Strategy):
    """Delegates to a Flower strategy and records each round per plant (``history.json``)."""

    def __init__(self, inner: Strategy) -> None:
        self.inner = inner
        self.rounds: dict[int, _Round] = {}
        self.parameters: NDArrays = []

    def __repr__(self) -> str:
        return f"Recording({self.inner!r})"

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        self.rounds[server_round] = _Round(server_round, time.perf_counter())
        if not self.parameters:
            self.parameters = parameters_to_ndarrays(parameters)
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        rnd = self.rounds[server_round]
        for proxy, res in results:
            rnd.fit[_plant_of(proxy, res.metrics)] = {"num_examples": res.num_examples, **res.metrics}
        rnd.fit_failures = len(failures)
        parameters, metrics = self.inner.aggregate_fit(server_round, results, failures)
        if parameters is not None:
            # SecAgg+ dequantises to float64: back to the model's own dtypes, so the plants get
            # (and the server keeps) weights of the size and type they sent
            dtypes = [np.asarray(a).dtype for a in self.parameters]
            arrays = parameters_to_ndarrays(parameters)
            if len(dtypes) == len(arrays):
                arrays = [np.asarray(a, dtype=d) for a, d in zip(arrays, dtypes, strict=True)]
            self.parameters = arrays
            parameters = ndarrays_to_parameters(arrays)
        return parameters, metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        instructions = self.inner.configure_evaluate(server_round, parameters, client_manager)
        # the plants of the round, for the federation section of the cards the plants register
        plants = ",".join(sorted(str(p) for p in self.rounds[server_round].fit)) if server_round in self.rounds else ""
        for _, ins in instructions:
            ins.config["plants"] = plants
        return instructions

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        rnd = self.rounds.setdefault(server_round, _Round(server_round, time.perf_counter()))
        for proxy, res in results:
            rnd.evaluate[_plant_of(proxy, res.metrics)] = {"loss": res.loss, "num_examples": res.num_examples, **res.metrics}
        rnd.eval_failures = len(failures)
        loss, metrics = self.inner.aggregate_evaluate(server_round, results, failures)
        rnd.eval_loss, rnd.eval_metrics, rnd.finished = loss, metrics, time.perf_counter()
        return loss, metrics

    def evaluate(self, server_round: int, parameters: Parameters) -> tuple[float, dict[str, Scalar]] | None:
        return self.inner.evaluate(server_round, parameters)


def _build_strategy(settings: ServerSettings) -> Strategy:
    def fit_config(server_round: int) -> dict[str, Scalar]:
        # FedProx adds its own proximal_mu; FedAvg sends 0 so the learner trains without the term
        return {"server_round": server_round, "local_epochs": settings.local_epochs, "proximal_mu": 0.0}

    def eval_config(server_round: int) -> dict[str, Scalar]:
        return {"server_round": server_round, "final": server_round == settings.num_server_rounds}

    common: dict[str, Any] = {
        "min_fit_clients": settings.min_clients,
        "min_evaluate_clients": settings.min_clients,
        "min_available_clients": settings.min_clients,
        "on_fit_config_fn": fit_config,
        "on_evaluate_config_fn": eval_config,
        "fit_metrics_aggregation_fn": _weighted_mean,
        "evaluate_metrics_aggregation_fn": _weighted_mean,
        "accept_failures": False,
    }
    if settings.strategy == "fedprox":
        return FedProx(proximal_mu=settings.proximal_mu, **common)
    return FedAvg(**common)


def _history(settings: ServerSettings, recorder: _RecordingStrategy, wall_time_s: float) -> dict[str, Any]:
    rounds = []
    for number in sorted(recorder.rounds):
        rnd = recorder.rounds[number]
        plants = sorted(set(rnd.fit) | set(rnd.evaluate))
        total_fit = sum(int(rnd.fit[p]["num_examples"]) for p in rnd.fit)
        per_plant: dict[str, Any] = {}
        for plant in plants:
            fit, ev = rnd.fit.get(plant, {}), rnd.evaluate.get(plant, {})
            per_plant[plant] = {
                "fit": fit,
                "evaluate": ev,
                # weights down in the fit and evaluate instructions, weights up in the fit result
                "bytes_down": int(fit.get("bytes_down", 0)) + int(ev.get("bytes_down", 0)),
                "bytes_up": int(fit.get("bytes_up", 0)),
            }
        rounds.append(
            {
                "round": number,
                "num_clients": len(plants),
                "eval_loss": rnd.eval_loss,
                "eval_metrics": rnd.eval_metrics,
                "fit_failures": rnd.fit_failures,
                "eval_failures": rnd.eval_failures,
                "wall_time_s": (rnd.finished - rnd.started) if rnd.finished is not None else None,
                "secagg_error_bound": settings.secagg_error_bound(len(rnd.fit), total_fit),
                "clients": per_plant,
            }
        )
    return {
        "strategy": settings.strategy,
        "secagg": settings.secagg,
        "settings": {f.name.replace("_", "-"): getattr(settings, f.name) for f in dataclasses.fields(settings)},
        "parameter_shapes": [list(np.shape(a)) for a in recorder.parameters],
        "n_parameters": int(sum(np.size(a) for a in recorder.parameters)),
        "wall_time_s": wall_time_s,
        "rounds": rounds,
    }


def run_server(grid: Grid, context: Context) -> dict[str, Any]:
    """The ServerApp's body: rounds of fit (plain or SecAgg+) and federated evaluation; writes ``final.npz``, ``history.json``."""
    settings = ServerSettings.from_run_config(context.run_config)
    recorder = _RecordingStrategy(_build_strategy(settings))
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=settings.num_server_rounds), strategy=recorder)
    fit_workflow = None
    if settings.secagg:
        fit_workflow = SecAggPlusWorkflow(
            num_shares=settings.secagg_num_shares,
            reconstruction_threshold=settings.secagg_reconstruction_threshold,
            clipping_range=settings.secagg_clipping_range,
            max_weight=settings.secagg_max_weight,
            quantization_range=SECAGG_QUANTIZATION_RANGE,
            timeout=settings.secagg_timeout_s or None,
        )
    started = time.perf_counter()
    DefaultWorkflow(fit_workflow=fit_workflow)(grid, legacy)
    history = _history(settings, recorder, time.perf_counter() - started)

    out_dir = Path(settings.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / "final.npz", *[np.asarray(a) for a in recorder.parameters])
    (out_dir / "history.json").write_text(json.dumps(history, indent=2, default=float), encoding="utf-8")
    return history


server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    run_server(grid, context)

