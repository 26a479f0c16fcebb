"""``genedge federate ...``: federated retraining of the RUL model across plants (mounted by :mod:`genedge.cli`).

``server`` runs the SuperLink and the run (one machine of the federation), ``client`` runs one plant's
SuperNode (one per plant), ``local`` runs a whole federation of C-MAPSS plants on 127.0.0.1 to try it
on one machine. Flower, torch and the federated package are imported inside the commands, so
``genedge --help`` stays fast.

Run-configuration overrides (``--set KEY=VALUE``) must name a key declared in the Flower App's
``pyproject.toml`` (:data:`models.federated.deploy.APP_DIR`); each value is read as the type of the
key's declared default.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import ConfigError, GenEdgeError
from genedge._cli_output import fail
from genedge._common import ConfigOpt, DbOpt, load_settings

if TYPE_CHECKING:  # deploy pulls numpy and the federated package: the commands import it when they run
    from models.federated.deploy import FederationResult

__all__ = ["federate_app", "parse_overrides", "parse_units", "run_config_keys"]

federate_app = typer.Typer(
    help="Federated retraining of the RUL model across plants (Flower, SecAgg+, unit-level DP).", no_args_is_help=True
)

ConfigValue = str | int | float | bool

Rounds = Annotated[int | None, typer.Option("--rounds", help="Federated rounds (num-server-rounds; default 3).")]
Strategy = Annotated[str | None, typer.Option("--strategy", help="fedavg | fedprox (default fedavg).")]
DpEpsilon = Annotated[
    float | None, typer.Option("--dp-epsilon", help="Per-plant DP budget per engine run over all rounds (0: no DP).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Run-config override KEY=VALUE (a key of models/federated/app/pyproject.toml); repeatable."),
]
Seed = Annotated[int, typer.Option("--seed", help="Seed.")]
SuperLinkAddr = Annotated[str, typer.Option("--superlink", help="HOST:PORT of the SuperLink.")]
PlantName = Annotated[str, typer.Option("--plant", help="This plant's name (unique in the federation).")]
PlantRegistry = Annotated[
    Path | None, typer.Option("--registry", help="Where the final model is registered (default: models.registry_dir).")
]
RootCert = Annotated[Path | None, typer.Option("--root-cert", help="CA that signed the SuperLink's certificate.")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Plain HTTP, no TLS (trusted networks only).")]
AuditLog = Annotated[Path | None, typer.Option("--audit-log", help="JSON lines of what the plant sends.")]

_STRATEGIES = ("fedavg", "fedprox")
_UNIT_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@contextmanager
def _or_fail() -> Iterator[None]:
    """Report a :class:`GenEdgeError` as ``error: ...`` (exit 1); an interrupt stops the processes (exit 130)."""
    # SIGTERM as an interrupt too: unwinding stops the Flower processes this command started
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    except GenEdgeError as err:
        fail(err)
    except KeyboardInterrupt:
        typer.echo("error: interrupted; the federation's processes were stopped", err=True)
        raise typer.Exit(code=130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------- parsing


def run_config_keys() -> dict[str, ConfigValue]:
    """The run-configuration keys the Flower App declares, with their defaults."""
    from models.federated.deploy import APP_DIR

    path = APP_DIR / "pyproject.toml"
    try:
        declared = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["flwr"]["app"]["config"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read the run-config keys of {path}: {err}") from err
    return dict(declared)


def _typed(key: str, raw: str, default: ConfigValue) -> ConfigValue:
    """``raw`` read as the type of ``key``'s declared default."""
    text = raw.strip()
    if isinstance(default, bool):
        if text.lower() not in {"true", "false"}:
            raise ConfigError(f"--set {key} takes true or false, got {raw!r}")
        return text.lower() == "true"
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ConfigError(f"--set {key} takes {kind}, got {raw!r}") from None
    return raw


def parse_overrides(
    items: Sequence[str], declared: Mapping[str, ConfigValue], reserved: Mapping[str, str]
) -> dict[str, ConfigValue]:
    """``KEY=VALUE`` items as run-config overrides, each key checked against the declared ones.

    Args:
        items: the ``--set`` values.
        declared: the App's keys and defaults (:func:`run_config_keys`).
        reserved: keys the command sets itself, with the option to use instead.

    Raises:
        ConfigError: an item that is not ``KEY=VALUE``, an undeclared or reserved key, a value of the wrong type.
    """
    out: dict[str, ConfigValue] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE, got {item!r}")
        if key in reserved:
            raise ConfigError(f"--set {key} is set by this command: use {reserved[key]}")
        if key not in declared:
            raise ConfigError(f"unknown run-config key {key!r}; the valid keys are: {', '.join(sorted(declared))}")
        out[key] = _typed(key, raw, declared[key])
    return out


