"""Hostile input, surface by surface: how many inputs were tried, how many crashed something, how many
were lost, and what share of the refused ones were refused with a reason.

    .venv/bin/python -m benchmarks.hostile [--n 2000] [--seed 0]

Surfaces:

* ``wire_through_ingest``: mutated messages of every type published to a real Mosquitto and read by the
  real ingest service into SQLite. Crash: the ingest worker stops. Loss: a message neither stored nor
  dead-lettered (identical bad inputs share one dead letter by design: counted as refused once each).
  Reason: the dead letter's reason and detail are both set.
* ``wire_decode``: the same kind of mutations straight into :func:`core.wire.decode`. Crash: anything
  but a :class:`~core.errors.WireError`.
* ``commands``: mutated command payloads into the command decoder the edge agent uses.
* ``dataset_files``: mutated and random files into each dataset reader (C-MAPSS, FEMTO, CWRU, WAV).
  Crash: anything but a :class:`~core.errors.DatasetError`.
* ``settings``: mutated TOML files and environment values into :meth:`core.settings.Settings.load`, with a
  planted password that must never appear in an error. Crash: anything but a
  :class:`~core.errors.ConfigError`; a leak counts as a crash.

Writes ``benchmarks/results/hostile.json`` and ``hostile.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import tarfile
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from scipy.io import savemat, wavfile

from core import wire
from core.datasets.cmapss import read_cmapss_file
from core.datasets.cwru import read_cwru
from core.datasets.dcase import read_wav
from core.datasets.femto import iter_femto
from core.errors import ConfigError, DatasetError, WireError
from core.settings import IngestSettings, MqttSettings, Settings
from edge_agent.publisher import MqttPublisher
from genedge.localservices import mosquitto
from ingest.service import IngestService
from ingest.store import Store

RESULTS = Path(__file__).with_name("results")
SITE = "plant1"
SECRET = "planted-Secret-7f3a9c"


# ------------------------------------------------------------------------------ mutations
def _good_messages(seq: int) -> list[dict[str, Any]]:
    now = wire.utcnow().isoformat()
    base = {"publisher": "hostile", "seq": seq, "sent_at": now}
    return [
        {**base, "type": "readings", "asset_id": "P-101", "channel": "vib_de", "quantity": "acceleration", "unit": "g",
         "sample_rate_hz": 25600.0, "start": now, "values": [0.1, -0.2, 0.3]},
        {**base, "type": "features", "asset_id": "P-101", "window_start": now, "window_s": 1.0,
         "features": {"vib_de": {"rms": 0.2, "kurtosis": 3.1}}},
        {**base, "type": "status", "asset_id": "P-101", "state": "online", "uptime_s": 12.0, "detail": "ok"},
        {**base, "type": "prediction", "asset_id": "P-101", "model_name": "sim-bearing", "model_version": "v1",
         "at": now, "rul_unit": "h", "rul_median": 50.0, "rul_lower": 40.0, "rul_upper": 60.0, "coverage": 0.9},
        {**base, "type": "birth", "asset_id": "P-101", "channels": ["vib_de"]},
        {**base, "type": "death", "asset_id": "P-101", "reason": "shutdown"},
    ]


_WEIRD_VALUES: list[Any] = [
    None, True, -1, 0, 2**63, -(2**70), 1e308, -1e308, 1e-320, "", "x" * 5000, "\u0000", "a\u0000b", "\ud800",
    "\u202e", "\x1b[2J", "<script>", "NaN", [], {}, [[[[[[]]]]]], {"$ref": "#"}, "2026-13-45T99:99:99Z",
]


def mutate_json(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three field-level mutations: a field set to a weird value, removed, added, or type-swapped."""
    out = json.loads(json.dumps(obj))
    for _ in range(rng.randint(1, 3)):
        keys = list(out)
        op = rng.randrange(4)
        if op == 0 and keys:
            out[rng.choice(keys)] = rng.choice(_WEIRD_VALUES)
        elif op == 1 and keys:
            out.pop(rng.choice(keys))
        elif op == 2:
            out[rng.choice(["extra", "type", "v", "__proto__", "asset_id"])] = rng.choice(_WEIRD_VALUES)
        elif keys:
            k = rng.choice(keys)
            out[k] = [out[k]] if not isinstance(out[k], list) else {"0": out[k]}
    return out


def mutate_bytes(raw: bytes, rng: random.Random) -> bytes:
    """Byte-level damage: flips, truncation, insertions, or random bytes."""
    data = bytearray(raw)
    op = rng.randrange(5)
    if op == 0 and data:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif op == 1:
        data = data[: rng.randrange(len(data) + 1)]
    elif op == 2:
        pos = rng.randrange(len(data) + 1)
        data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif op == 3:
        data = bytearray(rng.randbytes(rng.randint(0, 200)))
    else:
        data = bytearray(b"{" * rng.randint(1, 5000))
    return bytes(data)


