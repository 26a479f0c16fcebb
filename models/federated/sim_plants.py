"""Plants of the simulator as federation clients: each with its own fault mix and its own stored runs.

A :class:`SimPlant` is a site of the demo plant's machine types whose machines fail in its own ways
(one plant sees bearing faults only, another imbalance and misalignment): its units are simulated
with :class:`~models.data.simulator.SimulatorDataModule` restricted to its ``fault_kinds``, and its
normaliser and validation units are its own. A plant may add the runs of its own machines up to a
confirmed fault (the store's labels, as ``genedge rul train-sim --from-store`` uses them); the store
belongs to the application layer, so a plant reads them from an ``.npz`` file that
:func:`save_event_runs` wrote (``runs-file`` in the node config), never from the store itself.

:class:`SimPlantLearner` is the :class:`~models.federated.flower_app.Learner` of such a plant: the
simulator recipe's network (:func:`models.sim_pipeline.default_sim_config`) as a
:class:`~models.federated.learner.ProximalTransformer`, built from the run's ``seed`` so every plant
starts from the same weights, trained by Lightning like
:class:`~models.federated.learner.PlantLearner`. Its RMSE is in simulated hours.

The ClientApp builds it through the node config (``learner`` = ``models.federated.sim_plants:sim_plant_learner``,
``registrar`` = ``models.federated.sim_plants:register_sim_plant_version``). The data's shape (window,
frame step, RUL cap, snapshot size) is node config too, since the run configuration only carries the
keys the Flower App declares; it must be the same on every plant of a federation (the network's
input). Of the run configuration, sim plants read ``seed`` and ``local-epochs`` only: its network
keys describe the C-MAPSS network.
"""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import ModelCard
from core.inference.registry import ModelVersion
from core.inference.runtime import FeatureRULPredictor
from models._recipe import export_int8_dynamic, export_measure_register, model_card
from models.data.arrays import EventRun
from models.data.simulator import DEFAULT_FEATURES, FAULT_KINDS, SimulatorDataModule, check_fault_kinds
from models.federated.learner import (
    FederatedConfig,
    NetExchange,
    ProximalTransformer,
    local_round,
    predict_windows,
    round_seed,
)
from models.metrics import rmse
from models.nets import RULModule, TransformerRULNet
from models.sim_pipeline import COVERAGE, MODEL_NAME, default_sim_config, evaluate_sim, sim_dataset_card

__all__ = [
    "SimPlant",
    "SimPlantLearner",
    "load_event_runs",
    "register_sim_plant_version",
    "save_event_runs",
    "sim_net_kwargs",
    "sim_plant_learner",
]

VARIANT = "int8-dynamic"
_RUNS_FORMAT = "genedge.event_runs/1"


