"""Size, latency and quality of compressed variants against fp32 eager PyTorch, same process."""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

from models.export.onnx import INPUT_NAME
from models.metrics import phm08_score, rmse

__all__ = ["byte_breakdown", "compression_report", "gzip_size", "onnx_session", "time_call", "time_interleaved"]


def onnx_session(path: str | Path, *, threads: int = 1) -> ort.InferenceSession:
    """CPU inference session with a fixed number of intra-op threads."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def time_call(fn: Callable[[], Any], *, repeats: int = 50, warmup: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def gzip_size(path: str | Path) -> int:
    """Size of the file after gzip -9 (what a sparse, pruned model saves in transfer)."""
    return len(gzip.compress(Path(path).read_bytes(), compresslevel=9))


def byte_breakdown(path: str | Path) -> dict[str, Any]:
    """Where the bytes of an ONNX file go: initializers by dtype and consuming op, nodes by op.

    Initializer keys read ``"<dtype> -> <ops> (<kind>)"`` (kind: scalar, vector, matrix...);
    ``payload`` is the tensor data, the rest of an initializer's bytes (name, dims, type) is
    ``proto_overhead``. Nodes of model-local functions are counted once, under ``functions``.
    """
    model = onnx.load(str(path))
    graph = model.graph
    consumers: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, set()).add(node.op_type)
    kinds = {0: "scalar", 1: "vector", 2: "matrix"}
    inits: dict[str, dict[str, int]] = {}
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        kind = "scalar" if arr.size == 1 else kinds.get(arr.ndim, f"{arr.ndim}-d")
        ops = "/".join(sorted(consumers.get(init.name, {"?"})))
        key = f"{onnx.TensorProto.DataType.Name(init.data_type)} -> {ops} ({kind})"
        row = inits.setdefault(key, {"count": 0, "bytes": 0, "elements": 0})
        row["count"] += 1
        row["bytes"] += init.ByteSize()
        row["elements"] += int(arr.size)
    nodes: dict[str, dict[str, int]] = {}
    for node in graph.node:
        row = nodes.setdefault(node.op_type, {"count": 0, "bytes": 0})
        row["count"] += 1
        row["bytes"] += node.ByteSize()
    init_bytes = sum(i.ByteSize() for i in graph.initializer)
    payload = sum(len(i.raw_data) or numpy_helper.to_array(i).nbytes for i in graph.initializer)
    node_bytes = sum(n.ByteSize() for n in graph.node)
    function_bytes = sum(f.ByteSize() for f in model.functions)
    return {
        "file_bytes": Path(path).stat().st_size,
        "initializers": {"count": len(graph.initializer), "bytes": init_bytes, "payload": payload},
        "proto_overhead_of_initializers": init_bytes - payload,
        "nodes": {"count": len(graph.node), "bytes": node_bytes},
        "functions": {
            "count": len(model.functions),
            "nodes": sum(len(f.node) for f in model.functions),
            "bytes": function_bytes,
        },
        "other_bytes": model.ByteSize() - init_bytes - node_bytes - function_bytes,
        "initializers_by_kind": dict(sorted(inits.items(), key=lambda kv: -kv[1]["bytes"])),
        "nodes_by_op": dict(sorted(nodes.items(), key=lambda kv: -kv[1]["bytes"])),
    }


def _onnx_predict(sess: ort.InferenceSession, X: np.ndarray, batch: int = 1024) -> np.ndarray:
    outs = [sess.run(None, {INPUT_NAME: X[i : i + batch]})[0].reshape(-1) for i in range(0, X.shape[0], batch)]
    return np.concatenate(outs).astype(np.float64)


def time_interleaved(
    calls: dict[str, Callable[[], Any]], *, repeats: int = 50, rounds: int = 5, warmup: int = 5
) -> dict[str, float]:
    """Median wall time (ms) of each call, the calls taking turns in ``rounds`` rounds.

    On a shared machine the load drifts; timing one model after the other puts the drift
    between them, taking turns spreads it over all of them.
    """
    per_round = max(1, -(-repeats // rounds))
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: float(np.median(times) * 1e3) for name, times in samples.items()}


def compression_report(
    net: torch.nn.Module,
    variants: dict[str, Path],
    X_eval: np.ndarray,
    y_eval: np.ndarray,
    *,
    threads: int = 1,
    repeats: int = 50,
    baseline_size_path: Path | None = None,
    fleet_batch: int | None = None,
) -> list[dict[str, Any]]:
    """Compare eager fp32 PyTorch with each ONNX variant.

    Latencies come from :func:`time_interleaved`: every model, eager PyTorch included, takes
    turns at each batch size, so load changes on a shared machine hit them alike.

    Args:
        net: the trained fp32 module (eager baseline).
        variants: name -> ONNX file (include ``"fp32"`` for the plain export).
        X_eval: windows to score (e.g. validation cuts), float32 ``(n, c, t)``.
        y_eval: capped truths for ``X_eval``.
        threads: CPU threads for both torch and onnxruntime.
        repeats: timed calls per measurement (median reported).
        baseline_size_path: file whose size is the 100% reference (default: ``variants["fp32"]``).
        fleet_batch: also time a batch of this many windows (every asset of a plant at once);
            ``X_eval`` is repeated if it has fewer.

    Returns:
        One dict per row (``"torch-fp32-eager"`` first) with ``size_bytes``,
        ``size_change_pct``, ``latency_b1_ms``, ``latency_b64_ms``, ``speedup_b1``,
        ``speedup_b64`` (against eager PyTorch), ``rmse``, ``score``, ``rmse_change_pct``; with
        ``fleet_batch``, ``latency_fleet_ms`` and ``speedup_fleet`` too; when ``variants`` has
        ``"fp32"``, ``speedup_vs_onnx_fp32_b1`` and ``speedup_vs_onnx_fp32_fleet`` (or ``_b64``):
        the speed-up against the fp32 ONNX model in the same runtime.

    Raises:
        ValueError: if ``fleet_batch`` is not positive.
    """
    if fleet_batch is not None and fleet_batch < 1:
        raise ValueError(f"fleet_batch must be a positive number of windows, got {fleet_batch}")
    torch.set_num_threads(threads)
    net = net.eval()
    X_eval = np.ascontiguousarray(X_eval, dtype=np.float32)
    batches = {"b1": X_eval[:1], "b64": X_eval[np.arange(64) % X_eval.shape[0]]}
    if fleet_batch:
        batches["fleet"] = X_eval[np.arange(fleet_batch) % X_eval.shape[0]]
    ref_path = baseline_size_path or variants.get("fp32")
    ref_size = Path(ref_path).stat().st_size if ref_path else None
    eager = "torch-fp32-eager"
    sessions = {name: onnx_session(path, threads=threads) for name, path in variants.items()}
    latency: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        for key, x in batches.items():
            xt = torch.from_numpy(x)
            calls: dict[str, Callable[[], Any]] = {eager: partial(net, xt)}
            calls.update({name: partial(sess.run, None, {INPUT_NAME: x}) for name, sess in sessions.items()})
            latency[key] = time_interleaved(calls, repeats=repeats)
        base_pred = net(torch.from_numpy(X_eval)).numpy().astype(np.float64)
    base_rmse = rmse(y_eval, base_pred)
    rows: list[dict[str, Any]] = [
        {
            "variant": eager,
            "size_bytes": ref_size,
            "size_change_pct": 0.0,
            "size_gzip_bytes": gzip_size(ref_path) if ref_path else None,
            "rmse": base_rmse,
            "score": phm08_score(y_eval, base_pred),
            "rmse_change_pct": 0.0,
        }
    ]
    for name, path in variants.items():
        pred = _onnx_predict(sessions[name], X_eval)
        r = rmse(y_eval, pred)
        size = Path(path).stat().st_size
        rows.append(
            {
                "variant": name,
                "size_bytes": size,
                "size_change_pct": (100.0 * (size - ref_size) / ref_size) if ref_size else None,
                "size_gzip_bytes": gzip_size(path),
                "rmse": r,
                "score": phm08_score(y_eval, pred),
                "rmse_change_pct": 100.0 * (r - base_rmse) / base_rmse,
                "max_abs_diff_vs_torch": float(np.max(np.abs(pred - base_pred))),
            }
        )
    for row in rows:
        for key, lat in latency.items():
            row[f"latency_{key}_ms"] = lat[row["variant"]]
            row[f"speedup_{key}"] = lat[eager] / lat[row["variant"]]
    if "fp32" in variants:
        for row in rows[1:]:
            for key, lat in latency.items():
                if key != "b64" or "fleet" not in latency:
                    row[f"speedup_vs_onnx_fp32_{key}"] = lat["fp32"] / lat[row["variant"]]
    return rows
