"""``genedge prescribe`` as the lead mounts it (the Typer app, run in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from genedge.prescribe_cli import prescribe_app

runner = CliRunner()


def test_prescribe_from_simulator_json(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    res = runner.invoke(prescribe_app, ["--asset", "P-101", "--sim", "outer_race", "--backend", "rules", "--json",
                                        "--db", db, "--save"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["asset_id"] == "P-101" and data["status"] == "action" and data["backend"] == "rules"
    assert data["_meta"]["saved_work_order"] == "WO-000001"

    listed = runner.invoke(prescribe_app, ["workorders", "list", "--db", db])
    assert "WO-000001" in listed.output and "draft" in listed.output
    assert runner.invoke(prescribe_app, ["workorders", "approve", "1", "--by", "olga", "--db", db]).output.strip() == "approved"
    done = runner.invoke(prescribe_app, ["workorders", "complete", "1", "--by", "tom", "--found", "outer_race", "--db", db])
    assert done.output.strip() == "done"
    exported = runner.invoke(prescribe_app, ["workorders", "export", "--format", "csv", "--db", db])
    assert exported.exit_code == 0 and exported.output.startswith("work_order_number,asset_id,status")


def test_prescribe_from_store_text(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    from core.sim import default_plant
    from ingest.store import Store

    with Store(db) as s:
        s.upsert_assets(default_plant())
    res = runner.invoke(prescribe_app, ["--asset", "P-101", "--backend", "rules", "--db", db])
    assert res.exit_code == 0, res.output
    assert "insufficient_evidence" in res.output and "no RUL prediction and no vibration features" in res.output


def test_unknown_asset_is_a_clean_error(tmp_path: Path) -> None:
    res = runner.invoke(prescribe_app, ["--asset", "NOPE", "--backend", "rules", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert res.exit_code == 1 and "not registered" in res.output


def test_asset_is_required() -> None:
    res = runner.invoke(prescribe_app, [])
    assert res.exit_code != 0


def test_mounted_as_genedge_prescribe(tmp_path: Path) -> None:
    import typer

    root = typer.Typer()

    @root.command()
    def version() -> None:  # a second command, so "prescribe" is a group of root
        typer.echo("0")

    root.add_typer(prescribe_app, name="prescribe")
    res = runner.invoke(root, ["prescribe", "--asset", "M-201", "--sim", "misalignment", "--backend", "rules", "--json",
                               "--db", f"sqlite:///{tmp_path / 'm.db'}"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["asset_id"] == "M-201"