def _merge(options: Mapping[str, ConfigValue | None], overrides: Mapping[str, ConfigValue]) -> dict[str, ConfigValue]:
    """The ``--set`` overrides plus the options given; a key given both ways is refused."""
    given = {k: v for k, v in options.items() if v is not None}
    twice = sorted(set(given) & set(overrides))
    if twice:
        raise ConfigError(f"{', '.join(twice)} given both as an option and with --set: give each once")
    return {**overrides, **given}


def parse_units(spec: str) -> list[int]:
    """Unit ids of a spec like ``"1-40,45,47-50"`` (sorted, each once).

    Raises:
        ConfigError: an empty or malformed spec, a range that runs backwards, a unit id below 1.
    """
    units: set[int] = set()
    for part in spec.split(","):
        m = _UNIT_RANGE.match(part)
        if m is None:
            raise ConfigError(f"--units takes unit ids and ranges like 1-40,45,47-50; {part.strip()!r} in {spec!r} is neither")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo < 1 or hi < lo:
            raise ConfigError(f"--units: {part.strip()!r} is not a range of unit ids >= 1 (low-high)")
        units.update(range(lo, hi + 1))
    return sorted(units)


def _check_strategy(strategy: str | None) -> None:
    if strategy is not None and strategy not in _STRATEGIES:
        raise ConfigError(f"--strategy must be one of {', '.join(_STRATEGIES)}, got {strategy!r}")


def _check_data(data_dir: Path, subsets: Sequence[str]) -> None:
    """Refuse a data directory that lacks a subset's training file (before any process starts)."""
    from core.datasets.cmapss import check_subset

    for subset in subsets:
        check_subset(subset)
        if not (data_dir / f"train_{subset}.txt").is_file():
            raise ConfigError(f"--data {data_dir}: no train_{subset}.txt there (the C-MAPSS directory of the plant)")


def _certificates(ca: Path | None, cert: Path | None, key: Path | None, insecure: bool) -> tuple[Path, Path, Path] | None:
    """The SuperLink's TLS material, or ``None`` with ``--insecure``; anything else is refused."""
    given = [p for p in (ca, cert, key) if p is not None]
    if insecure:
        if given:
            raise ConfigError("give either --tls-ca/--tls-cert/--tls-key or --insecure, not both")
        return None
    if ca is None or cert is None or key is None:
        raise ConfigError(
            "the SuperLink serves TLS: give --tls-ca, --tls-cert and --tls-key (PEM files), "
            "or --insecure for plain HTTP on a trusted network"
        )
    for path in (ca, cert, key):
        if not path.is_file():
            raise ConfigError(f"TLS file {path} does not exist")
    return ca.resolve(), cert.resolve(), key.resolve()


# --------------------------------------------------------------------------------------- output


def summary(result: FederationResult) -> dict[str, Any]:
    """What a finished run printed: its id, rounds, strategy, each plant's validation RMSE of the last round."""
    history = result.history
    rounds = history.get("rounds") or []
    clients = rounds[-1]["clients"] if rounds else {}
    return {
        "run_id": result.run_id,
        "rounds": len(rounds),
        "strategy": history.get("strategy"),
        "secagg": history.get("secagg"),
        "plants": sorted(clients),
        "val_rmse": {plant: c.get("evaluate", {}).get("rmse") for plant, c in sorted(clients.items())},
        "wall_time_s": round(result.wall_time_s, 1),
        "out_dir": str(result.out_dir),
    }


def registered_versions(registry_dir: Path, run_id: int | None = None) -> list[dict[str, Any]]:
    """The federated versions of ``registry_dir`` (of run ``run_id`` only, if given), with the privacy budget each spent."""
    from core.inference.registry import ModelRegistry

    out = []
    for mv in ModelRegistry(registry_dir).list():
        fed = (mv.card.model_extra or {}).get("federation")
        if not isinstance(fed, dict) or (run_id is not None and fed.get("run_id") != run_id):
            continue
        privacy = fed.get("privacy")
        out.append({
            "name": mv.name,
            "version": mv.version,
            "promoted": mv.promoted,
            "path": str(mv.path),
            "val_rmse_onnx": mv.card.metric("val_rmse_onnx"),
            "epsilon_spent": privacy.get("epsilon_spent") if isinstance(privacy, dict) else None,
            "delta": privacy.get("delta") if isinstance(privacy, dict) else None,
        })
    return out


