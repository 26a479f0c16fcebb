"""``genedge broker``: the embedded demo broker, the login and ACL files of a real one and a site
broker's bridge to the centre (mounted by :mod:`genedge.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genedge._common import ConfigOpt, load_settings, stop_on_signals

broker_app = typer.Typer(
    help="MQTT broker: the embedded demo broker (no sub-command), the files that secure Mosquitto (acl) "
    "and the bridge of a site broker to the centre (bridge).",
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
    """Run the embedded MQTT broker (Mosquitto, MQTT 5 and 3.1.1, anonymous) until interrupted.

    Needs Debian's mosquitto package; the broker keeps nothing on disk and stops with this command.
    """
    if ctx.invoked_subcommand is not None:
        return
    from genedge.broker import EmbeddedBroker

    stop = stop_on_signals()
    with EmbeddedBroker(host, port, allow_remote=allow_anonymous_remote):
        typer.echo(f"embedded Mosquitto broker listening on {host}:{port}", err=True)
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


@broker_app.command("bridge")
def broker_bridge(
    out: Annotated[Path, typer.Option("--out", help="folder for bridge.conf")],
    config: ConfigOpt = None,
) -> None:
    """Write the site broker's Mosquitto bridge to the central broker (bridge.conf, mode 0600).

    From [mqtt.bridge] and mqtt.site: this site's data goes out and its commands come in, over
    TLS at QoS 1 on a persistent session; the site broker queues what cannot be sent while the
    link is down. Prints what it wrote as JSON; never the password.
    """
    from genedge.broker import bridge_plan, write_bridge_config

    settings = load_settings(config)
    conf = write_bridge_config(settings, out)
    typer.echo(json.dumps({"conf": str(conf), **bridge_plan(settings).as_json()}))
