"""The one MQTT client factory of GenEdge.

Every component (edge publishers, ingest, dashboard commands) builds its paho client here, so
client id, protocol version, session semantics, credentials and TLS are applied in one place::

    client = make_client(settings, client_id="edge-01-fwd", component="agent")
    client.on_connect = ...
    connect(client)  # blocking: TCP (+ TLS) and CONNECT; the CONNACK arrives in the network loop
    client.loop_start()

Each component logs in with its own identity (``mqtt.identities.<component>``: user name,
password, client id), falling back to the shared ``mqtt.username``/``mqtt.password``. Plain TCP
goes only to a broker on this machine (loopback) unless ``mqtt.allow_plain_tcp`` says otherwise:
elsewhere the login and the plant's data would cross the network in clear text.

paho's own exceptions (sockets, TLS, invalid arguments) are wrapped once here: a bad TLS file is
a :class:`~core.errors.ConfigError`, a broker that cannot be reached an :class:`~core.errors.IngestError`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from core.assets import AssetConfig
from core.errors import ConfigError, IngestError
from core.settings import MqttComponent, MqttSettings

__all__ = [
    "MAX_PACKET_SIZE",
    "PERSISTENT_SESSION_EXPIRY_S",
    "Gateway",
    "MqttClient",
    "MqttProtocol",
    "asset_owners",
    "check_transport",
    "client_id_for",
    "configured_gateways",
    "connect",
    "is_loopback_host",
    "make_client",
]

MqttProtocol = Literal["3.1.1", "5"]
"""MQTT 3.1.1 is spoken by every broker GenEdge runs with; MQTT 5 adds shared subscriptions."""

PERSISTENT_SESSION_EXPIRY_S = 24 * 3600
"""How long an MQTT 5 broker keeps a persistent session (subscriptions, unacknowledged messages)."""

MAX_PACKET_SIZE = 268_435_460
"""The largest MQTT packet there can be (a 256 MiB remaining length and its fixed header)."""

_PROTOCOLS: dict[str, MQTTProtocolVersion] = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


class MqttClient(mqtt.Client):
    """A paho client that also remembers the session its CONNECT asks for; build it with :func:`make_client`.

    paho takes MQTT 5's ``clean_start`` and CONNECT properties per ``connect`` call, not per
    client; keeping them here makes :func:`connect` send the same ones on every (re)connect.
    """

    def __init__(self, client_id: str, version: MQTTProtocolVersion, *, persistent: bool,
                 receive_maximum: int | None, max_packet_size: int | None = None) -> None:
        if version == MQTTProtocolVersion.MQTTv5:  # paho refuses clean_session with MQTT 5
            super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
        else:
            super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                             clean_session=not persistent)
        self.clean_start, self.connect_properties = _session(version, persistent, receive_maximum, max_packet_size)


def make_client(
    settings: MqttSettings,
    *,
    client_id: str,
    component: MqttComponent | None = None,
    protocol: MqttProtocol = "3.1.1",
    persistent: bool = False,
    receive_maximum: int | None = None,
    max_packet_size: int | None = None,
) -> MqttClient:
    """A paho client for the broker in ``settings``, configured but not yet connected.

    Args:
        settings: broker address, keepalive, credentials (``identities``, else
            ``username``/``password``) and TLS (``tls``, ``ca_file``, ``cert_file``, ``key_file``).
        client_id: the component's own MQTT client id; the broker keys persistent sessions by it.
            The component's identity may name another (see :func:`client_id_for`).
        component: whose identity logs in (``"agent"``, ``"ingest"``, ``"dashboard"``); ``None``
            (tools, tests): the shared ``username``/``password``.
        protocol: ``"3.1.1"`` or ``"5"`` (needed for shared subscriptions).
        persistent: keep the broker's session (subscriptions and unacknowledged QoS 1 messages)
            across disconnects: ``clean_session=False`` in MQTT 3.1.1; in MQTT 5
            ``clean_start=False`` with a session expiry of :data:`PERSISTENT_SESSION_EXPIRY_S`.
            ``False``: a clean session that ends with the connection.
        receive_maximum: MQTT 5 only: unacknowledged QoS 1 messages the broker may send at a
            time (``None``: the broker's default). MQTT 3.1.1 has no such flow control.
        max_packet_size: MQTT 5 only: the largest packet the broker may send us; it drops larger
            messages for this client instead (``None``: no limit). MQTT 3.1.1 cannot ask for one.

    Returns:
        The client; call :func:`connect` to open the connection.

    Raises:
        ConfigError: ``protocol`` is unknown, the broker address is invalid, plain TCP to a
            broker on another machine without ``allow_plain_tcp``, or the TLS files cannot be loaded.
    """
    version = _PROTOCOLS.get(protocol)
    if version is None:
        raise ConfigError(f"mqtt protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
    if max_packet_size is not None and not 1 <= max_packet_size <= MAX_PACKET_SIZE:
        raise ConfigError(f"max_packet_size must be 1..{MAX_PACKET_SIZE}, got {max_packet_size}")
    check_transport(settings)
    identity = settings.identity(component)
    client = MqttClient(client_id_for(settings, component, client_id), version, persistent=persistent,
                        receive_maximum=receive_maximum, max_packet_size=max_packet_size)
    try:
        client.host, client.port, client.keepalive = settings.host, settings.port, settings.keepalive_s
    except ValueError as err:
        raise ConfigError(f"invalid mqtt broker address {settings.host!r}:{settings.port}: {err}") from err
    if identity is not None:
        password = identity.password.get_secret_value() if identity.password else None
        client.username_pw_set(identity.username, password)
    if settings.tls:
        _set_tls(client, settings)
    return client


def client_id_for(settings: MqttSettings, component: MqttComponent | None, default: str) -> str:
    """The client id ``component`` connects with: its identity's ``client_id``, else ``default``."""
    identity = settings.identity(component)
    return identity.client_id if identity is not None and identity.client_id else default


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine: ``localhost`` or a loopback address (no DNS lookup)."""
    name = host.strip().lower().strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another host name may resolve to any interface


def check_transport(settings: MqttSettings) -> None:
    """Refuse plain TCP to a broker on another machine unless ``allow_plain_tcp`` is set.

    Raises:
        ConfigError: ``tls`` is off, the host is not loopback and ``allow_plain_tcp`` is off.
    """
    if settings.tls or settings.allow_plain_tcp or is_loopback_host(settings.host):
        return
    raise ConfigError(
        f"mqtt: plain TCP to the broker at {settings.host}:{settings.port} would send the login and the plant's "
        "data unencrypted; set mqtt.tls = true (with mqtt.ca_file), or mqtt.allow_plain_tcp = true on a network "
        "you trust (brokers on this machine, 127.0.0.1 or localhost, need neither)"
    )


@dataclass(frozen=True)
class Gateway:
    """A gateway of the plant as the broker sees it: its agent, site, assets and login."""

    agent_id: str
    site: str
    assets: tuple[str, ...]
    username: str
    password: SecretStr | None = None


def configured_gateways(settings: MqttSettings, assets: Sequence[AssetConfig]) -> list[Gateway]:
    """``mqtt.gateways`` with their defaults filled in: site ``mqtt.site``, the assets of their
    site among ``assets`` (the configured ``[[assets]]``), user name the agent id.

    Raises:
        ConfigError: two gateways claim one asset.
    """
    gateways: list[Gateway] = []
    owner: dict[str, str] = {}
    for agent_id, g in sorted(settings.gateways.items()):
        site = g.site or settings.site
        ids = tuple(g.assets) or tuple(a.asset_id for a in assets if a.site == site)
        for asset_id in ids:
            if owner.setdefault(asset_id, agent_id) != agent_id:
                raise ConfigError(f"mqtt.gateways: asset {asset_id!r} is claimed by both {owner[asset_id]!r} "
                                  f"and {agent_id!r}; list it under one gateway's assets")
        gateways.append(Gateway(agent_id, site, ids, g.username or agent_id, g.password))
    return gateways


def asset_owners(gateways: Sequence[Gateway]) -> dict[str, tuple[str, str]]:
    """Asset id -> (site, gateway agent id) for ingest; each gateway also owns its own agent id
    (the topics of its births, deaths and status)."""
    return {asset_id: (g.site, g.agent_id) for g in gateways for asset_id in (g.agent_id, *g.assets)}


def connect(client: MqttClient) -> None:
    """Open the connection of a client from :func:`make_client` and send its CONNECT.

    Blocking up to the TCP connection (and TLS handshake); whether the broker accepts the
    session is reported later, by ``on_connect`` in the client's network loop.

    Raises:
        IngestError: the broker cannot be reached, the TLS handshake failed, or the CONNECT
            could not be sent.
    """
    where = f"{client.host}:{client.port}"
    try:
        rc = client.connect(client.host, client.port, client.keepalive,
                            clean_start=client.clean_start, properties=client.connect_properties)
    except (OSError, ValueError) as err:  # socket and ssl errors; ssl.CertificateError is both
        raise IngestError(f"cannot reach the MQTT broker at {where}: {err}") from err
    if rc != mqtt.MQTT_ERR_SUCCESS:
        raise IngestError(f"cannot reach the MQTT broker at {where}: {mqtt.error_string(rc)}")


def _set_tls(client: mqtt.Client, settings: MqttSettings) -> None:
    files = {"ca_file": settings.ca_file, "cert_file": settings.cert_file, "key_file": settings.key_file}
    try:
        client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None,
                       certfile=str(settings.cert_file) if settings.cert_file else None,
                       keyfile=str(settings.key_file) if settings.key_file else None)
    except (OSError, ValueError) as err:  # missing file, unreadable or mismatched PEM
        given = ", ".join(f"{name}={str(path)!r}" for name, path in files.items() if path is not None)
        raise ConfigError(f"mqtt TLS files could not be loaded ({given or 'system CA store'}): {err}") from err


def _session(version: MQTTProtocolVersion, persistent: bool, receive_maximum: int | None,
             max_packet_size: int | None) -> tuple[mqtt.CleanStartOption, Properties | None]:
    """The CONNECT's ``clean_start`` flag and MQTT 5 properties."""
    if version != MQTTProtocolVersion.MQTTv5:  # 3.1.1 carries the session in clean_session
        return mqtt.MQTT_CLEAN_START_FIRST_ONLY, None
    if not persistent and receive_maximum is None and max_packet_size is None:
        return True, None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if persistent:
        props.SessionExpiryInterval = PERSISTENT_SESSION_EXPIRY_S
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    if max_packet_size is not None:
        props.MaximumPacketSize = max_packet_size
    return not persistent, props