def hostile_wire(n: int, rng: random.Random) -> list[tuple[str, bytes]]:
    """``n`` hostile (topic, payload) pairs: mutated fields, damaged bytes, wrong topics."""
    out = []
    for i in range(n):
        msg = rng.choice(_good_messages(i))
        topic = wire.topic_for(SITE, str(msg["asset_id"]), str(msg["type"]))
        kind = rng.randrange(10)
        if kind < 6:
            payload = json.dumps(mutate_json(msg, rng)).encode()
        elif kind < 9:
            payload = mutate_bytes(json.dumps(msg).encode(), rng)
        else:
            payload = json.dumps(msg).encode()
            topic = rng.choice([f"genedge/v1/{SITE}/P-101/bogus", f"genedge/v1/{SITE}/OTHER/{msg['type']}",
                                f"genedge/v1/{SITE}", "genedge/v1/x/y/z/w"])
        out.append((topic, payload))
    return out


# ------------------------------------------------------------------------------ surfaces
def _tally(tried: int, crashes: int, refused: int, with_reason: int, accepted: int, losses: int | None = None) -> dict[str, Any]:
    return {"tried": tried, "crashes": crashes, "losses": losses, "accepted": accepted, "refused": refused,
            "refused_with_reason": with_reason,
            "refused_with_reason_pct": round(100.0 * with_reason / refused, 2) if refused else None}


def _probe(inputs: Iterator[Any], call: Callable[[Any], Any], expected: type[BaseException],
           reason_of: Callable[[BaseException], str] = str) -> dict[str, Any]:
    tried = crashes = refused = with_reason = accepted = 0
    for item in inputs:
        tried += 1
        try:
            call(item)
        except expected as err:
            refused += 1
            with_reason += bool(reason_of(err).strip())
        except Exception:  # a crash is what this benchmark counts
            crashes += 1
        else:
            accepted += 1
    return _tally(tried, crashes, refused, with_reason, accepted)


def wire_decode(n: int, seed: int) -> dict[str, Any]:
    pairs = hostile_wire(n, random.Random(seed))
    return _probe(iter(pairs), lambda tp: wire.decode(tp[1], tp[0]), WireError,
                  lambda e: f"{e.reason} {e.detail}" if isinstance(e, WireError) and e.reason and e.detail else "")


def commands(n: int, seed: int) -> dict[str, Any] | None:
    decode_command = getattr(wire, "decode_command", None)
    if decode_command is None:
        return None
    rng = random.Random(seed)
    good = [{"action": "raw"}, {"action": "raw", "channel": "vib_de", "last": 2}]
    inputs = []
    for _ in range(n):
        base = dict(rng.choice(good))
        inputs.append(json.dumps(mutate_json(base, rng)).encode() if rng.random() < 0.6
                      else mutate_bytes(json.dumps(base).encode(), rng))
    return _probe(iter(inputs), decode_command, WireError)


def _cmapss_text(rng: random.Random) -> bytes:
    rows = [" ".join([str(u), str(c)] + [f"{rng.uniform(-5, 600):.4f}" for _ in range(24)])
            for u in (1, 2) for c in range(1, 4)]
    return ("\n".join(rows) + "\n").encode()


def _femto_archive(path: Path, member: bytes) -> None:
    with tarfile.open(path, "w:xz") as tf:
        info = tarfile.TarInfo("Bearing1_1/acc_00001.csv")
        info.size = len(member)
        tf.addfile(info, io.BytesIO(member))


