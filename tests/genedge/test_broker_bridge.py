"""A site's broker bridged to the central broker: the Mosquitto bridge that ``genedge broker bridge``
writes from ``[mqtt.bridge]``, checked as text and with two real Mosquitto brokers whose link is cut
and restored."""

from __future__ import annotations

import getpass
import json
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from core.errors import ConfigError
from core.mqtt import MqttClient, connect, make_client
from core.settings import MqttSettings, Settings
from core.wire import TOPIC_ROOT, MessageType, cmd_topic, topic_for
from genedge.broker import bridge_conf_text, bridge_plan, mosquitto_hash, write_bridge_config
from genedge.cli import app
from genedge.localservices import find_binary, free_port, wait_port
from tests._factories import unavailable, wait_for
from tests._pki import write_pki

SITE = "plant1"
BRIDGE_PASSWORD = "br1dge-pw-Kq8"
CENTRE_PASSWORD = "centre-pw-Vb3"
#: Messages the site publishes in the cut-and-restore test; a third of them before the cut, a
#: third during the outage and a third after the link is back.
N_MESSAGES = 300
OUTAGE_S = 3.0


def _any_asset(kind: MessageType) -> str:
    """The topic filter of ``kind`` for every asset of the site."""
    return f"{TOPIC_ROOT}/{SITE}/+/{kind}"


def _site_toml(tmp: Path, body: str) -> Path:
    cfg = tmp / "site.toml"
    cfg.write_text(f'[mqtt]\nsite = "{SITE}"\n[mqtt.bridge]\n{body}')
    return cfg


def _load(tmp: Path, body: str) -> Settings:
    return Settings.load(_site_toml(tmp, body))


MUTUAL_TLS = f"""host = "central.example.net"
ca_file = "/etc/genedge/ca.pem"
cert_file = "/etc/genedge/site.pem"
key_file = "/etc/genedge/site.key"
username = "site-{SITE}"
password = "{BRIDGE_PASSWORD}"
persistence_dir = "/var/lib/mosquitto"
"""


# ------------------------------------------------------------------------------ the configuration text
def test_the_bridge_goes_over_tls_with_a_persistent_session_and_the_site_topics(tmp_path: Path) -> None:
    text = bridge_conf_text(_load(tmp_path, MUTUAL_TLS))
    lines = text.splitlines()
    assert lines.index("persistence true") < lines.index(f"connection genedge-bridge-{SITE}"), "globals come first"
    for line in ("persistence_location /var/lib/mosquitto/", "max_queued_messages 100000",
                 f"max_queued_bytes {256 * 1024 * 1024}", "address central.example.net:8883",
                 "bridge_protocol_version mqttv50", "max_inflight_messages 20000", "cleansession false",
                 f"remote_clientid genedge-bridge-{SITE}",
                 f"local_clientid local.genedge-bridge-{SITE}", "restart_timeout 5 30", "notifications true",
                 f"notification_topic genedge/bridge/genedge-bridge-{SITE}/state",
                 "bridge_cafile /etc/genedge/ca.pem", "bridge_certfile /etc/genedge/site.pem",
                 "bridge_keyfile /etc/genedge/site.key", "bridge_insecure false", f"remote_username site-{SITE}",
                 f"remote_password {BRIDGE_PASSWORD}"):
        assert line in lines, line
    out = [line.split()[1] for line in lines if line.endswith(" out 1")]
    into = [line.split()[1] for line in lines if line.endswith(" in 1")]
    assert out == [_any_asset(t) for t in MessageType]
    assert into == [cmd_topic(SITE, "+")]
    assert not [t for t in out if t.endswith("/cmd")], "commands never go out: no message can loop back"
    assert all(line.startswith(("#", "topic ")) or len(line.split()) <= 3 for line in lines if line)


