"""``genedge whatif ...``: the what-if twin of one asset (a Typer app mounted by ``genedge.cli``).

    genedge whatif --asset P-101 [--option repair_now --option derate] [--derate 0.3] [--repair-in 48] [--json] [--db URL]
    genedge whatif build-library [--registry-dir models/shipped] [--name sim-bearing] [--json]

The twin, the store and the models are imported inside the commands, so that ``genedge --help``
starts without them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import GenEdgeError
from genedge._cli_output import fail
from genedge._common import ConfigOpt, DbOpt, load_settings

__all__ = ["whatif_app"]

whatif_app = typer.Typer(help="What-if twin: run on, derate, repair at the next stop or now; risk and cost of each.",
                         invoke_without_command=True, no_args_is_help=False)

_OPTIONS = ("run_on", "derate", "repair_next_stop", "repair_now")


def _hours(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0f} h"


def _text(w: Any, shown: list[Any]) -> str:
    lines = [f"{w.asset_id} at {w.at:%Y-%m-%d %H:%M} UTC: {w.state}"
             + (", developing fault" if w.developing else ", no developing fault"),
             f"Recommendation: {w.reason}.",
             f"Futures: {w.futures.n if w.futures else 0} from {w.generator} ({w.model or 'no RUL model'}); "
             f"next planned stop in {_hours(w.next_stop_h)}; age {w.age_h:.0f} h; load {w.load_share:.0%}",
             ""]
    if shown:
        lines.append(f"{'option':<30}{'repair in':>10}{'P(fail first)':>15}{'P(fail 24 h)':>14}"
                     f"{'cost ' + w.currency:>14}{'per h':>9}{'RUL p5-p95':>16}")
        for o in shown:
            q = o.failure_quantiles_h
            mark = "*" if o.option.name == w.choice else " "
            lines.append(f"{mark} {o.option.label:<28}{_hours(o.option.repair_h):>10}{o.p_fail_before_repair:>15.1%}"
                         f"{o.p_fail_24h:>14.1%}{o.expected_cost:>14,.0f}{o.cost_per_h:>9.1f}"
                         f"{_hours(q[0]) + '-' + _hours(q[-1]):>16}")
    return "\n".join(lines)


@whatif_app.callback()
def whatif(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option("--asset", help="asset id")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help=f"show only these options: {', '.join(_OPTIONS)}")] = None,
    derate: Annotated[float | None, typer.Option("--derate", help="derate share 0-0.9 (default plant.derate_share)")] = None,
    repair_in: Annotated[float | None, typer.Option("--repair-in", help="plant hours to the planned repair")] = None,
    seed: Annotated[int, typer.Option(help="seed of the futures")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print the what-if as JSON")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Simulate the asset's futures under each option and recommend one (cheapest within the risk limit)."""
    if ctx.invoked_subcommand is not None:
        return
    if not asset:
        raise typer.BadParameter("--asset is required", param_hint="--asset")
    unknown = [o for o in option or [] if o not in _OPTIONS]
    if unknown:
        raise typer.BadParameter(f"unknown option(s) {unknown}; choose from {', '.join(_OPTIONS)}", param_hint="--option")
    try:
        from ingest.store import Store
        from prescribe.whatif import whatif_from_store

        settings = load_settings(config, db)
        store = Store(settings.store.url.get_secret_value())
        w = whatif_from_store(store, asset, settings, derate_share=derate, repair_in_h=repair_in, seed=seed)
    except (GenEdgeError, ValueError) as err:
        fail(err)
    shown = [o for o in w.outcomes if not option or o.option.name in option]
    if as_json:
        data = w.as_dict()
        data["options"] = [o.as_dict() for o in shown]
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(_text(w, shown))


@whatif_app.command("build-library")
def build_library(
    registry_dir: Annotated[Path, typer.Option(help="registry holding the model")] = Path("models/shipped"),
    name: Annotated[str, typer.Option(help="registered simulator RUL model")] = "sim-bearing",
    version: Annotated[str | None, typer.Option(help="model version (default: the promoted one)")] = None,
    units: Annotated[int, typer.Option(min=10, max=5000, help="simulated run-to-failure units")] = 320,
    seed: Annotated[int, typer.Option(help="seed of the units (not the model's training seed 0)")] = 101,
    as_json: Annotated[bool, typer.Option("--json", help="print a JSON summary")] = False,
) -> None:
    """Build the analog library of a simulator RUL model version (its learned what-if generator)."""
    try:
        from core.inference.registry import ModelRegistry
        from core.inference.runtime import FeatureRULPredictor
        from core.twin import ANALOGS_FILE
        from models.twin_library import build_sim_library

        registry = ModelRegistry(registry_dir)
        mv = registry.get(name, version) if version else registry.promoted(name)
        predictor = FeatureRULPredictor(mv.model_path, mv.card)
        library = build_sim_library(predictor, model=f"{mv.name}:{mv.version}", n_units=units, seed=seed)
        path = library.to_json(mv.path / ANALOGS_FILE)
    except (GenEdgeError, ValueError, OSError) as err:
        fail(err)
    summary = {"model": library.model, "path": str(path), "cases": int(library.true_rul_h.size), "units": units, "seed": seed}
    typer.echo(json.dumps(summary) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