def sim_net_kwargs() -> dict[str, Any]:
    """The network's keyword arguments in the simulator recipe's model config (not the estimator's: epochs, batch, ...)."""
    accepted = {
        name
        for cls in (TransformerRULNet, RULModule)
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    return {k: v for k, v in default_sim_config()["model"].items() if k in accepted}


def _floats(value: Any, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in str(value).split(","))
    except ValueError as err:
        raise ModelError(f"{what} must be two comma-separated numbers, got {value!r}") from err
    return lo, hi


@dataclass(frozen=True)
class SimPlant:
    """A plant of simulated machines (one federated client) and how its data is drawn.

    Attributes:
        name: the plant's name (unique in a federation).
        fault_kinds: the ways its machines fail (of :data:`~models.data.simulator.FAULT_KINDS`).
        n_units: simulated units (training + validation).
        seed: seed of its units, split and truncations.
        healthy_fraction: share of units with no fault.
        runs_file: ``.npz`` of the plant's own runs to an event (:func:`save_event_runs`); ``""``: none.
        window: frames per model input (the same on every plant).
        step_hours: simulated hours between frames (the same on every plant).
        rul_cap: RUL cap in hours (the same on every plant).
        snapshot_samples: samples per vibration snapshot (the same on every plant).
        span_hours: measured span of each unit.
        life_hours: range of lives of faulty units.
        n_val_cuts: truncations per validation unit.
        batch_size: local training batch size.
        num_threads: torch threads of local training (0: torch's default).
    """

    name: str
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    n_units: int = 40
    seed: int = 0
    healthy_fraction: float = 0.15
    runs_file: str = ""
    window: int = int(default_sim_config()["data"]["window"])
    step_hours: float = float(default_sim_config()["data"]["step_hours"])
    rul_cap: float = float(default_sim_config()["data"]["rul_cap"])
    snapshot_samples: int = 6400
    span_hours: float = 400.0
    life_hours: tuple[float, float] = (150.0, 1000.0)
    n_val_cuts: int = int(default_sim_config()["data"]["n_val_cuts"])
    batch_size: int = int(default_sim_config()["model"]["batch_size"])
    num_threads: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "fault_kinds", check_fault_kinds(tuple(self.fault_kinds)))
        if not self.name:
            raise ModelError("a sim plant needs a name")
        if self.num_threads < 0:
            raise ModelError(f"num_threads must be >= 0, got {self.num_threads}")

    def node_config(self) -> dict[str, str | int | float]:
        """The Flower node configuration of this plant's client (inverse of :meth:`from_node_config`)."""
        cfg: dict[str, str | int | float] = {
            "plant": self.name,
            "fault-kinds": ",".join(self.fault_kinds),
            "sim-units": self.n_units,
            "seed": self.seed,
            "healthy-fraction": self.healthy_fraction,
            "sim-window": self.window,
            "sim-step-hours": self.step_hours,
            "sim-rul-cap": self.rul_cap,
            "sim-snapshot-samples": self.snapshot_samples,
            "sim-span-hours": self.span_hours,
            "sim-life-hours": f"{self.life_hours[0]:g},{self.life_hours[1]:g}",
            "sim-val-cuts": self.n_val_cuts,
            "sim-batch-size": self.batch_size,
            "num-threads": self.num_threads,
        }
        if self.runs_file:
            cfg["runs-file"] = self.runs_file
        return cfg

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> SimPlant:
        """Read a plant back from its node configuration (``plant`` and ``fault-kinds`` required, the rest defaulted)."""
        for key in ("plant", "fault-kinds"):
            if key not in node_config:
                raise ModelError(f"a sim plant's node config needs 'plant' and 'fault-kinds'; {key!r} is missing")
        d = cls(name="defaults")
        nc = node_config
        try:
            return cls(
                name=str(nc["plant"]),
                fault_kinds=tuple(k.strip() for k in str(nc["fault-kinds"]).split(",") if k.strip()),
                n_units=int(nc.get("sim-units", d.n_units)),
                seed=int(nc.get("seed", d.seed)),
                healthy_fraction=float(nc.get("healthy-fraction", d.healthy_fraction)),
                runs_file=str(nc.get("runs-file", "")),
                window=int(nc.get("sim-window", d.window)),
                step_hours=float(nc.get("sim-step-hours", d.step_hours)),
                rul_cap=float(nc.get("sim-rul-cap", d.rul_cap)),
                snapshot_samples=int(nc.get("sim-snapshot-samples", d.snapshot_samples)),
                span_hours=float(nc.get("sim-span-hours", d.span_hours)),
                life_hours=_floats(nc.get("sim-life-hours", "150,1000"), "sim-life-hours"),
                n_val_cuts=int(nc.get("sim-val-cuts", d.n_val_cuts)),
                batch_size=int(nc.get("sim-batch-size", d.batch_size)),
                num_threads=int(nc.get("num-threads", d.num_threads)),
            )
        except (TypeError, ValueError) as err:
            raise ModelError(f"sim plant {nc['plant']!r}: a node config value has the wrong type: {err}") from err

    def data_module(self, extra_runs: tuple[EventRun, ...] = ()) -> SimulatorDataModule:
        """The plant's data module (not set up): its units of its fault kinds, plus its own runs."""
        return SimulatorDataModule(
            self.n_units,
            window=self.window,
            step_hours=self.step_hours,
            rul_cap=self.rul_cap,
            n_val_cuts=self.n_val_cuts,
            healthy_fraction=self.healthy_fraction,
            life_hours=self.life_hours,
            span_hours=self.span_hours,
            snapshot_samples=self.snapshot_samples,
            batch_size=self.batch_size,
            seed=self.seed,
            extra_runs=extra_runs,
            fault_kinds=self.fault_kinds,
        )


# --------------------------------------------------------------------------------------- stored runs


def save_event_runs(
    path: str | Path, runs: Sequence[EventRun], features: tuple[tuple[str, str, str], ...] = DEFAULT_FEATURES
) -> Path:
    """Write a plant's runs (e.g. ``genedge.retrain.store_runs``' result) for its ClientApp to read.

    Args:
        path: the ``.npz`` file to write.
        runs: the runs, their rows in ``features``' order.
        features: the feature order of the rows (checked again when the file is read).

    Returns:
        The written path.
    """
    meta = {
        "format": _RUNS_FORMAT,
        "features": [list(f) for f in features],
        "runs": [{"name": r.name, "event_hours": float(r.event_hours), "censored": bool(r.censored)} for r in runs],
    }
    arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
    for i, r in enumerate(runs):
        if r.raw.shape != (r.t_hours.size, len(features)):
            raise ModelError(f"run {r.name!r}: rows of shape {r.raw.shape}, expected ({r.t_hours.size}, {len(features)})")
        arrays[f"t_{i}"] = np.asarray(r.t_hours, dtype=np.float64)
        arrays[f"raw_{i}"] = np.asarray(r.raw, dtype=np.float64)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        np.savez(fh, allow_pickle=False, **arrays)
    return out


