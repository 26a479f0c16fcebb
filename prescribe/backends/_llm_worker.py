"""Worker process that holds the local model: ``python -m prescribe.backends._llm_worker``.

Reads one JSON request per line on stdin (``{"id": n, "body": <chat completion request>}``),
answers one JSON line on its private copy of stdout (``{"id": n, "ok": true, "response": ...}``
or ``{"id": n, "ok": false, "error": "..."}``). The first line it writes is
``{"ready": true, "load_s": ..., "warmup_s": ...}`` once the model is loaded and has answered a
warm-up request, or ``{"ready": false, "error": "..."}``. Native log output goes to stderr.

It runs in its own process so that llama.cpp's OpenMP threads can be told to sleep when
waiting (``OMP_WAIT_POLICY=PASSIVE``, set by the parent before this process starts; spinning
threads collapse throughput on a shared two-core machine) and so that a crash in native code
cannot take the caller down.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

WARMUP = {
    "messages": [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Say ok."}],
    "max_tokens": 4,
    "temperature": 0,
}


def _private_stdout() -> TextIO:
    """A duplicate of stdout for the protocol; fd 1 then points at stderr for native prints."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8")


def _send(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj) + "\n")
    out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = _private_stdout()
    t0 = time.perf_counter()
    try:
        # Optional heavy dependency (llama.cpp bindings), installed by scripts/install_llm.sh: imported in
        # the worker process only, where its absence is reported as a result line instead of a crash.
        import xllamacpp as xlc  # noqa: PLC0415

        params = xlc.CommonParams()
        params.model.path = args.model
        params.n_ctx = args.ctx
        params.n_parallel = 1
        params.n_batch = 512
        params.n_ubatch = 512
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
        params.sampling.seed = args.seed
        params.cache_prompt = True
        params.verbosity = 0
        server = xlc.Server(params)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        server.handle_chat_completions(dict(WARMUP))
        warmup_s = time.perf_counter() - t1
    except Exception as err:  # report any load failure to the parent, then exit
        _send(out, {"ready": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    _send(out, {"ready": True, "load_s": round(load_s, 3), "warmup_s": round(warmup_s, 3)})
    for line in sys.stdin:
        if not line.strip():
            continue
        rid: Any = None
        try:
            msg = json.loads(line)
            rid = msg.get("id")
            t = time.perf_counter()
            response = server.handle_chat_completions(msg["body"])
            if isinstance(response, str):
                response = json.loads(response)
            if isinstance(response, dict) and "error" in response and "choices" not in response:
                _send(out, {"id": rid, "ok": False, "error": json.dumps(response["error"])[:2000]})
                continue
            _send(out, {"id": rid, "ok": True, "response": response, "wall_s": round(time.perf_counter() - t, 3)})
        except Exception as err:  # one bad request must not end the worker
            _send(out, {"id": rid, "ok": False, "error": f"{type(err).__name__}: {err}"[:2000]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
