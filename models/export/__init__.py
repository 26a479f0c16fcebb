"""ONNX export, quantisation and the compression report."""

from models.export.compact import export_int8_compact, export_packed
from models.export.compare import byte_breakdown, compression_report, onnx_session, time_call
from models.export.mixed import MixedPlan, export_mixed, plan_mixed, weight_sensitivity
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
from models.export.structured import StructuredPlan, prune_structured, prune_structured_finetune

__all__ = [
    "INPUT_NAME",
    "OPSET",
    "OUTPUT_NAME",
    "MixedPlan",
    "StructuredPlan",
    "byte_breakdown",
    "compression_report",
    "convert_fp16",
    "export_int8_compact",
    "export_mixed",
    "export_onnx",
    "export_packed",
    "onnx_session",
    "plan_mixed",
    "prune_magnitude",
    "prune_structured",
    "prune_structured_finetune",
    "quantize_int4_weight_only",
    "quantize_int8_dynamic",
    "quantize_int8_static",
    "sparsity",
    "time_call",
    "weight_sensitivity",
]
