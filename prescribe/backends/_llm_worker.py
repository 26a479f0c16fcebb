"""Worker process that holds the local model: ``python -m prescribe.backends._llm_worker``.

Reads one JSON request per line on stdin (``{"id": n, "body": <chat completion request>}``),
answers one JSON line on its private copy of stdout (``{"id": n, "ok": true, "response": ...}``
or ``{"id": n, "ok": false, "error": "..."}``). The first line it writes is
``{"ready": true, "load_s": ..., "warmup_s": ..., "speculative": ...}`` once the model is loaded and
has answered a warm-up request, or ``{"ready": false, "error": "..."}``. Native log output goes to
stderr. Each answer carries llama.cpp's ``timings``: ``predicted_n`` generated tokens in
``predicted_ms`` of decoding and, with speculative decoding on, ``draft_n`` drafted tokens of which
``draft_n_accepted`` were accepted (both 0 when no draft was made).

Speculative decoding (``--speculative``) drafts tokens either without a second model, from n-grams
of the tokens already seen (llama.cpp's ``ngram-*`` speculative types), or with a small draft model
of the same vocabulary (``draft``, the GGUF file given by ``--draft-model``), and verifies them in one
batch of the main model; the sampler, grammar included, still decides every token.

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


#: ``--speculative`` choices and llama.cpp's speculative type for each (``off``: none).
SPECULATIVE_TYPES = {
    "off": "COMMON_SPECULATIVE_TYPE_NONE",
    "draft": "COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE",
    "ngram-simple": "COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE",
    "ngram-map-k": "COMMON_SPECULATIVE_TYPE_NGRAM_MAP_K",
    "ngram-mod": "COMMON_SPECULATIVE_TYPE_NGRAM_MOD",
    "ngram-cache": "COMMON_SPECULATIVE_TYPE_NGRAM_CACHE",
}


#: llama.cpp's draft-model speculation: a draft token less probable than this (to the draft model) ends the draft.
DEFAULT_DRAFT_P_MIN = 0.75


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability in [0, 1], got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The worker's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=_positive, default=2)
    parser.add_argument("--ctx", type=_positive, default=2048)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speculative", choices=sorted(SPECULATIVE_TYPES), default="off",
                        help="speculative decoding type (off: plain decoding; draft: with --draft-model)")
    parser.add_argument("--draft-max", type=_positive, default=4, help="most tokens drafted per step")
    parser.add_argument("--ngram-n", type=_positive, default=3, help="length of the n-gram looked up to draft")
    parser.add_argument("--draft-model", default=None, help="GGUF file of the draft model (--speculative draft)")
    parser.add_argument("--draft-p-min", type=_probability, default=DEFAULT_DRAFT_P_MIN,
                        help="least draft-model probability of a drafted token (--speculative draft)")
    args = parser.parse_args(argv)
    if args.speculative == "draft" and not args.draft_model:
        parser.error("--speculative draft needs --draft-model")
    return args


def configure_speculative(params: Any, xlc: Any, kind: str, draft_max: int, ngram_n: int, *,
                          draft_model: str | None = None, draft_p_min: float = DEFAULT_DRAFT_P_MIN,
                          threads: int = 2) -> None:
    """Set ``params.speculative`` (an xllamacpp ``CommonParamsSpeculative``) for ``kind``.

    The n-gram types look up the last ``ngram_n`` tokens in the tokens seen so far (``ngram-mod``:
    also in the answers of earlier requests, from a hash pool that the worker keeps) and draft up to
    ``draft_max`` tokens that followed them. ``draft`` runs ``draft_model`` on the CPU with ``threads``
    threads for up to ``draft_max`` tokens, stopping at one it gives less than ``draft_p_min``.

    Raises:
        ValueError: ``kind`` is unknown, or ``draft`` without a ``draft_model`` file that exists.
    """
    if kind not in SPECULATIVE_TYPES:
        raise ValueError(f"speculative must be one of {', '.join(SPECULATIVE_TYPES)}; got {kind!r}")
    spec = params.speculative
    spec.types = [getattr(xlc.common_speculative_type, SPECULATIVE_TYPES[kind])]
    if kind == "off":
        return
    spec.draft.n_max = draft_max
    spec.draft.n_min = 0
    if kind == "draft":
        if not draft_model or not os.path.isfile(draft_model):
            raise ValueError(f"speculative draft needs the draft model file; {draft_model!r} does not exist")
        spec.draft.mparams.path = draft_model
        spec.draft.p_min = draft_p_min
        spec.draft.n_gpu_layers = 0
        spec.draft.cpuparams.n_threads = threads
        spec.draft.cpuparams_batch.n_threads = threads
        return
    for ngram_map in (spec.ngram_simple, spec.ngram_map_k, spec.ngram_map_k4v):
        ngram_map.size_n = ngram_n
        ngram_map.size_m = draft_max
    spec.ngram_mod.n_match = ngram_n
    spec.ngram_mod.n_min = 0
    spec.ngram_mod.n_max = draft_max


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
        configure_speculative(params, xlc, args.speculative, args.draft_max, args.ngram_n,
                              draft_model=args.draft_model, draft_p_min=args.draft_p_min, threads=args.threads)
        server = xlc.Server(params)
        load_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        server.handle_chat_completions(dict(WARMUP))
        warmup_s = time.perf_counter() - t1
    except Exception as err:  # report any load failure to the parent, then exit
        _send(out, {"ready": False, "error": f"{type(err).__name__}: {err}"})
        return 1
    speculative = {"type": args.speculative, "draft_max": args.draft_max, "ngram_n": args.ngram_n}
    if args.speculative == "draft":
        speculative |= {"draft_model": args.draft_model, "draft_p_min": args.draft_p_min}
    _send(out, {"ready": True, "load_s": round(load_s, 3), "warmup_s": round(warmup_s, 3), "speculative": speculative})
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
            if args.speculative != "off" and isinstance(response, dict) and isinstance(response.get("timings"), dict):
                # llama.cpp reports draft counts only when a draft was made: no draft is 0 of 0
                response["timings"].setdefault("draft_n", 0)
                response["timings"].setdefault("draft_n_accepted", 0)
            _send(out, {"id": rid, "ok": True, "response": response, "wall_s": round(time.perf_counter() - t, 3)})
        except Exception as err:  # one bad request must not end the worker
            _send(out, {"id": rid, "ok": False, "error": f"{type(err).__name__}: {err}"[:2000]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
