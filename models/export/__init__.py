"""ONNX export, quantisation and the compression report."""

from models.export.compact import export_int8_compact
from models.export.compare import byte_breakdown, compression_report, onnx_session, time_call
from models.export.onnx import (
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    convert_fp16,
    export_onnx,
    quantize_int4_weight_only,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from models.export.prune import prune_magnitude, sparsity

__all__ = [
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "byte_breakdown",
    "compression_report",
    "convert_fp16",
    "export_int8_compact",
    "export_onnx",
    "onnx_session",
    "prune_magnitude",
    "quantize_int4_weight_only",
    "quantize_int8_dynamic",
    "quantize_int8_static",
    "sparsity",
    "time_call",
]
