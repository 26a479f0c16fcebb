"""``genedge prescribe ...``: recommendations and work orders (a Typer app mounted by ``genedge.cli``).

    genedge prescribe --asset P-101 [--backend local|openai|rules|auto] [--json] [--db URL] [--save]
    genedge prescribe --asset P-101 --sim outer_race --stage 0.8      # evidence from the simulator
    genedge prescribe workorders list|export|approve|reject|complete ...

With evidence from the store, a developing fault's work order cites the what-if twin's choice of
when to repair (its risk and cost against the best alternative, from the ``[plant]`` settings).

The prescriber, the store and the simulator are imported inside the commands, so that the other
groups and ``genedge --help`` start without them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import GenEdgeError
from genedge._cli_output import fail
from genedge._common import ConfigOpt, DbOpt, load_settings

__all__ = ["prescribe_app", "workorders_app"]

prescribe_app = typer.Typer(help="Evidence-grounded maintenance recommendations and work orders.",
                            invoke_without_command=True, no_args_is_help=False)
workorders_app = typer.Typer(help="Work orders: list, approve, reject, complete, export.", no_args_is_help=True)
prescribe_app.add_typer(workorders_app, name="workorders")

def _asset_config(settings: Any, asset_id: str) -> Any:
    from core.sim import default_plant

    for a in [*settings.assets, *default_plant(settings.mqtt.site)]:
        if a.asset_id == asset_id:
            return a
    return None


def _sim_evidence(asset: Any, kind: str, stage: float, seed: int) -> Any:
    from core.sim import FaultSpec
    from prescribe.evidence import from_simulator

    life = 600.0
    onset = 0.3 * life
    fault = FaultSpec(kind=kind, onset_hours=onset, life_hours=life) if kind != "none" else FaultSpec.healthy()
    return from_simulator(asset, fault, onset + stage * (life - onset), seed=seed)


@prescribe_app.callback()
def prescribe(
    ctx: typer.Context,
    asset: Annotated[str | None, typer.Option("--asset", help="asset id")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="auto | local | openai | rules (default: llm.backend)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the recommendation as JSON")] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    save: Annotated[bool, typer.Option("--save", help="store the work-order draft")] = False,
    sim: Annotated[str | None, typer.Option("--sim", help="evidence from the simulator with this fault kind")] = None,
    stage: Annotated[float, typer.Option(help="with --sim: fraction of the way from fault onset to failure")] = 0.8,
    seed: Annotated[int, typer.Option(help="with --sim: seed")] = 0,
) -> None:
    """Recommend what to do about one asset, by when and why (cites its evidence)."""
    if ctx.invoked_subcommand is not None:
        return
    if not asset:
        raise typer.BadParameter("--asset is required", param_hint="--asset")
    try:
        _run(asset, backend, as_json, db, config, save, sim, stage, seed)
    except (GenEdgeError, ValueError) as err:
        fail(err)


def _run(asset_id: str, backend: str | None, as_json: bool, db: str | None, config: Path | None, save: bool,
         sim: str | None, stage: float, seed: int) -> None:
    from prescribe.backends import make_backend
    from prescribe.evidence import from_store
    from prescribe.prescriber import Prescriber
    from prescribe.service import attach_whatif

    settings = load_settings(config, db)
    asset = _asset_config(settings, asset_id)
    store = None
    if sim is not None:
        if asset is None:
            raise GenEdgeError(f"--sim needs a configured asset; {asset_id!r} is neither in settings nor the demo plant")
        evidence = _sim_evidence(asset, sim, stage, seed)
    else:
        from ingest.store import Store

        store = Store(settings.store.url.get_secret_value())
        evidence = from_store(store, asset_id, asset=asset, time_scale=settings.store.time_scale)
    chosen, notes = make_backend(settings.llm, backend)
    prescriber = Prescriber(chosen, notes=notes)
    if store is not None:
        # evidence from the store: a developing fault's work order cites the what-if twin's choice
        evidence = attach_whatif(store, evidence, settings, asset=asset, policy=prescriber.policy)

    async def go() -> Any:
        try:
            return await prescriber.arun(evidence)
        finally:
            await prescriber.aclose()

    outcome = asyncio.run(go())
    rec = outcome.recommendation
    saved = None
    if save and rec.work_order is not None:
        from prescribe.workorders import save_draft, work_order_number

        if store is None:
            from ingest.store import Store

            store = Store(settings.store.url.get_secret_value())
            store.upsert_assets([asset])
        saved = work_order_number(save_draft(store, rec).id)
    if as_json:
        data = rec.model_dump(mode="json")
        data["_meta"] = {"backend_used": outcome.backend_used, "attempts": outcome.attempts,
                         "latency_s": round(outcome.latency_s, 3), "saved_work_order": saved}
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(rec.as_text())
        if saved:
            typer.echo(f"saved draft work order {saved}")


def _store(config: Path | None, db: str | None) -> Any:
    from ingest.store import Store

    return Store(load_settings(config, db).store.url.get_secret_value())


@workorders_app.command("list")
def wo_list(asset: Annotated[str | None, typer.Option("--asset")] = None,
            status: Annotated[str | None, typer.Option("--status", help="draft | approved | rejected | done")] = None,
            db: DbOpt = None, config: ConfigOpt = None) -> None:
    """List work orders, newest first."""
    from prescribe.workorders import list_work_orders, work_order_number

    try:
        for v in list_work_orders(_store(config, db), asset_id=asset, statuses=[status] if status else None):
            due = v.due_by.strftime("%Y-%m-%d %H:%M") if v.due_by else "-"
            typer.echo(f"{work_order_number(v.id)}  {v.asset_id:<8} {v.status:<9} {v.priority:<7} due {due}  {v.title}")
    except GenEdgeError as err:
        fail(err)


@workorders_app.command("export")
def wo_export(fmt: Annotated[str, typer.Option("--format", help="json | csv")] = "json",
              asset: Annotated[str | None, typer.Option("--asset")] = None,
              out: Annotated[Path | None, typer.Option("--out", help="file (default stdout)")] = None,
              db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Export work orders in a CMMS-friendly layout."""
    from prescribe.workorders import export_csv, export_json, list_work_orders

    if fmt not in ("json", "csv"):
        raise typer.BadParameter(f"--format must be json or csv, got {fmt!r}")
    try:
        views = list_work_orders(_store(config, db), asset_id=asset)
    except GenEdgeError as err:
        fail(err)
        return
    text = export_json(views) if fmt == "json" else export_csv(views)
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text)