def _echo(data: Mapping[str, Any]) -> None:
    typer.echo(json.dumps(data, default=float))


# --------------------------------------------------------------------------------------- commands


@federate_app.command("server")
def server(
    out: Annotated[Path, typer.Option("--out", help="Where final.npz and history.json go.")],
    host: Annotated[str, typer.Option(help="Address the SuperLink listens on.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Its port (the plants' Fleet API and flwr's Control API).")] = 9092,
    rounds: Rounds = None,
    strategy: Strategy = None,
    proximal_mu: Annotated[float | None, typer.Option("--proximal-mu", help="FedProx's mu (default 0.01).")] = None,
    local_epochs: Annotated[int | None, typer.Option("--local-epochs", help="Epochs per plant per round (default 1).")] = None,
    min_plants: Annotated[int | None, typer.Option("--min-plants", help="Plants every round waits for (default 2).")] = None,
    dp_epsilon: DpEpsilon = None,
    dp_delta: Annotated[float | None, typer.Option("--dp-delta", help="DP delta (default 1e-5).")] = None,
    secagg: Annotated[
        bool | None, typer.Option("--secagg/--no-secagg", help="SecAgg+: the server sees only the sum (default on).")
    ] = None,
    tls_ca: Annotated[Path | None, typer.Option("--tls-ca", help="CA certificate (PEM).")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="The SuperLink's certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Its private key (PEM).")] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP, no TLS (trusted networks only).")] = False,
    overrides: SetOpt = None,
    workdir: Annotated[Path | None, typer.Option(help="Logs and the SuperLink's database (default: a temp dir).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the run may take.")] = 24 * 3600.0,
) -> None:
    """Run the SuperLink and the federated retraining; wait for the plants, print a JSON summary at the end."""
    with _or_fail():
        certificates = _certificates(tls_ca, tls_cert, tls_key, insecure)
        _check_strategy(strategy)
        extra = parse_overrides(overrides or [], run_config_keys(), {"out-dir": "--out"})
        run_config = _merge(
            {"num-server-rounds": rounds, "strategy": strategy, "proximal-mu": proximal_mu, "local-epochs": local_epochs,
             "min-clients": min_plants, "dp-epsilon": dp_epsilon, "dp-delta": dp_delta, "secagg": secagg},
            extra,
        )
        from models.federated.deploy import federate_server

        if insecure and host not in {"127.0.0.1", "localhost", "::1"}:
            typer.echo(f"warning: --insecure: the plants' weights cross the network to {host}:{port} unencrypted", err=True)
        typer.echo(f"SuperLink on {host}:{port}; waiting for the plants", err=True)
        result = federate_server(out, host=host, port=port, certificates=certificates, insecure=insecure,
                                 run_config=run_config, workdir=workdir, timeout_s=timeout)
    _echo(summary(result))


