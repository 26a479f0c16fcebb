"""Speculative decoding of the local model against plain decoding, on real prescriber requests.

    python benchmarks/llm_speculative.py [--n 12] [--speculative draft,draft:2,ngram-mod] [--draft-max 4]
                                         [--ngram-n 3] [--draft-model PATH] [--draft-p-min 0.75]
                                         [--threads 2] [--bootstrap 2000]
                                         [--out benchmarks/results/llm_speculative.json]

The requests are the ones the prescriber sends for the first ``--n`` simulator scenarios of
:func:`prescribe.scenarios.scenarios` (captured from :class:`prescribe.prescriber.Prescriber`
itself, so the prompt, schema grammar and token budget are the production ones). Two workers are
loaded in the same session, one plain and one with speculative decoding (each speculative type in
``--speculative``, comma separated, gets its own worker; ``TYPE:K`` drafts up to ``K`` tokens instead of
``--draft-max``, so that ``draft:2,draft:4`` compares draft lengths); each answers one warm-up request first,
then every request goes to every worker in an order rotated from request to request, so that
neither side always runs first on the shared CPU. Greedy decoding (temperature 0, same seed).

Measures, per the issue: decoding tokens/s (llama.cpp's ``predicted_n / predicted_ms``, prompt
processing excluded) speculative over plain, pooled over the requests, with a bootstrap 95 %
interval over requests; end-to-end latency p50/p95 each way; the draft acceptance rate (accepted
over drafted tokens); and whether each answer is the same text both ways. Records the load
average before and after, because this machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prescribe.backends import DEFAULT_DRAFT_MODEL_PATH, DEFAULT_MODEL_PATH, LocalBackend  # noqa: E402
from prescribe.backends._llm_worker import DEFAULT_DRAFT_P_MIN, SPECULATIVE_TYPES  # noqa: E402
from prescribe.backends.base import BackendUnavailableError, DraftRequest  # noqa: E402
from prescribe.prescriber import Prescriber  # noqa: E402
from prescribe.prompt import SYSTEM_PROMPT  # noqa: E402
from prescribe.scenarios import scenarios  # noqa: E402

OFF = "off"


class _Capture:
    """A backend that keeps the request it is asked and declines to answer it."""

    name = "capture"

    def __init__(self) -> None:
        self.requests: list[DraftRequest] = []

    async def complete(self, request: DraftRequest) -> str:
        self.requests.append(request)
        raise BackendUnavailableError("capturing the request only")

    async def aclose(self) -> None:
        return None


def prescriber_requests(n: int, seed: int = 0, warmup: int = 1) -> list[tuple[str, DraftRequest]]:
    """The first ``n + warmup`` requests the prescriber sends a language model for the benchmark scenarios.

    Scenarios the decision policy answers itself (no backend asked) are skipped.
    """
    capture = _Capture()
    prescriber = Prescriber(capture)
    logging.getLogger("prescribe").setLevel(logging.ERROR)  # each capture is logged as a rejected answer
    out: list[tuple[str, DraftRequest]] = []
    for sc in scenarios(4 * (n + warmup), seed=seed):
        before = len(capture.requests)
        asyncio.run(prescriber.arun(sc.evidence()))
        if len(capture.requests) > before:
            out.append((sc.name, capture.requests[-1]))
        if len(out) == n + warmup:
            return out
    raise SystemExit(f"only {len(out)} of {n + warmup} scenarios reach the language model")


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile ``q`` in [0, 1]; ``None`` for no values."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def pooled_rate(rows: list[dict[str, Any]]) -> float:
    """Decoding tokens/s over ``rows``: all generated tokens over all decoding time."""
    ms = sum(r["predicted_ms"] for r in rows)
    return 1000.0 * sum(r["predicted_n"] for r in rows) / ms if ms > 0 else 0.0


def speedup(on: list[dict[str, Any]], off: list[dict[str, Any]]) -> float:
    """Pooled tokens/s with speculation over pooled tokens/s without, on the same requests."""
    base = pooled_rate(off)
    return pooled_rate(on) / base if base > 0 else 0.0


def bootstrap_interval(on: list[dict[str, Any]], off: list[dict[str, Any]], reps: int,
                       seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of :func:`speedup`, resampling requests (pairs kept together)."""
    rng = random.Random(seed)
    n = len(on)
    ratios = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        ratios.append(speedup([on[i] for i in idx], [off[i] for i in idx]))
    lo, hi = percentile(ratios, 0.025), percentile(ratios, 0.975)
    return (lo or 0.0, hi or 0.0)


