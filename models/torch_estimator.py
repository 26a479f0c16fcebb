"""Shared machinery of the deep estimators: a ``pl.Trainer`` fit (:func:`models.training.fit_module`) wrapped as ``_fit``."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import copy
import hashlib
import json
import multiprocessing
import os
from abc import abstractmethod
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping

from core.errors import ModelError
from models.base import NEUTRAL_PARAMS, BaseRULEstimator
from models.data.arrays import ArrayDataModule
from models.nets import RULModule
from models.training import fit_module

__all__ = ["RUNTIME_PARAMS", "BestWeights", "MeanEnsemble", "TorchRULEstimator", "data_fingerprint"]

#: parameters that change how a fit runs, not what it learns: left out of member checkpoint keys
#: (``n_members`` and ``random_state`` are left out too: they only choose which seeds are trained)
RUNTIME_PARAMS = ("n_jobs", "num_threads", "progress_bar", "accelerator", "checkpoint_dir")


class BestWeights(Callback):
    """Keep the weights of the best validation epoch in memory and restore them at the end.

    ``EarlyStopping`` stops training but leaves the last weights; this restores the best
    without writing checkpoints to disk.
    """

    def __init__(self, monitor: str = "val_rmse") -> None:
        self.monitor = monitor
        self.best_score = float("inf")
        self.best_epoch = -1
        self._state: dict[str, torch.Tensor] | None = None
        self.history: list[float] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Snapshot the weights when the monitored metric improves."""
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is not None:
            self.history.append(round(float(score), 4))
        if score is not None and float(score) < self.best_score:
            self.best_score = float(score)
            self.best_epoch = trainer.current_epoch
            self._state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Restore the best snapshot."""
        if self._state is not None:
            pl_module.load_state_dict(self._state)


class MeanEnsemble(torch.nn.Module):
    """Members trained from different seeds, averaged: one module, so one ONNX graph.

    Args:
        members: trained :class:`~models.nets.RULModule` instances with the same input shape.
    """

    def __init__(self, members: list[RULModule]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the members' RUL predictions, shape ``(batch,)``."""
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