def load_event_runs(path: str | Path, features: tuple[tuple[str, str, str], ...] = DEFAULT_FEATURES) -> tuple[EventRun, ...]:
    """Read runs written by :func:`save_event_runs`.

    Raises:
        ModelError: the file is missing, not such a file, or its rows are of other features than ``features``.
    """
    src = Path(path)
    if not src.is_file():
        raise ModelError(f"a plant's runs file is missing: {src}")
    with np.load(src, allow_pickle=False) as data:
        try:
            meta = json.loads(str(data["meta"]))
        except (KeyError, ValueError) as err:
            raise ModelError(f"{src} is not a file of event runs (no readable 'meta')") from err
        if meta.get("format") != _RUNS_FORMAT:
            raise ModelError(f"{src}: format {meta.get('format')!r}, expected {_RUNS_FORMAT!r}")
        if [tuple(f) for f in meta["features"]] != list(features):
            raise ModelError(f"{src}: its rows hold features {meta['features']}, the model reads {[list(f) for f in features]}")
        return tuple(
            EventRun(m["name"], data[f"t_{i}"], data[f"raw_{i}"], float(m["event_hours"]), censored=bool(m["censored"]))
            for i, m in enumerate(meta["runs"])
        )


# --------------------------------------------------------------------------------------- learner


