"""The one MQTT client factory of GenEdge.

Every component (edge publishers, ingest, dashboard commands) builds its paho client here, so
client id, protocol version, session semantics, credentials and TLS are applied in one place::

    client = make_client(settings, client_id="edge-01-fwd")
    client.on_connect = ...
    connect(client)  # blocking: TCP (+ TLS) and CONNECT; the CONNACK arrives in the network loop
    client.loop_start()

paho's own exceptions (sockets, TLS, invalid arguments) are wrapped once here: a bad TLS file is
a :class:`~core.errors.ConfigError`, a broker that cannot be reached an :class:`~core.errors.IngestError`.
"""

from __future__ import annotations

from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from core.errors import ConfigError, IngestError
from core.settings import MqttSettings

__all__ = ["PERSISTENT_SESSION_EXPIRY_S", "MqttClient", "MqttProtocol", "connect", "make_client"]

MqttProtocol = Literal["3.1.1", "5"]
"""MQTT 3.1.1 is spoken by every broker GenEdge runs with; MQTT 5 adds shared subscriptions."""

PERSISTENT_SESSION_EXPIRY_S = 24 * 3600
"""How long an MQTT 5 broker keeps a persistent session (subscriptions, unacknowledged messages)."""

_PROTOCOLS: dict[str, MQTTProtocolVersion] = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


class MqttClient(mqtt.Client):
    """A paho client that also remembers the session its CONNECT asks for; build it with :func:`make_client`.

    paho takes MQTT 5's ``clean_start`` and CONNECT properties per ``connect`` call, not per
    client; keeping them here makes :func:`connect` send the same ones on every (re)connect.
    """

    def __init__(self, client_id: str, version: MQTTProtocolVersion, *, persistent: bool,
                 receive_maximum: int | None) -> None:
        if version == MQTTProtocolVersion.MQTTv5:  # paho refuses clean_session with MQTT 5
            super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
        else:
            super().__init__(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                             clean_session=not persistent)
        self.clean_start, self.connect_properties = _session(version, persistent, receive_maximum)


def make_client(
    settings: MqttSettings,
    *,
    client_id: str,
    protocol: MqttProtocol = "3.1.1",
    persistent: bool = False,
    receive_maximum: int | None = None,
) -> MqttClient:
    """A paho client for the broker in ``settings``, configured but not yet connected.

    Args:
        settings: broker address, keepalive, credentials (``username``/``password``) and TLS
            (``tls``, ``ca_file``, ``cert_file``, ``key_file``).
        client_id: the MQTT client id; the broker keys persistent sessions by it.
        protocol: ``"3.1.1"`` or ``"5"`` (needed for shared subscriptions).
        persistent: keep the broker's session (subscriptions and unacknowledged QoS 1 messages)
            across disconnects: ``clean_session=False`` in MQTT 3.1.1; in MQTT 5
            ``clean_start=False`` with a session expiry of :data:`PERSISTENT_SESSION_EXPIRY_S`.
            ``False``: a clean session that ends with the connection.
        receive_maximum: MQTT 5 only: unacknowledged QoS 1 messages the broker may send at a
            time (``None``: the broker's default). MQTT 3.1.1 has no such flow control.

    Returns:
        The client; call :func:`connect` to open the connection.

    Raises:
        ConfigError: ``protocol`` is unknown, the broker address is invalid, or the TLS files
            cannot be loaded.
    """
    version = _PROTOCOLS.get(protocol)
    if version is None:
        raise ConfigError(f"mqtt protocol must be one of {sorted(_PROTOCOLS)}, got {protocol!r}")
    client = MqttClient(client_id, version, persistent=persistent, receive_maximum=receive_maximum)
    try:
        client.host, client.port, client.keepalive = settings.host, settings.port, settings.keepalive_s
    except ValueError as err:
        raise ConfigError(f"invalid mqtt broker address {settings.host!r}:{settings.port}: {err}") from err
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        _set_tls(client, settings)
    return client


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


def _session(version: MQTTProtocolVersion, persistent: bool,
             receive_maximum: int | None) -> tuple[mqtt.CleanStartOption, Properties | None]:
    """The CONNECT's ``clean_start`` flag and MQTT 5 properties."""
    if version != MQTTProtocolVersion.MQTTv5:  # 3.1.1 carries the session in clean_session
        return mqtt.MQTT_CLEAN_START_FIRST_ONLY, None
    if not persistent and receive_maximum is None:
        return True, None
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    if persistent:
        props.SessionExpiryInterval = PERSISTENT_SESSION_EXPIRY_S
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return not persistent, props