@workorders_app.command("approve")
def wo_approve(work_order_id: int, by: Annotated[str, typer.Option("--by")], note: str = "",
               db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Approve a draft work order."""
    from prescribe.workorders import approve

    try:
        typer.echo(approve(_store(config, db), work_order_id, by, note=note).status)
    except GenEdgeError as err:
        fail(err)


@workorders_app.command("reject")
def wo_reject(work_order_id: int, by: Annotated[str, typer.Option("--by")],
              reason: Annotated[str, typer.Option("--reason")], db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Reject a draft work order, saying why."""
    from prescribe.workorders import reject

    try:
        typer.echo(reject(_store(config, db), work_order_id, by, reason).status)
    except GenEdgeError as err:
        fail(err)


@workorders_app.command("complete")
def wo_complete(work_order_id: int, by: Annotated[str, typer.Option("--by")],
                found: Annotated[str, typer.Option("--found", help="fault actually found, e.g. outer_race or none")],
                confirmed: Annotated[bool, typer.Option("--confirmed/--not-confirmed")] = True,
                note: str = "", db: DbOpt = None, config: ConfigOpt = None) -> None:
    """Close an approved work order with what was found (becomes a training label)."""
    from prescribe.workorders import complete

    try:
        typer.echo(complete(_store(config, db), work_order_id, by, found=found, fault_confirmed=confirmed,
                            note=note).status)
    except GenEdgeError as err:
        fail(err)
