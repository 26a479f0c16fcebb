"""Unit-level differential privacy of a plant's local training (Opacus DP-SGD).

The privacy unit is one engine: its whole run-to-failure history. Windows of one unit overlap
almost entirely, so a guarantee per window would say little about the engine (and its operator);
a guarantee per engine bounds what the shared weights reveal about any one engine's run.

DP-SGD over units: each step draws a Poisson sample of the plant's training units (rate
``units_per_batch / n_units``, Opacus' :class:`~opacus.data_loader.DPDataLoader`); each sampled unit
contributes ``windows_per_unit`` random windows of its own, and its gradient is that of its mean loss
over them. Opacus computes these per-unit gradients (:class:`UnitWindows` makes the unit the batch
dimension), clips each to ``max_grad_norm``, sums them and adds Gaussian noise of standard deviation
``noise_multiplier * max_grad_norm`` (:class:`~opacus.optimizers.DPOptimizer`).

Accounting (:class:`PrivacyLedger`): the noise multiplier is set once, for the whole federated
training of the plant (``rounds x local_epochs x steps per epoch``), so that the last planned round
ends at the target epsilon; the ledger records the steps taken and refuses a round past the plan.
The accountant is Opacus' RDP accountant: the standard one of DP-SGD, an upper bound on epsilon
(never an underestimate), fast and deterministic to invert. PRV would give a tighter bound (a few
percent less noise for the same epsilon) at the price of a slower, numerically approximate search.

What the guarantee covers: the weights a plant sends, given its input normaliser. The normaliser's
per-condition statistics are fitted on the plant's units without noise; they never leave the plant,
but the weights are trained on inputs they shaped.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from opacus import GradSampleModule
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.data_loader import DPDataLoader
from opacus.optimizers import DPOptimizer
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from core.datasets.cmapss import load_cmapss
from core.errors import ModelError
from models.nets import RULModule
from models.training import fit_module

__all__ = ["PRIVACY_UNIT", "PrivacyLedger", "UnitLevelDP", "UnitWindows", "unit_window_offsets"]

#: what one record of the DP guarantee is
PRIVACY_UNIT = "engine run"
#: accountants the ledger can use (Opacus' names)
ACCOUNTANTS = ("rdp", "prv")
#: RDP orders: Opacus' defaults and higher ones, which the tightest bound needs when a budget has few steps
_RDP_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + list(range(64, 257, 8))


@dataclass(frozen=True)
class PrivacyLedger:
    """A plant's privacy budget, its DP-SGD settings and what has been spent of it.

    Attributes:
        epsilon_target: the epsilon the whole planned training may spend.
        delta: the delta of the guarantee.
        noise_multiplier: Gaussian noise standard deviation over ``max_grad_norm``.
        max_grad_norm: the per-unit gradient clipping norm.
        sample_rate: probability that a unit is in a step's batch.
        steps_per_epoch: DP-SGD steps per local epoch.
        planned_steps: steps of the whole planned training (rounds x local epochs x steps per epoch).
        units: training units of the plant (records of the guarantee).
        units_per_batch: expected units per step.
        windows_per_unit: windows each sampled unit contributes to its gradient.
        rounds: planned federated rounds.
        steps: steps taken so far.
        epsilon_spent: epsilon spent by ``steps``.
        accountant: Opacus accountant (``"rdp"`` or ``"prv"``).
        privacy_unit: what one record of the guarantee is.
    """

    epsilon_target: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps_per_epoch: int
    planned_steps: int
    units: int
    units_per_batch: int
    windows_per_unit: int
    rounds: int
    steps: int = 0
    epsilon_spent: float = 0.0
    accountant: str = "rdp"
    privacy_unit: str = PRIVACY_UNIT

    @classmethod
    def plan(
        cls,
        *,
        n_units: int,
        epsilon: float,
        delta: float,
        rounds: int,
        local_epochs: int,
        max_grad_norm: float,
        units_per_batch: int,
        windows_per_unit: int,
        accountant: str = "rdp",
    ) -> PrivacyLedger:
        """The noise that spends exactly ``(epsilon, delta)`` over ``rounds`` rounds of ``local_epochs`` epochs.

        Raises:
            ModelError: a setting is out of range, or the budget cannot be met at any noise.
        """
        if epsilon <= 0 or not 0 < delta < 1:
            raise ModelError(f"a DP budget needs epsilon > 0 and 0 < delta < 1, got ({epsilon}, {delta})")
        if n_units < 2 or rounds < 1 or local_epochs < 1 or units_per_batch < 1 or windows_per_unit < 1:
            raise ModelError(
                f"unit-level DP needs >= 2 units and rounds, local_epochs, units_per_batch, windows_per_unit >= 1; got "
                f"{n_units} units, rounds={rounds}, local_epochs={local_epochs}, units_per_batch={units_per_batch}, "
                f"windows_per_unit={windows_per_unit}"
            )
        if max_grad_norm <= 0:
            raise ModelError(f"max_grad_norm must be positive, got {max_grad_norm}")
        if accountant not in ACCOUNTANTS:
            raise ModelError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
        sample_rate = min(1.0, units_per_batch / n_units)
        # Opacus' Poisson sampler takes int(1 / sample_rate) steps per epoch: the accounting counts those
        steps_per_epoch = int(1.0 / sample_rate)
        planned = rounds * local_epochs * steps_per_epoch
        try:
            sigma = get_noise_multiplier(
                target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate, steps=planned, accountant=accountant,
                **_accountant_options(accountant),
            )
        except ValueError as err:
            raise ModelError(f"no noise reaches epsilon {epsilon} at delta {delta} over {planned} steps: {err}") from err
        return cls(
            epsilon_target=float(epsilon), delta=float(delta), noise_multiplier=float(sigma),
            max_grad_norm=float(max_grad_norm), sample_rate=float(sample_rate), steps_per_epoch=steps_per_epoch,
            planned_steps=planned, units=int(n_units), units_per_batch=int(units_per_batch),
            windows_per_unit=int(windows_per_unit), rounds=int(rounds), accountant=accountant,
        )

    def epsilon_after(self, steps: int) -> float:
        """Epsilon spent after ``steps`` DP-SGD steps in all (at this ledger's noise and sample rate)."""
        if steps <= 0:
            return 0.0
        acc = create_accountant(mechanism=self.accountant)
        acc.history = [(self.noise_multiplier, self.sample_rate, int(steps))]
        return float(acc.get_epsilon(delta=self.delta, **_accountant_options(self.accountant)))

    @property
    def steps_left(self) -> int:
        """Steps the plan still allows."""
        return self.planned_steps - self.steps

    def check(self, steps: int) -> None:
        """Refuse ``steps`` more steps if they go past the plan.

        Raises:
            ModelError: the plan has fewer steps left (the budget would be exceeded).
        """
        if steps > self.steps_left:
            raise ModelError(
                f"a DP round of {steps} steps would exceed the privacy budget (epsilon {self.epsilon_target:g}, "
                f"delta {self.delta:g} per {self.privacy_unit}): {self.steps} of the {self.planned_steps} planned steps "
                f"({self.rounds} rounds) are spent (epsilon {self.epsilon_spent:.3f}), {self.steps_left} are left; "
                f"it would reach epsilon {self.epsilon_after(self.steps + steps):.3f}. Plan more rounds "
                "(num-server-rounds) before training starts."
            )

    def charge(self, steps: int) -> PrivacyLedger:
        """The ledger after ``steps`` more steps (checked against the plan)."""
        self.check(steps)
        total = self.steps + int(steps)
        return dataclasses.replace(self, steps=total, epsilon_spent=self.epsilon_after(total))

    def to_card(self) -> dict[str, Any]:
        """The model card's ``privacy`` section (JSON-ready)."""
        card = dataclasses.asdict(self)
        card["mechanism"] = "DP-SGD (Opacus), Poisson sampling of units, per-unit clipping, Gaussian noise"
        return card

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> PrivacyLedger:
        """Read a ledger back from :meth:`to_card` (a Flower client keeps it between rounds this way)."""
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in card.items() if k in names})
        except TypeError as err:
            raise ModelError(f"not a privacy ledger card: {err}") from err