@dataclass
class SimPlantLearner(NetExchange):
    """One sim plant's local training and evaluation (RUL in hours), on its own units and runs.

    Attributes:
        plant: the plant.
        data: its data module (set up).
        net_seed: seed of the initial weights (the federation's: the same on every plant).
        local_epochs: epochs of a round when the fit config names none.
        net: the network (its weights are whatever was set or trained last).
        name: the plant's name.
    """

    plant: SimPlant
    data: SimulatorDataModule
    net_seed: int = 0
    local_epochs: int = 1
    net: ProximalTransformer = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.plant.name
        if self.plant.num_threads:
            torch.set_num_threads(self.plant.num_threads)
        self.data.setup("fit")
        # the same seed on every plant: identical initial weights wherever the network is built
        torch.manual_seed(self.net_seed)
        self.net = ProximalTransformer(self.data.n_channels, self.data.window, rul_cap=self.data.rul_cap, **sim_net_kwargs())

    @classmethod
    def from_plant(cls, plant: SimPlant, *, net_seed: int = 0, local_epochs: int = 1) -> SimPlantLearner:
        """The learner of ``plant``, with its stored runs when it names a runs file."""
        runs = load_event_runs(plant.runs_file) if plant.runs_file else ()
        return cls(plant, plant.data_module(runs), net_seed=net_seed, local_epochs=local_epochs)

    def fit(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train from ``parameters`` on the plant's windows.

        Args:
            parameters: the round's global weights.
            config: ``local_epochs`` (default: the learner's), ``proximal_mu`` (default 0),
                ``server_round`` (seeds the shuffling, so a round is repeatable).

        Returns:
            The trained weights, the plant's training window count and ``{"train_loss": ...}``.

        Raises:
            ModelError: training failed.
        """
        self.set_parameters(parameters)
        epochs = int(config.get("local_epochs", self.local_epochs))
        loss = local_round(self.net, self.data, epochs=epochs, proximal_mu=float(config.get("proximal_mu", 0.0)),
                           seed=round_seed(self.plant.seed, config), what=f"sim plant {self.name}")
        return self.get_parameters(), self.n_train, {"train_loss": loss}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """RUL (hours, clipped to ``[0, rul_cap]``) of windows ``(n, channels, window)`` with the current weights."""
        return cast(np.ndarray, np.clip(predict_windows(self.net, X), 0.0, self.data.rul_cap))

    def evaluate(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict[str, float]]:
        """RMSE (hours) of ``parameters`` on the plant's validation cuts: ``(rmse, n_cuts, {"rmse": rmse})``."""
        self.set_parameters(parameters)
        value = rmse(self.data.y_val, self.predict(self.data.X_val))
        return value, int(self.data.y_val.shape[0]), {"rmse": value}


def sim_plant_learner(node_config: Mapping[str, Any], run_config: Mapping[str, Any]) -> SimPlantLearner:
    """The ClientApp's learner factory for a sim plant (``learner`` in its node config).

    The plant comes from the node config (:meth:`SimPlant.from_node_config`); of the run config,
    ``seed`` (the initial weights) and ``local-epochs``; a run with ``dp-epsilon`` > 0 is refused.
    """
    config = FederatedConfig.from_run_config({k: run_config[k] for k in ("seed", "local-epochs") if k in run_config})
    plant = SimPlant.from_node_config(node_config)
    if float(run_config.get("dp-epsilon", 0.0)) > 0:
        # training without the asked-for DP would register a model whose card promises none it has
        raise ModelError(f"sim plant {plant.name!r}: simulator plants do not train under DP; run them with dp-epsilon 0")
    return SimPlantLearner.from_plant(plant, net_seed=config.seed, local_epochs=config.local_epochs)


# --------------------------------------------------------------------------------------- registration


def sim_federated_card(learner: SimPlantLearner, federation: Mapping[str, Any]) -> tuple[ModelCard, SplitConformal]:
    """The card of the learner's current weights as its plant registers them, and the interval calibrator.

    The interval is calibrated on the plant's own validation cuts (the simulator recipe's
    prediction-scaled split conformal); the metrics are the recipe's (:func:`~models.sim_pipeline.evaluate_sim`).
    """
    dm = learner.data
    sim_config = default_sim_config()
    conformal = SplitConformal(**sim_config["calibration"]).fit(dm.y_val, learner.predict(dm.X_val))
    plant = learner.plant
    dataset = {"plant": plant.name, "plant_fault_kinds": list(plant.fault_kinds), **sim_dataset_card(dm)}
    data_config = {
        "n_units": plant.n_units, "window": plant.window, "step_hours": plant.step_hours, "rul_cap": plant.rul_cap,
        "n_val_cuts": plant.n_val_cuts, "healthy_fraction": plant.healthy_fraction, "span_hours": plant.span_hours,
        "life_hours": list(plant.life_hours), "snapshot_samples": plant.snapshot_samples, "fault_kinds": list(plant.fault_kinds),
    }
    card = model_card(
        model="transformer",
        variant=VARIANT,
        dataset=dataset,
        seed=plant.seed,
        config={
            "data": data_config,
            "model": {**sim_net_kwargs(), "net_seed": learner.net_seed},
            "calibration": sim_config["calibration"],
        },
        preprocessing=dm.preprocessing_card(),
        calibration=conformal.to_dict(),
        metrics=evaluate_sim(learner, dm, conformal, seed=plant.seed),
    )
    return ModelCard.from_dict({**card.to_dict(), "federation": {**dict(federation), "registered_by": plant.name}}), conformal


def register_sim_federated(
    registry_dir: str | Path,
    learner: SimPlantLearner,
    parameters: Sequence[np.ndarray],
    federation: Mapping[str, Any],
    *,
    name: str = MODEL_NAME,
    promote: bool = False,
) -> ModelVersion:
    """Register the federated ``parameters`` as the next version of the plant's simulator model.

    Args:
        registry_dir: the plant's model registry.
        learner: the plant's learner (its data, normaliser and validation cuts).
        parameters: the federation's final weights.
        federation: the card's ``federation`` section (rounds, plants, strategy, secure aggregation, privacy).
        name: registry name (default the demo plant's model, ``sim-bearing``).
        promote: promote it at once (default: no, the plant's engineers decide).

    Returns:
        The registered version.
    """
    learner.set_parameters(parameters)
    dm = learner.data
    card, conformal = sim_federated_card(learner, federation)

    def measure(paths: dict[str, Path], card: ModelCard) -> dict[str, Any]:
        pred = FeatureRULPredictor(paths[card.variant], card).predict_windows(dm.X_val)
        pred32 = FeatureRULPredictor(paths["fp32"], card).predict_windows(dm.X_val)
        lo, hi = conformal.interval(pred, COVERAGE)
        return {
            "val_rmse_onnx": rmse(dm.y_val, pred),
            "val_rmse_onnx_fp32": rmse(dm.y_val, pred32),
            "val_coverage_onnx_in_sample": float(np.mean((dm.y_val >= lo) & (dm.y_val <= hi))),
        }

    return export_measure_register(
        registry_dir,
        name,
        card,
        export=lambda out: export_int8_dynamic(learner.net, dm.n_channels, dm.window, out),
        measure=measure,
        promote=promote,
    )


def register_sim_plant_version(
    learner: SimPlantLearner, registry_dir: str, parameters: Sequence[np.ndarray], federation: Mapping[str, Any]
) -> str:
    """The ClientApp's registrar for sim plants: register the final weights, unpromoted, as ``sim-bearing``; the version id."""
    return register_sim_federated(registry_dir, learner, parameters, federation).version
