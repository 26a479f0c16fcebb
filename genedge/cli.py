"""The ``genedge`` command line: one console script, Typer groups.

This module mounts the groups; what they share is in :mod:`genedge._common`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from core.errors import GenEdgeError
from genedge._common import AgentConfigOpt, BrokerOpt, ConfigOpt, DbOpt, load_settings, setup_logging, stop_on_signals
from genedge.agent_cli import agent_app
from genedge.broker_cli import broker_app
from genedge.federate_cli import federate_app
from genedge.maintain_cli import ingest_maintain
from genedge.prescribe_cli import prescribe_app
from genedge.rul_cli import models_app, rul_app
from genedge.synth_cli import synth_app
from genedge.whatif_cli import whatif_app

app = typer.Typer(help="GenEdge: edge predictive and prescriptive maintenance.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
ingest_app = typer.Typer(help="MQTT -> database ingest service.", no_args_is_help=True)
sim_app = typer.Typer(help="Physics-based plant simulator.", no_args_is_help=True)
dashboard_app = typer.Typer(help="The Streamlit plant dashboard.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(ingest_app, name="ingest")
app.add_typer(sim_app, name="sim")
app.add_typer(agent_app, name="agent")
app.add_typer(broker_app, name="broker")
app.add_typer(rul_app, name="rul")
app.add_typer(models_app, name="models")
app.add_typer(synth_app, name="synth")
app.add_typer(prescribe_app, name="prescribe")
app.add_typer(whatif_app, name="whatif")
app.add_typer(federate_app, name="federate")
app.add_typer(dashboard_app, name="dashboard")
ingest_app.command("maintain")(ingest_maintain)


@config_app.command("show")
def config_show(config: ConfigOpt = None, agent_config: AgentConfigOpt = None,
                as_json: Annotated[bool, typer.Option("--json")] = True) -> None:
    """Print the effective configuration, secrets masked."""
    typer.echo(json.dumps(load_settings(config, agent_config=agent_config).masked(), indent=2, default=str))


@ingest_app.command("run")
def ingest_run(
    config: ConfigOpt = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    client_id: Annotated[str | None, typer.Option(help="MQTT client id (one per worker)")] = None,
    share_group: Annotated[str | None, typer.Option(help="MQTT 5 shared subscription group")] = None,
    protocol: Annotated[str, typer.Option(help="MQTT protocol: 5 or 3.1.1")] = "5",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Subscribe to genedge/v1/# and store every message; dead-letter the bad ones."""
    from core.mqtt import asset_owners, configured_gateways
    from ingest.service import IngestService
    from ingest.store import Store

    setup_logging(verbose)
    settings = load_settings(config, db, broker)
    overrides = {"client_id": client_id, "share_group": share_group}
    ingest = settings.ingest.model_copy(update={k: v for k, v in overrides.items() if v})
    mqtt = settings.mqtt
    if client_id and mqtt.identities.ingest is not None:  # the flag wins over the identity's client id too
        identities = mqtt.identities.model_copy(update={"ingest": mqtt.identities.ingest.model_copy(
            update={"client_id": client_id})})
        mqtt = mqtt.model_copy(update={"identities": identities})
    owners = asset_owners(configured_gateways(mqtt, settings.assets))
    store = Store(settings.store.url.get_secret_value())
    service = IngestService(mqtt, ingest, store, batch_size=settings.store.batch_size, protocol=protocol,
                            owners=owners)
    stop = stop_on_signals()
    stats = service.run(stop)
    typer.echo(json.dumps(stats.__dict__))


@sim_app.command("run")
def sim_run(
    config: ConfigOpt = None,
    broker: BrokerOpt = None,
    duration: Annotated[float | None, typer.Option(help="seconds to run (default: until interrupted)")] = None,
    publisher_id: Annotated[str, typer.Option(help="publisher id in every message")] = "sim",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Publish the simulated plant's live readings to the configured MQTT broker."""
    import asyncio

    from core.sim import default_plant
    from edge_agent.publisher import MqttPublisher
    from genedge.demo import publish_simulation

    setup_logging(verbose)
    settings = load_settings(config, None, broker)
    stop = stop_on_signals()
    publisher = MqttPublisher(settings.mqtt, publisher_id)
    publisher.connect()
    assets = settings.assets or default_plant(settings.mqtt.site)
    try:
        asyncio.run(publish_simulation(settings, assets, publisher, stop, duration))
    finally:
        publisher.flush(30)
        publisher.close()
    typer.echo(json.dumps({"published": publisher.acked, "assets": len(assets)}))


@app.command("demo")
def demo(
    config: ConfigOpt = None,
    db: DbOpt = None,
    broker: BrokerOpt = None,
    headless: Annotated[bool, typer.Option("--headless", help="no dashboard; stop after --duration")] = False,
    duration: Annotated[float | None, typer.Option(help="seconds to run (headless default 30)")] = None,
    agent_config: AgentConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the whole plant: broker, simulated plant, ingest and (unless --headless) the dashboard.

    Prints one JSON line last: {"published", "stored", "dead_lettered", "duplicates"} (readings).
    """
    from genedge.demo import Demo, fresh_demo_store

    setup_logging(verbose)
    settings = fresh_demo_store(load_settings(config, db, broker, agent_config))
    stop = stop_on_signals()
    run_for = duration if duration is not None else (30.0 if headless else None)
    if not headless:
        from genedge.demo import check_demo_logins

        check_demo_logins(settings)  # before anything starts: a refused dashboard leaves nothing running
    demo_ = Demo(settings)
    demo_.start()
    dashboard = None
    if not headless:
        from genedge.demo import start_demo_dashboard

        dashboard = start_demo_dashboard(settings, config)
    try:
        stop.wait(run_for)
    finally:
        if dashboard is not None:
            dashboard.terminate()
        result = demo_.stop()
    typer.echo(json.dumps(result.summary()))
    if demo_.errors:
        raise SystemExit(1)


@dashboard_app.command("run")
def dashboard_run(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Serve the dashboard against the configured store until interrupted."""
    from dashboard.launch import dashboard_url, start_dashboard, wait_ready

    settings = load_settings(config, db)
    d = settings.dashboard
    env = {"GENEDGE_STORE__URL": settings.store.url.get_secret_value()}
    proc = start_dashboard(config, d.host, d.port, env, tls_cert_file=d.tls_cert_file, tls_key_file=d.tls_key_file)
    url = dashboard_url(d.host, d.port, tls=d.tls_cert_file is not None)
    wait_ready(url, 60, proc=proc)
    typer.echo(f"dashboard: {url}", err=True)
    stop = stop_on_signals()
    while not stop.wait(1.0):
        if proc.poll() is not None:
            raise SystemExit(proc.returncode)
    proc.terminate()


@dashboard_app.command("add-user")
def dashboard_add_user(
    name: str,
    role: Annotated[str, typer.Option(help="operator | engineer")] = "operator",
) -> None:
    """Print the settings entry for a new dashboard user (asks for the password)."""
    from dashboard.auth import hash_password

    if role not in {"operator", "engineer"}:
        raise typer.BadParameter(f"role must be operator or engineer, got {role!r}")
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    typer.echo(f'[dashboard.users.{name}]\nrole = "{role}"\npassword_hash = "{hash_password(password)}"')


def main() -> None:
    try:
        app()
    except GenEdgeError as err:
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(2) from err


if __name__ == "__main__":
    main()