def dataset_files(n: int, seed: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    mat = tmp / "good.mat"
    savemat(mat, {"X105_DE_time": np.ones((64, 1)), "X105RPM": np.array([[1797.0]])})
    wav = tmp / "good.wav"
    wavfile.write(wav, 16000, np.zeros(64, dtype=np.int16))
    femto_csv = b"".join(f"9,0,{i},0,0.1,-0.2\n".encode() for i in range(4))

    def one(i: int) -> None:
        which = i % 4
        if which == 0:
            p = tmp / f"train_{i}.txt"
            p.write_bytes(mutate_bytes(_cmapss_text(rng), rng))
            read_cmapss_file(p)
        elif which == 1:
            p = tmp / f"Learning_set_Bearing{i}.tar.xz"
            if rng.random() < 0.5:
                _femto_archive(p, mutate_bytes(femto_csv, rng))
            else:
                p.write_bytes(mutate_bytes(p.read_bytes() if p.exists() else b"\xfd7zXZ", rng))
            list(iter_femto(p))
        elif which == 2:
            p = tmp / f"x{i}.mat"
            p.write_bytes(mutate_bytes(mat.read_bytes(), rng))
            read_cwru(p)
        else:
            p = tmp / f"x{i}.wav"
            p.write_bytes(mutate_bytes(wav.read_bytes(), rng))
            read_wav(p)

    return _probe(iter(range(n)), one, DatasetError)


def settings_inputs(n: int, seed: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    good = (f'[mqtt]\nhost = "broker.plant"\nport = 8883\nusername = "agent"\npassword = "{SECRET}"\n'
            f'[store]\nurl = "postgresql+psycopg://u:{SECRET}@db/genedge"\n[edge]\nrul_every = 10\n')
    env_keys = ["GENEDGE_MQTT__PORT", "GENEDGE_STORE__URL", "GENEDGE_EDGE__RUL_EVERY", "GENEDGE_MQTT__PASSWORD",
                "GENEDGE_DASHBOARD__PORT"]
    leaks = 0

    def one(i: int) -> None:
        nonlocal leaks
        path = tmp / f"s{i}.toml"
        env: dict[str, str] = {}
        if i % 2:
            path.write_bytes(mutate_bytes(good.encode(), rng))
        else:
            path.write_text(good, encoding="utf-8")
            env[rng.choice(env_keys)] = rng.choice([f"x{SECRET}", f"sqlite-{SECRET}", "-1", "1e9", "\x01", "[", "{}",
                                                    f"postgresql://a:{SECRET}@"])
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            Settings.load(path)
        except ConfigError as err:
            if SECRET in str(err):
                leaks += 1
            raise
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    out = _probe(iter(range(n)), one, ConfigError)
    out["secret_leaks"] = leaks
    out["crashes"] += leaks
    return out


@contextmanager
def _ingest(settings: MqttSettings, store: Store) -> Iterator[tuple[IngestService, threading.Thread]]:
    service = IngestService(settings, IngestSettings(client_id="hostile-ingest", flush_interval_s=0.1), store,
                            batch_size=200)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,), kwargs={"drain_s": 0.5}, daemon=True)
    worker.start()
    try:
        if not service.connected.wait(20):
            raise SystemExit("ingest did not connect to the broker")
        yield service, worker
    finally:
        stop.set()
        worker.join(30)


def wire_through_ingest(n: int, seed: int, tmp: Path) -> dict[str, Any]:
    pairs = hostile_wire(n, random.Random(seed))
    store = Store(f"sqlite:///{tmp / 'hostile.db'}")
    with mosquitto() as broker:
        settings = MqttSettings(host="127.0.0.1", port=broker.port, embedded=False)
        with _ingest(settings, store) as (service, worker):
            pub = MqttPublisher(settings, "hostile-pub", max_inflight=500)
            pub.connect()
            for topic, payload in pairs:
                pub.publish_raw(topic, payload)
            pub.flush(120)
            pub.close()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and service.stats.received < n:
                time.sleep(0.2)
            time.sleep(1.0)  # the last batch's flush
            alive = worker.is_alive()
        stats = service.stats
    stored = stats.stored + stats.duplicates
    dead = store.dead_letters(limit=n + 10)
    with_reason = sum(bool(d.reason and d.detail) for d in dead)
    # The same bad bytes on the same topic are one dead letter by design (a redelivery is stored once),
    # so identical hostile inputs are not losses.
    identical = n - len(set(pairs))
    losses = n - stored - stats.dead_lettered - identical
    out = _tally(n, 0 if alive else 1, stats.dead_lettered + identical, with_reason + identical, stored,
                 losses=max(losses, 0))
    out["identical_inputs"] = identical
    return out


# ------------------------------------------------------------------------------ report
SURFACES = ("wire_through_ingest", "wire_decode", "commands", "dataset_files", "settings")


def markdown(results: dict[str, Any]) -> str:
    lines = ["| surface | tried | crashes | losses | accepted | refused | refused with a reason |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in SURFACES:
        r = results["surfaces"].get(name)
        if r is None:
            continue
        pct = "-" if r["refused_with_reason_pct"] is None else f"{r['refused_with_reason_pct']:.0f} %"
        losses = "-" if r["losses"] is None else str(r["losses"])
        lines.append(f"| {name} | {r['tried']} | {r['crashes']} | {losses} | {r['accepted']} | {r['refused']} | {pct} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=2000, help="hostile inputs per surface")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS / "hostile.json")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", wavfile.WavFileWarning)  # damaged WAV headers are the point here
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        surfaces: dict[str, Any] = {
            "wire_through_ingest": wire_through_ingest(args.n, args.seed, tmp),
            "wire_decode": wire_decode(args.n, args.seed),
            "commands": commands(args.n, args.seed),
            "dataset_files": dataset_files(args.n, args.seed, tmp),
            "settings": settings_inputs(args.n, args.seed, tmp),
        }
    results = {
        "meta": {"n": args.n, "seed": args.seed, "python": platform.python_version(), "machine": platform.machine(),
                 "created_at": wire.utcnow().isoformat(timespec="seconds")},
        "surfaces": {k: v for k, v in surfaces.items() if v is not None},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    bad = [k for k, v in results["surfaces"].items() if v["crashes"] or v["losses"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
