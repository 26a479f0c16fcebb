"""Prescriber benchmark: the written rubric over 67 scenarios, per backend configuration.

    python benchmarks/prescribe.py [--configs rules,local,local-ngram] [--threads 2] [--max-tokens N]
                                   [--out benchmarks/results/prescribe.json]

Scenarios: :func:`prescribe.scenarios.rubric_scenarios` (healthy assets with the RUL at its cap,
every fault class at watch, plan, urgent and stop-now stages, several criticalities, evidence too
weak to act on). Each recommendation is scored against the rubric of
:mod:`benchmarks._prescribe_rubric` (safety items: no work on healthy assets, stop now at failure,
lockout/tagout in every work order, the deadline rule; then the right state, a replacement planned
before the lower bound, parts from the bill of materials, verification, no truncated text, real
citations, 2-4 backend actions). Per item and overall, per configuration:

- ``rules``: the rule templates;
- ``local``: the on-device model, plain decoding (the default);
- ``local-ngram``: the same model with n-gram speculative decoding (``ngram-mod``), for latency.

Also records latency p50/p95 of the answers a backend wrote (evidence already built; prompt,
generation, validation), the worker's tokens and CPU seconds, and the load average, because this
machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._prescribe_rubric import score, summarise  # noqa: E402
from core.settings import LLMSettings  # noqa: E402
from prescribe.backends import LocalBackend, make_backend  # noqa: E402
from prescribe.policy import DeadlinePolicy  # noqa: E402
from prescribe.prescriber import Prescriber  # noqa: E402
from prescribe.scenarios import expected_state, rubric_scenarios  # noqa: E402

CONFIGS = ("rules", "local", "local-ngram")


def _percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile ``q`` in [0, 1]; ``None`` for no values."""
    return float(np.percentile(values, 100 * q)) if values else None


def _llm(config: str, args: argparse.Namespace) -> LLMSettings:
    backend = "rules" if config == "rules" else "local"
    llm = LLMSettings(backend=backend, threads=args.threads, model_path=args.model)
    speculative = "ngram-mod" if config == "local-ngram" else "off"
    llm = llm.model_copy(update={"speculative": speculative})
    return llm


async def run_config(config: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every rubric scenario through one configuration; rows and summary."""
    llm = _llm(config, args)
    backend, notes = make_backend(llm, llm.backend)
    if llm.backend == "local" and not isinstance(backend, LocalBackend):
        raise SystemExit(f"local model not available: {notes}")
    policy = DeadlinePolicy()
    kwargs: dict[str, Any] = {"policy": policy, "notes": notes}
    if args.max_tokens is not None:
        kwargs["max_tokens"] = args.max_tokens
    prescriber = Prescriber(backend, **kwargs)
    t0 = time.perf_counter()
    if isinstance(backend, LocalBackend):
        await asyncio.to_thread(backend.start)
    startup_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    cases = rubric_scenarios(seed=args.seed)
    for i, sc in enumerate(cases):
        ev = sc.evidence()
        t = time.perf_counter()
        outcome = await prescriber.arun(ev)
        wall = time.perf_counter() - t
        rec = outcome.recommendation
        expected = expected_state(sc, ev)
        scored = score(rec, ev, expected, sc.asset.spare_parts, policy, model=config != "rules")
        timings = dict(getattr(backend, "last_timings", {}) or {}) if outcome.backend_used == backend.name else {}
        row = {
            "scenario": sc.name, "criticality": sc.asset.criticality, "expected": expected, "state": rec.state,
            "priority": rec.priority, "backend_used": outcome.backend_used, "attempts": outcome.attempts,
            "latency_s": round(wall, 3), "items": scored["items"], "why": scored["why"],
            "completion_tokens": timings.get("predicted_n"), "generation_ms": timings.get("predicted_ms"),
            "prompt_tokens": timings.get("prompt_n"), "cpu_s": timings.get("cpu_s"),
            "draft_accepted": timings.get("draft_n_accepted"), "drafted": timings.get("draft_n"),
            "narrative": rec.work_order.narrative if rec.work_order is not None else None,
        }
        rows.append(row)
        missed = [k for k, v in scored["items"].items() if v is False]
        print(f"[{config} {i + 1}/{len(cases)}] {sc.name:<28} {rec.state or '-':<22} {outcome.backend_used:<6} "
              f"{wall:6.1f} s  {'ok' if not missed else 'MISSED ' + ','.join(missed)}", flush=True)
    await prescriber.aclose()
    asked = [r for r in rows if r["backend_used"] not in ("policy",)]
    lat = [r["latency_s"] for r in asked]
    gen = [(r["completion_tokens"], r["generation_ms"]) for r in asked if r["completion_tokens"] and r["generation_ms"]]
    summary = {
        "config": config, "backend": backend.name, "speculative": getattr(llm, "speculative", None),
        "rubric": summarise(rows),
        "by_state": {s: sum(r["state"] == s for r in rows) for s in sorted({str(r["state"]) for r in rows})},
        "backend_asked": len(asked),
        "fallbacks_to_rules": sum(r["backend_used"] not in (backend.name, "policy") for r in rows),
        "latency_p50_s": _percentile(lat, 0.5), "latency_p95_s": _percentile(lat, 0.95),
        "latency_max_s": max(lat) if lat else None,
        "tokens_per_s": (sum(n for n, _ in gen) / (sum(ms for _, ms in gen) / 1000)) if gen else None,
        "completion_tokens_mean": statistics.fmean([n for n, _ in gen]) if gen else None,
        "startup_s": round(startup_s, 2),
    }
    return {"summary": summary, "scenarios": rows}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load0 = os.getloadavg()
    results = {}
    for config in args.configs:
        results[config] = await run_config(config, args)
    return {
        "benchmark": "prescribe",
        "command": "python benchmarks/prescribe.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_start": load0, "load_avg_end": os.getloadavg(), "nice": os.nice(0)},
        "settings": {"threads": args.threads, "max_tokens": args.max_tokens, "seed": args.seed,
                     "model": str(args.model or "var/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")},
        "summary": {c: r["summary"] for c, r in results.items()},
        "scenarios": {c: r["scenarios"] for c, r in results.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=lambda v: [c for c in v.split(",") if c], default=list(CONFIGS),
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=None, help="default: the prescriber's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prescribe.json")
    args = parser.parse_args()
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {', '.join(CONFIGS)}")
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for config, summary in result["summary"].items():
        r = summary["rubric"]
        print(f"{config}: overall {r['overall_rate']:.3f}, safety {r['safety_rate']:.3f}, "
              f"p50 {summary['latency_p50_s']}, p95 {summary['latency_p95_s']}, tokens/s {summary['tokens_per_s']}")


if __name__ == "__main__":
    main()