def _run_one(backend: LocalBackend, name: str, request: DraftRequest) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        text, error = backend.complete_sync(request), None
    except Exception as err:  # a cut or rejected answer still has timings worth keeping
        text, error = backend.last_text, f"{type(err).__name__}: {err}"[:300]
    wall = time.perf_counter() - t0
    t = backend.last_timings
    return {"scenario": name, "text": text, "error": error, "latency_s": round(wall, 3),
            "predicted_n": t.get("predicted_n", 0), "predicted_ms": t.get("predicted_ms", 0.0),
            "tokens_per_s": t.get("predicted_per_second"), "prompt_n": t.get("prompt_n"),
            "cache_n": t.get("cache_n"), "prompt_ms": t.get("prompt_ms"),
            "draft_n": t.get("draft_n"), "draft_n_accepted": t.get("draft_n_accepted"), "cpu_s": t.get("cpu_s")}


def parse_variant(variant: str, draft_max: int) -> tuple[str, int]:
    """``TYPE`` or ``TYPE:K`` as (speculative type, most tokens drafted per step)."""
    kind, _, k = variant.partition(":")
    if kind not in SPECULATIVE_TYPES or kind == OFF:
        raise SystemExit(f"--speculative: unknown speculative type {kind!r} (one of "
                         f"{', '.join(t for t in SPECULATIVE_TYPES if t != OFF)}, optionally TYPE:K)")
    if not k:
        return kind, draft_max
    if not k.isdigit() or int(k) < 1:
        raise SystemExit(f"--speculative: draft length in {variant!r} must be an integer >= 1")
    return kind, int(k)


