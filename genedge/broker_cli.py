"""``genedge broker``: the embedded demo broker, and the login and ACL files of a real one (mounted by :mod:`genedge.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genedge._common import ConfigOpt, load_settings, stop_on_signals

broker_app = typer.Typer(
    help="MQTT broker: the embedded demo broker (no sub-command) and the files that secure Mosquitto (acl).",
    invoke_without_command=True,
)


@broker_app.callback()
def broker_run(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on (loopback only, unless --allow-anonymous-remote)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 1883,
    allow_anonymous_remote: Annotated[bool, typer.Option(
        "--allow-anonymous-remote", help="listen on a non-loopback address although anyone may connect and publish")]
    = False,
) -> None:
    """Run the embedded MQTT broker (amqtt, MQTT 3.1.1, anonymous) until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    from genedge.broker import EmbeddedBroker

    stop = stop_on_signals()
    with EmbeddedBroker(host, port, allow_remote=allow_anonymous_remote):
        typer.echo(f"embedded broker listening on {host}:{port}", err=True)
        stop.wait()


@broker_app.command("acl")
def broker_acl(
    out: Annotated[Path, typer.Option("--out", help="folder for passwords, acl and genedge.conf")],
    config: ConfigOpt = None,
    hash_here: Annotated[bool, typer.Option(
        "--hash-here", help="hash the passwords in GenEdge even when mosquitto_passwd is installed")] = False,
) -> None:
    """Write Mosquitto's password file, ACL and the mosquitto.conf lines that use them.

    From the configured gateways (mqtt.gateways, or edge.agent_id with mqtt.identities.agent),
    their assets and the identities of ingest and the dashboard. Prints what it wrote as JSON;
    never a password.
    """
    from genedge.broker import write_broker_files

    files = write_broker_files(load_settings(config), out, use_mosquitto_passwd=not hash_here)
    typer.echo(json.dumps({"passwords": str(files.passwords), "acl": str(files.acl), "conf": str(files.conf),
                           "users": list(files.users), "hashed_by": files.hashed_by}))
