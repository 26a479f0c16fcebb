"""Least privilege on the broker: a real Mosquitto with TLS, the password file and the ACL that
``genedge broker acl`` writes from the plant's configuration, and every GenEdge component logging
in with its own identity."""

from __future__ import annotations

import json
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from core.errors import ConfigError
from core.mqtt import MqttClient, asset_owners, configured_gateways, connect, make_client
from core.settings import MqttComponent, MqttIdentity, MqttSettings, Settings
from core.wire import cmd_topic, encode, host_state_topic, topic_for
from dashboard._commands import request_raw_snapshot
from edge_agent.publisher import MqttPublisher, ReliablePublisher
from edge_agent.queue import DiskQueue
from genedge.broker import acl_text, broker_gateways, write_broker_files
from genedge.cli import app
from genedge.localservices import find_binary
from ingest.service import IngestService
from ingest.store import Store
from tests._factories import good_reading, unavailable, wait_for
from tests._pki import tls_mosquitto, write_pki

PASSWORDS = {"edge-01": "edge-01-pw-Xq7", "edge-02": "edge-02-pw-Zr4", "ingest": "ingest-pw-Lm2", "dashboard": "dash-pw-Tt9"}
PLANT = f"""
[mqtt]
site = "plant1"
[mqtt.identities.ingest]
username = "ingest"
password = "{PASSWORDS['ingest']}"
[mqtt.identities.dashboard]
username = "dashboard"
password = "{PASSWORDS['dashboard']}"
[mqtt.gateways.edge-01]
assets = ["P-101"]
password = "{PASSWORDS['edge-01']}"
[mqtt.gateways.edge-02]
site = "plant2"
assets = ["P-201"]
password = "{PASSWORDS['edge-02']}"
"""


@dataclass
class SecuredBroker:
    port: int
    ca: Path
    plant: Settings
    log: Path

    def settings(self, **identities: MqttIdentity | None) -> MqttSettings:
        """Client settings over TLS with the plant's identities, ``identities`` replacing some."""
        ids = self.plant.mqtt.identities.model_copy(update=identities)
        return MqttSettings(port=self.port, tls=True, ca_file=self.ca, embedded=False, identities=ids)

    def agent(self, gateway: str, password: str | None = None) -> MqttSettings:
        """Client settings of the agent of ``gateway`` (its own login)."""
        return self.settings(agent=MqttIdentity(username=gateway, password=password or PASSWORDS[gateway]))


def _plant(tmp: Path) -> Settings:
    cfg = tmp / "plant.toml"
    cfg.write_text(PLANT)
    return Settings.load(cfg)


def _mosquitto(workdir: Path, pki: dict[str, Path], auth_conf: str) -> AbstractContextManager[int]:
    """A real Mosquitto on a TLS listener with ``auth_conf`` (the lines genedge broker acl wrote)."""
    return tls_mosquitto(workdir, pki, "log_type all\n" + auth_conf)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[SecuredBroker]:
    if find_binary("mosquitto_passwd", "/usr/bin") is None:
        unavailable("mosquitto_passwd is not installed (it comes with mosquitto)")
    d = tmp_path_factory.mktemp("secured")
    plant = _plant(d)
    files = write_broker_files(plant, d / "broker")
    assert files.hashed_by.endswith("mosquitto_passwd -U")
    with _mosquitto(d, pki, files.conf.read_text()) as port:
        yield SecuredBroker(port, pki["ca"], plant, d / "mosquitto.log")