class TorchRULEstimator(BaseRULEstimator):
    """Base of estimators whose model is a :class:`~models.nets.RULModule`.

    Subclasses define ``__init__`` (storing the parameters below plus their architecture's) and
    :meth:`_build_net`.

    Common parameters (in subclasses' ``__init__``):
        max_epochs, batch_size, learning_rate, patience (early stopping on ``val_rmse``),
        rul_cap, random_state, num_threads (torch CPU threads during fit/predict),
        progress_bar (show Lightning's progress bar), accelerator, n_members (a seed
        ensemble: members ``random_state, random_state + 1, ...`` trained on the same data and
        averaged; 1 trains one network), n_jobs (members trained at once, each in its own
        process with ``num_threads`` threads, -1: as many as the cores hold; no progress bar
        then; on a CPU the members come out bit for bit as when trained one after the other),
        checkpoint_dir (if set, each member is saved there as soon as it is trained, under a key
        of the training data, the learning parameters and its seed, and a later fit with the same
        data and parameters loads it instead of training it again: an interrupted ensemble fit
        resumes with the members it lacks, and members can be trained in separate runs, e.g.
        ``random_state=s, n_members=2`` then ``random_state=s + 2, n_members=3`` fill the cache
        of ``random_state=s, n_members=5``; the runtime settings in :data:`RUNTIME_PARAMS` are not
        part of the key).

    Attributes:
        net_: the trained module in eval mode (a :class:`MeanEnsemble` when ``n_members > 1``).
        best_epoch_: epoch with the lowest validation RMSE (of each member, a list, if several).
        n_epochs_: epochs run before early stopping (per member if several).
        val_history_: validation RMSE after each epoch (of the last member).
        member_val_rmse_: validation RMSE of each member alone.
    """

    _tags: ClassVar[dict[str, Any]] = {"requires_torch": True, "python_dependencies": ["torch"]}

    max_epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    rul_cap: float
    random_state: int | None
    num_threads: int
    progress_bar: bool
    accelerator: str
    n_members: int = 1
    n_jobs: int = 1
    checkpoint_dir: str | None = None

    @abstractmethod
    def _build_net(self, n_channels: int, window: int) -> RULModule:
        """Return a fresh, untrained module for windows of this shape."""

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
        base = 0 if self.random_state is None else int(self.random_state)
        n_members = int(getattr(self, "n_members", 1))
        if n_members < 1:
            raise ModelError(f"n_members must be >= 1, got {n_members}")
        seeds = [base + i for i in range(n_members)]
        n_jobs = int(getattr(self, "n_jobs", 1) or 1)
        if n_jobs < 0:  # scikit-learn's -1: as many processes as the cores hold at num_threads each
            n_jobs = max(1, (os.cpu_count() or 1) // max(1, int(self.num_threads)))
        self.checkpoint_keys_: dict[int, str] = {}
        self.members_loaded_: list[int] = []
        done: dict[int, tuple[RULModule, BestWeights, int]] = {}
        if getattr(self, "checkpoint_dir", None):
            data_key = data_fingerprint(X, y, X_val, y_val)
            self.checkpoint_keys_ = {seed: self._checkpoint_key(data_key, seed) for seed in seeds}
            for seed in seeds:
                loaded = self._load_member(seed, X.shape[1], X.shape[2])
                if loaded is not None:
                    done[seed] = loaded
            self.members_loaded_ = sorted(done)
        todo = [seed for seed in seeds if seed not in done]
        n_jobs = min(n_jobs, max(1, len(todo)))
        if n_jobs > 1:
            done.update(zip(todo, _fit_members_in_processes(self, X, y, X_val, y_val, todo, n_jobs), strict=True))
        else:
            done.update((seed, self._fit_one(X, y, X_val, y_val, seed)) for seed in todo)
        fitted = [done[seed] for seed in seeds]
        members, epochs, best_epochs, member_rmse = [], [], [], []
        for net, best, n_epochs in fitted:
            members.append(net)
            epochs.append(n_epochs)
            best_epochs.append(int(best.best_epoch))
            member_rmse.append(float(best.best_score))
            self.val_history_ = list(best.history)
        self.member_val_rmse_ = member_rmse
        if n_members == 1:
            self.net_: torch.nn.Module = members[0]
            self.best_epoch_: int | list[int] = best_epochs[0]
            self.n_epochs_: int | list[int] = epochs[0]
        else:
            self.net_ = MeanEnsemble(members).eval()
            self.best_epoch_ = best_epochs
            self.n_epochs_ = epochs

    def _fit_one(
        self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray, seed: int
    ) -> tuple[RULModule, BestWeights, int]:
        torch.set_num_threads(max(1, int(self.num_threads)))
        pl.seed_everything(seed, workers=True, verbose=False)
        net = self._build_net(X.shape[1], X.shape[2])
        best = BestWeights("val_rmse")
        trainer = fit_module(
            net,
            ArrayDataModule(X, y, X_val, y_val, batch_size=int(self.batch_size), seed=seed),
            max_epochs=int(self.max_epochs),
            callbacks=[EarlyStopping("val_rmse", patience=int(self.patience), mode="min"), best],
            accelerator=self.accelerator,
            progress_bar=bool(self.progress_bar),
            what=type(self).__name__,
        )
        # a fresh module holding the best weights: no trainer reference, so it pickles cleanly
        fresh = self._build_net(X.shape[1], X.shape[2])
        fresh.load_state_dict(net.state_dict())
        n_epochs = int(trainer.current_epoch)
        key = getattr(self, "checkpoint_keys_", {}).get(seed)
        if key is not None:
            self._save_member(key, seed, fresh, best, n_epochs)
        return fresh.eval(), best, n_epochs

    # ------------------------------------------------------------ member checkpoints
    def _checkpoint_key(self, data_key: str, seed: int) -> str:
        """Hex key of one member: estimator class, learning parameters, seed and training data."""
        params = {k: v for k, v in sorted(self.get_params().items()) if k not in RUNTIME_PARAMS}
        params.pop("n_members", None)
        params.pop("random_state", None)
        # options added after members had been checkpointed are left out at their neutral value, so
        # that those members keep their keys (and are reloaded rather than retrained)
        for name, neutral in NEUTRAL_PARAMS.items():
            if name in params and params[name] == neutral:
                del params[name]
        blob = json.dumps(
            {"estimator": type(self).__qualname__, "params": params, "seed": int(seed), "data": data_key},
            sort_keys=True,
            default=repr,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def _member_path(self, key: str) -> Path:
        return Path(str(self.checkpoint_dir)) / f"{type(self).__name__}-{key}.pt"

    def _save_member(self, key: str, seed: int, net: RULModule, best: BestWeights, n_epochs: int) -> None:
        """Write one trained member atomically (a crash mid-write leaves no half file)."""
        path = self._member_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        state = {
            "format": 1,
            "seed": int(seed),
            "state_dict": net.state_dict(),
            "best_epoch": int(best.best_epoch),
            "best_score": float(best.best_score),
            "history": list(best.history),
            "n_epochs": int(n_epochs),
            "torch": str(torch.__version__),
        }
        torch.save(state, tmp)
        os.replace(tmp, path)

    def _load_member(self, seed: int, n_channels: int, window: int) -> tuple[RULModule, BestWeights, int] | None:
        """The checkpointed member of ``seed`` (None if there is none).

        Raises:
            ModelError: the file exists but cannot be read or does not fit the network.
        """
        path = self._member_path(self.checkpoint_keys_[seed])
        if not path.is_file():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = self._build_net(n_channels, window)
            net.load_state_dict(state["state_dict"])
        except Exception as err:  # corrupt file, other torch, changed architecture under the same key
            reason = (str(err).strip().splitlines() or [""])[0][:200]
            raise ModelError(
                f"member checkpoint {path} cannot be loaded ({type(err).__name__}: {reason}); "
                "delete it to train that member again"
            ) from err
        best = BestWeights("val_rmse")
        best.best_epoch = int(state["best_epoch"])
        best.best_score = float(state["best_score"])
        best.history = list(state["history"])
        return net.eval(), best, int(state["n_epochs"])

    def _predict(self, X: np.ndarray) -> np.ndarray:
        torch.set_num_threads(max(1, int(self.num_threads)))
        out = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], 4096):
                batch = torch.from_numpy(X[start : start + 4096])
                out.append(self.net_(batch).numpy())
        return np.concatenate(out).astype(np.float64)

    @property
    def network(self) -> torch.nn.Module:
        """The trained module (for ONNX export)."""
        self.check_is_fitted()
        return self.net_


