"""The MQTT client factory: what it configures, how it wraps errors, and real round-trips."""

from __future__ import annotations

import re
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import SecretStr
from pydantic import ValidationError as ValidationError_

from core.errors import ConfigError, IngestError
from core.mqtt import PERSISTENT_SESSION_EXPIRY_S, MqttProtocol, connect, is_loopback_host, make_client
from core.settings import MqttIdentity, MqttSettings, Settings
from genedge.localservices import Mosquitto, find_binary, free_port
from tests._factories import mqtt_settings, unavailable, wait_for
from tests._pki import make_cert, tls_mosquitto, write_pki

PASSWORD = "s3cret-pw"


# ------------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA with a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    return write_pki(tmp_path_factory.mktemp("pki"))


@contextmanager
def tls_broker(workdir: Path, pki: dict[str, Path]) -> Iterator[int]:
    """A real Mosquitto that wants TLS, a client certificate from the test CA and a password; yields its port."""
    passwd_bin = find_binary("mosquitto_passwd", "/usr/bin")
    if passwd_bin is None:
        unavailable("mosquitto_passwd is not installed")
    passwords = workdir / "passwords"
    subprocess.run([passwd_bin, "-b", "-c", str(passwords), "genedge", PASSWORD], check=True, capture_output=True)
    passwords.chmod(0o600)
    with tls_mosquitto(workdir, pki, f"allow_anonymous false\npassword_file {passwords}\nrequire_certificate true\n") as port:
        yield port


def round_trip(publisher: mqtt.Client, subscriber: mqtt.Client, topic: str, payload: bytes) -> list[bytes]:
    """Connect both, subscribe, publish once at QoS 1; the payloads the subscriber got."""
    got: list[bytes] = []
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_a: subscribed.set()
    subscriber.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    for client in (subscriber, publisher):
        connect(client)
        client.loop_start()
    try:
        subscriber.subscribe(topic, qos=1)
        assert subscribed.wait(10), "the broker did not acknowledge the subscription"
        assert wait_for(publisher.is_connected, 10)
        publisher.publish(topic, payload, qos=1).wait_for_publish(10)
        assert wait_for(lambda: bool(got), 10)
        return got
    finally:
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()


# ------------------------------------------------------------------------------ configuration
def test_defaults_are_mqtt_3_1_1_with_a_clean_session_to_the_configured_broker() -> None:
    settings = MqttSettings(host="broker.plant", port=1999, keepalive_s=17, allow_plain_tcp=True)
    client = make_client(settings, client_id="edge-01-fwd")
    assert client._client_id == b"edge-01-fwd"
    assert client.protocol == MQTTProtocolVersion.MQTTv311
    assert client._clean_session is True
    assert (client.host, client.port, client.keepalive) == ("broker.plant", 1999, 17)
    assert client.connect_properties is None
    assert client._username is None and client._password is None
    assert client._ssl_context is None


def test_persistent_3_1_1_session_is_not_clean() -> None:
    client = make_client(MqttSettings(), client_id="ingest", persistent=True, receive_maximum=400)
    assert client.protocol == MQTTProtocolVersion.MQTTv311
    assert client._clean_session is False
    assert client.connect_properties is None  # 3.1.1 has no CONNECT properties


def test_persistent_mqtt5_session_keeps_the_queue_for_a_day_and_limits_the_flow() -> None:
    client = make_client(MqttSettings(), client_id="ingest", protocol="5", persistent=True, receive_maximum=400)
    assert client.protocol == MQTTProtocolVersion.MQTTv5
    assert client.clean_start is False
    props = client.connect_properties
    assert props is not None
    sent = props.json()  # type: ignore[no-untyped-call]
    assert sent == {"SessionExpiryInterval": PERSISTENT_SESSION_EXPIRY_S, "ReceiveMaximum": 400}
    assert PERSISTENT_SESSION_EXPIRY_S == 24 * 3600


def test_clean_mqtt5_session_starts_clean_without_properties() -> None:
    client = make_client(MqttSettings(), client_id="tool", protocol="5")
    assert client.clean_start is True
    assert client.connect_properties is None


def test_unknown_protocol_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"mqtt protocol must be one of \['3.1.1', '5'\], got '3'"):
        make_client(MqttSettings(), client_id="x", protocol="3")  # type: ignore[arg-type]


def test_credentials_come_from_the_settings() -> None:
    settings = MqttSettings(username="genedge", password=SecretStr(PASSWORD))
    client = make_client(settings, client_id="x")
    assert (client._username, client._password) == (b"genedge", PASSWORD.encode())
    assert PASSWORD not in repr(settings)


