"""ONNX export and post-training compression of RUL networks.

Variants (each a self-contained ``.onnx`` file with input ``x`` of shape
``(batch, n_channels, window)`` float32 and output ``rul`` of shape ``(batch,)``):

* ``fp32``: :func:`export_onnx` (``torch.onnx.export``, opset >= 17, dynamic batch axis);
* ``int8-dynamic``: :func:`quantize_int8_dynamic`, weights int8 per channel (7-bit range),
  activations quantised on the fly;
* ``int8-static``: :func:`quantize_int8_static`, QDQ format, per-channel weights, uint8
  activations with ranges calibrated on sample training windows;
* ``fp16``: :func:`convert_fp16`, fp16 weights and compute with fp32 inputs/outputs;
* ``int4-matmulnbits``: :func:`quantize_int4_weight_only`, onnxruntime's ``MatMulNBits``
  blockwise 4-bit weights of the ``MatMul`` nodes (``Gemm`` weights, biases, LayerNorms and
  position embeddings stay fp32, and each 32-element block has an fp32 scale);
* ``int8-compact``: :func:`models.export.compact.export_int8_compact`, weight-only int8 of every
  weight, ensemble members sharing one graph (model-local function);
* ``int4`` and ``mixed``: :func:`models.export.compact.export_packed`, every weight in blockwise
  4-bit (``mixed``: the most sensitive ones in fp16, :mod:`models.export.mixed`);
* ``structured``: heads, channels and layers removed (:mod:`models.export.structured`).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import convert_float_to_float16

from core.errors import ModelError

__all__ = [
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "compact_names",
    "convert_fp16",
    "export_onnx",
    "quantize_int4_weight_only",
    "quantize_int8_dynamic",
    "quantize_int8_static",
]

INPUT_NAME = "x"
OUTPUT_NAME = "rul"
OPSET = 17


def export_onnx(net: torch.nn.Module, n_channels: int, window: int, path: str | Path, *, opset: int = OPSET) -> Path:
    """Export a RUL network to ONNX with a dynamic batch axis.

    Args:
        net: module mapping ``(batch, n_channels, window)`` to ``(batch,)``.
        n_channels: channels per window.
        window: window length.
        path: output file.
        opset: ONNX opset (>= 17).

    Returns:
        The written path.

    Raises:
        ModelError: if the exporter fails.
    """
    if opset < 17:
        raise ModelError(f"opset must be >= 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    dummy = torch.zeros(2, n_channels, window, dtype=torch.float32)
    common: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # the TorchScript-based exporter writes one file and handles LSTM without fuss
            axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
            torch.onnx.export(net, (dummy,), str(path), dynamic_axes=axes, dynamo=False, **common)
        except Exception as legacy_err:
            logging.getLogger(__name__).info("legacy ONNX export failed (%s); trying dynamo", legacy_err)
            try:
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(
                    net, (dummy,), str(path), dynamic_shapes=({0: batch},), dynamo=True, external_data=False, **common
                )
            except Exception as err:
                raise ModelError(f"ONNX export of {type(net).__name__} failed: {err}") from err
    onnx.checker.check_model(str(path))
    return compact_names(path)


def compact_names(path: str | Path) -> Path:
    """Rename nodes and internal tensors to short ids, drop doc strings and value_info, in place.

    Exporters name every tensor after its module path (``/time_layers.0/attn/qkv/MatMul...``);
    for models of a few tens of thousands of weights those names are a large share of the file.
    Graph inputs and outputs keep their names.
    """
    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    mapping: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for init in graph.initializer:
        init.name = short(init.name)
    # inferred shapes of internal tensors: optional, and a tenth of a small quantised file
    del graph.value_info[:]
    for i, node in enumerate(graph.node):
        node.name = f"n{i}"
        node.doc_string = ""
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    graph.doc_string = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _preprocessed(src: Path, workdir: Path) -> Path:
    """Run onnxruntime's shape inference + graph optimisation before quantisation."""
    out = workdir / "pre.onnx"
    try:
        quant_pre_process(str(src), str(out), skip_symbolic_shape=True)
    except Exception:
        return src
    return out


