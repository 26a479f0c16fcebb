"""``genedge federate``: bad input is refused before any process starts; ``local`` runs a real federation.

The refusals go through Typer's runner (nothing starts). The end-to-end test runs ``genedge federate
local`` as a subprocess on the real C-MAPSS FD001 training file: a SuperLink and three SuperNodes,
a SecAgg+ round of unit-level DP-SGD, each plant registering the final model in its own registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from core.inference.registry import ModelRegistry
from genedge.cli import app
from genedge.federate_cli import parse_units
from tests._factories import unavailable

REPO = Path(__file__).resolve().parents[2]
#: Rounds of the end-to-end federations: one exercises every process, SecAgg+ stage and registry;
#: several rounds over real processes (the aggregate, the history) are checked in
#: tests/models/test_federated_deploy.py, the privacy budget over rounds in test_federated_privacy.py.
ROUNDS = 1


@pytest.fixture(scope="module")
def cmapss_dir() -> Path:
    """C-MAPSS directory from ``GENEDGE_TEST_DATA_DIR`` (default ``<repo>/../shared/datasets``), as tests/models finds it."""
    path = Path(os.environ.get("GENEDGE_TEST_DATA_DIR", REPO.parent / "shared" / "datasets")) / "cmapss"
    if not (path / "train_FD001.txt").is_file():
        unavailable(f"C-MAPSS data not found at {path}; set GENEDGE_TEST_DATA_DIR to the folder that holds cmapss/")
    return path


def _refused(args: list[str], message: str) -> str:
    """Run ``genedge federate ARGS``; assert a one-line ``error:`` holding ``message`` and exit 1; the line."""
    result = CliRunner().invoke(app, ["federate", *args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback: Typer's clean exit
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
    return lines[0]


# --------------------------------------------------------------------------------------- refusals


def test_server_without_tls_material_is_refused(tmp_path: Path) -> None:
    _refused(["server", "--out", str(tmp_path / "out")], "give --tls-ca, --tls-cert and --tls-key")
    _refused(["server", "--out", str(tmp_path / "out"), "--tls-ca", str(tmp_path / "ca.pem")], "or --insecure")
    missing = ["--tls-ca", str(tmp_path / "ca.pem"), "--tls-cert", str(tmp_path / "c.pem"), "--tls-key", str(tmp_path / "k.pem")]
    _refused(["server", "--out", str(tmp_path / "out"), *missing], "does not exist")
    _refused(["server", "--out", str(tmp_path / "out"), "--insecure", "--tls-ca", str(tmp_path / "ca.pem")], "not both")


def test_client_without_root_cert_is_refused(cmapss_dir: Path, tmp_path: Path) -> None:
    base = ["client", "--superlink", "127.0.0.1:9092", "--plant", "north", "--data", str(cmapss_dir), "--subset", "FD001",
            "--units", "1-10", "--registry", str(tmp_path / "reg")]
    _refused(base, "give --root-cert")
    _refused([*base, "--insecure", "--root-cert", str(tmp_path / "ca.pem")], "not both")
    _refused([*base, "--root-cert", str(tmp_path / "ca.pem")], "does not exist")
    _refused(["client", *base[1:2], "no-port", *base[3:], "--insecure"], "HOST:PORT")


@pytest.mark.parametrize(
    ("units", "message"),
    [("1-4,x", "'x'"), ("5-2", "not a range"), ("0-3", "not a range"), ("", "''"), ("1,,3", "''"), ("1-3-5", "'1-3-5'")],
)
def test_malformed_units_are_refused(units: str, message: str, tmp_path: Path) -> None:
    _refused(["client", "--superlink", "127.0.0.1:9092", "--plant", "north", "--data", str(tmp_path), "--subset", "FD001",
              "--units", units, "--insecure"], message)


def test_units_spec() -> None:
    assert parse_units("1-40,45,47-50") == [*range(1, 41), 45, 47, 48, 49, 50]
    assert parse_units(" 3 , 1-2, 2 ") == [1, 2, 3]


def test_unknown_run_config_key_is_refused_with_the_valid_ones(tmp_path: Path) -> None:
    line = _refused(["server", "--out", str(tmp_path), "--insecure", "--set", "d_model=16"], "unknown run-config key 'd_model'")
    # the valid keys are listed, from the App's pyproject.toml
    assert all(key in line for key in ("d-model", "num-server-rounds", "dp-epsilon", "secagg-num-shares"))
    _refused(["local", "--data", str(tmp_path), "--set", "learner=x"], "unknown run-config key 'learner'")


def test_bad_run_config_values_are_refused(tmp_path: Path) -> None:
    server = ["server", "--out", str(tmp_path), "--insecure"]
    _refused([*server, "--set", "window=thirty"], "--set window takes an integer")
    _refused([*server, "--set", "secagg=yes"], "takes true or false")
    _refused([*server, "--set", "window"], "KEY=VALUE")
    _refused([*server, "--rounds", "2", "--set", "num-server-rounds=3"], "given both as an option and with --set")
    _refused([*server, "--strategy", "krum"], "fedavg, fedprox")
    _refused(["local", "--data", str(tmp_path), "--set", "out-dir=/tmp/x"], "use --workdir")
    _refused(["local", "--data", str(tmp_path), "--set", "secagg=false"], "always on")


def test_local_refuses_missing_data_and_a_used_workdir(cmapss_dir: Path, tmp_path: Path) -> None:
    _refused(["local", "--data", str(tmp_path / "nowhere")], "no train_FD001.txt")
    _refused(["local", "--data", str(cmapss_dir), "--subsets", "FD001,FD009"], "FD009")
    used = tmp_path / "work"
    used.mkdir()
    (used / "superlink.db").write_bytes(b"")
    _refused(["local", "--data", str(cmapss_dir), "--workdir", str(used)], "is not empty")


# --------------------------------------------------------------------------------------- end to end

ALLOWED_RECORDS = {
    "fitres.parameters", "fitres.metrics", "fitres.num_examples", "fitres.status",
    "evaluateres.loss", "evaluateres.num_examples", "evaluateres.metrics", "evaluateres.status",
    "getparametersres.parameters", "getparametersres.status", "secaggplus_configs",
}  # fmt: skip
SMALL_NET = ["window=30", "d-model=16", "n-heads=2", "n-layers=1", "d-ff=32", "train-stride=4"]


def _audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_local_federation_registers_a_private_model_in_every_plant(cmapss_dir: Path, tmp_path: Path) -> None:
    registry, work = tmp_path / "registries", tmp_path / "work"
    cmd = [sys.executable, "-m", "genedge", "federate", "local", "--data", str(cmapss_dir), "--subsets", "FD001",
           "--rounds", str(ROUNDS), "--dp-epsilon", "8", "--registry", str(registry), "--workdir", str(work), "--timeout", "900"]
    for item in SMALL_NET:
        cmd += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1200, check=False)
    print(f"genedge federate local: 3 plants, {ROUNDS} SecAgg+ DP round(s) in {time.perf_counter() - started:.0f} s")
    assert proc.returncode == 0, f"{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    plants = ["FD001-a", "FD001-b", "FD001-c"]
    assert summary["rounds"] == ROUNDS and summary["secagg"] is True and summary["strategy"] == "fedavg"
    assert summary["plants"] == plants and summary["dp_epsilon"] == 8.0
    assert all(np.isfinite(summary["val_rmse"][p]) for p in plants)

    # every plant's registry: one unpromoted version, its card saying how it was trained
    for plant in plants:
        versions = ModelRegistry(registry / plant).list()
        assert [(v.name, v.version, v.promoted) for v in versions] == [("cmapss-FD001", "v1", False)]
        fed = (versions[0].card.model_extra or {})["federation"]
        assert fed["run_id"] == summary["run_id"] and fed["registered_by"] == plant
        assert fed["rounds"] == ROUNDS and fed["plants"] == plants and fed["secure_aggregation"] is True
        privacy = fed["privacy"]
        assert 0 < privacy["epsilon_spent"] <= 8.0 and privacy["privacy_unit"] == "engine run"
        assert privacy["steps"] == privacy["planned_steps"] > 0  # the budget is spent over exactly the planned rounds
        reported = summary["registered"][plant]["registered"]
        assert [(r["version"], r["epsilon_spent"]) for r in reported] == [("v1", privacy["epsilon_spent"])]

    # what left each plant: SecAgg+ material and weight-shaped float32 arrays, never plain fit weights
    with np.load(Path(summary["out_dir"]) / "final.npz") as npz:
        shapes = [list(npz[f"arr_{i}"].shape) for i in range(len(npz.files))]
    for plant in plants:
        lines = _audit(Path(summary["registered"][plant]["audit_log"]))
        assert lines and all(line["error"] is None and line["plant"] == plant for line in lines)
        assert [line["secagg_stage"] for line in lines if line["secagg_stage"]] == [
            "setup", "share_keys", "collect_masked_vectors", "unmask"] * ROUNDS  # fmt: skip
        assert sum(line["message_type"] == "evaluate" for line in lines) == ROUNDS
        for line in lines:
            for entry in line["records"]:
                assert entry["record"] in ALLOWED_RECORDS
                if entry["record"] == "fitres.parameters":
                    assert entry["arrays"] == []
                if entry.get("kind") == "arrays" and entry["arrays"]:
                    assert [a["shape"] for a in entry["arrays"]] == shapes
                    assert {a["dtype"] for a in entry["arrays"]} == {"float32"}
                if entry["record"] == "secaggplus_configs":
                    assert {f["kind"] for f in entry["fields"].values()} <= {"key_material", "node_ids", "masked_vectors"}
                if entry.get("stage") == "collect_masked_vectors":
                    assert [a["shape"] for a in entry["fields"]["masked_params"]["arrays"]] == [[1], *shapes]


#: small simulated plants: short runs, coarse frames (the same on every plant of a federation)
SIM_SET = ["sim-span-hours=200", "sim-step-hours=10", "sim-life-hours=120,400", "sim-window=6", "sim-batch-size=64",
           "num-threads=1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sim_client_refuses_an_unknown_or_fixed_simulation_setting() -> None:
    _refused(["sim-client", "--superlink", "127.0.0.1:9092", "--plant", "p", "--fault-kinds", "ball", "--insecure",
              "--sim-set", "sim-colour=red"], "--sim-set takes KEY=VALUE")
    _refused(["sim-client", "--superlink", "127.0.0.1:9092", "--plant", "p", "--fault-kinds", "ball", "--insecure",
              "--sim-set", "seed=3"], "--sim-set takes KEY=VALUE")


@pytest.mark.slow
def test_server_and_sim_clients_federate_the_demo_plants_model(
    plant_store: tuple[str, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """A SuperLink and three simulator plants with their own fault mixes, one also training on its store's runs."""
    port = _free_port()
    genedge = [sys.executable, "-m", "genedge", "federate"]
    server = subprocess.Popen(
        [*genedge, "server", "--out", str(tmp_path / "out"), "--host", "127.0.0.1", "--port", str(port), "--insecure",
         "--rounds", str(ROUNDS), "--min-plants", "3", "--timeout", "900"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    mixes = {"bearings": "outer_race,inner_race,ball,cage", "drives": "imbalance,misalignment", "mixed": "outer_race,imbalance"}
    clients: dict[str, subprocess.Popen[str]] = {}
    for i, (plant, kinds) in enumerate(mixes.items()):
        cmd = [*genedge, "sim-client", "--superlink", f"127.0.0.1:{port}", "--plant", plant, "--fault-kinds", kinds,
               "--sim-units", "10", "--seed", str(i + 1), "--registry", str(tmp_path / "reg" / plant), "--insecure"]
        for item in SIM_SET:
            cmd += ["--sim-set", item]
        if plant == "bearings":
            cmd += ["--from-store", "--db", plant_store[0]]
        clients[plant] = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = server.communicate(timeout=1000)
        assert server.returncode == 0, err[-6000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["rounds"] == ROUNDS and sorted(summary["plants"]) == sorted(mixes)
        # a plant leaves by stopping its SuperNode; it reports what it registered meanwhile
        reports, stderr = {}, {}
        for plant, proc in clients.items():
            proc.terminate()
            out, stderr[plant] = proc.communicate(timeout=60)
            assert proc.returncode == 0, stderr[plant][-4000:]
            reports[plant] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in [server, *clients.values()]:
            if proc.poll() is None:
                proc.kill()
    assert "bearings: 1 stored runs join its training units" in stderr["bearings"]
    for plant in mixes:
        versions = ModelRegistry(tmp_path / "reg" / plant).list()
        assert [(v.name, v.version, v.promoted) for v in versions] == [("sim-bearing", "v1", False)]
        fed = (versions[0].card.model_extra or {})["federation"]
        assert fed["run_id"] == summary["run_id"] and fed["registered_by"] == plant and fed["rounds"] == ROUNDS
        assert sorted(fed["plants"]) == sorted(mixes) and fed["secure_aggregation"] is True
        assert [r["version"] for r in reports[plant]["registered"]] == ["v1"]