def test_each_component_logs_in_with_its_own_identity_and_client_id() -> None:
    settings = MqttSettings.model_validate({
        "username": "shared", "password": "shared-pw",
        "identities": {"agent": {"username": "gw-hall3", "password": "agent-pw"},
                       "ingest": {"username": "ingest", "password": "ingest-pw", "client_id": "ingest-a"}},
    })
    agent = make_client(settings, client_id="gw-hall3-fwd", component="agent")
    assert (agent._username, agent._password, agent._client_id) == (b"gw-hall3", b"agent-pw", b"gw-hall3-fwd")
    ingest = make_client(settings, client_id="genedge-ingest", component="ingest")
    assert (ingest._username, ingest._password, ingest._client_id) == (b"ingest", b"ingest-pw", b"ingest-a")
    # no identity of its own (and tools without a component): the shared login, as before identities
    dashboard = make_client(settings, client_id="genedge-dash-1", component="dashboard")
    assert (dashboard._username, dashboard._password) == (b"shared", b"shared-pw")
    tool = make_client(settings, client_id="tool")
    assert (tool._username, tool._password) == (b"shared", b"shared-pw")


def test_identity_passwords_are_masked_and_names_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('[mqtt.identities.agent]\nusername = "gw-1"\npassword = "agent-s3cret"\n'
                   '[mqtt.gateways.gw-1]\npassword = "gw-s3cret"\n')
    shown = repr(Settings.load(cfg).masked())
    assert "agent-s3cret" not in shown and "gw-s3cret" not in shown and "gw-1" in shown
    with pytest.raises(ValidationError_, match="username"):
        MqttIdentity(username="two words")  # would break the password file and ACL lines


@pytest.mark.parametrize("host", ["broker.plant", "10.0.0.5", "192.168.1.20"])
def test_plain_tcp_to_a_broker_on_another_machine_is_refused_unless_allowed(host: str) -> None:
    settings = MqttSettings(host=host, username="genedge", password=SecretStr(PASSWORD))
    with pytest.raises(ConfigError, match=r"mqtt.tls = true.*mqtt.allow_plain_tcp = true") as info:
        make_client(settings, client_id="x", component="agent")
    assert PASSWORD not in str(info.value)
    assert make_client(settings.model_copy(update={"allow_plain_tcp": True}), client_id="x")._ssl_context is None
    assert make_client(settings.model_copy(update={"tls": True}), client_id="x")._ssl_context is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"])
def test_a_broker_on_this_machine_needs_no_tls(host: str) -> None:
    assert is_loopback_host(host)
    make_client(MqttSettings(host=host.strip("[]")), client_id="x", component="agent")


def test_mqtt5_connect_asks_for_a_maximum_packet_size() -> None:
    client = make_client(MqttSettings(), client_id="ingest", protocol="5", max_packet_size=4_004_096)
    assert client.clean_start is True
    assert client.connect_properties is not None
    assert client.connect_properties.json() == {"MaximumPacketSize": 4_004_096}  # type: ignore[no-untyped-call]
    with pytest.raises(ConfigError, match="max_packet_size"):
        make_client(MqttSettings(), client_id="x", protocol="5", max_packet_size=0)