def quantize_int8_dynamic(src: str | Path, dst: str | Path, *, per_channel: bool = True) -> Path:
    """Dynamic int8 quantisation: int8 weights (per output channel), activations at run time.

    Args:
        src: fp32 ONNX model.
        dst: output file.
        per_channel: one scale per output channel of each weight matrix.

    Returns:
        ``dst``.
    """
    dst = Path(dst)
    with tempfile.TemporaryDirectory() as tmp:
        pre = _preprocessed(Path(src), Path(tmp))
        quantize_dynamic(
            str(pre),
            str(dst),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            # 7-bit weights: u8 x s8 products saturate in the AVX2/AVX-512 (non-VNNI) int8
            # kernels; on FD001 this alone took the int8 RMSE change from +9% to +0.7%
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Gemm", "Conv", "LSTM"],
            # only weight MatMuls: quantising attention's activation x activation products
            # (softmax probabilities) costs accuracy and saves no bytes
            extra_options={"MatMulConstBOnly": True},
        )
    return compact_names(dst)


class _WindowReader(CalibrationDataReader):  # type: ignore[misc]  # onnxruntime ships no type hints
    def __init__(self, windows: np.ndarray, batch_size: int = 64) -> None:
        self._batches: Iterator[np.ndarray] = iter([windows[i : i + batch_size] for i in range(0, windows.shape[0], batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch.astype(np.float32)}


def quantize_int8_static(
    src: str | Path,
    dst: str | Path,
    calibration_windows: np.ndarray,
    *,
    per_channel: bool = True,
    max_calibration: int = 1024,
    seed: int = 0,
) -> Path:
    """Static int8 quantisation (QDQ) with activation ranges calibrated on sample windows.

    Args:
        src: fp32 ONNX model.
        dst: output file.
        calibration_windows: ``(n, n_channels, window)`` representative inputs (training data).
        per_channel: per-channel weight scales.
        max_calibration: windows drawn (seeded) from ``calibration_windows``.
        seed: seed of the draw.

    Returns:
        ``dst``.
    """
    dst = Path(dst)
    rng = np.random.default_rng(seed)
    n = calibration_windows.shape[0]
    idx = rng.choice(n, size=min(n, max_calibration), replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        pre = _preprocessed(Path(src), Path(tmp))
        quantize_static(
            str(pre),
            str(dst),
            _WindowReader(calibration_windows[np.sort(idx)]),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            # u8 activations x s8 7-bit weights: see quantize_int8_dynamic on saturation
            reduce_range=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["MatMul", "Gemm", "Conv"],
            extra_options={"MatMulConstBOnly": True},
        )
    return compact_names(dst)


def convert_fp16(src: str | Path, dst: str | Path) -> Path:
    """Convert weights and compute to fp16, keeping fp32 inputs and outputs."""
    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))
    return Path(dst)


def quantize_int4_weight_only(src: str | Path, dst: str | Path, *, block_size: int = 32) -> Path:
    """Blockwise 4-bit weight-only quantisation of ``MatMul`` weights (``MatMulNBits``).

    onnxruntime's quantiser packs the constant ``B`` of each ``MatMul`` only: on the RUL
    transformer a third of the fp32 file stays (``Gemm`` heads, biases, LayerNorms, position
    embeddings, fp32 scales, the graph). :func:`models.export.compact.export_packed` packs all of it.

    Raises:
        ModelError: if this onnxruntime has no ``MatMulNBits`` quantiser.
    """
    try:  # an optional part of onnxruntime: whether it is there depends on the build
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - depends on the onnxruntime build
        raise ModelError("this onnxruntime has no MatMulNBits quantizer") from err
    model = onnx.load(str(src))
    quant = MatMulNBitsQuantizer(model, block_size=block_size, is_symmetric=True, bits=4)
    quant.process()
    quant.model.save_model_to_file(str(dst), use_external_data_format=False)
    return compact_names(dst)