class Watcher:
    """A subscriber that records what the broker delivers to it."""

    def __init__(self, settings: MqttSettings, component: MqttComponent | None, client_id: str, *topics: str,
                 protocol: Any = "3.1.1", persistent: bool = False) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.refused: list[Any] = []
        self.disconnects = 0
        self.client: MqttClient = make_client(settings, client_id=client_id, component=component,
                                              protocol=protocol, persistent=persistent)
        subscribed = threading.Event()
        connected = threading.Event()

        def on_connect(c: mqtt.Client, _u: object, _f: object, rc: Any, _p: object = None) -> None:
            if rc.is_failure:
                self.refused.append(rc)
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        self.client.on_disconnect = lambda *_a: setattr(self, "disconnects", self.disconnects + 1)
        connect(self.client)
        self.client.loop_start()
        assert connected.wait(10), "no CONNACK"
        if topics and not self.refused:
            self.client.subscribe([(t, 1) for t in topics])
            assert subscribed.wait(10)

    def topics(self) -> list[str]:
        return [t for t, _ in self.got]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_as(settings: MqttSettings, component: MqttComponent, client_id: str, messages: list[tuple[str, bytes]],
               *, retain: bool = False) -> None:
    """Connect with ``component``'s login and publish each message at QoS 1 (the broker acknowledges
    a denied publish too, without forwarding it)."""
    client = make_client(settings, client_id=client_id, component=component)
    connect(client)
    client.loop_start()
    try:
        assert wait_for(client.is_connected, 10)
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


# ------------------------------------------------------------------------------ the files
def test_the_acl_gives_each_login_only_its_own_topics(tmp_path: Path) -> None:
    plant = _plant(tmp_path)
    text = acl_text(broker_gateways(plant), ingest_user="ingest", ingest_client_id="genedge-ingest",
                    dashboard_user="dashboard")
    sections = {block.split("\nuser ")[1].split("\n")[0]: block for block in text.split("\n\n") if "\nuser " in block}
    assert set(sections) == {"edge-01", "edge-02", "ingest", "dashboard"}
    edge1 = [line for line in sections["edge-01"].splitlines() if line.startswith("topic")]
    assert all("plant1/P-101/" in line or "plant1/edge-01/" in line or "genedge/state/" in line for line in edge1)
    assert "topic read genedge/v1/plant1/P-101/cmd" in edge1 and not any("write" in x and "/cmd" in x for x in edge1)
    assert [x for x in edge1 if "genedge/state" in x] == ["topic write genedge/state/edge-01", "topic read genedge/state/+"]
    ingest = [line for line in sections["ingest"].splitlines() if line.startswith("topic")]
    assert ingest == ["topic read genedge/v1/#", "topic write genedge/state/genedge-ingest"]
    dashboard = [line for line in sections["dashboard"].splitlines() if line.startswith("topic")]
    assert dashboard == ["topic write genedge/v1/plant1/P-101/cmd", "topic write genedge/v1/plant2/P-201/cmd"]
    assert "\ntopic" not in text.split("\nuser ")[0], "nothing for anonymous clients"