def test_tls_context_verifies_the_broker_against_the_ca_and_carries_the_client_certificate(pki: dict[str, Path]) -> None:
    settings = MqttSettings(tls=True, ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"])
    client = make_client(settings, client_id="x")
    ctx = client._ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    (ca,) = ctx.get_ca_certs()
    assert ca["subject"] == ((("commonName", "GenEdge test CA"),),)


def test_missing_tls_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-ca.pem"
    with pytest.raises(ConfigError, match=re.escape(f"ca_file={str(missing)!r}")) as info:
        make_client(MqttSettings(tls=True, ca_file=missing), client_id="x")
    assert isinstance(info.value.__cause__, OSError)


def test_tls_files_are_ignored_without_tls(tmp_path: Path) -> None:
    client = make_client(MqttSettings(ca_file=tmp_path / "absent.pem"), client_id="x")
    assert client._ssl_context is None


def test_unreachable_broker_is_an_ingest_error_without_secrets() -> None:
    port = free_port()  # nothing listens there
    client = make_client(MqttSettings(port=port, username="genedge", password=SecretStr(PASSWORD)), client_id="x")
    with pytest.raises(IngestError, match=f"cannot reach the MQTT broker at 127.0.0.1:{port}") as info:
        connect(client)
    assert isinstance(info.value.__cause__, OSError)
    assert PASSWORD not in str(info.value)


# -------------------------------------------------------------------------- real round-trips
def test_round_trip_through_the_real_broker_between_both_protocols(broker: Mosquitto) -> None:
    settings = mqtt_settings(broker)
    sub = make_client(settings, client_id="t-sub", protocol="5", persistent=True, receive_maximum=10)
    pub = make_client(settings, client_id="t-pub")
    assert round_trip(pub, sub, "genedge/v1/plant1/pump-01/readings", b"hello") == [b"hello"]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_persistent_session_gets_what_was_published_while_it_was_away(broker: Mosquitto, protocol: MqttProtocol) -> None:
    settings = mqtt_settings(broker)
    topic = "genedge/v1/plant1/pump-01/features"
    sub = make_client(settings, client_id="t-durable", protocol=protocol, persistent=True)
    round_trip(make_client(settings, client_id="t-pub-1"), sub, topic, b"first")

    pub = make_client(settings, client_id="t-pub-2")
    connect(pub)
    pub.loop_start()
    pub.publish(topic, b"while away", qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()

    got: list[bytes] = []
    back = make_client(settings, client_id="t-durable", protocol=protocol, persistent=True)
    back.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    connect(back)  # no new subscription: the broker kept the old one with the session
    back.loop_start()
    try:
        assert wait_for(lambda: bool(got), 10)
        assert got == [b"while away"]
    finally:
        back.disconnect()
        back.loop_stop()


def test_receive_maximum_bounds_the_first_window_of_a_real_broker(broker: Mosquitto) -> None:
    """MQTT 5 flow control as ingest uses it: with manual acks, the broker sends ``receive_maximum``
    messages and waits. Only the first window is a bound to rely on: Mosquitto 2.0.11 sends a
    whole new window for every acknowledgement, so ingest also stops reading at its own cap
    (tests/ingest/test_ingest_mqtt.py::test_store_outage_loses_nothing)."""
    settings = mqtt_settings(broker)
    topic = "genedge/v1/plant1/pump-01/readings"
    got: list[mqtt.MQTTMessage] = []
    sub = make_client(settings, client_id="t-flow", protocol="5", persistent=True, receive_maximum=5)
    sub.manual_ack_set(True)
    sub.on_message = lambda _c, _u, m: got.append(m)
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    pub = make_client(settings, client_id="t-flow-pub")
    for client in (sub, pub):
        connect(client)
        client.loop_start()
    try:
        sub.subscribe(topic, qos=1)
        assert subscribed.wait(10)
        assert wait_for(pub.is_connected, 10)
        for i in range(20):
            pub.publish(topic, str(i).encode(), qos=1).wait_for_publish(10)
        assert wait_for(lambda: len(got) >= 5, 10)
        assert not wait_for(lambda: len(got) > 5, 1.5), "the broker sent more than the receive maximum"
        sub.on_message = lambda _c, _u, m: (got.append(m), sub.ack(m.mid, m.qos))
        for m in list(got):
            sub.ack(m.mid, m.qos)
        assert wait_for(lambda: len(got) == 20, 10), len(got)
        assert [bytes(m.payload) for m in got] == [str(i).encode() for i in range(20)]
    finally:
        for client in (pub, sub):
            client.disconnect()
            client.loop_stop()


def test_mutual_tls_and_password_against_a_real_broker(pki: dict[str, Path], tmp_path: Path) -> None:
    with tls_broker(tmp_path, pki) as port:
        settings = MqttSettings(port=port, username="genedge", password=SecretStr(PASSWORD), tls=True,
                                ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"])
        sub = make_client(settings, client_id="tls-sub", protocol="5", persistent=True)
        pub = make_client(settings, client_id="tls-pub")
        assert round_trip(pub, sub, "genedge/v1/plant1/pump-01/status", b"secure") == [b"secure"]

        refused: list[Any] = []
        wrong = make_client(settings.model_copy(update={"password": SecretStr("wrong")}), client_id="tls-wrong")
        wrong.on_connect = lambda _c, _u, _f, rc, _p=None: refused.append(rc)
        connect(wrong)  # TLS is fine; the broker answers the bad password in its CONNACK
        wrong.loop_start()
        try:
            assert wait_for(lambda: bool(refused), 10)
            assert refused[0].is_failure
        finally:
            wrong.disconnect()
            wrong.loop_stop()


def test_broker_certificate_from_another_ca_is_an_ingest_error(pki: dict[str, Path], tmp_path: Path) -> None:
    with tls_broker(tmp_path, pki) as port:
        other = tmp_path / "other-ca.pem"
        other_key = ec.generate_private_key(ec.SECP256R1())
        other.write_bytes(make_cert("Some other CA", other_key, None, other_key).public_bytes(serialization.Encoding.PEM))
        client = make_client(MqttSettings(port=port, tls=True, ca_file=other), client_id="tls-untrusting")
        with pytest.raises(IngestError, match="certificate verify failed") as info:
            connect(client)
        assert isinstance(info.value.__cause__, ssl.SSLError)
