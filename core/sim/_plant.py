"""The demo plant: its assets, a default fault mix, and the plant-wide simulator clock."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from core.assets import AssetConfig, AssetKind, BearingGeometry, ChannelConfig, Quantity
from core.sim._asset import AssetSimulator, AssetState
from core.sim._faults import FaultKind, FaultSpec

__all__ = ["PlantSimulator", "default_faults", "default_plant"]


def _vib(name: str = "vib_de") -> ChannelConfig:
    return ChannelConfig(
        name=name, quantity=Quantity.ACCELERATION, unit="g", sample_rate_hz=25600.0, min_value=-100.0, max_value=100.0
    )


def _temp() -> ChannelConfig:
    return ChannelConfig(
        name="temp_de", quantity=Quantity.TEMPERATURE, unit="degC", sample_rate_hz=1.0, min_value=-40.0, max_value=200.0
    )


def _mic() -> ChannelConfig:
    return ChannelConfig(
        name="mic",
        quantity=Quantity.SOUND_PRESSURE,
        unit="Pa",
        sample_rate_hz=16000.0,
        min_value=-200.0,
        max_value=200.0,
    )


def _speed(rpm: float) -> ChannelConfig:
    return ChannelConfig(
        name="speed", quantity=Quantity.SPEED, unit="rpm", sample_rate_hz=1.0, min_value=0.0, max_value=1.5 * rpm
    )


def _load() -> ChannelConfig:
    return ChannelConfig(
        name="load", quantity=Quantity.LOAD, unit="%", sample_rate_hz=1.0, min_value=0.0, max_value=150.0
    )


def default_plant(site: str = "plant1") -> list[AssetConfig]:
    """Eight motor-driven machines on two lines of a 50 Hz plant.

    Pumps, motors and fans with different bearings (SKF 6203/6205/6310), speeds (2-, 4- and
    6-pole), ISO 10816 classes and criticality. Every asset has ``vib_de`` (acceleration,
    g, 25.6 kHz) and ``temp_de`` (degC, 1 Hz); pumps and motors add ``speed`` (rpm) and
    ``load`` (%) at 1 Hz; four assets carry a ``mic`` (Pa, 16 kHz). Each lists its spare parts (the
    bill of materials the prescriber's work orders take part numbers from): the drive-end bearing,
    its grease, and seals, coupling inserts, impellers, shims or balance weights as the machine has.

    Args:
        site: site id given to every asset.

    Returns:
        The assets, line 1 first.
    """
    b6203, b6205, b6310 = BearingGeometry.skf_6203(), BearingGeometry.skf_6205(), BearingGeometry.skf_6310()

    def asset(
        asset_id: str,
        name: str,
        kind: AssetKind,
        line: str,
        *,
        crit: int,
        cls: str,
        rpm: float,
        bearing: BearingGeometry,
        mic: bool,
        process: bool,
        spares: tuple[str, ...],
    ) -> AssetConfig:
        channels = [_vib(), _temp()]
        if mic:
            channels.append(_mic())
        if process:
            channels += [_speed(rpm), _load()]
        return AssetConfig(
            asset_id=asset_id,
            name=name,
            kind=kind,
            site=site,
            line=line,
            criticality=crit,
            machine_class=cls,
            shaft_speed_rpm=rpm,
            bearing=bearing,
            channels=tuple(channels),
            spare_parts=spares,
        )

    pump, motor, fan = AssetKind.PUMP, AssetKind.MOTOR, AssetKind.FAN
    # fmt: off
    return [
        asset("P-101", "Feed pump 101", pump, "line1", crit=3, cls="II", rpm=2965.0, bearing=b6310,
              mic=True, process=True, spares=("SKF 6310-2Z", "mechanical seal 45 mm", "SKF LGMT 2/1 grease 1 kg",
                                                "flexible coupling insert 110", "impeller 250 mm")),
        asset("M-101", "Feed pump 101 drive motor", motor, "line1", crit=3, cls="II", rpm=2965.0, bearing=b6310,
              mic=False, process=True, spares=("SKF 6310-2Z", "SKF 6308-2Z", "SKF LGHP 2/1 grease 1 kg",
                                                "shim set 0.05-1 mm")),
        asset("F-101", "Dryer exhaust fan 101", fan, "line1", crit=2, cls="III", rpm=1480.0, bearing=b6310,
              mic=True, process=False, spares=("SKF 6310-2Z", "fan belt set", "SKF LGMT 2/1 grease 1 kg",
                                                "balance weight kit")),
        asset("P-102", "Cooling water pump 102", pump, "line1", crit=2, cls="I", rpm=1470.0, bearing=b6205,
              mic=False, process=True, spares=("SKF 6205-2RS", "impeller 180 mm", "mechanical seal 30 mm",
                                                "SKF LGMT 2/1 grease 1 kg")),
        asset("P-201", "Transfer pump 201", pump, "line2", crit=2, cls="II", rpm=1475.0, bearing=b6205,
              mic=True, process=True, spares=("SKF 6205-2RS", "mechanical seal 30 mm", "SKF LGMT 2/1 grease 1 kg",
                                                "suction strainer 50 mm")),
        asset("M-201", "Conveyor drive motor 201", motor, "line2", crit=2, cls="I", rpm=1460.0, bearing=b6203,
              mic=False, process=True, spares=("SKF 6203-2RS", "flexible coupling insert 68",
                                                "SKF LGHP 2/1 grease 1 kg")),
        asset("F-201", "Cooling tower fan 201", fan, "line2", crit=1, cls="IV", rpm=985.0, bearing=b6310,
              mic=True, process=False, spares=("SKF 6310-2Z", "SKF LGMT 2/1 grease 1 kg", "balance weight kit")),
        asset("M-202", "Mixer drive motor 202", motor, "line2", crit=1, cls="I", rpm=2950.0, bearing=b6203,
              mic=False, process=True, spares=("SKF 6203-2RS", "SKF LGHP 2/1 grease 1 kg")),
    ]
    # fmt: on


#: Fault cycle of :func:`default_faults`: (kind, life range in hours, onset as a fraction of life).
_FAULT_CYCLE: tuple[tuple[FaultKind, tuple[float, float], tuple[float, float]], ...] = (
    ("outer_race", (250.0, 350.0), (0.3, 0.5)),
    ("none", (0.0, 0.0), (0.0, 0.0)),
    ("inner_race", (600.0, 900.0), (0.3, 0.5)),
    ("imbalance", (1200.0, 2000.0), (0.2, 0.4)),
    ("none", (0.0, 0.0), (0.0, 0.0)),
    ("misalignment", (900.0, 1500.0), (0.2, 0.4)),
    ("ball", (500.0, 800.0), (0.3, 0.5)),
    ("cage", (700.0, 1000.0), (0.3, 0.5)),
)


def default_faults(assets: Sequence[AssetConfig], seed: int = 0) -> dict[str, FaultSpec]:
    """A fault mix for ``assets``, assigned in order from a fixed cycle.

    The first asset gets an outer-race fault with a life of 250-350 simulated hours and onset
    at 30-50 % of it (visible within minutes of a demo at one hour per second); then healthy,
    inner race, imbalance, healthy, misalignment, ball, cage, and around again with lives
    doubled each cycle. Lives and onsets are drawn from ``seed``.

    Args:
        assets: the plant's assets.
        seed: seed of the lives and onsets.

    Returns:
        ``asset_id -> FaultSpec`` for every asset.
    """
    rng = np.random.default_rng([int(seed), 0xFA017])
    faults: dict[str, FaultSpec] = {}
    for i, a in enumerate(assets):
        kind, (lo, hi), (f_lo, f_hi) = _FAULT_CYCLE[i % len(_FAULT_CYCLE)]
        life_draw, onset_draw = rng.uniform(lo, hi), rng.uniform(f_lo, f_hi)
        if kind == "none":
            faults[a.asset_id] = FaultSpec.healthy()
            continue
        life = round(float(life_draw) * 2 ** (i // len(_FAULT_CYCLE)), 1)
        faults[a.asset_id] = FaultSpec(kind=kind, onset_hours=round(life * float(onset_draw), 1), life_hours=life)
    return faults


class PlantSimulator:
    """All the plant's machines on one accelerated clock.

    Args:
        assets: the machines.
        faults: ``asset_id -> FaultSpec``; missing assets are healthy; ``None`` uses
            :func:`default_faults` with ``seed``.
        seed: seed of every asset simulator.
        time_acceleration: simulated seconds per wall-clock second (3600: one hour a second).
        start_hours: simulated time at wall-clock zero.
        ambient_c: ambient temperature of the plant.
    """

    def __init__(
        self,
        assets: Iterable[AssetConfig],
        faults: Mapping[str, FaultSpec] | None = None,
        seed: int = 0,
        time_acceleration: float = 3600.0,
        *,
        start_hours: float = 0.0,
        ambient_c: float = 25.0,
    ) -> None:
        asset_list = list(assets)
        ids = [a.asset_id for a in asset_list]
        if len(set(ids)) != len(ids):
            raise ValueError(f"asset ids must be unique; got {ids}")
        if not time_acceleration > 0:
            raise ValueError(f"time_acceleration must be > 0 simulated s per wall s; got {time_acceleration!r}")
        if start_hours < 0:
            raise ValueError(f"start_hours must be >= 0; got {start_hours!r}")
        if faults is None:
            faults = default_faults(asset_list, seed)
        unknown = set(faults) - set(ids)
        if unknown:
            raise ValueError(f"faults name unknown assets {sorted(unknown)}; assets are {ids}")
        self.seed = int(seed)
        self.time_acceleration = float(time_acceleration)
        self.start_hours = float(start_hours)
        self.faults: dict[str, FaultSpec] = {i: faults.get(i, FaultSpec.healthy()) for i in ids}
        self.simulators: dict[str, AssetSimulator] = {
            a.asset_id: AssetSimulator(a, self.faults[a.asset_id], seed=self.seed, ambient_c=ambient_c)
            for a in asset_list
        }

    @property
    def assets(self) -> list[AssetConfig]:
        """The machines, in the order given."""
        return [s.asset for s in self.simulators.values()]

    def __getitem__(self, asset_id: str) -> AssetSimulator:
        try:
            return self.simulators[asset_id]
        except KeyError:
            raise KeyError(f"no asset {asset_id!r}; have {list(self.simulators)}") from None

    def sim_hours(self, wall_elapsed_s: float) -> float:
        """Simulated time in hours after ``wall_elapsed_s`` wall-clock seconds."""
        return self.start_hours + float(wall_elapsed_s) * self.time_acceleration / 3600.0

    def state(self, asset_id: str, t_hours: float) -> AssetState:
        """Ground truth of one asset."""
        return self[asset_id].state(t_hours)

    def states(self, t_hours: float) -> dict[str, AssetState]:
        """Ground truth of every asset."""
        return {i: s.state(t_hours) for i, s in self.simulators.items()}

    def snapshot(
        self, asset_id: str, channel: str | ChannelConfig, t_hours: float, n_samples: int | None = None
    ) -> NDArray[np.float32]:
        """Samples of one channel of one asset from ``t_hours``.

        Args:
            asset_id: the asset.
            channel: channel name or config.
            t_hours: simulated time of the first sample.
            n_samples: samples to produce; default one second's worth (at least one).

        Returns:
            ``float32`` array in the channel's unit.
        """
        sim = self[asset_id]
        cfg = sim.asset.channel(channel) if isinstance(channel, str) else channel
        n = n_samples if n_samples is not None else max(1, round(cfg.sample_rate_hz))
        return sim.sample(cfg, t_hours, n)