def _accountant_options(accountant: str) -> dict[str, Any]:
    """Options of the accountant's ``get_epsilon``."""
    return {"alphas": _RDP_ALPHAS} if accountant == "rdp" else {}


class UnitWindows(nn.Module):
    """The network over ``(units, windows, channels, time)``: scaled RUL ``(units, windows)``.

    Opacus computes per-sample gradients of the outermost module that holds a parameter of its own
    and has no grad sampler, as one function with ``torch.func`` (vmap over the first dimension of
    its input). The RUL network qualifies (its positional embeddings are raw parameters), so Opacus
    would take it whole, but with the flattened windows as its batch: per-window gradients. The empty
    ``unit_marker`` makes this wrapper that module instead, so the first dimension Opacus maps over,
    and clips along, is the unit.

    Args:
        net: the RUL network (its ``encode`` maps ``(batch, channels, time)`` to ``(batch,)``).
    """

    def __init__(self, net: RULModule) -> None:
        super().__init__()
        self.net = net
        self.unit_marker = nn.Parameter(torch.zeros(0))

    def forward(self, x: Tensor) -> Tensor:
        """Scaled RUL of every window of every unit."""
        units, windows = x.shape[0], x.shape[1]
        return self.net.encode(x.flatten(0, 1)).reshape(units, windows)