def data_fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for arr in arrays:
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)  # the array's own buffer: no copy of the (large) training set
    return h.hexdigest()


# --------------------------------------------------------------- members in worker processes
#: a worker process's training data, set once when it starts
_WORKER_DATA: dict[str, np.ndarray] = {}


def _init_worker(X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
    _WORKER_DATA.update(X=X, y=y, X_val=X_val, y_val=y_val)


def _fit_member(estimator: TorchRULEstimator, seed: int) -> tuple[RULModule, BestWeights, int]:
    d = _WORKER_DATA
    net, best, n_epochs = estimator._fit_one(d["X"], d["y"], d["X_val"], d["y_val"], seed)
    best._state = None  # the weights come back in net
    return net, best, n_epochs


def _fit_members_in_processes(
    est: TorchRULEstimator,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    seeds: list[int],
    n_jobs: int,
) -> list[tuple[RULModule, BestWeights, int]]:
    """Fit one member per seed in ``n_jobs`` spawned processes (each gets the data once); seed order kept."""
    worker = est.clone().set_params(progress_bar=False)  # bars of several processes would overwrite each other
    worker.checkpoint_keys_ = dict(getattr(est, "checkpoint_keys_", {}))  # each worker saves its members as they finish
    ctx = multiprocessing.get_context("spawn")  # fork after torch started its threads can hang
    try:
        with ProcessPoolExecutor(
            max_workers=n_jobs, mp_context=ctx, initializer=_init_worker, initargs=(X, y, X_val, y_val)
        ) as pool:
            return list(pool.map(_fit_member, [worker] * len(seeds), seeds))
    except ModelError:
        raise
    except Exception as err:  # a worker died (memory, signal) or could not start
        raise ModelError(
            f"training {type(est).__name__} members in {n_jobs} processes failed: {err!r} (out of memory? the "
            "workers re-import the main module, which a script has and stdin or a notebook has not: use n_jobs=1 there)"
        ) from err