def summarize(kind: str, on: list[dict[str, Any]], off: list[dict[str, Any]], reps: int) -> dict[str, Any]:
    """Speculative ``kind`` against plain decoding over the same requests."""
    same = [i for i in range(len(on)) if on[i]["text"] == off[i]["text"] and on[i]["error"] is None]
    drafted = sum(r["draft_n"] or 0 for r in on)
    accepted = sum(r["draft_n_accepted"] or 0 for r in on)
    lo, hi = bootstrap_interval(on, off, reps)
    per_request = [(a["predicted_n"] / a["predicted_ms"]) / (b["predicted_n"] / b["predicted_ms"])
                   for a, b in zip(on, off, strict=True) if a["predicted_ms"] and b["predicted_ms"] and b["predicted_n"]]
    return {
        "speculative": kind,
        "n_requests": len(on),
        "identical_answers": len(same),
        "different_answers": [on[i]["scenario"] for i in range(len(on)) if i not in same],
        "tokens_per_s_off": round(pooled_rate(off), 2),
        "tokens_per_s_on": round(pooled_rate(on), 2),
        "speedup": round(speedup(on, off), 3),
        "speedup_ci95": [round(lo, 3), round(hi, 3)],
        "speedup_identical_only": round(speedup([on[i] for i in same], [off[i] for i in same]), 3) if same else None,
        "speedup_per_request_p50": round(percentile(per_request, 0.5) or 0.0, 3),
        "draft_tokens": drafted,
        "draft_accepted": accepted,
        "acceptance_rate": round(accepted / drafted, 3) if drafted else None,
        "generated_tokens_off": sum(r["predicted_n"] for r in off),
        "generated_tokens_on": sum(r["predicted_n"] for r in on),
        "latency_p50_s_off": percentile([r["latency_s"] for r in off], 0.5),
        "latency_p95_s_off": percentile([r["latency_s"] for r in off], 0.95),
        "latency_p50_s_on": percentile([r["latency_s"] for r in on], 0.5),
        "latency_p95_s_on": percentile([r["latency_s"] for r in on], 0.95),
        "meets_1_5x": speedup(on, off) >= 1.5 and lo >= 1.0,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k.strip() for k in args.speculative.split(",") if k.strip()]
    if not kinds or OFF in kinds:
        raise SystemExit("--speculative names the speculative types to compare with plain decoding (not 'off')")
    variants = {k: parse_variant(k, args.draft_max) for k in kinds}
    model = args.model or ROOT / DEFAULT_MODEL_PATH
    if (why := LocalBackend.available(model)) is not None:
        raise SystemExit(f"local model not available: {why}")
    draft_model = args.draft_model or ROOT / DEFAULT_DRAFT_MODEL_PATH
    requests = prescriber_requests(args.n, seed=args.seed)
    warmup, measured = requests[0], requests[1:]
    backends = {k: LocalBackend(model, threads=args.threads, system_prompt=SYSTEM_PROMPT, speculative=kind,
                                draft_max=k_max, ngram_n=args.ngram_n, draft_model_path=draft_model,
                                draft_p_min=args.draft_p_min)
                for k, (kind, k_max) in {OFF: (OFF, args.draft_max), **variants}.items()}
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in backends}
    try:
        for backend in backends.values():
            backend.start()
            _run_one(backend, *warmup)  # first real request: fills the prompt cache, and ngram-mod's pool
        order = list(backends)
        for i, (name, request) in enumerate(measured):
            turn = order[i % len(order):] + order[: i % len(order)]
            for k in turn:
                rows[k].append(_run_one(backends[k], name, request))
            line = "  ".join(f"{k} {rows[k][-1]['predicted_n']} tok {rows[k][-1]['tokens_per_s'] or 0:5.1f}/s"
                             for k in backends)
            print(f"[{i + 1}/{len(measured)}] {name:<26} {line}", flush=True)
    finally:
        for backend in backends.values():
            backend.close()
    return {
        "benchmark": "llm_speculative",
        "command": "python benchmarks/llm_speculative.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "nice": os.nice(0)},
        "settings": {"threads": args.threads, "draft_max": args.draft_max, "ngram_n": args.ngram_n,
                     "draft_model": str(args.draft_model or DEFAULT_DRAFT_MODEL_PATH), "draft_p_min": args.draft_p_min,
                     "n_requests": len(measured), "warmup_scenario": warmup[0], "seed": args.seed,
                     "max_tokens": warmup[1].max_tokens, "temperature": 0.0, "bootstrap": args.bootstrap,
                     "model": str(args.model or DEFAULT_MODEL_PATH)},
        "summary": [summarize(k, rows[k], rows[OFF], args.bootstrap) | {"draft_max": variants[k][1]} for k in kinds],
        "requests": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    """The results table of ``result``."""
    m, s = result["machine"], result["settings"]
    lines = [
        "# Speculative decoding of the local model",
        "",
        f"`{result['command']}`: {s['n_requests']} prescriber requests, each answered by plain decoding and by each "
        f"speculative type in rotated order in one session; {s['threads']} threads, draft up to {s['draft_max']} tokens "
        f"(`TYPE:K`: K), n-gram {s['ngram_n']}, draft model `{s.get('draft_model', '-')}` with p_min "
        f"{s.get('draft_p_min', '-')} (`draft`), greedy, max_tokens {s['max_tokens']}. Load average (1, 5, 15 min) "
        f"{_load(m['load_avg_start'])} before, {_load(m['load_avg_end'])} after, on {m['cpus']} CPUs.",
        "",
        "| speculative | tokens/s off | tokens/s on | speedup (95 % CI) | identical answers | acceptance "
        "| latency p50 off / on | latency p95 off / on |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["summary"]:
        acc = "-" if r["acceptance_rate"] is None else (
            f"{100 * r['acceptance_rate']:.0f} % ({r['draft_accepted']}/{r['draft_tokens']})")
        lines.append(
            f"| {r['speculative']} | {r['tokens_per_s_off']:.1f} | {r['tokens_per_s_on']:.1f} "
            f"| {r['speedup']:.2f}x ({r['speedup_ci95'][0]:.2f}-{r['speedup_ci95'][1]:.2f}) "
            f"| {r['identical_answers']}/{r['n_requests']} | {acc} "
            f"| {r['latency_p50_s_off']:.1f} / {r['latency_p50_s_on']:.1f} s "
            f"| {r['latency_p95_s_off']:.1f} / {r['latency_p95_s_on']:.1f} s |")
    lines += ["", "Tokens/s is decoding only (llama.cpp's `predicted_n / predicted_ms`), pooled over the requests; "
              "the interval is a percentile bootstrap over requests. Latency is end to end (prompt and decoding).", ""]
    return "\n".join(lines)


def _load(avg: list[float] | tuple[float, ...]) -> str:
    return ", ".join(f"{x:.2f}" for x in avg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="measured requests (one more is the warm-up)")
    parser.add_argument("--speculative", default="ngram-mod", help="speculative types to compare, comma separated")
    parser.add_argument("--draft-max", type=int, default=4)
    parser.add_argument("--ngram-n", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--draft-p-min", type=float, default=DEFAULT_DRAFT_P_MIN)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--draft-model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "llm_speculative.json")
    args = parser.parse_args()
    load0 = os.getloadavg()
    result = run(args)
    result["machine"]["load_avg_start"] = load0
    result["machine"]["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