def unit_window_offsets(data_dir: str | Path, subset: str, units: Sequence[int], train_stride: int, n_windows: int) -> np.ndarray:
    """Where each training unit's windows start in the training panel (and where the last ends).

    The panel holds the units' windows in ascending unit order, ``ceil(cycles / train_stride)`` each.

    Returns:
        ``offsets`` of length ``len(units) + 1``: unit ``i`` owns rows ``offsets[i]:offsets[i + 1]``.

    Raises:
        ModelError: the counts do not add up to ``n_windows`` (the panel was cut another way).
    """
    df = load_cmapss(data_dir, subset, "train")
    cycles = df[df["unit"].isin(list(units))].groupby("unit", sort=True).size().to_numpy()
    counts = -(-cycles // int(train_stride))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if cycles.size != len(units) or offsets[-1] != n_windows:
        raise ModelError(
            f"{len(units)} training units of {subset} at stride {train_stride} give {offsets[-1]} windows, "
            f"the training panel has {n_windows}: unit-level DP cannot tell which window is whose"
        )
    return offsets


class _UnitDPModule(pl.LightningModule):
    """One DP-SGD step per Poisson batch of units, under Lightning's loop.

    Manual optimisation: an empty Poisson batch must still take a noisy step (skipping it would
    reveal that the batch was empty), and Lightning's automatic optimisation skips the step of a
    batch without a loss.
    """

    def __init__(self, runner: UnitLevelDP, optimizer: DPOptimizer, seed: int) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.grad_module = runner.grad_module
        self.runner = runner
        self.dp_optimizer = optimizer
        self.seed = int(seed)

    def configure_optimizers(self) -> Any:  # Lightning's optimiser type
        """The DP optimiser built for the round."""
        return self.dp_optimizer

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        """Per-unit gradients of the sampled units' mean window loss, then a clipped, noisy step."""
        opt = self.optimizers()
        assert not isinstance(opt, list)  # the one DP optimiser
        opt.zero_grad()
        units = batch[0].reshape(-1)
        if units.numel():
            rng = np.random.default_rng([self.seed, self.global_step])
            x, y = self.runner.draw(units.numpy(), rng)
            loss = ((self.grad_module(x) - y) ** 2).mean()
            self.manual_backward(loss)
            self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=int(units.numel()))
        else:
            for p in self.dp_optimizer.params:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
        opt.step()
        # the marker is no weight of the network and in no optimiser: drop its (empty) per-unit gradients
        self.runner.marker.grad_sample = None  # type: ignore[attr-defined]  # Opacus' attribute