@federate_app.command("client")
def client(
    superlink: SuperLinkAddr,
    plant: PlantName,
    data: Annotated[Path, typer.Option("--data", help="The plant's C-MAPSS directory (train_FD00X.txt).")],
    subset: Annotated[str, typer.Option("--subset", help="C-MAPSS subset of its units, FD001..FD004.")],
    units: Annotated[str, typer.Option("--units", help="Unit ids the plant owns, e.g. 1-40,45,47-50.")],
    registry: PlantRegistry = None,
    root_cert: RootCert = None,
    insecure: Insecure = False,
    audit_log: AuditLog = None,
    seed: Seed = 0,
    workdir: Annotated[Path | None, typer.Option(help="Logs of the SuperNode (default: a temp dir).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run one plant's SuperNode until it is stopped (Ctrl-C, SIGTERM); print the versions it registered meanwhile.

    The last round of each run registers the federated model in the plant's registry, unpromoted.
    """
    with _or_fail():
        _check_superlink(superlink, root_cert, insecure)
        owned = parse_units(units)
        _check_data(data, [subset])
        registry_dir = (registry or load_settings(config).models.registry_dir).resolve()
        from models.federated.deploy import PlantNode

        node = PlantNode(plant, data.resolve(), subset=subset, units=",".join(map(str, owned)), seed=seed,
                         extra={"registry-dir": str(registry_dir)})
        typer.echo(f"plant {plant}: {len(owned)} units of {subset}, SuperLink {superlink}, registry {registry_dir}", err=True)
        new = _serve(superlink, node, registry_dir, root_cert, insecure, workdir, audit_log)
    _echo({"plant": plant, "registry": str(registry_dir), "registered": new})


@federate_app.command("sim-client")
def sim_client(
    superlink: SuperLinkAddr,
    plant: PlantName,
    fault_kinds: Annotated[
        str, typer.Option("--fault-kinds", help="Comma-separated fault kinds the plant's simulated units run to.")
    ],
    sim_units: Annotated[int, typer.Option("--sim-units", help="Simulated units of the plant.")] = 40,
    sim_set: Annotated[
        list[str] | None,
        typer.Option("--sim-set", help="Simulation setting KEY=VALUE (sim-window, sim-step-hours, sim-span-hours, "
                     "sim-life-hours, sim-snapshot-samples, sim-val-cuts, sim-batch-size, sim-rul-cap, healthy-fraction, "
                     "num-threads); the same on every plant of the federation; repeatable."),
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option("--from-store", help="Also train on the plant's own runs to confirmed faults from its store "
                     "(as `genedge rul train-sim --from-store`)."),
    ] = False,
    db: DbOpt = None,
    registry: PlantRegistry = None,
    root_cert: RootCert = None,
    insecure: Insecure = False,
    audit_log: AuditLog = None,
    seed: Seed = 0,
    workdir: Annotated[Path | None, typer.Option(help="SuperNode logs and exported runs (default: a temp dir).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Run a plant of the demo's simulator (``sim-bearing`` model, its own fault mix) as a SuperNode until stopped.

    Every plant of one such federation runs ``sim-client``; the last round registers the federated
    ``sim-bearing`` version in the plant's registry, unpromoted.
    """
    import tempfile

    with _or_fail():
        _check_superlink(superlink, root_cert, insecure)
        settings = load_settings(config, db)
        registry_dir = (registry or settings.models.registry_dir).resolve()
        from models.federated.deploy import PlantNode
        from models.federated.sim_plants import SimPlant, save_event_runs

        kinds = tuple(k.strip() for k in fault_kinds.split(",") if k.strip())
        sim = _sim_plant(SimPlant(plant, fault_kinds=kinds, n_units=sim_units, seed=seed), sim_set or [])
        with tempfile.TemporaryDirectory(prefix="genedge-sim-plant-") as tmp:
            if from_store:
                from genedge.rul_cli import store_plant_runs

                data_cfg = {"step_hours": sim.step_hours, "rul_cap": sim.rul_cap}
                runs = store_plant_runs(settings, data_cfg, None)
                path = save_event_runs((workdir or Path(tmp)).resolve() / f"runs-{plant}.npz", runs)
                sim = dataclasses.replace(sim, runs_file=str(path))
                typer.echo(f"plant {plant}: {len(runs)} stored runs join its training units", err=True)
            node = PlantNode(plant, Path(tmp), seed=seed, extra={
                **sim.node_config(), "registry-dir": str(registry_dir),
                "learner": "models.federated.sim_plants:sim_plant_learner",
                "registrar": "models.federated.sim_plants:register_sim_plant_version",
            })
            typer.echo(f"plant {plant}: {sim_units} simulated units ({', '.join(kinds)}), SuperLink {superlink}, "
                       f"registry {registry_dir}", err=True)
            new = _serve(superlink, node, registry_dir, root_cert, insecure, workdir, audit_log)
    _echo({"plant": plant, "registry": str(registry_dir), "registered": new})


def _sim_plant(base: Any, items: Sequence[str]) -> Any:
    """``base`` (a :class:`~models.federated.sim_plants.SimPlant`) with the ``--sim-set`` settings."""
    fixed = {"plant", "fault-kinds", "sim-units", "seed", "runs-file"}
    cfg: dict[str, Any] = dict(base.node_config())
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key in fixed or key not in cfg:
            raise ConfigError(f"--sim-set takes KEY=VALUE with KEY one of {sorted(set(cfg) - fixed)}, got {item!r}")
        cfg[key] = value.strip()
    return type(base).from_node_config(cfg)


def _check_superlink(superlink: str, root_cert: Path | None, insecure: bool) -> None:
    """Refuse a client's connection settings before anything starts."""
    if insecure == (root_cert is not None):
        raise ConfigError("the SuperNode talks TLS: give --root-cert (the CA of the SuperLink's certificate), "
                          "or --insecure for plain HTTP on a trusted network (not both)")
    if root_cert is not None and not root_cert.is_file():
        raise ConfigError(f"--root-cert {root_cert} does not exist")
    host, _, port = superlink.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--superlink takes HOST:PORT, got {superlink!r}")


def _serve(superlink: str, node: Any, registry_dir: Path, root_cert: Path | None, insecure: bool,
           workdir: Path | None, audit_log: Path | None) -> list[dict[str, Any]]:
    """Run the plant's SuperNode until it is stopped; the versions it registered meanwhile."""
    from models.federated.deploy import federate_client

    before = {(v["name"], v["version"]) for v in registered_versions(registry_dir)}
    try:
        federate_client(superlink, node, root_certificates=root_cert.resolve() if root_cert else None,
                        insecure=insecure, workdir=workdir, audit_log=audit_log.resolve() if audit_log else None)
    except KeyboardInterrupt:
        # stopping is how a plant leaves the federation: the SuperNode is stopped by now
        typer.echo(f"plant {node.plant}: SuperNode stopped", err=True)
    return [v for v in registered_versions(registry_dir) if (v["name"], v["version"]) not in before]


@federate_app.command("local")
def local(
    data: Annotated[Path, typer.Option("--data", help="The C-MAPSS directory (train_FD00X.txt).")],
    subsets: Annotated[
        str, typer.Option("--subsets", help="Comma-separated subsets; each is split into 3 plants.")
    ] = "FD001,FD003",
    rounds: Rounds = None,
    strategy: Strategy = None,
    dp_epsilon: DpEpsilon = None,
    registry: Annotated[
        Path, typer.Option("--registry", help="Each plant registers its model in REGISTRY/<plant>.")
    ] = Path("var/federated/registries"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the plants' units and of the training.")] = 0,
    overrides: SetOpt = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="A new or empty directory for logs, audit logs and outputs (default: var/federated/runs/<time>)."),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the run may take.")] = 3600.0,
) -> None:
    """Run a whole federation of C-MAPSS plants on 127.0.0.1 (SecAgg+ on); print the summary and each plant's version."""
    with _or_fail():
        names = [s.strip() for s in subsets.split(",") if s.strip()]
        _check_strategy(strategy)
        extra = parse_overrides(overrides or [], run_config_keys(),
                                {"out-dir": "--workdir", "min-clients": "(every plant)", "secagg": "(always on)"})
        _check_data(data, names)
        run_config = _merge({"num-server-rounds": rounds, "strategy": strategy, "dp-epsilon": dp_epsilon}, extra)
        run_config = {"seed": seed, "secagg": True, **run_config}
        work = workdir or Path("var/federated/runs") / time.strftime("%Y%m%d-%H%M%S")
        if work.exists() and any(work.iterdir()):
            raise ConfigError(f"--workdir {work} is not empty: give a new or empty directory")
        from models.federated.deploy import LocalFederation, PlantNode
        from models.federated.plants import cmapss_plants

        split = cmapss_plants(data, names, seed=seed)
        registry_root = registry.resolve()
        nodes = [
            PlantNode(p.name, data.resolve(), subset=p.subset, units=",".join(map(str, p.units)), seed=seed,
                      extra={"registry-dir": str(registry_root / p.name)})
            for p in split.plants
        ]
        typer.echo(f"federation of {len(nodes)} plants ({', '.join(n.plant for n in nodes)}) on 127.0.0.1; "
                   f"logs in {work.resolve() / 'logs'}", err=True)
        with LocalFederation(nodes, workdir=work) as fed:
            result = fed.run(run_config, timeout_s=timeout)
        plants = {
            node.plant: {
                "registry": str(registry_root / node.plant),
                "audit_log": str(result.audit_logs.get(node.plant, "")),
                "registered": registered_versions(registry_root / node.plant, result.run_id),
            }
            for node in nodes
        }
    _echo({**summary(result), "dp_epsilon": run_config.get("dp-epsilon", 0.0), "workdir": str(work.resolve()),
           "registered": plants})