def test_the_cli_writes_a_private_hashed_password_file_and_prints_no_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "plant.toml"
    cfg.write_text(PLANT)
    out = tmp_path / "broker"
    result = CliRunner().invoke(app, ["broker", "acl", "--config", str(cfg), "--out", str(out), "--hash-here"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["users"] == ["edge-01", "edge-02", "ingest", "dashboard"]
    text = (out / "passwords").read_text()
    assert stat.S_IMODE((out / "passwords").stat().st_mode) == 0o600
    assert [line.split(":")[0] for line in text.splitlines()] == report["users"]
    assert all(line.split(":", 1)[1].startswith("$7$101$") for line in text.splitlines())
    for secret in PASSWORDS.values():
        assert secret not in text and secret not in result.output
    assert not list(out.glob(".*")), "no plain-text file left behind"
    assert "use_username_as_clientid true" in (out / "genedge.conf").read_text()


def test_missing_logins_are_clear_errors_without_secrets(tmp_path: Path) -> None:
    plant = _plant(tmp_path)
    no_ingest = plant.model_copy(update={"mqtt": plant.mqtt.model_copy(update={
        "identities": plant.mqtt.identities.model_copy(update={"ingest": None})})})
    with pytest.raises(ConfigError, match=r"mqtt\.identities\.ingest is not configured"):
        write_broker_files(no_ingest, tmp_path / "a")
    gateways = dict(plant.mqtt.gateways)
    gateways["edge-02"] = gateways["edge-02"].model_copy(update={"password": None})
    no_password = plant.model_copy(update={"mqtt": plant.mqtt.model_copy(update={"gateways": gateways})})
    with pytest.raises(ConfigError, match=re.escape("gateway edge-02 (user 'edge-02') has no password")) as info:
        write_broker_files(no_password, tmp_path / "b")
    assert not any(secret in str(info.value) for secret in PASSWORDS.values())
    clash = plant.mqtt.identities.model_copy(update={"dashboard": MqttIdentity(username="ingest", password="x" * 12)})
    with pytest.raises(ConfigError, match="'ingest' is used by both"):
        write_broker_files(plant.model_copy(update={"mqtt": plant.mqtt.model_copy(update={"identities": clash})}),
                           tmp_path / "c")
    with pytest.raises(ConfigError, match="no gateway to let in"):
        broker_gateways(Settings())


def test_hashes_written_without_mosquitto_passwd_log_in(tmp_path: Path, pki: dict[str, Path]) -> None:
    plant = _plant(tmp_path)
    files = write_broker_files(plant, tmp_path / "broker", use_mosquitto_passwd=False)
    assert files.hashed_by.startswith("genedge")
    with _mosquitto(tmp_path, pki, files.conf.read_text()) as port:
        broker = SecuredBroker(port, pki["ca"], plant, tmp_path / "mosquitto.log")
        good = Watcher(broker.settings(), "ingest", "genedge-ingest")
        wrong = Watcher(broker.settings(ingest=MqttIdentity(username="ingest", password="not-it")), "ingest", "x")
        try:
            assert not good.refused
            assert wrong.refused and wrong.refused[0].is_failure
        finally:
            good.close()
            wrong.close()


# ------------------------------------------------------------------------- the real broker
def test_anonymous_and_wrong_password_clients_are_refused(secured: SecuredBroker) -> None:
    anonymous = Watcher(MqttSettings(port=secured.port, tls=True, ca_file=secured.ca), None, "anon")
    wrong = Watcher(secured.agent("edge-01", password="guess"), "agent", "edge-01-fwd")
    try:
        assert anonymous.refused and anonymous.refused[0].is_failure
        assert wrong.refused and wrong.refused[0].is_failure
    finally:
        anonymous.close()
        wrong.close()


def test_an_agent_publishes_only_its_own_assets_data(secured: SecuredBroker) -> None:
    everything = Watcher(secured.settings(), "ingest", "watch-data", "genedge/v1/#")
    states = Watcher(secured.agent("edge-02"), "agent", "watch-state", "genedge/state/#")
    agent = MqttPublisher(secured.agent("edge-01"), "edge-01")
    agent.connect()
    try:
        denied = [topic_for("plant2", "P-201", "readings"),  # another gateway's site and asset
                  topic_for("plant1", "P-102", "features"),  # an asset of its site it does not serve
                  cmd_topic("plant1", "P-101")]  # a command, even to its own asset
        for topic in denied:
            agent.publish_raw(topic, encode(good_reading("edge-01", 0, asset=topic.split("/")[3])))
        agent.publish_raw(host_state_topic("genedge-ingest"), b'{"online": false}')  # another host's state
        agent.publish_raw(host_state_topic("edge-01"), b'{"online": true}')  # its own state: allowed
        agent.publish(secured.plant.mqtt.site, good_reading("edge-01", 1, asset="P-101"))
        assert agent.flush(10)
        # One connection's messages arrive in order: once the last one is here, the others would be too.
        assert wait_for(lambda: everything.topics() == [topic_for("plant1", "P-101", "readings")], 10), everything.topics()
        assert wait_for(lambda: states.topics() == [host_state_topic("edge-01")], 10), states.topics()
    finally:
        agent.close()
        everything.close()
        states.close()
    assert "Denied PUBLISH from edge-01" in secured.log.read_text()


def test_the_dashboard_sends_commands_and_nothing_else(secured: SecuredBroker) -> None:
    agent = Watcher(secured.agent("edge-01"), "agent", "edge-01-fwd", "genedge/v1/plant1/+/cmd")
    everything = Watcher(secured.settings(), "ingest", "watch-cmd", "genedge/v1/#")
    try:
        publish_as(secured.settings(), "dashboard", "dash-forger", [
            (topic_for("plant1", "P-101", "readings"), encode(good_reading("edge-01", 0, asset="P-101"))),  # fake data
            (topic_for("plant1", "P-101", "features"), b"{}"),
            (cmd_topic("plant1", "P-999"), b'{"action": "raw"}'),  # not a configured asset
        ])
        topic = request_raw_snapshot(secured.settings(), "plant1", "P-101")  # the dashboard's own code
        assert wait_for(lambda: everything.topics() == [topic], 10), everything.topics()
        assert wait_for(lambda: [t for t, _ in agent.got] == [topic], 10), agent.got
        assert json.loads(agent.got[0][1])["action"] == "raw"
    finally:
        agent.close()
        everything.close()


@pytest.mark.parametrize("username_as_clientid", [True, False], ids=["generated-conf", "without-username-as-clientid"])
def test_a_stolen_client_id_cannot_take_over_ingest(tmp_path: Path, pki: dict[str, Path],
                                                     username_as_clientid: bool) -> None:
    """The thief knows ingest's client id and has another component's login. With the generated
    configuration the broker keys sessions by user name: ingest is never kicked off, keeps its
    session and stores the agent's data; the thief gets nothing. Without that line (the control)
    the same thief does kick ingest off, which is why the generated configuration has it."""
    plant = _plant(tmp_path)
    files = write_broker_files(plant, tmp_path / "broker")
    conf = files.conf.read_text()
    if not username_as_clientid:
        conf = conf.replace("use_username_as_clientid true", "use_username_as_clientid false")
    with _mosquitto(tmp_path, pki, conf) as port:
        broker = SecuredBroker(port, pki["ca"], plant, tmp_path / "mosquitto.log")
        store = Store(f"sqlite:///{tmp_path / 'ingest.db'}")
        service = IngestService(broker.settings(), plant.ingest, store,
                                owners=asset_owners(configured_gateways(plant.mqtt, plant.assets)))
        assert service.client_id == "genedge-ingest"
        stop = threading.Event()
        worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
        worker.start()
        thief = None
        try:
            assert service.connected.wait(15)
            thief = Watcher(broker.settings(), "dashboard", "genedge-ingest", "genedge/v1/#", protocol="5",
                            persistent=True)
            if not username_as_clientid:
                assert wait_for(lambda: service.stats.reconnects >= 1 or not service.connected.is_set(), 10)
                return
            # edge-02 may not post ingest's retained state: edge-01, waiting for ingest, still sends.
            publish_as(broker.agent("edge-02"), "agent", "edge-02-fwd",
                       [(host_state_topic("genedge-ingest"), b'{"online": false}')], retain=True)
            queue = DiskQueue(tmp_path / "edge-01.db")
            agent = ReliablePublisher(broker.agent("edge-01"), "plant1", "edge-01", queue,
                                      assets=[("P-101", ["vib_de"])], primary_host="genedge-ingest").start()
            agent.send(good_reading("edge-01", agent.next_seq(), asset="P-101"))
            agent.send(good_reading("edge-02", agent.next_seq(), asset="P-101"))  # not its name: not_owner
            assert wait_for(lambda: store.count_readings("edge-01") == 1 and store.count_dead_letters() == 1, 20)
            agent.close()
            assert [d.reason for d in store.dead_letters()] == ["not_owner"]
            assert service.stats.reconnects == 0 and service.connected.is_set()
            assert thief.got == [] and thief.disconnects == 0
        finally:
            stop.set()
            worker.join(30)
            if thief is not None:
                thief.close()


def test_components_refuse_plain_tcp_to_a_broker_on_another_machine(tmp_path: Path) -> None:
    remote = MqttSettings(host="broker.plant.local", identities={"agent": {"username": "gw", "password": "pw-123"}})
    with pytest.raises(ConfigError, match=r"mqtt\.tls = true"):
        ReliablePublisher(remote, "plant1", "gw", DiskQueue(tmp_path / "q.db"))
    with pytest.raises(ConfigError, match=r"mqtt\.tls = true"):
        IngestService(remote, Settings().ingest, Store(f"sqlite:///{tmp_path / 'x.db'}"))
    with pytest.raises(ConfigError, match=r"mqtt\.tls = true"):
        request_raw_snapshot(remote, "plant1", "P-101")
