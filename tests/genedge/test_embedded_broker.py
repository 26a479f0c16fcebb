"""The demo's embedded broker: a real Mosquitto child process that carries MQTT 3.1.1 and 5, frees
its port when stopped, never outlives its parent and says what to install when Mosquitto is missing."""

from __future__ import annotations

import queue
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import ConfigError, GenEdgeError, IngestError
from core.mqtt import MqttProtocol, connect, make_client
from core.settings import MqttSettings
from genedge import broker as broker_module
from genedge.broker import EmbeddedBroker, port_open
from genedge.localservices import free_port
from tests._factories import wait_for


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_a_message_goes_through_and_stop_frees_the_port(protocol: MqttProtocol) -> None:
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port).start()
    pid = broker.pid
    assert pid is not None and _alive(pid)
    got: queue.Queue[tuple[str, bytes]] = queue.Queue()
    client = make_client(MqttSettings(port=port, embedded=False), client_id=f"t-{protocol}", protocol=protocol)
    client.on_connect = lambda c, *_a: c.subscribe("genedge/test/#", qos=1)
    subscribed = []
    client.on_subscribe = lambda *_a: subscribed.append(True)
    client.on_message = lambda _c, _u, m: got.put((m.topic, bytes(m.payload)))
    try:
        connect(client)
        client.loop_start()
        assert wait_for(lambda: bool(subscribed), 10), "no SUBACK"
        client.publish("genedge/test/a", b"hello", qos=1).wait_for_publish(10)
        assert got.get(timeout=10) == ("genedge/test/a", b"hello")
    finally:
        client.disconnect()
        client.loop_stop()
        broker.stop()
    assert broker.pid is None and not _alive(pid)
    assert not port_open("127.0.0.1", port)
    EmbeddedBroker("127.0.0.1", port).start().stop()  # the port is free for the next broker


def test_context_manager_stops_it_and_removes_its_files() -> None:
    port = free_port()
    with EmbeddedBroker(port=port) as broker:
        workdir = broker._workdir
        assert workdir is not None and (workdir / "mosquitto.conf").is_file()
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)
    assert not workdir.exists()


def test_a_wrong_binary_path_says_what_to_install() -> None:
    with pytest.raises(GenEdgeError, match=r"sudo apt-get install mosquitto.*\[mqtt\]") as err:
        EmbeddedBroker(port=free_port(), binary="/nonexistent/sbin/mosquitto").start()
    assert "/nonexistent/sbin/mosquitto" in str(err.value)


def test_mosquitto_missing_everywhere_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(broker_module, "MOSQUITTO_FALLBACK", tmp_path / "mosquitto")
    with pytest.raises(GenEdgeError, match=r"not found on PATH or at .*install Debian's 'mosquitto'"):
        EmbeddedBroker(port=free_port()).start()


def test_mosquittos_own_error_is_reported() -> None:
    # An address of no interface here (TEST-NET-1): Mosquitto cannot bind it and exits.
    with pytest.raises(IngestError, match=r"(?s)exited with status .*Cannot assign requested address"):
        EmbeddedBroker("192.0.2.1", free_port(), allow_remote=True).start()


def test_a_taken_port_is_refused() -> None:
    port = free_port()
    with EmbeddedBroker(port=port), pytest.raises(IngestError, match="is taken"):
        EmbeddedBroker(port=port).start()


def test_anonymous_broker_stays_on_loopback_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        EmbeddedBroker("0.0.0.0", free_port())
    assert EmbeddedBroker("0.0.0.0", free_port(), allow_remote=True).host == "0.0.0.0"  # accepted, not started


@pytest.mark.parametrize("end", ["exit", "sigkill"])
def test_the_broker_does_not_outlive_its_parent(end: str) -> None:
    """A clean exit stops it (atexit); a SIGKILLed parent takes it along (the kernel's parent-death signal)."""
    port = free_port()
    code = textwrap.dedent(f"""
        import sys, time
        from genedge.broker import EmbeddedBroker
        broker = EmbeddedBroker(port={port}).start()
        print(broker.pid, flush=True)
        sys.stdin.readline()
    """)
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None and parent.stdin is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid) and port_open("127.0.0.1", port)
    if end == "exit":
        parent.stdin.close()
    else:
        parent.kill()
    parent.wait(20)
    assert wait_for(lambda: not _alive(pid), 10), f"mosquitto {pid} outlived its parent ({end})"
    assert not port_open("127.0.0.1", port)