def test_topics_qos_protocol_and_back_off_follow_the_settings(tmp_path: Path) -> None:
    body = MUTUAL_TLS + ('out_topics = ["genedge/v1/plant1/#", "genedge/state/edge-01"]\n'
                         'in_topics = ["genedge/state/+"]\nqos = 2\nprotocol = "mqttv311"\n'
                         'restart_timeout = [1, 4]\nconnection = "hall3-to-hq"\nport = 18883\n')
    settings = _load(tmp_path, body)
    lines = bridge_conf_text(settings).splitlines()
    assert [x for x in lines if x.startswith("topic ")] == [
        "topic genedge/v1/plant1/# out 2", "topic genedge/state/edge-01 out 2", "topic genedge/state/+ in 2"]
    assert {"bridge_protocol_version mqttv311", "restart_timeout 1 4", "connection hall3-to-hq",
            "address central.example.net:18883"} <= set(lines)
    window = bridge_conf_text(_load(tmp_path, MUTUAL_TLS + "max_inflight = 500\n")).splitlines()
    assert [x for x in window if x.startswith("max_inflight_messages")] == ["max_inflight_messages 500"]
    assert bridge_plan(settings).state_topic == "genedge/bridge/hall3-to-hq/state"


def test_the_cli_writes_a_private_file_and_prints_no_secret(tmp_path: Path) -> None:
    cfg = _site_toml(tmp_path, MUTUAL_TLS)
    out = tmp_path / "conf.d"
    result = CliRunner().invoke(app, ["broker", "bridge", "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert BRIDGE_PASSWORD not in result.output
    report = json.loads(result.output)
    conf = out / "bridge.conf"
    assert report["conf"] == str(conf) and report["connection"] == f"genedge-bridge-{SITE}"
    assert report["tls"] is True and report["mutual_tls"] is True and report["username"] == f"site-{SITE}"
    assert report["in"] == [cmd_topic(SITE, "+")] and len(report["out"]) == len(MessageType)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert conf.read_text().count(BRIDGE_PASSWORD) == 1
    assert [p.name for p in out.iterdir()] == ["bridge.conf"], "no temporary file left behind"
    conf.chmod(0o644)  # written again: the file is private again
    assert CliRunner().invoke(app, ["broker", "bridge", "--config", str(cfg), "--out", str(out)]).exit_code == 0
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600


def test_config_show_masks_the_bridge_password(tmp_path: Path) -> None:
    masked = _load(tmp_path, MUTUAL_TLS).masked()
    assert masked["mqtt"]["bridge"]["password"] == "**********"
    assert BRIDGE_PASSWORD not in json.dumps(masked)


@pytest.mark.parametrize(("body", "expected"), [
    ('host = "hq"\n', "a TLS bridge needs ca_file"),
    ('host = "hq"\ntls = false\n', "unencrypted.*allow_plain_tcp = true"),
    ('host = "hq"\nca_file = "/ca.pem"\ncert_file = "/site.pem"\n', "cert_file and key_file come together"),
    ('host = "hq"\nca_file = "/ca.pem"\npassword = "x"\n', "password needs username"),
    ('host = "hq"\nca_file = "/ca.pem"\nusername = "u"\npassword = "two words"\n', "without spaces"),
    ('host = "hq"\nca_file = "/ca.pem"\nout_topics = ["genedge/v1/a b/#"]\n', "space or control character"),
    ('host = "hq"\nca_file = "/ca.pem"\nin_topics = ["genedge/#/cmd"]\n', "'#' must be a whole level and the last"),
    ('host = "hq"\nca_file = "/ca.pem"\nin_topics = ["genedge/v1/site+/cmd"]\n', "'\\+' must be a whole level"),
    ('host = "hq"\nca_file = "/ca.pem"\nout_topics = [""]\n', "1 to 65535 bytes"),
    ('host = "hq\\nconnection evil"\nca_file = "/ca.pem"\n', r"mqtt\.bridge\.host"),
    ('host = "hq"\nca_file = "/my ca.pem"\n', "ca_file .* space or control character"),
    ('host = "hq"\nca_file = "/ca.pem"\nconnection = "a b"\n', r"mqtt\.bridge\.connection"),
    ('host = "hq"\nca_file = "/ca.pem"\nrestart_timeout = [30, 5]\n', "1 <= base <= cap"),
    ('host = "hq"\nca_file = "/ca.pem"\nqos = 0\n', r"mqtt\.bridge\.qos"),
    ('host = "hq"\nca_file = "/ca.pem"\nmax_queued_messages = 0\n', r"mqtt\.bridge\.max_queued_messages"),
    ('host = "hq"\nca_file = "/ca.pem"\npasword = "typo"\n', r"mqtt\.bridge\.pasword"),
])
def test_bad_bridge_settings_are_clear_errors_without_the_value(tmp_path: Path, body: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        _load(tmp_path, body)
    assert "two words" not in str(info.value) and "typo" not in str(info.value)


def test_plain_tcp_only_when_allowed_and_nothing_without_a_bridge(tmp_path: Path) -> None:
    lines = bridge_conf_text(_load(tmp_path, 'host = "hq"\ntls = false\nallow_plain_tcp = true\n')).splitlines()
    assert "address hq:8883" in lines
    assert not any(x.startswith(("bridge_cafile", "bridge_certfile", "bridge_keyfile")) for x in lines)
    assert not any(x.startswith(("remote_username", "remote_password")) for x in lines)
    with pytest.raises(ConfigError, match=r"mqtt\.bridge is not configured"):
        write_bridge_config(Settings(), tmp_path / "none")
    with pytest.raises(ConfigError, match="carry nothing"):
        bridge_conf_text(_load(tmp_path, 'host = "hq"\nca_file = "/ca.pem"\nout_topics = []\nin_topics = []\n'))


# ------------------------------------------------------------------------------ two real brokers
@dataclass
class CentralBroker:
    """The central Mosquitto: TLS with client certificates, logins, an ACL and persistence; it
    can be stopped (the WAN cut) and started again on the same port with the same state."""

    workdir: Path
    pki: dict[str, Path]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def let_in(self, *, bridge: bool) -> None:
        """Write the password file: the centre's own login, and the bridge's with ``bridge``."""
        bridge_login = f"site-{SITE}:{mosquitto_hash(BRIDGE_PASSWORD)}\n" if bridge else ""
        (self.workdir / "passwords").write_text(bridge_login + f"centre:{mosquitto_hash(CENTRE_PASSWORD)}\n")

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads its password file again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def write_conf(self) -> None:
        self.let_in(bridge=True)
        # The bridge login: its site's data and its own state out, its site's commands in.
        (self.workdir / "acl").write_text(
            f"user site-{SITE}\n" + "".join(f"topic write {_any_asset(t)}\n" for t in MessageType)
            + f"topic read {cmd_topic(SITE, '+')}\ntopic write genedge/bridge/genedge-bridge-{SITE}/state\n\n"
            "user centre\ntopic read genedge/#\ntopic write genedge/v1/+/+/cmd\n")
        (self.workdir / "data").mkdir(exist_ok=True)
        (self.workdir / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\nuser {getpass.getuser()}\n"
            f"cafile {self.pki['ca']}\ncertfile {self.pki['server_cert']}\nkeyfile {self.pki['server_key']}\n"
            "require_certificate true\nallow_anonymous false\n"
            f"password_file {self.workdir / 'passwords'}\nacl_file {self.workdir / 'acl'}\n"
            f"persistence true\npersistence_location {self.workdir / 'data'}/\n"
            "max_queued_messages 100000\nlog_type all\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\n")

    def start(self) -> None:
        binary = find_binary("mosquitto", "/usr/sbin")
        assert binary is not None
        self.proc = subprocess.Popen([binary, "-c", str(self.workdir / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its sessions and queued messages to its persistence file and exits."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            self.proc = None


@dataclass
class SiteBroker:
    """The site's Mosquitto: anonymous on loopback for the site's own clients, with the bridge
    configuration GenEdge wrote included as a conf.d folder."""

    workdir: Path
    conf_d: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = find_binary("mosquitto", "/usr/sbin")
        assert binary is not None
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
                        f"log_type all\nlog_dest file {self.workdir / 'mosquitto.log'}\ninclude_dir {self.conf_d}\n")
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class Listener:
    """A subscriber that records each message with its arrival time; reconnects every second."""

    def __init__(self, client: MqttClient, *topics: str) -> None:
        self.got: list[tuple[float, str, bytes]] = []
        self.connects = 0
        self.client = client
        self._lock = threading.Lock()
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, *_a: object) -> None:
            self.connects += 1
            c.subscribe([(t, 1) for t in topics])

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_message = self._record
        self.client.reconnect_delay_set(1, 1)
        connect(self.client)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def _record(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.got.append((time.monotonic(), m.topic, bytes(m.payload)))

    def on(self, topic_prefix: str, before: float = float("inf")) -> list[bytes]:
        with self._lock:
            return [p for t0, t, p in self.got if t.startswith(topic_prefix) and t0 < before]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def bridged(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[CentralBroker, SiteBroker, Settings]]:
    """The two brokers, bridged by the file GenEdge wrote; ``request.param``: more [mqtt.bridge] lines."""
    if find_binary("mosquitto", "/usr/sbin") is None:
        unavailable("mosquitto is not installed: run the README's test command (it installs it)")
    pki = write_pki(tmp_path)
    (tmp_path / "centre").mkdir()
    (tmp_path / "site").mkdir()
    centre = CentralBroker(tmp_path / "centre", pki)
    centre.write_conf()
    settings = _load(tmp_path, f"""host = "127.0.0.1"
port = {centre.port}
ca_file = "{pki['ca']}"
cert_file = "{pki['client_cert']}"
key_file = "{pki['client_key']}"
username = "site-{SITE}"
password = "{BRIDGE_PASSWORD}"
restart_timeout = [1, 2]
max_queued_messages = 10000
persistence_dir = "{tmp_path / 'site'}"
{getattr(request, "param", "")}""")
    conf_d = tmp_path / "site" / "conf.d"
    write_bridge_config(settings, conf_d)
    site = SiteBroker(tmp_path / "site", conf_d)
    centre.start()
    site.start()
    try:
        yield centre, site, settings
    finally:
        site.stop()
        centre.stop()


def _centre_client(centre: CentralBroker, client_id: str, *, persistent: bool) -> MqttClient:
    settings = MqttSettings(port=centre.port, tls=True, ca_file=centre.pki["ca"], cert_file=centre.pki["client_cert"],
                            key_file=centre.pki["client_key"], username="centre", password=CENTRE_PASSWORD,
                            embedded=False)
    return make_client(settings, client_id=client_id, protocol="5", persistent=persistent)


def _site_client(site: SiteBroker, client_id: str) -> MqttClient:
    return make_client(MqttSettings(port=site.port, embedded=False), client_id=client_id, protocol="5")


def _send_command(centre: CentralBroker, topic: str, command: bytes) -> None:
    """Publish ``command`` at the centre with the centre's login (as its dashboard would)."""
    commander = _centre_client(centre, "hq-dashboard", persistent=False)
    connect(commander)
    commander.loop_start()
    try:
        assert wait_for(commander.is_connected, 10)
        commander.publish(topic, command, qos=1).wait_for_publish(10)
    finally:
        commander.disconnect()
        commander.loop_stop()


def _a_command_reaches_the_site_once(centre: CentralBroker, plant: Listener, hq: Listener) -> None:
    """The other direction: a command published at the centre reaches the site, once, and never comes back."""
    command, topic = b'{"action": "raw", "requester": "hq"}', cmd_topic(SITE, "P-101")
    _send_command(centre, topic, command)
    assert wait_for(lambda: plant.on(topic) == [command], 15), "the command did not reach the site"
    time.sleep(1.0)
    assert plant.on(topic) == [command]
    assert hq.on(topic) == [command], "the command came back from the site"


def test_a_wan_cut_loses_nothing_and_the_site_replays_in_order(
        bridged: tuple[CentralBroker, SiteBroker, Settings], record_property: Any) -> None:
    centre, site, settings = bridged
    started = time.monotonic()
    data_topic = topic_for(SITE, "P-101", MessageType.FEATURES)
    state_topic = bridge_plan(settings).state_topic
    # The centre's reader keeps its session (fixed client id, clean_start False) across the outage.
    hq = Listener(_centre_client(centre, "hq-reader", persistent=True), _any_asset(MessageType.FEATURES),
                  cmd_topic(SITE, "+"), state_topic)
    plant = Listener(_site_client(site, "edge-01-cmd"), cmd_topic(SITE, "+"))
    publisher = _site_client(site, "edge-01-pub")
    connect(publisher)
    publisher.loop_start()
    try:
        assert wait_for(lambda: b"1" in hq.on(state_topic), 15), "the bridge did not connect to the centre"
        assert publisher.is_connected() or wait_for(publisher.is_connected, 10)

        cut, restored = N_MESSAGES // 3, 2 * N_MESSAGES // 3
        restarted_at = float("inf")
        for seq in range(N_MESSAGES):
            if seq == cut:
                centre.stop()  # the WAN cut: the centre is gone, the site keeps publishing
            if seq == restored:
                time.sleep(OUTAGE_S)
                restarted_at = time.monotonic()
                # Mosquitto interleaves what it queued for a reconnecting persistent client with what
                # arrives meanwhile, so the centre's reader comes back first and the bridge after it:
                # the order measured is then the bridge's.
                centre.let_in(bridge=False)
                centre.start()
                assert wait_for(lambda: hq.connects == 2, 15), "the centre's reader did not reconnect"
                centre.let_in(bridge=True)
                centre.reload()
            info = publisher.publish(data_topic, json.dumps({"seq": seq}).encode(), qos=1)
            info.wait_for_publish(10)  # acknowledged by the site broker: from here on it is the site's to keep
            time.sleep(0.01)

        def received() -> list[int]:
            return [json.loads(p)["seq"] for p in hq.on(data_topic)]

        assert wait_for(lambda: set(received()) >= set(range(N_MESSAGES)), 30), (
            f"lost at the centre: {sorted(set(range(N_MESSAGES)) - set(received()))[:20]} ...")
        seqs = received()
        first_seen = list(dict.fromkeys(seqs))
        duplicates = len(seqs) - len(first_seen)
        assert first_seen == list(range(N_MESSAGES)), "the site replayed out of order"
        during_outage = [json.loads(p)["seq"] for p in hq.on(data_topic, before=restarted_at)]
        assert max(during_outage, default=-1) < cut, "the centre received messages while it was down"

        _a_command_reaches_the_site_once(centre, plant, hq)
        elapsed = time.monotonic() - started
        record_property("messages", N_MESSAGES)
        record_property("duplicates", duplicates)
        print(f"\nbridge cut and restored: {N_MESSAGES} messages, {len(during_outage)} received before the "
              f"restart, all {N_MESSAGES} at the centre, {duplicates} duplicates, {elapsed:.1f} s")
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        plant.close()
        hq.close()


@pytest.mark.parametrize("bridged", ['protocol = "mqttv311"\n'], indirect=True, ids=["mqttv311"])
def test_with_mqtt_311_the_centre_keeps_the_commands_of_a_site_that_is_down(
        bridged: tuple[CentralBroker, SiteBroker, Settings]) -> None:
    """MQTT 3.1.1's persistent session lives on at the centre while the link is down (Mosquitto 2.0
    opens an MQTT 5 bridge with no session expiry, so there the centre drops it with the link)."""
    centre, site, settings = bridged
    state_topic = bridge_plan(settings).state_topic
    hq = Listener(_centre_client(centre, "hq-reader", persistent=True), state_topic)
    command, topic = b'{"action": "raw"}', cmd_topic(SITE, "P-101")
    try:
        assert wait_for(lambda: b"1" in hq.on(state_topic), 15), "the bridge did not connect to the centre"
        # The agent's own persistent session at the site broker, kept on disk while the site is down.
        Listener(make_client(MqttSettings(port=site.port, embedded=False), client_id="edge-01-cmd", protocol="5",
                             persistent=True), topic).close()
        site.stop()  # the link is down: the centre sees the bridge's will
        assert wait_for(lambda: hq.on(state_topic)[-1:] == [b"0"], 15), "no will of the bridge at the centre"
        _send_command(centre, topic, command)
        site.start()
        plant = Listener(make_client(MqttSettings(port=site.port, embedded=False), client_id="edge-01-cmd",
                                     protocol="5", persistent=True), topic)
        try:
            assert wait_for(lambda: plant.on(topic) == [command], 15), "the command queued at the centre was lost"
        finally:
            plant.close()
    finally:
        hq.close()