class UnitLevelDP:
    """Unit-level DP-SGD rounds of one plant's network.

    Args:
        net: the plant's network (trained in place).
        X: the plant's training windows ``(n, channels, time)``.
        y: their RUL (cycles, capped).
        offsets: :func:`unit_window_offsets` of the training units.
    """

    def __init__(self, net: RULModule, X: np.ndarray, y: np.ndarray, offsets: np.ndarray) -> None:  # noqa: N803
        if any(isinstance(m, nn.Dropout) and m.p > 0 for m in net.modules()):
            # Opacus' vmap forbids random operations in the per-sample pass
            raise ModelError("unit-level DP-SGD needs dropout 0 (Opacus computes per-unit gradients without randomness)")
        self.net = net
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        self.y = torch.from_numpy(np.asarray(y, dtype=np.float32)) / float(net.rul_cap)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.windows_per_unit = 1
        wrapper = UnitWindows(net)
        self.marker = wrapper.unit_marker
        self.grad_module = GradSampleModule(wrapper, batch_first=True, loss_reduction="mean", force_functorch=True)

    @property
    def n_units(self) -> int:
        """Training units (records of the guarantee)."""
        return int(self.offsets.size - 1)

    def draw(self, units: np.ndarray, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        """``windows_per_unit`` random windows of each unit (without replacement where it has enough)."""
        k = self.windows_per_unit
        rows = []
        for u in units:
            lo, hi = int(self.offsets[u]), int(self.offsets[u + 1])
            rows.append(lo + rng.choice(hi - lo, size=k, replace=hi - lo < k))
        idx = torch.from_numpy(np.stack(rows))
        return self.X[idx], self.y[idx]

    def fit_round(
        self,
        ledger: PrivacyLedger,
        *,
        epochs: int,
        seed: int,
        learning_rate: float,
        weight_decay: float,
        proximal_mu: float = 0.0,
        what: str = "the network",
    ) -> tuple[PrivacyLedger, float]:
        """Train ``epochs`` DP-SGD epochs; return the charged ledger and the mean training loss.

        FedProx's proximal term does not depend on any unit's data: its gradient is added to the
        noisy gradient (post-processing, no privacy cost), not clipped with the units'.

        Raises:
            ModelError: the round would exceed the plan (nothing is trained), or training failed.
        """
        if ledger.units != self.n_units:
            raise ModelError(f"the ledger is for {ledger.units} units, the plant trains on {self.n_units}")
        ledger.check(epochs * ledger.steps_per_epoch)
        self.windows_per_unit = ledger.windows_per_unit
        gen = torch.Generator().manual_seed(seed)
        loader = DPDataLoader(TensorDataset(torch.arange(self.n_units)), sample_rate=ledger.sample_rate, generator=gen)
        base = torch.optim.AdamW(self.net.parameters(), lr=learning_rate, weight_decay=weight_decay)
        optimizer = DPOptimizer(
            base, noise_multiplier=ledger.noise_multiplier, max_grad_norm=ledger.max_grad_norm,
            expected_batch_size=max(1, round(ledger.sample_rate * self.n_units)), loss_reduction="mean", generator=gen,
        )
        accountant = create_accountant(mechanism=ledger.accountant)
        account = accountant.get_optimizer_hook_fn(sample_rate=ledger.sample_rate)
        anchor = [p.detach().clone() for p in self.net.parameters()]

        def after_noise(opt: DPOptimizer) -> None:
            account(opt)
            if proximal_mu > 0:
                for p, a in zip(opt.params, anchor, strict=True):
                    assert p.grad is not None
                    p.grad.add_(p.detach() - a, alpha=proximal_mu)

        optimizer.attach_step_hook(after_noise)
        module = _UnitDPModule(self, optimizer, seed)
        with warnings.catch_warnings():
            # Opacus' hook on the wrapper's output fires by design: the windows it reads need no gradient
            warnings.filterwarnings("ignore", ".*Full backward hook is firing.*")
            trainer = fit_module(module, _Loader(loader), max_epochs=epochs, what=what)
        taken = sum(int(n) for _, _, n in accountant.history)
        loss = trainer.callback_metrics.get("train_loss")
        return ledger.charge(taken), float(loss) if loss is not None else math.nan


class _Loader(pl.LightningDataModule):
    """A ready training loader as a data module."""

    def __init__(self, loader: DPDataLoader) -> None:
        super().__init__()
        self.loader = loader

    def train_dataloader(self) -> Any:  # torch's DataLoader
        return self.loader
